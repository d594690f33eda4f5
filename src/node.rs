//! A Galera node from start to finish: discover, decide, prepare, start and supervise
//! mariadbd. Each step is one call into the module that owns it; this file only sequences
//! them and says in the log what was decided and why.

use std::ffi::OsString;
use std::net::IpAddr;
use std::time::Instant;

use crate::config::Settings;
use crate::datadir::{self, DataState, Paths, RunAs};
use crate::decision::{self, Inputs, Plan};
use crate::discovery::{self, Discovered, DiscoveryError, Interfaces, dns::SystemResolver};
use crate::fsutil::write_atomic;
use crate::galera::{self, NodeConfig, grastate};
use crate::server;
use crate::supervisor::{Stopped, Supervisor, exit};

/// Why a node could not start. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The image has no `mysql` user.
    #[error("there is no 'mysql' user: this image needs Debian's mariadb-server package")]
    NoMysqlUser,
    /// DNS never listed this node, or a stop signal came.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The datadir cannot be used.
    #[error(transparent)]
    Datadir(#[from] datadir::DatadirError),
    /// Initialising the datadir failed.
    #[error("initialising the datadir failed: {0}")]
    Init(#[from] datadir::init::InitError),
    /// A config file could not be written.
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

    let Discovered { own, members } = discovery::discover(
        &settings.discovery_name,
        settings.node_address,
        settings.discovery_timeout,
        &mut SystemResolver::new().map_err(|source| NodeError::Write {
            path: "tokio runtime".into(),
            source,
        })?,
        &Interfaces,
        &mut |d| sup.pause(d),
    )?;
    log::info!(
        "{} lists {} node(s); this node is {own}",
        settings.discovery_name,
        members.len()
    );

    let data = datadir::inspect(&paths.datadir)?;
    log::info!("datadir {}: {}", paths.datadir.display(), describe(&data));

    let plan = decision::decide(&Inputs {
        own,
        members: &members,
        data: &data,
        force_bootstrap: settings.force_bootstrap,
    });
    let bootstrap = match plan {
        Plan::Bootstrap { reason } if settings.force_bootstrap => {
            log::warn!("MANUAL OVERRIDE: {reason}");
            true
        }
        Plan::Bootstrap { reason } => {
            log::info!("decision: bootstrap: {reason}");
            true
        }
        Plan::Refuse { reason } => return Err(NodeError::Refused(reason)),
    };
    sup.check_stop()?;

    if let Some(r) = run_as {
        datadir::prepare(paths, r)?;
    }
    write_config(paths, settings, own, &members)?;
    if data.is_fresh() {
        datadir::init::initialize(sup, paths, settings, run_as, &data)?;
    } else if bootstrap {
        mark_safe_to_bootstrap(paths, &data)?;
    }
    sup.check_stop()?;

    let mut args: Vec<OsString> = Vec::new();
    if bootstrap {
        args.push("--wsrep-new-cluster".into());
    }
    args.extend(mariadbd_args.iter().cloned());
    let pid = sup
        .spawn(&mut server::command(run_as, &args))
        .map_err(|source| NodeError::Spawn { source })?;
    log::info!(
        "started mariadbd (pid {pid}) {:.1}s after galera-init",
        started.elapsed().as_secs_f32()
    );
    let code = sup.supervise(pid, server::MARIADBD);
    log_grastate(paths);
    Ok(code)
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
) -> Result<(), NodeError> {
    let node_name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| own.to_string());
    let text = galera::render(&NodeConfig {
        cluster_name: settings.cluster_name.clone(),
        members: members.to_vec(),
        node_address: own,
        node_name,
        sst_method: settings.sst_method,
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
/// once the decision (or the operator) has chosen this node, the flag is set to match.
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
