//! Asking the other nodes for their state over HTTP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::PEER_HEADER;
use super::auth::{self, AUTH_ERROR_HEADER, ClusterKey, SIGNATURE_HEADER};
use super::report::{self, MAX_REPORT};
use crate::galera::galera_host;
use crate::state::NodeState;

/// Asks peers over HTTP.
pub struct HttpPeers {
    agent: ureq::Agent,
    port: u16,
    origin: Option<IpAddr>,
    key: Option<ClusterKey>,
}

/// How long a peer may take to answer before it counts as unknown: a peer that trickles
/// its answer (or never ends it) is cut off here.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Why a peer's answer is not used.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Http(#[from] ureq::Error),
    #[error("{0}")]
    Auth(#[from] auth::AuthError),
    #[error("{0}")]
    Report(#[from] report::ReportError),
}

impl HttpPeers {
    /// A client for peers serving on `port`; `origin` is this node's address, sent so that
    /// the peers learn of it. With `key`, requests are signed and unsigned answers ignored.
    pub fn new(port: u16, origin: Option<IpAddr>, key: Option<ClusterKey>) -> HttpPeers {
        HttpPeers::with_timeout(port, origin, key, TIMEOUT)
    }

    /// [`HttpPeers::new`] with another timeout.
    pub fn with_timeout(
        port: u16,
        origin: Option<IpAddr>,
        key: Option<ClusterKey>,
        timeout: Duration,
    ) -> HttpPeers {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(true)
            .build()
            .new_agent();
        HttpPeers {
            agent,
            port,
            origin,
            key,
        }
    }

    /// The state of the node at `addr`, or `None` when it does not answer, or answers
    /// something that cannot be used (unknown).
    pub fn fetch(&self, addr: IpAddr) -> Option<NodeState> {
        match self.try_fetch(addr) {
            Ok(state) => Some(state),
            Err(FetchError::Http(e)) => {
                log::debug!("{addr}: {e}");
                None
            }
            Err(e) => {
                warn_now_and_then(addr, &e);
                None
            }
        }
    }

    /// Why the answer of the node at `addr` cannot be used now, if it cannot (for tests and
    /// diagnostics).
    pub fn why_not(&self, addr: IpAddr) -> Option<String> {
        self.try_fetch(addr).err().map(|e| e.to_string())
    }

    fn try_fetch(&self, addr: IpAddr) -> Result<NodeState, FetchError> {
        let path = "/state";
        let url = format!("http://{}:{}{path}", galera_host(addr), self.port);
        let mut req = self.agent.get(&url);
        if let Some(o) = self.origin {
            req = req.header(PEER_HEADER, o.to_string());
        }
        let token;
        (req, token) = auth::sign(req, self.key.as_ref(), "GET", path, self.origin);
        let mut resp = req.call()?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let signature = header(SIGNATURE_HEADER);
        let refused = header(AUTH_ERROR_HEADER);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_REPORT)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    FetchError::Report(report::ReportError::TooLarge)
                }
                e => FetchError::Http(e),
            })?;
        if let (Some(key), Some(token)) = (&self.key, &token) {
            if let (None, Some(why)) = (&signature, refused) {
                return Err(auth::AuthError::Refused(why).into());
            }
            key.check_response(token, &body, signature.as_deref())?;
        }
        Ok(report::decode(&body)?)
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

/// How often the same peer's unusable answers are logged as warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Logs that `addr` answered something unusable: a warning the first time and then once a
/// minute (peers are asked twice a second), debug in between.
fn warn_now_and_then(addr: IpAddr, e: &FetchError) {
    static LAST: Mutex<Option<HashMap<IpAddr, Instant>>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let map = last.get_or_insert_with(HashMap::new);
    let due = map.get(&addr).is_none_or(|t| t.elapsed() >= WARN_EVERY);
    if due {
        map.insert(addr, Instant::now());
        log::warn!(
            "{addr} answered its state with something unusable, so it counts as unknown: {e}"
        );
    } else {
        log::debug!("{addr}: {e}");
    }
}
