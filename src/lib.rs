//! galera-init: the PID-1 entrypoint of a MariaDB Galera image.
//!
//! It reads its configuration from the environment, finds its peers through
//! `tasks.<DB_SERVICE_NAME>`, decides whether to bootstrap a cluster, writes the Galera
//! config, initialises a fresh datadir and supervises mariadbd as PID 1.
//!
//! # Layout
//!
//! - [`config`]: the environment, validated into [`config::Settings`] before anything runs.
//! - [`cli`]: the command line: run a node, an operator's command, or another command
//!   under supervision.
//! - [`commands`]: what an operator runs in a node's container (`galera-init bootstrap`).
//! - [`discovery`]: DNS lookups of the service's tasks, and this node's own address.
//! - [`state`]: what a node knows about itself and tells its peers.
//! - [`record`]: galera-init's own record in the datadir (volume id, lineage, last view).
//! - [`peer`]: the HTTP exchange of node states.
//! - [`decision`]: the pure bootstrap-or-join decision.
//! - [`election`]: election rounds against an injected world (DNS, peers, clock).
//! - [`galera`]: the Galera config file and Galera's state files.
//! - [`datadir`]: the datadir's state, and the initialisation of a fresh one.
//! - [`server`]: mariadbd as a process and a client connection to it.
//! - [`supervisor`]: PID-1 duties: signals, reaping, exit codes.
//! - [`evict`]: eviction on proof: a member proven dead leaves the component at once.
//! - [`health`]: what the node tells Docker and proxies (liveness, readiness, the writer),
//!   served on [`peer::http`]'s server beside `/state`.
//! - [`notify`]: Galera's state notifications (`wsrep_notify_cmd`) wake the monitor.
//! - [`node`]: the sequence that ties the above together.

pub mod cli;
pub mod commands;
pub mod config;
pub mod datadir;
pub mod decision;
pub mod discovery;
pub mod election;
pub mod evict;
pub mod fsutil;
pub mod galera;
pub mod health;
pub mod node;
pub mod notify;
pub mod peer;
pub mod record;
pub mod server;
pub mod state;
pub mod supervisor;
