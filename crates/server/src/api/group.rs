//! `/group/*`.

use super::Ctx;
use super::convert::{full_ids, page};
use crate::{
    error::{ApiError, ApiResult},
    service::{
        App, GroupRequestView, JoinGroup, MAX_APPLICATION_PAGE, MAX_GROUP_PAGE, MAX_MEMBER_PAGE, MemberChange,
        wire::{group_info, group_request, member_info},
    },
};
use palaver_protocol::pb::{group as pb, sdkws};
use palaver_store::{Group, GroupPatch, MemberPatch};
use std::sync::Arc;

/// # POST /group/create_group
pub(super) async fn create_group(app: Arc<App>, ctx: Ctx, req: pb::CreateGroupReq) -> ApiResult<pb::CreateGroupResp> {
    let info = req.group_info.ok_or_else(|| ApiError::args("groupInfo is missing"))?;
    let group = Group {
        group_id: info.group_id,
        group_name: info.group_name,
        notification: info.notification,
        introduction: info.introduction,
        face_url: info.face_url,
        ex: info.ex,
        group_type: info.group_type,
        need_verification: info.need_verification,
        look_member_info: info.look_member_info,
        apply_member_friend: info.apply_member_friend,
        ..Group::default()
    };
    let view = app
        .create_group(
            group,
            &req.owner_user_id,
            &req.admin_user_ids,
            &req.member_user_ids,
            &ctx.caller,
            &ctx.operation_id,
        )
        .await?;
    Ok(pb::CreateGroupResp { group_info: Some(group_info(view)) })
}

/// # POST /group/get_groups_info
pub(super) async fn get_groups_info(
    app: Arc<App>,
    _ctx: Ctx,
    req: pb::GetGroupsInfoReq,
) -> ApiResult<pb::GetGroupsInfoResp> {
    let groups = app.groups_info(&req.group_ids).await?;
    Ok(pb::GetGroupsInfoResp { group_infos: groups.into_iter().map(group_info).collect() })
}

/// # POST /group/invite_user_to_group
pub(super) async fn invite_user_to_group(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::InviteUserToGroupReq,
) -> ApiResult<pb::InviteUserToGroupResp> {
    app.invite_to_group(&req.group_id, &ctx.caller, &req.invited_user_ids, &req.reason, &ctx.operation_id).await?;
    Ok(pb::InviteUserToGroupResp::default())
}

/// # POST /group/get_joined_group_list
pub(super) async fn get_joined_group_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetJoinedGroupListReq,
) -> ApiResult<pb::GetJoinedGroupListResp> {
    ctx.caller.check_access(&req.from_user_id)?;
    let (groups, total) = app.joined_groups(&req.from_user_id, page(req.pagination.as_ref(), MAX_GROUP_PAGE)?).await?;
    Ok(pb::GetJoinedGroupListResp { total: total as u32, groups: groups.into_iter().map(group_info).collect() })
}

/// # POST /group/get_full_join_group_ids
pub(super) async fn get_full_join_group_ids(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetFullJoinGroupIDsReq,
) -> ApiResult<pb::GetFullJoinGroupIDsResp> {
    ctx.caller.check_access(&req.user_id)?;
    let (head, ids) = app.joined_group_ids(&req.user_id).await?;
    let f = full_ids(head, ids, req.id_hash);
    Ok(pb::GetFullJoinGroupIDsResp { version: f.version, version_id: f.version_id, equal: f.equal, group_ids: f.ids })
}

/// # POST /group/get_incremental_join_groups
pub(super) async fn get_incremental_join_groups(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetIncrementalJoinGroupReq,
) -> ApiResult<pb::GetIncrementalJoinGroupResp> {
    ctx.caller.check_access(&req.user_id)?;
    let s = app.sync_joined_groups(&req.user_id, &req.version_id, req.version).await?;
    Ok(pb::GetIncrementalJoinGroupResp {
        version: s.head.version as u64,
        version_id: s.head.version_id,
        full: s.full,
        delete: s.delete,
        insert: s.insert.into_iter().map(group_info).collect(),
        update: s.update.into_iter().map(group_info).collect(),
        sort_version: 0,
    })
}

/// # POST /group/get_group_member_list
pub(super) async fn get_group_member_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetGroupMemberListReq,
) -> ApiResult<pb::GetGroupMemberListResp> {
    let page = page(req.pagination.as_ref(), MAX_MEMBER_PAGE)?;
    let (members, total) = app.group_members_page(&req.group_id, &ctx.caller, req.filter, &req.keyword, page).await?;
    Ok(pb::GetGroupMemberListResp { total: total as u32, members: members.into_iter().map(member_info).collect() })
}

/// # POST /group/get_group_members_info
pub(super) async fn get_group_members_info(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetGroupMembersInfoReq,
) -> ApiResult<pb::GetGroupMembersInfoResp> {
    let members = app.group_members_info(&req.group_id, &ctx.caller, &req.user_ids).await?;
    Ok(pb::GetGroupMembersInfoResp { members: members.into_iter().map(member_info).collect() })
}

/// # POST /group/get_full_group_member_user_ids
pub(super) async fn get_full_group_member_user_ids(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetFullGroupMemberUserIDsReq,
) -> ApiResult<pb::GetFullGroupMemberUserIDsResp> {
    let (head, ids) = app.group_member_ids(&req.group_id, &ctx.caller).await?;
    let f = full_ids(head, ids, req.id_hash);
    Ok(pb::GetFullGroupMemberUserIDsResp {
        version: f.version,
        version_id: f.version_id,
        equal: f.equal,
        user_ids: f.ids,
    })
}

/// # POST /group/get_incremental_group_members_batch
///
/// Answers every requested group: the SDK re-requests any group missing from `respList` in a tight loop
/// (protocol §6.6). A group the caller may not see (left, dismissed) is answered `full` with no data, which
/// makes the SDK re-list it and find it empty.
pub(super) async fn get_incremental_group_members_batch(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::BatchGetIncrementalGroupMemberReq,
) -> ApiResult<pb::BatchGetIncrementalGroupMemberResp> {
    let batch: Vec<(String, String, u64)> =
        req.req_list.into_iter().map(|one| (one.group_id, one.version_id, one.version)).collect();
    let answers = app.sync_group_members_batch(&ctx.caller, &req.user_id, &batch).await?;
    let mut resp = pb::BatchGetIncrementalGroupMemberResp::default();
    for ((group_id, _, _), answer) in batch.into_iter().zip(answers) {
        let answer = match answer {
            Ok((s, group)) => pb::GetIncrementalGroupMemberResp {
                version: s.head.version as u64,
                version_id: s.head.version_id,
                full: s.full,
                delete: s.delete,
                insert: s.insert.into_iter().map(member_info).collect(),
                update: s.update.into_iter().map(member_info).collect(),
                // Any non-zero value makes the SDK re-fetch the member ids (their order changed).
                sort_version: if s.sort_changed { s.head.version as u64 } else { 0 },
                group: group.map(group_info),
            },
            Err(e) => {
                tracing::debug!(group = %group_id, error = %e, "group members sync refused; answering full");
                pb::GetIncrementalGroupMemberResp { full: true, ..Default::default() }
            }
        };
        resp.resp_list.insert(group_id, answer);
    }
    Ok(resp)
}

/// # POST /group/set_group_info_ex
pub(super) async fn set_group_info_ex(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SetGroupInfoExReq,
) -> ApiResult<pb::SetGroupInfoExResp> {
    let patch = GroupPatch {
        group_name: req.group_name.map(|v| v.value),
        notification: req.notification.map(|v| v.value),
        introduction: req.introduction.map(|v| v.value),
        face_url: req.face_url.map(|v| v.value),
        ex: req.ex.map(|v| v.value),
        need_verification: req.need_verification.map(|v| v.value),
        look_member_info: req.look_member_info.map(|v| v.value),
        apply_member_friend: req.apply_member_friend.map(|v| v.value),
        ..GroupPatch::default()
    };
    app.set_group_info(&req.group_id, &ctx.caller, patch, &ctx.operation_id).await?;
    Ok(pb::SetGroupInfoExResp::default())
}

/// # POST /group/join_group
pub(super) async fn join_group(app: Arc<App>, ctx: Ctx, req: pb::JoinGroupReq) -> ApiResult<pb::JoinGroupResp> {
    let join = JoinGroup {
        group_id: &req.group_id,
        applicant: &req.inviter_user_id,
        req_msg: &req.req_message,
        source: req.join_source,
        ex: &req.ex,
    };
    app.join_group(&ctx.caller, &join, &ctx.operation_id).await?;
    Ok(pb::JoinGroupResp::default())
}

/// # POST /group/quit_group
pub(super) async fn quit_group(app: Arc<App>, ctx: Ctx, req: pb::QuitGroupReq) -> ApiResult<pb::QuitGroupResp> {
    app.quit_group(&req.group_id, &ctx.caller, &req.user_id, &ctx.operation_id).await?;
    Ok(pb::QuitGroupResp::default())
}

/// # POST /group/kick_group
pub(super) async fn kick_group(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::KickGroupMemberReq,
) -> ApiResult<pb::KickGroupMemberResp> {
    app.kick_members(&req.group_id, &ctx.caller, &req.kicked_user_ids, &req.reason, &ctx.operation_id).await?;
    Ok(pb::KickGroupMemberResp::default())
}

/// # POST /group/transfer_group
pub(super) async fn transfer_group(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::TransferGroupOwnerReq,
) -> ApiResult<pb::TransferGroupOwnerResp> {
    app.transfer_group(&req.group_id, &ctx.caller, &req.old_owner_user_id, &req.new_owner_user_id, &ctx.operation_id)
        .await?;
    Ok(pb::TransferGroupOwnerResp::default())
}

/// # POST /group/dismiss_group
pub(super) async fn dismiss_group(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::DismissGroupReq,
) -> ApiResult<pb::DismissGroupResp> {
    app.dismiss_group(&req.group_id, &ctx.caller, req.delete_member, &ctx.operation_id).await?;
    Ok(pb::DismissGroupResp::default())
}

/// # POST /group/mute_group_member
pub(super) async fn mute_group_member(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::MuteGroupMemberReq,
) -> ApiResult<pb::MuteGroupMemberResp> {
    app.mute_member(&req.group_id, &ctx.caller, &req.user_id, Some(req.muted_seconds), &ctx.operation_id).await?;
    Ok(pb::MuteGroupMemberResp::default())
}

/// # POST /group/cancel_mute_group_member
pub(super) async fn cancel_mute_group_member(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::CancelMuteGroupMemberReq,
) -> ApiResult<pb::CancelMuteGroupMemberResp> {
    app.mute_member(&req.group_id, &ctx.caller, &req.user_id, None, &ctx.operation_id).await?;
    Ok(pb::CancelMuteGroupMemberResp::default())
}

/// # POST /group/mute_group
pub(super) async fn mute_group(app: Arc<App>, ctx: Ctx, req: pb::MuteGroupReq) -> ApiResult<pb::MuteGroupResp> {
    app.mute_group(&req.group_id, &ctx.caller, true, &ctx.operation_id).await?;
    Ok(pb::MuteGroupResp::default())
}

/// # POST /group/cancel_mute_group
pub(super) async fn cancel_mute_group(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::CancelMuteGroupReq,
) -> ApiResult<pb::CancelMuteGroupResp> {
    app.mute_group(&req.group_id, &ctx.caller, false, &ctx.operation_id).await?;
    Ok(pb::CancelMuteGroupResp::default())
}

/// # POST /group/set_group_member_info
pub(super) async fn set_group_member_info(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SetGroupMemberInfoReq,
) -> ApiResult<pb::SetGroupMemberInfoResp> {
    let changes = req
        .members
        .into_iter()
        .map(|m| MemberChange {
            group_id: m.group_id,
            patch: MemberPatch {
                user_id: m.user_id,
                nickname: m.nickname.map(|v| v.value),
                face_url: m.face_url.map(|v| v.value),
                ex: m.ex.map(|v| v.value),
                role_level: m.role_level.map(|v| v.value),
                mute_end_time: None,
            },
        })
        .collect();
    app.set_member_info(&ctx.caller, changes, &ctx.operation_id).await?;
    Ok(pb::SetGroupMemberInfoResp::default())
}

fn requests_out(views: Vec<GroupRequestView>) -> Vec<sdkws::GroupRequest> {
    views.into_iter().map(|(r, user, group)| group_request(r, user, group_info(group))).collect()
}

/// # POST /group/get_recv_group_applicationList
pub(super) async fn get_recv_group_application_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetGroupApplicationListReq,
) -> ApiResult<pb::GetGroupApplicationListResp> {
    let page = page(req.pagination.as_ref(), MAX_APPLICATION_PAGE)?;
    let (views, total) =
        app.received_applications(&ctx.caller, &req.from_user_id, &req.group_ids, &req.handle_results, page).await?;
    Ok(pb::GetGroupApplicationListResp { total: total as u32, group_requests: requests_out(views) })
}

/// # POST /group/get_user_req_group_applicationList
pub(super) async fn get_user_req_group_application_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetUserReqApplicationListReq,
) -> ApiResult<pb::GetUserReqApplicationListResp> {
    let page = page(req.pagination.as_ref(), MAX_APPLICATION_PAGE)?;
    let (views, total) =
        app.sent_applications(&ctx.caller, &req.user_id, &req.group_ids, &req.handle_results, page).await?;
    Ok(pb::GetUserReqApplicationListResp { total: total as u32, group_requests: requests_out(views) })
}

/// # POST /group/get_group_application_unhandled_count
pub(super) async fn get_group_application_unhandled_count(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetGroupApplicationUnhandledCountReq,
) -> ApiResult<pb::GetGroupApplicationUnhandledCountResp> {
    let count = app.unhandled_applications(&ctx.caller, &req.user_id, req.time).await?;
    Ok(pb::GetGroupApplicationUnhandledCountResp { count })
}

/// # POST /group/group_application_response
pub(super) async fn group_application_response(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GroupApplicationResponseReq,
) -> ApiResult<pb::GroupApplicationResponseResp> {
    app.answer_application(
        &req.group_id,
        &ctx.caller,
        &req.from_user_id,
        &req.handled_msg,
        req.handle_result,
        &ctx.operation_id,
    )
    .await?;
    Ok(pb::GroupApplicationResponseResp::default())
}

/// # POST /group/get_specified_user_group_request_info
pub(super) async fn get_specified_user_group_request_info(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetSpecifiedUserGroupRequestInfoReq,
) -> ApiResult<pb::GetSpecifiedUserGroupRequestInfoResp> {
    let views = app.user_application(&ctx.caller, &req.group_id, &req.user_id).await?;
    Ok(pb::GetSpecifiedUserGroupRequestInfoResp { total: views.len() as u32, group_requests: requests_out(views) })
}
