//! A real HAProxy in front of a three-node lab cluster, configured from
//! examples/proxy/haproxy.cfg (with the lab's DNS server, service name and ports): a client
//! writes continuously through the write port while the writer is killed, then drained with
//! SIGTERM; the longest failed window of each is measured; a reader checks that every read
//! lands on a Synced node; and two nodes never answer `/master` with 200 at once.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Haproxy, Lab, Running, wait_until};

const WRITE_PORT: u16 = 13306;
const READ_PORT: u16 = 13307;

fn through(port: u16) -> mysql::Result<mysql::Conn> {
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(port)
        .user(Some(USER))
        .pass(Some(PASS))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(1)))
        .read_timeout(Some(Duration::from_secs(3)))
        .write_timeout(Some(Duration::from_secs(3)));
    mysql::Conn::new(opts)
}

/// One write through the proxy: when, and on which node (`None`: it failed).
type Write = (Instant, Option<String>);

/// Writes one row every 50 ms through the write port until `stop`, reconnecting after
/// every failure.
fn writer(stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Write>>>) {
    let mut conn: Option<mysql::Conn> = None;
    let mut i: i64 = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        if conn.is_none() {
            conn = through(WRITE_PORT).ok();
        }
        let node = conn.as_mut().and_then(|c| {
            c.query_drop(format!("INSERT INTO {DB}.proxied VALUES ({i}, @@hostname)"))
                .ok()?;
            c.query_first::<String, _>("SELECT @@hostname").ok()?
        });
        if node.is_none() {
            conn = None;
        }
        log.lock().unwrap().push((Instant::now(), node));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads every 50 ms through the read port, each on a new connection, until `stop`;
/// returns the reads that reached a node that was not Synced, and the number of reads.
fn reader(stop: Arc<AtomicBool>, t0: Instant) -> (Vec<String>, usize) {
    let mut bad = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        if let Ok(mut c) = through(READ_PORT) {
            let r: Option<(String, String)> = c
                .query_first(
                    "SELECT @@hostname, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                     WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'",
                )
                .ok()
                .flatten();
            if let Some((host, state)) = r {
                n += 1;
                if state != "4" {
                    bad.push(format!(
                        "{:.2}s {host}: wsrep_local_state {state}",
                        t0.elapsed().as_secs_f32()
                    ));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (bad, n)
}

/// Polls `/master` on every node until `stop`; returns how many rounds saw two 200s.
fn master_watch(addrs: Vec<Ipv4Addr>, stop: Arc<AtomicBool>) -> usize {
    let mut both = 0;
    while !stop.load(Ordering::SeqCst) {
        let n = addrs.iter().filter(|a| code(**a, "/master") == 200).count();
        if n > 1 {
            both += 1;
            if both == 1 {
                for a in &addrs {
                    let st = http(*a, "/status").map(|(_, b)| b).unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(&st).unwrap_or_default();
                    eprintln!(
                        "two writers: {a}: writer {} index {} incoming {} conf {} peers {}",
                        v["writer"],
                        v["node"]["wsrep_local_index"],
                        v["node"]["wsrep_incoming_addresses"],
                        v["node"]["wsrep_cluster_conf_id"],
                        v["peers"]
                            .as_array()
                            .map(|p| p
                                .iter()
                                .map(|p| format!(
                                    "{}:{}:{}",
                                    p["address"],
                                    p["state"]["wsrep_local_state"],
                                    p["state"]["wsrep_cluster_conf_id"]
                                ))
                                .collect::<Vec<_>>()
                                .join(","))
                            .unwrap_or_default()
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    both
}

/// What the writes, the nodes' `/master` and HAProxy said, for a failure message.
fn diag(log: &Arc<Mutex<Vec<Write>>>, running: &[Running], lab: &Lab) -> String {
    let log = log.lock().unwrap();
    let t0 = log.first().map(|(t, _)| *t);
    let writes: Vec<String> = log
        .iter()
        .rev()
        .take(40)
        .map(|(t, n)| {
            format!(
                "{:.2}s {}",
                t0.map_or(0.0, |t0| t.saturating_duration_since(t0).as_secs_f32()),
                n.as_deref().unwrap_or("FAILED")
            )
        })
        .collect();
    let masters: Vec<String> = running
        .iter()
        .map(|r| format!("{}: {:?}", r.node.hostname, http(r.node.addr, "/master")))
        .collect();
    format!(
        "last writes (newest first): {writes:?}\n/master: {masters:?}\nhaproxy:\n{}",
        std::fs::read_to_string(lab.dir.join("haproxy.log")).unwrap_or_default()
    )
}

/// The writer among `running`: the node whose `/master` answers 200.
fn current_writer(running: &[Running]) -> Option<usize> {
    let w: Vec<usize> = (0..running.len())
        .filter(|i| code(running[*i].node.addr, "/master") == 200)
        .collect();
    (w.len() == 1).then(|| w[0])
}

/// The longest time without a successful write from `from` on, and the node that took
/// the first write after it.
fn failed_window(log: &[Write], from: Instant) -> (Duration, Option<String>) {
    let mut last_ok = from;
    let mut longest = Duration::ZERO;
    let mut after = None;
    for (t, node) in log.iter().filter(|(t, _)| *t >= from) {
        if let Some(n) = node {
            let gap = t.saturating_duration_since(last_ok);
            if gap > longest {
                longest = gap;
                after = Some(n.clone());
            }
            last_ok = *t;
        }
    }
    (longest, after)
}

/// Waits until the writes through the proxy made after `since` have succeeded on one node
/// for `stable` in a row, and returns that node's name.
fn wait_writes_settle(
    log: &Arc<Mutex<Vec<Write>>>,
    stable: Duration,
    since: Instant,
) -> Option<String> {
    let mut name = None;
    let ok = wait_until(FORM, || {
        let log = log.lock().unwrap();
        let now = Instant::now();
        let recent: Vec<&Write> = log
            .iter()
            .filter(|(t, _)| *t >= since && now.saturating_duration_since(*t) <= stable)
            .collect();
        let first = recent.first().and_then(|(_, n)| n.clone());
        let settled = recent.len() >= 5
            && first.is_some()
            && recent.iter().all(|(_, n)| *n == first)
            && now.saturating_duration_since(since) > stable;
        name = first;
        settled
    });
    if ok { name } else { None }
}

#[test]
fn haproxy_moves_the_writes_when_the_writer_is_killed_or_drained() {
    let mut lab = Lab::new("proxysvc");
    let env = env(&lab);
    let (nodes, mut running, _) = cold_start(&mut lab);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    sql(
        addrs[0],
        &format!("CREATE TABLE {DB}.proxied (id BIGINT PRIMARY KEY, node VARCHAR(64))"),
    );
    let _haproxy = Haproxy::start(&lab, WRITE_PORT, READ_PORT);
    assert!(
        wait_until(Duration::from_secs(30), || current_writer(&running)
            .is_some()),
        "one node answers /master"
    );
    // HAProxy's servers start UP before their first check: wait for a check round.
    assert!(
        wait_until(Duration::from_secs(30), || through(WRITE_PORT).is_ok()
            && through(READ_PORT).is_ok()),
        "HAProxy routes to the cluster:\n{}",
        std::fs::read_to_string(lab.dir.join("haproxy.log")).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(2));

    let t0 = Instant::now();
    let at = |what: &str| eprintln!("{:.2}s {what}", t0.elapsed().as_secs_f32());
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<Write>>> = Arc::default();
    let w = {
        let (stop, log) = (stop.clone(), log.clone());
        std::thread::spawn(move || writer(stop, log))
    };
    let r = {
        let stop = stop.clone();
        std::thread::spawn(move || reader(stop, t0))
    };
    let m = {
        let (stop, addrs) = (stop.clone(), addrs.clone());
        std::thread::spawn(move || master_watch(addrs, stop))
    };
    let first = wait_writes_settle(&log, Duration::from_secs(2), Instant::now())
        .unwrap_or_else(|| panic!("writes go through: {}", diag(&log, &running, &lab)));

    // SIGKILL the writer.
    let k = current_writer(&running).expect("a writer");
    assert_eq!(
        running[k].node.hostname, first,
        "writes go to the /master node"
    );
    let killed_at = Instant::now();
    at(&format!("SIGKILL {}", running[k].node.hostname));
    running[k].signal(Signal::SIGKILL);
    assert!(running[k].wait_exit(Duration::from_secs(30)).is_some());
    let next = wait_writes_settle(&log, Duration::from_secs(3), killed_at).expect("writes resume");
    assert_ne!(next, first, "another node takes the writes");
    let (kill_window, _) = failed_window(&log.lock().unwrap(), killed_at);
    let table = status_table(
        &lab,
        &[
            &addrs[0].to_string(),
            &addrs[1].to_string(),
            &addrs[2].to_string(),
        ],
    );
    eprintln!("galera-init status after the writer was killed:\n{table}");
    assert_eq!(table.matches("Down").count(), 1, "{table}");
    assert_eq!(
        table.matches("Master, Synced, Running").count(),
        1,
        "{table}"
    );

    // The killed node comes back on its volume and joins; writes settle again.
    at(&format!("restart {}", nodes[k].hostname));
    running[k] = start(&nodes[k], &env);
    let refs: Vec<&Running> = running.iter().collect();
    assert_one_cluster(&addrs, &refs);
    // It reserved its donor before starting, and releases it once Synced: the donor does
    // not stay out of the pools until the reservation lapses.
    assert!(
        running[k].wait_log("from its donor reservation", FORM),
        "{}",
        running[k].log()
    );
    assert!(
        running[k].log().contains("Synced: released"),
        "{}",
        running[k].log()
    );
    wait_writes_settle(&log, Duration::from_secs(5), Instant::now()).expect("writes settle");

    // SIGTERM the writer: it drains first.
    let t = current_writer(&running).expect("a writer");
    let was = running[t].node.hostname.clone();
    let termed_at = Instant::now();
    at(&format!("SIGTERM {was}"));
    running[t].signal(Signal::SIGTERM);
    let after = wait_writes_settle(&log, Duration::from_secs(3), termed_at).expect("writes resume");
    assert_ne!(after, was, "another node takes the writes");
    let (term_window, _) = failed_window(&log.lock().unwrap(), termed_at);
    assert!(running[t].wait_exit(Duration::from_secs(120)).is_some());

    stop.store(true, Ordering::SeqCst);
    w.join().unwrap();
    let (bad_reads, reads) = r.join().unwrap();
    let both = m.join().unwrap();
    eprintln!(
        "through HAProxy: longest failed write window {:.2}s after SIGKILL of the writer, \
         {:.2}s after SIGTERM; {reads} reads",
        kill_window.as_secs_f32(),
        term_window.as_secs_f32()
    );
    assert_eq!(both, 0, "two nodes answered /master with 200 at once");
    assert!(
        bad_reads.is_empty(),
        "reads reached nodes not Synced: {bad_reads:?}"
    );
    assert!(reads > 50, "the reader read ({reads})");
    assert!(
        kill_window < Duration::from_secs(30),
        "writes resume within seconds of a SIGKILL: {kill_window:?}"
    );
    assert!(
        term_window < kill_window,
        "a drain fails over faster than a kill: {term_window:?} vs {kill_window:?}"
    );
    // Every acknowledged write is in the cluster.
    let acked = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.is_some())
        .count();
    let survivors: Vec<Ipv4Addr> = (0..3).filter(|i| *i != t).map(|i| addrs[i]).collect();
    let mut c = crate::lab::connect(survivors[0], USER, PASS).unwrap();
    c.query_drop("SET SESSION wsrep_sync_wait = 1").unwrap();
    let n: i64 = c
        .query_first(format!("SELECT COUNT(*) FROM {DB}.proxied"))
        .unwrap()
        .unwrap();
    assert!(n as usize >= acked, "{n} rows, {acked} acknowledged");
}
