//! The server under test: one the bench starts itself (this very executable, `palaver serve`, on free loopback
//! ports with a temporary data folder, optionally pinned with `taskset`), or a running one named by `--server`.

use anyhow::{Context as _, bail};
use palaver_sdk::RestClient;
use std::{path::PathBuf, process::Stdio, time::Duration};

/// Where the server is and how to administer it.
#[derive(Debug)]
pub(crate) struct Target {
    pub ws_url: String,
    pub api_url: String,
    pub admin_secret: String,
    /// The server's processes, for /proc sampling (spawned, `--server-pid`, or found by their listening port).
    pub pids: Vec<u32>,
    pub spawned: bool,
    _child: Option<Spawned>,
}

#[derive(Debug)]
struct Spawned {
    child: tokio::process::Child,
    dir: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // The server may still hold its files for a moment; a leftover folder in the temp dir is harmless.
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Target {
    /// Starts a server, or describes the one named by `--server ws://…,http://…`.
    pub(crate) async fn new(args: &crate::BenchArgs) -> anyhow::Result<Self> {
        match &args.server {
            Some(spec) => {
                let (ws_url, api_url) = parse_server(spec)?;
                let admin_secret = args
                    .admin_secret
                    .clone()
                    .context("--admin-secret (or PALAVER_ADMIN_SECRET) is needed with --server")?;
                let pids = if args.server_pid.is_empty() {
                    port_of(&ws_url).map(find_listener_pids).unwrap_or_default()
                } else {
                    args.server_pid.clone()
                };
                Ok(Self { ws_url, api_url, admin_secret, pids, spawned: false, _child: None })
            }
            None => spawn(args).await,
        }
    }
}

/// `ws://…,http://…` in either order.
fn parse_server(spec: &str) -> anyhow::Result<(String, String)> {
    let (mut ws, mut api) = (None, None);
    for part in spec.split(',').map(str::trim) {
        if part.starts_with("ws://") {
            ws = Some(part.trim_end_matches('/').to_string());
        } else if part.starts_with("http://") {
            api = Some(part.trim_end_matches('/').to_string());
        } else {
            bail!("--server: {part:?} is neither ws:// nor http://");
        }
    }
    match (ws, api) {
        (Some(ws), Some(api)) => Ok((ws, api)),
        _ => bail!("--server needs both addresses: ws://HOST:PORT,http://HOST:PORT"),
    }
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn spawn(args: &crate::BenchArgs) -> anyhow::Result<Target> {
    let exe = match &args.server_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("finding the palaver executable")?,
    };
    let dir = std::env::temp_dir().join(format!("palaver-bench-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (ws_port, api_port) = (free_port()?, free_port()?);
    let admin_secret = format!("bench-{:016x}", rand::random::<u64>());
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path)?;
    let mut command = match &args.server_cpus {
        Some(cpus) => {
            let mut c = tokio::process::Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&exe);
            c
        }
        None => tokio::process::Command::new(&exe),
    };
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--ws-addr")
        .arg(format!("127.0.0.1:{ws_port}"))
        .arg("--api-addr")
        .arg(format!("127.0.0.1:{api_port}"))
        .arg("--admin-secret")
        .arg(&admin_secret)
        // No stray ./palaver.toml may configure the server under test.
        .current_dir(&dir)
        .env("PALAVER_LOG", std::env::var("PALAVER_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        // The bench's own: the server would refuse it as an unknown setting.
        .env_remove("PALAVER_SERVER_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let child = command.spawn().with_context(|| format!("starting {} serve", exe.display()));
    let mut spawned = Spawned { child: child?, dir };
    let pids = spawned.child.id().into_iter().collect();
    let api_url = format!("http://127.0.0.1:{api_port}");
    let rest = RestClient::new(&api_url).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if rest.get_admin_token(&admin_secret, "imAdmin").await.is_ok() {
            break;
        }
        if let Some(status) = spawned.child.try_wait()? {
            bail!("the server exited ({status}) before answering:\n{}", tail(&log_path));
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the server did not answer within 30 s:\n{}", tail(&log_path));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Target {
        ws_url: format!("ws://127.0.0.1:{ws_port}"),
        api_url,
        admin_secret,
        pids,
        spawned: true,
        _child: Some(spawned),
    })
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= 30 {
        return lines.join("\n");
    }
    // The error comes first, before any backtrace; then the last words.
    format!("{}\n…\n{}", lines[..12].join("\n"), lines[lines.len() - 12..].join("\n"))
}

/// The processes listening on TCP `port` (one, or each node sharing it with `SO_REUSEPORT`): the sockets'
/// inodes from /proc/net/tcp{,6}, then the processes holding them among /proc/*/fd.
fn find_listener_pids(port: u16) -> Vec<u32> {
    let mut wanted = std::collections::HashSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let listening = f.get(3) == Some(&"0A");
            let local_port = f.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if let (true, Some(inode)) = (listening && local_port == Some(port), f.get(9)) {
                wanted.insert(format!("socket:[{inode}]"));
            }
        }
    }
    let mut pids = Vec::new();
    if wanted.is_empty() {
        return pids;
    }
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| wanted.contains(l.to_string_lossy().as_ref())));
        if holds {
            pids.push(pid);
        }
    }
    pids
}

/// Set in the environment of a bench that already runs pinned (not `PALAVER_*`: the server would refuse it
/// as an unknown setting).
const PINNED_ENV: &str = "BENCH_PINNED_CPUS";

/// Pins the load generator to `cpus` (a `taskset` list such as `0` or `0,2-3`) by re-executing this very
/// command under `taskset -c`: pinning the running process would leave its async runtime with one thread per
/// CPU of the machine, all now sharing the pinned ones. Workers spawned later inherit the pinning. Returns
/// only if the process is already pinned (or the executable is not `palaver`, as in tests, where it pins in
/// place).
pub(crate) fn pin_self(cpus: &str) -> anyhow::Result<()> {
    if std::env::var_os(PINNED_ENV).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding the palaver executable")?;
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "bench") {
        use std::os::unix::process::CommandExt as _;
        let err =
            std::process::Command::new("taskset").arg("-c").arg(cpus).arg(exe).args(args).env(PINNED_ENV, cpus).exec();
        return Err(err).context("re-executing under taskset");
    }
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    anyhow::ensure!(status.success(), "taskset -a -p -c {cpus} failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_spec_parses_in_either_order() {
        let (ws, api) = parse_server("http://127.0.0.1:2/,ws://127.0.0.1:1").unwrap();
        assert_eq!((ws.as_str(), api.as_str()), ("ws://127.0.0.1:1", "http://127.0.0.1:2"));
        assert!(parse_server("ws://a:1").is_err());
        assert_eq!(port_of("ws://127.0.0.1:10001"), Some(10001));
    }

    #[test]
    fn finds_the_process_listening_on_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(find_listener_pids(port), vec![std::process::id()]);
    }
}
