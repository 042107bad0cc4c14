//! Messages and their per-conversation seq counters.

use std::collections::HashMap;

use async_trait::async_trait;
use palaver_protocol::pb::sdkws::MsgData;
use prost::Message as _;
use sqlx::{PgConnection, Row as _};

use super::{PgStore, pg_sql, versions::bump};
use crate::{
    Appended, Change, ConversationSeq, MessageMarks, MessageRevoke, MessageStore, NewMessage, Precondition, Reception,
    Result, StoreError, VersionKind,
};
use sqlx::AssertSqlSafe;

fn decode(blob: &[u8]) -> Result<MsgData> {
    MsgData::decode(blob).map_err(|e| StoreError::Backend(format!("corrupt stored message: {e}")))
}

fn decode_rows(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<MsgData>> {
    rows.iter().map(|r| decode(&r.try_get::<Vec<u8>, _>("data")?)).collect()
}

/// What one append transaction decided.
enum Outcome {
    Stored(Appended),
    /// The clientMsgID is stored already: roll back (giving the seq back) and answer with the original.
    Duplicate(MsgData),
}

/// One append, in its own transaction (see the module docs for why the order of the steps matters):
/// 1. bump the conversation's counter (the upsert creates it at 1): this locks the counter row until commit,
///    so every other append into the conversation, on any node, waits here;
/// 2. with the lock held, look the clientMsgID up: a hit is a resend (or a duplicate that committed while we
///    waited), answered with the original after rolling back; then check the preconditions (the first that
///    fails refuses the append, rolled back), as SQLite does, after the lookup;
/// 3. insert the message, the `ensure_conversations` rows (sorted by owner, so that two appends never take
///    version-list locks in opposite orders) with their version bumps, and move the reader's cursor.
async fn append_in_transaction(conn: &mut PgConnection, msg: &NewMessage) -> Result<Outcome> {
    let NewMessage { conversation_id, data, ensure_conversations, reader, preconditions } = msg;
    let mut data = data.clone();
    let client_msg_id = (!data.client_msg_id.is_empty()).then(|| data.client_msg_id.clone());

    let (seq, send_time): (i64, i64) = sqlx::query_as(
        "INSERT INTO conversation_seqs AS s (conversation_id, max_seq, max_seq_time) VALUES ($1, 1, $2) \
         ON CONFLICT (conversation_id) DO UPDATE \
         SET max_seq = s.max_seq + 1, \
             max_seq_time = CASE WHEN excluded.max_seq_time > s.max_seq_time \
                            THEN excluded.max_seq_time ELSE s.max_seq_time + 1 END \
         RETURNING max_seq, max_seq_time",
    )
    .bind(conversation_id)
    .bind(data.send_time)
    .fetch_one(&mut *conn)
    .await?;

    if let Some(client_msg_id) = &client_msg_id {
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT data FROM messages WHERE conversation_id = $1 AND client_msg_id = $2")
                .bind(conversation_id)
                .bind(client_msg_id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(blob) = existing {
            return Ok(Outcome::Duplicate(decode(&blob)?));
        }
    }

    for condition in preconditions {
        let holds = match condition {
            Precondition::UserExists(user_id) => sqlx::query_scalar::<_, i32>("SELECT 1 FROM users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?
                .is_some(),
            Precondition::NotBlocked { owner, other } => {
                sqlx::query_scalar::<_, i32>("SELECT 1 FROM blacks WHERE owner_user_id = $1 AND block_user_id = $2")
                    .bind(owner)
                    .bind(other)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_none()
            }
            Precondition::IsFriendOf { owner, friend } => {
                sqlx::query_scalar::<_, i32>("SELECT 1 FROM friends WHERE owner_user_id = $1 AND friend_user_id = $2")
                    .bind(owner)
                    .bind(friend)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some()
            }
            Precondition::Receives { user, conversation_id, read_receipt } => {
                // As on SQLite: the user's global receive option and its own for this conversation, in one
                // lookup; `Reception` decides.
                let (global, own): (i32, Option<i32>) = sqlx::query_as(
                    "SELECT u.global_recv_msg_opt, c.recv_msg_opt FROM users u LEFT JOIN conversations c \
                     ON c.owner_user_id = u.user_id AND c.conversation_id = $2 WHERE u.user_id = $1",
                )
                .bind(user)
                .bind(conversation_id)
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or((0, None));
                Reception::decide(global, own, *read_receipt).admit(&mut data)
            }
        };
        if !holds {
            return Err(StoreError::Refused(condition.clone()));
        }
    }

    data.seq = seq;
    data.send_time = send_time;
    sqlx::query(
        "INSERT INTO messages (conversation_id, seq, client_msg_id, server_msg_id, send_id, send_time, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(conversation_id)
    .bind(seq)
    .bind(&client_msg_id)
    .bind(&data.server_msg_id)
    .bind(&data.send_id)
    .bind(data.send_time)
    .bind(data.encode_to_vec())
    .execute(&mut *conn)
    .await?;

    let mut ensure: Vec<_> = ensure_conversations.iter().collect();
    ensure.sort_by(|a, b| a.owner_user_id.cmp(&b.owner_user_id));
    for c in ensure {
        let created = sqlx::query(
            "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_user_id, conversation_id) DO NOTHING",
        )
        .bind(&c.owner_user_id)
        .bind(&c.conversation_id)
        .bind(c.conversation_type)
        .bind(&c.user_id)
        .bind(&c.group_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if created > 0 {
            let id = std::slice::from_ref(&c.conversation_id);
            bump(conn, VersionKind::Conversations, &c.owner_user_id, id, Change::Insert).await?;
        }
    }

    if let Some(reader) = reader {
        sqlx::query(
            "UPDATE conversations SET has_read_seq = $1 \
             WHERE owner_user_id = $2 AND conversation_id = $3 AND has_read_seq < $1",
        )
        .bind(seq)
        .bind(reader)
        .bind(conversation_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Outcome::Stored(Appended { data, created: true }))
}

#[async_trait]
impl MessageStore for PgStore {
    /// One transaction per append ([`append_in_transaction`]), run again whole if it loses a deadlock; `Ok`
    /// after `COMMIT` has returned. A duplicate rolls back instead, which also gives its counter bump back.
    async fn append_message(&self, msg: NewMessage) -> Result<Appended> {
        let mut attempt = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            let result = match append_in_transaction(&mut tx, &msg).await {
                Ok(Outcome::Stored(appended)) => tx.commit().await.map(|()| appended).map_err(StoreError::from),
                Ok(Outcome::Duplicate(original)) => {
                    tx.rollback().await?;
                    return Ok(Appended { data: original, created: false });
                }
                Err(e) => Err(e),
            };
            match result {
                Err(e) if super::retryable(&e) && attempt < super::MAX_RETRIES => {
                    attempt += 1;
                    super::backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn messages_in_range(&self, conversation_id: &str, begin: i64, end: i64, limit: i64) -> Result<Vec<MsgData>> {
        if limit <= 0 || begin > end {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT data FROM messages WHERE conversation_id = $1 AND seq >= $2 AND seq <= $3 \
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(conversation_id)
        .bind(begin)
        .bind(end)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut msgs = decode_rows(&rows)?;
        msgs.reverse();
        Ok(msgs)
    }

    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> Result<Vec<MsgData>> {
        let rows = sqlx::query("SELECT data FROM messages WHERE conversation_id = $1 AND seq = ANY($2) ORDER BY seq")
            .bind(conversation_id)
            .bind(seqs)
            .fetch_all(&self.pool)
            .await?;
        decode_rows(&rows)
    }

    /// Through the counter (`seq = max_seq`), as on SQLite. Returned in the order of `conversation_ids`.
    async fn last_messages(&self, conversation_ids: &[String]) -> Result<Vec<MsgData>> {
        let rows = sqlx::query(
            "SELECT m.conversation_id, m.data FROM conversation_seqs s \
             JOIN messages m ON m.conversation_id = s.conversation_id AND m.seq = s.max_seq \
             WHERE s.conversation_id = ANY($1)",
        )
        .bind(conversation_ids)
        .fetch_all(&self.pool)
        .await?;
        let mut by_conversation = HashMap::new();
        for row in rows {
            let id: String = row.try_get("conversation_id")?;
            by_conversation.insert(id, decode(&row.try_get::<Vec<u8>, _>("data")?)?);
        }
        Ok(conversation_ids.iter().filter_map(|id| by_conversation.remove(id)).collect())
    }

    /// One entry per distinct requested id, in request order, zeros for a conversation without messages.
    async fn max_seqs(&self, conversation_ids: &[String]) -> Result<Vec<ConversationSeq>> {
        let rows = sqlx::query(
            "SELECT conversation_id, max_seq, max_seq_time FROM conversation_seqs WHERE conversation_id = ANY($1)",
        )
        .bind(conversation_ids)
        .fetch_all(&self.pool)
        .await?;
        let mut found = HashMap::new();
        for row in rows {
            let id: String = row.try_get("conversation_id")?;
            found.insert(id, (row.try_get::<i64, _>("max_seq")?, row.try_get::<i64, _>("max_seq_time")?));
        }
        let mut seen = std::collections::HashSet::new();
        Ok(conversation_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .map(|id| {
                let (max_seq, max_seq_time) = found.get(id).copied().unwrap_or((0, 0));
                ConversationSeq { conversation_id: id.clone(), max_seq, max_seq_time }
            })
            .collect())
    }
    /// One insert per seq in one transaction; `ON CONFLICT DO NOTHING` makes a repeat harmless. Everyone is
    /// stored as the empty owner, which no user id can be.
    async fn delete_messages(&self, owner: Option<&str>, conversation_id: &str, seqs: &[i64]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for seq in seqs {
            sqlx::query(AssertSqlSafe(pg_sql(
                "INSERT INTO message_deletions (owner_user_id, conversation_id, seq) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )))
            .bind(owner.unwrap_or(""))
            .bind(conversation_id)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_message(&self, r: &MessageRevoke) -> Result<bool> {
        let done = sqlx::query(AssertSqlSafe(pg_sql(
            "INSERT INTO message_revokes (conversation_id, seq, revoker_user_id, revoker_role, revoker_nickname, \
             revoke_time) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, seq) DO NOTHING",
        )))
        .bind(&r.conversation_id)
        .bind(r.seq)
        .bind(&r.revoker_user_id)
        .bind(r.revoker_role)
        .bind(&r.revoker_nickname)
        .bind(r.revoke_time)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One query for both kinds of mark, over the span of `seqs` (marks of seqs in between that were not asked
    /// for are dropped): pulls call this once per conversation they return, so it must cost one round trip.
    async fn message_marks(&self, owner: &str, conversation_id: &str, seqs: &[i64]) -> Result<MessageMarks> {
        let mut marks = MessageMarks::default();
        let (Some(&low), Some(&high)) = (seqs.iter().min(), seqs.iter().max()) else {
            return Ok(marks);
        };
        // A deletion row reads as a mark with kind 'd' and no revoke fields.
        let rows = sqlx::query(AssertSqlSafe(pg_sql(
            "SELECT 'r' AS kind, seq, revoker_user_id, revoker_role, revoker_nickname, revoke_time \
             FROM message_revokes WHERE conversation_id = ?1 AND seq BETWEEN ?2 AND ?3 \
             UNION ALL \
             SELECT 'd' AS kind, seq, '' AS revoker_user_id, 0 AS revoker_role, '' AS revoker_nickname, \
             0 AS revoke_time FROM message_deletions \
             WHERE conversation_id = ?1 AND owner_user_id IN (?4, '') AND seq BETWEEN ?2 AND ?3",
        )))
        .bind(conversation_id)
        .bind(low)
        .bind(high)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            if !seqs.contains(&seq) {
                continue;
            }
            if row.try_get::<String, _>("kind")? == "d" {
                marks.deleted.push(seq);
            } else {
                marks.revokes.push(MessageRevoke {
                    conversation_id: conversation_id.to_string(),
                    seq,
                    revoker_user_id: row.try_get("revoker_user_id")?,
                    revoker_role: row.try_get("revoker_role")?,
                    revoker_nickname: row.try_get("revoker_nickname")?,
                    revoke_time: row.try_get("revoke_time")?,
                });
            }
        }
        marks.deleted.sort_unstable();
        marks.deleted.dedup();
        marks.revokes.sort_by_key(|r| r.seq);
        Ok(marks)
    }
}
