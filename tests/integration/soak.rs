//! Faults under load: a client writes continuously and records every acknowledged commit,
//! while the test kills nodes, partitions one, cuts the power, stops everything gracefully
//! and restarts it in random order, and kills a node in the middle of a state transfer, as
//! donor and as joiner. After each fault the cluster must heal by itself (the test restarts
//! what exited, as Swarm does), hold every acknowledged row on every node, and be one
//! history: one cluster UUID, the same rows and the same last committed position
//! everywhere.
//!
//! CI runs one of each fault. `scripts/soak` runs the full counts (10 kills, 5 partitions,
//! 5 power cuts, 5 graceful stops, 3 SST kills of each kind) and prints the table that
//! docs/hardening.md quotes. The counts come from `SOAK_KILLS`, `SOAK_PARTITIONS`,
//! `SOAK_POWER_CUTS`, `SOAK_GRACEFUL`, `SOAK_SST_KILLS`; `SOAK_SEED` replays a run.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::kit::*;
use crate::lab::{Lab, Node, Running, connect, status_var, wait_synced, wait_until};

/// A small random generator (xorshift64*), seeded from `SOAK_SEED` or the clock; the seed
/// is printed so that a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let seed = std::env::var("SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("soak: SOAK_SEED={seed}");
        Dice(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn order(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            v.swap(i, self.below(i + 1));
        }
        v
    }
}

fn count(var: &str) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The continuous client: one insert every 20 ms on whichever node accepts it, moving to
/// the next node after any failure. Only the ids whose commit was acknowledged are kept.
struct Writer {
    acked: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    failed: Arc<Mutex<usize>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(addrs: Vec<Ipv4Addr>) -> Writer {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let pause = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(Mutex::new(0));
        let thread = {
            let (acked, stop, pause, paused, failed) = (
                acked.clone(),
                stop.clone(),
                pause.clone(),
                paused.clone(),
                failed.clone(),
            );
            std::thread::spawn(move || {
                let mut target = 0;
                let mut conn: Option<mysql::Conn> = None;
                let mut id: i64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    if pause.load(Ordering::SeqCst) {
                        paused.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    paused.store(false, Ordering::SeqCst);
                    if conn.is_none() {
                        conn = connect(addrs[target], USER, PASS).ok();
                    }
                    id += 1;
                    let ok = conn.as_mut().is_some_and(|c| {
                        c.query_drop(format!("INSERT INTO {DB}.soak VALUES ({id})"))
                            .is_ok()
                    });
                    if ok {
                        acked.lock().unwrap().push(id);
                    } else {
                        *failed.lock().unwrap() += 1;
                        conn = None;
                        target = (target + 1) % addrs.len();
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Writer {
            acked,
            stop,
            pause,
            paused,
            failed,
            thread: Some(thread),
        }
    }

    /// Holds the writes (the one in flight finishes) until [`Writer::resume`].
    fn hold(&self) {
        self.pause.store(true, Ordering::SeqCst);
        assert!(
            wait_until(Duration::from_secs(30), || self
                .paused
                .load(Ordering::SeqCst)),
            "the writer did not pause"
        );
    }

    fn resume(&self) {
        self.pause.store(false, Ordering::SeqCst);
    }

    fn acked(&self) -> Vec<i64> {
        self.acked.lock().unwrap().clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The cluster under test and its orchestrator: whatever exits is started again.
struct Cluster {
    running: Vec<Running>,
    nodes: Vec<Node>,
    addrs: Vec<Ipv4Addr>,
    env: Vec<(String, String)>,
    /// The cluster's UUID from its first bootstrap: the one history it must keep.
    uuid: String,
    lab: Lab,
}

impl Cluster {
    /// Restarts every node that exited (as Swarm restarts a task) until all are Synced in
    /// one Primary component of three; returns how long that took.
    fn heal(&mut self, since: Instant) -> Duration {
        let n = self.addrs.len() as u32;
        let healed = wait_until(FORM, || {
            for i in 0..self.running.len() {
                if self.running[i].wait_exit(Duration::ZERO).is_some() {
                    self.running[i] = start(&self.nodes[i], &self.env);
                }
            }
            self.addrs
                .iter()
                .all(|a| wait_synced(*a, USER, PASS, n, Duration::ZERO))
        });
        let refs: Vec<&Running> = self.running.iter().collect();
        assert!(healed, "the cluster did not heal:\n{}", logs(&refs));
        since.elapsed()
    }

    fn kill(&mut self, i: usize) {
        self.running[i].signal(Signal::SIGKILL);
        assert!(self.running[i].wait_exit(Duration::from_secs(30)).is_some());
    }

    /// Empties node `i`'s volume and starts it with mariabackup (a long transfer to
    /// interrupt), then waits until its state transfer is under way.
    fn start_sst(&mut self, i: usize) {
        self.kill(i);
        let data = self.nodes[i].data_dir();
        for e in std::fs::read_dir(&data).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        let env = with(&self.env, &[("SST_METHOD", "mariabackup")]);
        self.running[i] = start(&self.nodes[i], &env);
        let under_way = wait_until(FORM, || data.join("sst_in_progress").exists());
        assert!(
            under_way,
            "no SST into node {i}:\n{}",
            self.running[i].log()
        );
    }

    /// Every acknowledged row is on every node, and the nodes are one history.
    fn check(&self, writer: &Writer, fault: &str) {
        writer.hold();
        let acked: BTreeSet<i64> = writer.acked().into_iter().collect();
        let refs: Vec<&Running> = self.running.iter().collect();
        assert_eq!(
            assert_one_cluster(&self.addrs, &refs),
            self.uuid,
            "after {fault}: another cluster history"
        );
        let same_position = wait_until(Duration::from_secs(30), || {
            let p: BTreeSet<Option<String>> = self
                .addrs
                .iter()
                .map(|a| status_var(*a, USER, PASS, "wsrep_last_committed"))
                .collect();
            p.len() == 1 && !p.contains(&None)
        });
        assert!(same_position, "after {fault}: nodes at different positions");
        let mut seen: Option<BTreeSet<i64>> = None;
        for a in &self.addrs {
            let mut c = connect(*a, USER, PASS).unwrap();
            c.query_drop("SET SESSION wsrep_sync_wait = 1").unwrap();
            let rows: BTreeSet<i64> = c
                .query::<i64, _>(format!("SELECT id FROM {DB}.soak"))
                .unwrap()
                .into_iter()
                .collect();
            let missing: Vec<&i64> = acked.difference(&rows).collect();
            assert!(
                missing.is_empty(),
                "after {fault}: {a} lost acknowledged rows {missing:?}"
            );
            if let Some(s) = &seen {
                assert_eq!(s, &rows, "after {fault}: {a} holds other rows");
            }
            seen = Some(rows);
        }
        writer.resume();
    }
}

/// One row of the report.
struct Tally {
    fault: &'static str,
    runs: usize,
    longest: Duration,
}

#[test]
fn faults_under_load_lose_no_acknowledged_write() {
    let mut dice = Dice::new();
    let mut lab = Lab::new("soaksvc");
    let (nodes, running, _) = cold_start(&mut lab);
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    sql(
        addrs[0],
        &format!("CREATE TABLE {DB}.soak (id INT PRIMARY KEY)"),
    );
    let env = env(&lab);
    let uuid = status_var(addrs[0], USER, PASS, "wsrep_cluster_state_uuid").unwrap();
    let mut c = Cluster {
        running,
        nodes,
        addrs: addrs.clone(),
        env,
        uuid,
        lab,
    };
    let writer = Writer::start(addrs.clone());
    let mut tallies: Vec<Tally> = Vec::new();
    let mut record = |fault: &'static str, took: Duration| {
        eprintln!("soak: {fault}: healed in {:.1}s", took.as_secs_f32());
        match tallies.iter_mut().find(|t| t.fault == fault) {
            Some(t) => {
                t.runs += 1;
                t.longest = t.longest.max(took);
            }
            None => tallies.push(Tally {
                fault,
                runs: 1,
                longest: took,
            }),
        }
    };
    let n = addrs.len();

    for _ in 0..count("SOAK_KILLS") {
        let i = dice.below(n);
        let t = Instant::now();
        c.kill(i);
        let took = c.heal(t);
        c.check(&writer, "a SIGKILL");
        record("SIGKILL of a random node", took);
    }
    for _ in 0..count("SOAK_PARTITIONS") {
        let i = dice.below(n);
        let t = Instant::now();
        c.nodes[i].link_down();
        let others: Vec<Ipv4Addr> = (0..n).filter(|k| *k != i).map(|k| addrs[k]).collect();
        let cut = others
            .iter()
            .all(|a| wait_synced(*a, USER, PASS, (n - 1) as u32, FORM));
        c.nodes[i].link_up();
        assert!(cut, "the others did not go on without node {i}");
        let took = c.heal(t);
        c.check(&writer, "a partition");
        record("partition of one node", took);
    }
    for _ in 0..count("SOAK_POWER_CUTS") {
        let t = Instant::now();
        power_cut(&mut c.running);
        for i in dice.order(n) {
            c.running[i] = start(&c.nodes[i], &c.env);
        }
        let took = c.heal(t);
        c.check(&writer, "a power cut");
        record("power cut of every node", took);
    }
    for _ in 0..count("SOAK_GRACEFUL") {
        let t = Instant::now();
        for i in dice.order(n) {
            c.running[i].signal(Signal::SIGTERM);
            let code = c.running[i].wait_exit(Duration::from_secs(120));
            assert_eq!(code, Some(0), "{}", c.running[i].log());
        }
        for i in dice.order(n) {
            std::thread::sleep(Duration::from_millis(dice.below(3000) as u64));
            c.running[i] = start(&c.nodes[i], &c.env);
        }
        let took = c.heal(t);
        c.check(&writer, "a graceful full stop");
        record("graceful full stop, random restarts", took);
    }
    for _ in 0..count("SOAK_SST_KILLS") {
        let i = dice.below(n);
        c.start_sst(i);
        let t = Instant::now();
        c.kill(i);
        let took = c.heal(t);
        c.check(&writer, "a joiner killed during its SST");
        record("joiner killed during its SST", took);
    }
    for _ in 0..count("SOAK_SST_KILLS") {
        let i = dice.below(n);
        c.start_sst(i);
        // The joiner's script marks its datadir before the donor starts sending.
        let mut donor = None;
        wait_until(Duration::from_secs(60), || {
            donor = (0..n).filter(|k| *k != i).find(|k| {
                status_var(addrs[*k], USER, PASS, "wsrep_local_state_comment")
                    .is_some_and(|s| s.starts_with("Donor"))
            });
            donor.is_some()
        });
        let donor = donor.unwrap_or_else(|| panic!("no donor while node {i} receives its SST"));
        let t = Instant::now();
        c.kill(donor);
        let took = c.heal(t);
        c.check(&writer, "a donor killed during an SST");
        record("donor killed during an SST", took);
    }

    let acked = writer.acked().len();
    let failed = *writer.failed.lock().unwrap();
    drop(writer);
    eprintln!("\n| Fault | Runs | Longest time to heal | Acknowledged writes lost |");
    eprintln!("|---|---|---|---|");
    for t in &tallies {
        eprintln!(
            "| {} | {} | {:.1} s | 0 |",
            t.fault,
            t.runs,
            t.longest.as_secs_f32()
        );
    }
    eprintln!(
        "\nsoak: {acked} writes acknowledged and found on every node after every fault; \
         {failed} refused or failed (never acknowledged); one cluster UUID throughout: {}",
        c.uuid
    );
    eprintln!("soak: lab {}", c.lab.dir.display());
}
