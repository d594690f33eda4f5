//! Clients of the service name, with no proxy (issue 18): Swarm lists a task under the
//! service's name once its health check passes, and galera-init's check passes on purpose
//! while a node waits, receives a state transfer or catches up (so Swarm does not kill it).
//! A client that lands there must be refused, saying why, never answered from a node that
//! is not Synced.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Lab, connect, wait_until};

/// What a client reading from one node got.
#[derive(Debug, Default, Clone)]
struct Reads {
    /// Answered by a Synced node, with every write acknowledged before the read.
    fresh: usize,
    /// Answered by a Synced node, missing a write acknowledged before the read.
    stale: usize,
    /// Answered by a node that was not Synced (its state, read by the same statement).
    not_synced: Vec<String>,
    /// Refused: each reason and how often.
    refused: BTreeMap<String, usize>,
}

/// A client of the service name that has landed on `addr`: every 20 ms it connects, asks
/// for causal reads (`wsrep_sync_wait=1`, as the README advises), and reads the last id
/// together with the node's state.
fn spawn_reader(
    addr: Ipv4Addr,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicI64>,
    out: Arc<Mutex<Reads>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let before = acked.load(Ordering::SeqCst);
            let got = connect(addr, USER, PASS).and_then(|mut c| {
                c.query_drop("SET SESSION wsrep_sync_wait = 1")?;
                // The node's state is read by the statement that reads the data: the state
                // the read was answered in (two statements around it would bracket a
                // Joined -> Synced change that happened before the read).
                let got = c.query_first::<(i64, String), _>(format!(
                    "SELECT COALESCE(MAX(id), 0), (SELECT VARIABLE_VALUE FROM \
                     information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = \
                     'WSREP_LOCAL_STATE_COMMENT') FROM {DB}.acked"
                ))?;
                let (last_id, state) = got.unwrap_or_default();
                Ok((last_id, state))
            });
            let mut r = out.lock().unwrap();
            match got {
                Ok((_, state)) if state != "Synced" => r.not_synced.push(state),
                Ok((id, _)) if id >= before => r.fresh += 1,
                Ok(_) => r.stale += 1,
                Err(e) => {
                    let why = match e {
                        mysql::Error::MySqlError(e) => format!("{} {}", e.code, e.message),
                        mysql::Error::DriverError(_) | mysql::Error::IoError(_) => {
                            "cannot connect (nothing listens on 3306 yet)".to_string()
                        }
                        other => other.to_string(),
                    };
                    *r.refused.entry(why).or_default() += 1;
                }
            }
            drop(r);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Reads from `addr` while `join` runs, and for 2 s after every node of `all` is Synced.
fn reads_during(
    addr: Ipv4Addr,
    all: &[Ipv4Addr],
    acked: &Arc<AtomicI64>,
    join: impl FnOnce(),
) -> Reads {
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Reads::default()));
    let reader = spawn_reader(addr, stop.clone(), acked.clone(), out.clone());
    join();
    all_synced(all);
    let synced = out.lock().unwrap().fresh;
    assert!(
        wait_until(Duration::from_secs(10), || out.lock().unwrap().fresh
            >= synced + 20),
        "the client reads from the node once it is Synced"
    );
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    out.lock().unwrap().clone()
}

/// A node that rejoins by IST, then a new node that joins by SST, then every node after a
/// power cut, while a client of the service name reads from it: the client is refused
/// (nothing listens yet, or MariaDB's own "WSREP has not yet prepared node for application
/// use") until the node is Synced, never answered by it before, and its causal reads miss
/// no acknowledged write.
#[test]
fn a_joining_node_refuses_clients_until_it_is_synced() {
    let mut lab = Lab::new("readsvc");
    let env = env(&lab);
    let (nodes, mut running, _) = cold_start_with(&mut lab, &env);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    all_synced(&addrs);
    let writes = Writes::start(addrs[0]);
    let acked = writes.latest();

    running[2].signal(Signal::SIGTERM);
    assert!(running[2].wait_exit(Duration::from_secs(60)).is_some());
    let ist = reads_during(addrs[2], &addrs, &acked, || {
        running[2] = start(&nodes[2], &env);
    });
    assert!(
        running[2].log().contains("IST received"),
        "node 3 rejoined by IST:\n{}",
        running[2].log()
    );

    let fourth = lab.node(4);
    let mut all = addrs.clone();
    all.push(fourth.addr);
    lab.set_dns(&all);
    let sst = reads_during(fourth.addr, &all, &acked, || {
        running.push(start(&fourth, &env));
    });
    let (written, _) = writes.stop(std::time::Instant::now());

    // A power cut of all four, then all started again: Galera's pc.recovery restores the
    // component. The client keeps reading from node 2 throughout.
    power_cut(&mut running);
    let outage = reads_during(addrs[1], &all, &acked, || {
        running = [&nodes[0], &nodes[1], &nodes[2], &fourth]
            .iter()
            .map(|n| start(n, &env))
            .collect();
    });
    for a in &all {
        let have = rows(*a).expect("the node answers");
        let lost: Vec<&i64> = written
            .iter()
            .filter(|id| have.binary_search(id).is_err())
            .collect();
        assert!(lost.is_empty(), "{a} lost acknowledged rows {lost:?}");
    }

    for (how, r) in [
        ("IST rejoin", &ist),
        ("SST join", &sst),
        ("outage recovery", &outage),
    ] {
        eprintln!("{how}: {r:?}");
        assert!(
            r.not_synced.is_empty(),
            "{how}: answered while not Synced: {:?}",
            r.not_synced
        );
        assert_eq!(r.stale, 0, "{how}: a causal read missed a write: {r:?}");
        assert!(
            r.refused.values().sum::<usize>() > 0,
            "{how}: the client met the node before it was Synced: {r:?}"
        );
    }
}
