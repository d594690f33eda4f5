//! Clusters of three or more nodes in the namespace lab, with faults injected: the cases
//! where other images bootstrap twice, lose acknowledged writes or never heal.

use std::net::Ipv4Addr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Lab, Node, Running, status_var, wait_until};

#[test]
fn simultaneous_cold_start_forms_exactly_one_cluster() {
    for round in 1..=3 {
        let mut lab = Lab::new("coldsvc");
        let (_, running, took) = cold_start(&mut lab);
        eprintln!(
            "round {round}: simultaneous start to 3 Synced nodes in {:.1}s",
            took.as_secs_f32()
        );
        let refs: Vec<&Running> = running.iter().collect();
        // The lowest address built its datadir while the election settled.
        assert!(
            running[0]
                .log()
                .contains("initialising its datadir while the election settles"),
            "{}",
            logs(&refs)
        );
        for r in &running[1..] {
            // A fresh cluster's data is small: rsync (SST_METHOD=auto), both joiners at
            // once; no proxy was told the donor serves, so no drain wait.
            assert_eq!(
                config_value(r, "wsrep_sst_method").as_deref(),
                Some("rsync"),
                "{}",
                logs(&refs)
            );
            assert!(
                r.log()
                    .contains("no proxy was told it serves: starting at once"),
                "{}",
                logs(&refs)
            );
        }
        drop(running);
    }
}

/// The node with the lowest address of a fresh cluster builds its datadir while the
/// election settles; when a lower address appears meanwhile, it is not the seed after all:
/// it clears what it built (it never was data) and joins by SST.
#[test]
fn a_prepared_seed_that_is_outranked_clears_its_datadir_and_joins() {
    let mut lab = Lab::new("outranksvc");
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let env = env(&lab);
    lab.set_dns(&addrs[1..]);
    let n2 = start(&nodes[1], &env);
    let n3 = start(&nodes[2], &env);
    assert!(
        n2.wait_log("initialising its datadir while the election settles", FORM),
        "{}",
        n2.log()
    );
    // A lower address shows up while node2 is still building.
    lab.set_dns(&addrs);
    let n1 = start(&nodes[0], &env);
    let refs = [&n1, &n2, &n3];
    assert_one_cluster(&addrs, &refs);
    assert_eq!(bootstraps(&n1), 1, "{}", logs(&refs));
    assert_eq!(bootstraps(&n2) + bootstraps(&n3), 0, "{}", logs(&refs));
    assert!(n2.log().contains("decision: join"), "{}", n2.log());
    // What node2 built was replaced by node1's data: node1's accounts, one history.
    write_rows(addrs[1], 0, 3);
    assert_rows_everywhere(&addrs, 0..3);
    assert_eq!(
        status_var(addrs[1], USER, PASS, "wsrep_cluster_state_uuid"),
        status_var(addrs[0], USER, PASS, "wsrep_cluster_state_uuid")
    );
}

/// The README's walk-through: one seed, then DNS lists three and two more nodes join by SST.
#[test]
fn seed_walkthrough_scales_to_three() {
    let mut lab = Lab::new("seedsvc");
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let env = env(&lab);
    lab.set_dns(&addrs[..1]);
    let seed = start(&nodes[0], &env);
    assert_one_cluster(&addrs[..1], &[&seed]);
    write_rows(addrs[0], 0, 10);

    // docker service scale mysqldbcluster=3
    lab.set_dns(&addrs);
    let n2 = start(&nodes[1], &env);
    let n3 = start(&nodes[2], &env);
    let uuid = assert_one_cluster(&addrs, &[&seed, &n2, &n3]);
    for r in [&n2, &n3] {
        assert!(r.log().contains("decision: join"), "{}", r.log());
        assert_eq!(bootstraps(r), 0);
    }
    // A row written on one node is read on the others.
    sql(addrs[0], &format!("INSERT INTO {DB}.acked VALUES (100)"));
    for a in &addrs {
        assert_eq!(rows(*a).unwrap().len(), 11, "{a}");
    }
    sql(addrs[2], &format!("INSERT INTO {DB}.acked VALUES (101)"));
    assert!(rows(addrs[0]).unwrap().contains(&101));
    assert_eq!(
        status_var(addrs[1], USER, PASS, "wsrep_cluster_state_uuid").unwrap(),
        uuid
    );
    // The state endpoint tells what the node is. Its status poller reads once a second, and
    // the node was a donor a moment ago: wait for a reading that shows it Synced.
    let synced = wait_until(Duration::from_secs(30), || {
        node_state(addrs[1]).is_some_and(|s| s["wsrep_local_state"] == 4)
    });
    let state = node_state(addrs[1]).unwrap();
    assert!(synced, "/state never showed Synced: {state}");
    assert_eq!(state["phase"], "running");
    assert_eq!(state["wsrep_cluster_status"], "Primary");
    assert_eq!(state["address"], addrs[1].to_string());
    assert!(
        state["volume_id"].as_str().is_some_and(|v| v.len() == 32),
        "{state}"
    );
}

/// SIGKILL to the writer's PID 1: the other two stay Primary and take writes; a replacement
/// with a new address and an empty volume joins, and the cluster is back to three.
#[test]
fn writer_killed_and_replaced() {
    let mut lab = Lab::new("killsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    write_rows(addrs[0], 0, 5);
    // The writer is the node a proxy picks: the one whose /master answers 200 (MaxScale's
    // galeramon rule, the lowest wsrep_local_index).
    let writer_among = |idx: &[usize]| -> Option<usize> {
        let w: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|i| code(addrs[*i], "/master") == 200)
            .collect();
        (w.len() == 1).then(|| w[0])
    };
    let mut writer = 0;
    assert!(
        wait_until(Duration::from_secs(20), || writer_among(&[0, 1, 2])
            .map(|w| writer = w)
            .is_some()),
        "one writer"
    );
    running[writer].signal(Signal::SIGKILL);
    // (unshare, the lab's stand-in for the container runtime, reports a SIGKILLed child as 1.)
    assert!(
        running[writer].wait_exit(Duration::from_secs(30)).is_some(),
        "the writer survived"
    );
    let survivors: Vec<Ipv4Addr> = (0..3).filter(|i| *i != writer).map(|i| addrs[i]).collect();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&survivors, &refs);
    write_rows(survivors[0], 5, 10);

    // The survivors' writer: the one the replacement must take its SST from last.
    let others: Vec<usize> = (0..3).filter(|i| *i != writer).collect();
    let mut new_writer = 0;
    assert!(
        wait_until(Duration::from_secs(30), || writer_among(&others)
            .map(|w| new_writer = w)
            .is_some()),
        "a new writer among the survivors"
    );

    // Donors Synced for a while come first (a node that has just received its own SST has
    // been seen to fail as a donor): let both survivors settle, so that the order is the
    // writer rule's alone.
    assert!(
        wait_until(Duration::from_secs(90), || survivors.iter().all(|a| {
            node_state(*a)
                .and_then(|s| s["synced_secs"].as_u64())
                .is_some_and(|t| t >= 30)
        })),
        "the survivors stay Synced"
    );

    // The orchestrator's replacement: new address, empty volume.
    let n4 = lab.node(4);
    let mut now: Vec<Ipv4Addr> = survivors.clone();
    now.push(n4.addr);
    lab.set_dns(&now);
    let r4 = start(&n4, &env(&lab));
    running.push(r4);
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&now, &refs);
    assert_eq!(bootstraps(&running[3]), 0, "{}", running[3].log());
    assert_eq!(rows(n4.addr).unwrap(), (0..10).collect::<Vec<i64>>());
    let cnf =
        std::fs::read_to_string(n4.etc_dir().join("mariadb.conf.d/99-galera-init.cnf")).unwrap();
    let donors = cnf
        .lines()
        .find_map(|l| l.strip_prefix("wsrep_sst_donor = "))
        .unwrap_or_else(|| panic!("no donor list:\n{cnf}"));
    let names: Vec<&str> = donors.split(',').filter(|n| !n.is_empty()).collect();
    assert_eq!(names.len(), 2, "{donors}");
    assert_eq!(
        names[1], nodes[new_writer].hostname,
        "the writer must be the last donor: {donors}"
    );
}

/// Each node in turn is stopped (SIGTERM) and restarted on its volume: it joins back by IST
/// and nothing written meanwhile is lost.
#[test]
fn rolling_restart_rejoins_by_ist() {
    let mut lab = Lab::new("rollsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let env = env(&lab);
    let mut next = 0;
    for i in 0..3 {
        running[i].signal(Signal::SIGTERM);
        assert_eq!(
            running[i].wait_exit(Duration::from_secs(120)),
            Some(0),
            "{}",
            running[i].log()
        );
        let other = addrs[(i + 1) % 3];
        write_rows(other, next, next + 20);
        next += 20;
        running[i] = start(&nodes[i], &env);
        let refs: Vec<&Running> = running.iter().collect();
        assert_one_cluster(&addrs, &refs);
        let log = running[i].log();
        assert!(log.contains("decision: join"), "{log}");
        assert!(
            log.contains("IST received"),
            "node {} did not rejoin by IST:\n{log}",
            i + 1
        );
        assert!(
            !log.contains("SST request"),
            "node {} needed an SST:\n{log}",
            i + 1
        );
        assert_eq!(rows(addrs[i]).unwrap(), (0..next).collect::<Vec<i64>>());
    }
}

/// Acknowledged rows, then every node is SIGKILLed at once and restarted: one cluster, every
/// row there. Galera's pc.recovery does it (all volumes intact).
#[test]
fn full_outage_all_killed_at_once() {
    let mut lab = Lab::new("outsvc");
    let (nodes, addrs) = outage_after_rows(&mut lab, 50);
    let uuid = grastate_uuid(&nodes[0]);
    let (running, t0) = start_all(&nodes, &env(&lab));
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    eprintln!(
        "full outage: last restart to Primary in {:.1}s",
        t0.elapsed().as_secs_f32()
    );
    assert_rows_everywhere(&addrs, 0..50);
    assert_history_kept(&uuid, &addrs, &refs);
}

/// A power cut that also cuts one node's grastate.dat short (Galera rewrites it in place)
/// and leaves another's gvwstate.dat unreadable: the first node reads its position from
/// InnoDB with a warning that names the file (keeping the damaged one), the second ignores
/// its saved view, and the cluster comes back with every row and its own history.
#[test]
fn full_outage_with_damaged_state_files() {
    let mut lab = Lab::new("dmgsvc");
    let (nodes, addrs) = outage_after_rows(&mut lab, 20);
    let uuid = grastate_uuid(&nodes[0]);
    let grastate = nodes[1].data_dir().join("grastate.dat");
    let text = std::fs::read_to_string(&grastate).unwrap();
    let cut = &text[..text.find("seqno").unwrap() + 6];
    std::fs::write(&grastate, cut).unwrap();
    std::fs::write(
        nodes[2].data_dir().join("gvwstate.dat"),
        "my_uuid: \u{0}\u{0}\n#vwbeg\n",
    )
    .unwrap();

    let (running, _) = start_all(&nodes, &env(&lab));
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert_rows_everywhere(&addrs, 0..20);
    assert_history_kept(&uuid, &addrs, &refs);
    let log = running[1].log();
    assert!(
        log.contains("grastate.dat cannot be parsed (the file is cut short")
            && log.contains("recovering the position from InnoDB instead")
            && log.contains("the damaged file is kept as"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(nodes[1].data_dir().join("grastate.dat.damaged")).unwrap(),
        cut
    );
    let log = running[2].log();
    assert!(
        log.contains("gvwstate.dat cannot be parsed: ignored"),
        "{log}"
    );
}

/// Killed one by one, writes in between: the first one killed is stale. Restarted together,
/// a node with the newest data leads and no acknowledged row is lost.
#[test]
fn full_outage_killed_one_by_one() {
    let mut lab = Lab::new("onebysvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    write_rows(addrs[2], 0, 10);
    running[0].signal(Signal::SIGKILL);
    running[0].wait_exit(Duration::from_secs(30)).unwrap();
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[1..], &refs);
    write_rows(addrs[2], 10, 30);
    running[1].signal(Signal::SIGKILL);
    running[1].wait_exit(Duration::from_secs(30)).unwrap();
    running[2].signal(Signal::SIGKILL);
    running[2].wait_exit(Duration::from_secs(30)).unwrap();

    let (running, t0) = start_all(&nodes, &env(&lab));
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    eprintln!(
        "killed one by one: restart to Primary in {:.1}s",
        t0.elapsed().as_secs_f32()
    );
    assert_eq!(
        bootstraps(&running[0]),
        0,
        "the stale node bootstrapped:\n{}",
        running[0].log()
    );
    assert_rows_everywhere(&addrs, 0..30);
}

/// A full outage where one node cannot come back (its mariadbd aborts on a bad option): the
/// two others still form one Primary component (through pc.recovery, or through the
/// election once pc.recovery has timed out), never two, and the third joins once fixed.
#[test]
fn full_outage_with_a_node_that_cannot_start() {
    let mut lab = Lab::new("brokensvc");
    let (nodes, addrs) = outage_after_rows(&mut lab, 25);
    let env = env(&lab);
    let mut broken = start_args(&nodes[2], &env, &["--no-such-option"]);
    let mut running: Vec<Running> = nodes[..2].iter().map(|n| start(n, &env)).collect();
    let code = broken.wait_exit(Duration::from_secs(60));
    assert!(
        matches!(code, Some(c) if c != 0),
        "{code:?}: {}",
        broken.log()
    );
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[..2], &refs);
    let bootstrapped: usize = running.iter().map(bootstraps).sum();
    assert!(bootstrapped <= 1, "{}", logs(&refs));

    running.push(start(&nodes[2], &env));
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert_rows_everywhere(&addrs, 0..25);
}

/// A full outage where every member of the saved view comes back and reports, so the nodes
/// leave the restore to Galera's pc.recovery, but one member's server never rejoins the group
/// (it runs without the Galera provider). pc.recovery cannot complete; after
/// PC_RECOVERY_TIMEOUT the nodes stop mariadbd cleanly and elect instead, and the two healthy
/// ones form one Primary component. The third joins once it runs normally again.
#[test]
fn pc_recovery_that_cannot_complete_falls_back_to_the_election() {
    let mut lab = Lab::new("pcfallsvc");
    let (nodes, addrs) = outage_after_rows(&mut lab, 15);
    let env = env(&lab);
    let mut running: Vec<Running> = nodes[..2].iter().map(|n| start(n, &env)).collect();
    running.push(start_args(&nodes[2], &env, &["--wsrep-provider=none"]));
    for r in &running {
        assert!(
            r.wait_log("pc.recovery restores it", FORM),
            "every member should first leave it to pc.recovery:\n{}",
            r.log()
        );
    }
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[..2], &refs);
    for r in &running[..2] {
        assert!(
            r.log()
                .contains("to let pc.recovery restore the saved view: stopping it"),
            "{}",
            r.log()
        );
    }
    let bootstrapped: usize = running.iter().map(bootstraps).sum();
    assert_eq!(bootstrapped, 1, "{}", logs(&refs));

    running[2].signal(Signal::SIGTERM);
    assert!(running[2].wait_exit(Duration::from_secs(120)).is_some());
    running[2] = start(&nodes[2], &env);
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert_rows_everywhere(&addrs, 0..15);
}

/// A full outage, then every node comes back with a new address (rescheduled tasks).
#[test]
fn full_outage_restart_with_new_addresses() {
    let mut lab = Lab::new("newipsvc");
    let (mut nodes, _) = outage_after_rows(&mut lab, 40);
    for (i, n) in nodes.iter_mut().enumerate() {
        n.readdress(&lab, 7 + i as u32);
    }
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    lab.set_dns(&addrs);
    let (running, t0) = start_all(&nodes, &env(&lab));
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    eprintln!(
        "new addresses: restart to Primary in {:.1}s",
        t0.elapsed().as_secs_f32()
    );
    assert_rows_everywhere(&addrs, 0..40);
}

/// A node started while DNS does not list it waits; once listed it joins the running
/// cluster and never bootstraps a second one beside it.
#[test]
fn dns_not_ready_waits_then_joins() {
    let mut lab = Lab::new("dnssvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let mut addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let n4 = lab.node(4);
    let r4 = start(&n4, &env(&lab));
    assert!(
        r4.wait_log("DNS not ready", Duration::from_secs(30)),
        "{}",
        r4.log()
    );
    addrs.push(n4.addr);
    lab.set_dns(&addrs);
    running.push(r4);
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    assert_eq!(bootstraps(&running[3]), 0, "{}", running[3].log());
}

/// A node cut off from the others does not bootstrap a new cluster, neither while cut off
/// (even restarted) nor when it comes back: it rejoins the one cluster.
#[test]
fn partitioned_node_never_bootstraps() {
    let mut lab = Lab::new("partsvc");
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let uuid = status_var(addrs[0], USER, PASS, "wsrep_cluster_state_uuid").unwrap();
    nodes[2].link_down();
    assert!(
        wait_until(FORM, || local_status(&running[2], "wsrep_cluster_status")
            .as_deref()
            == Some("non-Primary")),
        "the cut-off node should lose its Primary component"
    );
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs[..2], &refs);
    write_rows(addrs[0], 0, 10);

    // Restarted while cut off: DNS is out of reach, so it waits, and never bootstraps.
    running[2].signal(Signal::SIGKILL);
    running[2].wait_exit(Duration::from_secs(30)).unwrap();
    running[2] = start(&nodes[2], &env(&lab));
    assert!(
        running[2].wait_log("DNS not ready", Duration::from_secs(60)),
        "{}",
        running[2].log()
    );
    assert_eq!(bootstraps(&running[2]), 0);

    nodes[2].link_up();
    let refs: Vec<&Running> = running.iter().collect();
    assert_eq!(assert_one_cluster(&addrs, &refs), uuid);
    assert_eq!(bootstraps(&running[2]), 0, "{}", running[2].log());
    assert_eq!(rows(addrs[2]).unwrap(), (0..10).collect::<Vec<i64>>());
}

/// With a cluster key, a node trusts only the reports signed with it. A node in DNS with
/// another key is unknown to the others (never absent): the fresh cluster waits for it,
/// and nobody bootstraps. With the right key, the same node forms one cluster with them.
#[test]
fn a_cluster_key_admits_only_the_nodes_that_hold_it() {
    let mut lab = Lab::new("keysvc");
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let secret = |name: &str, key: &str| {
        let path = lab.dir.join(name);
        std::fs::write(&path, format!("{key}\n")).unwrap();
        path.display().to_string()
    };
    let key = secret("cluster-key", "the-cluster-key-of-keysvc");
    let wrong = secret("wrong-key", "a-key-of-another-cluster");
    let env = env(&lab);
    let keyed = with(&env, &[("CLUSTER_KEY_FILE", &key)]);
    let stranger = with(&env, &[("CLUSTER_KEY_FILE", &wrong)]);
    lab.set_dns(&addrs);
    let n1 = start(&nodes[0], &keyed);
    let n2 = start(&nodes[1], &keyed);
    let mut n3 = start(&nodes[2], &stranger);

    let n3_addr = addrs[2].to_string();
    let unusable = format!("{n3_addr} answered its state with something unusable");
    for r in [&n1, &n2] {
        assert!(
            r.wait_log(&unusable, Duration::from_secs(30)),
            "{}",
            r.log()
        );
    }
    // Each side says why: the stranger does not accept the keyed nodes' signatures, and
    // they do not accept its.
    for r in [&n1, &n2, &n3] {
        assert!(
            r.wait_log(
                "it does not accept this node's signature: wrong signature (another cluster key?)",
                Duration::from_secs(30)
            ),
            "{}",
            r.log()
        );
    }
    // Both keyed nodes wait for the node they cannot trust.
    for a in &addrs[..2] {
        let waits = wait_until(Duration::from_secs(30), || {
            node_state(*a).is_some_and(|s| s["waiting_for"].to_string().contains(&n3_addr))
        });
        assert!(
            waits,
            "{a} does not wait for {n3_addr}: {:?}",
            node_state(*a)
        );
    }
    let all = [&n1, &n2, &n3];
    assert_eq!(
        all.iter().map(|r| bootstraps(r)).sum::<usize>(),
        0,
        "{}",
        logs(&all)
    );

    // The stranger stops (a stop signal ends its start-up: 128+15); started again with
    // the cluster's key, it is one of them.
    n3.signal(Signal::SIGTERM);
    assert_eq!(
        n3.wait_exit(Duration::from_secs(60)),
        Some(143),
        "{}",
        n3.log()
    );
    let n3 = start(&nodes[2], &keyed);
    let all = [&n1, &n2, &n3];
    assert_one_cluster(&addrs, &all);
    assert_eq!(
        all.iter().map(|r| bootstraps(r)).sum::<usize>(),
        1,
        "{}",
        logs(&all)
    );
    // Both joiners reserved their donor with a signed request and took its signed answer.
    let reserved = all
        .iter()
        .filter(|r| r.log().contains("donor, to leave the read pool"))
        .count();
    assert_eq!(reserved, 2, "{}", logs(&all));
    assert!(!logs(&all).contains("cannot reserve"), "{}", logs(&all));
}
