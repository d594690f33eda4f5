//! `galera-init healthcheck`: the image's Docker HEALTHCHECK.
//!
//! It asks the local galera-init over its state port on loopback: no credentials, no cnf
//! file in the datadir (an SST would wipe it), and the verdict is the one the node computes
//! for `/live` ([`crate::health::live`]): healthy while the node makes progress or waits on
//! purpose. `--ready` asks `/health` instead: can this node serve now.

use std::io::Write;
use std::time::Duration;

/// What to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Check {
    /// `--ready`: can the node serve now (Primary, ready, Synced), not merely is it alive.
    pub ready: bool,
    /// `--donor-ok`: with `--ready`, a Donor that keeps serving counts as ready.
    pub donor_ok: bool,
}

/// How long the local server may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Asks the node serving on loopback `port`, prints one line on `out`, and returns the
/// exit code: 0 healthy, 1 not (or no answer).
pub fn run(check: Check, port: u16, out: &mut dyn Write) -> u8 {
    let path = match (check.ready, check.donor_ok) {
        (false, _) => "/live",
        (true, false) => "/health",
        (true, true) => "/health?available_when_donor=1",
    };
    let what = if check.ready {
        "not ready"
    } else {
        "unhealthy"
    };
    match get(port, path) {
        Ok((ok, body)) => {
            let line = body.lines().next().unwrap_or("").trim();
            let _ = writeln!(
                out,
                "{}: {line}",
                match (ok, check.ready) {
                    (true, false) => "healthy",
                    (true, true) => "ready",
                    (false, _) => what,
                }
            );
            u8::from(!ok)
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "{what}: galera-init's state server on 127.0.0.1:{port} (HTTP_PORT) does not \
                 answer: {e}"
            );
            1
        }
    }
}

/// One `GET` on loopback, HTTP/1.0 (the node's own server closes every connection): whether
/// the status is 2xx, and the body. A plain socket, not an HTTP client: this runs every 2 s
/// in every node, and its latency is mostly start-up, so it does the least it can.
fn get(port: u16, path: &str) -> std::io::Result<(bool, String)> {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut reply = Vec::new();
    s.take(64 * 1024).read_to_end(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
    Ok(((200..300).contains(&code), body.to_string()))
}
