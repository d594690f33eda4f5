//! The galera-init binary: set up PID-1 signal handling, parse, dispatch, exit.
//!
//! This file holds the only exit-code policy: a node or command's own code, 128+n for a
//! signal, 127/126 when a command cannot be run, 1 for galera-init's own errors, 2 for a
//! bad command line.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use nix::sys::signalfd::SignalFd;

use galera_init::cli::{self, Mode};
use galera_init::commands;
use galera_init::config::{DEFAULT_HTTP_PORT, Settings};
use galera_init::datadir::Paths;
use galera_init::node;
use galera_init::supervisor::{Supervisor, exit, signals};

fn main() -> ExitCode {
    // First, before any thread exists: a signal sent to PID 1 with no handler is lost,
    // a blocked one waits in the queue for the supervisor.
    let signalfd = match signals::block_all() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("galera-init: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging();
    let mode = match cli::parse(std::env::args_os().collect()) {
        Ok(mode) => mode,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    ExitCode::from(match mode {
        Mode::Node { mariadbd_args } => supervised(signalfd, |sup| run_node(sup, &mariadbd_args)),
        Mode::Exec { argv } => supervised(signalfd, |sup| run_command(sup, &argv)),
        Mode::Bootstrap => run_bootstrap(),
    })
}

/// Runs `f` as the supervisor of its children (PID 1, or a child subreaper).
fn supervised(signalfd: SignalFd, f: impl FnOnce(&mut Supervisor) -> u8) -> u8 {
    if let Err(e) = Supervisor::become_reaper() {
        log::error!("cannot become a child subreaper: {e}");
        return 1;
    }
    f(&mut Supervisor::new(signalfd))
}

fn init_logging() {
    env_logger::Builder::from_env(
        env_logger::Env::default()
            .default_filter_or("info,hickory_proto=warn,hickory_resolver=warn,hickory_net=warn"),
    )
    .format_target(false)
    .init();
}

fn run_node(sup: &mut Supervisor, mariadbd_args: &[OsString]) -> u8 {
    let settings = match Settings::from_env(&|k| std::env::var(k).ok(), &|p| std::fs::read(p)) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    match node::run(sup, &settings, &Paths::standard(), mariadbd_args) {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            if code >= 128 {
                log::info!("{e}");
            } else {
                log::error!("{e}");
            }
            code
        }
    }
}

/// `galera-init bootstrap` in a node's container: the override, then what the node does.
fn run_bootstrap() -> u8 {
    if let Err(e) = signals::unblock_all() {
        eprintln!("galera-init bootstrap: {e}");
        return 1;
    }
    let port = match std::env::var("HTTP_PORT") {
        Err(_) => DEFAULT_HTTP_PORT,
        Ok(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                eprintln!("galera-init bootstrap: HTTP_PORT must be a TCP port number (1-65535)");
                return 1;
            }
        },
    };
    let datadir = Paths::standard().datadir;
    commands::bootstrap::run(
        &datadir,
        port,
        std::time::Duration::from_secs(30),
        &mut std::io::stdout(),
    )
}

fn run_command(sup: &mut Supervisor, argv: &[OsString]) -> u8 {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    match sup.spawn(&mut cmd) {
        Ok(pid) => sup.supervise(pid, &argv[0].to_string_lossy()),
        Err(e) => {
            log::error!("cannot run {}: {e}", argv[0].to_string_lossy());
            exit::code_for_spawn_error(&e)
        }
    }
}
