//! Group notifications (content types 1501–1520, protocol §8.4): the `*Tips` payloads and who gets them.
//!
//! As upstream sends them with its default configuration (`notification.yml`, reliability level 1):
//! - changes of a group go to its `n_<groupID>` conversation (session type 3) and reach every member, plus the
//!   users a change removes (who quit, were kicked, or whose group was dismissed), so they learn it too;
//! - join applications and their answers (1503, 1505, 1506) go to each owner and admin, and to the applicant,
//!   one by one (session type 1), with one `uuid` the SDK deduplicates on;
//! - none is stored: they are pushed with seq 0 to whoever is online, which the SDK acts on at once. A device
//!   that was offline catches up by the version sync it runs on every connect, which the version logs make
//!   exact; so a notification costs no write, however large the group.
//!
//! Every payload that changes the member list carries the list's version after the change
//! (`groupMemberVersion`/`groupMemberVersionID`): an SDK one version behind applies the change from the
//! notification, one further behind asks for the changes (protocol §6.5).

use super::super::{App, Caller, Delivery, Notification, NotifyOptions, notify::notification_msg};
use crate::service::wire::{group_info, member_info};
use palaver_protocol::{
    constant::{app_manager_level, content_type, role_level, session_type},
    pb::sdkws,
};
use palaver_store::{Group, GroupMember, VersionHead};
use serde::Serialize;

/// `(groupMemberVersion, groupMemberVersionID)` of a head.
pub(super) fn version(head: &VersionHead) -> (u64, String) {
    (u64::try_from(head.version).unwrap_or(0), head.version_id.clone())
}

impl App {
    /// The operator of a change as notifications show it: its member row; for an app admin or a user outside
    /// the group, its profile (an app admin as an admin of the group, as upstream does).
    pub(super) async fn op_user_info(&self, group_id: &str, caller: &Caller) -> sdkws::GroupMemberFullInfo {
        let mut info = self.user_as_member(group_id, &caller.user_id).await;
        if caller.is_admin && info.role_level == 0 {
            info.role_level = role_level::ADMIN;
            info.app_manger_level = app_manager_level::ADMIN;
        }
        info
    }

    /// `user_id`'s member row in the group, or (not a member) what its profile says.
    pub(super) async fn user_as_member(&self, group_id: &str, user_id: &str) -> sdkws::GroupMemberFullInfo {
        if let Ok(Some(member)) = self.store.group_member(group_id, user_id).await {
            return member_info(member);
        }
        let user = self.store.users(&[user_id.to_string()]).await.ok().and_then(|mut u| u.pop());
        sdkws::GroupMemberFullInfo {
            group_id: group_id.to_string(),
            user_id: user_id.to_string(),
            nickname: user.as_ref().map(|u| u.nickname.clone()).unwrap_or_default(),
            face_url: user.map(|u| u.face_url).unwrap_or_default(),
            operator_user_id: user_id.to_string(),
            ..Default::default()
        }
    }

    /// The group as notifications carry it now (after the change), with its member count; an empty one if it
    /// vanished, which cannot happen (groups are never deleted) but must not panic an SDK either.
    pub(super) async fn group_tips_info(&self, group_id: &str) -> sdkws::GroupInfo {
        match self.group_view(group_id).await {
            Ok(view) => group_info(view),
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "group missing for its notification");
                sdkws::GroupInfo { group_id: group_id.to_string(), ..Default::default() }
            }
        }
    }

    /// Pushes a group-scoped notification from `op` to every member of the group (as the cache has them now,
    /// after the change's invalidation) and to `extra` (users the change removed).
    pub(super) async fn push_group_tips<T: Serialize>(
        &self,
        op: &str,
        group_id: &str,
        content_type: i32,
        tips: &T,
        extra: &[String],
        operation_id: &str,
    ) {
        let n = Notification {
            send_id: op,
            recv_id: group_id,
            session: session_type::READ_GROUP_CHAT,
            content_type,
            tips,
            delivery: Delivery::PushOnly,
        };
        let msg = match notification_msg(&n) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(error = %e, content_type, group = group_id, "group notification not built");
                return;
            }
        };
        let mut recipients = match self.group_snapshot(group_id).await {
            Ok(Some(group)) => group.member_ids.to_vec(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, content_type, group = group_id, "group notification without members");
                Vec::new()
            }
        };
        recipients.extend(extra.iter().cloned());
        let options = NotifyOptions::for_type(content_type);
        if let Err(e) = self.push_notification_and_tip(msg, &recipients, &options, operation_id).await {
            tracing::warn!(error = %e, content_type, group = group_id, "group tip not stored");
        }
    }

    /// 1501 to every member, and 1519 when the group starts with an announcement.
    pub(super) async fn notify_group_created(
        &self,
        view: &(Group, u32),
        members: &[GroupMember],
        operator: &Caller,
        head: &VersionHead,
        operation_id: &str,
    ) {
        let group_id = view.0.group_id.as_str();
        let group = group_info(view.clone());
        let op = self.op_user_info(group_id, operator).await;
        // As upstream: the members up to the operator (all of them when it is not one).
        let mut member_list = Vec::new();
        for m in members {
            member_list.push(member_info(m.clone()));
            if m.user_id == operator.user_id {
                break;
            }
        }
        let (group_member_version, group_member_version_id) = version(head);
        let tips = sdkws::GroupCreatedTips {
            group: Some(group.clone()),
            op_user: Some(op.clone()),
            member_list,
            operation_time: view.0.create_time,
            group_owner_user: members.first().cloned().map(member_info),
            group_member_version,
            group_member_version_id: group_member_version_id.clone(),
        };
        self.push_group_tips(&operator.user_id, group_id, content_type::GROUP_CREATED, &tips, &[], operation_id).await;
        if !view.0.notification.is_empty() {
            let tips = sdkws::GroupInfoSetAnnouncementTips {
                op_user: Some(op),
                group: Some(group),
                group_member_version,
                group_member_version_id,
            };
            self.push_group_tips(
                &operator.user_id,
                group_id,
                content_type::GROUP_INFO_SET_ANNOUNCEMENT,
                &tips,
                &[],
                operation_id,
            )
            .await;
        }
    }

    /// 1509: `inserted` joined, invited by `inviter` (the operator, or whoever's invitation an admin approved).
    pub(super) async fn notify_members_invited(
        &self,
        group_id: &str,
        op: &sdkws::GroupMemberFullInfo,
        inviter: &sdkws::GroupMemberFullInfo,
        inserted: &[String],
        head: &VersionHead,
        operation_id: &str,
    ) {
        let invited = match self.store.group_members_by_id(group_id, inserted).await {
            Ok(members) => members.into_iter().map(member_info).collect(),
            Err(e) => {
                tracing::warn!(error = %e, group = group_id, "invited members not read for the notification");
                return;
            }
        };
        let (group_member_version, group_member_version_id) = version(head);
        let tips = sdkws::MemberInvitedTips {
            group: Some(self.group_tips_info(group_id).await),
            op_user: Some(op.clone()),
            invited_user_list: invited,
            operation_time: super::now_ms(),
            group_member_version,
            group_member_version_id,
            inviter_user: Some(inviter.clone()),
        };
        self.push_group_tips(&op.user_id, group_id, content_type::MEMBER_INVITED, &tips, &[], operation_id).await;
    }

    /// 1510: `user_id` joined by itself (a direct join, or its application was accepted).
    pub(super) async fn notify_member_entered(
        &self,
        op_user_id: &str,
        group_id: &str,
        user_id: &str,
        head: &VersionHead,
        operation_id: &str,
    ) {
        let (group_member_version, group_member_version_id) = version(head);
        let tips = sdkws::MemberEnterTips {
            group: Some(self.group_tips_info(group_id).await),
            entrant_user: Some(self.user_as_member(group_id, user_id).await),
            operation_time: super::now_ms(),
            group_member_version,
            group_member_version_id,
        };
        self.push_group_tips(op_user_id, group_id, content_type::MEMBER_ENTER, &tips, &[], operation_id).await;
    }
}
