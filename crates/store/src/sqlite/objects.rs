//! Object records and multipart uploads.

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, unique_as_exists};
use crate::{Object, ObjectStore, Result, StoreError, Upload};

macro_rules! object_columns {
    () => {
        "name, user_id, hash, storage_key, size, content_type, cause, create_time"
    };
}

macro_rules! upload_columns {
    () => {
        "upload_id, user_id, hash, size, part_size, part_count, storage_key, backend_upload_id, expire_time, \
         create_time"
    };
}

fn object_from_row(row: &SqliteRow) -> Result<Object, sqlx::Error> {
    Ok(Object {
        name: row.try_get("name")?,
        user_id: row.try_get("user_id")?,
        hash: row.try_get("hash")?,
        storage_key: row.try_get("storage_key")?,
        size: row.try_get("size")?,
        content_type: row.try_get("content_type")?,
        cause: row.try_get("cause")?,
        create_time: row.try_get("create_time")?,
    })
}

fn upload_from_row(row: &SqliteRow) -> Result<Upload, sqlx::Error> {
    Ok(Upload {
        upload_id: row.try_get("upload_id")?,
        user_id: row.try_get("user_id")?,
        hash: row.try_get("hash")?,
        size: row.try_get("size")?,
        part_size: row.try_get("part_size")?,
        part_count: row.try_get("part_count")?,
        storage_key: row.try_get("storage_key")?,
        backend_upload_id: row.try_get("backend_upload_id")?,
        expire_time: row.try_get("expire_time")?,
        create_time: row.try_get("create_time")?,
    })
}

/// Inserts or replaces `object`, but only over a row of the same user: the `WHERE` of the upsert leaves another
/// user's row untouched, and then no row comes back.
async fn upsert_object(conn: &mut sqlx::SqliteConnection, object: &Object) -> Result<()> {
    let stored = sqlx::query(concat!(
        "INSERT INTO objects (",
        object_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) ",
        "ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, storage_key = excluded.storage_key, ",
        "size = excluded.size, content_type = excluded.content_type, cause = excluded.cause, ",
        "create_time = excluded.create_time WHERE objects.user_id = excluded.user_id RETURNING name"
    ))
    .bind(&object.name)
    .bind(&object.user_id)
    .bind(&object.hash)
    .bind(&object.storage_key)
    .bind(object.size)
    .bind(&object.content_type)
    .bind(&object.cause)
    .bind(object.create_time)
    .fetch_optional(conn)
    .await?;
    match stored {
        Some(_) => Ok(()),
        None => Err(StoreError::AlreadyExists(format!("object {} belongs to another user", object.name))),
    }
}

#[async_trait]
impl ObjectStore for SqliteStore {
    async fn put_object(&self, object: &Object) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        upsert_object(&mut conn, object).await
    }

    async fn object(&self, name: &str) -> Result<Option<Object>> {
        let row = sqlx::query(concat!("SELECT ", object_columns!(), " FROM objects WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(object_from_row).transpose()?)
    }

    async fn object_by_hash(&self, hash: &str) -> Result<Option<Object>> {
        let row = sqlx::query(concat!("SELECT ", object_columns!(), " FROM objects WHERE hash = ? LIMIT 1"))
            .bind(hash)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(object_from_row).transpose()?)
    }

    async fn insert_upload(&self, upload: &Upload) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO object_uploads (",
            upload_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&upload.upload_id)
        .bind(&upload.user_id)
        .bind(&upload.hash)
        .bind(upload.size)
        .bind(upload.part_size)
        .bind(upload.part_count)
        .bind(&upload.storage_key)
        .bind(&upload.backend_upload_id)
        .bind(upload.expire_time)
        .bind(upload.create_time)
        .execute(&self.write)
        .await
        .map_err(|e| unique_as_exists(e, || format!("upload {}", upload.upload_id)))?;
        Ok(())
    }

    async fn upload(&self, upload_id: &str) -> Result<Option<Upload>> {
        let row = sqlx::query(concat!("SELECT ", upload_columns!(), " FROM object_uploads WHERE upload_id = ?"))
            .bind(upload_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(upload_from_row).transpose()?)
    }

    async fn complete_upload(&self, upload_id: &str, object: &Object) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM object_uploads WHERE upload_id = ?")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("upload {upload_id}")));
        }
        upsert_object(&mut tx, object).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_upload(&self, upload_id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM object_uploads WHERE upload_id = ?")
            .bind(upload_id)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn expired_uploads(&self, now_ms: i64, limit: u32) -> Result<Vec<Upload>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM object_uploads WHERE expire_time <= ? ORDER BY expire_time LIMIT CAST(? AS INTEGER)"
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(upload_from_row).collect::<Result<_, _>>()?)
    }
}
