//! The health thread: once a second it asks this node's peers for their state, and keeps
//! the [`Watch`] that `/live` and `/master` read.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Flags, HealthSettings, Watch};
use crate::peer::client::HttpPeers;
use crate::state::Shared;

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

/// Starts the health thread for the node whose state is `state`, asking peers on `port`.
/// The watch sees the state as the endpoints answer it, `flags` applied: a node that drains
/// or is reserved as a donor is no writer candidate either, so after its reservation it
/// waits out the hold-off again before it claims `/master`.
pub fn spawn(
    state: Shared,
    flags: Flags,
    watch: SharedWatch,
    port: u16,
    cfg: HealthSettings,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            loop {
                let started = Instant::now();
                let s = state.get();
                let client = HttpPeers::with_timeout(port, s.address, TIMEOUT);
                let answers = client.fetch_all(&Watch::to_ask(&s));
                // The state may have moved on while the peers answered.
                let mut s = state.get();
                flags.apply(&mut s);
                watch.update(|w| w.observe(&s, answers, Instant::now(), &cfg));
                std::thread::sleep(INTERVAL.saturating_sub(started.elapsed()));
            }
        })?;
    Ok(())
}
