//! What the cluster tests share: the README's environment, starting nodes, writing and
//! reading acknowledged rows, faults, and the checks that one cluster formed.

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::lab::{Lab, Node, Running, connect, status_var, wait_synced, wait_until};

pub const USER: &str = "mysqldbuser";
pub const PASS: &str = "mysqldbpass";
pub const DB: &str = "mytestdb";
/// Generous bounds: two SSTs in parallel take ~13 s on this lab's two cores.
pub const FORM: Duration = Duration::from_secs(180);

/// The seed's environment from the README, with a short settle window for test speed.
pub fn env(lab: &Lab) -> Vec<(String, String)> {
    [
        ("DB_SERVICE_NAME", lab.service.as_str()),
        ("MYSQL_ROOT_PASSWORD", "rootpass"),
        ("MYSQL_DATABASE", DB),
        ("MYSQL_USER", USER),
        ("MYSQL_PASSWORD", PASS),
        ("SETTLE_WINDOW", "3"),
        ("OUTAGE_TIMEOUT", "30"),
        ("PC_RECOVERY_TIMEOUT", "15"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub fn start(node: &Node, env: &[(String, String)]) -> Running {
    start_args(node, env, &[])
}

/// Starts a node with extra mariadbd arguments.
pub fn start_args(node: &Node, env: &[(String, String)], args: &[&str]) -> Running {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    node.start(&refs, args)
}

/// A cluster of three that acknowledged rows `0..n`, then lost power: every PID 1 SIGKILLed.
pub fn outage_after_rows(lab: &mut Lab, n: i64) -> (Vec<Node>, Vec<Ipv4Addr>) {
    let (nodes, mut running, _) = cold_start(lab);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    write_rows(addrs[0], 0, n);
    power_cut(&mut running);
    (nodes, addrs)
}

/// The cluster UUID in a node's grastate.dat.
pub fn grastate_uuid(node: &Node) -> String {
    let text = std::fs::read_to_string(node.data_dir().join("grastate.dat")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("uuid:"))
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|| panic!("no uuid in grastate.dat: {text}"))
}

/// Asserts that the cluster came back with its own history: every node recovered its
/// position in cluster `uuid` from InnoDB (a restarted container has no config file of its
/// own yet) and runs in that cluster again.
pub fn assert_history_kept(uuid: &str, addrs: &[Ipv4Addr], running: &[&Running]) {
    for r in running {
        assert!(
            r.log().contains(&format!("recovered position {uuid}:")),
            "{} recovered its position in {uuid}:\n{}",
            r.node.hostname,
            r.log()
        );
    }
    for a in addrs {
        assert_eq!(
            status_var(*a, USER, PASS, "wsrep_cluster_state_uuid").as_deref(),
            Some(uuid),
            "{a} runs in the cluster it ran in before"
        );
    }
}

pub fn logs(running: &[&Running]) -> String {
    running
        .iter()
        .map(|r| format!("==== {} ====\n{}", r.node.hostname, r.log()))
        .collect()
}

/// Waits until every address is Synced in one Primary component of `addrs.len()` nodes,
/// and returns that component's cluster UUID.
pub fn assert_one_cluster(addrs: &[Ipv4Addr], running: &[&Running]) -> String {
    let n = addrs.len() as u32;
    for a in addrs {
        assert!(
            wait_synced(*a, USER, PASS, n, FORM),
            "{a} not Synced in a Primary component of {n}:\n{}",
            logs(running)
        );
    }
    let uuids: HashSet<String> = addrs
        .iter()
        .map(|a| status_var(*a, USER, PASS, "wsrep_cluster_state_uuid").unwrap_or_default())
        .collect();
    assert_eq!(uuids.len(), 1, "more than one cluster: {uuids:?}");
    uuids.into_iter().next().unwrap()
}

pub fn sql(addr: Ipv4Addr, stmt: &str) {
    let mut c = connect(addr, USER, PASS).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    c.query_drop(stmt)
        .unwrap_or_else(|e| panic!("{stmt} on {addr}: {e}"));
}

/// Inserts rows `from..to` on `addr`, one acknowledged commit each.
pub fn write_rows(addr: Ipv4Addr, from: i64, to: i64) {
    let mut c = connect(addr, USER, PASS).unwrap();
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {DB}.acked (id INT PRIMARY KEY)"
    ))
    .unwrap();
    for i in from..to {
        c.query_drop(format!("INSERT INTO {DB}.acked VALUES ({i})"))
            .unwrap();
    }
}

/// The rows of `acked` as `addr` sees them (after waiting for the node to apply every
/// write it knows of).
pub fn rows(addr: Ipv4Addr) -> Option<Vec<i64>> {
    let mut c = connect(addr, USER, PASS).ok()?;
    c.query_drop("SET SESSION wsrep_sync_wait = 1").ok()?;
    c.query(format!("SELECT id FROM {DB}.acked ORDER BY id"))
        .ok()
}

/// SIGKILLs every node's PID 1 at once, as a power cut would, and waits until they are gone.
pub fn power_cut(running: &mut [Running]) {
    for r in running.iter() {
        r.signal(Signal::SIGKILL);
    }
    for r in running.iter_mut() {
        assert!(
            r.wait_exit(Duration::from_secs(30)).is_some(),
            "a node survived SIGKILL"
        );
    }
}

/// Starts every node; returns them and the time the last one was started.
pub fn start_all(nodes: &[Node], env: &[(String, String)]) -> (Vec<Running>, Instant) {
    let running = nodes.iter().map(|n| start(n, env)).collect();
    (running, Instant::now())
}

pub fn bootstraps(r: &Running) -> usize {
    r.log().matches("decision: bootstrap").count()
}

/// Three fresh nodes that DNS lists together from the start form one cluster of three.
pub fn cold_start(lab: &mut Lab) -> (Vec<Node>, Vec<Running>, Duration) {
    let env = env(lab);
    cold_start_with(lab, &env)
}

/// [`cold_start`] with the environment `env`.
pub fn cold_start_with(
    lab: &mut Lab,
    env: &[(String, String)],
) -> (Vec<Node>, Vec<Running>, Duration) {
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    lab.set_dns(&addrs);
    let t0 = Instant::now();
    let running: Vec<Running> = nodes.iter().map(|n| start(n, env)).collect();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    let took = t0.elapsed();
    let total: usize = running.iter().map(bootstraps).sum();
    assert_eq!(total, 1, "exactly one node bootstraps:\n{}", logs(&refs));
    for a in &addrs {
        let whole = wait_until(FORM, || {
            node_state(*a).is_some_and(|s| {
                s["last_view"]["members"]
                    .as_array()
                    .is_some_and(|m| m.len() == 3 && m.iter().all(|m| m["volume_id"].is_string()))
            })
        });
        assert!(
            whole,
            "{a} records every member of its view by volume: {}\n{}",
            node_state(*a).map_or("no answer".to_string(), |s| format!(
                "last_view {} size {} conf {} incoming {} state {} phase {} address {}",
                s["last_view"],
                s["wsrep_cluster_size"],
                s["wsrep_cluster_conf_id"],
                s["wsrep_incoming_addresses"],
                s["wsrep_local_state"],
                s["phase"],
                s["address"]
            )),
            logs(&refs)
        );
    }
    (nodes, running, took)
}

/// Asserts that every address serves exactly the rows `want` (after applying every write it
/// knows of).
pub fn assert_rows_everywhere(addrs: &[Ipv4Addr], want: Range<i64>) {
    let want: Vec<i64> = want.collect();
    for a in addrs {
        assert_eq!(rows(*a).unwrap(), want, "{a}");
    }
}

/// `env` with `extra` variables set (replacing any of the same name).
pub fn with(env: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .cloned()
        .collect();
    out.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

/// What the node at `addr` serves on `/state`, when it answers.
pub fn node_state(addr: Ipv4Addr) -> Option<serde_json::Value> {
    ureq::get(&format!("http://{addr}:9200/state"))
        .call()
        .ok()?
        .body_mut()
        .read_json()
        .ok()
}

/// The status a node reports through its own socket (reachable while its link is down).
pub fn local_status(r: &Running, var: &str) -> Option<String> {
    let out = r.exec_in(
        &[
            "mariadb",
            "-N",
            "-B",
            "-e",
            &format!("SHOW GLOBAL STATUS LIKE '{var}'"),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().nth(1).map(String::from)
}

/// `GET http://<addr>:9200<path>`: the status code and body, or `None` when nothing
/// answers within two seconds.
pub fn http(addr: Ipv4Addr, path: &str) -> Option<(u16, String)> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut r = agent
        .get(&format!("http://{addr}:9200{path}"))
        .call()
        .ok()?;
    let code = r.status().as_u16();
    Some((code, r.body_mut().read_to_string().unwrap_or_default()))
}

/// The status code of `path` on `addr` (0: no answer).
pub fn code(addr: Ipv4Addr, path: &str) -> u16 {
    http(addr, path).map_or(0, |(c, _)| c)
}

/// Runs `galera-init ARGS` inside the node, as `docker exec` would: exit code and output.
pub fn galera_init_in(lab: &Lab, r: &Running, args: &[&str]) -> (i32, String) {
    let bin = lab.binary();
    let mut argv: Vec<&str> = vec![bin.to_str().unwrap()];
    argv.extend(args);
    let out = r.exec_in(&argv, &[]);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs `galera-init status ARGS` from the host.
pub fn status_table(lab: &Lab, args: &[&str]) -> String {
    let out = std::process::Command::new(lab.binary())
        .arg("status")
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A setting in the Galera config galera-init wrote in the node (while it runs).
pub fn config_value(r: &Running, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(
        r.node
            .etc_dir()
            .join("mariadb.conf.d")
            .join("99-galera-init.cnf"),
    )
    .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
        .map(|v| v.trim().to_string())
}

/// Waits until every node of `addrs` is Synced in one component of them all, as its own
/// galera-init sees it.
pub fn all_synced(addrs: &[Ipv4Addr]) {
    for a in addrs {
        assert!(
            wait_until(FORM, || node_state(*a).is_some_and(|s| {
                s["wsrep_local_state"] == 4 && s["wsrep_cluster_size"] == addrs.len()
            })),
            "{a} is Synced in a component of {}",
            addrs.len()
        );
    }
}

/// A client that inserts row after row on one node, each waited for; it notes every
/// acknowledged row and when it was acknowledged.
pub struct Writes {
    latest: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(i64, Instant)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writes {
    /// Creates the table, writes its first row, and starts the client (rows from
    /// 1 000 000); returns once it has 20 acknowledged.
    pub fn start(addr: Ipv4Addr) -> Writes {
        write_rows(addr, 0, 1);
        Writes::start_from(addr, 1_000_000)
    }

    /// A client whose rows are numbered from `first` (the table exists).
    pub fn start_from(addr: Ipv4Addr, first: i64) -> Writes {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
        let latest = Arc::new(AtomicI64::new(0));
        let (stopped, log, last) = (stop.clone(), acked.clone(), latest.clone());
        let thread = std::thread::spawn(move || {
            let mut next = first;
            let mut c = None;
            while !stopped.load(Ordering::SeqCst) {
                if c.is_none() {
                    c = connect(addr, USER, PASS).ok();
                }
                let ok = c.as_mut().is_some_and(|c: &mut mysql::Conn| {
                    c.query_drop(format!("INSERT INTO {DB}.acked VALUES ({next})"))
                        .is_ok()
                });
                if ok {
                    log.lock().unwrap().push((next, Instant::now()));
                    last.store(next, Ordering::SeqCst);
                    next += 1;
                } else {
                    c = None;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        let w = Writes {
            latest,
            stop,
            acked,
            thread: Some(thread),
        };
        assert!(
            wait_until(Duration::from_secs(30), || w.count() >= 20),
            "the client writes"
        );
        w
    }

    /// How many rows were acknowledged.
    pub fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` more rows are acknowledged after now.
    pub fn more(&self, n: usize, within: Duration) -> bool {
        let have = self.count();
        wait_until(within, || self.count() >= have + n)
    }

    /// The last row acknowledged, kept up to date while the client runs (0 before the
    /// first).
    pub fn latest(&self) -> Arc<AtomicI64> {
        self.latest.clone()
    }

    /// Stops the client; returns the rows it had acknowledged and the longest stretch
    /// without an acknowledgement after `from`.
    pub fn stop(mut self, from: Instant) -> (Vec<i64>, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        let mut last = acked
            .iter()
            .rev()
            .find(|(_, t)| *t <= from)
            .map_or(from, |(_, t)| *t);
        let mut longest = Duration::ZERO;
        for (_, t) in acked.iter().filter(|(_, t)| *t > from) {
            longest = longest.max(t.saturating_duration_since(last));
            last = *t;
        }
        (acked.into_iter().map(|(id, _)| id).collect(), longest)
    }
}
