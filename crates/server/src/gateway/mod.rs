//! The WebSocket gateway (port 10001): OpenIM's msg-gateway protocol.
//!
//! - [`handshake`]: query parameters and token, then the upgrade; failures are answered the way OpenIM's SDKs
//!   read them (a first text frame when `isMsgResp=true`, else a plain JSON body).
//! - [`conn`]: one connection's reader and writer: envelope decoding, heartbeats, deadlines, the bounded send
//!   queue.
//! - [`dispatch`]: request identifiers → services.

mod conn;
mod dispatch;
mod handshake;

pub(crate) use handshake::upgrade;

use crate::service::App;
use axum::Router;
use std::sync::Arc;

/// The gateway router: any path upgrades (OpenIM's server accepts every path; SDKs use `/`).
pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handshake::upgrade).with_state(app)
}
