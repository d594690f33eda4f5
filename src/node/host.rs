//! The real node's side of the [`Driver`]: what it reads from the datadir and how it
//! carries out each [`Effect`] on files, processes and the local server.
//!
//! Nothing here decides: every "whether" is the driver's. [`Host::once`] runs one start of
//! mariadbd from discovery to its exit; the monitor thread ([`spawn_watch`]) feeds the
//! driver a reading of the server's status twice a second and carries out what it asks.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::datadir::{self, FORCE_BOOTSTRAP_FILE, Paths, RunAs};
use crate::decision::ExpectedDonor;
use crate::discovery::{self, Discovered, Interfaces, dns::SystemResolver};
use crate::election::World;
use crate::evict;
use crate::fsutil::write_atomic;
use crate::galera::SstMethod;
use crate::galera::grastate::{self, GRASTATE_FILE, GraState};
use crate::galera::gvwstate::{self, GVWSTATE_FILE};
use crate::galera::{self, NodeConfig};
use crate::health;
use crate::peer::Learned;
use crate::record::Record;
use crate::server;
use crate::state::Shared;
use crate::supervisor::{Supervisor, Tick, Wake};

use super::NodeError;
use super::driver::{Driver, Effect, Exit, Found, Launch, Outcome, Reading};
use super::monitor::Stop;
use super::world::NodeWorld;

/// How often the election looks again while it waits.
const ELECTION_INTERVAL: Duration = Duration::from_millis(500);

/// The pause before a failed `--wsrep-recover` is tried again.
const RECOVER_RETRY: Duration = Duration::from_secs(2);

/// How often the monitor reads the server's status for a while after it is woken (an
/// eviction, a view about to change), so the verdicts follow the server at once.
const QUICK_READINGS_EVERY: Duration = Duration::from_millis(50);

/// For how long after a wake-up the monitor reads that often.
const QUICK_READINGS_FOR: Duration = Duration::from_secs(2);

/// How often a running node measures its data ([`NodeState::data_bytes`]).
const DATA_SIZE_EVERY: Duration = Duration::from_secs(10);

/// The driver, shared by the main thread (start-up, signals, the exit) and the monitor
/// thread (readings) while mariadbd runs.
pub type SharedDriver = Arc<Mutex<Driver>>;

fn lock(driver: &SharedDriver) -> MutexGuard<'_, Driver> {
    driver.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one start needs of the node.
pub struct Host<'a> {
    /// The settings.
    pub settings: &'a Settings,
    /// The image's paths.
    pub paths: &'a Paths,
    /// The account mariadbd runs as.
    pub run_as: Option<RunAs>,
    /// The node's served state.
    pub state: &'a Shared,
    /// The peers that asked this node for its state.
    pub learned: &'a Learned,
    /// Wakes the health thread.
    pub nudge: &'a health::peers::Nudge,
    /// Wakes the monitor for readings in quick succession (a view is about to change).
    pub reading: &'a health::peers::Nudge,
    /// `wsrep_notify_cmd`, when the node listens for notifications ([`crate::notify`]).
    pub notify_cmd: Option<String>,
    /// When galera-init started.
    pub started: Instant,
    /// mariadbd's arguments from the command line.
    pub mariadbd_args: &'a [OsString],
}

impl Host<'_> {
    fn world(&self, own: IpAddr) -> Result<NodeWorld, NodeError> {
        NodeWorld::new(self.settings, own, self.learned.clone(), self.started)
            .map_err(NodeError::Runtime)
    }

    /// Discover, inspect, elect, prepare, run mariadbd and supervise it until it exits.
    pub fn once(
        &self,
        sup: &mut Supervisor,
        resolver: &mut SystemResolver,
        driver: &SharedDriver,
    ) -> Result<Outcome, NodeError> {
        let Discovered { own, members } = discovery::discover(
            &self.settings.discovery_name,
            self.settings.node_address,
            self.settings.discovery_timeout,
            resolver,
            &Interfaces,
            &mut |d| sup.pause(d),
        )?;
        log::info!(
            "{} lists {} node(s); this node is {own}",
            self.settings.discovery_name,
            members.len()
        );
        self.state.update(|s| s.address = Some(own));
        let found = self.inspect()?;
        datadir::check_writable(&self.paths.datadir)?;
        let mut world = self.world(own)?;
        let mut todo: VecDeque<Effect> = lock(driver).inspected(found).into();
        loop {
            let mut again_now = false;
            while let Some(effect) = todo.pop_front() {
                match effect {
                    Effect::RecoverPosition => {
                        let position = self.recover(sup)?;
                        todo.extend(lock(driver).recovered(position));
                    }
                    Effect::StartServer {
                        launch,
                        start_position,
                    } => {
                        let mut args: Vec<OsString> = Vec::new();
                        if matches!(launch, Launch::Bootstrap(_)) {
                            args.push("--wsrep-new-cluster".into());
                        }
                        if let Some((uuid, seqno)) = start_position {
                            args.push(format!("--wsrep-start-position={uuid}:{seqno}").into());
                        }
                        args.extend(self.mariadbd_args.iter().cloned());
                        return self.supervise(sup, driver, own, &args);
                    }
                    Effect::BuildDatadir { .. } => {
                        again_now = true;
                        self.launching(sup, driver, &effect)?;
                    }
                    effect if lock(driver).electing() => self.apply(sup, &effect)?,
                    effect => self.launching(sup, driver, &effect)?,
                }
            }
            if !again_now {
                sup.pause(ELECTION_INTERVAL)?;
            }
            let force_file = self.paths.datadir.join(FORCE_BOOTSTRAP_FILE).exists();
            todo.extend(lock(driver).round(&mut world, force_file));
        }
    }

    /// Carries out an effect of a final plan: should it fail, or a stop signal come, the
    /// driver hears that mariadbd will not start (a pending bootstrap is settled).
    fn launching(
        &self,
        sup: &mut Supervisor,
        driver: &SharedDriver,
        effect: &Effect,
    ) -> Result<(), NodeError> {
        let result = self
            .apply(sup, effect)
            .and_then(|()| sup.check_stop().map_err(NodeError::from));
        if result.is_err() && !lock(driver).electing() {
            self.not_started(driver);
        }
        result
    }

    /// mariadbd will not run this time: the driver settles what it prepared.
    fn not_started(&self, driver: &SharedDriver) {
        let exit = Exit {
            code: None,
            grastate: self.read_grastate(),
            stop_received: true,
        };
        let (effects, _) = lock(driver).exited(&exit);
        self.apply_logged(&effects);
    }

    /// Carries out effects after the fact (a stop under way, mariadbd gone): what cannot
    /// be done is only logged.
    fn apply_logged(&self, effects: &[Effect]) {
        for e in effects {
            if let Err((path, e)) = self.apply_common(e) {
                log::warn!("cannot change {}: {e}", path.display());
            }
        }
    }

    /// What the datadir holds, as read from disk. A `gvwstate.dat` that cannot be parsed
    /// is moved out of Galera's way (pc.recovery must not read it either).
    fn inspect(&self) -> Result<Found, NodeError> {
        let listing = datadir::read(&self.paths.datadir)?;
        let record = Record::load(&self.paths.datadir).map_err(|e| e.to_string());
        let view_path = self.paths.datadir.join(GVWSTATE_FILE);
        let view = std::fs::read(&view_path).ok().and_then(|bytes| {
            let view = gvwstate::parse(&String::from_utf8_lossy(&bytes));
            if view.is_none() {
                let kept = view_path.with_extension("dat.damaged");
                let moved = std::fs::rename(&view_path, &kept).is_ok();
                log::warn!(
                    "{} cannot be parsed: ignored{} (pc.recovery is only a shortcut; the \
                     election decides instead)",
                    view_path.display(),
                    if moved {
                        format!(" and kept as {}", kept.display())
                    } else {
                        String::new()
                    }
                );
            }
            view
        });
        Ok(Found {
            listing,
            record,
            view,
        })
    }

    /// `mariadbd --wsrep-recover`, tried twice more when it fails: what made it fail (a
    /// file a process that has just died still held) may be gone a moment later.
    fn recover(&self, sup: &mut Supervisor) -> Result<Option<(String, i64)>, NodeError> {
        if let Some(r) = self.run_as {
            datadir::prepare(self.paths, r)?;
        }
        let method = self.settings.sst_method.default_method();
        let mut attempt = 1;
        loop {
            match datadir::recover::recover_position(sup, self.run_as, method) {
                Err(datadir::recover::RecoverError::Failed { code, reason }) if attempt < 3 => {
                    log::warn!(
                        "mariadbd --wsrep-recover failed (exit code {code}): {reason}; trying \
                         again in {}s",
                        RECOVER_RETRY.as_secs()
                    );
                    sup.pause(RECOVER_RETRY)?;
                    attempt += 1;
                }
                other => return Ok(other?),
            }
        }
    }

    /// Carries out an effect on the main thread.
    fn apply(&self, sup: &mut Supervisor, effect: &Effect) -> Result<(), NodeError> {
        let paths = self.paths;
        match effect {
            Effect::BuildDatadir { clear_first } => {
                self.prepare_datadir()?;
                if *clear_first {
                    log::warn!(
                        "an earlier initialisation or state transfer in {} did not finish: \
                         starting afresh",
                        paths.datadir.display()
                    );
                    datadir::clear_interrupted(&paths.datadir)?;
                }
                datadir::init::build(sup, paths, self.settings, self.run_as)?;
            }
            Effect::InitDatadir { built, clear_first } => {
                self.prepare_datadir()?;
                if !built {
                    if *clear_first {
                        log::warn!(
                            "an earlier initialisation or state transfer in {} did not \
                             finish: starting afresh",
                            paths.datadir.display()
                        );
                        datadir::clear_interrupted(&paths.datadir)?;
                    }
                    datadir::init::build(sup, paths, self.settings, self.run_as)?;
                }
                datadir::init::commit(&paths.datadir)?;
            }
            Effect::ClearDatadir => datadir::clear_interrupted(&paths.datadir)?,
            Effect::WriteConfig {
                members,
                donors,
                sst_method,
            } => {
                self.prepare_datadir()?;
                self.write_config(members, donors.clone(), *sst_method)?;
            }
            Effect::ReserveDonor(donor) => self.reserve_donor(sup, donor)?,
            Effect::Refuse(reason) => return Err(NodeError::Refused(reason.clone())),
            other => self
                .apply_common(other)
                .map_err(|(path, source)| NodeError::Write {
                    path: path.display().to_string(),
                    source,
                })?,
        }
        Ok(())
    }

    fn prepare_datadir(&self) -> Result<(), NodeError> {
        if let Some(r) = self.run_as {
            datadir::prepare(self.paths, r)?;
        }
        Ok(())
    }

    /// Carries out an effect either thread may meet: files in the datadir, the served
    /// state, a donor's release. The file that could not be written is returned with the
    /// error; a record that cannot be written is only a warning (the node runs on).
    fn apply_common(&self, effect: &Effect) -> Result<(), (PathBuf, std::io::Error)> {
        Effects {
            datadir: &self.paths.datadir,
            state: self.state,
            http_port: self.settings.http_port,
            key: self.settings.cluster_key.as_ref(),
        }
        .apply(effect)
    }

    fn read_grastate(&self) -> Option<GraState> {
        read_grastate(&self.paths.datadir)
    }

    fn write_config(
        &self,
        members: &[IpAddr],
        donors: Vec<String>,
        sst_method: SstMethod,
    ) -> Result<(), NodeError> {
        let own = self
            .state
            .get()
            .address
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let node_name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| own.to_string());
        let mut members = members.to_vec();
        if !members.contains(&own) {
            members.push(own);
        }
        let text = galera::render(&NodeConfig {
            cluster_name: self.settings.cluster_name.clone(),
            members,
            node_address: own,
            node_name,
            sst_method,
            donors,
            provider_options: self.settings.provider_options.clone(),
            hidden_dirs: vec![datadir::JOIN_MARK.to_string()],
            notify_cmd: self.notify_cmd.clone(),
        });
        let path = &self.paths.galera_config;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        write_atomic(path, text.as_bytes(), 0o644).map_err(|source| NodeError::Write {
            path: path.display().to_string(),
            source,
        })?;
        log::info!("wrote {}", path.display());
        Ok(())
    }

    /// Asks the donor Galera is expected to pick to leave the read pool, and gives the
    /// proxies what is left of `DRAIN_DELAY` since the donor last told one that it serves,
    /// before the server starts and the donor turns Donor/Desynced: reads never reach a
    /// donor that lags.
    fn reserve_donor(&self, sup: &mut Supervisor, donor: &ExpectedDonor) -> Result<(), NodeError> {
        let settings = self.settings;
        let own = self.state.get().address;
        let ExpectedDonor {
            name,
            address,
            ist,
            blocks,
        } = donor;
        let how = if *ist { "IST" } else { "SST" };
        match crate::peer::client::reserve_donor(
            *address,
            settings.http_port,
            own.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            settings.cluster_key.as_ref(),
            crate::peer::client::Transfer { blocks: *blocks },
        ) {
            Ok(r) => {
                let pause = r.pause(settings.drain_delay);
                log::info!(
                    "asked {name} ({address}), the expected {how} donor, to leave the read pool \
                     while it serves this node; {}",
                    match r.served_ms_ago {
                        None => "no proxy was told it serves: starting at once".to_string(),
                        Some(ms) => format!(
                            "it last told a proxy it serves {:.1}s ago: waiting {:.1}s (what is \
                             left of DRAIN_DELAY) for the proxies to see it",
                            ms as f32 / 1000.0,
                            pause.as_secs_f32()
                        ),
                    }
                );
                sup.pause(pause)?;
            }
            Err(e) => log::warn!("cannot reserve {name} ({address}) as the {how} donor: {e}"),
        }
        Ok(())
    }

    /// Starts mariadbd, watches it until it exits, and asks the driver what comes next.
    fn supervise(
        &self,
        sup: &mut Supervisor,
        driver: &SharedDriver,
        own: IpAddr,
        args: &[OsString],
    ) -> Result<Outcome, NodeError> {
        let mut cmd = server::command(self.run_as, args);
        cmd.stderr(std::process::Stdio::piped());
        let (pid, stderr) = match sup.spawn_with_stderr(&mut cmd) {
            Ok(spawned) => spawned,
            Err(source) => {
                self.not_started(driver);
                return Err(NodeError::Spawn { source });
            }
        };
        let errors = stderr.map(server::relay).unwrap_or_default();
        log::info!(
            "started mariadbd (pid {pid}) {:.1}s after galera-init",
            self.started.elapsed().as_secs_f32()
        );
        self.state.update(|s| s.mariadbd_starts += 1);
        let world = self.world(own)?;
        lock(driver).server_started(world.now());
        let watch = match spawn_watch(
            driver.clone(),
            world,
            Watched {
                state: self.state.clone(),
                socket: self.paths.socket.clone(),
                datadir: self.paths.datadir.clone(),
                nudge: self.nudge.clone(),
                reading: self.reading.clone(),
                http_port: self.settings.http_port,
                key: self.settings.cluster_key.clone(),
            },
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                log::error!("cannot start the monitor: {e}");
                None
            }
        };
        sup.set_drain_delay(self.settings.drain_delay);
        let code = sup.supervise_with(pid, server::MARIADBD, &mut |wake| {
            if wake == Wake::StopSignal {
                let mut held = lock(driver);
                let effects = held.stop_signal(&self.state.get());
                self.apply_logged(&effects);
            }
            match watch.as_ref().and_then(|w| w.stop_request()) {
                Some(Stop::Term) => Tick::Stop,
                Some(Stop::Kill) => Tick::Kill,
                None => Tick::Continue,
            }
        });
        if code != 0 && self.settings.health.evict_on_proof {
            self.announce_exit(code);
        }
        let answered = watch.as_ref().is_some_and(|w| w.answered());
        if let Some(w) = watch {
            w.stop();
        }
        if code != 0 && code < 128 && !answered {
            let said = errors.lines();
            log::error!(
                "mariadbd stopped with exit code {code} before it ever served{}{}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", said.join(" / "))
                },
                "; if that names a setting, it is in WSREP_PROVIDER_OPTIONS, a file in \
                 /etc/mysql/conf.d or the service's arguments"
            );
        }
        let exit = Exit {
            code: Some(code),
            grastate: self.read_grastate(),
            stop_received: sup.stop_received(),
        };
        let (effects, outcome) = lock(driver).exited(&exit);
        self.apply_logged(&effects);
        if let Some(g) = &exit.grastate {
            log::info!(
                "grastate.dat: cluster {} seqno {} safe_to_bootstrap {}",
                g.uuid,
                g.seqno,
                g.safe_to_bootstrap as u8
            );
        }
        Ok(outcome)
    }
}

impl Host<'_> {
    /// Tells the other nodes that this node's mariadbd died, before anything else is done
    /// ([`crate::evict`]): the members of its component evict its gcomm UUID at once.
    fn announce_exit(&self, code: u8) {
        let s = self.state.get();
        let (Some(uuid), Some(own)) = (s.wsrep_gcomm_uuid.clone(), s.address) else {
            return;
        };
        let mut peers = s.last_members.clone();
        peers.extend(s.known.iter().copied());
        peers.sort();
        peers.dedup();
        peers.retain(|a| *a != own);
        if peers.is_empty() {
            log::info!("mariadbd died; this node knows no other member to tell");
            return;
        }
        let how = if code >= 128 {
            format!("was killed by signal {}", code - 128)
        } else {
            format!("exited with code {code}")
        };
        let notice = evict::Notice {
            gcomm_uuid: uuid.clone(),
            how: how.clone(),
        };
        let told = evict::act::tell_peers(
            &peers,
            self.settings.http_port,
            own,
            self.settings.cluster_key.as_ref(),
            &notice,
        );
        let took: Vec<String> = told
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(a, _)| a.to_string())
            .collect();
        log::warn!(
            "mariadbd {how}: told {} of {} node(s) ({}) that its gcomm UUID {uuid} is dead, \
             for them to evict it at once",
            took.len(),
            told.len(),
            if took.is_empty() {
                "none took it".to_string()
            } else {
                took.join(", ")
            }
        );
    }
}

/// `grastate.dat` in `datadir`, when it can be read and parsed.
fn read_grastate(datadir: &Path) -> Option<GraState> {
    std::fs::read_to_string(datadir.join(GRASTATE_FILE))
        .ok()
        .and_then(|t| grastate::parse(&t).ok())
}

/// The effects on the datadir's files and on the served state, which both threads carry
/// out.
struct Effects<'a> {
    datadir: &'a Path,
    state: &'a Shared,
    http_port: u16,
    key: Option<&'a crate::peer::auth::ClusterKey>,
}

impl Effects<'_> {
    fn apply(&self, effect: &Effect) -> Result<(), (PathBuf, std::io::Error)> {
        let at = |name: &str| self.datadir.join(name);
        let fail = |path: PathBuf| move |e: std::io::Error| (path, e);
        match effect {
            Effect::SaveRecord(record) => {
                if let Err(e) = record.save(self.datadir) {
                    log::warn!("cannot write {}: {e}", Record::path(self.datadir).display());
                }
            }
            Effect::SafeToBootstrap(on) => {
                let path = at(GRASTATE_FILE);
                grastate::set_safe_to_bootstrap(&path, *on).map_err(fail(path.clone()))?;
                if *on {
                    log::warn!("set safe_to_bootstrap: 1 in {}", path.display());
                }
            }
            Effect::RepairGrastate { uuid } => {
                let kept = datadir::replace_damaged_grastate(self.datadir, uuid)
                    .map_err(|e| (at(GRASTATE_FILE), std::io::Error::other(e.to_string())))?;
                log::warn!(
                    "{} rewritten from InnoDB's position (cluster {uuid}); the damaged file is \
                     kept as {}",
                    at(GRASTATE_FILE).display(),
                    kept.display()
                );
            }
            Effect::RemoveStaleMarker => remove_file(&at(datadir::SST_IN_PROGRESS))?,
            Effect::RemoveForceFile => {
                let path = at(FORCE_BOOTSTRAP_FILE);
                if path.exists() {
                    remove_file(&path)?;
                    log::warn!("removed {} (it applies once)", path.display());
                }
            }
            Effect::ForgetSavedView => {
                let path = at(GVWSTATE_FILE);
                if path.exists() {
                    remove_file(&path)?;
                    log::info!(
                        "removed {}: this node joins a running component, its saved view is \
                         over",
                        path.display()
                    );
                }
            }
            Effect::MarkJoin => {
                let path = at(datadir::JOIN_MARK);
                std::fs::create_dir_all(&path).map_err(fail(path.clone()))?;
            }
            Effect::UnmarkJoin => {
                let path = at(datadir::JOIN_MARK);
                if let Err(e) = std::fs::remove_dir(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err((path, e));
                }
            }
            Effect::Publish(p) => self.state.update(|s| p.apply(s)),
            Effect::ReleaseDonor(donor) => release_donor(donor.clone(), self),
            other => log::error!("not an effect for this thread: {other:?}"),
        }
        Ok(())
    }
}

fn remove_file(path: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err((path.to_path_buf(), e)),
        _ => Ok(()),
    }
}

/// Tells the reserved donor, in the background, that this node is Synced: it serves again
/// at once instead of when its reservation lapses (a writer reserved as an IST donor would
/// otherwise stay out of `/master` for it).
fn release_donor(donor: ExpectedDonor, fx: &Effects) {
    let ExpectedDonor { name, address, .. } = donor;
    let Some(own) = fx.state.get().address else {
        return;
    };
    let (port, key) = (fx.http_port, fx.key.cloned());
    std::thread::spawn(move || {
        match crate::peer::client::release_donor(address, port, own, key.as_ref()) {
            Ok(()) => log::info!("Synced: released {name} ({address}) from its donor reservation"),
            Err(e) => log::warn!(
                "cannot release {name} ({address}) from its donor reservation ({e}); it lapses \
                 by itself"
            ),
        }
    });
}

/// What the monitor thread needs.
struct Watched {
    state: Shared,
    socket: PathBuf,
    datadir: PathBuf,
    nudge: health::peers::Nudge,
    reading: health::peers::Nudge,
    http_port: u16,
    key: Option<crate::peer::auth::ClusterKey>,
}

/// The monitor thread; stop it with [`Watch::stop`].
struct Watch {
    stop: Arc<AtomicBool>,
    reading: health::peers::Nudge,
    request: Arc<AtomicU8>,
    answered: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// What the driver asked the supervisor to do to mariadbd, if anything.
    fn stop_request(&self) -> Option<Stop> {
        match self.request.load(Ordering::SeqCst) {
            1 => Some(Stop::Term),
            2 => Some(Stop::Kill),
            _ => None,
        }
    }

    /// Whether the server ever answered a reading.
    fn answered(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// Stops the thread and waits for it.
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.reading.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the monitor thread: twice a second it reads the `wsrep_%` status, hands the
/// reading to the driver, and carries out what the driver asks.
fn spawn_watch(
    driver: SharedDriver,
    mut world: impl World + Send + 'static,
    ctx: Watched,
) -> std::io::Result<Watch> {
    let stop = Arc::new(AtomicBool::new(false));
    let request = Arc::new(AtomicU8::new(0));
    let answered = Arc::new(AtomicBool::new(false));
    let (stopped, req, ever) = (stop.clone(), request.clone(), answered.clone());
    let reading = ctx.reading.clone();
    let thread = std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || {
            let mut poller = crate::peer::status::Poller::new(ctx.socket.clone());
            let fx = Effects {
                datadir: &ctx.datadir,
                state: &ctx.state,
                http_port: ctx.http_port,
                key: ctx.key.as_ref(),
            };
            let mut synced_at: Option<Instant> = None;
            let mut measured_at: Option<Instant> = None;
            let mut quick_until: Option<Instant> = None;
            while !stopped.load(Ordering::SeqCst) {
                let vars = poller.read();
                if vars.is_some() {
                    ever.store(true, Ordering::SeqCst);
                }
                // What a joiner's SST from this node would copy, for its choice of method.
                if vars.is_some() && measured_at.is_none_or(|t| t.elapsed() >= DATA_SIZE_EVERY) {
                    let bytes = datadir::data_bytes(&ctx.datadir);
                    ctx.state.update(|s| s.data_bytes = Some(bytes));
                    measured_at = Some(Instant::now());
                }
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let conf_before = ctx.state.get().wsrep_cluster_conf_id;
                let sst_marker = ctx.datadir.join(datadir::SST_IN_PROGRESS).exists();
                ctx.state.update(|s| {
                    crate::peer::status::apply(s, vars.as_ref());
                    s.sst_in_progress = sst_marker;
                    synced_at = if s.is_synced() {
                        Some(synced_at.unwrap_or_else(Instant::now))
                    } else {
                        None
                    };
                    s.synced_secs = synced_at.map(|t| t.elapsed().as_secs());
                });
                let status = ctx.state.get();
                if status.wsrep_cluster_conf_id != conf_before {
                    ctx.nudge.wake();
                }
                let reading = Reading {
                    status,
                    answered: vars.is_some(),
                    force_file: ctx.datadir.join(FORCE_BOOTSTRAP_FILE).exists(),
                    sst_marker,
                    record_file: Record::path(&ctx.datadir).exists(),
                };
                // The files are written while the driver is held: a record written by the
                // main thread meanwhile (a stop signal) is never overwritten by an older one.
                let mut held = lock(&driver);
                let effects = held.tick(&mut world, &reading);
                let mut pc_bootstrap = false;
                for effect in &effects {
                    match effect {
                        Effect::PcBootstrap(_) => pc_bootstrap = true,
                        Effect::StopServer(Stop::Term) => req.store(1, Ordering::SeqCst),
                        Effect::StopServer(Stop::Kill) => req.store(2, Ordering::SeqCst),
                        other => {
                            if let Err((path, e)) = fx.apply(other) {
                                log::warn!("cannot change {}: {e}", path.display());
                            }
                        }
                    }
                }
                drop(held);
                if pc_bootstrap && let Err(e) = poller.pc_bootstrap() {
                    log::error!("pc.bootstrap failed: {e}");
                }
                let quick = quick_until.is_some_and(|t| Instant::now() < t);
                let pause = if quick {
                    QUICK_READINGS_EVERY
                } else {
                    crate::peer::status::INTERVAL
                };
                if ctx.reading.sleep(pause) {
                    quick_until = Some(Instant::now() + QUICK_READINGS_FOR);
                }
            }
        })?;
    Ok(Watch {
        stop,
        reading,
        request,
        answered,
        thread: Some(thread),
    })
}
