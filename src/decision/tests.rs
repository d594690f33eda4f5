//! The decision table: each row is a situation and what the node must do in it.

use super::*;
use crate::galera::gvwstate::SavedView;

const UUID: &str = "9acf4d34-acdb-11e6-bcc3-d3e36276629f";
const OTHER: &str = "11111111-2222-3333-4444-555555555555";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn params() -> Params {
    Params {
        cluster_size: None,
        settle: Duration::from_secs(5),
        outage_timeout: Duration::from_secs(60),
    }
}

/// A node that is waiting for the election, with a fresh datadir.
fn fresh(last: u8) -> NodeState {
    NodeState {
        address: Some(ip(last)),
        node_name: format!("n{last}"),
        phase: Phase::Waiting,
        fresh: Some(true),
        ..NodeState::default()
    }
}

/// A waiting node with data at `seqno`.
fn data(last: u8, seqno: i64, safe: bool) -> NodeState {
    NodeState {
        fresh: Some(false),
        has_galera_state: true,
        uuid: Some(UUID.into()),
        seqno: Some(seqno),
        safe_to_bootstrap: safe,
        ..fresh(last)
    }
}

/// A running, Synced member of a Primary component.
fn primary(last: u8, index: i64) -> NodeState {
    NodeState {
        phase: Phase::Running,
        wsrep_cluster_status: Some("Primary".into()),
        wsrep_local_state: Some(4),
        wsrep_local_index: Some(index),
        wsrep_cluster_state_uuid: Some(UUID.into()),
        wsrep_cluster_size: Some(2),
        wsrep_last_committed: Some(50),
        ..data(last, -1, false)
    }
}

fn with_view(mut s: NodeState, view: &str, members: &[u8]) -> NodeState {
    s.view = Some(SavedView {
        my_uuid: format!("uuid-{}", s.address.unwrap()),
        view_id: view.into(),
        members: members.iter().map(|m| format!("uuid-{}", ip(*m))).collect(),
    });
    s
}

fn phase(mut s: NodeState, p: Phase) -> NodeState {
    s.phase = p;
    s
}

/// What the row expects.
#[derive(Debug, PartialEq)]
enum Want {
    Bootstrap,
    Join,
    Wait,
    Refuse,
}

struct Case {
    name: &'static str,
    own: NodeState,
    /// Other listed nodes and their answers (`None`: unknown).
    peers: Vec<(u8, Option<NodeState>)>,
    stable_for: u64,
    waited: u64,
    force: bool,
    cluster_size: Option<usize>,
    allow_pc_recovery: bool,
    want: Want,
    /// A phrase the reason must contain.
    reason: &'static str,
}

fn case(
    name: &'static str,
    own: NodeState,
    peers: Vec<(u8, Option<NodeState>)>,
    want: Want,
    reason: &'static str,
) -> Case {
    Case {
        name,
        own,
        peers,
        stable_for: 10,
        waited: 0,
        force: false,
        cluster_size: None,
        allow_pc_recovery: true,
        want,
        reason,
    }
}

fn run(c: &Case) -> Plan {
    let own_addr = c.own.address.unwrap();
    let mut members: Vec<IpAddr> = c.peers.iter().map(|(l, _)| ip(*l)).collect();
    members.push(own_addr);
    members.sort();
    let peers: Vec<(IpAddr, Option<NodeState>)> =
        c.peers.iter().map(|(l, s)| (ip(*l), s.clone())).collect();
    let p = Params {
        cluster_size: c.cluster_size,
        ..params()
    };
    decide(&Inputs {
        own: &c.own,
        members: &members,
        peers: &peers,
        stable_for: Duration::from_secs(c.stable_for),
        waited: Duration::from_secs(c.waited),
        force_bootstrap: c.force,
        allow_pc_recovery: c.allow_pc_recovery,
        params: &p,
    })
}

fn cases() -> Vec<Case> {
    vec![
        // --- 1. A Primary component exists.
        case(
            "fresh node joins a running cluster",
            fresh(4),
            vec![(1, Some(primary(1, 0))), (2, Some(primary(2, 1)))],
            Want::Join,
            "joining it",
        ),
        case(
            "restarted node with data of the same cluster joins (IST)",
            data(3, 40, false),
            vec![(1, Some(primary(1, 0))), (2, Some(primary(2, 1)))],
            Want::Join,
            "joining it",
        ),
        case(
            "one Primary peer is enough, others unknown",
            fresh(3),
            vec![(1, Some(primary(1, 0))), (2, None)],
            Want::Join,
            "joining it",
        ),
        case(
            "data of another cluster is refused, never wiped",
            NodeState {
                uuid: Some(OTHER.into()),
                ..data(3, 40, false)
            },
            vec![(1, Some(primary(1, 0)))],
            Want::Refuse,
            "belongs to cluster",
        ),
        case(
            "data without Galera state is refused",
            NodeState {
                has_galera_state: false,
                uuid: None,
                ..data(3, 40, false)
            },
            vec![(1, Some(primary(1, 0)))],
            Want::Refuse,
            "without Galera state",
        ),
        Case {
            force: true,
            ..case(
                "FORCE_BOOTSTRAP does not split a running cluster",
                data(3, 40, true),
                vec![(1, Some(primary(1, 0)))],
                Want::Join,
                "FORCE_BOOTSTRAP ignored",
            )
        },
        case(
            "a Primary that does not know its cluster yet is not joined",
            data(1, 14, false),
            vec![
                (
                    2,
                    Some(NodeState {
                        wsrep_cluster_state_uuid: Some(NIL_UUID.into()),
                        ..primary(2, 0)
                    }),
                ),
                (
                    3,
                    Some(NodeState {
                        wsrep_cluster_state_uuid: None,
                        ..primary(3, 1)
                    }),
                ),
            ],
            Want::Wait,
            "most advanced",
        ),
        // --- 2. Manual override.
        Case {
            force: true,
            ..case(
                "FORCE_BOOTSTRAP with no Primary",
                data(3, 10, false),
                vec![(1, Some(data(1, 40, false)))],
                Want::Bootstrap,
                "manual override",
            )
        },
        // --- 3. A peer has committed to a plan.
        case(
            "a peer is bootstrapping",
            fresh(2),
            vec![(1, Some(phase(fresh(1), Phase::Bootstrapping)))],
            Want::Wait,
            "bootstrapping",
        ),
        case(
            "a peer is joining",
            data(2, 5, false),
            vec![(1, Some(phase(data(1, 9, false), Phase::Joining)))],
            Want::Wait,
            "joining",
        ),
        // --- 4. Fresh cluster.
        case(
            "seed alone, stable: bootstraps",
            fresh(1),
            vec![],
            Want::Bootstrap,
            "lowest address",
        ),
        Case {
            stable_for: 2,
            ..case(
                "seed alone, not settled yet",
                fresh(1),
                vec![],
                Want::Wait,
                "unchanged",
            )
        },
        case(
            "three fresh: the lowest bootstraps",
            fresh(1),
            vec![(2, Some(fresh(2))), (3, Some(fresh(3)))],
            Want::Bootstrap,
            "lowest address",
        ),
        case(
            "three fresh: the others wait for it",
            fresh(2),
            vec![(1, Some(fresh(1))), (3, Some(fresh(3)))],
            Want::Wait,
            "10.0.0.1 (lowest address) bootstraps",
        ),
        case(
            "a listed node that does not answer is unknown, not absent",
            fresh(1),
            vec![(2, Some(fresh(2))), (3, None)],
            Want::Wait,
            "waiting for 10.0.0.3",
        ),
        case(
            "a peer still discovering has not reported",
            fresh(1),
            vec![(2, Some(phase(fresh(2), Phase::Discovering)))],
            Want::Wait,
            "waiting for 10.0.0.2",
        ),
        Case {
            cluster_size: Some(3),
            ..case(
                "CLUSTER_SIZE not reached",
                fresh(1),
                vec![(2, Some(fresh(2)))],
                Want::Wait,
                "2 of CLUSTER_SIZE=3",
            )
        },
        Case {
            cluster_size: Some(3),
            ..case(
                "CLUSTER_SIZE reached",
                fresh(1),
                vec![(2, Some(fresh(2))), (3, Some(fresh(3)))],
                Want::Bootstrap,
                "lowest address",
            )
        },
        // --- 5. Full outage.
        case(
            "the node with the highest seqno bootstraps",
            data(2, 50, false),
            vec![(1, Some(data(1, 40, false))), (3, Some(data(3, 45, false)))],
            Want::Bootstrap,
            "most advanced",
        ),
        case(
            "a stale node never bootstraps while a newer one is known",
            data(1, 40, false),
            vec![(2, Some(data(2, 50, false))), (3, Some(data(3, 45, false)))],
            Want::Wait,
            "10.0.0.2 has the most advanced data",
        ),
        case(
            "ties go to the lowest address",
            data(1, 50, false),
            vec![(2, Some(data(2, 50, false))), (3, Some(data(3, 40, false)))],
            Want::Bootstrap,
            "most advanced",
        ),
        case(
            "ties: the higher address waits",
            data(2, 50, false),
            vec![(1, Some(data(1, 50, false))), (3, Some(data(3, 40, false)))],
            Want::Wait,
            "10.0.0.1 has the most advanced",
        ),
        case(
            "the last to leave wins a tie",
            data(3, 50, true),
            vec![(1, Some(data(1, 50, false))), (2, Some(data(2, 50, false)))],
            Want::Bootstrap,
            "last to leave",
        ),
        case(
            "the last to leave needs nobody else",
            data(3, 50, true),
            vec![(1, None), (2, None)],
            Want::Bootstrap,
            "last to leave",
        ),
        case(
            "alone, not last to leave: wait for the others",
            data(1, 40, false),
            vec![],
            Want::Wait,
            "1 of 2 expected",
        ),
        Case {
            waited: 600,
            ..case(
                "alone, not last to leave, even after the timeout",
                data(1, 40, false),
                vec![],
                Want::Wait,
                "1 of 2 expected",
            )
        },
        case(
            "fresh node in an outage waits for the data nodes",
            fresh(4),
            vec![(1, Some(data(1, 40, false))), (2, Some(data(2, 50, false)))],
            Want::Wait,
            "10.0.0.2 has the most advanced",
        ),
        case(
            "a missing node is waited for",
            data(2, 50, false),
            vec![(1, Some(data(1, 40, false))), (3, None)],
            Want::Wait,
            "waiting for 10.0.0.3",
        ),
        Case {
            waited: 61,
            ..case(
                "after the timeout, a majority is enough",
                data(2, 50, false),
                vec![(1, Some(data(1, 40, false))), (3, None)],
                Want::Bootstrap,
                "most advanced",
            )
        },
        Case {
            waited: 61,
            cluster_size: Some(5),
            ..case(
                "after the timeout, a minority is not enough",
                data(2, 50, false),
                vec![(1, Some(data(1, 40, false))), (3, None)],
                Want::Wait,
                "2 of 5",
            )
        },
        case(
            "a recovering peer has not reported",
            data(2, 50, false),
            vec![(1, Some(phase(data(1, 40, false), Phase::Recovering)))],
            Want::Wait,
            "waiting for 10.0.0.1",
        ),
        case(
            "data of two clusters is refused",
            data(1, 50, false),
            vec![(
                2,
                Some(NodeState {
                    uuid: Some(OTHER.into()),
                    ..data(2, 40, false)
                }),
            )],
            Want::Refuse,
            "different clusters",
        ),
        Case {
            cluster_size: Some(3),
            ..case(
                "CLUSTER_SIZE raises the expected count",
                data(2, 50, true),
                vec![(1, Some(data(1, 40, false)))],
                Want::Bootstrap,
                "last to leave",
            )
        },
        Case {
            cluster_size: Some(3),
            ..case(
                "CLUSTER_SIZE: wait for the third",
                data(2, 50, false),
                vec![(1, Some(data(1, 40, false)))],
                Want::Wait,
                "2 of 3",
            )
        },
        // pc.recovery: every member of the saved view is back.
        case(
            "all view members back: pc.recovery",
            with_view(data(1, -1, false), "5 x 3", &[1, 2, 3]),
            vec![
                (2, Some(with_view(data(2, -1, false), "5 x 3", &[1, 2, 3]))),
                (3, Some(with_view(data(3, -1, false), "5 x 3", &[1, 2, 3]))),
            ],
            Want::Join,
            "pc.recovery",
        ),
        case(
            "pc.recovery while a member already started it",
            with_view(data(1, 7, false), "5 x 3", &[1, 2]),
            vec![(
                2,
                Some(with_view(
                    phase(data(2, 7, false), Phase::Joining),
                    "5 x 3",
                    &[1, 2],
                )),
            )],
            Want::Join,
            "pc.recovery",
        ),
        case(
            "a view member is missing: no pc.recovery",
            with_view(data(1, 30, false), "5 x 3", &[1, 2, 3]),
            vec![(2, Some(with_view(data(2, 30, false), "5 x 3", &[1, 2, 3])))],
            Want::Wait,
            "2 of 3",
        ),
        case(
            "a member with a different (older) view: election",
            with_view(data(1, 20, false), "4 x 3", &[1, 2, 3]),
            vec![
                (2, Some(with_view(data(2, 30, false), "5 x 2", &[2, 3]))),
                (3, Some(with_view(data(3, 30, false), "5 x 2", &[2, 3]))),
            ],
            Want::Wait,
            "most advanced",
        ),
        // A running, non-Primary node (cut off earlier) reports what it has committed.
        case(
            "a running non-Primary peer with older data does not block",
            data(1, 60, false),
            vec![
                (
                    2,
                    Some(NodeState {
                        wsrep_cluster_status: Some("non-Primary".into()),
                        ..primary(2, 0)
                    }),
                ),
                (3, Some(data(3, 55, false))),
            ],
            Want::Bootstrap,
            "most advanced",
        ),
    ]
}

#[test]
fn decision_table() {
    let mut failures = Vec::new();
    for c in cases() {
        let plan = run(&c);
        let (got, reason) = match &plan {
            Plan::Bootstrap { reason } => (Want::Bootstrap, reason),
            Plan::Join { reason, .. } => (Want::Join, reason),
            Plan::Wait { reason } => (Want::Wait, reason),
            Plan::Refuse { reason } => (Want::Refuse, reason),
        };
        if got != c.want || !reason.contains(c.reason) {
            failures.push(format!(
                "{}: want {:?} ({:?}), got {plan:?}",
                c.name, c.want, c.reason
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn join_lists_every_node_and_puts_the_writer_last_among_donors() {
    let own = fresh(4);
    let members = [ip(1), ip(2), ip(3), ip(4)];
    let peers = vec![
        (ip(1), Some(primary(1, 2))),
        (ip(2), Some(primary(2, 0))),
        (ip(3), Some(primary(3, 1))),
    ];
    let plan = decide(&Inputs {
        own: &own,
        members: &members,
        peers: &peers,
        stable_for: Duration::ZERO,
        waited: Duration::ZERO,
        force_bootstrap: false,
        allow_pc_recovery: true,
        params: &params(),
    });
    match plan {
        Plan::Join {
            members: m, donors, ..
        } => {
            assert_eq!(m, members);
            assert_eq!(
                donors,
                ["n1", "n3", "n2"],
                "n2 has wsrep_local_index 0: the writer"
            );
        }
        other => panic!("{other:?}"),
    }
}
