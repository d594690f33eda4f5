//! Commands an operator runs in a node's container (`docker exec TASK galera-init …`), next
//! to the running node: they talk to it through its datadir and its state port on loopback,
//! and need no credentials.

pub mod bootstrap;
pub mod healthcheck;
pub mod status;
