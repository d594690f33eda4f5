use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::state::{NodeState, Phase};

const CLUSTER: &str = "9acf4d34-acdb-11e6-bcc3-d3e36276629f";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

/// A running member of a three-node Primary component, Synced and ready.
fn member(last: u8) -> NodeState {
    NodeState {
        address: Some(ip(last)),
        node_name: format!("node{last}"),
        phase: Phase::Running,
        wsrep_cluster_status: Some("Primary".into()),
        wsrep_cluster_state_uuid: Some(CLUSTER.into()),
        wsrep_local_state: Some(4),
        wsrep_local_state_comment: Some("Synced".into()),
        wsrep_local_index: Some(i64::from(last) - 1),
        wsrep_ready: Some(true),
        wsrep_desync: Some(false),
        wsrep_reject_queries: Some("NONE".into()),
        wsrep_incoming_addresses: Some("10.0.0.1:3306,10.0.0.2:3306,10.0.0.3:3306".into()),
        ..NodeState::default()
    }
}

fn with(mut s: NodeState, f: impl FnOnce(&mut NodeState)) -> NodeState {
    f(&mut s);
    s
}

fn donor(s: NodeState) -> NodeState {
    with(s, |s| {
        s.wsrep_local_state = Some(2);
        s.wsrep_local_state_comment = Some("Donor/Desynced".into());
        s.wsrep_desync = Some(true);
        // A transfer that blocks it, or one it was never told about.
        s.donor_blocks = true;
    })
}

/// A donor whose joiner said its transfer does not block it (mariabackup, IST).
fn serving_donor(s: NodeState) -> NodeState {
    with(donor(s), |s| {
        s.donor_blocks = false;
        s.donor_reserved = true;
    })
}

fn cfg() -> HealthSettings {
    HealthSettings {
        non_primary_grace: Duration::from_secs(60),
        available_when_donor: false,
        ..HealthSettings::default()
    }
}

#[test]
fn serving_table() {
    let rows: Vec<(&str, NodeState, bool, bool, &str)> = vec![
        ("synced member", member(1), false, true, "Synced"),
        (
            "draining",
            with(member(1), |s| s.draining = true),
            false,
            false,
            "draining",
        ),
        (
            "not running yet",
            with(member(1), |s| s.phase = Phase::Joining),
            false,
            false,
            "not running",
        ),
        (
            "non-Primary (index 0 alone says nothing)",
            with(member(1), |s| {
                s.wsrep_cluster_status = Some("non-Primary".into());
                s.wsrep_local_index = Some(0);
            }),
            false,
            false,
            "not in a Primary component",
        ),
        (
            "wsrep_ready OFF",
            with(member(1), |s| s.wsrep_ready = Some(false)),
            false,
            false,
            "wsrep_ready",
        ),
        (
            "rejecting queries",
            with(member(1), |s| s.wsrep_reject_queries = Some("ALL".into())),
            false,
            false,
            "reject",
        ),
        ("donor", donor(member(1)), false, false, "not Synced"),
        ("donor allowed", donor(member(1)), true, true, "donor"),
        (
            "donor that rejects queries, even allowed",
            with(donor(member(1)), |s| {
                s.wsrep_sst_donor_rejects_queries = Some(true)
            }),
            true,
            false,
            "not Synced",
        ),
        (
            "joiner",
            with(member(1), |s| {
                s.wsrep_local_state = Some(1);
                s.wsrep_local_state_comment = Some("Joining".into());
            }),
            true,
            false,
            "not Synced",
        ),
        (
            "reserved as a joiner's donor",
            with(member(1), |s| s.donor_reserved = true),
            false,
            false,
            "reserved",
        ),
        (
            "reserved, donors allowed",
            with(member(1), |s| s.donor_reserved = true),
            true,
            true,
            "Synced",
        ),
        (
            "desynced on purpose",
            with(member(1), |s| s.wsrep_desync = Some(true)),
            false,
            false,
            "desynced",
        ),
    ];
    for (name, s, donor_ok, want, phrase) in rows {
        let v = serving(&s, donor_ok);
        assert_eq!(v.ok, want, "{name}: {v:?}");
        assert!(
            v.reason.to_lowercase().contains(&phrase.to_lowercase()),
            "{name}: {v:?} should say {phrase:?}"
        );
    }
}

#[test]
fn live_table() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let none = Timers::default();
    let np = |since: u64, peer: Option<u64>| Timers {
        not_primary_since: Some(at(since)),
        unanswered_since: None,
        peer_answered_at: peer.map(at),
    };
    let cut_off = with(member(3), |s| {
        s.wsrep_cluster_status = Some("non-Primary".into())
    });
    let rows: Vec<(&str, NodeState, Timers, u64, bool, &str)> = vec![
        (
            "waiting for DNS",
            NodeState::default(),
            none,
            0,
            true,
            "DNS",
        ),
        (
            "waiting on purpose for a newer node",
            NodeState {
                phase: Phase::Waiting,
                decision: Some("wait: full outage: waiting for node2".into()),
                ..NodeState::default()
            },
            none,
            3600,
            true,
            "waiting: full outage",
        ),
        (
            "receiving an SST",
            NodeState {
                phase: Phase::Joining,
                sst_in_progress: true,
                ..NodeState::default()
            },
            none,
            3600,
            true,
            "SST",
        ),
        ("synced", member(1), none, 0, true, "Primary"),
        ("donor", donor(member(1)), none, 0, true, "Donor"),
        (
            "non-Primary within the grace",
            cut_off.clone(),
            np(0, None),
            59,
            true,
            "non-Primary",
        ),
        (
            "cut off past the grace",
            cut_off.clone(),
            np(0, None),
            60,
            false,
            "cut off",
        ),
        (
            "non-Primary past the grace, peers answer: it takes part in the recovery",
            cut_off.clone(),
            np(0, Some(100)),
            100,
            true,
            "recovery",
        ),
        (
            "peers stopped answering long ago",
            cut_off.clone(),
            np(0, Some(10)),
            100,
            false,
            "cut off",
        ),
        (
            "mariadbd does not answer, briefly",
            with(member(1), |s| s.wsrep_cluster_status = None),
            Timers {
                unanswered_since: Some(at(0)),
                ..none
            },
            10,
            true,
            "not answered",
        ),
        (
            "mariadbd does not answer for long",
            with(member(1), |s| s.wsrep_cluster_status = None),
            Timers {
                unanswered_since: Some(at(0)),
                ..none
            },
            30,
            false,
            "restart",
        ),
        (
            "draining",
            with(cut_off, |s| s.draining = true),
            np(0, None),
            3600,
            true,
            "stopping",
        ),
    ];
    for (name, s, t, now, want, phrase) in rows {
        let v = live(&s, &t, at(now), &cfg());
        assert_eq!(v.ok, want, "{name}: {v:?}");
        assert!(
            v.reason.contains(phrase),
            "{name}: {v:?} should say {phrase:?}"
        );
    }
}

fn peers(list: &[NodeState]) -> BTreeMap<IpAddr, NodeState> {
    list.iter()
        .map(|s| (s.address.unwrap(), s.clone()))
        .collect()
}

#[test]
fn writer_table() {
    let rows: Vec<(&str, NodeState, Vec<NodeState>, bool, &str)> = vec![
        (
            "the first member is the writer",
            member(1),
            vec![member(2), member(3)],
            true,
            "writer",
        ),
        (
            "the first member is, even when the others do not answer",
            member(1),
            vec![],
            true,
            "writer",
        ),
        (
            "a later member is not while the first serves",
            member(2),
            vec![member(1), member(3)],
            false,
            "node1 (10.0.0.1) comes first and can serve",
        ),
        (
            "a first member that does not answer may be the writer",
            member(2),
            vec![member(3)],
            false,
            "does not answer",
        ),
        (
            "the first member is a donor: the next one writes",
            member(2),
            vec![donor(member(1)), member(3)],
            true,
            "writer",
        ),
        (
            "the first member drains: the next one writes",
            member(2),
            vec![with(member(1), |s| s.draining = true), member(3)],
            true,
            "writer",
        ),
        (
            "the first two cannot serve: the third writes",
            member(3),
            vec![
                donor(member(1)),
                with(member(2), |s| s.phase = Phase::Stopping),
            ],
            true,
            "writer",
        ),
        (
            "a node that cannot serve is never the writer",
            donor(member(1)),
            vec![member(2)],
            false,
            "blocks its writes",
        ),
        (
            "index 0 of a non-Primary component is not the writer",
            with(member(1), |s| {
                s.wsrep_cluster_status = Some("non-Primary".into());
                s.wsrep_incoming_addresses = Some("10.0.0.1:3306".into());
            }),
            vec![],
            false,
            "Primary",
        ),
        (
            "the killed writer has left the component: the next one writes",
            with(member(2), |s| {
                s.wsrep_incoming_addresses = Some("10.0.0.2:3306,10.0.0.3:3306".into())
            }),
            vec![member(3)],
            true,
            "writer",
        ),
        (
            "a first member that reports another cluster (a joiner before its SST) does not block",
            member(2),
            vec![with(member(1), |s| {
                s.wsrep_cluster_state_uuid = Some("other".into())
            })],
            true,
            "writer",
        ),
    ];
    for (name, s, others, want, phrase) in rows {
        let v = writer_candidate(&s, &peers(&others), false);
        assert_eq!(v.ok, want, "{name}: {v:?}");
        assert!(
            v.reason.contains(phrase),
            "{name}: {v:?} should say {phrase:?}"
        );
    }
}

/// The writer stays the writer while it can serve: a member before it that serves again
/// does not take the role back, and a node that is not the writer does not claim while
/// another member claims and serves. Of two claimants the first in the order keeps it.
#[test]
fn the_writer_stays_while_it_can_serve() {
    let claims = |s: NodeState| with(s, |s| s.writer_candidate = true);
    // (why, this node, the others, incumbent, the verdict, its words)
    type Row<'a> = (&'a str, NodeState, Vec<NodeState>, bool, bool, &'a str);
    let rows: Vec<Row> = vec![
        (
            "the incumbent stays when the first member serves again",
            member(2),
            vec![member(1), member(3)],
            true,
            true,
            "stays while it can serve",
        ),
        (
            "the first member does not take it back from a claiming writer",
            member(1),
            vec![claims(member(2)), member(3)],
            false,
            false,
            "node2 (10.0.0.2) is the writer",
        ),
        (
            "nor does a later one",
            member(3),
            vec![member(1), claims(member(2))],
            false,
            false,
            "node2 (10.0.0.2) is the writer",
        ),
        (
            "of two claimants the first keeps it",
            member(2),
            vec![claims(member(1)), member(3)],
            true,
            false,
            "node1 (10.0.0.1) is the writer",
        ),
        (
            "the incumbent keeps it against a later claimant",
            member(1),
            vec![claims(member(2))],
            true,
            true,
            "stays",
        ),
        (
            "a claimant that cannot serve claims nothing",
            member(1),
            vec![claims(donor(member(2))), member(3)],
            false,
            true,
            "first of 3",
        ),
        (
            "a mariabackup donor keeps the writer role",
            serving_donor(member(1)),
            vec![member(2), member(3)],
            true,
            true,
            "stays",
        ),
        (
            "and the next member does not take it",
            member(2),
            vec![claims(serving_donor(member(1))), member(3)],
            false,
            false,
            "node1 (10.0.0.1) is the writer",
        ),
        (
            "the incumbent keeps it when a joiner before its SST comes first",
            member(2),
            vec![
                with(member(1), |s| {
                    s.wsrep_cluster_state_uuid = Some("other".into())
                }),
                member(3),
            ],
            true,
            true,
            "stays",
        ),
        (
            "the incumbent yields to a member before it that does not answer",
            member(2),
            vec![member(3)],
            true,
            false,
            "does not answer",
        ),
    ];
    for (name, s, others, incumbent, want, phrase) in rows {
        let v = writer_candidate(&s, &peers(&others), incumbent);
        assert_eq!(v.ok, want, "{name}: {v:?}");
        assert!(
            v.reason.contains(phrase),
            "{name}: {v:?} should say {phrase:?}"
        );
    }
}

/// Two nodes never both answer `/master` with 200: the claim waits out a hold-off longer
/// than the previous writer's view of the cluster can lag, and the previous writer steps
/// down at its first round that sees the newcomer.
#[test]
fn the_writer_moves_without_overlap() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let (mut w1, mut w2) = (Watch::default(), Watch::default());
    let n1 = member(1);
    let n2 = member(2);
    let answer = |s: &NodeState| vec![(s.address.unwrap(), Some(s.clone()))];
    // Both see each other; node1 claims after the hold-off.
    w1.observe(&n1, answer(&n2), at(0));
    w2.observe(&n2, answer(&n1), at(0));
    assert!(!w1.writer(&n1, at(500)).ok, "not before the hold-off");
    assert!(w1.writer(&n1, at(3000)).ok);
    assert!(!w2.writer(&n2, at(3000)).ok);
    // node1 drains: it answers 503 at once, node2 claims only after its own hold-off.
    let n1d = with(n1.clone(), |s| s.draining = true);
    assert!(!w1.writer(&n1d, at(3100)).ok, "draining counts at once");
    w2.observe(&n2, answer(&n1d), at(3500));
    assert!(!w2.writer(&n2, at(5000)).ok);
    // Its galera-init exits before Galera's view drops it: it stays one that cannot serve.
    w2.observe(&n2, vec![(n1.address.unwrap(), None)], at(4500));
    assert!(w2.writer(&n2, at(6500)).ok);
    // node1 comes back Synced (index 0 again): no failback. node2 stays the writer, and
    // node1, which sees node2 claim, never becomes a candidate.
    let n1b = n1.clone();
    let n2c = with(n2.clone(), |s| s.writer_candidate = true);
    let mut w1b = Watch::default();
    w1b.observe(&n1b, answer(&n2c), at(10_000));
    w2.observe(&n2, answer(&n1b), at(10_900));
    assert!(w2.writer(&n2, at(10_900)).ok, "node2 stays the writer");
    assert!(
        !w1b.writer(&n1b, at(13_000)).ok,
        "node1 does not take it back"
    );
    // node2 drains: node1 takes over at once (node3 answers that it is no candidate).
    let n2d = with(n2c.clone(), |s| s.draining = true);
    let n3 = member(3);
    let both = |second: &NodeState| {
        vec![
            (second.address.unwrap(), Some(second.clone())),
            (n3.address.unwrap(), Some(n3.clone())),
        ]
    };
    w1b.observe(&n1b, both(&n2d), at(14_000));
    assert!(w1b.writer(&n1b, at(14_000)).ok, "unopposed: at once");
    // A candidate that stops qualifying loses the claim, and waits out the hold-off when
    // a member does not answer.
    let n1x = with(n1b.clone(), |s| s.wsrep_local_state = Some(2));
    w1b.observe(&n1x, both(&n2d), at(15_000));
    let silent3 = vec![
        (n2d.address.unwrap(), Some(n2d.clone())),
        (n3.address.unwrap(), None),
    ];
    w1b.observe(&n1b, silent3, at(16_000));
    assert!(
        !w1b.writer(&n1b, at(16_000)).ok,
        "node3 does not answer: the hold-off"
    );
    assert!(w1b.writer(&n1b, at(19_000)).ok);
}

#[test]
fn watch_keeps_the_liveness_timers() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let c = cfg();
    let mut w = Watch::default();
    let np = with(member(3), |s| {
        s.wsrep_cluster_status = Some("non-Primary".into())
    });
    w.observe(&member(3), vec![(ip(1), None)], at(0));
    assert_eq!(w.timers.not_primary_since, None);
    w.observe(&np, vec![(ip(1), None)], at(5));
    w.observe(&np, vec![(ip(1), None)], at(9));
    assert_eq!(w.timers.not_primary_since, Some(at(5)));
    assert!(live(&np, &w.timers, at(64), &c).ok);
    assert!(!live(&np, &w.timers, at(65), &c).ok);
    w.observe(&np, vec![(ip(1), Some(member(1)))], at(66));
    assert!(live(&np, &w.timers, at(67), &c).ok, "a peer answers again");
    let silent = with(member(3), |s| s.wsrep_cluster_status = None);
    w.observe(&silent, vec![], at(70));
    assert_eq!(w.timers.unanswered_since, Some(at(70)));
    assert_eq!(w.timers.not_primary_since, None);
    w.observe(&member(3), vec![], at(71));
    assert_eq!(w.timers.unanswered_since, None);
}

#[test]
fn a_donor_reservation_holds_until_every_joiner_released_it() {
    let flags = Flags::default();
    let mut s = member(1);
    flags.apply(&mut s);
    assert!(!s.donor_reserved);
    let r = flags.reserve_donor(Some(ip(4)), true);
    assert_eq!(r.served_ms_ago, None, "never served: no pause");
    assert_eq!(r.pause(Duration::from_secs(2)), Duration::ZERO);
    flags.apply(&mut s);
    assert!(s.donor_reserved, "reserved");
    assert!(
        !serving(&s, false).ok,
        "a reserved donor leaves the read pool"
    );
    flags.reserve_donor(Some(ip(5)), true);
    flags.release_donor(Some(ip(4)));
    flags.apply(&mut s);
    assert!(s.donor_reserved, "the second joiner still holds it");
    flags.release_donor(Some(ip(5)));
    flags.apply(&mut s);
    assert!(!s.donor_reserved, "released by both joiners");
    assert!(serving(&s, false).ok, "and serves again");
}

#[test]
fn a_joiner_waits_what_is_left_of_the_drain_delay_since_its_donor_last_served() {
    let flags = Flags::default();
    flags.served();
    let r = flags.reserve_donor(None, true);
    let d = Duration::from_secs(2);
    assert!(r.served_ms_ago.is_some_and(|ms| ms < 1000), "{r:?}");
    assert!(
        r.pause(d) > Duration::from_secs(1),
        "served just now: nearly the whole delay"
    );
    let long_ago = Reservation {
        served_ms_ago: Some(5000),
    };
    assert_eq!(
        long_ago.pause(d),
        Duration::ZERO,
        "out of the pools for longer already"
    );
    let lately = Reservation {
        served_ms_ago: Some(500),
    };
    assert_eq!(lately.pause(d), Duration::from_millis(1500));
}

/// A candidate claims `/master` at once when nothing can oppose it: it has served for longer
/// than a round (every other node saw it serving), and every member after it answered
/// that it is neither the writer nor a candidate. Otherwise it waits out the hold-off.
#[test]
fn an_unopposed_candidate_claims_at_once() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let n1d = with(member(1), |s| s.draining = true);
    let n3 = member(3);
    let n3c = with(member(3), |s| s.writer_candidate = true);
    let answers =
        |third: Option<&NodeState>| vec![(ip(1), Some(n1d.clone())), (ip(3), third.cloned())];
    // (why, node3's answer, how long node2 served, at once, after the hold-off)
    let cases: [(&str, Option<&NodeState>, u64, bool, bool); 4] = [
        (
            "the writer drains, node3 answers: at once",
            Some(&n3),
            2000,
            true,
            true,
        ),
        (
            "node3 claims already: it keeps the role",
            Some(&n3c),
            2000,
            false,
            false,
        ),
        (
            "node3 does not answer: the hold-off",
            None,
            2000,
            false,
            true,
        ),
        (
            "serving for less than a round: the hold-off",
            Some(&n3),
            1000,
            false,
            true,
        ),
    ];
    for (why, third, served_for, at_once, eventually) in cases {
        let mut w = Watch::default();
        let n2 = member(2);
        // Serving from 0 on; node1 was the writer until it drained.
        w.observe(
            &n2,
            vec![(ip(1), Some(member(1))), (ip(3), Some(n3.clone()))],
            at(0),
        );
        assert!(!w.writer(&n2, at(0)).ok, "{why}: node1 serves");
        w.observe(&n2, answers(third), at(served_for));
        assert_eq!(w.writer(&n2, at(served_for)).ok, at_once, "{why}");
        assert_eq!(
            w.writer(&n2, at(served_for + 3000)).ok,
            eventually,
            "{why}: after the hold-off"
        );
    }
}
