//! `galera-init healthcheck`: the image's Docker HEALTHCHECK.
//!
//! It asks the local galera-init over its state port on loopback: no credentials, no cnf
//! file in the datadir (an SST would wipe it), and the verdict is the one the node computes
//! for `/live` ([`crate::health::live`]): healthy while the node makes progress or waits on
//! purpose. `--ready` asks `/health` instead: can this node serve now.

use std::io::Write;
use std::time::Duration;

/// What to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Check {
    /// `--ready`: can the node serve now (Primary, ready, Synced), not merely is it alive.
    pub ready: bool,
    /// `--donor-ok`: with `--ready`, a Donor that keeps serving counts as ready.
    pub donor_ok: bool,
}

/// How long the local server may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Asks the node serving on loopback `port`, prints one line on `out`, and returns the
/// exit code: 0 healthy, 1 not (or no answer).
pub fn run(check: Check, port: u16, out: &mut dyn Write) -> u8 {
    let path = match (check.ready, check.donor_ok) {
        (false, _) => "/live",
        (true, false) => "/health",
        (true, true) => "/health?available_when_donor=1",
    };
    let url = format!("http://127.0.0.1:{port}{path}");
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let what = if check.ready {
        "not ready"
    } else {
        "unhealthy"
    };
    match agent.get(&url).call() {
        Ok(mut r) => {
            let ok = r.status().is_success();
            let body = r.body_mut().read_to_string().unwrap_or_default();
            let line = body.lines().next().unwrap_or("").trim();
            let _ = writeln!(
                out,
                "{}: {line}",
                match (ok, check.ready) {
                    (true, false) => "healthy",
                    (true, true) => "ready",
                    (false, _) => what,
                }
            );
            u8::from(!ok)
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "{what}: galera-init's state server on 127.0.0.1:{port} (HTTP_PORT) does not \
                 answer: {e}"
            );
            1
        }
    }
}
