//! The two ways a node runs in the benchmark: galera-init as the image runs it, and bare
//! mariadbd started by hand as an operator who knows the answer would start it (the
//! baseline). Both run in the namespace lab, each as PID 1 of a mini container; the
//! baseline's PID 1 is galera-init in its plain supervisor mode (`galera-init sh -c …`), so
//! both sides pay for the same container set-up and only the cluster logic differs.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use crate::lab::{Node, Running, wait_until};

/// The README's application account (created by galera-init on a fresh datadir).
pub const USER: &str = "mysqldbuser";
/// Its password.
pub const PASS: &str = "mysqldbpass";
/// Its database.
pub const DB: &str = "mytestdb";

/// Who runs a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// galera-init as PID 1, with the README's environment.
    GaleraInit,
    /// mariadbd started by hand with the right flags.
    Hand,
}

/// The README's environment for `service`, with `extra` variables set on top.
pub fn gi_env(service: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("DB_SERVICE_NAME", service),
        ("MYSQL_ROOT_PASSWORD", "rootpass"),
        ("MYSQL_DATABASE", DB),
        ("MYSQL_USER", USER),
        ("MYSQL_PASSWORD", PASS),
    ]
    .iter()
    .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// Starts galera-init in `node`.
pub fn start_gi(node: &Node, env: &[(String, String)]) -> Running {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    node.start(&refs, &[])
}

/// How a hand-started node is configured.
#[derive(Debug, Clone)]
pub struct Hand {
    /// `wsrep_cluster_name`.
    pub cluster: String,
    /// The `gcomm://` list.
    pub members: Vec<Ipv4Addr>,
    /// `wsrep_sst_method`.
    pub sst: String,
}

/// What a hand-started node does before mariadbd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandStart {
    /// `mariadb-install-db`, then `mariadbd --wsrep-new-cluster`.
    Seed,
    /// `mariadbd --wsrep-new-cluster` on the data it has.
    Bootstrap,
    /// `mariadbd` (joins by SST/IST, or lets pc.recovery restore its view).
    Join,
}

/// The socket of a hand-started node, in its datadir so that the host can reach it (root
/// through `unix_socket`: no account needed).
const HAND_SOCKET: &str = "/var/lib/mysql/bench.sock";

const HAND_SCRIPT: &str = r#"set -e
mkdir -p /run/mysqld
chown mysql:mysql /var/lib/mysql /run/mysqld
if [ "$1" = seed ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
        --cross-bootstrap --skip-name-resolve >/dev/null
fi
shift
exec mariadbd --user=mysql --datadir=/var/lib/mysql "$@"
"#;

/// Starts bare mariadbd in `node`, as an operator would by hand.
pub fn start_hand(node: &Node, hand: &Hand, how: HandStart) -> Running {
    let gcomm: Vec<String> = hand.members.iter().map(|a| a.to_string()).collect();
    let mut args: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        HAND_SCRIPT.into(),
        "sh".into(),
        if how == HandStart::Seed {
            "seed"
        } else {
            "run"
        }
        .into(),
        format!("--socket={HAND_SOCKET}"),
        "--bind-address=0.0.0.0".into(),
        "--wsrep-on=ON".into(),
        "--wsrep-provider=/usr/lib/galera/libgalera_smm.so".into(),
        format!("--wsrep-cluster-name={}", hand.cluster),
        format!("--wsrep-cluster-address=gcomm://{}", gcomm.join(",")),
        format!("--wsrep-node-address={}", node.addr),
        format!("--wsrep-node-name={}", node.hostname),
        format!("--wsrep-sst-method={}", hand.sst),
        "--binlog-format=ROW".into(),
        "--default-storage-engine=InnoDB".into(),
        "--innodb-autoinc-lock-mode=2".into(),
    ];
    if how != HandStart::Join {
        args.push("--wsrep-new-cluster".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    node.start(&[], &refs)
}

/// One reading of a node's Galera state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `wsrep_local_state_comment`.
    pub state: String,
    /// `wsrep_cluster_status` is Primary.
    pub primary: bool,
    /// `wsrep_cluster_size`.
    pub size: u32,
}

impl Status {
    /// Synced in a Primary component of `size`.
    pub fn synced_in(&self, size: u32) -> bool {
        self.state == "Synced" && self.primary && self.size == size
    }
}

/// A client connection to a node: over TCP with the README's account for galera-init
/// nodes, through the socket in the datadir as root for hand-started ones.
pub fn connect(node: &Node, kind: Kind, timeout: Duration) -> Option<mysql::Conn> {
    let opts = match kind {
        Kind::GaleraInit => mysql::OptsBuilder::new()
            .ip_or_hostname(Some(node.addr.to_string()))
            .tcp_port(3306)
            .user(Some(USER))
            .pass(Some(PASS))
            .prefer_socket(false)
            .tcp_connect_timeout(Some(timeout)),
        Kind::Hand => mysql::OptsBuilder::new()
            .socket(Some(socket_path(node).to_string_lossy()))
            .user(Some("root"))
            .prefer_socket(true),
    };
    mysql::Conn::new(
        opts.read_timeout(Some(timeout))
            .write_timeout(Some(timeout)),
    )
    .ok()
}

fn socket_path(node: &Node) -> PathBuf {
    node.data_dir().join("bench.sock")
}

/// The node's Galera state, if its server answers.
pub fn status(node: &Node, kind: Kind) -> Option<Status> {
    let mut c = connect(node, kind, Duration::from_millis(500))?;
    let rows: Vec<(String, String)> = c
        .query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', \
             'wsrep_cluster_status', 'wsrep_cluster_size')",
        )
        .ok()?;
    let get = |k: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Status {
        state: get("wsrep_local_state_comment")?,
        primary: get("wsrep_cluster_status")? == "Primary",
        size: get("wsrep_cluster_size")?.parse().ok()?,
    })
}

/// Polls every 100 ms until every node is Synced in a Primary component of `size`; returns
/// when that first held, or `None` after `timeout`.
pub fn wait_all_synced(nodes: &[(&Node, Kind)], size: u32, timeout: Duration) -> Option<Instant> {
    let mut at = None;
    wait_until(timeout, || {
        let ok = nodes
            .iter()
            .all(|(n, k)| status(n, *k).is_some_and(|s| s.synced_in(size)));
        if ok {
            at = Some(Instant::now());
        }
        ok
    })
    .then_some(())?;
    at
}

/// Polls until any node reports a Primary component of `size`.
pub fn wait_any_primary(nodes: &[(&Node, Kind)], size: u32, timeout: Duration) -> Option<Instant> {
    let mut at = None;
    wait_until(timeout, || {
        let ok = nodes
            .iter()
            .any(|(n, k)| status(n, *k).is_some_and(|s| s.primary && s.size == size));
        if ok {
            at = Some(Instant::now());
        }
        ok
    })
    .then_some(())?;
    at
}

/// Runs one statement, panicking with the node's name when it fails.
pub fn exec(node: &Node, kind: Kind, stmt: &str) {
    let mut c = connect(node, kind, Duration::from_secs(600))
        .unwrap_or_else(|| panic!("cannot connect to {}", node.hostname));
    c.query_drop(stmt)
        .unwrap_or_else(|e| panic!("{stmt} on {}: {e}", node.hostname));
}

/// The number of rows in `table`, after the node applied every write it knows of.
pub fn count(node: &Node, kind: Kind, table: &str) -> Option<i64> {
    let mut c = connect(node, kind, Duration::from_secs(10))?;
    c.query_drop("SET SESSION wsrep_sync_wait = 1").ok()?;
    c.query_first(format!("SELECT COUNT(*) FROM {table}"))
        .ok()
        .flatten()
}

/// Stops every node with `sig` and waits until each has exited.
pub fn stop_all(running: &mut [Running], sig: nix::sys::signal::Signal) {
    for r in running.iter() {
        r.signal(sig);
    }
    for r in running.iter_mut() {
        r.wait_exit(Duration::from_secs(180))
            .unwrap_or_else(|| panic!("{} did not stop", r.node.hostname));
    }
}

/// Empties a node's volume.
pub fn wipe(node: &Node) {
    let dir = node.data_dir();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
}

/// `safe_to_bootstrap` and the seqno in a node's grastate.dat.
pub fn grastate(node: &Node) -> (bool, i64) {
    let text = std::fs::read_to_string(node.data_dir().join("grastate.dat")).unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    (
        field("safe_to_bootstrap:") == "1",
        field("seqno:").parse().unwrap_or(-1),
    )
}

/// The SST method the galera-init config of `node` names.
pub fn gi_sst_method(node: &Node) -> Option<String> {
    let text = std::fs::read_to_string(
        node.etc_dir()
            .join("mariadb.conf.d")
            .join("99-galera-init.cnf"),
    )
    .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("wsrep_sst_method"))
        .map(|v| v.trim_start().trim_start_matches('=').trim().to_string())
}
