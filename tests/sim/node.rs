//! The galera-init side of a simulated task: the same sequence as `src/node`, calling the
//! library's own pure steps (`node::startup`), election rounds (`election::Election`) and
//! monitor (`node::monitor::Monitor`) against the simulated world. What `src/node` does
//! with files and processes, this file does to the model's volume and mariadbd.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use galera_init::decision::{Override, Params, Plan};
use galera_init::discovery::{self, Answer, DnsError};
use galera_init::election::{Election, World};
use galera_init::galera::grastate::GraState;
use galera_init::galera::gvwstate::SavedView;
use galera_init::node::monitor::{self, Monitor, Started, Stop};
use galera_init::node::startup::{self, Disk};
use galera_init::record::{self, Record};
use galera_init::state::{NodeState, Phase as StatePhase};

use crate::model::{Conn, Db, Grastate, INIT_STEPS, Mode, Sim, Volume, uuid};

/// What galera-init is doing.
#[derive(Debug, Clone)]
enum Phase {
    /// Waiting for DNS to list it.
    Discovering,
    /// `mariadbd --wsrep-recover` runs until the step given.
    Recovering { until: u64 },
    /// Election rounds.
    Electing { election: Box<Election> },
    /// Initialising or writing the config; mariadbd starts at `until`.
    Preparing {
        until: u64,
        bootstrap: bool,
        started: Started,
        gcomm: BTreeSet<IpAddr>,
    },
    /// mariadbd runs, watched by the monitor.
    Running { db: Db, monitor: Box<Monitor> },
}

/// A task: one galera-init process and its mariadbd.
#[derive(Debug, Clone)]
pub struct Task {
    slot: usize,
    addr: IpAddr,
    env_set: bool,
    /// The node's current start is a bootstrap made under an override.
    pub forced_bootstrap: bool,
    /// The node's current start is a fresh-cluster bootstrap decided while no node it knew
    /// of held data.
    pub blind_fresh_bootstrap: bool,
    /// For a bootstrap: the most advanced position among the other nodes it knew of when it
    /// decided, and which slot held it.
    pub best_known: Option<(i64, usize)>,
    /// The node's current start is a bootstrap decided by the OUTAGE_TIMEOUT majority rule.
    pub majority_bootstrap: bool,
    learned: BTreeMap<IpAddr, u64>,
    allow_pc_recovery: bool,
    phase: Phase,
    own: NodeState,
    record: Record,
    env_override: bool,
    disk: Disk,
}

/// How a tick ended.
enum Outcome {
    Continue,
    Exit(i32, String),
}

fn params(sim: &Sim) -> Params {
    Params {
        cluster_size: sim.cfg.cluster_size,
        settle: Duration::from_secs(sim.cfg.settle),
        outage_timeout: Duration::from_secs(sim.cfg.outage),
        sst: galera_init::config::SstSetting::Auto,
    }
}

/// The model's grastate.dat as galera-init parses it.
fn parsed(g: &Grastate) -> GraState {
    GraState {
        uuid: uuid(g.cluster),
        seqno: g.seqno,
        safe_to_bootstrap: g.safe,
    }
}

/// galera-init's `settle_bootstrap`: after mariadbd is gone, a bootstrap still pending did not
/// reach a Primary component unless grastate.dat shows it committed after its start.
fn settle_bootstrap(record: &mut Record, vol: &mut Volume) {
    if record.pending.is_none() {
        return;
    }
    let position = vol.grastate.as_ref().map(|g| g.seqno).filter(|s| *s >= 0);
    if record.settle_at_start(position)
        && let Some(g) = &mut vol.grastate
    {
        g.safe = false;
        vol.flag_by_init = false;
    }
    vol.record = Some(record.clone());
}

impl Task {
    /// A task starting now in slot `slot` at `addr`; `env_set` says FORCE_BOOTSTRAP is set on
    /// the service.
    pub fn new(slot: usize, addr: IpAddr, env_set: bool, _now: u64, _override_id: u64) -> Task {
        Task {
            slot,
            addr,
            env_set,
            forced_bootstrap: false,
            blind_fresh_bootstrap: false,
            best_known: None,
            majority_bootstrap: false,
            learned: BTreeMap::new(),
            allow_pc_recovery: true,
            phase: Phase::Discovering,
            own: NodeState {
                address: Some(addr),
                node_name: format!("slot{slot}"),
                ..NodeState::default()
            },
            record: Record::default(),
            env_override: false,
            disk: Disk::default(),
        }
    }

    /// Its mariadbd, when one runs.
    pub fn db(&self) -> Option<&Db> {
        match &self.phase {
            Phase::Running { db, .. } => Some(db),
            _ => None,
        }
    }

    /// Its mariadbd, to change.
    pub fn db_mut(&mut self) -> Option<&mut Db> {
        match &mut self.phase {
            Phase::Running { db, .. } => Some(db),
            _ => None,
        }
    }

    /// mariadbd, stopped by galera-init's request, has exited cleanly: the node elects
    /// again (`Outcome::PcRecoveryFailed`).
    pub fn db_stopped(&mut self, vol: &mut Volume) {
        if let Phase::Running { monitor, .. } = &self.phase {
            self.record = monitor.record().clone();
        }
        settle_bootstrap(&mut self.record, vol);
        self.allow_pc_recovery = false;
        self.phase = Phase::Discovering;
    }

    /// SIGTERM reached the task (mariadbd, if it ran, has shut down cleanly, `with_others`
    /// still in its Primary component); returns how it exits when mariadbd was not running.
    pub fn on_stop(&self, vol: &mut Volume, with_others: bool) -> Option<String> {
        let mut record = match &self.phase {
            Phase::Running { monitor, .. } => monitor.record().clone(),
            _ => self.record.clone(),
        };
        if with_others && matches!(self.phase, Phase::Running { .. }) {
            record.left_while_others = true;
            vol.record = Some(record.clone());
        }
        settle_bootstrap(&mut record, vol);
        match self.phase {
            Phase::Running { .. } => None,
            _ => Some("exit 143 during start-up".into()),
        }
    }

    /// What the task serves on `/state`.
    fn report(&self, sim: &Sim) -> NodeState {
        let mut st = self.own.clone();
        st.address = Some(self.addr);
        st.phase = match &self.phase {
            Phase::Discovering => StatePhase::Discovering,
            Phase::Recovering { .. } => StatePhase::Recovering,
            Phase::Electing { .. } => StatePhase::Waiting,
            Phase::Preparing {
                bootstrap: true, ..
            } => StatePhase::Bootstrapping,
            Phase::Preparing { .. } => StatePhase::Joining,
            Phase::Running { db, monitor } => {
                monitor::publish(&mut st, monitor.record());
                // As the monitor thread publishes it: only the file can be pending now.
                st.override_requested = if sim.vol_of(self.slot).force_file {
                    Override::Command
                } else {
                    Override::None
                };
                // mariadbd answers once it has been in a Primary component: until then
                // (joining, or waiting for pc.recovery) its storage engines are not open.
                let answers = db.conn == Conn::Member;
                if answers {
                    sim.wsrep(self.slot, &mut st);
                    st.fresh = Some(false);
                    StatePhase::Running
                } else if db.mode == Mode::Bootstrap {
                    StatePhase::Bootstrapping
                } else {
                    StatePhase::Joining
                }
            }
        };
        st
    }

    /// The datadir, as galera-init reads it at start: `Disk`, the record, the unearned flag.
    fn inspect(&mut self, sim: &mut Sim, recovered: bool) {
        let slot = self.slot;
        let vol = sim.vol_of(slot).clone();
        let fresh = vol.data.is_none();
        // A record without data belongs to data that is gone (an SST that never finished).
        self.record = vol
            .record
            .clone()
            .filter(|_| !fresh)
            .unwrap_or_else(|| Record::new(record::random_id()));
        self.disk = Disk {
            fresh,
            grastate: vol.grastate.as_ref().map(parsed),
            recovered: if recovered {
                vol.data
                    .as_ref()
                    .map(|d| (uuid(d.cluster), d.history.len() as i64))
            } else {
                None
            },
            view: vol.gvwstate.as_ref().map(|v| SavedView {
                my_uuid: format!("vol{}", vol.id),
                view_id: v.id.to_string(),
                members: v.members.iter().map(|m| format!("vol{m}")).collect(),
            }),
        };
        if !fresh && self.record.settle_at_start(self.disk.position()) {
            let v = sim.vol_mut_of(slot);
            if let Some(g) = &mut v.grastate {
                g.safe = false;
            }
            v.flag_by_init = false;
            if let Some(g) = &mut self.disk.grastate {
                g.safe_to_bootstrap = false;
            }
        }
        let v = sim.vol_of(slot);
        if v.flag_by_init && v.grastate.as_ref().is_some_and(|g| g.safe) {
            sim.violate(
                "stale-flag",
                format!(
                    "slot {slot} starts with safe_to_bootstrap: 1 that galera-init wrote for \
                     a bootstrap that never reached Primary"
                ),
            );
        }
        self.env_override = self.record.arm_env_override(self.env_set);
        if !fresh {
            sim.vol_mut_of(slot).record = Some(self.record.clone());
        }
        self.own = startup::own_state(&self.disk, &self.record);
        self.own.address = Some(self.addr);
        self.own.node_name = format!("slot{slot}");
    }

    fn tick(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) -> Outcome {
        let now = sim.now;
        match &mut self.phase {
            Phase::Discovering => {
                let answer = SimWorld::new(sim, self, reports).lookup();
                if let Answer::Ready(_) = answer {
                    let v = sim.vol_of(self.slot);
                    let crashed =
                        v.data.is_some() && v.grastate.as_ref().is_some_and(|g| g.seqno == -1);
                    if crashed {
                        self.own.phase = StatePhase::Recovering;
                        self.phase = Phase::Recovering { until: now + 1 };
                    } else {
                        self.inspect(sim, false);
                        self.start_election(sim);
                    }
                }
            }
            Phase::Recovering { until } => {
                if *until <= now {
                    self.inspect(sim, true);
                    self.start_election(sim);
                }
            }
            Phase::Electing { .. } => return self.elect(sim, reports),
            Phase::Preparing {
                until,
                bootstrap,
                started,
                gcomm,
            } => {
                if *until <= now {
                    let (bootstrap, started, gcomm) = (*bootstrap, started.clone(), gcomm.clone());
                    self.start_db(sim, bootstrap, started, gcomm);
                }
            }
            Phase::Running { .. } => self.monitor(sim, reports),
        }
        Outcome::Continue
    }

    fn start_election(&mut self, sim: &Sim) {
        self.own.phase = StatePhase::Waiting;
        self.phase = Phase::Electing {
            election: Box::new(Election::new(params(sim), Duration::from_secs(sim.now))),
        };
    }

    fn elect(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) -> Outcome {
        let Phase::Electing { election } = &mut self.phase else {
            unreachable!()
        };
        let mut election = election.clone();
        let force = if sim.vol_of(self.slot).force_file {
            Override::Command
        } else if self.env_override {
            Override::Service
        } else {
            Override::None
        };
        self.own.override_requested = force;
        let own = self.own.clone();
        let allow = self.allow_pc_recovery;
        let (plan, notes) = {
            let mut w = SimWorld::new(sim, self, reports);
            let plan = election.round(&mut w, &own, force, allow);
            (plan, w.notes)
        };
        apply_notes(sim, notes);
        if force.is_on() && election.primary_seen() && matches!(plan, Plan::Wait { .. }) {
            // The override is used up: a Primary component runs or is being made.
            sim.vol_mut_of(self.slot).force_file = false;
            if self.env_override {
                self.env_override = false;
                self.record.force_env_used = true;
                if sim.vol_of(self.slot).data.is_some() {
                    sim.vol_mut_of(self.slot).record = Some(self.record.clone());
                }
            }
            self.own.override_requested = Override::None;
        }
        let line = plan.describe();
        if matches!(plan, Plan::Wait { .. }) && self.own.decision.as_ref() != Some(&line) {
            sim.note(format!("slot {}: {line}", self.slot));
        }
        self.own.decision = Some(line);
        self.own.known = election.first_hand().to_vec();
        let slot = self.slot;
        let now = sim.now;
        let final_plan = !matches!(plan, Plan::Wait { .. } | Plan::Refuse { .. });
        if final_plan {
            sim.note(format!("slot {slot}: decision: {}", plan.describe()));
            let prep = startup::prepare(
                &plan,
                &mut self.record,
                &own,
                force.is_on(),
                self.env_override,
            );
            if prep.consume_override {
                sim.vol_mut_of(slot).force_file = false;
            }
            if prep.forget_saved_view {
                sim.vol_mut_of(slot).gvwstate = None;
            }
            self.own.override_requested = Override::None;
            self.own.known.clear();
            let v = sim.vol_mut_of(slot);
            if v.data.is_none() && matches!(plan, Plan::Join { .. }) {
                // An empty joiner's record is saved before the SST, which keeps it.
                v.record = Some(self.record.clone());
            }
            if v.data.is_some() {
                // Saved before the flag is written, as in `src/node`.
                v.record = Some(self.record.clone());
                if prep.write_flag
                    && let Some(g) = &mut v.grastate
                {
                    g.safe = true;
                    v.flag_by_init = true;
                }
            }
        }
        match plan {
            Plan::Wait {
                superseded, accept, ..
            } => {
                if let Some(candidate) = accept
                    && sim.vol_of(slot).data.is_some()
                    && self.record.accepted.as_ref() != Some(&candidate)
                {
                    sim.accepted(slot, &candidate);
                    self.record.accepted = Some(candidate.clone());
                    self.own.accepted = Some(candidate);
                    sim.vol_mut_of(slot).record = Some(self.record.clone());
                }
                if superseded && sim.vol_of(slot).data.is_some() && !self.record.superseded {
                    self.record.superseded = true;
                    self.own.superseded = true;
                    sim.vol_mut_of(slot).record = Some(self.record.clone());
                    sim.note(format!(
                        "slot {slot}: its history was given up by an override"
                    ));
                }
                self.phase = Phase::Electing { election };
            }
            Plan::Refuse { reason } => return Outcome::Exit(1, format!("refused: {reason}")),
            Plan::Bootstrap { forced, reason } => {
                self.forced_bootstrap = forced;
                self.majority_bootstrap = by_majority(&reason);
                self.best_known = best_known(&election, self.addr, reports);
                let fresh = sim.vol_of(slot).data.is_none();
                self.blind_fresh_bootstrap = fresh
                    && !election.listed().iter().any(|a| {
                        *a != self.addr
                            && reports
                                .get(a)
                                .is_some_and(|(o, _)| sim.vol_of(*o).data.is_some())
                    });
                self.phase = Phase::Preparing {
                    until: now + if fresh { INIT_STEPS } else { 1 },
                    bootstrap: true,
                    started: Started::Bootstrap,
                    gcomm: election.listed().iter().copied().collect(),
                };
            }
            Plan::Join {
                pc_recovery,
                lineage,
                members,
                ..
            } => {
                self.forced_bootstrap = false;
                if pc_recovery {
                    sim.vol_mut_of(slot).synced_in_last_view = false;
                } else {
                    sim.decided_to_join(slot);
                }
                self.phase = Phase::Preparing {
                    until: now + 1,
                    bootstrap: false,
                    started: Started::Join {
                        pc_recovery,
                        lineage,
                    },
                    gcomm: members.into_iter().collect(),
                };
            }
        }
        Outcome::Continue
    }

    fn start_db(
        &mut self,
        sim: &mut Sim,
        bootstrap: bool,
        started: Started,
        gcomm: BTreeSet<IpAddr>,
    ) {
        let now = sim.now;
        let v = sim.vol_mut_of(self.slot);
        let has_data = v.data.is_some();
        if bootstrap && !has_data {
            // The initialisation made a database: the record is saved with it.
            v.record = Some(self.record.clone());
        }
        let saved = if bootstrap { None } else { v.gvwstate.clone() };
        if let Some(g) = &mut v.grastate {
            g.seqno = -1;
        } else if let Some(d) = &v.data {
            v.grastate = Some(Grastate {
                cluster: d.cluster,
                seqno: -1,
                safe: false,
            });
        }
        if self.record.left_while_others {
            self.record.left_while_others = false;
            if has_data {
                v.record = Some(self.record.clone());
            }
        }
        let mode = if bootstrap {
            Mode::Bootstrap
        } else {
            Mode::Join
        };
        let monitor = Monitor::new(
            params(sim),
            self.record.clone(),
            started,
            Duration::from_secs(now),
            Duration::from_secs(sim.cfg.pc_recovery),
            has_data || bootstrap,
        );
        self.phase = Phase::Running {
            db: Db::new(mode, saved, now, gcomm),
            monitor: Box::new(monitor),
        };
    }

    /// One tick of the monitor, and what the thread in `node::monitor::spawn` does with its
    /// actions.
    fn monitor(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) {
        let slot = self.slot;
        // The poller's reading: this step's report, made while the task was in its slot.
        let Some((_, mut own)) = reports.get(&self.addr).cloned() else {
            return;
        };
        if own.is_primary() {
            // As `peer::status::apply` does: the data is this cluster's now.
            self.own.uuid = own.wsrep_cluster_state_uuid.clone();
            own.uuid = self.own.uuid.clone();
        }
        own.override_requested = if sim.vol_of(slot).force_file {
            Override::Command
        } else {
            Override::None
        };
        own.sst_in_progress = matches!(self.db().map(|d| d.conn), Some(Conn::Transfer { .. }));
        let Phase::Running { monitor, .. } = &mut self.phase else {
            unreachable!()
        };
        let mut monitor = monitor.clone();
        let (mut act, notes) = {
            let mut w = SimWorld::new(sim, self, reports);
            let act = monitor.tick(&mut w, &own);
            (act, w.notes)
        };
        apply_notes(sim, notes);
        if act.save.is_none()
            && own.phase == StatePhase::Running
            && sim.vol_of(slot).record.is_none()
        {
            act.save = Some(monitor.record().clone());
        }
        if let Some(Plan::Wait {
            accept: Some(candidate),
            ..
        }) = &act.plan
        {
            sim.accepted(slot, candidate);
        }
        if let Some(r) = act.save.take() {
            sim.vol_mut_of(slot).record = Some(r);
        }
        if act.consume_override {
            sim.vol_mut_of(slot).force_file = false;
        }
        if let Some(plan) = &act.plan {
            let line = plan.describe();
            if self.own.decision.as_ref() != Some(&line) {
                sim.note(format!("slot {slot}: monitor: {line}"));
            }
            self.own.decision = Some(line);
        }
        let Phase::Running { db, monitor: m } = &mut self.phase else {
            unreachable!()
        };
        *m = monitor;
        if act.pc_bootstrap {
            self.forced_bootstrap = matches!(act.plan, Some(Plan::Bootstrap { forced: true, .. }));
            self.majority_bootstrap = matches!(&act.plan,
                Some(Plan::Bootstrap { reason, .. }) if by_majority(reason));
            self.best_known = reports
                .iter()
                .filter(|(a, (s, st))| {
                    **a != self.addr && *s != slot && st.has_data() && !st.superseded
                })
                .filter(|(_, (s, _))| sim.reachable(slot, *s))
                .filter_map(|(_, (s, st))| st.position().map(|p| (p, *s)))
                .max();
            db.pc_bootstrap = true;
            sim.note(format!("slot {slot}: monitor: pc.bootstrap"));
        }
        match act.stop {
            // A server waiting for a Primary view ignores SIGTERM; one that answers shuts
            // down cleanly.
            Some(Stop::Term) if db.conn == Conn::Member => db.stop = true,
            Some(Stop::Kill) => {
                sim.note(format!(
                    "slot {slot}: the stuck mariadbd is killed; the node elects instead"
                ));
                let v = sim.vol_mut_of(slot);
                self.db_stopped(v);
            }
            _ => {}
        }
    }
}

/// The most advanced position among the nodes `election` knew of (other than `me`), by
/// their reports, and the slot holding it.
fn best_known(
    election: &Election,
    me: IpAddr,
    reports: &BTreeMap<IpAddr, (usize, NodeState)>,
) -> Option<(i64, usize)> {
    election
        .listed()
        .iter()
        .filter(|a| **a != me)
        .filter_map(|a| reports.get(a))
        .filter(|(_, st)| st.has_data() && !st.superseded)
        .filter_map(|(s, st)| st.position().map(|p| (p, *s)))
        .max()
}

impl Sim {
    /// The volume of slot `s`, to change.
    pub fn vol_mut_of(&mut self, s: usize) -> &mut Volume {
        let v = self.slots[s - 1].vol;
        &mut self.volumes[v - 1]
    }
}

/// The simulated world as one task sees it.
struct SimWorld<'a> {
    sim: &'a Sim,
    me: usize,
    addr: IpAddr,
    learned: Vec<IpAddr>,
    reports: &'a BTreeMap<IpAddr, (usize, NodeState)>,
    /// Peers this task asked: they learn of it.
    notes: Vec<(usize, IpAddr)>,
}

impl<'a> SimWorld<'a> {
    fn new(
        sim: &'a Sim,
        task: &Task,
        reports: &'a BTreeMap<IpAddr, (usize, NodeState)>,
    ) -> SimWorld<'a> {
        let learned = task
            .learned
            .iter()
            .filter(|(_, t)| **t + 10 > sim.now)
            .map(|(a, _)| *a)
            .collect();
        SimWorld {
            sim,
            me: task.slot,
            addr: task.addr,
            learned,
            reports,
            notes: Vec::new(),
        }
    }
}

impl World for SimWorld<'_> {
    fn now(&self) -> Duration {
        Duration::from_secs(self.sim.now)
    }

    fn lookup(&mut self) -> Answer {
        let me = &self.sim.slots[self.me - 1];
        if me.cut {
            return discovery::interpret(Err(DnsError::Timeout), None, &[self.addr]);
        }
        let addrs: Vec<IpAddr> = self
            .reports
            .iter()
            .filter(|(_, (s, _))| me.hidden.get(s).is_none_or(|until| *until <= self.sim.now))
            .map(|(a, _)| *a)
            .collect();
        discovery::interpret(Ok(addrs), None, &[self.addr])
    }

    fn learned(&mut self) -> Vec<IpAddr> {
        self.learned.clone()
    }

    fn fetch(&mut self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)> {
        addrs
            .iter()
            .map(|a| {
                let answer = self.reports.get(a).and_then(|(s, st)| {
                    let up = self.sim.reachable(self.me, *s)
                        && self.sim.slots[s - 1].mute_until <= self.sim.now;
                    if up {
                        self.notes.push((*s, self.addr));
                    }
                    up.then(|| st.clone())
                });
                (*a, answer)
            })
            .collect()
    }
}

fn apply_notes(sim: &mut Sim, notes: Vec<(usize, IpAddr)>) {
    let now = sim.now;
    for (s, from) in notes {
        if let Some(t) = sim.slots[s - 1].task.as_mut() {
            t.learned.insert(from, now);
        }
    }
}

/// Every task's galera-init runs once.
pub fn tick_all(sim: &mut Sim) {
    let mut reports = BTreeMap::new();
    for slot in &sim.slots {
        if let Some(t) = &slot.task {
            reports.insert(t.addr, (slot.n, t.report(sim)));
        }
    }
    for (s, st) in reports.values() {
        if st.is_synced() {
            sim.observe_synced(*s);
        }
    }
    let order: BTreeSet<usize> = (1..=sim.slots.len()).collect();
    for s in order {
        let Some(mut task) = sim.slots[s - 1].task.take() else {
            continue;
        };
        match task.tick(sim, &reports) {
            Outcome::Continue => sim.slots[s - 1].task = Some(task),
            Outcome::Exit(code, why) => {
                sim.slots[s - 1].task = Some(task);
                sim.exit_task(s, code, &why);
            }
        }
    }
}

/// Whether a bootstrap's reason is the OUTAGE_TIMEOUT majority rule (the log line says so).
fn by_majority(reason: &str) -> bool {
    reason.contains("a majority of its last Primary view is here")
}
