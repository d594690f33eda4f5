//! A Galera node from start to finish: serve state, discover, recover, elect, prepare, start
//! and supervise mariadbd. Each step is one call into the module that owns it; this file only
//! sequences them and says in the log what was decided and why. The decisions themselves
//! are pure: [`startup`] (what the datadir and the record say, what a plan changes) and
//! [`monitor`] (what a running node does); [`world`] is the real DNS, peers and clock.

use std::ffi::OsString;
use std::net::{IpAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::config::{Settings, SstMethod};
use crate::datadir::{self, DataState, FORCE_BOOTSTRAP_FILE, Paths, RunAs};
use crate::decision::{ExpectedDonor, Override, Params, Plan};
use crate::discovery::{self, Discovered, DiscoveryError, Interfaces, dns::SystemResolver};
use crate::election::{Election, World};
use crate::fsutil::write_atomic;
use crate::galera::gvwstate::{self, GVWSTATE_FILE};
use crate::galera::{self, NodeConfig, grastate};
use crate::health::{self, peers::SharedWatch};
use crate::peer::{self, Learned};
use crate::record::{self, Record};
use crate::server;
use crate::state::{Phase, Shared};
use crate::supervisor::{Stopped, Supervisor, Tick, exit};

pub mod monitor;
pub mod startup;
pub mod world;

use monitor::{Monitor, Started, Stop};
use startup::Disk;
use world::NodeWorld;

/// How often the election looks again while it waits.
const ELECTION_INTERVAL: Duration = Duration::from_millis(500);

/// Why a node could not start. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A program or library the node needs is not installed.
    #[error("{what} is not installed ({detail}): this image needs Debian's {package} package")]
    NotInstalled {
        /// What is missing.
        what: &'static str,
        /// Where it was looked for.
        detail: String,
        /// The package that holds it.
        package: &'static str,
    },
    /// The image has no `mysql` user.
    #[error("there is no 'mysql' user: this image needs Debian's mariadb-server package")]
    NoMysqlUser,
    /// The state port cannot be served.
    #[error("cannot serve the node state on port {port} (HTTP_PORT): {source}")]
    Listen {
        /// The port.
        port: u16,
        /// The error.
        source: std::io::Error,
    },
    /// The resolver's runtime could not be created.
    #[error("cannot create the DNS resolver's runtime: {0}")]
    Runtime(std::io::Error),
    /// DNS never listed this node, or a stop signal came.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The datadir cannot be used.
    #[error(transparent)]
    Datadir(#[from] datadir::DatadirError),
    /// Initialising the datadir failed.
    #[error("initialising the datadir failed: {0}")]
    Init(#[from] datadir::init::InitError),
    /// Recovering the position failed.
    #[error("recovering the position failed: {0}")]
    Recover(#[from] datadir::recover::RecoverError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The decision refused to start this node.
    #[error("refusing to start: {0}")]
    Refused(String),
    /// A stop signal ended start-up.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// mariadbd could not be executed.
    #[error("cannot run {}: {source}", server::MARIADBD)]
    Spawn {
        /// The exec error.
        source: std::io::Error,
    },
}

impl NodeError {
    /// The exit code for this error: 128+n for a stop signal, 127/126 when mariadbd cannot
    /// be run, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::Stopped(s) | NodeError::Discovery(DiscoveryError::Stopped(s)) => {
                s.exit_code()
            }
            NodeError::Init(e) => e.stopped().map_or(1, Stopped::exit_code),
            NodeError::Recover(datadir::recover::RecoverError::Helper(
                crate::supervisor::HelperError::Stopped(s),
            )) => s.exit_code(),
            NodeError::Spawn { source } => exit::code_for_spawn_error(source),
            _ => 1,
        }
    }
}

/// Runs a node until mariadbd exits; returns the exit code.
pub fn run(
    sup: &mut Supervisor,
    settings: &Settings,
    paths: &Paths,
    mariadbd_args: &[OsString],
) -> Result<u8, NodeError> {
    let started = Instant::now();
    let run_as = mysql_user()?;
    check_image()?;
    let state = Shared::default();
    let node_name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    state.update(|s| s.node_name = node_name.clone());
    let learned = Learned::default();
    let nudge = health::peers::Nudge::default();
    serve(settings, &state, &learned, &nudge, sup.stop_flag())?;
    let mut resolver = SystemResolver::new().map_err(NodeError::Runtime)?;
    let start = Start {
        settings,
        paths,
        run_as,
        state: &state,
        learned: &learned,
        nudge: &nudge,
        started,
    };
    let mut allow_pc_recovery = true;
    loop {
        match start.once(sup, &mut resolver, mariadbd_args, allow_pc_recovery)? {
            Outcome::Exited(code) => return Ok(code),
            Outcome::Elect => {
                log::warn!("mariadbd was stopped by this node's monitor: electing again");
                allow_pc_recovery = false;
                state.update(|s| {
                    *s = crate::state::NodeState {
                        node_name: s.node_name.clone(),
                        mariadbd_starts: s.mariadbd_starts,
                        ..Default::default()
                    }
                });
            }
        }
    }
}

/// How one start of mariadbd ended.
enum Outcome {
    /// mariadbd exited (on a signal from outside, or on its own): galera-init exits too.
    Exited(u8),
    /// The monitor stopped mariadbd (no Primary component after a start to join or to let
    /// pc.recovery restore the saved view, or this node's history was given up): elect
    /// again.
    Elect,
}

/// What one start needs.
struct Start<'a> {
    settings: &'a Settings,
    paths: &'a Paths,
    run_as: Option<RunAs>,
    state: &'a Shared,
    learned: &'a Learned,
    nudge: &'a health::peers::Nudge,
    started: Instant,
}

fn params(settings: &Settings) -> Params {
    Params {
        sst: settings.sst_method,
        cluster_size: settings.cluster_size,
        settle: settings.settle_window,
        outage_timeout: settings.outage_timeout,
    }
}

impl Start<'_> {
    fn world(&self, own: IpAddr) -> Result<NodeWorld, NodeError> {
        NodeWorld::new(self.settings, own, self.learned.clone(), self.started)
            .map_err(NodeError::Runtime)
    }

    /// Discover, elect, prepare, run mariadbd and supervise it until it exits.
    fn once(
        &self,
        sup: &mut Supervisor,
        resolver: &mut SystemResolver,
        mariadbd_args: &[OsString],
        allow_pc_recovery: bool,
    ) -> Result<Outcome, NodeError> {
        let (settings, paths, run_as, state) = (self.settings, self.paths, self.run_as, self.state);
        let Discovered { own, members } = discover(sup, settings, resolver)?;
        let found = members.len();
        log::info!(
            "{} lists {} node(s); this node is {own}",
            settings.discovery_name,
            found
        );
        state.update(|s| s.address = Some(own));

        // A grastate.dat that cannot be parsed, beside InnoDB's files: a power loss cut it
        // short while Galera rewrote it in place. InnoDB still knows the position.
        let mut damaged = None;
        let data = match datadir::inspect(&paths.datadir) {
            Err(datadir::DatadirError::Grastate { path, problem })
                if datadir::has_innodb(&paths.datadir) =>
            {
                log::warn!(
                    "{} cannot be parsed ({problem}), as after a power loss while Galera \
                     rewrote it: recovering the position from InnoDB instead",
                    path.display()
                );
                damaged = Some((path, problem));
                DataState::Existing {
                    grastate: Some(grastate::GraState {
                        uuid: grastate::NIL_UUID.into(),
                        seqno: -1,
                        safe_to_bootstrap: false,
                    }),
                }
            }
            other => other?,
        };
        if data == DataState::Interrupted && paths.datadir.join(datadir::SST_IN_PROGRESS).exists() {
            log::warn!(
                "a state transfer into this node never finished ({} is still there): what it \
                 left is not data; it is cleared and the node receives a full transfer again",
                datadir::SST_IN_PROGRESS
            );
        }
        log::info!("datadir {}: {}", paths.datadir.display(), describe(&data));
        datadir::check_writable(&paths.datadir)?;
        let has_data = !data.is_fresh();
        // A record without data belongs to data that is gone (an SST that never finished).
        let mut record = if has_data {
            load_record(&paths.datadir)
        } else {
            Record::new(record::random_id())
        };
        let mut disk = read_disk(
            sup,
            run_as,
            settings.sst_method.default_method(),
            paths,
            &data,
            state,
        )?;
        if let Some((path, problem)) = damaged {
            let Some((uuid, _)) = disk
                .recovered
                .as_ref()
                .filter(|(u, _)| u != grastate::NIL_UUID)
            else {
                return Err(NodeError::Refused(format!(
                    "{} cannot be parsed ({problem}) and InnoDB holds no position either \
                     (mariadbd --wsrep-recover found none): restore the file from a backup, \
                     or empty the volume to rejoin by SST",
                    path.display()
                )));
            };
            let kept = datadir::replace_damaged_grastate(&paths.datadir, uuid)?;
            log::warn!(
                "{} rewritten from InnoDB's position (cluster {uuid}); the damaged file is \
                 kept as {}",
                path.display(),
                kept.display()
            );
            disk.grastate = Some(grastate::GraState {
                uuid: uuid.clone(),
                seqno: -1,
                safe_to_bootstrap: false,
            });
        }
        if has_data && record.settle_at_start(disk.position()) {
            clear_unearned_flag(paths);
            if let Some(g) = &mut disk.grastate {
                g.safe_to_bootstrap = false;
            }
        }
        let env_override = record.arm_env_override(settings.force_bootstrap);
        if settings.force_bootstrap && !env_override {
            log::warn!(
                "FORCE_BOOTSTRAP=yes was used once already on this volume and is ignored: \
                 remove it from the service (docker service update --env-rm FORCE_BOOTSTRAP)"
            );
        }
        if has_data {
            save_record(&paths.datadir, &record);
        }
        state.update(|s| {
            let name = std::mem::take(&mut s.node_name);
            *s = startup::own_state(&disk, &record);
            s.node_name = name;
            s.address = Some(own);
        });

        let mut world = self.world(own)?;
        let force_file = paths.datadir.join(FORCE_BOOTSTRAP_FILE);
        // The node expected to bootstrap a fresh cluster builds its datadir while the
        // election settles; it stays marked unfinished (no data) until the bootstrap.
        let mut prepared = false;
        let mut prepare = |sup: &mut Supervisor| -> Result<bool, NodeError> {
            if prepared || !data.is_fresh() {
                return Ok(false);
            }
            prepared = true;
            log::info!(
                "this node has the lowest address of a fresh cluster: initialising its \
                 datadir while the election settles (it is committed only if this node \
                 bootstraps)"
            );
            if let Some(r) = run_as {
                datadir::prepare(paths, r)?;
            }
            datadir::init::build(sup, paths, settings, run_as, &data)?;
            Ok(true)
        };
        let (plan, known) = elect(
            sup,
            params(settings),
            &mut world,
            state,
            Overrides {
                env: env_override,
                file: &force_file,
            },
            allow_pc_recovery,
            Meanwhile {
                record: has_data.then_some((&mut record, paths.datadir.as_path())),
                prepare: &mut prepare,
            },
        )?;
        let overridden = state.get().override_requested.is_on();
        let prep = startup::prepare(&plan, &mut record, &state.get(), overridden, env_override);
        let (bootstrap, members, donors, expected_donor, sst_method, started_as) = match plan {
            // Every node the election knew of goes into the gcomm:// list.
            Plan::Bootstrap { .. } => (
                true,
                known,
                Vec::new(),
                None,
                settings.sst_method.default_method(),
                Started::Bootstrap,
            ),
            Plan::Join {
                members,
                donors,
                expected_donor,
                sst_method,
                pc_recovery,
                lineage,
                ..
            } => (
                false,
                members,
                donors,
                expected_donor,
                sst_method,
                Started::Join {
                    pc_recovery,
                    lineage,
                },
            ),
            Plan::Refuse { reason } => return Err(NodeError::Refused(reason)),
            Plan::Wait { .. } => unreachable!("elect() returns only final plans"),
        };
        state.update(|s| {
            s.phase = if bootstrap {
                Phase::Bootstrapping
            } else {
                Phase::Joining
            };
            s.override_requested = Override::None;
            // Only an electing node tells others whom it knows: a list that stops being
            // refreshed would keep gone addresses alive.
            s.known.clear();
        });
        if prep.consume_override && force_file.exists() {
            let _ = std::fs::remove_file(&force_file);
            log::warn!("removed {} (it applies once)", force_file.display());
        }
        if prep.forget_saved_view {
            let path = paths.datadir.join(GVWSTATE_FILE);
            match std::fs::remove_file(&path) {
                Ok(()) => log::info!(
                    "removed {}: this node joins a running component, its saved view is over",
                    path.display()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(NodeError::Write {
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
        sup.check_stop()?;

        if let Some(r) = run_as {
            datadir::prepare(paths, r)?;
        }
        write_config(paths, settings, own, &members, donors, sst_method)?;
        // The donor reserved for this node, released once it is Synced.
        let mut reserved = match expected_donor {
            Some(donor) => reserve_donor(sup, settings, own, &donor)?.then_some(donor),
            None => None,
        };
        match (&data, bootstrap) {
            (DataState::Fresh | DataState::Interrupted, true) => {
                if prepared {
                    datadir::init::commit(&paths.datadir)?;
                } else {
                    datadir::init::initialize(sup, paths, settings, run_as, &data)?;
                }
                save_record(&paths.datadir, &record);
            }
            // A joiner receives everything by SST; what an unfinished (or a prepared) init
            // left is not data. Its record goes first: the SST keeps it, so that a crash
            // right after the transfer does not cost the volume id the other nodes know it
            // by.
            (DataState::Fresh | DataState::Interrupted, false) => {
                if prepared || data == DataState::Interrupted {
                    datadir::clear_interrupted(&paths.datadir)?;
                }
                save_record(&paths.datadir, &record);
            }
            (DataState::Existing { .. }, _) => {
                // The record says the bootstrap is pending before the flag is written: a
                // crash from here on leaves a flag the next start knows it must clear.
                save_record(&paths.datadir, &record);
                if prep.write_flag {
                    let path = paths.datadir.join("grastate.dat");
                    grastate::set_safe_to_bootstrap(&path, true).map_err(|source| {
                        NodeError::Write {
                            path: path.display().to_string(),
                            source,
                        }
                    })?;
                    log::warn!("set safe_to_bootstrap: 1 in {}", path.display());
                }
            }
        }
        if let Err(stop) = sup.check_stop() {
            settle_bootstrap(paths, &mut record);
            return Err(stop.into());
        }

        // From here on this node's data changes: what it said about its last stop is old.
        if record.left_while_others {
            record.left_while_others = false;
            save_record(&paths.datadir, &record);
        }
        let mut args: Vec<OsString> = Vec::new();
        if bootstrap {
            args.push("--wsrep-new-cluster".into());
        }
        // grastate.dat says -1: start from the recovered position, so that a bootstrap keeps
        // the cluster's history (same UUID) and a joiner can catch up by IST.
        if let Some((uuid, seqno)) = disk.recovered.as_ref().filter(|(_, s)| *s >= 0) {
            args.push(format!("--wsrep-start-position={uuid}:{seqno}").into());
        }
        args.extend(mariadbd_args.iter().cloned());
        let pid = match sup.spawn(&mut server::command(run_as, &args)) {
            Ok(pid) => pid,
            Err(source) => {
                settle_bootstrap(paths, &mut record);
                return Err(NodeError::Spawn { source });
            }
        };
        log::info!(
            "started mariadbd (pid {pid}) {:.1}s after galera-init",
            self.started.elapsed().as_secs_f32()
        );
        state.update(|s| s.mariadbd_starts += 1);
        let monitor = Monitor::new(
            params(settings),
            record.clone(),
            started_as,
            world.now(),
            settings.pc_recovery_timeout,
            has_data || bootstrap,
        );
        let handle = match monitor::spawn(
            monitor,
            self.world(own)?,
            monitor::Context {
                state: state.clone(),
                socket: paths.socket.clone(),
                datadir: paths.datadir.clone(),
                nudge: self.nudge.clone(),
            },
        ) {
            Ok(h) => Some(h),
            Err(e) => {
                log::error!("cannot start the monitor: {e}");
                None
            }
        };
        sup.set_drain_delay(settings.drain_delay);
        let code = sup.supervise_with(pid, server::MARIADBD, &mut || {
            if reserved.is_some() && state.get().is_synced() {
                release_donor(reserved.take(), settings, own);
            }
            match handle.as_ref().and_then(|h| h.stop_request()) {
                Some(Stop::Term) => Tick::Stop,
                Some(Stop::Kill) => Tick::Kill,
                None => Tick::Continue,
            }
        });
        let gave_up = handle.as_ref().is_some_and(|h| h.stop_request().is_some());
        let mut with_others = false;
        if let Some(m) = handle.and_then(|h| h.stop()) {
            record = m.record().clone();
            with_others = m.with_others_lately(world.now());
        }
        state.update(|s| s.phase = Phase::Stopping);
        if code == 0 && with_others && stopped_cleanly(paths) {
            record.left_while_others = true;
            save_record(&paths.datadir, &record);
        }
        // mariadbd is gone before its bootstrap reached a Primary component.
        settle_bootstrap(paths, &mut record);
        log_grastate(paths);
        if gave_up && !sup.stop_received() {
            return Ok(Outcome::Elect);
        }
        Ok(Outcome::Exited(code))
    }
}

/// Asks the donor Galera is expected to pick to leave the read pool, and gives the proxies
/// what is left of `DRAIN_DELAY` since the donor last told one that it serves, before the
/// server starts and the donor turns Donor/Desynced: reads never reach a donor that lags.
/// Returns whether the donor took the reservation.
fn reserve_donor(
    sup: &mut Supervisor,
    settings: &Settings,
    own: IpAddr,
    donor: &ExpectedDonor,
) -> Result<bool, NodeError> {
    let ExpectedDonor { name, address, ist } = donor;
    let how = if *ist { "IST" } else { "SST" };
    match health::reserve_donor(
        *address,
        settings.http_port,
        own,
        settings.cluster_key.as_ref(),
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
            Ok(true)
        }
        Err(e) => {
            log::warn!("cannot reserve {name} ({address}) as the {how} donor: {e}");
            Ok(false)
        }
    }
}

/// Tells the reserved donor, in the background, that this node is Synced: it serves again
/// at once instead of when its reservation lapses (a writer reserved as an IST donor would
/// otherwise stay out of `/master` for it).
fn release_donor(donor: Option<ExpectedDonor>, settings: &Settings, own: IpAddr) {
    let Some(ExpectedDonor { name, address, .. }) = donor else {
        return;
    };
    let (port, key) = (settings.http_port, settings.cluster_key.clone());
    std::thread::spawn(
        move || match health::release_donor(address, port, own, key.as_ref()) {
            Ok(()) => log::info!("Synced: released {name} ({address}) from its donor reservation"),
            Err(e) => log::warn!(
                "cannot release {name} ({address}) from its donor reservation ({e}); it lapses \
             by itself"
            ),
        },
    );
}

/// Serves the node state and the health endpoints from now on, on every address (IPv6
/// and IPv4 when possible), and starts the health thread that asks the peers.
fn serve(
    settings: &Settings,
    state: &Shared,
    learned: &Learned,
    nudge: &health::peers::Nudge,
    draining: Arc<AtomicBool>,
) -> Result<(), NodeError> {
    let port = settings.http_port;
    let listener = TcpListener::bind(("::", port))
        .or_else(|_| TcpListener::bind(("0.0.0.0", port)))
        .map_err(|source| NodeError::Listen { port, source })?;
    let watch = SharedWatch::default();
    let flags = health::Flags::new(draining);
    let overlay = {
        let flags = flags.clone();
        Arc::new(move |s: &mut crate::state::NodeState| flags.apply(s))
    };
    let router = peer::http::router(state.clone(), learned.clone(), overlay).merge(
        health::http::router(health::http::Ctx {
            state: state.clone(),
            watch: watch.clone(),
            flags: flags.clone(),
            cfg: settings.health,
            nudge: nudge.clone(),
        }),
    );
    let router = peer::http::authenticate(router, settings.cluster_key.clone());
    peer::http::spawn(listener, router).map_err(|source| NodeError::Listen { port, source })?;
    health::peers::spawn(
        state.clone(),
        flags,
        watch,
        nudge.clone(),
        port,
        settings.cluster_key.clone(),
        settings.health,
    )
    .map_err(|source| NodeError::Listen { port, source })
}

fn discover(
    sup: &mut Supervisor,
    settings: &Settings,
    resolver: &mut SystemResolver,
) -> Result<Discovered, DiscoveryError> {
    discovery::discover(
        &settings.discovery_name,
        settings.node_address,
        settings.discovery_timeout,
        resolver,
        &Interfaces,
        &mut |d| sup.pause(d),
    )
}

/// The pause before a failed `--wsrep-recover` is tried again.
const RECOVER_RETRY: Duration = Duration::from_secs(2);

/// What the datadir says: fresh or not, grastate.dat, the position (recovered with
/// `--wsrep-recover` when grastate.dat says -1), and the saved view.
fn read_disk(
    sup: &mut Supervisor,
    run_as: Option<RunAs>,
    sst_method: SstMethod,
    paths: &Paths,
    data: &DataState,
    state: &Shared,
) -> Result<Disk, NodeError> {
    let view_path = paths.datadir.join(GVWSTATE_FILE);
    let view = std::fs::read(&view_path).ok().and_then(|bytes| {
        let view = gvwstate::parse(&String::from_utf8_lossy(&bytes));
        if view.is_none() {
            // Out of Galera's way too: pc.recovery must not read it either.
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
    let grastate = match data {
        DataState::Existing { grastate } => grastate.clone(),
        _ => None,
    };
    let mut recovered = None;
    if grastate.as_ref().is_some_and(|g| g.seqno == -1) {
        state.update(|s| s.phase = Phase::Recovering);
        log::info!(
            "grastate.dat has no position (seqno -1): recovering it with mariadbd --wsrep-recover"
        );
        if let Some(r) = run_as {
            datadir::prepare(paths, r)?;
        }
        // A failed run is tried twice more: what made it fail (a file a process that has
        // just died still held) may be gone a moment later.
        let mut attempt = 1;
        let position = loop {
            match datadir::recover::recover_position(sup, run_as, sst_method) {
                Err(datadir::recover::RecoverError::Failed { code, reason }) if attempt < 3 => {
                    log::warn!(
                        "mariadbd --wsrep-recover failed (exit code {code}): {reason}; trying \
                         again in {}s",
                        RECOVER_RETRY.as_secs()
                    );
                    sup.pause(RECOVER_RETRY)?;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        match position {
            Some((u, s)) => {
                log::info!("recovered position {u}:{s}");
                recovered = Some((u, s));
            }
            None => log::warn!("no position recovered: this node counts as seqno -1"),
        }
    }
    Ok(Disk {
        fresh: data.is_fresh(),
        grastate,
        recovered,
        view,
    })
}

/// The datadir's record, or a new one for this volume.
fn load_record(datadir: &Path) -> Record {
    match Record::load(datadir) {
        Ok(Some(r)) => r,
        Ok(None) => Record::new(record::random_id()),
        Err(e) => {
            log::warn!(
                "{e}: starting a new record (this node's last Primary view and lineage are \
                 unknown, so the election counts nodes with data instead)"
            );
            Record::new(record::random_id())
        }
    }
}

fn save_record(datadir: &Path, record: &Record) {
    if let Err(e) = record.save(datadir) {
        log::warn!("cannot write {}: {e}", Record::path(datadir).display());
    }
}

/// `safe_to_bootstrap: 1` written for a bootstrap that never reached a Primary component is
/// not this node's to keep.
fn clear_unearned_flag(paths: &Paths) {
    let path = paths.datadir.join("grastate.dat");
    match grastate::set_safe_to_bootstrap(&path, false) {
        Ok(()) => log::warn!(
            "cleared safe_to_bootstrap in {}: galera-init set it for a bootstrap that never \
             reached a Primary component",
            path.display()
        ),
        Err(e) => log::warn!("cannot clear safe_to_bootstrap in {}: {e}", path.display()),
    }
}

/// Whether grastate.dat shows a clean shutdown (a real seqno).
fn stopped_cleanly(paths: &Paths) -> bool {
    std::fs::read_to_string(paths.datadir.join("grastate.dat"))
        .ok()
        .and_then(|t| grastate::parse(&t).ok())
        .is_some_and(|g| g.seqno >= 0)
}

/// After mariadbd exited (or failed to start): a bootstrap still pending never reached a
/// Primary component, unless grastate.dat shows it committed after its start position.
fn settle_bootstrap(paths: &Paths, record: &mut Record) {
    if record.pending.is_none() {
        return;
    }
    let position = std::fs::read_to_string(paths.datadir.join("grastate.dat"))
        .ok()
        .and_then(|t| grastate::parse(&t).ok())
        .map(|g| g.seqno)
        .filter(|s| *s >= 0);
    if record.settle_at_start(position) {
        clear_unearned_flag(paths);
    }
    save_record(&paths.datadir, record);
}

/// Where an operator's override comes from.
struct Overrides<'a> {
    /// FORCE_BOOTSTRAP is set and not used up on this volume.
    env: bool,
    /// The force-bootstrap file (`galera-init bootstrap`).
    file: &'a Path,
}

/// What a waiting node does with its datadir.
struct Meanwhile<'a> {
    /// The record of a datadir with data, kept up to date with the election.
    record: Option<(&'a mut Record, &'a Path)>,
    /// Builds the datadir of the node expected to bootstrap a fresh cluster.
    prepare: &'a mut dyn FnMut(&mut Supervisor) -> Result<bool, NodeError>,
}

/// Runs election rounds, twice a second, until the plan is final (bootstrap, join or refuse);
/// returns it with every node the election knew of. While this node is expected to
/// bootstrap a fresh cluster, `prepare` builds its datadir (once; it says whether it did).
/// An override (looked for at every round, so that `galera-init bootstrap` acts without a
/// restart) is published on `/state`. When a running component turns out to have given this
/// node's history up, the record (of a datadir with data) says so from then on.
fn elect(
    sup: &mut Supervisor,
    params: Params,
    world: &mut NodeWorld,
    state: &Shared,
    forced: Overrides,
    allow_pc_recovery: bool,
    meanwhile: Meanwhile,
) -> Result<(Plan, Vec<IpAddr>), NodeError> {
    let Meanwhile {
        mut record,
        prepare,
    } = meanwhile;
    let mut election = Election::new(params, world.now());
    let mut env = forced.env;
    loop {
        let force = if forced.file.exists() {
            Override::Command
        } else if env {
            Override::Service
        } else {
            Override::None
        };
        state.update(|s| s.override_requested = force);
        let plan = election.round(world, &state.get(), force, allow_pc_recovery);
        state.update(|s| {
            s.decision = Some(plan.describe());
            s.waiting_for = match &plan {
                Plan::Wait { waiting_for, .. } => waiting_for.clone(),
                _ => Vec::new(),
            };
            s.known = election.first_hand().to_vec();
        });
        // An override is one decision: once a Primary component is made (or being made),
        // by this node or another, it is used up here too.
        if force.is_on() && election.primary_seen() && matches!(plan, Plan::Wait { .. }) {
            log::warn!("override used up: a Primary component runs (or is being bootstrapped)");
            if forced.file.exists() {
                let _ = std::fs::remove_file(forced.file);
            }
            if env {
                env = false;
                if let Some((record, datadir)) = record.as_mut() {
                    record.force_env_used = true;
                    save_record(datadir, record);
                }
            }
            state.update(|s| s.override_requested = Override::None);
        }
        if let Plan::Wait {
            accept: Some(candidate),
            ..
        } = &plan
            && let Some((record, datadir)) = record.as_mut()
            && record.accepted.as_ref() != Some(candidate)
        {
            // Recorded before the other node may bootstrap: it waits for this.
            record.accepted = Some(candidate.clone());
            save_record(datadir, record);
            state.update(|s| s.accepted = Some(candidate.clone()));
        }
        if let Plan::Wait {
            superseded: true, ..
        } = &plan
            && let Some((record, datadir)) = record.as_mut()
            && !record.superseded
        {
            log::warn!(
                "this node's history was given up by an override: the cluster restarts from \
                 other data; it keeps this volume as it is and has no say until an operator \
                 decides"
            );
            record.superseded = true;
            save_record(datadir, record);
            state.update(|s| s.superseded = true);
        }
        match plan {
            // The election's clock goes on meanwhile: the next round sees how long the set
            // of nodes has been stable, and any change while the datadir was built.
            Plan::Wait { prepare: true, .. } if prepare(sup)? => {}
            Plan::Wait { .. } => sup.pause(ELECTION_INTERVAL)?,
            plan => return Ok((plan, election.listed().to_vec())),
        }
    }
}

/// Checks that mariadbd (in `PATH`) and the Galera provider are there, before anything
/// else runs: otherwise the node would go through the election and fail half-way.
fn check_image() -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(server::MARIADBD))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    if !found {
        return Err(NodeError::NotInstalled {
            what: server::MARIADBD,
            detail: format!("not found in PATH={}", path.to_string_lossy()),
            package: "mariadb-server",
        });
    }
    if !std::path::Path::new(galera::PROVIDER).is_file() {
        return Err(NodeError::NotInstalled {
            what: "the Galera provider",
            detail: format!("no {}", galera::PROVIDER),
            package: "galera-4",
        });
    }
    Ok(())
}

/// The account mariadbd runs as: `mysql` when galera-init is root, else galera-init's own.
fn mysql_user() -> Result<Option<RunAs>, NodeError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("mysql")
        .ok()
        .flatten()
        .ok_or(NodeError::NoMysqlUser)?;
    Ok(Some(RunAs {
        uid: user.uid,
        gid: user.gid,
    }))
}

fn describe(data: &DataState) -> String {
    match data {
        DataState::Fresh => "empty".into(),
        DataState::Interrupted => "an unfinished initialisation or state transfer".into(),
        DataState::Existing { grastate: None } => "existing data, no grastate.dat".into(),
        DataState::Existing { grastate: Some(g) } => format!(
            "existing data, cluster {} seqno {} safe_to_bootstrap {}",
            g.uuid, g.seqno, g.safe_to_bootstrap as u8
        ),
    }
}

fn write_config(
    paths: &Paths,
    settings: &Settings,
    own: IpAddr,
    members: &[IpAddr],
    donors: Vec<String>,
    sst_method: SstMethod,
) -> Result<(), NodeError> {
    let node_name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| own.to_string());
    let mut members = members.to_vec();
    if !members.contains(&own) {
        members.push(own);
    }
    let text = galera::render(&NodeConfig {
        cluster_name: settings.cluster_name.clone(),
        members,
        node_address: own,
        node_name,
        sst_method,
        donors,
        provider_options: settings.provider_options.clone(),
    });
    let path = &paths.galera_config;
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

fn log_grastate(paths: &Paths) {
    if let Ok(text) = std::fs::read_to_string(paths.datadir.join("grastate.dat"))
        && let Ok(g) = grastate::parse(&text)
    {
        log::info!(
            "grastate.dat: cluster {} seqno {} safe_to_bootstrap {}",
            g.uuid,
            g.seqno,
            g.safe_to_bootstrap as u8
        );
    }
}
