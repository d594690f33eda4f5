//! The bootstrap-or-join decision, as a pure function of what the node knows.
//!
//! Everything that talks to the world (DNS, the peers' `/state`, the datadir) feeds
//! [`decide`]; everything that acts (init, config, mariadbd) carries out the [`Plan`]. The
//! table of cases in the tests is the specification. The rules, in order:
//!
//! 1. **A Primary component exists**: join it (unless this node's data belongs to another
//!    cluster: refuse, never wipe). `FORCE_BOOTSTRAP` does not split a running cluster.
//! 2. **Manual override** (`FORCE_BOOTSTRAP` or the `force-bootstrap` file): bootstrap.
//! 3. **A peer has committed** to bootstrapping or joining: wait for its Primary component.
//! 4. **Fresh cluster** (no node has data): once every listed node has answered, the set has
//!    been stable for the settle window and `CLUSTER_SIZE` (if set) nodes are visible, the
//!    lowest address bootstraps; the others wait for it and then join (rule 1).
//! 5. **Full outage** (data exists, no Primary): if every member of this node's saved view
//!    (gvwstate.dat) is back with the same view, start normally and let Galera's pc.recovery
//!    restore it. Otherwise the node with the most advanced position bootstraps, once the
//!    expected nodes have reported (or a majority after the outage timeout); a node that was
//!    the last to leave (`safe_to_bootstrap: 1`) needs nobody. Never while a peer with a
//!    higher position is known.
//!
//! "Unknown" (a listed node that does not answer) is never taken as "absent".

use std::cmp::Reverse;
use std::net::IpAddr;
use std::time::Duration;

use crate::galera::grastate::NIL_UUID;
use crate::state::{NodeState, Phase};

/// The election's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// `CLUSTER_SIZE`: how many nodes the operator deployed, when given.
    pub cluster_size: Option<usize>,
    /// `SETTLE_WINDOW`: how long the set of listed nodes must stay unchanged before a
    /// bootstrap.
    pub settle: Duration,
    /// `OUTAGE_TIMEOUT`: after a full outage, how long to wait for every expected node
    /// before a majority is enough.
    pub outage_timeout: Duration,
}

/// What the decision is based on.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// This node's state (address, datadir, position, saved view).
    pub own: &'a NodeState,
    /// Every node DNS lists now, this one included.
    pub members: &'a [IpAddr],
    /// What every other listed node answered (`None`: unknown).
    pub peers: &'a [(IpAddr, Option<NodeState>)],
    /// How long `members` has been unchanged.
    pub stable_for: Duration,
    /// How long the election has been running.
    pub waited: Duration,
    /// The operator's override.
    pub force_bootstrap: bool,
    /// Whether pc.recovery may be tried (not after it has failed once).
    pub allow_pc_recovery: bool,
    /// Settings.
    pub params: &'a Params,
}

/// What the node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start a new Primary component from this node (`--wsrep-new-cluster`).
    Bootstrap {
        /// Why, for the log.
        reason: String,
    },
    /// Start mariadbd without bootstrapping: join a Primary component, or let pc.recovery
    /// restore the saved one.
    Join {
        /// The `gcomm://` list: every known node.
        members: Vec<IpAddr>,
        /// `wsrep_sst_donor`: node names, the writer (lowest `wsrep_local_index`) last.
        donors: Vec<String>,
        /// No Primary component runs yet: Galera's pc.recovery is expected to restore the
        /// saved one (the node watches that it does).
        pc_recovery: bool,
        /// Why, for the log.
        reason: String,
    },
    /// Not yet: ask again in a moment.
    Wait {
        /// What the node waits for.
        reason: String,
    },
    /// Refuse to start: the reason says what the operator can do.
    Refuse {
        /// Why.
        reason: String,
    },
}

/// Decides how this node starts.
pub fn decide(i: &Inputs) -> Plan {
    let own_addr = i.own.address;
    let known: Vec<(IpAddr, &NodeState)> = i
        .peers
        .iter()
        .filter(|(a, _)| Some(*a) != own_addr)
        .filter_map(|(a, s)| s.as_ref().map(|s| (*a, s)))
        .collect();

    // 1. A Primary component exists: join it.
    let primaries: Vec<&NodeState> = known
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| s.is_primary())
        .collect();
    if let Some(first) = primaries.first() {
        return join_primary(i, &known, first);
    }

    // 2. The operator's override.
    if i.force_bootstrap {
        return Plan::Bootstrap {
            reason: "manual override (FORCE_BOOTSTRAP or the force-bootstrap file): \
                     bootstrapping a new Primary component from this node's data"
                .into(),
        };
    }

    // 5a. pc.recovery: every member of our saved view is back with the same view, and no
    // other node holds data (a node outside the view, even a stale one, has been seen to
    // keep Galera from restoring the view: then the election decides).
    if let Some(view) = &i.own.view
        && i.own.fresh == Some(false)
        && i.allow_pc_recovery
    {
        let in_view = |s: &NodeState| {
            s.view
                .as_ref()
                .is_some_and(|v| view.members.contains(&v.my_uuid) && v.view_id == view.view_id)
        };
        let back = view.members.iter().all(|m| {
            *m == view.my_uuid
                || known
                    .iter()
                    .any(|(_, s)| in_view(s) && s.view.as_ref().is_some_and(|v| v.my_uuid == *m))
        });
        let outsiders = known
            .iter()
            .any(|(_, s)| s.fresh == Some(false) && !in_view(s));
        if back && !outsiders {
            return Plan::Join {
                members: i.members.to_vec(),
                donors: Vec::new(),
                pc_recovery: true,
                reason: format!(
                    "all {} members of the last Primary view are back: Galera's pc.recovery \
                     restores it",
                    view.members.len()
                ),
            };
        }
    }

    // 3. Someone has committed to a plan: its Primary component is coming.
    if let Some((addr, s)) = known
        .iter()
        .find(|(_, s)| matches!(s.phase, Phase::Bootstrapping | Phase::Joining))
    {
        return Plan::Wait {
            reason: format!("{addr} is {:?}; waiting for its Primary component", s.phase)
                .to_lowercase(),
        };
    }

    // Nodes listed in DNS that have not reported a usable state yet.
    let pending: Vec<IpAddr> = i
        .members
        .iter()
        .copied()
        .filter(|a| Some(*a) != own_addr)
        .filter(|a| match i.peers.iter().find(|(p, _)| p == a) {
            Some((_, Some(s))) => !reported(s),
            _ => true,
        })
        .collect();
    let mut reporters: Vec<(IpAddr, &NodeState)> =
        known.iter().copied().filter(|(_, s)| reported(s)).collect();
    if let Some(a) = own_addr {
        reporters.push((a, i.own));
    }

    if reporters.iter().all(|(_, s)| s.fresh == Some(true)) {
        fresh_cluster(i, &pending)
    } else {
        full_outage(i, &pending, &reporters)
    }
}

/// A node whose state can be used in the election.
fn reported(s: &NodeState) -> bool {
    match s.phase {
        Phase::Waiting => s.fresh == Some(true) || s.position().is_some(),
        Phase::Running => s.position().is_some(),
        _ => false,
    }
}

fn join_primary(i: &Inputs, known: &[(IpAddr, &NodeState)], primary: &NodeState) -> Plan {
    let cluster = primary.wsrep_cluster_state_uuid.as_deref();
    if i.own.fresh == Some(false) {
        if !i.own.has_galera_state {
            return Plan::Refuse {
                reason: "a Primary component runs, but this node's datadir holds data without \
                         Galera state: joining would replace it by SST; move the data away \
                         (or empty the volume) to join"
                    .into(),
            };
        }
        if let (Some(own), Some(cluster)) = (i.own.uuid.as_deref(), cluster)
            && own != NIL_UUID
            && own != cluster
        {
            return Plan::Refuse {
                reason: format!(
                    "this node's data belongs to cluster {own}, but the running Primary \
                     component is cluster {cluster}: refusing to join (an SST would wipe it); \
                     move the data away, or empty the volume to join as a new node"
                ),
            };
        }
    }
    // Empty joiners take their SST one at a time: two back-to-back mariabackup SSTs from
    // one donor have been seen to fail here, and the second joiner then gets a donor that
    // is not the writer.
    if i.own.fresh == Some(true)
        && let Some((a, _)) = known.iter().find(|(a, s)| {
            s.phase == Phase::Joining && s.fresh == Some(true) && Some(*a) < i.own.address
        })
    {
        return Plan::Wait {
            reason: format!(
                "{a} is receiving its SST; nodes with an empty datadir join one at a time"
            ),
        };
    }
    let mut members: Vec<IpAddr> = i.members.to_vec();
    members.extend(known.iter().map(|(a, _)| *a));
    members.sort();
    members.dedup();
    // Synced nodes are donors, the writer (lowest wsrep_local_index) last, so a joiner does
    // not knock the node taking the writes out of sync.
    let mut synced: Vec<&NodeState> = known
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| s.is_synced())
        .collect();
    synced.sort_by_key(|s| Reverse(s.wsrep_local_index.unwrap_or(i64::MAX)));
    let donors = synced
        .iter()
        .map(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
        .collect();
    let forced = if i.force_bootstrap {
        " (FORCE_BOOTSTRAP ignored: bootstrapping now would split the cluster)"
    } else {
        ""
    };
    Plan::Join {
        members,
        donors,
        pc_recovery: false,
        reason: format!(
            "a Primary component of {} node(s) runs (cluster {}): joining it{forced}",
            primary.wsrep_cluster_size.unwrap_or(0),
            cluster.unwrap_or("?")
        ),
    }
}

fn fresh_cluster(i: &Inputs, pending: &[IpAddr]) -> Plan {
    let n = i.members.len();
    if !pending.is_empty() {
        return Plan::Wait {
            reason: format!("fresh cluster: waiting for {} to answer", list(pending)),
        };
    }
    if let Some(size) = i.params.cluster_size
        && n < size
    {
        return Plan::Wait {
            reason: format!("fresh cluster: {n} of CLUSTER_SIZE={size} nodes visible"),
        };
    }
    if i.stable_for < i.params.settle {
        return Plan::Wait {
            reason: format!(
                "fresh cluster of {n} node(s): waiting for the set of nodes to stay unchanged \
                 for {}s",
                i.params.settle.as_secs()
            ),
        };
    }
    let lowest = i.members.iter().min().copied();
    if lowest.is_some() && lowest == i.own.address {
        Plan::Bootstrap {
            reason: format!(
                "fresh cluster of {n} node(s), none has data: this node has the lowest address \
                 and bootstraps"
            ),
        }
    } else {
        Plan::Wait {
            reason: format!(
                "fresh cluster of {n} node(s): {} (lowest address) bootstraps; waiting to join it",
                lowest.map(|a| a.to_string()).unwrap_or_default()
            ),
        }
    }
}

fn full_outage(i: &Inputs, pending: &[IpAddr], reporters: &[(IpAddr, &NodeState)]) -> Plan {
    let data: Vec<(IpAddr, &NodeState)> = reporters
        .iter()
        .copied()
        .filter(|(_, s)| s.fresh == Some(false))
        .collect();
    let mut uuids: Vec<&str> = data
        .iter()
        .filter_map(|(_, s)| s.uuid.as_deref())
        .filter(|u| *u != NIL_UUID)
        .collect();
    uuids.sort();
    uuids.dedup();
    if uuids.len() > 1 {
        return Plan::Refuse {
            reason: format!(
                "the nodes hold data of {} different clusters ({}): refusing to pick one; \
                 keep the volumes of one cluster only",
                uuids.len(),
                uuids.join(", ")
            ),
        };
    }

    let any_safe = data.iter().any(|(_, s)| s.safe_to_bootstrap);
    let view_size = reporters
        .iter()
        .filter_map(|(_, s)| s.view.as_ref().map(|v| v.members.len()))
        .max()
        .unwrap_or(0);
    let seen = i.members.len().max(view_size);
    // Without a node that left last, some node was alive after every reporting one: at
    // least one more node than this one holds data.
    let expected = match i.params.cluster_size {
        Some(n) => n.max(seen),
        None => seen.max(if any_safe { 1 } else { 2 }),
    };
    let count = reporters.len();
    let complete = pending.is_empty() && count >= expected && i.stable_for >= i.params.settle;
    let majority = i.waited >= i.params.outage_timeout && count * 2 > expected;

    // The most advanced node: highest position, then the one that left last, then one that
    // is not already running, then the lowest address.
    let key = |(a, s): &(IpAddr, &NodeState)| {
        (
            s.position().unwrap_or(-1),
            s.safe_to_bootstrap,
            s.phase != Phase::Running,
            Reverse(*a),
        )
    };
    let Some(best) = data.iter().copied().max_by_key(key) else {
        return Plan::Wait {
            reason: "full outage: no node with data has reported yet".into(),
        };
    };
    let best_pos = best.1.position().unwrap_or(-1);
    let last_to_leave = best.1.safe_to_bootstrap && best_pos >= 0;
    if !(complete || majority || last_to_leave) {
        return Plan::Wait {
            reason: format!(
                "full outage: {count} of {expected} expected node(s) reported{}; a majority \
                 is enough after {}s",
                if pending.is_empty() {
                    String::new()
                } else {
                    format!(", waiting for {}", list(pending))
                },
                i.params.outage_timeout.as_secs()
            ),
        };
    }
    if Some(best.0) != i.own.address {
        let hint = if best.1.phase == Phase::Running {
            " (it runs without a Primary component: bootstrap it with SET GLOBAL \
             wsrep_provider_options='pc.bootstrap=YES')"
        } else {
            ""
        };
        return Plan::Wait {
            reason: format!(
                "full outage: {} has the most advanced data (seqno {best_pos}) and bootstraps; \
                 waiting to join it{hint}",
                best.0
            ),
        };
    }
    Plan::Bootstrap {
        reason: format!(
            "full outage: this node has the most advanced data (seqno {best_pos}{}) of {count} \
             reporting node(s)",
            if last_to_leave { ", last to leave" } else { "" }
        ),
    }
}

fn list(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
