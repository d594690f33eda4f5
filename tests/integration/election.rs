//! The election under the fault schedules that other images, and galera-init before issue 6,
//! got wrong, on real mariadbd: every acknowledged row survives, one cluster forms once the
//! missing data is back or an operator overrides, and a node that waits says what for.

use std::net::Ipv4Addr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Lab, Node, Running, wait_synced, wait_until};

/// Longer than the tests' OUTAGE_TIMEOUT (30 s): a node that has not bootstrapped by then
/// does not do so because of a timeout.
const PAST_THE_TIMEOUT: Duration = Duration::from_secs(45);

fn addrs_of(nodes: &[Node]) -> Vec<Ipv4Addr> {
    nodes.iter().map(|n| n.addr).collect()
}

/// Whether any of `running` decided to bootstrap, within `within`.
fn any_bootstrap(running: &[&Running], within: Duration) -> bool {
    wait_until(within, || running.iter().any(|r| bootstraps(r) > 0))
}

/// Waits until the node at `addr` says on `/state` that it waits for something whose
/// description contains `what`; returns its state.
fn waits_for(addr: Ipv4Addr, what: &str, logs: &str) -> serde_json::Value {
    let ok = wait_until(FORM, || {
        node_state(addr).is_some_and(|s| {
            s["waiting_for"].as_array().is_some_and(|w| {
                w.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.contains(what)))
            })
        })
    });
    let state = node_state(addr).unwrap_or_default();
    assert!(
        ok,
        "{addr} does not say it waits for {what:?}: {state}\n{logs}"
    );
    state
}

/// The volume id galera-init gave a node's data.
fn volume_id(node: &Node) -> String {
    let text = std::fs::read_to_string(node.data_dir().join("galera-init.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    record["volume_id"].as_str().unwrap().to_string()
}

/// Runs `galera-init bootstrap` inside a node, as `docker exec TASK galera-init bootstrap`
/// would; returns what it printed.
fn override_in(lab: &Lab, r: &Running) -> String {
    let bin = lab.binary();
    let out = r.exec_in(&[bin.to_str().unwrap(), "bootstrap"], &[]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Schedule 1: after a full outage, the volumes with the newest writes are on hosts that are
/// gone, and two tasks come back with empty volumes. One older node and two empty ones make
/// a set of CLUSTER_SIZE; the older node must not bootstrap, and when the real volumes
/// return every acknowledged row is there.
#[test]
fn empty_volumes_outvote_nothing() {
    let mut lab = Lab::new("emptysvc");
    let env = with(&env(&lab), &[("CLUSTER_SIZE", "3")]);
    let (nodes, mut running, _) = cold_start_with(&mut lab, &env);
    let addrs = addrs_of(&nodes);
    write_rows(addrs[0], 0, 5);
    // Node 1 falls behind; the others acknowledge more.
    running[0].signal(Signal::SIGKILL);
    running[0].wait_exit(Duration::from_secs(30)).unwrap();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[1..], &refs);
    write_rows(addrs[1], 5, 15);
    power_cut(&mut running[1..]);
    let (v2, v3) = (volume_id(&nodes[1]), volume_id(&nodes[2]));

    // Their tasks come back on other hosts, with empty volumes.
    let empty: Vec<Node> = (4..=5).map(|k| lab.node(k)).collect();
    lab.set_dns(&[addrs[0], empty[0].addr, empty[1].addr]);
    let mut back = vec![start(&nodes[0], &env)];
    back.extend(empty.iter().map(|n| start(n, &env)));
    let refs: Vec<&Running> = back.iter().collect();
    let state = waits_for(addrs[0], &v2[..8], &logs(&refs));
    let waiting = state["waiting_for"].to_string();
    assert!(waiting.contains(&v3[..8]), "{waiting}");
    assert!(
        state["decision"]
            .as_str()
            .is_some_and(|d| d.contains("galera-init bootstrap")),
        "the wait says how to override: {state}"
    );
    assert!(
        !any_bootstrap(&refs, PAST_THE_TIMEOUT),
        "an empty volume outvoted history:\n{}",
        logs(&refs)
    );

    // The real volumes return.
    for r in &mut back[1..] {
        r.signal(Signal::SIGTERM);
        assert!(r.wait_exit(Duration::from_secs(30)).is_some());
    }
    lab.set_dns(&addrs);
    let mut running = vec![back.remove(0)];
    running.extend(nodes[1..].iter().map(|n| start(n, &env)));
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert_eq!(bootstraps(&running[0]), 0, "{}", running[0].log());
    assert_rows_everywhere(&addrs, 0..15);
}

/// Schedule 2: the nodes stop cleanly one by one and the last one takes writes alone. When
/// the stack comes back and that node starts late, the others wait for it (no timeout lets
/// them go on without it), and it bootstraps when it comes.
#[test]
fn clean_leavers_wait_for_the_node_that_outlived_them() {
    let mut lab = Lab::new("cleansvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs = addrs_of(&nodes);
    let env = env(&lab);
    write_rows(addrs[2], 0, 5);
    for (i, upto) in [(0, 10), (1, 20)] {
        running[i].signal(Signal::SIGTERM);
        assert_eq!(
            running[i].wait_exit(Duration::from_secs(120)),
            Some(0),
            "{}",
            running[i].log()
        );
        write_rows(addrs[2], upto - 5 * (i as i64 + 1), upto);
    }
    running[2].signal(Signal::SIGTERM);
    assert_eq!(running[2].wait_exit(Duration::from_secs(120)), Some(0));
    let last = volume_id(&nodes[2]);

    lab.set_dns(&addrs[..2]);
    let early: Vec<Running> = nodes[..2].iter().map(|n| start(n, &env)).collect();
    let refs: Vec<&Running> = early.iter().collect();
    let state = waits_for(addrs[1], &last[..8], &logs(&refs));
    assert!(
        state["decision"]
            .as_str()
            .is_some_and(|d| d.contains("no timeout applies")),
        "{state}"
    );
    assert!(
        !any_bootstrap(&refs, PAST_THE_TIMEOUT),
        "an early node bootstrapped from older data:\n{}",
        logs(&refs)
    );

    lab.set_dns(&addrs);
    let mut running = early;
    running.push(start(&nodes[2], &env));
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert_eq!(bootstraps(&running[2]), 1, "{}", logs(&refs));
    assert_rows_everywhere(&addrs, 0..20);
}

/// Schedule 3: FORCE_BOOTSTRAP set on the service reaches every task. It means "do not wait
/// for the missing nodes", not "every node bootstraps": the most advanced node present
/// bootstraps, the other joins, and the variable is used up.
#[test]
fn force_bootstrap_on_every_node_bootstraps_only_the_most_advanced() {
    let mut lab = Lab::new("forcesvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs = addrs_of(&nodes);
    write_rows(addrs[0], 0, 5);
    running[0].signal(Signal::SIGKILL);
    running[0].wait_exit(Duration::from_secs(30)).unwrap();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[1..], &refs);
    write_rows(addrs[1], 5, 15);
    power_cut(&mut running[1..]);

    // Node 3's volume is lost; the operator sets FORCE_BOOTSTRAP on the service.
    let forced = with(&env(&lab), &[("FORCE_BOOTSTRAP", "yes")]);
    lab.set_dns(&addrs[..2]);
    let mut running: Vec<Running> = nodes[..2].iter().map(|n| start(n, &forced)).collect();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[..2], &refs);
    assert_eq!(bootstraps(&running[0]), 0, "{}", logs(&refs));
    assert_eq!(bootstraps(&running[1]), 1, "{}", logs(&refs));
    assert!(running[1].log().contains("MANUAL OVERRIDE"));
    assert!(running[0].log().contains("decision: join"));
    assert_rows_everywhere(&addrs[..2], 0..15);

    // Used up: a restart with the variable still set is a normal start.
    running[0].signal(Signal::SIGTERM);
    assert_eq!(running[0].wait_exit(Duration::from_secs(120)), Some(0));
    running[0] = start(&nodes[0], &forced);
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[..2], &refs);
    let log = running[0].log();
    assert!(
        log.contains("FORCE_BOOTSTRAP=yes was used once already"),
        "{log}"
    );
    assert_eq!(bootstraps(&running[0]), 0, "{log}");
}

/// Schedule 4: two of three nodes are killed, and the survivor drops to non-Primary. When
/// every member of its last view is back and not ahead of it, it restores the Primary
/// component itself with pc.bootstrap, without a restart.
#[test]
fn a_survivor_restores_the_primary_component_with_pc_bootstrap() {
    let mut lab = Lab::new("survsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs = addrs_of(&nodes);
    let env = env(&lab);
    write_rows(addrs[0], 0, 5);
    running[2].signal(Signal::SIGKILL);
    running[2].wait_exit(Duration::from_secs(30)).unwrap();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[..2], &refs);
    write_rows(addrs[0], 5, 10);
    running[1].signal(Signal::SIGKILL);
    running[1].wait_exit(Duration::from_secs(30)).unwrap();
    assert!(
        wait_until(FORM, || local_status(&running[0], "wsrep_cluster_status")
            .as_deref()
            == Some("non-Primary")),
        "the survivor should lose its Primary component"
    );
    let server = running[0].mariadbd_pid();

    for i in 1..3 {
        running[i] = start(&nodes[i], &env);
    }
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    let log = running[0].log();
    assert!(
        log.contains("restoring the Primary component with pc.bootstrap"),
        "{log}"
    );
    assert_eq!(
        running[0].mariadbd_pid(),
        server,
        "the survivor kept running"
    );
    for r in &running[1..] {
        assert_eq!(bootstraps(r), 0, "{}", r.log());
    }
    assert_rows_everywhere(&addrs, 0..10);
}

/// The operator's override acts without a restart: `galera-init bootstrap` run in a survivor
/// whose peers are gone for good restores its component with pc.bootstrap, and is used up.
#[test]
fn galera_init_bootstrap_restores_a_survivor_without_a_restart() {
    let mut lab = Lab::new("cmdsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs = addrs_of(&nodes);
    write_rows(addrs[0], 0, 10);
    for r in &running[1..] {
        r.signal(Signal::SIGKILL);
    }
    for r in &mut running[1..] {
        r.wait_exit(Duration::from_secs(30)).unwrap();
    }
    lab.set_dns(&addrs[..1]);
    let missing = volume_id(&nodes[1]);
    waits_for(addrs[0], &missing[..8], &running[0].log());
    let server = running[0].mariadbd_pid();

    let out = override_in(&lab, &running[0]);
    assert!(out.contains("override requested"), "{out}");
    assert!(
        wait_synced(addrs[0], USER, PASS, 1, FORM),
        "{}",
        running[0].log()
    );
    assert_eq!(running[0].mariadbd_pid(), server, "no restart");
    assert!(running[0].log().contains("MANUAL OVERRIDE"));
    assert!(
        wait_until(Duration::from_secs(10), || !nodes[0]
            .data_dir()
            .join("force-bootstrap")
            .exists()),
        "the override is used up"
    );
    assert_rows_everywhere(&addrs[..1], 0..10);
}

/// Schedule 5: an operator restarted the cluster from an older node; a node with more
/// history comes back. It is never sent to join (Galera would refuse it, or an SST would wipe
/// it): it waits, keeps its data, and says why.
#[test]
fn a_node_ahead_of_the_running_cluster_waits_and_keeps_its_data() {
    let mut lab = Lab::new("aheadsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs = addrs_of(&nodes);
    let env = env(&lab);
    write_rows(addrs[0], 0, 5);
    running[0].signal(Signal::SIGKILL);
    running[0].wait_exit(Duration::from_secs(30)).unwrap();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[1..], &refs);
    write_rows(addrs[1], 5, 15);
    power_cut(&mut running[1..]);

    // Only the stale node is back; the operator restarts the cluster from it.
    lab.set_dns(&addrs[..1]);
    let r1 = start(&nodes[0], &env);
    waits_for(addrs[0], "volume", &r1.log());
    override_in(&lab, &r1);
    assert!(wait_synced(addrs[0], USER, PASS, 1, FORM), "{}", r1.log());
    write_rows(addrs[0], 100, 101);

    // The node with more history comes back.
    let grastate = std::fs::read(nodes[1].data_dir().join("grastate.dat")).unwrap();
    lab.set_dns(&addrs[..2]);
    let r2 = start(&nodes[1], &env);
    let state = waits_for(addrs[1], "transaction", &r2.log());
    assert_eq!(state["superseded"], true, "{state}");
    let log = r2.log();
    assert!(
        log.contains("ahead of the running Primary component") || log.contains("diverged"),
        "{log}"
    );
    assert!(
        log.contains("empty this volume"),
        "it says what to do: {log}"
    );
    assert!(
        !wait_until(Duration::from_secs(15), || r2
            .log()
            .contains("decision: join")),
        "{}",
        r2.log()
    );
    assert_eq!(
        std::fs::read(nodes[1].data_dir().join("grastate.dat")).unwrap(),
        grastate,
        "its data is kept"
    );
    assert!(r2.mariadbd_pid().is_none(), "no server, no SST");
}

/// Schedule 6: a bootstrap that never reaches a Primary component (here mariadbd cannot
/// start) leaves no `safe_to_bootstrap: 1` behind: galera-init wrote it for that bootstrap
/// only.
#[test]
fn a_bootstrap_that_never_reaches_primary_leaves_no_flag() {
    let mut lab = Lab::new("flagsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs = addrs_of(&nodes);
    write_rows(addrs[0], 0, 5);
    power_cut(&mut running);
    lab.set_dns(&addrs[1..2]);
    let forced = with(&env(&lab), &[("FORCE_BOOTSTRAP", "yes")]);
    let mut r = start_args(&nodes[1], &forced, &["--no-such-option"]);
    let code = r.wait_exit(FORM);
    assert!(matches!(code, Some(c) if c != 0), "{code:?}\n{}", r.log());
    let log = r.log();
    assert!(log.contains("set safe_to_bootstrap: 1"), "{log}");
    assert!(log.contains("cleared safe_to_bootstrap"), "{log}");
    let grastate = std::fs::read_to_string(nodes[1].data_dir().join("grastate.dat")).unwrap();
    assert!(grastate.contains("safe_to_bootstrap: 0"), "{grastate}");
    let record = std::fs::read_to_string(nodes[1].data_dir().join("galera-init.json")).unwrap();
    assert!(record.contains("\"pending\": null"), "{record}");
}

/// A joiner's record is on disk before its SST and the SST keeps it: the moment the cluster
/// is up, every node's volume holds the volume id the others know it by (a crash right
/// after the transfer must not turn it into a stranger they wait for).
#[test]
fn every_volume_keeps_its_record_through_the_sst() {
    let mut lab = Lab::new("recsvc");
    let (nodes, _running, _) = cold_start(&mut lab);
    for n in &nodes {
        let served = node_state(n.addr).unwrap_or_default();
        assert!(
            n.data_dir().join("galera-init.json").exists(),
            "{}: no record on disk",
            n.hostname
        );
        assert_eq!(
            served["volume_id"].as_str(),
            Some(volume_id(n).as_str()),
            "{}: {served}",
            n.hostname
        );
    }
}
