//! Incremental sync (protocol §6) over the REST API: a first sync says `full`, a current client gets nothing,
//! and a returning client gets exactly what changed, for friends, joined groups, conversations and members.

mod common;

use common::*;
use palaver_protocol::constant::platform;
use serde_json::{Value, json};

/// `{versionID, version}` of an answer.
fn head(v: &Value) -> (String, u64) {
    (v["versionID"].as_str().unwrap().to_string(), v["version"].as_u64().unwrap())
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = list.as_array().unwrap().iter().map(|x| x[key].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn friends_sync_from_request_to_incremental_answer() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob", "carol"]).await;
    let alice = server.user_token(&admin, "alice", platform::WEB).await;
    let bob = server.user_token(&admin, "bob", platform::WEB).await;

    // First sync: full, and the empty list's ids hash to 0 (equal).
    let first = server
        .call("/friend/get_incremental_friends", &alice, json!({"userID": "alice", "versionID": "", "version": 0}))
        .await;
    assert_eq!(first["full"], true);
    let (vid, v) = head(&first);
    assert_eq!(v, 1, "an empty list starts at version 1");
    let full_ids =
        server.call("/friend/get_full_friend_user_ids", &alice, json!({"userID": "alice", "idHash": 0})).await;
    assert_eq!((full_ids["equal"].as_bool(), full_ids["userIDs"].as_array().map(Vec::len)), (Some(true), Some(0)));
    // Current: nothing to do.
    let same = server
        .call("/friend/get_incremental_friends", &alice, json!({"userID": "alice", "versionID": vid, "version": v}))
        .await;
    assert_eq!((same["full"].as_bool(), same["insert"].as_array().unwrap().len()), (Some(false), 0));

    // Bob asks, Alice accepts.
    server.call("/friend/add_friend", &bob, json!({"fromUserID": "bob", "toUserID": "alice", "reqMsg": "hi"})).await;
    let pending = server
        .call(
            "/friend/get_friend_apply_list",
            &alice,
            json!({"userID": "alice", "pagination": {"pageNumber": 1, "showNumber": 10}}),
        )
        .await;
    assert_eq!(pending["FriendRequests"][0]["fromUserID"], "bob");
    assert_eq!(pending["FriendRequests"][0]["fromNickname"], "BOB");
    let count = server.call("/friend/get_self_unhandled_apply_count", &alice, json!({"userID": "alice"})).await;
    assert_eq!(count["count"], 1);
    server
        .call(
            "/friend/add_friend_response",
            &alice,
            json!({"fromUserID": "bob", "toUserID": "alice", "handleResult": 1}),
        )
        .await;
    let again = server
        .post(
            "/friend/add_friend_response",
            Some(&alice),
            json!({"fromUserID": "bob", "toUserID": "alice", "handleResult": 1}),
        )
        .await;
    assert_eq!(again["errCode"], 1305, "a request is answered once");

    // Alice's returning device: exactly Bob inserted, one version later.
    let delta = server
        .call("/friend/get_incremental_friends", &alice, json!({"userID": "alice", "versionID": vid, "version": v}))
        .await;
    assert_eq!(delta["full"], false);
    assert_eq!(delta["version"].as_u64(), Some(v + 1));
    assert_eq!(delta["insert"][0]["friendUser"]["userID"], "bob");
    assert_eq!(delta["insert"][0]["friendUser"]["nickname"], "BOB");
    assert_eq!(delta["delete"], json!([]));
    let list = server
        .call(
            "/friend/get_friend_list",
            &bob,
            json!({"userID": "bob", "pagination": {"pageNumber": 1, "showNumber": 100}}),
        )
        .await;
    assert_eq!(ids(&list["friendsInfo"], "ownerUserID"), vec!["bob"]);
    assert_eq!(list["friendsInfo"][0]["friendUser"]["userID"], "alice");
    let is = server.call("/friend/is_friend", &bob, json!({"userID1": "bob", "userID2": "alice"})).await;
    assert_eq!((is["inUser1Friends"].as_bool(), is["inUser2Friends"].as_bool()), (Some(true), Some(true)));

    // A deletion comes through as a delete.
    let (vid, v) = head(&delta);
    server.call("/friend/delete_friend", &alice, json!({"ownerUserID": "alice", "friendUserID": "bob"})).await;
    let delta = server
        .call("/friend/get_incremental_friends", &alice, json!({"userID": "alice", "versionID": vid, "version": v}))
        .await;
    assert_eq!((delta["full"].as_bool(), delta["delete"].clone()), (Some(false), json!(["bob"])));
    // An unknown versionID or a version from the future means: re-list.
    let stale = server
        .call("/friend/get_incremental_friends", &alice, json!({"userID": "alice", "versionID": "other", "version": 2}))
        .await;
    assert_eq!(stale["full"], true);
    let ahead = server
        .call("/friend/get_incremental_friends", &alice, json!({"userID": "alice", "versionID": vid, "version": 99}))
        .await;
    assert_eq!(ahead["full"], true);
    // Nobody reads someone else's list.
    let other = server
        .post("/friend/get_incremental_friends", Some(&bob), json!({"userID": "alice", "versionID": "", "version": 0}))
        .await;
    assert_eq!(other["errCode"], 1002);
}

#[tokio::test]
async fn blacklist_blocks_messages_and_friend_requests() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    server.register(&admin, &["alice"]).await;
    let alice = server.user_token(&admin, "alice", platform::WEB).await;
    server.call("/friend/add_black", &alice, json!({"ownerUserID": "alice", "blackUserID": "bob"})).await;
    let blacks = server
        .call(
            "/friend/get_black_list",
            &alice,
            json!({"userID": "alice", "pagination": {"pageNumber": 1, "showNumber": 20}}),
        )
        .await;
    assert_eq!(blacks["blacks"][0]["blackUserInfo"]["userID"], "bob");
    assert_eq!(blacks["total"], 1);

    let refused = bob.send_text_msg(text_msg("bob", "alice", "b1", "let me talk")).await;
    assert_eq!(refused.err_code, 1302);
    assert!(bob.newest_seqs().await.max_seqs.is_empty(), "nothing stored");
    let bob_rest = server.user_token(&admin, "bob", platform::IOS).await;
    let apply =
        server.post("/friend/add_friend", Some(&bob_rest), json!({"fromUserID": "bob", "toUserID": "alice"})).await;
    assert_eq!(apply["errCode"], 1302);

    server.call("/friend/remove_black", &alice, json!({"ownerUserID": "alice", "blackUserID": "bob"})).await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "alice", "b2", "thanks")).await.err_code, 0);
}

#[tokio::test]
async fn conversations_and_joined_groups_sync_incrementally() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice_ws = server.connect_new(&admin, "alice", GOB_GZIP).await;
    server.register(&admin, &["bob", "carol"]).await;
    let bob = server.user_token(&admin, "bob", platform::WEB).await;
    let sync = |user: &'static str, token: String, route: &'static str, vid: String, v: u64| {
        let server = &server;
        async move { server.call(route, &token, json!({"userID": user, "versionID": vid, "version": v})).await }
    };

    // Bob's first login: empty lists, full.
    let conv0 = sync("bob", bob.clone(), "/conversation/get_incremental_conversations", String::new(), 0).await;
    let groups0 = sync("bob", bob.clone(), "/group/get_incremental_join_groups", String::new(), 0).await;
    assert_eq!((conv0["full"].as_bool(), groups0["full"].as_bool()), (Some(true), Some(true)));
    let ((cvid, cv), (gvid, gv)) = (head(&conv0), head(&groups0));

    // While Bob is away: Alice messages him, and creates a group with him.
    assert_eq!(alice_ws.send_text_msg(text_msg("alice", "bob", "x1", "hi")).await.err_code, 0);
    let alice = server.user_token(&admin, "alice", platform::IOS).await;
    let created = server
        .call("/group/create_group", &alice, json!({"memberUserIDs": ["bob"], "groupInfo": {"groupName": "g"}}))
        .await;
    let gid = created["groupInfo"]["groupID"].as_str().unwrap().to_string();

    // Bob's returning device gets exactly those changes.
    let conv = sync("bob", bob.clone(), "/conversation/get_incremental_conversations", cvid, cv).await;
    assert_eq!(conv["full"], false);
    assert_eq!(ids(&conv["insert"], "conversationID"), vec!["sg_".to_string() + &gid, "si_alice_bob".to_string()]);
    assert_eq!(conv["version"].as_u64(), Some(cv + 2), "one version per change");
    let groups = sync("bob", bob.clone(), "/group/get_incremental_join_groups", gvid, gv).await;
    assert_eq!(groups["full"], false);
    assert_eq!(groups["insert"][0]["groupID"], gid.as_str());
    assert_eq!(groups["insert"][0]["memberCount"], 2);

    // The full listings agree.
    let owner = server
        .call(
            "/conversation/get_owner_conversation",
            &bob,
            json!({"userID": "bob", "pagination": {"pageNumber": 1, "showNumber": 300}}),
        )
        .await;
    assert_eq!(owner["total"], 2);
    let single =
        owner["conversations"].as_array().unwrap().iter().find(|c| c["conversationID"] == "si_alice_bob").unwrap();
    assert_eq!((single["userID"].as_str(), single["conversationType"].as_i64()), (Some("alice"), Some(1)));
    let all_ids =
        server.call("/conversation/get_full_conversation_ids", &bob, json!({"userID": "bob", "idHash": 0})).await;
    assert_eq!(all_ids["conversationIDs"].as_array().unwrap().len(), 2);
    let joined = server
        .call(
            "/group/get_joined_group_list",
            &bob,
            json!({"fromUserID": "bob", "pagination": {"pageNumber": 1, "showNumber": 100}}),
        )
        .await;
    assert_eq!((joined["total"].as_i64(), joined["groups"][0]["groupName"].as_str()), (Some(1), Some("g")));
    let full_groups = server.call("/group/get_full_join_group_ids", &bob, json!({"userID": "bob", "idHash": 0})).await;
    assert_eq!(full_groups["groupIDs"], json!([gid]));

    // Pinning is a conversation update for the user's other devices, and shows in the not-notify list.
    let (cvid, cv) = head(&conv);
    server
        .call(
            "/conversation/set_conversations",
            &bob,
            json!({"userIDs": ["bob"], "conversation": {"conversationID": "si_alice_bob", "isPinned": true, "recvMsgOpt": 2}}),
        )
        .await;
    let conv = sync("bob", bob.clone(), "/conversation/get_incremental_conversations", cvid, cv).await;
    assert_eq!(conv["update"][0]["isPinned"], true);
    let quiet = server.call("/conversation/get_not_notify_conversation_ids", &bob, json!({"userID": "bob"})).await;
    assert_eq!(quiet["conversationIDs"], json!(["si_alice_bob"]));
}

#[tokio::test]
async fn group_members_sync_and_a_late_joiner_sees_history_from_its_join() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice_ws = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut dave_ws = server.connect_new(&admin, "dave", GOB_GZIP).await;
    server.register(&admin, &["bob"]).await;
    let alice = server.user_token(&admin, "alice", platform::IOS).await;
    let created = server
        .call("/group/create_group", &alice, json!({"memberUserIDs": ["bob"], "groupInfo": {"groupName": "g"}}))
        .await;
    let gid = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
    let batch = |vid: String, v: u64| {
        let (server, alice, gid) = (&server, alice.clone(), gid.clone());
        async move {
            server
                .call(
                    "/group/get_incremental_group_members_batch",
                    &alice,
                    json!({"userID": "alice", "reqList": [{"groupID": gid, "versionID": vid, "version": v}, {"groupID": "nope", "versionID": "", "version": 0}]}),
                )
                .await
        }
    };
    let first = batch(String::new(), 0).await;
    assert_eq!(first["respList"][&gid]["full"], true);
    assert_eq!(first["respList"][&gid]["group"]["groupName"], "g");
    assert_eq!(first["respList"]["nope"]["full"], true, "every requested group is answered");
    let (vid, v) = head(&first["respList"][&gid]);
    let members = server
        .call(
            "/group/get_group_member_list",
            &alice,
            json!({"groupID": gid, "pagination": {"pageNumber": 1, "showNumber": 100}, "filter": 0}),
        )
        .await;
    assert_eq!(members["members"][0]["userID"], "alice", "the owner is listed first");
    assert_eq!(members["members"][0]["roleLevel"], 100);

    for i in 0..3 {
        assert_eq!(alice_ws.send_text_msg(group_msg("alice", &gid, &format!("g{i}"), "before dave")).await.err_code, 0);
    }
    server
        .call("/group/invite_user_to_group", &alice, json!({"groupID": gid, "invitedUserIDs": ["dave"], "reason": ""}))
        .await;
    let delta = batch(vid, v).await;
    let mine = &delta["respList"][&gid];
    assert_eq!((mine["full"].as_bool(), mine["insert"][0]["userID"].as_str()), (Some(false), Some("dave")));
    let full = server.call("/group/get_full_group_member_user_ids", &alice, json!({"groupID": gid, "idHash": 0})).await;
    assert_eq!(full["userIDs"].as_array().unwrap().len(), 3);

    // Dave sees the group from his join on: the creation's tip is seq 1 and the messages before him 2..4, so
    // his history starts at 5, the tip of his own invitation; a pull of 1..6 returns 5 and 6 only.
    assert_eq!(alice_ws.send_text_msg(group_msg("alice", &gid, "g3", "welcome")).await.err_code, 0);
    let (_, tip) = dave_ws.next_chat_push().await.expect("the invitation's tip");
    assert_eq!((tip.seq, tip.content_type), (5, 1509));
    let (_, msg) = dave_ws.next_chat_push().await.expect("the new member gets new messages");
    assert_eq!((msg.seq, text_of(&msg).as_str()), (6, "welcome"));
    let conv = format!("sg_{gid}");
    let seqs = dave_ws.newest_seqs().await;
    assert_eq!((seqs.max_seqs[&conv], seqs.min_seqs[&conv]), (6, 5));
    let pulled = dave_ws.pull_range(&conv, 1, 6, 10).await;
    let pulled: palaver_protocol::pb::sdkws::PullMessageBySeqsResp = prost::Message::decode(&pulled.data[..]).unwrap();
    assert_eq!(pulled.msgs[&conv].msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![5, 6]);
    // Outsiders cannot read the member list.
    server.register(&admin, &["eve"]).await;
    let eve = server.user_token(&admin, "eve", platform::WEB).await;
    let refused = server
        .post(
            "/group/get_group_member_list",
            Some(&eve),
            json!({"groupID": gid, "pagination": {"pageNumber": 1, "showNumber": 10}}),
        )
        .await;
    assert_eq!(refused["errCode"], 1203);
}

#[tokio::test]
async fn mark_read_reaches_the_users_other_devices() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let web = server.user_token(&admin, "alice", platform::WEB).await;
    let ios = server.user_token(&admin, "alice", platform::IOS).await;
    let mut other_device = Client::connect(server.ws, "alice", &ios, platform::IOS, GOB_GZIP).await.unwrap();
    let bob = server.user_token(&admin, "bob", platform::WEB).await;
    let mut bob_ws = Client::connect(server.ws, "bob", &bob, platform::WEB, JSON).await.unwrap();
    assert_eq!(bob_ws.send_text_msg(text_msg("bob", "alice", "m1", "unread")).await.err_code, 0);
    assert_eq!(other_device.next_push().await.unwrap().1.seq, 1);

    server
        .call(
            "/msg/mark_conversation_as_read",
            &web,
            json!({"conversationID": "si_alice_bob", "userID": "alice", "hasReadSeq": 1, "seqs": [1]}),
        )
        .await;
    let (conv, receipt) = other_device.next_push().await.expect("a read receipt");
    assert_eq!((conv.as_str(), receipt.content_type, receipt.seq), ("n_alice_bob", 2200, 0));
    let detail: Value = serde_json::from_slice(&receipt.content).unwrap();
    let tips: Value = serde_json::from_str(detail["detail"].as_str().unwrap()).unwrap();
    assert_eq!((tips["markAsReadUserID"].as_str(), tips["hasReadSeq"].as_i64()), (Some("alice"), Some(1)));
    // The peer learns its message was read (after the push of its own message).
    assert_eq!(bob_ws.next_push().await.unwrap().1.client_msg_id, "m1");
    let (_, peer_receipt) = bob_ws.next_push().await.unwrap();
    assert_eq!(peer_receipt.content_type, 2200);
}

#[tokio::test]
async fn jssdk_routes_answer_in_protobuf_and_json() {
    use palaver_protocol::pb::jssdk;
    use prost::Message as _;
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice_ws = server.connect_new(&admin, "alice", GOB_GZIP).await;
    server.register(&admin, &["bob"]).await;
    assert_eq!(alice_ws.send_text_msg(text_msg("alice", "bob", "j1", "one")).await.err_code, 0);
    assert_eq!(alice_ws.send_text_msg(text_msg("alice", "bob", "j2", "two")).await.err_code, 0);
    let bob = server.user_token(&admin, "bob", platform::WEB).await;

    let json_answer =
        server.call("/jssdk/get_active_conversations", &bob, json!({"ownerUserID": "bob", "count": 10})).await;
    assert_eq!(json_answer["unreadCount"], 2);
    assert_eq!(json_answer["conversations"][0]["lastMsg"]["clientMsgID"], "j2");
    assert_eq!(json_answer["conversations"][0]["user"]["userID"], "alice");

    // Protobuf mode: a protobuf body in, the base64 of a protobuf answer as `data`.
    let body =
        jssdk::GetConversationsReq { owner_user_id: "bob".into(), conversation_ids: vec!["si_alice_bob".into()] }
            .encode_to_vec();
    let head = format!(
        "POST /jssdk/get_conversations HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\noperationID: op\r\ntoken: {bob}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&body);
    let (status, text) = http_raw(server.api, &raw).await.unwrap();
    assert_eq!(status, 200);
    let envelope: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["errCode"], 0);
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(envelope["data"].as_str().unwrap()).unwrap();
    let answer = jssdk::GetConversationsResp::decode(&bytes[..]).unwrap();
    assert_eq!(answer.unread_count, 2);
    assert_eq!(answer.conversations[0].max_seq, 2);
    assert_eq!(answer.conversations[0].last_msg.as_ref().unwrap().client_msg_id, "j2");
}
