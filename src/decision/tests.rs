//! The decision table: each row is a situation and what the node must do in it.

use super::*;
use crate::galera::grastate::NIL_UUID;
use crate::galera::gvwstate::SavedView;
use crate::record::{LastView, Member};

const UUID: &str = "9acf4d34-acdb-11e6-bcc3-d3e36276629f";
const OTHER: &str = "11111111-2222-3333-4444-555555555555";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn epoch(id: &str, after: i64) -> Epoch {
    Epoch {
        id: id.into(),
        after,
    }
}

fn params() -> Params {
    Params {
        cluster_size: None,
        settle: Duration::from_secs(5),
        outage_timeout: Duration::from_secs(60),
        sst: crate::config::SstSetting::Auto,
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

/// A waiting node with data at `seqno` that crashed (no clean shutdown), with no record of
/// its last view (data from before the record existed).
fn data(last: u8, seqno: i64, safe: bool) -> NodeState {
    NodeState {
        fresh: Some(false),
        has_galera_state: true,
        uuid: Some(UUID.into()),
        seqno: Some(seqno),
        safe_to_bootstrap: safe,
        volume_id: Some(format!("vol{last}")),
        lineage: vec![epoch("a", -1)],
        ..fresh(last)
    }
}

/// `s` with a record of its last Primary view: `members`, by node number.
fn viewed(mut s: NodeState, members: &[u8]) -> NodeState {
    s.last_view = Some(LastView {
        cluster: UUID.into(),
        conf_id: 7,
        members: members
            .iter()
            .map(|m| Member {
                volume_id: Some(format!("vol{m}")),
                address: Some(ip(*m)),
                name: format!("n{m}"),
            })
            .collect(),
        synced: true,
    });
    s
}

/// `s` with its last view `members`, after it recorded that node `candidate` bootstraps.
fn recorded(s: NodeState, members: &[u8], candidate: u8) -> NodeState {
    accepting(viewed(s, members), candidate)
}

/// `s` after it recorded that node `candidate` bootstraps.
fn accepting(mut s: NodeState, candidate: u8) -> NodeState {
    s.accepted = Some(Member {
        volume_id: Some(format!("vol{candidate}")),
        address: Some(ip(candidate)),
        name: format!("n{candidate}"),
    });
    s
}

/// `s` that was still joining (not Synced) in its last view.
fn joining_in_view(mut s: NodeState) -> NodeState {
    if let Some(v) = &mut s.last_view {
        v.synced = false;
    }
    s
}

/// `s` after a clean shutdown while the other members of its component stayed.
fn clean(mut s: NodeState) -> NodeState {
    s.left_while_others = !s.safe_to_bootstrap;
    s
}

/// A running, Synced member of a Primary component at seqno 50.
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

/// `s`, reporting `bytes` of data.
fn sized(mut s: NodeState, bytes: u64) -> NodeState {
    s.data_bytes = Some(bytes);
    s
}

/// A running node that lost its Primary component, holding `seqno`.
fn survivor(last: u8, seqno: i64) -> NodeState {
    NodeState {
        phase: Phase::Running,
        wsrep_cluster_status: Some("non-Primary".into()),
        wsrep_last_committed: Some(seqno),
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

/// `s` whose lineage restarted at seqno 30 (an override or a majority bootstrap).
fn restarted(mut s: NodeState) -> NodeState {
    s.lineage.push(epoch("b", 30));
    s
}

/// `s` without a record of its history (a restored backup, a lost galera-init.json).
fn record_less(mut s: NodeState) -> NodeState {
    s.lineage.clear();
    s
}

fn phase(mut s: NodeState, p: Phase) -> NodeState {
    s.phase = p;
    s
}

fn overridden(mut s: NodeState) -> NodeState {
    s.override_requested = Override::Service;
    s
}

/// What the row expects.
#[derive(Debug, PartialEq)]
enum Want {
    Bootstrap,
    Join,
    Wait,
}

struct Case {
    name: &'static str,
    own: NodeState,
    /// Other listed nodes and their answers (`None`: unknown).
    peers: Vec<(u8, Option<NodeState>)>,
    stable_for: u64,
    waited: u64,
    force: Override,
    cluster_size: Option<usize>,
    allow_pc_recovery: bool,
    /// Peers that have said nothing usable for OUTAGE_TIMEOUT.
    gone: Vec<u8>,
    /// Peers whose answer cannot be used (another cluster key).
    unreadable: Vec<u8>,
    /// Peers silent now that ran a server when last heard from.
    went_silent: Vec<u8>,
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
        force: Override::None,
        cluster_size: None,
        allow_pc_recovery: true,
        gone: Vec::new(),
        unreadable: Vec::new(),
        went_silent: Vec::new(),
        want,
        reason,
    }
}

fn run(c: &Case) -> Plan {
    let own_addr = c.own.address.unwrap();
    let mut listed: Vec<IpAddr> = c.peers.iter().map(|(l, _)| ip(*l)).collect();
    listed.push(own_addr);
    listed.sort();
    let peers: Vec<(IpAddr, Option<NodeState>)> =
        c.peers.iter().map(|(l, s)| (ip(*l), s.clone())).collect();
    let p = Params {
        cluster_size: c.cluster_size,
        ..params()
    };
    let gone: Vec<IpAddr> = c.gone.iter().map(|l| ip(*l)).collect();
    let unreadable: Vec<IpAddr> = c.unreadable.iter().map(|l| ip(*l)).collect();
    let went_silent: Vec<IpAddr> = c.went_silent.iter().map(|l| ip(*l)).collect();
    decide(&Inputs {
        own: &c.own,
        listed: &listed,
        peers: &peers,
        gone: &gone,
        unreadable: &unreadable,
        went_silent: &went_silent,
        stable_for: Duration::from_secs(c.stable_for),
        waited: Duration::from_secs(c.waited),
        force: c.force,
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
            "an empty joiner waits while a lower one takes its mariabackup SST (large data)",
            fresh(4),
            vec![
                (1, Some(sized(primary(1, 0), 2 << 30))),
                (2, Some(phase(fresh(2), Phase::Joining))),
            ],
            Want::Wait,
            "join one at a time",
        ),
        case(
            "an empty joiner waits for a mariabackup SST when the donor's size is unknown",
            fresh(4),
            vec![
                (1, Some(primary(1, 0))),
                (2, Some(phase(fresh(2), Phase::Joining))),
            ],
            Want::Wait,
            "join one at a time",
        ),
        case(
            "empty joiners start rsync SSTs together (small data): Galera serves them in turn",
            fresh(4),
            vec![
                (
                    1,
                    Some(NodeState {
                        wsrep_incoming_addresses: Some("10.0.0.1:3306,10.0.0.2:3306".into()),
                        ..sized(primary(1, 0), 30 << 20)
                    }),
                ),
                (2, Some(phase(fresh(2), Phase::Joining))),
            ],
            Want::Join,
            "joining it",
        ),
        case(
            "a joiner waits while a lower one enters the component",
            data(4, 40, false),
            vec![
                (1, Some(primary(1, 0))),
                (2, Some(phase(data(2, 40, false), Phase::Joining))),
            ],
            Want::Wait,
            "joiners enter one at a time",
        ),
        case(
            "a joiner goes once the lower one is a member (transfers may overlap)",
            data(4, 40, false),
            vec![
                (
                    1,
                    Some(NodeState {
                        wsrep_incoming_addresses: Some("10.0.0.1:3306,10.0.0.2:3306".into()),
                        ..primary(1, 0)
                    }),
                ),
                (2, Some(phase(data(2, 40, false), Phase::Joining))),
            ],
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
            "data of another cluster waits, never wiped",
            NodeState {
                uuid: Some(OTHER.into()),
                ..data(3, 40, false)
            },
            vec![(1, Some(primary(1, 0)))],
            Want::Wait,
            "belongs to cluster",
        ),
        case(
            "data without Galera state waits, kept",
            NodeState {
                has_galera_state: false,
                uuid: None,
                ..data(3, 40, false)
            },
            vec![(1, Some(primary(1, 0)))],
            Want::Wait,
            "without Galera state",
        ),
        Case {
            force: Override::Service,
            ..case(
                "an override does not split a running cluster",
                data(3, 40, true),
                vec![(1, Some(primary(1, 0)))],
                Want::Join,
                "override is not needed",
            )
        },
        case(
            "a node ahead of the running cluster waits, never joins",
            data(3, 60, false),
            vec![(1, Some(primary(1, 0))), (2, Some(primary(2, 1)))],
            Want::Wait,
            "ahead of the running Primary component",
        ),
        case(
            "a node whose history diverged from the cluster's waits",
            data(3, 40, false),
            vec![(
                1,
                Some(NodeState {
                    lineage: vec![epoch("a", -1), epoch("b", 30)],
                    ..primary(1, 0)
                }),
            )],
            Want::Wait,
            "diverged from the running Primary component's after seqno 30",
        ),
        case(
            "a node behind the cluster on the same lineage joins",
            data(3, 20, false),
            vec![(
                1,
                Some(NodeState {
                    lineage: vec![epoch("a", -1), epoch("b", 30)],
                    ..primary(1, 0)
                }),
            )],
            Want::Join,
            "joining it",
        ),
        case(
            "two Primary components of different clusters: take no side",
            fresh(3),
            vec![
                (1, Some(primary(1, 0))),
                (
                    2,
                    Some(NodeState {
                        wsrep_cluster_state_uuid: Some(OTHER.into()),
                        ..primary(2, 0)
                    }),
                ),
            ],
            Want::Wait,
            "2 different Primary components",
        ),
        case(
            "a running non-Primary node leaves the merge to Galera",
            survivor(3, 50),
            vec![(1, Some(primary(1, 0)))],
            Want::Wait,
            "Galera merges this node",
        ),
        case(
            "a Primary that does not know its cluster yet is not joined",
            viewed(data(1, 14, false), &[1, 2, 3]),
            vec![
                (
                    2,
                    Some(viewed(
                        NodeState {
                            wsrep_cluster_state_uuid: Some(NIL_UUID.into()),
                            ..primary(2, 0)
                        },
                        &[1, 2, 3],
                    )),
                ),
                (
                    3,
                    Some(viewed(
                        NodeState {
                            wsrep_cluster_state_uuid: None,
                            ..primary(3, 1)
                        },
                        &[1, 2, 3],
                    )),
                ),
            ],
            Want::Wait,
            "most advanced",
        ),
        // --- 2. pc.recovery: every member of the saved view is back.
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
            "a member with a different (older) view: election",
            viewed(
                with_view(data(1, 20, false), "4 x 3", &[1, 2, 3]),
                &[1, 2, 3],
            ),
            vec![
                (
                    2,
                    Some(viewed(
                        with_view(data(2, 30, false), "5 x 2", &[2, 3]),
                        &[2, 3],
                    )),
                ),
                (
                    3,
                    Some(viewed(
                        with_view(data(3, 30, false), "5 x 2", &[2, 3]),
                        &[2, 3],
                    )),
                ),
            ],
            Want::Wait,
            "n2 (10.0.0.2) has the most advanced data",
        ),
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
        Case {
            cluster_size: Some(3),
            ..case(
                "an override skips CLUSTER_SIZE, still the lowest address bootstraps",
                fresh(1),
                vec![(2, Some(overridden(fresh(2))))],
                Want::Bootstrap,
                "not waiting for CLUSTER_SIZE",
            )
        },
        Case {
            cluster_size: Some(3),
            force: Override::Service,
            ..case(
                "an override on a higher address: it waits for the lowest",
                fresh(2),
                vec![(1, Some(fresh(1)))],
                Want::Wait,
                "10.0.0.1 (lowest address) bootstraps",
            )
        },
        case(
            "a fresh cluster waits for a listed node that says nothing (it may hold data)",
            fresh(1),
            vec![(2, None)],
            Want::Wait,
            "to start without it, run `galera-init bootstrap`",
        ),
        Case {
            gone: vec![2],
            ..case(
                "a fresh cluster waits for a silent node however long it is silent",
                fresh(1),
                vec![(2, None)],
                Want::Wait,
                "waiting for 10.0.0.2 to answer",
            )
        },
        Case {
            force: Override::Service,
            ..case(
                "an override in a fresh cluster does not wait for a node that says nothing",
                fresh(1),
                vec![(2, None)],
                Want::Bootstrap,
                "not waiting for CLUSTER_SIZE or nodes that do not answer",
            )
        },
        Case {
            force: Override::Service,
            ..case(
                "an override still waits for a node that is on its way to a state",
                fresh(1),
                vec![(2, Some(phase(fresh(2), Phase::Discovering)))],
                Want::Wait,
                "waiting for 10.0.0.2",
            )
        },
        // --- 5. Full outage: only data votes, and the views say who may be newer.
        case(
            "every member of the last view is here: the most advanced bootstraps",
            viewed(data(2, 50, false), &[1, 2, 3]),
            vec![
                (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                (3, Some(recorded(data(3, 45, false), &[1, 2, 3], 2))),
            ],
            Want::Bootstrap,
            "every member of its last Primary view is here",
        ),
        case(
            "the most advanced waits until the others recorded that it bootstraps",
            viewed(data(2, 50, false), &[1, 2, 3]),
            vec![
                (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                (3, Some(viewed(data(3, 45, false), &[1, 2, 3]))),
            ],
            Want::Wait,
            "once n3 (10.0.0.3) recorded it",
        ),
        case(
            "a stale node never bootstraps while a newer one is here",
            viewed(data(1, 40, false), &[1, 2, 3]),
            vec![
                (2, Some(viewed(data(2, 50, false), &[1, 2, 3]))),
                (3, Some(viewed(data(3, 45, false), &[1, 2, 3]))),
            ],
            Want::Wait,
            "n2 (10.0.0.2) has the most advanced data (seqno 50) and bootstraps",
        ),
        case(
            "ties go to the lowest address",
            viewed(data(1, 50, false), &[1, 2, 3]),
            vec![
                (2, Some(recorded(data(2, 50, false), &[1, 2, 3], 1))),
                (3, Some(recorded(data(3, 40, false), &[1, 2, 3], 1))),
            ],
            Want::Bootstrap,
            "most advanced",
        ),
        case(
            "ties: the one Galera calls safe wins",
            viewed(data(3, 50, true), &[3]),
            vec![
                (1, Some(recorded(data(1, 50, false), &[1, 3], 3))),
                (2, Some(recorded(data(2, 50, false), &[1, 2, 3], 3))),
            ],
            Want::Bootstrap,
            "every member of its last Primary view is here",
        ),
        Case {
            stable_for: 0,
            ..case(
                "the last member of the Primary component needs nobody, not even time",
                clean(viewed(data(3, 50, true), &[3])),
                vec![(1, Some(data(1, 40, false)))],
                Want::Bootstrap,
                "last member of the Primary component",
            )
        },
        case(
            "the last member of the Primary component still waits for a known node to answer",
            clean(viewed(data(3, 50, true), &[3])),
            vec![(1, None), (2, None)],
            Want::Wait,
            "10.0.0.1, 10.0.0.2 to answer",
        ),
        case(
            "empty volumes outvote nothing (schedule 1)",
            viewed(data(1, 40, false), &[1, 2, 3]),
            vec![(2, Some(fresh(2))), (3, Some(fresh(3)))],
            Want::Wait,
            "n2 (volume vol2, last at 10.0.0.2), n3 (volume vol3, last at 10.0.0.3)",
        ),
        Case {
            cluster_size: Some(3),
            waited: 600,
            ..case(
                "empty volumes outvote nothing, even with CLUSTER_SIZE and after the timeout",
                viewed(data(1, 40, false), &[1, 2, 3]),
                vec![(2, Some(fresh(2))), (3, Some(fresh(3)))],
                Want::Wait,
                "may hold newer data",
            )
        },
        Case {
            waited: 600,
            ..case(
                "clean leavers wait for the node that outlived them (schedule 2)",
                clean(viewed(data(2, 20, false), &[2, 3])),
                vec![(1, Some(clean(viewed(data(1, 10, false), &[1, 2, 3]))))],
                Want::Wait,
                "n3 (volume vol3, last at 10.0.0.3)",
            )
        },
        Case {
            waited: 600,
            ..case(
                "a clean leaver with a majority of its view still waits: others went on",
                clean(viewed(data(2, 20, false), &[1, 2, 3])),
                vec![(1, Some(clean(viewed(data(1, 10, false), &[1, 2, 3]))))],
                Want::Wait,
                "left its component cleanly while others stayed",
            )
        },
        case(
            "a crashed majority waits for the timeout",
            viewed(data(2, 50, false), &[1, 2, 3]),
            vec![(1, Some(viewed(data(1, 50, false), &[1, 2, 3]))), (3, None)],
            Want::Wait,
            "after OUTAGE_TIMEOUT (60s) it goes on",
        ),
        Case {
            waited: 61,
            ..case(
                "after the timeout, a crashed majority of the view is enough",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![(1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2)))],
                Want::Bootstrap,
                "a majority of its last Primary view",
            )
        },
        Case {
            waited: 61,
            ..case(
                "a node that was still joining its last view gets no shortcut",
                joining_in_view(viewed(data(2, 50, false), &[1, 2, 3])),
                vec![(
                    1,
                    Some(joining_in_view(viewed(data(1, 50, false), &[1, 2, 3]))),
                )],
                Want::Wait,
                "was still joining its last component",
            )
        },
        Case {
            waited: 61,
            ..case(
                "a node that recorded another's bootstrap waits for it, timeout or not",
                recorded(data(2, 50, false), &[1, 2, 3], 3),
                vec![(1, Some(recorded(data(1, 50, false), &[1, 2, 3], 3)))],
                Want::Wait,
                "recorded that n3 (volume vol3, last at 10.0.0.3) bootstraps",
            )
        },
        Case {
            waited: 61,
            ..case(
                "after the timeout, half of the view is not a majority",
                viewed(data(2, 50, false), &[1, 2, 3, 4]),
                vec![(1, Some(viewed(data(1, 40, false), &[1, 2, 3, 4])))],
                Want::Wait,
                "vol3",
            )
        },
        case(
            "a member unknown by volume is matched by the view it recorded itself",
            {
                let mut s = viewed(data(1, 50, false), &[1, 2]);
                if let Some(v) = &mut s.last_view {
                    v.members[1].volume_id = None;
                }
                s
            },
            vec![(
                5,
                Some(NodeState {
                    volume_id: Some("vol2".into()),
                    ..recorded(data(5, 40, false), &[1, 2], 1)
                }),
            )],
            Want::Bootstrap,
            "every member of its last Primary view is here",
        ),
        case(
            "a missing node is waited for",
            viewed(data(2, 50, false), &[1, 2]),
            vec![(1, Some(viewed(data(1, 40, false), &[1, 2]))), (3, None)],
            Want::Wait,
            "10.0.0.3 to answer",
        ),
        case(
            "a recovering peer has not reported",
            viewed(data(2, 50, false), &[2]),
            vec![(
                1,
                Some(phase(viewed(data(1, 40, false), &[2]), Phase::Recovering)),
            )],
            Want::Wait,
            "10.0.0.1 to answer",
        ),
        case(
            "a fresh node in an outage has no say",
            fresh(4),
            vec![(1, Some(data(1, 40, false))), (2, Some(data(2, 50, false)))],
            Want::Wait,
            "has no say",
        ),
        case(
            "data of two clusters waits for an operator, kept",
            data(1, 50, false),
            vec![(
                2,
                Some(NodeState {
                    uuid: Some(OTHER.into()),
                    ..data(2, 40, false)
                }),
            )],
            Want::Wait,
            "different clusters",
        ),
        case(
            "a history a restart from older data left behind: given up, not restored",
            viewed(data(1, 50, false), &[1]),
            vec![(
                2,
                Some(NodeState {
                    lineage: vec![epoch("a", -1), epoch("z", 40)],
                    ..viewed(data(2, 45, false), &[2])
                }),
            )],
            Want::Wait,
            "this node's history was given up: n2 (10.0.0.2) holds a restart",
        ),
        case(
            "the restarted history goes on without the one it left behind",
            NodeState {
                lineage: vec![epoch("a", -1), epoch("z", 40)],
                ..viewed(data(2, 45, true), &[2])
            },
            vec![(1, Some(viewed(data(1, 50, false), &[1])))],
            Want::Bootstrap,
            "last member of the Primary component",
        ),
        case(
            "a view from before another node's restart does not hold the cluster back",
            NodeState {
                lineage: vec![epoch("a", -1), epoch("z", 40)],
                ..viewed(data(2, 40, true), &[2])
            },
            vec![(1, Some(viewed(data(1, 40, false), &[1, 3])))],
            Want::Wait,
            "bootstraps (every member of its last Primary view is here) once n1",
        ),
        case(
            "diverged histories, each restarted: refuse to choose without an operator",
            NodeState {
                lineage: vec![epoch("a", -1), epoch("y", 42)],
                ..viewed(data(1, 50, false), &[1])
            },
            vec![(
                2,
                Some(NodeState {
                    lineage: vec![epoch("a", -1), epoch("z", 40)],
                    ..viewed(data(2, 45, false), &[2])
                }),
            )],
            Want::Wait,
            "diverged after seqno 40",
        ),
        // Overrides: one decision, the most advanced node present bootstraps.
        Case {
            force: Override::Service,
            ..case(
                "an override on the most advanced node: it bootstraps without the missing",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![(1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2)))],
                Want::Bootstrap,
                "operator override: not waiting for n3",
            )
        },
        Case {
            force: Override::Service,
            ..case(
                "an override on a stale node: the most advanced bootstraps, not this one",
                viewed(data(1, 40, false), &[1, 2, 3]),
                vec![(2, Some(viewed(data(2, 50, false), &[1, 2, 3])))],
                Want::Wait,
                "n2 (10.0.0.2) has the most advanced data (seqno 50) and bootstraps \
                 (operator override",
            )
        },
        case(
            "an override on a peer reaches the most advanced node",
            viewed(data(2, 50, false), &[1, 2, 3]),
            vec![(
                1,
                Some(overridden(recorded(data(1, 40, false), &[1, 2, 3], 2))),
            )],
            Want::Bootstrap,
            "operator override",
        ),
        Case {
            force: Override::Service,
            ..case(
                "an override does not wait for a listed node that says nothing",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                    (3, None),
                ],
                Want::Bootstrap,
                "operator override: not waiting for n3",
            )
        },
        Case {
            force: Override::Service,
            unreadable: vec![1, 3],
            ..case(
                "an override on a node that cannot read the others (another key) waits",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![(1, None), (3, None)],
                Want::Wait,
                "10.0.0.1, 10.0.0.3 answer(s) what this node cannot read",
            )
        },
        Case {
            force: Override::Service,
            unreadable: vec![3],
            ..case(
                "an override waits for a node that answers something it cannot read",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                    (3, None),
                ],
                Want::Wait,
                "fix its key or clock, or stop its task",
            )
        },
        Case {
            force: Override::Service,
            unreadable: vec![2],
            ..case(
                "a fresh override waits for a node it cannot read",
                fresh(1),
                vec![(2, None)],
                Want::Wait,
                "waiting for 10.0.0.2 to answer",
            )
        },
        Case {
            force: Override::Command,
            went_silent: vec![3],
            ..case(
                "an override waits for a node that ran a server when last heard from",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                    (3, None),
                ],
                Want::Wait,
                "10.0.0.3 to answer",
            )
        },
        Case {
            force: Override::Service,
            ..case(
                "an override waits for a node that recovers its position (it may be newer)",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                    (3, Some(phase(data(3, -1, false), Phase::Recovering))),
                ],
                Want::Wait,
                "10.0.0.3 to answer",
            )
        },
        Case {
            waited: 100,
            ..case(
                "without an override, a silent listed node holds the majority rule",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                    (3, None),
                ],
                Want::Wait,
                "after OUTAGE_TIMEOUT (60s) of silence, a node counts as missing",
            )
        },
        Case {
            waited: 100,
            gone: vec![3],
            ..case(
                "a node silent for OUTAGE_TIMEOUT counts as missing: a majority goes on",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                    (3, None),
                ],
                Want::Bootstrap,
                "a majority of its last Primary view is here after OUTAGE_TIMEOUT",
            )
        },
        Case {
            gone: vec![4],
            ..case(
                "a stale address silent for OUTAGE_TIMEOUT no longer holds a complete view",
                viewed(data(2, 50, false), &[1, 2, 3]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
                    (3, Some(recorded(data(3, 45, false), &[1, 2, 3], 2))),
                    (4, None),
                ],
                Want::Bootstrap,
                "every member of its last Primary view is here",
            )
        },
        Case {
            gone: vec![3],
            ..case(
                "a peer stuck joining for OUTAGE_TIMEOUT is not waited for",
                viewed(data(2, 50, false), &[1, 2]),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[1, 2], 2))),
                    (3, Some(phase(fresh(3), Phase::Joining))),
                ],
                Want::Bootstrap,
                "every member of its last Primary view is here",
            )
        },
        case(
            "a peer that joins is waited for, until it is stuck",
            viewed(data(2, 50, false), &[1, 2]),
            vec![
                (1, Some(recorded(data(1, 40, false), &[1, 2], 2))),
                (3, Some(phase(fresh(3), Phase::Joining))),
            ],
            Want::Wait,
            "is joining; waiting for its Primary component",
        ),
        case(
            "a record-less node ahead of a restart cannot be placed: an operator decides",
            viewed(
                NodeState {
                    lineage: vec![],
                    last_view: None,
                    ..data(2, 50, false)
                },
                &[1, 2],
            ),
            vec![(
                1,
                Some(NodeState {
                    lineage: vec![epoch("a", -1), epoch("r", 30)],
                    ..viewed(data(1, 40, false), &[1, 2])
                }),
            )],
            Want::Wait,
            "has no record of its history",
        ),
        case(
            "a record-less node never joins by IST past a restart of the component",
            NodeState {
                lineage: vec![],
                ..data(3, 40, false)
            },
            vec![(
                1,
                Some(NodeState {
                    lineage: vec![epoch("a", -1), epoch("r", 30)],
                    ..primary(1, 0)
                }),
            )],
            Want::Wait,
            "whether its transactions 31..40 are the cluster's cannot be told",
        ),
        case(
            "a record-less node below every restart joins by IST",
            NodeState {
                lineage: vec![],
                ..data(3, 25, false)
            },
            vec![(
                1,
                Some(NodeState {
                    lineage: vec![epoch("a", -1), epoch("r", 30)],
                    ..primary(1, 0)
                }),
            )],
            Want::Join,
            "joining it",
        ),
        Case {
            force: Override::Service,
            ..case(
                "FORCE_BOOTSTRAP does not revive a history left behind",
                viewed(data(1, 50, false), &[1]),
                vec![(
                    2,
                    Some(NodeState {
                        lineage: vec![epoch("a", -1), epoch("z", 40)],
                        ..recorded(data(2, 45, false), &[1, 2], 1)
                    }),
                )],
                Want::Wait,
                "this node's history was given up",
            )
        },
        Case {
            force: Override::Command,
            ..case(
                "galera-init bootstrap on a history left behind: it restarts from it",
                viewed(data(1, 50, false), &[1]),
                vec![(
                    2,
                    Some(NodeState {
                        lineage: vec![epoch("a", -1), epoch("z", 40)],
                        ..recorded(data(2, 45, false), &[1, 2], 1)
                    }),
                )],
                Want::Bootstrap,
                "operator override",
            )
        },
        Case {
            force: Override::Command,
            ..case(
                "galera-init bootstrap on a given-up history whose view is whole: a bootstrap, \
                 not pc.recovery",
                NodeState {
                    superseded: true,
                    ..with_view(data(1, 1, false), "5 x 1", &[1])
                },
                vec![(2, Some(fresh(2)))],
                Want::Bootstrap,
                "operator override",
            )
        },
        case(
            "a given-up history whose view is whole waits without the command",
            NodeState {
                superseded: true,
                ..with_view(data(1, 1, false), "5 x 1", &[1])
            },
            vec![(2, Some(fresh(2)))],
            Want::Wait,
            "given up",
        ),
        // A node running without a Primary component (the survivor) takes part.
        case(
            "the survivor with the newest data and its view back: pc.bootstrap (schedule 4)",
            viewed(survivor(1, 60), &[1, 2, 3]),
            vec![
                (2, Some(recorded(data(2, 50, false), &[1, 2, 3], 1))),
                (3, Some(recorded(data(3, 55, false), &[1, 2, 3], 1))),
            ],
            Want::Bootstrap,
            "every member of its last Primary view is here",
        ),
        case(
            "the others wait for the survivor",
            viewed(data(2, 50, false), &[1, 2, 3]),
            vec![
                (1, Some(viewed(survivor(1, 60), &[1, 2, 3]))),
                (3, Some(viewed(data(3, 55, false), &[1, 2, 3]))),
            ],
            Want::Wait,
            "restores one with pc.bootstrap",
        ),
        case(
            "a tie between the survivor and a waiting node: the survivor, no restart",
            viewed(data(2, 60, false), &[1, 2]),
            vec![(1, Some(viewed(survivor(1, 60), &[1, 2])))],
            Want::Wait,
            "restores one with pc.bootstrap",
        ),
        case(
            "a survivor behind a waiting node waits",
            viewed(survivor(1, 40), &[1, 2]),
            vec![(2, Some(viewed(data(2, 50, false), &[1, 2])))],
            Want::Wait,
            "n2 (10.0.0.2) has the most advanced data",
        ),
        // Data from before the record: the counts of nodes with data.
        case(
            "no record, alone, not last to leave: wait for the others",
            data(1, 40, false),
            vec![],
            Want::Wait,
            "1 more node(s) with data",
        ),
        Case {
            waited: 600,
            ..case(
                "no record, alone, even after the timeout",
                data(1, 40, false),
                vec![],
                Want::Wait,
                "1 more node(s) with data",
            )
        },
        case(
            "no record, the last to leave needs nobody else",
            clean(data(3, 50, true)),
            vec![],
            Want::Bootstrap,
            "last member",
        ),
        Case {
            cluster_size: Some(3),
            ..case(
                "no record: CLUSTER_SIZE is the count to wait for",
                data(2, 50, false),
                vec![(1, Some(data(1, 40, false)))],
                Want::Wait,
                "2 of 3 here",
            )
        },
        Case {
            cluster_size: Some(3),
            ..case(
                "no record: an empty volume does not count",
                data(2, 50, false),
                vec![(1, Some(data(1, 40, false))), (3, Some(fresh(3)))],
                Want::Wait,
                "2 of 3 here",
            )
        },
        case(
            "a record-less node ties with one whose record places it: the placed one goes on",
            viewed(restarted(data(1, 50, false)), &[1, 2]),
            vec![(2, Some(accepting(record_less(data(2, 50, false)), 1)))],
            Want::Bootstrap,
            "every member of its last Primary view is here",
        ),
        case(
            "a member that lost its record (a new volume id) is found at its address",
            viewed(data(1, 50, false), &[1, 2]),
            vec![(
                2,
                Some(accepting(
                    NodeState {
                        volume_id: Some("new".into()),
                        ..record_less(data(2, 50, false))
                    },
                    1,
                )),
            )],
            Want::Bootstrap,
            "every member of its last Primary view is here",
        ),
        case(
            "a record-less node most advanced beside a restart: an operator chooses",
            record_less(data(2, 50, false)),
            vec![(1, Some(viewed(restarted(data(1, 40, false)), &[1, 2])))],
            Want::Wait,
            "has no record of its history",
        ),
        Case {
            waited: 600,
            ..case(
                "no record, it left while others stayed (Galera's flag): who they were is unknown",
                clean(data(3, 50, false)),
                vec![(1, Some(data(1, 40, false))), (2, Some(data(2, 40, false)))],
                Want::Wait,
                "has no record of who they were",
            )
        },
        case(
            "no record, it left while others stayed, but a node as advanced recorded its view",
            viewed(data(1, 50, false), &[1, 2]),
            vec![
                (2, Some(recorded(data(2, 40, false), &[1, 2], 1))),
                (3, Some(accepting(clean(data(3, 50, false)), 1))),
            ],
            Want::Bootstrap,
            "every member of its last Primary view is here",
        ),
        Case {
            unreadable: vec![5],
            ..case(
                "a node that could not be read and went away holds every rule",
                viewed(data(1, 50, false), &[1, 2]),
                vec![(2, Some(recorded(data(2, 40, false), &[1, 2], 1)))],
                Want::Wait,
                "then went away",
            )
        },
        Case {
            unreadable: vec![5],
            force: Override::Command,
            ..case(
                "a node that could not be read and went away does not hold an override",
                viewed(data(1, 50, false), &[1, 2]),
                vec![(2, Some(recorded(data(2, 40, false), &[1, 2], 1)))],
                Want::Bootstrap,
                "operator override",
            )
        },
        Case {
            waited: 61,
            ..case(
                "no record: after the timeout a majority of the nodes with data",
                data(2, 50, false),
                vec![
                    (1, Some(recorded(data(1, 40, false), &[2], 2))),
                    (3, Some(recorded(data(3, 45, false), &[2], 2))),
                ],
                Want::Bootstrap,
                "most advanced",
            )
        },
    ]
}

#[test]
fn decision_table() {
    let mut failures = Vec::new();
    for c in cases() {
        let plan = run(&c);
        let got = match &plan {
            Plan::Bootstrap { .. } => Want::Bootstrap,
            Plan::Join { .. } => Want::Join,
            Plan::Wait { .. } => Want::Wait,
        };
        if got != c.want || !plan.reason().contains(c.reason) {
            failures.push(format!(
                "{}: want {:?} ({:?}), got {plan:?}",
                c.name, c.want, c.reason
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_record_less_node_that_a_running_restart_leaves_unplaced_has_no_say() {
    let mut component = primary(1, 0);
    component.lineage = vec![epoch("a", -1), epoch("b", 30)];
    let listed = [ip(1), ip(4)];
    let peers = [(ip(1), Some(component))];
    // Past the restart: whether its transactions 31..45 are the cluster's cannot be told.
    let plan = decide_now(&record_less(data(4, 45, false)), &listed, &peers);
    assert!(
        matches!(
            plan,
            Plan::Wait {
                superseded: true,
                ..
            }
        ),
        "{plan:?}"
    );
    // Below it: one history up to the first restart.
    let plan = decide_now(&record_less(data(4, 25, false)), &listed, &peers);
    assert!(matches!(plan, Plan::Join { .. }), "{plan:?}");
}

#[test]
fn overrides_are_marked_and_waits_name_what_they_wait_for() {
    let c = Case {
        force: Override::Service,
        ..case(
            "",
            viewed(data(2, 50, false), &[1, 2, 3]),
            vec![(1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2)))],
            Want::Bootstrap,
            "",
        )
    };
    assert!(matches!(
        run(&c),
        Plan::Bootstrap {
            kind: BootstrapKind::Override,
            ..
        }
    ));
    let c = Case {
        force: Override::None,
        ..c
    };
    match run(&c) {
        Plan::Wait {
            reason,
            waiting_for,
            ..
        } => {
            assert_eq!(waiting_for, ["n3 (volume vol3, last at 10.0.0.3)"]);
            assert!(reason.contains("galera-init bootstrap"), "{reason}");
            assert!(reason.contains("FORCE_BOOTSTRAP=yes"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let c = case(
        "",
        viewed(data(2, 50, false), &[1, 2, 3]),
        vec![
            (1, Some(recorded(data(1, 40, false), &[1, 2, 3], 2))),
            (3, Some(recorded(data(3, 45, false), &[1, 2, 3], 2))),
        ],
        Want::Bootstrap,
        "",
    );
    assert!(matches!(
        run(&c),
        Plan::Bootstrap {
            kind: BootstrapKind::Complete,
            ..
        }
    ));
    // The others record the bootstrap before it happens.
    let c = case(
        "",
        viewed(data(1, 40, false), &[1, 2, 3]),
        vec![
            (2, Some(viewed(data(2, 50, false), &[1, 2, 3]))),
            (3, Some(recorded(data(3, 45, false), &[1, 2, 3], 2))),
        ],
        Want::Wait,
        "",
    );
    match run(&c) {
        Plan::Wait {
            accept: Some(candidate),
            ..
        } => {
            assert_eq!(candidate.volume_id.as_deref(), Some("vol2"));
            assert_eq!(candidate.address, Some(ip(2)));
        }
        other => panic!("{other:?}"),
    }
}

/// The decision for `own` now, with `listed` and `peers`, no time waited and no override.
fn decide_now(own: &NodeState, listed: &[IpAddr], peers: &[(IpAddr, Option<NodeState>)]) -> Plan {
    decide(&Inputs {
        own,
        listed,
        peers,
        gone: &[],
        unreadable: &[],
        went_silent: &[],
        stable_for: Duration::ZERO,
        waited: Duration::ZERO,
        force: Override::None,
        allow_pc_recovery: true,
        params: &params(),
    })
}

#[test]
fn join_lists_every_node_and_puts_the_writer_last_among_donors() {
    let own = fresh(4);
    let listed = [ip(1), ip(2), ip(3), ip(4)];
    let lineage = vec![epoch("a", -1), epoch("b", 9)];
    let peers = vec![
        (ip(1), Some(primary(1, 2))),
        (
            ip(2),
            Some(NodeState {
                lineage: lineage.clone(),
                ..primary(2, 0)
            }),
        ),
        (ip(3), Some(primary(3, 1))),
    ];
    let plan = decide_now(&own, &listed, &peers);
    match plan {
        Plan::Join {
            members: m,
            donors,
            lineage: l,
            ..
        } => {
            assert_eq!(m, listed);
            assert_eq!(
                donors,
                ["n1", "n3", "n2"],
                "n2 has wsrep_local_index 0: the writer"
            );
            assert_eq!(l, lineage, "the longest lineage a member reports");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_node_synced_moments_ago_comes_after_the_writer_among_donors() {
    let own = fresh(4);
    let listed = [ip(1), ip(2), ip(3), ip(4)];
    let settled = |mut s: NodeState, secs: u64| {
        s.synced_secs = Some(secs);
        s
    };
    let peers = vec![
        (ip(1), Some(settled(primary(1, 2), 5))),
        (ip(2), Some(settled(primary(2, 0), 300))),
        (ip(3), Some(settled(primary(3, 1), 300))),
    ];
    let plan = decide_now(&own, &listed, &peers);
    match plan {
        Plan::Join { donors, .. } => assert_eq!(
            donors,
            ["n3", "n2", "n1"],
            "n1 has just received its own SST: the writer n2 donates before it"
        ),
        other => panic!("{other:?}"),
    }
    // A cold start: the bootstrapped writer Synced 17 s, the first joiner 1 s: the
    // bootstrapped node donates first.
    let peers = vec![
        (ip(1), Some(settled(primary(1, 0), 17))),
        (ip(2), Some(settled(primary(2, 1), 1))),
    ];
    let listed = [ip(1), ip(2), ip(4)];
    let plan = decide_now(&own, &listed, &peers);
    match plan {
        Plan::Join { donors, .. } => assert_eq!(donors, ["n1", "n2"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rejoining_node_expects_its_ist_donor_and_an_empty_one_its_sst_donor() {
    let cached = |mut s: NodeState, from: i64| {
        s.wsrep_local_cached_downto = Some(from);
        s
    };
    // The writer n1 bootstrapped (its cache starts at 1); n2 and n3 joined later.
    let peers = vec![
        (ip(1), Some(cached(primary(1, 0), 1))),
        (ip(2), Some(cached(primary(2, 1), 3))),
        (ip(3), Some(cached(primary(3, 2), 4))),
    ];
    let listed = [ip(1), ip(2), ip(3), ip(4)];
    let expected = |own: &NodeState| match decide_now(own, &listed, &peers) {
        Plan::Join {
            donors,
            expected_donor,
            ..
        } => {
            assert_eq!(donors, ["n3", "n2", "n1"]);
            expected_donor.map(|d| (d.name, d.address, d.ist))
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        expected(&data(4, 40, false)),
        Some(("n3".into(), ip(3), true)),
        "n3's cache starts latest and holds 41 on: Galera picks it for the IST"
    );
    assert_eq!(
        expected(&fresh(4)),
        Some(("n3".into(), ip(3), false)),
        "an empty node: an SST from the first named"
    );
}

#[test]
fn sst_method_by_the_donors_data() {
    use crate::config::SstSetting;
    use crate::galera::SstMethod;
    let small = sized(primary(1, 0), 100 << 20);
    let large = sized(primary(2, 1), 300 << 20);
    let unknown = primary(3, 2);
    let cases: [(SstSetting, Vec<&NodeState>, SstMethod, &str); 6] = [
        (
            SstSetting::Auto,
            vec![&small],
            SstMethod::Rsync,
            "small data: rsync",
        ),
        (
            SstSetting::Auto,
            vec![&small, &large],
            SstMethod::Mariabackup,
            "one donor large",
        ),
        (
            SstSetting::Auto,
            vec![&small, &unknown],
            SstMethod::Mariabackup,
            "a size unknown",
        ),
        (
            SstSetting::Auto,
            vec![],
            SstMethod::Mariabackup,
            "no donor known",
        ),
        (
            SstSetting::Fixed(SstMethod::Mariabackup),
            vec![&small],
            SstMethod::Mariabackup,
            "fixed",
        ),
        (
            SstSetting::Fixed(SstMethod::Rsync),
            vec![&large],
            SstMethod::Rsync,
            "fixed rsync",
        ),
    ];
    for (setting, donors, want, why) in cases {
        assert_eq!(super::donor::method(setting, &donors), want, "{why}");
    }
    // The plan carries it into the config.
    let peers = vec![(ip(1), Some(small.clone()))];
    match decide_now(&fresh(4), &[ip(1), ip(4)], &peers) {
        Plan::Join { sst_method, .. } => assert_eq!(sst_method, SstMethod::Rsync),
        other => panic!("{other:?}"),
    }
}
