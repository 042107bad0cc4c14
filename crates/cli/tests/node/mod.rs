//! The real `palaver` binary as a test's node: started with any arguments, killed when dropped (also when the test
//! fails half-way), and waited for until its API answers. Shared by the tests that run the binary.
#![allow(dead_code, unreachable_pub)]

use super::common::{SECRET, http_get, post_json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free address on 127.0.0.1 (bound, read, released: the node rebinds it at once).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A running `palaver` process.
pub struct Node(pub Child);

impl Node {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `palaver ARGS…`, logging warnings and errors only.
pub fn spawn(args: &[&str]) -> Node {
    spawn_under(&[], args)
}

/// `WRAPPER… palaver ARGS…` (e.g. `taskset -c 0`), logging warnings and errors only.
pub fn spawn_under(wrapper: &[&str], args: &[&str]) -> Node {
    start(wrapper, args, Stdio::null())
}

/// `WRAPPER… palaver ARGS…`, its log (warnings and errors, written to standard output) to `log`.
fn start(wrapper: &[&str], args: &[&str], log: impl Into<Stdio>) -> Node {
    let mut argv = wrapper.iter().copied().chain([env!("CARGO_BIN_EXE_palaver")]).chain(args.iter().copied());
    let mut command = Command::new(argv.next().expect("a program"));
    Node(
        command
            .args(argv)
            .env("PALAVER_LOG", "warn")
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start palaver"),
    )
}

/// `palaver serve` on the SQLite database in `dir`, with the tests' admin secret.
pub fn serve(dir: &Path, ws: SocketAddr, api: SocketAddr) -> Node {
    serve_under(&[], dir, ws, api)
}

/// [`serve`] under `wrapper` (see [`spawn_under`]).
pub fn serve_under(wrapper: &[&str], dir: &Path, ws: SocketAddr, api: SocketAddr) -> Node {
    serve_with(wrapper, dir, ws, api, Stdio::null())
}

/// [`serve`], its log to the file `log`.
pub fn serve_logging_to(log: std::fs::File, dir: &Path, ws: SocketAddr, api: SocketAddr) -> Node {
    serve_with(&[], dir, ws, api, log)
}

fn serve_with(wrapper: &[&str], dir: &Path, ws: SocketAddr, api: SocketAddr, log: impl Into<Stdio>) -> Node {
    let (dir, ws, api) = (dir.to_str().unwrap(), ws.to_string(), api.to_string());
    let args = ["serve", "--data-dir", dir, "--ws-addr", &ws, "--api-addr", &api, "--admin-secret", SECRET];
    start(wrapper, &args, log)
}

/// Waits until the node at `api` answers `/healthz`.
pub async fn wait_healthy(api: SocketAddr) {
    for _ in 0..500 {
        if http_get(api, "/healthz").await.map(|(s, _)| s == 200).unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("palaver did not become healthy");
}

/// The admin's token from the node at `api`.
pub async fn admin_token(api: SocketAddr) -> String {
    let r = post_json(api, "/auth/get_admin_token", None, &serde_json::json!({"secret": SECRET, "userID": "imAdmin"}))
        .await;
    r["data"]["token"].as_str().unwrap().to_string()
}

/// Registers users `ids` (nickname = id).
pub async fn register(api: SocketAddr, admin: &str, ids: &[impl AsRef<str>]) {
    let users: Vec<_> =
        ids.iter().map(|id| serde_json::json!({"userID": id.as_ref(), "nickname": id.as_ref()})).collect();
    let r = post_json(api, "/user/user_register", Some(admin), &serde_json::json!({"users": users})).await;
    assert_eq!(r["errCode"], 0, "{r}");
}

/// A token for `user` on `platform_id`.
pub async fn user_token(api: SocketAddr, admin: &str, user: &str, platform_id: i32) -> String {
    let body = serde_json::json!({"platformID": platform_id, "userID": user});
    let r = post_json(api, "/auth/get_user_token", Some(admin), &body).await;
    assert_eq!(r["errCode"], 0, "{r}");
    r["data"]["token"].as_str().unwrap().to_string()
}
