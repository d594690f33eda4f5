//! The health thread: twice a second (and at once when nudged) it asks this node's peers
//! for their state, and keeps the [`Watch`] that `/live` and `/master` read.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Flags, Watch};
use crate::config::HealthSettings;
use crate::evict::{self, act::Port};
use crate::peer::auth::ClusterKey;
use crate::peer::client::{HttpPeers, PeerAgent};
use crate::state::{NodeState, Shared};

/// Where a draining peer asks this node for a health round at once.
pub const NUDGE_PATH: &str = "/nudge";

/// How often the peers are asked: a member whose node died (nothing listens at its
/// address) is found within this, and evicted (see [`crate::evict`]).
pub const INTERVAL: Duration = Duration::from_millis(500);

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

    /// Changes the watch.
    pub fn update(&self, f: impl FnOnce(&mut Watch)) {
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

    /// Waits until woken or `timeout` passes; returns whether it was woken (at once, if
    /// woken since the last wait).
    pub fn sleep(&self, timeout: Duration) -> bool {
        let (lock, cv) = &*self.0;
        let woken = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (mut woken, _) = cv
            .wait_timeout_while(woken, timeout, |w| !*w)
            .unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *woken, false)
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

/// What the health thread works with.
pub struct Round {
    /// This node's state.
    pub state: Shared,
    /// The stop signal and the donor reservations.
    pub flags: Flags,
    /// The watch it keeps.
    pub watch: SharedWatch,
    /// Wakes it for a round now.
    pub nudge: Nudge,
    /// Wakes the monitor for quick readings (after an eviction).
    pub reading: Nudge,
    /// The local server's socket (for evictions).
    pub socket: PathBuf,
}

/// Starts the health thread for the node whose state is `r.state`, asking peers on `port`
/// (signing with `key`, when there is one).
/// The watch sees the state as the endpoints answer it, `flags` applied: a node that drains
/// or is reserved as a donor is no writer candidate either, so after its reservation it
/// waits out the hold-off again before it claims `/master`. Each round publishes whether
/// this node is the writer candidate, and for how long it has been the writer (peers read
/// both on `/state`); a nudge, or this node's
/// own drain, starts a round at once, and the drain nudges the peers too. After each round
/// the members that did not answer are probed, and those proven dead evicted
/// ([`crate::evict`]).
pub fn spawn(
    r: Round,
    port: u16,
    key: Option<ClusterKey>,
    cfg: HealthSettings,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            let mut drained = false;
            let mut proven = BTreeMap::new();
            let mut writer_since: Option<Instant> = None;
            loop {
                let s = r.state.get();
                let client = HttpPeers::with_timeout(port, s.address, key.clone(), TIMEOUT);
                let ask = Watch::to_ask(&s);
                let draining = r.flags.draining.load(Ordering::SeqCst);
                if draining && !drained {
                    nudge_peers(ask.clone(), port, s.address, key.clone());
                }
                drained = draining;
                let answers = client.fetch_all(&ask);
                let answered: Vec<IpAddr> = answers
                    .iter()
                    .filter(|(_, st)| st.is_some())
                    .map(|(a, _)| *a)
                    .collect();
                // The state may have moved on while the peers answered.
                let mut s = r.state.get();
                r.flags.apply(&mut s);
                let was = r.watch.get().candidate_since.is_some();
                r.watch.update(|w| w.observe(&s, answers, Instant::now()));
                let w = r.watch.get();
                let candidate = w.candidate_since.is_some();
                if candidate != was {
                    let why = w
                        .candidate
                        .as_ref()
                        .map(|v| v.reason.clone())
                        .unwrap_or_default();
                    match (candidate, w.unopposed) {
                        (true, true) => log::info!("the writer from now on (unopposed): {why}"),
                        (true, false) => log::info!(
                            "the writer candidate: claims /master after the {}s hold-off: {why}",
                            super::WRITER_HOLDOFF.as_secs()
                        ),
                        (false, _) => log::info!("not the writer (candidate) any more: {why}"),
                    }
                }
                let now = Instant::now();
                writer_since = match (w.writer(&s, now).ok, writer_since) {
                    (true, since) => Some(since.unwrap_or(now)),
                    (false, _) => None,
                };
                let writer_secs = writer_since.map(|t| now.duration_since(t).as_secs());
                r.state.update(|s| {
                    s.writer_candidate = candidate;
                    s.writer_secs = writer_secs;
                });
                if cfg.evict_on_proof {
                    evict_the_dead(&r, &s, &answered, (port, &cfg), &mut proven);
                }
                r.nudge.wait(INTERVAL, &r.flags.draining);
            }
        })?;
    Ok(())
}

/// Probes the members of this node's component that did not answer `answered` (on
/// `ports.0` and Galera's port); evicts those at whose address nothing listens (at once
/// when this node is the first of the other members, as a backup once `proven` says the
/// proof has stood for [`evict::BACKUP_AFTER`]); clears the server's eviction list once the
/// view without the evicted members is installed ([`evict::clear_list`]).
fn evict_the_dead(
    r: &Round,
    s: &NodeState,
    answered: &[IpAddr],
    ports: (u16, &HealthSettings),
    proven: &mut BTreeMap<String, Instant>,
) {
    let (port, cfg) = ports;
    let w = r.watch.get();
    let suspects = evict::suspects(s, answered, &w.gcomm, &w.evicted);
    proven.retain(|uuid, _| suspects.iter().any(|(_, u)| u == uuid));
    for (addr, uuid) in suspects {
        let first = match evict::role(s, addr, answered) {
            Ok(role) => role == evict::Role::First,
            Err(why) => {
                log::debug!("{addr} did not answer; no eviction: {why}");
                proven.remove(&uuid);
                continue;
            }
        };
        let found = evict::act::probe_node(addr, port, cfg.galera_port);
        if found != (Port::Refused, Some(Port::Refused)) {
            log::debug!("{addr} did not answer; its ports: {found:?}: nothing is proven");
            proven.remove(&uuid);
            continue;
        }
        let since = *proven.entry(uuid.clone()).or_insert_with(|| {
            if !first {
                log::info!(
                    "nothing listens at {addr} any more: the first of the other members \
                     evicts it; this node does if it is still a member in {:.1}s",
                    evict::BACKUP_AFTER.as_secs_f32()
                );
            }
            Instant::now()
        });
        if !first && since.elapsed() < evict::BACKUP_AFTER {
            continue;
        }
        let role = if first { "" } else { " (as a backup)" };
        match evict::act::evict(&r.socket, &uuid) {
            Ok(()) => {
                log::warn!(
                    "evicted {addr} (gcomm UUID {uuid}) from the component{role}: {}",
                    evict::Proof::NothingListens
                );
                r.watch.update(|w| w.evicted.add(&uuid, addr));
                r.reading.wake();
            }
            Err(e) => log::warn!("cannot evict {addr} (gcomm UUID {uuid}): {e}"),
        }
    }
    if evict::clear_list(s, &w.gcomm) {
        match evict::act::clear(&r.socket) {
            Ok(()) => {
                r.watch.update(|w| w.evicted = evict::Evicted::default());
                log::info!(
                    "the evicted member(s) {} are out of the component: its eviction list is \
                     cleared",
                    s.evs_evict_list().join(", ")
                )
            }
            Err(e) => log::warn!("cannot clear the eviction list: {e}"),
        }
    }
}
