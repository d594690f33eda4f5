//! The real resolver: hickory, on a current-thread tokio runtime.
//!
//! A new hickory resolver is built for every lookup, so `/etc/resolv.conf` is read again each
//! time (Docker may rewrite it) and nothing is cached (`cache_size = 0`): a node must see the
//! tasks that exist now, not those of a minute ago. The name is made absolute (trailing dot)
//! so search domains are not tried first. `/etc/hosts` is not consulted.

use std::net::IpAddr;
use std::time::Duration;

use std::net::IpAddr as ServerAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use super::{DnsError, Resolve};

/// How long one query may take before the next attempt.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// A resolver that asks the name servers of `/etc/resolv.conf` (or one given server).
pub struct SystemResolver {
    runtime: tokio::runtime::Runtime,
    server: Option<ServerAddr>,
}

impl SystemResolver {
    /// Creates the runtime. Call it after signals are blocked, so its threads (if any)
    /// inherit the mask.
    pub fn new() -> std::io::Result<SystemResolver> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(SystemResolver {
            runtime,
            server: None,
        })
    }

    /// A resolver that asks `server` only, whatever `/etc/resolv.conf` says (for tools and
    /// tests that talk to a known DNS server).
    pub fn with_server(server: ServerAddr) -> std::io::Result<SystemResolver> {
        let mut r = SystemResolver::new()?;
        r.server = Some(server);
        Ok(r)
    }
}

/// Makes a name absolute, so that search domains are never tried first.
pub fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl Resolve for SystemResolver {
    fn resolve(&mut self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let mut builder = match self.server {
            None => TokioResolver::builder_tokio().map_err(|e| DnsError::Other(e.to_string()))?,
            Some(ip) => TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![NameServerConfig::udp(ip)]),
                TokioRuntimeProvider::default(),
            ),
        };
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = QUERY_TIMEOUT;
        opts.attempts = 2;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver = builder
            .build()
            .map_err(|e| DnsError::Other(e.to_string()))?;
        let name = absolute(name);
        let result = self.runtime.block_on(resolver.lookup_ip(name.as_str()));
        match result {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_nx_domain() => Err(DnsError::NxDomain),
            Err(e) if e.is_no_records_found() => Err(DnsError::NoRecords),
            Err(hickory_resolver::net::NetError::Timeout) => Err(DnsError::Timeout),
            Err(e) => Err(DnsError::Other(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_become_absolute() {
        assert_eq!(super::absolute("tasks.db"), "tasks.db.");
        assert_eq!(super::absolute("tasks.db."), "tasks.db.");
    }
}
