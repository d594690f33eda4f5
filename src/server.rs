//! mariadbd as a process: its command line, its environment, and a client connection to it.
//!
//! galera-init runs as root and talks to its own server as the database's `root@localhost`
//! through the unix socket, authenticated by `unix_socket` (the OS user is root). So it needs
//! no password of its own, and none can go stale when a joiner receives another node's
//! accounts through SST.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
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
