//! One gateway connection.
//!
//! Two tasks per connection: the reader (this function's own task) decodes frames and handles requests one at
//! a time, in the order the client sent them; the writer drains the connection's bounded queue, batching every
//! frame that is ready into one flush. Replies and pushes share the queue, so a client that stops reading fills
//! it and is disconnected (see `hub`), without ever blocking a sender.
//!
//! Heartbeats, as OpenIM's clients expect (protocol §2.12): control pings to Web connections (the wasm SDK's
//! only keep-alive; browsers answer them), text `{"type":"ping"}` answered by a text pong, control pings
//! answered by tungstenite, and a read deadline after every frame. No other text frame is ever sent after the
//! handshake: the wasm SDK treats one as fatal.

use super::{dispatch, handshake::status_json};
use crate::{
    error::ApiError,
    hub::{Close, ConnHandle, Outbound, Waiter, kick_resp},
    service::{App, Caller},
};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use palaver_protocol::{
    constant::{platform, req},
    envelope::{FrameFormat, Resp},
    errcode::ErrCode,
};
use std::{sync::Arc, time::Duration};
use tokio::sync::mpsc;

/// An authenticated connection's fixed facts.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub caller: Caller,
    pub format: FrameFormat,
    /// The connect request's operationID, for the logs.
    pub operation_id: String,
    pub is_msg_resp: bool,
}

/// Answers a refused handshake (isMsgResp=true): the error as the first text frame, then close.
pub(super) async fn refuse(mut socket: WebSocket, err: ApiError) {
    let _ = socket.send(Message::Text(status_json(Some(&err)).into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// What the reader decided about a frame.
pub(super) enum Next {
    Continue,
    /// Stop reading; the writer closes after sending what is queued.
    Close,
}

pub(super) async fn serve(app: Arc<App>, mut socket: WebSocket, session: Session) {
    if session.is_msg_resp && socket.send(Message::Text(status_json(None).into())).await.is_err() {
        return;
    }
    let (tx, rx) = mpsc::channel(app.config.send_queue_frames);
    let handle = ConnHandle {
        id: app.hub.next_conn_id(),
        user_id: Arc::from(session.caller.user_id.as_str()),
        platform_id: session.caller.platform_id,
        token_hash: session.caller.token_hash.clone(),
        tx,
        close: Close::default(),
    };
    let displaced = app.hub.register(handle.clone(), app.config.multi_login_policy);
    app.stats.add(&app.stats.connections, 1);
    // Revoke before kicking, so a kicked device that reconnects at once is refused (1506) instead of kicking
    // this login in turn.
    if let Err(e) = Box::pin(app.bus.revoke_displaced(&displaced, &session.caller.token_hash)).await {
        tracing::warn!(error = %e, "could not revoke displaced tokens");
    }
    for old in &displaced {
        old.offer(Outbound::Kick);
    }
    // The other nodes: they learn the user is here, and apply the policy to its connections there.
    app.bus.connected(&handle, app.config.multi_login_policy);
    tracing::debug!(user = %handle.user_id, conn = handle.id, platform = handle.platform_id, op = %session.operation_id, "connected");

    let (sink, mut stream) = socket.split();
    let ping_every =
        (session.caller.platform_id == platform::WEB).then(|| Duration::from_secs(app.config.ping_interval_secs));
    let writer = tokio::spawn(write_loop(sink, rx, session.format, handle.close.clone(), ping_every));

    let read_timeout = app.config.read_timeout();
    loop {
        let next = tokio::select! {
            _ = handle.close.raised(Waiter::Reader) => break,
            next = tokio::time::timeout(read_timeout, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                tracing::debug!(conn = handle.id, "read deadline passed");
                break;
            }
            Ok(None | Some(Err(_))) => break,
            Ok(Some(Ok(message))) => message,
        };
        let step = match message {
            // Boxed: the request's future (through the services and the store) is several KiB, and inline it
            // would make every idle connection's task that big for its whole life.
            Message::Binary(frame) => Box::pin(dispatch::frame(&app, &session, &handle, &frame)).await,
            Message::Text(text) => text_frame(&handle, &text),
            Message::Ping(_) | Message::Pong(_) => Next::Continue,
            Message::Close(_) => Next::Close,
        };
        if matches!(step, Next::Close) {
            // Let the writer send what is queued (an error reply, the logout answer), then close.
            handle.offer(Outbound::Close);
            break;
        }
    }
    app.hub.unregister(&handle.user_id, handle.id);
    app.bus.disconnected(&handle.user_id);
    drop(handle.tx);
    // The writer ends when the queue is drained and closed, or when told to close now.
    if tokio::time::timeout(Duration::from_secs(10), writer).await.is_err() {
        handle.close.raise();
    }
    tracing::debug!(user = %handle.user_id, conn = handle.id, "disconnected");
}

/// `{"type":"ping","body":X}` → `{"type":"pong","body":X}`. Anything else textual is ignored.
fn text_frame(handle: &ConnHandle, text: &str) -> Next {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Next::Continue;
    };
    if value.get("type").and_then(|t| t.as_str()) == Some("ping") {
        let mut pong = serde_json::json!({ "type": "pong" });
        if let Some(body) = value.get("body") {
            pong["body"] = body.clone();
        }
        handle.offer(Outbound::Text(pong.to_string()));
    }
    Next::Continue
}

/// The connection's ping schedule: every `every`, the first at a random point of the second half of the first
/// interval rather than exactly one interval after the connection opened.
///
/// Connections that open together (every client reconnecting after a restart, or a load test's setup) would
/// otherwise be pinged together for as long as they live: tens of thousands of pings and pongs in the same few
/// milliseconds once an interval, which `palaver bench chat` showed as its slowest second. The gap from the
/// connection's opening to its first ping stays under `every`, so under the read deadline too.
fn pings(every: Duration) -> tokio::time::Interval {
    tokio::time::interval_at(tokio::time::Instant::now() + first_ping_after(every), every)
}

fn first_ping_after(every: Duration) -> Duration {
    every.mul_f64(rand::random_range(0.5..1.0))
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    format: FrameFormat,
    close: Close,
    ping_every: Option<Duration>,
) {
    let mut ping = pings(ping_every.unwrap_or(Duration::from_secs(3600)));
    'outer: loop {
        let first = tokio::select! {
            biased;
            _ = close.raised(Waiter::Writer) => break,
            out = rx.recv() => match out { Some(out) => out, None => break },
            _ = ping.tick(), if ping_every.is_some() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() { break }
                continue;
            }
        };
        // Feed everything that is ready, then flush once.
        let mut next = Some(first);
        while let Some(out) = next.take() {
            let message = match out {
                Outbound::Frame(bytes) => Message::Binary(bytes),
                Outbound::Push(frame) => Message::Binary(frame.bytes(format)),
                Outbound::Text(text) => Message::Text(Utf8Bytes::from(text)),
                Outbound::Kick => {
                    let _ = sink.feed(Message::Binary(format.encode_resp(&kick_resp()).into())).await;
                    break 'outer;
                }
                Outbound::Close => break 'outer,
            };
            if sink.feed(message).await.is_err() {
                close.raise();
                return;
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            close.raise();
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    close.raise();
}

/// Encodes a reply for this connection and queues it.
pub(super) fn reply(session: &Session, handle: &ConnHandle, resp: &Resp) {
    handle.offer(Outbound::Frame(Bytes::from(session.format.encode_resp(resp))));
}

/// An error reply to a request (or to an undecodable frame, under `req::DATA_ERROR`).
pub(super) fn error_resp(req_identifier: i32, msg_incr: &str, operation_id: &str, err: &ApiError) -> Resp {
    Resp {
        req_identifier,
        msg_incr: msg_incr.to_string(),
        operation_id: operation_id.to_string(),
        err_code: err.code.code(),
        err_msg: err.gateway_msg(),
        data: Vec::new(),
    }
}

/// The fallback code for a frame that cannot even be decoded.
pub(super) const UNDECODABLE: ErrCode = ErrCode::Args;
pub(super) const DATA_ERROR_REQ: i32 = req::DATA_ERROR;

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections opened together are first pinged at different moments of the second half of the interval.
    #[test]
    fn first_pings_are_spread_over_half_an_interval() {
        let every = Duration::from_secs(25);
        let firsts: Vec<Duration> = (0..200).map(|_| first_ping_after(every)).collect();
        assert!(firsts.iter().all(|d| *d >= every / 2 && *d < every), "{firsts:?}");
        let early = firsts.iter().filter(|d| **d < every * 3 / 4).count();
        assert!(early > 0 && early < firsts.len(), "all in one half of the window: {firsts:?}");
    }
}
