//! Recovering the last committed position from InnoDB when `grastate.dat` says -1 (after a
//! crash, or while mariadbd ran): `mariadbd --wsrep-recover` prints it in its log.

use std::ffi::OsString;
use std::path::PathBuf;

use super::RunAs;
use crate::galera::SstMethod;
use crate::galera::{self, grastate};
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
    /// mariadbd ran and failed: the position is unknown, and starting the node without it
    /// would let Galera overwrite InnoDB's record of the cluster's history.
    #[error(
        "mariadbd --wsrep-recover failed (exit code {code}): {reason}; the datadir is left as \
         it is: fix the cause, and the next start recovers the position"
    )]
    Failed {
        /// mariadbd's exit code.
        code: u8,
        /// Its last error line.
        reason: String,
    },
}

/// Runs `mariadbd --wsrep-recover` and returns the recovered `(uuid, seqno)`, or `None` when
/// mariadbd ran fine but printed no position (its log is copied to galera-init's log).
pub fn recover_position(
    sup: &mut Supervisor,
    run_as: Option<RunAs>,
    sst_method: SstMethod,
) -> Result<Option<(String, i64)>, RecoverError> {
    let log = PathBuf::from(LOG);
    let _ = std::fs::remove_file(&log);
    let mut args: Vec<OsString> = galera::recovery_options(sst_method)
        .into_iter()
        .map(OsString::from)
        .collect();
    args.push(format!("--log-error={LOG}").into());
    let status = sup.run(
        &mut server::command(run_as, &args),
        "mariadbd --wsrep-recover",
    )?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let position = grastate::parse_recovered_position(&text);
    let code = exit::code_for(status).unwrap_or(1);
    if position.is_none() {
        log::warn!("mariadbd --wsrep-recover (exit code {code}) printed no position:\n{text}");
        if code != 0 {
            let reason = text
                .lines()
                .rev()
                .find(|l| l.contains("[ERROR]") && !l.contains("Aborting"))
                .map(|l| l.split("[ERROR] ").last().unwrap_or(l).trim().to_string())
                .unwrap_or_else(|| "no error line".into());
            return Err(RecoverError::Failed { code, reason });
        }
    }
    Ok(position)
}
