//! `/metrics`: Prometheus' text format.
//!
//! The `wsrep_%` status goes out under mysqld_exporter's names
//! (`mysql_global_status_wsrep_cluster_size`…) with its value mapping (`ON`/`Primary` 1,
//! `OFF`/`non-Primary` 0), so the Galera panels of existing dashboards work unchanged; no
//! exporter and no monitoring account are needed. galera-init's own figures are
//! `galera_init_*`.

use std::fmt::Write;

use super::Verdict;
use crate::state::{NodeState, Phase};

/// The verdicts that go out as gauges.
pub struct Verdicts<'a> {
    /// `/live`.
    pub live: &'a Verdict,
    /// `/health`.
    pub ready: &'a Verdict,
    /// `/master`.
    pub writer: &'a Verdict,
}

/// mysqld_exporter's reading of a status value.
fn value(v: &str) -> Option<f64> {
    match v {
        "ON" | "YES" | "Primary" => Some(1.0),
        "OFF" | "NO" | "non-Primary" | "Disconnected" => Some(0.0),
        _ => v.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

/// The metrics text for a node in state `s`.
pub fn render(s: &NodeState, v: &Verdicts) -> String {
    let mut out = String::new();
    let up = s.phase == Phase::Running && s.wsrep_cluster_status.is_some();
    gauge(
        &mut out,
        "mysql_up",
        "Whether the server answered its last status reading.",
        f64::from(u8::from(up)),
    );
    for (name, raw) in &s.wsrep_status {
        if let Some(x) = value(raw) {
            let metric = format!("mysql_global_status_{name}");
            let _ = writeln!(
                out,
                "# HELP {metric} Generic metric from SHOW GLOBAL STATUS.\n# TYPE {metric} \
                 untyped\n{metric} {x}"
            );
        }
    }
    if let Some(uuid) = &s.wsrep_cluster_state_uuid {
        let _ = writeln!(
            out,
            "# HELP mysql_galera_status_info PXC/Galera status information.\n# TYPE \
             mysql_galera_status_info gauge\nmysql_galera_status_info{{wsrep_cluster_state_uuid=\"{}\",wsrep_local_state_comment=\"{}\"}} 1",
            escape(uuid),
            escape(s.wsrep_local_state_comment.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        out,
        "# HELP galera_init_phase Where the node is in its life (1 for the current phase).\n\
         # TYPE galera_init_phase gauge"
    );
    for (p, name) in [
        (Phase::Discovering, "discovering"),
        (Phase::Recovering, "recovering"),
        (Phase::Waiting, "waiting"),
        (Phase::Bootstrapping, "bootstrapping"),
        (Phase::Joining, "joining"),
        (Phase::Running, "running"),
        (Phase::Stopping, "stopping"),
    ] {
        let _ = writeln!(
            out,
            "galera_init_phase{{phase=\"{name}\"}} {}",
            u8::from(s.phase == p)
        );
    }
    let _ = writeln!(
        out,
        "# HELP galera_init_mariadbd_starts_total How many times galera-init started mariadbd.\n\
         # TYPE galera_init_mariadbd_starts_total counter\ngalera_init_mariadbd_starts_total {}",
        s.mariadbd_starts
    );
    if let Some(d) = &s.decision {
        let (plan, reason) = d.split_once(": ").unwrap_or((d.as_str(), ""));
        let _ = writeln!(
            out,
            "# HELP galera_init_decision_info The last decision of the election and its reason.\n\
             # TYPE galera_init_decision_info gauge\n\
             galera_init_decision_info{{plan=\"{}\",reason=\"{}\"}} 1",
            escape(plan),
            escape(reason)
        );
    }
    for (name, help, verdict) in [
        (
            "galera_init_live",
            "The Docker health check's verdict (/live).",
            v.live,
        ),
        (
            "galera_init_ready",
            "Whether the node can serve reads (/health).",
            v.ready,
        ),
        (
            "galera_init_writer",
            "Whether the node is the writer (/master).",
            v.writer,
        ),
    ] {
        gauge(&mut out, name, help, f64::from(u8::from(verdict.ok)));
    }
    gauge(
        &mut out,
        "galera_init_draining",
        "Whether a stop signal came and the node drains.",
        f64::from(u8::from(s.draining)),
    );
    out
}
