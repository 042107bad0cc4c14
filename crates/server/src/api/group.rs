//! `/group/*`.

use super::Ctx;
use crate::{
    error::{ApiError, ApiResult},
    service::App,
};
use palaver_protocol::pb::{group as pb, sdkws};
use palaver_store::Group;
use std::sync::Arc;

pub(crate) fn group_info(g: Group, member_count: u32) -> sdkws::GroupInfo {
    sdkws::GroupInfo {
        group_id: g.group_id,
        group_name: g.group_name,
        notification: g.notification,
        introduction: g.introduction,
        face_url: g.face_url,
        owner_user_id: g.owner_user_id,
        create_time: g.create_time,
        member_count,
        ex: g.ex,
        status: g.status,
        creator_user_id: g.creator_user_id,
        group_type: g.group_type,
        need_verification: g.need_verification,
        look_member_info: g.look_member_info,
        apply_member_friend: g.apply_member_friend,
        ..Default::default()
    }
}

/// # POST /group/create_group
pub(super) async fn create_group(app: Arc<App>, ctx: Ctx, req: pb::CreateGroupReq) -> ApiResult<pb::CreateGroupResp> {
    let info = req.group_info.ok_or_else(|| ApiError::args("groupInfo is missing"))?;
    let owner = if req.owner_user_id.is_empty() { ctx.caller.user_id.clone() } else { req.owner_user_id };
    if !ctx.caller.is_admin && owner != ctx.caller.user_id {
        return Err(ApiError::no_permission("only an admin may create a group owned by someone else"));
    }
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
    let count = 1 + req.admin_user_ids.len() + req.member_user_ids.len();
    let group = app.create_group(group, &owner, &req.admin_user_ids, &req.member_user_ids, &ctx.caller.user_id).await?;
    Ok(pb::CreateGroupResp { group_info: Some(group_info(group, count as u32)) })
}

/// # POST /group/get_groups_info
pub(super) async fn get_groups_info(
    app: Arc<App>,
    _ctx: Ctx,
    req: pb::GetGroupsInfoReq,
) -> ApiResult<pb::GetGroupsInfoResp> {
    if req.group_ids.len() > 1000 {
        return Err(ApiError::args("at most 1000 groupIDs"));
    }
    let groups = app.groups_info(&req.group_ids).await?;
    Ok(pb::GetGroupsInfoResp { group_infos: groups.into_iter().map(|(g, n)| group_info(g, n)).collect() })
}
