//! Schedules: what happens to a simulated cluster, step by step (one step is one second).
//!
//! A schedule is a settings line and a list of timed events, in a text form that a failing
//! run prints and a regression file stores:
//!
//! ```text
//! slots=3 cluster_size=3 settle=3 outage=30 pc_recovery=20
//! 0 start 1
//! 12 kill 2
//! 13 write 5
//! 40 heal reattach
//! ```
//!
//! [`generate`] draws a schedule from a seed: a formation, then episodes an operator meets
//! (a node killed, a rolling restart, a power cut, a graceful full stop with late starters,
//! a partition, lost volumes, lagging DNS, slow peers, overrides on one or every node), and
//! finally `heal`: every fault ends and the checker expects the cluster to come back.

use std::fmt;

use crate::rng::Rng;

/// One thing that happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start galera-init in the slot (a new task), on the slot's volume and address.
    Start(usize),
    /// SIGKILL the slot's task (mariadbd dies with it).
    Kill(usize),
    /// SIGTERM the slot's task: a clean shutdown.
    Stop(usize),
    /// Every task is killed at once.
    Power,
    /// Cut the slot off the network (its DNS too).
    Cut(usize),
    /// Reconnect the slot.
    Uncut(usize),
    /// The slot's next task gets a new address.
    Readdress(usize),
    /// The slot's next task gets a new, empty volume (the old one is kept, detached).
    NewVolume(usize),
    /// The slot's next task gets volume `v` back.
    Attach(usize, usize),
    /// Volume `v` is lost for ever.
    Destroy(usize),
    /// Slot `observer`'s DNS does not list slot `target` for `steps` steps.
    Hide {
        /// The slot left out.
        target: usize,
        /// The slot whose answers leave it out.
        observer: usize,
        /// For how long.
        steps: u64,
    },
    /// The slot's `/state` does not answer for `steps` steps.
    Mute(usize, u64),
    /// The slot's galera-init can no longer be read, nor read the others (another cluster
    /// key, a clock 60 s off): `heal` does not end it.
    Silent(usize),
    /// DNS lists (`true`) or stops listing an address where nothing answers: a dead task
    /// Swarm has not removed yet. `heal` does not end it.
    Ghost(bool),
    /// The service gets (`true`) or loses a setting mariadbd rejects (a bad
    /// `WSREP_PROVIDER_OPTIONS`): while it is set, every start of mariadbd aborts.
    BadConfig(bool),
    /// Volume `v` loses galera-init's record (a restored backup, data from another image).
    LoseRecord(usize),
    /// DNS lists (`true`) or stops listing a node of another cluster: another stack with
    /// the same service name on the same network, running a Primary component.
    Stranger(bool),
    /// A client commits `n` transactions on the Primary component, if one exists.
    Write(u64),
    /// `FORCE_BOOTSTRAP` is set (or removed) on the service: tasks started later see it.
    ForceEnv(bool),
    /// The operator runs `galera-init bootstrap` in the slot (the force-bootstrap file).
    ForceFile(usize),
    /// Every fault ends: links up, DNS exact, every slot started; optionally every detached
    /// volume goes back to its slot.
    Heal {
        /// Detached volumes return.
        reattach: bool,
    },
}

/// The settings a schedule runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Number of task slots (replicas).
    pub slots: usize,
    /// `CLUSTER_SIZE`, when set.
    pub cluster_size: Option<usize>,
    /// `SETTLE_WINDOW`, in steps.
    pub settle: u64,
    /// `OUTAGE_TIMEOUT`, in steps.
    pub outage: u64,
    /// `PC_RECOVERY_TIMEOUT`, in steps.
    pub pc_recovery: u64,
}

/// Settings and timed events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Settings.
    pub config: Config,
    /// Events, by step (several may share a step; they apply in order).
    pub events: Vec<(u64, Event)>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Start(s) => write!(f, "start {s}"),
            Event::Kill(s) => write!(f, "kill {s}"),
            Event::Stop(s) => write!(f, "stop {s}"),
            Event::Power => write!(f, "power"),
            Event::Cut(s) => write!(f, "cut {s}"),
            Event::Uncut(s) => write!(f, "uncut {s}"),
            Event::Readdress(s) => write!(f, "readdress {s}"),
            Event::NewVolume(s) => write!(f, "newvol {s}"),
            Event::Attach(s, v) => write!(f, "attach {s} {v}"),
            Event::Destroy(v) => write!(f, "destroy {v}"),
            Event::Hide {
                target,
                observer,
                steps,
            } => write!(f, "hide {target} from {observer} for {steps}"),
            Event::Mute(s, n) => write!(f, "mute {s} for {n}"),
            Event::Silent(s) => write!(f, "silent {s}"),
            Event::Ghost(on) => write!(f, "ghost {}", if *on { "on" } else { "off" }),
            Event::BadConfig(on) => write!(f, "badconfig {}", if *on { "on" } else { "off" }),
            Event::LoseRecord(v) => write!(f, "norecord {v}"),
            Event::Stranger(on) => write!(f, "stranger {}", if *on { "on" } else { "off" }),
            Event::Write(n) => write!(f, "write {n}"),
            Event::ForceEnv(on) => write!(f, "force-env {}", if *on { "on" } else { "off" }),
            Event::ForceFile(s) => write!(f, "force-file {s}"),
            Event::Heal { reattach } => {
                write!(f, "heal{}", if *reattach { " reattach" } else { "" })
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        write!(f, "slots={}", c.slots)?;
        if let Some(n) = c.cluster_size {
            write!(f, " cluster_size={n}")?;
        }
        writeln!(
            f,
            " settle={} outage={} pc_recovery={}",
            c.settle, c.outage, c.pc_recovery
        )?;
        for (t, e) in &self.events {
            writeln!(f, "{t} {e}")?;
        }
        Ok(())
    }
}

/// Parses the text form (`#` starts a comment).
pub fn parse(text: &str) -> Result<Schedule, String> {
    let mut lines = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty());
    let head = lines.next().ok_or("empty schedule")?;
    let mut config = Config {
        slots: 3,
        cluster_size: None,
        settle: 3,
        outage: 30,
        pc_recovery: 20,
    };
    for kv in head.split_whitespace() {
        let (k, v) = kv.split_once('=').ok_or(format!("bad setting {kv:?}"))?;
        let n: u64 = v.parse().map_err(|_| format!("bad number in {kv:?}"))?;
        match k {
            "slots" => config.slots = n as usize,
            "cluster_size" => config.cluster_size = Some(n as usize),
            "settle" => config.settle = n,
            "outage" => config.outage = n,
            "pc_recovery" => config.pc_recovery = n,
            _ => return Err(format!("unknown setting {k:?}")),
        }
    }
    let mut events = Vec::new();
    for line in lines {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            w.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or(format!("bad line {line:?}"))
        };
        let t = num(0)?;
        let s = || num(2).map(|n| n as usize);
        let e = match w.get(1).copied() {
            Some("start") => Event::Start(s()?),
            Some("kill") => Event::Kill(s()?),
            Some("stop") => Event::Stop(s()?),
            Some("power") => Event::Power,
            Some("cut") => Event::Cut(s()?),
            Some("uncut") => Event::Uncut(s()?),
            Some("readdress") => Event::Readdress(s()?),
            Some("newvol") => Event::NewVolume(s()?),
            Some("attach") => Event::Attach(s()?, num(3)? as usize),
            Some("destroy") => Event::Destroy(s()?),
            Some("hide") => Event::Hide {
                target: s()?,
                observer: num(4)? as usize,
                steps: num(6)?,
            },
            Some("mute") => Event::Mute(s()?, num(4)?),
            Some("silent") => Event::Silent(s()?),
            Some("ghost") => Event::Ghost(w.get(2) == Some(&"on")),
            Some("badconfig") => Event::BadConfig(w.get(2) == Some(&"on")),
            Some("norecord") => Event::LoseRecord(s()?),
            Some("stranger") => Event::Stranger(w.get(2) == Some(&"on")),
            Some("write") => Event::Write(num(2)?),
            Some("force-env") => Event::ForceEnv(w.get(2) == Some(&"on")),
            Some("force-file") => Event::ForceFile(s()?),
            Some("heal") => Event::Heal {
                reattach: w.get(2) == Some(&"reattach"),
            },
            _ => return Err(format!("unknown event in {line:?}")),
        };
        events.push((t, e));
    }
    Ok(Schedule { config, events })
}

/// Draws a schedule from `seed`.
pub fn generate(seed: u64) -> Schedule {
    let mut g = Gen {
        rng: Rng::new(seed),
        t: 0,
        events: Vec::new(),
        slots: 0,
        bounded_dns: true,
        settle: 0,
    };
    let slots = g.rng.pick(&[3, 3, 3, 3, 3, 2, 4, 5, 1]);
    let cluster_size = g.rng.chance(50).then_some(slots);
    let config = Config {
        slots,
        cluster_size,
        settle: g.rng.range(2, 5),
        outage: g.rng.range(20, 40),
        pc_recovery: g.rng.range(15, 25),
    };
    g.slots = slots;
    g.settle = config.settle;
    // Without CLUSTER_SIZE, one fresh cluster is guaranteed only while every node's DNS
    // lists the others within the settle window (README): longer splits need CLUSTER_SIZE,
    // and an override gives that guarantee up too.
    let overrides = g.rng.chance(40);
    g.bounded_dns = cluster_size.is_none() || overrides;
    g.formation();
    for _ in 0..g.rng.range(2, 6) {
        g.writes(3);
        let mut kind = g.rng.range(0, 15);
        if !overrides && (kind == 7 || kind == 8) {
            kind = 3;
        }
        match kind {
            0 => g.kill_one(),
            1 => g.stop_one(),
            2 => g.rolling_restart(),
            3 => g.power_cut(),
            4 => g.graceful_full_stop(),
            5 => g.kill_all_but_one(),
            6 => g.partition(),
            7 => g.override_env(),
            8 => g.override_file(),
            9 => g.lost_volume(),
            10 => g.noise(),
            11 => g.power_cut_late_starter(),
            12 => g.scale_down_cut(),
            13 => g.rejoin_cut(),
            14 => g.silence(),
            _ => g.lost_record(),
        }
        g.t += g.rng.range(5, 25);
    }
    g.writes(2);
    g.t += 5;
    let reattach = g.rng.chance(50);
    g.push(Event::Heal { reattach });
    Schedule {
        config,
        events: g.events,
    }
}

struct Gen {
    rng: Rng,
    t: u64,
    events: Vec<(u64, Event)>,
    slots: usize,
    bounded_dns: bool,
    settle: u64,
}

impl Gen {
    fn push(&mut self, e: Event) {
        self.events.push((self.t, e));
    }

    fn at(&mut self, t: u64, e: Event) {
        self.events.push((t, e));
    }

    fn slot(&mut self) -> usize {
        self.rng.range(1, self.slots as u64) as usize
    }

    fn order(&mut self) -> Vec<usize> {
        let mut v: Vec<usize> = (1..=self.slots).collect();
        for i in (1..v.len()).rev() {
            let j = (self.rng.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }

    /// A few writes over the next steps.
    fn writes(&mut self, n: u64) {
        for _ in 0..self.rng.range(0, n) {
            let t = self.t + self.rng.range(0, 4);
            let k = self.rng.range(1, 5);
            self.at(t, Event::Write(k));
        }
    }

    /// A DNS answer that leaves a node out for a while.
    fn lag(&mut self, around: u64) {
        let target = self.slot();
        let observer = self.slot();
        if target == observer {
            return;
        }
        let max = if self.bounded_dns {
            self.settle.saturating_sub(1).max(1)
        } else {
            30
        };
        let steps = self.rng.range(1, max);
        let t = around + self.rng.range(0, 3);
        self.at(
            t,
            Event::Hide {
                target,
                observer,
                steps,
            },
        );
    }

    fn formation(&mut self) {
        // Another stack with the same service name on the same network.
        if self.rng.chance(10) {
            let t = self.rng.range(0, 60);
            self.at(t, Event::Stranger(true));
        }
        // A first deploy with a setting mariadbd rejects: the seed initialises its datadir
        // and dies before its first Primary component, until the setting is removed.
        if self.rng.chance(10) {
            self.at(0, Event::BadConfig(true));
            let fixed = self.rng.range(5, 40);
            self.at(fixed, Event::BadConfig(false));
        }
        if self.rng.chance(50) {
            for s in self.order() {
                let t = self.rng.range(0, 3);
                self.at(t, Event::Start(s));
            }
            for _ in 0..self.rng.range(0, 3) {
                self.lag(0);
            }
        } else {
            // The README's walk-through: a seed, then `docker service scale`.
            self.at(0, Event::Start(1));
            let later = self.rng.range(8, 30);
            self.t = later;
            self.writes(3);
            for s in 2..=self.slots {
                let t = later + self.rng.range(0, 3);
                self.at(t, Event::Start(s));
            }
            if self.rng.chance(30) {
                self.lag(later);
            }
        }
        self.t += 45;
    }

    fn restart(&mut self, s: usize, after: u64) {
        let t = self.t + after;
        if self.rng.chance(20) {
            self.at(t, Event::Readdress(s));
        }
        self.at(t, Event::Start(s));
    }

    fn kill_one(&mut self) {
        let s = self.slot();
        self.push(Event::Kill(s));
        self.writes(3);
        let after = self.rng.range(1, 20);
        if self.rng.chance(20) {
            self.at(self.t + after, Event::NewVolume(s));
        }
        self.restart(s, after);
    }

    fn stop_one(&mut self) {
        let s = self.slot();
        self.push(Event::Stop(s));
        self.writes(3);
        let after = self.rng.range(2, 20);
        self.restart(s, after);
    }

    fn rolling_restart(&mut self) {
        for s in self.order() {
            self.push(Event::Stop(s));
            self.writes(2);
            self.t += 2;
            self.push(Event::Start(s));
            self.t += self.rng.range(8, 20);
        }
    }

    fn power_cut(&mut self) {
        self.push(Event::Power);
        self.t += 1;
        for s in self.order() {
            let after = self.rng.range(1, 25);
            if self.rng.chance(15) {
                self.at(self.t + after, Event::NewVolume(s));
            }
            self.restart(s, after);
        }
        self.t += 25;
    }

    /// Everything killed, and one node (maybe the one with the newest data) comes back
    /// long after the others.
    fn power_cut_late_starter(&mut self) {
        self.push(Event::Power);
        let order = self.order();
        let late = order[0];
        for s in &order[1..] {
            let after = self.rng.range(1, 5);
            self.restart(*s, after);
        }
        let after = self.rng.range(20, 60);
        self.restart(late, after);
        self.t += after;
    }

    /// Nodes stopped cleanly one by one with writes in between, then restarted in a random
    /// order with random delays.
    fn graceful_full_stop(&mut self) {
        for s in self.order() {
            self.push(Event::Stop(s));
            self.writes(3);
            self.t += self.rng.range(1, 6);
        }
        for s in self.order() {
            let after = self.rng.range(1, 40);
            self.restart(s, after);
        }
        self.t += 40;
    }

    /// Every node but one is killed: the survivor loses its Primary component.
    fn kill_all_but_one(&mut self) {
        let order = self.order();
        for s in &order[1..] {
            self.push(Event::Kill(*s));
        }
        self.writes(2);
        for s in &order[1..] {
            let after = self.rng.range(3, 30);
            self.restart(*s, after);
        }
        self.t += 30;
    }

    fn partition(&mut self) {
        let s = self.slot();
        self.push(Event::Cut(s));
        self.writes(3);
        let len = self.rng.range(3, 40);
        if self.rng.chance(40) {
            let k = self.t + self.rng.range(1, len);
            self.at(k, Event::Kill(s));
            self.at(k + 2, Event::Start(s));
        }
        self.at(self.t + len, Event::Uncut(s));
        self.t += len;
    }

    /// `docker service update --env-add FORCE_BOOTSTRAP=yes`: every task is replaced, one
    /// at a time, and sees the variable; later it is removed the same way.
    fn override_env(&mut self) {
        if self.rng.chance(50) {
            self.push(Event::Power);
            self.t += self.rng.range(1, 10);
        }
        self.push(Event::ForceEnv(true));
        for s in self.order() {
            self.push(Event::Stop(s));
            self.t += 1;
            self.push(Event::Start(s));
            self.t += self.rng.range(1, 10);
        }
        self.t += 20;
        self.push(Event::ForceEnv(false));
        if self.rng.chance(50) {
            for s in self.order() {
                self.push(Event::Stop(s));
                self.t += 1;
                self.push(Event::Start(s));
                self.t += self.rng.range(5, 15);
            }
        }
    }

    /// `galera-init bootstrap` run in one task, at some point of an outage.
    fn override_file(&mut self) {
        if self.rng.chance(70) {
            self.kill_all_but_one();
        }
        let s = self.slot();
        let t = self.t.saturating_sub(self.rng.range(0, 25));
        self.at(t, Event::ForceFile(s));
    }

    /// A volume lost: the task comes back elsewhere with an empty one; the old one may come
    /// back later, or never.
    fn lost_volume(&mut self) {
        if self.rng.chance(50) {
            self.push(Event::Power);
        } else {
            let s = self.slot();
            self.push(Event::Kill(s));
        }
        self.t += 1;
        let s = self.slot();
        self.push(Event::NewVolume(s));
        for s in self.order() {
            let after = self.rng.range(1, 10);
            self.restart(s, after);
        }
        self.t += 15;
        if self.rng.chance(30) {
            let v = s; // the initial volume of slot s has the slot's number
            self.push(Event::Destroy(v));
        }
    }

    /// `docker service scale db=1`: every task but one stops at once; Galera leaves the
    /// group cleanly, but InnoDB's shutdown outlasts the grace period and SIGKILL comes.
    /// The survivor takes writes, then its host dies; the others come back first.
    fn scale_down_cut(&mut self) {
        let order = self.order();
        for s in &order[1..] {
            self.push(Event::Stop(*s));
        }
        let cut = self.t + 3;
        for s in &order[1..] {
            self.at(cut, Event::Kill(*s));
        }
        self.t += 4;
        self.writes(3);
        self.t += 4;
        self.push(Event::Kill(order[0]));
        for s in &order[1..] {
            let after = self.rng.range(1, 10);
            self.restart(*s, after);
        }
        let after = self.rng.range(10, 60);
        self.restart(order[0], after);
        self.t += after;
    }

    /// A node killed, written past, restarted, and cut down again while it rejoins (the
    /// IST handshake, or its SST); then maybe every node loses power and a volume is lost.
    fn rejoin_cut(&mut self) {
        let s = self.slot();
        self.push(Event::Kill(s));
        self.writes(3);
        self.t += self.rng.range(2, 6);
        self.push(Event::Start(s));
        let cut = self.t + self.rng.range(1, 6);
        self.at(cut, Event::Kill(s));
        self.t = cut + self.rng.range(1, 5);
        self.push(Event::Start(s));
        if self.rng.chance(50) {
            self.t += self.rng.range(0, 3);
            self.power_cut();
            if self.rng.chance(50) {
                let o = self.slot();
                self.push(Event::NewVolume(o));
            }
        }
    }

    /// A listed node that never answers: a node whose galera-init cannot be read (another
    /// key, a clock off), or a dead task's address DNS keeps; then an outage.
    fn silence(&mut self) {
        if self.rng.chance(50) {
            let s = self.slot();
            self.push(Event::Silent(s));
        } else {
            self.push(Event::Ghost(true));
            if self.rng.chance(50) {
                let t = self.t + self.rng.range(10, 80);
                self.at(t, Event::Ghost(false));
            }
        }
        if self.rng.chance(50) {
            self.power_cut();
        } else {
            self.kill_all_but_one();
        }
    }

    /// A volume without galera-init's record (a restored backup): after a restart, or
    /// while its node is away and an override restarts the cluster without it.
    fn lost_record(&mut self) {
        let s = self.slot();
        self.push(Event::Kill(s));
        self.writes(2);
        if self.rng.chance(50) {
            let o = self.slot();
            if o != s {
                self.push(Event::Kill(o));
                self.t += 2;
                self.push(Event::ForceFile(o));
                self.push(Event::Start(o));
            }
        }
        self.t += self.rng.range(2, 15);
        // The initial volume of slot s has the slot's number.
        self.push(Event::LoseRecord(s));
        self.restart(s, 1);
        self.t += 10;
    }

    /// DNS that lags, peers that do not answer for a while.
    fn noise(&mut self) {
        for _ in 0..self.rng.range(1, 4) {
            let t = self.t;
            self.lag(t);
        }
        for _ in 0..self.rng.range(0, 2) {
            let s = self.slot();
            let n = self.rng.range(1, 5);
            self.push(Event::Mute(s, n));
        }
        if self.rng.chance(50) {
            self.power_cut();
        } else {
            self.kill_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_print_and_parse_back() {
        for seed in 0..200 {
            let s = generate(seed);
            assert_eq!(parse(&s.to_string()).unwrap(), s, "seed {seed}");
        }
    }
}
