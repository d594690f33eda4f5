//! galera-init's own record in the datadir (`galera-init.json`): what Galera's files do not
//! keep, and the election needs to know who may hold newer data than this node.
//!
//! Galera deletes `gvwstate.dat` on a clean shutdown, and `grastate.dat` knows only this
//! node's position, so after a graceful full stop no file says which nodes outlived which.
//! The record says it, and travels with the volume (a task rescheduled elsewhere keeps it):
//!
//! - **`volume_id`**: a random id for this volume's data. Nodes are matched by it, not by
//!   address or hostname, which change when Swarm reschedules a task.
//! - **`last_view`**: the last Primary component this node was a member of, by volume id.
//!   Written by the monitor while the node is Primary, kept across a clean stop. Its members
//!   that are missing after an outage may hold newer data.
//! - **`lineage`**: one [`Epoch`] per bootstrap this history went through. Two nodes of
//!   the same cluster UUID whose lineages disagree have diverged (a bootstrap from older
//!   data by an override): a join by IST would silently mix the two histories.
//! - **`pending`**: a bootstrap that has not reached a Primary component yet, and whether
//!   galera-init set `safe_to_bootstrap: 1` for it. A crash before Primary leaves the flag
//!   on disk; the next start clears it (the node did not earn it).
//! - **`force_env_used`**: `FORCE_BOOTSTRAP=yes` has been used once on this volume; it is
//!   ignored until the variable is removed and set again.
//! - **`left_while_others`**: mariadbd last stopped cleanly while other members of its
//!   Primary component stayed. Those may have gone on without it, so a timeout must not
//!   let this node's data restart the cluster without them.
//! - **`accepted`**: this node recorded that another node bootstraps, which waits for every
//!   node with data present to do so: a majority of a view can then be used only once.
//! - **`superseded`**: an override restarted the cluster from other data and gave this
//!   node's history up; it has no say until an operator decides.
//! - **`never_primary`**: galera-init initialised this datadir for a bootstrap that has not
//!   reached a Primary component yet. Should mariadbd stop before it does (a bad option),
//!   the datadir holds no transaction of any cluster: the next start treats it as an
//!   unfinished initialisation, not as data that must be recovered.
//!
//! Mariabackup's SST clears the datadir, this file included; the monitor writes it again once
//! the node is Primary. The transitions are pure methods, so the simulation runs them too.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// The record's file name in the datadir.
pub const RECORD_FILE: &str = "galera-init.json";

/// One bootstrap in a history: the transactions after seqno `after` were written by the
/// Primary component bootstrapped with this id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    /// A random id, unique to this bootstrap.
    pub id: String,
    /// The position the bootstrap started from.
    pub after: i64,
}

/// A member of a Primary view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its volume id, when its state could be read.
    pub volume_id: Option<String>,
    /// Its address at the time.
    pub address: Option<IpAddr>,
    /// Its node name at the time.
    pub name: String,
}

impl Member {
    /// A short name for logs.
    pub fn label(&self) -> String {
        let id = self
            .volume_id
            .as_deref()
            .map(|v| format!("volume {}", short(v)))
            .unwrap_or_else(|| "unknown volume".into());
        match self.address {
            Some(a) if self.name.is_empty() => format!("{id} (last at {a})"),
            Some(a) => format!("{} ({id}, last at {a})", self.name),
            None => id,
        }
    }
}

/// The first characters of an id, enough to tell volumes apart in a log line.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// The last Primary view a node was in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastView {
    /// `wsrep_cluster_state_uuid`.
    pub cluster: String,
    /// `wsrep_cluster_conf_id` of the view.
    pub conf_id: i64,
    /// Every member, this node included.
    pub members: Vec<Member>,
    /// This node was Synced in that view: it held the view's data, not only what a joiner
    /// had received so far.
    #[serde(default)]
    pub synced: bool,
}

/// A bootstrap that has not reached a Primary component yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The epoch it starts.
    pub epoch: Epoch,
    /// galera-init wrote `safe_to_bootstrap: 1` into grastate.dat for it.
    pub flag_written: bool,
}

/// The record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// This volume's id.
    pub volume_id: String,
    /// The bootstraps of this node's history, oldest first.
    pub lineage: Vec<Epoch>,
    /// A bootstrap under way.
    pub pending: Option<Pending>,
    /// The last Primary view this node was a member of.
    pub last_view: Option<LastView>,
    /// `FORCE_BOOTSTRAP=yes` was used already.
    pub force_env_used: bool,
    /// An override bootstrapped the cluster from a history that leaves this node's out,
    /// giving it up: it does not vote or restore it on its own again.
    pub superseded: bool,
    /// mariadbd last stopped cleanly while other members of its Primary component stayed
    /// (cleared whenever mariadbd starts).
    pub left_while_others: bool,
    /// This node recorded that another node bootstraps (the bootstrap waits for it), and
    /// has not been in a Primary component since: that node may have gone on without it.
    pub accepted: Option<Member>,
    /// galera-init initialised this datadir for a bootstrap, and the node has not been in a
    /// Primary component since: no transaction of any cluster is in it yet.
    pub never_primary: bool,
}

/// Why the record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file cannot be read.
    #[error("{} cannot be read ({source})", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not a record.
    #[error("{} cannot be parsed ({source})", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
}

/// What a history looks like next to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compat {
    /// One history is a prefix of the other (or they cannot be told apart).
    Same,
    /// They differ after `after`: different bootstraps wrote what follows.
    Diverged {
        /// The last position both histories share.
        after: i64,
    },
    /// At least one lineage is unknown (data from before the record, or lost).
    Unknown,
    /// One history has no record, and the other restarted from `after`, below this one's
    /// position: whether this one's later transactions are the other's cannot be told.
    Unplaced {
        /// The restart's position: up to it, the histories are the same.
        after: i64,
    },
}

/// The epoch that wrote transaction `seqno`: the last one that started before it.
fn epoch_at(lineage: &[Epoch], seqno: i64) -> Option<&Epoch> {
    lineage.iter().rev().find(|e| e.after < seqno)
}

/// Compares the history of a node at `seqno` with lineage `mine` against the lineage
/// `theirs` of a node at `their_seqno >= seqno`: is the first contained in the second?
///
/// A history without a record (a restored backup, data migrated from another image) can
/// still be placed when the other never restarted below `seqno`: one cluster UUID has one
/// history up to its first restart. Otherwise it is [`Compat::Unplaced`].
pub fn compare(mine: &[Epoch], seqno: i64, theirs: &[Epoch]) -> Compat {
    if seqno <= 0 {
        return Compat::Same;
    }
    // One history without a record: it can be placed against the other only up to the
    // other's first restart (either may be the branch a restart left behind).
    if mine.is_empty() != theirs.is_empty() {
        let known = if mine.is_empty() { theirs } else { mine };
        return known
            .iter()
            .map(|e| e.after)
            .filter(|a| (0..seqno).contains(a))
            .min()
            .map_or(Compat::Same, |after| Compat::Unplaced { after });
    }
    match (epoch_at(mine, seqno), epoch_at(theirs, seqno)) {
        (Some(a), Some(b)) if a.id == b.id => Compat::Same,
        (Some(_), Some(_)) => {
            let mut points: Vec<i64> = mine
                .iter()
                .chain(theirs)
                .map(|e| e.after)
                .filter(|a| *a < seqno)
                .collect();
            points.sort_unstable_by(|a, b| b.cmp(a));
            let after = points
                .into_iter()
                .find(|x| {
                    *x <= 0
                        || matches!((epoch_at(mine, *x), epoch_at(theirs, *x)),
                            (Some(a), Some(b)) if a.id == b.id)
                })
                .unwrap_or(0);
            Compat::Diverged { after }
        }
        _ => Compat::Unknown,
    }
}

/// Whether the history of a node at `seqno` with lineage `mine` was given up by the history
/// with lineage `theirs`: they diverged because `theirs` was bootstrapped again from below
/// `seqno` (an override, or a majority that went on without this node), while `mine` only
/// went on with bootstraps `theirs` knows. The restart decided for the cluster; this node's
/// transactions after the fork were left behind. (When each history has a bootstrap the
/// other lacks, neither can be told to be the cluster's: that is for an operator.)
pub fn given_up_by(mine: &[Epoch], seqno: i64, theirs: &[Epoch]) -> bool {
    let Compat::Diverged { after } = compare(mine, seqno, theirs) else {
        return false;
    };
    let knows = |lineage: &[Epoch], e: &Epoch| lineage.iter().any(|o| o.id == e.id);
    epoch_at(theirs, after + 1).is_some_and(|e| !knows(mine, e))
        && mine
            .iter()
            .filter(|e| e.after < seqno)
            .all(|e| knows(theirs, e))
}

impl Record {
    /// A new record for a volume.
    pub fn new(volume_id: String) -> Record {
        Record {
            volume_id,
            ..Record::default()
        }
    }

    /// The lineage peers see: with a bootstrap under way, its epoch is included, so that a
    /// node that joins the new component right away takes it. (Should the bootstrap fail,
    /// the epoch wrote nothing: any history is the same up to its start.)
    pub fn published_lineage(&self) -> Vec<Epoch> {
        let mut l = self.lineage.clone();
        if let Some(p) = &self.pending {
            l.push(p.epoch.clone());
        }
        l
    }

    /// Before starting mariadbd with `--wsrep-new-cluster` from `position`: the new epoch is
    /// pending until the node is Primary. `flag_written` says galera-init set
    /// `safe_to_bootstrap: 1` in grastate.dat for this bootstrap.
    pub fn begin_bootstrap(&mut self, epoch_id: String, position: i64, flag_written: bool) {
        self.pending = Some(Pending {
            epoch: Epoch {
                id: epoch_id,
                after: position,
            },
            flag_written,
        });
    }

    /// The node reached a Primary component after a bootstrap: the epoch is history now.
    /// Returns whether anything changed.
    pub fn commit_bootstrap(&mut self) -> bool {
        match self.pending.take() {
            Some(p) => {
                self.lineage.push(p.epoch);
                true
            }
            None => false,
        }
    }

    /// At start, before anything reads grastate.dat: a bootstrap left pending by a crash or
    /// a stop. If the node committed anything after the bootstrap's position it was
    /// Primary, and the epoch is kept; otherwise the bootstrap never happened for the
    /// cluster, and the `safe_to_bootstrap: 1` galera-init wrote for it is not earned.
    /// Returns whether grastate.dat's flag must be cleared.
    pub fn settle_at_start(&mut self, position: Option<i64>) -> bool {
        let Some(p) = self.pending.take() else {
            return false;
        };
        if position.is_some_and(|s| s > p.epoch.after) {
            self.lineage.push(p.epoch);
            false
        } else {
            p.flag_written
        }
    }

    /// The node joined a Primary component (SST or IST): its history is the component's.
    pub fn joined(&mut self, component_lineage: &[Epoch]) -> bool {
        if component_lineage.is_empty() || self.lineage == component_lineage {
            return false;
        }
        self.lineage = component_lineage.to_vec();
        true
    }

    /// A Synced member of this node's component has a longer lineage that starts with this
    /// one (another member restored the component with pc.bootstrap): take it.
    pub fn extend_lineage(&mut self, theirs: &[Epoch]) -> bool {
        if theirs.len() > self.lineage.len() && theirs.starts_with(&self.lineage) {
            self.lineage = theirs.to_vec();
            return true;
        }
        false
    }

    /// The node is in a Primary view: remember it. Returns whether it changed.
    pub fn observe_view(&mut self, view: LastView) -> bool {
        if self.last_view.as_ref() == Some(&view) {
            return false;
        }
        self.last_view = Some(view);
        true
    }

    /// FORCE_BOOTSTRAP is `env_set` at this start: returns whether it acts. It acts once
    /// per volume; removing the variable re-arms it.
    pub fn arm_env_override(&mut self, env_set: bool) -> bool {
        if !env_set {
            self.force_env_used = false;
        }
        env_set && !self.force_env_used
    }

    /// The record's path in `datadir`.
    pub fn path(datadir: &Path) -> PathBuf {
        datadir.join(RECORD_FILE)
    }

    /// Reads the record; `Ok(None)` when there is none. A file that cannot be parsed is
    /// reported as an error for the caller to log; the caller then starts a new record.
    pub fn load(datadir: &Path) -> Result<Option<Record>, RecordError> {
        let path = Self::path(datadir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| RecordError::Parse { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RecordError::Read { path, source }),
        }
    }

    /// Writes the record atomically.
    pub fn save(&self, datadir: &Path) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(&Self::path(datadir), &text, 0o644)
    }
}

/// A random id (128 bits, hex).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    crate::fsutil::unique_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: &str, after: i64) -> Epoch {
        Epoch {
            id: id.into(),
            after,
        }
    }

    #[test]
    fn lineages_compare_by_the_epoch_that_wrote_each_transaction() {
        let base = vec![e("a", -1)];
        let later = vec![e("a", -1), e("b", 100)];
        let branched = vec![e("a", -1), e("c", 50)];
        let late_record = vec![e("b", 100)];
        let cases: Vec<(&[Epoch], i64, &[Epoch], Compat)> = vec![
            (&base, 90, &later, Compat::Same),
            (&base, 100, &later, Compat::Same),
            (&base, 120, &later, Compat::Diverged { after: 100 }),
            (&later, 150, &later, Compat::Same),
            (&branched, 60, &later, Compat::Diverged { after: 50 }),
            (&branched, 40, &later, Compat::Same),
            // No record: placed up to the first restart, not past it.
            (&[], 60, &later, Compat::Same),
            (&[], 120, &later, Compat::Unplaced { after: 100 }),
            (&base, 60, &[], Compat::Same),
            (&later, 120, &[], Compat::Unplaced { after: 100 }),
            (&base, 0, &[], Compat::Same),
            // A lineage recorded late (older data) still matches by id.
            (&late_record, 130, &later, Compat::Same),
        ];
        for (mine, seqno, theirs, want) in cases {
            assert_eq!(
                compare(mine, seqno, theirs),
                want,
                "{mine:?} at {seqno} vs {theirs:?}"
            );
        }
    }

    #[test]
    fn a_restart_from_older_data_gives_up_a_plain_continuation_only() {
        let base = vec![e("a", -1)];
        let restarted = vec![e("a", -1), e("r", 0)];
        let own_restart = vec![e("a", -1), e("g", 0)];
        let later_own_restart = vec![e("a", -1), e("g", 3)];
        let cases: Vec<(&[Epoch], i64, &[Epoch], bool)> = vec![
            // It went on alone after the fork; the cluster restarted from seqno 0.
            (&base, 4, &restarted, true),
            // Behind the restart's start: nothing of it was left behind.
            (&base, 0, &restarted, false),
            // The same history.
            (&restarted, 6, &restarted, false),
            // Each has a bootstrap the other lacks: an operator decides.
            (&own_restart, 4, &restarted, false),
            (&later_own_restart, 6, &restarted, false),
            // The other way round: the restarted history is not given up by the old one.
            (&restarted, 2, &base, false),
            // Unknown lineages say nothing.
            (&[], 4, &restarted, false),
            (&base, 4, &[], false),
        ];
        for (mine, seqno, theirs, want) in cases {
            assert_eq!(
                given_up_by(mine, seqno, theirs),
                want,
                "{mine:?} at {seqno} vs {theirs:?}"
            );
        }
    }

    #[test]
    fn a_bootstrap_is_history_only_once_it_reached_primary() {
        let mut r = Record::new("v".into());
        r.begin_bootstrap("x".into(), 10, true);
        assert!(r.lineage.is_empty(), "pending until Primary");
        assert!(
            r.clone().settle_at_start(Some(10)),
            "crashed before committing anything: the flag galera-init wrote must go"
        );
        let mut crashed_after_writes = r.clone();
        assert!(!crashed_after_writes.settle_at_start(Some(12)));
        assert_eq!(crashed_after_writes.lineage, vec![e("x", 10)]);
        assert!(r.commit_bootstrap());
        assert_eq!(r.lineage, vec![e("x", 10)]);
        assert!(!r.settle_at_start(Some(10)), "nothing pending any more");
        let mut unflagged = Record::new("v".into());
        unflagged.begin_bootstrap("y".into(), 3, false);
        assert!(
            !unflagged.settle_at_start(None),
            "Galera's own flag is left alone"
        );
    }

    #[test]
    fn force_bootstrap_acts_once_until_removed() {
        let mut r = Record::new("v".into());
        assert!(r.arm_env_override(true));
        r.force_env_used = true;
        assert!(!r.arm_env_override(true), "used once already");
        assert!(!r.arm_env_override(false));
        assert!(!r.force_env_used, "removing the variable re-arms it");
        assert!(r.arm_env_override(true));
    }

    #[test]
    fn lineages_are_adopted_on_join_and_extended_by_members() {
        let mut r = Record::new("v".into());
        r.lineage = vec![e("a", -1)];
        assert!(
            !r.extend_lineage(&[e("z", -1), e("b", 5)]),
            "not an extension"
        );
        assert!(r.extend_lineage(&[e("a", -1), e("b", 5)]));
        assert!(
            !r.extend_lineage(&[e("a", -1)]),
            "a member that lags behind"
        );
        assert!(r.joined(&[e("q", -1)]));
        assert_eq!(r.lineage, vec![e("q", -1)]);
        assert!(!r.joined(&[]), "an unknown lineage changes nothing");
    }

    #[test]
    fn the_record_survives_a_round_trip_and_ids_are_random() {
        let dir = std::env::temp_dir().join(format!("gi-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Record::load(&dir).unwrap(), None);
        let mut r = Record::new(random_id());
        r.lineage = vec![e("a", -1)];
        r.observe_view(LastView {
            cluster: "c".into(),
            conf_id: 3,
            members: vec![Member {
                volume_id: Some(r.volume_id.clone()),
                address: Some("10.0.0.1".parse().unwrap()),
                name: "n1".into(),
            }],
            synced: true,
        });
        r.save(&dir).unwrap();
        assert_eq!(Record::load(&dir).unwrap(), Some(r.clone()));
        std::fs::write(Record::path(&dir), "{not json").unwrap();
        assert!(
            Record::load(&dir)
                .unwrap_err()
                .to_string()
                .contains("cannot be parsed")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.volume_id.len(), 32);
        assert_ne!(random_id(), random_id());
    }
}
