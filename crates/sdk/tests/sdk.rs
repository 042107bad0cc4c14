//! Black-box tests of the SDK against a real server started in this process on 127.0.0.1 ports chosen by the OS.

use palaver_protocol::{
    constant::{platform, session_type},
    pb::sdkws,
};
use palaver_sdk::{
    ConnectOptions, Connection, EventKind, Heartbeat, RestClient, SdkError,
    transport::{GOB_GZIP, JSON},
};
use palaver_server::{Config, Listeners};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};

const SECRET: &str = "test-secret";
const WAIT: Duration = Duration::from_secs(5);

struct Server {
    ws_url: String,
    api_addr: std::net::SocketAddr,
    rest: RestClient,
    admin: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        tweak(&mut config);
        let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (ws_addr, api_addr) = (ws.local_addr().unwrap(), api.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            palaver_server::run(config, Listeners { ws, api }, shutdown).await.expect("server failed");
        });
        let rest = RestClient::new(&format!("http://{api_addr}")).await.unwrap();
        let mut admin = None;
        for _ in 0..100 {
            if let Ok(token) = rest.get_admin_token(SECRET, "imAdmin").await {
                admin = Some(token);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            ws_url: format!("ws://{ws_addr}"),
            api_addr,
            rest,
            admin: admin.expect("server did not come up"),
            _dir: dir,
            _stop: stop,
        }
    }

    /// Registers `user` and returns connect options with a fresh token for `platform_id`.
    async fn user(&self, user: &str, platform_id: i32) -> ConnectOptions {
        self.rest.user_register(&self.admin, &[(user.to_string(), user.to_uppercase())]).await.unwrap();
        self.options(user, platform_id).await
    }

    async fn options(&self, user: &str, platform_id: i32) -> ConnectOptions {
        let token = self.rest.get_user_token(&self.admin, user, platform_id).await.unwrap();
        let mut options = ConnectOptions::new(&self.ws_url, user, token);
        options.platform_id = platform_id;
        options
    }
}

fn text(from: &str, to: &str, id: &str) -> sdkws::MsgData {
    sdkws::MsgData {
        send_id: from.into(),
        recv_id: to.into(),
        client_msg_id: id.into(),
        session_type: session_type::SINGLE_CHAT,
        msg_from: 100,
        content_type: 101,
        content: br#"{"content":"hi"}"#.to_vec(),
        ..Default::default()
    }
}

/// A TCP relay in front of `target` that counts the connections it accepts and can cut every one of them, as a
/// server that lets idle connections go does.
struct Relay {
    url: String,
    accepted: Arc<AtomicUsize>,
    cut: watch::Sender<()>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let (cut, _) = watch::channel(());
        let (count, cuts) = (accepted.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { url, accepted, cut }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The next pushed message on `events`, skipping other events.
async fn next_push(events: &mut mpsc::UnboundedReceiver<palaver_sdk::Event>) -> sdkws::MsgData {
    loop {
        let event = tokio::time::timeout(WAIT, events.recv()).await.expect("push in time").expect("open");
        if let EventKind::Push(push) = event.kind {
            return push.msgs.into_values().next().unwrap().msgs.remove(0);
        }
    }
}

#[tokio::test]
async fn both_envelope_formats_send_ack_push_and_pull() {
    let server = Server::start(|_| {}).await;
    for (format, a, b) in [(GOB_GZIP, "gob_a", "gob_b"), (JSON, "json_a", "json_b")] {
        let mut alice = server.user(a, platform::WEB).await;
        alice.format = format;
        let mut bob = server.user(b, platform::WEB).await;
        bob.format = format;
        let (alice, _alice_events) = Connection::connect_with_events(&alice).await.unwrap();
        let (bob, mut bob_events) = Connection::connect_with_events(&bob).await.unwrap();

        let ack = alice.send_msg(&text(a, b, "m1")).await.unwrap();
        assert_eq!(ack.client_msg_id, "m1");
        assert!(!ack.server_msg_id.is_empty());

        let pushed = next_push(&mut bob_events).await;
        assert_eq!((pushed.client_msg_id.as_str(), pushed.seq, pushed.send_id.as_str()), ("m1", 1, a));

        let seqs = bob.get_newest_seq().await.unwrap();
        let (conversation, max) = seqs.max_seqs.into_iter().next().unwrap();
        assert_eq!(max, 1);
        let range = sdkws::SeqRange { conversation_id: conversation.clone(), begin: 1, end: 1, num: 1 };
        let pulled = bob.pull_by_range(vec![range]).await.unwrap();
        assert_eq!(pulled.msgs[&conversation].msgs[0].client_msg_id, "m1");
        let read = bob.has_read_and_max_seq(Vec::new()).await.unwrap();
        assert_eq!(read.seqs[&conversation].max_seq, 1);
    }
}

#[tokio::test]
async fn concurrent_requests_on_one_connection_are_matched_by_msg_incr() {
    let server = Server::start(|_| {}).await;
    let alice = server.user("alice", platform::WEB).await;
    server.user("bob", platform::WEB).await;
    let (alice, _events) = Connection::connect_with_events(&alice).await.unwrap();
    let sends = (0..50).map(|i| {
        let alice = alice.clone();
        async move { (i, alice.send_msg(&text("alice", "bob", &format!("c{i}"))).await) }
    });
    for (i, ack) in futures_util::future::join_all(sends).await {
        assert_eq!(ack.unwrap().client_msg_id, format!("c{i}"));
    }
    // A refused request is an API error and the connection goes on.
    let err = alice.send_msg(&text("alice", "nobody", "x")).await.unwrap_err();
    assert!(matches!(err, SdkError::Api { code: 1101, .. }), "{err:?}");
    assert!(alice.get_newest_seq().await.is_ok());
}

#[tokio::test]
async fn bad_tokens_are_refused_with_token_codes() {
    let server = Server::start(|_| {}).await;
    let mut options = server.user("carol", platform::WEB).await;
    options.token = "not-a-token".into();
    let err = Connection::connect_with_events(&options).await.unwrap_err();
    assert!(err.is_token_error(), "{err:?}");
    // The token of another platform is refused too (1502).
    let mut options = server.options("carol", platform::IOS).await;
    options.platform_id = platform::WEB;
    let err = Connection::connect_with_events(&options).await.unwrap_err();
    assert_eq!(err.code(), Some(1502), "{err:?}");
}

#[tokio::test]
async fn rest_errors_carry_openim_codes() {
    let server = Server::start(|_| {}).await;
    let err = server.rest.get_admin_token("wrong-secret", "imAdmin").await.unwrap_err();
    assert!(err.code().is_some(), "{err:?}");
    server.rest.user_register(&server.admin, &[("dave".into(), "Dave".into())]).await.unwrap();
    let err = server.rest.user_register(&server.admin, &[("dave".into(), "Dave".into())]).await.unwrap_err();
    assert_eq!(err.code(), Some(1102), "{err:?}");
    let err = server.rest.get_user_token("bogus", "dave", platform::WEB).await.unwrap_err();
    assert!(err.is_token_error(), "{err:?}");
    // Groups: create, invite, and a group message reaches every online member.
    let members: Vec<String> = (0..3).map(|i| format!("m{i}")).collect();
    let users: Vec<(String, String)> = members.iter().map(|m| (m.clone(), m.clone())).collect();
    server.rest.user_register(&server.admin, &users).await.unwrap();
    let group = server.rest.create_group(&server.admin, "dave", &members[..2], "g").await.unwrap();
    server.rest.invite_user_to_group(&server.admin, &group.group_id, &members[2..]).await.unwrap();
    let (dave, _) = Connection::connect_with_events(&server.options("dave", platform::WEB).await).await.unwrap();
    let (_m2, mut m2_events) =
        Connection::connect_with_events(&server.options("m2", platform::WEB).await).await.unwrap();
    let msg = sdkws::MsgData {
        recv_id: String::new(),
        group_id: group.group_id.clone(),
        session_type: session_type::READ_GROUP_CHAT,
        ..text("dave", "", "g1")
    };
    dave.send_msg(&msg).await.unwrap();
    assert_eq!(next_push(&mut m2_events).await.client_msg_id, "g1");
}

#[tokio::test]
async fn a_second_login_on_the_same_platform_kicks_the_first() {
    let server = Server::start(|_| {}).await;
    let first = server.user("erin", platform::WEB).await;
    let (_first, mut events) = Connection::connect_with_events(&first).await.unwrap();
    let second = server.options("erin", platform::WEB).await;
    let (_second, _) = Connection::connect_with_events(&second).await.unwrap();
    let mut kinds = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(WAIT, events.recv()).await {
        let closed = matches!(event.kind, EventKind::Closed { .. });
        kinds.push(event.kind);
        if closed {
            break;
        }
    }
    assert!(matches!(kinds.first(), Some(EventKind::Kicked)), "{kinds:?}");
    assert!(matches!(kinds.last(), Some(EventKind::Closed { .. })), "{kinds:?}");
}

#[tokio::test]
async fn heartbeats_keep_idle_connections_past_the_read_deadline() {
    let server = Server::start(|c| {
        c.read_timeout_secs = 2;
        c.ping_interval_secs = 1;
    })
    .await;
    // Web: the server pings, the client answers. Windows: no server pings; text or control pings keep it open.
    // One of each, from a second loopback source address.
    let mut web = server.user("web", platform::WEB).await;
    web.source_ip = Some("127.0.0.2".parse().unwrap());
    let mut text_ping = server.user("texty", platform::WINDOWS).await;
    text_ping.heartbeat = Heartbeat::Text(Duration::from_millis(500));
    let mut control = server.user("ctrl", platform::WINDOWS).await;
    control.heartbeat = Heartbeat::Control(Duration::from_millis(500));
    let silent = server.user("silent", platform::WINDOWS).await;
    let mut conns = Vec::new();
    for options in [&web, &text_ping, &control, &silent] {
        conns.push(Connection::connect_with_events(options).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for (conn, _) in &conns[..3] {
        assert!(!conn.is_closed(), "{} was closed", conn.user_id());
        assert!(conn.get_newest_seq().await.is_ok(), "{}", conn.user_id());
    }
    let (silent, mut silent_events) = conns.pop().unwrap();
    let event = tokio::time::timeout(WAIT, silent_events.recv()).await.unwrap().unwrap();
    assert!(matches!(event.kind, EventKind::Closed { .. }), "{event:?}");
    assert!(silent.get_newest_seq().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_calls_reuse_kept_alive_connections() {
    let server = Server::start(|_| {}).await;
    let relay = Relay::start(server.api_addr).await;
    let rest = Arc::new(RestClient::new(&relay.url).await.unwrap());
    // Eight callers, each making its calls one after another, need eight connections at most; calls after them
    // reuse those. (On a runtime of several threads hyper may still be turning a connection around when its answer
    // has been read: a pool that kept a connection only if it was ready that instant sometimes opened more.)
    let callers = (0..8).map(|_| {
        let rest = rest.clone();
        tokio::spawn(async move {
            for _ in 0..25 {
                rest.get_admin_token(SECRET, "imAdmin").await.unwrap();
            }
        })
    });
    for caller in futures_util::future::join_all(callers).await {
        caller.unwrap();
    }
    let opened = relay.accepted();
    assert!(opened <= 8, "{opened} connections for eight callers");
    for _ in 0..5 {
        rest.get_admin_token(SECRET, "imAdmin").await.unwrap();
    }
    assert_eq!(relay.accepted(), opened, "pooled connections are reused");
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_replaced() {
    let server = Server::start(|_| {}).await;
    let relay = Relay::start(server.api_addr).await;
    let rest = RestClient::new(&relay.url).await.unwrap();
    rest.get_admin_token(SECRET, "imAdmin").await.unwrap();
    // The server lets the idle connection go; the client's side of it sees the close before the next call.
    relay.cut.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..3 {
        rest.get_admin_token(SECRET, "imAdmin").await.unwrap();
    }
    assert_eq!(relay.accepted(), 2, "one new connection after the close, then reused");
}

/// A connection the server resets mid-request fails the call with what happened beneath HTTP, not only hyper's
/// "connection error".
#[tokio::test]
async fn a_reset_connection_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let resetter = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut request).await.unwrap();
        // Closed with unread bytes and no linger: the kernel answers with a reset, not a FIN.
        tcp.set_zero_linger().unwrap();
    });
    let rest = RestClient::new(&url).await.unwrap();
    let err = rest.get_admin_token(SECRET, "imAdmin").await.unwrap_err();
    resetter.await.unwrap();
    let SdkError::Http(message) = err else { panic!("not an HTTP error: {err:?}") };
    assert!(message.to_lowercase().contains("reset"), "{message}");
}
