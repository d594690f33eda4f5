//! The pure steps of a node's start: what the datadir and the record say about the node,
//! and what a final plan changes on disk before mariadbd starts. `node` does the I/O around
//! them; the simulation calls the same functions.

use crate::decision::Plan;
use crate::galera::grastate::GraState;
use crate::galera::gvwstate::SavedView;
use crate::record::{self, Record};
use crate::state::{NodeState, Phase};

/// What the datadir says at start.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// No data (empty, or an unfinished initialisation).
    pub fresh: bool,
    /// `grastate.dat`, as read at start.
    pub grastate: Option<GraState>,
    /// The position `--wsrep-recover` found when grastate.dat said -1.
    pub recovered: Option<(String, i64)>,
    /// `gvwstate.dat`.
    pub view: Option<SavedView>,
}

impl Disk {
    /// The position the node starts from.
    pub fn position(&self) -> Option<i64> {
        match (&self.recovered, &self.grastate) {
            (Some((_, s)), _) => Some(*s),
            (None, Some(g)) => Some(g.seqno),
            _ => None,
        }
    }

    /// Galera's own word that mariadbd last stopped cleanly (grastate.dat holds its
    /// position) while other members of its Primary component stayed: only the last member
    /// to leave gets `safe_to_bootstrap: 1`.
    pub fn left_per_galera(&self) -> bool {
        self.recovered.is_none()
            && self
                .grastate
                .as_ref()
                .is_some_and(|g| g.seqno >= 0 && !g.safe_to_bootstrap)
    }
}

/// The node's state from its datadir and record, ready for the election.
pub fn own_state(disk: &Disk, record: &Record) -> NodeState {
    let g = disk.grastate.as_ref();
    let mut s = NodeState {
        phase: Phase::Waiting,
        fresh: Some(disk.fresh),
        has_galera_state: g.is_some(),
        uuid: disk
            .recovered
            .as_ref()
            .map(|(u, _)| u.clone())
            .or_else(|| g.map(|g| g.uuid.clone())),
        seqno: disk.position(),
        safe_to_bootstrap: g.is_some_and(|g| g.safe_to_bootstrap),
        view: disk.view.clone(),
        ..NodeState::default()
    };
    if !disk.fresh {
        s.volume_id = Some(record.volume_id.clone());
        s.lineage = record.lineage.clone();
        s.last_view = record.last_view.clone();
        s.superseded = record.superseded;
        s.left_while_others = record.left_while_others;
        s.accepted = record.accepted.clone();
    }
    s
}

/// What a final plan changes before mariadbd starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepare {
    /// Write `safe_to_bootstrap: 1` into grastate.dat (after saving the record).
    pub write_flag: bool,
    /// Remove the force-bootstrap file: an override is used up by any final plan.
    pub consume_override: bool,
    /// Remove gvwstate.dat: the node joins a running component, so the view Galera saved
    /// before is over. Were the node stopped before it becomes a member (and Galera saves
    /// the new view), pc.recovery would otherwise restore the old view without the
    /// component's newer transactions.
    pub forget_saved_view: bool,
}

/// Applies a final plan to the record: a bootstrap opens a pending epoch (and says whether
/// galera-init must set Galera's flag for it), and a pending override is used up, whether
/// the node bootstraps or joins. `overridden` says an override was pending on this node;
/// `env_override` that it came from FORCE_BOOTSTRAP.
pub fn prepare(
    plan: &Plan,
    record: &mut Record,
    own: &NodeState,
    overridden: bool,
    env_override: bool,
) -> Prepare {
    let mut p = Prepare {
        consume_override: overridden,
        ..Prepare::default()
    };
    if env_override {
        record.force_env_used = true;
    }
    p.forget_saved_view = own.view.is_some()
        && matches!(
            plan,
            Plan::Join {
                pc_recovery: false,
                ..
            }
        );
    // A node with data that joins a running component is in that component's view from
    // now on, not yet Synced: were it stopped before the join completes, its old view would
    // claim a majority the cluster has moved on from.
    // A start that leaves the restore to pc.recovery: until the node has been seen Synced
    // in the restored component, it may lag what the others commit there.
    if let Plan::Join {
        pc_recovery: true, ..
    } = plan
        && let Some(v) = &mut record.last_view
    {
        v.synced = false;
    }
    // Joining is decided only when this node's history fits the component's: from the
    // decision on, its history is the component's (IST or SST brings the rest). An empty
    // joiner records it too: its record, kept through the SST, is on disk before the data.
    if let Plan::Join { lineage, .. } = plan {
        record.joined(lineage);
    }
    if let Plan::Join {
        view: Some(view), ..
    } = plan
    {
        let mut view = view.clone();
        if !view
            .members
            .iter()
            .any(|m| m.volume_id.as_deref() == Some(record.volume_id.as_str()))
        {
            view.members.push(record::Member {
                volume_id: Some(record.volume_id.clone()),
                address: own.address,
                name: own.node_name.clone(),
            });
        }
        view.synced = false;
        record.last_view = Some(view);
    }
    if let Plan::Bootstrap { .. } = plan {
        let fresh = own.fresh != Some(false);
        p.write_flag = !fresh && own.has_galera_state && !own.safe_to_bootstrap;
        let from = if fresh {
            -1
        } else {
            own.position().unwrap_or(-1)
        };
        record.begin_bootstrap(record::random_id(), from, p.write_flag);
        record.never_primary = fresh;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Plan;

    fn disk(seqno: i64, safe: bool, recovered: Option<i64>) -> Disk {
        Disk {
            fresh: false,
            grastate: Some(GraState {
                uuid: "9acf4d34-acdb-11e6-bcc3-d3e36276629f".into(),
                seqno,
                safe_to_bootstrap: safe,
            }),
            recovered: recovered.map(|s| ("9acf4d34-acdb-11e6-bcc3-d3e36276629f".into(), s)),
            view: None,
        }
    }

    #[test]
    fn galera_says_a_node_left_while_others_stayed_after_a_clean_stop_not_last() {
        // (seqno, safe_to_bootstrap, recovered position) -> left while others stayed
        let cases = [
            (12, false, None, true),
            (12, true, None, false),
            (-1, false, Some(15), false),
            (-1, false, None, false),
        ];
        for (seqno, safe, recovered, want) in cases {
            assert_eq!(
                disk(seqno, safe, recovered).left_per_galera(),
                want,
                "seqno {seqno}, safe {safe}, recovered {recovered:?}"
            );
        }
    }

    #[test]
    fn the_state_comes_from_the_datadir_and_the_record() {
        let mut r = Record::new("v".into());
        r.left_while_others = true;
        let clean = own_state(&disk(12, false, None), &r);
        assert!(clean.left_while_others);
        assert_eq!(clean.seqno, Some(12));
        assert_eq!(clean.volume_id.as_deref(), Some("v"));
        let crashed = own_state(&disk(-1, false, Some(15)), &Record::new("v".into()));
        assert!(!crashed.left_while_others);
        assert_eq!(crashed.seqno, Some(15));
        let empty = own_state(
            &Disk {
                fresh: true,
                ..Disk::default()
            },
            &r,
        );
        assert_eq!(empty.fresh, Some(true));
        assert_eq!(empty.volume_id, None, "an empty volume says nothing");
    }

    #[test]
    fn a_bootstrap_opens_an_epoch_and_any_final_plan_uses_the_override() {
        let boot = Plan::Bootstrap {
            reason: String::new(),
            kind: crate::decision::BootstrapKind::Override,
        };
        let join = Plan::Join {
            members: vec![],
            donors: vec![],
            expected_donor: None,
            sst_method: crate::galera::SstMethod::Mariabackup,
            pc_recovery: false,
            lineage: vec![],
            view: Some(record::LastView {
                cluster: "c".into(),
                conf_id: 9,
                members: vec![record::Member {
                    volume_id: Some("w".into()),
                    address: None,
                    name: "n2".into(),
                }],
                synced: true,
            }),
            reason: String::new(),
        };
        let own = own_state(&disk(30, false, None), &Record::default());
        let mut r = Record::new("v".into());
        let p = prepare(&boot, &mut r, &own, true, true);
        assert!(p.write_flag && p.consume_override);
        assert_eq!(r.pending.as_ref().map(|p| p.epoch.after), Some(30));
        assert!(r.force_env_used);
        let safe = own_state(&disk(30, true, None), &Record::default());
        let mut r = Record::new("v".into());
        assert!(!prepare(&boot, &mut r, &safe, false, false).write_flag);
        let mut r = Record::new("v".into());
        let p = prepare(&join, &mut r, &own, true, false);
        assert!(p.consume_override && !p.write_flag);
        assert!(r.pending.is_none() && !r.force_env_used);
        let view = r.last_view.unwrap();
        assert_eq!(
            view.members.len(),
            2,
            "the component's view, this node added"
        );
        assert!(!view.synced, "not Synced in it yet");
        assert!(!p.forget_saved_view, "no saved view to forget");
    }

    #[test]
    fn joining_a_running_component_forgets_the_saved_view_and_pc_recovery_keeps_it() {
        let saved = own_state(
            &Disk {
                view: Some(crate::galera::gvwstate::SavedView {
                    my_uuid: "a".into(),
                    view_id: "3 a 1".into(),
                    members: vec!["a".into(), "b".into()],
                }),
                ..disk(-1, false, Some(12))
            },
            &Record::default(),
        );
        let join = |pc_recovery| Plan::Join {
            members: vec![],
            donors: vec![],
            expected_donor: None,
            sst_method: crate::galera::SstMethod::Mariabackup,
            pc_recovery,
            lineage: vec![],
            view: None,
            reason: String::new(),
        };
        let mut r = Record::new("v".into());
        assert!(prepare(&join(false), &mut r, &saved, false, false).forget_saved_view);
        assert!(!prepare(&join(true), &mut r, &saved, false, false).forget_saved_view);
    }
}
