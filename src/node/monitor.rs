//! What a node does while mariadbd runs, once a second: the [`Monitor`].
//!
//! - **Makes itself known.** While Primary it asks the nodes DNS lists outside its component
//!   for their state, which names it to them: a starting node whose DNS answer lags learns
//!   that a Primary component runs.
//! - **Keeps the record.** While the node is Primary it notes the component's members by
//!   volume id (asking each member's `/state` at its `wsrep_incoming_addresses` entry), the
//!   end of a pending bootstrap, the lineage of a component it joined or that another member
//!   restored with `pc.bootstrap`. The record then survives a clean stop, when Galera's own
//!   gvwstate.dat does not.
//! - **Restores the Primary component when it is safe.** A node that was Primary and lost
//!   its component (the others were killed) runs the same election rounds as a starting
//!   node; when it is the one to bootstrap, it does so with `pc.bootstrap`, without a
//!   restart.
//! - **Uses up an override** (the force-bootstrap file, FORCE_BOOTSTRAP): once the node is
//!   in a Primary component, or after it bootstrapped with `pc.bootstrap`.
//! - **Watches a join.** After a start that joins, or leaves the restore to Galera's
//!   pc.recovery, a node that is not Primary within `PC_RECOVERY_TIMEOUT` (and not receiving
//!   an SST) asks for mariadbd to be stopped, so that it elects instead.
//!
//! [`Monitor::tick`] is pure apart from its [`World`]; the [`super::driver::Driver`] owns
//! it and the record it keeps, and turns its [`Actions`] into effects.

use std::net::IpAddr;
use std::time::Duration;

use crate::decision::{BootstrapKind, Params, Plan};
use crate::discovery::Answer;
use crate::election::{Election, World};
use crate::record::{self, Epoch, LastView, Member, Record};
use crate::state::{NodeState, Phase};

/// How long a server that never answered may ignore SIGTERM after pc.recovery failed.
pub const STUCK_GRACE: Duration = Duration::from_secs(10);

/// How long after a `pc.bootstrap` before another may be tried.
const PC_BOOTSTRAP_COOLDOWN: Duration = Duration::from_secs(10);

/// How mariadbd was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// With `--wsrep-new-cluster`.
    Bootstrap,
    /// To join a Primary component (whose lineage this node's history becomes), or to let
    /// pc.recovery restore the saved view.
    Join {
        /// pc.recovery is expected to restore the component.
        pc_recovery: bool,
        /// The lineage of the component joined (empty for pc.recovery).
        lineage: Vec<Epoch>,
    },
}

/// What the supervisor should do to mariadbd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Stop it cleanly (SIGTERM).
    Term,
    /// Kill it: only a server that never opened its storage engines.
    Kill,
}

/// What one tick asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    /// The record changed: write it.
    pub save: bool,
    /// Run `SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'`, by this rule.
    pub pc_bootstrap: Option<BootstrapKind>,
    /// Remove the force-bootstrap file and note FORCE_BOOTSTRAP as used.
    pub consume_override: bool,
    /// Stop or kill mariadbd.
    pub stop: Option<Stop>,
    /// The runtime election's plan, for `/state`.
    pub plan: Option<Plan>,
}

/// The monitor's state between ticks.
#[derive(Debug, Clone)]
pub struct Monitor {
    params: Params,
    started: Started,
    /// When mariadbd started, or last showed a state transfer in progress: the join's
    /// watchdog counts from then (an SST proves a Primary component, however long it takes).
    waiting_since: Duration,
    pc_recovery_timeout: Duration,
    was_primary: bool,
    adopted: bool,
    view_conf: Option<i64>,
    runtime: Option<Election>,
    pc_bootstrap_at: Option<Duration>,
    stop_at: Option<Duration>,
    killed: bool,
    has_data: bool,
    component_lineage: Vec<Epoch>,
    sst_seen: bool,
    last_primary: bool,
    stopping: bool,
    /// Every other member of the component was Synced when last asked: what they report
    /// of the component's history is settled.
    members_synced: bool,
}

impl Monitor {
    /// A monitor for a mariadbd started now. `has_data` says whether the datadir held data
    /// (a fresh joiner's record is written only once it has its data).
    pub fn new(
        params: Params,
        started: Started,
        now: Duration,
        pc_recovery_timeout: Duration,
        has_data: bool,
    ) -> Monitor {
        let component_lineage = match &started {
            Started::Join { lineage, .. } => lineage.clone(),
            Started::Bootstrap => Vec::new(),
        };
        Monitor {
            params,
            started,
            waiting_since: now,
            pc_recovery_timeout,
            was_primary: false,
            adopted: false,
            view_conf: None,
            runtime: None,
            pc_bootstrap_at: None,
            stop_at: None,
            killed: false,
            has_data,
            component_lineage,
            sst_seen: false,
            last_primary: false,
            stopping: false,
            members_synced: false,
        }
    }

    /// Whether the node has been in a Primary component since mariadbd started.
    pub fn was_primary(&self) -> bool {
        self.was_primary
    }

    /// Whether the last reading that answered showed the node in a Primary component.
    pub fn last_primary(&self) -> bool {
        self.last_primary
    }

    /// A stop signal came from outside: mariadbd shuts down, so the node no longer restores
    /// a component nor watches a join; it only keeps its record.
    pub fn stop_signal(&mut self) {
        self.stopping = true;
    }

    /// Whether the monitor asked for mariadbd to be stopped (so that the node elects).
    pub fn stop_requested(&self) -> bool {
        self.stop_at.is_some()
    }

    /// One tick: `own` is this node's state with a fresh reading of its `wsrep_%` status;
    /// `record` is the datadir's record, kept up to date.
    pub fn tick(&mut self, record: &mut Record, world: &mut dyn World, own: &NodeState) -> Actions {
        let now = world.now();
        let mut act = Actions::default();
        self.sst_seen |= own.sst_in_progress;
        if own.sst_in_progress {
            self.waiting_since = now;
        }
        if own.phase == Phase::Running && own.wsrep_cluster_status.is_some() {
            self.last_primary = own.is_primary();
        }
        if own.is_primary() {
            self.primary(record, world, own, &mut act);
            return act;
        }
        if self.stopping {
            return act;
        }
        if let Started::Join { .. } = self.started
            && !self.was_primary
            && !own.sst_in_progress
        {
            self.watch_join(now, own, &mut act);
        }
        if self.was_primary {
            self.restore(record, world, own, now, &mut act);
        }
        act
    }

    fn primary(
        &mut self,
        record: &mut Record,
        world: &mut dyn World,
        own: &NodeState,
        act: &mut Actions,
    ) {
        self.was_primary = true;
        self.has_data = true;
        self.runtime = None;
        self.stop_at = None;
        let outside = self.announce(world, own);
        let mut changed = record.commit_bootstrap();
        changed |= std::mem::take(&mut record.never_primary);
        // In a Primary component, this node's history is the cluster's again.
        changed |= std::mem::take(&mut record.superseded);
        changed |= record.accepted.take().is_some();
        // The component's members, by volume: asked again whenever the view changes, and
        // until every member has answered, Synced (a joiner's lineage is not the
        // component's yet).
        let conf = own.wsrep_cluster_conf_id;
        let incomplete = !self.members_synced
            || record
                .last_view
                .as_ref()
                .is_none_or(|v| v.members.iter().any(|m| m.volume_id.is_none()));
        let addrs = view_members(own, &outside);
        // A view is recorded only when every member's address is known: a view recorded
        // short of members would let this node think nobody else may be newer.
        let whole = own.wsrep_cluster_size == Some(addrs.len() as i64)
            && own.address.is_some_and(|a| addrs.contains(&a));
        if conf.is_some() && whole && (conf != self.view_conf || incomplete) {
            let others: Vec<IpAddr> = addrs
                .iter()
                .copied()
                .filter(|a| Some(*a) != own.address)
                .collect();
            let answers = world.fetch(&others);
            self.members_synced = answers
                .iter()
                .all(|(_, s)| s.as_ref().is_some_and(|s| s.is_synced()));
            let mut members: Vec<Member> = Vec::new();
            for a in &addrs {
                if Some(*a) == own.address {
                    members.push(self_member(own, record));
                    continue;
                }
                let s = answers
                    .iter()
                    .find(|(p, _)| p == a)
                    .and_then(|(_, s)| s.as_ref());
                // Only Synced members speak for the component's history (a joiner may not
                // have taken it yet).
                if let Some(s) = s.filter(|s| s.is_synced()) {
                    changed |= record.extend_lineage(&s.lineage);
                    if s.lineage.len() > self.component_lineage.len() {
                        self.component_lineage = s.lineage.clone();
                    }
                }
                members.push(Member {
                    volume_id: s.and_then(|s| s.volume_id.clone()),
                    address: Some(*a),
                    name: s.map(|s| s.node_name.clone()).unwrap_or_default(),
                });
            }
            let cluster = own.wsrep_cluster_state_uuid.clone().unwrap_or_default();
            if let Some(before) = record
                .last_view
                .as_ref()
                .filter(|v| v.cluster == cluster && Some(v.conf_id) == conf)
            {
                keep_known_members(before, &mut members);
            }
            if members.iter().all(|m| m.volume_id.is_some()) {
                self.view_conf = conf;
            }
            changed |= record.observe_view(LastView {
                cluster,
                conf_id: conf.unwrap_or(0),
                members,
                synced: own.is_synced(),
            });
        }
        // A joiner's history is the component's once it is Synced: the lineage its Synced
        // members report now (the component may have been restored since the join was
        // decided). The same after an SST into a running node: Galera merged it into
        // another history.
        let joining = matches!(self.started, Started::Join { .. }) && !self.adopted;
        if (joining || self.sst_seen) && own.is_synced() {
            self.adopted = true;
            self.sst_seen = false;
            changed |= record.joined(&self.component_lineage);
        }
        // A joiner's view: it holds the view's data once it is Synced.
        if own.is_synced()
            && let Some(v) = &mut record.last_view
            && !v.synced
            && Some(v.conf_id) == conf
        {
            v.synced = true;
            changed = true;
        }
        if own.override_requested.is_on() {
            log::warn!("override used up: this node is in a Primary component");
            act.consume_override = true;
            changed |= mark_override_used(record);
        }
        act.save |= changed;
    }

    /// Asks the nodes DNS lists that are not in this component for their state: asking
    /// names this node, so a starting node whose own DNS answer lags learns that a Primary
    /// component runs, instead of taking itself for alone.
    /// Returns their answers.
    fn announce(
        &mut self,
        world: &mut dyn World,
        own: &NodeState,
    ) -> Vec<(IpAddr, Option<NodeState>)> {
        let Answer::Ready(found) = world.lookup() else {
            return Vec::new();
        };
        let members = own.incoming_addresses();
        let outside: Vec<IpAddr> = found
            .members
            .into_iter()
            .filter(|a| Some(*a) != own.address && !members.contains(a))
            .collect();
        if outside.is_empty() {
            return Vec::new();
        }
        world.fetch(&outside)
    }

    /// A start to join, or to let pc.recovery restore the saved view, must reach a Primary
    /// component: a server that waits for one (pc.recovery that cannot complete, or a
    /// Primary component that went away before the join; with a saved view Galera waits for
    /// ever) is stopped after `PC_RECOVERY_TIMEOUT`, so that the node elects instead. A state
    /// transfer under way is never interrupted.
    fn watch_join(&mut self, now: Duration, own: &NodeState, act: &mut Actions) {
        match self.stop_at {
            None if now.saturating_sub(self.waiting_since) >= self.pc_recovery_timeout => {
                log::warn!(
                    "no Primary component within {}s of starting mariadbd (or of its state \
                     transfer) to {}: stopping it to elect instead",
                    self.pc_recovery_timeout.as_secs(),
                    match self.started {
                        Started::Join {
                            pc_recovery: true, ..
                        } => "let pc.recovery restore the saved view",
                        _ => "join",
                    }
                );
                self.stop_at = Some(now);
                act.stop = Some(Stop::Term);
            }
            // A server still waiting for a Primary view has not opened its storage engines
            // yet and ignores SIGTERM until it does: nothing is lost by killing it.
            Some(t)
                if !self.killed
                    && now.saturating_sub(t) >= STUCK_GRACE
                    && own.phase == Phase::Joining =>
            {
                log::warn!(
                    "mariadbd ignored SIGTERM for {}s while waiting for a Primary view \
                     (storage engines not opened yet): killing it",
                    STUCK_GRACE.as_secs()
                );
                self.killed = true;
                act.stop = Some(Stop::Kill);
            }
            _ => {}
        }
    }

    /// The node lost its Primary component: elect, and restore it with pc.bootstrap when
    /// this node is the one.
    fn restore(
        &mut self,
        record: &mut Record,
        world: &mut dyn World,
        own: &NodeState,
        now: Duration,
        act: &mut Actions,
    ) {
        let params = self.params.clone();
        let election = self
            .runtime
            .get_or_insert_with(|| Election::new(params, now));
        let plan = election.round(world, own, own.override_requested, false);
        let cooling = self
            .pc_bootstrap_at
            .is_some_and(|t| now.saturating_sub(t) < PC_BOOTSTRAP_COOLDOWN);
        if let Plan::Bootstrap { reason, kind } = &plan
            && !cooling
        {
            if kind.forced() {
                log::warn!(
                    "MANUAL OVERRIDE: restoring the Primary component with pc.bootstrap: {reason}"
                );
            } else {
                log::warn!("restoring the Primary component with pc.bootstrap: {reason}");
            }
            self.pc_bootstrap_at = Some(now);
            act.pc_bootstrap = Some(*kind);
            record.begin_bootstrap(record::random_id(), own.position().unwrap_or(-1), false);
            if own.override_requested.is_on() {
                act.consume_override = true;
                mark_override_used(record);
            }
            act.save |= self.has_data;
        }
        if let Plan::Wait {
            accept: Some(candidate),
            ..
        } = &plan
            && record.accepted.as_ref() != Some(candidate)
        {
            // Recorded before the other node may bootstrap: it waits for this.
            record.accepted = Some(candidate.clone());
            act.save |= self.has_data;
        }
        if let Plan::Wait {
            superseded: true, ..
        } = &plan
            && self.stop_at.is_none()
        {
            // An override restarts the cluster from a history that leaves this node's out:
            // its server stops before Galera can merge it by IST over the diverged history.
            log::warn!("this node's history was given up by an override: stopping mariadbd");
            record.superseded = true;
            self.stop_at = Some(now);
            act.stop = Some(Stop::Term);
            act.save |= self.has_data;
        }
        act.plan = Some(plan);
    }
}

fn mark_override_used(record: &mut Record) -> bool {
    let was = record.force_env_used;
    record.force_env_used = true;
    !was
}

/// The members of the view `own` is in: `wsrep_incoming_addresses`, this node, and the
/// nodes outside that list (`outside`, their answers) that report this very view (the same
/// cluster and `wsrep_cluster_conf_id`, Primary). Galera's list may lag the view (suspected
/// from a cold start where one joiner's record kept its start-up view for minutes), and a
/// view short of members is never recorded.
fn view_members(own: &NodeState, outside: &[(IpAddr, Option<NodeState>)]) -> Vec<IpAddr> {
    let mut addrs = own.incoming_addresses();
    if let Some(me) = own.address.filter(|a| !addrs.contains(a)) {
        addrs.push(me);
    }
    for (a, s) in outside {
        let same_view = s.as_ref().is_some_and(|s| {
            s.is_primary()
                && s.wsrep_cluster_state_uuid == own.wsrep_cluster_state_uuid
                && s.wsrep_cluster_conf_id == own.wsrep_cluster_conf_id
        });
        if same_view && !addrs.contains(a) {
            addrs.push(*a);
        }
    }
    addrs
}

fn self_member(own: &NodeState, record: &Record) -> Member {
    Member {
        volume_id: Some(record.volume_id.clone()),
        address: own.address,
        name: own.node_name.clone(),
    }
}

/// Asked again in the same view, a member that answered before and is silent now (killed
/// while this node is still Primary) is still the member it was: keep what it answered.
fn keep_known_members(before: &LastView, members: &mut [Member]) {
    for m in members.iter_mut().filter(|m| m.volume_id.is_none()) {
        if let Some(known) = before
            .members
            .iter()
            .find(|b| b.address == m.address && b.volume_id.is_some())
        {
            m.volume_id = known.volume_id.clone();
            m.name = known.name.clone();
        }
    }
}

#[cfg(test)]
mod tests;
