//! `palaver`: the one binary.
//!
//! `palaver serve` runs the server with zero configuration (embedded SQLite in `./palaver-data`, gateway on
//! 10001, API on 10002). Settings layer as defaults → `palaver.toml` (or `--config`) → `PALAVER_*` environment
//! → these flags.

use clap::{Parser, Subcommand};
use palaver_server::{Config, Listeners};
use serde_json::{Map, Value};
use std::{net::SocketAddr, path::PathBuf};

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
        Value::Object(map)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // The log, plus the admin console's copy of recent warnings and errors.
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::try_from_env("PALAVER_LOG").unwrap_or_else(|_| "info".into()))
        .with(tracing_subscriber::fmt::layer())
        .with(palaver_server::recent::layer())
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = Config::load(args.config.as_deref(), args.overrides())?;
            let listeners = Listeners::bind(&config).await?;
            palaver_server::run(config, listeners, shutdown_signal()).await
        }
        Command::Bench(args) => palaver_bench::run(*args).await,
    }
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
