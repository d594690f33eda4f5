//! The simulated cluster: slots (Swarm tasks), volumes, the network, DNS, a client that
//! writes, and a model of Galera's group communication. The galera-init side of each task
//! is in [`crate::node`]; it runs the library's real election and monitor.
//!
//! Galera, as modelled (from its source and the lab):
//! - A Primary component continues while it keeps a majority of its last view; a member
//!   that leaves cleanly shrinks the view, one that crashes or is cut off does not.
//! - `--wsrep-new-cluster` makes a new Primary component from the node's data.
//! - A node started without it joins the Primary component it reaches: SST when it is
//!   empty or of another cluster (wiping its data), IST when its history is a prefix of the
//!   component's, an abort ("reversing history") when it is ahead. A history that diverged
//!   but is shorter is taken by IST: the silent mix this project exists to prevent.
//! - A node with a saved view (gvwstate.dat, left by a crash) waits for that view's
//!   members and restores it (pc.recovery); without one it gives up after 30 s
//!   (`pc.wait_prim_timeout`).
//! - `pc.bootstrap` makes a node's non-Primary component Primary.
//! - On a clean stop grastate.dat gets the seqno, and `safe_to_bootstrap` is 1 when the
//!   node was the only member of its last Primary view; gvwstate.dat is deleted. While a
//!   node runs, grastate.dat says seqno -1.
//!
//! Every transaction the client commits is acknowledged. The model records violations of
//! the invariants (see [`Violation`]) as they happen.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use galera_init::galera::grastate::{GraState, NIL_UUID};
use galera_init::state::NodeState;

use galera_init::decision::BootstrapKind;
use galera_init::node::driver::Outcome;

use crate::node::Task;
use crate::schedule::{Config, Event};

/// Steps an SST takes.
pub const SST_STEPS: u64 = 5;
/// Steps galera-init's initialisation of a fresh datadir takes.
pub const INIT_STEPS: u64 = 2;
/// Galera's `pc.wait_prim_timeout`, in steps.
pub const WAIT_PRIM_TIMEOUT: u64 = 30;
/// Swarm restarts a task that exited by itself after this many steps.
pub const RESTART_DELAY: u64 = 5;
/// How many times a task may exit with an error after faults ended before it is a crash
/// loop (Swarm restarting it for ever, instead of the node waiting, healthy, saying why).
pub const CRASH_LOOP: u32 = 3;
/// The address DNS lists for a dead task (a [`Event::Ghost`]).
pub const GHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 250));
/// The address DNS lists for a node of another cluster (a [`Event::Stranger`]).
pub const STRANGER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 251));
/// How many write sets a donor's gcache holds: a joiner further behind needs an SST.
pub const GCACHE: usize = 12;
/// Steps from a stop signal until Galera leaves the group (`DRAIN_DELAY`).
pub const DRAIN_STEPS: u64 = 2;
/// Steps from Galera's leave until mariadbd has shut down (InnoDB's shutdown).
pub const SHUTDOWN_STEPS: u64 = 2;

/// Data on a volume: the cluster it belongs to and its transactions, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The cluster's id (its UUID).
    pub cluster: u64,
    /// Committed transactions; the seqno is the length.
    pub history: Vec<u64>,
}

/// `grastate.dat`'s content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grastate {
    /// The cluster's id (0: Galera's all-zero UUID, written while a state transfer is
    /// requested).
    pub cluster: u64,
    /// The seqno, -1 while running or after a crash.
    pub seqno: i64,
    /// `safe_to_bootstrap`.
    pub safe: bool,
}

impl Grastate {
    /// As galera-init parses it.
    pub fn parsed(&self) -> GraState {
        GraState {
            uuid: uuid(self.cluster),
            seqno: self.seqno,
            safe_to_bootstrap: self.safe,
        }
    }
}

/// `grastate.dat` in the datadir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraFile {
    /// No file.
    Missing,
    /// A file that cannot be parsed: Galera opened (created) it and stopped before it
    /// wrote anything.
    Garbled,
    /// A file Galera wrote.
    Parsed(Grastate),
}

impl GraFile {
    /// What a running node of `cluster` keeps there (seqno -1).
    pub fn running(cluster: u64) -> GraFile {
        GraFile::Parsed(Grastate {
            cluster,
            seqno: -1,
            safe: false,
        })
    }

    /// The file as galera-init parses it, when it can.
    pub fn as_parsed(&self) -> Option<GraState> {
        match self {
            GraFile::Parsed(g) => Some(g.parsed()),
            _ => None,
        }
    }

    /// The file's content, when it can be parsed.
    pub fn get(&self) -> Option<&Grastate> {
        match self {
            GraFile::Parsed(g) => Some(g),
            _ => None,
        }
    }
}

/// A Primary view: its id and its members, by volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Increases with every view.
    pub id: u64,
    /// Member volumes.
    pub members: BTreeSet<usize>,
}

/// A volume and what is on it.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Its number (1-based).
    pub id: usize,
    /// Lost for ever.
    pub destroyed: bool,
    /// The database (`None`: empty).
    pub data: Option<Data>,
    /// `grastate.dat`.
    pub grastate: GraFile,
    /// galera-init began initialising a database here (its first marker).
    pub init_started: bool,
    /// galera-init initialised a database here (its last marker); its data appears once
    /// a Primary component is made from it.
    pub init_done: bool,
    /// An SST script's `sst_in_progress` marker.
    pub marker: bool,
    /// galera-init's join mark.
    pub join_mark: bool,
    /// `gvwstate.dat`.
    pub gvwstate: Option<View>,
    /// The `force-bootstrap` file.
    pub force_file: bool,
    /// `safe_to_bootstrap: 1` was written by galera-init and Galera has not rewritten it
    /// since (the bootstrap has not reached Primary yet).
    pub flag_by_init: bool,
    /// galera-init's record.
    pub record: Option<galera_init::record::Record>,
    /// Ground truth: the last Primary view the volume's node was in.
    pub last_view: Option<View>,
    /// Ground truth: its node last left a Primary component cleanly while others stayed.
    pub left_clean_with_others: bool,
    /// Ground truth: its node was Synced in its last Primary view (not still joining).
    pub synced_in_last_view: bool,
    /// Its node recorded that the node on this volume bootstraps, and has not been in a
    /// Primary component since.
    pub accepted: Option<usize>,
    /// The slot it was last attached to.
    pub home: usize,
    /// An override bootstrapped a history that leaves this volume's out: its history was
    /// given up by the operator.
    pub given_up: bool,
    /// Transactions its node had not applied yet when it was killed (the writer had
    /// acknowledged them a moment before).
    pub lagged: BTreeSet<u64>,
}

impl Volume {
    /// Its history cannot be placed: it holds data, and galera-init's record on it has no
    /// lineage (the record was lost, and neither a bootstrap, a state transfer nor a
    /// component's members gave it one since).
    pub fn record_lost(&self) -> bool {
        self.data.is_some() && self.record.as_ref().is_none_or(|r| r.lineage.is_empty())
    }
}

/// How mariadbd was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--wsrep-new-cluster`.
    Bootstrap,
    /// Join (or restore the saved view by pc.recovery).
    Join,
}

/// Where mariadbd is in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// Looking for a Primary component.
    Connecting {
        /// Since when.
        since: u64,
    },
    /// Receiving a state transfer until the step given.
    Transfer {
        /// When it ends.
        until: u64,
    },
    /// Has the component's data.
    Member,
    /// Left the group cleanly; shutting down.
    Left,
}

/// A running mariadbd.
#[derive(Debug, Clone)]
pub struct Db {
    /// How it was started.
    pub mode: Mode,
    /// Where it is.
    pub conn: Conn,
    /// Member of the Primary component now.
    pub in_primary: bool,
    /// The saved view it tries to restore (pc.recovery).
    pub saved_view: Option<View>,
    /// Members of the last Primary view it was in (Galera's safe_to_bootstrap).
    pub last_memb: usize,
    /// It was in a Primary component since it started.
    pub was_primary: bool,
    /// The id of the last Primary view this process was in.
    pub prim_view: Option<u64>,
    /// The node asked for `pc.bootstrap`.
    pub pc_bootstrap: bool,
    /// A clean shutdown was asked for (by galera-init).
    pub stop: bool,
    /// The `gcomm://` list of its config: the nodes it connects to.
    pub gcomm: BTreeSet<IpAddr>,
}

impl Db {
    /// A mariadbd that starts now.
    pub fn new(mode: Mode, saved_view: Option<View>, now: u64, gcomm: BTreeSet<IpAddr>) -> Db {
        Db {
            mode,
            conn: Conn::Connecting { since: now },
            in_primary: false,
            saved_view,
            last_memb: 0,
            was_primary: false,
            prim_view: None,
            pc_bootstrap: false,
            stop: false,
            gcomm,
        }
    }
}

/// The Primary component.
#[derive(Debug, Clone)]
pub struct Primary {
    /// The cluster's id.
    pub cluster: u64,
    /// Its history.
    pub history: Vec<u64>,
    /// Member slots.
    pub members: BTreeSet<usize>,
    /// The last view: the weight a majority is counted against.
    pub view: BTreeSet<usize>,
    /// The view's id.
    pub view_id: u64,
    /// A member left cleanly: Galera installs a new view.
    pub changed: bool,
}

/// A slot: a replica of the service.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Its number (1-based).
    pub n: usize,
    /// The address of its current (or next) task.
    pub addr: IpAddr,
    /// Its volume.
    pub vol: usize,
    /// Its task, when one runs.
    pub task: Option<Task>,
    /// Cut off the network.
    pub cut: bool,
    /// The orchestrator restarts it at this step (it exited by itself).
    pub restart_at: Option<u64>,
    /// The next task gets a new address.
    pub readdress: bool,
    /// The next task gets this volume.
    pub next_vol: Option<usize>,
    /// Slots its DNS leaves out, until a step.
    pub hidden: BTreeMap<usize, u64>,
    /// Its `/state` does not answer until this step.
    pub mute_until: u64,
    /// A new task starts once the one that is shutting down has exited.
    pub replace: bool,
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant, in a word (shrinking keeps it).
    pub kind: &'static str,
    /// What happened.
    pub detail: String,
}

/// The whole simulated world.
pub struct Sim {
    /// Settings.
    pub cfg: Config,
    /// The current step.
    pub now: u64,
    /// Slots, index `n - 1`.
    pub slots: Vec<Slot>,
    /// Volumes, index `id - 1`.
    pub volumes: Vec<Volume>,
    /// The Primary component, if any.
    pub primary: Option<Primary>,
    /// Every transaction acknowledged to the client.
    pub acked: BTreeSet<u64>,
    /// Transactions an operator's override gave up.
    pub discarded: BTreeSet<u64>,
    /// `FORCE_BOOTSTRAP` is set on the service.
    pub force_env: bool,
    /// The number of the latest override the operator gave.
    pub override_id: u64,
    /// Bootstraps made under each override.
    pub forced_bootstraps: BTreeMap<u64, usize>,
    /// Overrides after which a Primary component formed.
    pub override_done: BTreeSet<u64>,
    /// Broken invariants, in order.
    pub violations: Vec<Violation>,
    /// What happened, for the report of a failing schedule.
    pub trace: Vec<String>,
    /// Faults have ended (the `heal` event).
    pub healed_at: Option<u64>,
    /// A node with an empty volume started a new cluster while data of another survived
    /// out of its sight (no CLUSTER_SIZE, README): from then on an operator must choose,
    /// and Galera may merge running nodes of the two by SST when they meet.
    pub two_clusters: bool,
    /// Addresses DNS lists where nothing answers (dead tasks Swarm has not removed yet).
    pub ghosts: Vec<IpAddr>,
    /// The service has a setting mariadbd rejects: every start of it aborts.
    pub bad_config: bool,
    /// DNS lists a node of another cluster (another stack, the same service name), which
    /// answers that it runs a Primary component.
    pub stranger: bool,
    /// Exits with an error since faults ended, by slot.
    errors: BTreeMap<usize, u32>,
    /// Two clusters run side by side, each out of the other's sight: the model cannot
    /// follow both, so the schedule ends.
    pub two_primaries: bool,
    /// The step each transaction was committed in.
    commit_step: BTreeMap<u64, u64>,
    /// The member slots of every Primary view, by id.
    views: BTreeMap<u64, BTreeSet<usize>>,
    next_tx: u64,
    next_cluster: u64,
    next_view: u64,
    next_addr: u8,
}

/// What galera-init knew when it decided a bootstrap.
struct Decided {
    /// An override made it.
    forced: bool,
    /// A fresh-cluster bootstrap decided while no node it knew of held data.
    blind: bool,
    /// The most advanced position among the other nodes it knew of, and their slot.
    best_known: Option<(i64, usize)>,
    /// The OUTAGE_TIMEOUT majority rule made it.
    majority: bool,
}

/// Whether `a` is a prefix of `b`.
pub fn is_prefix(a: &[u64], b: &[u64]) -> bool {
    a.len() <= b.len() && a == &b[..a.len()]
}

/// The address of the `k`-th task address handed out.
fn address(k: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, k])
}

/// A cluster id as a UUID string (0: Galera's all-zero UUID).
pub fn uuid(cluster: u64) -> String {
    if cluster == 0 {
        return NIL_UUID.to_string();
    }
    format!("{:08x}-0000-4000-8000-{:012x}", cluster as u32, cluster)
}

impl Volume {
    /// What clearing an unfinished datadir leaves: galera-init's record and the override
    /// file (as `datadir::clear_interrupted` keeps them).
    pub fn clear(&mut self) {
        self.data = None;
        self.grastate = GraFile::Missing;
        self.init_started = false;
        self.init_done = false;
        self.marker = false;
        self.join_mark = false;
        self.gvwstate = None;
    }
}

impl Sim {
    /// A world with `cfg.slots` slots, each with an empty volume, nothing running.
    pub fn new(cfg: Config) -> Sim {
        let n = cfg.slots;
        let mut sim = Sim {
            cfg,
            now: 0,
            slots: Vec::new(),
            volumes: Vec::new(),
            primary: None,
            acked: BTreeSet::new(),
            discarded: BTreeSet::new(),
            force_env: false,
            override_id: 0,
            forced_bootstraps: BTreeMap::new(),
            override_done: BTreeSet::new(),
            violations: Vec::new(),
            trace: Vec::new(),
            healed_at: None,
            two_clusters: false,
            ghosts: Vec::new(),
            bad_config: false,
            stranger: false,
            errors: BTreeMap::new(),
            two_primaries: false,
            commit_step: BTreeMap::new(),
            views: BTreeMap::new(),
            next_tx: 1,
            next_cluster: 1,
            next_view: 1,
            next_addr: 11,
        };
        for s in 1..=n {
            let vol = sim.new_volume(s);
            let addr = sim.new_address();
            sim.slots.push(Slot {
                n: s,
                addr,
                vol,
                task: None,
                cut: false,
                restart_at: None,
                readdress: false,
                next_vol: None,
                hidden: BTreeMap::new(),
                mute_until: 0,
                replace: false,
            });
        }
        sim
    }

    fn new_volume(&mut self, home: usize) -> usize {
        let id = self.volumes.len() + 1;
        self.volumes.push(Volume {
            id,
            destroyed: false,
            data: None,
            grastate: GraFile::Missing,
            init_started: false,
            init_done: false,
            marker: false,
            join_mark: false,
            gvwstate: None,
            force_file: false,
            flag_by_init: false,
            record: None,
            last_view: None,
            left_clean_with_others: false,
            synced_in_last_view: false,
            accepted: None,
            home,
            given_up: false,
            lagged: BTreeSet::new(),
        });
        id
    }

    fn new_address(&mut self) -> IpAddr {
        let a = address(self.next_addr);
        self.next_addr = self.next_addr.wrapping_add(1).max(11);
        a
    }

    /// A new cluster id.
    pub fn new_cluster(&mut self) -> u64 {
        let c = self.next_cluster;
        self.next_cluster += 1;
        c
    }

    /// Notes something in the trace.
    pub fn note(&mut self, what: String) {
        let line = format!("{:>4} {what}", self.now);
        self.trace.push(line);
    }

    /// Records a broken invariant.
    pub fn violate(&mut self, kind: &'static str, detail: String) {
        self.note(format!("VIOLATION {kind}: {detail}"));
        self.violations.push(Violation { kind, detail });
    }

    /// The volume of slot `s` (1-based).
    pub fn vol_of(&self, s: usize) -> &Volume {
        &self.volumes[self.slots[s - 1].vol - 1]
    }

    // ----- events -----

    /// Applies one event.
    pub fn apply(&mut self, e: &Event) {
        let valid = |s: usize| s >= 1 && s <= self.slots.len();
        match *e {
            Event::Start(s) if valid(s) => self.start(s),
            Event::Kill(s) if valid(s) => {
                self.lose_unapplied(s);
                self.kill(s, "killed")
            }
            Event::Stop(s) if valid(s) => self.stop(s),
            Event::Power => {
                for s in 1..=self.slots.len() {
                    self.kill(s, "power cut");
                }
            }
            Event::Cut(s) if valid(s) => self.slots[s - 1].cut = true,
            Event::Uncut(s) if valid(s) => self.slots[s - 1].cut = false,
            Event::Readdress(s) if valid(s) => self.slots[s - 1].readdress = true,
            Event::NewVolume(s) if valid(s) => {
                let v = self.new_volume(s);
                self.slots[s - 1].next_vol = Some(v);
            }
            Event::Attach(s, v)
                if valid(s)
                    && self.volume(v).is_some_and(|vol| !vol.destroyed)
                    && !self.attached(v) =>
            {
                self.slots[s - 1].next_vol = Some(v);
            }
            Event::Destroy(v) if self.volume(v).is_some() && !self.in_use(v) => {
                self.volumes[v - 1].destroyed = true;
                for slot in &mut self.slots {
                    if slot.next_vol == Some(v) {
                        slot.next_vol = None;
                    }
                }
                self.note(format!("volume {v} destroyed"));
            }
            Event::Hide {
                target,
                observer,
                steps,
            } if valid(target) && valid(observer) => {
                let until = self.now + steps;
                self.slots[observer - 1].hidden.insert(target, until);
            }
            Event::Mute(s, n) if valid(s) => self.slots[s - 1].mute_until = self.now + n,
            Event::Silent(s) if valid(s) => {
                self.slots[s - 1].mute_until = u64::MAX;
                self.note(format!(
                    "slot {s}: its galera-init answers nothing from now on"
                ));
            }
            Event::Ghost(on) => {
                self.ghosts = if on { vec![GHOST] } else { Vec::new() };
                self.note(format!(
                    "DNS {} {GHOST}, where nothing answers",
                    if on { "lists" } else { "no longer lists" }
                ));
            }
            Event::BadConfig(on) => {
                self.bad_config = on;
                self.note(format!(
                    "the service {} a setting mariadbd rejects",
                    if on { "gets" } else { "loses" }
                ));
            }
            Event::Stranger(on) => {
                self.stranger = on;
                self.note(format!(
                    "DNS {} {STRANGER}, a node of another cluster",
                    if on { "lists" } else { "no longer lists" }
                ));
            }
            // (A record is lost with data restored from a backup or moved from another
            // image; a datadir without data has nothing to restore.)
            Event::LoseRecord(v) if self.volume(v).is_some_and(|vol| vol.data.is_some()) => {
                let vol = &mut self.volumes[v - 1];
                vol.record = None;
                self.note(format!("volume {v} loses galera-init's record"));
            }
            Event::Write(n) => self.write(n),
            Event::ForceEnv(on) => {
                self.force_env = on;
                if on {
                    self.override_id += 1;
                }
                self.note(format!(
                    "FORCE_BOOTSTRAP {}",
                    if on { "set" } else { "removed" }
                ));
            }
            // `docker exec` needs a running task.
            Event::ForceFile(s) if valid(s) && self.slots[s - 1].task.is_some() => {
                let v = self.slots[s - 1].vol;
                self.volumes[v - 1].force_file = true;
                self.override_id += 1;
                self.note(format!("galera-init bootstrap run on slot {s}"));
            }
            Event::Heal { reattach } => self.heal(reattach),
            _ => {}
        }
    }

    /// Volume `v`, if it exists.
    fn volume(&self, v: usize) -> Option<&Volume> {
        v.checked_sub(1).and_then(|i| self.volumes.get(i))
    }

    /// Whether volume `v` is the current volume of a slot.
    fn attached(&self, v: usize) -> bool {
        self.slots
            .iter()
            .any(|s| s.vol == v || s.next_vol == Some(v))
    }

    /// Whether volume `v` is in use by a running task.
    fn in_use(&self, v: usize) -> bool {
        self.slots.iter().any(|s| s.vol == v && s.task.is_some())
    }

    fn start(&mut self, s: usize) {
        if let Some(t) = &self.slots[s - 1].task {
            // Swarm starts the new task once the old one is gone.
            if t.stopping().is_some() {
                self.slots[s - 1].replace = true;
            }
            return;
        }
        self.slots[s - 1].replace = false;
        if self.slots[s - 1].readdress {
            let a = self.new_address();
            let slot = &mut self.slots[s - 1];
            slot.addr = a;
            slot.readdress = false;
        }
        if let Some(v) = self.slots[s - 1].next_vol.take() {
            self.slots[s - 1].vol = v;
            self.volumes[v - 1].home = s;
        }
        let slot = &self.slots[s - 1];
        let task = Task::new(slot.n, slot.addr, self.force_env, self);
        let slot = &self.slots[s - 1];
        let (addr, vol) = (slot.addr, slot.vol);
        self.slots[s - 1].task = Some(task);
        self.slots[s - 1].restart_at = None;
        self.note(format!("slot {s}: task starts at {addr} on volume {vol}"));
    }

    /// A member other than the writer (the client's node, the first member) applies what
    /// the writer commits a moment later: killed in the same step, it has not applied them.
    /// (A power cut is modelled as losing nothing that any member acknowledged.)
    fn lose_unapplied(&mut self, s: usize) {
        let Some(p) = &self.primary else {
            return;
        };
        let writer = p.members.iter().next().copied();
        if writer == Some(s) || !p.members.contains(&s) {
            return;
        }
        let now = self.now;
        let steps = self.commit_step.clone();
        let v = self.vol_mut(s);
        if let Some(d) = &mut v.data {
            let keep = d
                .history
                .iter()
                .take_while(|t| steps.get(t).is_none_or(|c| *c < now))
                .count();
            v.lagged.extend(d.history.split_off(keep));
        }
    }

    /// SIGKILL: mariadbd dies with its PID 1; the volume keeps what was on disk.
    pub fn kill(&mut self, s: usize, why: &str) {
        let Some(task) = self.slots[s - 1].task.take() else {
            return;
        };
        if task.db().is_some_and(|db| db.in_primary)
            && let Some(p) = &mut self.primary
        {
            p.members.remove(&s);
        }
        self.note(format!("slot {s}: {why}"));
        if self.slots[s - 1].replace {
            self.start(s);
        }
    }

    /// SIGTERM: a clean shutdown, which takes time (the drain, Galera's leave, InnoDB's
    /// shutdown); a SIGKILL may cut it short.
    fn stop(&mut self, s: usize) {
        let Some(last) = self.slots[s - 1].task.as_ref().map(|t| t.report(self)) else {
            return;
        };
        if self.slots[s - 1]
            .task
            .as_ref()
            .is_some_and(|t| t.stopping().is_some())
        {
            return;
        }
        let mut task = self.slots[s - 1].task.take().unwrap();
        match task.on_stop(self, &last, DRAIN_STEPS, SHUTDOWN_STEPS) {
            None => {
                self.slots[s - 1].task = Some(task);
                self.note(format!("slot {s}: SIGTERM: drains, then shuts down"));
            }
            Some(e) => self.note(format!("slot {s}: stopped ({e})")),
        }
    }

    /// Galera leaves the Primary component cleanly: the view shrinks.
    fn leave_group(&mut self, s: usize) {
        let Some(db) = self.db(s) else { return };
        if db.conn == Conn::Left {
            return;
        }
        if !db.in_primary {
            self.db_mut(s).unwrap().conn = Conn::Left;
            return;
        }
        let mut others = false;
        if let Some(p) = &mut self.primary {
            p.members.remove(&s);
            p.view.remove(&s);
            p.changed = true;
            others = !p.members.is_empty();
            if p.members.is_empty() {
                self.primary = None;
            }
        }
        let db = self.db_mut(s).unwrap();
        db.in_primary = false;
        db.conn = Conn::Left;
        self.vol_mut(s).left_clean_with_others = others;
        self.note(format!("slot {s}: Galera leaves the group cleanly"));
    }

    /// What Galera writes when mariadbd has shut down cleanly.
    fn write_clean_state(&mut self, s: usize) {
        let Some(db) = self.db(s).cloned() else {
            return;
        };
        let v = self.vol_mut(s);
        if let Some(d) = &v.data {
            let safe = if db.was_primary {
                db.last_memb == 1
            } else {
                v.grastate.get().is_some_and(|g| g.safe)
            };
            v.grastate = GraFile::Parsed(Grastate {
                cluster: d.cluster,
                seqno: d.history.len() as i64,
                safe,
            });
            if db.was_primary {
                v.flag_by_init = false;
            }
        }
        v.gvwstate = None;
    }

    /// Slot `s`'s mariadbd leaves the Primary component as a crash does (no new view).
    pub fn lose_member(&mut self, s: usize) {
        if let Some(p) = &mut self.primary {
            p.members.remove(&s);
        }
    }

    /// The running tasks that galera-init's stop signal took through their shutdown.
    fn stops(&mut self) {
        for s in self.running() {
            let Some((leave, exit)) = self.slots[s - 1].task.as_ref().and_then(|t| t.stopping())
            else {
                continue;
            };
            if leave <= self.now {
                self.leave_group(s);
            }
            if exit <= self.now {
                self.write_clean_state(s);
                let mut t = self.slots[s - 1].task.take().unwrap();
                t.db_exited(self, 0, true);
                self.note(format!(
                    "slot {s}: mariadbd shut down cleanly; the task exits 0"
                ));
                if self.slots[s - 1].replace {
                    self.start(s);
                }
            }
        }
    }

    fn vol_mut(&mut self, s: usize) -> &mut Volume {
        let v = self.slots[s - 1].vol;
        &mut self.volumes[v - 1]
    }

    fn write(&mut self, n: u64) {
        let Some(p) = &mut self.primary else {
            return;
        };
        // A member that crashed this step still counts in the view: until the component
        // has a quorum again, commits stall.
        if p.members.len() * 2 <= p.view.len() {
            return;
        }
        if !p.members.iter().any(|m| {
            self.slots[*m - 1]
                .task
                .as_ref()
                .and_then(|t| t.db())
                .is_some_and(|db| db.conn == Conn::Member)
        }) {
            return;
        }
        for _ in 0..n {
            p.history.push(self.next_tx);
            self.acked.insert(self.next_tx);
            self.commit_step.insert(self.next_tx, self.now);
            self.next_tx += 1;
        }
        let history = p.history.clone();
        let members: Vec<usize> = p.members.iter().copied().collect();
        for m in members {
            let synced = self.slots[m - 1]
                .task
                .as_ref()
                .and_then(|t| t.db())
                .is_some_and(|db| db.conn == Conn::Member);
            if synced && let Some(d) = &mut self.vol_mut(m).data {
                d.history = history.clone();
            }
        }
        let len = history.len();
        self.note(format!("client: {n} commit(s) acknowledged, seqno {len}"));
    }

    fn heal(&mut self, reattach: bool) {
        self.healed_at = Some(self.now);
        for slot in &mut self.slots {
            slot.cut = false;
            slot.hidden.clear();
            // A node silent for ever stays silent: the others must do without it.
            if slot.mute_until != u64::MAX {
                slot.mute_until = 0;
            }
        }
        if reattach {
            for v in 0..self.volumes.len() {
                let vol = &self.volumes[v];
                if vol.destroyed || self.attached(vol.id) || vol.data.is_none() {
                    continue;
                }
                let home = vol.home;
                let id = vol.id;
                // The volume comes back: the slot's task is replaced by one on it.
                self.stop(home);
                self.slots[home - 1].next_vol = Some(id);
                self.note(format!("volume {id} returns to slot {home}"));
            }
        }
        for s in 1..=self.slots.len() {
            self.start(s);
        }
        self.note(format!(
            "heal{}",
            if reattach { " (volumes return)" } else { "" }
        ));
    }

    // ----- one step -----

    /// Runs one step: events (already applied by the caller), orchestrator restarts, the
    /// group communication, then every task's galera-init.
    pub fn step(&mut self) {
        for s in 1..=self.slots.len() {
            if self.slots[s - 1].restart_at.is_some_and(|t| t <= self.now) {
                self.start(s);
            }
        }
        self.galera();
        crate::node::tick_all(self);
        self.now += 1;
    }

    /// Whether two slots can talk.
    pub fn reachable(&self, a: usize, b: usize) -> bool {
        a == b || (!self.slots[a - 1].cut && !self.slots[b - 1].cut)
    }

    /// The running mariadbd that slot `s`'s group communication reaches: two connect when
    /// the network lets them and either has the other in its `gcomm://` list; once
    /// connected they learn each other's peers (Galera gossips addresses).
    fn group(&self, s: usize) -> BTreeSet<usize> {
        let mut group = BTreeSet::from([s]);
        let mut todo = vec![s];
        while let Some(a) = todo.pop() {
            let Some(da) = self.db(a) else { continue };
            for b in self.running() {
                if group.contains(&b) || !self.reachable(a, b) {
                    continue;
                }
                let db = self.db(b).unwrap();
                let knows = da.gcomm.contains(&self.slots[b - 1].addr)
                    || db.gcomm.contains(&self.slots[a - 1].addr);
                if knows {
                    group.insert(b);
                    todo.push(b);
                }
            }
        }
        group
    }

    fn db(&self, s: usize) -> Option<&Db> {
        self.slots[s - 1].task.as_ref().and_then(|t| t.db())
    }

    fn db_mut(&mut self, s: usize) -> Option<&mut Db> {
        self.slots[s - 1].task.as_mut().and_then(|t| t.db_mut())
    }

    fn running(&self) -> Vec<usize> {
        (1..=self.slots.len())
            .filter(|s| self.db(*s).is_some())
            .collect()
    }

    fn galera(&mut self) {
        self.stops();
        // Clean stops galera-init asked for.
        for s in self.running() {
            if self.db(s).is_some_and(|db| db.stop) {
                self.leave_group(s);
                self.write_clean_state(s);
                if let Some(mut t) = self.slots[s - 1].task.take() {
                    let out = t.db_exited(self, 0, false);
                    if out == Outcome::Elect {
                        self.slots[s - 1].task = Some(t);
                    }
                }
                self.note(format!("slot {s}: mariadbd stopped cleanly by galera-init"));
            }
        }
        self.finish_transfers();
        self.keep_or_lose_primary();
        if self.primary.is_none() {
            self.form_primary();
        }
        self.join_primary();
        self.bootstraps_beside_a_primary();
        self.give_up_waiting();
        self.update_view();
    }

    fn finish_transfers(&mut self) {
        for s in self.running() {
            let done = matches!(self.db(s).map(|d| d.conn), Some(Conn::Transfer { until }) if until <= self.now);
            if !done {
                continue;
            }
            let (cluster, history) = match &self.primary {
                Some(p) if p.members.contains(&s) => (p.cluster, p.history.clone()),
                _ => continue,
            };
            let safe = self.primary.as_ref().is_some_and(|p| p.members.len() == 1);
            let v = self.vol_mut(s);
            v.data = Some(Data { cluster, history });
            v.grastate = GraFile::Parsed(Grastate {
                cluster,
                seqno: -1,
                safe,
            });
            v.marker = false;
            v.given_up = false;
            self.db_mut(s).unwrap().conn = Conn::Member;
            self.note(format!("slot {s}: state transfer done, Synced"));
        }
    }

    fn keep_or_lose_primary(&mut self) {
        let Some(p) = &self.primary else {
            return;
        };
        let alive: Vec<usize> = p
            .members
            .iter()
            .copied()
            .filter(|m| self.db(*m).is_some_and(|d| d.in_primary))
            .collect();
        // The members that still reach each other: the largest such group goes on.
        let group: Vec<usize> = alive
            .iter()
            .map(|m| {
                let g = self.group(*m);
                alive
                    .iter()
                    .copied()
                    .filter(|x| g.contains(x))
                    .collect::<Vec<_>>()
            })
            .max_by_key(|g| g.len())
            .unwrap_or_default();
        let keeps = group.len() * 2 > p.view.len();
        let lost: Vec<usize> = if keeps {
            alive
                .iter()
                .copied()
                .filter(|m| !group.contains(m))
                .collect()
        } else {
            alive.clone()
        };
        for m in &lost {
            if let Some(db) = self.db_mut(*m) {
                db.in_primary = false;
                if let Conn::Transfer { .. } = db.conn {
                    // The donor is gone: the joiner's SST fails and mariadbd aborts,
                    // leaving a datadir with nothing usable in it.
                    self.abort(*m, "mariadbd aborted: state transfer failed");
                }
            }
        }
        if keeps {
            let p = self.primary.as_mut().unwrap();
            p.members = group.into_iter().collect();
        } else {
            self.primary = None;
            self.note("the Primary component lost its majority: non-Primary".into());
        }
    }

    /// With no Primary component: a bootstrap, a `pc.bootstrap` or a pc.recovery makes one.
    fn form_primary(&mut self) {
        let running = self.running();
        let boot = running.iter().copied().find(|s| {
            let db = self.db(*s).unwrap();
            db.mode == Mode::Bootstrap && matches!(db.conn, Conn::Connecting { .. })
        });
        if let Some(s) = boot {
            self.make_primary(s, "bootstrap");
            return;
        }
        let pcb = running
            .iter()
            .copied()
            .find(|s| self.db(*s).is_some_and(|d| d.pc_bootstrap));
        if let Some(s) = pcb {
            self.db_mut(s).unwrap().pc_bootstrap = false;
            // The rest of its non-Primary component joins it (below).
            self.make_primary(s, "pc.bootstrap");
            return;
        }
        // Partitioned components merge back: when every member of the latest Primary view
        // is together again (the same processes), Galera re-bootstraps it by itself.
        let remnants: Vec<(usize, u64)> = running
            .iter()
            .copied()
            .filter_map(|s| {
                let db = self.db(s).unwrap();
                (!db.in_primary && db.conn == Conn::Member)
                    .then_some(db.prim_view)
                    .flatten()
                    .map(|v| (s, v))
            })
            .collect();
        if let Some(greatest) = remnants.iter().map(|(_, v)| *v).max() {
            let members = self.views.get(&greatest).cloned().unwrap_or_default();
            let together = members
                .iter()
                .next()
                .map(|m| self.group(*m))
                .unwrap_or_default();
            let back = members
                .iter()
                .all(|m| remnants.contains(&(*m, greatest)) && together.contains(m));
            if back && !members.is_empty() {
                let best = members
                    .iter()
                    .copied()
                    .max_by_key(|m| {
                        self.vol_of(*m)
                            .data
                            .as_ref()
                            .map(|d| d.history.len())
                            .unwrap_or(0)
                    })
                    .unwrap();
                // The other members join it (below), by IST.
                self.make_primary(best, "re-merge of the last Primary view");
                return;
            }
        }
        // pc.recovery: every member of a saved view is back, connected, with that view.
        let waiting: Vec<usize> = running
            .iter()
            .copied()
            .filter(|s| {
                let db = self.db(*s).unwrap();
                db.mode == Mode::Join
                    && matches!(db.conn, Conn::Connecting { .. })
                    && db.saved_view.is_some()
            })
            .collect();
        for s in &waiting {
            let view = self.db(*s).unwrap().saved_view.clone().unwrap();
            let holders: Vec<usize> = view
                .members
                .iter()
                .filter_map(|v| {
                    waiting.iter().copied().find(|w| {
                        self.slots[w - 1].vol == *v
                            && self.group(*s).contains(w)
                            && self.db(*w).unwrap().saved_view.as_ref() == Some(&view)
                    })
                })
                .collect();
            if holders.len() == view.members.len() {
                let best = holders
                    .iter()
                    .copied()
                    .max_by_key(|h| {
                        self.vol_of(*h)
                            .data
                            .as_ref()
                            .map(|d| d.history.len())
                            .unwrap_or(0)
                    })
                    .unwrap();
                self.make_primary(best, "pc.recovery");
                return;
            }
        }
    }

    /// A new Primary component from slot `s`'s data; checks that it loses nothing.
    fn make_primary(&mut self, s: usize, how: &str) {
        // Galera's own restores (pc.recovery, a re-merge) are not galera-init's decisions.
        let ours = how == "bootstrap" || how == "pc.bootstrap";
        let task = self.slots[s - 1].task.as_mut().filter(|_| ours);
        let decided = task.as_ref().and_then(|t| t.decided);
        if let Some(t) = task {
            t.decided = None;
        }
        let forced = decided.is_some_and(|d| d.kind.forced());
        let blind = decided.is_some_and(|d| d.blind);
        let best_known = decided.and_then(|d| d.best_known);
        let majority = decided.is_some_and(|d| d.kind == BootstrapKind::Majority);
        let (cluster, history, fresh) = match &self.vol_of(s).data {
            Some(d) => (d.cluster, d.history.clone(), false),
            None => (self.new_cluster(), Vec::new(), true),
        };
        // A new cluster must lose nothing of any cluster; a cluster restarted from data must
        // lose nothing of its own history (another cluster's volumes are refused, not lost).
        let scope = (!fresh).then_some(cluster);
        self.check_new_primary(
            s,
            &history,
            scope,
            Decided {
                forced,
                blind,
                best_known,
                majority,
            },
            how,
        );
        if self.vol_of(s).data.is_none() {
            self.vol_mut(s).data = Some(Data {
                cluster,
                history: history.clone(),
            });
        }
        let db = self.db_mut(s).unwrap();
        db.conn = Conn::Member;
        db.in_primary = true;
        self.primary = Some(Primary {
            cluster,
            history,
            members: BTreeSet::from([s]),
            view: BTreeSet::new(),
            view_id: 0,
            changed: true,
        });
        self.override_done.insert(self.override_id);
        self.note(format!(
            "slot {s}: {how}: new Primary component of cluster {cluster}"
        ));
    }

    /// Every acknowledged transaction that still exists on some volume.
    fn surviving(&self) -> BTreeSet<u64> {
        self.surviving_in(None)
    }

    /// Every acknowledged transaction that still exists on some volume of `cluster` (of any
    /// cluster when `None`).
    fn surviving_in(&self, cluster: Option<u64>) -> BTreeSet<u64> {
        let mut on_disk = BTreeSet::new();
        for v in &self.volumes {
            if let (false, Some(d)) = (v.destroyed, &v.data)
                && cluster.is_none_or(|c| c == d.cluster)
            {
                on_disk.extend(d.history.iter().copied());
            }
        }
        on_disk
            .intersection(&self.acked)
            .copied()
            .filter(|t| !self.discarded.contains(t))
            .collect()
    }

    /// Whether every transaction in `lost` is one that a node reachable from slot `s`
    /// failed to apply because it was killed right after the writer acknowledged it.
    fn lagged_here(&self, s: usize, lost: &[u64]) -> bool {
        let here: Vec<&Volume> = (1..=self.slots.len())
            .filter(|o| self.slots[o - 1].task.is_some() && self.reachable(s, *o))
            .map(|o| &self.volumes[self.slots[o - 1].vol - 1])
            .collect();
        lost.iter().all(|t| {
            here.iter().any(|v| {
                v.lagged.contains(t) && v.data.as_ref().is_some_and(|d| !d.history.contains(t))
            })
        })
    }

    /// Checks a new Primary component made from slot `s`'s `history` against what survives
    /// (of `scope`'s cluster, or of any). A blind fresh-cluster bootstrap is excused (README:
    /// fresh nodes cannot know of data elsewhere); an override is held to its own rules.
    fn check_new_primary(
        &mut self,
        s: usize,
        history: &[u64],
        scope: Option<u64>,
        decided: Decided,
        how: &str,
    ) {
        let Decided {
            forced,
            blind,
            best_known,
            majority,
        } = decided;
        let have: BTreeSet<u64> = history.iter().copied().collect();
        let lost: Vec<u64> = self
            .surviving_in(scope)
            .into_iter()
            .filter(|t| !have.contains(t))
            .collect();
        if forced {
            self.note(format!("slot {s}: bootstrap under an override"));
            let n = self.forced_bootstraps.entry(self.override_id).or_insert(0);
            if !self.override_done.contains(&self.override_id) {
                *n += 1;
            }
            // One override, one bootstrap: until a Primary component forms after it. (A
            // FORCE_BOOTSTRAP left on the service acts again on a volume that never saw it;
            // README: remove it once the cluster is back.)
            if *n > 1 {
                let id = self.override_id;
                self.violate(
                    "override-twice",
                    format!("override {id} made a second node (slot {s}) bootstrap"),
                );
            }
            // The override gives up what is not here; it must start from the most
            // advanced node present when it decided.
            if let Some((pos, o)) = best_known
                && pos > history.len() as i64
            {
                self.violate(
                    "override-not-newest",
                    format!(
                        "slot {s} bootstrapped at seqno {} under an override while slot {o}, \
                         which it knew of, held seqno {pos}",
                        history.len()
                    ),
                );
            }
            self.discarded.extend(lost);
            // What the override did not wait for is given up: histories that diverge, and
            // the volumes of the nodes that were not there (they may come back later with
            // their own view of the cluster and no way to know of this one).
            let src = self.slots[s - 1].vol;
            let here: BTreeSet<usize> = (1..=self.slots.len())
                .filter(|o| self.slots[o - 1].task.is_some() && self.reachable(s, *o))
                .map(|o| self.slots[o - 1].vol)
                .collect();
            for v in &mut self.volumes {
                if let (false, Some(d)) = (v.destroyed, &v.data) {
                    v.given_up =
                        v.id != src && (!is_prefix(&d.history, history) || !here.contains(&v.id));
                }
            }
            return;
        }
        if blind
            && how == "bootstrap"
            && self
                .volumes
                .iter()
                .any(|v| !v.destroyed && v.data.is_some())
        {
            self.note(format!(
                "slot {s}: a second cluster, out of sight of the first"
            ));
            self.two_clusters = true;
        }
        if lost.is_empty() {
            return;
        }
        let src = self.slots[s - 1].vol;
        if self.volumes[src - 1].given_up {
            let knew = self.volumes[src - 1]
                .record
                .as_ref()
                .is_some_and(|r| r.superseded);
            if !knew {
                // It never saw the cluster the override made (README: the nodes an override
                // leaves out must not be started while none of its nodes runs).
                self.note(format!(
                    "slot {s}: restores a history an override gave up, not knowing it"
                ));
                self.discarded.extend(lost);
                return;
            }
        }
        if majority && self.lagged_here(s, &lost) {
            // The one risk of the OUTAGE_TIMEOUT majority rule (README): transactions the
            // writer acknowledged a moment before the nodes here crashed together, which only
            // a node still missing holds. Nothing on the nodes here can tell.
            self.note(format!(
                "slot {s}: majority rule: {} transaction(s) acknowledged just before the nodes \
                 here crashed survive only on a missing node",
                lost.len()
            ));
            self.discarded.extend(lost);
            return;
        }
        if blind && how == "bootstrap" {
            // No node it knew of held data: it cannot know of data elsewhere (README).
            self.note(format!(
                "slot {s}: new cluster from empty volumes while {} acknowledged \
                 transaction(s) survive elsewhere: two clusters from now on",
                lost.len()
            ));
            self.two_clusters = true;
            self.discarded.extend(lost);
            return;
        }
        self.violate(
            "stale-bootstrap",
            format!(
                "slot {s} made a Primary component ({how}) at seqno {} without {} \
                 acknowledged transaction(s) that survive (first: {})",
                history.len(),
                lost.len(),
                lost[0]
            ),
        );
        self.discarded.extend(lost);
    }

    fn join_primary(&mut self) {
        let Some(p) = self.primary.clone() else {
            return;
        };
        let anchor = *p.members.iter().next().unwrap_or(&0);
        for s in self.running() {
            let db = self.db(s).unwrap();
            // A starting joiner, or a non-Primary member reaching the component again.
            let eligible = !db.in_primary
                && match db.conn {
                    Conn::Connecting { .. } => db.mode == Mode::Join,
                    Conn::Member => true,
                    Conn::Transfer { .. } | Conn::Left => false,
                };
            if !eligible || (anchor > 0 && !self.group(anchor).contains(&s)) {
                continue;
            }
            let data = self.vol_of(s).data.clone();
            let mut until = self.now + SST_STEPS;
            match data {
                None => {}
                Some(d) if d.cluster == p.cluster => {
                    if is_prefix(&d.history, &p.history) {
                        // IST when a donor's gcache still holds what it misses; else SST.
                        if p.history.len() - d.history.len() <= GCACHE {
                            until = self.now + 1;
                        }
                    } else if d.history.len() > p.history.len() {
                        self.violate(
                            "ahead-join",
                            format!(
                                "slot {s} (seqno {}) was sent to join a Primary component at \
                                 seqno {}: Galera aborts (reversing history)",
                                d.history.len(),
                                p.history.len()
                            ),
                        );
                        self.abort(s, "mariadbd aborted: reversing history");
                        continue;
                    } else {
                        self.violate(
                            "diverged-join",
                            format!(
                                "slot {s} joined by IST although its history diverged from \
                                 the Primary component's (seqno {} vs {})",
                                d.history.len(),
                                p.history.len()
                            ),
                        );
                        until = self.now + 1;
                    }
                }
                Some(d) => {
                    let have: BTreeSet<u64> = p.history.iter().copied().collect();
                    let unique = d
                        .history
                        .iter()
                        .filter(|t| {
                            !have.contains(t)
                                && self.acked.contains(t)
                                && !self.discarded.contains(t)
                        })
                        .count();
                    if unique > 0 && self.two_clusters {
                        self.note(format!(
                            "slot {s}: Galera merges data of another cluster by SST ({unique} \
                             acknowledged transaction(s)): two clusters existed"
                        ));
                    } else if unique > 0 {
                        self.violate(
                            "wiped",
                            format!(
                                "slot {s}'s data of cluster {} ({unique} acknowledged \
                                 transaction(s) found nowhere else) was wiped by an SST",
                                d.cluster
                            ),
                        );
                    }
                }
            }
            // The joiner's SST script makes its marker, and Galera marks the state unsafe
            // (the all-zero UUID). A full transfer then replaces the data, first of all
            // galera-init's join mark (the SST script clears the datadir but keeps
            // galera-init's record: the config galera-init writes adds it to the files it
            // keeps).
            let kind = if until == self.now + 1 { "IST" } else { "SST" };
            let starting = matches!(self.db(s).unwrap().conn, Conn::Connecting { .. });
            let v = self.vol_mut(s);
            if starting {
                v.marker = true;
                v.grastate = GraFile::running(0);
            }
            if kind == "SST" {
                v.join_mark = false;
                v.data = None;
                v.init_done = false;
            }
            let db = self.db_mut(s).unwrap();
            db.conn = Conn::Transfer { until };
            db.in_primary = true;
            self.primary.as_mut().unwrap().members.insert(s);
            self.note(format!("slot {s}: joins the Primary component ({kind})"));
        }
    }

    /// A node started with `--wsrep-new-cluster` while a Primary component exists: two.
    fn bootstraps_beside_a_primary(&mut self) {
        let Some(cluster) = self.primary.as_ref().map(|p| p.cluster) else {
            return;
        };
        for s in self.running() {
            let db = self.db(s).unwrap();
            let other = self
                .vol_of(s)
                .data
                .as_ref()
                .is_none_or(|d| d.cluster != cluster);
            if db.mode == Mode::Bootstrap
                && matches!(db.conn, Conn::Connecting { .. })
                && self.two_clusters
                && other
            {
                // Two clusters out of each other's sight (README): the model follows one.
                self.note(format!(
                    "slot {s}: bootstraps another cluster beside the first: the model ends here"
                ));
                self.two_primaries = true;
                return;
            }
            if db.mode == Mode::Bootstrap && matches!(db.conn, Conn::Connecting { .. }) {
                self.violate(
                    "split-brain",
                    format!("slot {s} bootstrapped a second Primary component"),
                );
                let db = self.db_mut(s).unwrap();
                db.conn = Conn::Member;
            }
            if self.db(s).is_some_and(|d| d.pc_bootstrap) {
                self.db_mut(s).unwrap().pc_bootstrap = false;
                if !self.db(s).unwrap().in_primary {
                    self.violate(
                        "split-brain",
                        format!("slot {s} ran pc.bootstrap while a Primary component runs"),
                    );
                }
            }
        }
    }

    fn give_up_waiting(&mut self) {
        for s in self.running() {
            let db = self.db(s).unwrap();
            if let Conn::Connecting { since } = db.conn
                && db.mode == Mode::Join
                && db.saved_view.is_none()
                && !db.was_primary
                && since + WAIT_PRIM_TIMEOUT <= self.now
            {
                self.abort(s, "mariadbd: failed to reach primary view");
            }
        }
    }

    /// A task exits with an error: after faults ended, more than [`CRASH_LOOP`] times is a
    /// crash loop.
    fn exited_with_error(&mut self, s: usize) {
        if self.healed_at.is_none() || self.bad_config {
            return;
        }
        let n = self.errors.entry(s).or_insert(0);
        *n += 1;
        if *n > CRASH_LOOP {
            self.violate(
                "crash-loop",
                format!("slot {s} exits with an error again and again after faults ended"),
            );
        }
    }

    /// The task in slot `s` exits by itself (its start-up refused); Swarm restarts it later.
    pub fn exit_task(&mut self, s: usize, code: u8, why: &str) {
        if code != 0 {
            self.exited_with_error(s);
        }
        if self.slots[s - 1].task.take().is_some() {
            if let Some(p) = &mut self.primary {
                p.members.remove(&s);
            }
            self.slots[s - 1].restart_at = Some(self.now + RESTART_DELAY);
            self.note(format!("slot {s}: exits with {code}: {why}"));
        }
    }

    /// Slot `s`'s mariadbd aborts: galera-init hears of its exit, and the task exits with
    /// it (Swarm restarts it later).
    pub fn abort(&mut self, s: usize, why: &str) {
        let Some(mut t) = self.slots[s - 1].task.take() else {
            return;
        };
        self.lose_member(s);
        self.note(format!("slot {s}: {why}"));
        match t.db_exited(self, 1, false) {
            Outcome::Elect => self.slots[s - 1].task = Some(t),
            Outcome::Exit(code) => {
                self.slots[s - 1].restart_at = Some(self.now + RESTART_DELAY);
                self.note(format!("slot {s}: exits with {code}"));
                if code != 0 {
                    self.exited_with_error(s);
                }
            }
        }
    }

    fn update_view(&mut self) {
        let Some(p) = &self.primary else {
            return;
        };
        if p.members == p.view && !p.changed {
            return;
        }
        let members = p.members.clone();
        let id = self.next_view;
        self.next_view += 1;
        let vols: BTreeSet<usize> = members.iter().map(|m| self.slots[m - 1].vol).collect();
        let view = View { id, members: vols };
        for m in &members {
            let n = members.len();
            let db = self.db_mut(*m).unwrap();
            db.last_memb = n;
            db.was_primary = true;
            db.prim_view = Some(id);

            let v = self.vol_mut(*m);
            v.gvwstate = Some(view.clone());
            v.last_view = Some(view.clone());
            v.left_clean_with_others = false;
            // Set once a reading shows the node Synced in this view (see `observe_synced`).
            v.synced_in_last_view = false;
            v.flag_by_init = false;
            // A joiner still receiving its SST has no data and no Galera state yet.
            if let Some(d) = &v.data {
                v.grastate = GraFile::Parsed(Grastate {
                    cluster: d.cluster,
                    seqno: -1,
                    safe: n == 1,
                });
            }
        }
        self.views.insert(id, members.clone());
        let p = self.primary.as_mut().unwrap();
        p.view = members;
        p.view_id = id;
        p.changed = false;
    }

    /// A reading (the step's report) shows slot `s` Synced in the Primary component: its
    /// node holds that view's data, as far as anyone can tell.
    pub fn observe_synced(&mut self, s: usize) {
        let Some(p) = &self.primary else {
            return;
        };
        let id = p.view_id;
        let v = self.vol_mut(s);
        v.accepted = None;
        if v.last_view.as_ref().is_some_and(|l| l.id == id) {
            v.synced_in_last_view = true;
        }
    }

    /// Slot `s` recorded that another node bootstraps (`Plan::Wait::accept`): for liveness,
    /// it cannot go on without that node until it is in a Primary component again.
    pub fn accepted(&mut self, s: usize, candidate: &galera_init::record::Member) {
        let vol = self
            .volumes
            .iter()
            .find(|v| {
                v.record.as_ref().map(|r| Some(&r.volume_id)) == Some(candidate.volume_id.as_ref())
            })
            .map(|v| v.id);
        let v = self.vol_mut(s);
        if v.data.is_some() {
            v.accepted = vol;
        }
    }

    /// Slot `s` decided to join the Primary component: for liveness, its node's last view
    /// is that component's from now on, and it is not Synced in it (it knows the component
    /// went on without it, whatever becomes of the join).
    pub fn decided_to_join(&mut self, s: usize) {
        let Some(p) = &self.primary else {
            return;
        };
        let mut members: BTreeSet<usize> =
            p.members.iter().map(|m| self.slots[m - 1].vol).collect();
        let id = p.view_id;
        let v = self.vol_mut(s);
        if v.data.is_none() {
            return;
        }
        members.insert(v.id);
        v.last_view = Some(View { id, members });
        v.synced_in_last_view = false;
        v.left_clean_with_others = false;
    }

    /// Whether the running tasks hold data of more than one cluster.
    pub fn mixed_clusters(&self) -> bool {
        let clusters: BTreeSet<u64> = self
            .slots
            .iter()
            .filter_map(|s| self.volumes[s.vol - 1].data.as_ref().map(|d| d.cluster))
            .collect();
        clusters.len() > 1
    }

    /// Ground truth for liveness: with every fault over, may the nodes restore a Primary
    /// component by themselves? Yes when nothing is held by any node (a new cluster), or
    /// when the nodes present that hold every surviving acknowledged transaction each have
    /// every member of their last Primary view present, or a majority of it, were Synced in
    /// it, and did not leave it cleanly while the others stayed (they may have gone on).
    pub fn should_recover(&self) -> bool {
        // After `heal` every slot runs (or is about to be restarted) on its volume.
        // A node whose galera-init nobody can read (another cluster key) runs, and may run a
        // component of its own: no rule goes on beside it (README); its key must be fixed.
        if self
            .slots
            .iter()
            .any(|s| s.task.is_some() && s.mute_until == u64::MAX)
        {
            return false;
        }
        // A node that met one whose galera-init it could not read starts no component by
        // a rule once that node is gone (it may still run one of its own): an override
        // does (README).
        if self
            .slots
            .iter()
            .any(|s| s.task.as_ref().is_some_and(|t| t.saw_unreadable))
        {
            return false;
        }
        let heard = |s: &Slot| s.mute_until != u64::MAX;
        // A volume that lost its record cannot be matched to the views that name it.
        let present = |v: usize| {
            let vol = &self.volumes[v - 1];
            self.slots
                .iter()
                .any(|s| s.vol == v && heard(s) && vol.data.is_some() && !vol.record_lost())
        };
        let surviving = self.surviving();
        let attached: Vec<&Volume> = self
            .slots
            .iter()
            .filter(|s| heard(s))
            .map(|s| &self.volumes[s.vol - 1])
            .collect();
        if attached.iter().all(|v| v.data.is_none()) {
            // A fresh cluster waits for every listed node to answer: one that never does
            // (a dead task's address, a node whose galera-init cannot be read) may hold
            // data, and only an operator can say it does not.
            return self.ghosts.is_empty() && self.slots.iter().all(|s| s.mute_until != u64::MAX);
        }
        if self.mixed_clusters() {
            // Data of two clusters: an operator must choose (README).
            return false;
        }
        // The nodes holding every surviving acknowledged transaction; each of their last
        // views must be back, or a majority of it (as the rules ask of the most advanced).
        // (A history an override gave up waits for an operator, by design.)
        // A volume that lost its record and is the most advanced present cannot place its
        // history: an operator chooses (README).
        let len = |v: &Volume| v.data.as_ref().map_or(0, |d| d.history.len());
        let best_placed = attached
            .iter()
            .filter(|v| !v.record_lost() && !v.given_up && v.data.is_some())
            .map(|v| len(v))
            .max();
        if attached
            .iter()
            .any(|v| v.record_lost() && v.data.is_some() && best_placed.is_none_or(|b| len(v) > b))
        {
            return false;
        }
        let newest: Vec<&&Volume> = attached
            .iter()
            .filter(|n| {
                !n.given_up
                    && !n.record_lost()
                    && n.data
                        .as_ref()
                        .is_some_and(|d| surviving.iter().all(|t| d.history.contains(t)))
            })
            .collect();
        // A node here that recorded another's bootstrap, which is missing: it may have gone
        // on (with this node's vote in its majority).
        let accepted_missing = attached
            .iter()
            .any(|v| v.data.is_some() && !v.given_up && v.accepted.is_some_and(|c| !present(c)));
        !newest.is_empty()
            && !accepted_missing
            && newest.iter().all(|n| {
                let Some(view) = &n.last_view else {
                    return false;
                };
                let here = view.members.iter().filter(|m| present(**m)).count();
                let complete = here == view.members.len();
                let majority = here * 2 > view.members.len()
                    && !n.left_clean_with_others
                    && n.synced_in_last_view;
                let waits_for_candidate = n.accepted.is_some_and(|c| !present(c));
                (complete || majority) && !waits_for_candidate
            })
    }

    /// What slot `s`'s mariadbd reports in its `wsrep_%` status.
    pub fn wsrep(&self, s: usize, st: &mut NodeState) {
        let Some(db) = self.db(s) else {
            return;
        };
        let primary = db.in_primary && self.primary.is_some();
        let history_len = self.vol_of(s).data.as_ref().map(|d| d.history.len() as i64);
        st.wsrep_cluster_status = Some(if primary { "Primary" } else { "non-Primary" }.into());
        st.wsrep_local_state = Some(match db.conn {
            Conn::Member if primary => 4,
            Conn::Transfer { .. } => 1,
            _ => 0,
        });
        if let (true, Some(p)) = (primary, &self.primary) {
            st.wsrep_cluster_state_uuid = Some(uuid(p.cluster));
            st.wsrep_cluster_size = Some(p.members.len() as i64);
            st.wsrep_cluster_conf_id = Some(p.view_id as i64);
            st.wsrep_local_index = p.members.iter().position(|m| *m == s).map(|i| i as i64);
            st.wsrep_incoming_addresses = Some(
                p.members
                    .iter()
                    .map(|m| format!("{}:3306", self.slots[m - 1].addr))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        } else {
            st.wsrep_cluster_state_uuid = None;
            st.wsrep_cluster_size = None;
            st.wsrep_cluster_conf_id = None;
            st.wsrep_local_index = None;
            st.wsrep_incoming_addresses = None;
        }
        if db.conn == Conn::Member || db.was_primary {
            st.wsrep_last_committed = history_len;
        }
    }
}
