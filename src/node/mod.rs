//! A Galera node from start to finish: serve state, discover, recover, elect, prepare, start
//! and supervise mariadbd. Each step is one call into the module that owns it; this file only
//! sequences them and says in the log what was decided and why.

use std::ffi::OsString;
use std::net::{IpAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::datadir::{self, DataState, FORCE_BOOTSTRAP_FILE, Paths, RunAs};
use crate::decision::{Params, Plan};
use crate::discovery::{self, Discovered, DiscoveryError, Interfaces, dns::SystemResolver};
use crate::election::Election;
use crate::fsutil::write_atomic;
use crate::galera::{self, NodeConfig, grastate, gvwstate};
use crate::peer::{self, Learned};
use crate::server;
use crate::state::{Phase, Shared};
use crate::supervisor::{Stopped, Supervisor, Tick, exit};

pub mod world;

use world::NodeWorld;

/// How long a server that never answered may ignore SIGTERM after pc.recovery failed.
const STUCK_GRACE: Duration = Duration::from_secs(10);

/// How often the election looks again while it waits.
const ELECTION_INTERVAL: Duration = Duration::from_secs(1);

/// Why a node could not start. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
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
    let state = Shared::default();
    let node_name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    state.update(|s| s.node_name = node_name.clone());
    let learned = Learned::default();
    serve_state(settings.http_port, &state, &learned)?;
    let mut resolver = SystemResolver::new().map_err(NodeError::Runtime)?;
    let start = Start {
        settings,
        paths,
        run_as,
        state: &state,
        learned: &learned,
        started,
    };
    let mut allow_pc_recovery = true;
    loop {
        match start.once(sup, &mut resolver, mariadbd_args, allow_pc_recovery)? {
            Outcome::Exited(code) => return Ok(code),
            Outcome::PcRecoveryFailed => {
                log::warn!(
                    "pc.recovery did not restore a Primary component within {}s: mariadbd was \
                     stopped; electing the most advanced node instead",
                    settings.pc_recovery_timeout.as_secs()
                );
                allow_pc_recovery = false;
                state.update(|s| {
                    *s = crate::state::NodeState {
                        node_name: s.node_name.clone(),
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
    /// pc.recovery did not restore the saved component, and mariadbd was stopped to elect.
    PcRecoveryFailed,
}

/// What one start needs.
struct Start<'a> {
    settings: &'a Settings,
    paths: &'a Paths,
    run_as: Option<RunAs>,
    state: &'a Shared,
    learned: &'a Learned,
    started: Instant,
}

impl Start<'_> {
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
        log::info!(
            "{} lists {} node(s); this node is {own}",
            settings.discovery_name,
            members.len()
        );
        state.update(|s| s.address = Some(own));

        let data = datadir::inspect(&paths.datadir)?;
        log::info!("datadir {}: {}", paths.datadir.display(), describe(&data));
        let recovered = report_data(sup, run_as, paths, &data, state)?;
        let force_file = paths.datadir.join(FORCE_BOOTSTRAP_FILE);
        let forced = settings.force_bootstrap || force_file.exists();

        let mut world = NodeWorld::new(settings, own, self.learned.clone(), self.started)
            .map_err(NodeError::Runtime)?;
        let plan = elect(sup, settings, &mut world, state, forced, allow_pc_recovery)?;
        let (bootstrap, members, donors, pc_recovery) = match plan {
            Plan::Bootstrap { reason } => {
                if forced {
                    log::warn!("MANUAL OVERRIDE: decision: bootstrap: {reason}");
                } else {
                    log::info!("decision: bootstrap: {reason}");
                }
                (true, members, Vec::new(), false)
            }
            Plan::Join {
                members,
                donors,
                pc_recovery,
                reason,
            } => {
                log::info!("decision: join: {reason}");
                (false, members, donors, pc_recovery)
            }
            Plan::Refuse { reason } => return Err(NodeError::Refused(reason)),
            Plan::Wait { .. } => unreachable!("elect() returns only final plans"),
        };
        state.update(|s| {
            s.phase = if bootstrap {
                Phase::Bootstrapping
            } else {
                Phase::Joining
            }
        });
        sup.check_stop()?;

        if let Some(r) = run_as {
            datadir::prepare(paths, r)?;
        }
        write_config(paths, settings, own, &members, donors)?;
        match (&data, bootstrap) {
            (DataState::Fresh | DataState::Interrupted, true) => {
                datadir::init::initialize(sup, paths, settings, run_as, &data)?
            }
            // A joiner receives everything by SST; what an unfinished init left is not data.
            (DataState::Interrupted, false) => datadir::clear_interrupted(&paths.datadir)?,
            (DataState::Existing { .. }, true) => mark_safe_to_bootstrap(paths, &data)?,
            _ => {}
        }
        if bootstrap && force_file.exists() {
            let _ = std::fs::remove_file(&force_file);
            log::warn!("removed {} (it applies once)", force_file.display());
        }
        sup.check_stop()?;

        let mut args: Vec<OsString> = Vec::new();
        if bootstrap {
            args.push("--wsrep-new-cluster".into());
        }
        // grastate.dat says -1: start from the recovered position, so that a bootstrap keeps
        // the cluster's history (same UUID) and a joiner can catch up by IST.
        if let Some((uuid, seqno)) = &recovered {
            args.push(format!("--wsrep-start-position={uuid}:{seqno}").into());
        }
        args.extend(mariadbd_args.iter().cloned());
        let pid = sup
            .spawn(&mut server::command(run_as, &args))
            .map_err(|source| NodeError::Spawn { source })?;
        log::info!(
            "started mariadbd (pid {pid}) {:.1}s after galera-init",
            self.started.elapsed().as_secs_f32()
        );
        let poller = match peer::status::spawn(state.clone(), paths.socket.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                log::error!("cannot start the wsrep status poller: {e}");
                None
            }
        };

        // After a pc.recovery start, watch that Galera really restores the component.
        let mut deadline = pc_recovery.then(|| Instant::now() + settings.pc_recovery_timeout);
        let mut stopped_at: Option<Instant> = None;
        let mut killed = false;
        let code = sup.supervise_with(pid, server::MARIADBD, &mut || {
            let Some(d) = deadline else {
                return Tick::Continue;
            };
            let now = state.get();
            if now.is_primary() {
                deadline = None;
                return Tick::Continue;
            }
            match stopped_at {
                None if Instant::now() > d => {
                    stopped_at = Some(Instant::now());
                    Tick::Stop
                }
                // A server still waiting for a Primary view has not opened its storage
                // engines yet and ignores SIGTERM until it does: nothing is lost by killing it.
                Some(t) if !killed && t.elapsed() > STUCK_GRACE && now.phase == Phase::Joining => {
                    killed = true;
                    log::warn!(
                        "mariadbd ignored SIGTERM for {}s while waiting for a Primary view \
                         (storage engines not opened yet): killing it",
                        STUCK_GRACE.as_secs()
                    );
                    Tick::Kill
                }
                _ => Tick::Continue,
            }
        });
        let gave_up = stopped_at.is_some();
        drop(poller);
        state.update(|s| s.phase = Phase::Stopping);
        log_grastate(paths);
        if gave_up && !sup.stop_received() {
            return Ok(Outcome::PcRecoveryFailed);
        }
        Ok(Outcome::Exited(code))
    }
}

/// Serves the node state from now on, on every address (IPv6 and IPv4 when possible).
fn serve_state(port: u16, state: &Shared, learned: &Learned) -> Result<(), NodeError> {
    let listener = TcpListener::bind(("::", port))
        .or_else(|_| TcpListener::bind(("0.0.0.0", port)))
        .map_err(|source| NodeError::Listen { port, source })?;
    peer::http::spawn(listener, state.clone(), learned.clone())
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

/// Puts what the datadir says into the node state: fresh or not, position (recovered with
/// `--wsrep-recover` when grastate.dat says -1), and the saved view. Returns the recovered
/// position, if one was recovered.
fn report_data(
    sup: &mut Supervisor,
    run_as: Option<RunAs>,
    paths: &Paths,
    data: &DataState,
    state: &Shared,
) -> Result<Option<(String, i64)>, NodeError> {
    let view = std::fs::read_to_string(paths.datadir.join("gvwstate.dat"))
        .ok()
        .and_then(|t| gvwstate::parse(&t));
    let (mut uuid, mut seqno, safe, has_galera_state) = match data {
        DataState::Existing { grastate: Some(g) } => (
            Some(g.uuid.clone()),
            Some(g.seqno),
            g.safe_to_bootstrap,
            true,
        ),
        _ => (None, None, false, false),
    };
    let mut recovered = None;
    if has_galera_state && seqno == Some(-1) {
        state.update(|s| s.phase = Phase::Recovering);
        log::info!(
            "grastate.dat has no position (seqno -1): recovering it with mariadbd --wsrep-recover"
        );
        if let Some(r) = run_as {
            datadir::prepare(paths, r)?;
        }
        match datadir::recover::recover_position(sup, run_as)? {
            Some((u, s)) => {
                log::info!("recovered position {u}:{s}");
                uuid = Some(u.clone());
                seqno = Some(s);
                recovered = Some((u, s)).filter(|(_, s)| *s >= 0);
            }
            None => log::warn!("no position recovered: this node counts as seqno -1"),
        }
    }
    state.update(|s| {
        s.phase = Phase::Waiting;
        s.fresh = Some(data.is_fresh());
        s.has_galera_state = has_galera_state;
        s.uuid = uuid;
        s.seqno = seqno;
        s.safe_to_bootstrap = safe;
        s.view = view;
    });
    Ok(recovered)
}

/// Runs election rounds, one a second, until the plan is final (bootstrap, join or refuse).
fn elect(
    sup: &mut Supervisor,
    settings: &Settings,
    world: &mut NodeWorld,
    state: &Shared,
    forced: bool,
    allow_pc_recovery: bool,
) -> Result<Plan, NodeError> {
    use crate::election::World;
    let params = Params {
        cluster_size: settings.cluster_size,
        settle: settings.settle_window,
        outage_timeout: settings.outage_timeout,
    };
    let mut election = Election::new(params, world.now());
    loop {
        match election.round(world, &state.get(), forced, allow_pc_recovery) {
            Plan::Wait { .. } => sup.pause(ELECTION_INTERVAL)?,
            plan => return Ok(plan),
        }
    }
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
        DataState::Interrupted => "an unfinished initialisation".into(),
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
        sst_method: settings.sst_method,
        donors,
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

/// Galera refuses `--wsrep-new-cluster` unless grastate.dat says `safe_to_bootstrap: 1`;
/// once the election (or the operator) has chosen this node, the flag is set to match.
fn mark_safe_to_bootstrap(paths: &Paths, data: &DataState) -> Result<(), NodeError> {
    let DataState::Existing {
        grastate: Some(g), ..
    } = data
    else {
        return Ok(());
    };
    if g.safe_to_bootstrap {
        return Ok(());
    }
    let path = paths.datadir.join("grastate.dat");
    let write_err = |source| NodeError::Write {
        path: path.display().to_string(),
        source,
    };
    let text = std::fs::read_to_string(&path).map_err(write_err)?;
    write_atomic(
        &path,
        grastate::with_safe_to_bootstrap(&text).as_bytes(),
        0o660,
    )
    .map_err(write_err)?;
    if let Some(r) = mysql_user()? {
        let _ = nix::unistd::chown(&path, Some(r.uid), Some(r.gid));
    }
    log::warn!("set safe_to_bootstrap: 1 in {}", path.display());
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
