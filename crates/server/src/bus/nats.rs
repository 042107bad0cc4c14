//! The NATS bus: how the nodes of a cluster find each other's users.
//!
//! # Subjects
//!
//! With `cluster_name` `P` (default `palaver`) and a node id `N` (random per process start):
//! - `P.node.N`: what is for node `N` only: deliveries to its users, kicks and logouts of its users, snapshots
//!   sent to it. Each node subscribes to its own.
//! - `P.all`: what every node must hear: presence changes, heartbeats, snapshot requests, group changes.
//!
//! # Presence
//!
//! Every node keeps a map of which users are connected to which *other* nodes, on which platforms (its own are
//! in its hub). It is kept by announcements, not by a database:
//! - when a user's platforms on a node change (first connection, last one gone, another platform), that node
//!   broadcasts a `Presence` with the user's platforms there (empty: gone);
//! - every node broadcasts a heartbeat each [`HEARTBEAT`]; a node first heard of is sent a full `Snapshot` of
//!   the receiver's users (that is how a starting node learns who is where), and a node not heard of for
//!   [`NODE_TIMEOUT`] is forgotten with its users (a killed node's users stop counting as online);
//! - after losing NATS and reconnecting, a node broadcasts its snapshot and a `SnapshotRequest` (it may have
//!   missed announcements both ways), and closes its own client connections: pushes sent to it while it was
//!   cut off are gone (NATS core keeps nothing), so its clients reconnect and pull what they missed.
//!
//! # What may be lost, and how it heals
//!
//! NATS core keeps nothing for a subscriber that is away, and a node may drop messages itself (its outgoing
//! queue below, or its subscriptions when it reads too slowly: a slow-consumer event). Pushes heal by the order
//! keeping and by pull. Group changes and token revocations would not: a node that missed one would keep serving
//! a stale member list from its group cache, or accepting a revoked token from its token cache. So every node
//! clears both caches when it may have missed one: when it gets NATS back, on a slow-consumer event, and when
//! another node says it is back (`Rejoined`: what that node published while cut off may never have arrived).
//! Cached tokens also expire after seconds (`service::token_cache`), which bounds what a lost revocation could
//! leave behind.
//!
//! # Publishing never waits
//!
//! The NATS client queues what it is given in a bounded buffer and, while it reconnects, stops taking more: a
//! caller of `publish` then waits until NATS is back. Callers here include the send path under a conversation's
//! lock, a connection being registered and this module's own task, so nothing calls the client directly:
//! messages go to two bounded queues (deliveries, and everything else, which goes first and cannot be crowded
//! out by a flood of pushes) read by one task that feeds the client. A full queue drops the message with a
//! warning; see above for how each kind heals.
//!
//! A push for some users is published once to each node that has any of them, carrying only that node's users.
//! The map can be a moment behind (a user who connected to node B a millisecond ago): a push that misses a
//! node this way is found by B's order keeping on the conversation's next push (`order.rs`), or pulled by the
//! client, as every missed push is.
//!
//! # Why not one subject per user
//!
//! Per-user subjects would let NATS track presence, but cost a subscription per online user on every node
//! (100,000 subscribe/unsubscribe round trips for 100,000 logins), and a group push would still need to know
//! the nodes of its members to be sent once per node rather than once per member. One subject per node and a
//! replicated map do both with a handful of subscriptions.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use futures_util::StreamExt as _;
use palaver_protocol::{constant::multi_login, envelope::Resp};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Bus;
use super::order::Sequencer;
use super::wire::{self, Envelope, Event};
use crate::hub::PushFrame;

/// How often a node says it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node silent this long is taken for dead and its users for offline.
pub(crate) const NODE_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries waiting for the NATS client (a few MB of pushes): past this, pushes to other nodes are dropped.
const DELIVERY_QUEUE: usize = 4096;
/// Other bus messages waiting for the NATS client: presence, kicks, logouts, group changes, heartbeats. Small,
/// and made at the pace of logins and admin actions, so this covers a long outage.
const CONTROL_QUEUE: usize = 16_384;
/// How long shutdown waits for queued bus messages to reach NATS.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// This node's side of the cluster.
pub(crate) struct Cluster {
    client: async_nats::Client,
    node: String,
    prefix: String,
    /// user → the other nodes it is connected to, with its platforms there.
    by_user: DashMap<String, Vec<Placement>>,
    /// node → when it was last heard of, and its users (to forget them with it).
    nodes: Mutex<HashMap<Arc<str>, NodeState>>,
    pub(super) order: Sequencer,
    fills: mpsc::UnboundedSender<String>,
    outbox: Outbox,
    stop: CancellationToken,
}

/// The queues between the callers of [`Cluster::publish`] and the NATS client (see the module docs).
struct Outbox {
    deliveries: mpsc::Sender<Outgoing>,
    control: mpsc::Sender<Outgoing>,
    /// Messages dropped since the last one that went out.
    dropped: Arc<AtomicU64>,
}

enum Outgoing {
    Publish(String, Bytes),
    /// Answered once everything queued before it (on the control queue) is with the NATS client.
    Flush(oneshot::Sender<()>),
}

/// A node a user is connected to, and the user's platforms there.
type Placement = (Arc<str>, Vec<i32>);

struct NodeState {
    seen: Instant,
    users: HashSet<String>,
}

/// The streams the cluster task consumes.
pub(crate) struct Inbound {
    mine: async_nats::Subscriber,
    all: async_nats::Subscriber,
    events: mpsc::UnboundedReceiver<async_nats::Event>,
    fills: mpsc::UnboundedReceiver<String>,
}

/// The task side of the [`Outbox`].
pub(crate) struct OutboxReceivers {
    client: async_nats::Client,
    deliveries: mpsc::Receiver<Outgoing>,
    control: mpsc::Receiver<Outgoing>,
    dropped: Arc<AtomicU64>,
}

impl Cluster {
    pub(crate) async fn connect(url: &str, cluster_name: &str) -> anyhow::Result<(Self, Inbound, OutboxReceivers)> {
        let node = crate::service::random_hex(8);
        let (event_tx, events) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .name(format!("palaver-{node}"))
            .event_callback(move |event| {
                let event_tx = event_tx.clone();
                async move {
                    let _ = event_tx.send(event);
                }
            })
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to NATS at {url}: {e}"))?;
        let prefix = cluster_name.to_string();
        let mine = client.subscribe(format!("{prefix}.node.{node}")).await?;
        let all = client.subscribe(format!("{prefix}.all")).await?;
        // The subscriptions must be in place at the server before anyone is told this node exists.
        client.flush().await?;
        let (fills_tx, fills) = mpsc::unbounded_channel();
        let (deliveries_tx, deliveries) = mpsc::channel(DELIVERY_QUEUE);
        let (control_tx, control) = mpsc::channel(CONTROL_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let outbox = OutboxReceivers { client: client.clone(), deliveries, control, dropped: dropped.clone() };
        tracing::info!(node = %node, nats = %url, cluster = %prefix, "joined the cluster");
        let cluster = Self {
            client,
            node,
            prefix,
            by_user: DashMap::new(),
            nodes: Mutex::default(),
            order: Sequencer::default(),
            fills: fills_tx,
            outbox: Outbox { deliveries: deliveries_tx, control: control_tx, dropped },
            stop: CancellationToken::new(),
        };
        Ok((cluster, Inbound { mine, all, events, fills }, outbox))
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    fn envelope(&self, event: Event) -> Bytes {
        Bytes::from(Envelope { node: self.node.clone(), event: Some(event) }.encode_to_vec())
    }

    /// Queues `event` for NATS without waiting; drops it if its queue is full (see the module docs).
    fn publish(&self, subject: String, event: Event) {
        let queue = match event {
            Event::Deliver(_) => &self.outbox.deliveries,
            _ => &self.outbox.control,
        };
        match queue.try_send(Outgoing::Publish(subject, self.envelope(event))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.outbox.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "NATS is not taking bus messages (unreachable?): dropping them until it does; pushes heal by \
                         pull, group and token caches are cleared on reconnect"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn to_node(&self, node: &str, event: Event) {
        self.publish(format!("{}.node.{node}", self.prefix), event);
    }

    fn to_all(&self, event: Event) {
        self.publish(format!("{}.all", self.prefix), event);
    }

    /// Publishes a delivery to every other node that has any of `users`, with its users minus `skip` (an empty
    /// list still orders the push there, see `Bus::deliver`).
    pub(super) fn publish_deliveries(
        &self,
        users: &[String],
        skip: Option<&str>,
        conversation_id: &str,
        seq: i64,
        frame: &PushFrame,
        except: &[u8],
    ) {
        let mut per_node: HashMap<Arc<str>, Vec<String>> = HashMap::new();
        for user in users {
            if let Some(nodes) = self.by_user.get(user) {
                for (node, _) in nodes.iter() {
                    let entry = per_node.entry(node.clone()).or_default();
                    if Some(user.as_str()) != skip {
                        entry.push(user.clone());
                    }
                }
            }
        }
        let resp = frame.resp();
        for (node, users) in per_node {
            if users.is_empty() && seq <= 0 {
                continue;
            }
            let deliver = wire::Deliver {
                users,
                conversation_id: conversation_id.to_string(),
                seq,
                req_identifier: resp.req_identifier,
                operation_id: resp.operation_id.clone(),
                data: resp.data.clone(),
                except_token_hash: except.to_vec(),
            };
            self.to_node(&node, Event::Deliver(deliver));
        }
    }

    pub(super) fn announce(&self, user_id: &str, platforms: Vec<i32>) {
        self.to_all(Event::Presence(wire::Presence { user_id: user_id.to_string(), platforms }));
    }

    /// Sends the new login to the other nodes the user is on, which apply the policy to their connections.
    pub(super) fn kick_elsewhere(&self, user_id: &str, platform_id: i32, policy: i32, keep: &[u8]) {
        if policy == multi_login::NO_KICK {
            return;
        }
        for node in self.nodes_of(user_id) {
            let kick = wire::Kick { user_id: user_id.to_string(), platform_id, policy, keep_token_hash: keep.to_vec() };
            self.to_node(&node, Event::Kick(kick));
        }
    }

    pub(super) fn logout_elsewhere(&self, user_id: &str, platform_id: Option<i32>, keep: Option<&[u8]>) {
        for node in self.nodes_of(user_id) {
            let keep_token_hash = keep.map(<[u8]>::to_vec).unwrap_or_default();
            self.to_node(
                &node,
                Event::Logout(wire::Logout { user_id: user_id.to_string(), platform_id, keep_token_hash }),
            );
        }
    }

    pub(super) fn broadcast_tokens_revoked(&self, user_id: &str, platform_id: Option<i32>) {
        self.to_all(Event::TokensRevoked(wire::TokensRevoked { user_id: user_id.to_string(), platform_id }));
    }

    pub(super) fn broadcast_group_changed(&self, group_id: &str) {
        self.to_all(Event::GroupChanged(wire::GroupChanged { group_id: group_id.to_string() }));
    }

    fn nodes_of(&self, user_id: &str) -> Vec<Arc<str>> {
        self.by_user.get(user_id).map(|n| n.iter().map(|(node, _)| node.clone()).collect()).unwrap_or_default()
    }

    pub(super) fn remote_platforms(&self, user_id: &str) -> Vec<i32> {
        self.by_user.get(user_id).map(|n| n.iter().flat_map(|(_, p)| p.iter().copied()).collect()).unwrap_or_default()
    }

    pub(super) fn schedule_fill(&self, conversation_id: String) {
        let _ = self.fills.send(conversation_id);
    }

    /// Stops the cluster task, and gives what is queued (the last presence changes) a moment to reach NATS.
    pub(super) async fn shutdown(&self) {
        self.stop.cancel();
        let (done, flushed) = oneshot::channel();
        if self.outbox.control.try_send(Outgoing::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(SHUTDOWN_FLUSH, flushed).await;
        }
        let _ = tokio::time::timeout(SHUTDOWN_FLUSH, self.client.flush()).await;
    }

    /// Records that `node` was heard from; true if it was not known (it must be sent our snapshot).
    fn heard(&self, node: &str) -> bool {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        match nodes.get_mut(node) {
            Some(state) => {
                state.seen = Instant::now();
                false
            }
            None => {
                nodes.insert(Arc::from(node), NodeState { seen: Instant::now(), users: HashSet::new() });
                tracing::info!(node, "a node joined");
                true
            }
        }
    }

    /// Sets `user`'s platforms on `node` (empty: not there).
    fn set_presence(&self, node: &str, user: &str, platforms: Vec<i32>) {
        let node: Arc<str> = {
            let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(key) = nodes.get_key_value(node).map(|(k, _)| k.clone()) else { return };
            if let Some(state) = nodes.get_mut(&key) {
                if platforms.is_empty() {
                    state.users.remove(user);
                } else {
                    state.users.insert(user.to_string());
                }
            }
            key
        };
        self.set_user_entry(&node, user, platforms);
    }

    fn set_user_entry(&self, node: &Arc<str>, user: &str, platforms: Vec<i32>) {
        if platforms.is_empty() {
            if let Some(mut entry) = self.by_user.get_mut(user) {
                entry.retain(|(n, _)| n != node);
                if entry.is_empty() {
                    drop(entry);
                    self.by_user.remove_if(user, |_, v| v.is_empty());
                }
            }
            return;
        }
        let mut entry = self.by_user.entry(user.to_string()).or_default();
        match entry.iter_mut().find(|(n, _)| n == node) {
            Some(slot) => slot.1 = platforms,
            None => entry.push((node.clone(), platforms)),
        }
    }

    /// Replaces everything known of `node` by `users` (a snapshot), or forgets it (`None`: it is gone).
    fn replace_node(&self, node: &str, users: Option<Vec<wire::Presence>>) {
        let (key, old) = {
            let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
            match &users {
                Some(users) => {
                    let key = nodes.get_key_value(node).map(|(k, _)| k.clone()).unwrap_or_else(|| Arc::from(node));
                    let fresh = users.iter().filter(|p| !p.platforms.is_empty()).map(|p| p.user_id.clone()).collect();
                    let old = nodes.insert(key.clone(), NodeState { seen: Instant::now(), users: fresh });
                    (key, old.map(|s| s.users).unwrap_or_default())
                }
                None => match nodes.remove_entry(node) {
                    Some((key, state)) => (key, state.users),
                    None => return,
                },
            }
        };
        for user in old {
            self.set_user_entry(&key, &user, Vec::new());
        }
        for p in users.unwrap_or_default() {
            self.set_user_entry(&key, &p.user_id, p.platforms);
        }
    }

    /// Forgets the nodes not heard of for [`NODE_TIMEOUT`].
    fn prune(&self) {
        let dead: Vec<Arc<str>> = {
            let nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
            nodes.iter().filter(|(_, s)| s.seen.elapsed() > NODE_TIMEOUT).map(|(n, _)| n.clone()).collect()
        };
        for node in dead {
            tracing::warn!(node = %node, "a node went silent; its users count as offline");
            self.replace_node(&node, None);
        }
    }
}

/// This node's users and their platforms, as a snapshot.
fn snapshot(bus: &Bus) -> wire::Snapshot {
    let users =
        bus.hub.online_users().into_iter().map(|(user_id, platforms)| wire::Presence { user_id, platforms }).collect();
    wire::Snapshot { users }
}

/// Starts the cluster task (reads both subjects and the connection's events, beats the heartbeat, runs fills)
/// and the task that feeds the NATS client.
pub(crate) fn spawn(bus: &Arc<Bus>, inbound: Inbound, outbox: OutboxReceivers) {
    let weak = Arc::downgrade(bus);
    tokio::spawn(run(weak, inbound));
    tokio::spawn(feed(outbox));
}

/// Feeds the NATS client from the [`Outbox`], control messages first. Waits while the client waits (NATS away),
/// which is what the queues are for. Ends when the cluster is dropped.
async fn feed(mut outbox: OutboxReceivers) {
    loop {
        let next = tokio::select! {
            biased;
            Some(next) = outbox.control.recv() => next,
            Some(next) = outbox.deliveries.recv() => next,
            else => return,
        };
        match next {
            Outgoing::Publish(subject, payload) => {
                if let Err(e) = outbox.client.publish(subject, payload).await {
                    // Only when the client is closed; a disconnected client buffers and reconnects.
                    tracing::warn!(error = %e, "NATS publish failed");
                }
            }
            Outgoing::Flush(done) => {
                let _ = done.send(());
            }
        }
        let dropped = outbox.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "NATS takes bus messages again; some were dropped meanwhile");
        }
    }
}

async fn run(bus: Weak<Bus>, mut inbound: Inbound) {
    let stop = match bus.upgrade().and_then(|b| b.cluster.as_ref().map(|c| c.stop.clone())) {
        Some(stop) => stop,
        None => return,
    };
    let mut beat = tokio::time::interval(HEARTBEAT);
    let mut lost = false;
    let mut last_slow: Option<Instant> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            msg = inbound.mine.next() => match msg {
                Some(msg) => handle(&bus, &msg.payload),
                None => return,
            },
            msg = inbound.all.next() => match msg {
                Some(msg) => handle(&bus, &msg.payload),
                None => return,
            },
            Some(conversation_id) = inbound.fills.recv() => {
                let bus = bus.clone();
                tokio::spawn(async move {
                    if let Some(bus) = bus.upgrade() {
                        bus.fill(&conversation_id).await;
                    }
                });
            }
            Some(event) = inbound.events.recv() => {
                let Some(bus) = bus.upgrade() else { return };
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("lost NATS; reconnecting");
                        lost = true;
                    }
                    async_nats::Event::Connected if lost => {
                        lost = false;
                        reconnected(&bus);
                    }
                    async_nats::Event::SlowConsumer(sid) => {
                        // Bus messages to this node were dropped: a group change or token revocation among them
                        // would leave a cache stale. One event per dropped message, so the presence resync is
                        // rate-limited.
                        bus.forget_cached();
                        if last_slow.is_none_or(|t| t.elapsed() >= NODE_TIMEOUT) {
                            last_slow = Some(Instant::now());
                            tracing::warn!(sid, "reading the bus too slowly: NATS dropped messages to this node; \
                                group and token caches cleared, asking for presence again");
                            if let Some(cluster) = &bus.cluster {
                                cluster.to_all(Event::SnapshotRequest(wire::SnapshotRequest {}));
                            }
                        }
                    }
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            }
            _ = beat.tick() => {
                let Some(bus) = bus.upgrade() else { return };
                let Some(cluster) = &bus.cluster else { return };
                cluster.to_all(Event::Heartbeat(wire::Heartbeat {}));
                cluster.prune();
            }
        }
    }
}

/// Back on NATS after an outage: forget the cached groups (changes broadcast meanwhile are lost), re-share
/// presence both ways, tell the other nodes that what this node published meanwhile may be lost, and have this
/// node's clients reconnect and pull what was pushed to them meanwhile (see the module docs).
fn reconnected(bus: &Bus) {
    let Some(cluster) = &bus.cluster else { return };
    tracing::warn!(
        "NATS is back: group and token caches cleared, re-sharing presence; closing client connections so that \
         they resync"
    );
    bus.forget_cached();
    cluster.to_all(Event::Snapshot(snapshot(bus)));
    cluster.to_all(Event::SnapshotRequest(wire::SnapshotRequest {}));
    cluster.to_all(Event::Rejoined(wire::Rejoined {}));
    bus.hub.close_all();
}

fn handle(bus: &Weak<Bus>, payload: &[u8]) {
    let Some(bus) = bus.upgrade() else { return };
    let Some(cluster) = &bus.cluster else { return };
    let envelope = match Envelope::decode(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable bus message");
            return;
        }
    };
    if envelope.node == cluster.node {
        return; // our own broadcast, echoed
    }
    let from = envelope.node;
    if cluster.heard(&from) {
        cluster.to_node(&from, Event::Snapshot(snapshot(&bus)));
    }
    let Some(event) = envelope.event else { return };
    match event {
        Event::Deliver(d) => {
            let frame = PushFrame::new(Resp {
                req_identifier: d.req_identifier,
                operation_id: d.operation_id,
                data: d.data,
                ..Resp::default()
            });
            if d.seq <= 0 && !d.except_token_hash.is_empty() {
                bus.hub.push_except(d.users.iter().map(String::as_str), &frame, &d.except_token_hash);
                return;
            }
            let users = d.users.into_iter().filter(|u| bus.hub.is_online(u)).collect();
            bus.deliver_local(&d.conversation_id, d.seq, users, frame);
        }
        Event::Presence(p) => {
            // Watchers of the user on this node hear of the change (its platforms on every node).
            let before = bus.online_platforms(&p.user_id);
            cluster.set_presence(&from, &p.user_id, p.platforms);
            let after = bus.online_platforms(&p.user_id);
            if after != before {
                bus.hub.push_status(&p.user_id, after);
            }
        }
        Event::Snapshot(s) => cluster.replace_node(&from, Some(s.users)),
        Event::SnapshotRequest(_) => cluster.to_node(&from, Event::Snapshot(snapshot(&bus))),
        Event::Heartbeat(_) => {}
        Event::Kick(kick) => {
            let bus = bus.clone();
            tokio::spawn(async move { bus.kicked_elsewhere(kick).await });
        }
        Event::Logout(l) => {
            let keep = (!l.keep_token_hash.is_empty()).then_some(&l.keep_token_hash[..]);
            bus.kick_local(&l.user_id, l.platform_id, keep);
        }
        Event::GroupChanged(g) => bus.groups.invalidate(&g.group_id),
        Event::TokensRevoked(t) => bus.tokens.revoke(&t.user_id, t.platform_id),
        Event::Rejoined(_) => {
            tracing::info!(
                node = %from,
                "a node is back on NATS: group and token caches cleared (its changes may be lost)"
            );
            bus.forget_cached();
        }
    }
}
