//! Optional peer authentication with a cluster key (`CLUSTER_KEY_FILE`).
//!
//! Without a key, anything that can reach a node's state port can answer its `/state`
//! questions: a container on the same overlay network that claims to hold newer data holds
//! every node in Wait, and one that posts `/reserve-donor` keeps a node out of the read pool.
//! With a key, peers sign with HMAC-SHA256:
//!
//! - every request a node sends to a peer carries [`AUTH_HEADER`]: the time, a random nonce
//!   and a MAC over the method, the path, the address it names itself by ([`PEER_HEADER`])
//!   and those two;
//! - a node answers an authenticated request with [`SIGNATURE_HEADER`]: a MAC over the
//!   request's token and the exact body, so a report cannot be replayed to another request
//!   or altered on the way;
//! - a node ignores a report without a valid signature (the peer counts as unknown, never
//!   as absent), learns of no node from an unauthenticated request, and refuses the
//!   requests that change its state (`POST /nudge`, `/reserve-donor`) without a valid token.
//!
//! The health endpoints for proxies (`/health`, `/master`, `/live`, `/status`, `/metrics`)
//! stay open: HAProxy cannot sign, and they only read.
//!
//! [`PEER_HEADER`]: super::PEER_HEADER

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The request header with the sender's token: `<unix seconds>.<nonce>.<mac>` (hex).
pub const AUTH_HEADER: &str = "x-galera-init-auth";

/// The response header with the answer's signature (hex).
pub const SIGNATURE_HEADER: &str = "x-galera-init-signature";

/// The response header with the reason a signed request was not accepted (the answer is
/// then unsigned): a peer with another key says so instead of just not signing.
pub const AUTH_ERROR_HEADER: &str = "x-galera-init-auth-error";

/// How far a request's time may be from the receiver's clock: the nodes of a cluster keep
/// their clocks in step (Galera's logs and certification assume it too).
pub const MAX_SKEW: Duration = Duration::from_secs(60);

/// The shortest key accepted: 16 bytes (128 bits).
pub const MIN_KEY_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// Why a token or a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token or signature where the key requires one.
    #[error("not signed")]
    Missing,
    /// The token or signature is not in the expected form.
    #[error("malformed signature")]
    Malformed,
    /// The token's time is too far from this node's clock.
    #[error("signed {0}s away from this node's clock")]
    Skew(i64),
    /// The MAC does not match: another key, or altered.
    #[error("wrong signature (another cluster key?)")]
    Wrong,
    /// The peer did not accept this node's signature, and said why.
    #[error("it does not accept this node's signature: {0}")]
    Refused(String),
}

/// The cluster key shared by every node. Its bytes never reach a log (`Debug` is
/// redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(Arc<[u8]>);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}

impl ClusterKey {
    /// A key from its bytes (the content of `CLUSTER_KEY_FILE`, trimmed).
    pub fn new(bytes: &[u8]) -> ClusterKey {
        ClusterKey(bytes.into())
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        // HMAC takes a key of any length.
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac
    }

    /// The token for a request of `method` on `path` by the node naming itself `origin`,
    /// made at `now` with `nonce` (random bytes; see [`nonce`]).
    pub fn sign_request(
        &self,
        method: &str,
        path: &str,
        origin: Option<IpAddr>,
        now: SystemTime,
        nonce: &[u8],
    ) -> String {
        let secs = unix_secs(now).to_string();
        let nonce = hex(nonce);
        let origin = origin.map(|a| a.to_string()).unwrap_or_default();
        let mac = self.mac(&[
            b"request",
            method.as_bytes(),
            path.as_bytes(),
            origin.as_bytes(),
            secs.as_bytes(),
            nonce.as_bytes(),
        ]);
        format!("{secs}.{nonce}.{}", hex(&mac.finalize().into_bytes()))
    }

    /// Checks a request's token against what the request says (its method, path and the
    /// address in its peer header) and this node's clock.
    pub fn check_request(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        origin: Option<&str>,
        now: SystemTime,
    ) -> Result<(), AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        let mut it = token.split('.');
        let (Some(secs), Some(nonce), Some(mac), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(AuthError::Malformed);
        };
        let t: i64 = secs.parse().map_err(|_| AuthError::Malformed)?;
        let mac = unhex(mac).ok_or(AuthError::Malformed)?;
        if nonce.len() > 64 || unhex(nonce).is_none() {
            return Err(AuthError::Malformed);
        }
        self.mac(&[
            b"request",
            method.as_bytes(),
            path.as_bytes(),
            origin.unwrap_or("").as_bytes(),
            secs.as_bytes(),
            nonce.as_bytes(),
        ])
        .verify_slice(&mac)
        .map_err(|_| AuthError::Wrong)?;
        let skew = t.saturating_sub(unix_secs(now));
        if skew.unsigned_abs() > MAX_SKEW.as_secs() {
            return Err(AuthError::Skew(skew));
        }
        Ok(())
    }

    /// The signature of an answer with `body` to the request whose token was `token`.
    pub fn sign_response(&self, token: &str, body: &[u8]) -> String {
        hex(&self
            .mac(&[b"response", token.as_bytes(), body])
            .finalize()
            .into_bytes())
    }

    /// Checks an answer's signature.
    pub fn check_response(
        &self,
        token: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), AuthError> {
        let sig = unhex(signature.ok_or(AuthError::Missing)?).ok_or(AuthError::Malformed)?;
        self.mac(&[b"response", token.as_bytes(), body])
            .verify_slice(&sig)
            .map_err(|_| AuthError::Wrong)
    }
}

/// 16 random bytes for a request's nonce (from the kernel; the time and the process id if
/// `/dev/urandom` cannot be read, which still keeps a token from being reused).
pub fn nonce() -> [u8; 16] {
    let mut b = [0u8; 16];
    crate::fsutil::unique_bytes(&mut b);
    b
}

/// `req` with this node's token when there is a key: a request of `method` on `path` by the
/// node naming itself `origin` (the peer header it sends). Returns the token too, to check
/// the answer's signature.
pub fn sign<B>(
    req: ureq::RequestBuilder<B>,
    key: Option<&ClusterKey>,
    method: &str,
    path: &str,
    origin: Option<IpAddr>,
) -> (ureq::RequestBuilder<B>, Option<String>) {
    match key {
        None => (req, None),
        Some(k) => {
            let token = k.sign_request(method, path, origin, SystemTime::now(), &nonce());
            (req.header(AUTH_HEADER, &token), Some(token))
        }
    }
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ClusterKey {
        ClusterKey::new(b"0123456789abcdef-cluster")
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const ME: &str = "10.0.0.2";

    fn token() -> String {
        key().sign_request("GET", "/state", ME.parse().ok(), at(1_000_000), &[7; 16])
    }

    /// Each way a request can be wrong, and what the receiver says.
    #[test]
    fn requests() {
        let t = token();
        let other = ClusterKey::new(b"another key of the same length");
        let forged = other.sign_request("GET", "/state", ME.parse().ok(), at(1_000_000), &[7; 16]);
        let now = at(1_000_010);
        type Case<'a> = (
            Option<&'a str>,
            &'a str,
            &'a str,
            Option<&'a str>,
            SystemTime,
            Result<(), AuthError>,
        );
        let cases: Vec<Case> = vec![
            (Some(&t), "GET", "/state", Some(ME), now, Ok(())),
            (
                None,
                "GET",
                "/state",
                Some(ME),
                now,
                Err(AuthError::Missing),
            ),
            (
                Some("x"),
                "GET",
                "/state",
                Some(ME),
                now,
                Err(AuthError::Malformed),
            ),
            (
                Some("1.2.3.4"),
                "GET",
                "/state",
                Some(ME),
                now,
                Err(AuthError::Malformed),
            ),
            (
                Some("1.zz.00"),
                "GET",
                "/state",
                Some(ME),
                now,
                Err(AuthError::Malformed),
            ),
            (
                Some(&forged),
                "GET",
                "/state",
                Some(ME),
                now,
                Err(AuthError::Wrong),
            ),
            // The token is bound to the method, the path and the sender's address.
            (
                Some(&t),
                "POST",
                "/state",
                Some(ME),
                now,
                Err(AuthError::Wrong),
            ),
            (
                Some(&t),
                "GET",
                "/reserve-donor",
                Some(ME),
                now,
                Err(AuthError::Wrong),
            ),
            (
                Some(&t),
                "GET",
                "/state",
                Some("10.0.0.9"),
                now,
                Err(AuthError::Wrong),
            ),
            (Some(&t), "GET", "/state", None, now, Err(AuthError::Wrong)),
            // Replayed later, or signed by a clock far ahead.
            (
                Some(&t),
                "GET",
                "/state",
                Some(ME),
                at(1_000_061),
                Err(AuthError::Skew(-61)),
            ),
            (
                Some(&t),
                "GET",
                "/state",
                Some(ME),
                at(999_900),
                Err(AuthError::Skew(100)),
            ),
        ];
        for (i, (token, method, path, origin, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                key().check_request(token, method, path, origin, now),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn responses() {
        let t = token();
        let body = br#"{"phase":"Waiting"}"#;
        let sig = key().sign_response(&t, body);
        assert_eq!(key().check_response(&t, body, Some(&sig)), Ok(()));
        assert_eq!(
            key().check_response(&t, body, None),
            Err(AuthError::Missing)
        );
        assert_eq!(
            key().check_response(&t, body, Some("zz")),
            Err(AuthError::Malformed)
        );
        // Altered, replayed to another request, or signed with another key.
        assert_eq!(
            key().check_response(&t, br#"{"phase":"Running"}"#, Some(&sig)),
            Err(AuthError::Wrong)
        );
        let t2 = key().sign_request("GET", "/state", ME.parse().ok(), at(1_000_000), &[8; 16]);
        assert_eq!(
            key().check_response(&t2, body, Some(&sig)),
            Err(AuthError::Wrong)
        );
        let other = ClusterKey::new(b"another key of the same length");
        assert_eq!(
            other.check_response(&t, body, Some(&sig)),
            Err(AuthError::Wrong)
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        assert_eq!(format!("{:?}", key()), "ClusterKey(<redacted>)");
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }
}
