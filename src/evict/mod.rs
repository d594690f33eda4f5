//! Eviction on proof: when a member of the component is proven dead, the survivors remove it
//! from the component at once (Galera's `evs.evict`), instead of waiting out
//! `evs.suspect_timeout` (about 6 s in which no node of the component can commit).
//!
//! Galera waits because a silent member may only be slow. galera-init sometimes *knows*
//! that it is dead, and only then does it evict:
//!
//! - **Its own galera-init saw its mariadbd exit** ([`Proof::Exited`]): a process that
//!   `waitpid` has reaped runs no more, so the gcomm UUID it had (new at every start of
//!   mariadbd) belongs to nobody alive. The dead node's galera-init tells its peers
//!   (`POST /evict`, signed with the cluster key when there is one) before it does anything
//!   else; a peer takes the word only for the UUID that very node reported as its own
//!   ([`accept_notice`]): no node can have another evicted.
//! - **Nothing listens at its address** ([`Proof::NothingListens`]): a member of the
//!   component stopped answering, and both its galera-init's port and its Galera port
//!   *refuse* connections. galera-init is PID 1 and serves its port from its first second
//!   to its last, and mariadbd dies with it; a refusal comes from a host that is there with
//!   nothing listening. A timeout proves nothing (a frozen node, a slow or cut link look the
//!   same) and is left to Galera.
//!
//! One survivor evicts: the first of the component's other members (by
//! `wsrep_incoming_addresses`, Galera's index order, [`first_survivor`]). Two evictions at
//! once cost a second more (measured: about 10 ms with one survivor evicting, 1.01 s in
//! two of three trials with two, Galera's `evs.join_retrans_period`). The others are its
//! backup: each evicts the member itself if it is still in its component
//! [`BACKUP_AFTER`] later.
//!
//! An eviction never keeps a component Primary that Galera's quorum would not: a node
//! evicts only while it and the members that answer it are a majority of its component
//! without the dead one ([`majority_without`]). A component of two that loses one goes
//! non-Primary as it always did, and a node cut off from the others evicts nobody.
//!
//! Silence alone never evicts. The UUID evicted is one that a dead process had; a restarted
//! mariadbd has another and joins as any node does. Every node clears its server's
//! eviction list (`evs.evict=`) as soon as the view without the evicted members is
//! installed ([`clear_list`] says why it must not wait).
//!
//! Everything here is pure; [`act`] carries it out (probes, the local server).

pub mod act;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::galera::grastate::is_uuid;
use crate::state::NodeState;

pub use crate::peer::client::EVICT_PATH;

/// How long a survivor that is not the first leaves the eviction to the first: far longer
/// than an eviction takes (tens of milliseconds), far shorter than Galera's suspicion.
pub const BACKUP_AFTER: Duration = Duration::from_millis(1500);

/// What proves that a member is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// Its own galera-init saw its mariadbd exit (with this exit code or signal).
    Exited,
    /// Its galera-init's port and its Galera port both refuse connections.
    NothingListens,
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proof::Exited => "its galera-init saw its mariadbd exit",
            Proof::NothingListens => "nothing listens at its address any more",
        })
    }
}

/// What a node whose mariadbd died says to its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The dead server's `wsrep_gcomm_uuid`.
    pub gcomm_uuid: String,
    /// How it ended, for the log (`exit code 1`, `killed by signal 9`).
    pub how: String,
}

/// Why a notice is not acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The UUID is not one.
    #[error("'{0}' is not a gcomm UUID")]
    NotAUuid(String),
    /// The sender did not name itself.
    #[error("the sender did not name itself")]
    Anonymous,
    /// The UUID is this node's own.
    #[error("{0} is this node's own gcomm UUID")]
    Own(String),
    /// This node has not heard the sender report that UUID as its own.
    #[error("{origin} did not report {uuid} as its own gcomm UUID in its last answer")]
    NotTheSenders {
        /// The sender.
        origin: IpAddr,
        /// The UUID.
        uuid: String,
    },
    /// This node's server is not in a component to evict from.
    #[error("this node's server is not in a Primary component")]
    NotPrimary,
}

/// Whether a notice from `origin` (the address it names itself by; with a cluster key, a
/// signed one) is acted on by the node whose state is `own`: it must name the gcomm UUID
/// that `origin` itself reported last (`heard`), so a node can only have its own dead
/// server evicted.
pub fn accept_notice(
    own: &NodeState,
    origin: Option<IpAddr>,
    heard: Option<&NodeState>,
    notice: &Notice,
) -> Result<(), Refusal> {
    let uuid = &notice.gcomm_uuid;
    if !is_uuid(uuid) {
        return Err(Refusal::NotAUuid(uuid.chars().take(40).collect()));
    }
    let origin = origin.ok_or(Refusal::Anonymous)?;
    if own.wsrep_gcomm_uuid.as_deref() == Some(uuid.as_str()) {
        return Err(Refusal::Own(uuid.clone()));
    }
    if heard.and_then(|h| h.wsrep_gcomm_uuid.as_deref()) != Some(uuid.as_str()) {
        return Err(Refusal::NotTheSenders {
            origin,
            uuid: uuid.clone(),
        });
    }
    if !own.is_primary() {
        return Err(Refusal::NotPrimary);
    }
    Ok(())
}

/// The members to probe after a health round: those of this node's component (by
/// `wsrep_incoming_addresses`) that did not answer it, with the gcomm UUID they last
/// reported (`gcomm`), not evicted already.
pub fn suspects(
    own: &NodeState,
    answered: &[IpAddr],
    gcomm: &BTreeMap<IpAddr, String>,
    evicted: &Evicted,
) -> Vec<(IpAddr, String)> {
    if !own.is_primary() {
        return Vec::new();
    }
    own.incoming_addresses()
        .into_iter()
        .filter(|a| Some(*a) != own.address && !answered.contains(a))
        .filter_map(|a| gcomm.get(&a).map(|u| (a, u.clone())))
        .filter(|(_, u)| Some(u.as_str()) != own.wsrep_gcomm_uuid.as_deref())
        .filter(|(_, u)| !evicted.contains(u))
        .collect()
}

/// Whether the node whose state is `own` is the one that evicts the dead member at `dead`:
/// the first of its component's members but `dead`.
pub fn first_survivor(own: &NodeState, dead: IpAddr) -> bool {
    own.address.is_some()
        && own.incoming_addresses().into_iter().find(|a| *a != dead) == own.address
}

/// Whether this node and the members that answered it (`answered`) are a majority of its
/// component without `dead`: only then may it evict. An eviction must never keep a
/// component Primary that Galera's own quorum would not: a component of two that loses one
/// goes non-Primary as before, and a node cut off from the others (whatever its probes
/// say) evicts nobody.
pub fn majority_without(own: &NodeState, dead: IpAddr, answered: &[IpAddr]) -> bool {
    let members = own.incoming_addresses();
    let alive = members
        .iter()
        .filter(|a| **a != dead && (Some(**a) == own.address || answered.contains(a)))
        .count();
    members.contains(&dead) && alive * 2 > members.len()
}

/// What a survivor does once a member's death is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It evicts at once: it is the first of the other members ([`first_survivor`]).
    First,
    /// It evicts only if the member is still in its component [`BACKUP_AFTER`] later.
    Backup,
}

/// Why a survivor evicts nobody, though a member's death is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoEviction {
    /// This node and the members that answer it are no majority without the dead one.
    #[error(
        "this node and the members that answer it are no majority of the component \
         without it: Galera's own quorum decides"
    )]
    NoMajority,
}

/// The one rule both proofs follow: the role of the node whose state is `own` once the
/// member at `dead` is proven dead, the members that answered its last round being
/// `answered` ([`majority_without`], then [`first_survivor`]).
pub fn role(own: &NodeState, dead: IpAddr, answered: &[IpAddr]) -> Result<Role, NoEviction> {
    if !majority_without(own, dead, answered) {
        return Err(NoEviction::NoMajority);
    }
    Ok(if first_survivor(own, dead) {
        Role::First
    } else {
        Role::Backup
    })
}

/// Whether `dead` is still a member of the component of the node whose state is `own`: a
/// backup evicts only then.
pub fn still_member(own: &NodeState, dead: IpAddr) -> bool {
    own.is_primary() && own.incoming_addresses().contains(&dead)
}

/// The UUIDs this node evicted, and the address each had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evicted(BTreeMap<String, IpAddr>);

impl Evicted {
    /// Notes that `uuid`, at `addr`, was evicted.
    pub fn add(&mut self, uuid: &str, addr: IpAddr) {
        self.0.insert(uuid.to_string(), addr);
    }

    /// Whether `uuid` was evicted by this node.
    pub fn contains(&self, uuid: &str) -> bool {
        self.0.contains_key(uuid)
    }

    /// Whether nothing was evicted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether the server of the node whose state is `own` should clear its eviction list
/// (`evs.evict=`) now: the list is not empty, the server is settled in a Primary view
/// ([`NodeState::evs_operational`]), and no UUID on the list is still a member's (`gcomm`:
/// the UUID each peer last reported; a member at an address whose last UUID is on the list
/// has not been removed yet).
///
/// Why at once, and on every node: a UUID on a list outlives the view that removed it, and
/// Galera 26.4 passes it on wrongly. A node lists every member it knows in its join
/// messages; for a known node that is neither in its view nor has sent it a message, the
/// entry is built with the evicted flag in the segment's place (`populate_node_list`,
/// `MessageNode(operational, suspected, is_evicted(uuid))`), so it goes out as "not
/// evicted". A node that learns of the UUID from such an entry counts it as a live member
/// that has not sent its join message and waits for it until `evs.suspect_timeout`: every
/// later view change (the evicted node's return, the next eviction) then took 5 s in the
/// lab. The list is per node and grows on nodes that never evicted (a join message that
/// flags a UUID as evicted puts it on the receiver's list too), so each node clears its
/// own. A dead server's UUID never comes back, so the list has nothing left to keep out.
pub fn clear_list(own: &NodeState, gcomm: &BTreeMap<IpAddr, String>) -> bool {
    let list = own.evs_evict_list();
    if list.is_empty() || !own.is_primary() || !own.evs_operational() {
        return false;
    }
    let members = own.incoming_addresses();
    !list
        .iter()
        .any(|u| gcomm.iter().any(|(a, g)| g == u && members.contains(a)))
}

#[cfg(test)]
mod tests;
