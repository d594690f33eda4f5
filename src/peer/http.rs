//! The HTTP server every node runs from its first second: `/state` (this node's
//! [`NodeState`] as JSON). axum on a current-thread tokio runtime, on its own thread, so it
//! answers while the main thread waits, initialises or supervises.

use std::net::TcpListener;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{NodeState, Shared};

/// The routes.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/state", get(state_handler))
        .with_state(state)
}

async fn state_handler(State(state): State<Shared>) -> axum::Json<NodeState> {
    axum::Json(state.get())
}

/// Serves `state` on `listener` from a new thread. Call it after signals are blocked: the
/// thread inherits the mask, so signals still go to the supervisor.
pub fn spawn(listener: TcpListener, state: Shared) -> std::io::Result<()> {
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
                axum::serve(listener, router(state)).await
            });
            if let Err(e) = result {
                log::error!("HTTP server stopped: {e}");
            }
        })?;
    Ok(())
}
