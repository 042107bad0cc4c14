//! What the `palaver serve` process sets for itself, read from `/proc` while it runs.

#[path = "../../server/tests/common/mod.rs"]
mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Transparent huge pages are off for the server (see `without_huge_pages` in `src/main.rs`): the kernel says so
/// in the process's status.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let api = port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_palaver"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--ws-addr", &port(), "--api-addr", &api, "--admin-secret", SECRET])
        .env("PALAVER_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start palaver");
    let api = api.parse().unwrap();
    let mut healthy = false;
    for _ in 0..300 {
        if http_get(api, "/healthz").await.map(|(s, _)| s == 200).unwrap_or(false) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(healthy, "palaver did not become healthy");
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:")).expect("THP_enabled in /proc/<pid>/status");
    assert_eq!(thp.split_whitespace().nth(1), Some("0"), "{thp}");
}
