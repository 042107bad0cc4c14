//! Conversations as lists: listing, incremental sync, per-user options.

use super::{App, sync::Synced};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::{
    constant::{content_type, recv_msg_opt, session_type},
    conversation_id,
    errcode::ErrCode,
    pb::sdkws,
};
use palaver_store::{ConversationPatch, Page, UserConversation, VersionHead, VersionKind};

/// Most conversations one listing returns.
pub const MAX_PAGE: i64 = 1000;
/// Longest `ex` or `attachedInfo` of a conversation.
const MAX_TEXT: usize = 4096;

impl App {
    pub async fn conversations_page(&self, owner: &str, page: Page) -> ApiResult<(Vec<UserConversation>, i64)> {
        Ok(self.store.user_conversations_page(owner, page).await?)
    }

    pub async fn all_conversations(&self, owner: &str) -> ApiResult<Vec<UserConversation>> {
        Ok(self.store.user_conversations(owner).await?)
    }

    pub async fn conversations_by_id(&self, owner: &str, ids: &[String]) -> ApiResult<Vec<UserConversation>> {
        if ids.len() as i64 > MAX_PAGE {
            return Err(ApiError::args(format!("at most {MAX_PAGE} conversationIDs")));
        }
        Ok(self.store.user_conversations_by_id(owner, ids).await?)
    }

    /// `/conversation/get_incremental_conversations`.
    pub async fn sync_conversations(
        &self,
        owner: &str,
        version_id: &str,
        version: u64,
    ) -> ApiResult<Synced<UserConversation>> {
        self.sync_list(VersionKind::Conversations, owner, version_id, version, |ids| async move {
            Ok(self.store.user_conversations_by_id(owner, &ids).await?)
        })
        .await
    }

    /// `/conversation/get_full_conversation_ids`: the list's head and every conversation id of the user.
    pub async fn conversation_ids(&self, owner: &str) -> ApiResult<(VersionHead, Vec<String>)> {
        let head = self.list_head(VersionKind::Conversations, owner).await?;
        let ids = self.store.user_conversations(owner).await?.into_iter().map(|c| c.conversation_id).collect();
        Ok((head, ids))
    }

    /// The conversations the user does not want notifications for (`recvMsgOpt` ≠ 0).
    pub async fn not_notify_conversation_ids(&self, owner: &str) -> ApiResult<Vec<String>> {
        let all = self.store.user_conversations(owner).await?;
        Ok(all.into_iter().filter(|c| c.recv_msg_opt != 0).map(|c| c.conversation_id).collect())
    }

    /// `/conversation/get_pinned_conversation_ids`.
    pub async fn pinned_conversation_ids(&self, owner: &str) -> ApiResult<Vec<String>> {
        let all = self.store.user_conversations(owner).await?;
        Ok(all.into_iter().filter(|c| c.is_pinned).map(|c| c.conversation_id).collect())
    }

    /// `/conversation/set_conversations`: applies `patch` to the conversation of each of `owners`, as upstream
    /// does:
    /// - a user whose row already holds every given value is left alone (no version bump, no notification);
    /// - every other user's row is updated (created if missing) and its devices are told (1300, so each
    ///   re-syncs its conversations: `OnConversationChanged` on the user's other devices);
    /// - `isPrivateChat` of a 1:1 conversation is set on both sides, which are told with 1701.
    ///
    /// A row is only ever created for a party of the conversation: a member of the group, one of the two users
    /// of a 1:1 chat. Anything else would let a user give itself a row in someone else's conversation and
    /// read its history.
    pub async fn set_conversations(&self, owners: &[String], patch: &ConversationPatch, op: &str) -> ApiResult<()> {
        if patch.conversation_id.is_empty() {
            return Err(ApiError::args("conversationID is required"));
        }
        if owners.is_empty() || owners.len() > MAX_PAGE as usize {
            return Err(ApiError::args(format!("userIDs must name 1 to {MAX_PAGE} users")));
        }
        let too_long = |v: &Option<String>| v.as_ref().is_some_and(|s| s.len() > MAX_TEXT);
        if too_long(&patch.ex) || too_long(&patch.attached_info) {
            return Err(ApiError::args(format!("ex and attachedInfo are limited to {MAX_TEXT} bytes")));
        }
        if let Some(opt) = patch.recv_msg_opt
            && !(recv_msg_opt::RECEIVE..=recv_msg_opt::RECEIVE_NOT_NOTIFY).contains(&opt)
        {
            return Err(ApiError::args(format!("recvMsgOpt must be 0, 1 or 2, not {opt}")));
        }
        if patch.burn_duration.is_some_and(|d| d < 0) {
            return Err(ApiError::args("burnDuration must not be negative"));
        }
        let group = conversation_id::group_id_of(&patch.conversation_id).map(str::to_string);
        // Private chat is a setting of both sides of a 1:1 chat, set below; groups have none.
        let private = if group.is_none() { patch.is_private_chat } else { None };
        let fields = ConversationPatch { is_private_chat: None, min_seq: None, ..patch.clone() };
        for owner in owners {
            let existing =
                self.store.user_conversations_by_id(owner, std::slice::from_ref(&patch.conversation_id)).await?.pop();
            let mut mine = fields.clone();
            match (&existing, &group) {
                (Some(row), _) => {
                    if !changes(row, &mine) {
                        continue;
                    }
                    mine.conversation_type = row.conversation_type;
                    mine.user_id = row.user_id.clone();
                    mine.group_id = row.group_id.clone();
                }
                (None, Some(group_id)) => {
                    if self.store.group_member(group_id, owner).await?.is_none() {
                        return Err(ApiError::new(
                            ErrCode::NotInGroupYet,
                            format!("{owner} is not in group {group_id}"),
                        ));
                    }
                    mine.group_id = group_id.clone();
                    mine.user_id.clear();
                    mine.conversation_type = session_type::READ_GROUP_CHAT;
                }
                (None, None) => {
                    mine.user_id = self.single_chat_peer(&patch.conversation_id, owner).await?;
                    mine.group_id.clear();
                    mine.conversation_type = session_type::SINGLE_CHAT;
                }
            }
            if !has_fields(&mine) {
                continue;
            }
            self.store.update_conversation(owner, &mine).await?;
            self.conversation_changed(owner, std::slice::from_ref(&patch.conversation_id), op).await;
        }
        if let Some(private) = private {
            for owner in owners {
                self.set_private_chat(owner, &patch.conversation_id, private, op).await?;
            }
        }
        Ok(())
    }

    /// The other user of the 1:1 conversation `conversation_id`, which must be `owner`'s: `Args` otherwise.
    async fn single_chat_peer(&self, conversation_id: &str, owner: &str) -> ApiResult<String> {
        let not_yours =
            || ApiError::args(format!("{conversation_id} is not a conversation of {owner} (si_<a>_<b> with a or b)"));
        let peer = peer_of(conversation_id, owner).ok_or_else(not_yours)?;
        if conversation_id::single(owner, &peer) != conversation_id {
            return Err(not_yours());
        }
        self.require_user(&peer).await?;
        Ok(peer)
    }

    /// Sets private chat on both sides of `owner`'s 1:1 conversation and tells both (1701).
    async fn set_private_chat(&self, owner: &str, conversation_id: &str, private: bool, op: &str) -> ApiResult<()> {
        let peer = match self.store.user_conversations_by_id(owner, &[conversation_id.to_string()]).await?.pop() {
            Some(row) if !row.user_id.is_empty() => row.user_id,
            _ => self.single_chat_peer(conversation_id, owner).await?,
        };
        for (me, other) in [(owner, peer.as_str()), (peer.as_str(), owner)] {
            let p = ConversationPatch {
                conversation_id: conversation_id.to_string(),
                conversation_type: session_type::SINGLE_CHAT,
                user_id: other.to_string(),
                is_private_chat: Some(private),
                ..ConversationPatch::default()
            };
            self.store.update_conversation(me, &p).await?;
        }
        let tips = sdkws::ConversationSetPrivateTips {
            recv_id: peer.clone(),
            send_id: owner.to_string(),
            is_private: private,
            conversation_id: conversation_id.to_string(),
        };
        self.notify_user(owner, &peer, content_type::CONVERSATION_PRIVATE_CHAT, &tips, op).await;
        Ok(())
    }

    /// Tells `owner`'s devices that these conversations changed (1300): each re-syncs its conversation list.
    pub(super) async fn conversation_changed(&self, owner: &str, conversation_ids: &[String], op: &str) {
        let tips = sdkws::ConversationUpdateTips {
            user_id: owner.to_string(),
            conversation_id_list: conversation_ids.to_vec(),
        };
        self.notify_user(owner, owner, content_type::CONVERSATION_CHANGE, &tips, op).await;
    }
}

/// Whether applying `p` to `row` changes anything.
fn changes(row: &UserConversation, p: &ConversationPatch) -> bool {
    p.recv_msg_opt.is_some_and(|v| v != row.recv_msg_opt)
        || p.is_pinned.is_some_and(|v| v != row.is_pinned)
        || p.burn_duration.is_some_and(|v| v != row.burn_duration)
        || p.group_at_type.is_some_and(|v| v != row.group_at_type)
        || p.attached_info.as_ref().is_some_and(|v| *v != row.attached_info)
        || p.ex.as_ref().is_some_and(|v| *v != row.ex)
}

/// Whether `p` sets any field at all.
fn has_fields(p: &ConversationPatch) -> bool {
    p.recv_msg_opt.is_some()
        || p.is_pinned.is_some()
        || p.burn_duration.is_some()
        || p.group_at_type.is_some()
        || p.attached_info.is_some()
        || p.ex.is_some()
}

/// The other user of a `si_<a>_<b>` conversation seen by `me`, when the ids can be told apart.
fn peer_of(conversation_id: &str, me: &str) -> Option<String> {
    let pair = conversation_id.strip_prefix("si_")?;
    if let Some(rest) = pair.strip_prefix(&format!("{me}_")) {
        return Some(rest.to_string());
    }
    pair.strip_suffix(&format!("_{me}")).map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_of_a_single_chat() {
        assert_eq!(super::peer_of("si_alice_bob", "alice").as_deref(), Some("bob"));
        assert_eq!(super::peer_of("si_alice_bob", "bob").as_deref(), Some("alice"));
        assert_eq!(super::peer_of("sg_1", "bob"), None);
    }
}

/// What the pure-JS SDK's `/jssdk/*` routes return per conversation: the row with its newest message and the
/// peer or group it is with.
#[derive(Debug, Clone)]
pub struct ConversationView {
    pub row: UserConversation,
    pub last_msg: Option<palaver_protocol::pb::sdkws::MsgData>,
    pub peer: Option<palaver_store::User>,
    pub friend: Option<palaver_store::Friend>,
    pub group: Option<(palaver_store::Group, u32)>,
}

/// Conversations `/jssdk/get_active_conversations` returns when the client does not say, and at most.
const DEFAULT_ACTIVE: i64 = 100;
const MAX_ACTIVE: i64 = 500;

impl App {
    /// `/jssdk/get_active_conversations`: the `count` most recently active conversations (pinned first), and the
    /// user's total unread count over all of them.
    pub async fn active_conversations(&self, owner: &str, count: i64) -> ApiResult<(Vec<ConversationView>, i64)> {
        let count = if count <= 0 || count > MAX_ACTIVE { DEFAULT_ACTIVE } else { count };
        let mut rows: Vec<UserConversation> =
            self.store.user_conversations(owner).await?.into_iter().filter(|c| c.max_seq > 0).collect();
        let unread = rows.iter().map(|c| (c.max_seq - c.has_read_seq).max(0)).sum();
        rows.sort_by(|a, b| b.is_pinned.cmp(&a.is_pinned).then(b.max_seq_time.cmp(&a.max_seq_time)));
        rows.truncate(count as usize);
        Ok((self.conversation_views(owner, rows).await?, unread))
    }

    /// `/jssdk/get_conversations`: the named conversations as views, and the unread count over them.
    pub async fn conversations_view(&self, owner: &str, ids: &[String]) -> ApiResult<(Vec<ConversationView>, i64)> {
        let rows = self.conversations_by_id(owner, ids).await?;
        let unread = rows.iter().map(|c| (c.max_seq - c.has_read_seq).max(0)).sum();
        Ok((self.conversation_views(owner, rows).await?, unread))
    }

    async fn conversation_views(&self, owner: &str, rows: Vec<UserConversation>) -> ApiResult<Vec<ConversationView>> {
        let ids: Vec<String> = rows.iter().map(|c| c.conversation_id.clone()).collect();
        let last = self.store.last_messages(&ids).await?;
        let peers: Vec<String> = rows.iter().filter(|c| !c.user_id.is_empty()).map(|c| c.user_id.clone()).collect();
        let users = self.store.users(&peers).await?;
        let friends = self.store.friends_by_id(owner, &peers).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut last_msg = last
                .iter()
                .find(|m| {
                    conversation_id::for_message(m.session_type, &m.send_id, &m.recv_id, &m.group_id, &m.options)
                        .as_deref()
                        == Some(row.conversation_id.as_str())
                })
                .cloned();
            if let Some(m) = last_msg.as_mut() {
                self.apply_marks(owner, &row.conversation_id, std::slice::from_mut(m)).await?;
            }
            let group = if row.group_id.is_empty() {
                None
            } else {
                let groups = self.store.groups(std::slice::from_ref(&row.group_id)).await?;
                match groups.into_iter().next() {
                    Some(g) => {
                        let n = self.store.group_member_count(&g.group_id).await?;
                        Some((g, n))
                    }
                    None => None,
                }
            };
            out.push(ConversationView {
                peer: users.iter().find(|u| u.user_id == row.user_id).cloned(),
                friend: friends.iter().find(|f| f.friend_user_id == row.user_id).cloned(),
                group,
                last_msg,
                row,
            });
        }
        Ok(out)
    }
}
