//! What a node knows about itself and tells its peers: the [`NodeState`] every node serves on
//! `/state`, and the election reads for every node it can reach.
//!
//! It is a module of its own, below the election and the HTTP exchange, because both use it:
//! the decision reasons about these values, and `peer` only carries them over the network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::galera::grastate::NIL_UUID;
use crate::galera::gvwstate::SavedView;
use crate::record::{Epoch, LastView, Member};

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

/// An operator's override pending on this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Override {
    /// None.
    #[default]
    None,
    /// `FORCE_BOOTSTRAP=yes` on the service (every task sees it): do not wait for missing
    /// nodes.
    Service,
    /// `galera-init bootstrap` run in this node (the force-bootstrap file): the same, and
    /// it may also restart the cluster from this node's history after an override gave it
    /// up.
    Command,
}

impl Override {
    /// Whether there is one.
    pub fn is_on(self) -> bool {
        self != Override::None
    }
}

/// What a node tells its peers. Every field but `address` and `phase` may be unknown yet;
/// fields added later default when an older node leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeState {
    /// The node's address (its `wsrep_node_address`).
    pub address: Option<IpAddr>,
    /// Its `wsrep_node_name` (the hostname).
    pub node_name: String,
    /// Its `wsrep_cluster_name` (`CLUSTER_NAME`): a node of another cluster is never a
    /// peer (empty: a node that does not say).
    pub cluster_name: String,
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
    /// `safe_to_bootstrap` from grastate.dat, when Galera set it: the node was the only
    /// member of its last Primary component. (A flag galera-init wrote for a bootstrap that
    /// never reached Primary does not count.)
    pub safe_to_bootstrap: bool,
    /// It last stopped cleanly while other members of its Primary component stayed: they
    /// may have gone on without it (galera-init's record).
    pub left_while_others: bool,
    /// It recorded that this node bootstraps, and has not been in a Primary component
    /// since (galera-init's record).
    pub accepted: Option<Member>,
    /// The last Primary view Galera saved for pc.recovery (gvwstate.dat, crash only).
    pub view: Option<SavedView>,
    /// The id galera-init gave this node's volume (its data), kept in the datadir.
    pub volume_id: Option<String>,
    /// The bootstraps this node's history went through (empty: unknown, older data).
    pub lineage: Vec<Epoch>,
    /// The last Primary view galera-init saw this node in: its members by volume.
    pub last_view: Option<LastView>,
    /// An override bootstrapped the cluster from other data and gave this node's history
    /// up: it has no say until an operator decides (galera-init's record).
    pub superseded: bool,
    /// A state snapshot transfer into this node is under way (the SST script's
    /// `sst_in_progress` file is in the datadir): mariadbd does not answer meanwhile.
    pub sst_in_progress: bool,
    /// An operator's override (FORCE_BOOTSTRAP, the force-bootstrap file or `galera-init
    /// bootstrap`) pending on this node: do not wait for missing nodes.
    pub override_requested: Override,
    /// Every node this one knows exists (DNS, and peers that asked it for its state).
    pub known: Vec<IpAddr>,
    /// The last decision and its reason, for operators.
    pub decision: Option<String>,
    /// What the node waits for, when it waits: nodes or data, each in a few words.
    pub waiting_for: Vec<String>,
    /// It is the writer candidate, or claims `/master` (its health thread's last round):
    /// a node that could take over the writes from it waits out the hold-off.
    pub writer_candidate: bool,
    /// For how many seconds it has been the writer (answered `/master` 200) without a break,
    /// as of its health thread's last round (`None`: it is not the writer). A joiner keeps
    /// its state transfer from blocking a writer that clients have been using
    /// ([`crate::decision::donor::settled_writer`]).
    pub writer_secs: Option<u64>,
    /// How much data its datadir holds, in bytes, without Galera's cache and InnoDB's redo
    /// log (measured while mariadbd runs): what a full state transfer from it copies.
    pub data_bytes: Option<u64>,
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
    /// `wsrep_cluster_conf_id`: changes with every view of the component.
    pub wsrep_cluster_conf_id: Option<i64>,
    /// `wsrep_incoming_addresses`: the client addresses of the component's members.
    pub wsrep_incoming_addresses: Option<String>,
    /// `wsrep_gcomm_uuid`: this server's member id in the component, new at every start of
    /// mariadbd (what a survivor evicts once it is proven dead, see [`crate::evict`]).
    pub wsrep_gcomm_uuid: Option<String>,
    /// `wsrep_last_committed`.
    pub wsrep_last_committed: Option<i64>,
    /// `wsrep_local_cached_downto`: the oldest write set in the node's gcache, so the
    /// oldest position it can serve by IST (`None`: the cache is empty or unknown). A
    /// joiner predicts from it which node Galera picks as its IST donor.
    pub wsrep_local_cached_downto: Option<i64>,
    /// `wsrep_ready`: the server accepts queries.
    pub wsrep_ready: Option<bool>,
    /// `wsrep_desync` (the variable) or a non-zero `wsrep_desync_count`: the node is
    /// desynced on purpose (a backup, a donor) and may lag behind.
    pub wsrep_desync: Option<bool>,
    /// `wsrep_reject_queries` (`NONE`, `ALL`, `ALL_KILL`).
    pub wsrep_reject_queries: Option<String>,
    /// `wsrep_sst_donor_rejects_queries`: a donor refuses queries during an SST.
    pub wsrep_sst_donor_rejects_queries: Option<bool>,
    /// `Threads_connected`: the server's client connections.
    pub threads_connected: Option<i64>,
    /// A stop signal has come: the node drains (proxies move clients away) while mariadbd
    /// shuts down.
    pub draining: bool,
    /// For how many seconds the node has been Synced without a break (`None`: it is not).
    /// A joiner prefers donors that have been Synced for a while: a node that has just
    /// received its own state transfer has been seen to fail as a mariabackup donor.
    pub synced_secs: Option<u64>,
    /// A joiner asked this node to leave the read pool while it serves its state transfer
    /// (the reservation lasts [`crate::health::DONOR_RESERVATION`]).
    pub donor_reserved: bool,
    /// It is, or is about to be, the donor of a transfer that blocks its writes (an rsync
    /// SST), or a donor whose transfer is unknown: it cannot take the writes meanwhile. A
    /// mariabackup or IST donor can.
    pub donor_blocks: bool,
    /// How many times galera-init has started mariadbd since the container started.
    pub mariadbd_starts: u64,
    /// Every `wsrep_%` status variable of the last reading, for `/metrics` (kept out of
    /// the state peers exchange).
    #[serde(skip)]
    pub wsrep_status: BTreeMap<String, String>,
    /// The component's members (`wsrep_incoming_addresses`) at the last reading that named
    /// any, kept while the server does not answer: the nodes told when mariadbd dies (the
    /// reading after its death may come before the supervisor reaps it).
    #[serde(skip)]
    pub last_members: Vec<IpAddr>,
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
                .is_some_and(|u| u != NIL_UUID)
    }

    /// Whether the node is Synced (a good donor).
    pub fn is_synced(&self) -> bool {
        self.is_primary() && self.wsrep_local_state == Some(4)
    }

    /// Whether the node is a donor (`wsrep_local_state` 2) of a Primary component.
    pub fn is_donor(&self) -> bool {
        self.is_primary() && self.wsrep_local_state == Some(2)
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

    /// Whether the node holds data (it has a history to vote with).
    pub fn has_data(&self) -> bool {
        self.fresh == Some(false)
    }

    /// The gcomm UUIDs on the server's eviction list (`wsrep_evs_evict_list` of the last
    /// reading): evicted by this node, or taken from another member's messages.
    pub fn evs_evict_list(&self) -> Vec<String> {
        self.wsrep_status
            .get("wsrep_evs_evict_list")
            .map(|l| {
                l.split(',')
                    .map(str::trim)
                    .filter(|u| crate::galera::grastate::is_uuid(u))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the server's group protocol is settled in a view (`wsrep_evs_state`
    /// `OPERATIONAL`), not gathering or installing a new one.
    pub fn evs_operational(&self) -> bool {
        self.wsrep_status
            .get("wsrep_evs_state")
            .is_some_and(|s| s == "OPERATIONAL")
    }

    /// The members' addresses from `wsrep_incoming_addresses` (`10.0.0.2:3306,…`).
    pub fn incoming_addresses(&self) -> Vec<IpAddr> {
        let Some(text) = &self.wsrep_incoming_addresses else {
            return Vec::new();
        };
        text.split(',')
            .filter_map(|a| {
                let a = a.trim();
                let host = match a.rsplit_once(':') {
                    Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
                    _ => a,
                };
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// A short name for logs: the node name and address.
    pub fn label(&self) -> String {
        match (self.node_name.is_empty(), self.address) {
            (false, Some(a)) => format!("{} ({a})", self.node_name),
            (true, Some(a)) => a.to_string(),
            (false, None) => self.node_name.clone(),
            (true, None) => "?".into(),
        }
    }
}

/// This node's state, shared by the start-up sequence, the monitor and the HTTP server.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_addresses_are_parsed() {
        let s = NodeState {
            wsrep_incoming_addresses: Some("10.0.0.2:3306,10.0.0.3:3306,[fd00::4]:3306".into()),
            ..NodeState::default()
        };
        let want: Vec<IpAddr> = vec![
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
            "fd00::4".parse().unwrap(),
        ];
        assert_eq!(s.incoming_addresses(), want);
        assert!(NodeState::default().incoming_addresses().is_empty());
    }
}
