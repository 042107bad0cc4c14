//! Users and tokens.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row as _};

use super::{IN_CHUNK, SqliteStore, now_ms, placeholders, unique_as_exists, versions};
use crate::{Result, StoreError, Token, TokenStatus, TokenStore, User, UserPatch, UserStore};

macro_rules! user_columns {
    () => {
        "user_id, nickname, face_url, ex, create_time, app_manger_level, global_recv_msg_opt"
    };
}

pub(super) fn user_from_row(row: &SqliteRow) -> Result<User, sqlx::Error> {
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
impl UserStore for SqliteStore {
    /// Checks for existing ids first so the error can name them (all of them, comma-separated), then inserts
    /// in the same transaction; any failure rolls the whole batch back. An id given twice in `users` is
    /// reported the same way, as it cannot be inserted twice.
    async fn register_users(&self, users: &[User]) -> Result<()> {
        let mut seen = HashSet::new();
        if let Some(dup) = users.iter().find(|u| !seen.insert(u.user_id.as_str())) {
            return Err(StoreError::AlreadyExists(dup.user_id.clone()));
        }

        let mut tx = self.begin_write().await?;
        let mut existing = Vec::new();
        for chunk in users.chunks(IN_CHUNK) {
            let sql = format!("SELECT user_id FROM users WHERE user_id IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
            for u in chunk {
                q = q.bind(&u.user_id);
            }
            existing.extend(q.fetch_all(&mut *tx).await?);
        }
        if !existing.is_empty() {
            existing.sort();
            return Err(StoreError::AlreadyExists(existing.join(", ")));
        }

        for u in users {
            sqlx::query(concat!("INSERT INTO users (", user_columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?)"))
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
            versions::create_user_lists(&mut tx, &u.user_id).await?;
        }
        tx.commit().await?;
        self.preconditions_changed();
        Ok(())
    }

    async fn users(&self, ids: &[String]) -> Result<Vec<User>> {
        let sql = |ph: &str| format!(concat!("SELECT ", user_columns!(), " FROM users WHERE user_id IN ({})"), ph);
        self.select_in(sql, None, ids, user_from_row).await
    }

    /// One `UPDATE … SET col = COALESCE(?, col) … RETURNING`: a `None` binds NULL and keeps the column.
    async fn update_user(&self, patch: &UserPatch) -> Result<User> {
        let row = sqlx::query(concat!(
            "UPDATE users SET nickname = COALESCE(?, nickname), face_url = COALESCE(?, face_url), ",
            "ex = COALESCE(?, ex), global_recv_msg_opt = COALESCE(?, global_recv_msg_opt) ",
            "WHERE user_id = ? RETURNING ",
            user_columns!()
        ))
        .bind(&patch.nickname)
        .bind(&patch.face_url)
        .bind(&patch.ex)
        .bind(patch.global_recv_msg_opt)
        .bind(&patch.user_id)
        .fetch_optional(&self.write)
        .await?;
        self.preconditions_changed();
        match row {
            Some(row) => Ok(user_from_row(&row)?),
            None => Err(StoreError::NotFound(format!("user {}", patch.user_id))),
        }
    }
}

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Token> {
    Ok(Token {
        hash: row.get("hash")?,
        user_id: row.get("user_id")?,
        platform_id: row.get("platform_id")?,
        expires_at: row.get("expires_at")?,
        status: TokenStatus::from_i64(row.get("status")?),
    })
}

#[async_trait]
impl TokenStore for SqliteStore {
    /// `created_at` is set to now; a hash collision (a reused token) is `AlreadyExists`.
    async fn insert_token(&self, token: &Token) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (hash, user_id, platform_id, expires_at, status, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.hash)
        .bind(&token.user_id)
        .bind(token.platform_id)
        .bind(token.expires_at)
        .bind(token.status as i64)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .map_err(|e| unique_as_exists(e, || format!("token of {}", token.user_id)))?;
        Ok(())
    }

    /// On every request (each one carries its token): a synchronous read (see [`super::reader`]).
    async fn token(&self, hash: &[u8]) -> Result<Option<Token>> {
        use rusqlite::OptionalExtension as _;
        self.readers.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT hash, user_id, platform_id, expires_at, status FROM tokens WHERE hash = ?")?
                .query_row([hash], token_from_row)
                .optional()?)
        })
    }

    /// Two statement shapes rather than `(? IS NULL OR hash <> ?)`, which PostgreSQL cannot type when the
    /// parameter is NULL.
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
                    "UPDATE tokens SET status = ? \
                     WHERE user_id = ? AND platform_id = ? AND status = ? AND hash <> ?",
                )
                .bind(status as i64)
                .bind(user_id)
                .bind(platform_id)
                .bind(normal)
                .bind(keep)
                .execute(&self.write)
                .await?
            }
            None => {
                sqlx::query("UPDATE tokens SET status = ? WHERE user_id = ? AND platform_id = ? AND status = ?")
                    .bind(status as i64)
                    .bind(user_id)
                    .bind(platform_id)
                    .bind(normal)
                    .execute(&self.write)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }
}
