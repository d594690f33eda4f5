//! Eviction on proof (issue 18), on real mariadbd: a member whose death is proven leaves the
//! component at once; a member that is only silent is left to Galera.
//!
//! Each test writes continuously to a survivor and checks what a client sees: every
//! acknowledged write is on every node afterwards, and the longest stretch without an
//! acknowledged write stays below Galera's own `evs.suspect_timeout` (5 s), which is what a
//! survivor would wait without the eviction (the figures are in `scripts/bench`).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Lab, Running, wait_synced, wait_until};

/// Galera's `evs.suspect_timeout`: what the survivors wait without an eviction.
const SUSPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Every row in `acked` is on every node of `addrs`.
fn assert_kept(addrs: &[Ipv4Addr], acked: &[i64]) {
    for a in addrs {
        let have = rows(*a).unwrap_or_else(|| panic!("{a} answers"));
        let lost: Vec<&i64> = acked.iter().filter(|id| !have.contains(id)).collect();
        assert!(
            lost.is_empty(),
            "{a} lost {} acknowledged row(s): {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
    }
}

/// The gcomm UUID a running node reports on `/state`.
fn gcomm_uuid(addr: Ipv4Addr) -> String {
    let mut uuid = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            uuid = node_state(addr).and_then(|s| s["wsrep_gcomm_uuid"].as_str().map(String::from));
            uuid.is_some()
        }),
        "{addr} reports its gcomm UUID"
    );
    uuid.unwrap()
}

/// Waits until every node of `addrs` but `victim` has heard `victim` report its gcomm
/// UUID (`uuid`) in a health round: what a survivor evicts once it is proven dead.
fn heard_by_all(addrs: &[Ipv4Addr], victim: Ipv4Addr, uuid: &str) {
    for a in addrs.iter().filter(|a| **a != victim) {
        let heard = wait_until(Duration::from_secs(30), || {
            http(*a, "/status").is_some_and(|(_, body)| {
                serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|st| {
                    st["peers"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| {
                            p["address"] == victim.to_string()
                                && p["state"]["wsrep_gcomm_uuid"] == uuid
                        })
                    })
                })
            })
        });
        assert!(heard, "{a} heard {victim}'s gcomm UUID");
    }
}

/// The survivors (their places in `survivors`) that evicted `uuid` for `proof` (the words
/// of their log line): at least one, within 10 s (the first of the other members at once,
/// the others only as a backup); the survivors' component is then theirs alone.
fn evicted_by(survivors: &[Running], uuid: &str, proof: &str) -> Vec<usize> {
    let line = |r: &Running| {
        r.log()
            .lines()
            .any(|l| l.contains("evicted") && l.contains(uuid) && l.contains(proof))
    };
    assert!(
        wait_until(Duration::from_secs(10), || survivors.iter().any(line)),
        "a survivor evicted {uuid} ({proof}):\n{}",
        survivors
            .iter()
            .map(|r| r.log())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let evictors: Vec<usize> = (0..survivors.len())
        .filter(|i| line(&survivors[*i]))
        .collect();
    for r in survivors {
        assert!(
            wait_until(Duration::from_secs(10), || {
                local_status(r, "wsrep_cluster_size")
                    .is_some_and(|n| n == survivors.len().to_string())
            }),
            "{uuid} left the survivors' component"
        );
    }
    evictors
}

/// Whether `r`'s server has `uuid` on its eviction list.
fn evict_list_has(r: &Running, uuid: &str) -> bool {
    local_status(r, "wsrep_evs_evict_list").is_some_and(|l| l.contains(uuid))
}

/// A member's mariadbd dies (SIGKILL, as the OOM killer does) while its galera-init lives:
/// its galera-init tells the survivors, which evict its gcomm UUID at once. No write is
/// lost, the client's pause stays below Galera's own suspicion, and the node's next start
/// (its galera-init exits with mariadbd's code; the orchestrator starts it again) joins
/// with a new UUID; the survivors then clear their eviction lists.
#[test]
fn a_server_that_died_is_evicted_on_its_own_nodes_word() {
    let mut lab = Lab::new("evictsvc");
    let env = env(&lab);
    let (nodes, mut running, _) = cold_start_with(&mut lab, &env);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    all_synced(&addrs);
    let dead = gcomm_uuid(addrs[0]);
    heard_by_all(&addrs, addrs[0], &dead);
    let writes = Writes::start(addrs[1]);
    let server = running[0].mariadbd_pid().expect("mariadbd runs");
    let fault = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server), Signal::SIGKILL).unwrap();
    assert!(
        writes.more(50, Duration::from_secs(30)),
        "writes go on after the kill"
    );
    assert!(
        running[0].wait_log("that its gcomm UUID", Duration::from_secs(10)),
        "node 1 told its peers:\n{}",
        running[0].log()
    );
    let evictors = evicted_by(
        &running[1..],
        &dead,
        "its galera-init saw its mariadbd exit",
    );
    let (acked, pause) = writes.stop(fault);
    assert!(
        pause < SUSPECT_TIMEOUT,
        "the survivors did not wait for Galera's suspicion: the longest pause was {pause:?}"
    );
    assert!(running[0].wait_exit(Duration::from_secs(60)).is_some());
    running[0] = start(&nodes[0], &env);
    for a in &addrs {
        assert!(
            wait_synced(*a, USER, PASS, 3, FORM),
            "{a} Synced in a cluster of three"
        );
    }
    assert_ne!(gcomm_uuid(addrs[0]), dead, "the next start has a new UUID");
    // Every survivor's list is empty again (the evictor's, and a list that Galera filled
    // from the evictor's messages), so the old UUID cannot linger.
    for r in evictors.iter().map(|i| &running[1 + i]) {
        assert!(
            r.wait_log("its eviction list is cleared", Duration::from_secs(30)),
            "the survivor cleared its list once node 1 was out:\n{}",
            r.log()
        );
    }
    for r in &running[1..] {
        assert!(
            wait_until(Duration::from_secs(10), || !evict_list_has(r, &dead)),
            "{dead} is still on a survivor's eviction list:\n{}",
            r.log()
        );
    }
    assert_kept(&addrs, &acked);

    // The same node, started again, then lost whole: its new UUID is the one evicted, and
    // the first eviction leaves nothing behind that makes this one wait for Galera's
    // suspicion (a UUID kept on a list did: 5.3 s, see evict::clear_list).
    let again = gcomm_uuid(addrs[0]);
    heard_by_all(&addrs, addrs[0], &again);
    let writes = Writes::start_from(addrs[1], 2_000_000);
    let fault = Instant::now();
    running[0].signal(Signal::SIGKILL);
    assert!(running[0].wait_exit(Duration::from_secs(30)).is_some());
    assert!(
        writes.more(50, Duration::from_secs(30)),
        "writes go on after the second kill"
    );
    evicted_by(&running[1..], &again, "nothing listens at its address");
    let (acked, pause) = writes.stop(fault);
    assert!(
        pause < SUSPECT_TIMEOUT,
        "the second eviction waited for Galera's suspicion: the longest pause was {pause:?}"
    );
    assert_kept(&addrs[1..], &acked);
}

/// A whole node dies (its PID 1 SIGKILLed; its address stays, as a host's would): nothing
/// listens there, so the survivors evict it without waiting for Galera's suspicion.
#[test]
fn a_node_where_nothing_listens_is_evicted() {
    let mut lab = Lab::new("gonesvc");
    let env = env(&lab);
    let (nodes, mut running, _) = cold_start_with(&mut lab, &env);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    all_synced(&addrs);
    let dead = gcomm_uuid(addrs[2]);
    heard_by_all(&addrs, addrs[2], &dead);
    let writes = Writes::start(addrs[0]);
    let fault = Instant::now();
    running[2].signal(Signal::SIGKILL);
    assert!(running[2].wait_exit(Duration::from_secs(30)).is_some());
    assert!(
        writes.more(50, Duration::from_secs(30)),
        "writes go on after the kill"
    );
    evicted_by(&running[..2], &dead, "nothing listens at its address");
    let (acked, pause) = writes.stop(fault);
    assert!(
        pause < SUSPECT_TIMEOUT,
        "the survivors did not wait for Galera's suspicion: the longest pause was {pause:?}"
    );
    assert_kept(&addrs[..2], &acked);
}

/// A member's mariadbd frozen for 3 s (SIGSTOP, then SIGCONT), shorter than Galera's
/// suspicion: its galera-init and its ports are there, so nothing is proven and nothing is
/// evicted. Writes pause and resume; no SST, no restart, no write lost.
#[test]
fn a_frozen_server_is_not_evicted() {
    let mut lab = Lab::new("frozensvc");
    let env = env(&lab);
    let (nodes, running, _) = cold_start_with(&mut lab, &env);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    all_synced(&addrs);
    let writes = Writes::start(addrs[1]);
    let server = running[0].mariadbd_pid().expect("mariadbd runs");
    let pid = nix::unistd::Pid::from_raw(server);
    let before = running[0].log().len();
    let fault = Instant::now();
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    // The health rounds of both survivors run several times meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    assert!(
        writes.more(100, Duration::from_secs(30)),
        "writes resume after the freeze"
    );
    let (acked, _) = writes.stop(fault);
    for a in &addrs {
        assert!(
            wait_synced(*a, USER, PASS, 3, FORM),
            "{a} Synced in a cluster of three"
        );
    }
    assert_eq!(
        running[0].mariadbd_pid(),
        Some(server),
        "mariadbd was not restarted"
    );
    for r in &running {
        let log = r.log();
        assert!(!log.contains("evicted"), "nothing is evicted:\n{log}");
        assert!(
            local_status(r, "wsrep_evs_evict_list").is_none_or(|l| l.is_empty()),
            "no eviction list"
        );
    }
    let since = running[0].log()[before..].to_lowercase();
    assert!(
        !since.contains("state transfer"),
        "the frozen node took no state transfer:\n{since}"
    );
    assert_kept(&addrs, &acked);
}
