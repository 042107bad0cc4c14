//! `/conversation/*`.

use super::{
    Ctx,
    convert::{full_ids, page},
};
use crate::{
    error::{ApiError, ApiResult},
    service::{App, wire::conversation},
};
use palaver_protocol::pb::conversation as pb;
use palaver_store::ConversationPatch;
use std::sync::Arc;

/// # POST /conversation/get_owner_conversation
pub(super) async fn get_owner_conversation(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetOwnerConversationReq,
) -> ApiResult<pb::GetOwnerConversationResp> {
    ctx.caller.check_access(&req.user_id)?;
    let page = page(req.pagination.as_ref(), crate::service::MAX_CONVERSATION_PAGE)?;
    let (rows, total) = app.conversations_page(&req.user_id, page).await?;
    Ok(pb::GetOwnerConversationResp { total, conversations: rows.into_iter().map(conversation).collect() })
}

/// # POST /conversation/get_all_conversations
pub(super) async fn get_all_conversations(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetAllConversationsReq,
) -> ApiResult<pb::GetAllConversationsResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    let rows = app.all_conversations(&req.owner_user_id).await?;
    Ok(pb::GetAllConversationsResp { conversations: rows.into_iter().map(conversation).collect() })
}

/// # POST /conversation/get_conversations
pub(super) async fn get_conversations(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetConversationsReq,
) -> ApiResult<pb::GetConversationsResp> {
    ctx.caller.check_access(&req.owner_user_id)?;
    let rows = app.conversations_by_id(&req.owner_user_id, &req.conversation_ids).await?;
    Ok(pb::GetConversationsResp { conversations: rows.into_iter().map(conversation).collect() })
}

/// # POST /conversation/get_incremental_conversations
pub(super) async fn get_incremental_conversations(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetIncrementalConversationReq,
) -> ApiResult<pb::GetIncrementalConversationResp> {
    ctx.caller.check_access(&req.user_id)?;
    let s = app.sync_conversations(&req.user_id, &req.version_id, req.version).await?;
    Ok(pb::GetIncrementalConversationResp {
        version: s.head.version as u64,
        version_id: s.head.version_id,
        full: s.full,
        delete: s.delete,
        insert: s.insert.into_iter().map(conversation).collect(),
        update: s.update.into_iter().map(conversation).collect(),
    })
}

/// # POST /conversation/get_full_conversation_ids
pub(super) async fn get_full_conversation_ids(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetFullOwnerConversationIDsReq,
) -> ApiResult<pb::GetFullOwnerConversationIDsResp> {
    ctx.caller.check_access(&req.user_id)?;
    let (head, ids) = app.conversation_ids(&req.user_id).await?;
    let f = full_ids(head, ids, req.id_hash);
    Ok(pb::GetFullOwnerConversationIDsResp {
        version: f.version,
        version_id: f.version_id,
        equal: f.equal,
        conversation_ids: f.ids,
    })
}

/// # POST /conversation/get_not_notify_conversation_ids
pub(super) async fn get_not_notify_conversation_ids(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetNotNotifyConversationIDsReq,
) -> ApiResult<pb::GetNotNotifyConversationIDsResp> {
    ctx.caller.check_access(&req.user_id)?;
    Ok(pb::GetNotNotifyConversationIDsResp { conversation_ids: app.not_notify_conversation_ids(&req.user_id).await? })
}

/// # POST /conversation/set_conversations
pub(super) async fn set_conversations(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SetConversationsReq,
) -> ApiResult<pb::SetConversationsResp> {
    for user in &req.user_ids {
        ctx.caller.check_access(user)?;
    }
    let c = req.conversation.ok_or_else(|| ApiError::args("conversation is required"))?;
    let patch = ConversationPatch {
        conversation_id: c.conversation_id,
        conversation_type: c.conversation_type,
        user_id: c.user_id,
        group_id: c.group_id,
        recv_msg_opt: c.recv_msg_opt.map(|v| v.value),
        is_pinned: c.is_pinned.map(|v| v.value),
        is_private_chat: c.is_private_chat.map(|v| v.value),
        burn_duration: c.burn_duration.map(|v| v.value),
        group_at_type: c.group_at_type.map(|v| v.value),
        attached_info: c.attached_info.map(|v| v.value),
        ex: c.ex.map(|v| v.value),
        min_seq: None,
    };
    app.set_conversations(&req.user_ids, &patch, &ctx.operation_id).await?;
    Ok(pb::SetConversationsResp::default())
}

/// # POST /conversation/get_pinned_conversation_ids
pub(super) async fn get_pinned_conversation_ids(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetPinnedConversationIDsReq,
) -> ApiResult<pb::GetPinnedConversationIDsResp> {
    ctx.caller.check_access(&req.user_id)?;
    Ok(pb::GetPinnedConversationIDsResp { conversation_ids: app.pinned_conversation_ids(&req.user_id).await? })
}
