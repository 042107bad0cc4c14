//! Conversation settings and what happens to messages after they were sent (revoke, delete, clear), over real
//! sockets: the rules on who may do what, what each side then pulls, and the notifications every affected
//! device gets.

mod common;

use common::*;
use palaver_protocol::constant::platform;
use serde_json::{Value, json};

/// Sends `n` texts from `from` to `to` over the gateway and returns nothing; each must be accepted.
async fn chat(c: &mut Client, to: &str, texts: &[&str]) {
    for t in texts {
        let id = format!("{}-{t}", c.user);
        let ack = c.send_text_msg(text_msg(&c.user.clone(), to, &id, t)).await;
        assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    }
}

fn seqs_and_status(msgs: &[Value]) -> Vec<(i64, i64, i64)> {
    msgs.iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m["contentType"].as_i64().unwrap(), m["status"].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn set_conversations_tells_the_other_devices_and_guards_rows() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut alice_phone = device(&server, &admin, "alice", platform::IOS).await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    server.register(&admin, &["carol"]).await;
    let (a, b) = (rest_token(&server, &admin, "alice").await, rest_token(&server, &admin, "bob").await);
    chat(&mut alice, "bob", &["hi"]).await;
    chat(&mut alice, "carol", &["hi carol"]).await;
    let head = server
        .call(
            "/conversation/get_incremental_conversations",
            &a,
            json!({"userID": "alice", "versionID": "", "version": 0}),
        )
        .await;

    // Pin: the other device hears of it (1300) and its incremental sync has the change.
    let pin = |id: &str, pinned: bool| json!({"userIDs": ["alice"], "conversation": {"conversationID": id, "isPinned": pinned}});
    server.call("/conversation/set_conversations", &a, pin("si_alice_bob", true)).await;
    let n = alice_phone.next_of_type(1300).await;
    assert_eq!(
        (n.conversation.as_str(), n.tips["conversationIDList"].clone()),
        ("n_alice_alice", json!(["si_alice_bob"]))
    );
    let delta = server
        .call(
            "/conversation/get_incremental_conversations",
            &a,
            json!({"userID": "alice", "versionID": head["versionID"], "version": head["version"]}),
        )
        .await;
    assert_eq!((delta["full"].as_bool(), delta["update"][0]["isPinned"].as_bool()), (Some(false), Some(true)));
    assert_eq!(delta["version"].as_i64(), Some(head["version"].as_i64().unwrap() + 1));
    // The same value again changes nothing and tells nobody: the next 1300 is about the next real change.
    server.call("/conversation/set_conversations", &a, pin("si_alice_bob", true)).await;
    server
        .call("/conversation/set_conversations", &a, json!({"userIDs": ["alice"], "conversation": {"conversationID": "si_alice_carol", "recvMsgOpt": 2, "ex": "e", "burnDuration": 30}}))
        .await;
    let n = alice_phone.next_of_type(1300).await;
    assert_eq!(n.tips["conversationIDList"], json!(["si_alice_carol"]));
    let pinned = server.call("/conversation/get_pinned_conversation_ids", &a, json!({"userID": "alice"})).await;
    assert_eq!(pinned["conversationIDs"], json!(["si_alice_bob"]));
    let quiet = server.call("/conversation/get_not_notify_conversation_ids", &a, json!({"userID": "alice"})).await;
    assert_eq!(quiet["conversationIDs"], json!(["si_alice_carol"]));
    let rows = server
        .call(
            "/conversation/get_conversations",
            &a,
            json!({"ownerUserID": "alice", "conversationIDs": ["si_alice_carol"]}),
        )
        .await;
    let row = &rows["conversations"][0];
    assert_eq!(
        (row["ex"].as_str(), row["burnDuration"].as_i64(), row["recvMsgOpt"].as_i64()),
        (Some("e"), Some(30), Some(2))
    );
    // Bob's row is his own.
    let bobs = server
        .call("/conversation/get_conversations", &b, json!({"ownerUserID": "bob", "conversationIDs": ["si_alice_bob"]}))
        .await;
    assert_eq!(bobs["conversations"][0]["isPinned"], false);

    // Private chat is set on both sides, and both are told (1701), with a tip in the chat.
    server
        .call(
            "/conversation/set_conversations",
            &a,
            json!({"userIDs": ["alice"], "conversation": {"conversationID": "si_alice_bob", "isPrivateChat": true}}),
        )
        .await;
    let n = bob.next_of_type(1701).await;
    let (tip, note) =
        if n.is_notification { (bob.next_of_type(1701).await, n) } else { (n.clone(), bob.next_of_type(1701).await) };
    assert_eq!(tip.conversation, "si_alice_bob");
    assert_eq!(
        note.tips,
        json!({"recvID": "bob", "sendID": "alice", "isPrivate": true, "conversationID": "si_alice_bob"})
    );
    let bobs = server
        .call("/conversation/get_conversations", &b, json!({"ownerUserID": "bob", "conversationIDs": ["si_alice_bob"]}))
        .await;
    assert_eq!(bobs["conversations"][0]["isPrivateChat"], true);

    // Nobody sets another user's conversation, or gives itself a row in someone else's.
    let bobs_pin = json!({"userIDs": ["bob"], "conversation": {"conversationID": "si_alice_bob", "isPinned": true}});
    assert_eq!(code(&server, "/conversation/set_conversations", &a, bobs_pin).await, 1002);
    let c = rest_token(&server, &admin, "carol").await;
    let intruder = json!({"userIDs": ["carol"], "conversation": {"conversationID": "si_alice_bob", "isPinned": true}});
    assert_eq!(code(&server, "/conversation/set_conversations", &c, intruder).await, 1001);
    assert!(pull(&server, &c, "carol", "si_alice_bob", 1, 10).await.is_empty(), "carol reads nothing of it");
    let created =
        server.call("/group/create_group", &b, json!({"memberUserIDs": [], "groupInfo": {"groupName": "g"}})).await;
    let gid = created["groupInfo"]["groupID"].as_str().unwrap();
    let group =
        json!({"userIDs": ["carol"], "conversation": {"conversationID": format!("sg_{gid}"), "isPinned": true}});
    assert_eq!(code(&server, "/conversation/set_conversations", &c, group).await, 1203);
    let bad = json!({"userIDs": ["alice"], "conversation": {"conversationID": "n_alice_bob", "isPinned": true}});
    assert_eq!(code(&server, "/conversation/set_conversations", &a, bad).await, 1001);
}

#[tokio::test]
async fn revoke_follows_upstream_rules_and_tells_everyone() {
    let server = TestServer::start_with(|c| c.revoke_time_limit_secs = 120).await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", JSON).await;
    server.register(&admin, &["carol", "dave"]).await;
    let (a, b, c) = (
        rest_token(&server, &admin, "alice").await,
        rest_token(&server, &admin, "bob").await,
        rest_token(&server, &admin, "carol").await,
    );
    chat(&mut alice, "bob", &["one", "two"]).await;
    let revoke = |user: &str, conv: &str, seq: i64| json!({"userID": user, "conversationID": conv, "seq": seq});

    // Only the sender revokes in a 1:1 chat; outsiders cannot even see it.
    assert_eq!(code(&server, "/msg/revoke_msg", &b, revoke("bob", "si_alice_bob", 1)).await, 1002);
    assert_eq!(code(&server, "/msg/revoke_msg", &c, revoke("carol", "si_alice_bob", 1)).await, 1004);
    assert_eq!(code(&server, "/msg/revoke_msg", &c, revoke("alice", "si_alice_bob", 1)).await, 1002);
    assert_eq!(code(&server, "/msg/revoke_msg", &a, revoke("alice", "si_alice_bob", 9)).await, 1004);
    assert_eq!(code(&server, "/msg/revoke_msg", &a, revoke("alice", "si_alice_bob", 0)).await, 1001);

    server.call("/msg/revoke_msg", &a, revoke("alice", "si_alice_bob", 1)).await;
    // Both sides get a stored 2101 in the conversation's notification twin.
    for device in [&mut alice, &mut bob] {
        let n = device.next_of_type(2101).await;
        assert_eq!((n.conversation.as_str(), n.is_notification), ("n_alice_bob", true));
        assert!(n.msg.seq > 0, "stored, so an offline device pulls it");
        assert_eq!(n.tips["revokerUserID"], "alice");
        assert_eq!(n.tips["clientMsgID"], "alice-one");
        assert_eq!((n.tips["seq"].as_i64(), n.tips["sesstionType"].as_i64()), (Some(1), Some(1)));
        assert_eq!(n.tips["conversationID"], "si_alice_bob");
    }
    // Pulls show the message revoked, to both; the other message is untouched.
    for (token, user) in [(&a, "alice"), (&b, "bob")] {
        let msgs = pull(&server, token, user, "si_alice_bob", 1, 2).await;
        assert_eq!(msgs[0]["contentType"], 2101);
        let detail: Value = serde_json::from_str(
            serde_json::from_slice::<Value>(&base64_decode(msgs[0]["content"].as_str().unwrap())).unwrap()["detail"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (detail["revokerID"].as_str(), detail["clientMsgID"].as_str(), detail["sourceMessageSendID"].as_str()),
            (Some("alice"), Some("alice-one"), Some("alice"))
        );
        assert_eq!(detail["revokerNickname"], "ALICE");
        assert_eq!(msgs[1]["contentType"], 101);
    }
    let revoked = pull(&server, &b, "bob", "n_alice_bob", 1, 1).await;
    assert_eq!(revoked[0]["contentType"], 2101, "bob can pull the stored notification");
    assert_eq!(code(&server, "/msg/revoke_msg", &a, revoke("alice", "si_alice_bob", 1)).await, 1404);

    // Until when: a message sent long ago (an admin import with an old send time) is past the limit.
    let old = json!({"sendID": "alice", "recvID": "dave", "sessionType": 1, "contentType": 101,
                     "content": {"content": "old"}, "sendTime": 1_000_000_000_000_i64});
    server.call("/msg/send_msg", &admin, old).await;
    assert_eq!(code(&server, "/msg/revoke_msg", &a, revoke("alice", "si_alice_dave", 1)).await, 1002);
    server.call("/msg/revoke_msg", &admin, revoke("alice", "si_alice_dave", 1)).await;

    // Groups: the owner revokes anything, an admin an ordinary member's, a member only its own.
    let created = server
        .call(
            "/group/create_group",
            &a,
            json!({"memberUserIDs": ["bob"], "adminUserIDs": ["carol"], "ownerUserID": "alice", "groupInfo": {"groupName": "g"}}),
        )
        .await;
    let gid = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
    let conv = format!("sg_{gid}");
    let mut carol = device(&server, &admin, "carol", platform::WEB).await;
    for (sender, id) in [("alice", "g1"), ("bob", "g2"), ("carol", "g3"), ("bob", "g4")] {
        let body =
            json!({"sendID": sender, "groupID": gid, "sessionType": 3, "contentType": 101, "content": {"content": id}});
        server.call("/msg/send_msg", &admin, body).await;
    }
    // Seq 1 is the creation's tip in the chat; the messages are 2 (alice), 3 (bob), 4 (carol), 5 (bob).
    assert_eq!(code(&server, "/msg/revoke_msg", &b, revoke("bob", &conv, 2)).await, 1002, "a member, the owner's");
    assert_eq!(code(&server, "/msg/revoke_msg", &b, revoke("bob", &conv, 4)).await, 1002, "a member, an admin's");
    assert_eq!(code(&server, "/msg/revoke_msg", &c, revoke("carol", &conv, 2)).await, 1002, "an admin, the owner's");
    server.call("/msg/revoke_msg", &c, revoke("carol", &conv, 3)).await;
    server.call("/msg/revoke_msg", &b, revoke("bob", &conv, 5)).await;
    server.call("/msg/revoke_msg", &a, revoke("alice", &conv, 4)).await;
    let n = carol.next_of_type(2101).await;
    assert_eq!((n.conversation, n.tips["seq"].as_i64()), (format!("n_{gid}"), Some(3)));
    let msgs = pull(&server, &b, "bob", &conv, 2, 5).await;
    assert_eq!(
        msgs.iter().map(|m| m["contentType"].as_i64().unwrap()).collect::<Vec<_>>(),
        vec![101, 2101, 2101, 2101]
    );
    let d = rest_token(&server, &admin, "dave").await;
    assert_eq!(code(&server, "/msg/revoke_msg", &d, revoke("dave", &conv, 2)).await, 1004, "not a member");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test]
async fn deletes_are_per_user_unless_for_everyone() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut alice_phone = device(&server, &admin, "alice", platform::IOS).await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    server.register(&admin, &["carol"]).await;
    let (a, b, c) = (
        rest_token(&server, &admin, "alice").await,
        rest_token(&server, &admin, "bob").await,
        rest_token(&server, &admin, "carol").await,
    );
    chat(&mut alice, "bob", &["one", "two"]).await;
    chat(&mut bob, "alice", &["three"]).await;
    let del = |seqs: Value, opt: Value| json!({"userID": "alice", "conversationID": "si_alice_bob", "seqs": seqs, "deleteSyncOpt": opt});

    // For Alice only; her other devices are told when she asks (2102, stored in her own notifications).
    server.call("/msg/delete_msgs", &a, del(json!([2]), json!({"IsSyncSelf": true}))).await;
    let n = alice_phone.next_of_type(2102).await;
    assert_eq!((n.conversation.as_str(), n.tips["seqs"].clone()), ("n_alice_alice", json!([2])));
    assert!(n.msg.seq > 0);
    let mine = pull(&server, &a, "alice", "si_alice_bob", 1, 3).await;
    assert_eq!(seqs_and_status(&mine), vec![(1, 101, 2), (2, 101, 4), (3, 101, 2)]);
    assert_eq!(mine[1]["content"], "", "a deleted message is empty");
    let theirs = pull(&server, &b, "bob", "si_alice_bob", 1, 3).await;
    assert_eq!(seqs_and_status(&theirs), vec![(1, 101, 2), (2, 101, 2), (3, 101, 2)], "bob still has it");
    // Bob was not told: his next push is a later message.
    marker(&server, &admin, "carol", "bob", "after the delete").await;
    none_before(&mut bob, push_of_type(2102), "after the delete").await;

    // Bad input and other people's messages.
    assert_eq!(code(&server, "/msg/delete_msgs", &a, del(json!([]), Value::Null)).await, 1001);
    assert_eq!(code(&server, "/msg/delete_msgs", &a, del(json!([9]), Value::Null)).await, 1001);
    assert_eq!(code(&server, "/msg/delete_msgs", &b, del(json!([1]), Value::Null)).await, 1002);
    let carols = json!({"userID": "carol", "conversationID": "si_alice_bob", "seqs": [1]});
    assert_eq!(code(&server, "/msg/delete_msgs", &c, carols).await, 1004);

    // For everyone: only one's own messages in a 1:1 chat; then both sides see it deleted and Bob is told.
    assert_eq!(code(&server, "/msg/delete_msgs", &a, del(json!([3]), json!({"IsSyncOther": true}))).await, 1002);
    server.call("/msg/delete_msgs", &a, del(json!([1]), json!({"IsSyncOther": true}))).await;
    let n = bob.next_of_type(2102).await;
    assert_eq!((n.conversation.as_str(), n.tips["seqs"].clone()), ("n_alice_bob", json!([1])));
    let theirs = pull(&server, &b, "bob", "si_alice_bob", 1, 3).await;
    assert_eq!(seqs_and_status(&theirs), vec![(1, 101, 4), (2, 101, 2), (3, 101, 2)]);
}

#[tokio::test]
async fn clearing_moves_the_users_start_and_keeps_others_history() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut alice_phone = device(&server, &admin, "alice", platform::IOS).await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    server.register(&admin, &["carol"]).await;
    let (a, b, c) = (
        rest_token(&server, &admin, "alice").await,
        rest_token(&server, &admin, "bob").await,
        rest_token(&server, &admin, "carol").await,
    );
    chat(&mut bob, "alice", &["one", "two", "three"]).await;
    chat(&mut alice, "carol", &["hey"]).await;

    server
        .call(
            "/msg/clear_conversation_msg",
            &a,
            json!({"userID": "alice", "conversationIDs": ["si_alice_bob"], "deleteSyncOpt": {"IsSyncSelf": true}}),
        )
        .await;
    // Her other device re-syncs the conversation (1300) and clears its copy (1703).
    let n = alice_phone.next_of_type(1300).await;
    assert_eq!(n.tips["conversationIDList"], json!(["si_alice_bob"]));
    let n = alice_phone.next_of_type(1703).await;
    assert_eq!(n.tips["conversationIDs"], json!(["si_alice_bob"]));
    // Her start is past the history, nothing is unread, and pulls return nothing before it.
    let seqs = alice.newest_seqs().await;
    assert_eq!((seqs.max_seqs["si_alice_bob"], seqs.min_seqs["si_alice_bob"]), (3, 4));
    assert_eq!(alice.has_read_and_max().await.seqs["si_alice_bob"].has_read_seq, 3);
    assert!(pull(&server, &a, "alice", "si_alice_bob", 1, 3).await.is_empty());
    let row = server
        .call(
            "/conversation/get_conversations",
            &a,
            json!({"ownerUserID": "alice", "conversationIDs": ["si_alice_bob"]}),
        )
        .await;
    assert_eq!(row["conversations"][0]["minSeq"], 4);
    // A new message after the clear is all she pulls; Bob keeps everything.
    chat(&mut bob, "alice", &["four"]).await;
    let mine = pull(&server, &a, "alice", "si_alice_bob", 1, 4).await;
    assert_eq!(seqs_and_status(&mine), vec![(4, 101, 2)]);
    assert_eq!(pull(&server, &b, "bob", "si_alice_bob", 1, 4).await.len(), 4);
    // Only one's own conversations.
    let theirs = json!({"userID": "carol", "conversationIDs": ["si_alice_bob"]});
    assert_eq!(code(&server, "/msg/clear_conversation_msg", &c, theirs).await, 1004);
    assert_eq!(
        code(
            &server,
            "/msg/clear_conversation_msg",
            &b,
            json!({"userID": "alice", "conversationIDs": ["si_alice_bob"]})
        )
        .await,
        1002
    );
    assert_eq!(code(&server, "/msg/user_clear_all_msg", &b, json!({"userID": "alice"})).await, 1002);

    // Clear all: every conversation of the user.
    server.call("/msg/user_clear_all_msg", &a, json!({"userID": "alice"})).await;
    let seqs = alice.newest_seqs().await;
    assert_eq!((seqs.min_seqs["si_alice_bob"], seqs.min_seqs["si_alice_carol"]), (5, 2));
    assert_eq!(pull(&server, &c, "carol", "si_alice_carol", 1, 1).await.len(), 1, "carol keeps hers");

    // In a group, clearing for everyone is for the owner and admins.
    let created = server
        .call("/group/create_group", &b, json!({"memberUserIDs": ["alice", "carol"], "groupInfo": {"groupName": "g"}}))
        .await;
    let gid = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
    let conv = format!("sg_{gid}");
    let body =
        json!({"sendID": "bob", "groupID": gid, "sessionType": 3, "contentType": 101, "content": {"content": "g"}});
    server.call("/msg/send_msg", &admin, body).await;
    let everyone =
        |user: &str| json!({"userID": user, "conversationIDs": [conv], "deleteSyncOpt": {"IsSyncOther": true}});
    assert_eq!(code(&server, "/msg/clear_conversation_msg", &a, everyone("alice")).await, 1002);
    server.call("/msg/clear_conversation_msg", &b, everyone("bob")).await;
    // (Her first 1703 was the earlier clear, sent to all her own devices.)
    let mut n = alice.next_of_type(1703).await;
    if n.conversation == "n_alice_alice" {
        n = alice.next_of_type(1703).await;
    }
    assert_eq!((n.conversation, n.msg.send_id.as_str()), (format!("n_{gid}"), "bob"));
    assert!(pull(&server, &c, "carol", &conv, 1, 1).await.is_empty(), "cleared for carol too");
}
