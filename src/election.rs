//! The election loop, one round at a time, against an injected [`World`].
//!
//! A round looks at the world once (DNS, the peers that asked this node, every known peer's
//! state, the clock) and asks the pure [`decide`] what to do. The start-up sequence runs
//! rounds until the plan is final; a running node that lost its Primary component runs them
//! from its monitor. The world is a trait so that the same rounds run against the real
//! resolver and HTTP client in a node, and against a model of Galera in the simulation
//! (`tests/sim`).

use std::net::IpAddr;
use std::time::Duration;

use crate::decision::{Inputs, Params, Plan, decide};
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
    listed: Vec<IpAddr>,
    stable_since: Duration,
    last_reason: String,
}

impl Election {
    /// An election that starts now.
    pub fn new(params: Params, now: Duration) -> Election {
        Election {
            params,
            started: now,
            listed: Vec::new(),
            stable_since: now,
            last_reason: String::new(),
        }
    }

    /// The nodes this election knows exist, as of the last round.
    pub fn listed(&self) -> &[IpAddr] {
        &self.listed
    }

    /// One round: look at the world, decide. A wait is logged when its reason changes.
    pub fn round(
        &mut self,
        world: &mut dyn World,
        own: &NodeState,
        force: bool,
        allow_pc_recovery: bool,
    ) -> Plan {
        let now = world.now();
        let Discovered { own: addr, members } = match world.lookup() {
            Answer::Ready(d) => d,
            Answer::NotReady(why) => {
                return self.wait(format!("DNS not ready ({why}): waiting for it"));
            }
        };
        if members != self.listed {
            self.listed = members.clone();
            self.stable_since = now;
        }
        let others: Vec<IpAddr> = members.iter().copied().filter(|a| *a != addr).collect();
        let answers = world.fetch(&others);
        let mut own = own.clone();
        own.address = Some(addr);
        let plan = decide(&Inputs {
            own: &own,
            members: &members,
            peers: &answers,
            stable_for: now.saturating_sub(self.stable_since),
            waited: now.saturating_sub(self.started),
            force_bootstrap: force,
            allow_pc_recovery,
            params: &self.params,
        });
        match plan {
            Plan::Wait { reason } => self.wait(reason),
            plan => plan,
        }
    }

    fn wait(&mut self, reason: String) -> Plan {
        if reason != self.last_reason {
            log::info!("decision: wait: {reason}");
            self.last_reason = reason.clone();
        }
        Plan::Wait { reason }
    }
}
