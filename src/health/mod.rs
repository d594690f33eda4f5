//! What a node tells Docker and proxies about itself: the verdicts behind
//! `galera-init healthcheck`, `/live`, `/health` and `/master`.
//!
//! Two audiences want different answers, and mixing them is what broke earlier images:
//!
//! - **Docker (liveness).** Swarm puts a task in `tasks.<svc>` DNS only once its check is
//!   healthy, and kills it when the check turns unhealthy. So [`live`] is healthy while the
//!   node makes progress or waits on purpose (DNS, the election, an SST, a missing newer
//!   node, an operator), and unhealthy only when a restart would help: mariadbd should
//!   answer and has not for a while, or the node has been cut off (non-Primary, and no peer
//!   answers) for longer than a grace period.
//! - **Proxies (readiness).** [`serving`] is Percona clustercheck's rule as MaxScale's
//!   galeramon applies it: Primary, `wsrep_ready`, Synced (or Donor when allowed), not
//!   desynced, not rejecting queries, not draining. [`Watch`] adds the writer: galeramon's
//!   lowest `wsrep_local_index` among those that can serve, claimed only after a hold-off
//!   longer than a peer's view of it can lag, and given up at once, so that two nodes
//!   never both answer `/master` with 200.
//!
//! Everything here is pure: the state comes from the monitor's readings and the peers'
//! `/state` answers ([`peers`] fetches them), time is a parameter.

pub mod http;
pub mod metrics;
pub mod peers;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::HealthSettings;
use crate::peer::client::Reservation;
use crate::state::{NodeState, Phase};

/// How long a node must be the writer candidate before it claims `/master`: longer than
/// the peer poll interval plus its timeout, so the previous writer has seen the newcomer
/// (or has gone) before two could answer 200. A candidate that is unopposed (see
/// [`Watch::observe`]) claims at once.
pub const WRITER_HOLDOFF: Duration = Duration::from_secs(3);

/// How long a node must have been able to serve before it may claim `/master` without the
/// hold-off: longer than a health round and its timeout, so that every other node's last
/// round saw it serving, and none can become the candidate past it.
pub const UNOPPOSED_AFTER: Duration = Duration::from_millis(1600);

/// How long mariadbd may fail to answer its monitor, while it should, before the node is
/// unhealthy.
pub const UNANSWERED_GRACE: Duration = Duration::from_secs(30);

/// How long a node asked to be a joiner's donor stays out of the read pool: long enough for
/// the joiner's server to start and ask for its state transfer (a donor then reports
/// Donor/Desynced for as long as it serves it).
pub const DONOR_RESERVATION: Duration = Duration::from_secs(15);

/// The joiners a donor is reserved for (by the address they gave), until when, and whether
/// their transfer blocks it.
pub type Reservations = BTreeMap<Option<IpAddr>, (Instant, bool)>;

/// What a node's HTTP answers add to its shared state at the moment they are made: a stop
/// signal, a donor reservation.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// Set by the supervisor when a stop signal arrives.
    pub draining: Arc<AtomicBool>,
    /// The joiners this node is reserved for as a donor (by the address they gave, if
    /// any), until when, and whether their transfer blocks this node: each releases its
    /// own.
    pub reservations: Arc<Mutex<Reservations>>,
    /// Whether the last transfer a joiner announced blocks this node: what a Donor state
    /// is taken to be once the reservation has lapsed (`None`: never told, blocking).
    pub last_transfer_blocks: Arc<Mutex<Option<bool>>>,
    /// When `/health` or `/master` last answered 200: until then plus a proxy's check
    /// interval, a proxy may send this node clients.
    pub served_at: Arc<Mutex<Option<Instant>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Flags {
    /// Flags whose draining is `draining`.
    pub fn new(draining: Arc<AtomicBool>) -> Flags {
        Flags {
            draining,
            ..Flags::default()
        }
    }

    /// Writes the flags into `s`, as of now.
    pub fn apply(&self, s: &mut NodeState) {
        s.draining |= self.draining.load(Ordering::SeqCst);
        let now = Instant::now();
        let mut r = lock(&self.reservations);
        r.retain(|_, (until, _)| now < *until);
        s.donor_reserved = !r.is_empty();
        let reserved_blocking = r.values().any(|(_, blocks)| *blocks);
        let last = *lock(&self.last_transfer_blocks);
        s.donor_blocks = reserved_blocking || (s.is_donor() && last != Some(false));
    }

    /// Reserves this node as the donor of `joiner` from now on, for a transfer that
    /// `blocks` this node or not; says when it last served.
    pub fn reserve_donor(&self, joiner: Option<IpAddr>, blocks: bool) -> Reservation {
        let now = Instant::now();
        lock(&self.reservations).insert(joiner, (now + DONOR_RESERVATION, blocks));
        *lock(&self.last_transfer_blocks) = Some(blocks);
        Reservation {
            served_ms_ago: lock(&self.served_at)
                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
        }
    }

    /// Ends the reservation of `joiner`: it has its state.
    pub fn release_donor(&self, joiner: Option<IpAddr>) {
        lock(&self.reservations).remove(&joiner);
    }

    /// Notes that an endpoint a proxy routes by answered 200 just now.
    pub fn served(&self) {
        *lock(&self.served_at) = Some(Instant::now());
    }
}

/// A verdict and its reason, one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Healthy (200, exit 0) or not (503, exit 1).
    pub ok: bool,
    /// Why, for an operator.
    pub reason: String,
}

impl Verdict {
    fn yes(reason: impl Into<String>) -> Verdict {
        Verdict {
            ok: true,
            reason: reason.into(),
        }
    }

    fn no(reason: impl Into<String>) -> Verdict {
        Verdict {
            ok: false,
            reason: reason.into(),
        }
    }
}

/// The local state's words for its Galera state (`Synced`, `Donor/Desynced`…).
fn comment(s: &NodeState) -> String {
    s.wsrep_local_state_comment
        .clone()
        .or_else(|| s.wsrep_local_state.map(|n| format!("state {n}")))
        .unwrap_or_else(|| "unknown".into())
}

/// Whether the node can serve clients now (`/health`, `healthcheck --ready`): Primary,
/// `wsrep_ready`, Synced (or a Donor that keeps serving, when `donor_ok`), not desynced,
/// not rejecting queries, not draining.
pub fn serving(s: &NodeState, donor_ok: bool) -> Verdict {
    if s.draining {
        return Verdict::no("draining: the node is stopping");
    }
    if s.phase != Phase::Running {
        return Verdict::no(format!("not running yet ({})", phase_words(s)));
    }
    if s.donor_reserved && !donor_ok {
        return Verdict::no("reserved as the donor of a joining node");
    }
    if !s.is_primary() {
        return Verdict::no(format!(
            "not in a Primary component (wsrep_cluster_status {})",
            s.wsrep_cluster_status.as_deref().unwrap_or("unknown")
        ));
    }
    if s.wsrep_ready != Some(true) {
        return Verdict::no("wsrep_ready is OFF");
    }
    if s.wsrep_reject_queries
        .as_deref()
        .is_some_and(|r| !r.eq_ignore_ascii_case("NONE"))
    {
        return Verdict::no("wsrep_reject_queries is set");
    }
    let donor = s.is_donor();
    if donor && donor_ok && s.wsrep_sst_donor_rejects_queries != Some(true) {
        return Verdict::yes(format!("{} (a donor that serves)", comment(s)));
    }
    if !s.is_synced() {
        return Verdict::no(format!("not Synced ({})", comment(s)));
    }
    if s.wsrep_desync == Some(true) {
        return Verdict::no("desynced (wsrep_desync)");
    }
    Verdict::yes("Synced")
}

/// Whether the node can take the writes (`/master`): it serves; a donor whose transfer
/// does not block it (mariabackup, IST) counts, reserved or not, whatever
/// `AVAILABLE_WHEN_DONOR` says for reads: the writes it takes replicate as any other.
pub fn writable(s: &NodeState) -> Verdict {
    if s.donor_blocks && (s.donor_reserved || s.is_donor()) {
        return Verdict::no("a donor whose state transfer blocks its writes (rsync)");
    }
    serving(s, true)
}

/// What a node that is not running does, in a few words.
pub fn phase_words(s: &NodeState) -> String {
    match s.phase {
        Phase::Discovering => "waiting for DNS to list this node".into(),
        Phase::Recovering => "recovering its position".into(),
        Phase::Waiting => match &s.decision {
            Some(d) => format!("waiting: {}", d.trim_start_matches("wait: ")),
            None => "waiting for the election".into(),
        },
        Phase::Bootstrapping => "bootstrapping".into(),
        Phase::Joining if s.sst_in_progress => "receiving a state transfer (SST)".into(),
        Phase::Joining => "joining".into(),
        Phase::Running => comment(s),
        Phase::Stopping => "mariadbd is stopping".into(),
    }
}

/// The timers liveness needs, kept by [`Watch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timers {
    /// Since when the running node has been outside a Primary component.
    pub not_primary_since: Option<Instant>,
    /// Since when the running server has not answered its monitor.
    pub unanswered_since: Option<Instant>,
    /// When a peer last answered this node's state request.
    pub peer_answered_at: Option<Instant>,
}

/// The Docker health check (`/live`, `galera-init healthcheck`): healthy while the node
/// makes progress or waits on purpose; unhealthy only when a restart would help.
pub fn live(s: &NodeState, t: &Timers, now: Instant, cfg: &HealthSettings) -> Verdict {
    if s.draining {
        return Verdict::yes("stopping");
    }
    if s.phase != Phase::Running {
        return Verdict::yes(phase_words(s));
    }
    if let Some(since) = t.unanswered_since {
        let d = now.saturating_duration_since(since);
        if d >= UNANSWERED_GRACE && !s.sst_in_progress {
            return Verdict::no(format!(
                "mariadbd has not answered for {}s: a restart would help",
                d.as_secs()
            ));
        }
        return Verdict::yes(format!("mariadbd has not answered for {}s", d.as_secs()));
    }
    if s.is_primary() {
        return Verdict::yes(format!("{}, Primary", comment(s)));
    }
    let since = t.not_primary_since.unwrap_or(now);
    let d = now.saturating_duration_since(since);
    // A peer that answers lately means the node takes part in an election or recovery:
    // it waits on purpose, and may hold the newest data.
    let peers_answer = t
        .peer_answered_at
        .is_some_and(|a| now.saturating_duration_since(a) < cfg.non_primary_grace);
    if d >= cfg.non_primary_grace && !peers_answer {
        return Verdict::no(format!(
            "cut off: non-Primary for {}s and no peer answers (NON_PRIMARY_GRACE {}s): a \
             restart would help",
            d.as_secs(),
            cfg.non_primary_grace.as_secs()
        ));
    }
    Verdict::yes(format!(
        "non-Primary for {}s{}",
        d.as_secs(),
        if peers_answer {
            ", taking part in the recovery with its peers"
        } else {
            ""
        }
    ))
}

/// Why this node is, or is not, the writer candidate. It must serve. The writer stays the
/// writer while it can serve (no failback, like MaxScale's `disable_master_failback`): a
/// member that claims the role (`writer_candidate` on `/state`) and serves keeps it, and
/// the node that already is the candidate (`incumbent`) stays it even when a member before
/// it in the component's order can serve again. Otherwise the writer is galeramon's: the
/// first member (`wsrep_incoming_addresses` follows `wsrep_local_index`) that can serve,
/// once every member before it answered that it cannot. A member before it that does not
/// answer may be the writer: it blocks the claim until Galera removes it from the
/// component; one that reports another cluster's state is a joiner that has not received
/// this one's and cannot. Of two claimants, the first in the order keeps the role.
pub fn writer_candidate(
    s: &NodeState,
    peers: &BTreeMap<IpAddr, NodeState>,
    incumbent: bool,
) -> Verdict {
    let me = writable(s);
    if !me.ok {
        return me;
    }
    let Some(own) = s.address else {
        return Verdict::no("own address unknown");
    };
    let members = s.incoming_addresses();
    let Some(pos) = members.iter().position(|a| *a == own) else {
        return Verdict::no("not listed in wsrep_incoming_addresses yet");
    };
    let same_cluster = |p: &NodeState| p.wsrep_cluster_state_uuid == s.wsrep_cluster_state_uuid;
    // A member that claims the role and serves keeps it; of two, the first in the order.
    for (i, m) in members.iter().enumerate().filter(|(i, _)| *i != pos) {
        if let Some(p) = peers.get(m).filter(|p| same_cluster(p))
            && p.writer_candidate
            && writable(p).ok
            && (i < pos || !incumbent)
        {
            return Verdict::no(format!("{} is the writer", p.label()));
        }
    }
    for m in &members[..pos] {
        match peers.get(m) {
            None => {
                return Verdict::no(format!(
                    "{m} comes first in the component and does not answer"
                ));
            }
            // A member of this component whose state is another cluster's has not received
            // this one's yet (a joiner before its SST): it cannot be the writer.
            Some(p) if !same_cluster(p) => {}
            Some(p) if !incumbent && writable(p).ok => {
                return Verdict::no(format!("{} comes first and can serve", p.label()));
            }
            Some(_) => {}
        }
    }
    if incumbent {
        return Verdict::yes(format!(
            "writer: it stays while it can serve ({} member(s))",
            members.len()
        ));
    }
    Verdict::yes(format!(
        "writer: the first of {} member(s) that can serve",
        members.len()
    ))
}

/// What the health thread keeps between its rounds: the timers, the peers' last answers,
/// and the writer candidacy.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// The liveness timers.
    pub timers: Timers,
    /// Each peer's last answer, while it keeps answering.
    pub peers: BTreeMap<IpAddr, NodeState>,
    /// Since when this node has been the writer candidate.
    pub candidate_since: Option<Instant>,
    /// Why it is or is not.
    pub candidate: Option<Verdict>,
    /// Since when this node has been able to serve.
    pub serving_since: Option<Instant>,
    /// The candidate is unopposed: it has served for [`UNOPPOSED_AFTER`], and in the last
    /// round every other member of the component answered that it cannot serve or is neither the
    /// writer nor a candidate. It claims `/master` without the hold-off.
    pub unopposed: bool,
    /// The gcomm UUID each peer last reported, kept after it goes silent: what to evict
    /// once it is proven dead.
    pub gcomm: BTreeMap<IpAddr, String>,
    /// What this node had its server evict.
    pub evicted: crate::evict::Evicted,
    /// The peers that answered the last round (a silent peer kept in `peers`, a draining
    /// one, is not among them): those that count for an eviction's majority.
    pub answered: Vec<IpAddr>,
}

impl Watch {
    /// Takes in one round: this node's state and the answers of the peers asked.
    pub fn observe(
        &mut self,
        s: &NodeState,
        answers: Vec<(IpAddr, Option<NodeState>)>,
        now: Instant,
    ) {
        let running = s.phase == Phase::Running && !s.draining;
        let answered = running && s.wsrep_cluster_status.is_some();
        self.timers.unanswered_since = match (running, answered) {
            (true, false) => Some(self.timers.unanswered_since.unwrap_or(now)),
            _ => None,
        };
        self.timers.not_primary_since = match (running && answered, s.is_primary()) {
            (true, false) => Some(self.timers.not_primary_since.unwrap_or(now)),
            _ => None,
        };
        self.answered = answers
            .iter()
            .filter(|(_, st)| st.is_some())
            .map(|(a, _)| *a)
            .collect();
        let me = writable(s).ok;
        self.serving_since = match (me, self.serving_since) {
            (true, Some(t)) => Some(t),
            (true, None) => Some(now),
            (false, _) => None,
        };
        let answered_now: BTreeMap<IpAddr, bool> = answers
            .iter()
            .filter_map(|(a, st)| {
                st.as_ref().map(|st| {
                    let serves = writable(st).ok;
                    (*a, st.writer_candidate && serves)
                })
            })
            .collect();
        for (a, st) in answers {
            match st {
                Some(st) => {
                    self.timers.peer_answered_at = Some(now);
                    if let Some(u) = &st.wsrep_gcomm_uuid {
                        self.gcomm.insert(a, u.clone());
                    }
                    self.peers.insert(a, st);
                }
                // A peer that said it drains and then goes silent has stopped: it stays
                // one that cannot serve (its next galera-init answers for itself).
                None if self.peers.get(&a).is_some_and(|p| p.draining) => {}
                None => {
                    self.peers.remove(&a);
                }
            }
        }
        let v = writer_candidate(s, &self.peers, self.candidate_since.is_some());
        self.candidate_since = match (v.ok, self.candidate_since) {
            (true, Some(t)) => Some(t),
            (true, None) => Some(now),
            (false, _) => None,
        };
        let others: Vec<IpAddr> = s
            .incoming_addresses()
            .into_iter()
            .filter(|a| Some(*a) != s.address)
            .collect();
        self.unopposed = v.ok
            && self
                .serving_since
                .is_some_and(|t| now.saturating_duration_since(t) >= UNOPPOSED_AFTER)
            && others
                .iter()
                .all(|a| answered_now.get(a).is_some_and(|claims| !claims));
        self.candidate = Some(v);
    }

    /// `/master`: 200 only on the writer. `s` is the state now (a stop signal counts at
    /// once, whatever the last round saw).
    pub fn writer(&self, s: &NodeState, now: Instant) -> Verdict {
        let me = writable(s);
        if !me.ok {
            return me;
        }
        match (&self.candidate, self.candidate_since) {
            (Some(v), Some(t)) if v.ok => {
                if self.unopposed || now.saturating_duration_since(t) >= WRITER_HOLDOFF {
                    v.clone()
                } else {
                    Verdict::no("about to become the writer (hold-off)")
                }
            }
            (Some(v), _) => v.clone(),
            (None, _) => Verdict::no("not checked yet"),
        }
    }

    /// The addresses to ask in a round: the component's members and every node this one
    /// knows, but itself.
    pub fn to_ask(s: &NodeState) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = s.incoming_addresses();
        v.extend(s.known.iter().copied());
        v.sort();
        v.dedup();
        v.retain(|a| Some(*a) != s.address);
        v
    }
}

#[cfg(test)]
mod tests;
