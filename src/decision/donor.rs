//! Which nodes a joiner names as its donors (`wsrep_sst_donor`), and which one Galera will
//! pick from that list.
//!
//! The order spares the writer and nodes that have just received their own state transfer.
//! The prediction lets the joiner ask that one node to leave the read pool before its
//! server starts (`POST /reserve-donor`): a proxy checks health once a second, and a donor
//! that lags must not take reads in between. Galera picks an IST donor by its gcache, not by
//! the list's order, so the prediction follows Galera's own rule (gcs_group.cpp,
//! `gcs_group_find_donor`): an IST when the joiner's history is the cluster's and some named
//! donor still caches the write sets after the joiner's position; the donor is the named one
//! whose cache starts latest (the last named among equals); otherwise an SST from the first
//! named node.

use std::cmp::Reverse;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::SstSetting;
use crate::galera::SstMethod;
use crate::state::NodeState;

/// With `SST_METHOD=auto`, a joiner asks for an rsync SST while every donor it names holds
/// less data than this (the datadir without Galera's cache and InnoDB's redo log): a few
/// seconds' transfer, during which rsync blocks the donor's writes. Above it, or when a
/// donor's size is unknown, mariabackup keeps the donor usable however long the transfer
/// takes.
pub const RSYNC_LIMIT: u64 = 256 << 20;

/// The SST method a joiner asks for, its donors being `donors`.
pub fn method(setting: SstSetting, donors: &[&NodeState]) -> SstMethod {
    match setting {
        SstSetting::Fixed(m) => m,
        SstSetting::Auto => {
            let sizes: Option<Vec<u64>> = donors.iter().map(|s| s.data_bytes).collect();
            match sizes {
                Some(v) if !v.is_empty() && v.iter().all(|b| *b < RSYNC_LIMIT) => SstMethod::Rsync,
                _ => SstMethod::Mariabackup,
            }
        }
    }
}

/// How long a node must have been Synced to come first among a joiner's donors.
pub const DONOR_SETTLE: Duration = Duration::from_secs(30);

/// How long a node must have been the writer for a joiner to spare it a blocking transfer:
/// past a cluster's formation (joiners that start with the seed decide within seconds),
/// clients write there.
pub const WRITER_SETTLE: Duration = Duration::from_secs(30);

/// Whether `s` has been the writer for [`WRITER_SETTLE`]: a joiner's SST must not block it.
pub fn settled_writer(s: &NodeState) -> bool {
    s.writer_secs.is_some_and(|t| t >= WRITER_SETTLE.as_secs())
}

/// The donors a joiner names (Synced nodes of `known`, in order) and the SST method it asks
/// for, the component being `primary`. The method follows the data's size
/// ([`method`]); an rsync SST blocks its donor's writes, so the writer is named last, and
/// when a settled writer ([`settled_writer`]) is still the first (the only node that can
/// give the state), the joiner asks for mariabackup instead, which keeps the writer taking
/// writes while it copies. An operator's fixed method is kept.
pub fn choose<'a>(
    setting: SstSetting,
    known: &[&'a NodeState],
    primary: &NodeState,
) -> (Vec<&'a NodeState>, SstMethod) {
    let by_size = method(setting, &order(known, primary, false));
    let donors = order(known, primary, by_size == SstMethod::Rsync);
    let method = match (setting, by_size, donors.first()) {
        (SstSetting::Auto, SstMethod::Rsync, Some(d)) if settled_writer(d) => {
            SstMethod::Mariabackup
        }
        _ => by_size,
    };
    (donors, method)
}

/// The node a joiner expects Galera to pick as its donor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDonor {
    /// Its node name (`wsrep_node_name`).
    pub name: String,
    /// Its address, where its state port answers.
    pub address: IpAddr,
    /// The transfer is expected to be an IST (an SST otherwise).
    pub ist: bool,
    /// The transfer blocks the donor's writes while it runs (an rsync SST); an IST or a
    /// mariabackup SST does not, so such a donor may keep the writer role.
    pub blocks: bool,
}

/// The Synced nodes of `known`, in the order a joiner names them as donors: the writer
/// (lowest `wsrep_local_index`) last, so a joiner does not knock the node taking the writes
/// out of sync; nodes Synced for less than [`DONOR_SETTLE`] after every other, the longest
/// Synced of them first (a node that has just received its own state transfer has been seen
/// to fail as a mariabackup donor). With `spare_writer` (the transfer would block its
/// donor), the writer (`writer_secs`, settled or not) comes after every other node: while
/// another can give the state, no writer need be handed over. The index
/// order is the component's member list as `primary` reports it
/// (`wsrep_incoming_addresses` follows the index): each node's own index is read at its own
/// moment and may lag a view change.
pub fn order<'a>(
    known: &[&'a NodeState],
    primary: &NodeState,
    spare_writer: bool,
) -> Vec<&'a NodeState> {
    let members = primary.incoming_addresses();
    let rank = |s: &NodeState| -> i64 {
        s.address
            .and_then(|a| members.iter().position(|o| *o == a))
            .map_or(s.wsrep_local_index.unwrap_or(i64::MAX), |p| p as i64)
    };
    let recent = |s: &NodeState| s.synced_secs.is_some_and(|t| t < DONOR_SETTLE.as_secs());
    let mut synced: Vec<&NodeState> = known
        .iter()
        .copied()
        .filter(|s| s.is_synced() && !s.node_name.is_empty())
        .collect();
    synced.sort_by_key(|s| {
        let last = spare_writer && s.writer_secs.is_some();
        if recent(s) {
            (last, true, Reverse(s.synced_secs.unwrap_or(0) as i64))
        } else {
            (last, false, Reverse(rank(s)))
        }
    });
    synced
}

/// The donor Galera will pick for `own` among `donors` (in the order they are named), the
/// component being `primary`; `everyone` are all the nodes known (their caches count for
/// Galera's safety margin). `None` when there is no donor to name.
pub fn expected(
    own: &NodeState,
    donors: &[&NodeState],
    everyone: &[&NodeState],
    primary: &NodeState,
) -> Option<ExpectedDonor> {
    let pick = |s: &NodeState, ist: bool| {
        s.address.map(|address| ExpectedDonor {
            name: s.node_name.clone(),
            address,
            ist,
            blocks: false,
        })
    };
    if let Some(ist) = ist_position(own, everyone, primary) {
        let mut best: Option<(&NodeState, i64)> = None;
        for s in donors {
            if let Some(cached) = s.wsrep_local_cached_downto
                && ist + 1 >= cached
                && best.is_none_or(|(_, b)| cached >= b)
            {
                best = Some((s, cached));
            }
        }
        if let Some((s, _)) = best {
            return pick(s, true);
        }
    }
    donors.first().and_then(|s| pick(s, false))
}

/// The position from which `own` can ask for an IST, when Galera would consider one: its
/// history is the cluster's, and its position is past Galera's safety margin over the
/// oldest write set any member caches (1/128 of the cached range, at most 2^20).
fn ist_position(own: &NodeState, everyone: &[&NodeState], primary: &NodeState) -> Option<i64> {
    let cluster = primary.wsrep_cluster_state_uuid.as_deref()?;
    if !own.has_data() || own.uuid.as_deref() != Some(cluster) {
        return None;
    }
    let seqno = own.seqno.filter(|s| *s >= 0)?;
    let lowest = everyone
        .iter()
        .filter_map(|s| s.wsrep_local_cached_downto)
        .min()?;
    let committed = everyone
        .iter()
        .filter_map(|s| s.wsrep_last_committed)
        .max()
        .unwrap_or(lowest);
    let gap = ((committed - lowest).max(0) >> 7).min(1 << 20);
    (seqno >= lowest + gap).then_some(seqno)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Phase;

    const CLUSTER: &str = "1fff444f-ebae-11f1-84bf-029f73497dd5";

    fn synced(n: u8, cached: Option<i64>) -> NodeState {
        NodeState {
            address: Some(format!("10.0.0.{n}").parse().unwrap()),
            node_name: format!("n{n}"),
            phase: Phase::Running,
            fresh: Some(false),
            wsrep_cluster_status: Some("Primary".into()),
            wsrep_cluster_state_uuid: Some(CLUSTER.into()),
            wsrep_local_state: Some(4),
            wsrep_last_committed: Some(1000),
            wsrep_local_cached_downto: cached,
            ..NodeState::default()
        }
    }

    fn synced_node(n: u8) -> NodeState {
        NodeState {
            wsrep_incoming_addresses: Some("10.0.0.1:3306,10.0.0.2:3306,10.0.0.3:3306".into()),
            ..synced(n, None)
        }
    }

    fn joiner(uuid: Option<&str>, seqno: Option<i64>) -> NodeState {
        NodeState {
            address: Some("10.0.0.9".parse().unwrap()),
            node_name: "n9".into(),
            phase: Phase::Waiting,
            fresh: Some(uuid.is_none() && seqno.is_none()),
            uuid: uuid.map(str::to_string),
            seqno,
            ..NodeState::default()
        }
    }

    /// A donor's name, and whether by IST.
    type Pick = Option<(String, bool)>;

    /// Galera's pick among `donors` (named in that order) for `own`.
    fn pick(own: &NodeState, donors: &[NodeState]) -> Pick {
        let refs: Vec<&NodeState> = donors.iter().collect();
        expected(own, &refs, &refs, &donors[0]).map(|d| (d.name, d.ist))
    }

    #[test]
    fn the_expected_donor_follows_galeras_rule() {
        let ist = |n: &str| Some((n.to_string(), true));
        let sst = |n: &str| Some((n.to_string(), false));
        let cases: &[(&str, NodeState, Vec<NodeState>, Pick)] = &[
            (
                "an empty joiner: SST from the first named",
                joiner(None, None),
                vec![synced(2, Some(3)), synced(3, Some(4))],
                sst("n2"),
            ),
            (
                "IST: the named donor whose cache starts latest, not the first named \
                 (seen: Galera picked n3 while n2 was reserved)",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(2, Some(3)), synced(3, Some(4))],
                ist("n3"),
            ),
            (
                "IST: the first named when its cache starts latest",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(3, Some(4)), synced(2, Some(3))],
                ist("n3"),
            ),
            (
                "IST: equal caches go to the last named",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(2, Some(4)), synced(3, Some(4))],
                ist("n3"),
            ),
            (
                "IST: a cache that starts after the joiner's position cannot serve it",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(2, Some(3)), synced(3, Some(50))],
                ist("n2"),
            ),
            (
                "no cache reaches back to the joiner: SST from the first named",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(2, Some(60)), synced(3, Some(50))],
                sst("n2"),
            ),
            (
                "a cache that starts right after the joiner's position serves it",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(2, Some(3)), synced(3, Some(44))],
                ist("n3"),
            ),
            (
                "but not when no cache reaches further back (Galera's safety margin)",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(2, Some(44)), synced(3, Some(50))],
                sst("n2"),
            ),
            (
                "within Galera's safety margin of the oldest cached write set: SST",
                joiner(Some(CLUSTER), Some(5)),
                // Range 1000 - 0 = 1000: margin 1000/128 = 7, so 5 < 0 + 7.
                vec![synced(2, Some(0)), synced(3, Some(4))],
                sst("n2"),
            ),
            (
                "another cluster's history: SST",
                joiner(Some("00000000-1111-2222-3333-444444444444"), Some(43)),
                vec![synced(2, Some(3)), synced(3, Some(4))],
                sst("n2"),
            ),
            (
                "a position lost (-1, nothing recovered): SST",
                joiner(Some(CLUSTER), Some(-1)),
                vec![synced(2, Some(3)), synced(3, Some(4))],
                sst("n2"),
            ),
            (
                "caches unknown (an older galera-init): SST from the first named",
                joiner(Some(CLUSTER), Some(43)),
                vec![synced(2, None), synced(3, None)],
                sst("n2"),
            ),
        ];
        for (name, own, donors, want) in cases {
            assert_eq!(&pick(own, donors), want, "{name}");
        }
    }

    #[test]
    fn no_donor_to_name_expects_none() {
        let own = joiner(None, None);
        let primary = synced(1, Some(1));
        assert_eq!(expected(&own, &[], &[&primary], &primary), None);
    }

    #[test]
    fn donors_spare_the_writer_and_the_newly_synced() {
        let mut writer = synced(1, None);
        writer.synced_secs = Some(300);
        writer.wsrep_incoming_addresses = Some("10.0.0.1:3306,10.0.0.2:3306,10.0.0.3:3306".into());
        let mut old = synced(2, None);
        old.synced_secs = Some(300);
        let mut newer = synced(3, None);
        newer.synced_secs = Some(20);
        let mut newest = synced(4, None);
        newest.synced_secs = Some(2);
        let mut joining = synced(5, None);
        joining.wsrep_local_state = Some(1);
        let known = [&newest, &joining, &writer, &newer, &old];
        let names: Vec<&str> = order(&known, &writer, false)
            .iter()
            .map(|s| s.node_name.as_str())
            .collect();
        assert_eq!(names, ["n2", "n1", "n3", "n4"]);
    }

    /// Growth: the seed has been the writer for minutes; joiners must not block it.
    #[test]
    fn a_settled_writer_is_spared_a_blocking_transfer() {
        let small = |n: u8, synced: u64, writer: Option<u64>| {
            let mut s = synced_node(n);
            s.synced_secs = Some(synced);
            s.writer_secs = writer;
            s.data_bytes = Some(10 << 20);
            s
        };
        let seed = small(1, 300, Some(300));
        let forming = small(1, 5, Some(2));
        let fresh = small(2, 3, None);
        let other = small(3, 300, None);
        let big = |mut s: NodeState| {
            s.data_bytes = Some(RSYNC_LIMIT * 2);
            s
        };
        let (big_seed, big_fresh) = (big(seed.clone()), big(fresh.clone()));
        let rsync = SstMethod::Rsync;
        let mariabackup = SstMethod::Mariabackup;
        let auto = SstSetting::Auto;
        /// What the case is, the setting, the Synced nodes, the donors named, the method.
        type Case<'a> = (
            &'a str,
            SstSetting,
            Vec<&'a NodeState>,
            &'a [&'a str],
            SstMethod,
        );
        let cases: &[Case] = &[
            (
                "a cluster forming: the seed gives rsync SSTs (the writer for seconds only)",
                auto,
                vec![&forming],
                &["n1"],
                rsync,
            ),
            (
                "the settled writer is the only donor: mariabackup, it keeps taking writes",
                auto,
                vec![&seed],
                &["n1"],
                mariabackup,
            ),
            (
                "another node can give it: rsync from that one, even newly Synced, the \
                 writer last",
                auto,
                vec![&seed, &fresh],
                &["n2", "n1"],
                rsync,
            ),
            (
                "a writer for seconds is spared too when another node can give it",
                auto,
                vec![&forming, &fresh],
                &["n2", "n1"],
                rsync,
            ),
            (
                "the same with a settled member",
                auto,
                vec![&seed, &other, &fresh],
                &["n3", "n2", "n1"],
                rsync,
            ),
            (
                "large data: mariabackup anyway, the settled writer before the newly Synced",
                auto,
                vec![&big_seed, &big_fresh],
                &["n1", "n2"],
                mariabackup,
            ),
            (
                "an operator's rsync is kept, the writer named last",
                SstSetting::Fixed(rsync),
                vec![&seed, &fresh],
                &["n2", "n1"],
                rsync,
            ),
            (
                "an operator's rsync is kept even when only the writer can give it",
                SstSetting::Fixed(rsync),
                vec![&seed],
                &["n1"],
                rsync,
            ),
        ];
        for (name, setting, known, want_order, want_method) in cases {
            let (donors, method) = choose(*setting, known, known[0]);
            let names: Vec<&str> = donors.iter().map(|s| s.node_name.as_str()).collect();
            assert_eq!(
                (names.as_slice(), method),
                (*want_order, *want_method),
                "{name}"
            );
        }
    }
}
