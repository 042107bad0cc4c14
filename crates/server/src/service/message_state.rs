//! What happens to messages after they were sent: revoke (for everyone), delete (for one user, or for
//! everyone), clear a conversation's history (per user, or for everyone).
//!
//! Stored messages never change and never go away: seqs must stay contiguous, and a resend of a clientMsgID
//! must still find its original. A revoke or a delete is recorded beside the message, and pulls show it
//! (`apply_marks` in `msg.rs`); a clear moves the user's start (`minSeq`) past the conversation's end, so its
//! pulls start after it.
//!
//! Who may do what follows upstream (`internal/rpc/msg/revoke.go`, `delete.go`):
//! - revoke: the sender, its own message (within `revoke_time_limit_secs`, if set); in a group the owner, any
//!   message, and an admin, ordinary members' messages; an app admin, anything;
//! - delete or clear for oneself: any message of a conversation one has;
//! - delete or clear for everyone (`DeleteSyncOpt.IsSyncOther`): in a 1:1 chat, either side (a delete only
//!   of one's own messages); in a group, its owner and admins (upstream lets any member; Palaver does not let
//!   a member wipe everyone's history).

use super::{App, Caller, Delivery, Notification, now_ms};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::{
    constant::{content_type, role_level, session_type},
    conversation_id,
    errcode::ErrCode,
    pb::sdkws,
};
use palaver_store::{MessageRevoke, UserConversation};

/// Most seqs one delete may name.
const MAX_DELETE_SEQS: usize = 1000;
/// Most conversations one clear may name.
const MAX_CLEAR_CONVERSATIONS: usize = 1000;

/// Who else learns of a delete or a clear (`msg.DeleteSyncOpt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteSync {
    /// Tell the user's other devices (2102 / 1703 to itself).
    pub self_devices: bool,
    /// Delete or clear for everyone in the conversation, and tell them.
    pub everyone: bool,
}

impl App {
    /// `user_id`'s row of a regular (not `n_`) conversation; `RecordNotFound` if it has none.
    async fn own_conversation(&self, user_id: &str, conversation_id: &str) -> ApiResult<UserConversation> {
        if conversation_id.is_empty() {
            return Err(ApiError::args("conversationID is required"));
        }
        if conversation_id::is_notification(conversation_id) {
            return Err(ApiError::args("notification conversations cannot be changed"));
        }
        self.store.user_conversations_by_id(user_id, &[conversation_id.to_string()]).await?.pop().ok_or_else(|| {
            ApiError::new(ErrCode::RecordNotFound, format!("{user_id} has no conversation {conversation_id}"))
        })
    }

    /// The role level of `user_id` in `group_id` (0 if not a member).
    async fn role_in(&self, group_id: &str, user_id: &str) -> ApiResult<i32> {
        Ok(self.store.group_member(group_id, user_id).await?.map_or(0, |m| m.role_level))
    }

    /// `/msg/revoke_msg`: `user_id` (the caller, or anyone for an admin) revokes message `seq`. Everyone in the
    /// conversation is told with a stored 2101 (the SDKs fire `OnNewRecvMessageRevoked`), and pulls show the
    /// message revoked from then on.
    pub async fn revoke_message(
        &self,
        caller: &Caller,
        user_id: &str,
        conversation_id: &str,
        seq: i64,
        op: &str,
    ) -> ApiResult<()> {
        if seq <= 0 {
            return Err(ApiError::args("seq must be positive"));
        }
        let row = self.own_conversation(user_id, conversation_id).await?;
        if seq < row.min_seq || seq > row.visible_max_seq() {
            return Err(ApiError::new(ErrCode::RecordNotFound, format!("no message {seq} in {conversation_id}")));
        }
        let msg =
            self.store.messages_by_seqs(conversation_id, &[seq]).await?.pop().ok_or_else(|| {
                ApiError::new(ErrCode::RecordNotFound, format!("no message {seq} in {conversation_id}"))
            })?;
        let marks = self.store.message_marks(user_id, conversation_id, &[seq]).await?;
        if msg.content_type == content_type::MSG_REVOKE || !marks.revokes.is_empty() {
            return Err(ApiError::new(ErrCode::MsgAlreadyRevoke, "this message was already revoked"));
        }
        let user = self.require_user(user_id).await;
        let (nickname, app_level) =
            user.as_ref().map_or((String::new(), 0), |u| (u.nickname.clone(), u.app_manger_level));
        let own = msg.send_id == user_id;
        let role = if caller.is_admin {
            app_level
        } else {
            match msg.session_type {
                session_type::SINGLE_CHAT => {
                    if !own {
                        return Err(ApiError::no_permission("only the sender may revoke a message of a 1:1 chat"));
                    }
                    app_level
                }
                session_type::READ_GROUP_CHAT => {
                    let mine = self.role_in(&msg.group_id, user_id).await?;
                    if !own {
                        let sender = self.role_in(&msg.group_id, &msg.send_id).await?;
                        let allowed = mine == role_level::OWNER
                            || (mine == role_level::ADMIN
                                && sender != role_level::OWNER
                                && sender != role_level::ADMIN);
                        if !allowed {
                            return Err(ApiError::no_permission(
                                "only the group owner, or an admin for ordinary members, may revoke others' messages",
                            ));
                        }
                    }
                    mine
                }
                other => return Err(ApiError::args(format!("messages of session type {other} cannot be revoked"))),
            }
        };
        let limit = self.config.revoke_time_limit_secs;
        if own && !caller.is_admin && limit > 0 && now_ms() - msg.send_time > (limit as i64).saturating_mul(1000) {
            return Err(ApiError::no_permission(format!("a message can only be revoked within {limit} s of sending")));
        }
        let now = now_ms();
        let revoke = MessageRevoke {
            conversation_id: conversation_id.to_string(),
            seq,
            revoker_user_id: user_id.to_string(),
            revoker_role: role,
            revoker_nickname: nickname,
            revoke_time: now,
        };
        if !self.store.revoke_message(&revoke).await? {
            return Err(ApiError::new(ErrCode::MsgAlreadyRevoke, "this message was already revoked"));
        }
        let tips = sdkws::RevokeMsgTips {
            revoker_user_id: caller.user_id.clone(),
            client_msg_id: msg.client_msg_id.clone(),
            revoke_time: now,
            sesstion_type: msg.session_type,
            seq,
            conversation_id: conversation_id.to_string(),
            is_admin_revoke: caller.is_admin,
        };
        // Into the conversation's `n_` twin, for both sides of a 1:1 chat or every member of a group.
        let (send_id, recv_id) = if msg.session_type == session_type::READ_GROUP_CHAT {
            (user_id, msg.group_id.as_str())
        } else {
            (msg.send_id.as_str(), msg.recv_id.as_str())
        };
        let n = Notification {
            send_id,
            recv_id,
            session: msg.session_type,
            content_type: content_type::MSG_REVOKE,
            tips: &tips,
            delivery: Delivery::Stored,
        };
        self.notify(n, op).await;
        Ok(())
    }

    /// `/msg/delete_msgs`: deletes messages of a conversation for `user_id` (the peer and other members still
    /// see them), or with `sync.everyone` for everyone.
    pub async fn delete_messages(
        &self,
        caller: &Caller,
        user_id: &str,
        conversation_id: &str,
        seqs: &[i64],
        sync: DeleteSync,
        op: &str,
    ) -> ApiResult<()> {
        if seqs.is_empty() || seqs.len() > MAX_DELETE_SEQS {
            return Err(ApiError::args(format!("seqs must name 1 to {MAX_DELETE_SEQS} messages")));
        }
        let row = self.own_conversation(user_id, conversation_id).await?;
        if let Some(bad) = seqs.iter().find(|s| **s < row.min_seq.max(1) || **s > row.visible_max_seq()) {
            return Err(ApiError::args(format!("seq {bad} is not a message {user_id} can see in {conversation_id}")));
        }
        let mut seqs = seqs.to_vec();
        seqs.sort_unstable();
        seqs.dedup();
        let tips =
            sdkws::DeleteMsgsTips { user_id: user_id.to_string(), conversation_id: conversation_id.to_string(), seqs };
        if sync.everyone {
            self.check_for_everyone(caller, user_id, &row).await?;
            if !caller.is_admin && row.group_id.is_empty() {
                let msgs = self.store.messages_by_seqs(conversation_id, &tips.seqs).await?;
                if msgs.iter().any(|m| m.send_id != user_id) {
                    return Err(ApiError::no_permission(
                        "in a 1:1 chat only one's own messages can be deleted for both",
                    ));
                }
            }
            self.store.delete_messages(None, conversation_id, &tips.seqs).await?;
            let (recv, session) = peer_or_group(user_id, &row);
            self.state_notify(user_id, recv, session, content_type::DELETE_MSGS, &tips, Delivery::Stored, op).await;
        } else {
            self.store.delete_messages(Some(user_id), conversation_id, &tips.seqs).await?;
            if sync.self_devices {
                let session = session_type::SINGLE_CHAT;
                self.state_notify(user_id, user_id, session, content_type::DELETE_MSGS, &tips, Delivery::Stored, op)
                    .await;
            }
        }
        Ok(())
    }

    /// The group owner or an admin (in a group), either side (1:1), or an app admin, may change a
    /// conversation for everyone.
    async fn check_for_everyone(&self, caller: &Caller, user_id: &str, row: &UserConversation) -> ApiResult<()> {
        if caller.is_admin || row.group_id.is_empty() {
            return Ok(());
        }
        let role = self.role_in(&row.group_id, user_id).await?;
        if role == role_level::OWNER || role == role_level::ADMIN {
            Ok(())
        } else {
            Err(ApiError::no_permission("only the group owner or an admin may do this for everyone"))
        }
    }

    /// `/msg/clear_conversation_msg` (the named conversations) and `/msg/user_clear_all_msg` (`None`: all of
    /// them): hides the history so far from `user_id` (its pulls start after it and nothing is unread), and
    /// tells its devices (1300, as upstream's min-seq change does; 1703 with `sync.self_devices`). With
    /// `sync.everyone`, clears for everyone in each conversation and tells them (1703).
    pub async fn clear_conversations(
        &self,
        caller: &Caller,
        user_id: &str,
        conversation_ids: Option<&[String]>,
        sync: DeleteSync,
        op: &str,
    ) -> ApiResult<()> {
        let rows: Vec<UserConversation> = match conversation_ids {
            Some(ids) => {
                if ids.is_empty() || ids.len() > MAX_CLEAR_CONVERSATIONS {
                    return Err(ApiError::args(format!(
                        "conversationIDs must name 1 to {MAX_CLEAR_CONVERSATIONS} conversations"
                    )));
                }
                let mut rows = Vec::with_capacity(ids.len());
                for id in ids {
                    rows.push(self.own_conversation(user_id, id).await?);
                }
                rows
            }
            None => self.store.user_conversations(user_id).await?,
        };
        if rows.is_empty() {
            return Ok(());
        }
        if sync.everyone {
            for row in &rows {
                self.check_for_everyone(caller, user_id, row).await?;
            }
            for row in &rows {
                let owners = self.store.clear_conversation_for_all(&row.conversation_id).await?;
                for owner in owners {
                    self.conversation_changed(&owner, std::slice::from_ref(&row.conversation_id), op).await;
                }
                let tips = sdkws::ClearConversationTips {
                    user_id: user_id.to_string(),
                    conversation_ids: vec![row.conversation_id.clone()],
                };
                let (recv, session) = peer_or_group(user_id, row);
                self.state_notify(
                    user_id,
                    recv,
                    session,
                    content_type::CLEAR_CONVERSATION,
                    &tips,
                    Delivery::PushOnly,
                    op,
                )
                .await;
            }
            return Ok(());
        }
        let ids: Vec<String> = rows.into_iter().map(|r| r.conversation_id).collect();
        let cleared: Vec<String> =
            self.store.clear_conversations(user_id, &ids).await?.into_iter().map(|r| r.conversation_id).collect();
        if cleared.is_empty() {
            return Ok(());
        }
        self.conversation_changed(user_id, &cleared, op).await;
        if sync.self_devices {
            let tips = sdkws::ClearConversationTips { user_id: user_id.to_string(), conversation_ids: cleared };
            self.notify_user(user_id, user_id, content_type::CLEAR_CONVERSATION, &tips, op).await;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn state_notify<T: serde::Serialize>(
        &self,
        send_id: &str,
        recv_id: &str,
        session: i32,
        content_type: i32,
        tips: &T,
        delivery: Delivery,
        op: &str,
    ) {
        let n = Notification { send_id, recv_id, session, content_type, tips, delivery };
        self.notify(n, op).await;
    }
}

/// Where a conversation-wide notification about `row` goes: the peer of a 1:1 chat, or the group.
fn peer_or_group<'a>(user_id: &'a str, row: &'a UserConversation) -> (&'a str, i32) {
    if !row.group_id.is_empty() {
        (row.group_id.as_str(), session_type::READ_GROUP_CHAT)
    } else if row.user_id.is_empty() {
        (user_id, session_type::SINGLE_CHAT)
    } else {
        (row.user_id.as_str(), session_type::SINGLE_CHAT)
    }
}
