//! The health thread: once a second (and at once when nudged) it asks this node's peers
//! for their state, and keeps the [`Watch`] that `/live` and `/master` read.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Flags, Watch};
use crate::config::HealthSettings;
use crate::peer::auth::ClusterKey;
use crate::peer::client::{HttpPeers, PeerAgent};
use crate::state::Shared;

/// Where a draining peer asks this node for a health round at once.
pub const NUDGE_PATH: &str = "/nudge";

/// How often the peers are asked.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How long a peer may take to answer a health round: with [`INTERVAL`], below
/// [`super::WRITER_HOLDOFF`].
pub const TIMEOUT: Duration = Duration::from_millis(600);

/// The watch, shared between the health thread and the HTTP handlers.
#[derive(Debug, Clone, Default)]
pub struct SharedWatch(Arc<Mutex<Watch>>);

impl SharedWatch {
    /// A copy of the watch.
    pub fn get(&self) -> Watch {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Watch)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Wakes the health thread for a round now: a peer started draining (it may have been
/// the writer), or the component's view changed. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Nudge(Arc<(Mutex<bool>, Condvar)>);

impl Nudge {
    /// Asks for a round now.
    pub fn wake(&self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// Waits until woken or `timeout` passes, or `draining` turns true; returns at once
    /// if woken since the last wait.
    fn wait(&self, timeout: Duration, draining: &AtomicBool) {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.0;
        let mut woken = lock.lock().unwrap_or_else(|e| e.into_inner());
        let was_draining = draining.load(Ordering::SeqCst);
        while !*woken && draining.load(Ordering::SeqCst) == was_draining {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // The drain flag is set by the supervisor, which has no handle on this:
            // look at it every 50 ms.
            woken = cv
                .wait_timeout(woken, left.min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *woken = false;
    }
}

/// Asks `peers` for a round now (`POST /nudge`), in the background: this node started
/// draining, and the next writer should not wait for its next round to see it.
fn nudge_peers(peers: Vec<IpAddr>, port: u16, own: Option<IpAddr>, key: Option<ClusterKey>) {
    std::thread::spawn(move || {
        let agent = PeerAgent::new(port, own, key, TIMEOUT);
        for a in peers {
            let _ = agent.post(a, NUDGE_PATH).req.send_empty();
        }
    });
}

/// Starts the health thread for the node whose state is `state`, asking peers on `port`
/// (signing with `key`, when there is one).
/// The watch sees the state as the endpoints answer it, `flags` applied: a node that drains
/// or is reserved as a donor is no writer candidate either, so after its reservation it
/// waits out the hold-off again before it claims `/master`. Each round publishes whether
/// this node is the writer candidate (peers read it on `/state`); a nudge, or this node's
/// own drain, starts a round at once, and the drain nudges the peers too.
pub fn spawn(
    state: Shared,
    flags: Flags,
    watch: SharedWatch,
    nudge: Nudge,
    port: u16,
    key: Option<ClusterKey>,
    cfg: HealthSettings,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            let mut drained = false;
            loop {
                let s = state.get();
                let client = HttpPeers::with_timeout(port, s.address, key.clone(), TIMEOUT);
                let ask = Watch::to_ask(&s);
                let draining = flags.draining.load(Ordering::SeqCst);
                if draining && !drained {
                    nudge_peers(ask.clone(), port, s.address, key.clone());
                }
                drained = draining;
                let answers = client.fetch_all(&ask);
                // The state may have moved on while the peers answered.
                let mut s = state.get();
                flags.apply(&mut s);
                watch.update(|w| w.observe(&s, answers, Instant::now(), &cfg));
                let candidate = watch.get().candidate_since.is_some();
                state.update(|s| s.writer_candidate = candidate);
                nudge.wait(INTERVAL, &flags.draining);
            }
        })?;
    Ok(())
}
