//! mariadbd as a process: its command line, its environment, and a client connection to it.
//!
//! galera-init runs as root and talks to its own server as the database's `root@localhost`
//! through the unix socket, authenticated by `unix_socket` (the OS user is root). So it needs
//! no password of its own, and none can go stale when a joiner receives another node's
//! accounts through SST.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStderr, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::CREDENTIAL_VARS;
use crate::datadir::RunAs;

/// The server binary, found on PATH.
pub const MARIADBD: &str = "mariadbd";

/// A `mariadbd` command running as `run_as` (when galera-init is root), with the caller's
/// environment minus every credential variable: mariadbd and its SST scripts never see the
/// passwords.
pub fn command(run_as: Option<RunAs>, args: &[OsString]) -> Command {
    let mut cmd = Command::new(MARIADBD);
    cmd.args(args);
    as_user(&mut cmd, run_as);
    scrub_env(&mut cmd);
    cmd
}

/// Makes `cmd` run as `run_as`; `None` keeps the current user (galera-init is not root).
pub fn as_user(cmd: &mut Command, run_as: Option<RunAs>) {
    if let Some(r) = run_as {
        cmd.uid(r.uid.as_raw()).gid(r.gid.as_raw());
    }
}

/// Removes every credential variable (and its `_FILE` twin) from `cmd`'s environment.
pub fn scrub_env(cmd: &mut Command) {
    for names in CREDENTIAL_VARS {
        for name in *names {
            cmd.env_remove(name);
            cmd.env_remove(format!("{name}_FILE"));
        }
    }
}

/// Connects to the server through its unix socket as `root@localhost`.
pub fn connect(socket: &Path, timeout: Duration) -> Result<mysql::Conn, mysql::Error> {
    let opts = mysql::OptsBuilder::new()
        .socket(Some(socket.to_string_lossy()))
        .user(Some("root"))
        .prefer_socket(true)
        .read_timeout(Some(timeout))
        .write_timeout(Some(timeout));
    mysql::Conn::new(opts)
}

/// How many of mariadbd's last `[ERROR]` lines are kept.
const KEPT_ERRORS: usize = 3;

/// mariadbd's last `[ERROR]` lines, kept while its log is passed on: when it stops before
/// it ever served, galera-init names the reason in one line (a setting it rejected).
#[derive(Debug, Clone, Default)]
pub struct LastErrors(Arc<Mutex<VecDeque<String>>>);

impl LastErrors {
    /// The kept lines, oldest first, without their timestamps.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn keep(&self, line: &str) {
        let Some(at) = line.find("[ERROR]") else {
            return;
        };
        let text = line[at + "[ERROR]".len()..].trim().to_string();
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if text == "Aborting" || kept.contains(&text) {
            return;
        }
        if kept.len() == KEPT_ERRORS {
            kept.pop_front();
        }
        kept.push_back(text);
    }
}

/// Passes mariadbd's stderr on to galera-init's own, line by line (so it still reaches
/// `docker service logs`), keeping its last `[ERROR]` lines.
pub fn relay(stderr: ChildStderr) -> LastErrors {
    let errors = LastErrors::default();
    let kept = errors.clone();
    let spawned = std::thread::Builder::new()
        .name("mariadbd-log".into())
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let _ = std::io::stderr().write_all(&line);
                        kept.keep(&String::from_utf8_lossy(&line));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot relay mariadbd's log: {e}");
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_distinct_errors_are_kept_without_timestamps() {
        let e = LastErrors::default();
        for line in [
            "2026-12-07 10:17:37 0 [Note] Starting",
            "2026-12-07 10:17:37 0 [ERROR] WSREP: Invalid value 'banana' for integer type.",
            "2026-12-07 10:17:37 0 [ERROR] WSREP: Failed to create a new provider with options 'gcache.size=banana'",
            "2026-12-07 10:17:37 0 [ERROR] WSREP: Failed to load provider",
            "2026-12-07 10:17:37 0 [ERROR] WSREP: Failed to load provider",
            "2026-12-07 10:17:37 0 [ERROR] Aborting",
        ] {
            e.keep(line);
        }
        assert_eq!(
            e.lines(),
            [
                "WSREP: Invalid value 'banana' for integer type.",
                "WSREP: Failed to create a new provider with options 'gcache.size=banana'",
                "WSREP: Failed to load provider",
            ]
        );
    }
}
