//! The Palaver server, as a library.
//!
//! [`run`] serves a [`Config`] on two already-bound listeners until a shutdown future resolves; the `palaver`
//! binary is a thin wrapper, and tests bind `127.0.0.1:0` and drive the same code over real sockets.
//!
//! Layout, outside in (dependencies point inward only):
//! - `listener`, `admission` and `serve`: accepting connections, bounding how many are opening at once, and serving
//!   HTTP/1 on them with deadlines for what a client sends;
//! - [`gateway`] (WebSocket, port 10001) and [`api`] (REST, port 10002): parse, authenticate, call one service,
//!   map the result to OpenIM's envelope and codes;
//! - [`service`]: the business rules, one module per domain, over the store and the hub;
//! - [`bus`]: delivery, kicks and presence across nodes (in-process on one node, NATS in a cluster);
//! - [`hub`]: this node's live connections and push delivery to them;
//! - storage is the `palaver-store` crate behind its `Store` trait.

mod admission;
pub mod api;
pub mod bus;
pub mod config;
pub mod error;
pub mod gateway;
pub mod hub;
mod listener;
pub mod recent;
mod serve;
pub mod service;
pub mod storage;

pub use config::Config;

use anyhow::Context as _;
use listener::{Acceptor, bind};
use palaver_store::sqlite::{Sharing, SqliteStore};
use palaver_store::{Store, postgres::PgStore};
use service::App;
use std::{future::Future, path::Path, sync::Arc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The two listeners the server serves: the WebSocket gateway and the REST API.
#[derive(Debug)]
pub struct Listeners {
    pub ws: TcpListener,
    pub api: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config` (with `SO_REUSEPORT` if `reuse_port`).
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let ws =
            bind(config.ws_addr, config.reuse_port).with_context(|| format!("binding gateway {}", config.ws_addr))?;
        let api =
            bind(config.api_addr, config.reuse_port).with_context(|| format!("binding API {}", config.api_addr))?;
        Ok(Self { ws, api })
    }
}

/// Opens the data folder and the store, then serves until `shutdown` resolves. Connections are then closed and
/// the function returns once both listeners have stopped.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
    let admin_secret = admin_secret(&config)?;
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(
            PgStore::connect(url, config.database_max_connections)
                .await
                .with_context(|| format!("opening PostgreSQL at {}", redact(url)))?,
        ),
        None => {
            let db_path = config.data_dir.join("palaver.db");
            let sharing = if config.sqlite_shared { Sharing::Shared } else { Sharing::Exclusive };
            let store = SqliteStore::open_with(&db_path, sharing).await;
            Arc::new(store.with_context(|| format!("opening {}", db_path.display()))?)
        }
    };
    let blobs =
        storage::Blobs::open(&config.objects, &config.data_dir, &admin_secret).context("opening the object storage")?;
    let hub = Arc::new(hub::Hub::default());
    let bus = match &config.nats_url {
        Some(url) => bus::Bus::nats(hub.clone(), store.clone(), url, &config.cluster_name).await?,
        None => bus::Bus::in_process(hub.clone(), store.clone()),
    };
    let app = App::with_bus(config, store, blobs, admin_secret, hub, bus);

    let stop = CancellationToken::new();
    tracing::info!(
        gateway = %listeners.ws.local_addr()?,
        api = %listeners.api.local_addr()?,
        data = %app.config.data_dir.display(),
        database = if app.config.database_url.is_some() { "postgresql" } else { "sqlite" },
        node = app.bus.node_id().unwrap_or("single"),
        "palaver serving"
    );
    let max_opening = app.config.max_opening_connections;
    let gateway = serve::serve(
        Acceptor::new(listeners.ws, "gateway", max_opening),
        gateway::router(app.clone()),
        app.config.read_timeout(),
        stop.clone(),
    );
    let api = serve::serve(
        Acceptor::new(listeners.api, "API", max_opening),
        api::router(app.clone()),
        app.config.read_timeout(),
        stop.clone(),
    );
    let stopper = {
        let (stop, app) = (stop.clone(), app.clone());
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            app.hub.close_all();
            stop.cancel();
        })
    };
    let sweeper = tokio::spawn(sweep_uploads(app.clone(), stop.clone()));
    // The accept loops run as tasks on the runtime's workers, not inside the caller's `block_on` (the main
    // thread's, under `#[tokio::main]`): there, every accepted connection woke the main thread and handed the new
    // connection over to a worker, two context switches per connection (about one per login in `palaver bench
    // login` on one core).
    let gateway = tokio::spawn(gateway);
    let api = tokio::spawn(api);
    let (g, a) = tokio::join!(gateway, api);
    stopper.abort();
    sweeper.abort();
    app.bus.shutdown().await;
    g.context("gateway task")?;
    a.context("API task")?;
    Ok(())
}

/// `url` without its password, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Ends abandoned uploads (past their expiry) every `objects.sweep_interval_secs`, from the start on, until
/// `stop`.
async fn sweep_uploads(app: Arc<App>, stop: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(app.config.objects.sweep_interval_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        match app.sweep_expired_uploads().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "removed abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "cannot look for abandoned uploads"),
        }
    }
}

/// The admin secret: from the config, else from `<data_dir>/admin-secret`, else newly generated into that file.
fn admin_secret(config: &Config) -> anyhow::Result<String> {
    if let Some(secret) = &config.admin_secret {
        anyhow::ensure!(secret.len() >= 8, "admin_secret must be at least 8 characters");
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("admin-secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        let secret = secret.trim().to_string();
        anyhow::ensure!(!secret.is_empty(), "{} is empty", path.display());
        tracing::info!(file = %path.display(), "admin secret read");
        return Ok(secret);
    }
    let secret = service::random_hex(24);
    write_private(&path, &secret)?;
    tracing::warn!(file = %path.display(), "generated a new admin secret; /auth/get_admin_token needs it");
    Ok(secret)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
