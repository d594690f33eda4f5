//! The HTTP server every node runs from its first second: `/state` (this node's
//! [`NodeState`] as JSON), and whatever other routes the node adds (the health
//! endpoints). axum on a current-thread tokio runtime, on its own thread, so it answers
//! while the main thread waits, initialises or supervises.

use std::net::{IpAddr, TcpListener};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;

use super::{Learned, PEER_HEADER};
use crate::state::{NodeState, Shared};

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
    if let Some(addr) = headers
        .get(PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<IpAddr>().ok())
    {
        ctx.learned.note(addr);
    }
    let mut s = ctx.state.get();
    (ctx.overlay)(&mut s);
    axum::Json(s)
}

/// Serves `router` on `listener` from a new thread. Call it after signals are blocked: the
/// thread inherits the mask, so signals still go to the supervisor.
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
            let result = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                axum::serve(listener, router).await
            });
            if let Err(e) = result {
                log::error!("HTTP server stopped: {e}");
            }
        })?;
    Ok(())
}
