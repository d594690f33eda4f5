//! The bootstrap-or-join decision, as a pure function of what the node knows.
//!
//! Everything that talks to the world (DNS, the datadir) feeds [`decide`]; everything that
//! acts (init, config, mariadbd) carries out the [`Plan`]. Keeping it pure is what lets the
//! table of cases below be the specification.
//!
//! This first version knows one safe way to start: the node is the only one DNS lists (the
//! seed of `docker service create --replicas=1`). Any other answer is refused rather than
//! guessed at, until the peer-state election exists.

use std::net::IpAddr;

use crate::datadir::DataState;
use crate::galera::grastate::NIL_UUID;

/// What the decision is based on.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// This node's address.
    pub own: IpAddr,
    /// Every node DNS lists, this one included.
    pub members: &'a [IpAddr],
    /// This node's datadir.
    pub data: &'a DataState,
    /// `FORCE_BOOTSTRAP`: the operator's override.
    pub force_bootstrap: bool,
}

/// What the node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start a new Primary component from this node (`--wsrep-new-cluster`).
    Bootstrap {
        /// Why, for the log.
        reason: String,
    },
    /// Refuse to start: the reason says what the operator can do.
    Refuse {
        /// Why, for the log and the error.
        reason: String,
    },
}

/// Decides how this node starts.
pub fn decide(inputs: &Inputs) -> Plan {
    if inputs.force_bootstrap {
        return Plan::Bootstrap {
            reason: "FORCE_BOOTSTRAP is set: bootstrapping a new Primary component from this \
                     node's data, whatever the other nodes hold"
                .into(),
        };
    }
    if inputs.members != [inputs.own] {
        return Plan::Refuse {
            reason: format!(
                "DNS lists {} nodes; joining an existing cluster is not implemented yet: \
                 start the service with --replicas=1",
                inputs.members.len()
            ),
        };
    }
    match inputs.data {
        DataState::Fresh | DataState::Interrupted => Plan::Bootstrap {
            reason: "the only node in DNS, with an empty datadir: bootstrapping a new cluster"
                .into(),
        },
        DataState::Existing { grastate: None } => Plan::Bootstrap {
            reason: "the only node in DNS, with data but no Galera state: bootstrapping a new \
                     cluster from it"
                .into(),
        },
        DataState::Existing { grastate: Some(g) } if g.safe_to_bootstrap || g.uuid == NIL_UUID => {
            Plan::Bootstrap {
                reason: format!(
                    "the only node in DNS, safe to bootstrap (seqno {}): bootstrapping from its data",
                    g.seqno
                ),
            }
        }
        DataState::Existing { grastate: Some(g) } => Plan::Refuse {
            reason: format!(
                "this node's data (seqno {}) is not marked safe to bootstrap: another node may \
                 hold newer transactions; start the other nodes, or set FORCE_BOOTSTRAP=yes if \
                 this node is known to have the newest data",
                g.seqno
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::galera::grastate::GraState;

    const UUID: &str = "9acf4d34-acdb-11e6-bcc3-d3e36276629f";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn grastate(uuid: &str, seqno: i64, safe: bool) -> DataState {
        DataState::Existing {
            grastate: Some(GraState {
                uuid: uuid.into(),
                seqno,
                safe_to_bootstrap: safe,
            }),
        }
    }

    #[test]
    fn table() {
        let own = ip("10.0.1.2");
        let alone = [own];
        let three = [own, ip("10.0.1.3"), ip("10.0.1.4")];
        // (members, data, force, bootstraps?)
        let cases: Vec<(&[IpAddr], DataState, bool, bool)> = vec![
            (&alone, DataState::Fresh, false, true),
            (&alone, DataState::Interrupted, false, true),
            (&alone, DataState::Existing { grastate: None }, false, true),
            (&alone, grastate(UUID, 12, true), false, true),
            (&alone, grastate(NIL_UUID, -1, false), false, true),
            // Crashed or not the last to leave: another node may be newer.
            (&alone, grastate(UUID, -1, false), false, false),
            (&alone, grastate(UUID, 12, false), false, false),
            (&alone, grastate(UUID, 12, false), true, true),
            // Never guess with peers around: joining comes with the election.
            (&three, DataState::Fresh, false, false),
            (&three, grastate(UUID, 12, true), false, false),
        ];
        for (members, data, force, bootstraps) in cases {
            let plan = decide(&Inputs {
                own,
                members,
                data: &data,
                force_bootstrap: force,
            });
            assert_eq!(
                matches!(plan, Plan::Bootstrap { .. }),
                bootstraps,
                "{members:?} {data:?} force={force}: {plan:?}"
            );
        }
    }
}
