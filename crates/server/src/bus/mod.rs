//! The bus: between the services and the hub, so that a push, a kick or a "who is online" reaches every node.
//!
//! The services never touch other nodes. They ask the bus to deliver a push to some users, to apply a new
//! login's multi-login policy, to log a user out, or to say which platforms a user is online on, and the bus
//! does it wherever those users are connected:
//!
//! - **In-process** (the default, one node): straight to this node's [`Hub`]. Nothing else runs.
//! - **NATS** (`nats_url` set; [`nats`]): each node subscribes to its own subject and to the cluster's
//!   broadcast subject, and keeps a map of which users are online on which other nodes, kept current by
//!   presence announcements (see [`nats`] for the protocol). A push for some users goes once to each node
//!   that has any of them (a 1:1 push crosses the bus once per recipient node, a group push once per node
//!   with online members, never once per member), and pushes of one conversation are delivered in seq order
//!   on every node ([`order`]), whichever nodes sent them.
//!
//! Push is best-effort by design, on one node as in a cluster: pull is the source of truth, and a client that
//! sees a seq gap (or reconnects) pulls what it missed.
//!
//! **Nothing here waits on NATS.** The services call the bus under the conversation's lock ("commit, then
//! push"), so every call returns without waiting: the local push goes straight to the hub's bounded queues, and
//! what is for other nodes is queued for a task that feeds the NATS client (see [`nats`]). A NATS server that is
//! away or slow therefore never holds up a send, a login or a group change; what does not fit in that queue is
//! dropped with a log, and healed like any lost push (the other nodes' order keeping reads it from the store, or
//! the clients pull).
//!
//! The bus also owns the [`GroupCache`] and the [`TokenCache`]: it is the part that hears of other nodes' group
//! changes and token revocations, and the part that knows when it may have missed one (see
//! `service::group::cache` and `service::token_cache`).

pub(crate) mod nats;
mod order;
pub(crate) mod wire;

use std::sync::Arc;

use palaver_protocol::constant::{options, platform, session_type};
use palaver_protocol::pb::sdkws;
use palaver_store::{Store, StoreError, TokenStatus};

use crate::hub::{ConnHandle, Hub, Outbound, PushFrame};
use crate::service::token_cache::TokenCache;
use crate::service::{GroupCache, GroupSnapshot};

/// The bus. One per node, shared by the services (`App::bus`).
pub struct Bus {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    /// Members, roles and mutes of groups (`App::group_cache` is this one).
    groups: Arc<GroupCache>,
    /// Tokens recently found valid.
    tokens: TokenCache,
    cluster: Option<nats::Cluster>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("node", &self.node_id()).finish_non_exhaustive()
    }
}

impl Bus {
    /// The single-node bus: everything is local.
    pub fn in_process(hub: Arc<Hub>, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self { hub, store, groups: Arc::default(), tokens: TokenCache::default(), cluster: None })
    }

    /// Joins the cluster on the NATS server at `url`. `cluster_name` prefixes every subject, so several
    /// clusters (or test runs) can share one NATS. Fails if NATS cannot be reached now; later outages are
    /// survived (see [`nats`]).
    pub async fn nats(
        hub: Arc<Hub>,
        store: Arc<dyn Store>,
        url: &str,
        cluster_name: &str,
    ) -> anyhow::Result<Arc<Self>> {
        let (cluster, inbound, outbox) = nats::Cluster::connect(url, cluster_name).await?;
        let bus = Arc::new(Self {
            hub,
            store,
            groups: Arc::default(),
            tokens: TokenCache::default(),
            cluster: Some(cluster),
        });
        nats::spawn(&bus, inbound, outbox);
        Ok(bus)
    }

    /// This node's id in the cluster (`None` in-process).
    pub fn node_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.node())
    }

    /// The group cache, shared with the services.
    pub fn group_cache(&self) -> &Arc<GroupCache> {
        &self.groups
    }

    /// The token cache, for `App::authenticate`.
    pub fn token_cache(&self) -> &TokenCache {
        &self.tokens
    }

    /// Revokes the live tokens of `user_id` on `platform_id` (every platform if `None`) but `keep`, and has every
    /// node forget them: this node's token cache at once, the others' through the bus.
    pub async fn revoke_tokens(
        &self,
        user_id: &str,
        platform_id: Option<i32>,
        keep: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let platforms = match &platform_id {
            Some(p) => std::slice::from_ref(p),
            None => platform::ALL,
        };
        for p in platforms {
            self.store.set_token_status(user_id, *p, TokenStatus::Kicked, keep).await?;
        }
        self.tokens.revoke(user_id, platform_id);
        if let Some(cluster) = &self.cluster {
            cluster.broadcast_tokens_revoked(user_id, platform_id);
        }
        Ok(())
    }

    /// Revokes the tokens of the `displaced` connections (one user's, displaced by a new login), unless the new
    /// login uses the same token `keep`: once per platform, however many connections were displaced there.
    pub async fn revoke_displaced(&self, displaced: &[ConnHandle], keep: &[u8]) -> Result<(), StoreError> {
        let mut platforms: Vec<(&str, i32)> =
            displaced.iter().filter(|c| *c.token_hash != *keep).map(|c| (&*c.user_id, c.platform_id)).collect();
        platforms.sort_unstable();
        platforms.dedup();
        for (user_id, platform_id) in platforms {
            self.revoke_tokens(user_id, Some(platform_id), Some(keep)).await?;
        }
        Ok(())
    }

    /// Forgets what this node has cached of groups and tokens: a change broadcast by another node may have been
    /// lost.
    fn forget_cached(&self) {
        self.groups.clear();
        self.tokens.clear();
    }

    /// Delivers `frame` (push `seq` of `conversation_id`; seq 0 for an unstored push) to every connection of
    /// `users` except `skip`, wherever they are connected. `users` are all the parties of the message (skip
    /// included): a node with only `skip` there still learns the seq, which keeps its order state moving
    /// without waiting for a fill. Never waits, neither on a socket nor on NATS: the local push is in the
    /// connections' queues before this returns (or held by the order keeping until the seqs before it are), so
    /// calls made in seq order push in seq order here; the other nodes' copies are queued for NATS.
    pub fn deliver(
        &self,
        users: &[String],
        skip: Option<&str>,
        conversation_id: &str,
        seq: i64,
        frame: Arc<PushFrame>,
    ) {
        let Some(cluster) = &self.cluster else {
            let targets = users.iter().map(String::as_str).filter(|u| Some(*u) != skip);
            self.hub.push(targets, &frame);
            return;
        };
        let local: Vec<String> =
            users.iter().filter(|u| Some(u.as_str()) != skip && self.hub.is_online(u)).cloned().collect();
        cluster.publish_deliveries(users, skip, conversation_id, seq, &frame, &[]);
        self.deliver_local(conversation_id, seq, local, frame);
    }

    /// Delivers an unstored push (seq 0: read receipts, typing, …) to every connection of `users`, except the
    /// connection that authenticated with `except` (the device that caused it), wherever they are connected.
    pub fn deliver_unstored(
        &self,
        users: &[String],
        conversation_id: &str,
        frame: Arc<PushFrame>,
        except: Option<&[u8]>,
    ) {
        let local = users.iter().map(String::as_str);
        match except {
            Some(hash) => self.hub.push_except(local, &frame, hash),
            None => self.hub.push(local, &frame),
        }
        if let Some(cluster) = &self.cluster {
            cluster.publish_deliveries(users, None, conversation_id, 0, &frame, except.unwrap_or_default());
        }
    }

    /// Pushes to local users, in seq order per conversation when clustered (see [`order`]).
    fn deliver_local(self: &Bus, conversation_id: &str, seq: i64, users: Vec<String>, frame: Arc<PushFrame>) {
        let Some(cluster) = &self.cluster else {
            self.hub.push(users.iter().map(String::as_str), &frame);
            return;
        };
        if seq <= 0 {
            self.hub.push(users.iter().map(String::as_str), &frame);
            return;
        }
        let hub = &self.hub;
        let offer = cluster.order.offer(conversation_id, seq, (users, frame), |(users, frame)| {
            hub.push(users.iter().map(String::as_str), frame);
        });
        if offer.schedule_fill {
            cluster.schedule_fill(conversation_id.to_string());
        }
    }

    /// Reads the messages a node is missing from the store and delivers them in order (see [`order`]).
    async fn fill(&self, conversation_id: &str) {
        let Some(cluster) = &self.cluster else { return };
        tokio::time::sleep(order::REORDER_WAIT).await;
        loop {
            let hub = &self.hub;
            let push = |(users, frame): &order::Ready| hub.push(users.iter().map(String::as_str), frame);
            let Some(gap) = cluster.order.gap(conversation_id, push) else { return };
            let seqs: Vec<i64> = (gap.from..=gap.to).collect();
            let msgs = match self.store.messages_by_seqs(conversation_id, &seqs).await {
                Ok(msgs) => msgs,
                Err(e) => {
                    // The clients still heal by pull; skipping keeps later pushes flowing.
                    tracing::warn!(error = %e, conversation_id, "could not read missing pushes from the store");
                    Vec::new()
                }
            };
            let mut found = std::collections::BTreeMap::new();
            let mut group_online = None;
            for msg in msgs {
                let users = self.local_recipients(&msg, &mut group_online).await;
                if !users.is_empty() {
                    found.insert(msg.seq, (users, crate::service::push_frame(conversation_id, &msg, "")));
                }
            }
            tracing::debug!(conversation_id, from = gap.from, to = gap.to, pushed = found.len(), "filled a push gap");
            let again = cluster.order.filled(conversation_id, &gap, found, push);
            if !again {
                return;
            }
            tokio::time::sleep(order::REORDER_WAIT).await;
        }
    }

    /// The users connected here that a stored message is pushed to: as `send_message` chooses them (the peer
    /// and, with senderSync, the sender; or the group's members). `group_online` carries the group's members
    /// online here from one message of a fill to the next (every message of a conversation has the same group).
    async fn local_recipients(&self, msg: &sdkws::MsgData, group_online: &mut Option<Vec<String>>) -> Vec<String> {
        let sender_sync = options::is_on(&msg.options, options::SENDER_SYNC);
        let wanted = |u: &String| sender_sync || *u != msg.send_id;
        if msg.session_type == session_type::READ_GROUP_CHAT {
            if group_online.is_none() {
                *group_online = Some(self.group_members_online(&msg.group_id).await);
            }
            return group_online.iter().flatten().filter(|u| wanted(u)).cloned().collect();
        }
        let mut users: Vec<String> =
            [&msg.recv_id, &msg.send_id].into_iter().filter(|u| wanted(u) && self.hub.is_online(u)).cloned().collect();
        users.dedup();
        users
    }

    /// The members of `group_id` connected here, sorted, from the group cache (as the message path reads them:
    /// no member-list read from the store per fill).
    async fn group_members_online(&self, group_id: &str) -> Vec<String> {
        match self.groups.get_or_load(group_id, || GroupSnapshot::load(&*self.store, group_id)).await {
            Ok(Some(group)) => {
                let mut online: Vec<String> =
                    group.member_ids.iter().filter(|u| self.hub.is_online(u)).cloned().collect();
                online.sort();
                online.dedup();
                online
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                // The pushes of this fill are skipped; the members' clients heal by pull.
                tracing::warn!(error = %e, group_id, "could not read a group's members for missing pushes");
                Vec::new()
            }
        }
    }

    /// A connection was registered here (and the local connections it displaced were kicked): tells the other
    /// nodes that the user is online here, and lets them apply the multi-login `policy` to the user's
    /// connections there.
    pub fn connected(&self, conn: &ConnHandle, policy: i32) {
        if let Some(cluster) = &self.cluster {
            cluster.announce(&conn.user_id, self.hub.online_platforms(&conn.user_id));
            cluster.kick_elsewhere(&conn.user_id, conn.platform_id, policy, &conn.token_hash);
            self.correct_local_status(&conn.user_id);
        }
    }

    /// The hub tells this node's watchers of a user the user's platforms *here*; when the user is also on other
    /// nodes, this follows with the platforms on every node.
    fn correct_local_status(&self, user_id: &str) {
        if let Some(cluster) = &self.cluster
            && !cluster.remote_platforms(user_id).is_empty()
        {
            self.hub.push_status(user_id, self.online_platforms(user_id));
        }
    }

    /// A connection of `user_id` closed here.
    pub fn disconnected(&self, user_id: &str) {
        if let Some(cluster) = &self.cluster {
            cluster.announce(user_id, self.hub.online_platforms(user_id));
            self.correct_local_status(user_id);
        }
    }

    /// Logs `user_id` out on `platform_id` (every platform if `None`), but for the token `keep`: revokes the
    /// tokens ([`Bus::revoke_tokens`]) and closes the connections that use them with a kick frame, here and on
    /// the other nodes.
    pub async fn log_out(
        &self,
        user_id: &str,
        platform_id: Option<i32>,
        keep: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.revoke_tokens(user_id, platform_id, keep).await?;
        self.kick_local(user_id, platform_id, keep);
        if let Some(cluster) = &self.cluster {
            cluster.logout_elsewhere(user_id, platform_id, keep);
        }
        Ok(())
    }

    /// Closes this node's connections of `user_id` on `platform_id` (every platform if `None`) with a kick
    /// frame, but the ones using the token `keep`.
    fn kick_local(&self, user_id: &str, platform_id: Option<i32>, keep: Option<&[u8]>) {
        let taken = self.hub.take_where(user_id, |c| {
            platform_id.is_none_or(|p| p == c.platform_id) && keep.is_none_or(|k| *c.token_hash != *k)
        });
        for conn in &taken {
            conn.offer(Outbound::Kick);
        }
        if !taken.is_empty() {
            self.disconnected(user_id);
        }
    }

    /// The platforms `user_id` is online on, on any node, sorted.
    pub fn online_platforms(&self, user_id: &str) -> Vec<i32> {
        let mut platforms = self.hub.online_platforms(user_id);
        if let Some(cluster) = &self.cluster {
            platforms.extend(cluster.remote_platforms(user_id));
            platforms.sort_unstable();
            platforms.dedup();
        }
        platforms
    }

    /// Tells every node (this one included) that `group_id` changed: each drops its cached snapshot of it.
    pub fn group_changed(&self, group_id: &str) {
        self.groups.invalidate(group_id);
        if let Some(cluster) = &self.cluster {
            cluster.broadcast_group_changed(group_id);
        }
    }

    /// Applies a login on another node to this node's connections of the user: the ones the policy displaces
    /// are closed with a kick frame, their tokens revoked unless the new login uses the same token.
    async fn kicked_elsewhere(&self, kick: wire::Kick) {
        let displaced = self.hub.take_displaced(&kick.user_id, kick.platform_id, kick.policy);
        if let Err(e) = self.revoke_displaced(&displaced, &kick.keep_token_hash).await {
            tracing::warn!(error = %e, user = %kick.user_id, "could not revoke a displaced token");
        }
        for conn in &displaced {
            conn.offer(Outbound::Kick);
        }
        if !displaced.is_empty() {
            self.disconnected(&kick.user_id);
        }
    }

    /// Stops the cluster tasks (heartbeats, subscriptions) and leaves NATS.
    pub async fn shutdown(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{App, Caller};
    use palaver_protocol::constant::multi_login;
    use palaver_store::Group;
    use tokio::sync::mpsc;

    /// Pushes a node reads back from the store (a fill) go to the group's members online here, found in the
    /// group cache as the message path finds them: one load of the group, not a member-list read per message.
    #[tokio::test]
    async fn filled_group_pushes_find_their_recipients_in_the_group_cache() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::for_tests(dir.path(), &["alice", "bob", "carol"]).await;
        let alice = Caller { user_id: "alice".into(), platform_id: 5, token_hash: Arc::from(&[][..]), is_admin: false };
        let group = Group { group_name: "g".into(), group_type: 2, ..Group::default() };
        let members = ["bob".to_string(), "carol".to_string()];
        let (group, _) = app.create_group(group, "alice", &[], &members, &alice, "op").await.unwrap();
        let (tx, _rx) = mpsc::channel(8);
        let bob = ConnHandle {
            id: app.hub.next_conn_id(),
            user_id: "bob".into(),
            platform_id: 5,
            token_hash: Arc::from(&b"h"[..]),
            tx,
            close: crate::hub::Close::default(),
        };
        app.hub.register(bob, multi_login::NO_KICK);

        app.group_cache.clear();
        let before = app.group_cache.loads();
        let msg = sdkws::MsgData {
            send_id: "carol".into(),
            group_id: group.group_id.clone(),
            session_type: session_type::READ_GROUP_CHAT,
            ..sdkws::MsgData::default()
        };
        for _ in 0..3 {
            let mut online = None;
            assert_eq!(app.bus.local_recipients(&msg, &mut online).await, ["bob"]);
        }
        assert_eq!(app.group_cache.loads(), before + 1, "the group is read once, into the cache");
        app.bus.group_changed(&group.group_id);
        let mut online = None;
        app.bus.local_recipients(&msg, &mut online).await;
        assert_eq!(app.group_cache.loads(), before + 2, "a change is seen by the next fill");
    }
}
