//! `/jssdk/*`: aggregate conversation queries for OpenIM's pure-JS SDK, which calls them in protobuf mode
//! (`Content-Type: application/x-protobuf`; the envelope's `data` is then the base64 of the protobuf response).

use super::Ctx;
use crate::{
    error::ApiResult,
    service::{App, ConversationView, wire},
};
use palaver_protocol::pb::jssdk as pb;
use std::sync::Arc;

fn views(views: Vec<ConversationView>) -> Vec<pb::ConversationMsg> {
    views
        .into_iter()
        .map(|v| pb::ConversationMsg {
            max_seq: v.row.max_seq,
            read_seq: v.row.has_read_seq.min(v.row.max_seq),
            conversation: Some(wire::conversation(v.row)),
            last_msg: v.last_msg,
            user: v.peer.map(wire::user_info),
            friend: v.friend.map(wire::friend_info_only),
            group: v.group.map(wire::group_info),
        })
        .collect()
}

/// # POST /jssdk/get_active_conversations
pub(super) async fn get_active_conversations(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetActiveConversationsReq,
) -> ApiResult<pb::GetActiveConversationsResp> {
    // Upstream answers for the caller whatever ownerUserID says; an admin may ask for anyone.
    let owner =
        if ctx.caller.is_admin && !req.owner_user_id.is_empty() { req.owner_user_id } else { ctx.caller.user_id };
    let (list, unread_count) = app.active_conversations(&owner, req.count).await?;
    Ok(pb::GetActiveConversationsResp { unread_count, conversations: views(list) })
}

/// # POST /jssdk/get_conversations
pub(super) async fn get_conversations(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetConversationsReq,
) -> ApiResult<pb::GetConversationsResp> {
    let owner =
        if ctx.caller.is_admin && !req.owner_user_id.is_empty() { req.owner_user_id } else { ctx.caller.user_id };
    let (list, unread_count) = app.conversations_view(&owner, &req.conversation_ids).await?;
    Ok(pb::GetConversationsResp { unread_count, conversations: views(list) })
}
