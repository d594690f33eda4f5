//! Asking the other nodes for their state.

use std::net::IpAddr;
use std::time::Duration;

use super::NodeState;
use crate::galera::galera_host;

/// Fetches the state of other nodes. A trait so the election loop can be tested without HTTP.
pub trait FetchState {
    /// The state of the node at `addr`, or `None` when it does not answer (unknown).
    fn fetch(&self, addr: IpAddr) -> Option<NodeState>;

    /// The state of every node in `addrs`, asked in parallel.
    fn fetch_all(&self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)>
    where
        Self: Sync,
    {
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

/// Asks peers over HTTP.
pub struct HttpPeers {
    agent: ureq::Agent,
    port: u16,
}

/// How long a peer may take to answer before it counts as unknown.
pub const TIMEOUT: Duration = Duration::from_secs(1);

impl HttpPeers {
    /// A client for peers serving on `port`.
    pub fn new(port: u16) -> HttpPeers {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(true)
            .build()
            .new_agent();
        HttpPeers { agent, port }
    }
}

impl FetchState for HttpPeers {
    fn fetch(&self, addr: IpAddr) -> Option<NodeState> {
        let url = format!("http://{}:{}/state", galera_host(addr), self.port);
        let result = self
            .agent
            .get(&url)
            .call()
            .and_then(|mut r| r.body_mut().read_json::<NodeState>());
        match result {
            Ok(state) => Some(state),
            Err(e) => {
                log::debug!("{url}: {e}");
                None
            }
        }
    }
}
