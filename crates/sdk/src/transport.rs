//! The gateway transport: one WebSocket to the gateway, spoken as OpenIM's SDKs speak it.
//!
//! [`Connection::connect`] opens the socket (optionally from a chosen local source address, which is how a
//! load generator gets past the ~28k ephemeral ports per source/destination pair), performs the handshake
//! (`isMsgResp=true`: the server's first text frame says whether the token was accepted) and spawns one task
//! that owns the socket. The [`Connection`] handle is cheap to clone; every clone can issue requests
//! concurrently:
//!
//! - a request is a `Req` envelope with a fresh `msgIncr`; the task remembers the caller's reply slot under
//!   that `msgIncr` and hands the matching `Resp` back, so replies may come in any order;
//! - everything the server sends on its own (pushes 2001, the kick 2002, status tips 2005) and the end of the
//!   connection are [`Event`]s on the channel given at connect time; many connections may share one channel
//!   (each event names its connection), which is how a load generator watches thousands of them cheaply;
//! - heartbeats are one of OpenIM's three styles ([`Heartbeat`]); control pings from the server are answered
//!   by tungstenite as long as the task reads, which it always does.
//!
//! One task per connection, no locks: the task `select!`s over outgoing commands, incoming frames and the
//! heartbeat timer. Outgoing frames that are ready together are written with one flush.

use crate::error::{SdkError, SdkResult};
use futures_util::{SinkExt, StreamExt};
use palaver_protocol::{
    constant::{platform, req},
    envelope::{Encoding, FrameFormat, Req, Resp},
    pb::{msg as pbmsg, push, sdkws},
};
use prost::Message as _;
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};
use tokio::{
    net::{TcpSocket, TcpStream},
    sync::{mpsc, oneshot},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

/// gob + gzip: what the Go and wasm SDKs speak.
pub const GOB_GZIP: FrameFormat = FrameFormat { encoding: Encoding::Gob, gzip: true };
/// JSON without compression: what the pure-JS SDK speaks (`sdkType=js`).
pub const JSON: FrameFormat = FrameFormat { encoding: Encoding::Json, gzip: false };

/// How the client keeps an idle connection alive (protocol §2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Send nothing; rely on the server's control pings (sent to Web connections, platform 5), which are
    /// answered automatically. This is the wasm SDK's behaviour.
    ServerPings,
    /// A text `{"type":"ping"}` at this interval, answered by a text pong (the JS SDK: every 10 s).
    Text(Duration),
    /// A WebSocket control ping at this interval (the Go native SDK: every 24 s).
    Control(Duration),
}

/// Everything needed to open a connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The gateway, `ws://host:port` (a path is allowed and ignored by Palaver, as by OpenIM).
    pub ws_url: String,
    pub user_id: String,
    /// A user token for `user_id` on `platform_id` (`/auth/get_user_token`).
    pub token: String,
    pub platform_id: i32,
    /// Envelope encoding and compression: [`GOB_GZIP`] like the Go/wasm SDKs, [`JSON`] like the JS SDK.
    pub format: FrameFormat,
    /// Local address to connect from (port chosen by the kernel), e.g. `127.0.0.3`.
    pub source_ip: Option<IpAddr>,
    pub heartbeat: Heartbeat,
    /// tungstenite's read buffer per connection. Its default (128 KiB, allocated eagerly) is far too much for
    /// a process holding thousands of sockets.
    pub read_buffer_size: usize,
    /// Largest frame accepted from the server.
    pub max_message_size: usize,
    /// How long the TCP connect, the WebSocket handshake and the first text frame may take together.
    pub connect_timeout: Duration,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
}

impl ConnectOptions {
    /// Options as the wasm SDK connects: Web platform, gob + gzip, heartbeats by server pings.
    pub fn new(ws_url: impl Into<String>, user_id: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            ws_url: ws_url.into(),
            user_id: user_id.into(),
            token: token.into(),
            platform_id: platform::WEB,
            format: GOB_GZIP,
            source_ip: None,
            heartbeat: Heartbeat::ServerPings,
            read_buffer_size: 4096,
            max_message_size: 16 << 20,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// The connect URL with OpenIM's query parameters (protocol §2.2).
    pub fn url(&self, operation_id: &str) -> String {
        let base = self.ws_url.trim_end_matches('/');
        let mut url = format!(
            "{base}/?sendID={}&token={}&platformID={}&operationID={}&isBackground=false&isMsgResp=true",
            escape(&self.user_id),
            escape(&self.token),
            self.platform_id,
            escape(operation_id),
        );
        if self.format.gzip {
            url.push_str("&compression=gzip");
        }
        if self.format.encoding == Encoding::Json {
            url.push_str("&sdkType=js");
        }
        url
    }
}

/// Something the server sent without being asked, or the end of the connection.
#[derive(Debug)]
pub struct Event {
    /// Which connection (see [`Connection::id`]).
    pub conn_id: u64,
    pub user_id: Arc<str>,
    /// When the frame was read off the socket, before decoding: wall-clock time, so that a send time written
    /// by another process on the same machine can be subtracted from it.
    pub at: SystemTime,
    pub kind: EventKind,
}

/// What an [`Event`] is.
#[derive(Debug)]
pub enum EventKind {
    /// 2001: messages pushed by the server, keyed by conversation id.
    Push(sdkws::PushMessages),
    /// 2002: this login was displaced; the server closes the connection next.
    Kicked,
    /// Any other server-initiated frame (e.g. 2005 status tips), as decoded.
    Other(Resp),
    /// The connection ended (closed by either side or failed); no more events follow for it.
    Closed { reason: String },
}

enum Command {
    Request { msg_incr: String, frame: Vec<u8>, reply: oneshot::Sender<Resp> },
    Close,
}

/// A live gateway connection. Clones share the connection; it closes when [`Connection::close`] is called or
/// when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    user_id: Arc<str>,
    format: FrameFormat,
    request_timeout: Duration,
    tx: mpsc::UnboundedSender<Command>,
    next_incr: AtomicU64,
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

impl Connection {
    /// Connects and authenticates; server-initiated frames go to `events`.
    pub async fn connect(options: &ConnectOptions, events: mpsc::UnboundedSender<Event>) -> SdkResult<Self> {
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let ws = tokio::time::timeout(options.connect_timeout, handshake(options, id))
            .await
            .map_err(|_| SdkError::Timeout("connect"))??;
        let (tx, rx) = mpsc::unbounded_channel();
        let user_id: Arc<str> = Arc::from(options.user_id.as_str());
        let task = ConnTask {
            id,
            user_id: user_id.clone(),
            format: options.format,
            heartbeat: options.heartbeat,
            events,
            pending: HashMap::new(),
        };
        tokio::spawn(task.run(ws, rx));
        Ok(Self {
            inner: Arc::new(Inner {
                id,
                user_id,
                format: options.format,
                request_timeout: options.request_timeout,
                tx,
                next_incr: AtomicU64::new(0),
            }),
        })
    }

    /// Connects with a channel of its own for the events.
    pub async fn connect_with_events(options: &ConnectOptions) -> SdkResult<(Self, mpsc::UnboundedReceiver<Event>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((Self::connect(options, tx).await?, rx))
    }

    /// This connection's id, as found in its [`Event`]s.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn user_id(&self) -> &str {
        &self.inner.user_id
    }

    pub fn format(&self) -> FrameFormat {
        self.inner.format
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed()
    }

    /// Asks the connection to close (a WebSocket close frame, then the socket is dropped).
    pub fn close(&self) {
        let _ = self.inner.tx.send(Command::Close);
    }

    /// Sends one request and waits for the reply with the same `msgIncr`, whatever its `errCode`.
    pub async fn request(&self, req_identifier: i32, data: Vec<u8>) -> SdkResult<Resp> {
        let n = self.inner.next_incr.fetch_add(1, Ordering::Relaxed) + 1;
        // The Go SDK's shape: "<userID>_<number>".
        let msg_incr = format!("{}_{n}", self.inner.user_id);
        let request = Req {
            req_identifier,
            token: String::new(),
            send_id: self.inner.user_id.to_string(),
            operation_id: format!("c{}-{n}", self.inner.id),
            msg_incr: msg_incr.clone(),
            data,
        };
        let frame = self.inner.format.encode_req(&request);
        let (reply, answer) = oneshot::channel();
        self.inner.tx.send(Command::Request { msg_incr, frame, reply }).map_err(|_| SdkError::Closed)?;
        match tokio::time::timeout(self.inner.request_timeout, answer).await {
            Err(_) => Err(SdkError::Timeout("request")),
            Ok(Err(_)) => Err(SdkError::Closed),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// Sends `body` as request `req_identifier` and decodes the reply's data as `T`; a non-zero `errCode` is
    /// an [`SdkError::Api`].
    pub async fn call<T: prost::Message + Default>(
        &self,
        req_identifier: i32,
        body: &impl prost::Message,
    ) -> SdkResult<T> {
        let resp = self.request(req_identifier, body.encode_to_vec()).await?;
        if resp.err_code != 0 {
            return Err(SdkError::Api { code: resp.err_code, msg: resp.err_msg });
        }
        T::decode(&resp.data[..]).map_err(|e| SdkError::Decode(e.to_string()))
    }

    /// 1003: sends a message; the answer carries the server's message id and send time. (The message's seq
    /// arrives with its push.)
    pub async fn send_msg(&self, msg: &sdkws::MsgData) -> SdkResult<pbmsg::SendMsgResp> {
        self.call(req::SEND_MSG, msg).await
    }

    /// 1001: max and min seq of every conversation of this user.
    pub async fn get_newest_seq(&self) -> SdkResult<sdkws::GetMaxSeqResp> {
        self.call(req::GET_NEWEST_SEQ, &sdkws::GetMaxSeqReq { user_id: self.inner.user_id.to_string() }).await
    }

    /// 1002: the last `num` messages of each `[begin, end]` range.
    pub async fn pull_by_range(&self, ranges: Vec<sdkws::SeqRange>) -> SdkResult<sdkws::PullMessageBySeqsResp> {
        let body =
            sdkws::PullMessageBySeqsReq { user_id: self.inner.user_id.to_string(), seq_ranges: ranges, order: 0 };
        self.call(req::PULL_MSG_BY_RANGE, &body).await
    }

    /// 1005: messages by explicit seqs (history on a fresh device).
    pub async fn pull_by_seqs(
        &self,
        conversations: Vec<pbmsg::ConversationSeqs>,
    ) -> SdkResult<pbmsg::GetSeqMessageResp> {
        let body = pbmsg::GetSeqMessageReq { user_id: self.inner.user_id.to_string(), conversations, order: 0 };
        self.call(req::PULL_MSG_BY_SEQ_LIST, &body).await
    }

    /// 1006: read and max seqs of the user's conversations (all of them when `conversation_ids` is empty).
    pub async fn has_read_and_max_seq(
        &self,
        conversation_ids: Vec<String>,
    ) -> SdkResult<pbmsg::GetConversationsHasReadAndMaxSeqResp> {
        let body = pbmsg::GetConversationsHasReadAndMaxSeqReq {
            user_id: self.inner.user_id.to_string(),
            conversation_ids,
            return_pinned: false,
        };
        self.call(req::GET_CONV_MAX_READ_SEQ, &body).await
    }

    /// 2003: logs out; the server answers and closes the connection.
    pub async fn logout(&self, platform_id: i32) -> SdkResult<()> {
        let body = push::DelUserPushTokenReq { user_id: self.inner.user_id.to_string(), platform_id };
        let resp = self.request(req::LOGOUT_MSG, body.encode_to_vec()).await?;
        if resp.err_code != 0 {
            return Err(SdkError::Api { code: resp.err_code, msg: resp.err_msg });
        }
        Ok(())
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass as they are).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `host:port` of a `ws://` URL.
fn authority(ws_url: &str) -> SdkResult<&str> {
    let rest = ws_url
        .strip_prefix("ws://")
        .ok_or_else(|| SdkError::Invalid(format!("{ws_url}: only ws:// URLs are supported")))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() {
        return Err(SdkError::Invalid(format!("{ws_url}: no host")));
    }
    Ok(authority)
}

/// Opens a TCP connection to `addr`, from `source_ip` if given, with Nagle off (frames are small and written
/// at once; with Nagle, each waits for the peer's delayed ACK).
pub async fn connect_tcp(addr: SocketAddr, source_ip: Option<IpAddr>) -> SdkResult<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source_ip {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

type Ws = WebSocketStream<TcpStream>;

async fn handshake(options: &ConnectOptions, id: u64) -> SdkResult<Ws> {
    let authority = authority(&options.ws_url)?;
    let addr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| SdkError::Invalid(format!("{authority} does not resolve")))?;
    let tcp = connect_tcp(addr, options.source_ip).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(options.read_buffer_size)
        .max_message_size(Some(options.max_message_size))
        .max_frame_size(Some(options.max_message_size));
    let url = options.url(&format!("connect-{id}"));
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(|e| SdkError::WebSocket(e.to_string()))?;
    // isMsgResp=true: the first frame is text, `{"errCode":…,"errMsg":…,"errDlt":…}`.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let status: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| SdkError::Decode(format!("handshake answer: {e}")))?;
                let code = status["errCode"].as_i64().unwrap_or(-1) as i32;
                if code != 0 {
                    let msg = status["errMsg"].as_str().unwrap_or_default().to_string();
                    return Err(SdkError::Refused { code, msg });
                }
                return Ok(ws);
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => {
                return Err(SdkError::Decode(format!("expected the handshake text frame, got {other:?}")));
            }
            Some(Err(e)) => return Err(SdkError::WebSocket(e.to_string())),
            None => return Err(SdkError::Closed),
        }
    }
}

/// The task that owns one socket.
struct ConnTask {
    id: u64,
    user_id: Arc<str>,
    format: FrameFormat,
    heartbeat: Heartbeat,
    events: mpsc::UnboundedSender<Event>,
    /// Reply slots of requests in flight, by msgIncr.
    pending: HashMap<String, oneshot::Sender<Resp>>,
}

/// Pending entries whose caller gave up (timed out) are swept once the map holds this many.
const PENDING_SWEEP: usize = 1024;
/// Most commands written before one flush.
const WRITE_BATCH: usize = 64;

impl ConnTask {
    async fn run(mut self, mut ws: Ws, mut commands: mpsc::UnboundedReceiver<Command>) {
        let period = match self.heartbeat {
            Heartbeat::ServerPings => None,
            Heartbeat::Text(d) | Heartbeat::Control(d) => Some(d),
        };
        let mut beat = tokio::time::interval(period.unwrap_or(Duration::from_secs(3600)));
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        let reason = loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { break self.close(&mut ws, "handle dropped").await };
                    match self.write(&mut ws, command, &mut commands).await {
                        Ok(true) => {}
                        Ok(false) => break self.close(&mut ws, "closed by the client").await,
                        Err(e) => break e,
                    }
                }
                frame = ws.next() => match frame {
                    Some(Ok(Message::Binary(bytes))) => self.incoming(&bytes),
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map(|f| format!("closed by the server: {} {}", f.code, f.reason))
                            .unwrap_or_else(|| "closed by the server".into());
                    }
                    // Control pings are answered by tungstenite itself; text frames are pongs.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e.to_string(),
                    None => break "connection ended".into(),
                },
                _ = beat.tick(), if period.is_some() => {
                    let ping = match self.heartbeat {
                        Heartbeat::Text(_) => Message::Text(r#"{"type":"ping"}"#.into()),
                        _ => Message::Ping(Default::default()),
                    };
                    if let Err(e) = ws.send(ping).await {
                        break e.to_string();
                    }
                }
            }
        };
        // Dropping the reply slots fails the requests still waiting with `Closed`.
        self.pending.clear();
        self.emit(SystemTime::now(), EventKind::Closed { reason });
    }

    /// Writes `first` and whatever else is already queued, then flushes once. `Ok(false)` means close.
    async fn write(
        &mut self,
        ws: &mut Ws,
        first: Command,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Result<bool, String> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(command) = next.take() {
            match command {
                Command::Close => {
                    ws.flush().await.map_err(|e| e.to_string())?;
                    return Ok(false);
                }
                Command::Request { msg_incr, frame, reply } => {
                    if self.pending.len() >= PENDING_SWEEP {
                        self.pending.retain(|_, slot| !slot.is_closed());
                    }
                    self.pending.insert(msg_incr, reply);
                    ws.feed(Message::Binary(frame.into())).await.map_err(|e| e.to_string())?;
                }
            }
            written += 1;
            if written < WRITE_BATCH {
                next = commands.try_recv().ok();
            }
        }
        ws.flush().await.map_err(|e| e.to_string())?;
        Ok(true)
    }

    async fn close(&mut self, ws: &mut Ws, reason: &str) -> String {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        reason.to_string()
    }

    fn incoming(&mut self, bytes: &[u8]) {
        let at = SystemTime::now();
        let resp = match crate::codec::decode_resp(self.format, bytes) {
            Ok(resp) => resp,
            Err(e) => {
                tracing::warn!(conn = self.id, error = %e, "undecodable frame from the server");
                return;
            }
        };
        if !resp.msg_incr.is_empty()
            && let Some(slot) = self.pending.remove(&resp.msg_incr)
        {
            let _ = slot.send(resp);
            return;
        }
        let kind = match resp.req_identifier {
            req::PUSH_MSG => match sdkws::PushMessages::decode(&resp.data[..]) {
                Ok(push) => EventKind::Push(push),
                Err(_) => EventKind::Other(resp),
            },
            req::KICK_ONLINE_MSG => EventKind::Kicked,
            _ => EventKind::Other(resp),
        };
        self.emit(at, kind);
    }

    fn emit(&self, at: SystemTime, kind: EventKind) {
        let _ = self.events.send(Event { conn_id: self.id, user_id: self.user_id.clone(), at, kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_carries_openim_query_parameters() {
        let mut options = ConnectOptions::new("ws://127.0.0.1:10001/", "al ice", "t/k+n");
        let url = options.url("op1");
        assert_eq!(
            url,
            "ws://127.0.0.1:10001/?sendID=al%20ice&token=t%2Fk%2Bn&platformID=5&operationID=op1&isBackground=false&isMsgResp=true&compression=gzip"
        );
        options.format = JSON;
        assert!(options.url("op").ends_with("&isMsgResp=true&sdkType=js"));
    }

    #[test]
    fn authority_of_ws_urls() {
        assert_eq!(authority("ws://127.0.0.1:10001").unwrap(), "127.0.0.1:10001");
        assert_eq!(authority("ws://h:1/path?x").unwrap(), "h:1");
        assert!(authority("http://h:1").is_err());
        assert!(authority("ws://").is_err());
    }
}
