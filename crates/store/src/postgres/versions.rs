//! Version logs for incremental sync. Mutations elsewhere call [`bump`] inside their own transaction.

use async_trait::async_trait;
use sqlx::{PgConnection, Row as _};

use super::{PgStore, unique};
use crate::{Change, Result, VersionDelta, VersionHead, VersionKind, VersionStore, model::new_version_id};

/// Records that `elements` of list `kind`/`owner` changed: raises the version by one (creating the list at 1
/// first, as SQLite does, so the first change is version 2) and logs each element at the new version. One upsert
/// does both, and its row lock orders concurrent bumps of one list. Nothing happens for an empty `elements`.
pub(super) async fn bump(
    conn: &mut PgConnection,
    kind: VersionKind,
    owner: &str,
    elements: &[String],
    change: Change,
) -> Result<i64> {
    if elements.is_empty() {
        return Ok(0);
    }
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO version_lists (kind, owner, version_id, version, min_version) VALUES ($1, $2, $3, 2, 0) \
         ON CONFLICT (kind, owner) DO UPDATE SET version = version_lists.version + 1 RETURNING version",
    )
    .bind(kind.as_str())
    .bind(owner)
    .bind(new_version_id())
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO version_log (kind, owner, element_id, change, version) \
         SELECT $1, $2, e, $3, $4 FROM UNNEST($5::TEXT[]) AS e \
         ON CONFLICT (kind, owner, element_id) DO UPDATE SET change = excluded.change, version = excluded.version",
    )
    .bind(kind.as_str())
    .bind(owner)
    .bind(change as i64)
    .bind(version)
    .bind(unique(elements))
    .execute(&mut *conn)
    .await?;
    Ok(version)
}

/// Creates the list at version 1 if it does not exist.
async fn ensure_list(conn: &mut PgConnection, kind: VersionKind, owner: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO version_lists (kind, owner, version_id, version, min_version) VALUES ($1, $2, $3, 1, 0) \
         ON CONFLICT (kind, owner) DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(owner)
    .bind(new_version_id())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates new users' lists ([`VersionKind::OF_A_USER`]), in the transaction that inserts the users, as on
/// SQLite: a device's first sync then only reads. One statement for them all, not a round trip per list.
pub(super) async fn create_user_lists(conn: &mut PgConnection, user_ids: &[String]) -> Result<()> {
    let (mut kinds, mut owners, mut version_ids) = (Vec::new(), Vec::new(), Vec::new());
    for user_id in user_ids {
        for kind in VersionKind::OF_A_USER {
            kinds.push(kind.as_str());
            owners.push(user_id.as_str());
            version_ids.push(new_version_id());
        }
    }
    sqlx::query(
        "INSERT INTO version_lists (kind, owner, version_id, version, min_version) \
         SELECT k, o, v, 1, 0 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS l (k, o, v) \
         ON CONFLICT (kind, owner) DO NOTHING",
    )
    .bind(kinds)
    .bind(owners)
    .bind(version_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The list's head as the current transaction sees it (creating the list if needed): call it right after a
/// [`bump`] to learn the exact version that change got.
pub(super) async fn head_in_tx(conn: &mut PgConnection, kind: VersionKind, owner: &str) -> Result<VersionHead> {
    ensure_list(conn, kind, owner).await?;
    let (version_id, version): (String, i64) =
        sqlx::query_as("SELECT version_id, version FROM version_lists WHERE kind = $1 AND owner = $2")
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

impl PgStore {
    /// The head and the log's lower bound, creating the list at version 1 if needed.
    async fn head_with_floor(&self, kind: VersionKind, owner: &str) -> Result<(VersionHead, i64)> {
        let read = || {
            sqlx::query("SELECT version_id, version, min_version FROM version_lists WHERE kind = $1 AND owner = $2")
                .bind(kind.as_str())
                .bind(owner)
        };
        let mut row = read().fetch_optional(&self.pool).await?;
        if row.is_none() {
            ensure_list(&mut *self.pool.acquire().await?, kind, owner).await?;
            row = read().fetch_optional(&self.pool).await?;
        }
        let r = row.ok_or_else(|| crate::StoreError::Backend("version list vanished".into()))?;
        Ok((VersionHead { version_id: r.try_get(0)?, version: r.try_get(1)? }, r.try_get(2)?))
    }
}

#[async_trait]
impl VersionStore for PgStore {
    async fn version_head(&self, kind: VersionKind, owner: &str) -> Result<VersionHead> {
        Ok(self.head_with_floor(kind, owner).await?.0)
    }

    async fn version_changes(&self, kind: VersionKind, owner: &str, since: i64, limit: usize) -> Result<VersionDelta> {
        let (head, floor) = self.head_with_floor(kind, owner).await?;
        if since < floor {
            return Ok(VersionDelta { head, changes: Vec::new(), complete: false });
        }
        let rows = sqlx::query(
            "SELECT element_id, change FROM version_log WHERE kind = $1 AND owner = $2 AND version > $3 \
             ORDER BY version, element_id LIMIT $4",
        )
        .bind(kind.as_str())
        .bind(owner)
        .bind(since)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1)
        .fetch_all(&self.pool)
        .await?;
        let complete = rows.len() <= limit;
        let changes = rows
            .iter()
            .take(limit)
            .map(|r| Ok((r.try_get::<String, _>(0)?, change_from(r.try_get(1)?))))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(VersionDelta { head, changes, complete })
    }
}
