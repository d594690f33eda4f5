//! Rule 1: a Primary component runs. Join it, when this node's history fits in it; a node
//! whose history would be lost or mixed waits with its data kept, saying why.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{Inputs, Plan, donor, wait, wait_for_operator};
use crate::galera::SstMethod;
use crate::galera::grastate::NIL_UUID;
use crate::record::{self, Compat, Epoch, LastView};
use crate::state::{NodeState, Phase};

/// The rule: `None` when no Primary component answers.
pub(super) fn rule(i: &Inputs, known: &[(IpAddr, &NodeState)]) -> Option<Plan> {
    let primaries: Vec<&NodeState> = known
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| s.is_primary())
        .collect();
    let first = primaries.first()?;
    let clusters: BTreeSet<&str> = primaries
        .iter()
        .filter_map(|s| s.wsrep_cluster_state_uuid.as_deref())
        .collect();
    if clusters.len() > 1 {
        let list: Vec<&str> = clusters.into_iter().collect();
        return Some(wait(
            format!(
                "nodes of {} different Primary components answer ({}): refusing to take \
                 sides; stop the one that must not exist",
                list.len(),
                list.join(", ")
            ),
            Vec::new(),
        ));
    }
    // The component's lineage: the longest its members report (a member that has just
    // joined may not know it yet).
    let lineage: &[Epoch] = known
        .iter()
        .filter(|(_, s)| s.is_primary())
        .map(|(_, s)| s.lineage.as_slice())
        .max_by_key(|l| l.len())
        .unwrap_or(&[]);
    if i.own.has_data()
        && let Some(plan) = history_fits(i, known, first, lineage)
    {
        return Some(plan);
    }
    if i.own.phase == Phase::Running {
        return Some(wait(
            format!(
                "a Primary component runs ({}); Galera merges this node into it once it \
                 reaches it",
                first.label()
            ),
            Vec::new(),
        ));
    }
    Some(join(i, known, first, lineage))
}

/// What keeps this node's data out of the running component, if anything: it is of
/// another cluster, holds no Galera state, is ahead of the component, or its history
/// diverged from the component's or cannot be placed in it.
fn history_fits(
    i: &Inputs,
    known: &[(IpAddr, &NodeState)],
    primary: &NodeState,
    lineage: &[Epoch],
) -> Option<Plan> {
    let cluster = primary.wsrep_cluster_state_uuid.as_deref();
    if !i.own.has_galera_state {
        return Some(wait_for_operator(
            "a Primary component runs, but this node's datadir holds data without Galera \
             state: joining would replace it by SST; it is kept and this node waits: move \
             the data away (or empty the volume) to join"
                .into(),
            "data without Galera state",
        ));
    }
    if let (Some(own), Some(cluster)) = (i.own.uuid.as_deref(), cluster)
        && own != NIL_UUID
        && own != cluster
    {
        return Some(wait_for_operator(
            format!(
                "this node's data belongs to cluster {own}, but the running Primary component \
                 is cluster {cluster}: it does not join (an SST would wipe it) and waits with \
                 its data kept; move the data away, or empty the volume to join as a new node"
            ),
            "data of another cluster",
        ));
    }
    // The running component's position: the most advanced its members report.
    let theirs = known
        .iter()
        .filter(|(_, s)| s.is_primary())
        .filter_map(|(_, s)| s.position())
        .max();
    let mine = i.own.position().unwrap_or(-1);
    let keep = "this node's data is kept: to keep its history instead, stop the running \
                cluster and bootstrap from this node (`galera-init bootstrap` here); to give \
                it up, empty this volume and the node joins by SST";
    // A bootstrap of the running component that started below this node's position and is
    // not in its history: it gave this node's history up. A history without a record that
    // the component's restarts leave unplaced may have been given up too: it has no say
    // until an operator decides (never restored by pc.recovery behind the component's back).
    let compat = record::compare(&i.own.lineage, mine, lineage);
    let superseded = if i.own.lineage.is_empty() {
        matches!(compat, Compat::Unplaced { .. })
    } else {
        lineage
            .iter()
            .any(|e| e.after < mine && !i.own.lineage.iter().any(|o| o.id == e.id))
    };
    let wait = |reason: String, waiting_for: Vec<String>| Plan::Wait {
        reason,
        waiting_for,
        superseded,
        accept: None,
        prepare: false,
    };
    if let Some(theirs) = theirs
        && mine > theirs
    {
        return Some(wait(
            format!(
                "this node's history (seqno {mine}) is ahead of the running Primary component \
                 (cluster {}, seqno {theirs}): joining would discard {} transaction(s) (Galera \
                 refuses it); {keep}",
                cluster.unwrap_or("?"),
                mine - theirs
            ),
            vec![format!("a decision about {} transaction(s)", mine - theirs)],
        ));
    }
    match compat {
        Compat::Diverged { after } => Some(wait(
            format!(
                "this node's history diverged from the running Primary component's after \
                 seqno {after} (it was bootstrapped from other data, by an override): its \
                 transactions {}..{mine} are not in the cluster, and joining by IST would mix \
                 the two histories; {keep}",
                after + 1
            ),
            vec![format!(
                "a decision about transactions {}..{mine}",
                after + 1
            )],
        )),
        Compat::Unplaced { after } => Some(wait(
            format!(
                "this node's history or the running Primary component's has no record \
                 (galera-init.json is missing: a restored backup, or data from another \
                 image), and one of them restarted from seqno {after}, below this node's \
                 seqno {mine}: whether its transactions {}..{mine} are the cluster's cannot \
                 be told, and joining by IST would mix them in; {keep}",
                after + 1
            ),
            vec![format!(
                "a decision about transactions {}..{mine} (no record)",
                after + 1
            )],
        )),
        Compat::Same | Compat::Unknown => None,
    }
}

/// The join itself, once this node's history fits: joiners enter one at a time.
fn join(
    i: &Inputs,
    known: &[(IpAddr, &NodeState)],
    primary: &NodeState,
    lineage: &[Epoch],
) -> Plan {
    let cluster = primary.wsrep_cluster_state_uuid.as_deref();
    let everyone: Vec<&NodeState> = known.iter().map(|(_, s)| *s).collect();
    let (donors, sst_method) = donor::choose(i.params.sst, &everyone, primary);
    if let Some(plan) = queue(i, known, primary, sst_method) {
        return plan;
    }
    let mut members: Vec<IpAddr> = i.listed.to_vec();
    members.extend(known.iter().map(|(a, _)| *a));
    members.sort();
    members.dedup();
    let expected_donor = donor::expected(i.own, &donors, &everyone, primary).map(|d| {
        let blocks = !d.ist && sst_method == crate::galera::SstMethod::Rsync;
        donor::ExpectedDonor { blocks, ..d }
    });
    let donors = donors.iter().map(|s| s.node_name.clone()).collect();
    let forced = if i.force.is_on() {
        " (the override is not needed: a Primary component runs)"
    } else {
        ""
    };
    Plan::Join {
        members,
        donors,
        expected_donor,
        sst_method,
        pc_recovery: false,
        lineage: lineage.to_vec(),
        view: Some(LastView {
            cluster: cluster.unwrap_or_default().to_string(),
            conf_id: primary.wsrep_cluster_conf_id.unwrap_or(0),
            members: primary
                .incoming_addresses()
                .into_iter()
                .map(|a| {
                    let s = known.iter().find(|(k, _)| *k == a).map(|(_, s)| *s);
                    record::Member {
                        volume_id: s.and_then(|s| s.volume_id.clone()),
                        address: Some(a),
                        name: s.map(|s| s.node_name.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
            synced: false,
        }),
        reason: format!(
            "a Primary component of {} node(s) runs (cluster {}): joining it{forced}",
            primary.wsrep_cluster_size.unwrap_or(0),
            cluster.unwrap_or("?")
        ),
    }
}

/// Whether another joiner goes first. Empty joiners take a mariabackup SST one at a time:
/// two back-to-back mariabackup SSTs from one donor have been seen to fail here, and the
/// second joiner then gets a donor that is not the writer (rsync SSTs of small data start
/// together: Galera serves them one after the other, each as soon as a donor is free).
/// And joiners enter the component one at a time: two nodes entering Galera's membership at
/// the same moment make it go round for seconds (seen here: an IST join took 8 s beside
/// another instead of 2). A joiner stuck for `OUTAGE_TIMEOUT` does not hold the others.
fn queue(
    i: &Inputs,
    known: &[(IpAddr, &NodeState)],
    primary: &NodeState,
    sst_method: SstMethod,
) -> Option<Plan> {
    let joining = |a: &IpAddr, s: &NodeState| {
        s.phase == Phase::Joining && Some(*a) < i.own.address && !i.gone.contains(a)
    };
    if i.own.fresh == Some(true)
        && sst_method == SstMethod::Mariabackup
        && let Some((a, _)) = known
            .iter()
            .find(|(a, s)| joining(a, s) && s.fresh == Some(true))
    {
        return Some(wait(
            format!("{a} is receiving its SST; nodes with an empty datadir join one at a time"),
            Vec::new(),
        ));
    }
    let component = primary.incoming_addresses();
    let (a, _) = known
        .iter()
        .find(|(a, s)| joining(a, s) && !component.contains(a))?;
    Some(wait(
        format!("{a} is entering the component first; joiners enter one at a time"),
        Vec::new(),
    ))
}
