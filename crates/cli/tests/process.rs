//! What the `palaver serve` process sets for itself, read from `/proc` while it runs, and how it runs where it is
//! confined to one CPU.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod node;

use node::*;

/// A node on a fresh data folder, its log written to a file; the folders go when the returned guard does.
async fn logging_node() -> (Node, std::net::SocketAddr, std::path::PathBuf, [tempfile::TempDir; 2]) {
    let (dir, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ws, api) = (free_addr(), free_addr());
    let log = logs.path().join("log");
    let node = serve_logging_to(std::fs::File::create(&log).unwrap(), dir.path(), ws, api);
    wait_healthy(api).await;
    (node, api, log, [dir, logs])
}

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

/// The node's limit on open files, soft and hard, from `/proc/<pid>/limits`.
#[cfg(target_os = "linux")]
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files");
    let mut fields = line.split_whitespace().skip(3);
    (fields.next().unwrap().to_string(), fields.next().unwrap().to_string())
}

/// Started with a low soft limit on open files (1,024 is common), the server raises it to the hard one: every
/// connection is a file (see `raise_open_files_limit` in `src/main.rs`).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_raises_its_open_files_limit_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_addr();
    let node = serve_under(&["prlimit", "--nofile=1024:4096"], dir.path(), free_addr(), api);
    wait_healthy(api).await;
    assert_eq!(open_files_limit(node.0.id()), ("4096".into(), "4096".into()));
}

/// A keep-alive `GET` of a path that does not exist: answered 404 with no body, and no store involved.
const GET_404: &[u8] = b"GET /no-such-path HTTP/1.1\r\nHost: palaver\r\n\r\n";

/// `request` (a `GET` answered without a body, such as [`GET_404`]) on `stream`; the status line's code.
async fn get(stream: &mut tokio::net::TcpStream, request: &[u8]) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(request).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.to_ascii_lowercase().contains("content-length: 0"), "an answer without a body: {head}");
    Ok(head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0))
}

/// A server out of open files accepts again as soon as a connection closes and frees one, rather than pausing a
/// second after each failed accept as axum's own loop does (see `crates/server/src/listener.rs`), and says so once
/// an episode in its log rather than on every try.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_server_out_of_open_files_accepts_again_as_soon_as_a_connection_closes() {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};
    use std::time::{Duration, Instant};
    use tokio::net::TcpStream;

    let (node, api, log, _dirs) = logging_node().await;
    // Room for a handful of connections beyond the files the node holds now.
    let pid = node.0.id();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as u64;
    let limit = Rlimit { current: Some(open + 6), maximum: Some(open + 6) };
    prlimit(Pid::from_raw(pid as i32), Resource::Nofile, limit).unwrap();

    // Connections served and held until the next one waits, unaccepted: the server is out of files. (A second
    // without an answer, where one takes a millisecond: a busy machine does not pass a slow answer for a wait.)
    let unanswered = Duration::from_secs(1);
    let mut held = Vec::new();
    let mut waiting = loop {
        assert!(held.len() < 50, "the server never ran out of files");
        let mut stream = TcpStream::connect(api).await.unwrap();
        match tokio::time::timeout(unanswered, get(&mut stream, GET_404)).await {
            Ok(status) => assert_eq!(status.unwrap(), 404),
            Err(_) => break stream,
        }
        held.push(stream);
    };
    assert!(!held.is_empty(), "served some before it ran out");

    // Each closed connection frees a file for the one waiting, which is then answered; the next one waits in turn.
    // Axum's loop would answer each a second after its failed accept; these take a few milliseconds each.
    const ROUNDS: u32 = 10;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        drop(held.remove(0));
        let mut answered = [0u8; 512];
        let n = tokio::time::timeout(common::WAIT, tokio::io::AsyncReadExt::read(&mut waiting, &mut answered))
            .await
            .expect("answered once a file is free")
            .unwrap();
        assert!(answered[..n].starts_with(b"HTTP/1.1 404"), "{}", String::from_utf8_lossy(&answered[..n]));
        held.push(waiting);
        waiting = TcpStream::connect(api).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut waiting, GET_404).await.unwrap();
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(u64::from(ROUNDS)) / 2, "{ROUNDS} connections let in over {took:?}");

    // One episode, logged at its start and at its end (each round ends one and starts the next: the retry finds
    // the file, then the waiting connection's successor finds none).
    drop((held, waiting));
    drop(node);
    let log = std::fs::read_to_string(&log).unwrap();
    let began = log.matches("cannot accept connections").count();
    let ended = log.matches("accepting connections again").count();
    assert!(began >= 1 && began <= ended + 1 && ended <= began, "{log}");
    assert!(!log.contains("accept error"), "axum's loop did the accepting:\n{log}");
}

/// A client asking again and again for routes that do not exist leaves one warning per path in the log, not one per
/// request (which would also push the real errors out of the admin console's recent list).
#[tokio::test]
async fn an_unknown_route_is_logged_once_however_often_it_is_asked_for() {
    let (node, api, log, _dirs) = logging_node().await;
    let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
    for _ in 0..20 {
        assert_eq!(get(&mut stream, GET_404).await.unwrap(), 404);
    }
    let other = b"GET /another/made-up/path HTTP/1.1\r\nHost: palaver\r\n\r\n";
    assert_eq!(get(&mut stream, other).await.unwrap(), 404);
    drop(node);
    let log = std::fs::read_to_string(&log).unwrap();
    let warned = |path: &str| log.lines().filter(|l| l.contains("no such API route") && l.contains(path)).count();
    assert_eq!(warned("/no-such-path"), 1, "{log}");
    assert_eq!(warned("/another/made-up/path"), 1, "{log}");
}

/// `palaver bench` as BENCHMARKS.md runs it: the server it starts and its load generator each pinned to a CPU (both
/// to the first here, which every machine has), the generator's worker processes on tokio's single-threaded
/// scheduler: a login storm runs through, every login synced without an error.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_pinned_bench_runs_its_server_and_worker_processes() {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("login.json");
    let args = ["bench", "login", "--users", "12", "--rate", "20", "--duration", "1", "--workers", "2"];
    let pinned = ["--server-cpus", "0", "--client-cpus", "0", "--no-progress", "--json", json.to_str().unwrap()];
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_palaver"))
        .args(args.iter().chain(&pinned))
        .env("PALAVER_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["setup"]["workers"], 2, "{report:#}");
    assert_eq!(report["setup"]["client_cpus"], "0", "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    let (logins, skipped) = (report["logins"].as_u64().unwrap(), report["skipped"].as_u64().unwrap());
    assert_eq!(logins + skipped, 20, "{report:#}");
    assert!(logins > 0, "{report:#}");
    assert_eq!(report["messages_synced"].as_u64(), Some(logins), "one seeded message pulled per login: {report:#}");
}
