//! Black-box tests of the message path over real sockets: gob+gzip and JSON clients register, log in, chat 1:1
//! and in groups, receive pushes, pull by seq, mark read and read unread counts.

mod common;

use common::*;
use palaver_protocol::{
    constant::{platform, req},
    pb::{msg as pbmsg, sdkws},
};
use prost::Message as _;
use serde_json::json;

#[tokio::test]
async fn gob_and_json_clients_chat_one_to_one() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", JSON).await;

    let ack = alice.send_text_msg(text_msg("alice", "bob", "c1", "hello bob")).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let ack = pbmsg::SendMsgResp::decode(&ack.data[..]).unwrap();
    assert_eq!(ack.client_msg_id, "c1");
    assert_eq!(ack.server_msg_id.len(), 32);
    assert!(ack.send_time > 0);

    // Bob gets it pushed; Alice learns the seq from the push of her own message.
    let (conv, msg) = bob.next_push().await.expect("push to bob");
    assert_eq!(conv, "si_alice_bob");
    assert_eq!(
        (msg.seq, text_of(&msg).as_str(), msg.server_msg_id.as_str()),
        (1, "hello bob", ack.server_msg_id.as_str())
    );
    let (_, own) = alice.next_push().await.expect("push to sender");
    assert_eq!(own.seq, 1);

    let ack = bob.send_text_msg(text_msg("bob", "alice", "c2", "hi alice")).await;
    assert_eq!(ack.err_code, 0);
    let (_, msg) = alice.next_push().await.expect("push to alice");
    assert_eq!((msg.seq, text_of(&msg).as_str()), (2, "hi alice"));

    // Newest seqs and pulls agree.
    let seqs = alice.newest_seqs().await;
    assert_eq!(seqs.max_seqs.get("si_alice_bob"), Some(&2));
    let pulled = bob.pull_range("si_alice_bob", 1, 2, 10).await;
    assert_eq!(pulled.err_code, 0);
    let pulled = sdkws::PullMessageBySeqsResp::decode(&pulled.data[..]).unwrap();
    let msgs = &pulled.msgs["si_alice_bob"].msgs;
    assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(text_of(&msgs[0]), "hello bob");

    // Unread: Alice has read her own message (seq 1), not Bob's reply.
    let read = alice.has_read_and_max().await;
    assert_eq!(read.seqs["si_alice_bob"].max_seq, 2);
    assert_eq!(read.seqs["si_alice_bob"].has_read_seq, 1);
    let alice_token = server.user_token(&admin, "alice", platform::IOS).await;
    server
        .call(
            "/msg/mark_conversation_as_read",
            &alice_token,
            json!({"conversationID": "si_alice_bob", "userID": "alice", "hasReadSeq": 2, "seqs": [2]}),
        )
        .await;
    let read = alice.has_read_and_max().await;
    assert_eq!(read.seqs["si_alice_bob"].has_read_seq, 2, "unread is now 0");

    // The REST views of the same data.
    let newest = server.call("/msg/newest_seq", &alice_token, json!({"userID": "alice"})).await;
    assert_eq!(newest["maxSeqs"]["si_alice_bob"], 2);
    let pulled = server
        .call(
            "/msg/pull_msg_by_seq",
            &alice_token,
            json!({"userID": "alice", "seqRanges": [{"conversationID": "si_alice_bob", "begin": 1, "end": 2, "num": 1}]}),
        )
        .await;
    let msgs = pulled["msgs"]["si_alice_bob"]["Msgs"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "num=1 returns the last message only");
    assert_eq!(msgs[0]["seq"], 2);
}

/// The other read-cursor routes: `mark_msgs_as_read` moves the cursor to the highest seq given,
/// `set_conversation_has_read_seq` to the seq given, and `get_conversations_has_read_and_max_seq` (the REST
/// twin of WS 1006) reads it back; none of them moves another user's cursor, or one's own backwards.
#[tokio::test]
async fn read_cursor_routes_move_only_the_callers_cursor_forward() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let _bob = server.connect_new(&admin, "bob", JSON).await;
    for (i, text) in ["one", "two", "three", "four"].iter().enumerate() {
        let ack = alice.send_text_msg(text_msg("alice", "bob", &format!("r{i}"), text)).await;
        assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    }
    let bob_token = server.user_token(&admin, "bob", platform::IOS).await;
    let cursor = |token: String| {
        let server = &server;
        async move {
            let read = server
                .call(
                    "/msg/get_conversations_has_read_and_max_seq",
                    &token,
                    json!({"userID": "bob", "conversationIDs": ["si_alice_bob"]}),
                )
                .await;
            let seqs = &read["seqs"]["si_alice_bob"];
            (seqs["maxSeq"].as_i64().unwrap(), seqs["hasReadSeq"].as_i64().unwrap())
        }
    };
    assert_eq!(cursor(bob_token.clone()).await, (4, 0));

    server
        .call(
            "/msg/mark_msgs_as_read",
            &bob_token,
            json!({"conversationID": "si_alice_bob", "userID": "bob", "seqs": [1, 3]}),
        )
        .await;
    assert_eq!(cursor(bob_token.clone()).await, (4, 3));
    server
        .call(
            "/msg/set_conversation_has_read_seq",
            &bob_token,
            json!({"conversationID": "si_alice_bob", "userID": "bob", "hasReadSeq": 2}),
        )
        .await;
    assert_eq!(cursor(bob_token.clone()).await, (4, 3), "a cursor never moves back");
    server
        .call(
            "/msg/set_conversation_has_read_seq",
            &bob_token,
            json!({"conversationID": "si_alice_bob", "userID": "bob", "hasReadSeq": 4}),
        )
        .await;
    assert_eq!(cursor(bob_token.clone()).await, (4, 4));

    // Alice's own cursor is where her sends put it; Bob cannot touch it.
    let refused = server
        .post(
            "/msg/set_conversation_has_read_seq",
            Some(&bob_token),
            json!({"conversationID": "si_alice_bob", "userID": "alice", "hasReadSeq": 1}),
        )
        .await;
    assert_eq!(refused["errCode"], 1002, "{refused}");
    let read = alice.has_read_and_max().await;
    assert_eq!(read.seqs["si_alice_bob"].has_read_seq, 4);
}

#[tokio::test]
async fn group_text_reaches_every_member_and_only_members() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", JSON).await;
    let mut carol = server.connect_new(&admin, "carol", GOB_GZIP).await;
    let mut dave = server.connect_new(&admin, "dave", GOB_GZIP).await;

    let alice_rest = server.user_token(&admin, "alice", platform::IOS).await;
    let created = server
        .call(
            "/group/create_group",
            &alice_rest,
            json!({"memberUserIDs": ["bob", "carol"], "adminUserIDs": [], "ownerUserID": "alice",
                   "groupInfo": {"groupID": "", "groupName": "g1", "groupType": 2}}),
        )
        .await;
    let group_id = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
    assert!(!group_id.is_empty());
    assert_eq!(created["groupInfo"]["memberCount"], 3);
    let info = server.call("/group/get_groups_info", &alice_rest, json!({"groupIDs": [group_id]})).await;
    assert_eq!(info["groupInfos"][0]["groupName"], "g1");
    assert_eq!(info["groupInfos"][0]["ownerUserID"], "alice");

    let ack = alice.send_text_msg(group_msg("alice", &group_id, "g-1", "hi all")).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let conv = format!("sg_{group_id}");
    for member in [&mut bob, &mut carol, &mut alice] {
        // The chat shows the group's creation first (OpenIM's tip, a copy of the 1501 notification), then the text.
        let (c, tip) = member.next_chat_push().await.expect("the creation's tip");
        assert_eq!((c.as_str(), tip.seq, tip.content_type), (conv.as_str(), 1, 1501));
        let (c, msg) = member.next_chat_push().await.expect("group push");
        assert_eq!((c.as_str(), msg.seq, text_of(&msg).as_str()), (conv.as_str(), 2, "hi all"));
    }

    // Dave is not a member: cannot send (1203), sees nothing, and nothing is stored.
    let refused = dave.send_text_msg(group_msg("dave", &group_id, "d-1", "let me in")).await;
    assert_eq!(refused.err_code, 1203);
    let pulled = dave.pull_range(&conv, 1, 10, 10).await;
    let pulled = sdkws::PullMessageBySeqsResp::decode(&pulled.data[..]).unwrap();
    assert!(pulled.msgs.is_empty(), "a non-member pulls nothing");
    assert!(!dave.newest_seqs().await.max_seqs.contains_key(&conv));
    assert_eq!(bob.newest_seqs().await.max_seqs[&conv], 2, "the refused send stored nothing");

    // Every member sees the conversation with its unread count.
    let read = bob.has_read_and_max().await;
    assert_eq!((read.seqs[&conv].max_seq, read.seqs[&conv].has_read_seq), (2, 0));
    let read = alice.has_read_and_max().await;
    assert_eq!(read.seqs[&conv].has_read_seq, 2, "the sender has read its own message (and the tip it caused)");
}

#[tokio::test]
async fn a_second_device_gets_its_own_messages() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let web = server.user_token(&admin, "alice", platform::WEB).await;
    let ios = server.user_token(&admin, "alice", platform::IOS).await;
    let mut alice_web = Client::connect(server.ws, "alice", &web, platform::WEB, GOB_GZIP).await.unwrap();
    let mut alice_ios = Client::connect(server.ws, "alice", &ios, platform::IOS, JSON).await.unwrap();

    let ack = alice_web.send_text_msg(text_msg("alice", "bob", "m1", "from web")).await;
    assert_eq!(ack.err_code, 0);
    let (conv, msg) = alice_ios.next_push().await.expect("the other device gets the sent message");
    assert_eq!((conv.as_str(), text_of(&msg).as_str(), msg.seq), ("si_alice_bob", "from web", 1));
}

#[tokio::test]
async fn a_resend_of_the_same_client_msg_id_creates_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;

    let first =
        pbmsg::SendMsgResp::decode(&alice.send_text_msg(text_msg("alice", "bob", "same", "once")).await.data[..])
            .unwrap();
    let again =
        pbmsg::SendMsgResp::decode(&alice.send_text_msg(text_msg("alice", "bob", "same", "once")).await.data[..])
            .unwrap();
    assert_eq!(first.server_msg_id, again.server_msg_id);
    assert_eq!(first.send_time, again.send_time);
    let next = alice.send_text_msg(text_msg("alice", "bob", "other", "twice")).await;
    assert_eq!(next.err_code, 0);
    let (_, m1) = bob.next_push().await.unwrap();
    let (_, m2) = bob.next_push().await.unwrap();
    assert_eq!((m1.seq, m1.client_msg_id.as_str(), m2.seq, m2.client_msg_id.as_str()), (1, "same", 2, "other"));
    assert_eq!(bob.newest_seqs().await.max_seqs["si_alice_bob"], 2);
}

#[tokio::test]
async fn admin_sends_on_behalf_of_a_user_and_as_the_system() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    server.register(&admin, &["alice"]).await;

    let sent = server
        .call(
            "/msg/send_msg",
            &admin,
            json!({"sendID": "alice", "recvID": "bob", "content": {"content": "via REST"}, "contentType": 101, "sessionType": 1}),
        )
        .await;
    assert_eq!(sent["clientMsgID"].as_str().unwrap().len(), 32);
    let (conv, msg) = bob.next_push().await.unwrap();
    assert_eq!((conv.as_str(), text_of(&msg).as_str(), msg.send_id.as_str()), ("si_alice_bob", "via REST", "alice"));

    server
        .call(
            "/msg/send_msg",
            &admin,
            json!({"sendID": "imAdmin", "recvID": "bob", "content": {"content": "maintenance at 5"}, "contentType": 101, "sessionType": 4}),
        )
        .await;
    let (conv, msg) = bob.next_push().await.unwrap();
    assert_eq!((conv.as_str(), msg.session_type), ("sn_bob_imAdmin", 4));

    // A user's token may not use the admin route.
    let bob_rest = server.user_token(&admin, "bob", platform::IOS).await;
    let refused = server
        .post(
            "/msg/send_msg",
            Some(&bob_rest),
            json!({"sendID": "bob", "recvID": "alice", "content": {}, "contentType": 101, "sessionType": 1}),
        )
        .await;
    assert_eq!(refused["errCode"], 1002);
}

#[tokio::test]
async fn history_by_seq_list_and_last_message() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    server.register(&admin, &["bob"]).await;
    for i in 1..=5 {
        let ack = alice.send_text_msg(text_msg("alice", "bob", &format!("h{i}"), &format!("msg {i}"))).await;
        assert_eq!(ack.err_code, 0);
    }
    let r = pbmsg::GetSeqMessageReq {
        user_id: "alice".into(),
        conversations: vec![pbmsg::ConversationSeqs { conversation_id: "si_alice_bob".into(), seqs: vec![2, 4, 9] }],
        order: 0,
    };
    let resp = alice.request(req::PULL_MSG_BY_SEQ_LIST, r.encode_to_vec()).await;
    let resp = pbmsg::GetSeqMessageResp::decode(&resp.data[..]).unwrap();
    let got = &resp.msgs["si_alice_bob"];
    assert_eq!(got.msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 4]);
    assert!(got.is_end, "seq 9 lies past the end");
    assert_eq!(got.end_seq, 5);

    let r = pbmsg::GetLastMessageReq {
        user_id: "alice".into(),
        conversation_ids: vec!["si_alice_bob".into(), "si_x_y".into()],
    };
    let resp = alice.request(req::PULL_CONV_LAST_MESSAGE, r.encode_to_vec()).await;
    let resp = pbmsg::GetLastMessageResp::decode(&resp.data[..]).unwrap();
    assert_eq!(resp.msgs.len(), 1);
    assert_eq!(text_of(&resp.msgs["si_alice_bob"]), "msg 5");
}
