//! Per-user conversation rows (read cursors, settings).

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PgStore, transaction, versions::bump};
use crate::{Change, ConversationPatch, ConversationStore, Page, Result, StoreError, UserConversation, VersionKind};

macro_rules! select_user_conversations {
    () => {
        "SELECT c.owner_user_id, c.conversation_id, c.conversation_type, c.user_id, c.group_id, c.recv_msg_opt, \
         c.is_pinned, c.is_private_chat, c.burn_duration, c.group_at_type, c.attached_info, c.ex, c.min_seq, \
         c.has_read_seq, COALESCE(s.max_seq, 0) AS max_seq, COALESCE(s.max_seq_time, 0) AS max_seq_time \
         FROM conversations c LEFT JOIN conversation_seqs s ON s.conversation_id = c.conversation_id "
    };
}

fn from_row(row: &PgRow) -> Result<UserConversation, sqlx::Error> {
    Ok(UserConversation {
        owner_user_id: row.try_get("owner_user_id")?,
        conversation_id: row.try_get("conversation_id")?,
        conversation_type: row.try_get("conversation_type")?,
        user_id: row.try_get("user_id")?,
        group_id: row.try_get("group_id")?,
        recv_msg_opt: row.try_get("recv_msg_opt")?,
        is_pinned: row.try_get("is_pinned")?,
        is_private_chat: row.try_get("is_private_chat")?,
        burn_duration: row.try_get("burn_duration")?,
        group_at_type: row.try_get("group_at_type")?,
        attached_info: row.try_get("attached_info")?,
        ex: row.try_get("ex")?,
        min_seq: row.try_get("min_seq")?,
        has_read_seq: row.try_get("has_read_seq")?,
        max_seq: row.try_get("max_seq")?,
        max_seq_time: row.try_get("max_seq_time")?,
    })
}

#[async_trait]
impl ConversationStore for PgStore {
    async fn user_conversations(&self, owner: &str) -> Result<Vec<UserConversation>> {
        let rows =
            sqlx::query(concat!(select_user_conversations!(), "WHERE c.owner_user_id = $1 ORDER BY c.conversation_id"))
                .bind(owner)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    async fn user_conversations_by_id(
        &self,
        owner: &str,
        conversation_ids: &[String],
    ) -> Result<Vec<UserConversation>> {
        let rows = sqlx::query(concat!(
            select_user_conversations!(),
            "WHERE c.owner_user_id = $1 AND c.conversation_id = ANY($2) ORDER BY c.conversation_id"
        ))
        .bind(owner)
        .bind(conversation_ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    async fn raise_has_read_seq(&self, owner: &str, conversation_id: &str, seq: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE conversations SET has_read_seq = GREATEST(has_read_seq, $1) \
             WHERE owner_user_id = $2 AND conversation_id = $3",
        )
        .bind(seq)
        .bind(owner)
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("conversation {conversation_id} of {owner}")));
        }
        Ok(())
    }

    async fn user_conversations_page(&self, owner: &str, page: Page) -> Result<(Vec<UserConversation>, i64)> {
        let rows = sqlx::query(concat!(
            select_user_conversations!(),
            "WHERE c.owner_user_id = $1 ORDER BY c.conversation_id LIMIT $2 OFFSET $3"
        ))
        .bind(owner)
        .bind(page.limit.max(0))
        .bind(page.offset.max(0))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE owner_user_id = $1")
            .bind(owner)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
    }

    async fn update_conversation(&self, owner: &str, p: &ConversationPatch) -> Result<UserConversation> {
        transaction!(self, |tx| {
            let created = sqlx::query(
                "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_user_id, conversation_id) DO NOTHING",
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
                "UPDATE conversations SET recv_msg_opt = COALESCE($1, recv_msg_opt), \
                 is_pinned = COALESCE($2, is_pinned), is_private_chat = COALESCE($3, is_private_chat), \
                 burn_duration = COALESCE($4, burn_duration), group_at_type = COALESCE($5, group_at_type), \
                 attached_info = COALESCE($6, attached_info), ex = COALESCE($7, ex), min_seq = COALESCE($8, min_seq) \
                 WHERE owner_user_id = $9 AND conversation_id = $10",
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
            Ok(())
        })?;
        self.user_conversations_by_id(owner, std::slice::from_ref(&p.conversation_id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("conversation {} of {owner}", p.conversation_id)))
    }
}
