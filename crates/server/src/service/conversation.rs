//! Conversations as lists: listing, incremental sync, per-user options.

use super::{App, sync::Synced};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::conversation_id;
use palaver_store::{ConversationPatch, Page, UserConversation, VersionHead, VersionKind};

/// Most conversations one listing returns.
pub const MAX_PAGE: i64 = 1000;

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

    /// `/conversation/set_conversations`: applies `patch` to the conversation of each of `owners`.
    pub async fn set_conversations(&self, owners: &[String], patch: &ConversationPatch) -> ApiResult<()> {
        if patch.conversation_id.is_empty() {
            return Err(ApiError::args("conversationID is required"));
        }
        let mut patch = patch.clone();
        if let Some(group) = conversation_id::group_id_of(&patch.conversation_id) {
            patch.group_id = group.to_string();
            patch.conversation_type = palaver_protocol::constant::session_type::READ_GROUP_CHAT;
        }
        for owner in owners {
            let mut mine = patch.clone();
            if mine.group_id.is_empty() && mine.user_id.is_empty() {
                mine.user_id = peer_of(&patch.conversation_id, owner).unwrap_or_default();
                mine.conversation_type = palaver_protocol::constant::session_type::SINGLE_CHAT;
            }
            self.store.update_conversation(owner, &mine).await?;
        }
        Ok(())
    }
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
            let last_msg = last
                .iter()
                .find(|m| {
                    conversation_id::for_message(m.session_type, &m.send_id, &m.recv_id, &m.group_id, &m.options)
                        .as_deref()
                        == Some(row.conversation_id.as_str())
                })
                .cloned();
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
