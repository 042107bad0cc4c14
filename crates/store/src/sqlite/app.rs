//! Per-user app data: user commands, client configuration, push tokens, badges, uploaded client logs.

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, now_ms, unique_as_exists};
use crate::{AppStore, ClientLog, Result, StoreError, UserCommand};

fn command_from_row(row: &SqliteRow) -> Result<UserCommand, sqlx::Error> {
    Ok(UserCommand {
        user_id: row.try_get("user_id")?,
        command_type: row.try_get("type")?,
        uuid: row.try_get("uuid")?,
        value: row.try_get("value")?,
        ex: row.try_get("ex")?,
        create_time: row.try_get("create_time")?,
    })
}

fn log_from_row(row: &SqliteRow) -> Result<ClientLog, sqlx::Error> {
    Ok(ClientLog {
        log_id: row.try_get("log_id")?,
        user_id: row.try_get("user_id")?,
        platform: row.try_get("platform")?,
        url: row.try_get("url")?,
        filename: row.try_get("filename")?,
        app_framework: row.try_get("app_framework")?,
        version: row.try_get("version")?,
        ex: row.try_get("ex")?,
        create_time: row.try_get("create_time")?,
    })
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn add_user_command(&self, c: &UserCommand) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_commands (user_id, type, uuid, value, ex, create_time) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.user_id)
        .bind(c.command_type)
        .bind(&c.uuid)
        .bind(&c.value)
        .bind(&c.ex)
        .bind(c.create_time)
        .execute(&self.write)
        .await
        .map_err(|e| unique_as_exists(e, || format!("command {}/{} of {}", c.command_type, c.uuid, c.user_id)))?;
        Ok(())
    }

    async fn update_user_command(
        &self,
        user_id: &str,
        command_type: i32,
        uuid: &str,
        value: Option<&str>,
        ex: Option<&str>,
    ) -> Result<()> {
        let n = sqlx::query(
            "UPDATE user_commands SET value = COALESCE(?, value), ex = COALESCE(?, ex) \
             WHERE user_id = ? AND type = ? AND uuid = ?",
        )
        .bind(value)
        .bind(ex)
        .bind(user_id)
        .bind(command_type)
        .bind(uuid)
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("command {command_type}/{uuid} of {user_id}")));
        }
        Ok(())
    }

    async fn delete_user_command(&self, user_id: &str, command_type: i32, uuid: &str) -> Result<()> {
        let n = sqlx::query("DELETE FROM user_commands WHERE user_id = ? AND type = ? AND uuid = ?")
            .bind(user_id)
            .bind(command_type)
            .bind(uuid)
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("command {command_type}/{uuid} of {user_id}")));
        }
        Ok(())
    }

    async fn user_commands(&self, user_id: &str, command_type: Option<i32>) -> Result<Vec<UserCommand>> {
        let columns = "user_id, type, uuid, value, ex, create_time";
        let rows = match command_type {
            Some(t) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {columns} FROM user_commands WHERE user_id = ? AND type = ? ORDER BY create_time, uuid"
                )))
                .bind(user_id)
                .bind(t)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {columns} FROM user_commands WHERE user_id = ? ORDER BY create_time, type, uuid"
                )))
                .bind(user_id)
                .fetch_all(&self.read)
                .await?
            }
        };
        Ok(rows.iter().map(command_from_row).collect::<Result<_, _>>()?)
    }

    async fn client_config(&self, user_id: &str) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as("SELECT config_key, value FROM client_configs WHERE user_id = ? ORDER BY config_key")
            .bind(user_id)
            .fetch_all(&self.read)
            .await?)
    }

    async fn set_client_config(&self, user_id: &str, configs: &[(String, String)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for (key, value) in configs {
            sqlx::query(
                "INSERT INTO client_configs (user_id, config_key, value) VALUES (?, ?, ?) \
                 ON CONFLICT (user_id, config_key) DO UPDATE SET value = excluded.value",
            )
            .bind(user_id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_client_config(&self, user_id: &str, keys: &[String]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            sqlx::query("DELETE FROM client_configs WHERE user_id = ? AND config_key = ?")
                .bind(user_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_push_token(&self, user_id: &str, platform_id: i32, token: &str, expire_time: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO push_tokens (user_id, platform_id, token, expire_time, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, platform_id) DO UPDATE SET token = excluded.token, \
             expire_time = excluded.expire_time, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(platform_id)
        .bind(token)
        .bind(expire_time)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn delete_push_token(&self, user_id: &str, platform_id: i32) -> Result<()> {
        sqlx::query("DELETE FROM push_tokens WHERE user_id = ? AND platform_id = ?")
            .bind(user_id)
            .bind(platform_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn push_token(&self, user_id: &str, platform_id: i32) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT token FROM push_tokens WHERE user_id = ? AND platform_id = ?")
            .bind(user_id)
            .bind(platform_id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn set_app_badge(&self, user_id: &str, unread_count: i32) -> Result<()> {
        sqlx::query(
            "INSERT INTO app_badges (user_id, unread_count, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET unread_count = excluded.unread_count, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(unread_count)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn app_badge(&self, user_id: &str) -> Result<Option<i32>> {
        Ok(sqlx::query_scalar("SELECT unread_count FROM app_badges WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn insert_client_logs(&self, logs: &[ClientLog]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for l in logs {
            sqlx::query(
                "INSERT INTO client_logs (log_id, user_id, platform, url, filename, app_framework, version, ex, \
                 create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&l.log_id)
            .bind(&l.user_id)
            .bind(&l.platform)
            .bind(&l.url)
            .bind(&l.filename)
            .bind(&l.app_framework)
            .bind(&l.version)
            .bind(&l.ex)
            .bind(l.create_time)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_as_exists(e, || format!("log {}", l.log_id)))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn client_logs(&self, user_id: &str) -> Result<Vec<ClientLog>> {
        let rows = sqlx::query(
            "SELECT log_id, user_id, platform, url, filename, app_framework, version, ex, create_time \
             FROM client_logs WHERE user_id = ? ORDER BY create_time DESC, log_id",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(log_from_row).collect::<Result<_, _>>()?)
    }
}
