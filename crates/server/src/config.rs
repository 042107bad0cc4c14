//! Server configuration: one documented struct, layered as defaults → `palaver.toml` (or `--config`) →
//! `PALAVER_*` environment → command-line flags (the CLI merges the flags last).

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
    /// A connection that sends nothing (not even a pong) for this long is closed.
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("palaver-data"),
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
            .merge(Env::prefixed("PALAVER_").ignore(&["config", "log"]))
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
        Ok(self)
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
    fn unknown_keys_and_bad_timings_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "no_such_key = 1\n")?;
            assert!(Config::load(Some(std::path::Path::new("bad.toml")), serde_json::json!({})).is_err());
            jail.create_file("slow.toml", "ping_interval_secs = 40\n")?;
            assert!(Config::load(Some(std::path::Path::new("slow.toml")), serde_json::json!({})).is_err());
            Ok(())
        });
    }
}
