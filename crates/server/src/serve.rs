//! Serving a listener's connections: HTTP/1 by hyper, each request handed to the router with its peer's address.
//!
//! Not axum's `serve`, because it gives hyper no timer, and without one hyper keeps no deadline for a request's
//! head: a client that connected and said nothing, sent half a request and stalled, or left a kept-alive
//! connection idle held an open file for as long as it liked, and with it a place in the node's few thousand
//! files. Here hyper has tokio's timer, and the head of every request must arrive within the server's read timeout
//! of the connection's opening or of the answer before it. Once a connection is upgraded to a WebSocket, the
//! gateway keeps its own read deadline (`gateway::conn`).

use crate::listener::{Acceptor, PeerAddr};
use axum::Router;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{pin::pin, time::Duration};
use tokio_util::sync::CancellationToken;
use tower::Service as _;

/// Serves `router` on the connections `acceptor` hands on, each request's head due within `head_timeout`, until
/// `stop` is cancelled; then stops accepting, lets each connection finish the request it is on, and returns once
/// all have closed (upgraded connections are the gateway's to close).
pub(crate) async fn serve(mut acceptor: Acceptor, router: Router, head_timeout: Duration, stop: CancellationToken) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(head_timeout);
    // Each connection's task holds a sender; once all are dropped the receiver hears so (as in mini-redis).
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let (io, peer) = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = stop.cancelled() => break,
        };
        // The router is built once; a clone per request is a reference count (built per connection, as axum's
        // `serve` does with a plain `Router`, it walked every route to apply the state: ~1 % of a login's CPU).
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            router.clone().call(request)
        });
        let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
        let (stop, open) = (stop.clone(), open.clone());
        tokio::spawn(async move {
            let _open = open;
            let mut connection = pin!(connection);
            tokio::select! {
                served = connection.as_mut() => return log_end(served),
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            log_end(connection.await);
        });
    }
    drop((acceptor, open));
    let _ = all_closed.recv().await;
}

/// A connection that ended in an error (its head overdue, a malformed request, a reset), in the debug log: hyper
/// has answered what it could, and nothing is left to do.
fn log_end(served: hyper::Result<()>) {
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended");
    }
}
