use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::state::Phase;

const CLUSTER: &str = "9acf4d34-acdb-11e6-bcc3-d3e36276629f";
const OWN: &str = "11111111-2222-11f0-8000-000000000001";
const PEER: &str = "11111111-2222-11f0-8000-000000000002";
const OTHER: &str = "11111111-2222-11f0-8000-000000000003";

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

/// A Synced member of a component of `members` (10.0.0.n), at 10.0.0.`me`.
fn node(me: u8, gcomm: &str, members: &[u8]) -> NodeState {
    NodeState {
        address: Some(ip(me)),
        phase: Phase::Running,
        wsrep_cluster_status: Some("Primary".into()),
        wsrep_cluster_state_uuid: Some(CLUSTER.into()),
        wsrep_local_state: Some(4),
        wsrep_gcomm_uuid: Some(gcomm.into()),
        wsrep_incoming_addresses: Some(
            members
                .iter()
                .map(|n| format!("10.0.0.{n}:3306"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ..NodeState::default()
    }
}

fn notice(uuid: &str) -> Notice {
    Notice {
        gcomm_uuid: uuid.into(),
        how: "was killed by signal 9".into(),
    }
}

#[test]
fn uuids_are_recognised() {
    for (text, ok) in [
        (OWN, true),
        ("9ACF4D34-ACDB-11E6-BCC3-D3E36276629F", true),
        ("9acf4d34acdb11e6bcc3d3e36276629f", false),
        ("9acf4d34-acdb-11e6-bcc3-d3e36276629", false),
        ("9acf4d34-acdb-11e6-bcc3-d3e36276629g", false),
        ("x'; DROP TABLE t; --", false),
        ("", false),
    ] {
        assert_eq!(is_uuid(text), ok, "{text:?}");
    }
}

/// A name, the receiver, the sender's address, what was heard from it, the notice, and the
/// verdict.
type Case<'a> = (
    &'a str,
    &'a NodeState,
    Option<IpAddr>,
    Option<&'a NodeState>,
    Notice,
    Result<(), Refusal>,
);

#[test]
fn a_notice_is_taken_only_for_the_senders_own_uuid() {
    let own = node(1, OWN, &[1, 2, 3]);
    let sender = node(2, PEER, &[1, 2, 3]);
    let not_primary = NodeState {
        wsrep_cluster_status: Some("non-Primary".into()),
        ..own.clone()
    };
    let cases: Vec<Case> = vec![
        (
            "the sender's own UUID",
            &own,
            Some(ip(2)),
            Some(&sender),
            notice(PEER),
            Ok(()),
        ),
        (
            "another member's UUID",
            &own,
            Some(ip(2)),
            Some(&sender),
            notice(OTHER),
            Err(Refusal::NotTheSenders {
                origin: ip(2),
                uuid: OTHER.into(),
            }),
        ),
        (
            "this node's own UUID",
            &own,
            Some(ip(2)),
            Some(&sender),
            notice(OWN),
            Err(Refusal::Own(OWN.into())),
        ),
        (
            "a sender never heard from",
            &own,
            Some(ip(2)),
            None,
            notice(PEER),
            Err(Refusal::NotTheSenders {
                origin: ip(2),
                uuid: PEER.into(),
            }),
        ),
        (
            "a sender that does not name itself",
            &own,
            None,
            Some(&sender),
            notice(PEER),
            Err(Refusal::Anonymous),
        ),
        (
            "not a UUID",
            &own,
            Some(ip(2)),
            Some(&sender),
            notice("x'; SET GLOBAL y=1; --"),
            Err(Refusal::NotAUuid("x'; SET GLOBAL y=1; --".into())),
        ),
        (
            "no component to evict from",
            &not_primary,
            Some(ip(2)),
            Some(&sender),
            notice(PEER),
            Err(Refusal::NotPrimary),
        ),
    ];
    for (name, own, origin, heard, n, want) in cases {
        assert_eq!(accept_notice(own, origin, heard, &n), want, "{name}");
    }
}

#[test]
fn suspects_are_silent_members_with_a_known_uuid() {
    let own = node(1, OWN, &[1, 2, 3]);
    let gcomm: BTreeMap<IpAddr, String> = [
        (ip(2), PEER.to_string()),
        (ip(3), OTHER.to_string()),
        (ip(4), OTHER.to_string()),
    ]
    .into_iter()
    .collect();
    let none = Evicted::default();
    assert_eq!(
        suspects(&own, &[ip(2), ip(3)], &gcomm, &none),
        vec![],
        "every member answered"
    );
    assert_eq!(
        suspects(&own, &[ip(3)], &gcomm, &none),
        vec![(ip(2), PEER.to_string())],
        "10.0.0.2 is silent"
    );
    assert_eq!(
        suspects(&own, &[], &BTreeMap::new(), &none),
        vec![],
        "a silent member whose UUID was never heard cannot be evicted"
    );
    let mut evicted = Evicted::default();
    evicted.add(PEER, ip(2));
    assert_eq!(
        suspects(&own, &[ip(3)], &gcomm, &evicted),
        vec![],
        "evicted already"
    );
    assert_eq!(
        suspects(&own, &[ip(2), ip(3)], &gcomm, &none),
        vec![],
        "10.0.0.4 is not a member of this component: nothing to evict"
    );
    let cut_off = NodeState {
        wsrep_cluster_status: Some("non-Primary".into()),
        ..own.clone()
    };
    assert_eq!(
        suspects(&cut_off, &[], &gcomm, &none),
        vec![],
        "a node outside a Primary component evicts nobody"
    );
}

/// `node` with its server's eviction list and protocol state.
fn listing(mut s: NodeState, list: &[&str], evs: &str) -> NodeState {
    s.wsrep_status
        .insert("wsrep_evs_evict_list".into(), list.join(","));
    s.wsrep_status.insert("wsrep_evs_state".into(), evs.into());
    s
}

#[test]
fn the_list_is_cleared_once_its_members_are_out_of_the_view() {
    let gcomm: BTreeMap<IpAddr, String> =
        [(ip(2), PEER.to_string()), (ip(3), OTHER.to_string())].into();
    let back = "11111111-2222-11f0-8000-00000000000a";
    // (why, this node, the UUID each peer last reported, whether the list is cleared)
    let rows: Vec<(&str, NodeState, BTreeMap<IpAddr, String>, bool)> = vec![
        (
            "an empty list: nothing to clear",
            listing(node(1, OWN, &[1, 3]), &[], "OPERATIONAL"),
            gcomm.clone(),
            false,
        ),
        (
            "the evicted member is out of the view: cleared at once",
            listing(node(1, OWN, &[1, 3]), &[PEER], "OPERATIONAL"),
            gcomm.clone(),
            true,
        ),
        (
            "a UUID taken from another node's messages, never a member here: cleared",
            listing(node(1, OWN, &[1, 2, 3]), &[back], "OPERATIONAL"),
            gcomm.clone(),
            true,
        ),
        (
            "the view without it is still being formed",
            listing(node(1, OWN, &[1, 2, 3]), &[PEER], "GATHER"),
            gcomm.clone(),
            false,
        ),
        (
            "its address is still a member with that UUID: not removed yet",
            listing(node(1, OWN, &[1, 2, 3]), &[PEER], "OPERATIONAL"),
            gcomm.clone(),
            false,
        ),
        (
            "its address is a member again with a new UUID: cleared",
            listing(node(1, OWN, &[1, 2, 3]), &[PEER], "OPERATIONAL"),
            [(ip(2), back.to_string()), (ip(3), OTHER.to_string())].into(),
            true,
        ),
        (
            "not in a Primary component: left alone",
            listing(
                with_status(node(1, OWN, &[1, 3]), "non-Primary"),
                &[PEER],
                "OPERATIONAL",
            ),
            gcomm.clone(),
            false,
        ),
    ];
    for (why, own, gcomm, want) in rows {
        assert_eq!(clear_list(&own, &gcomm), want, "{why}");
    }
}

fn with_status(mut s: NodeState, status: &str) -> NodeState {
    s.wsrep_cluster_status = Some(status.into());
    s
}

#[test]
fn the_first_of_the_other_members_evicts() {
    // Members in Galera's index order: 10.0.0.1, 10.0.0.2, 10.0.0.3.
    let members = [1, 2, 3];
    let cases = [
        (1, 3, true, "node 1 is the first of 1 and 2"),
        (2, 3, false, "node 2 comes after node 1"),
        (2, 1, true, "node 1 is dead: node 2 is the first of 2 and 3"),
        (3, 1, false, "node 3 comes after node 2"),
        (3, 2, false, "node 3 comes after node 1"),
    ];
    for (me, dead, want, name) in cases {
        let own = node(me, OWN, &members);
        assert_eq!(first_survivor(&own, ip(dead)), want, "{name}");
    }
    let nameless = NodeState {
        address: None,
        ..node(1, OWN, &members)
    };
    assert!(!first_survivor(&nameless, ip(3)), "no address: never first");
}

#[test]
fn a_backup_evicts_only_a_member_still_there() {
    let own = node(2, OWN, &[1, 2, 3]);
    assert!(still_member(&own, ip(1)));
    let after = node(2, OWN, &[2, 3]);
    assert!(
        !still_member(&after, ip(1)),
        "the first survivor evicted it"
    );
    let cut_off = NodeState {
        wsrep_cluster_status: Some("non-Primary".into()),
        ..own
    };
    assert!(!still_member(&cut_off, ip(1)), "no component to evict from");
}

#[test]
fn only_a_majority_evicts() {
    let three = node(1, OWN, &[1, 2, 3]);
    let cases = [
        (
            &three,
            3,
            vec![ip(2)],
            true,
            "two of three remain and answer",
        ),
        (
            &three,
            3,
            vec![],
            false,
            "cut off from node 2: one of three",
        ),
        (
            &three,
            3,
            vec![ip(2), ip(3)],
            true,
            "the dead one answering too counts nothing",
        ),
        (&three, 4, vec![ip(2), ip(3)], false, "not a member"),
    ];
    for (own, dead, answered, want, name) in cases {
        assert_eq!(majority_without(own, ip(dead), &answered), want, "{name}");
    }
    let two = node(1, OWN, &[1, 2]);
    assert!(
        !majority_without(&two, ip(2), &[]),
        "a component of two that loses one goes non-Primary, as without galera-init"
    );
    let five = node(1, OWN, &[1, 2, 3, 4, 5]);
    assert!(majority_without(&five, ip(5), &[ip(2), ip(3)]));
    assert!(!majority_without(&five, ip(5), &[ip(2)]));
}

/// Both proofs follow one rule: no majority without the dead one, no eviction; else the
/// first of the other members evicts at once and the rest back it up.
#[test]
fn the_role_of_a_survivor() {
    let first = node(2, OWN, &[1, 2, 3]);
    let second = node(3, OWN, &[1, 2, 3]);
    let cases = [
        (
            &first,
            vec![ip(3)],
            Ok(Role::First),
            "first of the others, node 3 answers",
        ),
        (&second, vec![ip(2)], Ok(Role::Backup), "node 2 comes first"),
        (
            &first,
            vec![],
            Err(NoEviction::NoMajority),
            "alone without node 1",
        ),
        (
            &second,
            vec![],
            Err(NoEviction::NoMajority),
            "alone, not first either",
        ),
    ];
    for (own, answered, want, name) in cases {
        assert_eq!(role(own, ip(1), &answered), want, "{name}");
    }
}
