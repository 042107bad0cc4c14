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

pub(crate) mod nats;
mod order;
pub(crate) mod wire;

use std::sync::{Arc, Mutex, PoisonError};

use palaver_protocol::constant::{options, session_type};
use palaver_protocol::pb::sdkws;
use palaver_store::{Store, TokenStatus};

use crate::hub::{ConnHandle, Hub, Outbound, PushFrame};

/// Called with a group id when a group changes on any node (see [`Bus::on_group_changed`]).
pub type GroupListener = Arc<dyn Fn(&str) + Send + Sync>;

/// The bus. One per node, shared by the services (`App::bus`).
pub struct Bus {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    cluster: Option<nats::Cluster>,
    group_listeners: Mutex<Vec<GroupListener>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("node", &self.node_id()).finish_non_exhaustive()
    }
}

impl Bus {
    /// The single-node bus: everything is local.
    pub fn in_process(hub: Arc<Hub>, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self { hub, store, cluster: None, group_listeners: Mutex::default() })
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
        let (cluster, inbound) = nats::Cluster::connect(url, cluster_name).await?;
        let bus = Arc::new(Self { hub, store, cluster: Some(cluster), group_listeners: Mutex::default() });
        nats::spawn(&bus, inbound);
        Ok(bus)
    }

    /// This node's id in the cluster (`None` in-process).
    pub fn node_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.node())
    }

    /// Delivers `frame` (push `seq` of `conversation_id`; seq 0 for an unstored push) to every connection of
    /// `users` except `skip`, wherever they are connected. `users` are all the parties of the message (skip
    /// included): a node with only `skip` there still learns the seq, which keeps its order state moving
    /// without waiting for a fill. Never waits on a socket.
    pub async fn deliver(
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
        cluster.publish_deliveries(users, skip, conversation_id, seq, &frame, &[]).await;
        self.deliver_local(conversation_id, seq, local, frame);
    }

    /// Delivers an unstored push (seq 0: read receipts, typing, …) to every connection of `users`, except the
    /// connection that authenticated with `except` (the device that caused it), wherever they are connected.
    pub async fn deliver_unstored(
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
            cluster.publish_deliveries(users, None, conversation_id, 0, &frame, except.unwrap_or_default()).await;
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
            for msg in msgs {
                let users = self.local_recipients(&msg).await;
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
    /// and, with senderSync, the sender; or the group's members).
    async fn local_recipients(&self, msg: &sdkws::MsgData) -> Vec<String> {
        let parties = if msg.session_type == session_type::READ_GROUP_CHAT {
            self.store.group_member_ids(&msg.group_id).await.unwrap_or_default()
        } else {
            vec![msg.recv_id.clone(), msg.send_id.clone()]
        };
        let sender_sync = options::is_on(&msg.options, options::SENDER_SYNC);
        let mut users: Vec<String> =
            parties.into_iter().filter(|u| (sender_sync || *u != msg.send_id) && self.hub.is_online(u)).collect();
        users.sort();
        users.dedup();
        users
    }

    /// A connection was registered here (and the local connections it displaced were kicked): tells the other
    /// nodes that the user is online here, and lets them apply the multi-login `policy` to the user's
    /// connections there.
    pub async fn connected(&self, conn: &ConnHandle, policy: i32) {
        if let Some(cluster) = &self.cluster {
            cluster.announce(&conn.user_id, self.hub.online_platforms(&conn.user_id)).await;
            cluster.kick_elsewhere(&conn.user_id, conn.platform_id, policy, &conn.token_hash).await;
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
    pub async fn disconnected(&self, user_id: &str) {
        if let Some(cluster) = &self.cluster {
            cluster.announce(user_id, self.hub.online_platforms(user_id)).await;
            self.correct_local_status(user_id);
        }
    }

    /// Closes `user_id`'s connections on `platform_id` on the other nodes (the caller has revoked the tokens
    /// and closed the local ones).
    pub async fn force_logout(&self, user_id: &str, platform_id: i32) {
        if let Some(cluster) = &self.cluster {
            cluster.logout_elsewhere(user_id, platform_id).await;
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

    /// Registers `listener`, called (on this node) whenever a group changes on any node: the hook for caches
    /// of group data, which must drop an entry when another node changes the group.
    pub fn on_group_changed(&self, listener: GroupListener) {
        self.group_listeners.lock().unwrap_or_else(PoisonError::into_inner).push(listener);
    }

    /// Tells every node (this one included) that `group_id` changed.
    pub async fn group_changed(&self, group_id: &str) {
        self.notify_group_listeners(group_id);
        if let Some(cluster) = &self.cluster {
            cluster.broadcast_group_changed(group_id).await;
        }
    }

    fn notify_group_listeners(&self, group_id: &str) {
        let listeners = self.group_listeners.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for listener in listeners {
            listener(group_id);
        }
    }

    /// Applies a login on another node to this node's connections of the user: the ones the policy displaces
    /// are closed with a kick frame, their tokens revoked unless the new login uses the same token.
    async fn kicked_elsewhere(&self, kick: wire::Kick) {
        let displaced = self.hub.take_displaced(&kick.user_id, kick.platform_id, kick.policy);
        for conn in &displaced {
            if *conn.token_hash != kick.keep_token_hash[..] {
                let revoked = self
                    .store
                    .set_token_status(&conn.user_id, conn.platform_id, TokenStatus::Kicked, Some(&kick.keep_token_hash))
                    .await;
                if let Err(e) = revoked {
                    tracing::warn!(error = %e, user = %conn.user_id, "could not revoke a displaced token");
                }
            }
            conn.offer(Outbound::Kick);
        }
        if !displaced.is_empty() {
            self.disconnected(&kick.user_id).await;
        }
    }

    /// Stops the cluster tasks (heartbeats, subscriptions) and leaves NATS.
    pub async fn shutdown(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.shutdown().await;
        }
    }
}
