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
pub const GUARDED: &[&str] = &[super::peers::NUDGE_PATH, RESERVATION_PATH];

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
    routed(&ctx, &ctx.watch.get().writer(&s, Instant::now(), &ctx.cfg))
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
        writer: w.writer(&s, now, &ctx.cfg),
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
async fn reserve_donor(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let who = joiner(&headers);
    let r = ctx.flags.reserve_donor(who);
    log::info!(
        "reserved as the donor of {}: out of the read pool (/health) for {}s",
        who.map_or("a joiner".to_string(), |a| a.to_string()),
        DONOR_RESERVATION.as_secs()
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
