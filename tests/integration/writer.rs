//! The write port (issue 18): some node answers `/master` 200 at every moment a node can
//! serve, and never two at once, while the cluster grows.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::kit::*;
use crate::lab::{Lab, Node, wait_until};

/// How long the seed has been the writer before the cluster grows (galera-init's
/// `WRITER_SETTLE`: a joiner spares a writer that clients have been using).
const WRITER_SETTLE: Duration = Duration::from_secs(30);

/// When each reading was taken, and which nodes answered `/master` 200.
type Readings = Arc<Mutex<Vec<(Instant, Vec<usize>)>>>;

/// Every 20 ms, which of `addrs` answer `/master` with 200.
struct MasterWatch {
    stop: Arc<AtomicBool>,
    seen: Readings,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MasterWatch {
    fn start(addrs: Vec<Ipv4Addr>) -> MasterWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Readings = Arc::default();
        let (stopped, log) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let now: Vec<usize> = (0..addrs.len())
                    .filter(|i| code(addrs[*i], "/master") == 200)
                    .collect();
                log.lock().unwrap().push((Instant::now(), now));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        MasterWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops; returns the longest stretch without a writer, the most writers at once, and
    /// the changes (for a failure message).
    fn stop(mut self) -> (Duration, usize, String) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let seen = self.seen.lock().unwrap().clone();
        let t0 = seen.first().map_or_else(Instant::now, |s| s.0);
        let mut longest = Duration::ZERO;
        let mut since: Option<Instant> = None;
        let mut most = 0;
        let mut changes = Vec::new();
        let mut last: Option<&Vec<usize>> = None;
        for (t, w) in &seen {
            most = most.max(w.len());
            match (w.is_empty(), since) {
                (true, None) => since = Some(*t),
                (false, Some(s)) => {
                    longest = longest.max(t.saturating_duration_since(s));
                    since = None;
                }
                _ => {}
            }
            if last != Some(w) {
                let names: Vec<String> = w.iter().map(|i| format!("node{}", i + 1)).collect();
                changes.push(format!(
                    "+{:.2}s [{}]",
                    t.saturating_duration_since(t0).as_secs_f64(),
                    names.join(",")
                ));
                last = Some(w);
            }
        }
        if let (Some(s), Some((t, _))) = (since, seen.last()) {
            longest = longest.max(t.saturating_duration_since(s));
        }
        (longest, most, changes.join(" "))
    }
}

/// `docker service scale db=3`, then `=4`, on a seed that has been taking writes: two
/// joiners by SST (the first by mariabackup from the seed, the only node that can give it,
/// which keeps it writable; the second from the first), then a fourth by SST from a node
/// that is not the writer. Some node answers `/master` 200 throughout (the longest stretch
/// without one stays under 0.5 s: a hand-over, not an outage), and never two at once.
#[test]
fn growth_from_one_to_four_keeps_one_writer() {
    let mut lab = Lab::new("growsvc");
    let nodes: Vec<Node> = (1..=4).map(|k| lab.node(k)).collect();
    let addrs: Vec<Ipv4Addr> = nodes.iter().map(|n| n.addr).collect();
    let env = env(&lab);
    lab.set_dns(&addrs[..1]);
    let mut running = vec![start(&nodes[0], &env)];
    assert_one_cluster(&addrs[..1], &[&running[0]]);
    write_rows(addrs[0], 0, 1000);
    // The cluster has been in use: the seed has been the writer for a while (a joiner
    // that starts with the seed, as at a cold start, may block it for a few seconds).
    assert!(
        wait_until(FORM, || node_state(addrs[0]).is_some_and(|s| {
            s["writer_secs"]
                .as_u64()
                .is_some_and(|t| t >= WRITER_SETTLE.as_secs())
        })),
        "the seed is the writer, for {WRITER_SETTLE:?}"
    );
    let watch = MasterWatch::start(addrs.clone());
    lab.set_dns(&addrs[..3]);
    running.push(start(&nodes[1], &env));
    running.push(start(&nodes[2], &env));
    all_synced(&addrs[..3]);
    lab.set_dns(&addrs);
    running.push(start(&nodes[3], &env));
    all_synced(&addrs);
    // The last donor is released and its reservation ends: a writer settles.
    let settled = Instant::now();
    assert!(wait_until(Duration::from_secs(30), || {
        settled.elapsed() > Duration::from_secs(5)
            && addrs.iter().filter(|a| code(**a, "/master") == 200).count() == 1
    }));
    let (gap, most, changes) = watch.stop();
    eprintln!("longest stretch without a writer {gap:?}; /master over time: {changes}");
    let refs: Vec<&crate::lab::Running> = running.iter().collect();
    assert!(most <= 1, "two writers at once: {changes}\n{}", logs(&refs));
    assert!(
        gap < Duration::from_millis(500),
        "no writer for {gap:?}: {changes}\n{}",
        logs(&refs)
    );
}
