//! Peer state exchange: the HTTP carrier of [`NodeState`](crate::state::NodeState).
//!
//! From the moment it starts, every node serves its state as JSON on
//! `http://<address>:<HTTP_PORT>/state`. The election reads the state of every node it knows
//! of; a node that does not answer is *unknown*, never *absent*: it may be starting, cut off,
//! or already running a Primary component we cannot see.
//!
//! A node asking for a peer's state names itself in the [`PEER_HEADER`] header, and the
//! peer remembers it ([`Learned`]). DNS answers spread by gossip in Swarm and can differ
//! between hosts for a while; a node that is not in this node's answer yet, but asks it,
//! exists all the same.

pub mod auth;
pub mod client;
pub mod http;
pub mod report;
pub mod status;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header a node sends with its own address when it asks a peer for its state.
pub const PEER_HEADER: &str = "x-galera-init-peer";

/// How long a node that asked this one for its state counts as known.
pub const LEARNED_TTL: Duration = Duration::from_secs(10);

/// The nodes that asked this one for its state, and when they last did.
#[derive(Debug, Clone, Default)]
pub struct Learned(Arc<Mutex<HashMap<IpAddr, Instant>>>);

impl Learned {
    /// Notes that `addr` asked just now.
    pub fn note(&self, addr: IpAddr) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr, Instant::now());
    }

    /// The nodes that asked within [`LEARNED_TTL`], sorted.
    pub fn recent(&self) -> Vec<IpAddr> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, t| t.elapsed() < LEARNED_TTL);
        let mut v: Vec<IpAddr> = map.keys().copied().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests;
