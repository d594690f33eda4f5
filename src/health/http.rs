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
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::{Deserialize, Serialize};

use super::peers::SharedWatch;
use super::{DONOR_RESERVATION, Flags, HealthSettings, Verdict, live, metrics, serving};
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
}

impl Ctx {
    /// This node's state now, draining included.
    pub fn current(&self) -> NodeState {
        let mut s = self.state.get();
        self.flags.apply(&mut s);
        s
    }
}

/// The health routes.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/", any(health))
        .route("/health", any(health))
        .route("/master", any(master))
        .route("/live", any(live_handler))
        .route("/status", any(status))
        .route("/metrics", any(metrics_handler))
        .route(
            "/reserve-donor",
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

async fn health(State(ctx): State<Ctx>, uri: Uri) -> Response {
    let donor_ok = ctx.cfg.available_when_donor || donor_asked(&uri);
    text(&serving(&ctx.current(), donor_ok))
}

async fn master(State(ctx): State<Ctx>) -> Response {
    let s = ctx.current();
    text(&ctx.watch.get().writer(&s, Instant::now(), &ctx.cfg))
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

/// `POST /reserve-donor`: a joiner is about to take its state transfer from this node.
async fn reserve_donor(State(ctx): State<Ctx>) -> Response {
    ctx.flags.reserve_donor();
    log::info!(
        "reserved as a joiner's donor: out of the read pool (/health) for {}s",
        DONOR_RESERVATION.as_secs()
    );
    text(&Verdict {
        ok: true,
        reason: "reserved".into(),
    })
}

/// `DELETE /reserve-donor`: the joiner has its state; this node serves again.
async fn release_donor(State(ctx): State<Ctx>) -> Response {
    ctx.flags.release_donor();
    log::info!("the joiner has its state: the donor reservation ends");
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
