//! Asking the other nodes for their state over HTTP.

use std::net::IpAddr;
use std::time::Duration;

use super::PEER_HEADER;
use crate::galera::galera_host;
use crate::state::NodeState;

/// Asks peers over HTTP.
pub struct HttpPeers {
    agent: ureq::Agent,
    port: u16,
    origin: Option<IpAddr>,
}

/// How long a peer may take to answer before it counts as unknown.
pub const TIMEOUT: Duration = Duration::from_secs(1);

impl HttpPeers {
    /// A client for peers serving on `port`; `origin` is this node's address, sent so that
    /// the peers learn of it.
    pub fn new(port: u16, origin: Option<IpAddr>) -> HttpPeers {
        HttpPeers::with_timeout(port, origin, TIMEOUT)
    }

    /// [`HttpPeers::new`] with another timeout.
    pub fn with_timeout(port: u16, origin: Option<IpAddr>, timeout: Duration) -> HttpPeers {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(true)
            .build()
            .new_agent();
        HttpPeers {
            agent,
            port,
            origin,
        }
    }

    /// The state of the node at `addr`, or `None` when it does not answer (unknown).
    pub fn fetch(&self, addr: IpAddr) -> Option<NodeState> {
        let url = format!("http://{}:{}/state", galera_host(addr), self.port);
        let mut req = self.agent.get(&url);
        if let Some(o) = self.origin {
            req = req.header(PEER_HEADER, o.to_string());
        }
        match req
            .call()
            .and_then(|mut r| r.body_mut().read_json::<NodeState>())
        {
            Ok(state) => Some(state),
            Err(e) => {
                log::debug!("{url}: {e}");
                None
            }
        }
    }

    /// The state of every node in `addrs`, asked in parallel.
    pub fn fetch_all(&self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = addrs
                .iter()
                .map(|a| (*a, s.spawn(move || self.fetch(*a))))
                .collect();
            handles
                .into_iter()
                .map(|(a, h)| (a, h.join().unwrap_or(None)))
                .collect()
        })
    }
}
