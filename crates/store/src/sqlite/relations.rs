//! Friends, friend requests and blacklists. Every change to a friend list bumps its owner's friends version in
//! the same transaction.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row as _, SqliteConnection};

use super::{SqliteStore, placeholders, versions::bump};
use crate::{
    Black, Change, Friend, FriendAnswer, FriendPatch, FriendRequest, Page, RelationStore, Result, StoreError,
    VersionKind,
};

const FRIEND_COLUMNS: &str =
    "owner_user_id, friend_user_id, remark, create_time, add_source, operator_user_id, ex, is_pinned";
const REQUEST_COLUMNS: &str = "from_user_id, to_user_id, handle_result, req_msg, create_time, handler_user_id, \
                               handle_msg, handle_time, ex";
const BLACK_COLUMNS: &str = "owner_user_id, block_user_id, create_time, add_source, operator_user_id, ex";

fn friend_from_row(row: &SqliteRow) -> Result<Friend, sqlx::Error> {
    Ok(Friend {
        owner_user_id: row.try_get("owner_user_id")?,
        friend_user_id: row.try_get("friend_user_id")?,
        remark: row.try_get("remark")?,
        create_time: row.try_get("create_time")?,
        add_source: row.try_get("add_source")?,
        operator_user_id: row.try_get("operator_user_id")?,
        ex: row.try_get("ex")?,
        is_pinned: row.try_get("is_pinned")?,
    })
}

fn request_from_row(row: &SqliteRow) -> Result<FriendRequest, sqlx::Error> {
    Ok(FriendRequest {
        from_user_id: row.try_get("from_user_id")?,
        to_user_id: row.try_get("to_user_id")?,
        handle_result: row.try_get("handle_result")?,
        req_msg: row.try_get("req_msg")?,
        create_time: row.try_get("create_time")?,
        handler_user_id: row.try_get("handler_user_id")?,
        handle_msg: row.try_get("handle_msg")?,
        handle_time: row.try_get("handle_time")?,
        ex: row.try_get("ex")?,
    })
}

fn black_from_row(row: &SqliteRow) -> Result<Black, sqlx::Error> {
    Ok(Black {
        owner_user_id: row.try_get("owner_user_id")?,
        block_user_id: row.try_get("block_user_id")?,
        create_time: row.try_get("create_time")?,
        add_source: row.try_get("add_source")?,
        operator_user_id: row.try_get("operator_user_id")?,
        ex: row.try_get("ex")?,
    })
}

/// Inserts `friend` unless the row exists; bumps the owner's version when it was inserted.
async fn insert_friend(conn: &mut SqliteConnection, friend: &Friend) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO friends (owner_user_id, friend_user_id, remark, create_time, add_source, operator_user_id, ex, \
         is_pinned) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owner_user_id, friend_user_id) DO NOTHING",
    )
    .bind(&friend.owner_user_id)
    .bind(&friend.friend_user_id)
    .bind(&friend.remark)
    .bind(friend.create_time)
    .bind(friend.add_source)
    .bind(&friend.operator_user_id)
    .bind(&friend.ex)
    .bind(friend.is_pinned)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted > 0 {
        bump(
            conn,
            VersionKind::Friends,
            &friend.owner_user_id,
            std::slice::from_ref(&friend.friend_user_id),
            Change::Insert,
        )
        .await?;
    }
    Ok(())
}

fn limit(page: Page) -> (i64, i64) {
    (page.limit.max(0), page.offset.max(0))
}

#[async_trait]
impl RelationStore for SqliteStore {
    async fn friends(&self, owner: &str, page: Page) -> Result<(Vec<Friend>, i64)> {
        let (lim, off) = limit(page);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FRIEND_COLUMNS} FROM friends WHERE owner_user_id = ? ORDER BY create_time, friend_user_id LIMIT CAST(? AS INTEGER) OFFSET ?"
        )))
        .bind(owner)
        .bind(lim)
        .bind(off)
        .fetch_all(&self.read)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM friends WHERE owner_user_id = ?")
            .bind(owner)
            .fetch_one(&self.read)
            .await?;
        Ok((rows.iter().map(friend_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn friends_by_id(&self, owner: &str, ids: &[String]) -> Result<Vec<Friend>> {
        let sql = |ph: &str| {
            format!("SELECT {FRIEND_COLUMNS} FROM friends WHERE owner_user_id = ? AND friend_user_id IN ({ph})")
        };
        self.select_in(sql, Some(owner), ids, friend_from_row).await
    }

    async fn friend_ids(&self, owner: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT friend_user_id FROM friends WHERE owner_user_id = ? ORDER BY create_time, friend_user_id",
        )
        .bind(owner)
        .fetch_all(&self.read)
        .await?)
    }

    async fn put_friend_request(&self, r: &FriendRequest) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO friend_requests (from_user_id, to_user_id, handle_result, req_msg, create_time, \
             handler_user_id, handle_msg, handle_time, ex) VALUES (?, ?, 0, ?, ?, '', '', 0, ?) \
             ON CONFLICT (from_user_id, to_user_id) DO UPDATE SET handle_result = 0, req_msg = excluded.req_msg, \
             create_time = excluded.create_time, handler_user_id = '', handle_msg = '', handle_time = 0, ex = excluded.ex",
        )
        .bind(&r.from_user_id)
        .bind(&r.to_user_id)
        .bind(&r.req_msg)
        .bind(r.create_time)
        .bind(&r.ex)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn friend_request(&self, from: &str, to: &str) -> Result<Option<FriendRequest>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM friend_requests WHERE from_user_id = ? AND to_user_id = ?"
        )))
        .bind(from)
        .bind(to)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(request_from_row).transpose()?)
    }

    async fn friend_requests(
        &self,
        user_id: &str,
        incoming: bool,
        handle_results: &[i32],
        page: Page,
    ) -> Result<(Vec<FriendRequest>, i64)> {
        let column = if incoming { "to_user_id" } else { "from_user_id" };
        // At most three distinct results exist (0, 1, -1); more values are bound as given.
        let filter = if handle_results.is_empty() {
            String::new()
        } else {
            format!(" AND handle_result IN ({})", placeholders(handle_results.len()))
        };
        let (lim, off) = limit(page);
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM friend_requests WHERE {column} = ?{filter} \
             ORDER BY create_time DESC, from_user_id, to_user_id LIMIT CAST(? AS INTEGER) OFFSET ?"
        )))
        .bind(user_id);
        for r in handle_results {
            q = q.bind(*r);
        }
        let rows = q.bind(lim).bind(off).fetch_all(&self.read).await?;
        let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM friend_requests WHERE {column} = ?{filter}"
        )))
        .bind(user_id);
        for r in handle_results {
            count = count.bind(*r);
        }
        let total = count.fetch_one(&self.read).await?;
        Ok((rows.iter().map(request_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn friend_requests_between(&self, a: &str, b: &str) -> Result<Vec<FriendRequest>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM friend_requests \
             WHERE (from_user_id = ? AND to_user_id = ?) OR (from_user_id = ? AND to_user_id = ?) \
             ORDER BY create_time DESC"
        )))
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(request_from_row).collect::<Result<_, _>>()?)
    }

    async fn unhandled_friend_request_count(&self, user_id: &str, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM friend_requests WHERE to_user_id = ? AND handle_result = 0 AND create_time > ?",
        )
        .bind(user_id)
        .bind(since)
        .fetch_one(&self.read)
        .await?)
    }

    async fn answer_friend_request(&self, a: &FriendAnswer) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE friend_requests SET handle_result = ?, handler_user_id = ?, handle_msg = ?, handle_time = ? \
             WHERE from_user_id = ? AND to_user_id = ? AND handle_result = 0",
        )
        .bind(if a.accepted { 1 } else { -1 })
        .bind(&a.handler_user_id)
        .bind(&a.handle_msg)
        .bind(a.time)
        .bind(&a.from_user_id)
        .bind(&a.to_user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound(format!("pending request {} -> {}", a.from_user_id, a.to_user_id)));
        }
        if a.accepted {
            // A pending request the other way is answered by this one too (both asked; one said yes).
            sqlx::query(
                "UPDATE friend_requests SET handle_result = 1, handler_user_id = ?, handle_time = ? \
                 WHERE from_user_id = ? AND to_user_id = ? AND handle_result = 0",
            )
            .bind(&a.handler_user_id)
            .bind(a.time)
            .bind(&a.to_user_id)
            .bind(&a.from_user_id)
            .execute(&mut *tx)
            .await?;
            for (owner, other) in [(&a.from_user_id, &a.to_user_id), (&a.to_user_id, &a.from_user_id)] {
                let row = Friend {
                    owner_user_id: owner.clone(),
                    friend_user_id: other.clone(),
                    create_time: a.time,
                    add_source: palaver_protocol::constant::friend_source::APPLY,
                    operator_user_id: a.from_user_id.clone(),
                    ..Friend::default()
                };
                insert_friend(&mut tx, &row).await?;
            }
        }
        tx.commit().await?;
        self.preconditions_changed();
        Ok(())
    }

    async fn add_friendship(&self, a: &Friend, b: &Friend) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_friend(&mut tx, a).await?;
        insert_friend(&mut tx, b).await?;
        tx.commit().await?;
        self.preconditions_changed();
        Ok(())
    }

    async fn delete_friend(&self, owner: &str, friend: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM friends WHERE owner_user_id = ? AND friend_user_id = ?")
            .bind(owner)
            .bind(friend)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            bump(&mut tx, VersionKind::Friends, owner, &[friend.to_string()], Change::Delete).await?;
        }
        tx.commit().await?;
        self.preconditions_changed();
        Ok(removed > 0)
    }

    async fn update_friends(&self, owner: &str, friends: &[String], patch: &FriendPatch) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut changed = Vec::new();
        for friend in friends {
            let n = sqlx::query(
                "UPDATE friends SET remark = COALESCE(?, remark), is_pinned = COALESCE(?, is_pinned), \
                 ex = COALESCE(?, ex) WHERE owner_user_id = ? AND friend_user_id = ?",
            )
            .bind(&patch.remark)
            .bind(patch.is_pinned)
            .bind(&patch.ex)
            .bind(owner)
            .bind(friend)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                changed.push(friend.clone());
            }
        }
        bump(&mut tx, VersionKind::Friends, owner, &changed, Change::Update).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_friend(&self, friend: &str) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let owners: Vec<String> =
            sqlx::query_scalar("SELECT owner_user_id FROM friends WHERE friend_user_id = ? ORDER BY owner_user_id")
                .bind(friend)
                .fetch_all(&mut *tx)
                .await?;
        for owner in &owners {
            bump(&mut tx, VersionKind::Friends, owner, &[friend.to_string()], Change::Update).await?;
        }
        tx.commit().await?;
        Ok(owners)
    }

    async fn blacks(&self, owner: &str, page: Page) -> Result<(Vec<Black>, i64)> {
        let (lim, off) = limit(page);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BLACK_COLUMNS} FROM blacks WHERE owner_user_id = ? ORDER BY create_time, block_user_id LIMIT CAST(? AS INTEGER) OFFSET ?"
        )))
        .bind(owner)
        .bind(lim)
        .bind(off)
        .fetch_all(&self.read)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blacks WHERE owner_user_id = ?")
            .bind(owner)
            .fetch_one(&self.read)
            .await?;
        Ok((rows.iter().map(black_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn blacks_by_id(&self, owner: &str, ids: &[String]) -> Result<Vec<Black>> {
        let sql = |ph: &str| {
            format!("SELECT {BLACK_COLUMNS} FROM blacks WHERE owner_user_id = ? AND block_user_id IN ({ph})")
        };
        self.select_in(sql, Some(owner), ids, black_from_row).await
    }

    async fn is_blocked(&self, owner: &str, other: &str) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM blacks WHERE owner_user_id = ? AND block_user_id = ?")
                .bind(owner)
                .bind(other)
                .fetch_optional(&self.read)
                .await?;
        Ok(found.is_some())
    }

    async fn add_black(&self, b: &Black) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO blacks (owner_user_id, block_user_id, create_time, add_source, operator_user_id, ex) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner_user_id, block_user_id) DO NOTHING",
        )
        .bind(&b.owner_user_id)
        .bind(&b.block_user_id)
        .bind(b.create_time)
        .bind(b.add_source)
        .bind(&b.operator_user_id)
        .bind(&b.ex)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.preconditions_changed();
        Ok(())
    }

    async fn remove_black(&self, owner: &str, blocked: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM blacks WHERE owner_user_id = ? AND block_user_id = ?")
            .bind(owner)
            .bind(blocked)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        self.preconditions_changed();
        Ok(n > 0)
    }
}
