//! The galera-init side of a simulated task: the library's own [`Driver`], fed what the
//! model shows it, with its [`Effect`]s carried out on the model's volume and mariadbd.
//! Nothing of the node's glue is written here: this file is the model's side of each
//! effect, as `src/node/host.rs` is the real node's.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use galera_init::datadir::{
    FORCE_BOOTSTRAP_FILE, INIT_DONE, INIT_STARTED, JOIN_MARK, Listing, SST_IN_PROGRESS,
};
use galera_init::decision::{BootstrapKind, Params};
use galera_init::discovery::{self, Answer, DnsError};
use galera_init::election::World;
use galera_init::galera::grastate::{GRASTATE_FILE, GraState};
use galera_init::galera::gvwstate::SavedView;
use galera_init::node::driver::{self, Driver, Effect, Exit, Found, Launch, Outcome, Reading};
use galera_init::node::monitor::Stop;
use galera_init::record::RECORD_FILE;
use galera_init::state::{NodeState, Phase as StatePhase};

use crate::model::{Conn, Db, GraFile, INIT_STEPS, Mode, STRANGER, Sim, Volume, uuid};

/// What the host is doing.
#[derive(Debug, Clone)]
enum Phase {
    /// Waiting for DNS to list it.
    Discovering,
    /// Carrying out the driver's effects, and running election rounds.
    Host,
    /// mariadbd runs.
    Running { db: Db },
    /// A stop signal came while mariadbd runs: it drains, leaves the group at `leave`
    /// and has shut down at `exit`.
    Stopping { db: Db, leave: u64, exit: u64 },
}

/// A task: one galera-init process and its mariadbd.
#[derive(Debug, Clone)]
pub struct Task {
    slot: usize,
    addr: IpAddr,
    driver: Driver,
    phase: Phase,
    /// Effects not carried out yet, in order.
    queue: VecDeque<Effect>,
    /// An effect that takes time, and when it is done.
    busy: Option<(Effect, u64)>,
    /// The first step an election round may run in.
    round_from: u64,
    /// What the node serves, as the driver's publications left it.
    served: NodeState,
    /// The `gcomm://` list of the config it last wrote.
    gcomm: BTreeSet<IpAddr>,
    learned: BTreeMap<IpAddr, u64>,
    /// What the node knew when it decided its current bootstrap, for the invariants.
    pub decided: Option<Decided>,
    /// Ground truth: a node whose galera-init could not be read (either side deaf) ran
    /// within reach during this task's life.
    pub saw_unreadable: bool,
}

/// What a node knew when it decided a bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    /// The rule that made it.
    pub kind: BootstrapKind,
    /// The most advanced position among the other nodes it knew of, and their slot.
    pub best_known: Option<(i64, usize)>,
    /// A fresh-cluster bootstrap decided while no node it knew of held data.
    pub blind: bool,
}

/// How a tick ended.
enum Outcome2 {
    Continue,
    Exit(u8, String),
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
fn parsed(g: &GraState) -> String {
    format!(
        "uuid: {}\nseqno: {}\nsafe_to_bootstrap: {}\n",
        g.uuid, g.seqno, g.safe_to_bootstrap as u8
    )
}

/// The volume's datadir as galera-init reads it.
fn found(vol: &Volume) -> Found {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| names.push(n.to_string());
    if vol.data.is_some() || vol.init_started || vol.init_done || vol.marker {
        add("mysql");
    }
    if vol.data.is_some() || vol.init_done {
        add("ibdata1");
    }
    if vol.init_started {
        add(INIT_STARTED);
    }
    if vol.init_done {
        add(INIT_DONE);
    }
    if vol.marker {
        add(SST_IN_PROGRESS);
    }
    if vol.join_mark {
        add(JOIN_MARK);
    }
    if vol.force_file {
        add(FORCE_BOOTSTRAP_FILE);
    }
    if vol.record.is_some() {
        add(RECORD_FILE);
    }
    let grastate = match &vol.grastate {
        GraFile::Missing => None,
        GraFile::Garbled => Some(String::new()),
        GraFile::Parsed(g) => Some(parsed(&g.parsed())),
    };
    if grastate.is_some() {
        add(GRASTATE_FILE);
    }
    Found {
        listing: Listing {
            names,
            grastate,
            innodb: vol.data.is_some() || vol.init_done,
        },
        record: Ok(vol.record.clone()),
        view: vol.gvwstate.as_ref().map(|v| SavedView {
            my_uuid: format!("vol{}", vol.id),
            view_id: v.id.to_string(),
            members: v.members.iter().map(|m| format!("vol{m}")).collect(),
        }),
    }
}

impl Task {
    /// A task starting now in slot `slot` at `addr`; `env_set` says FORCE_BOOTSTRAP is set on
    /// the service.
    pub fn new(slot: usize, addr: IpAddr, env_set: bool, sim: &Sim) -> Task {
        let driver = Driver::new(driver::Config {
            params: params(sim),
            pc_recovery_timeout: Duration::from_secs(sim.cfg.pc_recovery),
            force_env: env_set,
            datadir: "/var/lib/mysql".into(),
            cluster_name: "sim".into(),
        });
        Task {
            slot,
            addr,
            driver,
            phase: Phase::Discovering,
            queue: VecDeque::new(),
            busy: None,
            round_from: 0,
            served: NodeState {
                address: Some(addr),
                node_name: format!("slot{slot}"),
                ..NodeState::default()
            },
            gcomm: BTreeSet::new(),
            learned: BTreeMap::new(),
            saw_unreadable: false,
            decided: None,
        }
    }

    /// Its mariadbd, when one runs.
    pub fn db(&self) -> Option<&Db> {
        match &self.phase {
            Phase::Running { db } | Phase::Stopping { db, .. } => Some(db),
            _ => None,
        }
    }

    /// Its mariadbd, to change.
    pub fn db_mut(&mut self) -> Option<&mut Db> {
        match &mut self.phase {
            Phase::Running { db } | Phase::Stopping { db, .. } => Some(db),
            _ => None,
        }
    }

    /// Whether it is shutting down after a stop signal.
    pub fn stopping(&self) -> Option<(u64, u64)> {
        match &self.phase {
            Phase::Stopping { leave, exit, .. } => Some((*leave, *exit)),
            _ => None,
        }
    }

    /// mariadbd exited (`code`), on its own or stopped by galera-init; the volume shows
    /// what it left. Returns how the task goes on: it elects again, or exits.
    pub fn db_exited(&mut self, sim: &mut Sim, code: u8, stop_received: bool) -> Outcome {
        self.phase = Phase::Host;
        let exit = Exit {
            code: Some(code),
            grastate: sim.vol_of(self.slot).grastate.as_parsed(),
            stop_received,
        };
        let (effects, outcome) = self.driver.exited(&exit);
        for e in effects {
            self.apply(sim, e);
        }
        if outcome == Outcome::Elect {
            self.phase = Phase::Discovering;
            self.queue.clear();
            self.busy = None;
        }
        outcome
    }

    /// SIGTERM reached the task. With mariadbd running, the driver hears of it before
    /// mariadbd does; it then drains, leaves the group, and shuts down. Otherwise start-up
    /// ends at once: returns how.
    pub fn on_stop(
        &mut self,
        sim: &mut Sim,
        last: &NodeState,
        drain: u64,
        shutdown: u64,
    ) -> Option<String> {
        if let Phase::Running { db } = &self.phase {
            let db = db.clone();
            for e in self.driver.stop_signal(last) {
                self.apply(sim, e);
            }
            self.phase = Phase::Stopping {
                db,
                leave: sim.now + drain,
                exit: sim.now + drain + shutdown,
            };
            return None;
        }
        // Start-up stopped: a bootstrap prepared but not started is settled.
        if !self.driver.electing() && !matches!(self.phase, Phase::Discovering) {
            let exit = Exit {
                code: None,
                grastate: sim.vol_of(self.slot).grastate.as_parsed(),
                stop_received: true,
            };
            let (effects, _) = self.driver.exited(&exit);
            for e in effects {
                self.apply(sim, e);
            }
        }
        Some("exit 143 during start-up".into())
    }

    /// What the task serves on `/state`: what its driver published, and its mariadbd's
    /// status read as `peer::status::apply` reads it.
    pub fn report(&self, sim: &Sim) -> NodeState {
        let mut st = self.served.clone();
        // The monitor thread publishes the SST scripts' marker while mariadbd runs.
        if self.db().is_some() {
            st.sst_in_progress = sim.vol_of(self.slot).marker;
        }
        if let Some(db) = self.db()
            && db.conn == Conn::Member
            && !matches!(self.phase, Phase::Stopping { leave, .. } if leave <= sim.now)
        {
            // mariadbd answers once it has been in a Primary component: until then
            // (joining, or waiting for pc.recovery) its storage engines are not open.
            sim.wsrep(self.slot, &mut st);
            st.phase = StatePhase::Running;
            st.fresh = Some(false);
            if st.is_primary() {
                st.uuid.clone_from(&st.wsrep_cluster_state_uuid);
            }
        }
        st
    }

    /// One step of the task.
    fn tick(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) -> Outcome2 {
        match &self.phase {
            Phase::Discovering => {
                let answer = SimWorld::new(sim, self, reports).lookup();
                if let Answer::Ready(_) = answer {
                    self.phase = Phase::Host;
                    self.round_from = sim.now + 1;
                    self.queue = self.driver.inspected(found(sim.vol_of(self.slot))).into();
                }
            }
            // The monitor thread runs until the process exits.
            Phase::Running { .. } | Phase::Stopping { .. } => self.monitor(sim, reports),
            Phase::Host => {}
        }
        self.work(sim, reports)
    }

    /// Carries out the queued effects; an effect that takes time holds the rest. Once the
    /// queue is empty, an election round while the driver elects.
    fn work(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) -> Outcome2 {
        if let Some((effect, until)) = self.busy.take() {
            if until > sim.now {
                self.busy = Some((effect, until));
                return Outcome2::Continue;
            }
            if let Some(out) = self.finish(sim, effect) {
                return out;
            }
        }
        let mut rounds = 0;
        loop {
            while let Some(effect) = self.queue.pop_front() {
                let cost = match &effect {
                    Effect::RecoverPosition => 1,
                    Effect::BuildDatadir { .. } | Effect::InitDatadir { built: false, .. } => {
                        INIT_STEPS
                    }
                    Effect::StartServer { .. } => 1,
                    _ => 0,
                };
                if cost > 0 {
                    self.busy = Some((effect, sim.now + cost));
                    return Outcome2::Continue;
                }
                if let Effect::Refuse(reason) = &effect {
                    return Outcome2::Exit(1, reason.clone());
                }
                self.apply(sim, effect);
            }
            if !self.driver.electing() || self.round_from > sim.now || rounds > 0 {
                return Outcome2::Continue;
            }
            rounds += 1;
            let force_file = sim.vol_of(self.slot).force_file;
            let (effects, notes) = {
                let mut w = SimWorld::new(sim, self, reports);
                let fx = self.driver.round(&mut w, force_file);
                (fx, w.notes)
            };
            apply_notes(sim, notes);
            self.note_decision(sim, &effects);
            self.note_bootstrap(sim, reports, &effects);
            self.note_join(sim, &effects);
            self.queue.extend(effects);
        }
    }

    /// Logs a decision in the trace when it changes.
    fn note_decision(&mut self, sim: &mut Sim, effects: &[Effect]) {
        for e in effects {
            if let Effect::Publish(p) = e
                && p.state.decision != self.served.decision
                && let Some(line) = &p.state.decision
            {
                sim.note(format!("slot {}: {line}", self.slot));
            }
        }
    }

    /// What the node knew when it decided a bootstrap, for the invariants: the most advanced
    /// position among the nodes it asked (the `gcomm://` list it writes for a start, the
    /// reachable ones for a `pc.bootstrap`), and whether any of them held data.
    fn note_bootstrap(
        &mut self,
        sim: &Sim,
        reports: &BTreeMap<IpAddr, (usize, NodeState)>,
        effects: &[Effect],
    ) {
        let kind = effects.iter().find_map(|e| match e {
            Effect::StartServer {
                launch: Launch::Bootstrap(kind),
                ..
            }
            | Effect::PcBootstrap(kind) => Some(*kind),
            _ => None,
        });
        let Some(kind) = kind else { return };
        let asked: Option<Vec<IpAddr>> = effects.iter().find_map(|e| match e {
            Effect::WriteConfig { members, .. } => Some(members.clone()),
            _ => None,
        });
        // Only what it could read: reachable, and answering.
        let others = reports.iter().filter(|(a, (s, _))| {
            **a != self.addr
                && *s != self.slot
                && sim.reachable(self.slot, *s)
                && sim.slots[s - 1].mute_until <= sim.now
                && asked.as_ref().is_none_or(|list| list.contains(a))
        });
        let best_known = others
            .clone()
            .filter(|(_, (_, st))| st.has_data() && !st.superseded)
            .filter_map(|(_, (s, st))| st.position().map(|p| (p, *s)))
            .max();
        let fresh = sim.vol_of(self.slot).data.is_none();
        let blind = fresh
            && !others
                .clone()
                .any(|(_, (s, _))| sim.vol_of(*s).data.is_some());
        self.decided = Some(Decided {
            kind,
            best_known,
            blind,
        });
    }

    /// Ground truth for the liveness checks, as of the decision (the record says so from
    /// then on): a node that decided to join knows the component went on without it; one
    /// that leaves the restore to pc.recovery may lag what the others commit there.
    fn note_join(&self, sim: &mut Sim, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::StartServer {
                    launch: Launch::Join,
                    ..
                } => sim.decided_to_join(self.slot),
                Effect::StartServer {
                    launch: Launch::PcRecovery,
                    ..
                } => sim.vol_mut_of(self.slot).synced_in_last_view = false,
                _ => {}
            }
        }
    }

    /// An effect that took time is done.
    fn finish(&mut self, sim: &mut Sim, effect: Effect) -> Option<Outcome2> {
        match effect {
            Effect::RecoverPosition => {
                let vol = sim.vol_of(self.slot);
                let position = vol
                    .data
                    .as_ref()
                    .map(|d| (uuid(d.cluster), d.history.len() as i64));
                self.queue = self.driver.recovered(position).into();
            }
            Effect::StartServer { launch, .. } => return self.start_db(sim, launch),
            other => self.apply(sim, other),
        }
        None
    }

    /// Carries out an effect that takes no time.
    fn apply(&mut self, sim: &mut Sim, effect: Effect) {
        let slot = self.slot;
        match effect {
            Effect::SaveRecord(r) => {
                let v = sim.vol_of(slot);
                let before = v.record.clone();
                if let Some(candidate) = &r.accepted
                    && v.data.is_some()
                    && before.as_ref().and_then(|b| b.accepted.as_ref()) != Some(candidate)
                {
                    sim.accepted(slot, candidate);
                }
                if r.superseded && before.as_ref().is_none_or(|b| !b.superseded) {
                    sim.note(format!(
                        "slot {slot}: its history was given up by an override"
                    ));
                }
                sim.vol_mut_of(slot).record = Some(r);
            }
            Effect::SafeToBootstrap(on) => {
                let v = sim.vol_mut_of(slot);
                if let GraFile::Parsed(g) = &mut v.grastate {
                    g.safe = on;
                }
                v.flag_by_init = on;
            }
            Effect::RepairGrastate { .. } => {
                let v = sim.vol_mut_of(slot);
                if let Some(d) = &v.data {
                    v.grastate = GraFile::running(d.cluster);
                }
            }
            Effect::RemoveStaleMarker => sim.vol_mut_of(slot).marker = false,
            Effect::RemoveForceFile => sim.vol_mut_of(slot).force_file = false,
            Effect::ForgetSavedView => sim.vol_mut_of(slot).gvwstate = None,
            Effect::ClearDatadir => sim.vol_mut_of(slot).clear(),
            Effect::BuildDatadir { clear_first } => {
                let v = sim.vol_mut_of(slot);
                if clear_first {
                    v.clear();
                }
                v.init_started = true;
            }
            Effect::InitDatadir { clear_first, .. } => {
                let v = sim.vol_mut_of(slot);
                if clear_first {
                    v.clear();
                }
                v.init_started = false;
                v.init_done = true;
            }
            Effect::MarkJoin => sim.vol_mut_of(slot).join_mark = true,
            Effect::UnmarkJoin => sim.vol_mut_of(slot).join_mark = false,
            Effect::WriteConfig { members, .. } => self.gcomm = members.into_iter().collect(),
            Effect::ReserveDonor(_) | Effect::ReleaseDonor(_) => {}
            Effect::Publish(p) => p.apply(&mut self.served),
            Effect::PcBootstrap(kind) => {
                if let Some(db) = self.db_mut() {
                    db.pc_bootstrap = true;
                }
                sim.note(format!("slot {slot}: monitor: pc.bootstrap ({kind:?})"));
            }
            Effect::StopServer(stop) => match (stop, self.db().map(|d| d.conn)) {
                // A server waiting for a Primary view ignores SIGTERM; one that answers
                // shuts down cleanly.
                (Stop::Term, Some(Conn::Member)) => {
                    if let Some(db) = self.db_mut() {
                        db.stop = true;
                    }
                }
                (Stop::Kill, Some(_)) => {
                    sim.note(format!(
                        "slot {slot}: the stuck mariadbd is killed; the node elects instead"
                    ));
                    sim.lose_member(slot);
                    self.db_exited(sim, 137, false);
                }
                _ => {}
            },
            other => unreachable!("effects that take time are finished elsewhere: {other:?}"),
        }
    }

    /// mariadbd starts (or aborts at once under a bad config).
    fn start_db(&mut self, sim: &mut Sim, launch: Launch) -> Option<Outcome2> {
        let slot = self.slot;
        let now = sim.now;
        sim.note(format!("slot {slot}: starts mariadbd ({launch:?})"));
        if sim.bad_config {
            // Galera opens (creates) grastate.dat, then rejects the option and aborts.
            let v = sim.vol_mut_of(slot);
            if v.grastate == GraFile::Missing {
                v.grastate = GraFile::Garbled;
            }
            sim.note(format!(
                "slot {slot}: mariadbd rejects a bad option and exits"
            ));
            self.phase = Phase::Host;
            return match self.db_exited_now(sim, 1) {
                Outcome::Exit(code) => Some(Outcome2::Exit(code, "mariadbd failed".into())),
                Outcome::Elect => None,
            };
        }
        let v = sim.vol_mut_of(slot);
        let bootstrap = matches!(launch, Launch::Bootstrap(_));
        let saved = if bootstrap { None } else { v.gvwstate.clone() };
        // While mariadbd runs, Galera keeps the seqno at -1.
        match &mut v.grastate {
            GraFile::Parsed(g) => g.seqno = -1,
            _ => {
                if let Some(d) = &v.data {
                    v.grastate = GraFile::running(d.cluster);
                }
            }
        }
        let mode = if bootstrap {
            Mode::Bootstrap
        } else {
            Mode::Join
        };
        self.driver.server_started(Duration::from_secs(now));
        self.phase = Phase::Running {
            db: Db::new(mode, saved, now, self.gcomm.clone()),
        };
        None
    }

    fn db_exited_now(&mut self, sim: &mut Sim, code: u8) -> Outcome {
        self.driver.server_started(Duration::from_secs(sim.now));
        self.db_exited(sim, code, false)
    }

    /// One reading of mariadbd for the driver, and what the monitor thread does with the
    /// effects.
    fn monitor(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) {
        let slot = self.slot;
        // The poller's reading: this step's report, made while the task was in its slot.
        let Some((_, status)) = reports.get(&self.addr).cloned() else {
            return;
        };
        let answered = status.wsrep_cluster_status.is_some();
        if answered {
            // What `peer::status::apply` keeps once the server has answered.
            self.served.phase = StatePhase::Running;
            self.served.fresh = Some(false);
            self.served.wsrep_last_committed = status.wsrep_last_committed;
            if status.is_primary() {
                self.served
                    .uuid
                    .clone_from(&status.wsrep_cluster_state_uuid);
            }
        }
        let vol = sim.vol_of(slot);
        let reading = Reading {
            answered,
            status,
            force_file: vol.force_file,
            sst_marker: vol.marker,
            record_file: vol.record.is_some(),
        };
        let (effects, notes) = {
            let mut w = SimWorld::new(sim, self, reports);
            let fx = self.driver.tick(&mut w, &reading);
            (fx, w.notes)
        };
        apply_notes(sim, notes);
        self.note_bootstrap(sim, reports, &effects);
        for e in effects {
            if let Effect::Publish(p) = &e
                && p.state.decision != self.served.decision
                && let Some(line) = &p.state.decision
            {
                sim.note(format!("slot {slot}: monitor: {line}"));
            }
            if self.db().is_none() {
                break;
            }
            self.apply(sim, e);
        }
    }
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
    /// Peers whose answer to the last fetch could not be used.
    unreadable: Vec<IpAddr>,
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
            unreadable: Vec::new(),
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
        let mut addrs: Vec<IpAddr> = self
            .reports
            .iter()
            .filter(|(_, (s, _))| me.hidden.get(s).is_none_or(|until| *until <= self.sim.now))
            .map(|(a, _)| *a)
            .collect();
        addrs.extend(self.sim.ghosts.iter().copied());
        if self.sim.stranger {
            addrs.push(STRANGER);
        }
        discovery::interpret(Ok(addrs), None, &[self.addr])
    }

    fn learned(&mut self) -> Vec<IpAddr> {
        self.learned.clone()
    }

    fn fetch(&mut self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)> {
        // A node whose galera-init nobody can read (another cluster key, a clock off) cannot
        // read the others either.
        let deaf = self.sim.slots[self.me - 1].mute_until == u64::MAX;
        self.unreadable.clear();
        addrs
            .iter()
            .map(|a| {
                if *a == STRANGER && self.sim.stranger && !deaf {
                    return (*a, Some(stranger()));
                }
                let answer = self.reports.get(a).and_then(|(s, st)| {
                    if !self.sim.reachable(self.me, *s) {
                        return None;
                    }
                    // Answers that cannot be read: either side has the other key.
                    if deaf || self.sim.slots[s - 1].mute_until == u64::MAX {
                        self.unreadable.push(*a);
                        return None;
                    }
                    let up = self.sim.slots[s - 1].mute_until <= self.sim.now;
                    if up {
                        self.notes.push((*s, self.addr));
                    }
                    up.then(|| st.clone())
                });
                (*a, answer)
            })
            .collect()
    }

    fn unreadable(&self) -> Vec<IpAddr> {
        self.unreadable.clone()
    }
}

/// What a node of another cluster answers: a Primary component of its own.
fn stranger() -> NodeState {
    NodeState {
        address: Some(STRANGER),
        node_name: "stranger".into(),
        cluster_name: "other".into(),
        phase: StatePhase::Running,
        fresh: Some(false),
        has_galera_state: true,
        uuid: Some(uuid(999)),
        seqno: Some(-1),
        wsrep_cluster_status: Some("Primary".into()),
        wsrep_local_state: Some(4),
        wsrep_local_index: Some(0),
        wsrep_cluster_state_uuid: Some(uuid(999)),
        wsrep_cluster_size: Some(1),
        wsrep_cluster_conf_id: Some(1),
        wsrep_incoming_addresses: Some(format!("{STRANGER}:3306")),
        wsrep_last_committed: Some(1000),
        ..NodeState::default()
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
    let deaf = |sim: &Sim, s: usize| sim.slots[s - 1].mute_until == u64::MAX;
    for s in 1..=sim.slots.len() {
        let saw = (1..=sim.slots.len()).any(|o| {
            o != s
                && sim.slots[o - 1].task.is_some()
                && (deaf(sim, s) || deaf(sim, o))
                && sim.reachable(s, o)
        });
        if let Some(t) = sim.slots[s - 1].task.as_mut() {
            t.saw_unreadable |= saw;
        }
    }
    for s in 1..=sim.slots.len() {
        let Some(mut task) = sim.slots[s - 1].task.take() else {
            continue;
        };
        let out = task.tick(sim, &reports);
        sim.slots[s - 1].task = Some(task);
        if let Outcome2::Exit(code, why) = out {
            sim.exit_task(s, code, &why);
        }
    }
}
