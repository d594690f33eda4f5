//! A Galera node from start to finish: serve state, discover, recover, elect, prepare, start
//! and supervise mariadbd.
//!
//! - [`driver`]: the whole sequence as one pure state machine, from what happened to what
//!   must be done ([`driver::Effect`]); the simulation runs the same driver.
//! - [`host`]: the real node's side: it reads the datadir and carries out the effects on
//!   files, processes and the local server.
//! - [`startup`] and [`monitor`]: the driver's pure steps at start and while mariadbd runs.
//! - [`world`]: the real DNS, peers and clock the election asks.

use std::ffi::OsString;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Settings;
use crate::datadir::{self, Paths, RunAs};
use crate::discovery::{DiscoveryError, dns::SystemResolver};
use crate::galera;
use crate::health::{self, peers::SharedWatch};
use crate::peer::{self, Learned};
use crate::server;
use crate::state::Shared;
use crate::supervisor::{Stopped, Supervisor, exit};

pub mod driver;
pub mod host;
pub mod monitor;
pub mod startup;
pub mod world;

use driver::{Driver, Outcome};

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
    /// DNS never listed this node.
    #[error(transparent)]
    Discovery(DiscoveryError),
    /// The datadir cannot be used.
    #[error(transparent)]
    Datadir(#[from] datadir::DatadirError),
    /// Initialising the datadir failed.
    #[error("initialising the datadir failed: {0}")]
    Init(datadir::init::InitError),
    /// Recovering the position failed.
    #[error("recovering the position failed: {0}")]
    Recover(datadir::recover::RecoverError),
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
    /// A stop signal ended start-up, whatever was running then (the errors of the steps
    /// that can be stopped are turned into this one: see the `From` impls below).
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
            NodeError::Stopped(s) => s.exit_code(),
            NodeError::Spawn { source } => exit::code_for_spawn_error(source),
            _ => 1,
        }
    }
}

impl From<DiscoveryError> for NodeError {
    fn from(e: DiscoveryError) -> Self {
        match e {
            DiscoveryError::Stopped(s) => NodeError::Stopped(s),
            e => NodeError::Discovery(e),
        }
    }
}

impl From<datadir::init::InitError> for NodeError {
    fn from(e: datadir::init::InitError) -> Self {
        match e.stopped() {
            Some(s) => NodeError::Stopped(s),
            None => NodeError::Init(e),
        }
    }
}

impl From<datadir::recover::RecoverError> for NodeError {
    fn from(e: datadir::recover::RecoverError) -> Self {
        match e {
            datadir::recover::RecoverError::Helper(crate::supervisor::HelperError::Stopped(s)) => {
                NodeError::Stopped(s)
            }
            e => NodeError::Recover(e),
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
    let reading = health::peers::Nudge::default();
    serve(
        settings,
        paths,
        &state,
        &learned,
        (&nudge, &reading),
        sup.stop_flag(),
    )?;
    let mut resolver = SystemResolver::new().map_err(NodeError::Runtime)?;
    let host = host::Host {
        settings,
        paths,
        run_as,
        state: &state,
        learned: &learned,
        nudge: &nudge,
        reading: &reading,
        notify_cmd: settings
            .state_notify
            .then(|| notify_command(&reading))
            .flatten(),
        started,
        mariadbd_args,
    };
    let driver = Arc::new(Mutex::new(Driver::new(driver::Config {
        params: crate::decision::Params {
            sst: settings.sst_method,
            cluster_size: settings.cluster_size,
            settle: settings.settle_window,
            outage_timeout: settings.outage_timeout,
        },
        pc_recovery_timeout: settings.pc_recovery_timeout,
        force_env: settings.force_bootstrap,
        datadir: paths.datadir.clone(),
        cluster_name: settings.cluster_name.clone(),
    })));
    loop {
        match host.once(sup, &mut resolver, &driver)? {
            Outcome::Exit(code) => return Ok(code),
            Outcome::Elect => {
                log::warn!("mariadbd was stopped by this node's monitor: electing again");
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

/// Serves the node state and the health endpoints from now on, on every address (IPv6
/// and IPv4 when possible), and starts the health thread that asks the peers. `nudges`
/// wake the health thread and the monitor.
fn serve(
    settings: &Settings,
    paths: &Paths,
    state: &Shared,
    learned: &Learned,
    nudges: (&health::peers::Nudge, &health::peers::Nudge),
    draining: Arc<AtomicBool>,
) -> Result<(), NodeError> {
    let (nudge, reading) = nudges;
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
            reading: reading.clone(),
            socket: paths.socket.clone(),
        }),
    );
    let router =
        peer::http::authenticate(router, settings.cluster_key.clone(), health::http::GUARDED);
    peer::http::spawn(listener, router).map_err(|source| NodeError::Listen { port, source })?;
    health::peers::spawn(
        health::peers::Round {
            state: state.clone(),
            flags,
            watch,
            nudge: nudge.clone(),
            reading: reading.clone(),
            socket: paths.socket.clone(),
        },
        port,
        settings.cluster_key.clone(),
        settings.health,
    )
    .map_err(|source| NodeError::Listen { port, source })
}

/// Listens for Galera's state notifications and returns the `wsrep_notify_cmd` that sends
/// them (this binary's `notify`), or `None` (with a warning: the monitor's readings alone
/// then) when it cannot.
fn notify_command(reading: &health::peers::Nudge) -> Option<String> {
    let exe = match std::env::current_exe() {
        Ok(p) => p.to_string_lossy().into_owned(),
        Err(e) => {
            log::warn!("state notifications off: cannot find galera-init's own path: {e}");
            return None;
        }
    };
    // mariadbd runs the command through the shell: only a plain path goes in.
    if !exe
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        log::warn!("state notifications off: galera-init's path {exe:?} is not a plain path");
        return None;
    }
    let socket = std::path::Path::new(crate::notify::SOCKET);
    match crate::notify::listen(socket, reading.clone()) {
        Ok(()) => Some(format!("{exe} notify")),
        Err(e) => {
            log::warn!(
                "state notifications off: cannot listen on {}: {e}",
                socket.display()
            );
            None
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
