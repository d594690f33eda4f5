//! Asking the other nodes for their state over HTTP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::PEER_HEADER;
use super::auth::{self, AUTH_ERROR_HEADER, ClusterKey, SIGNATURE_HEADER};
use super::report::{self, MAX_REPORT};
use crate::galera::galera_host;
use crate::state::NodeState;

/// Requests to the other nodes' state ports, for every client of them in this binary (the
/// election's `/state`, the health thread's `/nudge`, a joiner's `/reserve-donor`): each
/// names this node (`origin`) in [`PEER_HEADER`], is signed with the cluster key when
/// there is one, and has its answer's signature checked.
#[derive(Clone)]
pub struct PeerAgent {
    agent: ureq::Agent,
    port: u16,
    origin: Option<IpAddr>,
    key: Option<ClusterKey>,
}

/// A request ready to send, and the token its answer must be signed for (with a key).
pub struct Prepared<B> {
    /// The request, named and signed.
    pub req: ureq::RequestBuilder<B>,
    /// The token the answer must be signed for, when the request was signed.
    pub token: Option<String>,
}

/// Why a peer's answer is not used.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No answer, or an HTTP error status.
    #[error("{0}")]
    Http(#[from] ureq::Error),
    /// The answer is not signed as the cluster key requires.
    #[error("{0}")]
    Auth(#[from] auth::AuthError),
    /// The answer's body is longer than the caller accepts.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(u64),
}

impl PeerAgent {
    /// Requests to peers serving on `port`, from the node at `origin`, signed with `key`;
    /// each gives up after `timeout`.
    pub fn new(
        port: u16,
        origin: Option<IpAddr>,
        key: Option<ClusterKey>,
        timeout: Duration,
    ) -> PeerAgent {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(true)
            .build()
            .new_agent();
        PeerAgent {
            agent,
            port,
            origin,
            key,
        }
    }

    /// `GET path` on the node at `addr`.
    pub fn get(&self, addr: IpAddr, path: &str) -> Prepared<ureq::typestate::WithoutBody> {
        self.prepare(self.agent.get(&self.url(addr, path)), "GET", path)
    }

    /// `POST path` on the node at `addr`.
    pub fn post(&self, addr: IpAddr, path: &str) -> Prepared<ureq::typestate::WithBody> {
        self.prepare(self.agent.post(&self.url(addr, path)), "POST", path)
    }

    /// `DELETE path` on the node at `addr`.
    pub fn delete(&self, addr: IpAddr, path: &str) -> Prepared<ureq::typestate::WithoutBody> {
        self.prepare(self.agent.delete(&self.url(addr, path)), "DELETE", path)
    }

    fn url(&self, addr: IpAddr, path: &str) -> String {
        format!("http://{}:{}{path}", galera_host(addr), self.port)
    }

    fn prepare<B>(
        &self,
        mut req: ureq::RequestBuilder<B>,
        method: &str,
        path: &str,
    ) -> Prepared<B> {
        if let Some(o) = self.origin {
            req = req.header(PEER_HEADER, o.to_string());
        }
        let (req, token) = auth::sign(req, self.key.as_ref(), method, path, self.origin);
        Prepared { req, token }
    }

    /// The body of the answer to a request prepared with `token`, at most `limit` bytes,
    /// once its signature is checked (with a key): an unsigned or wrongly signed answer is
    /// an error, and so is a peer saying that it does not accept this node's signature.
    pub fn read_answer(
        &self,
        token: Option<&str>,
        resp: &mut ureq::http::Response<ureq::Body>,
        limit: u64,
    ) -> Result<Vec<u8>, AnswerError> {
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
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => AnswerError::TooLarge(limit),
                e => AnswerError::Http(e),
            })?;
        if let (Some(key), Some(token)) = (&self.key, token) {
            if let (None, Some(why)) = (&signature, refused) {
                return Err(auth::AuthError::Refused(why).into());
            }
            key.check_response(token, &body, signature.as_deref())?;
        }
        Ok(body)
    }
}

/// What a donor answers a joiner's reservation (`POST /reserve-donor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// How long ago `/health` or `/master` last answered 200 here; `None`: never.
    pub served_ms_ago: Option<u64>,
}

impl Reservation {
    /// How long a joiner waits for the proxies to move clients off its donor: what is
    /// left of `drain_delay` since the donor last told a proxy that it serves.
    pub fn pause(&self, drain_delay: Duration) -> Duration {
        match self.served_ms_ago {
            None => Duration::ZERO,
            Some(ms) => drain_delay.saturating_sub(Duration::from_millis(ms)),
        }
    }
}

/// Asks the node at `addr` (state port `port`) to leave the read pool while it serves the
/// state transfer of this node (`own`) (`POST /reserve-donor`): a proxy checking `/health`
/// then stops sending it reads before its server turns Donor.
pub fn reserve_donor(
    addr: IpAddr,
    port: u16,
    own: IpAddr,
    key: Option<&ClusterKey>,
    transfer: Transfer,
) -> Result<Reservation, AnswerError> {
    let agent = reservation_agent(port, own, key);
    let Prepared { req, token } = agent.post(addr, RESERVATION_PATH);
    let mut r = req.send_json(transfer)?;
    let body = agent.read_answer(token.as_deref(), &mut r, MAX_RESERVATION_ANSWER)?;
    // A donor of an earlier version answers text: the joiner waits the whole delay.
    Ok(serde_json::from_slice(&body).unwrap_or(Reservation {
        served_ms_ago: Some(0),
    }))
}

/// Tells the node at `addr` that this node (`own`) has its state (`DELETE
/// /reserve-donor`): it rejoins the read pool, and may take the writes again, without
/// waiting for the reservation to lapse.
pub fn release_donor(
    addr: IpAddr,
    port: u16,
    own: IpAddr,
    key: Option<&ClusterKey>,
) -> Result<(), AnswerError> {
    let agent = reservation_agent(port, own, key);
    let prepared = agent.delete(addr, RESERVATION_PATH);
    prepared.req.call()?;
    Ok(())
}

/// Where a node whose mariadbd died tells its peers so ([`crate::evict`]).
pub const EVICT_PATH: &str = "/evict";

/// Tells the node at `addr` that this node's (`own`) mariadbd died (`POST /evict` with
/// `notice` as JSON), within `timeout`.
pub fn announce_exit(
    addr: IpAddr,
    port: u16,
    own: IpAddr,
    key: Option<&ClusterKey>,
    notice: &impl Serialize,
    timeout: Duration,
) -> Result<(), AnswerError> {
    let agent = PeerAgent::new(port, Some(own), key.cloned(), timeout);
    agent.post(addr, EVICT_PATH).req.send_json(notice)?;
    Ok(())
}

/// What a joiner tells its donor about the transfer it is about to take (the body of
/// `POST /reserve-donor`; a joiner of an earlier version sends none: it counts as
/// blocking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The transfer blocks the donor's writes while it runs (an rsync SST).
    pub blocks: bool,
}

/// Where a joiner reserves its donor.
pub const RESERVATION_PATH: &str = "/reserve-donor";

/// The longest answer to a reservation read: far above the real one (a few bytes).
const MAX_RESERVATION_ANSWER: u64 = 4096;

fn reservation_agent(port: u16, own: IpAddr, key: Option<&ClusterKey>) -> PeerAgent {
    PeerAgent::new(port, Some(own), key.cloned(), Duration::from_secs(2))
}

/// What a peer answered when asked for its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Its state.
    State(Box<NodeState>),
    /// An answer that cannot be used: a node that runs, but whose word cannot be taken
    /// (another cluster key, a clock off, a report that cannot be decoded).
    Unreadable,
    /// No answer (nothing listens, a timeout).
    Silent,
}

impl Reply {
    /// The state, when there is one.
    pub fn state(self) -> Option<NodeState> {
        match self {
            Reply::State(s) => Some(*s),
            _ => None,
        }
    }
}

/// Asks peers for their state (`GET /state`).
pub struct HttpPeers {
    agent: PeerAgent,
}

/// How long a peer may take to answer before it counts as unknown: a peer that trickles
/// its answer (or never ends it) is cut off here.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Why a peer's report is not used.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Answer(#[from] AnswerError),
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
        HttpPeers {
            agent: PeerAgent::new(port, origin, key, timeout),
        }
    }

    /// The state of the node at `addr`, or `None` when it does not answer, or answers
    /// something that cannot be used (unknown).
    pub fn fetch(&self, addr: IpAddr) -> Option<NodeState> {
        match self.try_fetch(addr) {
            Ok(state) => Some(state),
            Err(FetchError::Answer(AnswerError::Http(e))) => {
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
        let prepared = self.agent.get(addr, "/state");
        let mut resp = prepared.req.call().map_err(AnswerError::from)?;
        let body = self
            .agent
            .read_answer(prepared.token.as_deref(), &mut resp, MAX_REPORT)
            .map_err(|e| match e {
                AnswerError::TooLarge(_) => FetchError::Report(report::ReportError::TooLarge),
                e => e.into(),
            })?;
        Ok(report::decode(&body)?)
    }

    /// What the node at `addr` answers: its state, something that cannot be used (another
    /// cluster key, a clock off, a report that cannot be decoded), or nothing.
    pub fn ask(&self, addr: IpAddr) -> Reply {
        match self.try_fetch(addr) {
            Ok(state) => Reply::State(Box::new(state)),
            Err(FetchError::Answer(AnswerError::Http(e))) => {
                log::debug!("{addr}: {e}");
                Reply::Silent
            }
            Err(e) => {
                warn_now_and_then(addr, &e);
                Reply::Unreadable
            }
        }
    }

    /// What every node in `addrs` answers, asked in parallel.
    pub fn ask_all(&self, addrs: &[IpAddr]) -> Vec<(IpAddr, Reply)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = addrs
                .iter()
                .map(|a| (*a, s.spawn(move || self.ask(*a))))
                .collect();
            handles
                .into_iter()
                .map(|(a, h)| (a, h.join().unwrap_or(Reply::Silent)))
                .collect()
        })
    }

    /// The state of every node in `addrs`, asked in parallel (`None`: unknown).
    pub fn fetch_all(&self, addrs: &[IpAddr]) -> Vec<(IpAddr, Option<NodeState>)> {
        self.ask_all(addrs)
            .into_iter()
            .map(|(a, r)| (a, r.state()))
            .collect()
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
