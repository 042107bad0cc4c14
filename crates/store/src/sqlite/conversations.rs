//! Per-user conversation rows (read cursors, settings).

use async_trait::async_trait;

use super::messages::max_seq_in_transaction;
use super::reader::{all, select_in};
use super::{SqliteStore, versions::bump};
use crate::{Change, ConversationPatch, ConversationStore, Page, Result, StoreError, UserConversation, VersionKind};

/// The row with its conversation's counter, which is the log's newest message (see migration 0007); a
/// conversation without messages has none, hence the LEFT JOIN and the zeros. The join's seq is one seek to the
/// end of the conversation's range of the log's index, its send time a lookup of that row.
macro_rules! select_user_conversations {
    () => {
        "SELECT c.owner_user_id, c.conversation_id, c.conversation_type, c.user_id, c.group_id, c.recv_msg_opt, \
         c.is_pinned, c.is_private_chat, c.burn_duration, c.group_at_type, c.attached_info, c.ex, c.min_seq, \
         c.has_read_seq, c.max_seq_cap, COALESCE(m.seq, 0) AS max_seq, COALESCE(m.send_time, 0) AS max_seq_time \
         FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.conversation_id \
         AND m.seq = (SELECT MAX(seq) FROM messages WHERE conversation_id = c.conversation_id) "
    };
}

/// A row of `select_user_conversations!`, by column position (a lookup by name compares the name with every
/// column's before it, per column and row).
fn from_row(row: &rusqlite::Row<'_>) -> Result<UserConversation> {
    Ok(UserConversation {
        owner_user_id: row.get(0)?,
        conversation_id: row.get(1)?,
        conversation_type: row.get(2)?,
        user_id: row.get(3)?,
        group_id: row.get(4)?,
        recv_msg_opt: row.get(5)?,
        is_pinned: row.get(6)?,
        is_private_chat: row.get(7)?,
        burn_duration: row.get(8)?,
        group_at_type: row.get(9)?,
        attached_info: row.get(10)?,
        ex: row.get(11)?,
        min_seq: row.get(12)?,
        has_read_seq: row.get(13)?,
        max_seq: row.get(15)?,
        max_seq_time: row.get(16)?,
        max_seq_cap: Some(row.get::<_, i64>(14)?).filter(|cap| *cap >= 0),
    })
}

impl SqliteStore {
    /// Rows read by `read` from SQLite, brought up to date with the messages not yet flushed into it (see
    /// [`Memtable::overlay`](super::memtable::Memtable::overlay)); read again if a flush slipped in between.
    fn with_unflushed(&self, read: impl Fn() -> Result<Vec<UserConversation>>) -> Result<Vec<UserConversation>> {
        loop {
            let flushes = self.memtable.flushes();
            let mut rows = read()?;
            if self.memtable.overlay(&mut rows, flushes) {
                return Ok(rows);
            }
        }
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    /// Ordered by conversation id, so repeated calls list the same rows in the same order.
    async fn user_conversations(&self, owner: &str) -> Result<Vec<UserConversation>> {
        self.rows_flushed(owner).await?;
        self.with_unflushed(|| {
            self.readers.read(|conn| {
                let mut stmt = conn.prepare_cached(concat!(
                    select_user_conversations!(),
                    "WHERE c.owner_user_id = ? ORDER BY c.conversation_id"
                ))?;
                all(stmt.query([owner])?, from_row)
            })
        })
    }

    async fn user_conversations_by_id(
        &self,
        owner: &str,
        conversation_ids: &[String],
    ) -> Result<Vec<UserConversation>> {
        self.rows_flushed(owner).await?;
        let sql = |ph: &str| {
            format!(
                concat!(select_user_conversations!(), "WHERE c.owner_user_id = ? AND c.conversation_id IN ({})"),
                ph
            )
        };
        let mut rows = self.with_unflushed(|| {
            self.readers.read(|conn| select_in(conn, sql, Some(owner), conversation_ids, from_row))
        })?;
        rows.sort_by(|a, b| a.conversation_id.cmp(&b.conversation_id));
        Ok(rows)
    }

    /// One statement whose `CASE` keeps the larger value (portable where two-argument `MAX` and `GREATEST` are
    /// not), so the row matches whenever it exists and `rows_affected` tells "no such row" apart from "already
    /// further". Whether `seq` may exceed the conversation's max seq is the service's rule, not checked here.
    async fn raise_has_read_seq(&self, owner: &str, conversation_id: &str, seq: i64) -> Result<()> {
        self.rows_flushed(owner).await?;
        let done = sqlx::query(
            "UPDATE conversations \
             SET has_read_seq = CASE WHEN has_read_seq < ? THEN ? ELSE has_read_seq END \
             WHERE owner_user_id = ? AND conversation_id = ?",
        )
        .bind(seq)
        .bind(seq)
        .bind(owner)
        .bind(conversation_id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("conversation {conversation_id} of {owner}")));
        }
        Ok(())
    }

    async fn user_conversations_page(&self, owner: &str, page: Page) -> Result<(Vec<UserConversation>, i64)> {
        self.rows_flushed(owner).await?;
        let rows = self.with_unflushed(|| {
            self.readers.read(|conn| {
                let mut stmt = conn.prepare_cached(concat!(
                    select_user_conversations!(),
                    "WHERE c.owner_user_id = ?1 ORDER BY c.conversation_id LIMIT CAST(?2 AS INTEGER) OFFSET ?3"
                ))?;
                all(stmt.query(rusqlite::params![owner, page.limit.max(0), page.offset.max(0)])?, from_row)
            })
        })?;
        let total = self.readers.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM conversations WHERE owner_user_id = ?")?
                .query_row([owner], |row| row.get(0))?)
        })?;
        Ok((rows, total))
    }

    /// Upsert, then one `UPDATE` with `COALESCE(?, column)` per field, so `None` leaves a column as it is.
    async fn update_conversation(&self, owner: &str, p: &ConversationPatch) -> Result<UserConversation> {
        self.rows_flushed(owner).await?;
        let mut tx = self.begin_write().await?;
        let created = sqlx::query(
            "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner_user_id, conversation_id) DO NOTHING",
        )
        .bind(owner)
        .bind(&p.conversation_id)
        .bind(p.conversation_type)
        .bind(&p.user_id)
        .bind(&p.group_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        sqlx::query(
            "UPDATE conversations SET recv_msg_opt = COALESCE(?, recv_msg_opt), is_pinned = COALESCE(?, is_pinned), \
             is_private_chat = COALESCE(?, is_private_chat), burn_duration = COALESCE(?, burn_duration), \
             group_at_type = COALESCE(?, group_at_type), attached_info = COALESCE(?, attached_info), \
             ex = COALESCE(?, ex), min_seq = COALESCE(?, min_seq) WHERE owner_user_id = ? AND conversation_id = ?",
        )
        .bind(p.recv_msg_opt)
        .bind(p.is_pinned)
        .bind(p.is_private_chat)
        .bind(p.burn_duration)
        .bind(p.group_at_type)
        .bind(&p.attached_info)
        .bind(&p.ex)
        .bind(p.min_seq)
        .bind(owner)
        .bind(&p.conversation_id)
        .execute(&mut *tx)
        .await?;
        let change = if created { Change::Insert } else { Change::Update };
        bump(&mut tx, VersionKind::Conversations, owner, std::slice::from_ref(&p.conversation_id), change).await?;
        tx.commit().await?;
        self.preconditions_changed();
        self.user_conversations_by_id(owner, std::slice::from_ref(&p.conversation_id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("conversation {} of {owner}", p.conversation_id)))
    }
    /// The counter is read in the same write transaction, so a message appended meanwhile is either before the
    /// new start (and hidden) or after it (and shown), never lost from view.
    async fn clear_conversations(&self, owner: &str, conversation_ids: &[String]) -> Result<Vec<UserConversation>> {
        self.rows_flushed(owner).await?;
        let mut tx = self.begin_write().await?;
        let mut cleared = Vec::new();
        for id in conversation_ids {
            let max = max_seq_in_transaction(&self.memtable, &mut tx, id).await?;
            let n = sqlx::query(
                "UPDATE conversations SET min_seq = ?, \
                 has_read_seq = CASE WHEN has_read_seq > ? THEN has_read_seq ELSE ? END \
                 WHERE owner_user_id = ? AND conversation_id = ?",
            )
            .bind(max + 1)
            .bind(max)
            .bind(max)
            .bind(owner)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 && !cleared.contains(id) {
                cleared.push(id.clone());
            }
        }
        bump(&mut tx, VersionKind::Conversations, owner, &cleared, Change::Update).await?;
        tx.commit().await?;
        self.user_conversations_by_id(owner, &cleared).await
    }

    async fn clear_conversation_for_all(&self, conversation_id: &str) -> Result<Vec<String>> {
        // Whoever owns its rows: any unflushed row may be one.
        if self.memtable.any_unflushed_rows() {
            self.flush().await?;
        }
        let mut tx = self.begin_write().await?;
        let owners: Vec<String> = sqlx::query_scalar(
            "SELECT owner_user_id FROM conversations WHERE conversation_id = ? ORDER BY owner_user_id",
        )
        .bind(conversation_id)
        .fetch_all(&mut *tx)
        .await?;
        let max = max_seq_in_transaction(&self.memtable, &mut tx, conversation_id).await?;
        sqlx::query(
            "UPDATE conversations SET min_seq = ?, \
             has_read_seq = CASE WHEN has_read_seq > ? THEN has_read_seq ELSE ? END WHERE conversation_id = ?",
        )
        .bind(max + 1)
        .bind(max)
        .bind(max)
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?;
        for owner in &owners {
            bump(&mut tx, VersionKind::Conversations, owner, &[conversation_id.to_string()], Change::Update).await?;
        }
        tx.commit().await?;
        Ok(owners)
    }
}
