//! The fault schedules of issue 17 that lost writes or never healed, on real mariadbd: a
//! clean leave cut short by SIGKILL, a listed node that never answers, an SST script's
//! marker beside intact data, and a seed that never reached its first Primary component.
//! Each has its counterpart in the simulation's regressions (`tests/sim/regressions/`).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Lab, Node, Running, connect, sh, wait_until};

fn addrs_of(nodes: &[Node]) -> Vec<Ipv4Addr> {
    nodes.iter().map(|n| n.addr).collect()
}

/// `grastate.dat`'s seqno in a node's volume.
fn grastate_seqno(node: &Node) -> Option<i64> {
    let text = std::fs::read_to_string(node.data_dir().join("grastate.dat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("seqno:"))
        .and_then(|s| s.trim().parse().ok())
}

/// Whether any of `running` decided to bootstrap, within `within`.
fn any_bootstrap(running: &[&Running], within: Duration) -> bool {
    wait_until(within, || running.iter().any(|r| bootstraps(r) > 0))
}

/// Hole 1: `docker service scale db=1`. Both stopping tasks drain, Galera leaves the group
/// cleanly, the survivor goes on alone, but InnoDB's shutdown is cut short by SIGKILL (the
/// grace period). The survivor takes writes, then its host dies. The two older nodes,
/// a majority of the last view they saw, must not restart the cluster without it after
/// OUTAGE_TIMEOUT: they recorded, when their stop began, that they left it behind. When it
/// is back, every row is there.
#[test]
fn a_clean_leave_cut_short_waits_for_the_node_that_stayed() {
    let mut lab = Lab::new("leavesvc");
    let env = with(&env(&lab), &[("OUTAGE_TIMEOUT", "15")]);
    let (nodes, mut running, _) = cold_start_with(&mut lab, &env);
    let addrs = addrs_of(&nodes);
    write_rows(addrs[0], 0, 5);
    let mut survivor = connect(addrs[0], USER, PASS).unwrap();
    // One after the other (two members leaving in the same moment can take the survivor's
    // quorum with them): each drains, Galera leaves the group; the moment the survivor's
    // component has shrunk, the leaver's server is frozen and its task cut down, as
    // Docker's SIGKILL after the grace period does.
    for (i, size) in [(2, "2"), (1, "1")] {
        let server = running[i].mariadbd_pid().expect("mariadbd runs");
        running[i].signal(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status: Vec<(String, String)> = survivor
                .query(
                    "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size', \
                     'wsrep_cluster_status')",
                )
                .unwrap();
            let has = |k: &str, v: &str| status.iter().any(|(a, b)| a == k && b == v);
            if has("wsrep_cluster_size", size) && has("wsrep_cluster_status", "Primary") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} never left the group",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(server), Signal::SIGSTOP);
        running[i].signal(Signal::SIGKILL);
        assert!(running[i].wait_exit(Duration::from_secs(30)).is_some());
    }
    for n in &nodes[1..] {
        assert_eq!(
            grastate_seqno(n),
            Some(-1),
            "{}: the shutdown was not cut short before Galera wrote its position",
            n.hostname
        );
        // What says it left others behind was recorded when its stop began.
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(n.data_dir().join("galera-init.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            record["left_while_others"], true,
            "{}: {record}",
            n.hostname
        );
    }
    // The survivor goes on alone, then its host dies.
    write_rows(addrs[0], 5, 15);
    power_cut(&mut running[..1]);

    lab.set_dns(&addrs[1..]);
    let early: Vec<Running> = nodes[1..].iter().map(|n| start(n, &env)).collect();
    let refs: Vec<&Running> = early.iter().collect();
    let state = wait_for_state(addrs[1], "no timeout applies", &logs(&refs));
    assert!(
        state["decision"]
            .as_str()
            .is_some_and(|d| d.contains("left its component cleanly while others stayed")),
        "{state}"
    );
    assert!(
        !any_bootstrap(&refs, Duration::from_secs(30)),
        "the older nodes restarted the cluster without the one that stayed:\n{}",
        logs(&refs)
    );

    lab.set_dns(&addrs);
    let mut all = early;
    all.insert(0, start(&nodes[0], &env));
    let refs: Vec<&Running> = all.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert_eq!(bootstraps(&all[0]), 1, "{}", logs(&refs));
    assert_rows_everywhere(&addrs, 0..15);
}

/// Waits until the node at `addr` serves a decision containing `what`; returns its state.
fn wait_for_state(addr: Ipv4Addr, what: &str, logs: &str) -> serde_json::Value {
    let ok = wait_until(FORM, || {
        node_state(addr).is_some_and(|s| s["decision"].as_str().is_some_and(|d| d.contains(what)))
    });
    let state = node_state(addr).unwrap_or_default();
    assert!(ok, "{addr} never decided {what:?}: {state}\n{logs}");
    state
}

/// Hole 2: a power cut, and one host never comes back while DNS still lists its address.
/// The two nodes present (a majority of the last view) go on once the silent one has been
/// silent for OUTAGE_TIMEOUT; and `galera-init bootstrap` acts at once, whatever the
/// silent nodes.
#[test]
fn a_listed_node_that_never_answers_blocks_nothing() {
    let mut lab = Lab::new("ghostsvc");
    let env = with(&env(&lab), &[("OUTAGE_TIMEOUT", "20")]);
    let (nodes, mut running, _) = cold_start_with(&mut lab, &env);
    let addrs = addrs_of(&nodes);
    write_rows(addrs[0], 0, 10);
    power_cut(&mut running);

    // Node 3's host never comes back; DNS still lists it.
    let mut back: Vec<Running> = nodes[..2].iter().map(|n| start(n, &env)).collect();
    let refs: Vec<&Running> = back.iter().collect();
    wait_for_state(
        addrs[0],
        "of silence, a node counts as missing",
        &logs(&refs),
    );
    assert_one_cluster(&addrs[..2], &refs);
    let log = logs(&refs);
    assert!(
        log.contains("a majority of its last Primary view is here after OUTAGE_TIMEOUT"),
        "{log}"
    );
    assert_rows_everywhere(&addrs[..2], 0..10);
    write_rows(addrs[0], 10, 20);

    // Another power cut; only node 1 comes back, two listed nodes say nothing. The rules
    // wait (one node is no majority of the last view); the override acts at once.
    power_cut(&mut back);
    let one = start(&nodes[0], &env);
    wait_for_state(addrs[0], "galera-init bootstrap", &one.log());
    let t0 = Instant::now();
    let (code, out) = galera_init_in(&lab, &one, &["bootstrap"]);
    assert_eq!(code, 0, "{out}");
    assert_one_cluster(&addrs[..1], &[&one]);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the override took {:?}, while two listed nodes said nothing:\n{}",
        t0.elapsed(),
        one.log()
    );
    assert!(one.log().contains("MANUAL OVERRIDE"), "{}", one.log());
    assert_rows_everywhere(&addrs[..1], 0..20);
}

/// Hole 3: a node cut down during its IST handshake (the SST script's marker is there, the
/// old data untouched). Its data, its vote and its record are kept: when the other volumes
/// are lost, it is the one the cluster restarts from, and no acknowledged row it holds is
/// lost.
#[test]
fn a_node_cut_down_in_its_ist_handshake_keeps_its_data() {
    let mut lab = Lab::new("istcutsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let env = env(&lab);
    let addrs = addrs_of(&nodes);
    write_rows(addrs[0], 0, 10);
    // Node 3 stops cleanly; the others go on: it needs an IST to catch up.
    running[2].signal(Signal::SIGTERM);
    assert_eq!(running[2].wait_exit(Duration::from_secs(120)), Some(0));
    write_rows(addrs[0], 10, 12);
    let volume = volume_id(&nodes[2]);
    // Its IST handshake cannot complete: the donor's script cannot reach its port 4444.
    sh(&[
        "ip",
        "netns",
        "exec",
        &nodes[2].ns,
        "iptables",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "4444",
        "-j",
        "DROP",
    ]);
    running[2] = start(&nodes[2], &env);
    let marker = nodes[2].data_dir().join("sst_in_progress");
    let mark = nodes[2].data_dir().join(".galera-init-joining");
    assert!(
        wait_until(FORM, || marker.exists() && mark.exists()),
        "no IST handshake under way:\n{}",
        running[2].log()
    );
    running[2].signal(Signal::SIGKILL);
    assert!(running[2].wait_exit(Duration::from_secs(30)).is_some());
    sh(&[
        "ip",
        "netns",
        "exec",
        &nodes[2].ns,
        "iptables",
        "-D",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "4444",
        "-j",
        "DROP",
    ]);
    assert!(marker.exists(), "the marker is still there");

    // The other volumes are lost: node 3's data is all that is left.
    power_cut(&mut running[..2]);
    for n in &nodes[..2] {
        sh(&["rm", "-rf", &n.data_dir().to_string_lossy()]);
        std::fs::create_dir_all(n.data_dir()).unwrap();
    }
    let mut back: Vec<Running> = nodes.iter().map(|n| start(n, &env)).collect();
    let refs: Vec<&Running> = back.iter().collect();
    assert!(
        back[2].wait_log("beside intact data", FORM),
        "{}",
        back[2].log()
    );
    assert_eq!(volume_id(&nodes[2]), volume, "the record is kept");
    let (code, out) = galera_init_in(&lab, &back[0], &["bootstrap"]);
    assert_eq!(code, 0, "{out}");
    assert_one_cluster(&addrs, &refs);
    assert_eq!(bootstraps(&back[2]), 1, "{}", logs(&refs));
    assert_rows_everywhere(&addrs, 0..10);
    back.clear();
}

/// The volume id galera-init gave a node's data.
fn volume_id(node: &Node) -> String {
    let text = std::fs::read_to_string(node.data_dir().join("galera-init.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    record["volume_id"].as_str().unwrap().to_string()
}

/// Hole 4: a first deploy with CLUSTER_SIZE and a setting mariadbd rejects. The seed
/// initialises its datadir and its server aborts before its first Primary component; the
/// node says in one line which setting. Once the setting is gone, the cluster forms by
/// itself: no transaction exists anywhere, so the seed's datadir is an unfinished
/// initialisation, not data to recover.
#[test]
fn a_seed_that_never_reached_primary_heals_once_the_setting_is_gone() {
    let mut lab = Lab::new("badoptsvc");
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs = addrs_of(&nodes);
    lab.set_dns(&addrs);
    let good = with(&env(&lab), &[("CLUSTER_SIZE", "3")]);
    let bad = with(&good, &[("WSREP_PROVIDER_OPTIONS", "gcache.size=banana")]);
    let mut running: Vec<Running> = nodes.iter().map(|n| start(n, &bad)).collect();
    assert_eq!(running[0].wait_exit(FORM), Some(1), "{}", running[0].log());
    let log = running[0].log();
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("mariadbd stopped with exit code 1"))
        .collect();
    assert_eq!(named.len(), 1, "{log}");
    assert!(named[0].contains("gcache.size=banana"), "{log}");
    // What the failed start left: an initialised datadir and an empty grastate.dat.
    assert_eq!(
        std::fs::read(nodes[0].data_dir().join("grastate.dat")).unwrap_or_default(),
        b""
    );
    for r in &mut running[1..] {
        r.signal(Signal::SIGTERM);
        r.wait_exit(Duration::from_secs(30));
    }

    // The operator removes the setting; Swarm starts every task again.
    let running: Vec<Running> = nodes.iter().map(|n| start(n, &good)).collect();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert!(
        running[0]
            .log()
            .contains("never reached a Primary component"),
        "{}",
        running[0].log()
    );
    let total: usize = running.iter().map(bootstraps).sum();
    assert_eq!(total, 1, "{}", logs(&refs));
    write_rows(addrs[0], 0, 5);
    assert_rows_everywhere(&addrs, 0..5);
    let mut c = connect(addrs[2], USER, PASS).unwrap();
    let n: Option<i64> = c
        .query_first(format!("SELECT COUNT(*) FROM {DB}.acked"))
        .unwrap();
    assert_eq!(n, Some(5));
}
