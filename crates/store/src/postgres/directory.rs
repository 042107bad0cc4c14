//! Password accounts, blocks, and the admin console's searches and totals.

use async_trait::async_trait;
use sqlx::Row as _;

use super::accounts::user_from_row;
use super::groups::group_from_row;
use super::{PgStore, now_ms, pg_sql, unique_as_exists, versions};
use crate::search::{contains_pattern, search_sql};
use crate::{Account, AccountStore, DirectoryCounts, DirectoryStore, Group, Page, Result, StoreError, User};
use sqlx::AssertSqlSafe;

#[async_trait]
impl AccountStore for PgStore {
    async fn create_account(&self, user: &User, password_hash: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(AssertSqlSafe(pg_sql(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))))
        .bind(&user.user_id)
        .bind(&user.nickname)
        .bind(&user.face_url)
        .bind(&user.ex)
        .bind(user.create_time)
        .bind(user.app_manger_level)
        .bind(user.global_recv_msg_opt)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_exists(e, || user.user_id.clone()))?;
        versions::create_user_lists(&mut tx, std::slice::from_ref(&user.user_id)).await?;
        // A leftover account row of the same id (from a user removed by hand) would be a unique violation here
        // too, and reporting it as "already exists" is right: the id is not free.
        let now = now_ms();
        sqlx::query(AssertSqlSafe(pg_sql(
            "INSERT INTO accounts (user_id, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)",
        )))
        .bind(&user.user_id)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_exists(e, || user.user_id.clone()))?;
        tx.commit().await?;
        Ok(())
    }

    async fn account(&self, user_id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(AssertSqlSafe(pg_sql(
            "SELECT user_id, password_hash, created_at, updated_at FROM accounts WHERE user_id = ?",
        )))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Account {
            user_id: row.try_get("user_id")?,
            password_hash: row.try_get("password_hash")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }))
    }

    async fn set_password_hash(&self, user_id: &str, password_hash: &str) -> Result<()> {
        let done = sqlx::query(AssertSqlSafe(pg_sql(
            "UPDATE accounts SET password_hash = ?, updated_at = ? WHERE user_id = ?",
        )))
        .bind(password_hash)
        .bind(now_ms())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {user_id}")));
        }
        Ok(())
    }

    async fn set_blocked(&self, user_id: &str, blocked: bool, at: i64) -> Result<bool> {
        let done = if blocked {
            sqlx::query(AssertSqlSafe(pg_sql(
                "INSERT INTO blocked_users (user_id, blocked_at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING",
            )))
            .bind(user_id)
            .bind(at)
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query(AssertSqlSafe(pg_sql("DELETE FROM blocked_users WHERE user_id = ?")))
                .bind(user_id)
                .execute(&self.pool)
                .await?
        };
        Ok(done.rows_affected() > 0)
    }

    async fn blocked_users(&self, user_ids: &[String]) -> Result<Vec<String>> {
        let sql = |ph: &str| format!("SELECT user_id FROM blocked_users WHERE user_id IN ({ph})");
        self.select_in(sql, None, user_ids, |row| row.try_get("user_id")).await
    }
}

impl PgStore {
    /// One page of a directory search ([`search_sql`]) and the number of matches in all.
    async fn search<T>(
        &self,
        (count_sql, page_sql): (String, String),
        keyword: &str,
        page: Page,
        map: impl Fn(&sqlx::postgres::PgRow) -> Result<T, sqlx::Error>,
    ) -> Result<(Vec<T>, i64)> {
        let pattern = contains_pattern(keyword);
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(pg_sql(&count_sql)))
            .bind(&pattern)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(AssertSqlSafe(pg_sql(&page_sql)))
            .bind(&pattern)
            .bind(&pattern)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        let found = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
        Ok((found, total))
    }
}

#[async_trait]
impl DirectoryStore for PgStore {
    async fn search_users(&self, keyword: &str, page: Page) -> Result<(Vec<User>, i64)> {
        self.search(search_sql("users", "user_id", "nickname", user_columns!()), keyword, page, user_from_row).await
    }

    async fn search_groups(&self, keyword: &str, page: Page) -> Result<(Vec<Group>, i64)> {
        self.search(search_sql("groups", "group_id", "group_name", group_columns!()), keyword, page, group_from_row)
            .await
    }

    async fn directory_counts(&self) -> Result<DirectoryCounts> {
        let row = sqlx::query(AssertSqlSafe(pg_sql(
            "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM accounts) AS accounts, \
             (SELECT COUNT(*) FROM groups) AS groups, \
             (SELECT COALESCE(SUM(max_seq), 0)::BIGINT FROM conversation_seqs) AS messages",
        )))
        .fetch_one(&self.pool)
        .await?;
        Ok(DirectoryCounts {
            users: row.try_get("users")?,
            accounts: row.try_get("accounts")?,
            groups: row.try_get("groups")?,
            messages: row.try_get("messages")?,
        })
    }
}
