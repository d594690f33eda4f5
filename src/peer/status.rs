//! Keeps this node's [`NodeState`](super::NodeState) up to date from mariadbd's `wsrep_%`
//! status variables, once a second, on its own thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mysql::prelude::Queryable;

use crate::server;
use crate::state::{NodeState, Phase, Shared};

/// How often the status is read.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Stops a poller when dropped.
pub struct Poller(Arc<AtomicBool>);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Starts the poller; it runs until the returned [`Poller`] is dropped. It never stops on
/// errors: a server that does not answer (starting, receiving an SST, shutting down) just
/// has no wsrep status.
pub fn spawn(state: Shared, socket: PathBuf) -> std::io::Result<Poller> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("wsrep-status".into())
        .spawn(move || {
            let mut conn: Option<mysql::Conn> = None;
            loop {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if conn.is_none() {
                    conn = server::connect(&socket, Duration::from_secs(5)).ok();
                }
                let vars = conn.as_mut().and_then(|c| read(c).ok());
                if vars.is_none() {
                    conn = None;
                }
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                state.update(|s| apply(s, vars.as_ref()));
                std::thread::sleep(INTERVAL);
            }
        })?;
    Ok(Poller(stop))
}

fn read(conn: &mut mysql::Conn) -> mysql::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = conn.query("SHOW GLOBAL STATUS LIKE 'wsrep_%'")?;
    Ok(rows
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect())
}

/// Applies one reading (`None`: the server did not answer) to the state.
pub fn apply(s: &mut NodeState, vars: Option<&HashMap<String, String>>) {
    if s.phase == Phase::Stopping {
        return;
    }
    let get = |k: &str| vars.and_then(|v| v.get(k)).cloned();
    let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
    s.wsrep_cluster_status = get("wsrep_cluster_status");
    s.wsrep_local_state = num("wsrep_local_state");
    s.wsrep_local_state_comment = get("wsrep_local_state_comment");
    s.wsrep_local_index = num("wsrep_local_index");
    s.wsrep_cluster_state_uuid = get("wsrep_cluster_state_uuid");
    s.wsrep_cluster_size = num("wsrep_cluster_size");
    s.wsrep_cluster_conf_id = num("wsrep_cluster_conf_id");
    s.wsrep_incoming_addresses = get("wsrep_incoming_addresses");
    if let Some(n) = num("wsrep_last_committed") {
        s.wsrep_last_committed = Some(n);
    }
    if vars.is_some() {
        s.phase = Phase::Running;
        s.fresh = Some(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_update_the_state() {
        let mut s = NodeState {
            phase: Phase::Joining,
            fresh: Some(true),
            ..NodeState::default()
        };
        apply(&mut s, None);
        assert_eq!(s.phase, Phase::Joining, "no answer yet: still joining");
        let vars: HashMap<String, String> = [
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_local_state", "4"),
            ("wsrep_local_state_comment", "Synced"),
            ("wsrep_local_index", "1"),
            ("wsrep_cluster_size", "3"),
            (
                "wsrep_cluster_state_uuid",
                "9acf4d34-acdb-11e6-bcc3-d3e36276629f",
            ),
            ("wsrep_last_committed", "17"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        apply(&mut s, Some(&vars));
        assert_eq!(s.phase, Phase::Running);
        assert!(s.is_primary() && s.is_synced());
        assert_eq!(s.fresh, Some(false));
        assert_eq!(s.position(), Some(17));
        apply(&mut s, None);
        assert!(
            !s.is_primary(),
            "a server that stops answering is not counted as Primary"
        );
        assert_eq!(
            s.position(),
            Some(17),
            "the last committed position is kept"
        );
        s.phase = Phase::Stopping;
        apply(&mut s, Some(&vars));
        assert_eq!(s.phase, Phase::Stopping);
    }
}
