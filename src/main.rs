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
use galera_init::discovery::dns::SystemResolver;
use galera_init::node;
use galera_init::supervisor::{Supervisor, exit, signals};

fn main() -> ExitCode {
    // The Docker HEALTHCHECK runs every 2 s in every node: it supervises nothing and logs
    // nothing, so it skips the signal set-up and the logger.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "healthcheck")
    {
        return ExitCode::from(match cli::parse(std::env::args_os().collect()) {
            Ok(Mode::Healthcheck(check)) => run_healthcheck(check),
            Ok(_) => unreachable!("the first argument is healthcheck"),
            Err(e) => {
                let _ = e.print();
                if e.use_stderr() { 2 } else { 0 }
            }
        });
    }
    // mariadbd runs `galera-init notify …` on every state change and waits for it.
    if std::env::args_os().nth(1).is_some_and(|a| a == "notify") {
        galera_init::notify::send(std::path::Path::new(galera_init::notify::SOCKET));
        return ExitCode::SUCCESS;
    }
    // One malloc arena for every thread: galera-init's few threads allocate little, and
    // glibc's arena per thread would keep a heap of its own resident for each.
    // SAFETY: mallopt only sets an allocator parameter; no thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
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
        Mode::Healthcheck(check) => run_healthcheck(check),
        Mode::Status { json, targets } => run_status(json, &targets),
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

/// HTTP_PORT for an operator's command; `None` (after saying why) when it is invalid.
fn command_port(command: &str) -> Option<u16> {
    match std::env::var("HTTP_PORT") {
        Err(_) => Some(DEFAULT_HTTP_PORT),
        Ok(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                eprintln!("galera-init {command}: HTTP_PORT must be a TCP port number (1-65535)");
                None
            }
        },
    }
}

/// `galera-init healthcheck`: asks the local node; exit 0 healthy, 1 not.
fn run_healthcheck(check: commands::healthcheck::Check) -> u8 {
    let Some(port) = command_port("healthcheck") else {
        return 1;
    };
    commands::healthcheck::run(check, port, &mut std::io::stdout())
}

/// `galera-init status`: every node of the cluster, as a table or JSON.
fn run_status(json: bool, targets: &[String]) -> u8 {
    let _ = signals::unblock_all();
    let Some(port) = command_port("status") else {
        return 1;
    };
    let targets: Vec<String> = if targets.is_empty() {
        match std::env::var("DISCOVERY_NAME")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| {
                std::env::var("DB_SERVICE_NAME")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|s| format!("tasks.{s}"))
            }) {
            Some(name) => vec![name],
            None => {
                eprintln!(
                    "galera-init status: DB_SERVICE_NAME is not set: give the nodes' addresses \
                     or a DNS name that lists them"
                );
                return 1;
            }
        }
    } else {
        targets.to_vec()
    };
    let addrs = match SystemResolver::new()
        .map_err(|e| e.to_string())
        .and_then(|mut dns| {
            commands::status::resolve(&targets, &mut dns).map_err(|e| e.to_string())
        }) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("galera-init status: {e}");
            return 1;
        }
    };
    let rows = commands::status::collect(&addrs, port);
    let mut out = std::io::stdout();
    if json {
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("galera-init status: {e}");
                return 1;
            }
        }
    } else {
        commands::status::print_table(&rows, &mut out);
    }
    // Scripts can tell "nothing answered" from a table of nodes in any state.
    u8::from(rows.iter().all(|r| r.detail.is_none()))
}

/// `galera-init bootstrap` in a node's container: the override, then what the node does.
fn run_bootstrap() -> u8 {
    if let Err(e) = signals::unblock_all() {
        eprintln!("galera-init bootstrap: {e}");
        return 1;
    }
    let Some(port) = command_port("bootstrap") else {
        return 1;
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
