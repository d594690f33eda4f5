//! A single node in the namespace lab: the seed of `docker service create --replicas=1`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::lab::{Lab, Running, connect, status_var, wait_synced};

/// 200 characters, with quotes, a backslash and non-ASCII.
const ROOT_PW: &str = "r00t'pa\"ss\\wörd-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123";
/// Quotes, a backslash and non-ASCII: the quoting must hold end to end.
const USER_PW: &str = "it's a \\ \"tricky\" pässwörd 🔑";
const USER: &str = "mysqldbuser";
const DB: &str = "mytestdb";
const CLUSTER_KEY: &str = "a-cluster-key-nobody-may-see";

/// The seed's environment, with the user's password and a cluster key given as Docker
/// secret files, and debug logging (which must not print a secret either).
fn seed_env(lab: &Lab) -> Vec<(String, String)> {
    let secret = lab.dir.join("user-password");
    fs::write(&secret, format!("{USER_PW}\n")).unwrap();
    let key = lab.dir.join("cluster-key");
    fs::write(&key, format!("{CLUSTER_KEY}\n")).unwrap();
    vec![
        ("RUST_LOG".into(), "debug".into()),
        ("CLUSTER_KEY_FILE".into(), key.display().to_string()),
        ("DB_SERVICE_NAME".into(), lab.service.clone()),
        ("MYSQL_ROOT_PASSWORD".into(), ROOT_PW.into()),
        ("MYSQL_DATABASE".into(), DB.into()),
        ("MYSQL_USER".into(), USER.into()),
        ("MYSQL_PASSWORD_FILE".into(), secret.display().to_string()),
    ]
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn query_count(node: &Running, sql: &str) -> i64 {
    let mut c = connect(node.node.addr, USER, USER_PW).expect("connect as MYSQL_USER");
    c.query_first::<i64, _>(sql).unwrap().unwrap()
}

/// Runs the `mariadb` client as an unprivileged OS user inside the node, through the unix
/// socket, so root's socket authentication cannot stand in for the password.
fn socket_login_as_root(node: &Running, password: &str) -> bool {
    node.exec_in(
        &[
            "runuser", "-u", "nobody", "--", "mariadb", "-uroot", "-e", "SELECT 1",
        ],
        &[("MYSQL_PWD", password)],
    )
    .status
    .success()
}

fn write_initdb(dir: &std::path::Path) {
    fs::write(
        dir.join("01-schema.sql"),
        "CREATE TABLE runs (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20));\n\
         DELIMITER //\nCREATE PROCEDURE add_run(w VARCHAR(20)) BEGIN INSERT INTO runs (what) VALUES (w); END//\n\
         DELIMITER ;\nCALL add_run('sql');\n",
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"CALL add_run('sql.gz');\n").unwrap();
    fs::write(dir.join("02-more.sql.gz"), gz.finish().unwrap()).unwrap();
    fs::write(
        dir.join("03-script.sh"),
        format!("mariadb -e \"INSERT INTO {DB}.runs (what) VALUES ('sh')\"\n"),
    )
    .unwrap();
    fs::write(dir.join("04-ignored.txt"), "not a script").unwrap();
}

/// The seed walk-through on one node: bootstrap, accounts, initdb.d, HUP, clean stop,
/// restart with the data kept and initdb.d not run again.
#[test]
fn seed_node_bootstraps_serves_and_restarts() {
    let mut lab = Lab::new("mysqldbcluster");
    let n1 = lab.node(1);
    lab.set_dns(&[n1.addr]);
    write_initdb(&n1.initdb_dir());
    let env = seed_env(&lab);

    let t0 = Instant::now();
    let mut node = n1.start(&as_refs(&env), &[]);
    assert!(
        wait_synced(n1.addr, USER, USER_PW, 1, Duration::from_secs(90)),
        "not Synced/Primary/size 1:\n{}",
        node.log()
    );
    eprintln!(
        "fresh single node: PID-1 start to Synced in {:.1}s",
        t0.elapsed().as_secs_f32()
    );

    // MYSQL_USER over TCP sees MYSQL_DATABASE; the initdb.d scripts ran once each, in order.
    let mut c = connect(n1.addr, USER, USER_PW).unwrap();
    let dbs: Vec<String> = c.query("SHOW DATABASES").unwrap();
    assert!(dbs.contains(&DB.to_string()), "{dbs:?}");
    let runs: Vec<String> = c
        .query(format!("SELECT what FROM {DB}.runs ORDER BY id"))
        .unwrap();
    assert_eq!(runs, ["sql", "sql.gz", "sh"]);
    assert!(node.log().contains("ignoring 04-ignored.txt"));
    drop(c);

    // root: password over the socket works (and only the right one); no remote root.
    assert!(
        socket_login_as_root(&node, ROOT_PW),
        "root cannot log in with its password"
    );
    assert!(
        !socket_login_as_root(&node, "wrong"),
        "root logs in with a wrong password"
    );
    let remote = connect(n1.addr, "root", ROOT_PW);
    assert!(remote.is_err(), "root logged in remotely");

    // The Galera config is in place, wins over 50-server.cnf and holds no secret.
    let cnf = n1.etc_dir().join("mariadb.conf.d/99-galera-init.cnf");
    let text = fs::read_to_string(&cnf).unwrap();
    assert!(
        text.contains(&format!("wsrep_node_address = {}", n1.addr)),
        "{text}"
    );
    assert_eq!(
        status_var(n1.addr, USER, USER_PW, "wsrep_connected").as_deref(),
        Some("ON")
    );

    // Secrets: not in the log (at debug level), not in any process's argv or environment
    // (galera-init's own aside), not on the HTTP endpoints, not in a file that is not 0600.
    assert_no_secret_leaks(&node, &[ROOT_PW, USER_PW, CLUSTER_KEY]);

    // SIGHUP reaches mariadbd (it prints its status report) and does not stop it.
    node.signal(Signal::SIGHUP);
    assert!(
        node.wait_log("Status information:", Duration::from_secs(10)),
        "{}",
        node.log()
    );
    assert_eq!(query_count(&node, "SELECT 1"), 1);

    // Write a row, then SIGTERM: clean shutdown, exit 0, a real seqno in grastate.dat.
    let mut c = connect(n1.addr, USER, USER_PW).unwrap();
    c.query_drop(format!("CREATE TABLE {DB}.kept (v INT PRIMARY KEY)"))
        .unwrap();
    c.query_drop(format!("INSERT INTO {DB}.kept VALUES (42)"))
        .unwrap();
    drop(c);
    node.signal(Signal::SIGTERM);
    assert_eq!(
        node.wait_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        node.log()
    );
    let grastate = fs::read_to_string(n1.data_dir().join("grastate.dat")).unwrap();
    assert!(!grastate.contains("seqno:   -1"), "{grastate}");
    assert!(grastate.contains("safe_to_bootstrap: 1"), "{grastate}");

    // Restart on the same volume, handed to another user meanwhile (a volume restored by
    // root, say): it is given back to mysql, as the official image does; the data is there,
    // initdb.d did not run again.
    crate::lab::sh(&[
        "chown",
        "-R",
        "nobody:nogroup",
        &n1.data_dir().display().to_string(),
    ]);
    let node = n1.start(&as_refs(&env), &[]);
    assert!(
        wait_synced(n1.addr, USER, USER_PW, 1, Duration::from_secs(90)),
        "{}",
        node.log()
    );
    assert_eq!(query_count(&node, &format!("SELECT v FROM {DB}.kept")), 42);
    assert_eq!(
        query_count(&node, &format!("SELECT COUNT(*) FROM {DB}.runs")),
        3
    );
    assert!(!node.log().contains("initdb.d: running"), "{}", node.log());
    assert!(node.log().contains("existing data"), "{}", node.log());
}

fn assert_no_secret_leaks(node: &Running, secrets: &[&str]) {
    let log = node.log();
    assert!(log.contains("DEBUG"), "the node logs at debug level");
    let procs = node.processes();
    assert!(
        procs.len() >= 2,
        "expected galera-init and mariadbd: {procs:?}"
    );
    let read =
        |path: String| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let endpoints: Vec<(&str, String)> = ["/state", "/status", "/metrics"]
        .into_iter()
        .map(|path| {
            let url = format!("http://{}:9200{path}", node.node.addr);
            let body = ureq::get(&url)
                .call()
                .map(|mut r| r.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or_default();
            assert!(!body.is_empty(), "{path} answers");
            (path, body)
        })
        .collect();
    for secret in secrets {
        assert!(!log.contains(secret), "a secret is in the log");
        for p in &procs {
            assert!(
                !read(format!("/proc/{p}/cmdline")).contains(secret),
                "a secret is in the argv of pid {p}"
            );
            if *p != node.pid1 {
                assert!(
                    !read(format!("/proc/{p}/environ")).contains(secret),
                    "a secret is in the environment of pid {p} ({})",
                    read(format!("/proc/{p}/comm")).trim()
                );
            }
        }
        for (path, body) in &endpoints {
            assert!(!body.contains(secret), "a secret is on {path}");
        }
    }
    let mdb = node.mariadbd_pid().unwrap();
    let environ = read(format!("/proc/{mdb}/environ"));
    for var in [
        "MYSQL_ROOT_PASSWORD",
        "MYSQL_PASSWORD",
        "MYSQL_USER",
        "MYSQL_DATABASE",
        "CLUSTER_KEY",
    ] {
        assert!(!environ.contains(var), "{var} is in mariadbd's environment");
    }
    // Every file the node can write (its volume, /etc/mysql, /run, /tmp): one that holds a
    // secret is readable by its owner only.
    let root = std::path::PathBuf::from(format!("/proc/{}/root", node.pid1));
    let dirs = [
        node.node.data_dir(),
        node.node.etc_dir(),
        root.join("run"),
        root.join("tmp"),
    ];
    let mut checked = 0;
    let mut stack: Vec<std::path::PathBuf> = dirs.to_vec();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && meta.len() < 64 * 1024 * 1024 {
                checked += 1;
                let bytes = fs::read(entry.path()).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                if secrets.iter().any(|s| text.contains(s)) {
                    let mode = meta.permissions().mode() & 0o777;
                    assert_eq!(
                        mode & 0o077,
                        0,
                        "{} holds a secret, mode {mode:o}",
                        entry.path().display()
                    );
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} files looked at");
    // Files galera-init wrote under the datadir are private.
    for entry in fs::read_dir(node.node.data_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".galera-init")
        {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{:?}", entry.file_name());
        }
    }
}

/// When mariadbd dies from a signal, galera-init exits with 128+n.
#[test]
fn mariadbd_killed_gives_128_plus_signal() {
    let mut lab = Lab::new("killsvc");
    let n1 = lab.node(1);
    lab.set_dns(&[n1.addr]);
    let env = seed_env(&lab);
    let mut node = n1.start(&as_refs(&env), &[]);
    assert!(
        wait_synced(n1.addr, USER, USER_PW, 1, Duration::from_secs(90)),
        "{}",
        node.log()
    );
    let mdb = node.mariadbd_pid().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(mdb), Signal::SIGKILL).unwrap();
    assert_eq!(
        node.wait_exit(Duration::from_secs(30)),
        Some(137),
        "{}",
        node.log()
    );
}

/// Options after the image name go to mariadbd.
#[test]
fn arguments_go_to_mariadbd() {
    let mut lab = Lab::new("argsvc");
    let n1 = lab.node(1);
    lab.set_dns(&[n1.addr]);
    let mut env = seed_env(&lab);
    env.push((
        "WSREP_PROVIDER_OPTIONS".into(),
        "gcache.size=64M;evs.suspect_timeout=PT7S".into(),
    ));
    let node = n1.start(&as_refs(&env), &["--max-connections=77"]);
    assert!(
        wait_synced(n1.addr, USER, USER_PW, 1, Duration::from_secs(90)),
        "{}",
        node.log()
    );
    let mut c = connect(n1.addr, USER, USER_PW).unwrap();
    let v: Option<i64> = c.query_first("SELECT @@max_connections").unwrap();
    assert_eq!(v, Some(77));
    // WSREP_PROVIDER_OPTIONS reach Galera, after galera-init's own.
    let opts: String = c
        .query_first("SELECT @@wsrep_provider_options")
        .unwrap()
        .unwrap();
    for want in [
        "gcache.size = 64M",
        "evs.suspect_timeout = PT7S",
        "pc.recovery = true",
    ] {
        assert!(opts.contains(want), "{want} in {opts}");
    }
}

/// A SIGTERM while the node waits for DNS ends start-up at once, with nothing written.
#[test]
fn sigterm_while_waiting_for_dns_ends_startup_cleanly() {
    let mut lab = Lab::new("dnswait");
    let n1 = lab.node(1);
    lab.set_dns(&[]);
    let env = seed_env(&lab);
    let mut node = n1.start(&as_refs(&env), &[]);
    assert!(
        node.wait_log("DNS not ready", Duration::from_secs(20)),
        "{}",
        node.log()
    );
    node.signal(Signal::SIGTERM);
    assert_eq!(
        node.wait_exit(Duration::from_secs(10)),
        Some(143),
        "{}",
        node.log()
    );
    assert!(n1.data_entries().is_empty(), "{:?}", n1.data_entries());
    assert!(
        !n1.etc_dir()
            .join("mariadb.conf.d/99-galera-init.cnf")
            .exists()
    );
}
