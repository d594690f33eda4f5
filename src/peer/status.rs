//! This node's mariadbd as its monitor sees it: the `wsrep_%` status variables, read once a
//! second through the unix socket, and `pc.bootstrap`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use mysql::prelude::Queryable;

use crate::server;
use crate::state::{NodeState, Phase};

/// How often the status is read.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Why `pc.bootstrap` could not be asked for.
#[derive(Debug, thiserror::Error)]
pub enum PcBootstrapError {
    /// The server does not answer.
    #[error("the server does not answer")]
    NoAnswer,
    /// The statement failed.
    #[error(transparent)]
    Sql(#[from] mysql::Error),
}

/// A connection to the local server, opened again whenever it breaks. A server that does not
/// answer (starting, receiving an SST, shutting down) just has no status.
pub struct Poller {
    socket: PathBuf,
    conn: Option<mysql::Conn>,
}

impl Poller {
    /// A poller for the server at `socket`; it connects on first use.
    pub fn new(socket: PathBuf) -> Poller {
        Poller { socket, conn: None }
    }

    fn conn(&mut self) -> Option<&mut mysql::Conn> {
        if self.conn.is_none() {
            self.conn = server::connect(&self.socket, Duration::from_secs(5)).ok();
        }
        self.conn.as_mut()
    }

    /// The `wsrep_%` status, `Threads_connected`, and the variables a proxy checks
    /// (`wsrep_desync`, `wsrep_reject_queries`, `wsrep_sst_donor_rejects_queries`), with
    /// lower-cased names; `None` when the server does not answer.
    pub fn read(&mut self) -> Option<HashMap<String, String>> {
        let rows: Option<Vec<(String, String)>> = self.conn().and_then(|c| {
            let mut rows: Vec<(String, String)> = c
                .query(
                    "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'wsrep\\_%' \
                     OR Variable_name = 'Threads_connected'",
                )
                .ok()?;
            rows.extend(
                c.query::<(String, String), _>(
                    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('wsrep_desync', \
                     'wsrep_reject_queries', 'wsrep_sst_donor_rejects_queries')",
                )
                .ok()?
                .into_iter()
                .map(|(k, v)| (format!("var:{k}"), v)),
            );
            Some(rows)
        });
        if rows.is_none() {
            self.conn = None;
        }
        rows.map(|rows| {
            rows.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect()
        })
    }

    /// Makes this node's non-Primary component Primary (Galera's `pc.bootstrap`).
    pub fn pc_bootstrap(&mut self) -> Result<(), PcBootstrapError> {
        let conn = self.conn().ok_or(PcBootstrapError::NoAnswer)?;
        Ok(conn.query_drop("SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'")?)
    }
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
    let members = s.incoming_addresses();
    if !members.is_empty() {
        s.last_members = members;
    }
    // Kept while the server does not answer: its peers are told this one when it dies.
    if let Some(u) = get("wsrep_gcomm_uuid").filter(|u| crate::galera::grastate::is_uuid(u)) {
        s.wsrep_gcomm_uuid = Some(u);
    }
    if let Some(n) = num("wsrep_last_committed") {
        s.wsrep_last_committed = Some(n);
    }
    // An empty gcache reports -1, or 2^64-1 where the server prints it unsigned.
    s.wsrep_local_cached_downto = num("wsrep_local_cached_downto").filter(|n| *n >= 0);
    let on = |k: &str| get(k).map(|v| v.eq_ignore_ascii_case("ON") || v == "1");
    s.wsrep_ready = on("wsrep_ready");
    s.wsrep_desync = match (on("var:wsrep_desync"), num("wsrep_desync_count")) {
        (None, None) => None,
        (a, b) => Some(a == Some(true) || b.is_some_and(|n| n > 0)),
    };
    s.wsrep_reject_queries = get("var:wsrep_reject_queries");
    s.wsrep_sst_donor_rejects_queries = on("var:wsrep_sst_donor_rejects_queries");
    s.threads_connected = num("threads_connected");
    s.wsrep_status = vars
        .map(|v| {
            v.iter()
                .filter(|(k, _)| k.starts_with("wsrep_"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if vars.is_some() {
        s.phase = Phase::Running;
        s.fresh = Some(false);
    }
    // In a Primary component, this node's data is that cluster's (after an SST, it may not
    // be what the datadir said at start).
    if s.is_primary() {
        s.uuid = s.wsrep_cluster_state_uuid.clone();
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
            ("wsrep_cluster_conf_id", "5"),
            (
                "wsrep_incoming_addresses",
                "10.0.0.1:3306,10.0.0.2:3306,10.0.0.3:3306",
            ),
            (
                "wsrep_cluster_state_uuid",
                "9acf4d34-acdb-11e6-bcc3-d3e36276629f",
            ),
            ("wsrep_last_committed", "17"),
            ("wsrep_ready", "ON"),
            ("wsrep_desync_count", "0"),
            ("threads_connected", "3"),
            ("var:wsrep_desync", "OFF"),
            ("var:wsrep_reject_queries", "NONE"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        apply(&mut s, Some(&vars));
        assert_eq!(s.phase, Phase::Running);
        assert!(s.is_primary() && s.is_synced());
        assert_eq!(s.fresh, Some(false));
        assert_eq!(s.position(), Some(17));
        assert_eq!(
            s.uuid.as_deref(),
            Some("9acf4d34-acdb-11e6-bcc3-d3e36276629f")
        );
        assert_eq!(s.wsrep_cluster_conf_id, Some(5));
        assert_eq!(s.incoming_addresses().len(), 3);
        assert_eq!(s.wsrep_ready, Some(true));
        assert_eq!(s.wsrep_desync, Some(false));
        assert_eq!(s.wsrep_reject_queries.as_deref(), Some("NONE"));
        assert_eq!(s.threads_connected, Some(3));
        assert_eq!(
            s.wsrep_status.len(),
            11,
            "only wsrep_ status goes to the metrics"
        );
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
        assert!(s.incoming_addresses().is_empty());
        assert_eq!(
            s.last_members.len(),
            3,
            "the last members are kept: those told if the server died"
        );
        s.phase = Phase::Stopping;
        apply(&mut s, Some(&vars));
        assert_eq!(s.phase, Phase::Stopping);
    }
}
