//! App-side odds and ends OpenIM keeps under `/third`: a device's push token, the app's badge count, and
//! reports of client log files the app uploaded. Palaver stores each so an operator (and a future push
//! gateway) can use it; none of them changes what any client sees.

use super::{App, now_ms, random_hex};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::constant::platform;
use palaver_store::ClientLog;

/// Longest push token, URL, file name or other text of these requests.
const MAX_TEXT: usize = 2048;
/// Most files one log upload may report.
const MAX_LOG_FILES: usize = 20;

/// One reported log file: its name and where the client put it.
#[derive(Debug, Clone, Default)]
pub struct LogFile {
    pub filename: String,
    pub url: String,
}

impl App {
    /// `/third/fcm_update_token`: stores the push token of `user_id`'s device on `platform_id`, replacing the
    /// previous one. `expire_time` is kept as given (upstream: seconds the token stays valid).
    pub async fn set_push_token(
        &self,
        user_id: &str,
        platform_id: i32,
        token: &str,
        expire_time: i64,
    ) -> ApiResult<()> {
        if platform::name(platform_id).is_none() {
            return Err(ApiError::args(format!("unknown platformID {platform_id}")));
        }
        if token.is_empty() || token.len() > MAX_TEXT {
            return Err(ApiError::args(format!("fcmToken must be 1 to {MAX_TEXT} bytes")));
        }
        if expire_time < 0 {
            return Err(ApiError::args("expireTime must not be negative"));
        }
        self.require_user(user_id).await?;
        Ok(self.store.set_push_token(user_id, platform_id, token, expire_time).await?)
    }

    /// Forgets the push token of `user_id`'s device on `platform_id` (logout: the device must not be woken
    /// for a user who left it).
    pub async fn forget_push_token(&self, user_id: &str, platform_id: i32) -> ApiResult<()> {
        Ok(self.store.delete_push_token(user_id, platform_id).await?)
    }

    /// `/third/set_app_badge`: the unread count the app shows, for offline pushes to carry.
    pub async fn set_app_badge(&self, user_id: &str, count: i32) -> ApiResult<()> {
        if count < 0 {
            return Err(ApiError::args("appUnreadCount must not be negative"));
        }
        self.require_user(user_id).await?;
        Ok(self.store.set_app_badge(user_id, count).await?)
    }

    /// `/third/logs/upload`: records the log files `user_id` uploaded (one row per file, each with a fresh
    /// log id), as upstream does.
    pub async fn upload_logs(
        &self,
        user_id: &str,
        platform_id: i32,
        files: &[LogFile],
        app_framework: &str,
        version: &str,
        ex: &str,
    ) -> ApiResult<()> {
        if files.is_empty() || files.len() > MAX_LOG_FILES {
            return Err(ApiError::args(format!("fileURLs must name 1 to {MAX_LOG_FILES} files")));
        }
        let texts = [app_framework, version, ex].into_iter().chain(files.iter().flat_map(|f| [&*f.filename, &*f.url]));
        if texts.into_iter().any(|t| t.len() > MAX_TEXT) {
            return Err(ApiError::args(format!("each text field is limited to {MAX_TEXT} bytes")));
        }
        if files.iter().any(|f| f.url.is_empty()) {
            return Err(ApiError::args("every file needs its URL"));
        }
        let platform = platform::name(platform_id).unwrap_or_default().to_string();
        let now = now_ms();
        let logs: Vec<ClientLog> = files
            .iter()
            .map(|f| ClientLog {
                log_id: random_hex(10),
                user_id: user_id.to_string(),
                platform: platform.clone(),
                url: f.url.clone(),
                filename: f.filename.clone(),
                app_framework: app_framework.to_string(),
                version: version.to_string(),
                ex: ex.to_string(),
                create_time: now,
            })
            .collect();
        Ok(self.store.insert_client_logs(&logs).await?)
    }
}
