//! Groups and their members.

use async_trait::async_trait;
use palaver_protocol::constant::session_type;
use palaver_protocol::conversation_id;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqliteConnection};

use super::{SqliteStore, unique_as_exists, versions::bump};
use crate::{Change, Group, GroupMember, GroupStore, Page, Result, StoreError, VersionKind};

macro_rules! group_columns {
    () => {
        "group_id, group_name, notification, introduction, face_url, owner_user_id, creator_user_id, create_time, \
         ex, status, group_type, need_verification, look_member_info, apply_member_friend"
    };
}

macro_rules! member_columns {
    () => {
        "group_id, user_id, nickname, face_url, role_level, join_time, join_source, inviter_user_id, \
         operator_user_id, mute_end_time, ex"
    };
}

pub(super) fn group_from_row(row: &SqliteRow) -> Result<Group, sqlx::Error> {
    Ok(Group {
        group_id: row.try_get("group_id")?,
        group_name: row.try_get("group_name")?,
        notification: row.try_get("notification")?,
        introduction: row.try_get("introduction")?,
        face_url: row.try_get("face_url")?,
        owner_user_id: row.try_get("owner_user_id")?,
        creator_user_id: row.try_get("creator_user_id")?,
        create_time: row.try_get("create_time")?,
        ex: row.try_get("ex")?,
        status: row.try_get("status")?,
        group_type: row.try_get("group_type")?,
        need_verification: row.try_get("need_verification")?,
        look_member_info: row.try_get("look_member_info")?,
        apply_member_friend: row.try_get("apply_member_friend")?,
    })
}

fn member_from_row(row: &SqliteRow) -> Result<GroupMember, sqlx::Error> {
    Ok(GroupMember {
        group_id: row.try_get("group_id")?,
        user_id: row.try_get("user_id")?,
        nickname: row.try_get("nickname")?,
        face_url: row.try_get("face_url")?,
        role_level: row.try_get("role_level")?,
        join_time: row.try_get("join_time")?,
        join_source: row.try_get("join_source")?,
        inviter_user_id: row.try_get("inviter_user_id")?,
        operator_user_id: row.try_get("operator_user_id")?,
        mute_end_time: row.try_get("mute_end_time")?,
        ex: row.try_get("ex")?,
    })
}

/// Inserts `members` into `group_id` with their `sg_` conversation rows (starting at `min_seq`), and bumps the
/// versions: the group's members, and each new member's joined groups and conversations. With `strict`, a
/// member already present is an error (`AlreadyExists`); otherwise it is skipped. Returns the ids inserted.
async fn insert_members(
    conn: &mut SqliteConnection,
    group_id: &str,
    members: &[GroupMember],
    min_seq: i64,
    strict: bool,
) -> Result<Vec<String>> {
    let conversation = conversation_id::group(group_id);
    let mut inserted = Vec::with_capacity(members.len());
    for m in members {
        let n = sqlx::query(concat!(
            "INSERT INTO group_members (",
            member_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (group_id, user_id) DO NOTHING"
        ))
        .bind(group_id)
        .bind(&m.user_id)
        .bind(&m.nickname)
        .bind(&m.face_url)
        .bind(m.role_level)
        .bind(m.join_time)
        .bind(m.join_source)
        .bind(&m.inviter_user_id)
        .bind(&m.operator_user_id)
        .bind(m.mute_end_time)
        .bind(&m.ex)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n == 0 {
            if strict {
                return Err(StoreError::AlreadyExists(format!("member {} of group {group_id}", m.user_id)));
            }
            continue;
        }
        // A member who left and rejoins keeps its row; its history starts again from the join.
        sqlx::query(
            "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, group_id, min_seq) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner_user_id, conversation_id) DO UPDATE SET min_seq = excluded.min_seq",
        )
        .bind(&m.user_id)
        .bind(&conversation)
        .bind(session_type::READ_GROUP_CHAT)
        .bind(group_id)
        .bind(min_seq)
        .execute(&mut *conn)
        .await?;
        bump(conn, VersionKind::JoinedGroups, &m.user_id, &[group_id.to_string()], Change::Insert).await?;
        bump(conn, VersionKind::Conversations, &m.user_id, std::slice::from_ref(&conversation), Change::Insert).await?;
        inserted.push(m.user_id.clone());
    }
    bump(conn, VersionKind::GroupMembers, group_id, &inserted, Change::Insert).await?;
    Ok(inserted)
}

#[async_trait]
impl GroupStore for SqliteStore {
    /// Group, members and each member's `sg_<groupID>` row (read-group chat, `min_seq` 0: a new group has no
    /// messages to hide) in one transaction, so a group never exists with members who cannot see it. Members
    /// are stored under `group.group_id` whatever their own `group_id` says. A member listed twice is
    /// `AlreadyExists`, like a taken group id.
    async fn create_group(&self, group: &Group, members: &[GroupMember]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM groups WHERE group_id = ?")
            .bind(&group.group_id)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists(format!("group {}", group.group_id)));
        }

        sqlx::query(concat!(
            "INSERT INTO groups (",
            group_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&group.group_id)
        .bind(&group.group_name)
        .bind(&group.notification)
        .bind(&group.introduction)
        .bind(&group.face_url)
        .bind(&group.owner_user_id)
        .bind(&group.creator_user_id)
        .bind(group.create_time)
        .bind(&group.ex)
        .bind(group.status)
        .bind(group.group_type)
        .bind(group.need_verification)
        .bind(group.look_member_info)
        .bind(group.apply_member_friend)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_exists(e, || format!("group {}", group.group_id)))?;

        insert_members(&mut tx, &group.group_id, members, 0, true).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn groups(&self, ids: &[String]) -> Result<Vec<Group>> {
        let sql = |ph: &str| format!(concat!("SELECT ", group_columns!(), " FROM groups WHERE group_id IN ({})"), ph);
        self.select_in(sql, None, ids, group_from_row).await
    }

    async fn group_member(&self, group_id: &str, user_id: &str) -> Result<Option<GroupMember>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            member_columns!(),
            " FROM group_members WHERE group_id = ? AND user_id = ?"
        ))
        .bind(group_id)
        .bind(user_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(member_from_row).transpose()?)
    }

    /// In join order (then by id), the order OpenIM lists members in.
    async fn group_member_ids(&self, group_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = ? ORDER BY join_time, user_id")
            .bind(group_id)
            .fetch_all(&self.read)
            .await?)
    }

    async fn group_member_count(&self, group_id: &str) -> Result<u32> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE group_id = ?")
            .bind(group_id)
            .fetch_one(&self.read)
            .await?;
        u32::try_from(n).map_err(|_| StoreError::Backend(format!("member count {n} out of range")))
    }

    async fn add_group_members(&self, group_id: &str, members: &[GroupMember]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM groups WHERE group_id = ?")
            .bind(group_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("group {group_id}")));
        }
        let max_seq: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(max_seq), 0) FROM conversation_seqs WHERE conversation_id = ?")
                .bind(conversation_id::group(group_id))
                .fetch_one(&mut *tx)
                .await?;
        let min_seq = if max_seq > 0 { max_seq + 1 } else { 0 };
        insert_members(&mut tx, group_id, members, min_seq, false).await?;
        tx.commit().await?;
        Ok(())
    }

    /// By join time, then group id.
    async fn joined_groups(&self, user_id: &str, page: Page) -> Result<(Vec<Group>, i64)> {
        let rows = sqlx::query(
            "SELECT g.group_id, g.group_name, g.notification, g.introduction, g.face_url, g.owner_user_id, \
             g.creator_user_id, g.create_time, g.ex, g.status, g.group_type, g.need_verification, \
             g.look_member_info, g.apply_member_friend FROM group_members m JOIN groups g ON g.group_id = m.group_id \
             WHERE m.user_id = ? ORDER BY m.join_time, m.group_id LIMIT ? OFFSET ?",
        )
        .bind(user_id)
        .bind(page.limit.max(0))
        .bind(page.offset.max(0))
        .fetch_all(&self.read)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE user_id = ?")
            .bind(user_id)
            .fetch_one(&self.read)
            .await?;
        Ok((rows.iter().map(group_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn joined_group_ids(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = ? ORDER BY join_time, group_id")
            .bind(user_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// Owner first, then admins, then everyone else, each by join time.
    async fn group_members(&self, group_id: &str, page: Page) -> Result<(Vec<GroupMember>, i64)> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            member_columns!(),
            " FROM group_members WHERE group_id = ? ORDER BY role_level DESC, join_time, user_id LIMIT ? OFFSET ?"
        ))
        .bind(group_id)
        .bind(page.limit.max(0))
        .bind(page.offset.max(0))
        .fetch_all(&self.read)
        .await?;
        let total = i64::from(self.group_member_count(group_id).await?);
        Ok((rows.iter().map(member_from_row).collect::<Result<_, _>>()?, total))
    }

    async fn group_members_by_id(&self, group_id: &str, user_ids: &[String]) -> Result<Vec<GroupMember>> {
        let sql = |ph: &str| {
            format!(
                concat!("SELECT ", member_columns!(), " FROM group_members WHERE group_id = ? AND user_id IN ({})"),
                ph
            )
        };
        self.select_in(sql, Some(group_id), user_ids, member_from_row).await
    }
}
