//! The health endpoints on the state port: `/health` (and `/`), `/master`, `/live`,
//! `/status`, `/metrics`.
//!
//! Every endpoint answers any method (HAProxy's default check is `OPTIONS /`), sends
//! `Content-Length` and `Connection: close`, and reads only memory: the monitor's last
//! reading and the health thread's [`Watch`], never mariadbd itself, so it answers at once
//! even while mariadbd is stuck. A stop signal counts from the moment it arrives.

use std::net::IpAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::{Deserialize, Serialize};

use super::peers::SharedWatch;
use super::{DONOR_RESERVATION, Flags, Verdict, live, metrics, serving};
use crate::config::HealthSettings;
use crate::evict;
use crate::peer::client::RESERVATION_PATH;
use crate::state::{NodeState, Shared};

/// What the handlers share.
#[derive(Clone)]
pub struct Ctx {
    /// This node's state.
    pub state: Shared,
    /// The health thread's watch.
    pub watch: SharedWatch,
    /// The stop signal and the donor reservation.
    pub flags: Flags,
    /// The health settings.
    pub cfg: HealthSettings,
    /// Wakes the health thread.
    pub nudge: super::peers::Nudge,
    /// Wakes the monitor for quick readings.
    pub reading: super::peers::Nudge,
    /// The local server's socket (for evictions).
    pub socket: std::path::PathBuf,
}

impl Ctx {
    /// This node's state now, draining included.
    pub fn current(&self) -> NodeState {
        let mut s = self.state.get();
        self.flags.apply(&mut s);
        s
    }
}

/// The routes that change a node's state: with a cluster key, they are refused to
/// requests that are not signed with it ([`crate::peer::http::authenticate`]).
pub const GUARDED: &[&str] = &[
    super::peers::NUDGE_PATH,
    RESERVATION_PATH,
    evict::EVICT_PATH,
];

/// The health routes.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/", any(health))
        .route("/health", any(health))
        .route("/master", any(master))
        .route("/live", any(live_handler))
        .route("/status", any(status))
        .route("/metrics", any(metrics_handler))
        .route(super::peers::NUDGE_PATH, axum::routing::post(nudge))
        .route(evict::EVICT_PATH, axum::routing::post(evict_handler))
        .route(
            RESERVATION_PATH,
            axum::routing::post(reserve_donor).delete(release_donor),
        )
        .with_state(ctx)
}

/// Whether the query asks to count a Donor as available (`?available_when_donor=1`).
fn donor_asked(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&').any(|kv| {
            matches!(
                kv.split_once('='),
                Some(("available_when_donor", "1" | "yes" | "true" | "on"))
            )
        })
    })
}

fn text(v: &Verdict) -> Response {
    let code = if v.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONNECTION, "close"),
        ],
        format!("{}\r\n", v.reason),
    )
        .into_response()
}

/// A verdict a proxy routes by: a 200 is noted ([`Flags::served`]).
fn routed(ctx: &Ctx, v: &Verdict) -> Response {
    if v.ok {
        ctx.flags.served();
    }
    text(v)
}

async fn health(State(ctx): State<Ctx>, uri: Uri) -> Response {
    let donor_ok = ctx.cfg.available_when_donor || donor_asked(&uri);
    routed(&ctx, &serving(&ctx.current(), donor_ok))
}

async fn master(State(ctx): State<Ctx>) -> Response {
    let s = ctx.current();
    routed(&ctx, &ctx.watch.get().writer(&s, Instant::now()))
}

async fn live_handler(State(ctx): State<Ctx>) -> Response {
    let s = ctx.current();
    text(&live(&s, &ctx.watch.get().timers, Instant::now(), &ctx.cfg))
}

/// One peer as this node last heard it, in `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// Its address.
    pub address: IpAddr,
    /// Its state, as it said.
    pub state: NodeState,
}

/// `/status`: this node, its verdicts, and the peers it heard from in its last round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node's state.
    pub node: NodeState,
    /// `/live`.
    pub live: Verdict,
    /// `/health`.
    pub ready: Verdict,
    /// `/master`.
    pub writer: Verdict,
    /// The peers that answered the last health round.
    pub peers: Vec<PeerSummary>,
}

/// The verdicts and the status of this node now.
pub fn status_now(ctx: &Ctx) -> Status {
    let s = ctx.current();
    let w = ctx.watch.get();
    let now = Instant::now();
    Status {
        live: live(&s, &w.timers, now, &ctx.cfg),
        ready: serving(&s, ctx.cfg.available_when_donor),
        writer: w.writer(&s, now),
        peers: w
            .peers
            .iter()
            .map(|(a, st)| PeerSummary {
                address: *a,
                state: st.clone(),
            })
            .collect(),
        node: s,
    }
}

async fn status(State(ctx): State<Ctx>) -> Response {
    (
        [(header::CONNECTION, "close")],
        axum::Json(status_now(&ctx)),
    )
        .into_response()
}

/// `POST /nudge`: a peer started draining: look at the peers now, not at the next round.
async fn nudge(State(ctx): State<Ctx>) -> Response {
    ctx.nudge.wake();
    text(&Verdict {
        ok: true,
        reason: "nudged".into(),
    })
}

/// The joiner a reservation is for: the address it names itself by.
fn joiner(headers: &HeaderMap) -> Option<IpAddr> {
    crate::peer::http::named_peer(headers)
}

/// `POST /reserve-donor`: a joiner is about to take its state transfer from this node. The
/// answer says when this node last told a proxy that it serves.
async fn reserve_donor(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let who = joiner(&headers);
    // A joiner of an earlier version says nothing of its transfer: it may block.
    let blocks =
        serde_json::from_slice::<crate::peer::client::Transfer>(&body).map_or(true, |t| t.blocks);
    let r = ctx.flags.reserve_donor(who, blocks);
    log::info!(
        "reserved as the donor of {}: out of the read pool (/health) for {}s{}",
        who.map_or("a joiner".to_string(), |a| a.to_string()),
        DONOR_RESERVATION.as_secs(),
        if blocks {
            ", and out of /master: the transfer blocks this node's writes"
        } else {
            "; it keeps taking the writes if it has them (the transfer does not block it)"
        }
    );
    ([(header::CONNECTION, "close")], axum::Json(r)).into_response()
}

/// `DELETE /reserve-donor`: the joiner has its state; this node serves again once no other
/// joiner holds a reservation.
async fn release_donor(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let who = joiner(&headers);
    ctx.flags.release_donor(who);
    log::info!(
        "{} has its state: its donor reservation ends",
        who.map_or("the joiner".to_string(), |a| a.to_string())
    );
    text(&Verdict {
        ok: true,
        reason: "released".into(),
    })
}

/// `POST /evict`: a peer's galera-init saw its mariadbd exit. Its gcomm UUID is evicted
/// from this node's component when the peer reported that UUID as its own
/// ([`evict::accept_notice`]): at once by the first of the other members, by the others
/// as a backup if the peer is still a member [`evict::BACKUP_AFTER`] later.
async fn evict_handler(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    axum::Json(notice): axum::Json<evict::Notice>,
) -> Response {
    let origin = crate::peer::http::named_peer(&headers);
    let who = origin.map_or("a node".to_string(), |a| a.to_string());
    let refuse = |why: String| {
        log::warn!("{who} says its mariadbd died; not evicting it: {why}");
        (
            StatusCode::CONFLICT,
            [(header::CONNECTION, "close")],
            format!("{why}\r\n"),
        )
            .into_response()
    };
    if !ctx.cfg.evict_on_proof {
        return refuse("EVICT_ON_PROOF is off on this node".into());
    }
    let own = ctx.current();
    let heard = origin.and_then(|o| ctx.watch.get().peers.get(&o).cloned());
    if let Err(why) = evict::accept_notice(&own, origin, heard.as_ref(), &notice) {
        return refuse(why.to_string());
    }
    let Some(dead) = origin else {
        return refuse("the sender did not name itself".into());
    };
    match evict::role(&own, dead, &ctx.watch.get().answered) {
        Err(why) => return refuse(why.to_string()),
        Ok(evict::Role::First) => {
            return match evict_now(&ctx, dead, &notice, "").await {
                Ok(()) => text(&Verdict::yes("evicted")),
                Err(why) => refuse(why),
            };
        }
        Ok(evict::Role::Backup) => {}
    }
    log::info!(
        "{who}'s mariadbd {}: the first of the other members evicts it; this node does if it \
         is still a member in {:.1}s",
        notice.how,
        evict::BACKUP_AFTER.as_secs_f32()
    );
    tokio::spawn(async move {
        tokio::time::sleep(evict::BACKUP_AFTER).await;
        let now = ctx.current();
        if evict::still_member(&now, dead)
            && evict::role(&now, dead, &ctx.watch.get().answered).is_ok()
        {
            let _ = evict_now(&ctx, dead, &notice, " (as a backup)").await;
        }
    });
    text(&Verdict::yes("left to the first of the other members"))
}

/// Has the local server evict the dead server of `notice` (at `dead`); logs the outcome.
async fn evict_now(
    ctx: &Ctx,
    dead: IpAddr,
    notice: &evict::Notice,
    role: &str,
) -> Result<(), String> {
    let (socket, uuid) = (ctx.socket.clone(), notice.gcomm_uuid.clone());
    let done = tokio::task::spawn_blocking(move || evict::act::evict(&socket, &uuid)).await;
    match done {
        Ok(Ok(())) => {
            log::warn!(
                "evicted {dead} (gcomm UUID {}) from the component{role}: {} ({})",
                notice.gcomm_uuid,
                evict::Proof::Exited,
                notice.how
            );
            ctx.watch
                .update(|w| w.evicted.add(&notice.gcomm_uuid, dead));
            ctx.reading.wake();
            Ok(())
        }
        Ok(Err(e)) => {
            log::warn!(
                "cannot evict {dead} (gcomm UUID {}): {e}",
                notice.gcomm_uuid
            );
            Err(format!("the eviction failed: {e}"))
        }
        Err(e) => Err(format!("the eviction failed: {e}")),
    }
}

async fn metrics_handler(State(ctx): State<Ctx>) -> Response {
    let st = status_now(&ctx);
    let body = metrics::render(
        &st.node,
        &metrics::Verdicts {
            live: &st.live,
            ready: &st.ready,
            writer: &st.writer,
        },
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CONNECTION, "close"),
        ],
        body,
    )
        .into_response()
}
