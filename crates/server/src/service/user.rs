//! Users: registration, profiles.

use super::{App, now_ms};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::errcode::ErrCode;
use palaver_store::{StoreError, User, UserPatch};

/// Longest user id accepted; ids appear in conversation ids and every index.
const MAX_USER_ID_LEN: usize = 64;

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

impl App {
    /// `/user/user_register`: registers every user or none.
    pub async fn register_users(&self, mut users: Vec<User>) -> ApiResult<()> {
        if users.is_empty() {
            return Err(ApiError::args("users is empty"));
        }
        let mut seen = std::collections::HashSet::new();
        for user in &mut users {
            check_user_id(&user.user_id)?;
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

    /// The users among `ids` that exist, in the order asked.
    pub async fn users_info(&self, ids: &[String]) -> ApiResult<Vec<User>> {
        let found = self.store.users(ids).await?;
        Ok(ids.iter().filter_map(|id| found.iter().find(|u| &u.user_id == id).cloned()).collect())
    }

    /// `/user/update_user_info_ex`.
    pub async fn update_user(&self, patch: UserPatch) -> ApiResult<User> {
        self.store.update_user(&patch).await.map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::new(ErrCode::UserIdNotFound, format!("{} is not registered", patch.user_id))
            }
            e => e.into(),
        })
    }
}
