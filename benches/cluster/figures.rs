//! Each figure of the benchmark: galera-init and its baseline, run side by side in the same
//! invocation, alternating which goes first.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::lab::{Haproxy, Lab, Node, Running, wait_until};
use crate::nodes::{self, DB, Hand, HandStart, Kind, gi_env, start_gi, start_hand};
use crate::stats::Series;
use crate::timeline::{self, Timeline};

/// The longest any cluster step may take before the benchmark gives up.
const FORM: Duration = Duration::from_secs(600);

/// The service name of the benchmark's clusters.
const SERVICE: &str = "benchsvc";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Starts three fresh galera-init nodes together and waits for three Synced nodes.
fn gi_cluster(lab: &mut Lab, env: &[(String, String)]) -> (Vec<Node>, Vec<Running>) {
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    lab.set_dns(&addrs);
    let running: Vec<Running> = nodes.iter().map(|n| start_gi(n, env)).collect();
    let all: Vec<(&Node, Kind)> = nodes.iter().map(|n| (n, Kind::GaleraInit)).collect();
    if nodes::wait_all_synced(&all, 3, FORM).is_none() {
        panic!("galera-init cluster did not form:\n{}", logs(&running));
    }
    (nodes, running)
}

fn logs(running: &[Running]) -> String {
    running
        .iter()
        .map(|r| format!("==== {} ====\n{}", r.node.hostname, r.log()))
        .collect()
}

/// One cold start: `timeline` and the time to three Synced nodes.
pub struct ColdRun {
    /// From the first start to the last Synced node.
    pub took: Duration,
    /// What each node did meanwhile.
    pub timeline: Timeline,
}

/// Figure 1 for galera-init: three fresh nodes with the README's environment (`extra` on
/// top), started together, DNS listing them all from the start.
pub fn cold_gi(extra: &[(&str, &str)]) -> ColdRun {
    let mut lab = Lab::new(SERVICE);
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    lab.set_dns(&addrs);
    let env = gi_env(SERVICE, extra);
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let sampler = timeline::sample(
        nodes
            .iter()
            .map(|n| (n.clone(), Kind::GaleraInit))
            .collect(),
        t0,
        stop.clone(),
    );
    let running: Vec<Running> = nodes.iter().map(|n| start_gi(n, &env)).collect();
    let all: Vec<(&Node, Kind)> = nodes.iter().map(|n| (n, Kind::GaleraInit)).collect();
    let end = nodes::wait_all_synced(&all, 3, FORM)
        .unwrap_or_else(|| panic!("galera-init cold start failed:\n{}", logs(&running)));
    stop.store(true, Ordering::SeqCst);
    let tracks = sampler.join().unwrap();
    let boots: usize = running
        .iter()
        .map(|r| r.log().matches("decision: bootstrap").count())
        .sum();
    assert_eq!(boots, 1, "exactly one bootstrap:\n{}", logs(&running));
    ColdRun {
        took: end - t0,
        timeline: Timeline {
            title: "galera-init".into(),
            tracks,
            end: end - t0,
        },
    }
}

/// Figure 1's baseline: the same three nodes as bare mariadbd, by hand: install-db and
/// bootstrap the first, and once it is Synced start the other two at once (`sst`).
pub fn cold_hand(sst: &str) -> ColdRun {
    let mut lab = Lab::new(SERVICE);
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let hand = Hand {
        cluster: "bench".into(),
        members: nodes.iter().map(|n| n.addr).collect(),
        sst: sst.into(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let sampler = timeline::sample(
        nodes.iter().map(|n| (n.clone(), Kind::Hand)).collect(),
        t0,
        stop.clone(),
    );
    let mut running = vec![start_hand(&nodes[0], &hand, HandStart::Seed)];
    let seed = [(&nodes[0], Kind::Hand)];
    nodes::wait_all_synced(&seed, 1, FORM)
        .unwrap_or_else(|| panic!("hand seed failed:\n{}", logs(&running)));
    running.push(start_hand(&nodes[1], &hand, HandStart::Join));
    running.push(start_hand(&nodes[2], &hand, HandStart::Join));
    let all: Vec<(&Node, Kind)> = nodes.iter().map(|n| (n, Kind::Hand)).collect();
    let end = nodes::wait_all_synced(&all, 3, FORM)
        .unwrap_or_else(|| panic!("hand cold start ({sst}) failed:\n{}", logs(&running)));
    stop.store(true, Ordering::SeqCst);
    let tracks = sampler.join().unwrap();
    ColdRun {
        took: end - t0,
        timeline: Timeline {
            title: format!("bare mariadbd by hand, {sst} SST"),
            tracks,
            end: end - t0,
        },
    }
}

/// Figure 2's results for one data size.
#[derive(Debug, Default)]
pub struct JoinRuns {
    /// The datadir size of the donor, MiB.
    pub datadir_mib: f64,
    /// The SST method galera-init chose.
    pub method: String,
    /// galera-init: from the joiner's start to four Synced nodes.
    pub gi: Series,
    /// Bare mariadbd with the same SST method.
    pub hand: Series,
}

fn du_mib(node: &Node) -> f64 {
    let out = Command::new("du")
        .args(["-sk", &node.data_dir().to_string_lossy()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|k| k.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Figure 2: a 4th node joins a running galera-init cluster holding a small datadir, then
/// one of about `large_mib` MiB: galera-init against bare mariadbd with the SST method
/// galera-init chose.
pub fn join(runs: usize, large_mib: u64) -> Vec<JoinRuns> {
    let mut lab = Lab::new(SERVICE);
    let env = gi_env(SERVICE, &[]);
    let (nodes, _running) = gi_cluster(&mut lab, &env);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let seed = &nodes[0];
    nodes::exec(
        seed,
        Kind::GaleraInit,
        &format!("CREATE TABLE {DB}.big (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(1024))"),
    );
    nodes::exec(
        seed,
        Kind::GaleraInit,
        &format!("INSERT INTO {DB}.big (pad) SELECT REPEAT(MD5(seq), 32) FROM {DB}.seq_1_to_1000"),
    );
    let joiner = lab.node(4);
    let three: Vec<(&Node, Kind)> = nodes.iter().map(|n| (n, Kind::GaleraInit)).collect();
    let mut four = three.clone();
    let mut out = Vec::new();
    for large in [false, true] {
        if large {
            load(seed, large_mib);
            // Each node measures its data every 10 s: a joiner chooses by the new size.
            let measured = |n: &Node| {
                ureq::get(&format!("http://{}:9200/state", n.addr))
                    .call()
                    .ok()
                    .and_then(|mut r| r.body_mut().read_json::<serde_json::Value>().ok())
                    .and_then(|v| v["data_bytes"].as_u64())
                    .unwrap_or(0)
            };
            let want = (large_mib << 20) / 2;
            assert!(
                wait_until(Duration::from_secs(60), || nodes
                    .iter()
                    .all(|n| measured(n) >= want)),
                "the nodes report their new data size"
            );
        }
        let mut r = JoinRuns {
            datadir_mib: du_mib(seed),
            ..Default::default()
        };
        for i in 0..runs {
            for gi_first in [i % 2 == 0, i % 2 != 0] {
                nodes::wipe(&joiner);
                nodes::wait_all_synced(&three, 3, FORM).expect("the cluster is back to three");
                let t0 = Instant::now();
                let mut running = if gi_first {
                    four.push((&joiner, Kind::GaleraInit));
                    let mut dns = addrs.clone();
                    dns.push(joiner.addr);
                    lab.set_dns(&dns);
                    start_gi(&joiner, &env)
                } else {
                    four.push((&joiner, Kind::Hand));
                    let mut members = addrs.clone();
                    members.push(joiner.addr);
                    start_hand(
                        &joiner,
                        &Hand {
                            cluster: SERVICE.into(),
                            members,
                            sst: if r.method.is_empty() {
                                "mariabackup".into()
                            } else {
                                r.method.clone()
                            },
                        },
                        HandStart::Join,
                    )
                };
                let end = nodes::wait_all_synced(&four, 4, FORM)
                    .unwrap_or_else(|| panic!("the 4th node did not join:\n{}", running.log()));
                if gi_first {
                    r.method = nodes::gi_sst_method(&joiner).unwrap_or_default();
                    r.gi.push(secs(end - t0));
                } else {
                    r.hand.push(secs(end - t0));
                }
                four.pop();
                running.signal(Signal::SIGTERM);
                running.wait_exit(FORM).expect("the 4th node stops");
                lab.set_dns(&addrs);
            }
        }
        // The first baseline run may have run before galera-init's told it the method.
        if runs > 0 && r.hand.0.len() == r.gi.0.len() && !r.method.is_empty() {
            out.push(r);
        }
    }
    nodes::wipe(&joiner);
    out
}

/// Grows the cluster's data to about `mib` MiB, in 8 MiB transactions.
fn load(seed: &Node, mib: u64) {
    let batches = mib / 8;
    let started = Instant::now();
    for _ in 0..batches {
        nodes::exec(
            seed,
            Kind::GaleraInit,
            &format!(
                "INSERT INTO {DB}.big (pad) SELECT REPEAT(MD5(RAND()), 32) FROM {DB}.seq_1_to_8000"
            ),
        );
    }
    eprintln!(
        "loaded {} MiB in {:.0}s",
        batches * 8,
        started.elapsed().as_secs_f64()
    );
}

/// Figure 3's results for one kind of outage.
#[derive(Debug, Default)]
pub struct OutageRuns {
    /// From the fault to every node stopped.
    pub stop: Series,
    /// From the last node's start to a Primary component of three.
    pub primary: Series,
    /// From the first restart to three Synced nodes.
    pub total: Series,
}

/// Figure 3: power cuts (`power`) or graceful full stops of a three-node cluster holding
/// acknowledged rows, for galera-init (`kind`) or its baseline; every row must be back.
pub fn outage(kind: Kind, power: bool, runs: usize) -> OutageRuns {
    let mut lab = Lab::new(SERVICE);
    let env = gi_env(SERVICE, &[]);
    let (nodes, mut running) = match kind {
        Kind::GaleraInit => gi_cluster(&mut lab, &env),
        Kind::Hand => hand_cluster(&mut lab),
    };
    let all: Vec<(&Node, Kind)> = nodes.iter().map(|n| (n, kind)).collect();
    nodes::exec(&nodes[0], kind, "CREATE DATABASE IF NOT EXISTS mytestdb");
    nodes::exec(
        &nodes[0],
        kind,
        &format!("CREATE TABLE {DB}.acked (id INT PRIMARY KEY)"),
    );
    let mut rows = 0;
    let mut out = OutageRuns::default();
    for _ in 0..runs {
        for _ in 0..100 {
            nodes::exec(
                &nodes[rows as usize % 3],
                kind,
                &format!("INSERT INTO {DB}.acked VALUES ({rows})"),
            );
            rows += 1;
        }
        let t0 = Instant::now();
        nodes::stop_all(
            &mut running,
            if power {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            },
        );
        out.stop.push(secs(t0.elapsed()));
        let first = Instant::now();
        running = match kind {
            Kind::GaleraInit => nodes.iter().map(|n| start_gi(n, &env)).collect(),
            Kind::Hand if power => hand_restart_all(&nodes),
            Kind::Hand => hand_restart_from_the_last(&nodes),
        };
        let last = Instant::now();
        let primary = nodes::wait_any_primary(&all, 3, FORM)
            .unwrap_or_else(|| panic!("no Primary component of 3:\n{}", logs(&running)));
        let synced = nodes::wait_all_synced(&all, 3, FORM)
            .unwrap_or_else(|| panic!("not all Synced:\n{}", logs(&running)));
        out.primary
            .push(secs(primary.saturating_duration_since(last)));
        out.total.push(secs(synced - first));
        for n in &nodes {
            let have = nodes::count(n, kind, &format!("{DB}.acked"));
            assert_eq!(have, Some(rows), "{}: every acknowledged row", n.hostname);
        }
    }
    out
}

/// A hand-started cluster of three, rsync SST (the fastest hand start).
fn hand_cluster(lab: &mut Lab) -> (Vec<Node>, Vec<Running>) {
    let nodes: Vec<Node> = (1..=3).map(|k| lab.node(k)).collect();
    let hand = hand_of(&nodes);
    let mut running = vec![start_hand(&nodes[0], &hand, HandStart::Seed)];
    nodes::wait_all_synced(&[(&nodes[0], Kind::Hand)], 1, FORM).expect("hand seed");
    running.push(start_hand(&nodes[1], &hand, HandStart::Join));
    running.push(start_hand(&nodes[2], &hand, HandStart::Join));
    let all: Vec<(&Node, Kind)> = nodes.iter().map(|n| (n, Kind::Hand)).collect();
    nodes::wait_all_synced(&all, 3, FORM).expect("hand cluster");
    (nodes, running)
}

fn hand_of(nodes: &[Node]) -> Hand {
    Hand {
        cluster: "bench".into(),
        members: nodes.iter().map(|n| n.addr).collect(),
        sst: "rsync".into(),
    }
}

/// After a power cut, by hand: start every node; Galera's pc.recovery restores the view.
fn hand_restart_all(nodes: &[Node]) -> Vec<Running> {
    let hand = hand_of(nodes);
    nodes
        .iter()
        .map(|n| start_hand(n, &hand, HandStart::Join))
        .collect()
}

/// After a graceful full stop, by an operator who knows the answer at once: bootstrap the
/// node Galera marked `safe_to_bootstrap` (else the highest seqno), and start the others as
/// soon as it is Primary.
fn hand_restart_from_the_last(nodes: &[Node]) -> Vec<Running> {
    let hand = hand_of(nodes);
    let states: Vec<(bool, i64)> = nodes.iter().map(nodes::grastate).collect();
    let seed = (0..nodes.len())
        .max_by_key(|i| (states[*i].0, states[*i].1))
        .unwrap();
    if !states[seed].0 {
        let path = nodes[seed].data_dir().join("grastate.dat");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1"),
        )
        .unwrap();
    }
    let mut running = vec![start_hand(&nodes[seed], &hand, HandStart::Bootstrap)];
    nodes::wait_all_synced(&[(&nodes[seed], Kind::Hand)], 1, FORM).expect("hand bootstrap");
    for (i, n) in nodes.iter().enumerate() {
        if i != seed {
            running.push(start_hand(n, &hand, HandStart::Join));
        }
    }
    running
}

/// HAProxy's write port in the benchmark.
const WRITE_PORT: u16 = 23306;

/// Where a writer sends its rows.
#[derive(Clone, Copy)]
enum Target {
    Proxy,
    Node(Ipv4Addr),
}

fn conn(target: Target) -> Option<mysql::Conn> {
    let (host, port) = match target {
        Target::Proxy => ("127.0.0.1".to_string(), WRITE_PORT),
        Target::Node(a) => (a.to_string(), 3306),
    };
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some(host))
        .tcp_port(port)
        .user(Some(nodes::USER))
        .pass(Some(nodes::PASS))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(1)))
        .read_timeout(Some(Duration::from_secs(10)))
        .write_timeout(Some(Duration::from_secs(10)));
    mysql::Conn::new(opts).ok()
}

/// Writes a row every 20 ms to `target` until `stop`, reconnecting after a failure; logs
/// when each write completed and whether it was acknowledged.
fn writer(
    target: Target,
    table: &'static str,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(Instant, bool)>>>,
) {
    let mut c: Option<mysql::Conn> = None;
    while !stop.load(Ordering::SeqCst) {
        if c.is_none() {
            c = conn(target);
        }
        let ok = c.as_mut().is_some_and(|c| {
            c.query_drop(format!(
                "INSERT INTO {DB}.{table} (node) VALUES (@@hostname)"
            ))
            .is_ok()
        });
        if !ok {
            c = None;
        }
        log.lock().unwrap().push((Instant::now(), ok));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The longest time without an acknowledged write around `fault`: from the last one before
/// it to the first one after each gap.
fn window(log: &[(Instant, bool)], fault: Instant) -> Duration {
    let mut last_ok = log
        .iter()
        .rev()
        .find(|(t, ok)| *ok && *t <= fault)
        .map_or(fault, |(t, _)| *t);
    let mut longest = Duration::ZERO;
    for (t, ok) in log.iter().filter(|(t, _)| *t > fault) {
        if *ok {
            longest = longest.max(t.saturating_duration_since(last_ok));
            last_ok = *t;
        }
    }
    longest
}

fn health_ok(addr: Ipv4Addr) -> bool {
    code(addr, "/health") == 200
}

fn master(addr: Ipv4Addr) -> bool {
    code(addr, "/master") == 200
}

fn code(addr: Ipv4Addr, path: &str) -> u16 {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(500)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    agent
        .get(&format!("http://{addr}:9200{path}"))
        .call()
        .map_or(0, |r| r.status().as_u16())
}

/// Which nodes answer `/master` with 200, every 50 ms from `fault` until `stop`: each
/// change, as "+seconds: [nodes]".
fn master_changes(addrs: &[Ipv4Addr], fault: Instant, stop: &AtomicBool) -> String {
    let mut out = Vec::new();
    let mut last: Option<Vec<usize>> = None;
    while !stop.load(Ordering::SeqCst) {
        let now: Vec<usize> = (0..addrs.len()).filter(|i| master(addrs[*i])).collect();
        if last.as_ref() != Some(&now) {
            let names: Vec<String> = now.iter().map(|i| format!("node{}", i + 1)).collect();
            out.push(format!(
                "+{:.2}s [{}]",
                fault.elapsed().as_secs_f64(),
                names.join(",")
            ));
            last = Some(now);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    out.join(" ")
}

/// The faults of figure 4, each done to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Its mariadbd SIGKILLed, galera-init alive (the OOM killer, a crash).
    ServerKill,
    /// Its PID 1 SIGKILLed: the whole node dies, its address stays.
    NodeKill,
    /// Its PID 1 SIGTERMed: the node drains and stops.
    Drain,
}

impl Fault {
    /// Every fault, in the order they are done.
    pub const ALL: [Fault; 3] = [Fault::ServerKill, Fault::NodeKill, Fault::Drain];

    /// In the report's words.
    pub fn words(self) -> &'static str {
        match self {
            Fault::ServerKill => "mariadbd SIGKILL (galera-init alive)",
            Fault::NodeKill => "whole node SIGKILL (PID 1)",
            Fault::Drain => "SIGTERM (drain)",
        }
    }
}

/// Figure 4's results: for each fault, the longest window without an acknowledged write
/// through HAProxy and straight to a surviving node.
#[derive(Debug, Default)]
pub struct FailoverRuns(pub std::collections::BTreeMap<Fault, (Series, Series)>);

/// A running galera-init cluster of three for figures 4 to 6.
pub struct Running3 {
    /// Its lab.
    pub lab: Lab,
    /// Its nodes.
    pub nodes: Vec<Node>,
    /// Their galera-init processes.
    pub running: Vec<Running>,
    env: Vec<(String, String)>,
}

/// galera-init as it was before issue 18, the baseline of figures 4 and 7: no eviction
/// on proof (the survivors wait for Galera's own suspicion, `evs.suspect_timeout`), and
/// no state notifications (the monitor's readings alone).
pub const BEFORE: [(&str, &str); 2] = [("EVICT_ON_PROOF", "no"), ("STATE_NOTIFY", "no")];

/// Starts the cluster for figures 4 to 6, with `extra` environment on top of the README's.
pub fn running3(extra: &[(&str, &str)]) -> Running3 {
    let mut lab = Lab::new(SERVICE);
    let env = gi_env(SERVICE, extra);
    let (nodes, running) = gi_cluster(&mut lab, &env);
    Running3 {
        lab,
        nodes,
        running,
        env,
    }
}

/// Figure 4: a client writes through HAProxy (examples/proxy/haproxy.cfg) while each
/// [`Fault`] is done to the writer in turn; a second client writes straight to a survivor:
/// the pause no proxy can avoid.
pub fn failover(c: &mut Running3, runs: usize) -> FailoverRuns {
    let addrs: Vec<Ipv4Addr> = c.nodes.iter().map(|n| n.addr).collect();
    for t in ["viaproxy", "direct"] {
        nodes::exec(
            &c.nodes[0],
            Kind::GaleraInit,
            &format!(
                "CREATE TABLE IF NOT EXISTS {DB}.{t} (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
                 node VARCHAR(64))"
            ),
        );
    }
    let _haproxy = Haproxy::start(&c.lab, WRITE_PORT, 23307);
    let all: Vec<(&Node, Kind)> = c.nodes.iter().map(|n| (n, Kind::GaleraInit)).collect();
    let mut out = FailoverRuns::default();
    for _ in 0..runs {
        for fault_kind in Fault::ALL {
            nodes::wait_all_synced(&all, 3, FORM).expect("three Synced nodes");
            // A settled cluster: one writer, every node serving, for 5 s in a row (a node
            // that has just served an IST is back in the pools a moment later).
            let mut writer_at = None;
            let mut since: Option<(usize, Instant)> = None;
            assert!(
                wait_until(FORM, || {
                    let w: Vec<usize> = (0..3).filter(|i| master(addrs[*i])).collect();
                    let all_serve = addrs.iter().all(|a| health_ok(*a));
                    let one = (w.len() == 1 && all_serve).then(|| w[0]);
                    since = match (one, since) {
                        (Some(w), Some((s, t))) if s == w => Some((s, t)),
                        (Some(w), _) => Some((w, Instant::now())),
                        (None, _) => None,
                    };
                    writer_at = one;
                    since.is_some_and(|(_, t)| t.elapsed() >= Duration::from_secs(5))
                        && conn(Target::Proxy).is_some()
                }),
                "one writer behind HAProxy"
            );
            let w = writer_at.unwrap();
            let survivor = addrs[(w + 1) % 3];
            let stop = Arc::new(AtomicBool::new(false));
            let proxy_log: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
            let direct_log: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
            let threads = [
                (Target::Proxy, "viaproxy", proxy_log.clone()),
                (Target::Node(survivor), "direct", direct_log.clone()),
            ]
            .map(|(t, table, log)| {
                let stop = stop.clone();
                std::thread::spawn(move || writer(t, table, stop, log))
            });
            // Both clients write before the fault.
            assert!(wait_until(Duration::from_secs(30), || {
                let ok = |l: &Arc<Mutex<Vec<(Instant, bool)>>>| {
                    l.lock()
                        .unwrap()
                        .iter()
                        .rev()
                        .take(10)
                        .filter(|(_, ok)| *ok)
                        .count()
                        >= 10
                };
                ok(&proxy_log) && ok(&direct_log)
            }));
            let log_at: Vec<usize> = c.running.iter().map(|r| r.log().len()).collect();
            let fault = Instant::now();
            let masters = {
                let (stop, addrs) = (stop.clone(), addrs.clone());
                std::thread::spawn(move || master_changes(&addrs, fault, &stop))
            };
            match fault_kind {
                Fault::ServerKill => {
                    let pid = c.running[w]
                        .mariadbd_pid()
                        .expect("the writer's mariadbd runs");
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
                Fault::NodeKill => c.running[w].signal(Signal::SIGKILL),
                Fault::Drain => c.running[w].signal(Signal::SIGTERM),
            }
            // Writes settle: both clients acknowledged for 3 s in a row.
            assert!(
                wait_until(FORM, || {
                    let settled = |l: &Arc<Mutex<Vec<(Instant, bool)>>>| {
                        let l = l.lock().unwrap();
                        let recent: Vec<_> = l
                            .iter()
                            .filter(|(t, _)| t.elapsed() < Duration::from_secs(3) && *t > fault)
                            .collect();
                        recent.len() > 20 && recent.iter().all(|(_, ok)| *ok)
                    };
                    fault.elapsed() > Duration::from_secs(4)
                        && settled(&proxy_log)
                        && settled(&direct_log)
                }),
                "writes resume"
            );
            stop.store(true, Ordering::SeqCst);
            for t in threads {
                t.join().unwrap();
            }
            eprintln!(
                "{} of the writer {}: /master after it: {}",
                fault_kind.words(),
                c.nodes[w].hostname,
                masters.join().unwrap()
            );
            let (p, d) = (
                window(&proxy_log.lock().unwrap(), fault),
                window(&direct_log.lock().unwrap(), fault),
            );
            let series = out.0.entry(fault_kind).or_default();
            series.0.push(secs(p));
            series.1.push(secs(d));
            c.running[w].wait_exit(FORM).expect("the writer stops");
            // What each node said about evictions (issue 18), for the reader of the run.
            for (i, r) in c.running.iter().enumerate() {
                let log = r.log();
                for line in log[log_at[i].min(log.len())..].lines().filter(|l| {
                    ["evict", "gcomm UUID", "the writer"]
                        .iter()
                        .any(|w| l.contains(w))
                }) {
                    eprintln!("  node{}: {line}", i + 1);
                }
            }
            c.running[w] = start_gi(&c.nodes[w], &c.env);
        }
    }
    nodes::wait_all_synced(&all, 3, FORM).expect("three Synced nodes");
    out
}

/// Figure 7's results, milliseconds: from the moment a rejoining node's server says
/// Synced to the moment its `/health` answers 200.
#[derive(Debug, Default)]
pub struct LagRuns {
    /// Each rejoin's lag.
    pub synced_to_health: Series,
}

/// Figure 7: node 3 is stopped (drained) and started again `runs` times; it rejoins by
/// IST. Its server's `wsrep_local_state_comment` and its `/health` are both polled every
/// 5 ms from the bench, from its start until both say Synced; the lag is the time between
/// the first Synced reading and the first 200.
pub fn verdict_lag(c: &mut Running3, runs: usize) -> LagRuns {
    let all: Vec<(&Node, Kind)> = c.nodes.iter().map(|n| (n, Kind::GaleraInit)).collect();
    let mut out = LagRuns::default();
    let k = 2;
    let addr = c.nodes[k].addr;
    for _ in 0..runs {
        nodes::wait_all_synced(&all, 3, FORM).expect("three Synced nodes");
        c.running[k].signal(Signal::SIGTERM);
        c.running[k].wait_exit(FORM).expect("node 3 stops");
        c.running[k] = start_gi(&c.nodes[k], &c.env);
        let mut synced_at: Option<Instant> = None;
        let mut healthy_at: Option<Instant> = None;
        let mut sql: Option<mysql::Conn> = None;
        assert!(
            wait_until(FORM, || {
                if synced_at.is_none() {
                    if sql.is_none() {
                        sql = conn(Target::Node(addr));
                    }
                    let synced = sql.as_mut().is_some_and(|c| {
                        c.query_first::<(String, String), _>(
                            "SHOW STATUS LIKE 'wsrep_local_state_comment'",
                        )
                        .ok()
                        .flatten()
                        .is_some_and(|(_, v)| v == "Synced")
                    });
                    if synced {
                        synced_at = Some(Instant::now());
                    }
                }
                if healthy_at.is_none() && health_ok(addr) {
                    healthy_at = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(5));
                synced_at.is_some() && healthy_at.is_some()
            }),
            "node 3 rejoins"
        );
        let (s, h) = (synced_at.unwrap(), healthy_at.unwrap());
        // A /health 200 before the server said Synced counts as no lag at all.
        out.synced_to_health
            .push(h.saturating_duration_since(s).as_secs_f64() * 1000.0);
    }
    out
}

/// Figure 5's results, milliseconds.
#[derive(Debug, Default)]
pub struct HealthRuns {
    /// `galera-init healthcheck`, run in the node.
    pub healthcheck: Series,
    /// `mariadb -e "SHOW STATUS LIKE 'wsrep_%'"`, run in the node.
    pub client: Series,
    /// `GET /health` on loopback, a new connection each.
    pub http: Series,
    /// `/bin/true`: what starting any process costs, the floor of a check that is one.
    pub spawn: Series,
}

/// Figure 5: `n` runs of each check, interleaved, timed inside node 1 by this benchmark's
/// own binary (copied into the lab, visible in the node).
pub fn health(c: &Running3, n: usize) -> HealthRuns {
    let helper = c.lab.dir.join("bench-helper");
    std::fs::copy(std::env::current_exe().unwrap(), &helper).unwrap();
    let gi = c.lab.binary();
    let r = &c.running[0];
    let out = r.exec_in(
        &[
            &helper.to_string_lossy(),
            "time",
            &n.to_string(),
            &gi.to_string_lossy(),
            "healthcheck",
            ":::",
            "mariadb",
            "-e",
            "SHOW STATUS LIKE 'wsrep_%'",
            ":::",
            "/bin/true",
            ":::",
            "http://127.0.0.1:9200/health",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "timing helper failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut h = HealthRuns::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(which), Some(us)) = (it.next(), it.next().and_then(|v| v.parse::<f64>().ok()))
        else {
            continue;
        };
        let ms = us / 1000.0;
        match which {
            "a" => h.healthcheck.push(ms),
            "b" => h.client.push(ms),
            "h" => h.http.push(ms),
            "c" => h.spawn.push(ms),
            _ => {}
        }
    }
    h
}

/// The timing helper, run inside a node: `time N CMD_A… ::: CMD_B… ::: CMD_C… ::: URL` runs
/// A, B and C N times each, interleaved, then GETs URL N times on a new connection each,
/// and prints one line per run: `a|b|c|h MICROSECONDS`. Every command must succeed.
pub fn time_helper(args: &[String]) -> i32 {
    let n: usize = args[0].parse().expect("a count");
    let parts: Vec<&[String]> = args[1..].split(|a| a == ":::").collect();
    let (a, b, c, url) = (parts[0], parts[1], parts[2], &parts[3][0]);
    let run = |cmd: &[String]| {
        let t = Instant::now();
        let status = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .status()
            .expect("run");
        assert!(status.success(), "{cmd:?}: {status}");
        t.elapsed().as_micros()
    };
    for _ in 0..n {
        println!("a {}", run(a));
        println!("b {}", run(b));
        println!("c {}", run(c));
    }
    for _ in 0..n {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .new_agent();
        let t = Instant::now();
        let r = agent.get(url).call().expect("GET /health");
        assert_eq!(r.status().as_u16(), 200);
        println!("h {}", t.elapsed().as_micros());
    }
    0
}

/// Figure 6's results.
#[derive(Debug, Default)]
pub struct Footprint {
    /// galera-init's resident set while it supervises an idle server, KiB (each node).
    pub rss_kib: Series,
    /// Of which anonymous memory (heap, stacks), KiB.
    pub anon_kib: Series,
    /// galera-init's threads.
    pub threads: Series,
    /// The stripped release binary, bytes.
    pub binary: u64,
    /// The image and its base, bytes, when asked for.
    pub image: Option<(u64, u64)>,
}

fn proc_status(pid: i32, key: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Figure 6: galera-init's memory in each node of the idle cluster, the stripped binary,
/// and (`image`) the image against its base.
pub fn footprint(c: &Running3, image: Option<(&str, &str)>) -> Footprint {
    let mut f = Footprint::default();
    if let Some(r) = c.running.first() {
        // Where the memory is, for the notes: the largest resident mappings.
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", r.pid1)).unwrap_or_default();
        let mut maps: Vec<(u64, String)> = Vec::new();
        let mut name = String::new();
        for line in smaps.lines() {
            if let Some(kib) = line.strip_prefix("Rss:") {
                let kib: u64 = kib
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse()
                    .unwrap_or(0);
                maps.push((kib, name.clone()));
            } else if line
                .split_whitespace()
                .next()
                .is_some_and(|w| w.contains('-'))
            {
                name = line
                    .split_whitespace()
                    .skip(5)
                    .collect::<Vec<_>>()
                    .join(" ");
                if name.is_empty() {
                    name = "[anonymous]".into();
                }
            }
        }
        let mut by: std::collections::BTreeMap<String, u64> = Default::default();
        for (k, n) in maps {
            *by.entry(n).or_default() += k;
        }
        let mut by: Vec<(u64, String)> = by.into_iter().map(|(n, k)| (k, n)).collect();
        by.sort_by(|a, b| b.cmp(a));
        eprintln!(
            "galera-init's resident memory by mapping (KiB): {:?}",
            &by[..by.len().min(8)]
        );
    }
    for r in &c.running {
        f.rss_kib
            .push(proc_status(r.pid1, "VmRSS:").unwrap_or(f64::NAN));
        f.anon_kib
            .push(proc_status(r.pid1, "RssAnon:").unwrap_or(f64::NAN));
        f.threads
            .push(proc_status(r.pid1, "Threads:").unwrap_or(f64::NAN));
    }
    let stripped = c.lab.dir.join("galera-init.stripped");
    let ok = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(c.lab.binary())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "strip the binary (binutils)");
    f.binary = std::fs::metadata(&stripped).unwrap().len();
    f.image = image.map(|(img, base)| (image_size(img), image_size(base)));
    f
}

fn image_size(tag: &str) -> u64 {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Size}}", tag])
        .output()
        .expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no image {tag}"))
}
