//! Limits on what one call may carry, black-box: how many users one registration may hold and what each may
//! say, how many ids one lookup may name, how long a page may be, and who may create a group for whom. Each
//! refusal is OpenIM's `ErrArgs` (1001) or `ErrNoPermission` (1002), and leaves nothing half done.

mod common;

use common::*;
use palaver_protocol::constant::platform;
use serde_json::{Value, json};

const ARGS: i64 = 1001;
const NO_PERMISSION: i64 = 1002;

/// `n` distinct ids `<prefix>0`, `<prefix>1`, ….
fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Whether each of `ids` is registered (`/user/account_check`).
async fn registered(server: &TestServer, admin: &str, ids: &[&str]) -> Vec<bool> {
    let check = server.call("/user/account_check", admin, json!({ "checkUserIDs": ids })).await;
    check["results"].as_array().unwrap().iter().map(|r| r["accountStatus"] == 1).collect()
}

#[tokio::test]
async fn registration_holds_at_most_1000_users_each_checked_like_a_profile_update() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let register = |users: Value| server.post("/user/user_register", Some(&admin), json!({ "users": users }));

    // One too many: nothing is registered.
    let users: Vec<Value> = ids("u", 1001).iter().map(|id| json!({"userID": id})).collect();
    assert_eq!(register(json!(users)).await["errCode"], ARGS);
    assert_eq!(registered(&server, &admin, &["u0", "u1000"]).await, [false, false]);
    // The most: all of them.
    assert_eq!(register(json!(users[..1000])).await["errCode"], 0);
    assert_eq!(registered(&server, &admin, &["u0", "u999", "u1000"]).await, [true, true, false]);

    // The profile limits of `/user/update_user_info_ex`, with a valid user beside each bad one: all or none.
    let long = "x".repeat(4097);
    for bad in [
        json!({"userID": "bad", "nickname": long}),
        json!({"userID": "bad", "faceURL": long}),
        json!({"userID": "bad", "ex": long}),
        json!({"userID": "bad", "globalRecvMsgOpt": 3}),
        json!({"userID": "bad", "globalRecvMsgOpt": -1}),
    ] {
        let envelope = register(json!([{"userID": "fine"}, bad.clone()])).await;
        assert_eq!(envelope["errCode"], ARGS, "{bad}: {envelope}");
        assert_eq!(registered(&server, &admin, &["fine", "bad"]).await, [false, false], "{bad}");
    }
    // At the limits, it is accepted and stored as given.
    let most = "y".repeat(4096);
    let at_limits = json!({"userID": "edge", "nickname": most, "faceURL": most, "ex": most, "globalRecvMsgOpt": 2});
    assert_eq!(register(json!([at_limits])).await["errCode"], 0);
    let info = server.call("/user/get_users_info", &admin, json!({"userIDs": ["edge"]})).await;
    let edge = &info["usersInfo"][0];
    assert_eq!((edge["nickname"].as_str().map(str::len), edge["globalRecvMsgOpt"].as_i64()), (Some(4096), Some(2)));

    // And the same checks on a later update, for comparison.
    let update = json!({"userInfo": {"userID": "edge", "nickname": long}});
    assert_eq!(server.post("/user/update_user_info_ex", Some(&admin), update).await["errCode"], ARGS);
}

#[tokio::test]
async fn lookups_name_at_most_1000_ids_and_pages_hold_at_most_1000_rows() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let alice = server.user_token(&admin, "alice", platform::WEB).await;
    let (most, too_many) = (ids("x", 1000), ids("x", 1001));

    for (path, field) in [
        ("/user/get_users_info", "userIDs"),
        ("/user/get_users_status", "userIDs"),
        ("/group/get_groups_info", "groupIDs"),
    ] {
        assert_eq!(code(&server, path, &alice, json!({ field: too_many })).await, ARGS, "{path} with 1001");
        assert_eq!(code(&server, path, &alice, json!({ field: most })).await, 0, "{path} with 1000");
    }
    assert_eq!(code(&server, "/user/account_check", &admin, json!({"checkUserIDs": too_many})).await, ARGS);
    assert_eq!(code(&server, "/user/account_check", &admin, json!({"checkUserIDs": most})).await, 0);

    let friends = |ids: &[String]| json!({"ownerUserID": "alice", "friendUserIDs": ids});
    assert_eq!(code(&server, "/friend/get_designated_friends", &alice, friends(&too_many)).await, ARGS);
    assert_eq!(code(&server, "/friend/get_designated_friends", &alice, friends(&most)).await, 0);
    assert_eq!(
        code(&server, "/friend/get_designated_friends", &alice, friends(&[])).await,
        0,
        "an empty list finds nothing"
    );
    let twice = ["bob".to_string(), "bob".to_string()];
    assert_eq!(code(&server, "/friend/get_designated_friends", &alice, friends(&twice)).await, ARGS, "a repeated id");

    let batch = |n: usize| {
        let list: Vec<Value> =
            ids("g", n).iter().map(|g| json!({"groupID": g, "versionID": "", "version": 0})).collect();
        json!({"userID": "alice", "reqList": list})
    };
    assert_eq!(code(&server, "/group/get_incremental_group_members_batch", &alice, batch(1001)).await, ARGS);
    // Groups that do not exist are each answered (full, empty), not refused.
    let answered = server.call("/group/get_incremental_group_members_batch", &alice, batch(1000)).await;
    assert_eq!(answered["respList"].as_object().unwrap().len(), 1000);

    let page = |n: i32| json!({"pageNumber": 1, "showNumber": n});
    for (path, body) in [
        ("/group/get_joined_group_list", json!({"fromUserID": "alice"})),
        ("/friend/get_friend_list", json!({"userID": "alice"})),
        ("/friend/get_black_list", json!({"userID": "alice"})),
        ("/friend/get_friend_apply_list", json!({"userID": "alice"})),
        ("/group/get_recv_group_applicationList", json!({"fromUserID": "alice"})),
    ] {
        let mut body = body;
        body["pagination"] = page(1001);
        assert_eq!(code(&server, path, &alice, body.clone()).await, ARGS, "{path} with 1001 rows");
        body["pagination"] = page(1000);
        assert_eq!(code(&server, path, &alice, body).await, 0, "{path} with 1000 rows");
    }
}

/// `/group/create_group` of an empty group owned by `owner`, as `token`; the whole envelope.
async fn create(server: &TestServer, token: &str, owner: &str) -> Value {
    let body = json!({"ownerUserID": owner, "memberUserIDs": [], "groupInfo": {"groupName": "g", "groupType": 2}});
    server.post("/group/create_group", Some(token), body).await
}

#[tokio::test]
async fn only_an_admin_creates_a_group_owned_by_someone_else() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let alice = server.user_token(&admin, "alice", platform::WEB).await;

    let refused = create(&server, &alice, "bob").await;
    assert_eq!(refused["errCode"], NO_PERMISSION, "{refused}");
    let joined = server
        .call(
            "/group/get_joined_group_list",
            &admin,
            json!({"fromUserID": "bob", "pagination": {"pageNumber": 1, "showNumber": 10}}),
        )
        .await;
    assert_eq!(joined["total"].as_i64().unwrap_or(0), 0, "no group was made");

    // No owner named: the caller owns it.
    let own = create(&server, &alice, "").await;
    assert_eq!((own["errCode"].as_i64(), own["data"]["groupInfo"]["ownerUserID"].as_str()), (Some(0), Some("alice")));
    let named = create(&server, &alice, "alice").await;
    assert_eq!(named["data"]["groupInfo"]["ownerUserID"], "alice");
    // The admin may name anyone.
    let for_bob = create(&server, &admin, "bob").await;
    assert_eq!(
        (for_bob["errCode"].as_i64(), for_bob["data"]["groupInfo"]["ownerUserID"].as_str()),
        (Some(0), Some("bob"))
    );
}
