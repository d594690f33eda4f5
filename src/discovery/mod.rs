//! Finding this node and its peers in DNS.
//!
//! In Swarm, `tasks.<service>` lists one A record per running task. The answer is trusted
//! only when it lists this node's own address: no answer, NXDOMAIN, a timeout or an answer
//! without us all mean "DNS is not ready yet" (Swarm publishes a task a moment after it
//! starts), never "there are no peers". Treating an empty answer as "alone" is how other
//! images bootstrap a second cluster beside a running one (anchors-galera.md §9.4).
//!
//! The resolver and the interface list are traits so the retry logic is tested without DNS.

pub mod dns;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::supervisor::Stopped;

/// Why a DNS lookup gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name exists but has no A/AAAA records.
    #[error("no records")]
    NoRecords,
    /// The name does not exist (yet).
    #[error("NXDOMAIN")]
    NxDomain,
    /// No server answered in time.
    #[error("timeout")]
    Timeout,
    /// Anything else (no name server configured, network unreachable…).
    #[error("{0}")]
    Other(String),
}

/// Resolves a name to addresses, fresh on every call (no cache).
pub trait Resolve {
    /// The A and AAAA records of `name`.
    fn resolve(&mut self, name: &str) -> Result<Vec<IpAddr>, DnsError>;
}

/// Lists the addresses of this host's interfaces.
pub trait LocalAddresses {
    /// Every address configured on a local interface.
    fn local_addresses(&self) -> Vec<IpAddr>;
}

/// The interfaces of this network namespace, from `getifaddrs`.
pub struct Interfaces;

impl LocalAddresses for Interfaces {
    fn local_addresses(&self) -> Vec<IpAddr> {
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
            return Vec::new();
        };
        addrs
            .filter_map(|ifa| {
                let a = ifa.address?;
                if let Some(v4) = a.as_sockaddr_in() {
                    Some(IpAddr::V4(v4.ip()))
                } else {
                    a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
                }
            })
            .collect()
    }
}

/// A usable DNS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// This node's address, as it appears in the answer.
    pub own: IpAddr,
    /// Every address in the answer, this node's included, sorted.
    pub members: Vec<IpAddr>,
}

/// Discovery gave up, or was stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// No usable answer within the timeout.
    #[error(
        "{name} did not list this node within {}s (last answer: {last}): check that \
         DB_SERVICE_NAME names this service and that the node is on its network, or set \
         NODE_ADDRESS; exiting so the orchestrator restarts the node",
        .timeout.as_secs()
    )]
    Timeout {
        /// The name looked up.
        name: String,
        /// The configured timeout.
        timeout: Duration,
        /// The last answer, described.
        last: String,
    },
    /// A stop signal arrived while waiting.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// What a DNS answer means for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The answer lists this node.
    Ready(Discovered),
    /// DNS is not ready: the reason, for the log.
    NotReady(String),
}

/// Interprets one lookup. `own` is `NODE_ADDRESS` when set; otherwise this node's address is
/// the local address that appears in the answer (a Swarm task has several interfaces:
/// overlay, docker_gwbridge, ingress; only the overlay one is in the answer).
pub fn interpret(
    result: Result<Vec<IpAddr>, DnsError>,
    own: Option<IpAddr>,
    local: &[IpAddr],
) -> Answer {
    let mut members = match result {
        Ok(addrs) if addrs.is_empty() => return Answer::NotReady("no records".into()),
        Ok(addrs) => addrs,
        Err(e) => return Answer::NotReady(e.to_string()),
    };
    members.sort();
    members.dedup();
    let own = match own {
        Some(own) => members.contains(&own).then_some(own),
        None => members.iter().copied().find(|a| local.contains(a)),
    };
    match own {
        Some(own) => Answer::Ready(Discovered { own, members }),
        None => Answer::NotReady(format!(
            "{} address(es), none of them this node's",
            members.len()
        )),
    }
}

/// Retries with a doubling delay, from [`FIRST_DELAY`] up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest delay between two lookups.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Looks up `name` until the answer lists this node, or `timeout` passes. `pause` sleeps
/// between attempts and returns early on a stop signal.
pub fn discover(
    name: &str,
    own: Option<IpAddr>,
    timeout: Duration,
    resolver: &mut dyn Resolve,
    local: &dyn LocalAddresses,
    pause: &mut dyn FnMut(Duration) -> Result<(), Stopped>,
) -> Result<Discovered, DiscoveryError> {
    let start = Instant::now();
    let mut delay = FIRST_DELAY;
    loop {
        let answer = interpret(resolver.resolve(name), own, &local.local_addresses());
        let reason = match answer {
            Answer::Ready(found) => return Ok(found),
            Answer::NotReady(reason) => reason,
        };
        if start.elapsed() >= timeout {
            return Err(DiscoveryError::Timeout {
                name: name.to_string(),
                timeout,
                last: reason,
            });
        }
        log::info!(
            "DNS not ready: {name}: {reason}; retrying in {:.1}s",
            delay.as_secs_f32()
        );
        pause(delay.min(timeout.saturating_sub(start.elapsed())))?;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn interpretation_table() {
        let local = [ip("127.0.0.1"), ip("172.18.0.5"), ip("10.0.1.7")];
        type Case = (
            Result<Vec<IpAddr>, DnsError>,
            Option<IpAddr>,
            Option<(&'static str, usize)>,
        );
        let cases: Vec<Case> = vec![
            (Err(DnsError::NxDomain), None, None),
            (Err(DnsError::NoRecords), None, None),
            (Err(DnsError::Timeout), None, None),
            (Ok(vec![]), None, None),
            // Answer without our own address: DNS not ready, never "no peers".
            (Ok(vec![ip("10.0.1.8"), ip("10.0.1.9")]), None, None),
            (Ok(vec![ip("10.0.1.7")]), None, Some(("10.0.1.7", 1))),
            (
                Ok(vec![
                    ip("10.0.1.9"),
                    ip("10.0.1.7"),
                    ip("10.0.1.8"),
                    ip("10.0.1.7"),
                ]),
                None,
                Some(("10.0.1.7", 3)),
            ),
            // NODE_ADDRESS wins over interface matching, and must be in the answer.
            (
                Ok(vec![ip("10.0.1.7"), ip("10.9.9.9")]),
                Some(ip("10.9.9.9")),
                Some(("10.9.9.9", 2)),
            ),
            (Ok(vec![ip("10.0.1.7")]), Some(ip("10.9.9.9")), None),
        ];
        for (result, own, want) in cases {
            let desc = format!("{result:?} own={own:?}");
            match (interpret(result, own, &local), want) {
                (Answer::Ready(d), Some((own, n))) => {
                    assert_eq!(d.own, ip(own), "{desc}");
                    assert_eq!(d.members.len(), n, "{desc}");
                    assert!(d.members.windows(2).all(|w| w[0] < w[1]), "sorted: {desc}");
                }
                (Answer::NotReady(_), None) => {}
                (got, want) => panic!("{desc}: got {got:?}, want {want:?}"),
            }
        }
    }

    struct Scripted(Vec<Result<Vec<IpAddr>, DnsError>>, usize);
    impl Resolve for Scripted {
        fn resolve(&mut self, _: &str) -> Result<Vec<IpAddr>, DnsError> {
            self.1 += 1;
            if self.0.is_empty() {
                Err(DnsError::NxDomain)
            } else {
                self.0.remove(0)
            }
        }
    }
    struct Local;
    impl LocalAddresses for Local {
        fn local_addresses(&self) -> Vec<IpAddr> {
            vec![ip("10.0.1.7")]
        }
    }

    #[test]
    fn retries_until_the_answer_lists_us() {
        let mut r = Scripted(
            vec![
                Err(DnsError::NxDomain),
                Ok(vec![ip("10.0.1.8")]),
                Err(DnsError::Timeout),
                Ok(vec![ip("10.0.1.8"), ip("10.0.1.7")]),
            ],
            0,
        );
        let mut slept = Vec::new();
        let found = discover(
            "tasks.s",
            None,
            Duration::from_secs(60),
            &mut r,
            &Local,
            &mut |d| {
                slept.push(d);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(found.own, ip("10.0.1.7"));
        assert_eq!(r.1, 4);
        assert_eq!(slept, [FIRST_DELAY, FIRST_DELAY * 2, FIRST_DELAY * 4]);
    }

    #[test]
    fn gives_up_after_the_timeout_and_stops_on_signal() {
        let mut r = Scripted(vec![], 0);
        let err = discover("tasks.s", None, Duration::ZERO, &mut r, &Local, &mut |_| {
            Ok(())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("tasks.s did not list this node"),
            "{err}"
        );
        let err = discover(
            "tasks.s",
            None,
            Duration::from_secs(60),
            &mut r,
            &Local,
            &mut |_| Err(Stopped(libc::SIGTERM)),
        )
        .unwrap_err();
        assert_eq!(err, DiscoveryError::Stopped(Stopped(libc::SIGTERM)));
    }
}
