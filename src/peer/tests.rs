//! The state exchange over real sockets on 127.0.0.1: signed and unsigned reports, and
//! peers that answer garbage, too much, or too slowly.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::auth::{AUTH_HEADER, ClusterKey};
use super::client::HttpPeers;
use super::{Learned, PEER_HEADER, http};
use crate::peer::client::{self, Reservation};
use crate::state::{NodeState, Phase, Shared};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn key(k: &str) -> ClusterKey {
    ClusterKey::new(k.as_bytes())
}

/// A node's state server on a free port, with `key`; returns the port and what it learned.
fn serve(key: Option<ClusterKey>) -> (u16, Learned) {
    let state = Shared::default();
    state.update(|s| {
        s.phase = Phase::Waiting;
        s.fresh = Some(true);
        s.node_name = "served".into();
    });
    let learned = Learned::default();
    let router = http::router(state, learned.clone(), Arc::new(|_: &mut NodeState| {}))
        .route("/nudge", axum::routing::post(|| async { "nudged" }))
        .route(
            "/reserve-donor",
            axum::routing::post(|| async {
                axum::Json(Reservation {
                    served_ms_ago: Some(500),
                })
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    http::spawn(
        listener,
        http::authenticate(router, key, crate::health::http::GUARDED),
    )
    .unwrap();
    (port, learned)
}

fn origin() -> Option<IpAddr> {
    "10.9.9.9".parse().ok()
}

/// Who reads whose report, by key: a node with a key trusts only answers signed with it;
/// a node without one reads any answer (and a keyed node answers it, unsigned).
#[test]
fn reports_are_trusted_only_with_the_right_key() {
    let a = "a-cluster-key-of-some-length";
    let b = "another-cluster-key-entirely";
    let cases = [
        (None, None, true),
        (Some(a), Some(a), true),
        (Some(a), None, true),
        (None, Some(a), false),
        (Some(b), Some(a), false),
    ];
    for (server, client, read) in cases {
        let (port, learned) = serve(server.map(key));
        let peers = HttpPeers::new(port, origin(), client.map(key));
        let got = peers.fetch(LOCAL);
        if server != client
            && let Some(k) = client
        {
            let why = peers.why_not(LOCAL).unwrap_or_default();
            let want = if server.is_some() {
                "it does not accept this node's signature: wrong signature"
            } else {
                "not signed"
            };
            assert!(why.contains(want), "client {k}: {why}");
        }
        assert_eq!(got.is_some(), read, "server {server:?}, client {client:?}");
        if let Some(s) = got {
            assert_eq!(s.node_name, "served");
        }
        // The server learns of the asking node only from a request it can trust.
        let trusted = server.is_none() || server == client;
        assert_eq!(
            learned.recent() == vec![origin().unwrap()],
            trusted,
            "learned from server {server:?}, client {client:?}"
        );
    }
}

fn raw_request(port: u16, head: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn a_keyed_node_refuses_unsigned_changes() {
    let (port, learned) = serve(Some(key("a-cluster-key-of-some-length")));
    let answer = raw_request(
        port,
        &format!(
            "POST /nudge HTTP/1.1\r\nHost: x\r\n{PEER_HEADER}: 10.1.1.1\r\n{AUTH_HEADER}: 1.00.00\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("this node has a cluster key"), "{answer}");
    assert!(learned.recent().is_empty());
    // A signed one goes through.
    let k = key("a-cluster-key-of-some-length");
    let token = k.sign_request(
        "POST",
        "/nudge",
        None,
        std::time::SystemTime::now(),
        &[1; 16],
    );
    let answer = raw_request(
        port,
        &format!(
            "POST /nudge HTTP/1.1\r\nHost: x\r\n{AUTH_HEADER}: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A fake peer on a free port that answers every connection with `answer` (bytes, then
/// a pause, then the rest), forever.
fn fake_peer(answer: Vec<u8>, trickle: Option<Duration>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                match trickle {
                    None => {
                        let _ = conn.write_all(&answer);
                    }
                    Some(pause) => {
                        for b in answer {
                            if conn.write_all(&[b]).is_err() {
                                return;
                            }
                            std::thread::sleep(pause);
                        }
                    }
                }
            });
        }
    });
    port
}

fn http_answer(body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// A broken or hostile peer is unknown, and asking it costs at most the timeout.
#[test]
fn broken_peers_count_as_unknown_within_the_timeout() {
    let huge = format!(r#"{{"node_name":"{}"}}"#, "x".repeat(200_000));
    let cases: Vec<(&str, Vec<u8>, Option<Duration>)> = vec![
        ("garbage", b"\x00\x01garbage\r\n\r\n".to_vec(), None),
        (
            "malformed JSON",
            http_answer(br#"{"phase":"waiting""#),
            None,
        ),
        ("wrong types", http_answer(br#"{"seqno":"100"}"#), None),
        (
            "an impossible state",
            http_answer(br#"{"phase":"waiting","fresh":false,"seqno":-7}"#),
            None,
        ),
        ("an oversized body", http_answer(huge.as_bytes()), None),
        (
            "a body without end",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n{".to_vec(),
            None,
        ),
        (
            "a slow-loris answer",
            http_answer(br#"{"phase":"waiting","fresh":true}"#),
            Some(Duration::from_millis(50)),
        ),
    ];
    for (what, answer, trickle) in cases {
        let port = fake_peer(answer, trickle);
        let peers = HttpPeers::with_timeout(port, origin(), None, Duration::from_millis(500));
        let start = Instant::now();
        assert_eq!(peers.fetch(LOCAL), None, "{what}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{what} held the client {:?}",
            start.elapsed()
        );
    }
}

/// Clients that open connections and send nothing, or trickle their headers, neither keep
/// the node from answering its peers nor hold their connections for long.
#[test]
fn idle_and_slow_clients_do_not_block_the_server() {
    let (port, _) = serve(None);
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /state HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let peers = HttpPeers::new(port, origin(), None);
    let start = Instant::now();
    assert!(
        peers.fetch(LOCAL).is_some(),
        "answers beside 300 idle connections"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    // The server closes them once HEADER_TIMEOUT has passed.
    let deadline = Instant::now() + http::HEADER_TIMEOUT + Duration::from_secs(5);
    for mut conn in idle.into_iter().take(5).chain([slow]) {
        conn.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now())))
            .unwrap();
        let mut buf = [0u8; 512];
        // Closed: 0 bytes, or an error answer (408) before the close; never a timeout.
        match conn.read(&mut buf) {
            Ok(n) => assert!(n == 0 || buf.starts_with(b"HTTP/1.1 408"), "{n} bytes"),
            Err(e) => assert!(
                e.kind() == std::io::ErrorKind::ConnectionReset,
                "connection still open after {:?}: {e}",
                http::HEADER_TIMEOUT
            ),
        }
    }
}

/// A joiner with a key takes a donor reservation only from a donor that signs its answer
/// with that key: a node that cannot sign (no key) or signs with another does not hold
/// the joiner's start for its drain delay.
#[test]
fn a_reservation_is_trusted_only_with_the_right_key() {
    let a = "a-cluster-key-of-some-length";
    let b = "another-cluster-key-entirely";
    let own = origin().unwrap();
    let cases = [
        (None, None, Ok(())),
        (Some(a), Some(a), Ok(())),
        (None, Some(a), Err("not signed")),
        (Some(b), Some(a), Err("401")),
    ];
    for (server, client, want) in cases {
        let (port, _) = serve(server.map(key));
        let got = client::reserve_donor(
            LOCAL,
            port,
            own,
            client.map(key).as_ref(),
            client::Transfer { blocks: true },
        );
        match (want, got) {
            (Ok(()), Ok(r)) => assert_eq!(r.served_ms_ago, Some(500)),
            (Err(why), Err(e)) => assert!(e.to_string().contains(why), "server {server:?}: {e}"),
            (want, got) => panic!("server {server:?}, client {client:?}: {got:?}, not {want:?}"),
        }
    }
}
