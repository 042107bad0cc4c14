//! `palaver admin migrate`: a single node on SQLite gets data, the command copies it into PostgreSQL (a schema of
//! its own) and verifies it, a copy interrupted mid-table resumes, and a node started on the copy serves the
//! same history. PostgreSQL as in `cluster.rs` (`PALAVER_TEST_DATABASE_URL`).

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod node;

use common::*;
use node::*;
use palaver_store::postgres::PgStore;
use std::process::Command;

fn database_url() -> String {
    std::env::var("PALAVER_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs `palaver admin migrate`; returns (success, stdout followed by stderr).
fn migrate(from: &std::path::Path, to: &str, restart: bool) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palaver"));
    cmd.args(["admin", "migrate", "--from"]).arg(from).args(["--to", to]).env("PALAVER_LOG", "warn");
    if restart {
        cmd.arg("--restart");
    }
    let out = cmd.output().unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{output}");
    (out.status.success(), output)
}

/// Waits until the running node has flushed `n` messages from its journal into the database file (about a second
/// after they were acknowledged): what a copy made while it runs can see.
async fn flushed(db: &std::path::Path, n: i64) {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    for _ in 0..600 {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(&mut conn).await.unwrap();
        if count >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the node never flushed {n} messages into {}", db.display());
}

/// Sends `n` 1:1 messages alice → bob (ids `prefix-i`) over the gateway of `ws`.
async fn send(ws: std::net::SocketAddr, api: std::net::SocketAddr, admin: &str, prefix: &str, n: usize) {
    let token = user_token(api, admin, "alice", 5).await;
    let mut alice = Client::connect(ws, "alice", &token, 5, GOB_GZIP).await.unwrap();
    for i in 0..n {
        let ack = alice.send_text_msg(text_msg("alice", "bob", &format!("{prefix}-{i}"), "hi")).await;
        assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_install_moves_to_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, api) = (free_addr(), free_addr());
    let mut node = serve(dir.path(), ws, api);
    wait_healthy(api).await;
    let admin = admin_token(api).await;
    let users =
        serde_json::json!({"users": [{"userID": "alice", "nickname": "A"}, {"userID": "bob", "nickname": "B"}]});
    assert_eq!(post_json(api, "/user/user_register", Some(&admin), &users).await["errCode"], 0);
    let group = serde_json::json!({"ownerUserID": "alice", "memberUserIDs": ["bob"], "groupInfo": {"groupName": "g"}});
    assert_eq!(post_json(api, "/group/create_group", Some(&admin), &group).await["errCode"], 0);
    send(ws, api, &admin, "a", 1200).await;

    let schema = format!("palaver_migrate_{}_{:08x}", std::process::id(), rand::random::<u32>());
    let base = database_url();
    let to = format!("{base}{}options[search_path]={schema}", if base.contains('?') { '&' } else { '?' });
    let db = dir.path().join("palaver.db");

    // A node holds its file alone unless told otherwise: the copy says so, and what to do.
    let (ok, out) = migrate(&db, &to, false);
    assert!(!ok && out.contains("stop the node") && out.contains("--sqlite-shared"), "{out}");
    // Restarted with the file shared, a first copy while the node runs: every table verified.
    node.kill();
    let (dir_s, ws_s, api_s) = (dir.path().to_str().unwrap(), ws.to_string(), api.to_string());
    let shared = ["serve", "--data-dir", dir_s, "--ws-addr", &ws_s, "--api-addr", &api_s, "--admin-secret", SECRET];
    let mut node = spawn(&[&shared[..], &["--sqlite-shared"]].concat());
    wait_healthy(api).await;
    flushed(&db, 1201).await;
    let (ok, out) = migrate(&db, &to, false);
    assert!(ok, "first copy failed: {out}");
    assert!(out.contains("tables copied and verified"), "{out}");
    // 1,200 sent, and the group's creation tip.
    assert!(out.lines().any(|l| l.starts_with("messages") && l.contains("1201 rows")), "{out}");

    // An interrupted copy resumes: pretend the run stopped after seq 500 of the 1:1 conversation (the last
    // conversation in key order: the group's `sg_` and notifications' `n_` sort before `si_`).
    let options: sqlx::postgres::PgConnectOptions = base.parse().unwrap();
    let pg = PgStore::connect_with(options.options([("search_path", &schema)]), 2).await.unwrap();
    let (conv, seq) = ("si_alice_bob".to_string(), 500i64);
    sqlx::query("DELETE FROM messages WHERE conversation_id = $1 AND seq > $2")
        .bind(&conv)
        .bind(seq)
        .execute(pg.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE palaver_migrate_progress SET done = FALSE, copied = 500, last_key = $1 WHERE table_name = 'messages'",
    )
    .bind(format!("t{conv}\ni{seq}"))
    .execute(pg.pool())
    .await
    .unwrap();
    let (ok, out) = migrate(&db, &to, false);
    assert!(ok, "resumed copy failed: {out}");
    let copied_now = |out: &str, table: &str| -> Option<u64> {
        let line = out.lines().find(|l| l.starts_with(table))?;
        line.split("copied now:").nth(1)?.trim_start().split(')').next()?.trim().parse().ok()
    };
    assert_eq!(copied_now(&out, "messages"), Some(700), "only the rest of the table is copied: {out}");
    assert_eq!(copied_now(&out, "users"), Some(0), "finished tables are not copied again: {out}");

    // Writes after the copy are caught by the verification, and a restarted copy takes them.
    send(ws, api, &admin, "b", 10).await;
    flushed(&db, 1211).await;
    let (ok, out) = migrate(&db, &to, false);
    assert!(!ok && out.contains("MISMATCH"), "a stale copy must not verify: {out}");
    // Killed, the node leaves what it had not flushed in its journal; the copy replays it first.
    send(ws, api, &admin, "c", 10).await;
    node.kill();
    let (ok, out) = migrate(&db, &to, true);
    assert!(ok, "restarted copy failed: {out}");
    assert!(out.lines().any(|l| l.starts_with("messages") && l.contains("1221 rows")), "{out}");

    // A node on the copy serves the same history.
    let (ws2, api2) = (free_addr(), free_addr());
    let dir2 = tempfile::tempdir().unwrap();
    let (ws2_s, api2_s) = (ws2.to_string(), api2.to_string());
    let mut node = spawn(&[
        "serve",
        "--data-dir",
        dir2.path().to_str().unwrap(),
        "--ws-addr",
        &ws2_s,
        "--api-addr",
        &api2_s,
        "--admin-secret",
        SECRET,
        "--database-url",
        &to,
    ]);
    wait_healthy(api2).await;
    let token =
        post_json(api2, "/auth/get_user_token", Some(&admin), &serde_json::json!({"platformID": 5, "userID": "bob"}))
            .await;
    assert_eq!(token["errCode"], 0, "the admin token issued on SQLite still works: {token}");
    let token = token["data"]["token"].as_str().unwrap().to_string();
    let mut bob = Client::connect(ws2, "bob", &token, 5, GOB_GZIP).await.unwrap();
    let newest = bob.newest_seqs().await;
    assert_eq!(newest.max_seqs["si_alice_bob"], 1220);
    let resp = bob.pull_range("si_alice_bob", 1201, 1220, 20).await;
    let pulled = palaver_protocol::pb::sdkws::PullMessageBySeqsResp::decode(&resp.data[..]).unwrap();
    let ids: Vec<String> = pulled.msgs["si_alice_bob"].msgs.iter().map(|m| m.client_msg_id.clone()).collect();
    let sent: Vec<String> = ["b", "c"].iter().flat_map(|p| (0..10).map(move |i| format!("{p}-{i}"))).collect();
    assert_eq!(ids, sent);
    node.kill();
    pg.close().await;
    PgStore::drop_schema(&base, &schema).await.unwrap();
}

use prost::Message as _;
