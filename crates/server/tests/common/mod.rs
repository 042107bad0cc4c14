//! Black-box test harness: a real server on 127.0.0.1 ports chosen by the OS, a minimal HTTP/1.1 client for the
//! REST API, and a gateway client that speaks the envelope as OpenIM's SDKs do (gob+gzip like the wasm SDK, or
//! JSON like the JS SDK). At the end, helpers for the tests of server-generated notifications: pushed
//! messages with their decoded payload, extra devices, and "nothing else happened" checks that need no clock.
#![allow(dead_code, unreachable_pub)]

use futures_util::{SinkExt, StreamExt};
use palaver_protocol::{
    constant::{platform, req},
    envelope::{Encoding, FrameFormat, Req, Resp},
    pb::{msg as pbmsg, sdkws},
};
use palaver_server::{Config, Listeners};
use prost::Message as _;
use serde_json::{Value, json};
use std::{collections::VecDeque, net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

pub const SECRET: &str = "test-secret";
pub const WAIT: Duration = Duration::from_secs(5);

/// A server that gives up on a client that stops sending after 2 s (pings every second, as the timeout needs), for
/// the tests of such clients.
pub fn short_read_timeout(config: &mut Config) {
    config.read_timeout_secs = 2;
    config.ping_interval_secs = 1;
}

/// A server running in this process until dropped.
pub struct TestServer {
    pub ws: SocketAddr,
    pub api: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        // `PALAVER_TEST_STORE=postgres`: the same black-box tests on the PostgreSQL store, each server in a
        // schema of its own (created by the store on start).
        if std::env::var("PALAVER_TEST_STORE").as_deref() == Ok("postgres") {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let base = std::env::var("PALAVER_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let schema = format!(
                "palaver_server_{}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
            );
            config.database_url = Some(format!("{base}?options[search_path]={schema}"));
            config.database_max_connections = 4;
        }
        tweak(&mut config);
        let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (ws_addr, api_addr) = (ws.local_addr().unwrap(), api.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            palaver_server::run(config, Listeners { ws, api }, async move {
                let _ = stopped.await;
            })
            .await
            .expect("server failed");
        });
        let server = Self { ws: ws_addr, api: api_addr, dir, stop: Some(stop), task: Some(task) };
        // Wait until the store is open and the API answers.
        for _ in 0..100 {
            if http_get(server.api, "/healthz").await.map(|(s, _)| s == 200).unwrap_or(false) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not become healthy");
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }

    /// POSTs `body` to `path` with the headers OpenIM's SDKs send; returns the whole envelope.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        post_json(self.api, path, token, &body).await
    }

    /// POSTs and expects `errCode` 0; returns `data`.
    pub async fn call(&self, path: &str, token: &str, body: Value) -> Value {
        let envelope = self.post(path, Some(token), body).await;
        assert_eq!(envelope["errCode"], 0, "{path} failed: {envelope}");
        envelope.get("data").cloned().unwrap_or(Value::Null)
    }

    pub async fn admin_token(&self) -> String {
        let envelope = self.post("/auth/get_admin_token", None, json!({"secret": SECRET, "userID": "imAdmin"})).await;
        assert_eq!(envelope["errCode"], 0, "{envelope}");
        envelope["data"]["token"].as_str().unwrap().to_string()
    }

    /// Registers users (nickname = id uppercased) with the admin token.
    pub async fn register(&self, admin: &str, ids: &[&str]) {
        let users: Vec<Value> = ids.iter().map(|id| json!({"userID": id, "nickname": id.to_uppercase()})).collect();
        self.call("/user/user_register", admin, json!({ "users": users })).await;
    }

    pub async fn user_token(&self, admin: &str, user: &str, platform_id: i32) -> String {
        let data = self.call("/auth/get_user_token", admin, json!({"platformID": platform_id, "userID": user})).await;
        data["token"].as_str().unwrap().to_string()
    }

    /// Registers `user`, gets a Web token and connects with `format`.
    pub async fn connect_new(&self, admin: &str, user: &str, format: FrameFormat) -> Client {
        self.register(admin, &[user]).await;
        let token = self.user_token(admin, user, platform::WEB).await;
        Client::connect(self.ws, user, &token, platform::WEB, format).await.expect("connect")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub const GOB_GZIP: FrameFormat = FrameFormat { encoding: Encoding::Gob, gzip: true };
pub const JSON: FrameFormat = FrameFormat { encoding: Encoding::Json, gzip: false };

/// `POST` with JSON over a fresh HTTP/1.1 connection.
pub async fn post_json(addr: SocketAddr, path: &str, token: Option<&str>, body: &Value) -> Value {
    let body = body.to_string();
    let token = token.map(|t| format!("token: {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\noperationID: test-op\r\n{token}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (status, text) = http_raw(addr, format!("{head}{body}").as_bytes()).await.expect("http");
    assert_eq!(status, 200, "{path}: HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
}

/// `POST` with JSON from the local address `source` (any 127.x.y.z works on Linux loopback), for tests of
/// per-address behaviour.
pub async fn post_json_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Value {
    let body = body.to_string();
    let token = token.map(|t| format!("token: {t}\r\n")).unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\noperationID: test-op\r\n{token}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(addr).await.expect("connect");
    let (status, text) = http_exchange(stream, request.as_bytes()).await.expect("http");
    assert_eq!(status, 200, "{path}: HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
}

pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await
}

/// Sends raw bytes and reads one response: to its `Content-Length`, or to EOF. Returns the status and the body
/// (de-chunked if needed).
pub async fn http_raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    http_exchange(TcpStream::connect(addr).await?, request).await
}

/// Writes `request` on `stream` and reads one response, as [`http_raw`].
pub async fn http_exchange(mut stream: TcpStream, request: &[u8]) -> std::io::Result<(u16, String)> {
    stream.write_all(request).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await.map_err(std::io::Error::other)??;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
                .and_then(Result::ok);
            if length.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A gateway client.
pub struct Client {
    pub user: String,
    pub format: FrameFormat,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Server frames that were not the reply being waited for (pushes, kicks).
    pub inbox: VecDeque<Resp>,
    next_incr: u64,
}

/// What a refused or failed connection attempt saw.
#[derive(Debug)]
pub struct Refused {
    pub err_code: i64,
    pub body: String,
}

pub fn ws_url(addr: SocketAddr, user: &str, token: &str, platform_id: i32, format: FrameFormat) -> String {
    let mut url = format!(
        "ws://{addr}/?sendID={user}&token={token}&platformID={platform_id}&operationID=op-connect&isBackground=false&isMsgResp=true"
    );
    if format.gzip {
        url.push_str("&compression=gzip");
    }
    if format.encoding == Encoding::Json {
        url.push_str("&sdkType=js");
    }
    url
}

impl Client {
    /// Connects with `isMsgResp=true` and reads the first text frame: `Ok` when it says errCode 0.
    pub async fn connect(
        addr: SocketAddr,
        user: &str,
        token: &str,
        platform_id: i32,
        format: FrameFormat,
    ) -> Result<Self, Refused> {
        let url = ws_url(addr, user, token, platform_id, format);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .map_err(|e| Refused { err_code: -1, body: e.to_string() })?;
        let first = tokio::time::timeout(WAIT, ws.next()).await.expect("first frame in time");
        let text = match first {
            Some(Ok(Message::Text(t))) => t.to_string(),
            other => panic!("first frame must be text, got {other:?}"),
        };
        let status: Value = serde_json::from_str(&text).unwrap();
        let code = status["errCode"].as_i64().unwrap();
        if code != 0 {
            return Err(Refused { err_code: code, body: text });
        }
        Ok(Self { user: user.to_string(), format, ws, inbox: VecDeque::new(), next_incr: 0 })
    }

    /// Sends a raw binary frame.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// Sends a request envelope; returns its msgIncr.
    pub async fn send_req(&mut self, req_identifier: i32, data: Vec<u8>) -> String {
        self.try_send_req(req_identifier, data).await.expect("the connection is open")
    }

    /// [`Client::send_req`] that returns `None` when the connection is gone instead of panicking (for tests that
    /// kill servers under their clients).
    pub async fn try_send_req(&mut self, req_identifier: i32, data: Vec<u8>) -> Option<String> {
        self.next_incr += 1;
        let msg_incr = format!("{}_{}", self.user, self.next_incr);
        let request = Req {
            req_identifier,
            send_id: self.user.clone(),
            operation_id: format!("op-{}", self.next_incr),
            msg_incr: msg_incr.clone(),
            data,
            ..Req::default()
        };
        self.ws.send(Message::Binary(self.format.encode_req(&request).into())).await.ok()?;
        Some(msg_incr)
    }

    /// Sends a request and waits for the reply with the same msgIncr, keeping other frames in the inbox.
    pub async fn request(&mut self, req_identifier: i32, data: Vec<u8>) -> Resp {
        let incr = self.send_req(req_identifier, data).await;
        loop {
            let resp = self.recv().await.expect("connection closed while waiting for a reply");
            if resp.msg_incr == incr && resp.req_identifier == req_identifier {
                return resp;
            }
            self.inbox.push_back(resp);
        }
    }

    /// The next binary frame from the server, decoded; `None` when the connection closes (or after `WAIT`).
    pub async fn recv(&mut self) -> Option<Resp> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next()).await.ok()??;
            match frame {
                Ok(Message::Binary(bytes)) => {
                    return Some(self.format.decode_resp(&bytes).expect("decodable server frame"));
                }
                Ok(Message::Text(t)) => panic!("unexpected text frame after handshake: {t}"),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The next text frame (for ping/pong tests).
    pub async fn recv_text(&mut self) -> Option<String> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.ok()?? {
                Ok(Message::Text(t)) => return Some(t.to_string()),
                Ok(Message::Binary(b)) => self.inbox.push_back(self.format.decode_resp(&b).unwrap()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Waits until the server closes the connection; true if it did within `WAIT`.
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(Message::Binary(b)))) => {
                    if let Ok(r) = self.format.decode_resp(&b) {
                        self.inbox.push_back(r);
                    }
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next frame with this reqIdentifier (inbox first).
    pub async fn next_of(&mut self, req_identifier: i32) -> Option<Resp> {
        if let Some(i) = self.inbox.iter().position(|r| r.req_identifier == req_identifier) {
            return self.inbox.remove(i);
        }
        loop {
            let resp = self.recv().await?;
            if resp.req_identifier == req_identifier {
                return Some(resp);
            }
            self.inbox.push_back(resp);
        }
    }

    /// Every message of the next push (2001), in order (inbox first); other frames stay queued.
    pub async fn next_pushes(&mut self) -> Option<Vec<Pushed>> {
        Some(pushed(&self.next_of(req::PUSH_MSG).await?))
    }

    /// The next pushed message (2001): the first of the next push.
    pub async fn next_push(&mut self) -> Option<(String, sdkws::MsgData)> {
        let first = self.next_pushes().await?.into_iter().next()?;
        Some((first.conversation, first.msg))
    }

    /// The next push (2001) whose first message satisfies `pred(conversation, msg)`, and that message; other
    /// frames, pushes passed over included, stay queued.
    pub async fn next_push_where(
        &mut self,
        pred: impl Fn(&str, &sdkws::MsgData) -> bool,
    ) -> Option<(String, sdkws::MsgData)> {
        let first = |resp: &Resp| pushed(resp).into_iter().next().map(|p| (p.conversation, p.msg));
        if let Some(i) = self.inbox.iter().position(|r| first(r).is_some_and(|(c, m)| pred(&c, &m))) {
            return self.inbox.remove(i).and_then(|r| first(&r));
        }
        loop {
            let resp = self.recv().await?;
            if let Some((c, m)) = first(&resp).filter(|(c, m)| pred(c, m)) {
                return Some((c, m));
            }
            self.inbox.push_back(resp);
        }
    }

    /// The first pushed message of `content_type` (chat message or notification, anywhere in its push),
    /// **dropping** every push before it and the rest of its own: what the client has seen up to it is
    /// consumed, so a later [`none_before`] looks only at what came after. Panics if none comes.
    pub async fn next_of_type(&mut self, content_type: i32) -> Pushed {
        loop {
            let push = self
                .next_pushes()
                .await
                .unwrap_or_else(|| panic!("{}: no push of content type {content_type}", self.user));
            if let Some(found) = push.into_iter().find(|p| p.msg.content_type == content_type) {
                return found;
            }
        }
    }

    /// The next pushed chat message (not a notification).
    pub async fn next_chat_push(&mut self) -> Option<(String, sdkws::MsgData)> {
        self.next_push_where(|conv, _| !conv.starts_with("n_")).await
    }

    /// The next pushed notification of `content_type`, with its Tips decoded from the notification's detail;
    /// pushes passed over stay queued ([`Client::next_push_where`]).
    pub async fn next_notification(&mut self, content_type: i32) -> Option<(String, sdkws::MsgData, Value)> {
        let (conv, msg) =
            self.next_push_where(|conv, m| conv.starts_with("n_") && m.content_type == content_type).await?;
        let tips = tips_of(&msg);
        Some((conv, msg, tips))
    }

    /// Drops every queued frame (pushes this test does not care about).
    pub fn clear_inbox(&mut self) {
        self.inbox.clear();
    }

    /// Sends a text message and returns the ack.
    pub async fn send_text_msg(&mut self, msg: sdkws::MsgData) -> Resp {
        self.request(req::SEND_MSG, msg.encode_to_vec()).await
    }

    pub async fn newest_seqs(&mut self) -> sdkws::GetMaxSeqResp {
        let resp =
            self.request(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: self.user.clone() }.encode_to_vec()).await;
        assert_eq!(resp.err_code, 0, "{}", resp.err_msg);
        sdkws::GetMaxSeqResp::decode(&resp.data[..]).unwrap()
    }

    pub async fn pull_range(&mut self, conversation_id: &str, begin: i64, end: i64, num: i64) -> Resp {
        let r = sdkws::PullMessageBySeqsReq {
            user_id: self.user.clone(),
            seq_ranges: vec![sdkws::SeqRange { conversation_id: conversation_id.into(), begin, end, num }],
            order: 0,
        };
        self.request(req::PULL_MSG_BY_RANGE, r.encode_to_vec()).await
    }

    pub async fn has_read_and_max(&mut self) -> pbmsg::GetConversationsHasReadAndMaxSeqResp {
        let r = pbmsg::GetConversationsHasReadAndMaxSeqReq { user_id: self.user.clone(), ..Default::default() };
        let resp = self.request(req::GET_CONV_MAX_READ_SEQ, r.encode_to_vec()).await;
        assert_eq!(resp.err_code, 0, "{}", resp.err_msg);
        pbmsg::GetConversationsHasReadAndMaxSeqResp::decode(&resp.data[..]).unwrap()
    }
}

/// A 1:1 text message as the SDK builds it.
pub fn text_msg(from: &str, to: &str, client_msg_id: &str, text: &str) -> sdkws::MsgData {
    sdkws::MsgData {
        send_id: from.into(),
        recv_id: to.into(),
        client_msg_id: client_msg_id.into(),
        sender_platform_id: platform::WEB,
        session_type: 1,
        msg_from: 100,
        content_type: 101,
        content: json!({ "content": text }).to_string().into_bytes(),
        create_time: 1,
        status: 1,
        ..Default::default()
    }
}

/// A group text message.
pub fn group_msg(from: &str, group_id: &str, client_msg_id: &str, text: &str) -> sdkws::MsgData {
    sdkws::MsgData {
        recv_id: String::new(),
        group_id: group_id.into(),
        session_type: 3,
        ..text_msg(from, "", client_msg_id, text)
    }
}

/// The text inside a text message's content.
pub fn text_of(msg: &sdkws::MsgData) -> String {
    let v: Value = serde_json::from_slice(&msg.content).unwrap();
    v["content"].as_str().unwrap().to_string()
}

/// One pushed message, notification or not, with its notification payload (`Null` for a user message).
#[derive(Debug, Clone)]
pub struct Pushed {
    pub conversation: String,
    /// Whether it came in `notificationMsgs` (an `n_` conversation) rather than `msgs`.
    pub is_notification: bool,
    pub msg: sdkws::MsgData,
    pub tips: Value,
}

/// The `*Tips` of a notification (`{"detail": "<json>"}`), or `Null`.
pub fn tips_of(msg: &sdkws::MsgData) -> Value {
    let Ok(elem) = serde_json::from_slice::<Value>(&msg.content) else {
        return Value::Null;
    };
    elem["detail"].as_str().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null)
}

/// Every message a frame pushes (2001), in order: chat messages, then notifications; none for another frame.
pub fn pushed(frame: &Resp) -> Vec<Pushed> {
    if frame.req_identifier != req::PUSH_MSG {
        return Vec::new();
    }
    let push = sdkws::PushMessages::decode(&frame.data[..]).unwrap();
    let mut out = Vec::new();
    for (is_notification, map) in [(false, push.msgs), (true, push.notification_msgs)] {
        for (conversation, pulled) in map {
            for msg in pulled.msgs {
                out.push(Pushed { conversation: conversation.clone(), is_notification, tips: tips_of(&msg), msg });
            }
        }
    }
    out
}

/// Asserts that `c` gets nothing `forbidden` before the text message `marker_text`, which was sent after
/// whatever must not reach `c`: pushes to one connection leave in order, so anything sent to it before the
/// marker arrives before it. Frames already waiting in the inbox count too.
pub async fn none_before(c: &mut Client, forbidden: impl Fn(&Resp) -> bool, marker_text: &str) {
    loop {
        let frame = match c.inbox.pop_front() {
            Some(f) => f,
            None => c.recv().await.unwrap_or_else(|| panic!("{}: the marker {marker_text:?} never came", c.user)),
        };
        assert!(!forbidden(&frame), "{}: got a frame it must not get: {frame:?}", c.user);
        if pushed(&frame)
            .iter()
            .any(|p| !p.is_notification && p.msg.content_type == 101 && text_of(&p.msg) == marker_text)
        {
            return;
        }
    }
}

/// A `forbidden` for [`none_before`]: a pushed notification of this content type.
pub fn push_of_type(content_type: i32) -> impl Fn(&Resp) -> bool {
    move |frame| pushed(frame).iter().any(|p| p.is_notification && p.msg.content_type == content_type)
}

/// Sends a text from `from` to `to` over a fresh admin call, as a marker that arrives after everything sent
/// before it.
pub async fn marker(server: &TestServer, admin: &str, from: &str, to: &str, text: &str) {
    let body = json!({
        "sendID": from, "recvID": to, "sessionType": 1, "contentType": 101, "content": {"content": text}
    });
    server.call("/msg/send_msg", admin, body).await;
}

/// Another device of a registered user.
pub async fn device(server: &TestServer, admin: &str, user: &str, platform_id: i32) -> Client {
    let token = server.user_token(admin, user, platform_id).await;
    Client::connect(server.ws, user, &token, platform_id, GOB_GZIP).await.expect("connect")
}

/// A REST token for a registered user on a platform no test connects with.
pub async fn rest_token(server: &TestServer, admin: &str, user: &str) -> String {
    server.user_token(admin, user, platform::ANDROID_PAD).await
}

/// The error code of a POST.
pub async fn code(server: &TestServer, path: &str, token: &str, body: Value) -> i64 {
    server.post(path, Some(token), body).await["errCode"].as_i64().unwrap()
}

/// Pulls `begin..=end` of a conversation over REST as `user`.
pub async fn pull(
    server: &TestServer,
    token: &str,
    user: &str,
    conversation: &str,
    begin: i64,
    end: i64,
) -> Vec<Value> {
    let data = server
        .call(
            "/msg/pull_msg_by_seq",
            token,
            json!({"userID": user, "seqRanges": [{"conversationID": conversation, "begin": begin, "end": end, "num": 100}]}),
        )
        .await;
    let group = if conversation.starts_with("n_") { "notificationMsgs" } else { "msgs" };
    data[group][conversation]["Msgs"].as_array().cloned().unwrap_or_default()
}
