//! Messages: send, pull, read cursors.
//!
//! The send path keeps DESIGN.md's invariants: checks first (nothing stored on refusal), then the store
//! allocates the seq and inserts in one transaction (idempotent on clientMsgID), then, only after the commit,
//! the push. "Commit then push" runs under the conversation's lock so that pushes of one conversation leave in
//! seq order; the push itself only queues frames and never waits, on a socket or on NATS (`Bus::deliver`), so a
//! NATS outage cannot hold the lock and stall the other sends of its shard.

use super::{App, Caller, Delivery, Notification, now_ms, random_hex};
use crate::{
    error::{ApiError, ApiResult},
    hub::PushFrame,
};
use palaver_protocol::{
    constant::{content_type, msg_from, msg_status, options, req, session_type},
    conversation_id,
    envelope::Resp,
    errcode::ErrCode,
    pb::{msg as pbmsg, sdkws},
};
use palaver_store::{ConversationRef, NewMessage, Precondition, UserConversation};
use prost::Message as _;
use std::sync::Arc;

/// Longest clientMsgID accepted (the SDKs send 32 hex characters).
const MAX_CLIENT_MSG_ID_LEN: usize = 64;
/// Most messages one pull may return per conversation.
const MAX_PULL_PER_CONVERSATION: i64 = 1000;
/// Most conversations one pull may name.
const MAX_PULL_CONVERSATIONS: usize = 1000;

/// What a user may read of one conversation.
#[derive(Debug, Clone)]
struct Visible {
    conversation_id: String,
    min_seq: i64,
    max_seq: i64,
}

impl App {
    /// Sends `msg` as `caller`: checks, stores, pushes. Returns the stored message (with its seq).
    pub async fn send_message(
        &self,
        caller: &Caller,
        mut msg: sdkws::MsgData,
        operation_id: &str,
    ) -> ApiResult<sdkws::MsgData> {
        if msg.send_id != caller.user_id && !caller.is_admin {
            return Err(ApiError::no_permission(format!(
                "sendID {} is not the connection's user {}",
                msg.send_id, caller.user_id
            )));
        }
        if msg.client_msg_id.is_empty() || msg.client_msg_id.len() > MAX_CLIENT_MSG_ID_LEN {
            return Err(ApiError::args(format!("clientMsgID must be 1 to {MAX_CLIENT_MSG_ID_LEN} bytes")));
        }
        if msg.content.len() > self.config.max_content_bytes {
            return Err(ApiError::args(format!(
                "content is {} bytes; the limit is {}",
                msg.content.len(),
                self.config.max_content_bytes
            )));
        }
        check_media_content(msg.content_type, &msg.content)?;
        let is_notification_type =
            (content_type::NOTIFICATION_BEGIN..content_type::NOTIFICATION_END).contains(&msg.content_type);
        if is_notification_type && !caller.is_admin {
            return Err(ApiError::no_permission("only the server sends notification content types"));
        }
        if msg.content_type <= 0 {
            return Err(ApiError::args("contentType is missing"));
        }

        let mut ensure = Vec::new();
        let mut preconditions = Vec::new();
        let recipients: Arc<[String]> = match msg.session_type {
            session_type::SINGLE_CHAT | session_type::NOTIFICATION_CHAT => {
                if msg.recv_id.is_empty() {
                    return Err(ApiError::args("recvID is missing"));
                }
                if msg.session_type == session_type::NOTIFICATION_CHAT && !caller.is_admin {
                    return Err(ApiError::no_permission("only an admin sends to notification chats"));
                }
                // Checked by the store as it appends (see `NewMessage::preconditions`).
                for id in [&msg.recv_id, &msg.send_id] {
                    if !self.is_admin_user(id) {
                        preconditions.push(Precondition::UserExists(id.clone()));
                    }
                }
                if !caller.is_admin {
                    preconditions
                        .push(Precondition::NotBlocked { owner: msg.recv_id.clone(), other: msg.send_id.clone() });
                }
                // A user's 1:1 message (not a notification, not to oneself) also needs the recipient to want it
                // and, where configured, to have the sender as a friend (upstream `messageVerification` and
                // `modifyMessageByUserMessageReceiveOpt`); checked in the append's transaction as well.
                let user_message = msg.session_type == session_type::SINGLE_CHAT
                    && !is_notification_type
                    && msg.send_id != msg.recv_id
                    && options::is_on(&msg.options, options::IS_NOT_NOTIFICATION);
                if user_message {
                    if !caller.is_admin && self.config.messaging_requires_friendship {
                        preconditions
                            .push(Precondition::IsFriendOf { owner: msg.recv_id.clone(), friend: msg.send_id.clone() });
                    }
                    preconditions.push(Precondition::Receives {
                        user: msg.recv_id.clone(),
                        conversation_id: conversation_id::single(&msg.send_id, &msg.recv_id),
                        read_receipt: msg.content_type == content_type::HAS_READ_RECEIPT,
                    });
                }
                if msg.send_id == msg.recv_id {
                    Arc::from([msg.send_id.clone()])
                } else {
                    Arc::from([msg.recv_id.clone(), msg.send_id.clone()])
                }
            }
            session_type::READ_GROUP_CHAT => {
                if msg.group_id.is_empty() {
                    return Err(ApiError::args("groupID is missing"));
                }
                // Members and their mutes come from the group cache: no store read per group message.
                let group = if !caller.is_admin || msg.send_id == caller.user_id {
                    self.check_group_sender(&msg.group_id, &msg.send_id).await?
                } else {
                    self.group_snapshot(&msg.group_id).await?.ok_or_else(|| {
                        ApiError::new(ErrCode::GroupIdNotFound, format!("group {} does not exist", msg.group_id))
                    })?
                };
                msg.recv_id.clear();
                group.member_ids.clone()
            }
            session_type::WRITE_GROUP_CHAT => {
                return Err(ApiError::new(ErrCode::GroupTypeNotSupport, "sessionType 2 is not supported; use 3"));
            }
            other => return Err(ApiError::args(format!("unknown sessionType {other}"))),
        };
        let conversation_id =
            conversation_id::for_message(msg.session_type, &msg.send_id, &msg.recv_id, &msg.group_id, &msg.options)
                .ok_or_else(|| ApiError::args("cannot place this message in a conversation"))?;
        let is_notification = conversation_id::is_notification(&conversation_id);
        if !is_notification && msg.session_type != session_type::READ_GROUP_CHAT {
            let (send, recv, kind) = (&msg.send_id, &msg.recv_id, msg.session_type);
            ensure.push(ConversationRef::with_peer(send, recv, &conversation_id, kind));
            if recv != send {
                ensure.push(ConversationRef::with_peer(recv, send, &conversation_id, kind));
            }
        }

        msg.server_msg_id = random_hex(16);
        if msg.send_time <= 0 {
            msg.send_time = now_ms();
        }
        if msg.create_time <= 0 {
            msg.create_time = msg.send_time;
        }
        if msg.sender_platform_id == 0 {
            msg.sender_platform_id = caller.platform_id;
        }
        if msg.msg_from == 0 {
            msg.msg_from = if is_notification_type { msg_from::SYSTEM } else { msg_from::USER };
        }
        msg.status = msg_status::SUCCESS;
        msg.seq = 0;
        let sender_sync = options::is_on(&msg.options, options::SENDER_SYNC);
        let send_id = msg.send_id.clone();

        let _order = self.conversation_locks.of(&conversation_id).lock().await;
        let appended = self
            .store
            .append_message(NewMessage {
                conversation_id: conversation_id.clone(),
                data: msg,
                ensure_conversations: ensure,
                reader: (!is_notification).then(|| send_id.clone()),
                preconditions,
            })
            .await?;
        if appended.created {
            self.stats.add(&self.stats.messages, 1);
            let frame = push_frame(&conversation_id, &appended.data, operation_id);
            let skip = (!sender_sync).then_some(send_id.as_str());
            self.bus.deliver(&recipients, skip, &conversation_id, appended.data.seq, frame);
        }
        Ok(appended.data)
    }

    /// What `user_id` sees of `msgs` (of one conversation, ascending): a message deleted for it is empty with
    /// status "deleted", a revoked one has content type 2101 and the revoke as content (upstream
    /// `mgo/msg.go`). The stored messages themselves never change.
    pub(super) async fn apply_marks(
        &self,
        user_id: &str,
        conversation_id: &str,
        msgs: &mut [sdkws::MsgData],
    ) -> ApiResult<()> {
        if msgs.is_empty() || conversation_id::is_notification(conversation_id) {
            return Ok(());
        }
        let seqs: Vec<i64> = msgs.iter().map(|m| m.seq).collect();
        let marks = self.store.message_marks(user_id, conversation_id, &seqs).await?;
        if marks.deleted.is_empty() && marks.revokes.is_empty() {
            return Ok(());
        }
        for m in msgs.iter_mut() {
            if marks.deleted.binary_search(&m.seq).is_ok() {
                m.content.clear();
                m.status = msg_status::DELETED;
            } else if let Some(r) = marks.revokes.iter().find(|r| r.seq == m.seq) {
                *m = revoked_view(std::mem::take(m), r);
            }
        }
        Ok(())
    }

    /// What `user_id` may read of each of `conversation_ids` (others are left out): regular conversations need
    /// the user's row; an `n_` notification conversation is readable through its regular twin, or as the user's
    /// own `n_<u>_<u>`.
    async fn visible(&self, user_id: &str, conversation_ids: &[String]) -> ApiResult<Vec<Visible>> {
        let (notif, regular): (Vec<&String>, Vec<&String>) =
            conversation_ids.iter().partition(|c| conversation_id::is_notification(c));
        let regular: Vec<String> = regular.into_iter().cloned().collect();
        let mut out: Vec<Visible> = self
            .store
            .user_conversations_by_id(user_id, &regular)
            .await?
            .into_iter()
            .map(|c| Visible { max_seq: c.visible_max_seq(), conversation_id: c.conversation_id, min_seq: c.min_seq })
            .collect();
        if !notif.is_empty() {
            let own = self.store.user_conversations(user_id).await?;
            let twins: std::collections::HashSet<String> = own
                .iter()
                .map(|c| notification_twin(&c.conversation_id))
                .chain(std::iter::once(self_notification(user_id)))
                .collect();
            let readable: Vec<String> = notif.into_iter().filter(|c| twins.contains(*c)).cloned().collect();
            out.extend(self.store.max_seqs(&readable).await?.into_iter().map(|s| Visible {
                conversation_id: s.conversation_id,
                min_seq: 0,
                max_seq: s.max_seq,
            }));
        }
        Ok(out)
    }

    /// WS 1001 / `/msg/newest_seq`: the max seq of every conversation of the user (and of their `n_` twins and
    /// the user's own notification conversation), leaving out empty ones; and min seqs where history is cut.
    pub async fn newest_seqs(&self, user_id: &str) -> ApiResult<sdkws::GetMaxSeqResp> {
        let own = self.store.user_conversations(user_id).await?;
        let mut resp = sdkws::GetMaxSeqResp::default();
        let mut twins: Vec<String> = own.iter().map(|c| notification_twin(&c.conversation_id)).collect();
        twins.push(self_notification(user_id));
        twins.sort();
        twins.dedup();
        for c in &own {
            if c.visible_max_seq() > 0 {
                resp.max_seqs.insert(c.conversation_id.clone(), c.visible_max_seq());
            }
            if c.min_seq > 0 {
                resp.min_seqs.insert(c.conversation_id.clone(), c.min_seq);
            }
        }
        for s in self.store.max_seqs(&twins).await? {
            if s.max_seq > 0 {
                resp.max_seqs.insert(s.conversation_id, s.max_seq);
            }
        }
        Ok(resp)
    }

    /// WS 1002 / `/msg/pull_msg_by_seq`: for each range, the last `num` messages in `[begin, end]`, clamped to
    /// what the user may see. Conversations the user may not read are left out, as upstream does.
    pub async fn pull_by_range(
        &self,
        user_id: &str,
        r: &sdkws::PullMessageBySeqsReq,
    ) -> ApiResult<sdkws::PullMessageBySeqsResp> {
        if r.seq_ranges.len() > MAX_PULL_CONVERSATIONS {
            return Err(ApiError::args(format!("at most {MAX_PULL_CONVERSATIONS} seqRanges")));
        }
        let ids: Vec<String> = r.seq_ranges.iter().map(|s| s.conversation_id.clone()).collect();
        let visible = self.visible(user_id, &ids).await?;
        let mut resp = sdkws::PullMessageBySeqsResp::default();
        for range in &r.seq_ranges {
            let Some(v) = visible.iter().find(|v| v.conversation_id == range.conversation_id) else {
                continue;
            };
            let begin = range.begin.max(v.min_seq).max(1);
            let end = range.end.min(v.max_seq);
            if end < begin {
                continue;
            }
            let num = range.num.clamp(1, MAX_PULL_PER_CONVERSATION);
            let mut msgs = self.store.messages_in_range(&v.conversation_id, begin, end, num).await?;
            if msgs.is_empty() {
                continue;
            }
            self.apply_marks(user_id, &v.conversation_id, &mut msgs).await?;
            let is_end = if r.order == sdkws::PullOrder::Desc as i32 {
                range.begin <= v.min_seq.max(1)
            } else {
                v.max_seq <= range.end
            };
            let target = if conversation_id::is_notification(&v.conversation_id) {
                &mut resp.notification_msgs
            } else {
                &mut resp.msgs
            };
            target.insert(v.conversation_id.clone(), sdkws::PullMsgs { msgs, is_end, end_seq: 0 });
        }
        Ok(resp)
    }

    /// WS 1005: messages by explicit seqs, within what the user may see; `isEnd`/`endSeq` say when a
    /// requested seq lies past the visible bounds in the pull direction.
    pub async fn pull_by_seqs(
        &self,
        user_id: &str,
        r: &pbmsg::GetSeqMessageReq,
    ) -> ApiResult<pbmsg::GetSeqMessageResp> {
        if r.conversations.len() > MAX_PULL_CONVERSATIONS {
            return Err(ApiError::args(format!("at most {MAX_PULL_CONVERSATIONS} conversations")));
        }
        let ids: Vec<String> = r.conversations.iter().map(|c| c.conversation_id.clone()).collect();
        let visible = self.visible(user_id, &ids).await?;
        let desc = r.order == sdkws::PullOrder::Desc as i32;
        let mut resp = pbmsg::GetSeqMessageResp::default();
        for conv in &r.conversations {
            let Some(v) = visible.iter().find(|v| v.conversation_id == conv.conversation_id) else {
                continue;
            };
            if conv.seqs.len() as i64 > MAX_PULL_PER_CONVERSATION {
                return Err(ApiError::args(format!("at most {MAX_PULL_PER_CONVERSATION} seqs per conversation")));
            }
            let min = v.min_seq.max(1);
            let (mut is_end, mut end_seq) = (false, 0);
            let mut seqs = Vec::with_capacity(conv.seqs.len());
            for &seq in &conv.seqs {
                if seq >= min && seq <= v.max_seq {
                    seqs.push(seq);
                } else if seq > 0 && seq < min && desc {
                    (is_end, end_seq) = (true, min);
                } else if seq > v.max_seq && !desc {
                    (is_end, end_seq) = (true, v.max_seq);
                }
            }
            let mut msgs = if seqs.is_empty() {
                Vec::new()
            } else {
                self.store.messages_by_seqs(&v.conversation_id, &seqs).await?
            };
            self.apply_marks(user_id, &v.conversation_id, &mut msgs).await?;
            let target = if conversation_id::is_notification(&v.conversation_id) {
                &mut resp.notification_msgs
            } else {
                &mut resp.msgs
            };
            let entry = target.entry(v.conversation_id.clone()).or_default();
            entry.msgs.extend(msgs);
            entry.is_end = is_end;
            entry.end_seq = end_seq;
        }
        Ok(resp)
    }

    /// WS 1006: per conversation, max seq, the user's read seq and the time of the last message (unread counts
    /// are `maxSeq - hasReadSeq`). No ids: every conversation of the user.
    pub async fn has_read_and_max_seqs(
        &self,
        user_id: &str,
        r: &pbmsg::GetConversationsHasReadAndMaxSeqReq,
    ) -> ApiResult<pbmsg::GetConversationsHasReadAndMaxSeqResp> {
        let rows: Vec<UserConversation> = if r.conversation_ids.is_empty() {
            self.store.user_conversations(user_id).await?
        } else {
            self.store.user_conversations_by_id(user_id, &r.conversation_ids).await?
        };
        let mut resp = pbmsg::GetConversationsHasReadAndMaxSeqResp::default();
        for c in rows {
            if r.return_pinned && c.is_pinned {
                resp.pinned_conversation_ids.push(c.conversation_id.clone());
            }
            let max_seq = c.visible_max_seq();
            resp.seqs.insert(
                c.conversation_id,
                pbmsg::Seqs { max_seq, has_read_seq: c.has_read_seq.min(max_seq), max_seq_time: c.max_seq_time },
            );
        }
        Ok(resp)
    }

    /// WS 1007: the newest message of each conversation the user may read.
    pub async fn last_messages(
        &self,
        user_id: &str,
        conversation_ids: &[String],
    ) -> ApiResult<pbmsg::GetLastMessageResp> {
        let visible = self.visible(user_id, conversation_ids).await?;
        let ids: Vec<String> = visible.into_iter().map(|v| v.conversation_id).collect();
        let msgs = self.store.last_messages(&ids).await?;
        let mut resp = pbmsg::GetLastMessageResp::default();
        for m in msgs {
            let id = conversation_id::for_message(m.session_type, &m.send_id, &m.recv_id, &m.group_id, &m.options);
            if let Some(id) = id {
                let mut one = [m];
                self.apply_marks(user_id, &id, &mut one).await?;
                let [m] = one;
                resp.msgs.insert(id, m);
            }
        }
        Ok(resp)
    }

    /// Raises `user_id`'s read cursor in a conversation it has (mark-read routes), clamped to the conversation's
    /// max seq, then tells the user's other devices and the peer (or the group) with an unstored read receipt,
    /// as upstream does: the user's other devices clear their unread count, the peer marks its messages read.
    pub async fn mark_read(
        &self,
        user_id: &str,
        conversation_id: &str,
        has_read_seq: i64,
        seqs: &[i64],
        operation_id: &str,
    ) -> ApiResult<()> {
        let row =
            self.store.user_conversations_by_id(user_id, &[conversation_id.to_string()]).await?.pop().ok_or_else(
                || ApiError::new(ErrCode::RecordNotFound, format!("{user_id} has no conversation {conversation_id}")),
            )?;
        if has_read_seq < 0 {
            return Err(ApiError::args("hasReadSeq must not be negative"));
        }
        let seq = has_read_seq.min(row.max_seq);
        self.store.raise_has_read_seq(user_id, conversation_id, seq).await?;
        let (recv, session) = if row.group_id.is_empty() {
            (row.user_id.as_str(), row.conversation_type)
        } else {
            (row.group_id.as_str(), session_type::READ_GROUP_CHAT)
        };
        let tips = sdkws::MarkAsReadTips {
            mark_as_read_user_id: user_id.to_string(),
            conversation_id: conversation_id.to_string(),
            seqs: seqs.to_vec(),
            has_read_seq: seq,
        };
        let recv = if recv.is_empty() { user_id } else { recv };
        let notification = Notification {
            send_id: user_id,
            recv_id: recv,
            session,
            content_type: content_type::HAS_READ_RECEIPT,
            tips: &tips,
            delivery: Delivery::PushOnly,
        };
        self.notify(notification, operation_id).await;
        Ok(())
    }
}

/// A revoked message as pulls return it: content type 2101, content the revoke (upstream
/// `sdkws.MessageRevokedContent` in a notification element).
fn revoked_view(m: sdkws::MsgData, r: &palaver_store::MessageRevoke) -> sdkws::MsgData {
    let content = sdkws::MessageRevokedContent {
        revoker_id: r.revoker_user_id.clone(),
        revoker_role: r.revoker_role,
        client_msg_id: m.client_msg_id.clone(),
        revoker_nickname: r.revoker_nickname.clone(),
        revoke_time: r.revoke_time,
        source_message_send_time: m.send_time,
        source_message_send_id: m.send_id.clone(),
        source_message_sender_nickname: m.sender_nickname.clone(),
        session_type: m.session_type,
        seq: m.seq,
        ex: m.ex.clone(),
    };
    let detail = serde_json::to_string(&content).unwrap_or_default();
    let elem = serde_json::to_vec(&sdkws::NotificationElem { detail }).unwrap_or_default();
    sdkws::MsgData { content_type: content_type::MSG_REVOKE, content: elem, ..m }
}

/// The 2001 frame carrying one message, keyed by its conversation.
pub(crate) fn push_frame(conversation_id: &str, msg: &sdkws::MsgData, operation_id: &str) -> Arc<PushFrame> {
    let mut push = sdkws::PushMessages::default();
    let pull = sdkws::PullMsgs { msgs: vec![msg.clone()], is_end: false, end_seq: 0 };
    if conversation_id::is_notification(conversation_id) {
        push.notification_msgs.insert(conversation_id.to_string(), pull);
    } else {
        push.msgs.insert(conversation_id.to_string(), pull);
    }
    PushFrame::new(Resp {
        req_identifier: req::PUSH_MSG,
        operation_id: operation_id.to_string(),
        data: push.encode_to_vec(),
        ..Resp::default()
    })
}

/// The `n_` twin of a conversation: `si_a_b` → `n_a_b`, `sg_g` → `n_g`.
fn notification_twin(conversation_id: &str) -> String {
    let rest =
        ["si_", "sg_", "sn_", "g_"].iter().find_map(|p| conversation_id.strip_prefix(p)).unwrap_or(conversation_id);
    format!("n_{rest}")
}

/// A user's own notification conversation, `n_<u>_<u>`.
fn self_notification(user_id: &str) -> String {
    format!("n_{user_id}_{user_id}")
}

/// Media messages (picture 102, voice 103, video 104, file 105) carry their element as JSON (the SDK's
/// `PictureElem`, `SoundElem`, `VideoElem`, `FileElem`), pointing at the uploaded file. The element must be a JSON
/// object with an `http(s)` URL where the recipient downloads the file from, and any other URL it has (a
/// picture's big and snapshot versions, a video's snapshot) must be `http(s)` too: recipients' apps load them,
/// and a `javascript:` or `file:` URL there is an attack, not a file. Other content types are not looked at.
fn check_media_content(content_type: i32, content: &[u8]) -> ApiResult<()> {
    let (what, required, optional): (&str, &str, &[&str]) = match content_type {
        content_type::PICTURE => ("picture", "/sourcePicture/url", &["/bigPicture/url", "/snapshotPicture/url"]),
        content_type::VOICE => ("voice", "/sourceUrl", &[]),
        content_type::VIDEO => ("video", "/videoUrl", &["/snapshotUrl"]),
        content_type::FILE => ("file", "/sourceUrl", &[]),
        _ => return Ok(()),
    };
    let elem: serde_json::Value = serde_json::from_slice(content)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| ApiError::args(format!("a {what} message's content must be its element as a JSON object")))?;
    let is_web_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
    let url_at = |pointer: &str| elem.pointer(pointer).and_then(serde_json::Value::as_str).unwrap_or("");
    if !is_web_url(url_at(required)) {
        return Err(ApiError::args(format!("a {what} message needs an http(s) URL at {required} of its content")));
    }
    if let Some(bad) = optional.iter().find(|p| !url_at(p).is_empty() && !is_web_url(url_at(p))) {
        return Err(ApiError::args(format!("{bad} of a {what} message must be an http(s) URL")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_twins() {
        assert_eq!(notification_twin("si_a_b"), "n_a_b");
        assert_eq!(notification_twin("sg_123"), "n_123");
        assert_eq!(self_notification("u"), "n_u_u");
    }
}
