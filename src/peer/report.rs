//! Decoding a peer's report: what the election may take from the network.
//!
//! Anything on the network can answer a node's `/state` question, and a broken peer can
//! answer anything. A report is used only if it is small, well-formed JSON of the right
//! types, and possible: a position below -1, a UUID that is not one, or a Primary component
//! of no members means the peer is broken (or lying), and the peer then counts as unknown,
//! the same as one that does not answer. Unknown is the safe side: the election waits for an
//! unknown node rather than count it absent. Claims that are possible but wrong (a seqno far
//! above everyone's) cannot be told from the truth here; a cluster key
//! ([`super::auth`]) keeps strangers from making them.

use crate::galera::grastate::is_uuid;
use crate::state::NodeState;

/// The largest report accepted, in bytes. A real one is 2 to 3 KiB; the known-node list
/// and the lineage grow with the cluster's life, far below this.
pub const MAX_REPORT: u64 = 64 * 1024;

/// Why a report is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Longer than [`MAX_REPORT`].
    #[error("the report is larger than {MAX_REPORT} bytes")]
    TooLarge,
    /// Not JSON of the expected shape.
    #[error("the report is not a node state: {0}")]
    Malformed(String),
    /// Well-formed, but not a state a node can be in.
    #[error("the report is impossible: {0}")]
    Impossible(&'static str),
}

/// The state a peer reported in `body`, if it can be used.
pub fn decode(body: &[u8]) -> Result<NodeState, ReportError> {
    if body.len() as u64 > MAX_REPORT {
        return Err(ReportError::TooLarge);
    }
    let state: NodeState =
        serde_json::from_slice(body).map_err(|e| ReportError::Malformed(e.to_string()))?;
    check(&state)?;
    Ok(state)
}

/// Refuses the values no node reports.
fn check(s: &NodeState) -> Result<(), ReportError> {
    use ReportError::Impossible;
    let position_ok = |p: Option<i64>| p.is_none_or(|p| p >= -1);
    if !position_ok(s.seqno) || !position_ok(s.wsrep_last_committed) {
        return Err(Impossible("a position below -1"));
    }
    if !position_ok(s.wsrep_local_cached_downto) {
        return Err(Impossible("a cached position below -1"));
    }
    let uuid_ok = |u: &Option<String>| u.as_deref().is_none_or(is_uuid);
    if !uuid_ok(&s.uuid) || !uuid_ok(&s.wsrep_cluster_state_uuid) {
        return Err(Impossible("a cluster UUID that is not a UUID"));
    }
    if !uuid_ok(&s.wsrep_gcomm_uuid) {
        return Err(Impossible("a gcomm UUID that is not a UUID"));
    }
    if s.lineage.iter().any(|e| e.after < -1) {
        return Err(Impossible("a bootstrap from a position below -1"));
    }
    if s.wsrep_local_state.is_some_and(|v| !(0..=5).contains(&v)) {
        return Err(Impossible("a wsrep_local_state outside 0 to 5"));
    }
    if s.is_primary() && s.wsrep_cluster_size.is_none_or(|n| n < 1) {
        return Err(Impossible("a Primary component without members"));
    }
    if s.fresh == Some(true) && s.has_galera_state && s.seqno.is_some_and(|p| p >= 0) {
        return Err(Impossible("an empty datadir with a position"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Phase;

    const UUID: &str = "9acf4d34-acdb-11e6-bcc3-d3e36276629f";

    fn good() -> NodeState {
        NodeState {
            address: "10.0.0.2".parse().ok(),
            phase: Phase::Running,
            fresh: Some(false),
            has_galera_state: true,
            uuid: Some(UUID.into()),
            seqno: Some(-1),
            wsrep_cluster_status: Some("Primary".into()),
            wsrep_cluster_state_uuid: Some(UUID.into()),
            wsrep_cluster_size: Some(3),
            wsrep_local_state: Some(4),
            wsrep_last_committed: Some(42),
            ..NodeState::default()
        }
    }

    #[test]
    fn a_real_report_round_trips() {
        let body = serde_json::to_vec(&good()).unwrap();
        assert_eq!(decode(&body), Ok(good()));
        // An older node leaves newer fields out.
        assert!(decode(br#"{"phase":"waiting","fresh":true}"#).is_ok());
    }

    /// Each broken or lying report, and the kind of refusal.
    #[test]
    fn broken_reports_are_refused() {
        let with = |f: &dyn Fn(&mut NodeState)| {
            let mut s = good();
            f(&mut s);
            serde_json::to_vec(&s).unwrap()
        };
        let big = format!(r#"{{"node_name":"{}"}}"#, "x".repeat(70_000));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "not a node state"),
            (b"<html>502</html>".to_vec(), "not a node state"),
            (b"[1,2,3]".to_vec(), "not a node state"),
            (br#"{"phase":"leader"}"#.to_vec(), "not a node state"),
            (br#"{"seqno":"12"}"#.to_vec(), "not a node state"),
            (br#"{"seqno":1e30}"#.to_vec(), "not a node state"),
            (br#"{"fresh":"no"}"#.to_vec(), "not a node state"),
            (br#"{"address":"node1"}"#.to_vec(), "not a node state"),
            (br#"{"known":"10.0.0.1"}"#.to_vec(), "not a node state"),
            (br#"{"phase":"waiting""#.to_vec(), "not a node state"),
            (big.into_bytes(), "larger than"),
            (with(&|s| s.seqno = Some(-5)), "position below -1"),
            (
                with(&|s| s.wsrep_last_committed = Some(i64::MIN)),
                "position below -1",
            ),
            (
                with(&|s| s.wsrep_local_cached_downto = Some(-2)),
                "cached position",
            ),
            (
                with(&|s| s.uuid = Some("'; DROP TABLE x".into())),
                "not a UUID",
            ),
            (
                with(&|s| s.wsrep_cluster_state_uuid = Some("abc".into())),
                "not a UUID",
            ),
            (
                with(&|s| s.wsrep_local_state = Some(9)),
                "wsrep_local_state",
            ),
            (with(&|s| s.wsrep_cluster_size = Some(0)), "without members"),
            (with(&|s| s.wsrep_cluster_size = None), "without members"),
            (
                with(&|s| {
                    s.fresh = Some(true);
                    s.seqno = Some(10);
                }),
                "empty datadir with a position",
            ),
        ];
        for (body, want) in cases {
            let err = decode(&body).expect_err(want).to_string();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
    }

    proptest::proptest! {
        /// Whatever bytes a peer sends, decoding returns (never panics, never hangs).
        #[test]
        fn any_bytes_decode_or_are_refused(body in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let _ = decode(&body);
        }

        /// JSON-looking text with the report's field names, mutated at random.
        #[test]
        fn any_json_like_text_decodes_or_is_refused(body in r#"\{("(phase|seqno|fresh|uuid|known|lineage|view|address|wsrep_cluster_size)":(-?[0-9]{1,20}|"[a-z0-9.:-]{0,40}"|true|null|\[\]|\{\}),?){0,8}\}"#) {
            if let Ok(s) = decode(body.as_bytes()) {
                proptest::prop_assert!(s.position().is_none_or(|p| p >= -1));
            }
        }
    }
}
