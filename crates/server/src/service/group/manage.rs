//! Changes to a group: its information, joining and leaving, ownership, roles, mutes and dismissal, with
//! OpenIM's rules on who may do what (upstream `internal/rpc/group/group.go`), and their notifications.

use super::tips::version;
use super::{
    App, Caller, MAX_CREATE_MEMBERS, MAX_EX, MAX_FACE_URL, MAX_GROUP_NAME, MAX_INTRODUCTION, MAX_NICKNAME,
    MAX_NOTIFICATION, check_flag, check_id_list, check_len, check_verification, new_member, not_in_group,
};
use crate::error::{ApiError, ApiResult};
use crate::service::wire::member_info;
use palaver_protocol::{
    constant::{content_type, group_status, join_source, need_verification as verification, role_level},
    errcode::ErrCode,
    pb::sdkws,
};
use palaver_store::{GroupMember, GroupPatch, MemberPatch, StoreError};

/// Longest mute: a year (OpenIM takes any `uint32` of seconds; a century of mute is a mistake).
const MAX_MUTE_SECONDS: u32 = 366 * 24 * 3600;

/// What `/group/set_group_member_info` may change of one member.
#[derive(Debug, Clone)]
pub struct MemberChange {
    pub group_id: String,
    pub patch: MemberPatch,
}

/// A `/group/join_group` request.
#[derive(Debug, Clone, Copy)]
pub struct JoinGroup<'a> {
    pub group_id: &'a str,
    /// Who joins: the caller (empty), or anyone for an app admin. OpenIM's field is `inviterUserID`.
    pub applicant: &'a str,
    pub req_msg: &'a str,
    /// `join_source` (3 by search, 4 by QR code, …); 0 counts as "by search".
    pub source: i32,
    pub ex: &'a str,
}

fn no_permission(what: &str, group_id: &str) -> ApiError {
    ApiError::no_permission(format!("only the owner or an admin of group {group_id} may {what}"))
}

impl App {
    /// The caller's member row, if it is the owner or an admin (or `None` for an app admin outside the group);
    /// anyone else gets 1002.
    async fn require_manager(&self, group_id: &str, caller: &Caller, what: &str) -> ApiResult<Option<GroupMember>> {
        let member = self.store.group_member(group_id, &caller.user_id).await?;
        if caller.is_admin || member.as_ref().is_some_and(|m| m.role_level >= role_level::ADMIN) {
            Ok(member)
        } else {
            Err(no_permission(what, group_id))
        }
    }

    /// `/group/set_group_info_ex`: the owner or an admin changes the fields `patch` sets. Sends 1519 when the
    /// announcement changed, 1520 when the name did, 1502 when anything else did; all with the one version the
    /// change took.
    pub async fn set_group_info(
        &self,
        group_id: &str,
        caller: &Caller,
        mut patch: GroupPatch,
        operation_id: &str,
    ) -> ApiResult<()> {
        self.require_manager(group_id, caller, "change its information").await?;
        self.live_group(group_id).await?;
        if let Some(name) = &patch.group_name {
            if name.trim().is_empty() {
                return Err(ApiError::args("groupName must not be empty"));
            }
            check_len("groupName", name, MAX_GROUP_NAME)?;
        }
        if let Some(notification) = &mut patch.notification {
            *notification = notification.trim().to_string();
            check_len("notification", notification, MAX_NOTIFICATION)?;
            patch.notification_update_time = Some(super::now_ms());
            patch.notification_user_id = Some(caller.user_id.clone());
        }
        check_len("introduction", patch.introduction.as_deref().unwrap_or_default(), MAX_INTRODUCTION)?;
        check_len("faceURL", patch.face_url.as_deref().unwrap_or_default(), MAX_FACE_URL)?;
        check_len("ex", patch.ex.as_deref().unwrap_or_default(), MAX_EX)?;
        if let Some(v) = patch.need_verification {
            check_verification(v)?;
        }
        if let Some(v) = patch.look_member_info {
            check_flag("lookMemberInfo", v)?;
        }
        if let Some(v) = patch.apply_member_friend {
            check_flag("applyMemberFriend", v)?;
        }
        patch.status = None;
        if patch.is_empty() {
            return Ok(());
        }
        let normal = patch.introduction.is_some()
            || patch.face_url.is_some()
            || patch.ex.is_some()
            || patch.need_verification.is_some()
            || patch.look_member_info.is_some()
            || patch.apply_member_friend.is_some();

        let _order = self.group_lock(group_id).lock().await;
        let head = self.store.update_group(group_id, &patch).await?;
        let group = self.group_tips_info(group_id).await;
        let op = self.op_user_info(group_id, caller).await;
        let (group_member_version, group_member_version_id) = version(&head);
        if patch.notification.is_some() {
            let tips = sdkws::GroupInfoSetAnnouncementTips {
                op_user: Some(op.clone()),
                group: Some(group.clone()),
                group_member_version,
                group_member_version_id: group_member_version_id.clone(),
            };
            let ct = content_type::GROUP_INFO_SET_ANNOUNCEMENT;
            self.push_group_tips(&caller.user_id, group_id, ct, &tips, &[], operation_id).await;
        }
        if patch.group_name.is_some() {
            let tips = sdkws::GroupInfoSetNameTips {
                op_user: Some(op.clone()),
                group: Some(group.clone()),
                group_member_version,
                group_member_version_id: group_member_version_id.clone(),
            };
            let ct = content_type::GROUP_INFO_SET_NAME;
            self.push_group_tips(&caller.user_id, group_id, ct, &tips, &[], operation_id).await;
        }
        if normal {
            let tips = sdkws::GroupInfoSetTips {
                op_user: Some(op),
                mute_time: 0,
                group: Some(group),
                group_member_version,
                group_member_version_id,
            };
            self.push_group_tips(&caller.user_id, group_id, content_type::GROUP_INFO_SET, &tips, &[], operation_id)
                .await;
        }
        Ok(())
    }

    /// `/group/join_group`: `applicant` (the caller, or anyone for an app admin) asks to join. In a group anyone
    /// may join directly (`needVerification` 2) it is in at once (1510 to the members); otherwise its
    /// application goes to the owner and admins (1503).
    pub async fn join_group(&self, caller: &Caller, join: &JoinGroup<'_>, operation_id: &str) -> ApiResult<()> {
        let JoinGroup { group_id, applicant, req_msg, source, ex } = *join;
        let applicant = if applicant.is_empty() { caller.user_id.as_str() } else { applicant };
        caller.check_access(applicant)?;
        check_len("reqMessage", req_msg, super::requests::MAX_REQ_MSG)?;
        check_len("ex", ex, MAX_EX)?;
        let source = match source {
            0 => join_source::BY_SEARCH,
            s if (join_source::BY_ADMIN..=join_source::BY_QR_CODE).contains(&s) => s,
            other => return Err(ApiError::args(format!("unknown joinSource {other}"))),
        };
        let group = self.live_group(group_id).await?;
        let user = self
            .store
            .users(&[applicant.to_string()])
            .await?
            .pop()
            .ok_or_else(|| ApiError::new(ErrCode::UserIdNotFound, format!("user {applicant} is not registered")))?;
        if self.store.group_member(group_id, applicant).await?.is_some() {
            return Err(ApiError::args(format!("{applicant} is already in group {group_id}")));
        }
        if group.need_verification != verification::DIRECT {
            let join = JoinGroup { group_id, applicant, req_msg, source, ex };
            return self.apply_to_join(&group, caller, &user, &join, operation_id).await;
        }
        let member = new_member(group_id, &user, role_level::ORDINARY, source, "", &caller.user_id);
        let _order = self.group_lock(group_id).lock().await;
        let added = self.store.add_group_members(group_id, std::slice::from_ref(&member)).await?;
        self.bus.group_changed(group_id);
        if !added.inserted.is_empty() {
            self.notify_member_entered(&caller.user_id, group_id, applicant, &added.head, operation_id).await;
        }
        Ok(())
    }

    /// `/group/quit_group`: a member leaves (the owner may not: it transfers the group or dismisses it). 1504
    /// to the members and to the one who left.
    pub async fn quit_group(
        &self,
        group_id: &str,
        caller: &Caller,
        user_id: &str,
        operation_id: &str,
    ) -> ApiResult<()> {
        let user_id = if user_id.is_empty() { caller.user_id.as_str() } else { user_id };
        caller.check_access(user_id)?;
        let member =
            self.store.group_member(group_id, user_id).await?.ok_or_else(|| not_in_group(user_id, group_id))?;
        if member.role_level == role_level::OWNER {
            return Err(ApiError::no_permission("the owner cannot quit; transfer the group or dismiss it"));
        }
        let _order = self.group_lock(group_id).lock().await;
        let head = self.store.remove_group_members(group_id, &[user_id.to_string()]).await?;
        self.bus.group_changed(group_id);
        let (group_member_version, group_member_version_id) = version(&head);
        let tips = sdkws::MemberQuitTips {
            group: Some(self.group_tips_info(group_id).await),
            quit_user: Some(member_info(member)),
            operation_time: super::now_ms(),
            group_member_version,
            group_member_version_id,
        };
        let extra = [user_id.to_string()];
        self.push_group_tips(user_id, group_id, content_type::MEMBER_QUIT, &tips, &extra, operation_id).await;
        Ok(())
    }

    /// `/group/kick_group`: the owner removes anyone but itself; an admin removes ordinary members only. 1508
    /// to the members and to those removed.
    pub async fn kick_members(
        &self,
        group_id: &str,
        caller: &Caller,
        user_ids: &[String],
        reason: &str,
        operation_id: &str,
    ) -> ApiResult<()> {
        check_id_list("kickedUserIDs", user_ids, MAX_CREATE_MEMBERS)?;
        check_len("reason", reason, super::requests::MAX_REQ_MSG)?;
        self.existing_group(group_id).await?;
        if user_ids.contains(&caller.user_id) {
            return Err(ApiError::args("you cannot kick yourself; quit the group instead"));
        }
        let mut ids = user_ids.to_vec();
        ids.push(caller.user_id.clone());
        let members = self.store.group_members_by_id(group_id, &ids).await?;
        let op = members.iter().find(|m| m.user_id == caller.user_id);
        if !caller.is_admin && op.is_none_or(|m| m.role_level < role_level::ADMIN) {
            return Err(no_permission("kick members", group_id));
        }
        let mut kicked = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            let member =
                members.iter().find(|m| &m.user_id == user_id).ok_or_else(|| not_in_group(user_id, group_id))?;
            if member.role_level == role_level::OWNER {
                return Err(ApiError::args("the owner cannot be kicked"));
            }
            let op_role = op.map_or(role_level::OWNER, |m| m.role_level);
            if !caller.is_admin && op_role == role_level::ADMIN && member.role_level >= role_level::ADMIN {
                return Err(ApiError::no_permission("an admin cannot kick the owner or another admin"));
            }
            kicked.push(member.clone());
        }
        let _order = self.group_lock(group_id).lock().await;
        let head = self.store.remove_group_members(group_id, user_ids).await?;
        self.bus.group_changed(group_id);
        let (group_member_version, group_member_version_id) = version(&head);
        let tips = sdkws::MemberKickedTips {
            group: Some(self.group_tips_info(group_id).await),
            op_user: Some(self.op_user_info(group_id, caller).await),
            kicked_user_list: kicked.into_iter().map(member_info).collect(),
            operation_time: super::now_ms(),
            group_member_version,
            group_member_version_id,
        };
        let ct = content_type::MEMBER_KICKED;
        self.push_group_tips(&caller.user_id, group_id, ct, &tips, user_ids, operation_id).await;
        Ok(())
    }

    /// `/group/transfer_group`: the owner (or an app admin) makes another member the owner; the old owner takes
    /// the new one's former role, and the new owner's mute ends. 1507.
    pub async fn transfer_group(
        &self,
        group_id: &str,
        caller: &Caller,
        old_owner: &str,
        new_owner: &str,
        operation_id: &str,
    ) -> ApiResult<()> {
        self.live_group(group_id).await?;
        if old_owner == new_owner {
            return Err(ApiError::args("the new owner is the old one"));
        }
        let members = self.store.group_members_by_id(group_id, &[old_owner.to_string(), new_owner.to_string()]).await?;
        let old = members.iter().find(|m| m.user_id == old_owner).ok_or_else(|| not_in_group(old_owner, group_id))?;
        let new = members.iter().find(|m| m.user_id == new_owner).ok_or_else(|| not_in_group(new_owner, group_id))?;
        if old.role_level != role_level::OWNER {
            return Err(ApiError::args(format!("{old_owner} is not the owner of group {group_id}")));
        }
        if !caller.is_admin && caller.user_id != old_owner {
            return Err(ApiError::no_permission("only the owner may transfer the group"));
        }
        let _order = self.group_lock(group_id).lock().await;
        let head = self.store.transfer_group_owner(group_id, old_owner, new_owner, new.role_level).await?;
        self.bus.group_changed(group_id);
        let (group_member_version, group_member_version_id) = version(&head);
        let tips = sdkws::GroupOwnerTransferredTips {
            group: Some(self.group_tips_info(group_id).await),
            op_user: Some(self.op_user_info(group_id, caller).await),
            new_group_owner: Some(self.user_as_member(group_id, new_owner).await),
            old_group_owner: old_owner.to_string(),
            operation_time: super::now_ms(),
            old_group_owner_info: Some(self.user_as_member(group_id, old_owner).await),
            group_member_version,
            group_member_version_id,
        };
        let ct = content_type::GROUP_OWNER_TRANSFERRED;
        self.push_group_tips(&caller.user_id, group_id, ct, &tips, &[], operation_id).await;
        Ok(())
    }

    /// `/group/dismiss_group`: the owner (or an app admin) ends the group: it is marked dismissed, refuses
    /// messages and changes from then on, and every member is removed (each keeps the history it had). 1511 to
    /// the members, unless `delete_member` (upstream's silent variant).
    pub async fn dismiss_group(
        &self,
        group_id: &str,
        caller: &Caller,
        delete_member: bool,
        operation_id: &str,
    ) -> ApiResult<()> {
        let group = self.existing_group(group_id).await?;
        if group.status == group_status::DISMISSED && !delete_member {
            return Err(ApiError::new(ErrCode::DismissedAlready, format!("group {group_id} was dismissed")));
        }
        let owner = self.store.group_member(group_id, &group.owner_user_id).await?;
        let is_owner = owner.as_ref().is_some_and(|m| m.user_id == caller.user_id);
        if !caller.is_admin && !is_owner {
            return Err(ApiError::no_permission("only the owner may dismiss the group"));
        }
        let count = self.store.group_member_count(group_id).await?;
        let _order = self.group_lock(group_id).lock().await;
        let removed = self.store.dismiss_group(group_id).await.map_err(|e| match e {
            StoreError::NotFound(_) => super::not_found(group_id),
            e => e.into(),
        })?;
        self.bus.group_changed(group_id);
        if delete_member {
            return Ok(());
        }
        let mut group = group;
        group.status = group_status::DISMISSED;
        let op = match owner.filter(|_| is_owner) {
            Some(owner) => member_info(owner),
            None => self.op_user_info(group_id, caller).await,
        };
        let tips = sdkws::GroupDismissedTips {
            group: Some(crate::service::wire::group_info((group, count))),
            op_user: Some(op),
            operation_time: super::now_ms(),
        };
        let ct = content_type::GROUP_DISMISSED;
        self.push_group_tips(&caller.user_id, group_id, ct, &tips, &removed, operation_id).await;
        Ok(())
    }

    /// `/group/mute_group_member` (`seconds > 0`) and `/group/cancel_mute_group_member` (`None`): the owner
    /// mutes admins and members, an admin mutes members; nobody mutes the owner. A muted member's messages
    /// are refused with 1402 until the time is up. 1512 / 1513.
    pub async fn mute_member(
        &self,
        group_id: &str,
        caller: &Caller,
        user_id: &str,
        seconds: Option<u32>,
        operation_id: &str,
    ) -> ApiResult<()> {
        if seconds.is_some_and(|s| s > MAX_MUTE_SECONDS) {
            return Err(ApiError::args(format!("mutedSeconds must be at most {MAX_MUTE_SECONDS}")));
        }
        self.live_group(group_id).await?;
        let target =
            self.store.group_member(group_id, user_id).await?.ok_or_else(|| not_in_group(user_id, group_id))?;
        if !caller.is_admin {
            let op = self.store.group_member(group_id, &caller.user_id).await?;
            let op_role = op.map_or(0, |m| m.role_level);
            let allowed = match target.role_level {
                role_level::OWNER => false,
                role_level::ADMIN => op_role == role_level::OWNER,
                _ => op_role >= role_level::ADMIN,
            };
            if !allowed {
                return Err(ApiError::no_permission(
                    "only the owner mutes admins, the owner and admins mute members, and nobody mutes the owner",
                ));
            }
        }
        let mute_end_time = seconds.map_or(0, |s| super::now_ms() + i64::from(s) * 1000);
        let patch =
            MemberPatch { user_id: user_id.to_string(), mute_end_time: Some(mute_end_time), ..Default::default() };
        let _order = self.group_lock(group_id).lock().await;
        let head = self
            .store
            .update_group_members(group_id, &[patch])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("no version for a member update"))?;
        self.bus.group_changed(group_id);
        let (group_member_version, group_member_version_id) = version(&head);
        let group = Some(self.group_tips_info(group_id).await);
        let op_user = Some(self.op_user_info(group_id, caller).await);
        let muted_user = Some(self.user_as_member(group_id, user_id).await);
        let operation_time = super::now_ms();
        if let Some(muted_seconds) = seconds {
            let tips = sdkws::GroupMemberMutedTips {
                group,
                op_user,
                operation_time,
                muted_user,
                muted_seconds,
                group_member_version,
                group_member_version_id,
            };
            let ct = content_type::GROUP_MEMBER_MUTED;
            self.push_group_tips(&caller.user_id, group_id, ct, &tips, &[], operation_id).await;
        } else {
            let tips = sdkws::GroupMemberCancelMutedTips {
                group,
                op_user,
                operation_time,
                muted_user,
                group_member_version,
                group_member_version_id,
            };
            let ct = content_type::GROUP_MEMBER_CANCEL_MUTED;
            self.push_group_tips(&caller.user_id, group_id, ct, &tips, &[], operation_id).await;
        }
        Ok(())
    }

    /// `/group/mute_group` (`muted`) and `/group/cancel_mute_group`: the owner or an admin mutes the whole
    /// group: ordinary members' messages are refused with 1403. 1514 / 1515.
    pub async fn mute_group(&self, group_id: &str, caller: &Caller, muted: bool, operation_id: &str) -> ApiResult<()> {
        self.require_manager(group_id, caller, if muted { "mute it" } else { "unmute it" }).await?;
        self.live_group(group_id).await?;
        let status = if muted { group_status::MUTED } else { group_status::OK };
        let patch = GroupPatch { status: Some(status), ..Default::default() };
        let _order = self.group_lock(group_id).lock().await;
        let head = self.store.update_group(group_id, &patch).await?;
        self.bus.group_changed(group_id);
        let (group_member_version, group_member_version_id) = version(&head);
        let group = Some(self.group_tips_info(group_id).await);
        let op_user = Some(self.op_user_info(group_id, caller).await);
        let operation_time = super::now_ms();
        if muted {
            let tips =
                sdkws::GroupMutedTips { group, op_user, operation_time, group_member_version, group_member_version_id };
            self.push_group_tips(&caller.user_id, group_id, content_type::GROUP_MUTED, &tips, &[], operation_id).await;
        } else {
            let tips = sdkws::GroupCancelMutedTips {
                group,
                op_user,
                operation_time,
                group_member_version,
                group_member_version_id,
            };
            let ct = content_type::GROUP_CANCEL_MUTED;
            self.push_group_tips(&caller.user_id, group_id, ct, &tips, &[], operation_id).await;
        }
        Ok(())
    }

    /// `/group/set_group_member_info`: nicknames, faces, `ex` and roles, with OpenIM's rules: a member changes
    /// its own information but not its role upwards; an admin also changes ordinary members (and may make them
    /// admins); the owner changes anyone, but not its own role; nobody is made owner here (that is
    /// `transfer_group`). 1517 / 1518 for role changes, 1516 for the rest, each with its own version.
    pub async fn set_member_info(
        &self,
        caller: &Caller,
        changes: Vec<MemberChange>,
        operation_id: &str,
    ) -> ApiResult<()> {
        if changes.is_empty() || changes.len() > MAX_CREATE_MEMBERS {
            return Err(ApiError::args(format!("members must hold 1 to {MAX_CREATE_MEMBERS} changes")));
        }
        let mut by_group: Vec<(String, Vec<MemberPatch>)> = Vec::new();
        for c in changes {
            match c.patch.role_level {
                None | Some(role_level::ADMIN | role_level::ORDINARY) => {}
                Some(role_level::OWNER) => {
                    return Err(ApiError::no_permission("nobody is made owner here; transfer the group instead"));
                }
                Some(other) => return Err(ApiError::args(format!("unknown roleLevel {other}"))),
            }
            check_len("nickname", c.patch.nickname.as_deref().unwrap_or_default(), MAX_NICKNAME)?;
            check_len("faceURL", c.patch.face_url.as_deref().unwrap_or_default(), MAX_FACE_URL)?;
            check_len("ex", c.patch.ex.as_deref().unwrap_or_default(), MAX_EX)?;
            match by_group.iter_mut().find(|(g, _)| *g == c.group_id) {
                Some((_, patches)) => patches.push(c.patch),
                None => by_group.push((c.group_id, vec![c.patch])),
            }
        }
        for (group_id, patches) in &by_group {
            let ids: Vec<String> = patches.iter().map(|p| p.user_id.clone()).collect();
            check_id_list("userID", &ids, MAX_CREATE_MEMBERS)?;
            self.live_group(group_id).await?;
            self.check_member_changes(group_id, caller, patches).await?;
        }
        for (group_id, patches) in by_group {
            let _order = self.group_lock(&group_id).lock().await;
            let heads = self.store.update_group_members(&group_id, &patches).await.map_err(|e| match e {
                StoreError::NotFound(what) => ApiError::args(format!("{what} does not exist")),
                e => e.into(),
            })?;
            self.bus.group_changed(&group_id);
            let group = self.group_tips_info(&group_id).await;
            let op = self.op_user_info(&group_id, caller).await;
            for (patch, head) in patches.iter().zip(heads) {
                let (group_member_version, group_member_version_id) = version(&head);
                let tips = sdkws::GroupMemberInfoSetTips {
                    group: Some(group.clone()),
                    op_user: Some(op.clone()),
                    operation_time: super::now_ms(),
                    changed_user: Some(self.user_as_member(&group_id, &patch.user_id).await),
                    group_member_version,
                    group_member_version_id,
                    group_sort_version: if patch.role_level.is_some() { group_member_version } else { 0 },
                };
                let role_ct = match patch.role_level {
                    Some(role_level::ADMIN) => Some(content_type::GROUP_MEMBER_SET_TO_ADMIN),
                    Some(_) => Some(content_type::GROUP_MEMBER_SET_TO_ORDINARY),
                    None => None,
                };
                if let Some(ct) = role_ct {
                    self.push_group_tips(&caller.user_id, &group_id, ct, &tips, &[], operation_id).await;
                }
                if patch.nickname.is_some() || patch.face_url.is_some() || patch.ex.is_some() {
                    let ct = content_type::GROUP_MEMBER_INFO_SET;
                    self.push_group_tips(&caller.user_id, &group_id, ct, &tips, &[], operation_id).await;
                }
            }
        }
        Ok(())
    }

    /// Whether `caller` may apply `patches` to members of `group_id` (see [`App::set_member_info`]).
    async fn check_member_changes(&self, group_id: &str, caller: &Caller, patches: &[MemberPatch]) -> ApiResult<()> {
        let mut ids: Vec<String> = patches.iter().map(|p| p.user_id.clone()).collect();
        ids.push(caller.user_id.clone());
        let members = self.store.group_members_by_id(group_id, &ids).await?;
        if let Some(missing) = patches.iter().find(|p| !members.iter().any(|m| m.user_id == p.user_id)) {
            return Err(not_in_group(&missing.user_id, group_id));
        }
        if caller.is_admin {
            return Ok(());
        }
        let op = members
            .iter()
            .find(|m| m.user_id == caller.user_id)
            .ok_or_else(|| ApiError::no_permission(format!("{} is not in group {group_id}", caller.user_id)))?;
        for p in patches {
            let Some(target) = members.iter().find(|m| m.user_id == p.user_id) else { continue };
            let own = target.user_id == op.user_id;
            let allowed = match op.role_level {
                role_level::OWNER => !own || p.role_level.is_none(),
                role_level::ADMIN => {
                    if own {
                        p.role_level.is_none_or(|r| r <= op.role_level)
                    } else {
                        target.role_level == role_level::ORDINARY
                    }
                }
                _ => own && p.role_level.is_none_or(|r| r <= op.role_level),
            };
            if !allowed {
                return Err(ApiError::no_permission(format!(
                    "{} may not change {}'s information or role in group {group_id}",
                    caller.user_id, target.user_id
                )));
            }
        }
        Ok(())
    }
}
