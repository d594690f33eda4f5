//! The election loop, one round at a time, against an injected [`World`].
//!
//! A round looks at the world once (DNS, the peers that asked this node, every known peer's
//! state, the clock) and asks the pure [`decide`] what to do. The start-up sequence runs
//! rounds until the plan is final; a running node that lost its Primary component runs them
//! from its monitor. The world is a trait so that the same rounds run against the real
//! resolver and HTTP client in a node, and against a model of Galera in the simulation
//! (`tests/sim`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::decision::{Inputs, Override, Params, Plan, decide, list};
use crate::discovery::{Answer, Discovered};
use crate::state::NodeState;

/// Everything a round needs from outside: time, DNS and the peers.
pub trait World {
    /// Time since an arbitrary fixed start (monotonic).
    fn now(&self) -> Duration;
    /// One DNS lookup of the service's tasks, interpreted.
    fn lookup(&mut self) -> Answer;
    /// Nodes that asked this node for its state lately: they exist even if DNS does not
    /// list them yet.
    fn learned(&mut self) -> Vec<IpAddr>;
    /// The state of each address (`None`: it did not answer, or answered something that
    /// cannot be used).
    fn fetch(&mut self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)>;
    /// The addresses whose answer to the last [`World::fetch`] could not be used, though
    /// they answered: nodes that run but whose word cannot be taken (another cluster key).
    fn unreadable(&self) -> Vec<IpAddr> {
        Vec::new()
    }
}

/// The state an election keeps between rounds.
#[derive(Debug, Clone)]
pub struct Election {
    params: Params,
    started: Duration,
    first_hand: Vec<IpAddr>,
    gossip: BTreeSet<IpAddr>,
    listed: Vec<IpAddr>,
    stable_since: Duration,
    last: String,
    primary_seen: bool,
    /// Since when each listed node has said nothing usable: no answer, or an answer that
    /// it bootstraps or joins (whether that goes anywhere is unknown).
    quiet: BTreeMap<IpAddr, Duration>,
    /// Nodes that answered as nodes of another cluster in the last round.
    strangers: Vec<IpAddr>,
    /// The phase each peer was in when it last answered in this election.
    last_heard: BTreeMap<IpAddr, crate::state::Phase>,
    /// Nodes whose last answer in this election could not be read, listed or not: they
    /// run, and may run a component of their own, until they answer readably.
    unreadable_heard: BTreeSet<IpAddr>,
}

impl Election {
    /// An election that starts now.
    pub fn new(params: Params, now: Duration) -> Election {
        Election {
            params,
            started: now,
            first_hand: Vec::new(),
            gossip: BTreeSet::new(),
            listed: Vec::new(),
            stable_since: now,
            last: String::new(),
            primary_seen: false,
            quiet: BTreeMap::new(),
            strangers: Vec::new(),
            last_heard: BTreeMap::new(),
            unreadable_heard: BTreeSet::new(),
        }
    }

    /// Whether the last round reached a node of a Primary component, or one bootstrapping
    /// one: an override pending on this node is then used up, whatever this node does.
    pub fn primary_seen(&self) -> bool {
        self.primary_seen
    }

    /// The nodes this election knows exist, as of the last round: DNS, the nodes that
    /// asked this one, and what the peers reached know first-hand.
    pub fn listed(&self) -> &[IpAddr] {
        &self.listed
    }

    /// The nodes this node knows first-hand (DNS and the nodes that asked it): what it
    /// tells its peers. Gossip is not passed on, so an address nobody sees any more fades.
    pub fn first_hand(&self) -> &[IpAddr] {
        &self.first_hand
    }

    /// One round: look at the world, decide. The plan is logged when it changes.
    ///
    /// `own` is this node's state; `force` is an operator's override pending on it.
    /// Besides the known nodes, the members of this node's last Primary view are asked at
    /// their last address: a member that DNS does not list yet may answer there.
    pub fn round(
        &mut self,
        world: &mut dyn World,
        own: &NodeState,
        force: Override,
        allow_pc_recovery: bool,
    ) -> Plan {
        let now = world.now();
        let Discovered { own: addr, members } = match world.lookup() {
            Answer::Ready(d) => d,
            Answer::NotReady(why) => {
                return self.log(Plan::Wait {
                    reason: format!("DNS not ready ({why}): waiting for it"),
                    waiting_for: vec!["DNS".into()],
                    superseded: false,
                    accept: None,
                    prepare: false,
                });
            }
        };
        let mut first_hand: BTreeSet<IpAddr> = members.into_iter().collect();
        first_hand.extend(world.learned());
        first_hand.insert(addr);
        self.first_hand = first_hand.iter().copied().collect();
        let mut listed = first_hand;
        listed.extend(self.gossip.iter().copied());
        let mut listed: Vec<IpAddr> = listed.into_iter().collect();
        let mut ask: Vec<IpAddr> = listed.iter().copied().filter(|a| *a != addr).collect();
        if let Some(view) = &own.last_view {
            for a in view.members.iter().filter_map(|m| m.address) {
                if a != addr && !ask.contains(&a) {
                    ask.push(a);
                }
            }
        }
        let mut answers = world.fetch(&ask);
        // A node of another cluster (two stacks on one network, one service name) is never
        // a peer: not waited for, not joined, not in the gcomm:// list.
        let strangers: Vec<IpAddr> = answers
            .iter()
            .filter_map(|(a, s)| s.as_ref().filter(|s| stranger(own, s)).map(|_| *a))
            .collect();
        if !strangers.is_empty() {
            answers.retain(|(a, _)| !strangers.contains(a));
            listed.retain(|a| !strangers.contains(a));
            self.first_hand.retain(|a| !strangers.contains(a));
            if self.strangers != strangers {
                // Said once per change of the set, not every round.
                log::warn!(
                    "{} answer(s) as node(s) of another cluster (CLUSTER_NAME is not {:?}): \
                     ignored; give each stack its own CLUSTER_NAME or network",
                    list(&strangers),
                    own.cluster_name
                );
            }
        }
        self.strangers = strangers;
        self.primary_seen = answers.iter().any(|(_, s)| {
            s.as_ref()
                .is_some_and(|s| s.is_primary() || s.phase == crate::state::Phase::Bootstrapping)
        });
        self.gossip = answers
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .flat_map(|s| s.known.iter().copied())
            .collect();
        if listed != self.listed {
            self.listed = listed.clone();
            self.stable_since = now;
        }
        let unreadable = world.unreadable();
        let gone = self.note_quiet(&listed, addr, &answers, &unreadable, now);
        let went_silent = self.went_silent(&answers, &unreadable);
        self.unreadable_heard.extend(unreadable.iter().copied());
        for (a, s) in &answers {
            if s.is_some() {
                self.unreadable_heard.remove(a);
            }
        }
        let unreadable: Vec<IpAddr> = self.unreadable_heard.iter().copied().collect();
        let mut own = own.clone();
        own.address = Some(addr);
        let plan = decide(&Inputs {
            own: &own,
            listed: &listed,
            peers: &answers,
            gone: &gone,
            unreadable: &unreadable,
            went_silent: &went_silent,
            stable_for: now.saturating_sub(self.stable_since),
            waited: now.saturating_sub(self.started),
            force,
            allow_pc_recovery,
            params: &self.params,
        });
        self.log(plan)
    }

    /// Notes which listed nodes said nothing usable this round; returns those that have
    /// said nothing usable for `OUTAGE_TIMEOUT`. A node that answers something that cannot
    /// be read (another cluster key, a clock off) is not quiet: it runs, and may run a
    /// component of its own (one that FORCE_BOOTSTRAP started while the others were away).
    fn note_quiet(
        &mut self,
        listed: &[IpAddr],
        own: IpAddr,
        answers: &[(IpAddr, Option<NodeState>)],
        unreadable: &[IpAddr],
        now: Duration,
    ) -> Vec<IpAddr> {
        self.quiet.retain(|a, _| listed.contains(a));
        for a in listed.iter().filter(|a| **a != own) {
            let answer = answers
                .iter()
                .find(|(p, _)| p == a)
                .and_then(|(_, s)| s.as_ref());
            let quiet = !unreadable.contains(a) && answer.is_none_or(quiet_answer);
            if quiet {
                self.quiet.entry(*a).or_insert(now);
            } else {
                self.quiet.remove(a);
            }
        }
        self.quiet
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= self.params.outage_timeout)
            .map(|(a, _)| *a)
            .collect()
    }

    /// The peers that do not answer now, though the last time they did, in this election,
    /// they ran a server (or were starting one): a partition may hide a component of theirs.
    /// A node whose answer could not be read counts as running (it may run a component of
    /// its own).
    fn went_silent(
        &mut self,
        answers: &[(IpAddr, Option<NodeState>)],
        unreadable: &[IpAddr],
    ) -> Vec<IpAddr> {
        use crate::state::Phase;
        let mut silent = Vec::new();
        for (a, s) in answers {
            match s {
                Some(s) => {
                    self.last_heard.insert(*a, s.phase);
                }
                None if unreadable.contains(a) => {
                    self.last_heard.insert(*a, Phase::Running);
                }
                None => {
                    if self.last_heard.get(a).is_some_and(|p| {
                        matches!(p, Phase::Running | Phase::Bootstrapping | Phase::Joining)
                    }) {
                        silent.push(*a);
                    }
                }
            }
        }
        silent
    }

    fn log(&mut self, plan: Plan) -> Plan {
        let line = plan.describe();
        if line != self.last {
            match &plan {
                Plan::Bootstrap { kind, .. } if kind.forced() => {
                    log::warn!("MANUAL OVERRIDE: decision: {line}")
                }
                _ => log::info!("decision: {line}"),
            }
            self.last = line;
        }
        plan
    }
}

/// Whether an answer says nothing a vote can use yet: a node bootstrapping, or joining
/// without data of its own to vote with (an SST, whose donor may be gone for good). A
/// joiner that holds data and receives no transfer is not quiet: it joins, or its monitor
/// stops its server within `PC_RECOVERY_TIMEOUT` and it votes with that data.
fn quiet_answer(s: &NodeState) -> bool {
    use crate::state::Phase;
    match s.phase {
        Phase::Bootstrapping => true,
        Phase::Joining => !s.has_data() || s.sst_in_progress || s.position().is_none_or(|p| p < 0),
        _ => false,
    }
}

/// Whether `s` says it is a node of another cluster than `own` (a node that does not say
/// its cluster's name is given the benefit of the doubt).
fn stranger(own: &NodeState, s: &NodeState) -> bool {
    !own.cluster_name.is_empty() && !s.cluster_name.is_empty() && s.cluster_name != own.cluster_name
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::record::{LastView, Member};
    use crate::state::Phase;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    /// DNS lists `dns`; `states` answer; `learned` asked this node.
    struct Fake {
        now: u64,
        own: IpAddr,
        dns: Option<Vec<IpAddr>>,
        learned: Vec<IpAddr>,
        states: BTreeMap<IpAddr, NodeState>,
        asked: Vec<IpAddr>,
    }

    impl World for Fake {
        fn now(&self) -> Duration {
            Duration::from_secs(self.now)
        }
        fn lookup(&mut self) -> Answer {
            match &self.dns {
                Some(m) => crate::discovery::interpret(Ok(m.clone()), None, &[self.own]),
                None => Answer::NotReady("timeout".into()),
            }
        }
        fn learned(&mut self) -> Vec<IpAddr> {
            self.learned.clone()
        }
        fn fetch(&mut self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)> {
            self.asked.extend(addrs);
            addrs
                .iter()
                .map(|a| (*a, self.states.get(a).cloned()))
                .collect()
        }
    }

    fn fresh(last: u8) -> NodeState {
        NodeState {
            address: Some(ip(last)),
            phase: Phase::Waiting,
            fresh: Some(true),
            ..NodeState::default()
        }
    }

    fn world(own: u8, dns: &[u8]) -> Fake {
        Fake {
            now: 0,
            own: ip(own),
            dns: Some(dns.iter().map(|k| ip(*k)).collect()),
            learned: Vec::new(),
            states: BTreeMap::new(),
            asked: Vec::new(),
        }
    }

    fn election() -> Election {
        Election::new(
            Params {
                cluster_size: None,
                settle: Duration::from_secs(3),
                outage_timeout: Duration::from_secs(60),
                sst: crate::config::SstSetting::Auto,
            },
            Duration::ZERO,
        )
    }

    fn round(e: &mut Election, w: &mut Fake, own: &NodeState) -> Plan {
        e.round(w, own, Override::None, true)
    }

    #[test]
    fn only_answers_without_a_vote_to_come_are_quiet() {
        let with_data = |phase, seqno, sst| NodeState {
            phase,
            fresh: Some(false),
            seqno: Some(seqno),
            sst_in_progress: sst,
            ..NodeState::default()
        };
        // (answer, quiet)
        let cases = [
            (with_data(Phase::Bootstrapping, 5, false), true),
            // An SST whose donor may be gone for good.
            (with_data(Phase::Joining, 5, true), true),
            (
                NodeState {
                    phase: Phase::Joining,
                    ..fresh(2)
                },
                true,
            ),
            // It joins, or its monitor stops it and it votes with its data.
            (with_data(Phase::Joining, 5, false), false),
            (with_data(Phase::Waiting, 5, false), false),
            (with_data(Phase::Recovering, -1, false), false),
        ];
        for (answer, quiet) in cases {
            assert_eq!(quiet_answer(&answer), quiet, "{answer:?}");
        }
    }

    #[test]
    fn dns_that_is_not_ready_is_waited_for() {
        let mut w = world(1, &[]);
        w.dns = None;
        let plan = round(&mut election(), &mut w, &fresh(1));
        assert!(
            matches!(&plan, Plan::Wait { waiting_for, .. } if waiting_for == &["DNS"]),
            "{plan:?}"
        );
    }

    #[test]
    fn a_peer_that_asked_counts_even_before_dns_lists_it() {
        // This node's DNS lists only itself; node 2 (lower address) asked it.
        let mut w = world(3, &[3]);
        w.learned = vec![ip(2)];
        w.states.insert(ip(2), fresh(2));
        let mut e = election();
        for t in 0..5 {
            w.now = t;
            let plan = round(&mut e, &mut w, &fresh(3));
            assert!(
                matches!(plan, Plan::Wait { .. }),
                "node 2 has the lowest address: never bootstrap here ({plan:?})"
            );
        }
        assert_eq!(e.listed(), [ip(2), ip(3)]);
        assert_eq!(e.first_hand(), [ip(2), ip(3)]);
    }

    #[test]
    fn what_peers_know_first_hand_is_asked_too() {
        let mut w = world(2, &[2, 3]);
        let mut peer = fresh(3);
        peer.known = vec![ip(1), ip(3)];
        w.states.insert(ip(3), peer);
        let mut e = election();
        round(&mut e, &mut w, &fresh(2));
        w.asked.clear();
        w.now = 1;
        let plan = round(&mut e, &mut w, &fresh(2));
        assert!(w.asked.contains(&ip(1)), "gossip reaches node 1");
        assert!(
            plan.reason().contains("waiting for 10.0.0.1 to answer"),
            "{plan:?}"
        );
        assert_eq!(
            e.first_hand(),
            [ip(2), ip(3)],
            "gossip is not passed on as first-hand"
        );
    }

    #[test]
    fn the_members_of_the_last_view_are_asked_at_their_last_address() {
        let mut w = world(1, &[1]);
        let mut own = fresh(1);
        own.fresh = Some(false);
        own.last_view = Some(LastView {
            cluster: "c".into(),
            conf_id: 1,
            members: vec![Member {
                volume_id: Some("v9".into()),
                address: Some(ip(9)),
                name: "n9".into(),
            }],
            synced: true,
        });
        round(&mut election(), &mut w, &own);
        assert!(w.asked.contains(&ip(9)));
    }

    #[test]
    fn a_node_of_another_cluster_is_never_a_peer() {
        let mut w = world(2, &[1, 2]);
        let stranger = NodeState {
            cluster_name: "otherstack".into(),
            phase: Phase::Running,
            wsrep_cluster_status: Some("Primary".into()),
            wsrep_cluster_state_uuid: Some("9acf4d34-acdb-11e6-bcc3-d3e36276629f".into()),
            ..fresh(1)
        };
        w.states.insert(ip(1), stranger);
        let own = NodeState {
            cluster_name: "mystack".into(),
            ..fresh(2)
        };
        let mut e = election();
        for t in 0..5 {
            w.now = t;
            let plan = round(&mut e, &mut w, &own);
            assert!(
                !matches!(plan, Plan::Join { .. }),
                "never joins another cluster's component: {plan:?}"
            );
        }
        assert_eq!(
            e.listed(),
            [ip(2)],
            "not listed: not waited for, not in gcomm://"
        );
        assert!(
            matches!(round(&mut e, &mut w, &own), Plan::Bootstrap { .. }),
            "a fresh cluster of its own forms"
        );
    }

    #[test]
    fn a_changing_set_of_nodes_restarts_the_settle_window() {
        let mut w = world(1, &[1]);
        let mut e = election();
        for t in 0..3 {
            w.now = t;
            assert!(matches!(
                round(&mut e, &mut w, &fresh(1)),
                Plan::Wait { .. }
            ));
        }
        w.dns = Some(vec![ip(1), ip(2)]);
        w.states.insert(ip(2), fresh(2));
        w.now = 3;
        assert!(matches!(
            round(&mut e, &mut w, &fresh(1)),
            Plan::Wait { .. }
        ));
        w.now = 5;
        assert!(matches!(
            round(&mut e, &mut w, &fresh(1)),
            Plan::Wait { .. }
        ));
        w.now = 6;
        assert!(
            matches!(round(&mut e, &mut w, &fresh(1)), Plan::Bootstrap { .. }),
            "stable for 3s since the second node appeared"
        );
    }
}
