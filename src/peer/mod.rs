//! Peer state exchange: what this node tells the others, and what they tell it.
//!
//! From the moment it starts, every node serves its [`NodeState`] as JSON on
//! `http://<address>:<HTTP_PORT>/state`. The election reads the state of every node DNS
//! lists; a node that does not answer is *unknown*, never *absent*: it may be starting, cut
//! off, or already running a Primary component we cannot see.

pub mod client;
pub mod http;
pub mod status;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::galera::gvwstate::SavedView;

/// Default for `HTTP_PORT`.
pub const DEFAULT_PORT: u16 = 9200;

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for DNS to list it; its datadir is not inspected yet.
    #[default]
    Discovering,
    /// Recovering its position with `mariadbd --wsrep-recover`.
    Recovering,
    /// Reporting its state and waiting for the election to decide.
    Waiting,
    /// Decided to bootstrap: initialising or starting mariadbd with `--wsrep-new-cluster`.
    Bootstrapping,
    /// Decided to join (or to let pc.recovery restore its view): mariadbd starting, SST/IST.
    Joining,
    /// mariadbd runs; the `wsrep_*` fields say in what state.
    Running,
    /// mariadbd is shutting down or has exited.
    Stopping,
}

/// What a node tells its peers. Every field but `address` and `phase` may be unknown yet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeState {
    /// The node's address (its `wsrep_node_address`).
    pub address: Option<IpAddr>,
    /// Its `wsrep_node_name` (the hostname).
    pub node_name: String,
    /// Where it is in its life.
    pub phase: Phase,
    /// Whether its datadir holds no data (a joiner receives everything by SST).
    pub fresh: Option<bool>,
    /// Whether its datadir has a `grastate.dat` (it has been a Galera node).
    pub has_galera_state: bool,
    /// The cluster UUID of its data (grastate.dat, or recovered).
    pub uuid: Option<String>,
    /// Its last committed transaction (grastate.dat, or `--wsrep-recover` when that says -1).
    pub seqno: Option<i64>,
    /// `safe_to_bootstrap` from grastate.dat: it was the last node to leave.
    pub safe_to_bootstrap: bool,
    /// The last Primary view it saved for pc.recovery (gvwstate.dat).
    pub view: Option<SavedView>,
    /// `wsrep_cluster_status` once mariadbd runs (`Primary`, `non-Primary`…).
    pub wsrep_cluster_status: Option<String>,
    /// `wsrep_local_state` (1 joining, 2 donor, 3 joined, 4 synced).
    pub wsrep_local_state: Option<i64>,
    /// `wsrep_local_state_comment`.
    pub wsrep_local_state_comment: Option<String>,
    /// `wsrep_local_index`: the lowest one is the writer a proxy such as MaxScale picks.
    pub wsrep_local_index: Option<i64>,
    /// `wsrep_cluster_state_uuid`: the running cluster's UUID.
    pub wsrep_cluster_state_uuid: Option<String>,
    /// `wsrep_cluster_size`.
    pub wsrep_cluster_size: Option<i64>,
    /// `wsrep_last_committed`.
    pub wsrep_last_committed: Option<i64>,
}

impl NodeState {
    /// Whether the node is part of a Primary component whose state is established (right
    /// after pc.recovery restores a component, it is Primary before it knows its cluster
    /// UUID: joining then would compare against nothing).
    pub fn is_primary(&self) -> bool {
        self.phase == Phase::Running
            && self.wsrep_cluster_status.as_deref() == Some("Primary")
            && self
                .wsrep_cluster_state_uuid
                .as_deref()
                .is_some_and(|u| u != crate::galera::grastate::NIL_UUID)
    }

    /// Whether the node is Synced (a good donor).
    pub fn is_synced(&self) -> bool {
        self.is_primary() && self.wsrep_local_state == Some(4)
    }

    /// The position that counts for the election: the most advanced of what the datadir
    /// said at start and what mariadbd has committed since (which is -1 until a running
    /// node has joined a component).
    pub fn position(&self) -> Option<i64> {
        match (self.seqno, self.wsrep_last_committed) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// This node's state, shared by the start-up sequence, the status poller and the HTTP
/// server.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<Mutex<NodeState>>);

impl Shared {
    /// A copy of the current state.
    pub fn get(&self) -> NodeState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the state.
    pub fn update(&self, f: impl FnOnce(&mut NodeState)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
