//! Friends, blacklists, users, presence and the app routes, over real sockets: each route's semantics as
//! OpenIM has them, the notification (content type and payload) every affected device gets, and who may do
//! what.

mod common;

use common::*;
use palaver_protocol::{
    constant::{platform, req},
    pb::{msg as pbmsg, push, sdkws},
};
use prost::Message as _;
use serde_json::{Value, json};

fn page() -> Value {
    json!({"pageNumber": 1, "showNumber": 100})
}

#[tokio::test]
async fn friend_requests_notify_both_sides_and_acceptance_makes_friends() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut alice_phone = device(&server, &admin, "alice", platform::IOS).await;
    let mut bob = server.connect_new(&admin, "bob", JSON).await;
    let mut carol = server.connect_new(&admin, "carol", GOB_GZIP).await;
    let (a, b, c) = (
        rest_token(&server, &admin, "alice").await,
        rest_token(&server, &admin, "bob").await,
        rest_token(&server, &admin, "carol").await,
    );
    let friends0 = server
        .call("/friend/get_incremental_friends", &b, json!({"userID": "bob", "versionID": "", "version": 0}))
        .await;

    // Bob asks: every device of both users hears of it (1203), with the request and both names.
    server.call("/friend/add_friend", &b, json!({"fromUserID": "bob", "toUserID": "alice", "reqMsg": "hi!"})).await;
    for device in [&mut alice, &mut alice_phone, &mut bob] {
        let n = device.next_of_type(1203).await;
        assert!(n.is_notification);
        assert_eq!(n.conversation, "n_alice_bob");
        assert_eq!((n.msg.msg_from, n.msg.seq), (200, 0), "a friend notification is only pushed");
        assert_eq!(n.tips["fromToUserID"], json!({"fromUserID": "bob", "toUserID": "alice"}));
        assert_eq!(n.tips["request"]["reqMsg"], "hi!");
        assert_eq!(n.tips["request"]["fromNickname"], "BOB");
        assert_eq!(n.tips["request"]["toNickname"], "ALICE");
        assert_eq!(n.tips["request"]["handleResult"], 0);
    }
    let count = server.call("/friend/get_self_unhandled_apply_count", &a, json!({"userID": "alice"})).await;
    assert_eq!(count["count"], 1);
    let later = server
        .call("/friend/get_self_unhandled_apply_count", &a, json!({"userID": "alice", "time": now_ms() + 60_000}))
        .await;
    assert_eq!(later["count"], 0, "only requests created after `time` count");

    // Alice accepts: Bob hears of it (1201, the request answered), and both get the "now friends" tip as a
    // message of their 1:1 conversation (upstream's isSendMsg).
    server
        .call(
            "/friend/add_friend_response",
            &a,
            json!({"fromUserID": "bob", "toUserID": "alice", "handleResult": 1, "handleMsg": "sure"}),
        )
        .await;
    let approved = bob.next_of_type(1201).await;
    let (tip, note) = if approved.is_notification {
        (bob.next_of_type(1201).await, approved)
    } else {
        let note = bob.next_of_type(1201).await;
        (approved, note)
    };
    assert!(note.is_notification && !tip.is_notification);
    assert_eq!(note.tips["handleMsg"], "sure");
    assert_eq!(note.tips["request"]["handleResult"], 1);
    assert_eq!(note.tips["fromToUserID"], json!({"fromUserID": "bob", "toUserID": "alice"}));
    assert_eq!(note.msg.send_id, "alice", "from the one who answered");
    assert_eq!((tip.conversation.as_str(), tip.msg.seq, tip.msg.msg_from), ("si_alice_bob", 1, 200));
    let alice_tip = alice_phone.next_of_type(1201).await;
    assert_eq!(alice_tip.conversation, "si_alice_bob");
    // Bob's friend list moved on by exactly Alice, and they are friends both ways.
    let delta = server
        .call(
            "/friend/get_incremental_friends",
            &b,
            json!({"userID": "bob", "versionID": friends0["versionID"], "version": friends0["version"]}),
        )
        .await;
    assert_eq!(delta["full"], false);
    assert_eq!(delta["insert"][0]["friendUser"]["userID"], "alice");
    assert_eq!(delta["insert"][0]["addSource"], 2, "by request");
    assert_eq!(note.tips["friendVersion"], delta["version"], "the notification carries the new version");
    let is = server.call("/friend/is_friend", &b, json!({"userID1": "bob", "userID2": "alice"})).await;
    assert_eq!((is["inUser1Friends"].as_bool(), is["inUser2Friends"].as_bool()), (Some(true), Some(true)));

    // Carol asks, Alice refuses: Carol hears of it (1202), and nothing else changes.
    server.call("/friend/add_friend", &c, json!({"fromUserID": "carol", "toUserID": "alice"})).await;
    carol.next_of_type(1203).await;
    server
        .call(
            "/friend/add_friend_response",
            &a,
            json!({"fromUserID": "carol", "toUserID": "alice", "handleResult": -1, "handleMsg": "no"}),
        )
        .await;
    let refused = carol.next_of_type(1202).await;
    assert_eq!(
        (refused.tips["handleMsg"].as_str(), refused.tips["request"]["handleResult"].as_i64()),
        (Some("no"), Some(-1))
    );
    let is = server.call("/friend/is_friend", &c, json!({"userID1": "carol", "userID2": "alice"})).await;
    assert_eq!(is["inUser1Friends"], false);
    assert_eq!(
        code(
            &server,
            "/friend/add_friend_response",
            &a,
            json!({"fromUserID": "carol", "toUserID": "alice", "handleResult": 1})
        )
        .await,
        1305,
        "a request is answered once"
    );

    // The application lists, filtered by result, with matching totals.
    let pending = server
        .call(
            "/friend/get_friend_apply_list",
            &a,
            json!({"userID": "alice", "pagination": page(), "handleResults": [-1]}),
        )
        .await;
    assert_eq!(pending["total"], 1);
    assert_eq!(pending["FriendRequests"][0]["fromUserID"], "carol");
    let mine =
        server.call("/friend/get_self_friend_apply_list", &b, json!({"userID": "bob", "pagination": page()})).await;
    assert_eq!((mine["total"].as_i64(), mine["friendRequests"][0]["handleResult"].as_i64()), (Some(1), Some(1)));
    assert_eq!(
        code(
            &server,
            "/friend/get_friend_apply_list",
            &a,
            json!({"userID": "alice", "pagination": page(), "handleResults": [7]})
        )
        .await,
        1001
    );
    // Both directions between two users; only they may ask.
    server.call("/friend/add_friend", &a, json!({"fromUserID": "alice", "toUserID": "carol"})).await;
    let both = server
        .call("/friend/get_designated_friend_apply", &c, json!({"fromUserID": "carol", "toUserID": "alice"}))
        .await;
    let mut pairs: Vec<String> = both["friendRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}>{}", r["fromUserID"].as_str().unwrap(), r["toUserID"].as_str().unwrap()))
        .collect();
    pairs.sort();
    assert_eq!(pairs, ["alice>carol", "carol>alice"]);
    assert_eq!(
        code(&server, "/friend/get_designated_friend_apply", &b, json!({"fromUserID": "carol", "toUserID": "alice"}))
            .await,
        1002
    );
    // Nobody asks or answers for someone else.
    assert_eq!(code(&server, "/friend/add_friend", &c, json!({"fromUserID": "bob", "toUserID": "carol"})).await, 1002);
    assert_eq!(
        code(
            &server,
            "/friend/add_friend_response",
            &b,
            json!({"fromUserID": "alice", "toUserID": "carol", "handleResult": 1})
        )
        .await,
        1002
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn friend_changes_reach_the_owners_devices_with_versions() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut alice_phone = device(&server, &admin, "alice", platform::IOS).await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    server.register(&admin, &["carol"]).await;
    let (a, b) = (rest_token(&server, &admin, "alice").await, rest_token(&server, &admin, "bob").await);

    // An admin import makes friends at once; both sides hear of it (1204) and re-sync.
    server
        .call("/friend/import_friend", &admin, json!({"ownerUserID": "alice", "friendUserIDs": ["bob", "carol"]}))
        .await;
    for device in [&mut alice, &mut bob] {
        let n = device.next_of_type(1204).await;
        assert_eq!(n.tips["friend"]["ownerUserID"], "alice");
        assert_eq!(n.tips["opUser"]["userID"], "imAdmin");
    }
    let head = server
        .call("/friend/get_incremental_friends", &a, json!({"userID": "alice", "versionID": "", "version": 0}))
        .await;

    // Update friends: pin, remark and ex, to the owner's devices only (1210) with the new version.
    server
        .call(
            "/friend/update_friends",
            &a,
            json!({"ownerUserID": "alice", "friendUserIDs": ["bob"], "isPinned": true, "remark": "Bobby", "ex": "x1"}),
        )
        .await;
    let n = alice_phone.next_of_type(1210).await;
    assert_eq!(n.conversation, "n_alice_alice");
    assert_eq!(n.tips["friendIDs"], json!(["bob"]));
    assert_eq!(n.tips["friendVersion"].as_i64(), Some(head["version"].as_i64().unwrap() + 1));
    let delta = server
        .call(
            "/friend/get_incremental_friends",
            &a,
            json!({"userID": "alice", "versionID": head["versionID"], "version": head["version"]}),
        )
        .await;
    let updated = &delta["update"][0];
    assert_eq!(
        (
            updated["friendUser"]["userID"].as_str(),
            updated["isPinned"].as_bool(),
            updated["remark"].as_str(),
            updated["ex"].as_str()
        ),
        (Some("bob"), Some(true), Some("Bobby"), Some("x1"))
    );
    // `null` leaves a field as it is.
    server
        .call(
            "/friend/update_friends",
            &a,
            json!({"ownerUserID": "alice", "friendUserIDs": ["bob"], "isPinned": false, "remark": null}),
        )
        .await;
    let row = server
        .call("/friend/get_designated_friends", &a, json!({"ownerUserID": "alice", "friendUserIDs": ["bob"]}))
        .await;
    assert_eq!(
        (row["friendsInfo"][0]["isPinned"].as_bool(), row["friendsInfo"][0]["remark"].as_str()),
        (Some(false), Some("Bobby"))
    );
    // Bad input and someone else's friends.
    for (body, want) in [
        (json!({"ownerUserID": "alice", "friendUserIDs": [], "isPinned": true}), 1001),
        (json!({"ownerUserID": "alice", "friendUserIDs": ["bob", "bob"], "isPinned": true}), 1001),
        (json!({"ownerUserID": "alice", "friendUserIDs": ["nobody"], "isPinned": true}), 1004),
        (json!({"ownerUserID": "alice", "friendUserIDs": ["bob"], "remark": "x".repeat(5000)}), 1001),
    ] {
        assert_eq!(code(&server, "/friend/update_friends", &a, body).await, want);
    }
    assert_eq!(
        code(
            &server,
            "/friend/update_friends",
            &b,
            json!({"ownerUserID": "alice", "friendUserIDs": ["bob"], "isPinned": true})
        )
        .await,
        1002
    );

    // A remark (1206), from the owner about the friend, with the version.
    server
        .call("/friend/set_friend_remark", &a, json!({"ownerUserID": "alice", "friendUserID": "carol", "remark": "C"}))
        .await;
    let n = alice_phone.next_of_type(1206).await;
    assert_eq!(n.tips["fromToUserID"], json!({"fromUserID": "alice", "toUserID": "carol"}));
    assert!(n.tips["friendVersion"].as_u64().unwrap() > head["version"].as_u64().unwrap());

    // Bob changes his name: his devices re-read his profile (1303); Alice, who has him as a friend, hears of
    // it (1209) and her friend list has him as updated.
    let before = server
        .call("/friend/get_incremental_friends", &a, json!({"userID": "alice", "versionID": "", "version": 0}))
        .await;
    server.call("/user/update_user_info_ex", &b, json!({"userInfo": {"userID": "bob", "nickname": "Robert"}})).await;
    let own = bob.next_of_type(1303).await;
    assert_eq!((own.conversation.as_str(), own.tips["userID"].as_str()), ("n_bob_bob", Some("bob")));
    let n = alice.next_of_type(1209).await;
    assert_eq!(n.tips["userID"], "bob");
    let delta = server
        .call(
            "/friend/get_incremental_friends",
            &a,
            json!({"userID": "alice", "versionID": before["versionID"], "version": before["version"]}),
        )
        .await;
    assert_eq!(delta["update"][0]["friendUser"]["nickname"], "Robert");
    // Only `ex` changed: no friend is told.
    server.call("/user/update_user_info_ex", &b, json!({"userInfo": {"userID": "bob", "ex": "e"}})).await;
    bob.next_of_type(1303).await;
    marker(&server, &admin, "carol", "alice", "after ex").await;
    none_before(&mut alice, push_of_type(1209), "after ex").await;

    // Delete (one way): the owner's devices re-sync (1205); the friend keeps its row.
    server.call("/friend/delete_friend", &a, json!({"ownerUserID": "alice", "friendUserID": "bob"})).await;
    let n = alice_phone.next_of_type(1205).await;
    assert_eq!(n.tips["fromToUserID"], json!({"fromUserID": "alice", "toUserID": "bob"}));
    let is = server.call("/friend/is_friend", &b, json!({"userID1": "bob", "userID2": "alice"})).await;
    assert_eq!((is["inUser1Friends"].as_bool(), is["inUser2Friends"].as_bool()), (Some(true), Some(false)));
    assert_eq!(
        code(&server, "/friend/delete_friend", &a, json!({"ownerUserID": "alice", "friendUserID": "bob"})).await,
        1303
    );
    assert_eq!(
        code(&server, "/friend/delete_friend", &b, json!({"ownerUserID": "alice", "friendUserID": "carol"})).await,
        1002
    );
    let ids = server.call("/friend/get_friend_id", &a, json!({"userID": "alice"})).await;
    assert_eq!(ids["friendIDs"], json!(["carol"]));
}

#[tokio::test]
async fn blacklist_tells_only_the_owner_and_blocks_sends() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", JSON).await;
    server.register(&admin, &["carol"]).await;
    let (a, b) = (rest_token(&server, &admin, "alice").await, rest_token(&server, &admin, "bob").await);

    server.call("/friend/add_black", &a, json!({"ownerUserID": "alice", "blackUserID": "bob", "ex": "spam"})).await;
    let n = alice.next_of_type(1207).await;
    assert_eq!(n.tips["fromToUserID"], json!({"fromUserID": "alice", "toUserID": "bob"}));
    // Bob is not told he was blocked: the next thing he gets is a later message.
    marker(&server, &admin, "carol", "bob", "after the block").await;
    none_before(&mut bob, push_of_type(1207), "after the block").await;

    // A blocked sender gets 1302, and nothing is stored.
    let refused = bob.send_text_msg(text_msg("bob", "alice", "blocked-1", "hello?")).await;
    assert_eq!(refused.err_code, 1302);
    assert!(alice.newest_seqs().await.max_seqs.keys().all(|k| !k.contains("alice_bob")), "nothing stored");

    let specified = server
        .call("/friend/get_specified_blacks", &a, json!({"ownerUserID": "alice", "userIDList": ["carol", "bob"]}))
        .await;
    assert_eq!(specified["total"], 1);
    assert_eq!(specified["blacks"][0]["blackUserInfo"]["userID"], "bob");
    assert_eq!(specified["blacks"][0]["ex"], "spam");
    for (token, body, want) in [
        (&a, json!({"ownerUserID": "alice", "userIDList": []}), 1001),
        (&a, json!({"ownerUserID": "alice", "userIDList": ["bob", "bob"]}), 1001),
        (&b, json!({"ownerUserID": "alice", "userIDList": ["bob"]}), 1002),
    ] {
        assert_eq!(code(&server, "/friend/get_specified_blacks", token, body).await, want);
    }
    assert_eq!(
        code(&server, "/friend/add_black", &b, json!({"ownerUserID": "alice", "blackUserID": "carol"})).await,
        1002
    );
    assert_eq!(
        code(&server, "/friend/remove_black", &b, json!({"ownerUserID": "alice", "blackUserID": "bob"})).await,
        1002
    );

    // Unblocking from a device: its other devices are told (1208); the device itself, which re-reads its
    // blacklist after the call (and whose SDK would race a notification doing the same), is not.
    let phone_token = server.user_token(&admin, "alice", platform::IOS).await;
    let mut phone = Client::connect(server.ws, "alice", &phone_token, platform::IOS, GOB_GZIP).await.unwrap();
    server.call("/friend/remove_black", &phone_token, json!({"ownerUserID": "alice", "blackUserID": "bob"})).await;
    let n = alice.next_of_type(1208).await;
    assert_eq!(n.tips["fromToUserID"]["toUserID"], "bob");
    marker(&server, &admin, "carol", "alice", "after the unblock").await;
    none_before(&mut phone, push_of_type(1208), "after the unblock").await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "alice", "ok-1", "thanks")).await.err_code, 0);
}

#[tokio::test]
async fn messaging_can_require_friendship() {
    let server = TestServer::start_with(|c| c.messaging_requires_friendship = true).await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    let refused = bob.send_text_msg(text_msg("bob", "alice", "f-1", "hi")).await;
    assert_eq!(refused.err_code, 1303, "{}", refused.err_msg);
    assert!(bob.newest_seqs().await.max_seqs.is_empty(), "nothing stored");
    // Alice has Bob as a friend (one way is what counts: the recipient's list).
    server.call("/friend/import_friend", &admin, json!({"ownerUserID": "alice", "friendUserIDs": ["bob"]})).await;
    let a = rest_token(&server, &admin, "alice").await;
    server.call("/friend/delete_friend", &a, json!({"ownerUserID": "alice", "friendUserID": "bob"})).await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "alice", "f-2", "hi")).await.err_code, 1303);
    assert_eq!(alice.send_text_msg(text_msg("alice", "bob", "f-3", "hi bob")).await.err_code, 0, "bob still has alice");
    // Admins are not bound by it.
    marker(&server, &admin, "imAdmin", "alice", "from the admin").await;
}

#[tokio::test]
async fn receive_options_apply_on_the_send_path() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", GOB_GZIP).await;
    let (a, b) = (rest_token(&server, &admin, "alice").await, rest_token(&server, &admin, "bob").await);

    // Globally "do not receive": refused (as upstream: 1001, "message is not sent"), nothing stored.
    server.call("/user/set_global_msg_recv_opt", &a, json!({"userID": "alice", "globalRecvMsgOpt": 1})).await;
    let n = alice.next_of_type(1303).await;
    assert_eq!(n.tips["userID"], "alice");
    let info = server.call("/user/get_users_info", &a, json!({"userIDs": ["alice"]})).await;
    assert_eq!(info["usersInfo"][0]["globalRecvMsgOpt"], 1);
    let refused = bob.send_text_msg(text_msg("bob", "alice", "r-1", "hello")).await;
    assert_eq!(refused.err_code, 1001);
    assert!(refused.err_msg.contains("not sent"), "{}", refused.err_msg);
    assert!(bob.newest_seqs().await.max_seqs.is_empty());
    // "Receive without notification": delivered, with offline push off.
    server.call("/user/set_global_msg_recv_opt", &a, json!({"userID": "alice", "globalRecvMsgOpt": 2})).await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "alice", "r-2", "quietly")).await.err_code, 0);
    let got = alice.next_of_type(101).await;
    assert_eq!(got.msg.options.get("offlinePush"), Some(&false));
    server.call("/user/set_global_msg_recv_opt", &a, json!({"userID": "alice", "globalRecvMsgOpt": 0})).await;

    // The same per conversation.
    let set =
        |opt: i64| json!({"userIDs": ["alice"], "conversation": {"conversationID": "si_alice_bob", "recvMsgOpt": opt}});
    server.call("/conversation/set_conversations", &a, set(1)).await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "alice", "r-3", "muted")).await.err_code, 1001);
    server.call("/conversation/set_conversations", &a, set(2)).await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "alice", "r-4", "quiet")).await.err_code, 0);
    let got = alice.next_of_type(101).await;
    assert_eq!((text_of(&got.msg).as_str(), got.msg.options.get("offlinePush")), ("quiet", Some(&false)));
    server.call("/conversation/set_conversations", &a, set(0)).await;
    assert_eq!(bob.send_text_msg(text_msg("bob", "alice", "r-5", "loud")).await.err_code, 0);
    let got = alice.next_of_type(101).await;
    assert_eq!(got.msg.options.get("offlinePush"), None);

    // Nobody sets it for someone else; only 0, 1 and 2 exist.
    assert_eq!(
        code(&server, "/user/set_global_msg_recv_opt", &b, json!({"userID": "alice", "globalRecvMsgOpt": 1})).await,
        1002
    );
    assert_eq!(
        code(&server, "/user/set_global_msg_recv_opt", &a, json!({"userID": "alice", "globalRecvMsgOpt": 9})).await,
        1001
    );
    assert_eq!(code(&server, "/conversation/set_conversations", &a, set(5)).await, 1001);
}

#[tokio::test]
async fn user_commands_round_trip_and_reach_the_other_devices() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut phone = {
        server.register(&admin, &["alice", "bob"]).await;
        device(&server, &admin, "alice", platform::IOS).await
    };
    let (a, b) = (rest_token(&server, &admin, "alice").await, rest_token(&server, &admin, "bob").await);

    let add = |t: i64, uuid: &str, value: &str| json!({"userID": "alice", "type": t, "uuid": uuid, "value": value, "ex": "e"});
    server.call("/user/process_user_command_add", &a, add(1, "fav-1", "first")).await;
    let n = phone.next_of_type(1305).await;
    assert_eq!((n.conversation.as_str(), n.tips["toUserID"].as_str()), ("n_alice_alice", Some("alice")));
    server.call("/user/process_user_command_add", &a, add(2, "fav-2", "second")).await;
    phone.next_of_type(1305).await;
    assert_eq!(code(&server, "/user/process_user_command_add", &a, add(1, "fav-1", "again")).await, 1003);

    let all = server.call("/user/process_user_command_get_all", &a, json!({"userID": "alice"})).await;
    let list = all["CommandResp"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0]["uuid"].as_str(), list[0]["value"].as_str(), list[0]["ex"].as_str()),
        (Some("fav-1"), Some("first"), Some("e"))
    );
    assert!(list[0]["createTime"].as_i64().unwrap() > 1_600_000_000, "seconds, as upstream");

    server
        .call(
            "/user/process_user_command_update",
            &a,
            json!({"userID": "alice", "type": 1, "uuid": "fav-1", "value": "changed", "ex": null}),
        )
        .await;
    phone.next_of_type(1307).await;
    let one = server.call("/user/process_user_command_get", &a, json!({"userID": "alice", "type": 1})).await;
    assert_eq!(
        (one["CommandResp"][0]["value"].as_str(), one["CommandResp"][0]["ex"].as_str()),
        (Some("changed"), Some("e"))
    );
    assert_eq!(one["CommandResp"].as_array().unwrap().len(), 1);

    server.call("/user/process_user_command_delete", &a, json!({"userID": "alice", "type": 1, "uuid": "fav-1"})).await;
    phone.next_of_type(1306).await;
    assert_eq!(
        code(&server, "/user/process_user_command_delete", &a, json!({"userID": "alice", "type": 1, "uuid": "fav-1"}))
            .await,
        1004
    );
    assert_eq!(
        code(
            &server,
            "/user/process_user_command_update",
            &a,
            json!({"userID": "alice", "type": 1, "uuid": "nope", "value": "x"})
        )
        .await,
        1004
    );
    // Someone else's commands are out of reach.
    assert_eq!(code(&server, "/user/process_user_command_get_all", &b, json!({"userID": "alice"})).await, 1002);
    assert_eq!(code(&server, "/user/process_user_command_add", &b, add(3, "x", "y")).await, 1002);
    assert_eq!(code(&server, "/user/process_user_command_add", &a, add(3, "", "y")).await, 1001);
}

/// The 2005 frames that arrive unsolicited: (user, platforms).
async fn next_status(c: &mut Client) -> (String, Vec<i32>) {
    let resp = c.next_of(req::SUB_USER_ONLINE_STATUS).await.expect("a status push");
    assert_eq!(resp.msg_incr, "", "unsolicited");
    let tips = sdkws::SubUserOnlineStatusTips::decode(&resp.data[..]).unwrap();
    let one = tips.subscribers.into_iter().next().unwrap();
    (one.user_id, one.online_platform_ids)
}

#[tokio::test]
async fn presence_subscriptions_push_platform_changes() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    server.register(&admin, &["bob", "carol"]).await;

    // WS 2005: the answer has Bob's platforms now (none).
    let sub = sdkws::SubUserOnlineStatus { subscribe_user_id: vec!["bob".into()], unsubscribe_user_id: vec![] };
    let resp = alice.request(req::SUB_USER_ONLINE_STATUS, sub.encode_to_vec()).await;
    assert_eq!(resp.err_code, 0);
    let tips = sdkws::SubUserOnlineStatusTips::decode(&resp.data[..]).unwrap();
    assert_eq!((tips.subscribers[0].user_id.as_str(), tips.subscribers[0].online_platform_ids.len()), ("bob", 0));

    // Each change of Bob's platforms is pushed.
    let bob_web = device(&server, &admin, "bob", platform::WEB).await;
    assert_eq!(next_status(&mut alice).await, ("bob".to_string(), vec![5]));
    let mut bob_phone = device(&server, &admin, "bob", platform::IOS).await;
    assert_eq!(next_status(&mut alice).await, ("bob".to_string(), vec![1, 5]));
    drop(bob_web);
    assert_eq!(next_status(&mut alice).await, ("bob".to_string(), vec![1]));

    // REST: Carol subscribes as a user; her connections get the pushes, and she can list what she watches.
    let c = rest_token(&server, &admin, "carol").await;
    let answer = server
        .call("/user/subscribe_users_status", &c, json!({"userID": "carol", "userIDs": ["bob", "alice"], "genre": 1}))
        .await;
    let list = answer["statusList"].as_array().unwrap();
    assert_eq!(
        (list[0]["userID"].as_str(), list[0]["status"].as_i64(), list[0]["platformIDs"].clone()),
        (Some("bob"), Some(1), json!([1]))
    );
    assert_eq!(list[1]["platformIDs"], json!([5]));
    let mut carol = device(&server, &admin, "carol", platform::WEB).await;
    let watched = server.call("/user/get_subscribe_users_status", &c, json!({"userID": "carol"})).await;
    assert_eq!(watched["statusList"].as_array().unwrap().len(), 2);
    let status = server.call("/user/get_users_status", &c, json!({"userIDs": ["bob", "nobody"]})).await;
    assert_eq!(
        (status["statusList"][0]["status"].as_i64(), status["statusList"][1]["status"].as_i64()),
        (Some(1), Some(0))
    );

    // Bob's phone logs out (2003): everyone watching sees him go.
    let r = bob_phone
        .request(req::LOGOUT_MSG, push::DelUserPushTokenReq { user_id: "bob".into(), platform_id: 1 }.encode_to_vec())
        .await;
    assert_eq!(r.err_code, 0);
    assert!(bob_phone.closed().await);
    assert_eq!(next_status(&mut alice).await, ("bob".to_string(), vec![]));
    assert_eq!(next_status(&mut carol).await, ("bob".to_string(), vec![]));

    // Unsubscribed: Bob's return is not pushed to Alice any more (her next frame is a later message).
    let unsub = sdkws::SubUserOnlineStatus { subscribe_user_id: vec![], unsubscribe_user_id: vec!["bob".into()] };
    assert_eq!(alice.request(req::SUB_USER_ONLINE_STATUS, unsub.encode_to_vec()).await.err_code, 0);
    server.call("/user/subscribe_users_status", &c, json!({"userID": "carol", "userIDs": ["bob"], "genre": 2})).await;
    let _bob_again = device(&server, &admin, "bob", platform::WEB).await;
    marker(&server, &admin, "bob", "alice", "after bob returned").await;
    marker(&server, &admin, "bob", "carol", "after bob returned").await;
    let status_push = |f: &palaver_protocol::envelope::Resp| f.req_identifier == req::SUB_USER_ONLINE_STATUS;
    none_before(&mut alice, status_push, "after bob returned").await;
    none_before(&mut carol, status_push, "after bob returned").await;
    // Someone else's subscriptions are out of reach, and genre is 1 or 2.
    assert_eq!(
        code(&server, "/user/subscribe_users_status", &c, json!({"userID": "bob", "userIDs": ["x"], "genre": 1})).await,
        1002
    );
    assert_eq!(
        code(&server, "/user/subscribe_users_status", &c, json!({"userID": "carol", "userIDs": ["x"], "genre": 3}))
            .await,
        1001
    );
    assert_eq!(code(&server, "/user/get_subscribe_users_status", &c, json!({"userID": "alice"})).await, 1002);
}

#[tokio::test]
async fn client_config_defaults_and_overrides() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let (a, b) = (rest_token(&server, &admin, "alice").await, rest_token(&server, &admin, "bob").await);
    let empty = server.call("/user/get_user_client_config", &a, json!({"userID": "alice"})).await;
    assert_eq!(empty["configs"], json!({}));
    server
        .call("/user/set_user_client_config", &admin, json!({"userID": "", "configs": {"theme": "light", "beta": "0"}}))
        .await;
    server.call("/user/set_user_client_config", &admin, json!({"userID": "alice", "configs": {"beta": "1"}})).await;
    let mine = server.call("/user/get_user_client_config", &a, json!({"userID": "alice"})).await;
    assert_eq!(mine["configs"], json!({"theme": "light", "beta": "1"}));
    let theirs = server.call("/user/get_user_client_config", &b, json!({"userID": "bob"})).await;
    assert_eq!(theirs["configs"], json!({"theme": "light", "beta": "0"}));
    server.call("/user/del_user_client_config", &admin, json!({"userID": "alice", "keys": ["beta"]})).await;
    let mine = server.call("/user/get_user_client_config", &a, json!({"userID": "alice"})).await;
    assert_eq!(mine["configs"]["beta"], "0");
    assert_eq!(code(&server, "/user/get_user_client_config", &b, json!({"userID": "alice"})).await, 1002);
    assert_eq!(
        code(&server, "/user/set_user_client_config", &a, json!({"userID": "alice", "configs": {"beta": "1"}})).await,
        1002
    );
    assert_eq!(
        code(&server, "/user/set_user_client_config", &admin, json!({"userID": "alice", "configs": {}})).await,
        1001
    );
}

#[tokio::test]
async fn third_routes_store_push_tokens_badges_and_logs() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let (a, b) = (rest_token(&server, &admin, "alice").await, rest_token(&server, &admin, "bob").await);
    let mut phone = device(&server, &admin, "alice", platform::IOS).await;

    server
        .call(
            "/third/fcm_update_token",
            &a,
            json!({"platformID": 1, "fcmToken": "tok-1", "account": "alice", "expireTime": 3600}),
        )
        .await;
    server.call("/third/set_app_badge", &a, json!({"userID": "alice", "appUnreadCount": 7})).await;
    server
        .call(
            "/third/logs/upload",
            &a,
            json!({"platform": 1, "fileURLs": [{"filename": "sdk.log", "URL": "http://x/sdk.log"}], "appFramework": "flutter", "version": "3.8", "ex": ""}),
        )
        .await;
    for (token, path, body, want) in [
        (&b, "/third/fcm_update_token", json!({"platformID": 1, "fcmToken": "t", "account": "alice"}), 1002),
        (&a, "/third/fcm_update_token", json!({"platformID": 99, "fcmToken": "t", "account": "alice"}), 1001),
        (&a, "/third/fcm_update_token", json!({"platformID": 1, "fcmToken": "", "account": "alice"}), 1001),
        (&b, "/third/set_app_badge", json!({"userID": "alice", "appUnreadCount": 1}), 1002),
        (&a, "/third/set_app_badge", json!({"userID": "alice", "appUnreadCount": -1}), 1001),
        (&a, "/third/logs/upload", json!({"platform": 1, "fileURLs": []}), 1001),
    ] {
        assert_eq!(code(&server, path, token, body).await, want, "{path}");
    }

    let time = server.call("/msg/get_server_time", &a, json!({})).await;
    assert!(time["serverTime"].as_i64().unwrap() > 1_600_000_000_000, "milliseconds since the epoch");

    // What was stored, read from the server's own database; logging out forgets the device's push token.
    let store = palaver_store::sqlite::SqliteStore::open(&server.dir.path().join("palaver.db")).await.unwrap();
    use palaver_store::AppStore as _;
    assert_eq!(store.push_token("alice", 1).await.unwrap().as_deref(), Some("tok-1"));
    assert_eq!(store.app_badge("alice").await.unwrap(), Some(7));
    let logs = store.client_logs("alice").await.unwrap();
    assert_eq!((logs.len(), logs[0].url.as_str(), logs[0].platform.as_str()), (1, "http://x/sdk.log", "IOS"));
    let r = phone
        .request(req::LOGOUT_MSG, push::DelUserPushTokenReq { user_id: "alice".into(), platform_id: 1 }.encode_to_vec())
        .await;
    assert_eq!(r.err_code, 0);
    assert!(phone.closed().await);
    assert_eq!(store.push_token("alice", 1).await.unwrap(), None);
    store.close().await;
}

#[tokio::test]
async fn every_gateway_request_id_is_answered() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    server.register(&admin, &["bob"]).await;
    let user = || "alice".to_string();
    let requests: Vec<(i32, Vec<u8>)> = vec![
        (req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: user() }.encode_to_vec()),
        (req::SEND_MSG, text_msg("alice", "bob", "ids-1", "hi").encode_to_vec()),
        (
            req::PULL_MSG_BY_RANGE,
            sdkws::PullMessageBySeqsReq {
                user_id: user(),
                seq_ranges: vec![sdkws::SeqRange { conversation_id: "si_alice_bob".into(), begin: 1, end: 1, num: 1 }],
                order: 0,
            }
            .encode_to_vec(),
        ),
        (
            req::PULL_MSG_BY_SEQ_LIST,
            pbmsg::GetSeqMessageReq {
                user_id: user(),
                conversations: vec![pbmsg::ConversationSeqs { conversation_id: "si_alice_bob".into(), seqs: vec![1] }],
                order: 0,
            }
            .encode_to_vec(),
        ),
        (
            req::GET_CONV_MAX_READ_SEQ,
            pbmsg::GetConversationsHasReadAndMaxSeqReq { user_id: user(), ..Default::default() }.encode_to_vec(),
        ),
        (
            req::PULL_CONV_LAST_MESSAGE,
            pbmsg::GetLastMessageReq { user_id: user(), conversation_ids: vec!["si_alice_bob".into()] }.encode_to_vec(),
        ),
        (
            req::SET_BACKGROUND_STATUS,
            sdkws::SetAppBackgroundStatusReq { user_id: user(), is_background: true }.encode_to_vec(),
        ),
        (
            req::SUB_USER_ONLINE_STATUS,
            sdkws::SubUserOnlineStatus { subscribe_user_id: vec!["bob".into()], unsubscribe_user_id: vec![] }
                .encode_to_vec(),
        ),
    ];
    for (id, data) in requests {
        let resp = alice.request(id, data).await;
        assert_eq!(resp.err_code, 0, "request {id}: {}", resp.err_msg);
    }
    let last = alice
        .request(
            req::PULL_CONV_LAST_MESSAGE,
            pbmsg::GetLastMessageReq { user_id: user(), conversation_ids: vec!["si_alice_bob".into()] }.encode_to_vec(),
        )
        .await;
    let last = pbmsg::GetLastMessageResp::decode(&last.data[..]).unwrap();
    assert_eq!(last.msgs["si_alice_bob"].client_msg_id, "ids-1");
    // 1004 (signalling) is known but unsupported: a clear error, and the connection goes on.
    let resp = alice.request(req::SEND_SIGNAL_MSG, vec![]).await;
    assert_eq!(resp.err_code, 1001);
    assert!(resp.err_msg.contains("not supported"), "{}", resp.err_msg);
    assert_eq!(
        alice.request(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: user() }.encode_to_vec()).await.err_code,
        0
    );
    // 2003 is answered, then the server closes.
    let resp = alice
        .request(req::LOGOUT_MSG, push::DelUserPushTokenReq { user_id: user(), platform_id: 5 }.encode_to_vec())
        .await;
    assert_eq!(resp.err_code, 0);
    assert!(alice.closed().await);
}
