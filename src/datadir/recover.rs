//! Recovering the last committed position from InnoDB when `grastate.dat` says -1 (after a
//! crash, or while mariadbd ran): `mariadbd --wsrep-recover` prints it in its log.

use std::ffi::OsString;
use std::path::PathBuf;

use super::RunAs;
use crate::galera::{PROVIDER, grastate};
use crate::server;
use crate::supervisor::{HelperError, Supervisor, exit};

/// Where the recovery run writes its log (the mysql user can write to /tmp).
const LOG: &str = "/tmp/galera-init-wsrep-recover.log";

/// Errors of the recovery.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// mariadbd could not run, or a stop signal came.
    #[error(transparent)]
    Helper(#[from] HelperError),
}

/// Runs `mariadbd --wsrep-recover` and returns the recovered `(uuid, seqno)`, or `None` when
/// mariadbd printed no position (its log is copied to galera-init's log).
pub fn recover_position(
    sup: &mut Supervisor,
    run_as: Option<RunAs>,
) -> Result<Option<(String, i64)>, RecoverError> {
    let log = PathBuf::from(LOG);
    let _ = std::fs::remove_file(&log);
    let args: Vec<OsString> = [
        "--wsrep-recover".to_string(),
        "--wsrep-on=ON".to_string(),
        format!("--wsrep-provider={PROVIDER}"),
        "--skip-networking".to_string(),
        format!("--log-error={LOG}"),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let status = sup.run(
        &mut server::command(run_as, &args),
        "mariadbd --wsrep-recover",
    )?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let position = grastate::parse_recovered_position(&text);
    if position.is_none() {
        log::warn!(
            "mariadbd --wsrep-recover (exit code {}) printed no position:\n{text}",
            exit::code_for(status).unwrap_or(1)
        );
    }
    Ok(position)
}
