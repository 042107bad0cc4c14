//! Password accounts, blocks, and the admin console's searches and totals.

use async_trait::async_trait;
use sqlx::Row as _;

use super::accounts::user_from_row;
use super::groups::group_from_row;
use super::{SqliteStore, now_ms, unique_as_exists, versions};
use crate::search::{contains_pattern, search_sql};
use crate::{Account, AccountStore, DirectoryCounts, DirectoryStore, Group, Page, Result, StoreError, User};

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, user: &User, password_hash: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(concat!("INSERT INTO users (", user_columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?)"))
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
        versions::create_user_lists(&mut tx, &user.user_id).await?;
        // A leftover account row of the same id (from a user removed by hand) would be a unique violation here
        // too, and reporting it as "already exists" is right: the id is not free.
        let now = now_ms();
        sqlx::query("INSERT INTO accounts (user_id, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)")
            .bind(&user.user_id)
            .bind(password_hash)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_as_exists(e, || user.user_id.clone()))?;
        tx.commit().await?;
        self.preconditions_changed();
        Ok(())
    }

    async fn account(&self, user_id: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT user_id, password_hash, created_at, updated_at FROM accounts WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&self.read)
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
        let done = sqlx::query("UPDATE accounts SET password_hash = ?, updated_at = ? WHERE user_id = ?")
            .bind(password_hash)
            .bind(now_ms())
            .bind(user_id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {user_id}")));
        }
        Ok(())
    }

    async fn set_blocked(&self, user_id: &str, blocked: bool, at: i64) -> Result<bool> {
        let done = if blocked {
            sqlx::query(
                "INSERT INTO blocked_users (user_id, blocked_at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user_id)
            .bind(at)
            .execute(&self.write)
            .await?
        } else {
            sqlx::query("DELETE FROM blocked_users WHERE user_id = ?").bind(user_id).execute(&self.write).await?
        };
        Ok(done.rows_affected() > 0)
    }

    async fn blocked_users(&self, user_ids: &[String]) -> Result<Vec<String>> {
        let sql = |ph: &str| format!("SELECT user_id FROM blocked_users WHERE user_id IN ({ph})");
        self.select_in(sql, None, user_ids, |row| row.try_get("user_id")).await
    }
}

impl SqliteStore {
    /// One page of a directory search ([`search_sql`]) and the number of matches in all.
    async fn search<T>(
        &self,
        (count_sql, page_sql): (String, String),
        keyword: &str,
        page: Page,
        map: impl Fn(&sqlx::sqlite::SqliteRow) -> Result<T, sqlx::Error>,
    ) -> Result<(Vec<T>, i64)> {
        let pattern = contains_pattern(keyword);
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
            .bind(&pattern)
            .bind(&pattern)
            .fetch_one(&self.read)
            .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(page_sql))
            .bind(&pattern)
            .bind(&pattern)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.read)
            .await?;
        let found = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
        Ok((found, total))
    }
}

#[async_trait]
impl DirectoryStore for SqliteStore {
    async fn search_users(&self, keyword: &str, page: Page) -> Result<(Vec<User>, i64)> {
        self.search(search_sql("users", "user_id", "nickname", user_columns!()), keyword, page, user_from_row).await
    }

    async fn search_groups(&self, keyword: &str, page: Page) -> Result<(Vec<Group>, i64)> {
        self.search(search_sql("groups", "group_id", "group_name", group_columns!()), keyword, page, group_from_row)
            .await
    }

    /// Messages are counted by the log's last rowid, one seek rather than a walk of a whole index: the log is
    /// append-only (deletions and revokes are marks beside it), so its rowids run 1, 2, 3, … without a hole.
    async fn directory_counts(&self) -> Result<DirectoryCounts> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM accounts) AS accounts, \
             (SELECT COUNT(*) FROM groups) AS groups, \
             (SELECT COALESCE(MAX(rowid), 0) FROM messages) AS messages",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(DirectoryCounts {
            users: row.try_get("users")?,
            accounts: row.try_get("accounts")?,
            groups: row.try_get("groups")?,
            // The unflushed messages too (for the moment of a flush, between its commit and its removal from
            // the memtable, they are counted twice: a figure for the console, not a key).
            messages: row.try_get::<i64, _>("messages")? + i64::try_from(self.memtable.pending()).unwrap_or(0),
        })
    }
}
