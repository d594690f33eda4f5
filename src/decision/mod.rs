//! The bootstrap-or-join decision, as a pure function of what the node knows.
//!
//! Everything that talks to the world (DNS, the peers' `/state`, the datadir) feeds
//! [`decide`]; everything that acts (init, config, mariadbd, `pc.bootstrap`) carries out the
//! [`Plan`]. The table of cases in the tests is the specification; the simulation in
//! `tests/sim` checks it against thousands of fault schedules. The rules, in the order they
//! are checked:
//!
//! 1. **A Primary component runs**: join it, unless this node's history would be lost or
//!    mixed: data of another cluster, a position ahead of the cluster's, or a history that
//!    diverged from it (an override bootstrapped older data). Those wait, saying why; they
//!    are never wiped by an SST.
//! 2. **pc.recovery**: every member of this node's saved view (gvwstate.dat) is back with
//!    that view, and no other node holds data: start normally and let Galera restore it.
//! 3. **A peer has committed** to bootstrapping or joining: wait for its Primary component.
//! 4. **Fresh cluster** (no node present has data): once every known node has answered, the
//!    set has been stable for the settle window and `CLUSTER_SIZE` (if set) nodes are known,
//!    the lowest address bootstraps.
//! 5. **Full outage** (data, no Primary component): only data votes, and a history that a
//!    restart from older data left behind (an override's, or a majority's) has no say. The
//!    most advanced node present bootstraps when
//!    - every member of the last Primary view of each most advanced node is present
//!      (complete), or
//!    - after `OUTAGE_TIMEOUT`, a majority of that view is present and nothing says a missing
//!      member is newer (the node did not leave cleanly while others stayed, nor was it still
//!      joining, and no node here recorded that a missing node bootstraps), or
//!    - an operator's override is present on any node: do not wait for missing nodes.
//!
//!    Otherwise every node waits, naming the nodes it waits for. A node running without a
//!    Primary component takes part too: when it is the one, it bootstraps with
//!    `pc.bootstrap`.
//!
//! "Unknown" (a known node that does not answer) is never taken as "absent".

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

pub mod donor;

use crate::config::{SstMethod, SstSetting};
use crate::galera::grastate::NIL_UUID;
use crate::record::{self, Compat, Epoch, LastView};
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

/// What the node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start a new Primary component from this node (`--wsrep-new-cluster`, or
    /// `pc.bootstrap` when mariadbd already runs).
    Bootstrap {
        /// Why, for the log.
        reason: String,
        /// An operator's override made it (it would have waited otherwise).
        forced: bool,
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
    /// Not yet: ask again in a moment.
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
    /// Refuse to start: the reason says what the operator can do.
    Refuse {
        /// Why.
        reason: String,
    },
}

impl Plan {
    /// The plan's reason.
    pub fn reason(&self) -> &str {
        match self {
            Plan::Bootstrap { reason, .. }
            | Plan::Join { reason, .. }
            | Plan::Wait { reason, .. }
            | Plan::Refuse { reason } => reason,
        }
    }

    /// The plan in one line, for the log and `/state`.
    pub fn describe(&self) -> String {
        let verb = match self {
            Plan::Bootstrap { .. } => "bootstrap",
            Plan::Join { .. } => "join",
            Plan::Wait { .. } => "wait",
            Plan::Refuse { .. } => "refuse",
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

/// Decides what this node does.
pub fn decide(i: &Inputs) -> Plan {
    let own_addr = i.own.address;
    let known: Vec<(IpAddr, &NodeState)> = i
        .peers
        .iter()
        .filter(|(a, _)| Some(*a) != own_addr)
        .filter_map(|(a, s)| s.as_ref().map(|s| (*a, s)))
        .collect();
    let running = i.own.phase == Phase::Running;

    // 1. A Primary component runs.
    let primaries: Vec<&NodeState> = known
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| s.is_primary())
        .collect();
    if let Some(first) = primaries.first() {
        let clusters: BTreeSet<&str> = primaries
            .iter()
            .filter_map(|s| s.wsrep_cluster_state_uuid.as_deref())
            .collect();
        if clusters.len() > 1 {
            let list: Vec<&str> = clusters.into_iter().collect();
            return wait(
                format!(
                    "nodes of {} different Primary components answer ({}): refusing to take \
                     sides; stop the one that must not exist",
                    list.len(),
                    list.join(", ")
                ),
                Vec::new(),
            );
        }
        return join_primary(i, &known, first);
    }
    let override_on = i.force.is_on() || known.iter().any(|(_, s)| s.override_requested.is_on());
    if i.own.superseded && i.force != Override::Command {
        return wait(
            "this node's history was given up by an override that bootstrapped the cluster \
             from other data: it never restores it on its own (FORCE_BOOTSTRAP does not \
             either); empty this volume to rejoin by SST, or run `galera-init bootstrap` here \
             to restart the cluster from it"
                .into(),
            vec!["an operator: this node's history was given up".into()],
        );
    }

    // 2. pc.recovery: every member of our saved view is back with the same view, and no
    // other node holds data (a node outside the view, even a stale one, has been seen to
    // keep Galera from restoring the view: then the election decides). A history given up
    // by an override comes back only by a bootstrap under the operator's command, which
    // starts a new epoch of the lineage, never by a silent restore of its old view.
    if let Some(view) = &i.own.view
        && i.own.has_data()
        && i.allow_pc_recovery
        && !running
        && !i.own.superseded
    {
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
        if back && !outsiders {
            return Plan::Join {
                members: i.listed.to_vec(),
                donors: Vec::new(),
                expected_donor: None,
                sst_method: i.params.sst.default_method(),
                pc_recovery: true,
                lineage: Vec::new(),
                view: None,
                reason: format!(
                    "all {} members of the last Primary view are back: Galera's pc.recovery \
                     restores it",
                    view.members.len()
                ),
            };
        }
    }

    // 3. Someone has committed to a plan: its Primary component is coming.
    if let Some((_, s)) = known
        .iter()
        .find(|(_, s)| matches!(s.phase, Phase::Bootstrapping | Phase::Joining))
    {
        return wait(
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
        );
    }

    // Known nodes that have not reported a usable state yet.
    let pending: Vec<IpAddr> = i
        .listed
        .iter()
        .copied()
        .filter(|a| Some(*a) != own_addr)
        .filter(|a| match known.iter().find(|(p, _)| p == a) {
            Some((_, s)) => !reported(s),
            None => true,
        })
        .collect();
    let mut reporters: Vec<(IpAddr, &NodeState)> =
        known.iter().copied().filter(|(_, s)| reported(s)).collect();
    if let Some(a) = own_addr {
        reporters.push((a, i.own));
    }

    if reporters.iter().all(|(_, s)| !s.has_data()) {
        let mut plan = fresh_cluster(i, &pending, override_on);
        if let Plan::Wait { prepare, .. } = &mut plan {
            *prepare = i.own.fresh == Some(true) && i.listed.iter().min() == own_addr.as_ref();
        }
        plan
    } else {
        // Only data votes, overrides included: an empty node (a new volume that saw a
        // FORCE_BOOTSTRAP the others used up long ago) has no say in an outage, unless an
        // operator ran `galera-init bootstrap` in it.
        let override_on = i.force.is_on()
            || known.iter().any(|(_, s)| match s.override_requested {
                Override::None => false,
                Override::Service => s.has_data(),
                Override::Command => true,
            });
        full_outage(i, &pending, &reporters, override_on)
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
    // The component's lineage: the longest its members report (a member that has just
    // joined may not know it yet).
    let lineage: &[Epoch] = known
        .iter()
        .filter(|(_, s)| s.is_primary())
        .map(|(_, s)| s.lineage.as_slice())
        .max_by_key(|l| l.len())
        .unwrap_or(&[]);
    if i.own.has_data() {
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
        // The running component's position: the most advanced its members report.
        let theirs = known
            .iter()
            .filter(|(_, s)| s.is_primary())
            .filter_map(|(_, s)| s.position())
            .max();
        let mine = i.own.position().unwrap_or(-1);
        let keep = "this node's data is kept: to keep its history instead, stop the running \
                    cluster and bootstrap from this node (`galera-init bootstrap` here); to \
                    give it up, empty this volume and the node joins by SST";
        // A bootstrap of the running component that started below this node's position
        // and is not in its history: it gave this node's history up.
        let superseded = !i.own.lineage.is_empty()
            && lineage
                .iter()
                .any(|e| e.after < mine && !i.own.lineage.iter().any(|o| o.id == e.id));
        let wait = |reason: String, waiting_for: Vec<String>| Plan::Wait {
            reason,
            waiting_for,
            superseded,
            accept: None,
            prepare: false,
        };
        if let Some(theirs) = theirs
            && mine > theirs
        {
            return wait(
                format!(
                    "this node's history (seqno {mine}) is ahead of the running Primary \
                     component (cluster {}, seqno {theirs}): joining would discard {} \
                     transaction(s) (Galera refuses it); {keep}",
                    cluster.unwrap_or("?"),
                    mine - theirs
                ),
                vec![format!("a decision about {} transaction(s)", mine - theirs)],
            );
        }
        if let Compat::Diverged { after } = record::compare(&i.own.lineage, mine, lineage) {
            return wait(
                format!(
                    "this node's history diverged from the running Primary component's after \
                     seqno {after} (it was bootstrapped from other data, by an override): its \
                     transactions {}..{mine} are not in the cluster, and joining by IST would \
                     mix the two histories; {keep}",
                    after + 1
                ),
                vec![format!(
                    "a decision about transactions {}..{mine}",
                    after + 1
                )],
            );
        }
    }
    if i.own.phase == Phase::Running {
        return wait(
            format!(
                "a Primary component runs ({}); Galera merges this node into it once it \
                 reaches it",
                primary.label()
            ),
            Vec::new(),
        );
    }
    let everyone: Vec<&NodeState> = known.iter().map(|(_, s)| *s).collect();
    let donors = donor::order(&everyone, primary);
    let sst_method = donor::method(i.params.sst, &donors);
    // Empty joiners take a mariabackup SST one at a time: two back-to-back mariabackup SSTs
    // from one donor have been seen to fail here, and the second joiner then gets a donor
    // that is not the writer. rsync SSTs (small data) start together: Galera serves them
    // one after the other, each as soon as a donor is free.
    if i.own.fresh == Some(true)
        && sst_method == SstMethod::Mariabackup
        && let Some((a, _)) = known.iter().find(|(a, s)| {
            s.phase == Phase::Joining && s.fresh == Some(true) && Some(*a) < i.own.address
        })
    {
        return wait(
            format!("{a} is receiving its SST; nodes with an empty datadir join one at a time"),
            Vec::new(),
        );
    }
    // Joiners enter the component one at a time: two nodes entering Galera's membership at
    // the same moment make it go round for seconds (seen here: an IST join took 8 s beside
    // another instead of 2). A joiner waits while a lower address that decided to join is
    // not a member yet; their state transfers may overlap (Galera queues them by donor).
    let component = primary.incoming_addresses();
    if let Some((a, _)) = known.iter().find(|(a, s)| {
        s.phase == Phase::Joining && Some(*a) < i.own.address && !component.contains(a)
    }) {
        return wait(
            format!("{a} is entering the component first; joiners enter one at a time"),
            Vec::new(),
        );
    }
    let mut members: Vec<IpAddr> = i.listed.to_vec();
    members.extend(known.iter().map(|(a, _)| *a));
    members.sort();
    members.dedup();
    let expected_donor = donor::expected(i.own, &donors, &everyone, primary);
    let donors = donors.iter().map(|s| s.node_name.clone()).collect();
    let forced = if i.force.is_on() {
        " (the override is not needed: a Primary component runs)"
    } else {
        ""
    };
    Plan::Join {
        members,
        donors,
        expected_donor,
        sst_method,
        pc_recovery: false,
        lineage: lineage.to_vec(),
        view: Some(LastView {
            cluster: cluster.unwrap_or_default().to_string(),
            conf_id: primary.wsrep_cluster_conf_id.unwrap_or(0),
            members: primary
                .incoming_addresses()
                .into_iter()
                .map(|a| {
                    let s = known.iter().find(|(k, _)| *k == a).map(|(_, s)| *s);
                    record::Member {
                        volume_id: s.and_then(|s| s.volume_id.clone()),
                        address: Some(a),
                        name: s.map(|s| s.node_name.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
            synced: false,
        }),
        reason: format!(
            "a Primary component of {} node(s) runs (cluster {}): joining it{forced}",
            primary.wsrep_cluster_size.unwrap_or(0),
            cluster.unwrap_or("?")
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

fn fresh_cluster(i: &Inputs, pending: &[IpAddr], override_on: bool) -> Plan {
    let n = i.listed.len();
    if !pending.is_empty() {
        return wait(
            format!("fresh cluster: waiting for {} to answer", list(pending)),
            pending.iter().map(|a| format!("{a} to answer")).collect(),
        );
    }
    let short_of_size = i.params.cluster_size.filter(|size| n < *size);
    if let Some(size) = short_of_size
        && !override_on
    {
        return wait(
            format!(
                "fresh cluster: {n} of CLUSTER_SIZE={size} nodes known; to start with these \
                 anyway, {OVERRIDE_HINT}"
            ),
            vec![format!("{} more node(s) (CLUSTER_SIZE={size})", size - n)],
        );
    }
    if i.stable_for < i.params.settle {
        return wait(
            format!(
                "fresh cluster of {n} node(s): waiting for the set of nodes to stay unchanged \
                 for {}s",
                i.params.settle.as_secs()
            ),
            Vec::new(),
        );
    }
    let lowest = i.listed.iter().min().copied();
    if lowest.is_some() && lowest == i.own.address {
        Plan::Bootstrap {
            reason: format!(
                "fresh cluster of {n} node(s), none has data: this node has the lowest address \
                 and bootstraps{}",
                if short_of_size.is_some() {
                    " (operator override: not waiting for CLUSTER_SIZE)"
                } else {
                    ""
                }
            ),
            forced: short_of_size.is_some(),
        }
    } else {
        wait(
            format!(
                "fresh cluster of {n} node(s): {} (lowest address) bootstraps; waiting to join it",
                lowest.map(|a| a.to_string()).unwrap_or_default()
            ),
            Vec::new(),
        )
    }
}

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
fn absent_acceptance<'a>(v: &Voter<'a>, here: &BTreeSet<&str>) -> Option<&'a record::Member> {
    v.s.accepted
        .as_ref()
        .filter(|c| c.volume_id.as_deref().is_none_or(|id| !here.contains(id)))
}

fn full_outage(
    i: &Inputs,
    pending: &[IpAddr],
    reporters: &[(IpAddr, &NodeState)],
    override_on: bool,
) -> Plan {
    // A history a restart from other data left behind (an override, or a majority that
    // went on without it) is given up, whether or not its node knew.
    let revived = |a: &IpAddr| Some(*a) == i.own.address && i.force == Override::Command;
    let left_behind = |a: &IpAddr, s: &NodeState| {
        if revived(a) {
            return None;
        }
        reporters.iter().find(|(b, o)| {
            b != a
                && o.has_data()
                && !o.superseded
                && record::given_up_by(&s.lineage, s.position().unwrap_or(-1), &o.lineage)
        })
    };
    if i.own.has_data()
        && let Some(own) = i.own.address
        && let Some((_, by)) = left_behind(&own, i.own)
    {
        return Plan::Wait {
            reason: format!(
                "this node's history was given up: {} holds a restart of the cluster from \
                 older data that leaves this node's later transactions out (an override, or a \
                 majority that went on without it); it never restores them on its own: empty \
                 this volume to rejoin by SST, or run `galera-init bootstrap` here to restart \
                 the cluster from it",
                by.label()
            ),
            waiting_for: vec!["an operator: this node's history was given up".into()],
            superseded: true,
            accept: None,
            prepare: false,
        };
    }
    let voters: Vec<Voter> = reporters
        .iter()
        .filter(|(a, s)| {
            // A history an override gave up has no say, unless the operator revives it
            // here, on the node itself.
            s.has_data() && (!s.superseded || revived(a)) && left_behind(a, s).is_none()
        })
        .map(|(a, s)| Voter {
            addr: *a,
            s,
            pos: s.position().unwrap_or(-1),
        })
        .collect();
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
    let mut uuids: Vec<&str> = voters
        .iter()
        .filter_map(|v| v.s.uuid.as_deref())
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

    // The most advanced nodes, and among them the one that bootstraps: a running node
    // first (it restores its component with pc.bootstrap, no restart), then the one Galera
    // calls safe (the only member of its last Primary view), then the lowest address.
    let best_pos = voters.iter().map(|v| v.pos).max().unwrap_or(-1);
    let top: Vec<&Voter> = voters.iter().filter(|v| v.pos == best_pos).collect();
    let candidate = *top
        .iter()
        .max_by_key(|v| {
            (
                v.s.phase == Phase::Running,
                v.s.safe_to_bootstrap,
                Reverse(v.addr),
            )
        })
        .expect("this node has data, so there is a voter");

    // Histories that diverged (an override bootstrapped older data) cannot both be right.
    let diverged = voters.iter().find_map(|a| {
        voters.iter().find_map(|b| {
            let behind = a.pos <= b.pos && a.addr != b.addr;
            match record::compare(&a.s.lineage, a.pos, &b.s.lineage) {
                Compat::Diverged { after } if behind => Some((a, b, after)),
                _ => None,
            }
        })
    });

    // Who may hold newer data: the members of the most advanced nodes' last Primary views
    // that are not here.
    let here_ids: BTreeSet<&str> = voters
        .iter()
        .filter_map(|v| v.s.volume_id.as_deref())
        .collect();
    let here_addrs: BTreeSet<IpAddr> = voters.iter().map(|v| v.addr).collect();
    let mut missing: Vec<String> = Vec::new();
    let mut evidence: Vec<String> = Vec::new();
    let mut complete = true;
    let mut majority = true;
    // A node here recorded that another node bootstraps, and that node is not here: it may
    // have gone on, with this node's vote counted in its majority.
    let accepted_absent = |v: &Voter| absent_acceptance(v, &here_ids).is_some();
    for v in &voters {
        if let Some(c) = absent_acceptance(v, &here_ids) {
            complete = false;
            majority = false;
            evidence.push(format!(
                "{} recorded that {} bootstraps",
                v.s.label(),
                c.label()
            ));
            let label = c.label();
            if !missing.contains(&label) {
                missing.push(label);
            }
        }
    }
    // A most advanced node whose history another most advanced node's restarted after (the
    // other's lineage extends its own): its last view is from before that restart, and what
    // its missing members may hold beyond this position the restart gave up.
    let restarted_since = |t: &Voter| {
        !t.s.lineage.is_empty()
            && top.iter().any(|u| {
                u.s.lineage.len() > t.s.lineage.len() && u.s.lineage.starts_with(&t.s.lineage)
            })
    };
    for t in top.iter().filter(|t| !restarted_since(t)) {
        match &t.s.last_view {
            Some(view) => {
                let absent: Vec<&record::Member> = view
                    .members
                    .iter()
                    .filter(|m| match &m.volume_id {
                        Some(id) => !here_ids.contains(id.as_str()),
                        // A member whose state could not be read when the view was recorded:
                        // here if a node here recorded the same view with itself at that
                        // address, or answers at that address now.
                        None => m.address.is_none_or(|a| {
                            !here_addrs.contains(&a) && !voters.iter().any(|v| was_at(v.s, view, a))
                        }),
                    })
                    .collect();
                let here = view.members.len() - absent.len();
                complete &= absent.is_empty();
                // A node that was still joining in its last view (receiving IST or SST)
                // may lack what the absent members committed meanwhile: no shortcut for it,
                // unless every member of its view is here (whoever is newer is here too),
                // or a member as advanced as it was Synced in that view or a later one.
                let unsure = !view.synced && !absent.is_empty() && !covered(t, view, &top);
                majority &= here * 2 > view.members.len() && !unsure;
                if unsure {
                    evidence.push(format!(
                        "{} was still joining its last component",
                        t.s.label()
                    ));
                }
                if !absent.is_empty() && t.left_before_others() {
                    majority = false;
                    evidence.push(format!(
                        "{} left its component cleanly while others stayed",
                        t.s.label()
                    ));
                }
                for m in absent {
                    let label = m.label();
                    if !missing.contains(&label) {
                        missing.push(label);
                    }
                }
            }
            None => {
                // Data from before galera-init kept a record: count nodes with data.
                let any_safe = voters.iter().any(|v| v.s.safe_to_bootstrap);
                let view_size = t.s.view.as_ref().map(|v| v.members.len()).unwrap_or(0);
                let expected = i
                    .params
                    .cluster_size
                    .unwrap_or(0)
                    .max(view_size)
                    .max(if any_safe { 1 } else { 2 });
                if voters.len() < expected {
                    complete = false;
                    missing.push(format!(
                        "{} more node(s) with data ({} of {expected} here; {} has no record of \
                         its last view)",
                        expected - voters.len(),
                        voters.len(),
                        t.s.label()
                    ));
                }
                majority &= voters.len() * 2 > expected;
            }
        }
    }
    // Only the node Galera calls safe, with nobody else in its last view: nothing to wait
    // for but the known nodes to answer, not even the settle window.
    let alone = top.len() == 1
        && candidate.s.safe_to_bootstrap
        && candidate
            .s
            .last_view
            .as_ref()
            .is_none_or(|v| v.members.len() == 1);
    let settled = pending.is_empty() && i.stable_for >= i.params.settle;
    let timed_out = i.waited >= i.params.outage_timeout;
    // (Even then, a known node that does not answer is waited for: unknown is not absent,
    // and it may be a Primary component this node cannot reach.)
    let by_views = complete && (settled || (alone && pending.is_empty()));
    let by_majority = majority && timed_out && settled;
    let by_override = override_on && settled;

    let needs_override = diverged.is_some() || i.own.superseded || !(by_views || by_majority);
    if let Some((a, b, after)) = diverged
        && !by_override
    {
        return wait(
            format!(
                "the histories of {} (seqno {}) and {} (seqno {}) diverged after seqno {after} \
                 (an override bootstrapped older data): refusing to choose; to restart from \
                 the most advanced node present, {OVERRIDE_HINT}",
                a.s.label(),
                a.pos,
                b.s.label(),
                b.pos
            ),
            vec![format!(
                "an operator to choose between {} and {}",
                a.s.label(),
                b.s.label()
            )],
        );
    }
    if !(by_views || by_majority || by_override) {
        let mut waiting_for: Vec<String> = pending
            .iter()
            .map(|a| format!("{a} (known, not answering)"))
            .collect();
        waiting_for.extend(missing.iter().cloned());
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!(
                "{}, in the last Primary view of the most advanced node{} and may hold newer \
                 data",
                missing.join(", "),
                if missing.len() == 1 { "" } else { "s" }
            ));
        }
        if !pending.is_empty() {
            why.push(format!("{} to answer", list(pending)));
        }
        if why.is_empty() {
            why.push(format!(
                "the set of nodes to stay unchanged for {}s",
                i.params.settle.as_secs()
            ));
        }
        let shortcut = if !evidence.is_empty() {
            format!(
                "; no timeout applies ({}): only they, or an operator, can decide",
                evidence.join("; ")
            )
        } else if majority && !missing.is_empty() {
            format!(
                "; a majority of that view is here: after OUTAGE_TIMEOUT ({}s) it goes on \
                 without the rest",
                i.params.outage_timeout.as_secs()
            )
        } else {
            String::new()
        };
        return wait(
            format!(
                "full outage: the most advanced node present is {} (seqno {best_pos}); waiting \
                 for {}{shortcut}; to bootstrap from it anyway, {OVERRIDE_HINT}",
                if candidate.is_self(i) {
                    "this node".to_string()
                } else {
                    candidate.s.label()
                },
                why.join(" and ")
            ),
            waiting_for,
        );
    }
    let how = if needs_override {
        format!(
            "operator override: not waiting for {}",
            if missing.is_empty() {
                "anyone".to_string()
            } else {
                missing.join(", ")
            }
        )
    } else if by_views {
        if alone {
            "it was the last member of the Primary component".to_string()
        } else {
            "every member of its last Primary view is here".to_string()
        }
    } else {
        format!(
            "a majority of its last Primary view is here after OUTAGE_TIMEOUT ({}s)",
            i.params.outage_timeout.as_secs()
        )
    };
    // An override that restarts from a history some running node does not share: that
    // node's server must stop first, or Galera would merge it into the new component by
    // IST over its diverged history.
    let gives_up = |v: &Voter| {
        v.addr != candidate.addr
            && matches!(
                record::compare(&v.s.lineage, v.pos, &candidate.s.lineage),
                Compat::Diverged { .. }
            )
    };
    if needs_override {
        if i.own.phase == Phase::Running && voters.iter().any(|v| v.is_self(i) && gives_up(v)) {
            return Plan::Wait {
                reason: format!(
                    "an operator's override restarts the cluster from {} (seqno {best_pos}), \
                     whose history leaves this node's out: stopping this node's server so \
                     that Galera does not merge it by IST; its data is kept",
                    candidate.s.label()
                ),
                waiting_for: Vec::new(),
                superseded: true,
                accept: None,
                prepare: false,
            };
        }
        let running: Vec<String> = voters
            .iter()
            .filter(|v| v.s.phase == Phase::Running && gives_up(v))
            .map(|v| v.s.label())
            .collect();
        if !running.is_empty() {
            return wait(
                format!(
                    "operator override: waiting for {} to stop its server (its history is \
                     given up; Galera would otherwise merge it by IST)",
                    running.join(", ")
                ),
                running,
            );
        }
    }
    if !candidate.is_self(i) {
        return Plan::Wait {
            reason: format!(
                "full outage: {} has the most advanced data (seqno {best_pos}) and bootstraps \
                 ({how}); waiting to join it{}",
                candidate.s.label(),
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
            accept: if voters.iter().any(|v| v.is_self(i) && accepted_absent(v)) {
                None
            } else {
                candidate.s.volume_id.as_ref().map(|id| record::Member {
                    volume_id: Some(id.clone()),
                    address: Some(candidate.addr),
                    name: candidate.s.node_name.clone(),
                })
            },
        };
    }
    // Before it bootstraps, every other node with data here has recorded that it does (see
    // `Plan::Wait::accept`): a quorum of a view can then be used once, not twice.
    let own_id = i.own.volume_id.as_deref().unwrap_or_default();
    let unrecorded: Vec<String> = voters
        .iter()
        .filter(|v| !v.is_self(i) && !accepts(v.s, own_id))
        // One that keeps its acceptance of a node not here: only an override gets here.
        .filter(|v| !accepted_absent(v))
        .map(|v| v.s.label())
        .collect();
    if !alone && !unrecorded.is_empty() {
        return wait(
            format!(
                "full outage: this node has the most advanced data (seqno {best_pos}) and \
                 bootstraps ({how}) once {} recorded it",
                unrecorded.join(", ")
            ),
            unrecorded
                .iter()
                .map(|l| format!("{l} to record the bootstrap"))
                .collect(),
        );
    }
    Plan::Bootstrap {
        reason: format!(
            "full outage: this node has the most advanced data (seqno {best_pos}) of {} node(s) \
             with data; {how}",
            voters.len()
        ),
        forced: needs_override,
    }
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

#[cfg(test)]
mod tests;
