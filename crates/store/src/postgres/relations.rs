//! Friends, friend requests and blacklists. Every change to a friend list bumps its owner's friends version in
//! the same transaction.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row as _};

use super::{PgStore, versions::bump};
use crate::{
    Black, Change, Friend, FriendAnswer, FriendPatch, FriendRequest, Page, RelationStore, Result, StoreError,
    VersionKind,
};

const FRIEND_COLUMNS: &str =
    "owner_user_id, friend_user_id, remark, create_time, add_source, operator_user_id, ex, is_pinned";
const REQUEST_COLUMNS: &str = "from_user_id, to_user_id, handle_result, req_msg, create_time, handler_user_id, \
                               handle_msg, handle_time, ex";
const BLACK_COLUMNS: &str = "owner_user_id, block_user_id, create_time, add_source, operator_user_id, ex";

fn friend_from_row(row: &PgRow) -> Result<Friend, sqlx::Error> {
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

fn request_from_row(row: &PgRow) -> Result<FriendRequest, sqlx::Error> {
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

fn black_from_row(row: &PgRow) -> Result<Black, sqlx::Error> {
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
async fn insert_friend(conn: &mut PgConnection, friend: &Friend) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO friends (owner_user_id, friend_user_id, remark, create_time, add_source, operator_user_id, ex, \
         is_pinned) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (owner_user_id, friend_user_id) DO NOTHING",
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
impl RelationStore for PgStore {
    async fn friends(&self, owner: &str, page: Page) -> Result<(Vec<Friend>, i64)> {
        let (lim, off) = limit(page);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FRIEND_COLUMNS} FROM friends WHERE owner_user_id = $1 ORDER BY create_time, friend_user_id LIMIT $2 OFFSET $3"
        )))
        .bind(owner)
        .bind(lim)
        .bind(off)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM friends WHERE owner_user_id = $1")
            .bind(owner)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.iter().map(friend_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn friends_by_id(&self, owner: &str, ids: &[String]) -> Result<Vec<Friend>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FRIEND_COLUMNS} FROM friends WHERE owner_user_id = $1 AND friend_user_id = ANY($2)"
        )))
        .bind(owner)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(friend_from_row).collect::<Result<_, _>>()?)
    }

    async fn friend_ids(&self, owner: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT friend_user_id FROM friends WHERE owner_user_id = $1 ORDER BY create_time, friend_user_id",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn put_friend_request(&self, r: &FriendRequest) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO friend_requests (from_user_id, to_user_id, handle_result, req_msg, create_time, \
             handler_user_id, handle_msg, handle_time, ex) VALUES ($1, $2, 0, $3, $4, '', '', 0, $5) \
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
            "SELECT {REQUEST_COLUMNS} FROM friend_requests WHERE from_user_id = $1 AND to_user_id = $2"
        )))
        .bind(from)
        .bind(to)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(request_from_row).transpose()?)
    }

    async fn friend_requests(&self, user_id: &str, incoming: bool, page: Page) -> Result<(Vec<FriendRequest>, i64)> {
        let column = if incoming { "to_user_id" } else { "from_user_id" };
        let (lim, off) = limit(page);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM friend_requests WHERE {column} = $1 ORDER BY create_time DESC LIMIT $2 OFFSET $3"
        )))
        .bind(user_id)
        .bind(lim)
        .bind(off)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM friend_requests WHERE {column} = $1")))
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        Ok((rows.iter().map(request_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn answer_friend_request(&self, a: &FriendAnswer) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE friend_requests SET handle_result = $1, handler_user_id = $2, handle_msg = $3, handle_time = $4 \
             WHERE from_user_id = $5 AND to_user_id = $6 AND handle_result = 0",
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
            // Both friend lists are bumped in owner order, so two answers between the same users (or an answer and
            // an `add_friendship`) lock them in the same order.
            let mut pairs = [(&a.from_user_id, &a.to_user_id), (&a.to_user_id, &a.from_user_id)];
            pairs.sort();
            for (owner, other) in pairs {
                let row = Friend {
                    owner_user_id: owner.clone(),
                    friend_user_id: other.clone(),
                    create_time: a.time,
                    operator_user_id: a.handler_user_id.clone(),
                    ..Friend::default()
                };
                insert_friend(&mut tx, &row).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn add_friendship(&self, a: &Friend, b: &Friend) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (first, second) = if a.owner_user_id <= b.owner_user_id { (a, b) } else { (b, a) };
        insert_friend(&mut tx, first).await?;
        insert_friend(&mut tx, second).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_friend(&self, owner: &str, friend: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM friends WHERE owner_user_id = $1 AND friend_user_id = $2")
            .bind(owner)
            .bind(friend)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            bump(&mut tx, VersionKind::Friends, owner, &[friend.to_string()], Change::Delete).await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }

    async fn update_friends(&self, owner: &str, friends: &[String], patch: &FriendPatch) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut changed = Vec::new();
        for friend in friends {
            let n = sqlx::query(
                "UPDATE friends SET remark = COALESCE($1, remark), is_pinned = COALESCE($2, is_pinned), \
                 ex = COALESCE($3, ex) WHERE owner_user_id = $4 AND friend_user_id = $5",
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

    async fn blacks(&self, owner: &str, page: Page) -> Result<(Vec<Black>, i64)> {
        let (lim, off) = limit(page);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BLACK_COLUMNS} FROM blacks WHERE owner_user_id = $1 ORDER BY create_time, block_user_id LIMIT $2 OFFSET $3"
        )))
        .bind(owner)
        .bind(lim)
        .bind(off)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blacks WHERE owner_user_id = $1")
            .bind(owner)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.iter().map(black_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn blacks_by_id(&self, owner: &str, ids: &[String]) -> Result<Vec<Black>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BLACK_COLUMNS} FROM blacks WHERE owner_user_id = $1 AND block_user_id = ANY($2)"
        )))
        .bind(owner)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(black_from_row).collect::<Result<_, _>>()?)
    }

    async fn is_blocked(&self, owner: &str, other: &str) -> Result<bool> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM blacks WHERE owner_user_id = $1 AND block_user_id = $2")
                .bind(owner)
                .bind(other)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn add_black(&self, b: &Black) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO blacks (owner_user_id, block_user_id, create_time, add_source, operator_user_id, ex) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner_user_id, block_user_id) DO NOTHING",
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
        Ok(())
    }

    async fn remove_black(&self, owner: &str, blocked: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM blacks WHERE owner_user_id = $1 AND block_user_id = $2")
            .bind(owner)
            .bind(blocked)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}
