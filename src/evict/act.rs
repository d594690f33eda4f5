//! Carrying evictions out: probing a member's ports, telling the peers that this node's
//! mariadbd died, and asking the local server to evict or to clear its list.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use mysql::prelude::Queryable;

use super::{Notice, is_uuid};
use crate::peer::auth::ClusterKey;
use crate::peer::client::{self, AnswerError};

/// How long a probe waits for a connection: a refusal comes at once; a timeout proves
/// nothing.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// How long telling one peer may take.
pub const NOTICE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why the local server did not evict.
#[derive(Debug, thiserror::Error)]
pub enum EvictError {
    /// The UUID is not one (nothing is sent to the server).
    #[error("'{0}' is not a gcomm UUID")]
    NotAUuid(String),
    /// The server does not answer.
    #[error("this node's server does not answer: {0}")]
    NoAnswer(mysql::Error),
    /// The statement failed.
    #[error("{0}")]
    Sql(mysql::Error),
}

/// What a probe of one port found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Something listens.
    Open,
    /// The connection was refused: the host is there and nothing listens.
    Refused,
    /// No answer in time, or another error: proves nothing.
    NoAnswer,
}

/// Probes `port` at `addr`.
pub fn probe(addr: IpAddr, port: u16) -> Port {
    match TcpStream::connect_timeout(&SocketAddr::new(addr, port), PROBE_TIMEOUT) {
        Ok(_) => Port::Open,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Port::Refused,
        Err(_) => Port::NoAnswer,
    }
}

/// What was found at `addr`: its galera-init's port, then (when that refuses) its Galera
/// port. Nothing listens there when both are [`Port::Refused`].
pub fn probe_node(addr: IpAddr, http_port: u16, galera_port: u16) -> (Port, Option<Port>) {
    let http = probe(addr, http_port);
    let galera = (http == Port::Refused).then(|| probe(addr, galera_port));
    (http, galera)
}

/// Has the server at `socket` evict the member whose gcomm UUID is `uuid` from its
/// component (`evs.evict`).
pub fn evict(socket: &Path, uuid: &str) -> Result<(), EvictError> {
    if !is_uuid(uuid) {
        return Err(EvictError::NotAUuid(uuid.chars().take(40).collect()));
    }
    provider_option(socket, &format!("evs.evict={uuid}"))
}

/// Clears the eviction list of the server at `socket` (`evs.evict=`).
pub fn clear(socket: &Path) -> Result<(), EvictError> {
    provider_option(socket, "evs.evict=")
}

fn provider_option(socket: &Path, option: &str) -> Result<(), EvictError> {
    let mut conn =
        crate::server::connect(socket, Duration::from_secs(2)).map_err(EvictError::NoAnswer)?;
    conn.query_drop(format!("SET GLOBAL wsrep_provider_options='{option}'"))
        .map_err(EvictError::Sql)
}

/// Tells every address in `peers` that this node's (`own`) mariadbd died, all at once,
/// and waits for their answers (each within [`NOTICE_TIMEOUT`]).
pub fn tell_peers(
    peers: &[IpAddr],
    port: u16,
    own: IpAddr,
    key: Option<&ClusterKey>,
    notice: &Notice,
) -> Vec<(IpAddr, Result<(), AnswerError>)> {
    std::thread::scope(|scope| {
        let asked: Vec<_> = peers
            .iter()
            .map(|&addr| {
                let key = key.cloned();
                (
                    addr,
                    scope.spawn(move || {
                        client::announce_exit(addr, port, own, key.as_ref(), notice, NOTICE_TIMEOUT)
                    }),
                )
            })
            .collect();
        asked
            .into_iter()
            .map(|(addr, t)| {
                let answer = t.join().unwrap_or_else(|_| {
                    Err(AnswerError::Http(ureq::Error::Io(std::io::Error::other(
                        "the sending thread panicked",
                    ))))
                });
                (addr, answer)
            })
            .collect()
    })
}
