//! Rule 5: a full outage. Nodes hold data and no Primary component runs anywhere.
//!
//! The steps, in order, each a function below:
//!
//! 1. [`given_up`]: a history that a restart from older data left behind has no say.
//! 2. [`voters`]: only data votes; an empty node waits for the nodes with data.
//! 3. [`one_cluster`]: data of two clusters is for an operator to sort out.
//! 4. [`Top`]: the most advanced nodes, and among them the candidate.
//! 5. [`Missing`]: who of the candidates' last Primary views is not here, and what says a
//!    missing member may be newer.
//! 6. [`Ready`]: whether the candidate may go on: every member here, a majority after
//!    `OUTAGE_TIMEOUT`, or an override.
//! 7. [`conflicts`]: histories that diverged, or cannot be placed, wait for an operator.
//! 8. [`running_given_up`]: an override that gives a running node's history up stops it
//!    first.
//! 9. [`acceptances`]: the other nodes record the bootstrap before it happens, so a
//!    majority of a view is used once.
//!
//! **Silent nodes.** A listed node that has said nothing usable for `OUTAGE_TIMEOUT` counts
//! as missing from the last view (it is no longer waited for to answer). That is safe for
//! the same reason the majority rule is: a majority of the last Primary view is here and
//! none of it is in a Primary component, so by Galera's quorum rule no Primary component
//! of this history can run without one of them, unless its view shrank by clean leaves
//! (the leavers recorded that they left others behind) or by a bootstrap these nodes
//! recorded (`accepted`): both are evidence that disables the majority rule. What it
//! cannot rule out is the risk the majority rule always takes (README: a node killed last
//! may hold the last acknowledged writes).

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{
    BootstrapKind, Inputs, OVERRIDE_HINT, Override, Peers, Plan, list, unreadable_note, wait,
    wait_for_operator,
};
use crate::galera::grastate::NIL_UUID;
use crate::record::{self, Compat, LastView, Member};
use crate::state::{NodeState, Phase};

/// A node with data, as the outage rules see it.
struct Voter<'a> {
    addr: IpAddr,
    s: &'a NodeState,
    pos: i64,
}

impl Voter<'_> {
    fn is_self(&self, i: &Inputs) -> bool {
        Some(self.addr) == i.own.address
    }

    /// It left its last Primary component cleanly while other members stayed: they may
    /// have gone on without it.
    fn left_before_others(&self) -> bool {
        self.s.phase != Phase::Running && self.s.left_while_others
    }
}

/// The rule.
pub(super) fn rule(i: &Inputs, peers: &Peers, override_on: bool) -> Plan {
    if let Some(plan) = given_up(i, &peers.reporters) {
        return plan;
    }
    let voters = voters(i, &peers.reporters);
    if !i.own.has_data() {
        let names: Vec<String> = voters.iter().map(|v| v.s.label()).collect();
        return wait(
            format!(
                "no Primary component runs; this node's datadir is empty, so it has no say: \
                 the nodes with data ({}) restore one, then it joins",
                names.join(", ")
            ),
            Vec::new(),
        );
    }
    if let Some(plan) = one_cluster(&voters) {
        return plan;
    }
    let Some(top) = Top::new(&voters) else {
        return wait(
            "full outage: no node with data has a say here (this node's address is not \
             known)"
                .into(),
            Vec::new(),
        );
    };
    let missing = Missing::new(i, &voters, &top);
    let mut ready = Ready::new(i, peers, &missing, override_on);
    if let Some(conflict) = conflict(&voters, &top) {
        if !ready.by_override {
            return conflict;
        }
        ready.needs_override = true;
    }
    if !ready.any() {
        return waiting(i, peers, &top, &missing);
    }
    if ready.needs_override
        && let Some(plan) = running_given_up(i, &voters, &top)
    {
        return plan;
    }
    let how = ready.how(i, &missing);
    let candidate = top.candidate;
    if !candidate.is_self(i) {
        return Plan::Wait {
            reason: format!(
                "full outage: {} has the most advanced data (seqno {}) and bootstraps ({how}); \
                 waiting to join it{}",
                candidate.s.label(),
                top.pos,
                if candidate.s.phase == Phase::Running {
                    " (it runs without a Primary component: it restores one with pc.bootstrap)"
                } else {
                    ""
                }
            ),
            waiting_for: Vec::new(),
            superseded: false,
            prepare: false,
            // An acceptance of a node that is not here is kept: only an override gets past
            // it, and the evidence must stay until a Primary component forms.
            accept: if voters
                .iter()
                .any(|v| v.is_self(i) && absent_acceptance(v, &missing.here_ids).is_some())
            {
                None
            } else {
                candidate.s.volume_id.as_ref().map(|id| Member {
                    volume_id: Some(id.clone()),
                    address: Some(candidate.addr),
                    name: candidate.s.node_name.clone(),
                })
            },
        };
    }
    if let Some(plan) = acceptances(i, &voters, &top, &missing, &how) {
        return plan;
    }
    Plan::Bootstrap {
        reason: format!(
            "full outage: this node has the most advanced data (seqno {}) of {} node(s) with \
             data; {how}",
            top.pos,
            voters.len()
        ),
        kind: ready.kind(&missing),
    }
}

/// Step 1: this node's history was left behind by a restart from older data (an override,
/// or a majority that went on without it), whether or not it knew: it waits for an
/// operator.
fn given_up(i: &Inputs, reporters: &[(IpAddr, &NodeState)]) -> Option<Plan> {
    let own = i.own.address?;
    if !i.own.has_data() {
        return None;
    }
    let (_, by) = left_behind(i, reporters, &own, i.own)?;
    Some(Plan::Wait {
        reason: format!(
            "this node's history was given up: {} holds a restart of the cluster from older \
             data that leaves this node's later transactions out (an override, or a majority \
             that went on without it); it never restores them on its own: empty this volume \
             to rejoin by SST, or run `galera-init bootstrap` here to restart the cluster from \
             it",
            by.label()
        ),
        waiting_for: vec!["an operator: this node's history was given up".into()],
        superseded: true,
        accept: None,
        prepare: false,
    })
}

/// The node here whose history restarted from below `s`'s position and left `s`'s later
/// transactions out, if any. The operator's command in this node revives its history.
fn left_behind<'a>(
    i: &Inputs,
    reporters: &[(IpAddr, &'a NodeState)],
    a: &IpAddr,
    s: &NodeState,
) -> Option<(IpAddr, &'a NodeState)> {
    if Some(*a) == i.own.address && i.force == Override::Command {
        return None;
    }
    reporters.iter().copied().find(|(b, o)| {
        b != a
            && o.has_data()
            && !o.superseded
            && record::given_up_by(&s.lineage, s.position().unwrap_or(-1), &o.lineage)
    })
}

/// Step 2: the nodes with data that have a say. A history an override gave up has none,
/// unless the operator revives it here, on the node itself.
fn voters<'a>(i: &Inputs, reporters: &[(IpAddr, &'a NodeState)]) -> Vec<Voter<'a>> {
    let revived = |a: &IpAddr| Some(*a) == i.own.address && i.force == Override::Command;
    reporters
        .iter()
        .filter(|(a, s)| {
            s.has_data()
                && (!s.superseded || revived(a))
                && left_behind(i, reporters, a, s).is_none()
        })
        .map(|(a, s)| Voter {
            addr: *a,
            s,
            pos: s.position().unwrap_or(-1),
        })
        .collect()
}

/// Step 3: the voters' data must be of one cluster. Otherwise every node waits, with its
/// data kept, for an operator to keep the volumes of one cluster only.
fn one_cluster(voters: &[Voter]) -> Option<Plan> {
    let uuids: BTreeSet<&str> = voters
        .iter()
        .filter_map(|v| v.s.uuid.as_deref())
        .filter(|u| *u != NIL_UUID)
        .collect();
    if uuids.len() < 2 {
        return None;
    }
    Some(wait_for_operator(
        format!(
            "the nodes hold data of {} different clusters ({}): refusing to pick one; every \
             node waits with its data kept: keep the volumes of one cluster only",
            uuids.len(),
            uuids.into_iter().collect::<Vec<_>>().join(", ")
        ),
        "data of more than one cluster",
    ))
}

/// Step 4: the most advanced nodes.
struct Top<'v, 'a> {
    /// The most advanced position.
    pos: i64,
    /// The voters at that position.
    nodes: Vec<&'v Voter<'a>>,
    /// The one that bootstraps: a running node first (it restores its component with
    /// pc.bootstrap, no restart), then the one Galera calls safe (the only member of its
    /// last Primary view), then the lowest address.
    candidate: &'v Voter<'a>,
}

impl<'v, 'a> Top<'v, 'a> {
    /// `None` when no node with data has a say (never when this node has data: it votes).
    fn new(voters: &'v [Voter<'a>]) -> Option<Top<'v, 'a>> {
        let pos = voters.iter().map(|v| v.pos).max().unwrap_or(-1);
        let nodes: Vec<&Voter> = voters.iter().filter(|v| v.pos == pos).collect();
        // A node whose history can be placed goes before one whose cannot (no record).
        let candidate = nodes.iter().copied().max_by_key(|v| {
            (
                unplaced(v, voters).is_none(),
                v.s.phase == Phase::Running,
                v.s.safe_to_bootstrap,
                Reverse(v.addr),
            )
        })?;
        Some(Top {
            pos,
            nodes,
            candidate,
        })
    }
}

/// Step 5: the members of the most advanced nodes' last Primary views that are not here
/// (they may hold newer data), and the evidence that says one of them is newer.
struct Missing<'a> {
    /// Volume ids of the voters.
    here_ids: BTreeSet<&'a str>,
    /// Each missing member in a few words.
    members: Vec<String>,
    /// What says a missing member may be newer (no timeout applies then).
    evidence: Vec<String>,
    /// Every member of each most advanced node's last view is here.
    complete: bool,
    /// A majority of each such view is here, and no evidence says a missing member is
    /// newer.
    majority: bool,
    /// The candidate alone holds the newest data and was the only member of its last
    /// Primary view (Galera calls it safe): nothing to wait for.
    alone: bool,
}

impl<'a> Missing<'a> {
    fn new(i: &Inputs, voters: &[Voter<'a>], top: &Top) -> Missing<'a> {
        let here_ids: BTreeSet<&str> = voters
            .iter()
            .filter_map(|v| v.s.volume_id.as_deref())
            .collect();
        let candidate = top.candidate;
        let mut m = Missing {
            here_ids,
            members: Vec::new(),
            evidence: Vec::new(),
            complete: true,
            majority: true,
            alone: top.nodes.len() == 1
                && candidate.s.safe_to_bootstrap
                && candidate
                    .s
                    .last_view
                    .as_ref()
                    .is_none_or(|v| v.members.len() == 1),
        };
        m.acceptances(voters);
        // A most advanced node whose history another most advanced node's restarted after
        // (the other's lineage extends its own): its last view is from before that restart,
        // and what its missing members may hold beyond this position the restart gave up.
        let restarted_since = |t: &Voter| {
            !t.s.lineage.is_empty()
                && top.nodes.iter().any(|u| {
                    u.s.lineage.len() > t.s.lineage.len() && u.s.lineage.starts_with(&t.s.lineage)
                })
        };
        // A most advanced node with a record of its last view says who was in the latest
        // component at this position; one without such a record (Galera's saved view, a
        // count of nodes with data) then adds nothing.
        let some_view = top.nodes.iter().any(|t| t.s.last_view.is_some());
        for t in top.nodes.iter().filter(|t| !restarted_since(t)) {
            match &t.s.last_view {
                Some(view) => m.view(voters, top, t, view),
                None if some_view => {}
                None => m.no_view(i, voters, t),
            }
        }
        m
    }

    fn note(&mut self, label: String) {
        if !self.members.contains(&label) {
            self.members.push(label);
        }
    }

    /// A node here recorded that another node bootstraps, and that node is not here: it
    /// may have gone on, with this node's vote counted in its majority.
    fn acceptances(&mut self, voters: &[Voter]) {
        for v in voters {
            if let Some(c) = absent_acceptance(v, &self.here_ids) {
                self.complete = false;
                self.majority = false;
                self.evidence.push(format!(
                    "{} recorded that {} bootstraps",
                    v.s.label(),
                    c.label()
                ));
                self.note(c.label());
            }
        }
    }

    /// The members of `t`'s last view that are not here.
    fn view(&mut self, voters: &[Voter], top: &Top, t: &Voter, view: &LastView) {
        let here_addrs: BTreeSet<IpAddr> = voters.iter().map(|v| v.addr).collect();
        // A node that lost its record (a new volume id, no lineage) at a member's address:
        // that member, unless its new id is in the view too.
        let renamed = |a: IpAddr| {
            voters.iter().any(|v| {
                v.addr == a
                    && v.s.lineage.is_empty()
                    && !view
                        .members
                        .iter()
                        .any(|m| m.volume_id.is_some() && m.volume_id == v.s.volume_id)
            })
        };
        let absent: Vec<&Member> = view
            .members
            .iter()
            .filter(|m| match &m.volume_id {
                Some(id) => !self.here_ids.contains(id.as_str()) && !m.address.is_some_and(renamed),
                // A member whose state could not be read when the view was recorded: here if
                // a node here recorded the same view with itself at that address, or answers
                // at that address now.
                None => m.address.is_none_or(|a| {
                    !here_addrs.contains(&a) && !voters.iter().any(|v| was_at(v.s, view, a))
                }),
            })
            .collect();
        let here = view.members.len() - absent.len();
        self.complete &= absent.is_empty();
        // A node that was still joining in its last view (receiving IST or SST) may lack
        // what the absent members committed meanwhile: no shortcut for it, unless every
        // member of its view is here (whoever is newer is here too), or a member as
        // advanced as it was Synced in that view or a later one.
        let unsure = !view.synced && !absent.is_empty() && !covered(t, view, &top.nodes);
        self.majority &= here * 2 > view.members.len() && !unsure;
        if unsure {
            self.evidence.push(format!(
                "{} was still joining its last component",
                t.s.label()
            ));
        }
        if !absent.is_empty() && t.left_before_others() {
            self.majority = false;
            self.evidence.push(format!(
                "{} left its component cleanly while others stayed",
                t.s.label()
            ));
        }
        for m in absent {
            self.note(m.label());
        }
    }

    /// No record of `t`'s last view (data from before galera-init kept one, or a record
    /// lost): Galera's saved view (gvwstate.dat, left by a crash) names its members;
    /// without it, count nodes with data.
    fn no_view(&mut self, i: &Inputs, voters: &[Voter], t: &Voter) {
        let any_safe = voters.iter().any(|v| v.s.safe_to_bootstrap);
        // It left while others stayed, and who they were is unknown: unless the last to
        // leave (Galera's safe node) is here, they may have gone on.
        if t.left_before_others() && !any_safe {
            self.complete = false;
            self.majority = false;
            self.evidence.push(format!(
                "{} left its component cleanly while others stayed, and has no record of who \
                 they were",
                t.s.label()
            ));
            self.note(format!(
                "the members that stayed after {} left",
                t.s.label()
            ));
        }
        if let Some(saved) = &t.s.view {
            let here = saved
                .members
                .iter()
                .filter(|m| {
                    voters
                        .iter()
                        .any(|v| v.s.view.as_ref().is_some_and(|w| w.my_uuid == **m))
                })
                .count();
            if here < saved.members.len() {
                self.complete = false;
                self.note(format!(
                    "{} more member(s) of the view Galera saved on {} ({} of {} here; it has \
                     no record of its last view)",
                    saved.members.len() - here,
                    t.s.label(),
                    here,
                    saved.members.len()
                ));
            }
            self.majority &= here * 2 > saved.members.len();
            return;
        }
        let expected = i
            .params
            .cluster_size
            .unwrap_or(0)
            .max(if any_safe { 1 } else { 2 });
        if voters.len() < expected {
            self.complete = false;
            self.note(format!(
                "{} more node(s) with data ({} of {expected} here; {} has no record of its \
                 last view)",
                expected - voters.len(),
                voters.len(),
                t.s.label()
            ));
        }
        self.majority &= voters.len() * 2 > expected;
    }
}

/// Step 6: whether the candidate may go on, and why.
struct Ready {
    by_views: bool,
    by_majority: bool,
    by_override: bool,
    /// Only the override lets it go on (a rule would have waited).
    needs_override: bool,
}

impl Ready {
    fn new(i: &Inputs, peers: &Peers, missing: &Missing, override_on: bool) -> Ready {
        let stable = i.stable_for >= i.params.settle;
        // Silent for OUTAGE_TIMEOUT: no longer waited for (see the module's doc).
        let settled = peers.pending.is_empty() && peers.hidden.is_empty() && stable;
        let timed_out = i.waited >= i.params.outage_timeout;
        let by_views = missing.complete
            && (settled || (missing.alone && peers.pending.is_empty() && peers.hidden.is_empty()));
        let by_majority = missing.majority && timed_out && settled;
        // An override does not wait for nodes that say nothing (see `Peers::override_waits`).
        let by_override = override_on && peers.override_waits.is_empty() && stable;
        Ready {
            by_views,
            by_majority,
            by_override,
            needs_override: i.own.superseded || !(by_views || by_majority),
        }
    }

    fn any(&self) -> bool {
        self.by_views || self.by_majority || self.by_override
    }

    fn kind(&self, missing: &Missing) -> BootstrapKind {
        if self.needs_override {
            BootstrapKind::Override
        } else if self.by_views && missing.alone {
            BootstrapKind::Last
        } else if self.by_views {
            BootstrapKind::Complete
        } else {
            BootstrapKind::Majority
        }
    }

    fn how(&self, i: &Inputs, missing: &Missing) -> String {
        match self.kind(missing) {
            BootstrapKind::Override => format!(
                "operator override: not waiting for {}",
                if missing.members.is_empty() {
                    "anyone".to_string()
                } else {
                    missing.members.join(", ")
                }
            ),
            BootstrapKind::Last => "it was the last member of the Primary component".into(),
            BootstrapKind::Complete => "every member of its last Primary view is here".into(),
            _ => format!(
                "a majority of its last Primary view is here after OUTAGE_TIMEOUT ({}s)",
                i.params.outage_timeout.as_secs()
            ),
        }
    }
}

/// The restart position of another voter's history that `v`'s history, without a record,
/// cannot be placed against, and that voter. (A node with a record places its own history;
/// one without a record beside it is never restarted from, see [`Top`].)
fn unplaced<'v, 'a>(v: &Voter, voters: &'v [Voter<'a>]) -> Option<(i64, &'v Voter<'a>)> {
    if !v.s.lineage.is_empty() {
        return None;
    }
    voters.iter().filter(|b| b.addr != v.addr).find_map(|b| {
        match record::compare(&v.s.lineage, v.pos, &b.s.lineage) {
            Compat::Unplaced { after } => Some((after, b)),
            _ => None,
        }
    })
}

/// Step 7: histories that cannot both be right. Two that diverged (an override
/// bootstrapped older data), or most advanced nodes that all have no record of their
/// history beside a node whose history restarted below their position: only an operator
/// can choose (the wait this returns), and only an override goes on.
fn conflict(voters: &[Voter], top: &Top) -> Option<Plan> {
    let choose = |a: &Voter, b: &Voter| {
        vec![format!(
            "an operator to choose between {} and {}",
            a.s.label(),
            b.s.label()
        )]
    };
    for a in voters {
        for b in voters.iter().filter(|b| b.addr != a.addr) {
            if let Compat::Diverged { after } = record::compare(&a.s.lineage, a.pos, &b.s.lineage)
                && a.pos <= b.pos
            {
                return Some(wait(
                    format!(
                        "the histories of {} (seqno {}) and {} (seqno {}) diverged after \
                             seqno {after} (an override bootstrapped older data): refusing to \
                             choose; to restart from the most advanced node present, \
                             {OVERRIDE_HINT}",
                        a.s.label(),
                        a.pos,
                        b.s.label(),
                        b.pos
                    ),
                    choose(a, b),
                ));
            }
        }
    }
    let a = top.candidate;
    let (after, b) = unplaced(a, voters)?;
    Some(wait(
        format!(
            "{} (seqno {}) has no record of its history (galera-init.json is missing), and the \
             history of {} restarted from seqno {after}: whether transactions {}..{} are the \
             cluster's cannot be told; refusing to choose; to restart from the most advanced \
             node present, {OVERRIDE_HINT}",
            a.s.label(),
            a.pos,
            b.s.label(),
            after + 1,
            a.pos
        ),
        choose(a, b),
    ))
}

/// The wait line: who and what the node waits for, and how an operator ends the wait.
fn waiting(i: &Inputs, peers: &Peers, top: &Top, missing: &Missing) -> Plan {
    let mut waiting_for: Vec<String> = peers
        .pending
        .iter()
        .map(|a| format!("{a} (known, not answering)"))
        .collect();
    waiting_for.extend(missing.members.iter().cloned());
    let mut why = Vec::new();
    if !missing.members.is_empty() {
        why.push(format!(
            "{}, in the last Primary view of the most advanced node{} and may hold newer data",
            missing.members.join(", "),
            if missing.members.len() == 1 { "" } else { "s" }
        ));
    }
    let silent: Vec<IpAddr> = peers
        .pending
        .iter()
        .copied()
        .filter(|a| !peers.unreadable.contains(a))
        .collect();
    if !silent.is_empty() {
        why.push(format!(
            "{} to answer (after OUTAGE_TIMEOUT ({}s) of silence, a node counts as missing)",
            list(&silent),
            i.params.outage_timeout.as_secs()
        ));
    }
    if let Some(note) = unreadable_note(peers) {
        why.push(note);
    }
    if why.is_empty() {
        why.push(format!(
            "the set of nodes to stay unchanged for {}s",
            i.params.settle.as_secs()
        ));
    }
    let shortcut = if !missing.evidence.is_empty() {
        format!(
            "; no timeout applies ({}): only they, or an operator, can decide",
            missing.evidence.join("; ")
        )
    } else if missing.majority && !missing.members.is_empty() && peers.unreadable.is_empty() {
        format!(
            "; a majority of that view is here: after OUTAGE_TIMEOUT ({}s) it goes on without \
             the rest",
            i.params.outage_timeout.as_secs()
        )
    } else {
        String::new()
    };
    wait(
        format!(
            "full outage: the most advanced node present is {} (seqno {}); waiting for \
             {}{shortcut}; to bootstrap from it anyway, {OVERRIDE_HINT}",
            if top.candidate.is_self(i) {
                "this node".to_string()
            } else {
                top.candidate.s.label()
            },
            top.pos,
            why.join(" and ")
        ),
        waiting_for,
    )
}

/// Step 8: an override that restarts from a history some running node does not share: that
/// node's server must stop first, or Galera would merge it into the new component by IST
/// over its diverged history.
fn running_given_up(i: &Inputs, voters: &[Voter], top: &Top) -> Option<Plan> {
    let candidate = top.candidate;
    let gives_up = |v: &Voter| {
        v.addr != candidate.addr
            && matches!(
                record::compare(&v.s.lineage, v.pos, &candidate.s.lineage),
                Compat::Diverged { .. }
            )
    };
    if i.own.phase == Phase::Running && voters.iter().any(|v| v.is_self(i) && gives_up(v)) {
        return Some(Plan::Wait {
            reason: format!(
                "an operator's override restarts the cluster from {} (seqno {}), whose history \
                 leaves this node's out: stopping this node's server so that Galera does not \
                 merge it by IST; its data is kept",
                candidate.s.label(),
                top.pos
            ),
            waiting_for: Vec::new(),
            superseded: true,
            accept: None,
            prepare: false,
        });
    }
    let running: Vec<String> = voters
        .iter()
        .filter(|v| v.s.phase == Phase::Running && gives_up(v))
        .map(|v| v.s.label())
        .collect();
    if running.is_empty() {
        return None;
    }
    Some(wait(
        format!(
            "operator override: waiting for {} to stop its server (its history is given up; \
             Galera would otherwise merge it by IST)",
            running.join(", ")
        ),
        running,
    ))
}

/// Step 9: before this node bootstraps, every other node with data here has recorded that
/// it does (see `Plan::Wait::accept`): a quorum of a view can then be used once, not twice.
fn acceptances(
    i: &Inputs,
    voters: &[Voter],
    top: &Top,
    missing: &Missing,
    how: &str,
) -> Option<Plan> {
    let own_id = i.own.volume_id.as_deref().unwrap_or_default();
    let unrecorded: Vec<String> = voters
        .iter()
        .filter(|v| !v.is_self(i) && !accepts(v.s, own_id))
        // One that keeps its acceptance of a node not here: only an override gets here.
        .filter(|v| absent_acceptance(v, &missing.here_ids).is_none())
        .map(|v| v.s.label())
        .collect();
    if missing.alone || unrecorded.is_empty() {
        return None;
    }
    Some(wait(
        format!(
            "full outage: this node has the most advanced data (seqno {}) and bootstraps \
             ({how}) once {} recorded it",
            top.pos,
            unrecorded.join(", ")
        ),
        unrecorded
            .iter()
            .map(|l| format!("{l} to record the bootstrap"))
            .collect(),
    ))
}

/// Whether `s` has recorded that the node with volume `id` bootstraps.
fn accepts(s: &NodeState, id: &str) -> bool {
    s.accepted
        .as_ref()
        .is_some_and(|m| m.volume_id.as_deref() == Some(id))
}

/// Whether `s` recorded the same view as `view` with itself at `addr`.
fn was_at(s: &NodeState, view: &LastView, addr: IpAddr) -> bool {
    let (Some(mine), Some(id)) = (&s.last_view, &s.volume_id) else {
        return false;
    };
    mine.cluster == view.cluster
        && mine.conf_id == view.conf_id
        && mine
            .members
            .iter()
            .any(|m| m.address == Some(addr) && m.volume_id.as_ref() == Some(id))
}

/// Whether another most advanced node `u` was Synced in the view `view` that node `t` was
/// still joining, or in a later view of the same history: each in the other's view, the
/// same lineage and cluster, and `u`'s view no older. Then whatever `t`'s component
/// committed while `t` was joining is on `u`, at the same position.
fn covered(t: &Voter, view: &LastView, top: &[&Voter]) -> bool {
    let holds = |v: &LastView, id: Option<&String>| {
        id.is_some_and(|id| v.members.iter().any(|m| m.volume_id.as_ref() == Some(id)))
    };
    top.iter().any(|u| {
        u.addr != t.addr
            && u.s.lineage == t.s.lineage
            && u.s.last_view.as_ref().is_some_and(|uv| {
                uv.synced
                    && uv.cluster == view.cluster
                    && uv.conf_id >= view.conf_id
                    && holds(uv, t.s.volume_id.as_ref())
                    && holds(view, u.s.volume_id.as_ref())
            })
    })
}

/// The bootstrap `v` recorded (see `Plan::Wait::accept`), when its node is not among
/// `here` (volume ids).
fn absent_acceptance<'a>(v: &Voter<'a>, here: &BTreeSet<&str>) -> Option<&'a Member> {
    v.s.accepted
        .as_ref()
        .filter(|c| c.volume_id.as_deref().is_none_or(|id| !here.contains(id)))
}
