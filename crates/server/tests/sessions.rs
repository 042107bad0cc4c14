//! Tokens, logins, kicks and heartbeats, black-box.

mod common;

use common::*;
use palaver_protocol::{
    constant::{platform, req},
    envelope::Resp,
    pb::push,
};
use prost::Message as _;
use serde_json::json;

#[tokio::test]
async fn a_same_platform_login_kicks_the_first_connection() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice"]).await;
    let first_token = server.user_token(&admin, "alice", platform::WEB).await;
    let mut first = Client::connect(server.ws, "alice", &first_token, platform::WEB, GOB_GZIP).await.unwrap();
    let ios = server.user_token(&admin, "alice", platform::IOS).await;
    let mut other_platform = Client::connect(server.ws, "alice", &ios, platform::IOS, GOB_GZIP).await.unwrap();

    let second_token = server.user_token(&admin, "alice", platform::WEB).await;
    let mut second = Client::connect(server.ws, "alice", &second_token, platform::WEB, JSON).await.unwrap();

    let kick = first.next_of(req::KICK_ONLINE_MSG).await.expect("the first connection gets 2002");
    assert_eq!((kick.msg_incr.as_str(), kick.data.len()), ("", 0));
    assert!(first.closed().await, "the kicked connection is closed");
    // The displaced token is revoked, so the old device cannot log back in and kick the new one.
    let again = Client::connect(server.ws, "alice", &first_token, platform::WEB, GOB_GZIP).await.err().unwrap();
    assert_eq!(again.err_code, 1506);
    // The other platform and the new login are untouched.
    assert_eq!(other_platform.newest_seqs().await.max_seqs.len(), 0);
    assert_eq!(second.newest_seqs().await.max_seqs.len(), 0);
}

#[tokio::test]
async fn with_no_kick_policy_both_logins_stay() {
    let server = TestServer::start_with(|c| c.multi_login_policy = 0).await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let t1 = server.user_token(&admin, "alice", platform::WEB).await;
    let t2 = server.user_token(&admin, "alice", platform::WEB).await;
    let mut a1 = Client::connect(server.ws, "alice", &t1, platform::WEB, GOB_GZIP).await.unwrap();
    let mut a2 = Client::connect(server.ws, "alice", &t2, platform::WEB, GOB_GZIP).await.unwrap();
    assert_eq!(a1.send_text_msg(text_msg("alice", "bob", "x", "to both")).await.err_code, 0);
    assert_eq!(a1.next_push().await.unwrap().1.seq, 1);
    assert_eq!(a2.next_push().await.unwrap().1.seq, 1);
}

#[tokio::test]
async fn token_errors_on_the_gateway_are_openim_codes() {
    let server = TestServer::start_with(|c| c.token_ttl_secs = 2).await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice", "bob"]).await;
    let web = server.user_token(&admin, "alice", platform::WEB).await;
    let short_lived = server.user_token(&admin, "bob", platform::WEB).await;
    drop(Client::connect(server.ws, "bob", &short_lived, platform::WEB, GOB_GZIP).await.unwrap());

    // A token for another platform, or another user: 1502.
    let e = Client::connect(server.ws, "alice", &web, platform::IOS, GOB_GZIP).await.err().unwrap();
    assert_eq!(e.err_code, 1502);
    let e = Client::connect(server.ws, "bob", &web, platform::WEB, GOB_GZIP).await.err().unwrap();
    assert_eq!(e.err_code, 1502);
    // Garbage: 1503. Well-formed but unknown: 1507.
    let e = Client::connect(server.ws, "alice", "not-a-token", platform::WEB, GOB_GZIP).await.err().unwrap();
    assert_eq!(e.err_code, 1503);
    let unknown = "A".repeat(43);
    let e = Client::connect(server.ws, "alice", &unknown, platform::WEB, GOB_GZIP).await.err().unwrap();
    assert_eq!(e.err_code, 1507);
    // Revoked by a forced logout: 1506, and the live connection is kicked.
    let mut live = Client::connect(server.ws, "alice", &web, platform::WEB, GOB_GZIP).await.unwrap();
    server.call("/auth/force_logout", &admin, json!({"userID": "alice", "platformID": platform::WEB})).await;
    assert!(live.next_of(req::KICK_ONLINE_MSG).await.is_some());
    assert!(live.closed().await);
    let e = Client::connect(server.ws, "alice", &web, platform::WEB, GOB_GZIP).await.err().unwrap();
    assert_eq!(e.err_code, 1506);
    // Expired: 1501, though the token was found valid (and cached) at the start.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let e = Client::connect(server.ws, "bob", &short_lived, platform::WEB, GOB_GZIP).await.err().unwrap();
    assert_eq!(e.err_code, 1501);
}

#[tokio::test]
async fn without_is_msg_resp_a_refusal_is_a_json_body() {
    let server = TestServer::start().await;
    let request = "GET /?sendID=a&token=bad&platformID=5&operationID=o&isBackground=false HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let (status, body) = http_raw(server.ws, request.as_bytes()).await.unwrap();
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errCode"], 1503);
    // Missing parameters: the gateway's argument error.
    let (status, body) = http_get(server.ws, "/?sendID=a").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"errCode\":1602"), "{body}");
}

#[tokio::test]
async fn rest_token_and_header_errors() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice"]).await;
    let alice = server.user_token(&admin, "alice", platform::IOS).await;

    let no_token = server.post("/user/get_users_info", None, json!({"userIDs": ["alice"]})).await;
    assert_eq!((no_token["errCode"].as_i64(), no_token["errMsg"].as_str()), (Some(1001), Some("ArgsError")));
    assert_eq!(no_token["errDlt"], "header must have token");
    let bad = server.post("/user/get_users_info", Some("zzz"), json!({})).await;
    assert_eq!(bad["errCode"], 1503);
    let wrong_secret = server.post("/auth/get_admin_token", None, json!({"secret": "nope", "userID": "imAdmin"})).await;
    assert_eq!(wrong_secret["errCode"], 1002);
    // operationID is required even on whitelisted routes.
    let body = json!({"secret": SECRET, "userID": "imAdmin"}).to_string();
    let raw = format!(
        "POST /auth/get_admin_token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (_, text) = http_raw(server.api, raw.as_bytes()).await.unwrap();
    assert!(text.contains("header must have operationID"), "{text}");

    // A user may not act for another, nor use admin routes.
    let other = server.post("/msg/newest_seq", Some(&alice), json!({"userID": "bob"})).await;
    assert_eq!(other["errCode"], 1002);
    let reg = server.post("/user/user_register", Some(&alice), json!({"users": [{"userID": "eve"}]})).await;
    assert_eq!(reg["errCode"], 1002);

    // parse_token answers for a live token.
    let parsed = server.call("/auth/parse_token", &admin, json!({"token": alice})).await;
    assert_eq!((parsed["userID"].as_str(), parsed["platformID"].as_i64()), (Some("alice"), Some(1)));
    assert!(parsed["expireTimeSeconds"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn users_register_once_and_update_by_wrapper_fields() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice"]).await;
    let twice = server
        .post("/user/user_register", Some(&admin), json!({"users": [{"userID": "bob"}, {"userID": "alice"}]}))
        .await;
    assert_eq!(twice["errCode"], 1102);
    let check = server.call("/user/account_check", &admin, json!({"checkUserIDs": ["alice", "bob"]})).await;
    assert_eq!(
        check["results"],
        json!([{"userID": "alice", "accountStatus": 1}, {"userID": "bob", "accountStatus": 0}])
    );

    let alice = server.user_token(&admin, "alice", platform::WEB).await;
    server
        .call(
            "/user/update_user_info_ex",
            &alice,
            json!({"userInfo": {"userID": "alice", "nickname": "Alice2", "faceURL": null, "ex": null, "globalRecvMsgOpt": null}}),
        )
        .await;
    let info = server.call("/user/get_users_info", &alice, json!({"userIDs": ["alice", "nobody"]})).await;
    let users = info["usersInfo"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!((users[0]["nickname"].as_str(), users[0]["faceURL"].as_str()), (Some("Alice2"), Some("")));
    let other = server
        .post("/user/update_user_info_ex", Some(&alice), json!({"userInfo": {"userID": "bob", "nickname": "x"}}))
        .await;
    assert_eq!(other["errCode"], 1002);
}

#[tokio::test]
async fn text_pings_get_pongs_and_logout_closes() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut js = server.connect_new(&admin, "alice", JSON).await;
    js.send_text(r#"{"type":"ping","body":"op-7"}"#).await;
    let pong: serde_json::Value = serde_json::from_str(&js.recv_text().await.unwrap()).unwrap();
    assert_eq!(pong, json!({"type": "pong", "body": "op-7"}));

    let r = push::DelUserPushTokenReq { user_id: "alice".into(), platform_id: platform::WEB };
    let resp: Resp = js.request(req::LOGOUT_MSG, r.encode_to_vec()).await;
    assert_eq!(resp.err_code, 0);
    assert!(js.closed().await, "the server closes after answering logout");
}

#[tokio::test]
async fn web_connections_get_control_pings_and_silent_ones_time_out() {
    let server = TestServer::start_with(short_read_timeout).await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice"]).await;
    let token = server.user_token(&admin, "alice", platform::WEB).await;
    let url = ws_url(server.ws, "alice", &token, platform::WEB, GOB_GZIP);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await.unwrap();
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut pings = 0;
    let started = std::time::Instant::now();
    // tungstenite answers pings while we read, which keeps the connection alive past the read timeout.
    while started.elapsed() < std::time::Duration::from_millis(3500) {
        match tokio::time::timeout(std::time::Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Text(_)))) if pings == 0 => {}
            Ok(Some(Ok(other))) => panic!("unexpected frame {other:?}"),
            other => panic!("connection ended early: {other:?}"),
        }
    }
    assert!(pings >= 2, "got {pings} control pings");

    // An iOS connection gets no pings and, silent, is closed after the read timeout.
    let ios = server.user_token(&admin, "alice", platform::IOS).await;
    let mut quiet = Client::connect(server.ws, "alice", &ios, platform::IOS, GOB_GZIP).await.unwrap();
    let started = std::time::Instant::now();
    assert!(quiet.closed().await);
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
}

#[tokio::test]
async fn unknown_routes_are_404_and_preflight_is_answered() {
    let server = TestServer::start().await;
    let (status, _) = http_raw(
        server.api,
        b"POST /no/such_route HTTP/1.1\r\nHost: x\r\noperationID: o\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
    // Browsers preflight every SDK call (custom `token`/`operationID` headers): CORS must allow it.
    let (status, _) = http_raw(
        server.api,
        b"OPTIONS /user/get_users_info HTTP/1.1\r\nHost: x\r\nOrigin: http://page.test\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: token,operationid,content-type\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
}
