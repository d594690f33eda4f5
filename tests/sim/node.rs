//! The galera-init side of a simulated task: the same sequence as `src/node`, with the
//! library's real election rounds, against the simulated world.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use galera_init::decision::{Params, Plan};
use galera_init::discovery::{self, Answer, DnsError};
use galera_init::election::{Election, World};
use galera_init::galera::gvwstate::SavedView;
use galera_init::state::{NodeState, Phase as StatePhase};

use crate::model::{Db, Grastate, INIT_STEPS, Mode, Sim, Volume, uuid};

/// What galera-init is doing.
#[derive(Debug, Clone)]
enum Phase {
    /// Waiting for DNS to list it.
    Discovering,
    /// `mariadbd --wsrep-recover` runs until the step given.
    Recovering { until: u64 },
    /// Election rounds.
    Electing {
        election: Box<Election>,
        forced: bool,
    },
    /// Initialising or writing the config; mariadbd starts at `until`.
    Preparing {
        until: u64,
        bootstrap: bool,
        pc_recovery: bool,
    },
    /// mariadbd runs.
    Running { db: Db, pc_deadline: Option<u64> },
}

/// A task: one galera-init process and its mariadbd.
#[derive(Debug, Clone)]
pub struct Task {
    slot: usize,
    addr: IpAddr,
    env_force: bool,
    /// The node's current start is a bootstrap made under an override.
    pub forced_bootstrap: bool,
    /// The node's current start is a fresh-cluster bootstrap decided while no node it knew
    /// of held data.
    pub blind_fresh_bootstrap: bool,
    learned: BTreeMap<IpAddr, u64>,
    allow_pc_recovery: bool,
    phase: Phase,
    own: NodeState,
}

/// How a tick ended.
enum Outcome {
    Continue,
    Exit(i32, String),
}

impl Task {
    /// A task starting now in slot `slot` at `addr`.
    pub fn new(slot: usize, addr: IpAddr, env_force: bool, _now: u64, _override_id: u64) -> Task {
        Task {
            slot,
            addr,
            env_force,
            forced_bootstrap: false,
            blind_fresh_bootstrap: false,
            learned: BTreeMap::new(),
            allow_pc_recovery: true,
            phase: Phase::Discovering,
            own: NodeState {
                address: Some(addr),
                node_name: format!("slot{slot}"),
                ..NodeState::default()
            },
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

    /// mariadbd, stopped by galera-init's request, has exited cleanly.
    pub fn db_stopped(&mut self) {
        self.phase = Phase::Discovering;
    }

    /// SIGTERM reached the task; returns how it exits when mariadbd was not running.
    pub fn on_stop(&self, _vol: &mut Volume) -> Option<String> {
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
            Phase::Running { db, .. } => {
                // mariadbd answers once it has a view: a joiner without a saved view does
                // not until it reaches a Primary component.
                let answers = db.in_primary || db.was_primary || db.saved_view.is_some();
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

    fn params(sim: &Sim) -> Params {
        Params {
            cluster_size: sim.cfg.cluster_size,
            settle: Duration::from_secs(sim.cfg.settle),
            outage_timeout: Duration::from_secs(sim.cfg.outage),
        }
    }

    /// The datadir, as galera-init reads it at start.
    fn inspect(&mut self, sim: &mut Sim) {
        let slot = self.slot;
        let vol = sim.vol_of(slot).clone();
        if vol.flag_by_init && vol.grastate.as_ref().is_some_and(|g| g.safe) {
            sim.violate(
                "stale-flag",
                format!(
                    "slot {slot} starts with safe_to_bootstrap: 1 that galera-init wrote for \
                     a bootstrap that never reached Primary"
                ),
            );
        }
        let g = vol.grastate.clone();
        self.own = NodeState {
            address: Some(self.addr),
            node_name: format!("slot{slot}"),
            phase: StatePhase::Waiting,
            fresh: Some(vol.data.is_none()),
            has_galera_state: g.is_some(),
            uuid: g.as_ref().map(|g| uuid(g.cluster)),
            seqno: g.as_ref().map(|g| g.seqno),
            safe_to_bootstrap: g.as_ref().is_some_and(|g| g.safe),
            clean_shutdown: g.as_ref().is_some_and(|g| g.seqno >= 0),
            view: vol.gvwstate.as_ref().map(|v| SavedView {
                my_uuid: format!("vol{}", vol.id),
                view_id: v.id.to_string(),
                members: v.members.iter().map(|m| format!("vol{m}")).collect(),
            }),
            ..NodeState::default()
        };
    }

    fn tick(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) -> Outcome {
        let now = sim.now;
        match &mut self.phase {
            Phase::Discovering => {
                let answer = {
                    let mut w = SimWorld::new(sim, self, reports);
                    w.lookup()
                };
                if let Answer::Ready(_) = answer {
                    self.inspect(sim);
                    let d = sim.vol_of(self.slot).data.clone();
                    if self.own.seqno == Some(-1) && d.is_some() {
                        self.own.phase = StatePhase::Recovering;
                        self.phase = Phase::Recovering { until: now + 1 };
                    } else {
                        self.start_election(sim);
                    }
                }
            }
            Phase::Recovering { until } => {
                if *until <= now {
                    let d = sim.vol_of(self.slot).data.clone().unwrap();
                    self.own.seqno = Some(d.history.len() as i64);
                    self.own.uuid = Some(uuid(d.cluster));
                    self.start_election(sim);
                }
            }
            Phase::Electing { .. } => return self.elect(sim, reports),
            Phase::Preparing {
                until,
                bootstrap,
                pc_recovery,
            } => {
                if *until <= now {
                    let (bootstrap, pc_recovery) = (*bootstrap, *pc_recovery);
                    self.start_db(sim, bootstrap, pc_recovery);
                }
            }
            Phase::Running { db, pc_deadline } => {
                if pc_deadline.is_some_and(|d| d <= now) && !db.was_primary {
                    // The pc.recovery watchdog: the stuck server is stopped, then killed;
                    // the node elects instead.
                    sim.note(format!(
                        "slot {}: pc.recovery did not restore the view: re-electing",
                        self.slot
                    ));
                    self.allow_pc_recovery = false;
                    self.phase = Phase::Discovering;
                }
            }
        }
        Outcome::Continue
    }

    fn start_election(&mut self, sim: &Sim) {
        let forced = self.env_force || sim.vol_of(self.slot).force_file;
        self.own.phase = StatePhase::Waiting;
        self.phase = Phase::Electing {
            election: Box::new(Election::new(
                Self::params(sim),
                Duration::from_secs(sim.now),
            )),
            forced,
        };
    }

    fn elect(&mut self, sim: &mut Sim, reports: &BTreeMap<IpAddr, (usize, NodeState)>) -> Outcome {
        let Phase::Electing { election, forced } = &mut self.phase else {
            unreachable!()
        };
        let (forced, mut election) = (*forced, election.clone());
        let own = self.own.clone();
        let allow = self.allow_pc_recovery;
        let (plan, notes) = {
            let mut w = SimWorld::new(sim, self, reports);
            let plan = election.round(&mut w, &own, forced, allow);
            (plan, w.notes)
        };
        apply_notes(sim, notes);
        let slot = self.slot;
        let now = sim.now;
        match plan {
            Plan::Wait { .. } => {
                self.phase = Phase::Electing { election, forced };
            }
            Plan::Refuse { reason } => return Outcome::Exit(1, format!("refused: {reason}")),
            Plan::Bootstrap { reason } => {
                sim.note(format!("slot {slot}: decision: bootstrap: {reason}"));
                self.forced_bootstrap = reason.contains("manual override");
                self.blind_fresh_bootstrap = self.own.fresh == Some(true)
                    && !election.listed().iter().any(|a| {
                        *a != self.addr
                            && reports
                                .get(a)
                                .is_some_and(|(o, _)| sim.vol_of(*o).data.is_some())
                    });
                let v = sim.vol_mut_of(slot);
                let fresh = v.data.is_none();
                if let Some(g) = &mut v.grastate
                    && !fresh
                    && !g.safe
                {
                    g.safe = true;
                    v.flag_by_init = true;
                }
                v.force_file = false;
                self.phase = Phase::Preparing {
                    until: now + if fresh { INIT_STEPS } else { 1 },
                    bootstrap: true,
                    pc_recovery: false,
                };
            }
            Plan::Join {
                reason,
                pc_recovery,
                ..
            } => {
                sim.note(format!("slot {slot}: decision: join: {reason}"));
                self.phase = Phase::Preparing {
                    until: now + 1,
                    bootstrap: false,
                    pc_recovery,
                };
            }
        }
        Outcome::Continue
    }

    fn start_db(&mut self, sim: &mut Sim, bootstrap: bool, pc_recovery: bool) {
        let now = sim.now;
        let v = sim.vol_mut_of(self.slot);
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
        let mode = if bootstrap {
            Mode::Bootstrap
        } else {
            Mode::Join
        };
        self.phase = Phase::Running {
            db: Db::new(mode, saved, now),
            pc_deadline: pc_recovery.then_some(now + sim.cfg.pc_recovery),
        };
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
