//! Integration tests: the real galera-init binary, real mariadbd, real DNS.
//!
//! One test binary (as ripgrep does) so it links once. The tests that start nodes use the
//! namespace lab ([`lab`]) and need root; the suite runs them one at a time
//! (`--test-threads=1`, see scripts/test.sh) to stay within two cores.

mod clients;
mod cluster;
mod election;
mod failover;
mod faults;
mod health;
mod kit;
mod lab;
mod node_bad_input;
mod node_single;
mod proxy;
mod soak;
mod supervisor;
mod swarm;
mod writer;
