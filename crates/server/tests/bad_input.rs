//! Hostile and broken input: each gets OpenIM's error code, the server keeps serving everyone else, and nothing
//! stored changes.

mod common;

use common::*;
use palaver_protocol::{
    constant::req,
    envelope::{FrameFormat, Req},
    pb::sdkws,
};
use prost::Message as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// Two connected users, with one message already in their conversation.
async fn setup(format: FrameFormat) -> (TestServer, Client, Client) {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", format).await;
    let bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    assert_eq!(alice.send_text_msg(text_msg("alice", "bob", "seed", "before")).await.err_code, 0);
    (server, alice, bob)
}

/// Bob can still chat, and the conversation holds exactly the seed message.
async fn others_unaffected(server: &TestServer, bob: &mut Client) {
    let admin = server.admin_token().await;
    let mut carol = server.connect_new(&admin, "carol", GOB_GZIP).await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "carol", "after", "still here")).await.err_code, 0);
    assert_eq!(carol.next_push().await.expect("server still delivers").1.seq, 1);
    assert_eq!(bob.newest_seqs().await.max_seqs["si_alice_bob"], 1, "nothing new was stored");
}

/// The error frame the server sends before closing, then the close.
async fn refused_then_closed(client: &mut Client) -> i32 {
    let resp = client.recv().await.expect("an error reply before the close");
    assert!(client.closed().await, "the connection is closed");
    resp.err_code
}

#[tokio::test]
async fn malformed_gob_is_refused() {
    let (server, mut alice, mut bob) = setup(FrameFormat { gzip: false, ..GOB_GZIP }).await;
    alice.send_raw(vec![0x60, 0xff, 0x81, 0x03, 0x01, 0x01]).await;
    assert_eq!(refused_then_closed(&mut alice).await, 1001);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn a_frame_that_is_not_gzip_is_refused() {
    let (server, mut alice, mut bob) = setup(GOB_GZIP).await;
    alice.send_raw(b"definitely not gzip".to_vec()).await;
    assert_eq!(refused_then_closed(&mut alice).await, 1001);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let (server, mut alice, mut bob) = setup(JSON).await;
    alice.send_raw(br#"{"reqIdentifier": 1003, "sendID": "alice", "data": "!!!"#.to_vec()).await;
    assert_eq!(refused_then_closed(&mut alice).await, 1001);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn an_envelope_missing_required_fields_is_refused() {
    let (server, mut alice, mut bob) = setup(JSON).await;
    let frame = JSON.encode_req(&Req { req_identifier: req::SEND_MSG, send_id: "alice".into(), ..Req::default() });
    alice.send_raw(frame).await;
    assert_eq!(refused_then_closed(&mut alice).await, 1001);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn malformed_protobuf_gets_an_error_reply_and_the_connection_goes_on() {
    let (server, mut alice, mut bob) = setup(GOB_GZIP).await;
    let resp = alice.request(req::SEND_MSG, vec![0x0a, 0xff, 0xff, 0xff]).await;
    assert_eq!(resp.err_code, 1001);
    assert!(resp.err_msg.contains("protobuf"), "{}", resp.err_msg);
    // The same connection still works.
    assert_eq!(alice.newest_seqs().await.max_seqs["si_alice_bob"], 1);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn an_oversize_frame_is_refused() {
    let (server, mut alice, mut bob) = setup(FrameFormat { gzip: false, ..GOB_GZIP }).await;
    let big = text_msg("alice", "bob", "big", &"x".repeat(60_000));
    let incr = alice.send_req(req::SEND_MSG, big.encode_to_vec()).await;
    let resp = alice.recv().await.expect("an error reply");
    assert_ne!(resp.msg_incr, incr, "the frame was not processed as a request");
    assert_eq!(resp.err_code, 1001);
    assert!(alice.closed().await);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn oversize_content_within_a_frame_is_refused() {
    let (server, mut alice, mut bob) = setup(GOB_GZIP).await;
    // Compresses far below the frame limit, but the content is over the message limit.
    let big = text_msg("alice", "bob", "big", &"x".repeat(200_000));
    let resp = alice.send_text_msg(big).await;
    assert_eq!(resp.err_code, 1001);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn a_frame_for_another_user_closes_the_connection() {
    let (server, mut alice, mut bob) = setup(GOB_GZIP).await;
    let forged = Req {
        req_identifier: req::SEND_MSG,
        send_id: "bob".into(),
        operation_id: "op".into(),
        msg_incr: "bob_1".into(),
        data: text_msg("bob", "alice", "forged", "not me").encode_to_vec(),
        ..Req::default()
    };
    alice.send_raw(GOB_GZIP.encode_req(&forged)).await;
    assert_eq!(refused_then_closed(&mut alice).await, 1002);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn message_data_for_another_sender_is_refused() {
    let (server, mut alice, mut bob) = setup(GOB_GZIP).await;
    // The envelope is Alice's, but the message claims to be Bob's.
    let resp = alice.send_text_msg(text_msg("bob", "alice", "spoof", "not me")).await;
    assert_eq!(resp.err_code, 1002);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn an_unknown_request_id_closes_the_connection() {
    let (server, mut alice, mut bob) = setup(GOB_GZIP).await;
    let _ = alice.send_req(4242, Vec::new()).await;
    assert_eq!(refused_then_closed(&mut alice).await, 1001);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn messages_to_unknown_users_and_of_unknown_kinds_are_refused() {
    let (server, mut alice, mut bob) = setup(GOB_GZIP).await;
    assert_eq!(alice.send_text_msg(text_msg("alice", "nobody", "n1", "hi")).await.err_code, 1101);
    let weird = sdkws::MsgData { session_type: 9, ..text_msg("alice", "bob", "n2", "hi") };
    assert_eq!(alice.send_text_msg(weird).await.err_code, 1001);
    let no_id = text_msg("alice", "bob", "", "hi");
    assert_eq!(alice.send_text_msg(no_id).await.err_code, 1001);
    let fake_notification = sdkws::MsgData { content_type: 1501, ..text_msg("alice", "bob", "n3", "hi") };
    assert_eq!(alice.send_text_msg(fake_notification).await.err_code, 1002);
    let unknown_group = group_msg("alice", "no-such-group", "n4", "hi");
    assert_eq!(alice.send_text_msg(unknown_group).await.err_code, 1201);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn pulling_a_conversation_one_is_not_in_returns_nothing() {
    let (server, _alice, mut bob) = setup(GOB_GZIP).await;
    let admin = server.admin_token().await;
    let mut eve = server.connect_new(&admin, "eve", GOB_GZIP).await;
    let resp = eve.pull_range("si_alice_bob", 1, 100, 100).await;
    assert_eq!(resp.err_code, 0);
    let resp = sdkws::PullMessageBySeqsResp::decode(&resp.data[..]).unwrap();
    assert!(resp.msgs.is_empty() && resp.notification_msgs.is_empty());
    let r = palaver_protocol::pb::msg::GetSeqMessageReq {
        user_id: "eve".into(),
        conversations: vec![palaver_protocol::pb::msg::ConversationSeqs {
            conversation_id: "si_alice_bob".into(),
            seqs: vec![1],
        }],
        order: 0,
    };
    let resp = eve.request(req::PULL_MSG_BY_SEQ_LIST, r.encode_to_vec()).await;
    let resp = palaver_protocol::pb::msg::GetSeqMessageResp::decode(&resp.data[..]).unwrap();
    assert!(resp.msgs.is_empty());
    // Asking for someone else's data by userID is refused outright.
    let r = sdkws::GetMaxSeqReq { user_id: "alice".into() };
    assert_eq!(eve.request(req::GET_NEWEST_SEQ, r.encode_to_vec()).await.err_code, 1002);
    others_unaffected(&server, &mut bob).await;
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_without_holding_up_the_sender() {
    let server = TestServer::start_with(|c| c.send_queue_frames = 8).await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", FrameFormat { gzip: false, ..GOB_GZIP }).await;
    let mut slow = server.connect_new(&admin, "slow", FrameFormat { gzip: false, ..GOB_GZIP }).await;
    let payload = "y".repeat(30_000);
    // ~12 MB of pushes to a client that does not read: socket buffers fill, then its queue, then it is cut.
    for i in 0..400 {
        let ack = alice.send_text_msg(text_msg("alice", "slow", &format!("s{i}"), &payload)).await;
        assert_eq!(ack.err_code, 0, "message {i}");
        alice.inbox.clear();
    }
    let mut received = 0;
    while slow.next_push().await.is_some() {
        received += 1;
    }
    assert!(received < 400, "the slow consumer was cut off (it got {received})");
    // Everything is stored: pull is the source of truth.
    assert_eq!(alice.newest_seqs().await.max_seqs["si_alice_slow"], 400);
}

/// Each listener works on at most `max_opening_connections` unanswered connections at once, but clients cannot hold
/// it shut: connections that say nothing do not count, a half-sent request counts only for a moment, and answered
/// connections (a held WebSocket) never do. With a limit of one, all of these at once still leave room for others.
#[tokio::test]
async fn connections_that_never_finish_a_request_do_not_keep_others_out() {
    let server = TestServer::start_with(|c| c.max_opening_connections = 1).await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut held = Vec::new();
    for addr in [server.api, server.ws] {
        for _ in 0..20 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        for _ in 0..3 {
            let mut half = TcpStream::connect(addr).await.unwrap();
            half.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Never").as_bytes()).await.unwrap();
            held.push(half);
        }
    }
    let (status, _) = http_get(server.api, "/healthz").await.expect("the API still answers");
    assert_eq!(status, 200);
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    assert_eq!(alice.send_text_msg(text_msg("alice", "bob", "m1", "through")).await.err_code, 0);
    assert_eq!(bob.next_push().await.expect("delivered").1.seq, 1);
    drop(held);
}

/// A JSON request whose body has not all arrived within `read_timeout_secs` is given up and its connection closed,
/// whether the body stopped half way or keeps coming a byte at a time: a client cannot hold a request open by
/// sending its head and then little or nothing.
#[tokio::test]
async fn a_request_whose_body_does_not_arrive_in_time_is_given_up() {
    let server = TestServer::start_with(short_read_timeout).await;
    let head = "POST /user/get_users_info HTTP/1.1\r\nHost: palaver\r\ncontent-type: application/json\r\n\
                content-length: 100\r\n\r\n{\"userIDs\"";
    for trickle in [false, true] {
        let (mut read, mut write) = TcpStream::connect(server.api).await.unwrap().into_split();
        write.write_all(head.as_bytes()).await.unwrap();
        // A byte every 250 ms: 100 bytes would take 25 s, each within the read timeout of the one before. The
        // write half is handed back, not dropped, so the server never sees the client's end of the stream.
        let sender = tokio::spawn(async move {
            while trickle && write.write_all(b" ").await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            write
        });
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(WAIT, read.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "trickling: {trickle}: still open after {WAIT:?}");
        sender.abort();
    }
}

/// A request's head must arrive within `read_timeout_secs` of the connection's opening or of the answer before it,
/// on both ports: a client that connects and sends nothing, one that sends half a request and stalls, and one that
/// leaves a kept-alive connection idle are each closed, as a WebSocket that falls silent is, rather than holding one
/// of the server's open files for as long as they like.
#[tokio::test]
async fn connections_whose_requests_do_not_come_are_closed_after_the_read_timeout() {
    let server = TestServer::start_with(short_read_timeout).await;
    let mut clients = Vec::new();
    for port in [server.api, server.ws] {
        let silent = TcpStream::connect(port).await.unwrap();
        let mut half = TcpStream::connect(port).await.unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: palaver\r\n").await.unwrap();
        let mut idle = TcpStream::connect(port).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: palaver\r\n\r\n").await.unwrap();
        let mut answer = [0; 12];
        idle.read_exact(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&answer));
        clients.extend([("silent", silent), ("half a request", half), ("kept alive", idle)]);
    }
    for (what, client) in &mut clients {
        let mut buf = [0; 1024];
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {} // the rest of an answer
                }
            }
        });
        closed.await.unwrap_or_else(|_| panic!("{what}: not closed by the server"));
    }
}
