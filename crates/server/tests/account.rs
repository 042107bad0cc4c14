//! Palaver's accounts for people over real HTTP: sign-up, password login (argon2id), the registration switch,
//! login throttling per account and per source address, password change, and blocks.

mod common;

use common::*;
use palaver_protocol::constant::platform;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};

const PASSWORD: &str = "correct horse battery";

fn register_body(user_id: &str, password: &str) -> Value {
    json!({"user": {"userID": user_id, "nickname": "", "password": password}, "platform": platform::WEB, "autoLogin": true})
}

fn login_body(user_id: &str, password: &str) -> Value {
    json!({"userID": user_id, "password": password, "platform": platform::WEB})
}

/// Registers `user_id` with [`PASSWORD`] and returns its token (from `autoLogin`).
async fn sign_up(server: &TestServer, user_id: &str) -> String {
    let data = server.call_public("/account/register", register_body(user_id, PASSWORD)).await;
    assert_eq!(data["userID"], user_id);
    data["imToken"].as_str().unwrap().to_string()
}

trait Public {
    async fn call_public(&self, path: &str, body: Value) -> Value;
}

impl Public for TestServer {
    /// POSTs without a token and expects errCode 0; returns `data`.
    async fn call_public(&self, path: &str, body: Value) -> Value {
        let envelope = self.post(path, None, body).await;
        assert_eq!(envelope["errCode"], 0, "{path} failed: {envelope}");
        envelope["data"].clone()
    }
}

fn code(envelope: &Value) -> i64 {
    envelope["errCode"].as_i64().unwrap()
}

fn local(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[tokio::test]
async fn sign_up_then_log_in_with_an_argon2id_password() {
    let server = TestServer::start().await;
    let token = sign_up(&server, "alice").await;

    // The sign-up token is an ordinary IM token: REST and the gateway accept it.
    let info = server.call("/user/get_users_info", &token, json!({"userIDs": ["alice"]})).await;
    assert_eq!(info["usersInfo"][0]["nickname"], "alice", "an empty nickname defaults to the id");
    let mut ws = Client::connect(server.ws, "alice", &token, platform::WEB, JSON).await.expect("connect");
    assert!(ws.newest_seqs().await.max_seqs.is_empty());

    // Log in on another platform: a second token, for that platform.
    let data = server
        .call_public("/account/login", json!({"userID": "alice", "password": PASSWORD, "platform": platform::IOS}))
        .await;
    let ios_token = data["imToken"].as_str().unwrap();
    assert_ne!(ios_token, token);
    assert!(data["expireTimeSeconds"].as_i64().unwrap() > 0);
    let parsed = server.post("/auth/parse_token", None, json!({"token": ios_token})).await;
    assert_eq!((&parsed["data"]["userID"], &parsed["data"]["platformID"]), (&json!("alice"), &json!(platform::IOS)));
    // chat's field names work too (`account`, `platformID`).
    server.call_public("/account/login", json!({"account": "alice", "password": PASSWORD, "platformID": 5})).await;

    // What is stored is a salted argon2id hash, not the password.
    let store = palaver_store::sqlite::SqliteStore::open(&server.dir.path().join("palaver.db")).await.unwrap();
    let account = palaver_store::AccountStore::account(&store, "alice").await.unwrap().expect("account row");
    assert!(account.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", account.password_hash);
    assert!(!account.password_hash.contains(PASSWORD));
    store.close().await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_accounts_get_the_same_answer() {
    let server = TestServer::start().await;
    sign_up(&server, "alice").await;
    let wrong = server.post("/account/login", None, login_body("alice", "not the password")).await;
    let unknown = server.post("/account/login", None, login_body("nobody", PASSWORD)).await;
    assert_eq!(code(&wrong), 20001);
    assert_eq!(wrong["errMsg"], "PasswordError");
    assert_eq!((&wrong["errMsg"], &wrong["errDlt"]), (&unknown["errMsg"], &unknown["errDlt"]));
    assert_eq!(code(&unknown), 20001);
    // An account registered by an app back-end without a password cannot log in with one.
    let admin = server.admin_token().await;
    server.register(&admin, &["bob"]).await;
    assert_eq!(code(&server.post("/account/login", None, login_body("bob", "")).await), 1001);
    assert_eq!(code(&server.post("/account/login", None, login_body("bob", PASSWORD)).await), 20001);
    server.stop().await;
}

#[tokio::test]
async fn bad_sign_ups_are_refused_and_store_nothing() {
    let server = TestServer::start().await;
    sign_up(&server, "alice").await;
    let cases = [
        (register_body("alice", PASSWORD), 1102),
        (register_body("bob", "short"), 1001),
        (register_body("Bob", PASSWORD), 1001),
        (register_body("b_b", PASSWORD), 1001),
        (register_body("b", PASSWORD), 1001),
        (register_body("imAdmin", PASSWORD), 1001),
        (json!({"user": {"userID": "bob", "nickname": "x".repeat(65), "password": PASSWORD}}), 1001),
        (json!({"user": {"userID": "bob", "password": PASSWORD}, "autoLogin": true, "platform": 10}), 1001),
        (json!({"user": {"userID": "bob", "password": PASSWORD}, "autoLogin": true}), 1001),
        (json!({"user": "bob"}), 1001),
    ];
    for (body, expected) in cases {
        let envelope = server.post("/account/register", None, body.clone()).await;
        assert_eq!(code(&envelope), expected, "{body} -> {envelope}");
    }
    let admin = server.admin_token().await;
    let found = server.call("/user/get_users_info", &admin, json!({"userIDs": ["bob", "Bob", "b_b", "b"]})).await;
    assert_eq!(found["usersInfo"], json!([]), "nothing half-registered");
    // Without autoLogin there is no token, and the account exists.
    let data = server
        .call_public("/account/register", json!({"user": {"userID": "bob", "nickname": " Bob ", "password": PASSWORD}}))
        .await;
    assert_eq!(data["imToken"], "");
    let info = server.call("/user/get_users_info", &admin, json!({"userIDs": ["bob"]})).await;
    assert_eq!(info["usersInfo"][0]["nickname"], "Bob");
    // Headers are checked as on every route.
    let (status, body) = http_raw(
        server.api,
        b"POST /account/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"errCode\":1001"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn with_self_registration_off_only_an_admin_registers() {
    let server = TestServer::start_with(|c| c.self_registration = false).await;
    let (_, config) = http_get(server.api, "/palaver/client_config").await.unwrap();
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["data"]["selfRegistration"], false);

    let refused = server.post("/account/register", None, register_body("alice", PASSWORD)).await;
    assert_eq!(code(&refused), 1002, "{refused}");
    // A user's token is not enough either.
    let admin = server.admin_token().await;
    server.register(&admin, &["carol"]).await;
    let carol = server.user_token(&admin, "carol", platform::WEB).await;
    let by_user = server.post("/account/register", Some(&carol), register_body("alice", PASSWORD)).await;
    assert_eq!(code(&by_user), 1002);
    // An admin may, with ids of the wider admin form.
    let data = server.call("/account/register", &admin, register_body("Alice_Admin", PASSWORD)).await;
    assert!(!data["imToken"].as_str().unwrap().is_empty());
    server.call_public("/account/login", login_body("Alice_Admin", PASSWORD)).await;
    // A bad token is an error, not "no token".
    let bad = server.post("/account/register", Some("nope"), register_body("dave", PASSWORD)).await;
    assert_eq!(code(&bad), 1503);
    server.stop().await;
}

#[tokio::test]
async fn an_account_is_throttled_after_its_failures_even_with_the_right_password() {
    let server = TestServer::start_with(|c| {
        c.login_failures_per_account = 3;
        c.login_failures_per_address = 1000;
    })
    .await;
    sign_up(&server, "alice").await;
    sign_up(&server, "bob").await;
    // Failures below the budget are cleared by a success.
    for _ in 0..2 {
        assert_eq!(code(&server.post("/account/login", None, login_body("alice", "guess-guess")).await), 20001);
    }
    server.call_public("/account/login", login_body("alice", PASSWORD)).await;
    for _ in 0..3 {
        assert_eq!(code(&server.post("/account/login", None, login_body("alice", "guess-guess")).await), 20001);
    }
    let throttled = server.post("/account/login", None, login_body("alice", PASSWORD)).await;
    assert_eq!(code(&throttled), 29001, "{throttled}");
    assert!(throttled["errDlt"].as_str().unwrap().contains("try again in"), "{throttled}");
    // From another address too: the budget is the account's.
    let elsewhere = post_json_from(local(7), server.api, "/account/login", None, &login_body("alice", PASSWORD)).await;
    assert_eq!(code(&elsewhere), 29001);
    // Other accounts are not affected.
    server.call_public("/account/login", login_body("bob", PASSWORD)).await;
    server.stop().await;
}

#[tokio::test]
async fn an_address_is_throttled_after_its_failures_over_all_accounts() {
    let server = TestServer::start_with(|c| {
        c.login_failures_per_account = 1000;
        c.login_failures_per_address = 4;
    })
    .await;
    for id in ["alice", "bob", "carol"] {
        sign_up(&server, id).await;
    }
    let guesser = local(2);
    for id in ["alice", "bob", "nobody", "alice"] {
        let r = post_json_from(guesser, server.api, "/account/login", None, &login_body(id, "guess-guess")).await;
        assert_eq!(code(&r), 20001, "{r}");
    }
    // Now nothing from that address is checked, whoever it names.
    let r = post_json_from(guesser, server.api, "/account/login", None, &login_body("carol", PASSWORD)).await;
    assert_eq!(code(&r), 29001, "{r}");
    // Another address logs in to the same accounts as usual.
    for id in ["alice", "carol"] {
        let r = post_json_from(local(3), server.api, "/account/login", None, &login_body(id, PASSWORD)).await;
        assert_eq!(code(&r), 0, "{r}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_logs_out_the_other_sessions() {
    let server = TestServer::start().await;
    let web = sign_up(&server, "alice").await;
    let ios = server
        .call_public("/account/login", json!({"userID": "alice", "password": PASSWORD, "platform": platform::IOS}))
        .await["imToken"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ios_conn = Client::connect(server.ws, "alice", &ios, platform::IOS, JSON).await.expect("connect");
    let mut web_conn = Client::connect(server.ws, "alice", &web, platform::WEB, JSON).await.expect("connect");

    let change = |current: &str, new: &str| json!({"userID": "alice", "currentPassword": current, "newPassword": new});
    let wrong = server.post("/account/password/change", Some(&web), change("not it at all", "a new password")).await;
    assert_eq!(code(&wrong), 20001);
    let short = server.post("/account/password/change", Some(&web), change(PASSWORD, "short")).await;
    assert_eq!(code(&short), 1001);
    // Someone else's password is not the caller's business.
    let bob = sign_up(&server, "bob").await;
    let other = server.post("/account/password/change", Some(&bob), change(PASSWORD, "a new password")).await;
    assert_eq!(code(&other), 1002);

    server.call("/account/password/change", &web, change(PASSWORD, "a new password")).await;
    assert_eq!(code(&server.post("/account/login", None, login_body("alice", PASSWORD)).await), 20001);
    server.call_public("/account/login", login_body("alice", "a new password")).await;
    // The iOS session is revoked and kicked; the session that changed the password goes on.
    assert_eq!(
        ios_conn.next_of(palaver_protocol::constant::req::KICK_ONLINE_MSG).await.map(|r| r.req_identifier),
        Some(2002)
    );
    assert_eq!(code(&server.post("/user/get_users_info", Some(&ios), json!({"userIDs": ["alice"]})).await), 1506);
    server.call("/user/get_users_info", &web, json!({"userIDs": ["alice"]})).await;
    assert!(!web_conn.newest_seqs().await.max_seqs.contains_key("x"), "still connected");

    // An admin sets a password without knowing the current one.
    let admin = server.admin_token().await;
    server
        .call("/account/password/change", &admin, json!({"userID": "alice", "newPassword": "set by the admin"}))
        .await;
    server.call_public("/account/login", login_body("alice", "set by the admin")).await;
    server.stop().await;
}

#[tokio::test]
async fn a_blocked_user_is_logged_out_and_cannot_log_in_until_unblocked() {
    let server = TestServer::start().await;
    let token = sign_up(&server, "alice").await;
    let mut conn = Client::connect(server.ws, "alice", &token, platform::WEB, JSON).await.expect("connect");
    let admin = server.admin_token().await;

    let blocked = server.call("/palaver/admin/block_user", &admin, json!({"userID": "alice", "blocked": true})).await;
    assert_eq!(blocked["changed"], true);
    assert!(conn.next_of(palaver_protocol::constant::req::KICK_ONLINE_MSG).await.is_some(), "kicked at once");
    assert_eq!(code(&server.post("/user/get_users_info", Some(&token), json!({"userIDs": []})).await), 1506);
    let login = server.post("/account/login", None, login_body("alice", PASSWORD)).await;
    assert_eq!((code(&login), login["errMsg"].as_str()), (20012, Some("Forbidden")));
    let issued = server.post("/auth/get_user_token", Some(&admin), json!({"userID": "alice", "platformID": 5})).await;
    assert_eq!(code(&issued), 20012);
    let refused = Client::connect(server.ws, "alice", &token, platform::WEB, JSON).await.err().expect("refused");
    assert_eq!(refused.err_code, 1506);
    // Blocking again changes nothing; users that do not exist cannot be blocked.
    let again = server.call("/palaver/admin/block_user", &admin, json!({"userID": "alice", "blocked": true})).await;
    assert_eq!(again["changed"], false);
    let nobody =
        server.post("/palaver/admin/block_user", Some(&admin), json!({"userID": "nobody", "blocked": true})).await;
    assert_eq!(code(&nobody), 1101);

    server.call("/palaver/admin/block_user", &admin, json!({"userID": "alice", "blocked": false})).await;
    server.call_public("/account/login", login_body("alice", PASSWORD)).await;
    server.stop().await;
}

/// Behind a proxy (`trust_forwarded_for`), the address is the last `X-Forwarded-For` entry, not the proxy's.
#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_throttled() {
    let server = TestServer::start_with(|c| {
        c.login_failures_per_account = 1000;
        c.login_failures_per_address = 2;
        c.trust_forwarded_for = true;
    })
    .await;
    sign_up(&server, "alice").await;
    let login = |forwarded: &str, password: &str| {
        let body = login_body("alice", password).to_string();
        let request = format!(
            "POST /account/login HTTP/1.1\r\nHost: x\r\noperationID: op\r\nX-Forwarded-For: {forwarded}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let api = server.api;
        async move {
            let (_, text) = http_raw(api, request.as_bytes()).await.unwrap();
            code(&serde_json::from_str(&text).unwrap())
        }
    };
    // The client cannot choose its address by adding entries: the proxy's (last) one counts.
    assert_eq!(login("1.2.3.4, 10.0.0.1", "guess-guess").await, 20001);
    assert_eq!(login("5.6.7.8, 10.0.0.1", "guess-guess").await, 20001);
    assert_eq!(login("9.9.9.9, 10.0.0.1", PASSWORD).await, 29001);
    assert_eq!(login("10.0.0.2", PASSWORD).await, 0);
    server.stop().await;
}
