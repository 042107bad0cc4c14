//! Groups, their members and join applications.

use async_trait::async_trait;
use palaver_protocol::constant::{group_status, role_level, session_type};
use palaver_protocol::conversation_id;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row as _, SqliteConnection};

use super::memtable::Memtable;
use super::messages::max_seq_in_transaction;
use super::versions::{bump, head_in_tx};
use super::{SqliteStore, placeholders, unique_as_exists};
use crate::{
    Change, GROUP_INFO_ELEMENT, Group, GroupAnswer, GroupMember, GroupPatch, GroupRequest, GroupStore, MemberFilter,
    MemberPatch, MemberRole, MembersAdded, Page, RequestQuery, Result, SORT_ELEMENT, StoreError, VersionHead,
    VersionKind,
};

macro_rules! group_columns {
    () => {
        "group_id, group_name, notification, introduction, face_url, owner_user_id, creator_user_id, create_time, \
         ex, status, group_type, need_verification, look_member_info, apply_member_friend, \
         notification_update_time, notification_user_id"
    };
}

macro_rules! member_columns {
    () => {
        "group_id, user_id, nickname, face_url, role_level, join_time, join_source, inviter_user_id, \
         operator_user_id, mute_end_time, ex"
    };
}

macro_rules! request_columns {
    () => {
        "group_id, user_id, handle_result, req_msg, handle_msg, req_time, handle_user_id, handle_time, ex, \
         join_source, inviter_user_id"
    };
}

/// The order members are listed in: owner, admins, everyone else; each by join time (OpenIM's order).
const MEMBER_ORDER: &str = "ORDER BY role_level DESC, join_time, user_id";

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
        notification_update_time: row.try_get("notification_update_time")?,
        notification_user_id: row.try_get("notification_user_id")?,
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

fn request_from_row(row: &SqliteRow) -> Result<GroupRequest, sqlx::Error> {
    Ok(GroupRequest {
        group_id: row.try_get("group_id")?,
        user_id: row.try_get("user_id")?,
        handle_result: row.try_get("handle_result")?,
        req_msg: row.try_get("req_msg")?,
        handle_msg: row.try_get("handle_msg")?,
        req_time: row.try_get("req_time")?,
        handle_user_id: row.try_get("handle_user_id")?,
        handle_time: row.try_get("handle_time")?,
        ex: row.try_get("ex")?,
        join_source: row.try_get("join_source")?,
        inviter_user_id: row.try_get("inviter_user_id")?,
    })
}

/// The group's current max seq, as this transaction sees it.
async fn group_max_seq(memtable: &Memtable, conn: &mut SqliteConnection, group_id: &str) -> Result<i64> {
    max_seq_in_transaction(memtable, conn, &conversation_id::group(group_id)).await
}

async fn require_group(conn: &mut SqliteConnection, group_id: &str) -> Result<()> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM groups WHERE group_id = ?").bind(group_id).fetch_optional(&mut *conn).await?;
    exists.map(|_| ()).ok_or_else(|| StoreError::NotFound(format!("group {group_id}")))
}

/// Inserts `members` into `group_id` with their `sg_` conversation rows (starting at `min_seq`, uncapped), and
/// bumps the versions: the group's members, and each new member's joined groups and conversations. With
/// `strict`, a member already present is an error (`AlreadyExists`); otherwise it is skipped. Returns the ids
/// inserted and the member list's head.
async fn insert_members(
    conn: &mut SqliteConnection,
    group_id: &str,
    members: &[GroupMember],
    min_seq: i64,
    strict: bool,
) -> Result<MembersAdded> {
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
        // A member who left and rejoins keeps its row; its history starts again from the join, uncapped.
        sqlx::query(
            "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, group_id, min_seq) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner_user_id, conversation_id) \
             DO UPDATE SET min_seq = excluded.min_seq, max_seq_cap = -1",
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
    let head = head_in_tx(conn, VersionKind::GroupMembers, group_id).await?;
    Ok(MembersAdded { inserted, head })
}

/// Deletes these members (non-members are ignored), caps their `sg_` rows at the group's max seq, and bumps:
/// each one's joined groups (delete) and conversations (update), and, with `log_members`, the group's member
/// list (delete). Returns the ids removed.
async fn delete_members(
    memtable: &Memtable,
    conn: &mut SqliteConnection,
    group_id: &str,
    user_ids: &[String],
    log_members: bool,
) -> Result<Vec<String>> {
    let conversation = conversation_id::group(group_id);
    let cap = group_max_seq(memtable, conn, group_id).await?;
    let mut removed = Vec::with_capacity(user_ids.len());
    for user_id in user_ids {
        let n = sqlx::query("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if n == 0 {
            continue;
        }
        sqlx::query("UPDATE conversations SET max_seq_cap = ? WHERE owner_user_id = ? AND conversation_id = ?")
            .bind(cap)
            .bind(user_id)
            .bind(&conversation)
            .execute(&mut *conn)
            .await?;
        bump(conn, VersionKind::JoinedGroups, user_id, &[group_id.to_string()], Change::Delete).await?;
        bump(conn, VersionKind::Conversations, user_id, std::slice::from_ref(&conversation), Change::Update).await?;
        removed.push(user_id.clone());
    }
    if log_members {
        bump(conn, VersionKind::GroupMembers, group_id, &removed, Change::Delete).await?;
    }
    Ok(removed)
}

/// `(sql, binds)` for `column IN (…)` over `values`, or nothing when `values` is empty.
fn in_clause<'a, T>(column: &str, values: &'a [T]) -> Option<(String, &'a [T])> {
    (!values.is_empty()).then(|| (format!(" AND {column} IN ({})", placeholders(values.len())), values))
}

impl SqliteStore {
    /// A page of applications matching `base` (a WHERE clause with one `?` bound to `scope`) and `query`'s
    /// optional group and result filters, newest first, and their total.
    async fn page_requests(
        &self,
        base: &str,
        scope: Option<&str>,
        query: &RequestQuery,
    ) -> Result<(Vec<GroupRequest>, i64)> {
        let groups = in_clause("group_id", &query.group_ids);
        let results = in_clause("handle_result", &query.handle_results);
        let filter = format!(
            "{base}{}{}",
            groups.as_ref().map_or("", |g| g.0.as_str()),
            results.as_ref().map_or("", |r| r.0.as_str())
        );
        let list_sql = format!(
            concat!(
                "SELECT ",
                request_columns!(),
                " FROM group_requests WHERE {} ORDER BY req_time DESC, group_id, user_id LIMIT CAST(? AS INTEGER) OFFSET ?"
            ),
            filter
        );
        let count_sql = format!("SELECT COUNT(*) FROM group_requests WHERE {filter}");
        let mut list = sqlx::query(AssertSqlSafe(list_sql));
        let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
        if let Some(scope) = scope {
            list = list.bind(scope);
            count = count.bind(scope);
        }
        for id in groups.map(|g| g.1).unwrap_or_default() {
            list = list.bind(id);
            count = count.bind(id);
        }
        for r in results.map(|r| r.1).unwrap_or_default() {
            list = list.bind(*r);
            count = count.bind(*r);
        }
        let rows = list.bind(query.page.limit.max(0)).bind(query.page.offset.max(0)).fetch_all(&self.read).await?;
        let total = count.fetch_one(&self.read).await?;
        Ok((rows.iter().map(request_from_row).collect::<Result<_, _>>()?, total))
    }
}

#[async_trait]
impl GroupStore for SqliteStore {
    /// Group, members and each member's `sg_<groupID>` row (read-group chat, `min_seq` 0: a new group has no
    /// messages to hide) in one transaction, so a group never exists with members who cannot see it. Members
    /// are stored under `group.group_id` whatever their own `group_id` says. A member listed twice is
    /// `AlreadyExists`, like a taken group id.
    async fn create_group(&self, group: &Group, members: &[GroupMember]) -> Result<VersionHead> {
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
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        .bind(group.notification_update_time)
        .bind(&group.notification_user_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_exists(e, || format!("group {}", group.group_id)))?;

        let added = insert_members(&mut tx, &group.group_id, members, 0, true).await?;
        tx.commit().await?;
        Ok(added.head)
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

    async fn group_member_ids(&self, group_id: &str) -> Result<Vec<String>> {
        let sql = format!("SELECT user_id FROM group_members WHERE group_id = ? {MEMBER_ORDER}");
        Ok(sqlx::query_scalar(AssertSqlSafe(sql)).bind(group_id).fetch_all(&self.read).await?)
    }

    async fn group_member_roles(&self, group_id: &str) -> Result<Vec<MemberRole>> {
        let sql =
            format!("SELECT user_id, role_level, mute_end_time FROM group_members WHERE group_id = ? {MEMBER_ORDER}");
        let rows: Vec<(String, i32, i64)> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(group_id).fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(|(user_id, role_level, mute_end_time)| MemberRole { user_id, role_level, mute_end_time })
            .collect())
    }

    async fn group_member_count(&self, group_id: &str) -> Result<u32> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE group_id = ?")
            .bind(group_id)
            .fetch_one(&self.read)
            .await?;
        u32::try_from(n).map_err(|_| StoreError::Backend(format!("member count {n} out of range")))
    }

    async fn add_group_members(&self, group_id: &str, members: &[GroupMember]) -> Result<MembersAdded> {
        let mut tx = self.begin_write().await?;
        require_group(&mut tx, group_id).await?;
        let max_seq = group_max_seq(&self.memtable, &mut tx, group_id).await?;
        let min_seq = if max_seq > 0 { max_seq + 1 } else { 0 };
        let added = insert_members(&mut tx, group_id, members, min_seq, false).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn remove_group_members(&self, group_id: &str, user_ids: &[String]) -> Result<VersionHead> {
        let mut tx = self.begin_write().await?;
        require_group(&mut tx, group_id).await?;
        delete_members(&self.memtable, &mut tx, group_id, user_ids, true).await?;
        let head = head_in_tx(&mut tx, VersionKind::GroupMembers, group_id).await?;
        tx.commit().await?;
        Ok(head)
    }

    /// One `UPDATE` with `COALESCE(?, column)` per field, so `None` leaves a column as it is.
    async fn update_group(&self, group_id: &str, p: &GroupPatch) -> Result<VersionHead> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE groups SET group_name = COALESCE(?, group_name), notification = COALESCE(?, notification), \
             notification_update_time = COALESCE(?, notification_update_time), \
             notification_user_id = COALESCE(?, notification_user_id), introduction = COALESCE(?, introduction), \
             face_url = COALESCE(?, face_url), ex = COALESCE(?, ex), \
             need_verification = COALESCE(?, need_verification), look_member_info = COALESCE(?, look_member_info), \
             apply_member_friend = COALESCE(?, apply_member_friend), status = COALESCE(?, status) \
             WHERE group_id = ?",
        )
        .bind(&p.group_name)
        .bind(&p.notification)
        .bind(p.notification_update_time)
        .bind(&p.notification_user_id)
        .bind(&p.introduction)
        .bind(&p.face_url)
        .bind(&p.ex)
        .bind(p.need_verification)
        .bind(p.look_member_info)
        .bind(p.apply_member_friend)
        .bind(p.status)
        .bind(group_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("group {group_id}")));
        }
        bump(&mut tx, VersionKind::GroupMembers, group_id, &[GROUP_INFO_ELEMENT.to_string()], Change::Update).await?;
        let head = head_in_tx(&mut tx, VersionKind::GroupMembers, group_id).await?;
        tx.commit().await?;
        Ok(head)
    }

    async fn update_group_members(&self, group_id: &str, patches: &[MemberPatch]) -> Result<Vec<VersionHead>> {
        let mut tx = self.begin_write().await?;
        let mut heads = Vec::with_capacity(patches.len());
        for p in patches {
            let n = sqlx::query(
                "UPDATE group_members SET nickname = COALESCE(?, nickname), face_url = COALESCE(?, face_url), \
                 ex = COALESCE(?, ex), role_level = COALESCE(?, role_level), \
                 mute_end_time = COALESCE(?, mute_end_time) WHERE group_id = ? AND user_id = ?",
            )
            .bind(&p.nickname)
            .bind(&p.face_url)
            .bind(&p.ex)
            .bind(p.role_level)
            .bind(p.mute_end_time)
            .bind(group_id)
            .bind(&p.user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("member {} of group {group_id}", p.user_id)));
            }
            let mut elements = vec![p.user_id.clone()];
            if p.role_level.is_some() {
                elements.push(SORT_ELEMENT.to_string());
            }
            bump(&mut tx, VersionKind::GroupMembers, group_id, &elements, Change::Update).await?;
            heads.push(head_in_tx(&mut tx, VersionKind::GroupMembers, group_id).await?);
        }
        tx.commit().await?;
        Ok(heads)
    }

    async fn transfer_group_owner(
        &self,
        group_id: &str,
        old_owner: &str,
        new_owner: &str,
        old_owner_role: i32,
    ) -> Result<VersionHead> {
        let mut tx = self.begin_write().await?;
        for (user_id, role, unmute) in [(new_owner, role_level::OWNER, true), (old_owner, old_owner_role, false)] {
            let n = sqlx::query(
                "UPDATE group_members SET role_level = ?, \
                 mute_end_time = CASE WHEN ? THEN 0 ELSE mute_end_time END WHERE group_id = ? AND user_id = ?",
            )
            .bind(role)
            .bind(unmute)
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("member {user_id} of group {group_id}")));
            }
        }
        sqlx::query("UPDATE groups SET owner_user_id = ? WHERE group_id = ?")
            .bind(new_owner)
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
        let elements = [new_owner.to_string(), old_owner.to_string(), SORT_ELEMENT.to_string()];
        bump(&mut tx, VersionKind::GroupMembers, group_id, &elements, Change::Update).await?;
        let head = head_in_tx(&mut tx, VersionKind::GroupMembers, group_id).await?;
        tx.commit().await?;
        Ok(head)
    }

    /// The member list itself logs only "the group changed" (its status), not one deletion per member: nobody
    /// syncs the members of a dismissed group, and a group of 100,000 would otherwise log 100,000 rows more.
    async fn dismiss_group(&self, group_id: &str) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE groups SET status = ? WHERE group_id = ?")
            .bind(group_status::DISMISSED)
            .bind(group_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("group {group_id}")));
        }
        let sql = format!("SELECT user_id FROM group_members WHERE group_id = ? {MEMBER_ORDER}");
        let members: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql)).bind(group_id).fetch_all(&mut *tx).await?;
        let removed = delete_members(&self.memtable, &mut tx, group_id, &members, false).await?;
        bump(&mut tx, VersionKind::GroupMembers, group_id, &[GROUP_INFO_ELEMENT.to_string()], Change::Update).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// By join time, then group id.
    async fn joined_groups(&self, user_id: &str, page: Page) -> Result<(Vec<Group>, i64)> {
        let rows = sqlx::query(
            "SELECT g.group_id, g.group_name, g.notification, g.introduction, g.face_url, g.owner_user_id, \
             g.creator_user_id, g.create_time, g.ex, g.status, g.group_type, g.need_verification, \
             g.look_member_info, g.apply_member_friend, g.notification_update_time, g.notification_user_id \
             FROM group_members m JOIN groups g ON g.group_id = m.group_id \
             WHERE m.user_id = ? ORDER BY m.join_time, m.group_id LIMIT CAST(? AS INTEGER) OFFSET ?",
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

    async fn managed_group_ids(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE user_id = ? AND role_level IN (?, ?) ORDER BY join_time, group_id",
        )
        .bind(user_id)
        .bind(role_level::OWNER)
        .bind(role_level::ADMIN)
        .fetch_all(&self.read)
        .await?)
    }

    async fn group_members(&self, group_id: &str, page: Page) -> Result<(Vec<GroupMember>, i64)> {
        self.group_members_filtered(group_id, &MemberFilter::default(), page).await
    }

    /// The keyword matches user ids and group nicknames as a substring; `LIKE` wildcards in it are escaped, so
    /// it matches literally.
    async fn group_members_filtered(
        &self,
        group_id: &str,
        filter: &MemberFilter,
        page: Page,
    ) -> Result<(Vec<GroupMember>, i64)> {
        let roles = in_clause("role_level", &filter.roles);
        let keyword = (!filter.keyword.is_empty()).then(|| {
            let escaped = filter.keyword.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            format!("%{escaped}%")
        });
        let condition = format!(
            "group_id = ?{}{}",
            roles.as_ref().map_or("", |r| r.0.as_str()),
            if keyword.is_some() { " AND (user_id LIKE ? ESCAPE '\\' OR nickname LIKE ? ESCAPE '\\')" } else { "" }
        );
        let list_sql = format!(
            concat!("SELECT ", member_columns!(), " FROM group_members WHERE {} {} LIMIT CAST(? AS INTEGER) OFFSET ?"),
            condition, MEMBER_ORDER
        );
        let count_sql = format!("SELECT COUNT(*) FROM group_members WHERE {condition}");
        let mut list = sqlx::query(AssertSqlSafe(list_sql)).bind(group_id);
        let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql)).bind(group_id);
        for r in roles.map(|r| r.1).unwrap_or_default() {
            list = list.bind(*r);
            count = count.bind(*r);
        }
        if let Some(k) = &keyword {
            list = list.bind(k).bind(k);
            count = count.bind(k).bind(k);
        }
        let rows = list.bind(page.limit.max(0)).bind(page.offset.max(0)).fetch_all(&self.read).await?;
        let total = count.fetch_one(&self.read).await?;
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

    async fn put_group_requests(&self, requests: &[GroupRequest]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for r in requests {
            sqlx::query(concat!(
                "INSERT INTO group_requests (",
                request_columns!(),
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (group_id, user_id) DO UPDATE SET \
                 handle_result = excluded.handle_result, req_msg = excluded.req_msg, \
                 handle_msg = excluded.handle_msg, req_time = excluded.req_time, \
                 handle_user_id = excluded.handle_user_id, handle_time = excluded.handle_time, ex = excluded.ex, \
                 join_source = excluded.join_source, inviter_user_id = excluded.inviter_user_id"
            ))
            .bind(&r.group_id)
            .bind(&r.user_id)
            .bind(r.handle_result)
            .bind(&r.req_msg)
            .bind(&r.handle_msg)
            .bind(r.req_time)
            .bind(&r.handle_user_id)
            .bind(r.handle_time)
            .bind(&r.ex)
            .bind(r.join_source)
            .bind(&r.inviter_user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn group_requests_of(&self, group_id: &str, user_ids: &[String]) -> Result<Vec<GroupRequest>> {
        let sql = |ph: &str| {
            format!(
                concat!("SELECT ", request_columns!(), " FROM group_requests WHERE group_id = ? AND user_id IN ({})"),
                ph
            )
        };
        self.select_in(sql, Some(group_id), user_ids, request_from_row).await
    }

    /// The pending condition is part of the `UPDATE`, so of two concurrent answers exactly one applies.
    async fn answer_group_request(&self, a: &GroupAnswer) -> Result<Option<VersionHead>> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE group_requests SET handle_result = ?, handle_msg = ?, handle_user_id = ?, handle_time = ? \
             WHERE group_id = ? AND user_id = ? AND handle_result = 0",
        )
        .bind(a.handle_result)
        .bind(&a.handle_msg)
        .bind(&a.handle_user_id)
        .bind(a.handle_time)
        .bind(&a.group_id)
        .bind(&a.user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("pending application of {} to {}", a.user_id, a.group_id)));
        }
        let mut head = None;
        if let Some(member) = &a.member {
            require_group(&mut tx, &a.group_id).await?;
            let max_seq = group_max_seq(&self.memtable, &mut tx, &a.group_id).await?;
            let min_seq = if max_seq > 0 { max_seq + 1 } else { 0 };
            let added = insert_members(&mut tx, &a.group_id, std::slice::from_ref(member), min_seq, false).await?;
            if !added.inserted.is_empty() {
                head = Some(added.head);
            }
        }
        tx.commit().await?;
        Ok(head)
    }

    async fn group_requests_to(&self, query: &RequestQuery) -> Result<(Vec<GroupRequest>, i64)> {
        if query.group_ids.is_empty() {
            return Err(StoreError::Backend("group_requests_to needs group ids".into()));
        }
        self.page_requests("1 = 1", None, query).await
    }

    async fn group_requests_by(&self, user_id: &str, query: &RequestQuery) -> Result<(Vec<GroupRequest>, i64)> {
        self.page_requests("user_id = ?", Some(user_id), query).await
    }

    async fn unhandled_group_requests(&self, group_ids: &[String], after: i64) -> Result<i64> {
        let mut total = 0;
        for chunk in group_ids.chunks(super::IN_CHUNK) {
            let sql = format!(
                "SELECT COUNT(*) FROM group_requests WHERE handle_result = 0 AND req_time > ? AND group_id IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(after);
            for id in chunk {
                q = q.bind(id);
            }
            total += q.fetch_one(&self.read).await?;
        }
        Ok(total)
    }
}
