//! `palaver`: the one binary.
//!
//! `palaver serve` runs the server with zero configuration (embedded SQLite in `./palaver-data`, gateway on
//! 10001, API on 10002). Settings layer as defaults → `palaver.toml` (or `--config`) → `PALAVER_*` environment
//! → these flags.

use clap::{Parser, Subcommand};
use palaver_server::{Config, Listeners};
use serde_json::{Map, Value};
use std::{net::SocketAddr, path::PathBuf};

/// mimalloc rather than glibc's malloc. A message to a 10,000-member group is 10,000 pushes queued, written and
/// freed on as many connections at once, and glibc's allocator then spent a third of the server's time in
/// `_int_malloc` sorting its heap of freed chunks (`palaver bench group`: 282 → 146 ms of CPU per send with
/// mimalloc). It costs memory, measured before adopting it: ~20 MiB more at start, 7.06 → 7.35 KiB per idle
/// connection (BENCHMARKS.md). Its v2 line (the workspace's `v2` feature), not the crate's default v3: interleaved on
/// a Zen 4, a login's server CPU 0.361 → 0.335 ms (medians of six pairs, lower in five), a group send's 145.9 →
/// 134.7 and 134.0 → 129.9 ms, a chat message's the same, and an idle connection 7.87 → 7.70 KiB ("The third
/// machine, a sixth session" in BENCHMARKS.md). The `system-allocator` feature leaves the system's malloc in its
/// place, for `scripts/bench-allocs`: valgrind's DHAT counts the calls to malloc, and mimalloc's never reach it.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "palaver", version, about = "An OpenIM-compatible instant-messaging server in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Measure a server with virtual users (the load generator).
    Bench(Box<palaver_bench::BenchArgs>),
    /// Administration.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Copy a single-node install (its SQLite file) into PostgreSQL, then verify every table by row count and
    /// checksum. Resumable: run it again after an interruption and it goes on where it stopped.
    Migrate {
        /// The SQLite database: `<data_dir>/palaver.db`. May be in use by a node started with --sqlite-shared
        /// (stop the node and run again with --restart to copy what was written meanwhile).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL URL (postgres://…; `?options[search_path]=NAME` for a schema other than public).
        #[arg(long)]
        to: String,
        /// Forget a previous run's progress and copy every row again (upserts: nothing is duplicated).
        #[arg(long)]
        restart: bool,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML). Default: ./palaver.toml if it exists.
    #[arg(long, env = "PALAVER_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder: database, objects, generated admin secret.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// WebSocket gateway address.
    #[arg(long)]
    ws_addr: Option<SocketAddr>,
    /// REST API address.
    #[arg(long)]
    api_addr: Option<SocketAddr>,
    /// Admin secret for /auth/get_admin_token (default: generated into the data folder on first start).
    #[arg(long)]
    admin_secret: Option<String>,
    /// Multi-login policy: 0 keep all, 1 same platform kicks (default), 4 same class kicks, 5 PC and other.
    #[arg(long)]
    multi_login_policy: Option<i32>,
    /// PostgreSQL URL (postgres://…) instead of the embedded SQLite; env PALAVER_DATABASE_URL.
    #[arg(long)]
    database_url: Option<String>,
    /// NATS URL (nats://…) to run as one node of a cluster; env PALAVER_NATS_URL.
    #[arg(long)]
    nats_url: Option<String>,
    /// Prefix of the cluster's NATS subjects (default "palaver").
    #[arg(long)]
    cluster_name: Option<String>,
    /// Bind with SO_REUSEPORT, so several nodes on one machine share the ports.
    #[arg(long)]
    reuse_port: bool,
    /// Let other processes open the SQLite file while the node runs (admin migrate, sqlite3, backup tools).
    #[arg(long)]
    sqlite_shared: bool,
}

impl ServeArgs {
    /// The flags actually given, as a figment layer over file and environment. (The `PALAVER_*` variables are
    /// read by the config loader, not by clap, so a flag always wins over the environment.)
    fn overrides(&self) -> Value {
        let mut map = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_string(), value);
            }
        };
        put("data_dir", self.data_dir.as_ref().map(|p| Value::from(p.display().to_string())));
        put("ws_addr", self.ws_addr.map(|a| Value::from(a.to_string())));
        put("api_addr", self.api_addr.map(|a| Value::from(a.to_string())));
        put("admin_secret", self.admin_secret.clone().map(Value::from));
        put("multi_login_policy", self.multi_login_policy.map(Value::from));
        put("database_url", self.database_url.clone().map(Value::from));
        put("nats_url", self.nats_url.clone().map(Value::from));
        put("cluster_name", self.cluster_name.clone().map(Value::from));
        put("reuse_port", self.reuse_port.then_some(Value::from(true)));
        put("sqlite_shared", self.sqlite_shared.then_some(Value::from(true)));
        Value::Object(map)
    }
}

/// The server confined to one CPU (`taskset`, a one-vCPU machine) runs on tokio's single-threaded scheduler:
/// with one worker, the work-stealing scheduler has no one to steal from, and its cross-thread queues and wakeups
/// cost without serving (a login ~3 % less CPU over seven interleaved pairs of `palaver bench login`, lower in six;
/// chat, group and idle unchanged; BENCHMARKS.md). So does the load generator pinned to one CPU (`--client-cpus`),
/// each of its worker processes: ~6 % less of its CPU per login in three interleaved pairs, and with the generator's
/// core less full the server's per login fell 2–9 %. The admin commands keep the multi-threaded one.
fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut runtime = if one_cpu && matches!(cli.command, Command::Serve(_) | Command::Bench(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all().build()?.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // The log, plus the admin console's copy of recent warnings and errors.
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::try_from_env("PALAVER_LOG").unwrap_or_else(|_| "info".into()))
        // Colours only on a terminal: a log redirected to a file or a journal gets plain text.
        .with(tracing_subscriber::fmt::layer().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())))
        .with(palaver_server::recent::layer())
        .init();
    raise_open_files_limit();
    without_huge_pages();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::load(args.config.as_deref(), args.overrides())?;
            let listeners = Listeners::bind(&config).await?;
            palaver_server::run(config, listeners, shutdown_signal()).await
        }
        Command::Bench(args) => palaver_bench::run(*args).await,
        Command::Admin(AdminCommand::Migrate { from, to, restart }) => migrate(&from, &to, restart).await,
    }
}

/// Turns transparent huge pages off for this process. mimalloc asks for them on its arenas (`MADV_HUGEPAGE`), so
/// the first touch of each 2 MiB of fresh memory zeroes all of it at once, on whichever thread touched it: at a
/// chat run's start, when the append writer's maps and the connections' buffers grow, that was ~8 % of the
/// server's CPU and all on the writer's thread, in the path of every acknowledgement (`perf`, BENCHMARKS.md "A
/// sixth machine"); in a login storm's load generator, whose connections come and go, 4 % of its CPU. With 4 KiB
/// pages memory is zeroed as it is used, a page at a time.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "transparent huge pages stay as the system sets them");
    }
}

/// Raises this process's limit on open files to the most it may have (the soft limit to the hard one), as Go's
/// runtime does for every Go program, OpenIM's servers among them. Every connection is a file; the soft limit
/// many systems start a shell with (1,024) would hold about a thousand devices, while the hard one is typically
/// hundreds of thousands. For every command: the server's connections, the load generator's (its worker processes
/// inherit the limit), and nothing lost for the others.
fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum
            && let Err(e) = setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, ..limit })
        {
            tracing::warn!(error = %e, soft = ?limit.current, "the limit on open files stays where it is");
        }
    }
}

/// `palaver admin migrate`: copies, then prints one line per table and fails unless every table matches.
async fn migrate(from: &std::path::Path, to: &str, restart: bool) -> anyhow::Result<()> {
    let mut last_print = std::time::Instant::now();
    let reports = palaver_store::migrate::sqlite_to_postgres(from, to, restart, |table, rows| {
        if last_print.elapsed() >= std::time::Duration::from_secs(1) {
            eprintln!("  {table}: {rows} rows copied");
            last_print = std::time::Instant::now();
        }
    })
    .await?;
    let mut bad = Vec::new();
    for r in &reports {
        let verdict = if r.matches() { "ok" } else { "MISMATCH" };
        println!(
            "{:<20} {:>10} rows (copied now: {:>10})  checksum {:016x} / {:016x}  {verdict}",
            r.table, r.target_rows, r.copied, r.source_checksum, r.target_checksum
        );
        if !r.matches() {
            bad.push(r.table.clone());
        }
    }
    anyhow::ensure!(
        bad.is_empty(),
        "tables differ after the copy: {} (was the source written to meanwhile? stop it and run again with --restart)",
        bad.join(", ")
    );
    println!("all {} tables copied and verified", reports.len());
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
