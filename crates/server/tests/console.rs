//! The admin console's routes (`/palaver/admin/*`) and the embedded web files, over real HTTP; the gateway on
//! the API port's `/msg_gateway`.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use palaver_protocol::{constant::platform, envelope::Req, pb::sdkws};
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// A GET with extra header lines; returns the status line's code, the head (lower-cased) and the body.
async fn get(server: &TestServer, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(server.api).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut buf)).await.unwrap().unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, buf[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn web_pages_and_static_files_are_served_with_their_cache_rules() {
    let server = TestServer::start().await;
    let (status, head, body) = get(&server, "/", "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    assert!(header(&head, "content-security-policy").is_some_and(|c| c.contains("script-src 'self'")));
    let html = String::from_utf8(body).unwrap();
    let etag = header(&head, "etag").expect("etag").to_string();
    // Revalidation answers 304 without a body.
    let (status, _, body) = get(&server, "/", &format!("If-None-Match: {etag}\r\n")).await;
    assert_eq!((status, body.len()), (304, 0));

    // The page loads its files from a versioned prefix, cached for good.
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script src");
    assert!(script.starts_with("/static/") && script.ends_with("/js/app.js"), "{script}");
    let (status, head, body) = get(&server, script, "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(header(&head, "cache-control"), Some("public, max-age=31536000, immutable"));
    assert!(String::from_utf8(body).unwrap().contains("import"));
    let css = script.replace("js/app.js", "css/base.css");
    assert_eq!(header(&get(&server, &css, "").await.1, "content-type"), Some("text/css; charset=utf-8"));
    // Another version still gets the file, uncached; unknown files and HTML under /static do not exist.
    let (status, head, _) = get(&server, "/static/0000/js/app.js", "").await;
    assert_eq!((status, header(&head, "cache-control")), (200, Some("no-cache")));
    assert_eq!(get(&server, &script.replace("app.js", "nope.js"), "").await.0, 404);
    assert_eq!(get(&server, &script.replace("js/app.js", "index.html"), "").await.0, 404);
    assert_eq!(get(&server, &script.replace("js/app.js", "../Cargo.toml"), "").await.0, 404);

    let (status, head, body) = get(&server, "/admin", "").await;
    assert_eq!((status, header(&head, "cache-control")), (200, Some("no-cache")));
    assert!(String::from_utf8(body).unwrap().contains("/js/admin.js"));
    assert_eq!(get(&server, "/favicon.ico", "").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn the_api_port_serves_the_gateway_for_the_web_client() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice"]).await;
    let token = server.user_token(&admin, "alice", platform::WEB).await;
    let url = format!(
        "ws://{}/msg_gateway?sendID=alice&token={token}&platformID=5&operationID=op&isBackground=false&isMsgResp=true&sdkType=js",
        server.api
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade");
    let Message::Text(first) = ws.next().await.unwrap().unwrap() else { panic!("first frame must be text") };
    assert_eq!(serde_json::from_str::<Value>(&first).unwrap()["errCode"], 0);
    let req = Req {
        req_identifier: 1001,
        send_id: "alice".into(),
        operation_id: "op".into(),
        msg_incr: "1".into(),
        data: sdkws::GetMaxSeqReq { user_id: "alice".into() }.encode_to_vec(),
        ..Req::default()
    };
    ws.send(Message::Binary(JSON.encode_req(&req).into())).await.unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => break JSON.decode_resp(&b).unwrap(),
            _ => continue,
        }
    };
    assert_eq!((reply.req_identifier, reply.msg_incr.as_str(), reply.err_code), (1001, "1", 0));
    server.stop().await;
}

#[tokio::test]
async fn admin_routes_need_an_admin_token() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice"]).await;
    let alice = server.user_token(&admin, "alice", platform::WEB).await;
    for route in [
        "/palaver/admin/overview",
        "/palaver/admin/search_users",
        "/palaver/admin/search_groups",
        "/palaver/admin/block_user",
        "/palaver/admin/force_logout",
    ] {
        let envelope = server.post(route, Some(&alice), json!({"userID": "alice", "blocked": true})).await;
        assert_eq!(envelope["errCode"], 1002, "{route}: {envelope}");
        assert_eq!(server.post(route, None, json!({})).await["errCode"], 1001, "{route} without a token");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_overview_counts_users_connections_and_messages() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", JSON).await;
    server.register(&admin, &["bob"]).await;
    let ios = server.user_token(&admin, "bob", platform::IOS).await;
    let _bob = Client::connect(server.ws, "bob", &ios, platform::IOS, GOB_GZIP).await.expect("connect");
    for i in 0..3 {
        let ack = alice.send_text_msg(text_msg("alice", "bob", &format!("m{i}"), "hi")).await;
        assert_eq!(ack.err_code, 0);
    }
    // A resend stores nothing and counts nothing.
    alice.send_text_msg(text_msg("alice", "bob", "m0", "hi")).await;

    let o = server.call("/palaver/admin/overview", &admin, json!({})).await;
    assert_eq!(o["health"], "ok");
    assert_eq!(o["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!((o["users"].as_i64(), o["messages"].as_i64(), o["groups"].as_i64()), (Some(2), Some(3), Some(0)));
    assert_eq!(o["connections"], json!({"IOS": 1, "Web": 1}));
    assert_eq!((o["connectionCount"].as_u64(), o["onlineUsers"].as_u64()), (Some(2), Some(2)));
    let messages = &o["rates"]["messages"];
    assert_eq!(messages["total"], 3);
    let per_minute: Vec<u64> = serde_json::from_value(messages["perMinute"].clone()).unwrap();
    assert_eq!((per_minute.len(), per_minute.iter().sum::<u64>()), (60, 3));
    assert_eq!(o["rates"]["connections"]["total"], 2);
    assert!(o["storage"]["databaseBytes"].as_u64().unwrap() > 0, "{o}");
    assert!(o["recentErrors"].is_array());
    server.stop().await;
}

#[tokio::test]
async fn the_console_searches_users_and_groups_and_forces_logouts() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", JSON).await;
    server.register(&admin, &["alfred", "bob"]).await;
    server.call("/palaver/admin/block_user", &admin, json!({"userID": "bob", "blocked": true})).await;
    server
        .call(
            "/group/create_group",
            &admin,
            json!({"ownerUserID": "alice", "memberUserIDs": ["bob"], "groupInfo": {"groupName": "Book club", "groupType": 2}}),
        )
        .await;

    let found = server
        .call(
            "/palaver/admin/search_users",
            &admin,
            json!({"keyword": "AL", "pagination": {"pageNumber": 1, "showNumber": 10}}),
        )
        .await;
    assert_eq!(found["total"], 2);
    let rows: Vec<&Value> = found["users"].as_array().unwrap().iter().collect();
    let alice_row = rows.iter().find(|u| u["userID"] == "alice").expect("alice");
    assert_eq!((&alice_row["onlinePlatformIDs"], &alice_row["blocked"]), (&json!([5]), &json!(false)));
    assert_eq!(alice_row["nickname"], "ALICE");
    let bob = server.call("/palaver/admin/search_users", &admin, json!({"keyword": "bob"})).await;
    assert_eq!(bob["users"][0]["blocked"], true);
    let bad_page = server
        .post("/palaver/admin/search_users", Some(&admin), json!({"pagination": {"pageNumber": 0, "showNumber": 10}}))
        .await;
    assert_eq!(bad_page["errCode"], 1001);

    let groups = server.call("/palaver/admin/search_groups", &admin, json!({"keyword": "book"})).await;
    assert_eq!((groups["total"].as_i64(), groups["groups"][0]["memberCount"].as_u64()), (Some(1), Some(2)));
    assert_eq!(groups["groups"][0]["groupName"], "Book club");

    // Force logout: every platform's token revoked, the connection kicked.
    server.call("/palaver/admin/force_logout", &admin, json!({"userID": "alice"})).await;
    assert!(alice.next_of(palaver_protocol::constant::req::KICK_ONLINE_MSG).await.is_some());
    let nobody = server.post("/palaver/admin/force_logout", Some(&admin), json!({"userID": "nobody"})).await;
    assert_eq!(nobody["errCode"], 1101);
    server.stop().await;
}
