//! Users: registration, profiles, the global receive option, user commands, client configuration.

use super::{App, now_ms};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::{
    constant::{content_type, recv_msg_opt},
    errcode::ErrCode,
    pb::sdkws,
};
use palaver_store::{StoreError, User, UserCommand, UserPatch};
use std::collections::HashMap;

/// Longest nickname, face URL, `ex`, command value or configuration value.
const MAX_TEXT: usize = 4096;
/// Longest command uuid or configuration key.
const MAX_KEY: usize = 256;
/// Most configuration rows one call may set or delete.
const MAX_CONFIGS: usize = 100;

/// Longest user id accepted; ids appear in conversation ids and every index.
const MAX_USER_ID_LEN: usize = 64;
/// Most users one registration may hold (a bulk import goes in calls of this size).
pub const MAX_REGISTER_USERS: usize = 1000;
/// Most user ids one lookup (profiles, online status, account check) may name.
pub const MAX_USER_IDS: usize = 1000;

pub(super) fn check_user_id(user_id: &str) -> ApiResult<()> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(ApiError::args(format!("userID must be 1 to {MAX_USER_ID_LEN} bytes")));
    }
    // `_` separates the parts of conversation ids (`si_<a>_<b>`); OpenIM allows it, so do we, but control
    // characters and whitespace only ever cause trouble.
    if user_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::args("userID must not contain whitespace or control characters"));
    }
    Ok(())
}

/// Refuses a nickname, face URL or `ex` over [`MAX_TEXT`] (`None`: not being set).
fn check_profile(nickname: Option<&str>, face_url: Option<&str>, ex: Option<&str>) -> ApiResult<()> {
    if [nickname, face_url, ex].into_iter().flatten().any(|s| s.len() > MAX_TEXT) {
        return Err(ApiError::args(format!("nickname, faceURL and ex are limited to {MAX_TEXT} bytes")));
    }
    Ok(())
}

/// Refuses a global receive option other than 0, 1 and 2.
fn check_global_recv_opt(opt: i32) -> ApiResult<()> {
    if !(recv_msg_opt::RECEIVE..=recv_msg_opt::RECEIVE_NOT_NOTIFY).contains(&opt) {
        return Err(ApiError::args(format!("globalRecvMsgOpt must be 0, 1 or 2, not {opt}")));
    }
    Ok(())
}

/// Refuses a lookup naming more than [`MAX_USER_IDS`] users; `field` is the request's name for the list.
pub(super) fn check_lookup(field: &str, ids: &[String]) -> ApiResult<()> {
    if ids.len() > MAX_USER_IDS {
        return Err(ApiError::args(format!("at most {MAX_USER_IDS} {field}")));
    }
    Ok(())
}

impl App {
    /// `/user/user_register`: registers every user or none (at most [`MAX_REGISTER_USERS`] at once).
    pub async fn register_users(&self, mut users: Vec<User>) -> ApiResult<()> {
        if users.is_empty() {
            return Err(ApiError::args("users is empty"));
        }
        if users.len() > MAX_REGISTER_USERS {
            return Err(ApiError::args(format!("at most {MAX_REGISTER_USERS} users per registration")));
        }
        let mut seen = std::collections::HashSet::new();
        for user in &mut users {
            check_user_id(&user.user_id)?;
            check_profile(Some(&user.nickname), Some(&user.face_url), Some(&user.ex))?;
            check_global_recv_opt(user.global_recv_msg_opt)?;
            if !seen.insert(user.user_id.clone()) {
                return Err(ApiError::args(format!("userID {} appears twice", user.user_id)));
            }
            if self.is_admin_user(&user.user_id) {
                return Err(ApiError::args(format!("userID {} is reserved for the admin", user.user_id)));
            }
            user.create_time = now_ms();
        }
        self.store.register_users(&users).await.map_err(|e| match e {
            StoreError::AlreadyExists(id) => ApiError::new(ErrCode::RegisteredAlready, format!("{id} is registered")),
            e => e.into(),
        })
    }

    /// `/user/get_users_info`: the users among `ids` that exist, in the order asked.
    pub async fn users_info(&self, ids: &[String]) -> ApiResult<Vec<User>> {
        check_lookup("userIDs", ids)?;
        let found = self.store.users(ids).await?;
        Ok(ids.iter().filter_map(|id| found.iter().find(|u| &u.user_id == id).cloned()).collect())
    }

    /// `/user/account_check`: whether each of `ids` is registered, in the order asked.
    pub async fn account_check(&self, ids: &[String]) -> ApiResult<Vec<bool>> {
        check_lookup("checkUserIDs", ids)?;
        let found = self.store.users(ids).await?;
        Ok(ids.iter().map(|id| found.iter().any(|u| &u.user_id == id)).collect())
    }

    /// `/user/update_user_info_ex` and `/user/set_global_msg_recv_opt`, by `operator`: updates the profile, then
    /// tells the user's devices (1303: they re-read the user's own profile, `OnSelfInfoUpdated`) and, when the
    /// name or face changed, everyone who has the user as a friend (1209: `OnFriendInfoChanged`).
    pub async fn update_user(&self, patch: UserPatch, operator: &str, op: &str) -> ApiResult<User> {
        check_profile(patch.nickname.as_deref(), patch.face_url.as_deref(), patch.ex.as_deref())?;
        if let Some(opt) = patch.global_recv_msg_opt {
            check_global_recv_opt(opt)?;
        }
        let not_found = || ApiError::new(ErrCode::UserIdNotFound, format!("{} is not registered", patch.user_id));
        let before = self.store.users(std::slice::from_ref(&patch.user_id)).await?.pop().ok_or_else(not_found)?;
        let after = self.store.update_user(&patch).await.map_err(|e| match e {
            StoreError::NotFound(_) => not_found(),
            e => e.into(),
        })?;
        let tips = sdkws::UserInfoUpdatedTips { user_id: after.user_id.clone() };
        // Upstream sends this from the operator; for the user's own change that is `n_<u>_<u>`.
        let sender = if operator.is_empty() { after.user_id.as_str() } else { operator };
        self.notify_user(sender, &after.user_id, content_type::USER_INFO_UPDATED, &tips, op).await;
        if before.nickname != after.nickname || before.face_url != after.face_url {
            self.friend_profile_changed(&after.user_id, op).await?;
        }
        Ok(after)
    }

    /// Tells `user_id`'s devices that its commands changed (1305-1307).
    async fn command_notify(&self, user_id: &str, content_type: i32, op: &str) {
        // The three payloads have the same shape; the content type tells them apart.
        let tips = sdkws::UserCommandAddTips { from_user_id: user_id.to_string(), to_user_id: user_id.to_string() };
        self.notify_user(user_id, user_id, content_type, &tips, op).await;
    }

    /// `/user/process_user_command_add`.
    pub async fn add_user_command(&self, command: UserCommand, op: &str) -> ApiResult<()> {
        check_command(&command.uuid, &command.value, &command.ex)?;
        self.require_user(&command.user_id).await?;
        let user_id = command.user_id.clone();
        self.store.add_user_command(&UserCommand { create_time: now_ms() / 1000, ..command }).await?;
        self.command_notify(&user_id, content_type::USER_COMMAND_ADD, op).await;
        Ok(())
    }

    /// `/user/process_user_command_update`.
    pub async fn update_user_command(
        &self,
        user_id: &str,
        command_type: i32,
        uuid: &str,
        value: Option<&str>,
        ex: Option<&str>,
        op: &str,
    ) -> ApiResult<()> {
        check_command(uuid, value.unwrap_or_default(), ex.unwrap_or_default())?;
        self.store.update_user_command(user_id, command_type, uuid, value, ex).await?;
        self.command_notify(user_id, content_type::USER_COMMAND_UPDATE, op).await;
        Ok(())
    }

    /// `/user/process_user_command_delete`.
    pub async fn delete_user_command(&self, user_id: &str, command_type: i32, uuid: &str, op: &str) -> ApiResult<()> {
        self.store.delete_user_command(user_id, command_type, uuid).await?;
        self.command_notify(user_id, content_type::USER_COMMAND_DELETE, op).await;
        Ok(())
    }

    /// `/user/process_user_command_get` (one type) and `…_get_all` (`None`).
    pub async fn user_commands(&self, user_id: &str, command_type: Option<i32>) -> ApiResult<Vec<UserCommand>> {
        Ok(self.store.user_commands(user_id, command_type).await?)
    }

    /// `/user/get_user_client_config`: the defaults for everyone, overridden by the user's own rows (the user
    /// `""` gets the defaults alone).
    pub async fn user_client_config(&self, user_id: &str) -> ApiResult<HashMap<String, String>> {
        let mut out: HashMap<String, String> = self.store.client_config("").await?.into_iter().collect();
        if !user_id.is_empty() {
            self.require_user(user_id).await?;
            out.extend(self.store.client_config(user_id).await?);
        }
        Ok(out)
    }

    /// `/user/set_user_client_config` (admin): sets rows of `user_id` (`""`: the defaults).
    pub async fn set_user_client_config(&self, user_id: &str, configs: HashMap<String, String>) -> ApiResult<()> {
        if configs.is_empty() || configs.len() > MAX_CONFIGS {
            return Err(ApiError::args(format!("configs must hold 1 to {MAX_CONFIGS} entries")));
        }
        if configs.iter().any(|(k, v)| k.is_empty() || k.len() > MAX_KEY || v.len() > MAX_TEXT) {
            return Err(ApiError::args(format!(
                "config keys must be 1 to {MAX_KEY} bytes and values at most {MAX_TEXT}"
            )));
        }
        if !user_id.is_empty() {
            self.require_user(user_id).await?;
        }
        let mut rows: Vec<(String, String)> = configs.into_iter().collect();
        rows.sort();
        Ok(self.store.set_client_config(user_id, &rows).await?)
    }

    /// `/user/del_user_client_config` (admin).
    pub async fn delete_user_client_config(&self, user_id: &str, keys: &[String]) -> ApiResult<()> {
        if keys.is_empty() || keys.len() > MAX_CONFIGS {
            return Err(ApiError::args(format!("keys must name 1 to {MAX_CONFIGS} entries")));
        }
        Ok(self.store.delete_client_config(user_id, keys).await?)
    }
}

fn check_command(uuid: &str, value: &str, ex: &str) -> ApiResult<()> {
    if uuid.is_empty() || uuid.len() > MAX_KEY {
        return Err(ApiError::args(format!("uuid must be 1 to {MAX_KEY} bytes")));
    }
    if value.len() > MAX_TEXT || ex.len() > MAX_TEXT {
        return Err(ApiError::args(format!("value and ex are limited to {MAX_TEXT} bytes")));
    }
    Ok(())
}
