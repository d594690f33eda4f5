//! Rule 4: a fresh cluster. No node present has data: once every known node has answered,
//! the set has been stable for the settle window and `CLUSTER_SIZE` (if set) nodes are
//! known, the node with the lowest address bootstraps and the others join it.
//!
//! A node that does not answer is waited for, however long: it may hold data (a node of
//! the cluster whose galera-init cannot be read), and a new empty cluster beside it would
//! be a second history. Only an operator's override goes on without it (a stale DNS entry
//! at a first deployment, when the operator is there anyway).

use super::{BootstrapKind, Inputs, OVERRIDE_HINT, Peers, Plan, list, unreadable_note, wait};

/// The rule.
pub(super) fn rule(i: &Inputs, peers: &Peers, override_on: bool) -> Plan {
    let mut plan = decide(i, peers, override_on);
    if let Plan::Wait { prepare, .. } = &mut plan {
        *prepare = i.own.fresh == Some(true) && i.listed.iter().min() == i.own.address.as_ref();
    }
    plan
}

fn decide(i: &Inputs, peers: &Peers, override_on: bool) -> Plan {
    // With an override, nodes that say nothing are not waited for.
    let waiting_on = if override_on {
        &peers.override_waits
    } else {
        &peers.unheard
    };
    if !waiting_on.is_empty() {
        return wait(
            format!(
                "fresh cluster: waiting for {} to answer{}",
                list(waiting_on),
                match unreadable_note(peers) {
                    Some(note) => format!("; {note}"),
                    None if override_on => String::new(),
                    None => "; to start without it, run `galera-init bootstrap` in any node \
                             (docker exec), or set FORCE_BOOTSTRAP=yes"
                        .into(),
                }
            ),
            waiting_on
                .iter()
                .map(|a| format!("{a} to answer"))
                .collect(),
        );
    }
    let present: Vec<_> = i
        .listed
        .iter()
        .copied()
        .filter(|a| !peers.unheard.contains(a))
        .collect();
    let n = present.len();
    let short_of_size = i.params.cluster_size.filter(|size| n < *size);
    if let Some(size) = short_of_size
        && !override_on
    {
        return wait(
            format!(
                "fresh cluster: {n} of CLUSTER_SIZE={size} nodes known; to start with these \
                 anyway, {OVERRIDE_HINT}"
            ),
            vec![format!("{} more node(s) (CLUSTER_SIZE={size})", size - n)],
        );
    }
    if i.stable_for < i.params.settle {
        return wait(
            format!(
                "fresh cluster of {n} node(s): waiting for the set of nodes to stay unchanged \
                 for {}s",
                i.params.settle.as_secs()
            ),
            Vec::new(),
        );
    }
    let lowest = present.iter().min().copied();
    if lowest.is_some() && lowest == i.own.address {
        let forced = short_of_size.is_some() || peers.unheard.len() > peers.override_waits.len();
        Plan::Bootstrap {
            reason: format!(
                "fresh cluster of {n} node(s), none has data: this node has the lowest address \
                 and bootstraps{}",
                if forced {
                    " (operator override: not waiting for CLUSTER_SIZE or nodes that do not \
                     answer)"
                } else {
                    ""
                }
            ),
            kind: if forced {
                BootstrapKind::FreshOverride
            } else {
                BootstrapKind::Fresh
            },
        }
    } else {
        wait(
            format!(
                "fresh cluster of {n} node(s): {} (lowest address) bootstraps; waiting to join it",
                lowest.map(|a| a.to_string()).unwrap_or_default()
            ),
            Vec::new(),
        )
    }
}
