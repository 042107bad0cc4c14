//! Version logs for incremental sync. Mutations elsewhere in the store call [`bump`] inside their own
//! transaction, so a change and its version can never be seen apart.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::SqliteStore;
use crate::{Change, Result, VersionDelta, VersionHead, VersionKind, VersionStore, model::new_version_id};

/// Creates a list at version 1 unless it exists: kind, owner, a fresh version id.
const ENSURE_LIST: &str = "INSERT INTO version_lists (kind, owner, version_id, version, min_version) \
     VALUES (?1, ?2, ?3, 1, 0) ON CONFLICT (kind, owner) DO NOTHING";
/// Raises a list's version by one, creating it at 1 first if needed (so its first change is version 2): kind,
/// owner, a fresh version id. Returns the new version. One statement either way, as on PostgreSQL.
const RAISE_VERSION: &str = "INSERT INTO version_lists (kind, owner, version_id, version, min_version) \
     VALUES (?1, ?2, ?3, 2, 0) ON CONFLICT (kind, owner) DO UPDATE SET version = version + 1 RETURNING version";
/// Logs one element at a version: kind, owner, element, change, version.
const LOG_ELEMENT: &str = "INSERT INTO version_log (kind, owner, element_id, change, version) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (kind, owner, element_id) DO UPDATE SET change = excluded.change, version = excluded.version";

/// Creates the list at version 1 if it does not exist.
async fn ensure_list(conn: &mut SqliteConnection, kind: VersionKind, owner: &str) -> Result<()> {
    sqlx::query(ENSURE_LIST).bind(kind.as_str()).bind(owner).bind(new_version_id()).execute(&mut *conn).await?;
    Ok(())
}

/// Creates a new user's lists ([`VersionKind::OF_A_USER`]), in the transaction that inserts the user. Created by
/// the first sync instead, they cost a device's first login a write transaction and an fsync per list: half of
/// that login's CPU (BENCHMARKS.md, "The third machine again").
pub(super) async fn create_user_lists(conn: &mut SqliteConnection, user_id: &str) -> Result<()> {
    for kind in VersionKind::OF_A_USER {
        ensure_list(conn, kind, user_id).await?;
    }
    Ok(())
}

/// Records that `elements` of list `kind`/`owner` changed: raises the version by one and logs each element at
/// the new version. Nothing happens for an empty `elements`. Call inside the mutation's transaction.
pub(super) async fn bump(
    conn: &mut SqliteConnection,
    kind: VersionKind,
    owner: &str,
    elements: &[String],
    change: Change,
) -> Result<i64> {
    if elements.is_empty() {
        return Ok(0);
    }
    let version: i64 = sqlx::query_scalar(RAISE_VERSION)
        .bind(kind.as_str())
        .bind(owner)
        .bind(new_version_id())
        .fetch_one(&mut *conn)
        .await?;
    for element in elements {
        sqlx::query(LOG_ELEMENT)
            .bind(kind.as_str())
            .bind(owner)
            .bind(element)
            .bind(change as i64)
            .bind(version)
            .execute(&mut *conn)
            .await?;
    }
    Ok(version)
}

/// [`bump`] on the append writer's synchronous connection (see [`super::writer`]), with the same statements.
pub(super) fn bump_sync(
    conn: &rusqlite::Connection,
    kind: VersionKind,
    owner: &str,
    elements: &[String],
    change: Change,
) -> Result<i64> {
    if elements.is_empty() {
        return Ok(0);
    }
    let version: i64 =
        conn.prepare_cached(RAISE_VERSION)?.query_row((kind.as_str(), owner, new_version_id()), |row| row.get(0))?;
    let mut log = conn.prepare_cached(LOG_ELEMENT)?;
    for element in elements {
        log.execute((kind.as_str(), owner, element, change as i64, version))?;
    }
    Ok(version)
}

/// The list's head as the current transaction sees it (creating the list if needed): call it right after a
/// [`bump`] to learn the exact version that change got.
pub(super) async fn head_in_tx(conn: &mut SqliteConnection, kind: VersionKind, owner: &str) -> Result<VersionHead> {
    ensure_list(conn, kind, owner).await?;
    let (version_id, version): (String, i64) =
        sqlx::query_as("SELECT version_id, version FROM version_lists WHERE kind = ? AND owner = ?")
            .bind(kind.as_str())
            .bind(owner)
            .fetch_one(&mut *conn)
            .await?;
    Ok(VersionHead { version_id, version })
}

fn change_from(v: i64) -> Change {
    match v {
        1 => Change::Insert,
        2 => Change::Delete,
        _ => Change::Update,
    }
}

impl SqliteStore {
    fn read_head(&self, kind: VersionKind, owner: &str) -> Result<Option<(VersionHead, i64)>> {
        use rusqlite::OptionalExtension as _;
        self.readers.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT version_id, version, min_version FROM version_lists WHERE kind = ? AND owner = ?",
                )?
                .query_row([kind.as_str(), owner], |r| {
                    Ok((VersionHead { version_id: r.get(0)?, version: r.get(1)? }, r.get(2)?))
                })
                .optional()?)
        })
    }

    /// The head and the log's lower bound, creating the list if needed. A conversation list waits for its owner's
    /// unflushed rows first, so that the head counts them.
    async fn head_with_floor(&self, kind: VersionKind, owner: &str) -> Result<(VersionHead, i64)> {
        if kind == VersionKind::Conversations {
            self.rows_flushed(owner).await?;
        }
        if let Some(found) = self.read_head(kind, owner)? {
            return Ok(found);
        }
        let mut tx = self.begin_write().await?;
        ensure_list(&mut tx, kind, owner).await?;
        tx.commit().await?;
        self.read_head(kind, owner)?.ok_or_else(|| crate::StoreError::Backend("version list vanished".into()))
    }
}

#[async_trait]
impl VersionStore for SqliteStore {
    async fn version_head(&self, kind: VersionKind, owner: &str) -> Result<VersionHead> {
        Ok(self.head_with_floor(kind, owner).await?.0)
    }

    async fn version_changes(&self, kind: VersionKind, owner: &str, since: i64, limit: usize) -> Result<VersionDelta> {
        let (head, floor) = self.head_with_floor(kind, owner).await?;
        if since < floor {
            return Ok(VersionDelta { head, changes: Vec::new(), complete: false });
        }
        let mut changes = self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT element_id, change FROM version_log WHERE kind = ?1 AND owner = ?2 AND version > ?3 \
                 ORDER BY version, element_id LIMIT CAST(?4 AS INTEGER)",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
            let rows = stmt.query_map(rusqlite::params![kind.as_str(), owner, since, limit], |r| {
                Ok((r.get::<_, String>(0)?, change_from(r.get(1)?)))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let complete = changes.len() <= limit;
        changes.truncate(limit);
        Ok(VersionDelta { head, changes, complete })
    }
}
