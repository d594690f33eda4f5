//! The real [`World`] of a node: the system resolver, the peers over HTTP, the peers that
//! asked this node for its state, and the monotonic clock.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::discovery::{self, Answer, Interfaces, LocalAddresses, Resolve, dns::SystemResolver};
use crate::election::World;
use crate::peer::{
    Learned,
    client::{HttpPeers, Reply},
};
use crate::state::NodeState;

/// A node's view of the world.
pub struct NodeWorld {
    resolver: SystemResolver,
    name: String,
    node_address: Option<IpAddr>,
    peers: HttpPeers,
    learned: Learned,
    clock: Instant,
    unreadable: Vec<IpAddr>,
}

impl NodeWorld {
    /// The world of the node at `own`. `clock` is the start of its time.
    pub fn new(
        settings: &Settings,
        own: IpAddr,
        learned: Learned,
        clock: Instant,
    ) -> std::io::Result<NodeWorld> {
        Ok(NodeWorld {
            resolver: SystemResolver::new()?,
            name: settings.discovery_name.clone(),
            node_address: settings.node_address,
            peers: HttpPeers::new(settings.http_port, Some(own), settings.cluster_key.clone()),
            learned,
            clock,
            unreadable: Vec::new(),
        })
    }
}

impl World for NodeWorld {
    fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    fn lookup(&mut self) -> Answer {
        discovery::interpret(
            self.resolver.resolve(&self.name),
            self.node_address,
            &Interfaces.local_addresses(),
        )
    }

    fn learned(&mut self) -> Vec<IpAddr> {
        self.learned.recent()
    }

    fn fetch(&mut self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)> {
        let replies = self.peers.ask_all(addrs);
        self.unreadable = replies
            .iter()
            .filter(|(_, r)| *r == Reply::Unreadable)
            .map(|(a, _)| *a)
            .collect();
        replies.into_iter().map(|(a, r)| (a, r.state())).collect()
    }

    fn unreadable(&self) -> Vec<IpAddr> {
        self.unreadable.clone()
    }
}
