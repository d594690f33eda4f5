//! Initialising a fresh datadir on the node that bootstraps a new cluster.
//!
//! The sequence follows the official image: `mariadb-install-db`, a temporary server with no
//! networking and wsrep off (a joiner-to-be must not join anything while it is being set up,
//! MariaDB/mariadb-docker#358), the accounts, the initdb.d scripts, a clean stop, and only
//! then the marker that says the datadir is ready. Joiners never run this: they receive
//! everything, accounts included, by SST.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use super::sql::{self, Statement};
use super::{DatadirError, INIT_DONE, INIT_STARTED, Paths, RANDOM_PASSWORD_FILE, RunAs};
use crate::config::{RootPassword, Settings};
use crate::fsutil::write_atomic;
use crate::server;
use crate::supervisor::{HelperError, Stopped, Supervisor, TICK, exit};

/// How long the temporary server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the temporary server may take to shut down before it is killed (its work is
/// then discarded: the done marker is not written, and the next start initialises again).
const STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// Errors of the initialisation. None of them leaves a datadir that looks initialised.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A file-system problem.
    #[error(transparent)]
    Datadir(#[from] DatadirError),
    /// A helper could not run, or a stop signal arrived.
    #[error(transparent)]
    Helper(#[from] HelperError),
    /// A helper failed.
    #[error("{what} failed with exit code {code}; its output is above")]
    Failed {
        /// The helper.
        what: String,
        /// Its exit code (128+n when killed by signal n).
        code: u8,
    },
    /// The temporary server did not come up.
    #[error("the temporary server {0}; its log is above")]
    TempServer(String),
    /// An SQL statement failed.
    #[error("could not {what}: {detail}")]
    Sql {
        /// What the statement does.
        what: &'static str,
        /// The error, without the statement's text when it holds a secret.
        detail: String,
    },
}

impl InitError {
    /// The stop signal that ended the initialisation, if that is what happened.
    pub fn stopped(&self) -> Option<Stopped> {
        match self {
            InitError::Helper(HelperError::Stopped(s)) => Some(*s),
            _ => None,
        }
    }
}

impl From<Stopped> for InitError {
    fn from(s: Stopped) -> Self {
        InitError::Helper(HelperError::Stopped(s))
    }
}

/// Builds a new database in an empty datadir (accounts from `settings`, then initdb.d),
/// but for the last step ([`commit`]): the datadir is complete, but still marked unfinished
/// (an unfinished initialisation to the next start, which does it again), so that it is no
/// data yet. A node expected to bootstrap a fresh cluster builds it while the election
/// settles, and commits it only when it does bootstrap; a node that joins instead clears it
/// for its SST.
pub fn build(
    sup: &mut Supervisor,
    paths: &Paths,
    settings: &Settings,
    run_as: Option<RunAs>,
) -> Result<(), InitError> {
    let datadir = &paths.datadir;
    let started = datadir.join(INIT_STARTED);
    write_atomic(&started, b"", 0o600).map_err(io_err(&started))?;

    log::info!("initialising a new database in {}", datadir.display());
    let mut install = Command::new("mariadb-install-db");
    install.args([
        OsString::from("--datadir"),
        datadir.as_os_str().to_owned(),
        "--skip-test-db".into(),
        "--cross-bootstrap".into(),
        "--skip-name-resolve".into(),
    ]);
    if let Some(r) = run_as {
        // install-db drops to this user itself; it must start as root to chown.
        let name = nix::unistd::User::from_uid(r.uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "mysql".into());
        install.arg(format!("--user={name}"));
    }
    install.stdout(Stdio::null());
    server::scrub_env(&mut install);
    check(
        sup.run(&mut install, "mariadb-install-db")?,
        "mariadb-install-db",
    )?;

    let random = random_password()?;
    let root_pw = sql::root_password(&settings.root_password, &random).to_string();

    let args: Vec<OsString> = [
        "--skip-networking",
        "--wsrep-on=OFF",
        "--wsrep-provider=none",
        "--skip-log-bin",
    ]
    .iter()
    .map(OsString::from)
    .chain([format!("--socket={}", paths.socket.display()).into()])
    .collect();
    let server_pid = sup
        .spawn(&mut server::command(run_as, &args))
        .map_err(|e| InitError::TempServer(format!("cannot start: {e}")))?;
    log::info!("temporary server started (no networking, wsrep off)");

    let result = (|| {
        let mut conn = wait_until_up(sup, server_pid, &paths.socket)?;
        for stmt in sql::SESSION_SETUP {
            run_sql(
                &mut conn,
                &Statement {
                    sql: stmt.to_string(),
                    what: "set up the session",
                    secret: false,
                },
            )?;
        }
        for stmt in sql::account_statements(settings, &root_pw) {
            run_sql(&mut conn, &stmt)?;
        }
        drop(conn);
        log::info!("accounts created");
        run_initdb(sup, paths, settings, run_as)
    })();

    let stop = stop_temp_server(sup, server_pid);
    result?;
    stop?;

    if settings.root_password == RootPassword::Random {
        let path = datadir.join(RANDOM_PASSWORD_FILE);
        write_atomic(&path, format!("{random}\n").as_bytes(), 0o600).map_err(io_err(&path))?;
        log::info!(
            "root got a random password; it is in {} (mode 0600)",
            path.display()
        );
    }
    Ok(())
}

/// The last step of an initialisation: the marker that makes the datadir a database.
pub fn commit(datadir: &Path) -> Result<(), InitError> {
    let done = datadir.join(INIT_DONE);
    write_atomic(&done, b"", 0o600).map_err(io_err(&done))?;
    let _ = fs::remove_file(datadir.join(INIT_STARTED));
    log::info!("database initialised");
    Ok(())
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InitError + '_ {
    move |source| {
        InitError::Datadir(DatadirError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn check(status: nix::sys::wait::WaitStatus, what: &str) -> Result<(), InitError> {
    match exit::code_for(status) {
        Some(0) => Ok(()),
        code => Err(InitError::Failed {
            what: what.to_string(),
            code: code.unwrap_or(1),
        }),
    }
}

/// 32 random alphanumeric characters from the kernel's CSPRNG.
fn random_password() -> Result<String, InitError> {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 32];
    crate::fsutil::random_bytes(&mut bytes).map_err(io_err(Path::new(crate::fsutil::URANDOM)))?;
    Ok(bytes
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect())
}

/// Polls the socket until the temporary server accepts a connection.
fn wait_until_up(
    sup: &mut Supervisor,
    pid: nix::unistd::Pid,
    socket: &Path,
) -> Result<mysql::Conn, InitError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = sup.take_exit(pid) {
            return Err(InitError::TempServer(format!(
                "exited with code {} before accepting connections",
                exit::code_for(status).unwrap_or(1)
            )));
        }
        if let Ok(conn) = server::connect(socket, Duration::from_secs(60)) {
            return Ok(conn);
        }
        if Instant::now() > deadline {
            return Err(InitError::TempServer(format!(
                "did not accept connections on {} within {}s",
                socket.display(),
                START_TIMEOUT.as_secs()
            )));
        }
        sup.pause(Duration::from_millis(200))?;
    }
}

fn run_sql(conn: &mut mysql::Conn, stmt: &Statement) -> Result<(), InitError> {
    conn.query_drop(&stmt.sql).map_err(|e| InitError::Sql {
        what: stmt.what,
        detail: match (&e, stmt.secret) {
            // The server's message may quote the statement, password included.
            (mysql::Error::MySqlError(m), true) => format!("server error {}", m.code),
            _ => e.to_string(),
        },
    })
}

/// Stops the temporary server with SIGTERM and waits for it, whatever signals arrive (a
/// stop signal is remembered and returned once the server is down).
fn stop_temp_server(sup: &mut Supervisor, pid: nix::unistd::Pid) -> Result<(), InitError> {
    sup.signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut stopped = None;
    loop {
        if let Some(status) = sup.take_exit(pid) {
            log::info!("temporary server stopped");
            if let Some(s) = stopped {
                return Err(Stopped(s).into());
            }
            return check(status, "the temporary server's shutdown");
        }
        if Instant::now() > deadline {
            log::error!(
                "the temporary server did not stop within {}s: killing it",
                STOP_TIMEOUT.as_secs()
            );
            sup.signal(pid, libc::SIGKILL);
        }
        if let Err(Stopped(s)) = sup.pause(TICK) {
            stopped.get_or_insert(s);
        }
    }
}

/// Runs `/docker-entrypoint-initdb.d/*.sql`, `*.sql.gz` and `*.sh` in name order.
fn run_initdb(
    sup: &mut Supervisor,
    paths: &Paths,
    settings: &Settings,
    run_as: Option<RunAs>,
) -> Result<(), InitError> {
    let mut files: Vec<PathBuf> = match fs::read_dir(&paths.initdb_dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&paths.initdb_dir)(e)),
    };
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".sh") {
            log::info!("initdb.d: running {name}");
            let mut cmd = Command::new("sh");
            cmd.arg(&file);
            server::as_user(&mut cmd, run_as);
            check(sup.run(&mut cmd, &name)?, &name)?;
        } else if name.ends_with(".sql") || name.ends_with(".sql.gz") {
            log::info!("initdb.d: running {name}");
            let data = fs::read(&file).map_err(io_err(&file))?;
            let data = if name.ends_with(".gz") {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&data[..])
                    .read_to_end(&mut out)
                    .map_err(io_err(&file))?;
                out
            } else {
                data
            };
            run_client(sup, paths, settings, &data, &name)?;
        } else {
            log::info!("initdb.d: ignoring {name} (not .sh, .sql or .sql.gz)");
        }
    }
    Ok(())
}

/// Feeds SQL to the `mariadb` client, which understands what scripts use (DELIMITER,
/// client commands), connected as root through the socket.
fn run_client(
    sup: &mut Supervisor,
    paths: &Paths,
    settings: &Settings,
    sql: &[u8],
    name: &str,
) -> Result<(), InitError> {
    let mut cmd = Command::new("mariadb");
    cmd.arg(format!("--socket={}", paths.socket.display()))
        .arg("--user=root")
        .stdin(Stdio::piped());
    server::scrub_env(&mut cmd);
    // The database goes through stdin, not argv: names are kept out of `ps` like passwords.
    let mut input = Vec::new();
    if let Some(db) = &settings.database {
        input.extend_from_slice(format!("USE {};\n", sql::ident(db)).as_bytes());
    }
    input.extend_from_slice(sql);
    let (pid, stdin) = sup
        .spawn_with_stdin(&mut cmd)
        .map_err(|source| HelperError::Spawn {
            what: "mariadb".into(),
            source,
        })?;
    if let Some(mut stdin) = stdin {
        // A client that fails early closes its end: EPIPE here, and its exit code says why.
        let _ = stdin.write_all(&input);
    }
    check(sup.wait(pid)?, name)
}
