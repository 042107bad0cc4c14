//! Groups at parity with OpenIM, black-box over real sockets: every `/group/*` route's rules (who may do what,
//! what it changes), the notifications each change pushes to the members' connections (content types
//! 1501–1520, with their Tips and the member list's version), the sending rules (mutes, dismissal,
//! membership), and the version logs behind incremental member sync.

mod common;

use common::*;
use palaver_protocol::constant::{content_type as ct, platform};
use palaver_protocol::pb::sdkws;
use prost::Message as _;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A server with users, each connected over the gateway (Web, gob+gzip like the wasm SDK) and holding a REST
/// token of another platform (so REST logins never displace the gateway connection).
struct World {
    server: TestServer,
    admin: String,
    rest: HashMap<String, String>,
    ws: HashMap<String, Client>,
}

impl World {
    async fn new(users: &[&str]) -> Self {
        let server = TestServer::start().await;
        let admin = server.admin_token().await;
        let mut rest = HashMap::new();
        let mut ws = HashMap::new();
        for user in users {
            ws.insert(user.to_string(), server.connect_new(&admin, user, GOB_GZIP).await);
            rest.insert(user.to_string(), server.user_token(&admin, user, platform::IOS).await);
        }
        Self { server, admin, rest, ws }
    }

    /// `path` as `user` (or the admin for `"imAdmin"`), expecting success; returns `data`.
    async fn call(&self, user: &str, path: &str, body: Value) -> Value {
        self.server.call(path, self.token(user), body).await
    }

    /// `path` as `user`, expecting failure; returns the error code.
    async fn refused(&self, user: &str, path: &str, body: Value) -> i64 {
        let envelope = self.server.post(path, Some(self.token(user)), body).await;
        let code = envelope["errCode"].as_i64().unwrap();
        assert_ne!(code, 0, "{path} as {user} should have failed: {envelope}");
        code
    }

    fn token(&self, user: &str) -> &str {
        if user == "imAdmin" { &self.admin } else { &self.rest[user] }
    }

    fn ws(&mut self, user: &str) -> &mut Client {
        self.ws.get_mut(user).unwrap()
    }

    /// Creates a group owned by `owner` (`needVerification` as given) and returns its id, having consumed the
    /// creation notification on every member's connection.
    async fn group(&mut self, owner: &str, admins: &[&str], members: &[&str], verification: i32) -> String {
        let created = self
            .call(
                owner,
                "/group/create_group",
                json!({"ownerUserID": owner, "adminUserIDs": admins, "memberUserIDs": members,
                       "groupInfo": {"groupName": "g", "groupType": 2, "needVerification": verification}}),
            )
            .await;
        let gid = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
        for user in std::iter::once(&owner).chain(admins).chain(members) {
            self.ws(user).next_notification(ct::GROUP_CREATED).await.expect("creation notified");
        }
        gid
    }

    /// The member list's `(versionID, version)`, as `user` sees it.
    async fn member_version(&self, user: &str, gid: &str) -> (String, u64) {
        let full = self.call(user, "/group/get_full_group_member_user_ids", json!({"groupID": gid, "idHash": 0})).await;
        (full["versionID"].as_str().unwrap().to_string(), full["version"].as_u64().unwrap())
    }

    async fn member_ids(&self, user: &str, gid: &str) -> Vec<String> {
        let full = self.call(user, "/group/get_full_group_member_user_ids", json!({"groupID": gid, "idHash": 0})).await;
        full["userIDs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    async fn member(&self, user: &str, gid: &str, who: &str) -> Value {
        let info = self.call(user, "/group/get_group_members_info", json!({"groupID": gid, "userIDs": [who]})).await;
        info["members"][0].clone()
    }

    async fn group_info(&self, user: &str, gid: &str) -> Value {
        self.call(user, "/group/get_groups_info", json!({"groupIDs": [gid]})).await["groupInfos"][0].clone()
    }

    /// Sends a group text as `user`; returns the reply's error code.
    async fn send(&mut self, user: &str, gid: &str, client_msg_id: &str) -> i32 {
        let msg = group_msg(user, gid, client_msg_id, "hello");
        self.ws(user).send_text_msg(msg).await.err_code
    }

    /// The group conversation's max seq as `user` sees it (0 if not listed).
    async fn max_seq(&mut self, user: &str, gid: &str) -> i64 {
        let seqs = self.ws(user).newest_seqs().await;
        seqs.max_seqs.get(&format!("sg_{gid}")).copied().unwrap_or(0)
    }
}

/// The member list version a notification carries.
fn tips_version(tips: &Value) -> (String, u64) {
    (tips["groupMemberVersionID"].as_str().unwrap().to_string(), tips["groupMemberVersion"].as_u64().unwrap())
}

fn page(n: i32) -> Value {
    json!({"pageNumber": 1, "showNumber": n})
}

#[tokio::test]
async fn creation_and_info_changes_notify_every_member_with_the_member_version() {
    let mut w = World::new(&["alice", "bob", "carol"]).await;
    let created = w
        .call(
            "alice",
            "/group/create_group",
            json!({"ownerUserID": "alice", "adminUserIDs": ["bob"], "memberUserIDs": ["carol"],
                   "groupInfo": {"groupName": "team", "groupType": 2, "notification": "read me"}}),
        )
        .await;
    let gid = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
    let version = w.member_version("alice", &gid).await;
    for user in ["alice", "bob", "carol"] {
        let (conv, msg, tips) = w.ws(user).next_notification(ct::GROUP_CREATED).await.expect("1501");
        assert_eq!(
            (conv.as_str(), msg.session_type, msg.group_id.as_str()),
            (format!("n_{gid}").as_str(), 3, gid.as_str())
        );
        assert_eq!((msg.msg_from, msg.seq, msg.send_id.as_str()), (200, 0, "alice"));
        assert_eq!(tips["group"]["groupName"], "team");
        assert_eq!(tips["group"]["memberCount"], 3);
        assert_eq!(tips["opUser"]["userID"], "alice");
        assert_eq!(tips["groupOwnerUser"]["roleLevel"], 100);
        assert_eq!(tips_version(&tips), version);
        let (_, _, tips) = w.ws(user).next_notification(ct::GROUP_INFO_SET_ANNOUNCEMENT).await.expect("1519");
        assert_eq!(tips["group"]["notification"], "read me");
    }
    let info = w.group_info("carol", &gid).await;
    assert_eq!(
        (info["notificationUserID"].as_str(), info["notificationUpdateTime"].as_i64().unwrap() > 0),
        (Some("alice"), true)
    );

    // An admin renames, changes the announcement and the introduction: one version, three notifications.
    w.call(
        "bob",
        "/group/set_group_info_ex",
        json!({"groupID": gid, "groupName": "renamed", "notification": "  new rules  ", "introduction": "about",
               "faceURL": null, "ex": null, "needVerification": 2, "lookMemberInfo": null, "applyMemberFriend": null}),
    )
    .await;
    let after = w.member_version("carol", &gid).await;
    assert_eq!(after.1, version.1 + 1, "one change, one version");
    for content_type in [ct::GROUP_INFO_SET_ANNOUNCEMENT, ct::GROUP_INFO_SET_NAME, ct::GROUP_INFO_SET] {
        let (_, _, tips) = w.ws("carol").next_notification(content_type).await.expect("info notification");
        assert_eq!(tips_version(&tips), after);
        assert_eq!(
            (tips["group"]["groupName"].as_str(), tips["opUser"]["userID"].as_str()),
            (Some("renamed"), Some("bob"))
        );
    }
    let info = w.group_info("carol", &gid).await;
    assert_eq!(info["notification"], "new rules", "trimmed");
    assert_eq!((info["introduction"].as_str(), info["needVerification"].as_i64()), (Some("about"), Some(2)));
    assert_eq!(info["notificationUserID"], "bob");

    // What may not be set, and who may not set it.
    let set = |name: Value| json!({"groupID": gid, "groupName": name});
    assert_eq!(w.refused("alice", "/group/set_group_info_ex", set(json!("  "))).await, 1001, "empty name");
    assert_eq!(w.refused("alice", "/group/set_group_info_ex", set(json!("x".repeat(300)))).await, 1001);
    let bad_mode = json!({"groupID": gid, "needVerification": 7});
    assert_eq!(w.refused("alice", "/group/set_group_info_ex", bad_mode).await, 1001);
    assert_eq!(w.refused("carol", "/group/set_group_info_ex", set(json!("mine"))).await, 1002, "an ordinary member");
    let nope = json!({"groupID": "nope", "groupName": "x"});
    assert_eq!(w.refused("imAdmin", "/group/set_group_info_ex", nope).await, 1201);
    assert_eq!(w.group_info("alice", &gid).await["groupName"], "renamed", "refusals changed nothing");
    // The app admin may.
    w.call("imAdmin", "/group/set_group_info_ex", set(json!("by admin"))).await;
    assert_eq!(w.group_info("alice", &gid).await["groupName"], "by admin");
}

#[tokio::test]
async fn joining_follows_the_groups_verification_mode() {
    let mut w = World::new(&["alice", "bob", "carol", "dave", "erin"]).await;
    // Mode 2: anyone joins directly; the members hear 1510 with the new version.
    let open = w.group("alice", &[], &["bob"], 2).await;
    let before = w.member_version("alice", &open).await;
    w.call(
        "dave",
        "/group/join_group",
        json!({"groupID": open, "reqMessage": "", "joinSource": 3, "inviterUserID": "dave", "ex": ""}),
    )
    .await;
    for user in ["alice", "bob", "dave"] {
        let (_, _, tips) = w.ws(user).next_notification(ct::MEMBER_ENTER).await.expect("1510");
        assert_eq!(tips["entrantUser"]["userID"], "dave");
        assert_eq!(tips["entrantUser"]["joinSource"], 3);
        assert_eq!(tips["group"]["memberCount"], 3);
        assert_eq!(tips_version(&tips).1, before.1 + 1);
    }
    assert_eq!(w.send("dave", &open, "d1").await, 0, "a new member sends at once");
    let again = json!({"groupID": open, "inviterUserID": "dave"});
    assert_eq!(w.refused("dave", "/group/join_group", again).await, 1001, "already a member");
    let for_other = json!({"groupID": open, "inviterUserID": "erin"});
    assert_eq!(w.refused("dave", "/group/join_group", for_other).await, 1002, "one joins for oneself only");
    assert_eq!(w.refused("dave", "/group/join_group", json!({"groupID": "nope"})).await, 1201);

    // Mode 0: applications need approval. Owner, admins and the applicant hear 1503.
    let closed = w.group("alice", &["bob"], &["carol"], 0).await;
    w.call("erin", "/group/join_group", json!({"groupID": closed, "reqMessage": "let me in", "joinSource": 3})).await;
    let mut uuid = None;
    for user in ["alice", "bob", "erin"] {
        let (conv, msg, tips) = w.ws(user).next_notification(ct::JOIN_GROUP_APPLICATION).await.expect("1503");
        assert_eq!(msg.session_type, 1, "application notifications are per user");
        assert!(conv.starts_with("n_"), "{conv}");
        assert_eq!(
            (tips["request"]["userInfo"]["userID"].as_str(), tips["request"]["reqMsg"].as_str()),
            (Some("erin"), Some("let me in"))
        );
        assert_eq!(
            (tips["group"]["groupID"].as_str(), tips["request"]["handleResult"].as_i64()),
            (Some(closed.as_str()), Some(0))
        );
        assert!(
            uuid.is_none() || uuid.as_ref() == tips["uuid"].as_str().map(str::to_string).as_ref(),
            "one uuid for all copies"
        );
        uuid = tips["uuid"].as_str().map(str::to_string);
    }
    assert_eq!(
        w.refused("erin", "/group/get_group_members_info", json!({"groupID": closed, "userIDs": ["alice"]})).await,
        1203,
        "not in yet"
    );
    let listed = w
        .call(
            "bob",
            "/group/get_recv_group_applicationList",
            json!({"fromUserID": "bob", "pagination": page(10), "groupIDs": [], "handleResults": []}),
        )
        .await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["groupRequests"][0]["userInfo"]["nickname"], "ERIN");
    assert_eq!(listed["groupRequests"][0]["groupInfo"]["groupID"], closed.as_str());
    let unhandled =
        w.call("alice", "/group/get_group_application_unhandled_count", json!({"userID": "alice", "time": 0})).await;
    assert_eq!(unhandled["count"], 1);
    let mine = w
        .call("erin", "/group/get_user_req_group_applicationList", json!({"userID": "erin", "pagination": page(10)}))
        .await;
    assert_eq!((mine["total"].as_i64(), mine["groupRequests"][0]["handleResult"].as_i64()), (Some(1), Some(0)));
    let specified = json!({"groupID": closed, "userID": "erin"});
    assert_eq!(w.call("erin", "/group/get_specified_user_group_request_info", specified.clone()).await["total"], 1);
    assert_eq!(w.call("bob", "/group/get_specified_user_group_request_info", specified.clone()).await["total"], 1);
    assert_eq!(w.refused("carol", "/group/get_specified_user_group_request_info", specified).await, 1002);
    let others = json!({"fromUserID": "alice", "pagination": page(10)});
    assert_eq!(w.refused("carol", "/group/get_recv_group_applicationList", others).await, 1002, "another user's list");
    let not_managed = json!({"fromUserID": "carol", "pagination": page(10), "groupIDs": [closed]});
    assert_eq!(w.refused("carol", "/group/get_recv_group_applicationList", not_managed).await, 1002);
    assert_eq!(
        w.refused("carol", "/group/get_group_application_unhandled_count", json!({"userID": "alice"})).await,
        1002
    );

    // An ordinary member may not answer; the admin refuses: 1506 to managers (receiverAs 1) and erin (0).
    let answer =
        |result: i32| json!({"groupID": closed, "fromUserID": "erin", "handledMsg": "no", "handleResult": result});
    assert_eq!(w.refused("carol", "/group/group_application_response", answer(-1)).await, 1002);
    assert_eq!(w.refused("bob", "/group/group_application_response", answer(2)).await, 1001);
    w.call("bob", "/group/group_application_response", answer(-1)).await;
    for (user, receiver_as) in [("alice", 1), ("erin", 0)] {
        let (_, _, tips) = w.ws(user).next_notification(ct::GROUP_APPLICATION_REJECTED).await.expect("1506");
        assert_eq!((tips["receiverAs"].as_i64(), tips["handleMsg"].as_str()), (Some(receiver_as), Some("no")));
        assert_eq!(tips["request"]["handleResult"], -1);
    }
    assert_eq!(w.refused("bob", "/group/group_application_response", answer(1)).await, 1206, "answered already");
    assert!(w.member_ids("alice", &closed).await.iter().all(|u| u != "erin"));

    // She applies again; accepted this time: 1505, then 1510 as she enters, and she is a member.
    w.call("erin", "/group/join_group", json!({"groupID": closed, "reqMessage": "please"})).await;
    w.ws("alice").next_notification(ct::JOIN_GROUP_APPLICATION).await.expect("1503 again");
    w.call("alice", "/group/group_application_response", answer(1)).await;
    let (_, _, tips) = w.ws("erin").next_notification(ct::GROUP_APPLICATION_ACCEPTED).await.expect("1505");
    assert_eq!((tips["receiverAs"].as_i64(), tips["opUser"]["userID"].as_str()), (Some(0), Some("alice")));
    let (_, _, tips) = w.ws("carol").next_notification(ct::MEMBER_ENTER).await.expect("1510 to members");
    assert_eq!(tips["entrantUser"]["userID"], "erin");
    w.ws("erin").next_notification(ct::MEMBER_ENTER).await.expect("1510 to the entrant");
    assert!(w.member_ids("alice", &closed).await.contains(&"erin".to_string()));
    let accepted = json!({"fromUserID": "alice", "pagination": page(10), "handleResults": [1]});
    assert_eq!(w.call("alice", "/group/get_recv_group_applicationList", accepted).await["total"], 1);
    assert_eq!(
        w.call("alice", "/group/get_group_application_unhandled_count", json!({"userID": "alice"})).await["count"],
        0
    );

    // Mode 1: an ordinary member's invitation becomes an application; the owner's goes straight in.
    let strict = w.group("alice", &[], &["bob"], 1).await;
    w.call(
        "bob",
        "/group/invite_user_to_group",
        json!({"groupID": strict, "invitedUserIDs": ["dave"], "reason": "a friend"}),
    )
    .await;
    let (_, _, tips) =
        w.ws("alice").next_notification(ct::JOIN_GROUP_APPLICATION).await.expect("1503 for an invitation");
    assert_eq!(
        (tips["request"]["userInfo"]["userID"].as_str(), tips["request"]["inviterUserID"].as_str()),
        (Some("dave"), Some("bob"))
    );
    assert_eq!(tips["request"]["joinSource"], 2);
    assert!(!w.member_ids("alice", &strict).await.contains(&"dave".to_string()), "not in before approval");
    w.call(
        "alice",
        "/group/group_application_response",
        json!({"groupID": strict, "fromUserID": "dave", "handleResult": 1}),
    )
    .await;
    let (_, _, tips) =
        w.ws("bob").next_notification(ct::MEMBER_INVITED).await.expect("1509 for an approved invitation");
    assert_eq!(
        (tips["inviterUser"]["userID"].as_str(), tips["opUser"]["userID"].as_str()),
        (Some("bob"), Some("alice"))
    );
    assert_eq!(tips["invitedUserList"][0]["userID"], "dave");
    assert_eq!(w.member("alice", &strict, "dave").await["inviterUserID"], "bob");
    w.call("alice", "/group/invite_user_to_group", json!({"groupID": strict, "invitedUserIDs": ["erin"]})).await;
    let (_, _, tips) = w.ws("erin").next_notification(ct::MEMBER_INVITED).await.expect("1509");
    assert_eq!(tips["invitedUserList"][0]["userID"], "erin");
    let twice = json!({"groupID": strict, "invitedUserIDs": ["carol", "carol"]});
    assert_eq!(w.refused("alice", "/group/invite_user_to_group", twice).await, 1001);
    let outsider = json!({"groupID": strict, "invitedUserIDs": ["carol"]});
    assert_eq!(w.refused("carol", "/group/invite_user_to_group", outsider).await, 1203, "a non-member invites nobody");
}

#[tokio::test]
async fn quitting_and_kicking_remove_members_and_cap_their_history() {
    let mut w = World::new(&["alice", "bob", "carol", "dave", "erin"]).await;
    let gid = w.group("alice", &["bob"], &["carol", "dave", "erin"], 0).await;
    assert_eq!(w.send("alice", &gid, "m1").await, 0);
    let v0 = w.member_version("alice", &gid).await;

    // Seq 1 is the creation's tip in the chat, seq 2 alice's message. Dave quits: 1504 to the members and to
    // him, and its tip (seq 3) to those still in; he keeps seqs 1 and 2 and sees nothing after.
    w.call("dave", "/group/quit_group", json!({"groupID": gid, "userID": "dave"})).await;
    for user in ["alice", "carol", "dave"] {
        let (_, _, tips) = w.ws(user).next_notification(ct::MEMBER_QUIT).await.expect("1504");
        assert_eq!(tips["quitUser"]["userID"], "dave");
        assert_eq!((tips["group"]["memberCount"].as_i64(), tips_version(&tips).1), (Some(4), v0.1 + 1));
    }
    assert_eq!(w.send("alice", &gid, "m2").await, 0);
    assert_eq!(w.max_seq("dave", &gid).await, 2, "capped at his leave");
    assert_eq!(w.max_seq("carol", &gid).await, 4);
    let pulled = w.ws("dave").pull_range(&format!("sg_{gid}"), 1, 10, 10).await;
    let pulled = sdkws::PullMessageBySeqsResp::decode(&pulled.data[..]).unwrap();
    let seen: Vec<(i64, i32)> =
        pulled.msgs[&format!("sg_{gid}")].msgs.iter().map(|m| (m.seq, m.content_type)).collect();
    assert_eq!(seen, [(1, ct::GROUP_CREATED), (2, 101)]);
    assert_eq!(w.send("dave", &gid, "d1").await, 1203, "a former member cannot send");
    assert_eq!(
        w.refused("dave", "/group/get_group_member_list", json!({"groupID": gid, "pagination": page(10)})).await,
        1203
    );
    assert_eq!(w.refused("dave", "/group/quit_group", json!({"groupID": gid})).await, 1203, "not in it any more");
    assert_eq!(w.refused("alice", "/group/quit_group", json!({"groupID": gid})).await, 1002, "the owner cannot quit");
    assert_eq!(w.refused("carol", "/group/quit_group", json!({"groupID": gid, "userID": "erin"})).await, 1002);

    // Kicks: an ordinary member may not; an admin may kick ordinary members only; nobody kicks the owner.
    let kick = |who: &[&str]| json!({"groupID": gid, "kickedUserIDs": who, "reason": ""});
    assert_eq!(w.refused("carol", "/group/kick_group", kick(&["erin"])).await, 1002);
    assert_eq!(w.refused("bob", "/group/kick_group", kick(&["alice"])).await, 1001, "the owner");
    assert_eq!(w.refused("bob", "/group/kick_group", kick(&["bob"])).await, 1001, "oneself");
    assert_eq!(w.refused("bob", "/group/kick_group", kick(&["dave"])).await, 1203, "not a member");
    assert_eq!(w.refused("bob", "/group/kick_group", kick(&[])).await, 1001);
    assert_eq!(w.refused("bob", "/group/kick_group", kick(&["erin", "erin"])).await, 1001);
    assert_eq!(w.refused("dave", "/group/kick_group", kick(&["erin"])).await, 1002, "a non-member");
    let v1 = w.member_version("alice", &gid).await;
    w.call("bob", "/group/kick_group", kick(&["carol", "erin"])).await;
    for user in ["alice", "carol", "erin"] {
        let (_, _, tips) = w.ws(user).next_notification(ct::MEMBER_KICKED).await.expect("1508");
        let kicked: Vec<&str> =
            tips["kickedUserList"].as_array().unwrap().iter().map(|m| m["userID"].as_str().unwrap()).collect();
        assert_eq!(kicked, ["carol", "erin"]);
        assert_eq!((tips["opUser"]["userID"].as_str(), tips["group"]["memberCount"].as_i64()), (Some("bob"), Some(2)));
        assert_eq!(tips_version(&tips).1, v1.1 + 1);
    }
    assert_eq!(w.member_ids("alice", &gid).await, ["alice", "bob"]);
    assert_eq!(w.send("carol", &gid, "c1").await, 1203);
    // The owner kicks an admin.
    w.call("alice", "/group/kick_group", kick(&["bob"])).await;
    assert_eq!(w.member_ids("alice", &gid).await, ["alice"]);

    // A kicked member rejoins: uncapped, from its new join on (the two kicks' tips are seqs 5 and 6, the
    // invitation's 7).
    w.call("alice", "/group/invite_user_to_group", json!({"groupID": gid, "invitedUserIDs": ["carol"]})).await;
    assert_eq!(w.send("carol", &gid, "c2").await, 0);
    assert_eq!(w.max_seq("carol", &gid).await, 8);
}

#[tokio::test]
async fn ownership_transfers_and_roles_follow_openims_rules() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]).await;
    let gid = w.group("alice", &["bob"], &["carol", "dave"], 0).await;
    assert_eq!(w.member_ids("alice", &gid).await, ["alice", "bob", "carol", "dave"]);

    // The owner makes carol an admin: 1517 with a sort version, and the order of the id list changes.
    let set = |user: &str, fields: Value| {
        let mut m =
            json!({"groupID": gid, "userID": user, "nickname": null, "faceURL": null, "roleLevel": null, "ex": null});
        for (k, v) in fields.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"members": [m]})
    };
    let v0 = w.member_version("alice", &gid).await;
    w.call("alice", "/group/set_group_member_info", set("dave", json!({"roleLevel": 60}))).await;
    let (_, _, tips) = w.ws("carol").next_notification(ct::GROUP_MEMBER_SET_TO_ADMIN).await.expect("1517");
    assert_eq!(
        (tips["changedUser"]["userID"].as_str(), tips["changedUser"]["roleLevel"].as_i64()),
        (Some("dave"), Some(60))
    );
    assert_eq!(tips_version(&tips).1, v0.1 + 1);
    assert!(tips["groupSortVersion"].as_u64().unwrap() > 0, "a role change changes the order");
    assert_eq!(w.member_ids("alice", &gid).await, ["alice", "bob", "dave", "carol"]);
    w.call("alice", "/group/set_group_member_info", set("dave", json!({"roleLevel": 20}))).await;
    w.ws("dave").next_notification(ct::GROUP_MEMBER_SET_TO_ORDINARY).await.expect("1518");

    // Member info: 1516 to everyone; an admin changes ordinary members, a member only itself.
    w.call("bob", "/group/set_group_member_info", set("carol", json!({"nickname": "Caz", "ex": "e"}))).await;
    let (_, _, tips) = w.ws("dave").next_notification(ct::GROUP_MEMBER_INFO_SET).await.expect("1516");
    assert_eq!((tips["changedUser"]["nickname"].as_str(), tips["groupSortVersion"].as_u64()), (Some("Caz"), Some(0)));
    assert_eq!(w.member("dave", &gid, "carol").await["ex"], "e");
    w.call("carol", "/group/set_group_member_info", set("carol", json!({"faceURL": "http://x/c.png"}))).await;
    w.ws("dave").next_notification(ct::GROUP_MEMBER_INFO_SET).await.expect("1516 for one's own change");
    assert_eq!(w.member("alice", &gid, "carol").await["faceURL"], "http://x/c.png");
    let path = "/group/set_group_member_info";
    assert_eq!(w.refused("carol", path, set("dave", json!({"nickname": "D"}))).await, 1002, "another member");
    assert_eq!(w.refused("carol", path, set("carol", json!({"roleLevel": 60}))).await, 1002, "raising oneself");
    assert_eq!(w.refused("bob", path, set("alice", json!({"nickname": "A"}))).await, 1002, "an admin on the owner");
    w.call("alice", path, set("dave", json!({"roleLevel": 60}))).await;
    assert_eq!(w.refused("bob", path, set("dave", json!({"nickname": "D"}))).await, 1002, "an admin on an admin");
    assert_eq!(w.refused("alice", path, set("alice", json!({"roleLevel": 20}))).await, 1002, "the owner's own role");
    assert_eq!(w.refused("alice", path, set("bob", json!({"roleLevel": 100}))).await, 1002, "owner only by transfer");
    assert_eq!(w.refused("alice", path, set("bob", json!({"roleLevel": 30}))).await, 1001);
    assert_eq!(w.refused("alice", path, set("zed", json!({"nickname": "Z"}))).await, 1203);
    assert_eq!(w.refused("alice", path, json!({"members": []})).await, 1001);
    let v1 = w.member_version("alice", &gid).await;
    let two = json!({"members": [
        {"groupID": gid, "userID": "bob", "nickname": "B"},
        {"groupID": gid, "userID": "carol", "nickname": "C"}]});
    w.call("alice", path, two).await;
    let mut versions = Vec::new();
    for _ in 0..2 {
        let (_, _, tips) = w.ws("dave").next_notification(ct::GROUP_MEMBER_INFO_SET).await.expect("1516 each");
        versions.push(tips_version(&tips).1);
    }
    assert_eq!(versions, [v1.1 + 1, v1.1 + 2], "one version per member, in order");

    // Transfer: only the owner; the old owner takes the new one's former role; a muted new owner is unmuted.
    w.call("alice", "/group/mute_group_member", json!({"groupID": gid, "userID": "carol", "mutedSeconds": 600})).await;
    let transfer = |old: &str, new: &str| json!({"groupID": gid, "oldOwnerUserID": old, "newOwnerUserID": new});
    assert_eq!(w.refused("bob", "/group/transfer_group", transfer("alice", "bob")).await, 1002);
    assert_eq!(w.refused("alice", "/group/transfer_group", transfer("alice", "alice")).await, 1001);
    assert_eq!(w.refused("alice", "/group/transfer_group", transfer("alice", "zed")).await, 1203);
    assert_eq!(w.refused("bob", "/group/transfer_group", transfer("bob", "carol")).await, 1001, "bob is no owner");
    w.call("alice", "/group/transfer_group", transfer("alice", "carol")).await;
    let (_, _, tips) = w.ws("bob").next_notification(ct::GROUP_OWNER_TRANSFERRED).await.expect("1507");
    assert_eq!(
        (tips["newGroupOwner"]["userID"].as_str(), tips["newGroupOwner"]["roleLevel"].as_i64()),
        (Some("carol"), Some(100))
    );
    assert_eq!(
        (tips["oldGroupOwnerInfo"]["userID"].as_str(), tips["oldGroupOwnerInfo"]["roleLevel"].as_i64()),
        (Some("alice"), Some(20))
    );
    assert_eq!(tips["group"]["ownerUserID"], "carol");
    assert_eq!(w.member("bob", &gid, "carol").await["muteEndTime"], 0, "the new owner is unmuted");
    assert_eq!(w.group_info("bob", &gid).await["ownerUserID"], "carol");
    assert_eq!(w.member_ids("bob", &gid).await[0], "carol");
    assert_eq!(w.send("carol", &gid, "owner speaks").await, 0);
    // The old owner is an ordinary member now: it may not kick.
    assert_eq!(w.refused("alice", "/group/kick_group", json!({"groupID": gid, "kickedUserIDs": ["dave"]})).await, 1002);
}

#[tokio::test]
async fn muted_members_and_muted_groups_cannot_send_and_nothing_is_stored() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]).await;
    let gid = w.group("alice", &["bob"], &["carol", "dave"], 0).await;
    let mute = |user: &str| json!({"groupID": gid, "userID": user, "mutedSeconds": 3600});
    let unmute = |user: &str| json!({"groupID": gid, "userID": user});

    // Who may mute whom: the owner mutes admins; admins mute ordinary members; nobody mutes the owner.
    assert_eq!(w.refused("carol", "/group/mute_group_member", mute("dave")).await, 1002, "an ordinary member");
    assert_eq!(w.refused("bob", "/group/mute_group_member", mute("alice")).await, 1002, "the owner");
    assert_eq!(w.refused("alice", "/group/mute_group_member", mute("alice")).await, 1002, "the owner, by itself");
    assert_eq!(w.refused("dave", "/group/cancel_mute_group_member", unmute("carol")).await, 1002);
    assert_eq!(w.refused("alice", "/group/mute_group_member", mute("zed")).await, 1203);
    let forever = json!({"groupID": gid, "userID": "carol", "mutedSeconds": 4_000_000_000u64});
    assert_eq!(w.refused("alice", "/group/mute_group_member", forever).await, 1001);

    // Bob (admin) mutes carol: 1512 with the seconds and the new version; her sends fail with 1402.
    let v0 = w.member_version("alice", &gid).await;
    w.call("bob", "/group/mute_group_member", mute("carol")).await;
    let (_, _, tips) = w.ws("dave").next_notification(ct::GROUP_MEMBER_MUTED).await.expect("1512");
    assert_eq!((tips["mutedUser"]["userID"].as_str(), tips["mutedSeconds"].as_u64()), (Some("carol"), Some(3600)));
    assert!(tips["mutedUser"]["muteEndTime"].as_i64().unwrap() > 0);
    assert_eq!(tips_version(&tips).1, v0.1 + 1);
    let max = w.max_seq("alice", &gid).await;
    assert_eq!(w.send("carol", &gid, "muted-1").await, 1402);
    assert_eq!(w.max_seq("alice", &gid).await, max, "a refused message is not stored");
    assert_eq!(w.send("dave", &gid, "free-1").await, 0, "others still send");
    w.call("bob", "/group/cancel_mute_group_member", unmute("carol")).await;
    let (_, _, tips) = w.ws("dave").next_notification(ct::GROUP_MEMBER_CANCEL_MUTED).await.expect("1513");
    assert_eq!(tips["mutedUser"]["muteEndTime"], 0);
    assert_eq!(w.send("carol", &gid, "unmuted-1").await, 0);
    assert_eq!(
        w.refused("bob", "/group/mute_group_member", json!({"groupID": gid, "userID": "bob", "mutedSeconds": 60}))
            .await,
        1002,
        "an admin by an admin"
    );
    w.call("alice", "/group/mute_group_member", json!({"groupID": gid, "userID": "bob", "mutedSeconds": 60})).await;
    assert_eq!(w.send("bob", &gid, "muted-admin").await, 1402);
    w.call("alice", "/group/cancel_mute_group_member", unmute("bob")).await;

    // The whole group: ordinary members get 1403; the owner and admins still speak.
    assert_eq!(w.refused("carol", "/group/mute_group", json!({"groupID": gid})).await, 1002);
    w.call("bob", "/group/mute_group", json!({"groupID": gid})).await;
    let (_, _, tips) = w.ws("carol").next_notification(ct::GROUP_MUTED).await.expect("1514");
    assert_eq!((tips["group"]["status"].as_i64(), tips["opUser"]["userID"].as_str()), (Some(3), Some("bob")));
    assert_eq!(w.group_info("carol", &gid).await["status"], 3);
    let max = w.max_seq("alice", &gid).await;
    assert_eq!(w.send("carol", &gid, "muted-2").await, 1403);
    assert_eq!(w.send("dave", &gid, "muted-3").await, 1403);
    assert_eq!(w.max_seq("alice", &gid).await, max);
    assert_eq!(w.send("alice", &gid, "owner-1").await, 0);
    assert_eq!(w.send("bob", &gid, "admin-1").await, 0);
    assert_eq!(w.refused("dave", "/group/cancel_mute_group", json!({"groupID": gid})).await, 1002);
    w.call("alice", "/group/cancel_mute_group", json!({"groupID": gid})).await;
    let (_, _, tips) = w.ws("carol").next_notification(ct::GROUP_CANCEL_MUTED).await.expect("1515");
    assert_eq!(tips["group"]["status"], 0);
    assert_eq!(w.send("carol", &gid, "free-2").await, 0);
}

#[tokio::test]
async fn dismissal_notifies_everyone_and_closes_the_group() {
    let mut w = World::new(&["alice", "bob", "carol"]).await;
    let gid = w.group("alice", &["bob"], &["carol"], 0).await;
    assert_eq!(w.send("carol", &gid, "m1").await, 0);
    let joined = w
        .call("carol", "/group/get_incremental_join_groups", json!({"userID": "carol", "versionID": "", "version": 0}))
        .await;
    let (vid, v) = (joined["versionID"].as_str().unwrap().to_string(), joined["version"].as_u64().unwrap());

    assert_eq!(w.refused("bob", "/group/dismiss_group", json!({"groupID": gid})).await, 1002, "an admin");
    assert_eq!(w.refused("carol", "/group/dismiss_group", json!({"groupID": gid})).await, 1002);
    w.call("alice", "/group/dismiss_group", json!({"groupID": gid, "deleteMember": false})).await;
    for user in ["alice", "bob", "carol"] {
        let (conv, _, tips) = w.ws(user).next_notification(ct::GROUP_DISMISSED).await.expect("1511");
        assert_eq!(conv, format!("n_{gid}"));
        assert_eq!((tips["group"]["status"].as_i64(), tips["opUser"]["userID"].as_str()), (Some(2), Some("alice")));
    }
    assert_eq!(w.group_info("carol", &gid).await["status"], 2);
    assert_eq!(w.send("alice", &gid, "after").await, 1204, "a dismissed group refuses messages");
    assert_eq!(w.send("carol", &gid, "after-2").await, 1204);
    assert_eq!(w.max_seq("carol", &gid).await, 2, "the history stays (the creation's tip and m1), capped");
    assert_eq!(w.refused("alice", "/group/dismiss_group", json!({"groupID": gid})).await, 1204);
    assert_eq!(
        w.refused("alice", "/group/set_group_info_ex", json!({"groupID": gid, "groupName": "x"})).await,
        1002,
        "no owner any more"
    );
    assert_eq!(w.refused("imAdmin", "/group/set_group_info_ex", json!({"groupID": gid, "groupName": "x"})).await, 1204);
    assert_eq!(
        w.refused("imAdmin", "/group/join_group", json!({"groupID": gid, "inviterUserID": "carol"})).await,
        1204
    );
    assert_eq!(
        w.refused("carol", "/group/get_group_member_list", json!({"groupID": gid, "pagination": page(10)})).await,
        1203
    );
    let sync = w
        .call("carol", "/group/get_incremental_join_groups", json!({"userID": "carol", "versionID": vid, "version": v}))
        .await;
    assert_eq!((sync["full"].as_bool(), sync["delete"][0].as_str()), (Some(false), Some(gid.as_str())));
    let list =
        w.call("carol", "/group/get_joined_group_list", json!({"fromUserID": "carol", "pagination": page(10)})).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn non_members_cannot_read_members_or_history_or_send() {
    let mut w = World::new(&["alice", "bob", "eve"]).await;
    let gid = w.group("alice", &[], &["bob"], 0).await;
    assert_eq!(w.send("alice", &gid, "secret").await, 0);
    assert_eq!(
        w.refused("eve", "/group/get_group_member_list", json!({"groupID": gid, "pagination": page(10)})).await,
        1203
    );
    assert_eq!(
        w.refused("eve", "/group/get_group_members_info", json!({"groupID": gid, "userIDs": ["alice"]})).await,
        1203
    );
    assert_eq!(
        w.refused("eve", "/group/get_full_group_member_user_ids", json!({"groupID": gid, "idHash": 0})).await,
        1203
    );
    let batch = w
        .call(
            "eve",
            "/group/get_incremental_group_members_batch",
            json!({"userID": "eve", "reqList": [{"groupID": gid, "versionID": "", "version": 0}]}),
        )
        .await;
    assert_eq!(batch["respList"][&gid]["full"], true);
    assert!(batch["respList"][&gid]["insert"].as_array().is_none_or(Vec::is_empty), "nothing about the members");
    assert_eq!(w.send("eve", &gid, "hi").await, 1203);
    let conv = format!("sg_{gid}");
    let pulled = w.ws("eve").pull_range(&conv, 1, 10, 10).await;
    let pulled = sdkws::PullMessageBySeqsResp::decode(&pulled.data[..]).unwrap();
    assert!(pulled.msgs.is_empty() && pulled.notification_msgs.is_empty(), "no history for a non-member");
    let by_seq = palaver_protocol::pb::msg::GetSeqMessageReq {
        user_id: "eve".into(),
        conversations: vec![palaver_protocol::pb::msg::ConversationSeqs {
            conversation_id: conv.clone(),
            seqs: vec![1],
        }],
        order: 0,
    };
    let resp = w.ws("eve").request(palaver_protocol::constant::req::PULL_MSG_BY_SEQ_LIST, by_seq.encode_to_vec()).await;
    let resp = palaver_protocol::pb::msg::GetSeqMessageResp::decode(&resp.data[..]).unwrap();
    assert!(resp.msgs.values().all(|m| m.msgs.is_empty()), "no history by seq either");
    assert_eq!(w.max_seq("eve", &gid).await, 0);
    // Nor act on it.
    assert_eq!(w.refused("eve", "/group/kick_group", json!({"groupID": gid, "kickedUserIDs": ["bob"]})).await, 1002);
    assert_eq!(w.refused("eve", "/group/mute_group", json!({"groupID": gid})).await, 1002);
    assert_eq!(w.refused("eve", "/group/dismiss_group", json!({"groupID": gid})).await, 1002);
    assert_eq!(w.refused("eve", "/group/set_group_info_ex", json!({"groupID": gid, "groupName": "mine"})).await, 1002);
    assert_eq!(
        w.refused("eve", "/group/mute_group_member", json!({"groupID": gid, "userID": "bob", "mutedSeconds": 5})).await,
        1002
    );
}

#[tokio::test]
async fn member_lists_page_and_filter() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]).await;
    let gid = w.group("alice", &["bob"], &["carol", "dave"], 0).await;
    w.call(
        "alice",
        "/group/set_group_member_info",
        json!({"members": [{"groupID": gid, "userID": "dave", "nickname": "Dragon"}]}),
    )
    .await;
    let list = |filter: i32, keyword: &str, n: i32| json!({"groupID": gid, "pagination": page(n), "filter": filter, "keyword": keyword});
    let ids = |v: &Value| {
        v["members"].as_array().unwrap().iter().map(|m| m["userID"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let all = w.call("carol", "/group/get_group_member_list", list(0, "", 2)).await;
    assert_eq!((ids(&all), all["total"].as_i64()), (vec!["alice".to_string(), "bob".into()], Some(4)));
    let second = w
        .call(
            "carol",
            "/group/get_group_member_list",
            json!({"groupID": gid, "pagination": {"pageNumber": 2, "showNumber": 2}}),
        )
        .await;
    assert_eq!(ids(&second), ["carol", "dave"]);
    for (filter, expected) in [
        (1, vec!["alice"]),
        (2, vec!["bob"]),
        (3, vec!["carol", "dave"]),
        (4, vec!["bob", "carol", "dave"]),
        (5, vec!["alice", "bob"]),
    ] {
        let got = w.call("carol", "/group/get_group_member_list", list(filter, "", 10)).await;
        assert_eq!(ids(&got), expected, "filter {filter}");
        assert_eq!(got["total"].as_u64(), Some(expected.len() as u64));
    }
    assert_eq!(
        ids(&w.call("carol", "/group/get_group_member_list", list(0, "Drag", 10)).await),
        ["dave"],
        "by nickname"
    );
    assert_eq!(ids(&w.call("carol", "/group/get_group_member_list", list(3, "car", 10)).await), ["carol"], "by id");
    assert_eq!(w.refused("carol", "/group/get_group_member_list", list(9, "", 10)).await, 1001);
    assert_eq!(w.refused("carol", "/group/get_group_member_list", list(0, "", 5000)).await, 1001);
}

#[tokio::test]
async fn incremental_member_sync_follows_every_change_one_version_each() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]).await;
    let gid = w.group("alice", &[], &["bob", "carol"], 0).await;
    let batch =
        |vid: &str, v: u64| json!({"userID": "alice", "reqList": [{"groupID": gid, "versionID": vid, "version": v}]});
    let first = w.call("alice", "/group/get_incremental_group_members_batch", batch("", 0)).await;
    let (vid, v0) = (
        first["respList"][&gid]["versionID"].as_str().unwrap().to_string(),
        first["respList"][&gid]["version"].as_u64().unwrap(),
    );

    // Five changes; each notification carries the previous version + 1, as an SDK applying them needs.
    let mut expected = v0;
    let changes: Vec<(&str, Value, i32)> = vec![
        ("/group/invite_user_to_group", json!({"groupID": gid, "invitedUserIDs": ["dave"]}), ct::MEMBER_INVITED),
        (
            "/group/set_group_member_info",
            json!({"members": [{"groupID": gid, "userID": "bob", "roleLevel": 60}]}),
            ct::GROUP_MEMBER_SET_TO_ADMIN,
        ),
        (
            "/group/mute_group_member",
            json!({"groupID": gid, "userID": "carol", "mutedSeconds": 60}),
            ct::GROUP_MEMBER_MUTED,
        ),
        ("/group/kick_group", json!({"groupID": gid, "kickedUserIDs": ["carol"]}), ct::MEMBER_KICKED),
        ("/group/set_group_info_ex", json!({"groupID": gid, "introduction": "hi"}), ct::GROUP_INFO_SET),
    ];
    for (path, body, content_type) in changes {
        w.call("alice", path, body).await;
        let (_, _, tips) = w.ws("alice").next_notification(content_type).await.expect("notification");
        expected += 1;
        assert_eq!(tips_version(&tips), (vid.clone(), expected), "{path}");
    }

    // A client still at the first version gets exactly those changes, the group, and the sort flag.
    let delta = &w.call("alice", "/group/get_incremental_group_members_batch", batch(&vid, v0)).await["respList"][&gid];
    assert_eq!((delta["full"].as_bool(), delta["version"].as_u64()), (Some(false), Some(expected)));
    let ids = |key: &str| {
        let mut v: Vec<String> =
            delta[key].as_array().unwrap().iter().map(|m| m["userID"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!((ids("insert"), ids("update")), (vec!["dave".to_string()], vec!["bob".to_string()]));
    assert_eq!(delta["delete"], json!(["carol"]), "carol was muted, then kicked: only the deletion counts");
    assert!(delta["sortVersion"].as_u64().unwrap() > 0);
    assert_eq!(
        (delta["group"]["introduction"].as_str(), delta["group"]["memberCount"].as_i64()),
        (Some("hi"), Some(3))
    );
    // One version behind: just the last change; current: nothing, not even the group.
    let last = &w.call("alice", "/group/get_incremental_group_members_batch", batch(&vid, expected - 1)).await["respList"]
        [&gid];
    assert_eq!((last["full"].as_bool(), last["group"]["introduction"].as_str()), (Some(false), Some("hi")));
    assert!(last["insert"].as_array().unwrap().is_empty() && last["update"].as_array().unwrap().is_empty());
    let current =
        &w.call("alice", "/group/get_incremental_group_members_batch", batch(&vid, expected)).await["respList"][&gid];
    assert!(current["group"].is_null());

    // Joined-group lists move too: dave's got the insertion, carol's the deletion.
    let joined = w.call("carol", "/group/get_full_join_group_ids", json!({"userID": "carol", "idHash": 0})).await;
    assert!(joined["groupIDs"].as_array().is_none_or(Vec::is_empty));
    let joined = w.call("dave", "/group/get_full_join_group_ids", json!({"userID": "dave", "idHash": 0})).await;
    assert_eq!(joined["groupIDs"], json!([gid]));
}

#[tokio::test]
async fn the_member_cache_follows_every_membership_change() {
    let mut w = World::new(&["alice", "bob", "carol"]).await;
    let gid = w.group("alice", &[], &["bob"], 0).await;
    // Warm the cache with a message, then change the membership: the next message must see the change.
    assert_eq!(w.send("alice", &gid, "warm").await, 0);
    w.call("alice", "/group/invite_user_to_group", json!({"groupID": gid, "invitedUserIDs": ["carol"]})).await;
    assert_eq!(w.send("carol", &gid, "c1").await, 0, "a new member sends at once");
    assert_eq!(w.send("alice", &gid, "to carol").await, 0);
    let (_, msg) = w
        .ws("carol")
        .next_push_where(|c, m| c.starts_with("sg_") && m.client_msg_id == "to carol")
        .await
        .expect("carol gets group messages at once");
    assert_eq!(msg.send_id, "alice");
    w.call("alice", "/group/kick_group", json!({"groupID": gid, "kickedUserIDs": ["bob"]})).await;
    assert_eq!(w.send("bob", &gid, "b1").await, 1203, "a kicked member is refused at once");
    w.call("alice", "/group/mute_group_member", json!({"groupID": gid, "userID": "carol", "mutedSeconds": 60})).await;
    assert_eq!(w.send("carol", &gid, "c2").await, 1402, "a mute applies at once");
    w.call("alice", "/group/cancel_mute_group_member", json!({"groupID": gid, "userID": "carol"})).await;
    assert_eq!(w.send("carol", &gid, "c3").await, 0);
    w.call(
        "alice",
        "/group/set_group_member_info",
        json!({"members": [{"groupID": gid, "userID": "carol", "roleLevel": 60}]}),
    )
    .await;
    w.call("alice", "/group/mute_group", json!({"groupID": gid})).await;
    assert_eq!(w.send("carol", &gid, "c4").await, 0, "a new admin speaks in a muted group");
    w.call(
        "alice",
        "/group/set_group_member_info",
        json!({"members": [{"groupID": gid, "userID": "carol", "roleLevel": 20}]}),
    )
    .await;
    assert_eq!(w.send("carol", &gid, "c5").await, 1403, "a demoted admin does not");
    w.call("alice", "/group/dismiss_group", json!({"groupID": gid})).await;
    assert_eq!(w.send("alice", &gid, "a1").await, 1204);
}

/// Read diffusion: a group message is stored once however big the group is. No per-member copy, cursor,
/// counter or version is written per message (what lets a 100,000-member group talk), checked in the SQLite
/// file itself: every row of every table before and after five sends into a 300-member group.
#[tokio::test]
async fn a_group_message_is_one_stored_row_whatever_the_group_size() {
    if std::env::var("PALAVER_TEST_STORE").as_deref() == Ok("postgres") {
        return; // the rows are read from the SQLite file
    }
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let members: Vec<String> = (0..300).map(|i| format!("member{i:03}")).collect();
    server.register(&admin, &members.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let mut alice = server.connect_new(&admin, "alice", GOB_GZIP).await;
    let token = server.user_token(&admin, "alice", platform::IOS).await;
    let created = server
        .call(
            "/group/create_group",
            &token,
            json!({"ownerUserID": "alice", "memberUserIDs": members, "groupInfo": {"groupName": "big", "groupType": 2}}),
        )
        .await;
    let gid = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
    // The first message creates the sender's conversation row; from then on only the messages themselves are
    // added, and the sender's read cursor moves. (The seq counter is the log itself: no row of its own.)
    assert_eq!(alice.send_text_msg(group_msg("alice", &gid, "first", "hello")).await.err_code, 0);
    let db = server.dir.path().join("palaver.db");
    let conversation = palaver_protocol::conversation_id::group(&gid);
    let first = alice.newest_seqs().await.max_seqs[&conversation];
    let before = flushed_snapshot(&db, &conversation, first).await;
    for n in 0..5 {
        assert_eq!(alice.send_text_msg(group_msg("alice", &gid, &format!("m{n}"), "hello")).await.err_code, 0);
    }
    let after = flushed_snapshot(&db, &conversation, first + 5).await;
    let mut changed = Vec::new();
    for (table, rows) in &after {
        let added: Vec<&String> = rows.difference(&before[table]).collect();
        let removed = before[table].difference(rows).count();
        if !added.is_empty() || removed > 0 {
            changed.push((table.as_str(), added.len(), removed));
        }
        if table == "conversations" {
            assert!(
                added.iter().all(|row| row.contains("\"alice\"")),
                "only the sender's read cursor moves: {added:?}"
            );
        }
    }
    // (table, rows added, rows removed): an updated row is one of each.
    let expected = [("conversations", 1, 1), ("messages", 5, 0)];
    assert_eq!(changed, expected, "what five messages to 300 members wrote");
}

/// [`snapshot`] once the server has flushed `conversation_id` up to `seq` from its message journal into the file
/// (about a second after the messages were acknowledged; each flush writes a message and its sender's cursor in
/// one transaction).
async fn flushed_snapshot(
    path: &std::path::Path,
    conversation_id: &str,
    seq: i64,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    for _ in 0..600 {
        let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let max: Option<i64> = conn
            .query_row("SELECT MAX(seq) FROM messages WHERE conversation_id = ?1", [conversation_id], |r| r.get(0))
            .unwrap();
        if max == Some(seq) {
            return snapshot(path);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{conversation_id} never reached seq {seq} in {}", path.display());
}

/// Every row of every table of the SQLite database at `path` (read-only, beside the running server: WAL), each
/// row as the text of its values.
fn snapshot(path: &std::path::Path) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut all = std::collections::BTreeMap::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                Ok((0..columns).map(|i| value_text(row.get_ref(i).unwrap())).collect::<Vec<_>>().join(" | "))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        all.insert(table, rows);
    }
    all
}

fn value_text(value: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(text) => format!("{:?}", String::from_utf8_lossy(text)),
        ValueRef::Blob(blob) => format!("blob:{}", blob.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}
