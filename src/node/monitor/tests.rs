//! The monitor, tick by tick, against a scripted world.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::discovery::{Answer, Discovered};
use crate::record::Epoch;

const UUID: &str = "9acf4d34-acdb-11e6-bcc3-d3e36276629f";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

/// A world where DNS lists `listed` and each address answers with its state, if any.
struct Fake {
    now: u64,
    listed: Vec<IpAddr>,
    own: IpAddr,
    states: BTreeMap<IpAddr, NodeState>,
    asked: Vec<IpAddr>,
}

impl World for Fake {
    fn now(&self) -> Duration {
        Duration::from_secs(self.now)
    }
    fn lookup(&mut self) -> Answer {
        Answer::Ready(Discovered {
            own: self.own,
            members: self.listed.clone(),
        })
    }
    fn learned(&mut self) -> Vec<IpAddr> {
        Vec::new()
    }
    fn fetch(&mut self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)> {
        self.asked.extend(addrs);
        addrs
            .iter()
            .map(|a| (*a, self.states.get(a).cloned()))
            .collect()
    }
}

fn params() -> Params {
    Params {
        cluster_size: None,
        settle: Duration::from_secs(3),
        outage_timeout: Duration::from_secs(60),
        sst: crate::config::SstSetting::Auto,
    }
}

fn running(last: u8, status: &str, conf: i64, members: &[u8]) -> NodeState {
    NodeState {
        address: Some(ip(last)),
        node_name: format!("n{last}"),
        phase: Phase::Running,
        fresh: Some(false),
        has_galera_state: true,
        uuid: Some(UUID.into()),
        seqno: Some(-1),
        volume_id: Some(format!("vol{last}")),
        wsrep_cluster_status: Some(status.into()),
        wsrep_local_state: Some(4),
        wsrep_cluster_state_uuid: Some(UUID.into()),
        wsrep_cluster_size: Some(members.len() as i64),
        wsrep_cluster_conf_id: Some(conf),
        wsrep_last_committed: Some(20),
        wsrep_incoming_addresses: Some(
            members
                .iter()
                .map(|m| format!("{}:3306", ip(*m)))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ..NodeState::default()
    }
}

fn world(own: u8, peers: &[NodeState]) -> Fake {
    let mut states = BTreeMap::new();
    for p in peers {
        states.insert(p.address.unwrap(), p.clone());
    }
    let mut listed: Vec<IpAddr> = states.keys().copied().collect();
    listed.push(ip(own));
    listed.sort();
    Fake {
        now: 100,
        listed,
        own: ip(own),
        states,
        asked: Vec::new(),
    }
}

/// A monitor and the record it keeps, as the driver holds them.
struct Watched {
    m: Monitor,
    record: Record,
}

/// What one tick asked for, with the record as written when it asked to save it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Ticked {
    save: Option<Record>,
    pc_bootstrap: bool,
    kind: Option<BootstrapKind>,
    consume_override: bool,
    stop: Option<Stop>,
    plan: Option<Plan>,
}

impl Watched {
    fn tick(&mut self, w: &mut dyn World, own: &NodeState) -> Ticked {
        let act = self.m.tick(&mut self.record, w, own);
        Ticked {
            save: act.save.then(|| self.record.clone()),
            pc_bootstrap: act.pc_bootstrap.is_some(),
            kind: act.pc_bootstrap,
            consume_override: act.consume_override,
            stop: act.stop,
            plan: act.plan,
        }
    }
    fn record(&self) -> &Record {
        &self.record
    }
    fn was_primary(&self) -> bool {
        self.m.was_primary()
    }
}

fn watched(started: Started, record: Record) -> Watched {
    Watched {
        m: Monitor::new(
            params(),
            started,
            Duration::from_secs(100),
            Duration::from_secs(20),
            true,
        ),
        record,
    }
}

fn monitor(started: Started) -> Watched {
    watched(started, Record::new("vol1".into()))
}

fn joined() -> Started {
    Started::Join {
        pc_recovery: false,
        lineage: vec![Epoch {
            id: "e".into(),
            after: -1,
        }],
    }
}

#[test]
fn a_primary_node_records_its_view_by_volume_and_adopts_the_lineage_it_joined() {
    let mut m = monitor(joined());
    let own = running(1, "Primary", 5, &[1, 2, 3]);
    let mut w = world(
        1,
        &[
            running(2, "Primary", 5, &[1, 2, 3]),
            running(3, "Primary", 5, &[1, 2, 3]),
        ],
    );
    let act = m.tick(&mut w, &own);
    let saved = act.save.expect("the record changes");
    let view = saved.last_view.unwrap();
    let ids: Vec<_> = view
        .members
        .iter()
        .map(|m| m.volume_id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["vol1", "vol2", "vol3"]);
    assert_eq!(view.conf_id, 5);
    assert!(view.synced);
    assert_eq!(saved.lineage.len(), 1, "the joined component's lineage");
    assert!(m.was_primary());
    w.asked.clear();
    assert_eq!(
        m.tick(&mut w, &own).save,
        None,
        "nothing new: nothing written"
    );
    assert!(
        w.asked.is_empty(),
        "the members are asked again only on a new view"
    );
    // A member leaves: a new view.
    let own = running(1, "Primary", 6, &[1, 3]);
    let view = m.tick(&mut w, &own).save.unwrap().last_view.unwrap();
    assert_eq!(view.members.len(), 2);
}

#[test]
fn a_primary_node_asks_the_nodes_outside_its_component() {
    let mut m = monitor(Started::Bootstrap);
    let mut w = world(1, &[running(2, "Primary", 5, &[1, 2])]);
    w.listed.push(ip(7));
    w.listed.sort();
    m.tick(&mut w, &running(1, "Primary", 5, &[1, 2]));
    assert!(
        w.asked.contains(&ip(7)),
        "a node DNS lists, not a member: {:?}",
        w.asked
    );
    w.asked.clear();
    m.tick(&mut w, &running(1, "Primary", 5, &[1, 2]));
    assert_eq!(
        w.asked,
        [ip(7)],
        "members are asked only when the view changes"
    );
}

#[test]
fn a_view_short_of_members_is_not_recorded() {
    let mut m = monitor(Started::Bootstrap);
    let mut own = running(1, "Primary", 5, &[1, 2]);
    own.wsrep_cluster_size = Some(3);
    let mut w = world(1, &[running(2, "Primary", 5, &[1, 2])]);
    let act = m.tick(&mut w, &own);
    assert!(
        act.save.is_none() || act.save.unwrap().last_view.is_none(),
        "two addresses for a component of three: the view is not known"
    );
    // A member that does not answer: recorded by address, asked again next tick.
    let own = running(1, "Primary", 5, &[1, 2]);
    let mut w = world(1, &[]);
    let act = m.tick(&mut w, &own);
    let view = act.save.unwrap().last_view.unwrap();
    assert_eq!(view.members[1].volume_id, None);
    assert_eq!(view.members[1].address, Some(ip(2)));
    w.states.insert(ip(2), running(2, "Primary", 5, &[1, 2]));
    let view = m.tick(&mut w, &own).save.unwrap().last_view.unwrap();
    assert_eq!(view.members[1].volume_id.as_deref(), Some("vol2"));
}

/// Galera's member list lags the view (node 3 missing from it): node 3, listed by DNS, says
/// it is in this very view (same cluster, same conf id), so the view is whole; a node in
/// another view is not taken for a member.
#[test]
fn a_member_missing_from_galeras_list_is_found_by_its_own_report() {
    let mut m = monitor(Started::Bootstrap);
    let mut own = running(1, "Primary", 3, &[1, 2]);
    own.wsrep_cluster_size = Some(3);
    let other_view = running(3, "Primary", 2, &[1, 2, 3]);
    let mut w = world(1, &[running(2, "Primary", 3, &[1, 2, 3]), other_view]);
    let act = m.tick(&mut w, &own);
    assert!(
        act.save.is_none() || act.save.unwrap().last_view.is_none(),
        "node 3 reports another view: still short of a member"
    );
    w.states.insert(ip(3), running(3, "Primary", 3, &[1, 2, 3]));
    let view = m.tick(&mut w, &own).save.unwrap().last_view.unwrap();
    let volumes: Vec<Option<&str>> = view
        .members
        .iter()
        .map(|m| m.volume_id.as_deref())
        .collect();
    assert_eq!(volumes, [Some("vol1"), Some("vol2"), Some("vol3")]);
}

#[test]
fn a_member_silent_when_asked_again_in_the_same_view_keeps_its_volume() {
    let mut m = monitor(Started::Bootstrap);
    let own = running(1, "Primary", 5, &[1, 2, 3]);
    let mut joiner = running(3, "Primary", 5, &[1, 2, 3]);
    joiner.wsrep_local_state = Some(1);
    let mut w = world(1, &[running(2, "Primary", 5, &[1, 2, 3]), joiner]);
    let view = m.tick(&mut w, &own).save.unwrap().last_view.unwrap();
    assert_eq!(view.members[2].volume_id.as_deref(), Some("vol3"));
    // Both killed while this node is still Primary in the same view: the joiner was not
    // Synced, so the members are asked again, and nobody answers.
    w.states.clear();
    m.tick(&mut w, &own);
    let ids: Vec<_> = m
        .record()
        .last_view
        .as_ref()
        .unwrap()
        .members
        .iter()
        .map(|m| m.volume_id.clone())
        .collect();
    assert_eq!(
        ids,
        [
            Some("vol1".into()),
            Some("vol2".into()),
            Some("vol3".into())
        ],
        "what the members answered in this view is kept"
    );
    // A new view: only what is asked in it counts.
    let own = running(1, "Primary", 6, &[1, 2]);
    let view = m.tick(&mut w, &own).save.unwrap().last_view.unwrap();
    assert_eq!(view.members[1].volume_id, None);
}

#[test]
fn a_bootstrap_becomes_history_once_primary() {
    let mut r = Record::new("vol1".into());
    r.begin_bootstrap("b".into(), 20, true);
    let mut m = watched(Started::Bootstrap, r);
    let mut w = world(1, &[]);
    let mut starting = running(1, "non-Primary", 0, &[1]);
    starting.wsrep_cluster_state_uuid = None;
    assert_eq!(m.tick(&mut w, &starting), Ticked::default());
    assert!(m.record().pending.is_some());
    let act = m.tick(&mut w, &running(1, "Primary", 1, &[1]));
    let saved = act.save.unwrap();
    assert_eq!(saved.pending, None);
    assert_eq!(saved.lineage.last().unwrap().id, "b");
}

#[test]
fn a_survivor_with_the_newest_data_restores_the_component_with_pc_bootstrap() {
    let mut m = monitor(Started::Bootstrap);
    let mut w = world(
        1,
        &[
            running(2, "Primary", 5, &[1, 2, 3]),
            running(3, "Primary", 5, &[1, 2, 3]),
        ],
    );
    m.tick(&mut w, &running(1, "Primary", 5, &[1, 2, 3]));
    let view = m.record().last_view.clone();
    // The other two are killed and come back behind this node.
    let mut own = running(1, "non-Primary", 0, &[1]);
    own.wsrep_cluster_state_uuid = None;
    own.last_view = view.clone();
    let behind = |k: u8| NodeState {
        address: Some(ip(k)),
        node_name: format!("n{k}"),
        phase: Phase::Waiting,
        fresh: Some(false),
        has_galera_state: true,
        uuid: Some(UUID.into()),
        seqno: Some(15),
        volume_id: Some(format!("vol{k}")),
        last_view: view.clone(),
        // They recorded that this node bootstraps.
        accepted: Some(crate::record::Member {
            volume_id: Some("vol1".into()),
            address: Some(ip(1)),
            name: "n1".into(),
        }),
        ..NodeState::default()
    };
    w.states = [(ip(2), behind(2)), (ip(3), behind(3))]
        .into_iter()
        .collect();
    let first = m.tick(&mut w, &own);
    assert!(!first.pc_bootstrap, "not before the settle window");
    assert!(matches!(first.plan, Some(Plan::Wait { .. })));
    w.now += 3;
    let act = m.tick(&mut w, &own);
    assert!(act.pc_bootstrap, "{act:?}");
    assert_eq!(act.kind, Some(BootstrapKind::Complete));
    assert_eq!(
        act.save.unwrap().pending.unwrap().epoch.after,
        20,
        "the new epoch starts at this node's position"
    );
    w.now += 1;
    assert!(!m.tick(&mut w, &own).pc_bootstrap, "once, not every tick");
}

#[test]
fn a_survivor_behind_a_returning_node_waits() {
    let mut m = monitor(Started::Bootstrap);
    let mut w = world(1, &[]);
    m.tick(&mut w, &running(1, "Primary", 5, &[1]));
    let mut own = running(1, "non-Primary", 0, &[1]);
    own.wsrep_cluster_state_uuid = None;
    own.last_view = m.record().last_view.clone();
    let mut ahead = running(2, "non-Primary", 0, &[2]);
    ahead.phase = Phase::Waiting;
    ahead.seqno = Some(90);
    ahead.last_view = own.last_view.clone();
    w.states.insert(ip(2), ahead);
    w.listed.push(ip(2));
    for _ in 0..10 {
        w.now += 1;
        let act = m.tick(&mut w, &own);
        assert!(!act.pc_bootstrap, "{act:?}");
    }
}

#[test]
fn a_start_that_never_reaches_primary_is_stopped_then_killed() {
    let mut m = monitor(Started::Join {
        pc_recovery: true,
        lineage: Vec::new(),
    });
    let mut w = world(1, &[]);
    let waiting = NodeState {
        phase: Phase::Joining,
        ..NodeState::default()
    };
    w.now = 110;
    assert_eq!(m.tick(&mut w, &waiting).stop, None);
    w.now = 120;
    assert_eq!(m.tick(&mut w, &waiting).stop, Some(Stop::Term));
    w.now = 125;
    assert_eq!(m.tick(&mut w, &waiting).stop, None);
    w.now = 131;
    assert_eq!(m.tick(&mut w, &waiting).stop, Some(Stop::Kill));
    // A joiner whose Primary component went away, but not one receiving an SST.
    let mut stranded = monitor(joined());
    w.now = 121;
    assert_eq!(stranded.tick(&mut w, &waiting).stop, Some(Stop::Term));
    let mut receiving = monitor(joined());
    let sst = NodeState {
        sst_in_progress: true,
        ..waiting.clone()
    };
    assert_eq!(receiving.tick(&mut w, &sst).stop, None);
    // A slow SST: the watchdog counts from its end, not from the start of mariadbd.
    w.now = 125;
    assert_eq!(receiving.tick(&mut w, &sst).stop, None);
    w.now = 127;
    assert_eq!(
        receiving.tick(&mut w, &waiting).stop,
        None,
        "just out of its SST, not Primary yet (seen: a 10 s SST under load)"
    );
    w.now = 145;
    assert_eq!(receiving.tick(&mut w, &waiting).stop, Some(Stop::Term));
    let mut restored = monitor(Started::Join {
        pc_recovery: true,
        lineage: Vec::new(),
    });
    w.now = 105;
    restored.tick(&mut w, &running(1, "Primary", 3, &[1]));
    w.now = 200;
    assert_eq!(
        restored.tick(&mut w, &waiting).stop,
        None,
        "it was Primary: the watchdog is done"
    );
}

#[test]
fn an_override_is_used_up_once_the_node_is_primary() {
    let mut m = monitor(Started::Bootstrap);
    let mut w = world(1, &[]);
    let mut own = running(1, "Primary", 1, &[1]);
    own.override_requested = crate::state::Override::Command;
    let act = m.tick(&mut w, &own);
    assert!(act.consume_override);
    assert!(act.save.unwrap().force_env_used);
}
