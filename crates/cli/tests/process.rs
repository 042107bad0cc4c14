//! What the `palaver serve` process sets for itself, read from `/proc` while it runs.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod node;

use node::*;

/// Transparent huge pages are off for the server (see `without_huge_pages` in `src/main.rs`): the kernel says so
/// in the process's status.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_addr();
    let node = serve(dir.path(), free_addr(), api);
    wait_healthy(api).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.0.id())).unwrap();
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:")).expect("THP_enabled in /proc/<pid>/status");
    assert_eq!(thp.split_whitespace().nth(1), Some("0"), "{thp}");
}
