//! The image on a real Docker engine in swarm mode, deployed with the original walk-through
//! (`docker service create --replicas=1`, then `docker service scale =3`), with one volume
//! per task slot: a row written through one task is read through another; the writer's
//! container killed, all containers killed at once, a scale to 0 and back, and a
//! `docker stop` each lose nothing.
//!
//! It runs wherever a Docker engine answers and is skipped elsewhere, saying so;
//! `GALERA_DOCKER_TESTS=require` (set by .ci/run) makes a missing engine a failure. The
//! image is built by scripts/docker-image.sh from the binary under test, on a base made by
//! debootstrap once and kept. Everything the test creates (service, network, volumes, and
//! the swarm if it created it) is removed afterwards, also when it fails.
//!
//! This machine kind has no IPVS: the service uses `--endpoint-mode dnsrr` (tasks are found
//! through `tasks.<service>` anyway) and `--no-resolve-image` (no registry).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::kit::{DB, FORM, PASS, USER};
use crate::lab::{bin, wait_until};

const IMAGE: &str = "galera-init:test";

/// Runs `docker args`; its stdout, trimmed, or what it said on failure.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn must(args: &[&str]) -> String {
    docker(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether the test runs here: a Docker engine answers, or the test is required.
fn engine_or_skip() -> bool {
    let required = std::env::var("GALERA_DOCKER_TESTS").is_ok_and(|v| v == "require");
    match docker(&["info", "--format", "{{.ServerVersion}}"]) {
        Ok(_) => true,
        Err(e) if required => panic!("GALERA_DOCKER_TESTS=require, but no Docker engine: {e}"),
        Err(e) => {
            eprintln!(
                "skipped: no Docker engine answers ({e}); set GALERA_DOCKER_TESTS=require to fail instead"
            );
            false
        }
    }
}

/// The service and what it needs; removed on drop.
struct Deployment {
    service: String,
    network: String,
    volume_prefix: String,
    left_swarm: bool,
}

impl Deployment {
    fn new() -> Deployment {
        let id = std::process::id();
        let state = must(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        let created = state != "active";
        if created {
            must(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        }
        let d = Deployment {
            service: format!("t{id}-mysqldbcluster"),
            network: format!("t{id}-dbmysqlnet"),
            volume_prefix: format!("t{id}-galera-"),
            left_swarm: created,
        };
        must(&[
            "network",
            "create",
            "-d",
            "overlay",
            "--attachable",
            &d.network,
        ]);
        d
    }

    /// The service's running containers: (id, healthy).
    fn containers(&self) -> Vec<(String, bool)> {
        docker(&[
            "ps",
            "--filter",
            &format!("label=com.docker.swarm.service.name={}", self.service),
            "--format",
            "{{.ID}}\t{{.Status}}",
        ])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, status)| (id.to_string(), status.contains("(healthy)")))
        .collect()
    }

    fn healthy(&self) -> Vec<String> {
        self.containers()
            .into_iter()
            .filter(|(_, h)| *h)
            .map(|(id, _)| id)
            .collect()
    }

    /// Waits until `n` containers run, all healthy, and each one's `galera-init status`
    /// shows `n` Synced members; returns their ids.
    fn wait_synced(&self, n: usize, what: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let ok = wait_until(FORM, || {
            let all = self.containers();
            ids = self.healthy();
            all.len() == n
                && ids.len() == n
                && ids.iter().all(|c| {
                    synced_rows(&status(c)) == n && status(c).matches("Master").count() == 1
                })
        });
        assert!(ok, "{what}: {n} healthy, Synced tasks\n{}", self.diag());
        ids
    }

    fn scale(&self, n: usize) {
        must(&[
            "service",
            "scale",
            "--detach",
            &format!("{}={n}", self.service),
        ]);
    }

    fn diag(&self) -> String {
        let ps = docker(&["service", "ps", "--no-trunc", &self.service]).unwrap_or_else(|e| e);
        let logs =
            docker(&["service", "logs", "--tail", "30", &self.service]).unwrap_or_else(|e| e);
        let containers = self.containers();
        let statuses: Vec<String> = containers.iter().map(|(c, _)| status(c)).collect();
        format!(
            "containers: {containers:?}\n{ps}\nstatus:\n{}\nlogs:\n{logs}",
            statuses.join("\n")
        )
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.service]);
        let label = format!("label=com.docker.swarm.service.name={}", self.service);
        wait_until(Duration::from_secs(120), || {
            docker(&["ps", "-aq", "--filter", &label]).is_ok_and(|s| s.is_empty())
        });
        let volumes = docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name={}", self.volume_prefix),
        ])
        .unwrap_or_default();
        for v in volumes
            .lines()
            .filter(|v| v.starts_with(&self.volume_prefix))
        {
            // A volume stays in use for a moment after its container is gone.
            wait_until(Duration::from_secs(30), || {
                docker(&["volume", "rm", v]).is_ok()
            });
        }
        wait_until(Duration::from_secs(30), || {
            docker(&["network", "rm", &self.network]).is_ok()
        });
        if self.left_swarm {
            let _ = docker(&["swarm", "leave", "--force"]);
        }
    }
}

/// What container `c` printed, stdout and stderr (galera-init and mariadbd log to stderr).
fn logs(c: &str) -> String {
    Command::new("docker")
        .args(["logs", c])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

/// galera-init's own lines in container `c`'s log.
fn said(c: &str) -> String {
    let lines: Vec<String> = logs(c)
        .lines()
        .filter(|l| l.starts_with('['))
        .map(str::to_string)
        .collect();
    format!("{c}'s log:\n{}", lines.join("\n"))
}

/// `galera-init status` inside container `c` (empty when it cannot run).
fn status(c: &str) -> String {
    docker(&["exec", c, "galera-init", "status"]).unwrap_or_default()
}

fn synced_rows(table: &str) -> usize {
    table
        .lines()
        .filter(|l| l.contains("Synced, Running"))
        .count()
}

/// The writer: the container whose hostname (its short id) the status table marks Master.
fn writer(c: &str) -> Option<String> {
    status(c)
        .lines()
        .find(|l| l.contains("Master"))
        .and_then(|l| l.split('|').next())
        .map(|s| s.trim().to_string())
}

/// Runs `stmt` through the MariaDB client in container `c`, over TCP as the application
/// user; the output, tab-separated.
fn sql(c: &str, stmt: &str) -> Result<String, String> {
    docker(&[
        "exec",
        "-e",
        &format!("MYSQL_PWD={PASS}"),
        c,
        "mariadb",
        "-h127.0.0.1",
        &format!("-u{USER}"),
        "-N",
        DB,
        "-e",
        stmt,
    ])
}

/// The cluster UUID container `c`'s node runs in.
fn cluster_uuid(c: &str) -> String {
    sql(c, "SHOW STATUS LIKE 'wsrep_cluster_state_uuid'")
        .unwrap_or_default()
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// Inserts rows `from..=to` through `c`, each acknowledged.
fn write_rows(c: &str, from: i64, to: i64) {
    for i in from..=to {
        let ok = wait_until(Duration::from_secs(30), || {
            sql(c, &format!("INSERT IGNORE INTO rows_t VALUES ({i})")).is_ok()
        });
        assert!(ok, "write {i} through {c}");
    }
}

/// Waits until every container in `ids` holds exactly the rows `1..=n`.
fn assert_rows(ids: &[String], n: i64) {
    let want: BTreeSet<i64> = (1..=n).collect();
    for c in ids {
        let mut got = BTreeSet::new();
        let ok = wait_until(Duration::from_secs(30), || {
            got = sql(c, "SELECT id FROM rows_t")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            got == want
        });
        assert!(ok, "{c} holds rows 1..={n}: {got:?}");
    }
}

#[test]
fn the_original_walkthrough_runs_in_swarm_mode_and_keeps_every_row() {
    if !engine_or_skip() {
        return;
    }
    let t = Instant::now();
    let built = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/docker-image.sh"
        ))
        .args(["--binary", bin().to_str().unwrap(), "--tag", IMAGE])
        .output()
        .expect("run scripts/docker-image.sh");
    assert!(
        built.status.success(),
        "scripts/docker-image.sh: {}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    eprintln!("image built in {:.0}s", t.elapsed().as_secs_f32());

    let d = Deployment::new();
    let service = d.service.clone();
    let volume = format!(
        "type=volume,source={}{{{{.Task.Slot}}}},target=/var/lib/mysql",
        d.volume_prefix
    );
    // The original command, with the per-slot volume and the grace period; dnsrr and
    // --no-resolve-image for this machine.
    let created = Instant::now();
    must(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--endpoint-mode",
        "dnsrr",
        "--name",
        &service,
        "--network",
        &d.network,
        "--replicas=1",
        "--mount",
        &volume,
        "--stop-grace-period",
        "2m",
        "--env",
        &format!("DB_SERVICE_NAME={service}"),
        "--env",
        "MYSQL_ROOT_PASSWORD=rootpass",
        "--env",
        &format!("MYSQL_DATABASE={DB}"),
        "--env",
        &format!("MYSQL_USER={USER}"),
        "--env",
        &format!("MYSQL_PASSWORD={PASS}"),
        IMAGE,
    ]);
    let seed = d.wait_synced(1, "the seed");
    let seed_time = created.elapsed();
    eprintln!("{}", said(&seed[0]));

    let scaled = Instant::now();
    d.scale(3);
    let ids = d.wait_synced(3, "scale =3");
    let scale_time = scaled.elapsed();
    for c in ids.iter().filter(|c| **c != seed[0]) {
        eprintln!("{}", said(c));
    }
    // The writer may be moving back to the seed at this moment (it was out of the writes
    // while it served the joiners' transfers, and claims them again once they release it,
    // after a round or the hold-off): read until the table shows one.
    let mut table = String::new();
    wait_until(Duration::from_secs(30), || {
        table = status(&ids[0]);
        table.contains("Master, Synced, Running")
    });
    eprintln!(
        "seed healthy and Synced {:.1}s after service create; 3 after scale =3 in {:.1}s\n{table}",
        seed_time.as_secs_f32(),
        scale_time.as_secs_f32()
    );
    assert!(table.contains("Master, Synced, Running"), "{table}");
    assert_eq!(
        table.matches("Slave, Synced, Running").count(),
        2,
        "{table}"
    );

    // A row written through one task is read through another.
    sql(&seed[0], "CREATE TABLE rows_t (id INT PRIMARY KEY)").unwrap();
    write_rows(&seed[0], 1, 10);
    let other = ids.iter().find(|c| **c != seed[0]).unwrap();
    assert_rows(std::slice::from_ref(other), 10);

    // The writer's container is killed: the others go on, Swarm's replacement joins.
    // Once the joiners release the seed from their transfers, the writes move back to it
    // (the first member, as MaxScale would pick): wait for a writer that stays put.
    let mut w = None;
    let mut same = 0;
    wait_until(Duration::from_secs(60), || {
        let now = writer(&ids[0]);
        same = if now.is_some() && now == w {
            same + 1
        } else {
            0
        };
        w = now;
        same >= 5
    });
    let w = w.expect("a writer");
    let killed = ids
        .iter()
        .find(|c| w.starts_with(c.as_str()) || c.starts_with(&w))
        .unwrap_or_else(|| panic!("the writer {w} among {ids:?}"))
        .clone();
    must(&["kill", &killed]);
    let survivor = ids.iter().find(|c| **c != killed).unwrap();
    write_rows(survivor, 11, 20);
    let ids = d.wait_synced(3, "after the writer was killed");
    assert!(!ids.contains(&killed), "a new container replaced {killed}");
    assert_rows(&ids, 20);

    // Every container killed at once (a power cut): the cluster comes back by itself, with
    // its own history (the same cluster UUID: each node recovered its position).
    let uuid = cluster_uuid(&ids[0]);
    let cut = Instant::now();
    let mut args = vec!["kill"];
    args.extend(ids.iter().map(String::as_str));
    must(&args);
    let back = d.wait_synced(3, "after every container was killed");
    let cut_time = cut.elapsed();
    for c in &back {
        eprintln!("{}", said(c));
    }
    assert!(back.iter().all(|c| !ids.contains(c)));
    assert_rows(&back, 20);
    for c in &back {
        assert_eq!(cluster_uuid(c), uuid, "{}", said(c));
    }
    write_rows(&back[0], 21, 25);

    // A graceful full stop and start.
    let stopped = Instant::now();
    d.scale(0);
    assert!(
        wait_until(FORM, || d.containers().is_empty()),
        "scale =0 stops every task\n{}",
        d.diag()
    );
    let stop_time = stopped.elapsed();
    let started = Instant::now();
    d.scale(3);
    let ids = d.wait_synced(3, "scale =0 then =3");
    let restart_time = started.elapsed();
    assert_rows(&ids, 25);

    // docker stop: a clean shutdown within the grace period, its position saved.
    let c = &ids[1];
    must(&["stop", "-t", "120", c]);
    let code = must(&["inspect", "-f", "{{.State.ExitCode}}", c]);
    let logs = logs(c);
    assert_eq!(code, "0", "a stopped task exits 0:\n{logs}");
    let saved = logs
        .lines()
        .rev()
        .find(|l| l.contains("grastate.dat: cluster"))
        .unwrap_or_default();
    assert!(
        saved.contains(" seqno ") && !saved.contains(" seqno -1 "),
        "the position is saved on a clean stop: {saved:?}\n{logs}"
    );
    let ids = d.wait_synced(3, "after docker stop");
    assert_rows(&ids, 25);
    eprintln!(
        "power cut: back in {:.1}s; scale =0 took {:.1}s, =3 then {:.1}s",
        cut_time.as_secs_f32(),
        stop_time.as_secs_f32(),
        restart_time.as_secs_f32()
    );
}
