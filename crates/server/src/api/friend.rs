//! `/friend/*`: friends, requests, blacklist.

use super::{
    Ctx,
    convert::{full_ids, page},
};
use crate::{
    error::{ApiError, ApiResult},
    service::{
        App, MAX_FRIEND_PAGE,
        wire::{black_info, friend_info},
    },
};
use palaver_protocol::pb::relation as pb;
use palaver_store::FriendPatch;
use std::sync::Arc;

/// # POST /friend/add_friend
pub(super) async fn add_friend(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::ApplyToAddFriendReq,
) -> ApiResult<pb::ApplyToAddFriendResp> {
    ctx.caller.check_access(&req.from_user_id)?;
    app.apply_friend(&req.from_user_id, &req.to_user_id, &req.req_msg, &req.ex, &ctx.operation_id).await?;
    Ok(pb::ApplyToAddFriendResp::default())
}

/// # POST /friend/add_friend_response
pub(super) async fn add_friend_response(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::RespondFriendApplyReq,
) -> ApiResult<pb::RespondFriendApplyResp> {
    ctx.caller.check_access(&req.to_user_id)?;
    app.answer_friend(&req.from_user_id, &req.to_user_id, req.handle_result, &req.handle_msg, &ctx.operation_id)
        .await?;
    Ok(pb::RespondFriendApplyResp::default())
}

/// Body of `/friend/import_friend` (admin).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct ImportFriendReq {
    #[serde(rename = "ownerUserID")]
    owner_user_id: String,
    #[serde(rename = "friendUserIDs", deserialize_with = "palaver_protocol::gojson::null_default")]
    friend_user_ids: Vec<String>,
}

/// # POST /friend/import_friend (admin): befriend directly, without a request.
pub(super) async fn import_friend(app: Arc<App>, ctx: Ctx, req: ImportFriendReq) -> ApiResult<serde_json::Value> {
    ctx.caller.require_admin()?;
    app.import_friends(&req.owner_user_id, &req.friend_user_ids, &ctx.caller.user_id, &ctx.operation_id).await?;
    Ok(serde_json::json!({}))
}

/// # POST /friend/delete_friend
pub(super) async fn delete_friend(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::DeleteFriendReq,
) -> ApiResult<pb::DeleteFriendResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    app.delete_friend(&req.owner_user_id, &req.friend_user_id, &ctx.operation_id).await?;
    Ok(pb::DeleteFriendResp::default())
}

/// # POST /friend/update_friends: pin, remark and `ex` of several friends (`null` leaves a field as it is).
pub(super) async fn update_friends(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::UpdateFriendsReq,
) -> ApiResult<pb::UpdateFriendsResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    let patch = FriendPatch {
        remark: req.remark.map(|v| v.value),
        is_pinned: req.is_pinned.map(|v| v.value),
        ex: req.ex.map(|v| v.value),
    };
    app.update_friends(&req.owner_user_id, &req.friend_user_ids, &patch, &ctx.operation_id).await?;
    Ok(pb::UpdateFriendsResp::default())
}

/// # POST /friend/set_friend_remark
pub(super) async fn set_friend_remark(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SetFriendRemarkReq,
) -> ApiResult<pb::SetFriendRemarkResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    app.set_friend_remark(&req.owner_user_id, &req.friend_user_id, &req.remark, &ctx.operation_id).await?;
    Ok(pb::SetFriendRemarkResp::default())
}

/// # POST /friend/get_friend_id
pub(super) async fn get_friend_id(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetFriendIDsReq,
) -> ApiResult<pb::GetFriendIDsResp> {
    ctx.caller.check_access(&req.user_id)?;
    Ok(pb::GetFriendIDsResp { friend_ids: app.friend_ids(&req.user_id).await?.1 })
}

/// # POST /friend/get_designated_friend_apply: the requests between two users, both ways; the caller must
/// be one of them.
pub(super) async fn get_designated_friend_apply(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetDesignatedFriendsApplyReq,
) -> ApiResult<pb::GetDesignatedFriendsApplyResp> {
    if !ctx.caller.is_admin && ctx.caller.user_id != req.from_user_id && ctx.caller.user_id != req.to_user_id {
        return Err(ApiError::no_permission("you may only read your own friend requests"));
    }
    Ok(pb::GetDesignatedFriendsApplyResp {
        friend_requests: app.friend_requests_between(&req.from_user_id, &req.to_user_id).await?,
    })
}

/// # POST /friend/get_specified_blacks: which of the named users the owner has blocked.
pub(super) async fn get_specified_blacks(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetSpecifiedBlacksReq,
) -> ApiResult<pb::GetSpecifiedBlacksResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    let blacks = app.specified_blacks(&req.owner_user_id, &req.user_id_list).await?;
    Ok(pb::GetSpecifiedBlacksResp { total: blacks.len() as i32, blacks: blacks.into_iter().map(black_info).collect() })
}

/// # POST /friend/get_friend_list
pub(super) async fn get_friend_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetPaginationFriendsReq,
) -> ApiResult<pb::GetPaginationFriendsResp> {
    ctx.caller.check_access(&req.user_id)?;
    let (friends, total) = app.friends_page(&req.user_id, page(req.pagination.as_ref(), MAX_FRIEND_PAGE)?).await?;
    Ok(pb::GetPaginationFriendsResp {
        friends_info: friends.into_iter().map(friend_info).collect(),
        total: total as i32,
    })
}

/// # POST /friend/get_designated_friends
pub(super) async fn get_designated_friends(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetDesignatedFriendsReq,
) -> ApiResult<pb::GetDesignatedFriendsResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    let friends = app.designated_friends(&req.owner_user_id, &req.friend_user_ids).await?;
    Ok(pb::GetDesignatedFriendsResp { friends_info: friends.into_iter().map(friend_info).collect() })
}

/// # POST /friend/get_full_friend_user_ids
pub(super) async fn get_full_friend_user_ids(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetFullFriendUserIDsReq,
) -> ApiResult<pb::GetFullFriendUserIDsResp> {
    ctx.caller.check_access(&req.user_id)?;
    let (head, ids) = app.friend_ids(&req.user_id).await?;
    let f = full_ids(head, ids, req.id_hash);
    Ok(pb::GetFullFriendUserIDsResp { version: f.version, version_id: f.version_id, equal: f.equal, user_ids: f.ids })
}

/// # POST /friend/get_incremental_friends
pub(super) async fn get_incremental_friends(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetIncrementalFriendsReq,
) -> ApiResult<pb::GetIncrementalFriendsResp> {
    ctx.caller.check_access(&req.user_id)?;
    let s = app.sync_friends(&req.user_id, &req.version_id, req.version).await?;
    Ok(pb::GetIncrementalFriendsResp {
        version: s.head.version as u64,
        version_id: s.head.version_id,
        full: s.full,
        delete: s.delete,
        insert: s.insert.into_iter().map(friend_info).collect(),
        update: s.update.into_iter().map(friend_info).collect(),
        sort_version: 0,
    })
}

/// # POST /friend/is_friend
pub(super) async fn is_friend(app: Arc<App>, ctx: Ctx, req: pb::IsFriendReq) -> ApiResult<pb::IsFriendResp> {
    if !ctx.caller.is_admin && ctx.caller.user_id != req.user_id1 && ctx.caller.user_id != req.user_id2 {
        return Err(ApiError::no_permission("you may only ask about your own friendships"));
    }
    let (in_user1_friends, in_user2_friends) = app.is_friend(&req.user_id1, &req.user_id2).await?;
    Ok(pb::IsFriendResp { in_user1_friends, in_user2_friends })
}

/// # POST /friend/get_friend_apply_list: requests others sent to the user.
pub(super) async fn get_friend_apply_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetPaginationFriendsApplyToReq,
) -> ApiResult<pb::GetPaginationFriendsApplyToResp> {
    ctx.caller.check_access(&req.user_id)?;
    let page = page(req.pagination.as_ref(), MAX_FRIEND_PAGE)?;
    let (friend_requests, total) = app.friend_requests(&req.user_id, true, &req.handle_results, page).await?;
    Ok(pb::GetPaginationFriendsApplyToResp { friend_requests, total: total as i32 })
}

/// # POST /friend/get_self_friend_apply_list: requests the user sent.
pub(super) async fn get_self_friend_apply_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetPaginationFriendsApplyFromReq,
) -> ApiResult<pb::GetPaginationFriendsApplyFromResp> {
    ctx.caller.check_access(&req.user_id)?;
    let page = page(req.pagination.as_ref(), MAX_FRIEND_PAGE)?;
    let (friend_requests, total) = app.friend_requests(&req.user_id, false, &req.handle_results, page).await?;
    Ok(pb::GetPaginationFriendsApplyFromResp { friend_requests, total: total as i32 })
}

/// # POST /friend/get_self_unhandled_apply_count
pub(super) async fn get_self_unhandled_apply_count(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetSelfUnhandledApplyCountReq,
) -> ApiResult<pb::GetSelfUnhandledApplyCountResp> {
    ctx.caller.check_access(&req.user_id)?;
    Ok(pb::GetSelfUnhandledApplyCountResp { count: app.unhandled_friend_requests(&req.user_id, req.time).await? })
}

/// # POST /friend/add_black
pub(super) async fn add_black(app: Arc<App>, ctx: Ctx, req: pb::AddBlackReq) -> ApiResult<pb::AddBlackResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    let device = Some(ctx.caller.token_hash.clone());
    app.add_black(&req.owner_user_id, &req.black_user_id, &req.ex, &ctx.caller.user_id, device, &ctx.operation_id)
        .await?;
    Ok(pb::AddBlackResp::default())
}

/// # POST /friend/remove_black
pub(super) async fn remove_black(app: Arc<App>, ctx: Ctx, req: pb::RemoveBlackReq) -> ApiResult<pb::RemoveBlackResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    let device = Some(ctx.caller.token_hash.clone());
    app.remove_black(&req.owner_user_id, &req.black_user_id, device, &ctx.operation_id).await?;
    Ok(pb::RemoveBlackResp::default())
}

/// # POST /friend/get_black_list
pub(super) async fn get_black_list(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetPaginationBlacksReq,
) -> ApiResult<pb::GetPaginationBlacksResp> {
    ctx.caller.check_access(&req.user_id)?;
    let (blacks, total) = app.blacks_page(&req.user_id, page(req.pagination.as_ref(), MAX_FRIEND_PAGE)?).await?;
    Ok(pb::GetPaginationBlacksResp { blacks: blacks.into_iter().map(black_info).collect(), total: total as i32 })
}
