//! Users and tokens.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PgStore, now_ms, transaction, unique_as_exists, versions};
use crate::{Result, StoreError, Token, TokenStatus, TokenStore, User, UserPatch, UserStore};

macro_rules! user_columns {
    () => {
        "user_id, nickname, face_url, ex, create_time, app_manger_level, global_recv_msg_opt"
    };
}

pub(super) fn user_from_row(row: &PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        user_id: row.try_get("user_id")?,
        nickname: row.try_get("nickname")?,
        face_url: row.try_get("face_url")?,
        ex: row.try_get("ex")?,
        create_time: row.try_get("create_time")?,
        app_manger_level: row.try_get("app_manger_level")?,
        global_recv_msg_opt: row.try_get("global_recv_msg_opt")?,
    })
}

#[async_trait]
impl UserStore for PgStore {
    /// As on SQLite: existing ids are named first; a race with another node registering the same id ends in
    /// the unique violation, mapped to `AlreadyExists` too, and the whole batch rolls back.
    async fn register_users(&self, users: &[User]) -> Result<()> {
        let mut seen = HashSet::new();
        if let Some(dup) = users.iter().find(|u| !seen.insert(u.user_id.as_str())) {
            return Err(StoreError::AlreadyExists(dup.user_id.clone()));
        }
        let ids: Vec<String> = users.iter().map(|u| u.user_id.clone()).collect();
        transaction!(self, |tx| {
            let mut existing: Vec<String> = sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
            if !existing.is_empty() {
                existing.sort();
                return Err(StoreError::AlreadyExists(existing.join(", ")));
            }
            for u in users {
                sqlx::query(concat!("INSERT INTO users (", user_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                    .bind(&u.user_id)
                    .bind(&u.nickname)
                    .bind(&u.face_url)
                    .bind(&u.ex)
                    .bind(u.create_time)
                    .bind(u.app_manger_level)
                    .bind(u.global_recv_msg_opt)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique_as_exists(e, || u.user_id.clone()))?;
            }
            versions::create_user_lists(&mut tx, &ids).await?;
            Ok(())
        })
    }

    async fn users(&self, ids: &[String]) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE user_id = ANY($1)"))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    async fn update_user(&self, patch: &UserPatch) -> Result<User> {
        let row = sqlx::query(concat!(
            "UPDATE users SET nickname = COALESCE($1, nickname), face_url = COALESCE($2, face_url), ",
            "ex = COALESCE($3, ex), global_recv_msg_opt = COALESCE($4, global_recv_msg_opt) ",
            "WHERE user_id = $5 RETURNING ",
            user_columns!()
        ))
        .bind(&patch.nickname)
        .bind(&patch.face_url)
        .bind(&patch.ex)
        .bind(patch.global_recv_msg_opt)
        .bind(&patch.user_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(user_from_row(&row)?),
            None => Err(StoreError::NotFound(format!("user {}", patch.user_id))),
        }
    }
}

fn token_from_row(row: &PgRow) -> Result<Token, sqlx::Error> {
    Ok(Token {
        hash: row.try_get("hash")?,
        user_id: row.try_get("user_id")?,
        platform_id: row.try_get("platform_id")?,
        expires_at: row.try_get("expires_at")?,
        status: TokenStatus::from_i64(row.try_get("status")?),
    })
}

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(&self, token: &Token) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (hash, user_id, platform_id, expires_at, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.hash)
        .bind(&token.user_id)
        .bind(token.platform_id)
        .bind(token.expires_at)
        .bind(token.status as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| unique_as_exists(e, || format!("token of {}", token.user_id)))?;
        Ok(())
    }

    async fn token(&self, hash: &[u8]) -> Result<Option<Token>> {
        let row = sqlx::query("SELECT hash, user_id, platform_id, expires_at, status FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    async fn set_token_status(
        &self,
        user_id: &str,
        platform_id: i32,
        status: TokenStatus,
        keep: Option<&[u8]>,
    ) -> Result<u64> {
        let normal = TokenStatus::Normal as i64;
        let done = match keep {
            Some(keep) => {
                sqlx::query(
                    "UPDATE tokens SET status = $1 \
                     WHERE user_id = $2 AND platform_id = $3 AND status = $4 AND hash <> $5",
                )
                .bind(status as i64)
                .bind(user_id)
                .bind(platform_id)
                .bind(normal)
                .bind(keep)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query("UPDATE tokens SET status = $1 WHERE user_id = $2 AND platform_id = $3 AND status = $4")
                    .bind(status as i64)
                    .bind(user_id)
                    .bind(platform_id)
                    .bind(normal)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }
}
