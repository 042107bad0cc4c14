//! `/msg/*`: admin sends, seq queries, read cursors.

use super::Ctx;
use crate::{
    error::{ApiError, ApiResult},
    service::{App, DeleteSync, random_hex},
};
use palaver_protocol::pb::{msg as pb, sdkws};
use serde::Deserialize;
use std::sync::Arc;

/// Body of `/msg/send_msg` (upstream `apistruct.SendMsgReq`): not a protobuf message, and `content` is a JSON
/// object that becomes the message's content bytes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SendMsgReq {
    #[serde(rename = "sendID")]
    send_id: String,
    #[serde(rename = "recvID")]
    recv_id: String,
    #[serde(rename = "groupID")]
    group_id: String,
    #[serde(rename = "senderNickname")]
    sender_nickname: String,
    #[serde(rename = "senderFaceURL")]
    sender_face_url: String,
    #[serde(rename = "senderPlatformID")]
    sender_platform_id: i32,
    content: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "contentType")]
    content_type: i32,
    #[serde(rename = "sessionType")]
    session_type: i32,
    #[serde(rename = "sendTime")]
    send_time: i64,
    #[serde(rename = "offlinePushInfo")]
    offline_push_info: Option<sdkws::OfflinePushInfo>,
    ex: String,
}

/// # POST /msg/send_msg (admin): send a message on behalf of a user, or as a system notification
/// (`sessionType` 4).
pub(super) async fn send_msg(app: Arc<App>, ctx: Ctx, req: SendMsgReq) -> ApiResult<pb::SendMsgResp> {
    ctx.caller.require_admin()?;
    let content = req.content.ok_or_else(|| ApiError::args("content is required"))?;
    if req.send_id.is_empty() {
        return Err(ApiError::args("sendID is required"));
    }
    let msg = sdkws::MsgData {
        send_id: req.send_id,
        recv_id: req.recv_id,
        group_id: req.group_id,
        client_msg_id: random_hex(16),
        sender_nickname: req.sender_nickname,
        sender_face_url: req.sender_face_url,
        sender_platform_id: req.sender_platform_id,
        content: serde_json::to_vec(&content).map_err(ApiError::internal)?,
        content_type: req.content_type,
        session_type: req.session_type,
        send_time: req.send_time,
        offline_push_info: req.offline_push_info,
        ex: req.ex,
        ..Default::default()
    };
    let stored = app.send_message(&ctx.caller, msg, &ctx.operation_id).await?;
    Ok(pb::SendMsgResp {
        server_msg_id: stored.server_msg_id,
        client_msg_id: stored.client_msg_id,
        send_time: stored.send_time,
        modify: None,
    })
}

/// # POST /msg/newest_seq
pub(super) async fn newest_seq(app: Arc<App>, ctx: Ctx, req: sdkws::GetMaxSeqReq) -> ApiResult<sdkws::GetMaxSeqResp> {
    ctx.caller.check_access(&req.user_id)?;
    app.newest_seqs(&req.user_id).await
}

/// # POST /msg/pull_msg_by_seq
pub(super) async fn pull_msg_by_seq(
    app: Arc<App>,
    ctx: Ctx,
    req: sdkws::PullMessageBySeqsReq,
) -> ApiResult<sdkws::PullMessageBySeqsResp> {
    ctx.caller.check_access(&req.user_id)?;
    app.pull_by_range(&req.user_id, &req).await
}

/// # POST /msg/get_conversations_has_read_and_max_seq
pub(super) async fn get_conversations_has_read_and_max_seq(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetConversationsHasReadAndMaxSeqReq,
) -> ApiResult<pb::GetConversationsHasReadAndMaxSeqResp> {
    ctx.caller.check_access(&req.user_id)?;
    app.has_read_and_max_seqs(&req.user_id, &req).await
}

/// # POST /msg/mark_conversation_as_read: read up to `hasReadSeq`.
pub(super) async fn mark_conversation_as_read(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::MarkConversationAsReadReq,
) -> ApiResult<pb::MarkConversationAsReadResp> {
    ctx.caller.check_access(&req.user_id)?;
    let seq = req.has_read_seq.max(req.seqs.iter().copied().max().unwrap_or(0));
    app.mark_read(&req.user_id, &req.conversation_id, seq, &req.seqs, &ctx.operation_id).await?;
    Ok(pb::MarkConversationAsReadResp::default())
}

/// # POST /msg/mark_msgs_as_read: read the given seqs (the cursor moves to the highest).
pub(super) async fn mark_msgs_as_read(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::MarkMsgsAsReadReq,
) -> ApiResult<pb::MarkMsgsAsReadResp> {
    ctx.caller.check_access(&req.user_id)?;
    let seq = req.seqs.iter().copied().max().ok_or_else(|| ApiError::args("seqs is empty"))?;
    app.mark_read(&req.user_id, &req.conversation_id, seq, &req.seqs, &ctx.operation_id).await?;
    Ok(pb::MarkMsgsAsReadResp::default())
}

/// # POST /msg/set_conversation_has_read_seq
pub(super) async fn set_conversation_has_read_seq(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SetConversationHasReadSeqReq,
) -> ApiResult<pb::SetConversationHasReadSeqResp> {
    ctx.caller.check_access(&req.user_id)?;
    app.mark_read(&req.user_id, &req.conversation_id, req.has_read_seq, &[], &ctx.operation_id).await?;
    Ok(pb::SetConversationHasReadSeqResp::default())
}

fn delete_sync(opt: Option<&pb::DeleteSyncOpt>) -> DeleteSync {
    opt.map_or_else(DeleteSync::default, |o| DeleteSync { self_devices: o.is_sync_self, everyone: o.is_sync_other })
}

/// # POST /msg/revoke_msg
pub(super) async fn revoke_msg(app: Arc<App>, ctx: Ctx, req: pb::RevokeMsgReq) -> ApiResult<pb::RevokeMsgResp> {
    if req.user_id.is_empty() {
        return Err(ApiError::args("userID is required"));
    }
    ctx.caller.check_access(&req.user_id)?;
    app.revoke_message(&ctx.caller, &req.user_id, &req.conversation_id, req.seq, &ctx.operation_id).await?;
    Ok(pb::RevokeMsgResp::default())
}

/// # POST /msg/delete_msgs: for the user only, unless `deleteSyncOpt.IsSyncOther`.
pub(super) async fn delete_msgs(app: Arc<App>, ctx: Ctx, req: pb::DeleteMsgsReq) -> ApiResult<pb::DeleteMsgsResp> {
    ctx.caller.check_access(&req.user_id)?;
    let sync = delete_sync(req.delete_sync_opt.as_ref());
    app.delete_messages(&ctx.caller, &req.user_id, &req.conversation_id, &req.seqs, sync, &ctx.operation_id).await?;
    Ok(pb::DeleteMsgsResp::default())
}

/// # POST /msg/clear_conversation_msg
pub(super) async fn clear_conversation_msg(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::ClearConversationsMsgReq,
) -> ApiResult<pb::ClearConversationsMsgResp> {
    ctx.caller.check_access(&req.user_id)?;
    let sync = delete_sync(req.delete_sync_opt.as_ref());
    app.clear_conversations(&ctx.caller, &req.user_id, Some(&req.conversation_ids), sync, &ctx.operation_id).await?;
    Ok(pb::ClearConversationsMsgResp::default())
}

/// # POST /msg/user_clear_all_msg: every conversation of the user.
pub(super) async fn user_clear_all_msg(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::UserClearAllMsgReq,
) -> ApiResult<pb::UserClearAllMsgResp> {
    ctx.caller.check_access(&req.user_id)?;
    let sync = delete_sync(req.delete_sync_opt.as_ref());
    app.clear_conversations(&ctx.caller, &req.user_id, None, sync, &ctx.operation_id).await?;
    Ok(pb::UserClearAllMsgResp::default())
}

/// # POST /msg/get_server_time
pub(super) async fn get_server_time(
    _app: Arc<App>,
    _ctx: Ctx,
    _req: pb::GetServerTimeReq,
) -> ApiResult<pb::GetServerTimeResp> {
    Ok(pb::GetServerTimeResp { server_time: crate::service::now_ms() })
}
