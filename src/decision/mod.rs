//! The bootstrap-or-join decision, as a pure function of what the node knows.
//!
//! Everything that talks to the world (DNS, the peers' `/state`, the datadir) feeds
//! [`decide`]; everything that acts (init, config, mariadbd, `pc.bootstrap`) carries out the
//! [`Plan`]. The table of cases in the tests is the specification; the simulation in
//! `tests/sim` checks it against thousands of fault schedules. The rules, in the order they
//! are checked, each in a function of its own:
//!
//! 1. **A Primary component runs** ([`primary`]): join it, unless this node's history would
//!    be lost or mixed: data of another cluster, a position ahead of the cluster's, or a
//!    history that diverged from it (an override bootstrapped older data) or cannot be
//!    placed in it (no record). Those wait, saying why; they are never wiped by an SST.
//! 2. **pc.recovery** ([`pc_recovery`]): every member of this node's saved view
//!    (gvwstate.dat) is back with that view, and no other node holds data: start normally
//!    and let Galera restore it.
//! 3. **A peer has committed** to bootstrapping or joining ([`committed_peer`]): wait for
//!    its Primary component (not for ever: a peer stuck in that phase for `OUTAGE_TIMEOUT`
//!    is not waited for).
//! 4. **Fresh cluster** ([`fresh`]: no node present has data): once every known node has
//!    answered, the set has been stable for the settle window and `CLUSTER_SIZE` (if set)
//!    nodes are known, the lowest address bootstraps.
//! 5. **Full outage** ([`outage`]: data, no Primary component): only data votes, and a
//!    history that a restart from older data left behind (an override's, or a majority's)
//!    has no say. The most advanced node present bootstraps when every member of the last
//!    Primary view of each most advanced node is present, or after `OUTAGE_TIMEOUT` a
//!    majority of that view is present and nothing says a missing member is newer, or an
//!    operator overrides.
//!
//! "Unknown" (a known node that does not answer) is never taken as "absent", with two
//! exceptions that keep the cluster live: an operator's override does not wait for nodes
//! that say nothing, and after a full outage a node silent for `OUTAGE_TIMEOUT` counts as
//! missing from the last view (see [`outage`] for why that is safe).

use std::net::IpAddr;
use std::time::Duration;

pub mod donor;
mod fresh;
mod outage;
mod primary;

use crate::config::SstSetting;
use crate::galera::SstMethod;
use crate::record::{self, Epoch, LastView};
pub use crate::state::Override;
use crate::state::{NodeState, Phase};
pub use donor::ExpectedDonor;

/// The election's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// `CLUSTER_SIZE`: how many nodes the operator deployed, when given.
    pub cluster_size: Option<usize>,
    /// `SETTLE_WINDOW`: how long the set of known nodes must stay unchanged before a
    /// bootstrap.
    pub settle: Duration,
    /// `OUTAGE_TIMEOUT`: after a full outage, how long to wait for every member of the last
    /// Primary view before a majority of it is enough.
    pub outage_timeout: Duration,
    /// `SST_METHOD`: how a joiner that needs a full state transfer picks its method.
    pub sst: SstSetting,
}

/// What the decision is based on.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// This node's state (address, datadir, position, record, wsrep status when running).
    pub own: &'a NodeState,
    /// Every node known to exist now (DNS, peers that asked, peers' lists), this one
    /// included. One that does not answer is waited for.
    pub listed: &'a [IpAddr],
    /// What the other nodes answered (`None`: no answer), listed or not.
    pub peers: &'a [(IpAddr, Option<NodeState>)],
    /// Listed nodes that have said nothing usable (no answer, or stuck bootstrapping or
    /// joining) for `OUTAGE_TIMEOUT` or longer.
    pub gone: &'a [IpAddr],
    /// Nodes whose last answer in this election could not be used (another cluster key, a
    /// clock off), listed or not: they run, and may run a component of their own.
    pub unreadable: &'a [IpAddr],
    /// Nodes that do not answer now, but ran a server (or were starting one) when they last
    /// did: a partition may hide a component of theirs.
    pub went_silent: &'a [IpAddr],
    /// How long `listed` has been unchanged.
    pub stable_for: Duration,
    /// How long the election has been running.
    pub waited: Duration,
    /// An operator's override pending on this node.
    pub force: Override,
    /// Whether pc.recovery may be tried (not after it has failed once).
    pub allow_pc_recovery: bool,
    /// Settings.
    pub params: &'a Params,
}

/// The rule that made a bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapKind {
    /// A fresh cluster: no node present has data, and this node has the lowest address.
    Fresh,
    /// A fresh cluster started by an operator's override before `CLUSTER_SIZE` nodes were
    /// known.
    FreshOverride,
    /// After a full outage: this node was the last member of its Primary component.
    Last,
    /// After a full outage: every member of the last Primary view is here.
    Complete,
    /// After a full outage: a majority of the last Primary view is here after
    /// `OUTAGE_TIMEOUT`, and nothing says a missing member is newer.
    Majority,
    /// After a full outage: an operator's override, not waiting for the missing nodes.
    Override,
}

impl BootstrapKind {
    /// Whether an operator's override made it (the node would have waited otherwise).
    pub fn forced(self) -> bool {
        matches!(self, BootstrapKind::FreshOverride | BootstrapKind::Override)
    }
}

/// What the node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start a new Primary component from this node (`--wsrep-new-cluster`, or
    /// `pc.bootstrap` when mariadbd already runs).
    Bootstrap {
        /// Why, for the log.
        reason: String,
        /// Which rule made it.
        kind: BootstrapKind,
    },
    /// Start mariadbd without bootstrapping: join a Primary component, or let pc.recovery
    /// restore the saved one.
    Join {
        /// The `gcomm://` list: every known node.
        members: Vec<IpAddr>,
        /// `wsrep_sst_donor`: node names, the writer (lowest `wsrep_local_index`) last
        /// ([`donor::order`]).
        donors: Vec<String>,
        /// The donor Galera is expected to pick from `donors`, asked to leave the read
        /// pool before the transfer.
        expected_donor: Option<ExpectedDonor>,
        /// `wsrep_sst_method`, should Galera need a full state transfer ([`donor::method`]).
        sst_method: SstMethod,
        /// No Primary component runs yet: Galera's pc.recovery is expected to restore the
        /// saved one (the node watches that it does).
        pc_recovery: bool,
        /// The lineage of the component joined, which this node's history becomes.
        lineage: Vec<Epoch>,
        /// The component's view as its members recorded it: from the decision on, this
        /// node's last view (a Primary component exists that it is not in yet).
        view: Option<LastView>,
        /// Why, for the log.
        reason: String,
    },
    /// Not yet: ask again in a moment. A node that waits is healthy: it waits on purpose,
    /// and the reason says for what, and how an operator ends the wait.
    Wait {
        /// What the node waits for, and how an operator can end the wait.
        reason: String,
        /// The nodes or data it waits for, each in a few words.
        waiting_for: Vec<String>,
        /// An override (re)starts the cluster from a history that leaves this node's out:
        /// the node records that its history was given up, so that it never restores it on
        /// its own. A running node stops its server, or Galera would merge it into the new
        /// component by IST over the diverged history.
        superseded: bool,
        /// Another node bootstraps: record that it does before it may. Were this node to
        /// come back without it, it must not claim a majority of its old view on its own:
        /// that node may have gone on.
        accept: Option<record::Member>,
        /// The wait is a fresh cluster's and this node, the lowest address, bootstraps it
        /// once the wait ends (unless the set of nodes changes): it may initialise its
        /// datadir meanwhile, left marked unfinished (so still fresh) until it does.
        prepare: bool,
    },
}

impl Plan {
    /// The plan's reason.
    pub fn reason(&self) -> &str {
        match self {
            Plan::Bootstrap { reason, .. }
            | Plan::Join { reason, .. }
            | Plan::Wait { reason, .. } => reason,
        }
    }

    /// The plan in one line, for the log and `/state`.
    pub fn describe(&self) -> String {
        let verb = match self {
            Plan::Bootstrap { .. } => "bootstrap",
            Plan::Join { .. } => "join",
            Plan::Wait { .. } => "wait",
        };
        format!("{verb}: {}", self.reason())
    }
}

/// How the override is named in messages.
pub const OVERRIDE_HINT: &str = "run `galera-init bootstrap` in any node (docker exec), or set \
     FORCE_BOOTSTRAP=yes";

fn wait(reason: String, waiting_for: Vec<String>) -> Plan {
    Plan::Wait {
        reason,
        waiting_for,
        superseded: false,
        accept: None,
        prepare: false,
    }
}

/// A wait only an operator can end.
fn wait_for_operator(reason: String, what: &str) -> Plan {
    wait(reason, vec![format!("an operator: {what}")])
}

/// The other nodes as the rules see them.
struct Peers<'a> {
    /// The nodes that answered, this one left out.
    known: Vec<(IpAddr, &'a NodeState)>,
    /// Listed nodes whose state cannot be used yet (no answer, or not reported), and that
    /// have not been silent for `OUTAGE_TIMEOUT`.
    pending: Vec<IpAddr>,
    /// Listed nodes whose state cannot be used yet, silent or not.
    unheard: Vec<IpAddr>,
    /// The nodes an override still waits for: those that answer but are not ready to be
    /// counted (discovering, recovering their position, restarting their server; not
    /// one stuck for `OUTAGE_TIMEOUT`), those that answer something this node cannot read
    /// (another cluster key, a clock off), and those that ran a server when last heard
    /// from. An override does not wait for nodes that say nothing at all and
    /// were not seen running (a dead task's address, a host that never came back). A node
    /// that may run a component this node cannot see must not get a second one beside it
    /// (were FORCE_BOOTSTRAP to reach both sides, each would start one).
    override_waits: Vec<IpAddr>,
    /// The nodes whose state can be used, this one included.
    reporters: Vec<(IpAddr, &'a NodeState)>,
    /// Listed nodes that answer something this node cannot read.
    unreadable: Vec<IpAddr>,
    /// Nodes no longer listed whose last answer could not be read: no rule goes on while
    /// one may run a component of its own; only an override does.
    hidden: Vec<IpAddr>,
}

impl<'a> Peers<'a> {
    fn new(i: &'a Inputs) -> Peers<'a> {
        let own_addr = i.own.address;
        let known: Vec<(IpAddr, &NodeState)> = i
            .peers
            .iter()
            .filter(|(a, _)| Some(*a) != own_addr)
            .filter_map(|(a, s)| s.as_ref().map(|s| (*a, s)))
            .collect();
        let answer = |a: &IpAddr| known.iter().find(|(p, _)| p == a).map(|(_, s)| *s);
        let unheard: Vec<IpAddr> = i
            .listed
            .iter()
            .copied()
            .filter(|a| Some(*a) != own_addr)
            .filter(|a| answer(a).is_none_or(|s| !reported(s)))
            .collect();
        let pending: Vec<IpAddr> = unheard
            .iter()
            .copied()
            .filter(|a| !i.gone.contains(a))
            .collect();
        let override_waits = unheard
            .iter()
            .copied()
            .filter(|a| {
                i.unreadable.contains(a)
                    || i.went_silent.contains(a)
                    || (answer(a).is_some() && !i.gone.contains(a))
            })
            .collect();
        let mut reporters: Vec<(IpAddr, &NodeState)> =
            known.iter().copied().filter(|(_, s)| reported(s)).collect();
        if let Some(a) = own_addr {
            reporters.push((a, i.own));
        }
        let unreadable = unheard
            .iter()
            .copied()
            .filter(|a| i.unreadable.contains(a))
            .collect();
        let hidden = i
            .unreadable
            .iter()
            .copied()
            .filter(|a| !i.listed.contains(a) && Some(*a) != own_addr)
            .collect();
        Peers {
            known,
            pending,
            unheard,
            override_waits,
            reporters,
            unreadable,
            hidden,
        }
    }
}

/// Decides what this node does.
pub fn decide(i: &Inputs) -> Plan {
    let peers = Peers::new(i);
    if let Some(plan) = primary::rule(i, &peers.known) {
        return plan;
    }
    if i.own.superseded && i.force != Override::Command {
        return wait_for_operator(
            "this node's history was given up by an override that bootstrapped the cluster \
             from other data: it never restores it on its own (FORCE_BOOTSTRAP does not \
             either); empty this volume to rejoin by SST, or run `galera-init bootstrap` here \
             to restart the cluster from it"
                .into(),
            "this node's history was given up",
        );
    }
    if let Some(plan) = pc_recovery(i, &peers.known) {
        return plan;
    }
    if let Some(plan) = committed_peer(i, &peers.known) {
        return plan;
    }
    if peers.reporters.iter().all(|(_, s)| !s.has_data()) {
        let override_on = i.force.is_on()
            || peers
                .known
                .iter()
                .any(|(_, s)| s.override_requested.is_on());
        fresh::rule(i, &peers, override_on)
    } else {
        // Only data votes, overrides included: an empty node (a new volume that saw a
        // FORCE_BOOTSTRAP the others used up long ago) has no say in an outage, unless an
        // operator ran `galera-init bootstrap` in it.
        let override_on = i.force.is_on()
            || peers.known.iter().any(|(_, s)| match s.override_requested {
                Override::None => false,
                Override::Service => s.has_data(),
                Override::Command => true,
            });
        outage::rule(i, &peers, override_on)
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

/// Rule 2, pc.recovery: every member of our saved view is back with the same view, and no
/// other node holds data (a node outside the view, even a stale one, has been seen to keep
/// Galera from restoring the view: then the election decides). A history given up by an
/// override comes back only by a bootstrap under the operator's command, which starts a new
/// epoch of the lineage, never by a silent restore of its old view.
fn pc_recovery(i: &Inputs, known: &[(IpAddr, &NodeState)]) -> Option<Plan> {
    let view = i.own.view.as_ref()?;
    // A node that answers what cannot be read may hold data, or run a component Galera's
    // restore would reach (Galera's own traffic carries no cluster key).
    if !i.own.has_data()
        || !i.allow_pc_recovery
        || i.own.phase == Phase::Running
        || i.own.superseded
        || !i.unreadable.is_empty()
    {
        return None;
    }
    let in_view = |s: &NodeState| {
        s.has_data()
            && !s.superseded
            && s.view
                .as_ref()
                .is_some_and(|v| view.members.contains(&v.my_uuid) && v.view_id == view.view_id)
    };
    let back = view.members.iter().all(|m| {
        *m == view.my_uuid
            || known
                .iter()
                .any(|(_, s)| in_view(s) && s.view.as_ref().is_some_and(|v| v.my_uuid == *m))
    });
    let outsiders = known.iter().any(|(_, s)| s.has_data() && !in_view(s));
    if !back || outsiders {
        return None;
    }
    Some(Plan::Join {
        members: i.listed.to_vec(),
        donors: Vec::new(),
        expected_donor: None,
        sst_method: i.params.sst.default_method(),
        pc_recovery: true,
        lineage: Vec::new(),
        view: None,
        reason: format!(
            "all {} members of the last Primary view are back: Galera's pc.recovery restores it",
            view.members.len()
        ),
    })
}

/// Rule 3: someone has committed to a plan, and its Primary component is coming. A peer
/// stuck in that phase for `OUTAGE_TIMEOUT` (a joiner whose donor vanished, a start that
/// hangs) is not waited for any longer.
fn committed_peer(i: &Inputs, known: &[(IpAddr, &NodeState)]) -> Option<Plan> {
    let (_, s) = known.iter().find(|(a, s)| {
        matches!(s.phase, Phase::Bootstrapping | Phase::Joining) && !i.gone.contains(a)
    })?;
    Some(wait(
        format!(
            "{} is {}; waiting for its Primary component",
            s.label(),
            if s.phase == Phase::Bootstrapping {
                "bootstrapping"
            } else {
                "joining"
            }
        ),
        Vec::new(),
    ))
}

/// What the wait line says of nodes that answer something this node cannot read.
fn unreadable_note(peers: &Peers) -> Option<String> {
    let listed = (!peers.unreadable.is_empty()).then(|| {
        format!(
            "{} answer(s) what this node cannot read (another cluster key? a clock more than \
             60 s off?): such a node runs and may run a component of its own, so neither a \
             rule nor an override starts one beside it: fix its key or clock, or stop its task",
            list(&peers.unreadable)
        )
    });
    let hidden = (!peers.hidden.is_empty()).then(|| {
        format!(
            "{} answered what this node could not read, then went away: it may still run a \
             component of its own, so no rule starts one (an override does)",
            list(&peers.hidden)
        )
    });
    match (listed, hidden) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// Addresses in a log line: `10.0.0.1, 10.0.0.2`.
pub(crate) fn list(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
