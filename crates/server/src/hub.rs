//! The hub: who is connected where, and delivery to them.
//!
//! Every live gateway connection registers here under its user id. Delivery never blocks and never buffers
//! without bound: each connection has a bounded queue, and a connection whose queue is full is a slow consumer.
//! It is disconnected (its client reconnects and pulls what it missed, since pull is the source of truth) rather
//! than allowed to grow memory or hold up delivery to everyone else.
//!
//! A push is encoded once per wire format, not once per recipient: every recipient's queue holds the same
//! `Arc<PushFrame>`, and the first writer of each format encodes it for all the others.

use bytes::Bytes;
use dashmap::DashMap;
use futures_util::task::AtomicWaker;
use palaver_protocol::{
    constant::{multi_login, platform, req},
    envelope::{Encoding, FrameFormat, Resp},
    pb::sdkws,
};
use prost::Message as _;
use std::collections::HashSet;
use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// What a connection's writer task is asked to send.
#[derive(Debug)]
pub enum Outbound {
    /// A reply, already encoded for this connection.
    Frame(Bytes),
    /// A push shared by many connections.
    Push(Arc<PushFrame>),
    /// A text frame (the answer to a text ping).
    Text(String),
    /// Send the 2002 kick frame, then close.
    Kick,
    /// Close after what is already queued.
    Close,
}

/// A server-initiated frame (2001 push, 2005 status), encoded lazily once per wire format.
#[derive(Debug)]
pub struct PushFrame {
    resp: Resp,
    encoded: [OnceLock<Bytes>; 4],
}

impl PushFrame {
    pub fn new(resp: Resp) -> Arc<Self> {
        Arc::new(Self { resp, encoded: Default::default() })
    }

    /// The frame before encoding (what the bus sends to other nodes).
    pub fn resp(&self) -> &Resp {
        &self.resp
    }

    /// The frame in `format`, encoding it on first use.
    pub fn bytes(&self, format: FrameFormat) -> Bytes {
        let slot = match (format.encoding, format.gzip) {
            (Encoding::Gob, false) => 0,
            (Encoding::Gob, true) => 1,
            (Encoding::Json, false) => 2,
            (Encoding::Json, true) => 3,
        };
        self.encoded[slot].get_or_init(|| Bytes::from(format.encode_resp(&self.resp))).clone()
    }
}

/// A connection's "close now" (a slow consumer, a shutdown, a failed write): raised once, from anywhere, and
/// awaited by the connection's two tasks, its reader and its writer, each with a waker slot of its own.
///
/// Not a `CancellationToken`: a poll of the token's wait takes two locks (its node's, then its `Notify`'s list of
/// waiters), and the reader and the writer poll theirs for every frame they pass: 4.5 % of the gateway's thread in
/// a chat run's profile (BENCHMARKS.md, "The fifth machine again"). Here a poll is an atomic load, and a waker
/// stored only when the task's has changed.
#[derive(Debug, Clone, Default)]
pub struct Close(Arc<CloseState>);

#[derive(Debug, Default)]
struct CloseState {
    raised: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// Which of a connection's two tasks waits for its [`Close`].
#[derive(Debug, Clone, Copy)]
pub enum Waiter {
    Reader,
    Writer,
}

impl Close {
    /// Raises it and wakes both tasks. Raising it again does nothing more.
    pub fn raise(&self) {
        self.0.raised.store(true, Ordering::SeqCst);
        self.0.reader.wake();
        self.0.writer.wake();
    }

    pub fn is_raised(&self) -> bool {
        self.0.raised.load(Ordering::SeqCst)
    }

    /// Ready once raised. Two tasks polling for the same `waiter` would take each other's wake-up.
    fn poll_raised(&self, waiter: Waiter, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_raised() {
            return Poll::Ready(());
        }
        let slot = match waiter {
            Waiter::Reader => &self.0.reader,
            Waiter::Writer => &self.0.writer,
        };
        slot.register(cx.waker());
        // Raised between the first look and the registration: its wake-up may have found the slot empty.
        if self.is_raised() { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Resolves once raised (see [`Close::poll_raised`]). Cheap to make: nothing is registered until polled.
    pub async fn raised(&self, waiter: Waiter) {
        std::future::poll_fn(|cx| self.poll_raised(waiter, cx)).await
    }
}

/// One live connection, as the hub sees it.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: u64,
    pub user_id: Arc<str>,
    pub platform_id: i32,
    /// Hash of the token the connection authenticated with: a kick revokes it unless the new login uses it too.
    pub token_hash: Arc<[u8]>,
    pub tx: mpsc::Sender<Outbound>,
    /// Raised when the connection must close now (slow consumer, shutdown).
    pub close: Close,
}

impl ConnHandle {
    /// Queues `out` without waiting. A full queue marks a slow consumer: the connection is told to close.
    /// Returns whether the frame was queued.
    pub fn offer(&self, out: Outbound) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(user = %self.user_id, conn = self.id, "slow consumer: send queue full, disconnecting");
                self.close.raise();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The registry of live connections, by user, and of who subscribed to whose online status.
///
/// Presence (WS 2005, protocol §2.9): a connection subscribes to users' online status (`SubUserOnlineStatus`);
/// whenever the set of platforms a subscribed user is connected on changes (a login, a logout, a kick, a
/// dropped connection), each subscribed connection gets an unsolicited 2005 frame with the user's platforms,
/// as upstream's gateway pushes them. A subscription lives as long as its connection. Users can also
/// subscribe over REST (`/user/subscribe_users_status`); such a subscription belongs to the user, lives in
/// memory until cancelled, and its pushes go to all of the subscriber's connections.
#[derive(Debug, Default)]
pub struct Hub {
    users: DashMap<Arc<str>, Vec<ConnHandle>>,
    next_id: AtomicU64,
    /// Connection id → the connection and the users it subscribed to.
    conn_subs: DashMap<u64, (ConnHandle, HashSet<String>)>,
    /// User → the connections subscribed to it.
    watchers: DashMap<String, HashSet<u64>>,
    /// Subscriber → the users it subscribed to over REST.
    user_subs: DashMap<String, HashSet<String>>,
    /// User → the users subscribed to it over REST.
    user_watchers: DashMap<String, HashSet<String>>,
}

/// Most users one connection or user may watch.
pub const MAX_SUBSCRIPTIONS: usize = 3000;

impl Hub {
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers `conn` and applies the multi-login `policy`: returns the user's other connections that the new
    /// one displaces (already removed from the hub; the caller kicks them).
    pub fn register(&self, conn: ConnHandle, policy: i32) -> Vec<ConnHandle> {
        let user_id = conn.user_id.clone();
        let before = self.online_platforms(&user_id);
        let kicked = {
            let mut entry = self.users.entry(user_id.clone()).or_default();
            let (kicked, kept): (Vec<_>, Vec<_>) =
                entry.drain(..).partition(|old| displaces(policy, conn.platform_id, old.platform_id));
            *entry = kept;
            entry.push(conn);
            kicked
        };
        for old in &kicked {
            self.drop_subscriptions(old.id);
        }
        self.presence_changed(&user_id, before);
        kicked
    }

    /// Removes connection `id` of `user_id` (when it closes), with its subscriptions.
    pub fn unregister(&self, user_id: &str, id: u64) {
        let before = self.online_platforms(user_id);
        if let Some(mut conns) = self.users.get_mut(user_id) {
            conns.retain(|c| c.id != id);
            if conns.is_empty() {
                drop(conns);
                self.users.remove_if(user_id, |_, v| v.is_empty());
            }
        }
        self.drop_subscriptions(id);
        self.presence_changed(user_id, before);
    }

    /// Removes and returns the connections of `user_id` that a new login on `platform_id` displaces under
    /// `policy` (a login on another node: nothing is registered here), as [`Hub::take_where`] does: their
    /// subscriptions end and the user's watchers here hear of the change.
    pub fn take_displaced(&self, user_id: &str, platform_id: i32, policy: i32) -> Vec<ConnHandle> {
        self.take_where(user_id, |old| displaces(policy, platform_id, old.platform_id))
    }

    /// Whether `user_id` has a connection here.
    pub fn is_online(&self, user_id: &str) -> bool {
        self.users.get(user_id).is_some_and(|c| !c.is_empty())
    }

    /// Every user connected here, with their platforms (sorted).
    pub fn online_users(&self) -> Vec<(String, Vec<i32>)> {
        self.users
            .iter()
            .filter(|e| !e.value().is_empty())
            .map(|e| {
                let mut platforms: Vec<i32> = e.value().iter().map(|c| c.platform_id).collect();
                platforms.sort_unstable();
                platforms.dedup();
                (e.key().to_string(), platforms)
            })
            .collect()
    }

    /// Removes and returns the connections of `user_id` for which `pick` is true (their subscriptions end, and
    /// the user's watchers hear of the change).
    pub fn take_where(&self, user_id: &str, pick: impl Fn(&ConnHandle) -> bool) -> Vec<ConnHandle> {
        let before = self.online_platforms(user_id);
        let taken = {
            let Some(mut conns) = self.users.get_mut(user_id) else {
                return Vec::new();
            };
            let (taken, kept): (Vec<_>, Vec<_>) = conns.drain(..).partition(|c| pick(c));
            *conns = kept;
            taken
        };
        for conn in &taken {
            self.drop_subscriptions(conn.id);
        }
        self.presence_changed(user_id, before);
        taken
    }

    /// Number of live connections per platform id.
    pub fn connections_by_platform(&self) -> std::collections::BTreeMap<i32, usize> {
        let mut out = std::collections::BTreeMap::new();
        for entry in self.users.iter() {
            for conn in entry.value() {
                *out.entry(conn.platform_id).or_default() += 1;
            }
        }
        out
    }

    /// Number of users with at least one live connection.
    pub fn online_user_count(&self) -> usize {
        self.users.iter().filter(|e| !e.value().is_empty()).count()
    }

    /// Applies a connection's 2005 request: subscribes `conn` to `add` and unsubscribes it from `remove`.
    /// Subscriptions past [`MAX_SUBSCRIPTIONS`] are refused with an error naming the limit.
    pub fn subscribe(&self, conn: &ConnHandle, add: &[String], remove: &[String]) -> Result<(), String> {
        let mut entry = self.conn_subs.entry(conn.id).or_insert_with(|| (conn.clone(), HashSet::new()));
        let targets = &mut entry.1;
        for user in remove {
            if targets.remove(user) {
                self.unwatch(&self.watchers, user, &conn.id);
            }
        }
        let new: Vec<&String> = add.iter().filter(|u| !targets.contains(*u)).collect();
        if targets.len() + new.len() > MAX_SUBSCRIPTIONS {
            return Err(format!("a connection may watch at most {MAX_SUBSCRIPTIONS} users"));
        }
        for user in new {
            targets.insert(user.clone());
            self.watchers.entry(user.clone()).or_default().insert(conn.id);
        }
        Ok(())
    }

    /// Applies a REST subscription change of `subscriber`.
    pub fn subscribe_user(&self, subscriber: &str, add: &[String], remove: &[String]) -> Result<(), String> {
        let mut targets = self.user_subs.entry(subscriber.to_string()).or_default();
        for user in remove {
            if targets.remove(user) {
                self.unwatch(&self.user_watchers, user, &subscriber.to_string());
            }
        }
        let new: Vec<&String> = add.iter().filter(|u| !targets.contains(*u)).collect();
        if targets.len() + new.len() > MAX_SUBSCRIPTIONS {
            return Err(format!("a user may watch at most {MAX_SUBSCRIPTIONS} users"));
        }
        for user in new {
            targets.insert(user.clone());
            self.user_watchers.entry(user.clone()).or_default().insert(subscriber.to_string());
        }
        Ok(())
    }

    /// The users `subscriber` watches: over REST, or from any of its live connections.
    pub fn subscriptions_of(&self, subscriber: &str) -> Vec<String> {
        let mut out: HashSet<String> = self.user_subs.get(subscriber).map(|t| t.clone()).unwrap_or_default();
        if let Some(conns) = self.users.get(subscriber) {
            for conn in conns.iter() {
                if let Some(entry) = self.conn_subs.get(&conn.id) {
                    out.extend(entry.1.iter().cloned());
                }
            }
        }
        let mut out: Vec<String> = out.into_iter().collect();
        out.sort();
        out
    }

    fn unwatch<K: Eq + std::hash::Hash>(&self, map: &DashMap<String, HashSet<K>>, user: &str, who: &K) {
        if let Some(mut set) = map.get_mut(user) {
            set.remove(who);
            if set.is_empty() {
                drop(set);
                map.remove_if(user, |_, v| v.is_empty());
            }
        }
    }

    fn drop_subscriptions(&self, conn_id: u64) {
        if let Some((_, (_, targets))) = self.conn_subs.remove(&conn_id) {
            for user in targets {
                self.unwatch(&self.watchers, &user, &conn_id);
            }
        }
    }

    /// Pushes `user_id`'s platforms to its watchers if they differ from `before`.
    fn presence_changed(&self, user_id: &str, before: Vec<i32>) {
        let now = self.online_platforms(user_id);
        if now == before {
            return;
        }
        self.push_status(user_id, now);
    }

    /// Pushes `platforms` as `user_id`'s online status to its watchers here (also for a change on another
    /// node, which the bus reports).
    pub fn push_status(&self, user_id: &str, now: Vec<i32>) {
        // Copy the ids out before touching `conn_subs`: `subscribe` locks the two maps the other way round.
        let ids: Vec<u64> = self.watchers.get(user_id).map(|ids| ids.iter().copied().collect()).unwrap_or_default();
        let conns: Vec<ConnHandle> = ids.iter().filter_map(|id| self.conn_subs.get(id).map(|e| e.0.clone())).collect();
        let users: Vec<String> =
            self.user_watchers.get(user_id).map(|w| w.iter().cloned().collect()).unwrap_or_default();
        if conns.is_empty() && users.is_empty() {
            return;
        }
        let tips = sdkws::SubUserOnlineStatusTips {
            subscribers: vec![sdkws::SubUserOnlineStatusElem {
                user_id: user_id.to_string(),
                online_platform_ids: now,
            }],
        };
        // Unsolicited: no msgIncr, as upstream's `PushUserOnlineStatus`.
        let frame = PushFrame::new(Resp {
            req_identifier: req::SUB_USER_ONLINE_STATUS,
            data: tips.encode_to_vec(),
            ..Resp::default()
        });
        let mut sent = HashSet::new();
        for conn in conns {
            if sent.insert(conn.id) {
                conn.offer(Outbound::Push(frame.clone()));
            }
        }
        for user in users {
            if let Some(list) = self.users.get(user.as_str()) {
                for conn in list.iter() {
                    if sent.insert(conn.id) {
                        conn.offer(Outbound::Push(frame.clone()));
                    }
                }
            }
        }
    }

    /// Queues `frame` to every connection of every user in `user_ids`. Never waits.
    pub fn push<'a>(&self, user_ids: impl IntoIterator<Item = &'a str>, frame: &Arc<PushFrame>) {
        for user_id in user_ids {
            if let Some(conns) = self.users.get(user_id) {
                for conn in conns.iter() {
                    conn.offer(Outbound::Push(frame.clone()));
                }
            }
        }
    }

    /// Like [`Hub::push`], leaving out the connections that authenticated with `token_hash`.
    pub fn push_except<'a>(
        &self,
        user_ids: impl IntoIterator<Item = &'a str>,
        frame: &Arc<PushFrame>,
        token_hash: &[u8],
    ) {
        for user_id in user_ids {
            if let Some(conns) = self.users.get(user_id) {
                for conn in conns.iter().filter(|c| *c.token_hash != *token_hash) {
                    conn.offer(Outbound::Push(frame.clone()));
                }
            }
        }
    }

    /// The platforms `user_id` is connected on.
    pub fn online_platforms(&self, user_id: &str) -> Vec<i32> {
        let mut platforms: Vec<i32> =
            self.users.get(user_id).map(|c| c.iter().map(|c| c.platform_id).collect()).unwrap_or_default();
        platforms.sort_unstable();
        platforms.dedup();
        platforms
    }

    /// Number of live connections.
    pub fn connection_count(&self) -> usize {
        self.users.iter().map(|e| e.value().len()).sum()
    }

    /// Asks every connection to close (server shutdown).
    pub fn close_all(&self) {
        for entry in self.users.iter() {
            for conn in entry.value() {
                conn.close.raise();
            }
        }
    }
}

/// Whether a new login on platform `new` displaces an existing one on `old` under `policy`.
fn displaces(policy: i32, new: i32, old: i32) -> bool {
    match policy {
        multi_login::SAME_PLATFORM_KICK => new == old,
        multi_login::SAME_CLASS_KICK => class(new) == class(old),
        multi_login::PC_AND_OTHER => is_pc(new) == is_pc(old),
        _ => false,
    }
}

/// Platform classes for the same-class policy: phones and tablets, desktops, browsers.
fn class(p: i32) -> u8 {
    match p {
        platform::IOS | platform::ANDROID | platform::ANDROID_PAD | platform::IPAD | platform::HARMONY_OS => 0,
        platform::WINDOWS | platform::OSX | platform::LINUX => 1,
        platform::WEB | platform::MINI_WEB => 2,
        _ => 3,
    }
}

fn is_pc(p: i32) -> bool {
    matches!(p, platform::WINDOWS | platform::OSX | platform::LINUX | platform::WEB)
}

/// The kick frame (2002): no data, no msgIncr.
pub fn kick_resp() -> Resp {
    Resp { req_identifier: req::KICK_ONLINE_MSG, ..Resp::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(hub: &Hub, user: &str, platform_id: i32, queue: usize) -> (ConnHandle, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(queue);
        let handle = ConnHandle {
            id: hub.next_conn_id(),
            user_id: user.into(),
            platform_id,
            token_hash: Arc::from(&b"h"[..]),
            tx,
            close: Close::default(),
        };
        (handle, rx)
    }

    #[test]
    fn same_platform_login_displaces_only_that_platform() {
        let hub = Hub::default();
        let (web1, _r1) = conn(&hub, "alice", platform::WEB, 4);
        let (ios, _r2) = conn(&hub, "alice", platform::IOS, 4);
        let (web2, _r3) = conn(&hub, "alice", platform::WEB, 4);
        assert!(hub.register(web1.clone(), multi_login::SAME_PLATFORM_KICK).is_empty());
        assert!(hub.register(ios, multi_login::SAME_PLATFORM_KICK).is_empty());
        let kicked = hub.register(web2, multi_login::SAME_PLATFORM_KICK);
        assert_eq!(kicked.iter().map(|c| c.id).collect::<Vec<_>>(), vec![web1.id]);
        assert_eq!(hub.online_platforms("alice"), vec![platform::IOS, platform::WEB]);
        assert_eq!(hub.connection_count(), 2);
    }

    #[test]
    fn no_kick_policy_keeps_everyone() {
        let hub = Hub::default();
        let (a, _r1) = conn(&hub, "u", platform::WEB, 4);
        let (b, _r2) = conn(&hub, "u", platform::WEB, 4);
        hub.register(a, multi_login::NO_KICK);
        assert!(hub.register(b, multi_login::NO_KICK).is_empty());
        assert_eq!(hub.connection_count(), 2);
    }

    /// Both of a connection's tasks wake when its close is raised, whichever waits; a wait begun after is ready at
    /// once, and a close not raised keeps them waiting.
    #[tokio::test]
    async fn a_raised_close_wakes_the_reader_and_the_writer() {
        use futures_util::FutureExt as _;
        let close = Close::default();
        let wait = |waiter| {
            let close = close.clone();
            tokio::spawn(async move { close.raised(waiter).await })
        };
        let (reader, writer) = (wait(Waiter::Reader), wait(Waiter::Writer));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!reader.is_finished() && !writer.is_finished() && !close.is_raised(), "nothing raised yet");
        close.raise();
        let within = std::time::Duration::from_secs(5);
        tokio::time::timeout(within, reader).await.expect("the reader woke").unwrap();
        tokio::time::timeout(within, writer).await.expect("the writer woke").unwrap();
        assert_eq!(close.raised(Waiter::Writer).now_or_never(), Some(()));
        assert!(close.is_raised());
    }

    #[test]
    fn a_full_queue_closes_only_the_slow_connection() {
        let hub = Hub::default();
        let (slow, _slow_rx) = conn(&hub, "slow", platform::WEB, 1);
        let (fast, mut fast_rx) = conn(&hub, "fast", platform::WEB, 8);
        hub.register(slow.clone(), 0);
        hub.register(fast.clone(), 0);
        let frame = PushFrame::new(Resp { req_identifier: req::PUSH_MSG, ..Resp::default() });
        for _ in 0..3 {
            hub.push(["slow", "fast"], &frame);
        }
        assert!(slow.close.is_raised());
        assert!(!fast.close.is_raised());
        let mut got = 0;
        while fast_rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 3);
    }

    #[test]
    fn subscriptions_end_with_their_connection() {
        let hub = Hub::default();
        let (watcher, mut rx) = conn(&hub, "alice", platform::WEB, 8);
        hub.register(watcher.clone(), multi_login::NO_KICK);
        hub.subscribe(&watcher, &["bob".to_string()], &[]).unwrap();
        let (bob, _bob_rx) = conn(&hub, "bob", platform::IOS, 8);
        hub.register(bob.clone(), multi_login::NO_KICK);
        assert!(matches!(rx.try_recv(), Ok(Outbound::Push(_))), "bob's arrival is pushed");
        assert_eq!(hub.subscriptions_of("alice"), vec!["bob".to_string()]);
        hub.unregister("alice", watcher.id);
        assert!(hub.watchers.is_empty() && hub.conn_subs.is_empty(), "nothing left of the subscription");
        hub.unregister("bob", bob.id);
        assert!(rx.try_recv().is_err(), "no push to a closed connection");
        let too_many: Vec<String> = (0..=MAX_SUBSCRIPTIONS).map(|i| format!("u{i}")).collect();
        assert!(hub.subscribe_user("carol", &too_many, &[]).is_err());
    }

    /// A login on another node displaces a connection here: the user's watchers here are told, and the displaced
    /// connection's own subscriptions end with it, as for a local login.
    #[test]
    fn a_connection_displaced_from_another_node_updates_watchers_and_subscriptions() {
        let hub = Hub::default();
        let (watcher, mut watcher_rx) = conn(&hub, "alice", platform::IOS, 8);
        hub.register(watcher.clone(), multi_login::NO_KICK);
        hub.subscribe(&watcher, &["bob".to_string()], &[]).unwrap();
        let (bob, _bob_rx) = conn(&hub, "bob", platform::WEB, 8);
        hub.register(bob.clone(), multi_login::SAME_PLATFORM_KICK);
        hub.subscribe(&bob, &["carol".to_string()], &[]).unwrap();
        assert!(matches!(watcher_rx.try_recv(), Ok(Outbound::Push(_))), "bob's arrival");

        let taken = hub.take_displaced("bob", platform::WEB, multi_login::SAME_PLATFORM_KICK);
        assert_eq!(taken.iter().map(|c| c.id).collect::<Vec<_>>(), [bob.id]);
        let Ok(Outbound::Push(frame)) = watcher_rx.try_recv() else { panic!("alice was not told bob left") };
        let tips = sdkws::SubUserOnlineStatusTips::decode(&frame.resp().data[..]).unwrap();
        assert_eq!(tips.subscribers[0].user_id, "bob");
        assert!(tips.subscribers[0].online_platform_ids.is_empty());
        assert!(!hub.conn_subs.contains_key(&bob.id), "the displaced connection's subscriptions were kept");
        assert!(!hub.watchers.contains_key("carol"));
        assert!(hub.take_displaced("bob", platform::WEB, multi_login::SAME_PLATFORM_KICK).is_empty());
    }

    #[test]
    fn a_push_is_encoded_once_per_format() {
        let frame = PushFrame::new(Resp { req_identifier: req::PUSH_MSG, data: vec![1, 2, 3], ..Resp::default() });
        let gob = FrameFormat { encoding: Encoding::Gob, gzip: false };
        let a = frame.bytes(gob);
        let b = frame.bytes(gob);
        assert_eq!(a.as_ptr(), b.as_ptr(), "second use must share the first encoding");
        assert_eq!(gob.decode_resp(&a).unwrap().data, vec![1, 2, 3]);
    }
}
