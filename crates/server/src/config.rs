//! Server configuration: one documented struct, layered as defaults → `palaver.toml` (or `--config`) →
//! `PALAVER_*` environment → command-line flags (the CLI merges the flags last). Nested keys take a double
//! underscore in the environment: `PALAVER_OBJECTS__BACKEND=s3`, `PALAVER_OBJECTS__S3__BUCKET=…`.

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, path::PathBuf};

/// Everything the server can be told. Each field's default is the zero-config embedded setup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, the object files and the generated admin secret live.
    pub data_dir: PathBuf,
    /// The database. Unset: the embedded SQLite file `<data_dir>/palaver.db` (one node). A `postgres://` (or
    /// `postgresql://`) URL selects PostgreSQL, which every node of a cluster shares, e.g.
    /// `postgres://palaver:secret@db:5432/palaver`; add `?options[search_path]=NAME` to use a schema other than
    /// `public`. The schema is created and migrated on start.
    pub database_url: Option<String>,
    /// Most connections this node opens to PostgreSQL. All nodes together must stay under the server's
    /// `max_connections` (100 by default).
    pub database_max_connections: u32,
    /// The NATS server that joins nodes into a cluster (`nats://host:4222`). Unset: the in-process bus (one
    /// node). Every node of a cluster needs the same `database_url`, `nats_url`, `cluster_name` and
    /// `admin_secret`.
    pub nats_url: Option<String>,
    /// Prefix of the cluster's NATS subjects: nodes with the same name form one cluster, so several clusters
    /// can share a NATS server.
    pub cluster_name: String,
    /// Let other processes open the SQLite file while this node runs (`palaver admin migrate` copying from it, the
    /// `sqlite3` shell, a backup tool). Off, the node holds the file alone and its reads take no file locks (about
    /// a tenth of a login's CPU).
    pub sqlite_shared: bool,
    /// Bind the gateway and API with `SO_REUSEPORT`, so that several nodes on one machine can listen on the
    /// same ports (the kernel spreads new connections over them): the way past the per-process open-file cap.
    pub reuse_port: bool,
    /// Most new connections each listener works on at once (accepted, not yet answered); more wait unread (4,096
    /// accepted and parked, then the kernel's accept queue) until one is answered. In a storm of logins this keeps the work under way small, which makes
    /// each login cheaper than when thousands are under way together. 0: no bound.
    pub max_opening_connections: usize,
    /// WebSocket gateway address (OpenIM's default port, so existing client configs work).
    pub ws_addr: SocketAddr,
    /// REST API address (OpenIM's default port).
    pub api_addr: SocketAddr,
    /// The secret `/auth/get_admin_token` checks. Unset: generated on first start and kept in
    /// `<data_dir>/admin-secret`, never a built-in default.
    pub admin_secret: Option<String>,
    /// User ids that may obtain admin tokens with the secret.
    pub admin_user_ids: Vec<String>,
    /// Lifetime of issued tokens, in seconds (OpenIM's default: 90 days).
    pub token_ttl_secs: i64,
    /// What a new login does to the user's other connections: 0 keep all, 1 kick the same platform (default),
    /// 4 kick the same class of platform, 5 one PC and one other.
    pub multi_login_policy: i32,
    /// Largest gateway frame read from a client, in bytes, compressed size (OpenIM: 51,200).
    pub max_frame_bytes: usize,
    /// Largest message `content`, in bytes.
    pub max_content_bytes: usize,
    /// Largest REST request body, in bytes.
    pub max_body_bytes: usize,
    /// Frames queued to one connection before it counts as a slow consumer and is disconnected.
    pub send_queue_frames: usize,
    /// Interval of the control pings sent to Web connections (the wasm SDK's only keep-alive). Must stay
    /// under `read_timeout_secs`.
    pub ping_interval_secs: u64,
    /// A WebSocket that sends nothing (not even a pong) for this long is closed, and so is an HTTP connection whose
    /// next request's head has not all arrived this long after it connected or after its last answer; a REST request
    /// whose JSON body has not all arrived this long after its head, or a file part that stops arriving for this long,
    /// is given up.
    pub read_timeout_secs: u64,
    /// Whether anyone may create an account at `/account/register` (the web client's "Sign up"). Off, only an
    /// admin token may create accounts (the admin console's "Register").
    pub self_registration: bool,
    /// Failed password logins one account may have within `login_window_secs`; further attempts are refused
    /// (right password or not) until the oldest failure leaves the window.
    pub login_failures_per_account: u32,
    /// Failed password logins one source address (an IPv6 /64) may have within `login_window_secs`, over all
    /// accounts.
    pub login_failures_per_address: u32,
    /// The login throttle's sliding window, in seconds.
    pub login_window_secs: u64,
    /// Take a login's source address from the last `X-Forwarded-For` entry (set this only behind a reverse
    /// proxy that appends it; otherwise clients could pick their own address and dodge the throttle).
    pub trust_forwarded_for: bool,
    /// Whether a user may send a 1:1 message only to users who have it as a friend (refused with 1303
    /// otherwise). Off by default, as in OpenIM (`friendVerify`).
    pub messaging_requires_friendship: bool,
    /// How long after sending a user may revoke its own message, in seconds; 0 for no limit (OpenIM has
    /// none). Group owners and admins revoking members' messages, and app admins, are not limited.
    pub revoke_time_limit_secs: u64,
    /// Files: OpenIM's `/object/*` API and where the bytes go (`[objects]` in `palaver.toml`).
    pub objects: ObjectsConfig,
}

/// Where uploaded files are kept and what uploads may be. The defaults store files under
/// `<data_dir>/objects` and need no setting at all.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    /// `local` (files under `<data_dir>/objects`, uploads and downloads served by Palaver on the API port) or
    /// `s3` (any S3-compatible bucket, see `[objects.s3]`; clients upload and download directly to and from it).
    /// A cluster needs `s3`, or `local` with a shared `local_dir`: a file must be there whichever node a client
    /// reaches.
    pub backend: ObjectBackend,
    /// The local backend's folder. Unset: `<data_dir>/objects`. In a cluster it must be one folder that every
    /// node shares (nodes on one machine, or a network file system), and must then be set: with each node's own
    /// folder, a file uploaded through one node would be missing on the others.
    pub local_dir: Option<PathBuf>,
    /// The API's address as clients reach it (e.g. `https://im.example.com`), the base of the file URLs and of the
    /// local backend's upload URLs. Unset: taken from each request (OpenIM's `X-Request-Api` header, else
    /// `X-Forwarded-Proto` and the `Host` header). Set it when Palaver is behind a proxy that rewrites `Host`.
    pub public_url: Option<String>,
    /// Largest file, in bytes.
    pub max_object_bytes: u64,
    /// Part size for multipart uploads, in bytes, unless a file needs bigger parts to stay within `max_parts`
    /// (OpenIM's `minPartSize`; S3 refuses parts under 5 MiB but the last).
    pub min_part_bytes: u64,
    /// Most parts per upload (OpenIM's `maxNumSize`).
    pub max_parts: u32,
    /// Content types accepted for upload: exact (`image/png`), a whole type (`image/*`) or `*` for any.
    pub allowed_content_types: Vec<String>,
    /// Who may download: `public` (anyone with the link, as OpenIM) or `token` (a signed-in user: `token` header
    /// or `?token=` query parameter, or a link from `/object/access_url`).
    pub download: DownloadAccess,
    /// Lifetime of presigned upload and download URLs, in seconds.
    pub url_ttl_secs: u64,
    /// An upload not completed within this many seconds is abandoned; its parts are deleted.
    pub upload_ttl_secs: u64,
    /// How often abandoned uploads are looked for, in seconds.
    pub sweep_interval_secs: u64,
    /// The bucket, for `backend = "s3"`.
    pub s3: S3Config,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ObjectBackend {
    Local,
    S3,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DownloadAccess {
    Public,
    Token,
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …). Palaver signs requests itself (AWS Signature V4).
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `http(s)://host[:port]` of the S3 API, as both Palaver and clients reach it (presigned URLs point here).
    /// `https://` needs a build with the `s3-tls` feature (see the README).
    pub endpoint: String,
    pub bucket: String,
    /// The signing region (`us-east-1` when unset).
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Address the bucket as `endpoint/bucket/key` (MinIO, moto, most self-hosted servers) rather than
    /// `bucket.endpoint/key` (AWS's virtual-hosted style).
    pub path_style: bool,
    /// Prepended to every key Palaver writes, e.g. `palaver/`.
    pub key_prefix: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"…")
            .field("path_style", &self.path_style)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        Self {
            backend: ObjectBackend::Local,
            local_dir: None,
            public_url: None,
            max_object_bytes: 1024 * 1024 * 1024,
            min_part_bytes: 5 * 1024 * 1024,
            max_parts: 10_000,
            allowed_content_types: vec!["*".to_string()],
            download: DownloadAccess::Public,
            url_ttl_secs: 3600,
            upload_ttl_secs: 24 * 3600,
            sweep_interval_secs: 60,
            s3: S3Config::default(),
        }
    }
}

impl ObjectsConfig {
    fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("objects.public_url must start with http:// or https://, not {url:?}"));
        }
        if self.max_object_bytes == 0 || self.min_part_bytes == 0 || self.max_parts == 0 {
            return Err("objects.max_object_bytes, min_part_bytes and max_parts must be > 0".into());
        }
        if self.url_ttl_secs == 0 || self.upload_ttl_secs == 0 || self.sweep_interval_secs == 0 {
            return Err("objects.url_ttl_secs, upload_ttl_secs and sweep_interval_secs must be > 0".into());
        }
        if self.url_ttl_secs > 7 * 24 * 3600 {
            return Err("objects.url_ttl_secs must be at most 7 days (S3's limit for presigned URLs)".into());
        }
        for pattern in &self.allowed_content_types {
            if pattern != "*" && !pattern.contains('/') {
                return Err(format!(
                    "objects.allowed_content_types: {pattern:?} is not `type/subtype`, `type/*` or `*`"
                ));
            }
        }
        if self.backend == ObjectBackend::S3 {
            let s3 = &self.s3;
            crate::storage::s3::S3Blobs::new(s3)?;
            if s3.bucket.is_empty() || s3.access_key.is_empty() || s3.secret_key.is_empty() {
                return Err("objects.s3.bucket, access_key and secret_key must be set for backend = \"s3\"".into());
            }
            if self.min_part_bytes < 5 * 1024 * 1024 {
                return Err("objects.min_part_bytes must be at least 5 MiB with S3 (S3 refuses smaller parts)".into());
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("palaver-data"),
            database_url: None,
            database_max_connections: palaver_store::postgres::DEFAULT_MAX_CONNECTIONS,
            nats_url: None,
            cluster_name: "palaver".to_string(),
            sqlite_shared: false,
            reuse_port: false,
            max_opening_connections: 64,
            ws_addr: SocketAddr::from(([0, 0, 0, 0], 10001)),
            api_addr: SocketAddr::from(([0, 0, 0, 0], 10002)),
            admin_secret: None,
            admin_user_ids: vec![palaver_protocol::constant::ADMIN_USER_ID.to_string()],
            token_ttl_secs: 90 * 24 * 3600,
            multi_login_policy: palaver_protocol::constant::multi_login::SAME_PLATFORM_KICK,
            max_frame_bytes: palaver_protocol::constant::MAX_GATEWAY_FRAME,
            max_content_bytes: 32 * 1024,
            max_body_bytes: 1024 * 1024,
            send_queue_frames: 512,
            ping_interval_secs: 25,
            read_timeout_secs: 30,
            self_registration: true,
            login_failures_per_account: 10,
            login_failures_per_address: 50,
            login_window_secs: 15 * 60,
            trust_forwarded_for: false,
            messaging_requires_friendship: false,
            revoke_time_limit_secs: 0,
            objects: ObjectsConfig::default(),
        }
    }
}

impl Config {
    /// Layers defaults, the TOML file (`config_file`, or `palaver.toml` if it exists), then `PALAVER_*`
    /// variables, then `overrides` (the command line's explicitly given flags).
    pub fn load(config_file: Option<&std::path::Path>, overrides: impl Serialize) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        figment = match config_file {
            Some(path) => figment.merge(Toml::file_exact(path)),
            None => figment.merge(Toml::file("palaver.toml")),
        };
        let config: Config = figment
            // `PALAVER_TEST_*` configures the test suites (which start servers), never a server.
            .merge(
                Env::prefixed("PALAVER_")
                    .ignore(&["config", "log"])
                    .filter(|key| {
                        let key = key.as_str().to_ascii_lowercase();
                        !key.trim_start_matches("palaver_").starts_with("test_")
                    })
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides))
            .extract()?;
        config.check()
    }

    fn check(self) -> Result<Self, Box<figment::Error>> {
        if self.ping_interval_secs == 0 || self.ping_interval_secs >= self.read_timeout_secs {
            return Err(Box::new(figment::Error::from(format!(
                "ping_interval_secs ({}) must be between 1 and read_timeout_secs ({})",
                self.ping_interval_secs, self.read_timeout_secs
            ))));
        }
        if self.login_failures_per_account == 0 || self.login_failures_per_address == 0 || self.login_window_secs == 0 {
            return Err(Box::new(figment::Error::from(
                "login_failures_per_account, login_failures_per_address and login_window_secs must be > 0".to_string(),
            )));
        }
        if self.send_queue_frames == 0 || self.max_frame_bytes < 1024 {
            return Err(Box::new(figment::Error::from(
                "send_queue_frames must be > 0 and max_frame_bytes >= 1024".to_string(),
            )));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(Box::new(figment::Error::from(
                "database_url must be a postgres:// URL (leave it unset for the embedded SQLite)".to_string(),
            )));
        }
        if self.nats_url.is_some() && self.database_url.is_none() {
            return Err(Box::new(figment::Error::from(
                "nats_url needs database_url: the nodes of a cluster share one PostgreSQL".to_string(),
            )));
        }
        if self.nats_url.is_some() && self.objects.backend == ObjectBackend::Local && self.objects.local_dir.is_none() {
            return Err(Box::new(figment::Error::from(
                "a cluster (nats_url) needs files that every node reaches: set objects.backend = \"s3\" with \
                 [objects.s3], or objects.local_dir to a folder all nodes share (nodes on one machine, or a network \
                 file system); with each node's own <data_dir>/objects, a file uploaded through one node is missing \
                 on the others"
                    .to_string(),
            )));
        }
        if self.nats_url.is_some() && self.admin_secret.is_none() {
            return Err(Box::new(figment::Error::from(
                "a cluster needs admin_secret set on every node (a generated one would differ per node)".to_string(),
            )));
        }
        let subject_safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.cluster_name.is_empty() || !self.cluster_name.chars().all(subject_safe) {
            return Err(Box::new(figment::Error::from("cluster_name must be letters, digits, '-' or '_'".to_string())));
        }
        self.objects.check().map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(self)
    }

    /// `read_timeout_secs`, as the gateway, the HTTP server and the API's body limits keep it.
    pub fn read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.read_timeout_secs)
    }

    /// A configuration for tests: everything under `data_dir`, ports chosen by the caller's listeners.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), admin_secret: Some("test-secret".into()), ..Self::default() }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's own large error.
mod tests {
    use super::*;

    #[test]
    fn env_and_overrides_layer_over_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("palaver.toml", "data_dir = \"from-file\"\nmax_frame_bytes = 4096\n")?;
            jail.set_env("PALAVER_MAX_FRAME_BYTES", "8192");
            jail.set_env("PALAVER_WS_ADDR", "127.0.0.1:1");
            let overrides = serde_json::json!({ "ws_addr": "127.0.0.1:2" });
            let config = Config::load(None, overrides).map_err(|e| e.to_string())?;
            assert_eq!(config.data_dir, PathBuf::from("from-file"));
            assert_eq!(config.max_frame_bytes, 8192);
            assert_eq!(config.ws_addr, "127.0.0.1:2".parse().unwrap());
            assert_eq!(config.api_addr, Config::default().api_addr);
            Ok(())
        });
    }

    #[test]
    fn cluster_settings_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PALAVER_DATABASE_URL", "postgres://db/palaver");
            jail.set_env("PALAVER_NATS_URL", "nats://bus:4222");
            jail.set_env("PALAVER_ADMIN_SECRET", "a-long-secret");
            jail.set_env("PALAVER_REUSE_PORT", "true");
            jail.set_env("PALAVER_SQLITE_SHARED", "true");
            jail.set_env("PALAVER_OBJECTS__LOCAL_DIR", "/srv/palaver-objects");
            let config = Config::load(None, serde_json::json!({})).map_err(|e| e.to_string())?;
            assert_eq!(config.database_url.as_deref(), Some("postgres://db/palaver"));
            assert_eq!(config.nats_url.as_deref(), Some("nats://bus:4222"));
            assert!(config.reuse_port);
            assert!(config.sqlite_shared);
            assert_eq!(config.cluster_name, "palaver");
            assert_eq!(config.objects.local_dir, Some(PathBuf::from("/srv/palaver-objects")));
            Ok(())
        });
    }

    /// Each node's own `<data_dir>/objects` in a cluster would break every upload and download that crosses
    /// nodes: refused, with what to do instead.
    #[test]
    fn a_cluster_refuses_node_local_files() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PALAVER_DATABASE_URL", "postgres://db/palaver");
            jail.set_env("PALAVER_NATS_URL", "nats://bus:4222");
            jail.set_env("PALAVER_ADMIN_SECRET", "a-long-secret");
            let refused = Config::load(None, serde_json::json!({})).unwrap_err().to_string();
            assert!(refused.contains("objects.local_dir") && refused.contains("s3"), "{refused}");
            jail.set_env("PALAVER_OBJECTS__LOCAL_DIR", "/srv/palaver-objects");
            assert!(Config::load(None, serde_json::json!({})).is_ok(), "a shared folder is accepted");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("PALAVER_DATABASE_URL", "postgres://db/palaver");
            jail.set_env("PALAVER_NATS_URL", "nats://bus:4222");
            jail.set_env("PALAVER_ADMIN_SECRET", "a-long-secret");
            jail.set_env("PALAVER_OBJECTS__BACKEND", "s3");
            jail.set_env("PALAVER_OBJECTS__S3__ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("PALAVER_OBJECTS__S3__BUCKET", "files");
            jail.set_env("PALAVER_OBJECTS__S3__ACCESS_KEY", "k");
            jail.set_env("PALAVER_OBJECTS__S3__SECRET_KEY", "s");
            assert!(Config::load(None, serde_json::json!({})).is_ok(), "S3 is accepted");
            Ok(())
        });
        figment::Jail::expect_with(|_| {
            let one_node = Config::load(None, serde_json::json!({})).map_err(|e| e.to_string())?;
            assert_eq!(one_node.objects.local_dir, None, "one node needs no setting");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_timings_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "no_such_key = 1\n")?;
            assert!(Config::load(Some(std::path::Path::new("bad.toml")), serde_json::json!({})).is_err());
            jail.create_file("slow.toml", "ping_interval_secs = 40\n")?;
            assert!(Config::load(Some(std::path::Path::new("slow.toml")), serde_json::json!({})).is_err());
            jail.create_file("mysql.toml", "database_url = \"mysql://x\"\n")?;
            assert!(Config::load(Some(std::path::Path::new("mysql.toml")), serde_json::json!({})).is_err());
            jail.create_file("nodb.toml", "nats_url = \"nats://127.0.0.1:4222\"\nadmin_secret = \"12345678\"\n")?;
            assert!(Config::load(Some(std::path::Path::new("nodb.toml")), serde_json::json!({})).is_err());
            Ok(())
        });
    }

    #[test]
    fn object_settings_nest_in_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("palaver.toml", "[objects]\nmax_parts = 100\n[objects.s3]\nbucket = \"files\"\n")?;
            jail.set_env("PALAVER_OBJECTS__BACKEND", "s3");
            jail.set_env("PALAVER_OBJECTS__S3__ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("PALAVER_OBJECTS__S3__ACCESS_KEY", "k");
            jail.set_env("PALAVER_OBJECTS__S3__SECRET_KEY", "s");
            jail.set_env("PALAVER_OBJECTS__ALLOWED_CONTENT_TYPES", "[\"image/*\", \"video/mp4\"]");
            let config = Config::load(None, serde_json::json!({})).map_err(|e| e.to_string())?;
            assert_eq!(config.objects.backend, ObjectBackend::S3);
            assert_eq!(config.objects.max_parts, 100);
            assert_eq!(config.objects.s3.bucket, "files");
            assert_eq!(config.objects.s3.endpoint, "http://127.0.0.1:9000");
            assert_eq!(config.objects.allowed_content_types, ["image/*", "video/mp4"]);
            assert!(!format!("{config:?}").contains("secret_key: \"s\""), "the secret stays out of logs");
            jail.set_env("PALAVER_OBJECTS__MIN_PART_BYTES", "1024");
            assert!(Config::load(None, serde_json::json!({})).is_err(), "S3 needs parts of 5 MiB");
            jail.set_env("PALAVER_OBJECTS__MIN_PART_BYTES", "5242880");
            jail.set_env("PALAVER_OBJECTS__S3__ENDPOINT", "https://s3.amazonaws.com");
            let https = Config::load(None, serde_json::json!({}));
            assert_eq!(https.is_ok(), cfg!(feature = "s3-tls"), "https:// needs the s3-tls feature: {https:?}");
            jail.set_env("PALAVER_OBJECTS__S3__ENDPOINT", "ftp://files");
            assert!(Config::load(None, serde_json::json!({})).is_err());
            Ok(())
        });
    }
}
