//! Messages and their per-conversation seq counters.

use async_trait::async_trait;
use palaver_protocol::pb::sdkws::MsgData;
use prost::Message as _;
use rusqlite::OptionalExtension as _;

use super::reader::all;
use super::{IN_CHUNK, SqliteStore, placeholders};
use crate::{
    Appended, ConversationSeq, MessageMarks, MessageRevoke, MessageStore, NewMessage, Precondition, Reception, Result,
    StoreError,
};

/// Decodes a stored `MsgData` blob. A failure means a corrupt row, which is the backend's fault.
fn decode(blob: &[u8]) -> Result<MsgData> {
    MsgData::decode(blob).map_err(|e| StoreError::Backend(format!("corrupt stored message: {e}")))
}

/// The messages of a statement whose first column is `data`.
fn decode_rows(rows: rusqlite::Rows<'_>) -> Result<Vec<MsgData>> {
    all(rows, |row| decode(row.get_ref(0)?.as_blob()?))
}

/// A conversation's counter: the seq and send time of its newest message, none before its first. The log is the
/// counter (see migration 0007): one seek at the end of the conversation's range of the `(conversation_id, seq)`
/// index.
pub(super) const NEWEST: &str =
    "SELECT seq, send_time FROM messages WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT 1";

/// A conversation's max seq (0 before its first message), as the write transaction on `conn` sees it: for the
/// writes that must be ordered against appends (a group join's start, a clear), which take SQLite's write lock
/// first, so no append commits between this read and their write.
pub(super) async fn max_seq_in_transaction(conn: &mut sqlx::SqliteConnection, conversation_id: &str) -> Result<i64> {
    let newest: Option<i64> = sqlx::query_scalar(NEWEST).bind(conversation_id).fetch_optional(conn).await?;
    Ok(newest.unwrap_or(0))
}

/// The newest `?4` messages of `?1` with seqs in `?2..=?3`, newest first: a history page.
pub(super) const RANGE: &str = "SELECT data FROM messages WHERE conversation_id = ?1 AND seq >= ?2 AND seq <= ?3 \
                                ORDER BY seq DESC LIMIT CAST(?4 AS INTEGER)";

/// One append, inside the writer's open transaction (see [`super::writer`]), in two phases.
///
/// First the checks, which only read:
/// 1. a message with this `(conversation_id, client_msg_id)` exists → return it, `created: false`, nothing
///    changes (the retried send gets the original seq and serverMsgID; this includes a duplicate queued in the
///    same batch, whose first copy this transaction has already inserted);
/// 2. the preconditions, the first that fails refusing the append.
///
/// Then the writes:
/// 3. take the seq after the conversation's newest message ([`NEWEST`]; 1 for its first): the writer holds
///    SQLite's write lock, so appends are serialised and seqs come out 1, 2, 3, … with no gap or duplicate;
/// 4. insert the message with that seq, the `ensure_conversations` rows if missing, and move the reader's
///    cursor (only if the reader has a row: after step 4's inserts, the sender of a first 1:1 message does).
///
/// The inner result is the append's own answer: stored, found, or refused (or failed) during the checks, when
/// nothing has been written. The outer error is a write that failed part-way: the transaction then holds part
/// of this append, and the writer rolls back the whole batch, so no seq is ever burnt. (The writes cannot be
/// refused: the checks ran first in the same transaction. So no append needs a savepoint of its own, which
/// would copy every page it touches into a statement journal.)
///
/// An empty `client_msg_id` (which the server refuses before getting here) is stored as NULL: such a message
/// is never a duplicate of anything, rather than all of them colliding with the first one.
///
/// Synchronous, on the writer thread's own connection: the statements of a whole batch run without a single
/// thread switch (through sqlx each statement is a round trip to its connection's worker thread).
pub(super) fn append_in_transaction(conn: &rusqlite::Connection, msg: NewMessage) -> Result<Result<Appended>> {
    let NewMessage { conversation_id, mut data, ensure_conversations, reader, preconditions } = msg;
    let client_msg_id = (!data.client_msg_id.is_empty()).then(|| data.client_msg_id.clone());
    match check(conn, &conversation_id, client_msg_id.as_deref(), &preconditions, &mut data) {
        Ok(None) => {}
        Ok(Some(existing)) => return Ok(Ok(existing)),
        Err(e) => return Ok(Err(e)),
    }
    store(conn, conversation_id, client_msg_id, data, &ensure_conversations, reader.as_deref()).map(Ok)
}

/// Steps 1 and 2 of [`append_in_transaction`]: the stored original of a resend, or `None` once every
/// precondition holds (a receive option may have changed `data` on the way).
fn check(
    conn: &rusqlite::Connection,
    conversation_id: &str,
    client_msg_id: Option<&str>,
    preconditions: &[Precondition],
    data: &mut MsgData,
) -> Result<Option<Appended>> {
    if let Some(client_msg_id) = client_msg_id {
        let existing: Option<Vec<u8>> = conn
            .prepare_cached("SELECT data FROM messages WHERE conversation_id = ?1 AND client_msg_id = ?2")?
            .query_row((conversation_id, client_msg_id), |row| row.get(0))
            .optional()?;
        if let Some(blob) = existing {
            return Ok(Some(Appended { data: decode(&blob)?, created: false }));
        }
    }

    for condition in preconditions {
        let holds = match condition {
            Precondition::UserExists(user_id) => conn
                .prepare_cached("SELECT 1 FROM users WHERE user_id = ?1")?
                .query_row([user_id], |_| Ok(()))
                .optional()?
                .is_some(),
            Precondition::NotBlocked { owner, other } => conn
                .prepare_cached("SELECT 1 FROM blacks WHERE owner_user_id = ?1 AND block_user_id = ?2")?
                .query_row([owner, other], |_| Ok(()))
                .optional()?
                .is_none(),
            Precondition::IsFriendOf { owner, friend } => conn
                .prepare_cached("SELECT 1 FROM friends WHERE owner_user_id = ?1 AND friend_user_id = ?2")?
                .query_row([owner, friend], |_| Ok(()))
                .optional()?
                .is_some(),
            Precondition::Receives { user, conversation_id, read_receipt } => {
                // One lookup for both options: the user's global one and its own for this conversation
                // (none if it has no row yet); `Reception` decides.
                let (global, own): (i32, Option<i32>) = conn
                    .prepare_cached(
                        "SELECT u.global_recv_msg_opt, c.recv_msg_opt FROM users u LEFT JOIN conversations c \
                         ON c.owner_user_id = u.user_id AND c.conversation_id = ?2 WHERE u.user_id = ?1",
                    )?
                    .query_row([user, conversation_id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?
                    .unwrap_or((0, None));
                Reception::decide(global, own, *read_receipt).admit(data)
            }
        };
        if !holds {
            return Err(StoreError::Refused(condition.clone()));
        }
    }

    Ok(None)
}

/// Steps 3 and 4 of [`append_in_transaction`].
fn store(
    conn: &rusqlite::Connection,
    conversation_id: String,
    client_msg_id: Option<String>,
    mut data: MsgData,
    ensure_conversations: &[crate::ConversationRef],
    reader: Option<&str>,
) -> Result<Appended> {
    // The send time is settled here too, under the same lock as the seq: strictly increasing per conversation
    // (the caller's time, or one ms after the previous message's). OpenIM's SDKs sort and page history by
    // sendTime, so two messages of one conversation in the same millisecond could show out of seq order.
    let newest: Option<(i64, i64)> =
        conn.prepare_cached(NEWEST)?.query_row([&conversation_id], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
    let seq = match newest {
        None => 1,
        Some((seq, time)) => {
            data.send_time = data.send_time.max(time + 1);
            seq + 1
        }
    };
    data.seq = seq;

    conn.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, client_msg_id, server_msg_id, send_id, send_time, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        &conversation_id,
        seq,
        &client_msg_id,
        &data.server_msg_id,
        &data.send_id,
        data.send_time,
        data.encode_to_vec(),
    ))?;

    for c in ensure_conversations {
        let created = conn
            .prepare_cached(
                "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (owner_user_id, conversation_id) DO NOTHING",
            )?
            .execute((&c.owner_user_id, &c.conversation_id, c.conversation_type, &c.user_id, &c.group_id))?;
        // A new row is a change to the owner's conversation list (only on a conversation's first message).
        if created > 0 {
            let id = std::slice::from_ref(&c.conversation_id);
            super::versions::bump_sync(
                conn,
                crate::VersionKind::Conversations,
                &c.owner_user_id,
                id,
                crate::Change::Insert,
            )?;
        }
    }

    if let Some(reader) = reader {
        conn.prepare_cached(
            "UPDATE conversations SET has_read_seq = ?1 \
             WHERE owner_user_id = ?2 AND conversation_id = ?3 AND has_read_seq < ?1",
        )?
        .execute((seq, reader, &conversation_id))?;
    }

    Ok(Appended { data, created: true })
}

#[async_trait]
impl MessageStore for SqliteStore {
    /// Queued to the append writer, which commits it together with whatever other appends are waiting (one
    /// fsync per batch rather than per message, see [`super::writer`]), each running [`append_in_transaction`]. Returns once the batch's `COMMIT` has returned: `Ok` means durable.
    ///
    /// A caller cancelled before its append ran leaves nothing behind; one cancelled after may find it stored,
    /// which a resend with the same clientMsgID then finds.
    async fn append_message(&self, msg: NewMessage) -> Result<Appended> {
        self.writer.append(msg).await
    }

    /// Newest first with `LIMIT`, then reversed: the last `limit` of the range in ascending order. A `limit` of
    /// 0 or less returns nothing.
    async fn messages_in_range(&self, conversation_id: &str, begin: i64, end: i64, limit: i64) -> Result<Vec<MsgData>> {
        if limit <= 0 || begin > end {
            return Ok(Vec::new());
        }
        let mut msgs = self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(RANGE)?;
            decode_rows(stmt.query(rusqlite::params![conversation_id, begin, end, limit])?)
        })?;
        msgs.reverse();
        Ok(msgs)
    }

    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> Result<Vec<MsgData>> {
        let mut msgs = Vec::with_capacity(seqs.len());
        self.readers.read(|conn| {
            for chunk in seqs.chunks(IN_CHUNK) {
                let sql = format!(
                    "SELECT data FROM messages WHERE conversation_id = ? AND seq IN ({}) ORDER BY seq",
                    placeholders(chunk.len())
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let params = std::iter::once(rusqlite::types::Value::from(conversation_id.to_string()))
                    .chain(chunk.iter().map(|seq| rusqlite::types::Value::from(*seq)));
                msgs.extend(decode_rows(stmt.query(rusqlite::params_from_iter(params))?)?);
            }
            Ok(())
        })?;
        // Chunks are each sorted; the caller's seqs need not be, nor unique across chunks.
        msgs.sort_by_key(|m| m.seq);
        msgs.dedup_by_key(|m| m.seq);
        Ok(msgs)
    }

    /// One seek per conversation, at the end of its range of the log's index. Returned in the order of
    /// `conversation_ids`, once each; a conversation without messages is left out.
    async fn last_messages(&self, conversation_ids: &[String]) -> Result<Vec<MsgData>> {
        let mut seen = std::collections::HashSet::new();
        self.readers.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT data FROM messages WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT 1")?;
            let mut last = Vec::new();
            for id in conversation_ids.iter().filter(|id| seen.insert(id.as_str())) {
                if let Some(blob) = stmt.query_row([id], |row| row.get::<_, Vec<u8>>(0)).optional()? {
                    last.push(decode(&blob)?);
                }
            }
            Ok(last)
        })
    }

    /// One entry per distinct requested id, in request order; a conversation without messages (or unknown)
    /// gets `max_seq: 0, max_seq_time: 0` rather than being left out, so callers can answer "what is the max
    /// seq of X" without a second lookup. One seek per conversation ([`NEWEST`]).
    async fn max_seqs(&self, conversation_ids: &[String]) -> Result<Vec<ConversationSeq>> {
        let mut seen = std::collections::HashSet::new();
        self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(NEWEST)?;
            let mut seqs = Vec::new();
            for id in conversation_ids.iter().filter(|id| seen.insert(id.as_str())) {
                let newest: Option<(i64, i64)> =
                    stmt.query_row([id], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
                let (max_seq, max_seq_time) = newest.unwrap_or((0, 0));
                seqs.push(ConversationSeq { conversation_id: id.clone(), max_seq, max_seq_time });
            }
            Ok(seqs)
        })
    }
    /// One insert per seq in one transaction; `ON CONFLICT DO NOTHING` makes a repeat harmless. Everyone is
    /// stored as the empty owner, which no user id can be.
    async fn delete_messages(&self, owner: Option<&str>, conversation_id: &str, seqs: &[i64]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for seq in seqs {
            sqlx::query(
                "INSERT INTO message_deletions (owner_user_id, conversation_id, seq) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
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
        let done = sqlx::query(
            "INSERT INTO message_revokes (conversation_id, seq, revoker_user_id, revoker_role, revoker_nickname, \
             revoke_time) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, seq) DO NOTHING",
        )
        .bind(&r.conversation_id)
        .bind(r.seq)
        .bind(&r.revoker_user_id)
        .bind(r.revoker_role)
        .bind(&r.revoker_nickname)
        .bind(r.revoke_time)
        .execute(&self.write)
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
        self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT 'r' AS kind, seq, revoker_user_id, revoker_role, revoker_nickname, revoke_time \
                 FROM message_revokes WHERE conversation_id = ?1 AND seq BETWEEN ?2 AND ?3 \
                 UNION ALL \
                 SELECT 'd' AS kind, seq, '' AS revoker_user_id, 0 AS revoker_role, '' AS revoker_nickname, \
                 0 AS revoke_time FROM message_deletions \
                 WHERE conversation_id = ?1 AND owner_user_id IN (?4, '') AND seq BETWEEN ?2 AND ?3",
            )?;
            let mut rows = stmt.query(rusqlite::params![conversation_id, low, high, owner])?;
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get("seq")?;
                if !seqs.contains(&seq) {
                    continue;
                }
                if row.get_ref("kind")?.as_str()? == "d" {
                    marks.deleted.push(seq);
                } else {
                    marks.revokes.push(MessageRevoke {
                        conversation_id: conversation_id.to_string(),
                        seq,
                        revoker_user_id: row.get("revoker_user_id")?,
                        revoker_role: row.get("revoker_role")?,
                        revoker_nickname: row.get("revoker_nickname")?,
                        revoke_time: row.get("revoke_time")?,
                    });
                }
            }
            Ok(())
        })?;
        marks.deleted.sort_unstable();
        marks.deleted.dedup();
        marks.revokes.sort_by_key(|r| r.seq);
        Ok(marks)
    }
}
