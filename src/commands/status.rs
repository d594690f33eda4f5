//! `galera-init status`: every node of the cluster in a table like MaxScale's
//! `list servers` (Server, Address, Port, Connections, Status), or as JSON.
//!
//! It runs in any node's container (`docker exec TASK galera-init status`), where
//! `tasks.$DB_SERVICE_NAME` lists the nodes, or anywhere the nodes' state ports are
//! reachable, given a DNS name or addresses. Nodes that DNS does not list yet (Swarm adds a
//! task only once it is healthy) are found through the others' peer lists.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::discovery::{DnsError, Resolve};
use crate::galera::galera_host;
use crate::health::http::Status;
use crate::health::phase_words;
use crate::state::Phase;

/// How long a node may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The node's name (its hostname), or its address when it does not answer.
    pub server: String,
    /// Its address.
    pub address: IpAddr,
    /// Its client port.
    pub port: u16,
    /// `Threads_connected`, when known.
    pub connections: Option<i64>,
    /// `Master, Synced, Running`, `Slave, Synced, Running`, `Donor, Running`, `Joining`,
    /// `Waiting (reason)`, `Draining` or `Down`.
    pub status: String,
    /// What the node said, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Status>,
}

/// The status words for a node that answered `st` (`None`: it did not).
pub fn status_words(st: Option<&Status>) -> String {
    let Some(st) = st else {
        return "Down".into();
    };
    let s = &st.node;
    if s.draining || s.phase == Phase::Stopping {
        return "Draining".into();
    }
    match s.phase {
        Phase::Running if st.ready.ok && st.writer.ok => "Master, Synced, Running".into(),
        Phase::Running if st.ready.ok => "Slave, Synced, Running".into(),
        Phase::Running if s.is_donor() => "Donor, Running".into(),
        Phase::Running if s.is_primary() => match s.wsrep_local_state {
            Some(1 | 3) => "Joining".into(),
            _ => format!("Running ({})", st.ready.reason),
        },
        Phase::Running => format!(
            "Waiting (non-Primary: {})",
            s.decision
                .as_deref()
                .unwrap_or("cut off from the Primary component")
        ),
        Phase::Bootstrapping | Phase::Joining => "Joining".into(),
        _ => format!("Waiting ({})", phase_words(s)),
    }
}

/// Asks `addrs` (and every node they know of) for their status, on `port`.
pub fn collect(addrs: &[IpAddr], port: u16) -> Vec<Row> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(true)
        .build()
        .new_agent();
    let fetch = |a: IpAddr| -> Option<Status> {
        let url = format!("http://{}:{port}/status", galera_host(a));
        agent
            .get(&url)
            .call()
            .ok()?
            .body_mut()
            .read_json::<Status>()
            .ok()
    };
    let mut seen: BTreeMap<IpAddr, Option<Status>> = BTreeMap::new();
    let mut todo: Vec<IpAddr> = addrs.to_vec();
    while !todo.is_empty() {
        todo.sort();
        todo.dedup();
        todo.retain(|a| !seen.contains_key(a));
        let answers: Vec<(IpAddr, Option<Status>)> = std::thread::scope(|sc| {
            let hs: Vec<_> = todo
                .iter()
                .map(|a| (*a, sc.spawn(move || fetch(*a))))
                .collect();
            hs.into_iter()
                .map(|(a, h)| (a, h.join().unwrap_or(None)))
                .collect()
        });
        todo.clear();
        for (a, st) in answers {
            if let Some(st) = &st {
                todo.extend(st.node.known.iter().copied());
                todo.extend(st.node.incoming_addresses());
                todo.extend(st.peers.iter().map(|p| p.address));
            }
            seen.insert(a, st);
        }
    }
    seen.into_iter()
        .map(|(address, st)| Row {
            server: st
                .as_ref()
                .map(|s| s.node.node_name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| address.to_string()),
            address,
            port: 3306,
            connections: st.as_ref().and_then(|s| s.node.threads_connected),
            status: status_words(st.as_ref()),
            detail: st,
        })
        .collect()
}

/// A target that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// DNS has no such name.
    #[error("{0}: no such name in DNS")]
    NoSuchName(String),
    /// DNS did not answer usably.
    #[error("{0}: {1}")]
    Dns(String, DnsError),
}

/// The addresses of `targets`: addresses as they are, names through DNS.
pub fn resolve(targets: &[String], dns: &mut dyn Resolve) -> Result<Vec<IpAddr>, ResolveError> {
    let mut out = Vec::new();
    for t in targets {
        if let Ok(a) = t.parse::<IpAddr>() {
            out.push(a);
            continue;
        }
        match dns.resolve(t) {
            Ok(v) => out.extend(v),
            Err(DnsError::NxDomain | DnsError::NoRecords) => {
                return Err(ResolveError::NoSuchName(t.clone()));
            }
            Err(e) => return Err(ResolveError::Dns(t.clone(), e)),
        }
    }
    Ok(out)
}

/// Prints `rows` as a table.
pub fn print_table(rows: &[Row], out: &mut dyn Write) {
    let head = ["Server", "Address", "Port", "Connections", "Status"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.server.clone(),
                r.address.to_string(),
                r.port.to_string(),
                r.connections.map(|c| c.to_string()).unwrap_or_default(),
                r.status.clone(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, v) in width.iter_mut().zip(c) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |v: [&str; 5]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in v.iter().zip(width).enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$} | "));
            }
        }
        s
    };
    let _ = writeln!(out, "{}", line(head));
    let _ = writeln!(
        out,
        "{}",
        width
            .iter()
            .enumerate()
            .map(|(i, w)| "-".repeat(*w + if i == 4 { 0 } else { 1 }))
            .collect::<Vec<_>>()
            .join("+-")
    );
    for c in &cells {
        let _ = writeln!(out, "{}", line([&c[0], &c[1], &c[2], &c[3], &c[4]]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Verdict;
    use crate::state::NodeState;

    fn st(node: NodeState, ready: bool, writer: bool) -> Status {
        let v = |ok| Verdict {
            ok,
            reason: String::new(),
        };
        Status {
            node,
            live: v(true),
            ready: v(ready),
            writer: v(writer),
            peers: Vec::new(),
        }
    }

    fn running(state: i64, status: &str) -> NodeState {
        NodeState {
            phase: Phase::Running,
            wsrep_cluster_status: Some(status.into()),
            wsrep_cluster_state_uuid: Some("9acf4d34-acdb-11e6-bcc3-d3e36276629f".into()),
            wsrep_local_state: Some(state),
            ..NodeState::default()
        }
    }

    #[test]
    fn status_words_follow_maxscale() {
        let rows = [
            (None, "Down"),
            (
                Some(st(running(4, "Primary"), true, true)),
                "Master, Synced, Running",
            ),
            (
                Some(st(running(4, "Primary"), true, false)),
                "Slave, Synced, Running",
            ),
            (
                Some(st(running(2, "Primary"), false, false)),
                "Donor, Running",
            ),
            (Some(st(running(1, "Primary"), false, false)), "Joining"),
            (
                Some(st(
                    NodeState {
                        phase: Phase::Joining,
                        ..NodeState::default()
                    },
                    false,
                    false,
                )),
                "Joining",
            ),
            (
                Some(st(
                    NodeState {
                        phase: Phase::Discovering,
                        ..NodeState::default()
                    },
                    false,
                    false,
                )),
                "Waiting (waiting for DNS to list this node)",
            ),
            (
                Some(st(
                    NodeState {
                        draining: true,
                        ..running(4, "Primary")
                    },
                    false,
                    false,
                )),
                "Draining",
            ),
        ];
        for (s, want) in rows {
            assert_eq!(status_words(s.as_ref()), want);
        }
        let s = st(running(0, "non-Primary"), false, false);
        assert!(status_words(Some(&s)).starts_with("Waiting (non-Primary"));
    }

    #[test]
    fn table_lines_up() {
        let rows = vec![Row {
            server: "node1".into(),
            address: "10.0.0.2".parse().unwrap(),
            port: 3306,
            connections: Some(4),
            status: "Master, Synced, Running".into(),
            detail: None,
        }];
        let mut out = Vec::new();
        print_table(&rows, &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Server | Address  | Port | Connections | Status");
        assert_eq!(
            lines[2],
            "node1  | 10.0.0.2 | 3306 | 4           | Master, Synced, Running"
        );
    }
}
