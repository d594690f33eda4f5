//! The HTTP server every node runs from its first second: `/state` (this node's
//! [`NodeState`] as JSON), and whatever other routes the node adds (the health
//! endpoints). axum on a current-thread tokio runtime, on its own thread, so it answers
//! while the main thread waits, initialises or supervises.

use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::{AUTH_ERROR_HEADER, AUTH_HEADER, ClusterKey, SIGNATURE_HEADER};
use super::{Learned, PEER_HEADER};
use crate::state::{NodeState, Shared};

/// The largest answer signed: far above any real one.
const MAX_SIGNED_BODY: usize = 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
struct Ctx {
    state: Shared,
    learned: Learned,
    overlay: Overlay,
}

/// What an answer adds to the shared state at the moment it is made (a stop signal that
/// just came, say): peers see it at once.
pub type Overlay = Arc<dyn Fn(&mut NodeState) + Send + Sync>;

/// The `/state` route.
pub fn router(state: Shared, learned: Learned, overlay: Overlay) -> Router {
    Router::new()
        .route("/state", get(state_handler))
        .with_state(Ctx {
            state,
            learned,
            overlay,
        })
}

async fn state_handler(State(ctx): State<Ctx>, headers: HeaderMap) -> axum::Json<NodeState> {
    if let Some(addr) = named_peer(&headers) {
        ctx.learned.note(addr);
    }
    let mut s = ctx.state.get();
    (ctx.overlay)(&mut s);
    axum::Json(s)
}

/// `router` with the cluster key applied, when there is one (see [`super::auth`]): an
/// authenticated request's answer is signed; an unauthenticated one loses its peer header
/// (this node learns of nobody from it), and is refused on `guarded`, the routes that
/// change state (the router that serves them names them). The read-only routes stay open
/// to proxies and operators.
pub fn authenticate(
    router: Router,
    key: Option<ClusterKey>,
    guarded: &'static [&'static str],
) -> Router {
    match key {
        None => router,
        Some(key) => router.layer(middleware::from_fn_with_state((key, guarded), check)),
    }
}

async fn check(
    State((key, guarded)): State<(ClusterKey, &'static [&'static str])>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = header_text(req.headers(), AUTH_HEADER);
    let origin = header_text(req.headers(), PEER_HEADER);
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let verdict = key.check_request(
        token.as_deref(),
        &method,
        &path,
        origin.as_deref(),
        SystemTime::now(),
    );
    let token = match (verdict, token) {
        (Ok(()), Some(token)) => token,
        (verdict, _) => {
            let why = verdict.err().map(|e| e.to_string()).unwrap_or_default();
            if guarded.contains(&path.as_str()) {
                log::warn!(
                    "refused {method} {path} from {}: {why} (this node has a cluster key)",
                    origin.as_deref().unwrap_or("an unnamed client")
                );
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONNECTION, "close")],
                    format!("this node has a cluster key: {why}\r\n"),
                )
                    .into_response();
            }
            req.headers_mut().remove(PEER_HEADER);
            let signed = req.headers().contains_key(AUTH_HEADER);
            let mut resp = next.run(req).await;
            if signed && let Ok(v) = HeaderValue::from_str(&why) {
                resp.headers_mut().insert(AUTH_ERROR_HEADER, v);
            }
            return resp;
        }
    };
    let (mut parts, body) = next.run(req).await.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SIGNED_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(v) = HeaderValue::from_str(&key.sign_response(&token, &bytes)) {
        parts.headers.insert(SIGNATURE_HEADER, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The address a request's sender names itself by ([`PEER_HEADER`]), if it names one.
/// With a cluster key, [`authenticate`] has removed the header from a request that is not
/// signed.
pub fn named_peer(headers: &HeaderMap) -> Option<IpAddr> {
    header_text(headers, PEER_HEADER)?.parse().ok()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// How long a client may take to send its request's headers: a peer that trickles them
/// (slow loris) is cut off, so idle connections cannot pile up.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one connection may last in all: every answer is small and closes the
/// connection, so only a client that never reads its answer gets here.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` from a new thread. Call it after signals are blocked: the
/// thread inherits the mask, so signals still go to the supervisor.
///
/// hyper serves each connection (HTTP/1.1, no keep-alive) with [`HEADER_TIMEOUT`] and
/// [`CONNECTION_TIMEOUT`]; `axum::serve` has neither.
pub fn spawn(listener: TcpListener, router: Router) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("HTTP server: cannot start its runtime: {e}");
                    return;
                }
            };
            if let Err(e) = runtime.block_on(serve(listener, router)) {
                log::error!("HTTP server stopped: {e}");
            }
        })?;
    Ok(())
}

async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: the connections in flight end within
                // CONNECTION_TIMEOUT and free them.
                log::debug!("HTTP server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
        });
    }
}
