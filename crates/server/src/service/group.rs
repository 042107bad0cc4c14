//! Groups: creation and the membership rules the message path needs.

use super::{App, Caller, now_ms, sync::Synced};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::{
    constant::{group_status, join_source, role_level},
    errcode::ErrCode,
};
use palaver_store::{Group, GroupMember, Page, StoreError, VersionHead, VersionKind};

/// Most members one create call may add.
const MAX_CREATE_MEMBERS: usize = 1000;

impl App {
    /// `/group/create_group`: creates the group with its owner, admins and members. An empty group id gets a
    /// fresh numeric one, as upstream does.
    pub async fn create_group(
        &self,
        mut group: Group,
        owner: &str,
        admins: &[String],
        members: &[String],
        operator: &str,
    ) -> ApiResult<Group> {
        if group.group_id.is_empty() {
            group.group_id = random_group_id();
        } else {
            super::user::check_user_id(&group.group_id).map_err(|_| ApiError::args("invalid groupID"))?;
        }
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
        group.creator_user_id = operator.to_string();
        group.create_time = now;
        group.status = group_status::OK;
        let members: Vec<GroupMember> = all
            .iter()
            .map(|(user_id, role)| GroupMember {
                group_id: group.group_id.clone(),
                user_id: user_id.to_string(),
                role_level: *role,
                join_time: now,
                join_source: join_source::BY_INVITATION,
                inviter_user_id: operator.to_string(),
                operator_user_id: operator.to_string(),
                nickname: found.iter().find(|u| &u.user_id == user_id).map(|u| u.nickname.clone()).unwrap_or_default(),
                ..GroupMember::default()
            })
            .collect();
        self.store.create_group(&group, &members).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => {
                ApiError::new(ErrCode::GroupIdExisted, format!("group {} exists", group.group_id))
            }
            e => e.into(),
        })?;
        Ok(group)
    }

    /// `/group/get_groups_info`: the groups that exist among `ids`, with their member counts.
    pub async fn groups_info(&self, ids: &[String]) -> ApiResult<Vec<(Group, u32)>> {
        let groups = self.store.groups(ids).await?;
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let count = self.store.group_member_count(&group.group_id).await?;
            out.push((group, count));
        }
        Ok(out)
    }

    /// The group, if `user_id` may send to it: it exists, is not dismissed, the user is a member, and neither the
    /// member nor (for ordinary members) the whole group is muted.
    pub async fn check_group_sender(&self, group_id: &str, user_id: &str) -> ApiResult<Group> {
        let group = self.live_group(group_id).await?;
        let member =
            self.store.group_member(group_id, user_id).await?.ok_or_else(|| {
                ApiError::new(ErrCode::NotInGroupYet, format!("{user_id} is not in group {group_id}"))
            })?;
        if member.mute_end_time > now_ms() {
            return Err(ApiError::new(ErrCode::MutedInGroup, "you are muted in this group"));
        }
        if group.status == group_status::MUTED && member.role_level == role_level::ORDINARY {
            return Err(ApiError::new(ErrCode::MutedGroup, "this group is muted"));
        }
        Ok(group)
    }
}

/// A new group id: a random decimal number, like upstream's (which uses 8 hex digits of an md5).
fn random_group_id() -> String {
    rand::random::<u32>().to_string()
}

/// Most members one listing page returns.
pub const MAX_MEMBER_PAGE: i64 = 1000;

impl App {
    /// `/group/invite_user_to_group`: a member (or an admin) adds users. Users already in the group are skipped.
    pub async fn invite_to_group(&self, group_id: &str, inviter: &Caller, user_ids: &[String]) -> ApiResult<()> {
        if user_ids.is_empty() || user_ids.len() > MAX_CREATE_MEMBERS {
            return Err(ApiError::args(format!("invite 1 to {MAX_CREATE_MEMBERS} users")));
        }
        let group = self.live_group(group_id).await?;
        if !inviter.is_admin && self.store.group_member(group_id, &inviter.user_id).await?.is_none() {
            return Err(ApiError::new(
                ErrCode::NotInGroupYet,
                format!("{} is not in group {group_id}", inviter.user_id),
            ));
        }
        let found = self.store.users(user_ids).await?;
        if let Some(missing) = user_ids.iter().find(|id| !found.iter().any(|u| &&u.user_id == id)) {
            return Err(ApiError::new(ErrCode::UserIdNotFound, format!("user {missing} is not registered")));
        }
        let now = now_ms();
        let members: Vec<GroupMember> = found
            .iter()
            .map(|u| GroupMember {
                group_id: group.group_id.clone(),
                user_id: u.user_id.clone(),
                nickname: u.nickname.clone(),
                role_level: role_level::ORDINARY,
                join_time: now,
                join_source: join_source::BY_INVITATION,
                inviter_user_id: inviter.user_id.clone(),
                operator_user_id: inviter.user_id.clone(),
                ..GroupMember::default()
            })
            .collect();
        self.store.add_group_members(group_id, &members).await?;
        Ok(())
    }

    /// The group if it exists and is not dismissed.
    async fn live_group(&self, group_id: &str) -> ApiResult<Group> {
        let group = self
            .store
            .groups(&[group_id.to_string()])
            .await?
            .pop()
            .ok_or_else(|| ApiError::new(ErrCode::GroupIdNotFound, format!("group {group_id} does not exist")))?;
        if group.status == group_status::DISMISSED {
            return Err(ApiError::new(ErrCode::DismissedAlready, format!("group {group_id} was dismissed")));
        }
        Ok(group)
    }

    /// Members' data is visible to members and admins only.
    async fn check_can_see_members(&self, group_id: &str, caller: &Caller) -> ApiResult<()> {
        if caller.is_admin || self.store.group_member(group_id, &caller.user_id).await?.is_some() {
            Ok(())
        } else {
            Err(ApiError::new(ErrCode::NotInGroupYet, format!("{} is not in group {group_id}", caller.user_id)))
        }
    }

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

    pub async fn group_members_page(
        &self,
        group_id: &str,
        caller: &Caller,
        page: Page,
    ) -> ApiResult<(Vec<GroupMember>, i64)> {
        self.check_can_see_members(group_id, caller).await?;
        Ok(self.store.group_members(group_id, page).await?)
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

    /// One group of `/group/get_incremental_group_members_batch`: the member changes, and the group itself when
    /// its info changed (or on a full answer, so the client has it).
    pub async fn sync_group_members(
        &self,
        group_id: &str,
        caller: &Caller,
        version_id: &str,
        version: u64,
    ) -> ApiResult<(Synced<GroupMember>, Option<(Group, u32)>)> {
        self.check_can_see_members(group_id, caller).await?;
        let synced = self
            .sync_list(VersionKind::GroupMembers, group_id, version_id, version, |ids| async move {
                Ok(self.store.group_members_by_id(group_id, &ids).await?)
            })
            .await?;
        let group = if synced.group_changed || synced.full {
            let groups = self.store.groups(&[group_id.to_string()]).await?;
            self.with_member_counts(groups).await?.pop()
        } else {
            None
        };
        Ok((synced, group))
    }
}
