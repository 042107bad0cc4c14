//! Groups: creation, membership, roles and mutes, join applications, and the rules the message path needs.
//!
//! The rules follow OpenIM's group service (who may do what, what each change notifies). Every change:
//! 1. checks the caller's right on store data (changes never trust the cache, which in a cluster another node's
//!    change invalidates only once the bus has carried it; messages and member reads do use it);
//! 2. commits, with the version bumps the store makes in the same transaction;
//! 3. invalidates the group in the [`GroupCache`], so the next message sees the change;
//! 4. pushes its notification (`tips`) carrying the member list's new version, so every member's SDK fires its
//!    listeners and applies the change without asking (protocol §6.5).
//!
//! Steps 2 to 4 run under the group's lock, so the notifications of one group leave in version order.
//!
//! - [`cache`]: the group-member cache;
//! - [`manage`]: information, joining, leaving, roles, mutes, dismissal;
//! - [`requests`]: join applications;
//! - [`tips`]: the notifications (content types 1501–1520).

mod cache;
mod manage;
mod requests;
mod tips;

pub use cache::{GroupCache, GroupSnapshot, MemberState};
pub use manage::{JoinGroup, MemberChange};
pub use requests::{GroupRequestView, MAX_APPLICATION_PAGE};

use super::{App, Caller, now_ms, sync::Synced};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::{
    constant::{group_status, join_source, need_verification as verification, role_level},
    errcode::ErrCode,
};
use palaver_store::{Group, GroupMember, MemberFilter, Page, StoreError, User, VersionHead, VersionKind};
use std::sync::Arc;

/// One group's answer in a member sync: the member changes, and the group with its member count when the
/// answer carries it.
pub type MembersSynced = (Synced<GroupMember>, Option<(Group, u32)>);

/// Most members one create or invite call may add.
const MAX_CREATE_MEMBERS: usize = 1000;
/// Most members one listing page returns.
pub const MAX_MEMBER_PAGE: i64 = 1000;
/// Most joined groups one listing page returns.
pub const MAX_GROUP_PAGE: i64 = 1000;
/// Most groups one call may name: a lookup, an application listing's filter, a member-sync batch.
const MAX_GROUP_IDS: usize = 1000;

/// Limits on what a client may store in a group (bytes).
const MAX_GROUP_NAME: usize = 256;
const MAX_NOTIFICATION: usize = 4096;
const MAX_INTRODUCTION: usize = 1024;
const MAX_FACE_URL: usize = 1024;
const MAX_EX: usize = 4096;
const MAX_NICKNAME: usize = 256;

/// Checks a client-supplied text field against its limit.
fn check_len(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.len() > max {
        return Err(ApiError::args(format!("{field} is {} bytes; the limit is {max}", value.len())));
    }
    Ok(())
}

/// Checks the fields a client may set on a group.
fn check_group_fields(g: &Group) -> ApiResult<()> {
    check_len("groupName", &g.group_name, MAX_GROUP_NAME)?;
    check_len("notification", &g.notification, MAX_NOTIFICATION)?;
    check_len("introduction", &g.introduction, MAX_INTRODUCTION)?;
    check_len("faceURL", &g.face_url, MAX_FACE_URL)?;
    check_len("ex", &g.ex, MAX_EX)?;
    check_verification(g.need_verification)?;
    check_flag("lookMemberInfo", g.look_member_info)?;
    check_flag("applyMemberFriend", g.apply_member_friend)
}

fn check_verification(v: i32) -> ApiResult<()> {
    if !(verification::APPLY_NEEDS_APPROVAL..=verification::DIRECT).contains(&v) {
        return Err(ApiError::args(format!("needVerification must be 0, 1 or 2, not {v}")));
    }
    Ok(())
}

fn check_flag(field: &str, v: i32) -> ApiResult<()> {
    if v != 0 && v != 1 {
        return Err(ApiError::args(format!("{field} must be 0 or 1, not {v}")));
    }
    Ok(())
}

/// Refuses an empty list, a list longer than `max`, and duplicates.
fn check_id_list(field: &str, ids: &[String], max: usize) -> ApiResult<()> {
    if ids.is_empty() || ids.len() > max {
        return Err(ApiError::args(format!("{field} must name 1 to {max} users")));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    if let Some(twice) = ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(ApiError::args(format!("{field} names {twice} twice")));
    }
    Ok(())
}

/// A new member row for `user`, with its profile's nickname and face.
fn new_member(group_id: &str, user: &User, role: i32, source: i32, inviter: &str, operator: &str) -> GroupMember {
    GroupMember {
        group_id: group_id.to_string(),
        user_id: user.user_id.clone(),
        nickname: user.nickname.clone(),
        face_url: user.face_url.clone(),
        role_level: role,
        join_time: now_ms(),
        join_source: source,
        inviter_user_id: inviter.to_string(),
        operator_user_id: operator.to_string(),
        ..GroupMember::default()
    }
}

fn not_found(group_id: &str) -> ApiError {
    ApiError::new(ErrCode::GroupIdNotFound, format!("group {group_id} does not exist"))
}

fn not_in_group(user_id: &str, group_id: &str) -> ApiError {
    ApiError::new(ErrCode::NotInGroupYet, format!("{user_id} is not in group {group_id}"))
}

impl App {
    /// `/group/create_group`: creates the group with its owner (`""`: the operator), admins and members, then
    /// notifies them (1501 GroupCreated, and 1519 when it starts with an announcement). Only an app admin may
    /// create a group owned by someone else. An empty group id gets a fresh numeric one, as upstream does.
    pub async fn create_group(
        &self,
        mut group: Group,
        owner: &str,
        admins: &[String],
        members: &[String],
        operator: &Caller,
        operation_id: &str,
    ) -> ApiResult<(Group, u32)> {
        let owner = if owner.is_empty() { operator.user_id.as_str() } else { owner };
        if !operator.is_admin && owner != operator.user_id {
            return Err(ApiError::no_permission("only an admin may create a group owned by someone else"));
        }
        if group.group_id.is_empty() {
            group.group_id = random_group_id();
        } else {
            super::user::check_user_id(&group.group_id).map_err(|_| ApiError::args("invalid groupID"))?;
        }
        check_group_fields(&group)?;
        let mut all: Vec<(&str, i32)> = vec![(owner, role_level::OWNER)];
        all.extend(admins.iter().map(|u| (u.as_str(), role_level::ADMIN)));
        all.extend(members.iter().map(|u| (u.as_str(), role_level::ORDINARY)));
        let mut seen = std::collections::HashSet::new();
        if !all.iter().all(|(u, _)| seen.insert(*u)) {
            return Err(ApiError::args("a user appears twice among owner, admins and members"));
        }
        if all.len() > MAX_CREATE_MEMBERS {
            return Err(ApiError::args(format!("at most {MAX_CREATE_MEMBERS} members at creation")));
        }
        let ids: Vec<String> = all.iter().map(|(u, _)| u.to_string()).collect();
        let found = self.store.users(&ids).await?;
        if let Some(missing) = ids.iter().find(|id| !found.iter().any(|u| &&u.user_id == id)) {
            return Err(ApiError::new(ErrCode::UserIdNotFound, format!("user {missing} is not registered")));
        }
        let now = now_ms();
        group.owner_user_id = owner.to_string();
        group.creator_user_id = operator.user_id.clone();
        group.create_time = now;
        group.status = group_status::OK;
        if !group.notification.is_empty() {
            group.notification_update_time = now;
            group.notification_user_id = operator.user_id.clone();
        }
        let members: Vec<GroupMember> = all
            .iter()
            .filter_map(|(user_id, role)| {
                let user = found.iter().find(|u| &u.user_id == user_id)?;
                let mut m = new_member(&group.group_id, user, *role, join_source::BY_INVITATION, "", "");
                m.inviter_user_id = operator.user_id.clone();
                m.operator_user_id = operator.user_id.clone();
                m.join_time = now;
                Some(m)
            })
            .collect();
        let _order = self.group_lock(&group.group_id).lock().await;
        let head = self.store.create_group(&group, &members).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => {
                ApiError::new(ErrCode::GroupIdExisted, format!("group {} exists", group.group_id))
            }
            e => e.into(),
        })?;
        self.bus.group_changed(&group.group_id);
        let view = (group, members.len() as u32);
        self.notify_group_created(&view, &members, operator, &head, operation_id).await;
        Ok(view)
    }

    /// `/group/get_groups_info`: the groups that exist among `ids`, with their member counts.
    pub async fn groups_info(&self, ids: &[String]) -> ApiResult<Vec<(Group, u32)>> {
        if ids.len() > MAX_GROUP_IDS {
            return Err(ApiError::args(format!("at most {MAX_GROUP_IDS} groupIDs")));
        }
        let groups = self.store.groups(ids).await?;
        self.with_member_counts(groups).await
    }

    /// The group as the message path sees it, from the cache or else the store; `None` if it does not exist.
    pub async fn group_snapshot(&self, group_id: &str) -> ApiResult<Option<Arc<GroupSnapshot>>> {
        Ok(self.group_cache.get_or_load(group_id, || GroupSnapshot::load(&*self.store, group_id)).await?)
    }

    /// The group's members, if `user_id` may send to it: it exists, is not dismissed, the user is a member, and
    /// neither the member (1402) nor, for ordinary members, the whole group (1403) is muted. Served from the
    /// group cache: no store read per message.
    pub async fn check_group_sender(&self, group_id: &str, user_id: &str) -> ApiResult<Arc<GroupSnapshot>> {
        let group = self.group_snapshot(group_id).await?.ok_or_else(|| not_found(group_id))?;
        if group.status == group_status::DISMISSED {
            return Err(ApiError::new(ErrCode::DismissedAlready, format!("group {group_id} was dismissed")));
        }
        let member = group.member(user_id).ok_or_else(|| not_in_group(user_id, group_id))?;
        if member.mute_end_time > now_ms() {
            return Err(ApiError::new(ErrCode::MutedInGroup, "you are muted in this group"));
        }
        if group.status == group_status::MUTED && member.role_level == role_level::ORDINARY {
            return Err(ApiError::new(ErrCode::MutedGroup, "this group is muted"));
        }
        Ok(group)
    }

    /// Serialises the changes of one group with the pushes of their notifications (see the module docs). Held
    /// while a change stores its tip in the group's chat, which takes that conversation's lock: the fixed order
    /// is group, then conversation.
    fn group_lock(&self, group_id: &str) -> &tokio::sync::Mutex<()> {
        self.group_locks.of(group_id)
    }

    /// `/group/invite_user_to_group`: a member (or an app admin) adds users; users already in the group are
    /// skipped. In a group where everyone needs approval (`needVerification` 1), an ordinary member's
    /// invitations become applications for the owner and admins to answer instead.
    pub async fn invite_to_group(
        &self,
        group_id: &str,
        inviter: &Caller,
        user_ids: &[String],
        reason: &str,
        operation_id: &str,
    ) -> ApiResult<()> {
        check_id_list("invitedUserIDs", user_ids, MAX_CREATE_MEMBERS)?;
        check_len("reason", reason, requests::MAX_REQ_MSG)?;
        let group = self.live_group(group_id).await?;
        let op_member = self.store.group_member(group_id, &inviter.user_id).await?;
        if !inviter.is_admin && op_member.is_none() {
            return Err(not_in_group(&inviter.user_id, group_id));
        }
        let found = self.store.users(user_ids).await?;
        if let Some(missing) = user_ids.iter().find(|id| !found.iter().any(|u| &&u.user_id == id)) {
            return Err(ApiError::new(ErrCode::UserIdNotFound, format!("user {missing} is not registered")));
        }
        let manager = inviter.is_admin || op_member.as_ref().is_some_and(|m| m.role_level >= role_level::ADMIN);
        if group.need_verification == verification::ALL_NEED_APPROVAL && !manager {
            return self.invitations_as_requests(&group, inviter, &found, reason, operation_id).await;
        }
        let members: Vec<GroupMember> = found
            .iter()
            .map(|u| {
                new_member(
                    group_id,
                    u,
                    role_level::ORDINARY,
                    join_source::BY_INVITATION,
                    &inviter.user_id,
                    &inviter.user_id,
                )
            })
            .collect();
        let _order = self.group_lock(group_id).lock().await;
        let added = self.store.add_group_members(group_id, &members).await?;
        self.bus.group_changed(group_id);
        if !added.inserted.is_empty() {
            let op = self.op_user_info(group_id, inviter).await;
            self.notify_members_invited(group_id, &op, &op, &added.inserted, &added.head, operation_id).await;
        }
        Ok(())
    }

    /// The group if it exists (1201 otherwise), dismissed or not.
    async fn existing_group(&self, group_id: &str) -> ApiResult<Group> {
        self.store.groups(&[group_id.to_string()]).await?.pop().ok_or_else(|| not_found(group_id))
    }

    /// The group if it exists and is not dismissed (1204).
    async fn live_group(&self, group_id: &str) -> ApiResult<Group> {
        let group = self.existing_group(group_id).await?;
        if group.status == group_status::DISMISSED {
            return Err(ApiError::new(ErrCode::DismissedAlready, format!("group {group_id} was dismissed")));
        }
        Ok(group)
    }

    /// Members' data is visible to members and app admins only.
    async fn check_can_see_members(&self, group_id: &str, caller: &Caller) -> ApiResult<()> {
        if caller.is_admin {
            return Ok(());
        }
        match self.group_snapshot(group_id).await? {
            Some(group) if group.is_member(&caller.user_id) => Ok(()),
            _ => Err(not_in_group(&caller.user_id, group_id)),
        }
    }

    /// `/group/get_joined_group_list` (pages of at most [`MAX_GROUP_PAGE`]).
    pub async fn joined_groups(&self, user_id: &str, page: Page) -> ApiResult<(Vec<(Group, u32)>, i64)> {
        let (groups, total) = self.store.joined_groups(user_id, page).await?;
        Ok((self.with_member_counts(groups).await?, total))
    }

    async fn with_member_counts(&self, groups: Vec<Group>) -> ApiResult<Vec<(Group, u32)>> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let count = self.store.group_member_count(&group.group_id).await?;
            out.push((group, count));
        }
        Ok(out)
    }

    /// The group with its member count, as notifications carry it.
    async fn group_view(&self, group_id: &str) -> ApiResult<(Group, u32)> {
        let group = self.existing_group(group_id).await?;
        let count = self.store.group_member_count(group_id).await?;
        Ok((group, count))
    }

    /// `/group/get_full_join_group_ids`.
    pub async fn joined_group_ids(&self, user_id: &str) -> ApiResult<(VersionHead, Vec<String>)> {
        let head = self.list_head(VersionKind::JoinedGroups, user_id).await?;
        Ok((head, self.store.joined_group_ids(user_id).await?))
    }

    /// `/group/get_incremental_join_groups`.
    pub async fn sync_joined_groups(
        &self,
        user_id: &str,
        version_id: &str,
        version: u64,
    ) -> ApiResult<Synced<(Group, u32)>> {
        self.sync_list(VersionKind::JoinedGroups, user_id, version_id, version, |ids| async move {
            let groups = self.store.groups(&ids).await?;
            self.with_member_counts(groups).await
        })
        .await
    }

    /// `/group/get_group_member_list`: one page of the members `filter` selects (the SDKs' `GroupFilter*`
    /// values: 0 all, 1 owner, 2 admins, 3 ordinary members, 4 admins and ordinary members, 5 owner and admins)
    /// whose user id or group nickname contains `keyword`, owner first; and how many there are.
    pub async fn group_members_page(
        &self,
        group_id: &str,
        caller: &Caller,
        filter: i32,
        keyword: &str,
        page: Page,
    ) -> ApiResult<(Vec<GroupMember>, i64)> {
        let roles = match filter {
            0 => vec![],
            1 => vec![role_level::OWNER],
            2 => vec![role_level::ADMIN],
            3 => vec![role_level::ORDINARY],
            4 => vec![role_level::ADMIN, role_level::ORDINARY],
            5 => vec![role_level::OWNER, role_level::ADMIN],
            other => return Err(ApiError::args(format!("unknown member filter {other}"))),
        };
        check_len("keyword", keyword, MAX_NICKNAME)?;
        self.check_can_see_members(group_id, caller).await?;
        let filter = MemberFilter { roles, keyword: keyword.to_string() };
        Ok(self.store.group_members_filtered(group_id, &filter, page).await?)
    }

    pub async fn group_members_info(
        &self,
        group_id: &str,
        caller: &Caller,
        user_ids: &[String],
    ) -> ApiResult<Vec<GroupMember>> {
        if user_ids.len() as i64 > MAX_MEMBER_PAGE {
            return Err(ApiError::args(format!("at most {MAX_MEMBER_PAGE} userIDs")));
        }
        self.check_can_see_members(group_id, caller).await?;
        Ok(self.store.group_members_by_id(group_id, user_ids).await?)
    }

    /// `/group/get_full_group_member_user_ids`.
    pub async fn group_member_ids(&self, group_id: &str, caller: &Caller) -> ApiResult<(VersionHead, Vec<String>)> {
        self.check_can_see_members(group_id, caller).await?;
        let head = self.list_head(VersionKind::GroupMembers, group_id).await?;
        Ok((head, self.store.group_member_ids(group_id).await?))
    }

    /// `/group/get_incremental_group_members_batch`, for `user_id` (the caller, or any user for an admin):
    /// each group of `batch` (`(groupID, versionID, version)`, at most 1000) answered on its own, in order, as
    /// [`App::sync_group_members`] answers it; one group the caller may not see fails alone.
    pub async fn sync_group_members_batch(
        &self,
        caller: &Caller,
        user_id: &str,
        batch: &[(String, String, u64)],
    ) -> ApiResult<Vec<ApiResult<MembersSynced>>> {
        caller.check_access(user_id)?;
        if batch.len() > MAX_GROUP_IDS {
            return Err(ApiError::args(format!("at most {MAX_GROUP_IDS} groups per batch")));
        }
        let mut answers = Vec::with_capacity(batch.len());
        for (group_id, version_id, version) in batch {
            answers.push(self.sync_group_members(group_id, caller, version_id, *version).await);
        }
        Ok(answers)
    }

    /// One group of `/group/get_incremental_group_members_batch`: the member changes, and the group itself
    /// whenever anything changed (its member count moves with the members) or on a full answer.
    async fn sync_group_members(
        &self,
        group_id: &str,
        caller: &Caller,
        version_id: &str,
        version: u64,
    ) -> ApiResult<MembersSynced> {
        self.check_can_see_members(group_id, caller).await?;
        let synced = self
            .sync_list(VersionKind::GroupMembers, group_id, version_id, version, |ids| async move {
                Ok(self.store.group_members_by_id(group_id, &ids).await?)
            })
            .await?;
        let changed = synced.group_changed
            || synced.sort_changed
            || !synced.delete.is_empty()
            || !synced.insert.is_empty()
            || !synced.update.is_empty();
        let group = if changed || synced.full {
            let groups = self.store.groups(&[group_id.to_string()]).await?;
            self.with_member_counts(groups).await?.pop()
        } else {
            None
        };
        Ok((synced, group))
    }
}

/// A new group id: a random decimal number, like upstream's (which uses 8 hex digits of an md5).
fn random_group_id() -> String {
    rand::random::<u32>().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use palaver_protocol::{conversation_id, pb::sdkws::MsgData};
    use palaver_store::sqlite::SqliteStore;

    fn caller(user_id: &str) -> Caller {
        Caller { user_id: user_id.into(), platform_id: 5, token_hash: Arc::from(&[][..]), is_admin: false }
    }

    fn text(from: &str, group_id: &str, id: &str) -> MsgData {
        MsgData {
            send_id: from.into(),
            group_id: group_id.into(),
            client_msg_id: id.into(),
            session_type: 3,
            content_type: 101,
            content: br#"{"content":"hi"}"#.to_vec(),
            ..MsgData::default()
        }
    }

    /// The point of the cache: group messages read no member list from the store; each change reloads it once.
    #[tokio::test]
    async fn group_messages_are_served_from_the_cache_and_changes_reload_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::for_tests(dir.path(), &["alice", "bob", "carol"]).await;
        let group = Group { group_name: "g".into(), group_type: 2, ..Group::default() };
        let members = ["bob".to_string(), "carol".to_string()];
        let (group, _) = app.create_group(group, "alice", &[], &members, &caller("alice"), "op").await.unwrap();
        let gid = group.group_id;

        let before = app.group_cache.loads();
        for i in 0..50 {
            let from = ["alice", "bob", "carol"][i % 3];
            app.send_message(&caller(from), text(from, &gid, &format!("m{i}")), "op").await.unwrap();
        }
        assert!(before <= 1, "the creation's notification loaded it at most once");
        assert_eq!(app.group_cache.loads(), before.max(1), "no store read per message");

        app.kick_members(&gid, &caller("alice"), &["bob".to_string()], "", "op").await.unwrap();
        let after_kick = app.group_cache.loads();
        let refused = app.send_message(&caller("bob"), text("bob", &gid, "b"), "op").await.unwrap_err();
        assert_eq!(refused.code, ErrCode::NotInGroupYet, "the kick is seen at once");
        for i in 0..10 {
            app.send_message(&caller("carol"), text("carol", &gid, &format!("c{i}")), "op").await.unwrap();
        }
        assert_eq!(app.group_cache.loads(), after_kick, "one reload per change, not per message");
        assert_eq!(*app.group_cache.get(&gid).unwrap().member_ids, ["alice", "carol"]);
    }

    /// A group change stores its tip in the group's chat (taking that conversation's lock) while it holds the
    /// group's lock. When the group's lock was the `n_` conversation's, a group whose `n_` and `sg_` ids hashed
    /// to one shard deadlocked at its creation (about one group in a thousand; seen as a create_group call
    /// that never answered). Such a group is picked here on purpose and taken through the changes that tip.
    #[tokio::test]
    async fn a_group_whose_chat_and_notification_ids_share_a_lock_shard_still_changes() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::for_tests(dir.path(), &["alice", "bob", "carol"]).await;
        let locks = &app.conversation_locks;
        let gid = (0..)
            .map(|i| format!("g{i}"))
            .find(|g| locks.shard(&format!("n_{g}")) == locks.shard(&conversation_id::group(g)))
            .unwrap();

        let alice = caller("alice");
        let changes = async {
            let group = Group { group_id: gid.clone(), group_name: "g".into(), group_type: 2, ..Group::default() };
            app.create_group(group, "alice", &[], &["bob".to_string()], &alice, "op").await.unwrap();
            app.invite_to_group(&gid, &alice, &["carol".to_string()], "", "op").await.unwrap();
            app.mute_group(&gid, &alice, true, "op").await.unwrap();
            app.kick_members(&gid, &alice, &["bob".to_string()], "", "op").await.unwrap();
        };
        // A guard against hanging the suite, not a timing check: without the fix the first call never returns.
        tokio::time::timeout(std::time::Duration::from_secs(20), changes).await.expect("a group change deadlocked");

        let chat = conversation_id::group(&gid);
        let max = app.store.max_seqs(std::slice::from_ref(&chat)).await.unwrap();
        assert_eq!(max[0].max_seq, 4, "one tip per change in the group's chat: {max:?}");
    }

    /// A measurement, not a check (run with `--ignored --nocapture`): the cost of a message to a group of
    /// 10,000 members, none of them connected. With the cache it is one seq allocation and one insert; the
    /// member list is read once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement"]
    async fn large_group_message_cost() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        let app = App::new(Config::for_tests(dir.path()), Arc::new(store), "test-secret".into());
        let ids: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
        for chunk in ids.chunks(crate::service::MAX_REGISTER_USERS) {
            let users = chunk.iter().map(|id| User { user_id: id.clone(), ..User::default() }).collect();
            app.register_users(users).await.unwrap();
        }
        let group = Group { group_name: "big".into(), group_type: 2, ..Group::default() };
        let (group, _) = app.create_group(group, "u0", &[], &ids[1..1000], &caller("u0"), "op").await.unwrap();
        let gid = group.group_id;
        for chunk in ids[1000..].chunks(1000) {
            app.invite_to_group(&gid, &caller("u0"), chunk, "", "op").await.unwrap();
        }
        assert_eq!(app.store.group_member_count(&gid).await.unwrap(), 10_000);
        let loads = app.group_cache.loads();
        let n = 500;
        let start = std::time::Instant::now();
        for i in 0..n {
            app.send_message(&caller("u1"), text("u1", &gid, &format!("m{i}")), "op").await.unwrap();
        }
        let took = start.elapsed();
        println!(
            "{n} sequential messages to a 10,000-member group: {:?} per message; member-list loads during them: {}",
            took / n,
            app.group_cache.loads() - loads
        );
        let start = std::time::Instant::now();
        for _ in 0..20 {
            app.store.group_member_roles(&gid).await.unwrap();
        }
        println!(
            "one read of the member list from the store (what each message would cost without the cache): {:?}",
            start.elapsed() / 20
        );
    }
}
