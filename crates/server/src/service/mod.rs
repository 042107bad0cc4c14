//! The services: Palaver's business rules, one module per domain, as `impl App` blocks.
//!
//! Handlers (REST in `api`, WebSocket in `gateway`) parse and authenticate, make one call here, and map the
//! result. Everything that decides *whether* and *what* lives here; SQL lives in the store; sockets in the
//! gateway and the hub.

mod account;
pub mod admin;
mod auth;
mod conversation;
mod group;
mod locks;
mod message_state;
mod msg;
mod notify;
pub mod object;
mod presence;
mod relation;
pub mod stats;
pub mod sync;
mod third;
mod throttle;
pub mod token_cache;
mod user;
pub(crate) mod wire;

pub use account::{MIN_PASSWORD_CHARS, NewAccount, Registered};
pub use auth::Caller;
pub(crate) use auth::constant_time_eq;
pub use conversation::{ConversationView, MAX_PAGE as MAX_CONVERSATION_PAGE};
pub use group::{
    GroupCache, GroupRequestView, GroupSnapshot, JoinGroup, MAX_APPLICATION_PAGE, MAX_GROUP_PAGE, MAX_MEMBER_PAGE,
    MemberChange, MemberState, MembersSynced,
};
pub use message_state::DeleteSync;
pub(crate) use msg::push_frame;
pub use notify::{Delivery, Notification, NotifyOptions};
pub use relation::{FriendView, MAX_FRIEND_PAGE};
pub use third::LogFile;
pub use user::{MAX_REGISTER_USERS, MAX_USER_IDS};

use crate::{bus::Bus, config::Config, hub::Hub, storage::Blobs};
use palaver_store::Store;
use std::sync::Arc;

/// The server's shared state: configuration, storage, the connection hub and the services over them.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// This node's connections.
    pub hub: Arc<Hub>,
    /// Delivery, kicks and presence across nodes (in-process on a single node); see `bus`.
    pub bus: Arc<Bus>,
    /// Members, roles and mutes of groups, for the message path (see `group::cache`). The bus's own: it
    /// applies other nodes' changes, and clears it when it may have missed one.
    pub group_cache: Arc<GroupCache>,
    /// Where uploaded files go (local disk or S3).
    pub blobs: Blobs,
    admin_secret: String,
    /// Counters for the admin console.
    pub stats: stats::Stats,
    /// Failed password logins per account and per address (`account`).
    login_throttle: throttle::LoginThrottle,
    /// Password hashes computed at once: each holds a core and 19 MiB for tens of milliseconds.
    hash_permits: tokio::sync::Semaphore,
    /// The admin console's storage figures, recomputed at most every few seconds (`admin`).
    storage_cache: std::sync::Mutex<Option<(std::time::Instant, admin::StorageUsage)>>,
    /// Serialises "commit, then push" per conversation, so pushes of one conversation leave in seq order even
    /// when several senders race.
    conversation_locks: locks::KeyedLocks,
    /// Serialises a group's changes with the pushes of their notifications (see `group`). Its own set, taken
    /// before a conversation's lock (a change stores its tip in the group's chat while holding it): in the
    /// conversations' set the group's key would now and then share a shard with its chat's and deadlock.
    group_locks: locks::KeyedLocks,
    /// Serialises completing and sweeping one upload.
    upload_locks: locks::KeyedLocks,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("config", &self.config).finish_non_exhaustive()
    }
}

const CONVERSATION_LOCK_SHARDS: usize = 1024;
const GROUP_LOCK_SHARDS: usize = 256;
const UPLOAD_LOCK_SHARDS: usize = 64;

impl App {
    /// The state over `store`, with the object storage `config` names opened here, on the in-process bus.
    ///
    /// # Panics
    /// If the object storage cannot be opened (for the local backend: its folders cannot be created under
    /// `data_dir`). [`crate::run`] opens it itself and reports that as an error, through [`App::with_bus`].
    pub fn new(config: Config, store: Arc<dyn Store>, admin_secret: String) -> Arc<Self> {
        let blobs = Blobs::open(&config.objects, &config.data_dir, &admin_secret)
            .unwrap_or_else(|e| panic!("opening the object storage: {e:#}"));
        Self::with_blobs(config, store, blobs, admin_secret)
    }

    /// The state over `store` and `blobs`, on the in-process bus (one node).
    pub fn with_blobs(config: Config, store: Arc<dyn Store>, blobs: Blobs, admin_secret: String) -> Arc<Self> {
        let hub = Arc::new(Hub::default());
        let bus = Bus::in_process(hub.clone(), store.clone());
        Self::with_bus(config, store, blobs, admin_secret, hub, bus)
    }

    /// A node on the given bus (built over `hub`): one node of a cluster.
    pub fn with_bus(
        config: Config,
        store: Arc<dyn Store>,
        blobs: Blobs,
        admin_secret: String,
        hub: Arc<Hub>,
        bus: Arc<Bus>,
    ) -> Arc<Self> {
        let login_throttle = throttle::LoginThrottle::new(
            config.login_failures_per_account,
            config.login_failures_per_address,
            std::time::Duration::from_secs(config.login_window_secs),
        );
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let group_cache = bus.group_cache().clone();
        Arc::new(Self {
            config,
            store,
            hub,
            bus,
            group_cache,
            blobs,
            admin_secret,
            stats: stats::Stats::default(),
            login_throttle,
            hash_permits: tokio::sync::Semaphore::new(cores),
            storage_cache: std::sync::Mutex::new(None),
            conversation_locks: locks::KeyedLocks::new(CONVERSATION_LOCK_SHARDS),
            group_locks: locks::KeyedLocks::new(GROUP_LOCK_SHARDS),
            upload_locks: locks::KeyedLocks::new(UPLOAD_LOCK_SHARDS),
        })
    }

    /// For the service's unit tests: a node over a scratch in-memory store with `users` registered (`dir` holds
    /// its files).
    #[cfg(test)]
    pub(crate) async fn for_tests(dir: &std::path::Path, users: &[&str]) -> Arc<Self> {
        let store = palaver_store::sqlite::SqliteStore::open_in_memory().await.unwrap();
        let app = Self::new(Config::for_tests(dir), Arc::new(store), "test-secret".into());
        let users = users.iter().map(|id| palaver_store::User { user_id: (*id).into(), ..Default::default() });
        app.register_users(users.collect()).await.unwrap();
        app
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    crate::storage::sigv4::hex(&bytes)
}
