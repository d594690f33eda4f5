//! The election loop, one round at a time, against an injected [`World`].
//!
//! A round looks at the world once (DNS, the peers that asked this node, every known peer's
//! state, the clock) and asks the pure [`decide`] what to do. The start-up sequence runs
//! rounds until the plan is final; a running node that lost its Primary component runs them
//! from its monitor. The world is a trait so that the same rounds run against the real
//! resolver and HTTP client in a node, and against a model of Galera in the simulation
//! (`tests/sim`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use crate::decision::{Inputs, Override, Params, Plan, decide};
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
    /// The state of each address (`None`: it did not answer).
    fn fetch(&mut self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)>;
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
                });
            }
        };
        let mut first_hand: BTreeSet<IpAddr> = members.into_iter().collect();
        first_hand.extend(world.learned());
        first_hand.insert(addr);
        self.first_hand = first_hand.iter().copied().collect();
        let mut listed = first_hand;
        listed.extend(self.gossip.iter().copied());
        let listed: Vec<IpAddr> = listed.into_iter().collect();
        if listed != self.listed {
            self.listed = listed.clone();
            self.stable_since = now;
        }
        let mut ask: Vec<IpAddr> = listed.iter().copied().filter(|a| *a != addr).collect();
        if let Some(view) = &own.last_view {
            for a in view.members.iter().filter_map(|m| m.address) {
                if a != addr && !ask.contains(&a) {
                    ask.push(a);
                }
            }
        }
        let answers = world.fetch(&ask);
        self.primary_seen = answers.iter().any(|(_, s)| {
            s.as_ref()
                .is_some_and(|s| s.is_primary() || s.phase == crate::state::Phase::Bootstrapping)
        });
        self.gossip = answers
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .flat_map(|s| s.known.iter().copied())
            .collect();
        let mut own = own.clone();
        own.address = Some(addr);
        let plan = decide(&Inputs {
            own: &own,
            listed: &listed,
            peers: &answers,
            stable_for: now.saturating_sub(self.stable_since),
            waited: now.saturating_sub(self.started),
            force,
            allow_pc_recovery,
            params: &self.params,
        });
        self.log(plan)
    }

    fn log(&mut self, plan: Plan) -> Plan {
        let line = plan.describe();
        if line != self.last {
            match &plan {
                Plan::Bootstrap { forced: true, .. } => {
                    log::warn!("MANUAL OVERRIDE: decision: {line}")
                }
                Plan::Refuse { .. } => {}
                _ => log::info!("decision: {line}"),
            }
            self.last = line;
        }
        plan
    }
}
