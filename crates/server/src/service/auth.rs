//! Tokens and who may do what.
//!
//! Tokens are opaque: 32 random bytes, base64url, handed out once. Only their SHA-256 is stored, with the user,
//! the platform, an expiry and a status, so a token is revoked the moment its row says so (force logout, or
//! a newer login that displaces it). Checks go through a cache of tokens found valid (`token_cache`), which
//! every revocation clears (`Bus::revoke_tokens`). OpenIM's SDKs treat tokens as opaque too; only the error
//! codes matter.

use super::token_cache::{TokenHash, ValidToken};
use super::{App, now_ms};
use crate::error::{ApiError, ApiResult};
use base64::Engine;
use palaver_protocol::{constant::platform, errcode::ErrCode};
use palaver_store::{Token, TokenStatus};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub platform_id: i32,
    pub token_hash: Arc<[u8]>,
    pub is_admin: bool,
}

/// Length of a token: base64url without padding of 32 bytes.
const TOKEN_LEN: usize = 43;

fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

impl App {
    pub fn is_admin_user(&self, user_id: &str) -> bool {
        self.config.admin_user_ids.iter().any(|a| a == user_id)
    }

    /// Issues a token for `user_id` on `platform_id` (never to a blocked user). Returns the token and its lifetime in
    /// seconds.
    pub async fn issue_token(&self, user_id: &str, platform_id: i32) -> ApiResult<(String, i64)> {
        if platform::name(platform_id).is_none() {
            return Err(ApiError::args(format!("unknown platformID {platform_id}")));
        }
        if !self.is_admin_user(user_id) {
            if self.store.users(&[user_id.to_string()]).await?.is_empty() {
                return Err(ApiError::new(ErrCode::UserIdNotFound, format!("user {user_id} is not registered")));
            }
            self.check_not_blocked(user_id).await?;
        }
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let ttl = self.config.token_ttl_secs;
        self.store
            .insert_token(&Token {
                hash: hash_token(&token).to_vec(),
                user_id: user_id.to_string(),
                platform_id,
                expires_at: now_ms() + ttl * 1000,
                status: TokenStatus::Normal,
            })
            .await?;
        Ok((token, ttl))
    }

    /// `/auth/get_admin_token`: a token for an admin user, in exchange for the admin secret.
    pub async fn admin_token(&self, secret: &str, user_id: &str) -> ApiResult<(String, i64)> {
        let user_id = if user_id.is_empty() { palaver_protocol::constant::ADMIN_USER_ID } else { user_id };
        if !constant_time_eq(secret.as_bytes(), self.admin_secret.as_bytes()) || !self.is_admin_user(user_id) {
            return Err(ApiError::no_permission("wrong secret or not an admin user"));
        }
        self.issue_token(user_id, platform::ADMIN).await
    }

    /// Checks a token and returns who it belongs to, with OpenIM's token error codes: 1503 malformed,
    /// 1507 unknown, 1506 revoked (kicked or logged out), 1501 expired. A token found valid is believed for a
    /// few seconds without reading the store again (see `token_cache`).
    pub async fn authenticate(&self, token: &str) -> ApiResult<Caller> {
        if token.len() != TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ApiError::new(ErrCode::TokenMalformed, "token is not a Palaver token"));
        }
        let hash = hash_token(token);
        let cache = self.bus.token_cache();
        let valid = match cache.get(&hash) {
            Some(valid) => valid,
            None => {
                let read_from = cache.generation();
                let row = self
                    .store
                    .token(&hash)
                    .await?
                    .ok_or_else(|| ApiError::new(ErrCode::TokenNotExist, "token does not exist"))?;
                if row.status != TokenStatus::Normal {
                    return Err(ApiError::new(ErrCode::TokenKicked, "token was revoked (kicked or logged out)"));
                }
                let valid =
                    ValidToken { user_id: row.user_id, platform_id: row.platform_id, expires_at: row.expires_at };
                cache.insert(hash, valid.clone(), read_from);
                valid
            }
        };
        if valid.expires_at <= now_ms() {
            return Err(ApiError::new(ErrCode::TokenExpired, "token has expired"));
        }
        Ok(Caller {
            is_admin: self.is_admin_user(&valid.user_id),
            user_id: valid.user_id,
            platform_id: valid.platform_id,
            token_hash: Arc::from(&hash[..]),
        })
    }

    /// `/auth/force_logout`: revokes the user's tokens on the platform and kicks its connections there, on
    /// every node.
    pub async fn force_logout(&self, user_id: &str, platform_id: i32) -> ApiResult<()> {
        Ok(self.bus.log_out(user_id, Some(platform_id), None).await?)
    }
}

impl Caller {
    /// OpenIM's `CheckAccess`: a caller may act for itself; an admin for anyone.
    pub fn check_access(&self, user_id: &str) -> ApiResult<()> {
        if self.is_admin || self.user_id == user_id {
            Ok(())
        } else {
            Err(ApiError::no_permission(format!("{} may not act for {user_id}", self.user_id)))
        }
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin { Ok(()) } else { Err(ApiError::no_permission("only an admin may do this")) }
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
