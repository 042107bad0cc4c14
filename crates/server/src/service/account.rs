//! Accounts for people: sign-up, password login, password change, and the operator's blocks.
//!
//! OpenIM leaves accounts to the app (its separate "chat" server); Palaver ships its own so that the web client
//! works out of the box. An account is a user (the same `users` row OpenIM's routes see) plus a password
//! hash; logging in issues an ordinary IM token for the platform, so everything after login is plain OpenIM.
//!
//! Passwords are hashed with argon2id (RustCrypto's defaults: 19 MiB, 2 passes, 1 lane) on the blocking pool,
//! at most a few at a time (each holds 19 MiB and a core for tens of milliseconds), behind the login throttle
//! (`throttle`). Unknown accounts cost the same hash as known ones, so timing does not tell which ids exist.

use super::{App, Caller, now_ms};
use crate::error::{ApiError, ApiResult};
use argon2::{
    Argon2,
    password_hash::{PasswordHasher as _, PasswordVerifier as _},
};
use palaver_protocol::{constant::platform, errcode::ErrCode};
use palaver_store::{StoreError, User};
use std::{net::IpAddr, sync::OnceLock};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes (hashing cost does not depend on it much, but request bodies should not
/// be passwords).
pub(super) const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest nickname, in characters.
const MAX_NICKNAME_CHARS: usize = 64;
/// Self-chosen user ids: 2 to 32 of `a-z 0-9 . -`, starting with a letter or digit. Narrower than what
/// `/user/user_register` accepts: no upper case (no `Alice` beside `alice`), and no `_`, which separates the
/// parts of conversation ids (`si_<a>_<b>`).
const MAX_SELF_ID: usize = 32;

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub user_id: String,
    pub nickname: String,
    pub face_url: String,
    pub password: String,
    /// Log the new user in on this platform (chat's `autoLogin`): the registration answers with a token.
    pub auto_login: Option<i32>,
}

/// A registered account, with its token when it was logged in right away.
#[derive(Debug, Clone)]
pub struct Registered {
    pub user: User,
    /// The token and its lifetime in seconds (only with [`NewAccount::auto_login`]).
    pub token: Option<(String, i64)>,
}

fn check_self_chosen_id(id: &str) -> ApiResult<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let first_ok = id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if id.len() < 2 || id.len() > MAX_SELF_ID || !first_ok || !id.chars().all(ok_char) {
        return Err(ApiError::args(format!(
            "userID must be 2 to {MAX_SELF_ID} characters of a-z, 0-9, '.' and '-', starting with a letter or digit"
        )));
    }
    Ok(())
}

fn check_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::args(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_BYTES} bytes)"
        )));
    }
    Ok(())
}

fn check_nickname(nickname: &str) -> ApiResult<()> {
    if nickname.chars().count() > MAX_NICKNAME_CHARS || nickname.chars().any(char::is_control) {
        return Err(ApiError::args(format!(
            "nickname must be at most {MAX_NICKNAME_CHARS} characters, without control characters"
        )));
    }
    Ok(())
}

/// Platforms a person logs in on (not the admin's).
fn is_login_platform(platform_id: i32) -> bool {
    platform_id != platform::ADMIN && platform::name(platform_id).is_some()
}

fn check_login_platform(platform_id: i32) -> ApiResult<()> {
    if !is_login_platform(platform_id) {
        return Err(ApiError::args(format!("platform {platform_id} is not a client platform")));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, String> {
    let salt: [u8; 16] = rand::random();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (its own algorithm and parameters apply).
fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A hash of nothing in particular, verified against when the account does not exist, so that a miss costs
/// what a hit costs.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("palaver decoy password").unwrap_or_default())
}

impl App {
    /// Runs `f` (password hashing) on the blocking pool, a bounded number at a time.
    async fn hashing<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let _permit = self.hash_permits.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)
    }

    /// `/account/register`: creates the user and its password account and, with `auto_login`, issues it a token
    /// for that (client) platform. Anyone may, when `self_registration` is on; otherwise only an admin
    /// (`caller`). Self-registration takes ids of a narrower form than the admin.
    pub async fn register_account(&self, caller: Option<&Caller>, account: NewAccount) -> ApiResult<Registered> {
        if let Some(platform_id) = account.auto_login
            && !is_login_platform(platform_id)
        {
            return Err(ApiError::args(format!("autoLogin needs a client platform, not {platform_id}")));
        }
        let by_admin = caller.is_some_and(|c| c.is_admin);
        if !by_admin && !self.config.self_registration {
            return Err(ApiError::no_permission("self-registration is off; ask an administrator for an account"));
        }
        if by_admin {
            super::user::check_user_id(&account.user_id)?;
        } else {
            check_self_chosen_id(&account.user_id)?;
        }
        if self.is_admin_user(&account.user_id) {
            return Err(ApiError::args(format!("userID {} is reserved for the admin", account.user_id)));
        }
        let nickname = account.nickname.trim();
        check_nickname(nickname)?;
        check_password(&account.password)?;
        let user = User {
            user_id: account.user_id.clone(),
            nickname: if nickname.is_empty() { account.user_id.clone() } else { nickname.to_string() },
            face_url: account.face_url,
            create_time: now_ms(),
            ..User::default()
        };
        let password = account.password;
        let hash = self.hashing(move || hash_password(&password)).await?.map_err(ApiError::internal)?;
        self.store.create_account(&user, &hash).await.map_err(|e| match e {
            StoreError::AlreadyExists(id) => ApiError::new(ErrCode::RegisteredAlready, format!("{id} is taken")),
            e => e.into(),
        })?;
        let token = match account.auto_login {
            Some(platform_id) => Some(self.issue_token(&user.user_id, platform_id).await?),
            None => None,
        };
        Ok(Registered { user, token })
    }

    /// `/account/login`: checks the password (behind the throttle) and issues a token for `platform_id`.
    /// Unknown accounts and wrong passwords get the same answer.
    pub async fn login(
        &self,
        user_id: &str,
        password: &str,
        platform_id: i32,
        source: IpAddr,
    ) -> ApiResult<(String, i64)> {
        check_login_platform(platform_id)?;
        if user_id.is_empty() || password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::args("userID and password are required"));
        }
        if let Err(wait) = self.login_throttle.check(user_id, source) {
            self.stats.add(&self.stats.login_failures, 1);
            return Err(ApiError::new(
                ErrCode::TooManyLoginAttempts,
                format!("too many failed logins; try again in {} s", wait.as_secs().max(1)),
            ));
        }
        let account = self.store.account(user_id).await?;
        let known = account.is_some();
        let hash = account.map(|a| a.password_hash).unwrap_or_else(|| decoy_hash().to_string());
        let password = password.to_string();
        let matches = self.hashing(move || verify_password(&password, &hash)).await?;
        if !(known && matches) {
            self.login_throttle.failed(user_id, source);
            self.stats.add(&self.stats.login_failures, 1);
            return Err(ApiError::new(ErrCode::Password, "wrong userID or password"));
        }
        self.login_throttle.succeeded(user_id);
        let issued = self.issue_token(user_id, platform_id).await?;
        self.stats.add(&self.stats.logins, 1);
        Ok(issued)
    }

    /// `/account/password/change`: the user, with its current password, or an admin, without. The user's other
    /// tokens (every platform but the caller's own token) are revoked and their connections kicked: a
    /// password change is how a person throws out whoever else is logged in.
    pub async fn change_password(&self, caller: &Caller, user_id: &str, current: &str, new: &str) -> ApiResult<()> {
        caller.check_access(user_id)?;
        check_password(new)?;
        let account = self
            .store
            .account(user_id)
            .await?
            .ok_or_else(|| ApiError::new(ErrCode::RecordNotFound, format!("{user_id} has no password account")))?;
        if !caller.is_admin || caller.user_id == user_id {
            let (current, hash) = (current.to_string(), account.password_hash);
            if !self.hashing(move || verify_password(&current, &hash)).await? {
                return Err(ApiError::new(ErrCode::Password, "the current password is wrong"));
            }
        }
        let new = new.to_string();
        let hash = self.hashing(move || hash_password(&new)).await?.map_err(ApiError::internal)?;
        self.store.set_password_hash(user_id, &hash).await?;
        let keep = (caller.user_id == user_id).then(|| caller.token_hash.clone());
        self.log_out_everywhere(user_id, keep.as_deref()).await
    }

    /// `/palaver/admin/force_logout`: [`App::log_out_everywhere`] for a registered user.
    pub async fn force_logout_everywhere(&self, user_id: &str) -> ApiResult<()> {
        self.require_user(user_id).await?;
        self.log_out_everywhere(user_id, None).await
    }

    /// Revokes every live token of `user_id` (but `keep`) on every platform and kicks its connections (but
    /// the ones using `keep`), on every node.
    pub async fn log_out_everywhere(&self, user_id: &str, keep: Option<&[u8]>) -> ApiResult<()> {
        Ok(self.bus.log_out(user_id, None, keep).await?)
    }

    /// Blocks or unblocks a registered user. Blocking also logs it out everywhere; while blocked it cannot log
    /// in or be issued tokens.
    pub async fn set_user_blocked(&self, user_id: &str, blocked: bool) -> ApiResult<bool> {
        if self.store.users(&[user_id.to_string()]).await?.is_empty() {
            return Err(ApiError::new(ErrCode::UserIdNotFound, format!("user {user_id} is not registered")));
        }
        if self.is_admin_user(user_id) {
            return Err(ApiError::args("the admin user cannot be blocked"));
        }
        let changed = self.store.set_blocked(user_id, blocked, now_ms()).await?;
        if blocked {
            self.log_out_everywhere(user_id, None).await?;
        }
        Ok(changed)
    }

    /// Refuses blocked users (token issuance checks this).
    pub(super) async fn check_not_blocked(&self, user_id: &str) -> ApiResult<()> {
        if !self.store.blocked_users(&[user_id.to_string()]).await?.is_empty() {
            return Err(ApiError::new(ErrCode::Forbidden, format!("{user_id} is blocked by the administrator")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt every time");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsf", &a));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(!verify_password("palaver decoy password x", decoy_hash()));
    }

    #[test]
    fn self_chosen_ids() {
        for ok in ["al", "alice", "a.b-c", "0day", "x".repeat(32).as_str()] {
            assert!(check_self_chosen_id(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "Alice", "a_b", "-a", ".a", "a b", "é", "x".repeat(33).as_str(), ""] {
            assert!(check_self_chosen_id(bad).is_err(), "{bad}");
        }
    }
}
