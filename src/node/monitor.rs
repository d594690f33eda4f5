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
//! [`Monitor::tick`] is pure apart from its [`World`]: the simulation runs it too. The
//! thread that feeds it the `wsrep_%` status and carries out its [`Actions`] is [`spawn`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use crate::decision::{Override, Params, Plan};
use crate::discovery::Answer;
use crate::election::{Election, World};
use crate::record::{self, Epoch, LastView, Member, Record};
use crate::state::{NodeState, Phase, Shared};

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
    /// Write the record.
    pub save: Option<Record>,
    /// Run `SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'`.
    pub pc_bootstrap: bool,
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
    record: Record,
    started: Started,
    started_at: Duration,
    pc_recovery_timeout: Duration,
    was_primary: bool,
    adopted: bool,
    view_conf: Option<i64>,
    runtime: Option<Election>,
    pc_bootstrap_at: Option<Duration>,
    stop_at: Option<Duration>,
    killed: bool,
    has_data: bool,
    with_others_at: Option<Duration>,
    component_lineage: Vec<Epoch>,
    sst_seen: bool,
}

impl Monitor {
    /// A monitor for a mariadbd started now. `record` is the datadir's record as it was
    /// written before the start; `has_data` says whether the datadir held data (a fresh
    /// joiner's record is written only once it has its data).
    pub fn new(
        params: Params,
        record: Record,
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
            record,
            started,
            started_at: now,
            pc_recovery_timeout,
            was_primary: false,
            adopted: false,
            view_conf: None,
            runtime: None,
            pc_bootstrap_at: None,
            stop_at: None,
            killed: false,
            has_data,
            with_others_at: None,
            component_lineage,
            sst_seen: false,
        }
    }

    /// The record as the monitor keeps it.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Whether the node has been in a Primary component since mariadbd started.
    pub fn was_primary(&self) -> bool {
        self.was_primary
    }

    /// Whether the node was in a Primary component with other members within the last
    /// few seconds before `now`: if mariadbd has just stopped cleanly, it left them behind.
    pub fn with_others_lately(&self, now: Duration) -> bool {
        self.with_others_at
            .is_some_and(|t| now.saturating_sub(t) <= Duration::from_secs(10))
    }

    /// One tick: `own` is this node's state with a fresh reading of its `wsrep_%` status.
    pub fn tick(&mut self, world: &mut dyn World, own: &NodeState) -> Actions {
        let now = world.now();
        let mut act = Actions::default();
        self.sst_seen |= own.sst_in_progress;
        if own.is_primary() {
            self.primary(world, own, &mut act);
            return act;
        }
        if let Started::Join { .. } = self.started
            && !self.was_primary
            && !own.sst_in_progress
        {
            self.watch_join(now, own, &mut act);
        }
        if self.was_primary {
            self.restore(world, own, now, &mut act);
        }
        act
    }

    fn primary(&mut self, world: &mut dyn World, own: &NodeState, act: &mut Actions) {
        self.was_primary = true;
        self.has_data = true;
        if own.wsrep_cluster_size.is_some_and(|n| n > 1) {
            self.with_others_at = Some(world.now());
        }
        self.runtime = None;
        self.stop_at = None;
        self.announce(world, own);
        let mut changed = self.record.commit_bootstrap();
        // In a Primary component, this node's history is the cluster's again.
        changed |= std::mem::take(&mut self.record.superseded);
        changed |= self.record.accepted.take().is_some();
        // The component's members, by volume: asked again whenever the view changes, and
        // until every member has answered.
        let conf = own.wsrep_cluster_conf_id;
        let incomplete = self
            .record
            .last_view
            .as_ref()
            .is_none_or(|v| v.members.iter().any(|m| m.volume_id.is_none()));
        let addrs = own.incoming_addresses();
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
            let mut members: Vec<Member> = Vec::new();
            for a in &addrs {
                if Some(*a) == own.address {
                    members.push(self_member(own, &self.record));
                    continue;
                }
                let s = answers
                    .iter()
                    .find(|(p, _)| p == a)
                    .and_then(|(_, s)| s.as_ref());
                // Only Synced members speak for the component's history (a joiner may not
                // have taken it yet).
                if let Some(s) = s.filter(|s| s.is_synced()) {
                    changed |= self.record.extend_lineage(&s.lineage);
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
            if members.iter().all(|m| m.volume_id.is_some()) {
                self.view_conf = conf;
            }
            changed |= self.record.observe_view(LastView {
                cluster: own.wsrep_cluster_state_uuid.clone().unwrap_or_default(),
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
            changed |= self.record.joined(&self.component_lineage);
        }
        // A joiner's view: it holds the view's data once it is Synced.
        if own.is_synced()
            && let Some(v) = &mut self.record.last_view
            && !v.synced
            && Some(v.conf_id) == conf
        {
            v.synced = true;
            changed = true;
        }
        if own.override_requested.is_on() {
            log::warn!("override used up: this node is in a Primary component");
            act.consume_override = true;
            changed |= self.mark_override_used();
        }
        if changed {
            act.save = Some(self.record.clone());
        }
    }

    /// Asks the nodes DNS lists that are not in this component for their state: asking
    /// names this node, so a starting node whose own DNS answer lags learns that a Primary
    /// component runs, instead of taking itself for alone.
    fn announce(&mut self, world: &mut dyn World, own: &NodeState) {
        let Answer::Ready(found) = world.lookup() else {
            return;
        };
        let members = own.incoming_addresses();
        let outside: Vec<IpAddr> = found
            .members
            .into_iter()
            .filter(|a| Some(*a) != own.address && !members.contains(a))
            .collect();
        if !outside.is_empty() {
            world.fetch(&outside);
        }
    }

    fn mark_override_used(&mut self) -> bool {
        let was = self.record.force_env_used;
        self.record.force_env_used = true;
        !was
    }

    /// A start to join, or to let pc.recovery restore the saved view, must reach a Primary
    /// component: a server that waits for one (pc.recovery that cannot complete, or a
    /// Primary component that went away before the join; with a saved view Galera waits for
    /// ever) is stopped after `PC_RECOVERY_TIMEOUT`, so that the node elects instead. A state
    /// transfer under way is never interrupted.
    fn watch_join(&mut self, now: Duration, own: &NodeState, act: &mut Actions) {
        match self.stop_at {
            None if now.saturating_sub(self.started_at) >= self.pc_recovery_timeout => {
                log::warn!(
                    "no Primary component within {}s of starting mariadbd to {}: stopping it \
                     to elect instead",
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
        if let Plan::Bootstrap { reason, forced } = &plan
            && !cooling
        {
            if *forced {
                log::warn!(
                    "MANUAL OVERRIDE: restoring the Primary component with pc.bootstrap: {reason}"
                );
            } else {
                log::warn!("restoring the Primary component with pc.bootstrap: {reason}");
            }
            self.pc_bootstrap_at = Some(now);
            act.pc_bootstrap = true;
            self.record
                .begin_bootstrap(record::random_id(), own.position().unwrap_or(-1), false);
            if own.override_requested.is_on() {
                act.consume_override = true;
                self.mark_override_used();
            }
            if self.has_data {
                act.save = Some(self.record.clone());
            }
        }
        if let Plan::Wait {
            accept: Some(candidate),
            ..
        } = &plan
            && self.record.accepted.as_ref() != Some(candidate)
        {
            // Recorded before the other node may bootstrap: it waits for this.
            self.record.accepted = Some(candidate.clone());
            if self.has_data {
                act.save = Some(self.record.clone());
            }
        }
        if let Plan::Wait {
            superseded: true, ..
        } = &plan
            && self.stop_at.is_none()
        {
            // An override restarts the cluster from a history that leaves this node's out:
            // its server stops before Galera can merge it by IST over the diverged history.
            log::warn!("this node's history was given up by an override: stopping mariadbd");
            self.record.superseded = true;
            self.stop_at = Some(now);
            act.stop = Some(Stop::Term);
            if self.has_data {
                act.save = Some(self.record.clone());
            }
        }
        act.plan = Some(plan);
    }
}

fn self_member(own: &NodeState, record: &Record) -> Member {
    Member {
        volume_id: Some(record.volume_id.clone()),
        address: own.address,
        name: own.node_name.clone(),
    }
}

/// Publishes the record's view of this node in its state.
pub fn publish(state: &mut NodeState, record: &Record) {
    state.volume_id = Some(record.volume_id.clone());
    state.lineage = record.published_lineage();
    state.last_view = record.last_view.clone();
    state.superseded = record.superseded;
    state.accepted = record.accepted.clone();
}

/// What the monitor thread needs.
pub struct Context {
    /// The node's shared state.
    pub state: Shared,
    /// mariadbd's socket.
    pub socket: PathBuf,
    /// The datadir (record, force-bootstrap file).
    pub datadir: PathBuf,
    /// Wakes the health thread when the component's view changes (a member left: the
    /// writer may move).
    pub nudge: crate::health::peers::Nudge,
}

/// The monitor thread; stop it with [`Handle::stop`].
pub struct Handle {
    stop: Arc<AtomicBool>,
    request: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<Monitor>>,
}

/// No stop request.
const NONE: u8 = 0;

/// How often a running node measures its data ([`NodeState::data_bytes`]).
const DATA_SIZE_EVERY: Duration = Duration::from_secs(10);

impl Handle {
    /// What the monitor asks the supervisor to do to mariadbd, if anything.
    pub fn stop_request(&self) -> Option<Stop> {
        match self.request.load(Ordering::SeqCst) {
            1 => Some(Stop::Term),
            2 => Some(Stop::Kill),
            _ => None,
        }
    }

    /// Stops the thread and returns the monitor as it ended.
    pub fn stop(mut self) -> Option<Monitor> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

/// Starts the monitor thread: once a second it reads the `wsrep_%` status, ticks the
/// monitor, and carries out its actions.
pub fn spawn(
    mut monitor: Monitor,
    mut world: impl World + Send + 'static,
    ctx: Context,
) -> std::io::Result<Handle> {
    let stop = Arc::new(AtomicBool::new(false));
    let request = Arc::new(AtomicU8::new(NONE));
    let (stopped, req) = (stop.clone(), request.clone());
    let thread = std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || {
            let mut poller = crate::peer::status::Poller::new(ctx.socket.clone());
            let sst_file = ctx.datadir.join("sst_in_progress");
            // FORCE_BOOTSTRAP was used up by the plan that started mariadbd: from here on
            // only the force-bootstrap file (`galera-init bootstrap`) is an override.
            let force_file = ctx.datadir.join(crate::datadir::FORCE_BOOTSTRAP_FILE);
            let record_file = Record::path(&ctx.datadir);
            let mut answered = false;
            let mut synced_at: Option<std::time::Instant> = None;
            let mut measured_at: Option<std::time::Instant> = None;
            while !stopped.load(Ordering::SeqCst) {
                let vars = poller.read();
                answered |= vars.is_some();
                // What a joiner's SST from this node would copy, for its choice of method.
                if vars.is_some() && measured_at.is_none_or(|t| t.elapsed() >= DATA_SIZE_EVERY) {
                    let bytes = crate::datadir::data_bytes(&ctx.datadir);
                    ctx.state.update(|s| s.data_bytes = Some(bytes));
                    measured_at = Some(std::time::Instant::now());
                }
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let conf_before = ctx.state.get().wsrep_cluster_conf_id;
                ctx.state.update(|s| {
                    crate::peer::status::apply(s, vars.as_ref());
                    // Only the force-bootstrap file can be pending on a running node.
                    s.override_requested = if force_file.exists() {
                        Override::Command
                    } else {
                        Override::None
                    };
                    s.sst_in_progress = sst_file.exists();
                    synced_at = if s.is_synced() {
                        Some(synced_at.unwrap_or_else(std::time::Instant::now))
                    } else {
                        None
                    };
                    s.synced_secs = synced_at.map(|t| t.elapsed().as_secs());
                });
                if ctx.state.get().wsrep_cluster_conf_id != conf_before {
                    ctx.nudge.wake();
                }
                let mut act = monitor.tick(&mut world, &ctx.state.get());
                // An SST clears the datadir, the record with it: once the server answers
                // (it has its data), write it again, with the volume id peers know.
                if act.save.is_none() && answered && !record_file.exists() {
                    act.save = Some(monitor.record().clone());
                }
                if let Some(r) = &act.save
                    && let Err(e) = r.save(&ctx.datadir)
                {
                    log::warn!("cannot write {}: {e}", Record::path(&ctx.datadir).display());
                }
                if act.pc_bootstrap
                    && let Err(e) = poller.pc_bootstrap()
                {
                    log::error!("pc.bootstrap failed: {e}");
                }
                if act.consume_override && force_file.exists() {
                    let _ = std::fs::remove_file(&force_file);
                    log::warn!("removed {} (it applies once)", force_file.display());
                }
                match act.stop {
                    Some(Stop::Term) => req.store(1, Ordering::SeqCst),
                    Some(Stop::Kill) => req.store(2, Ordering::SeqCst),
                    None => {}
                }
                ctx.state.update(|s| {
                    publish(s, monitor.record());
                    // Only the force-bootstrap file can be pending on a running node.
                    s.override_requested = if force_file.exists() {
                        Override::Command
                    } else {
                        Override::None
                    };
                    if let Some(plan) = &act.plan {
                        s.decision = Some(plan.describe());
                        s.waiting_for = match plan {
                            Plan::Wait { waiting_for, .. } => waiting_for.clone(),
                            _ => Vec::new(),
                        };
                    } else if s.is_primary() {
                        s.waiting_for.clear();
                    }
                });
                std::thread::sleep(crate::peer::status::INTERVAL);
            }
            monitor
        })?;
    Ok(Handle {
        stop,
        request,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests;
