//! What the `palaver serve` process sets for itself, read from `/proc` while it runs, and how it runs where it is
//! confined to one CPU.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod node;

use node::*;

/// The node's `/proc/<pid>/status`.
#[cfg(target_os = "linux")]
fn proc_status(node: &Node) -> String {
    std::fs::read_to_string(format!("/proc/{}/status", node.0.id())).unwrap()
}

/// Transparent huge pages are off for the server (see `without_huge_pages` in `src/main.rs`): the kernel says so
/// in the process's status.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_addr();
    let node = serve(dir.path(), free_addr(), api);
    wait_healthy(api).await;
    let status = proc_status(&node);
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:")).expect("THP_enabled in /proc/<pid>/status");
    assert_eq!(thp.split_whitespace().nth(1), Some("0"), "{thp}");
}

/// Confined to one CPU, the server runs its tasks on tokio's single-threaded scheduler (`main` in `src/main.rs`):
/// a login and a 1:1 message go through it end to end.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_server_confined_to_one_cpu_carries_a_message() {
    use palaver_protocol::constant::platform::WEB;
    let dir = tempfile::tempdir().unwrap();
    let (ws, api) = (free_addr(), free_addr());
    let node = serve_under(&["taskset", "-c", "0"], dir.path(), ws, api);
    wait_healthy(api).await;
    let status = proc_status(&node);
    assert!(status.lines().any(|l| l.split_whitespace().eq(["Cpus_allowed_list:", "0"])), "{status}");

    let admin = admin_token(api).await;
    register(api, &admin, &["alice", "bob"]).await;
    let token = user_token(api, &admin, "alice", WEB).await;
    let mut alice = common::Client::connect(ws, "alice", &token, WEB, common::GOB_GZIP).await.unwrap();
    let token = user_token(api, &admin, "bob", WEB).await;
    let mut bob = common::Client::connect(ws, "bob", &token, WEB, common::GOB_GZIP).await.unwrap();
    let ack = alice.send_text_msg(common::text_msg("alice", "bob", "m1", "hello")).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let (_, msg) = bob.next_chat_push().await.expect("bob gets the message");
    assert_eq!(common::text_of(&msg), "hello");
}
