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
use palaver_protocol::{
    constant::{multi_login, platform, req},
    envelope::{Encoding, FrameFormat, Resp},
};
use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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

/// One live connection, as the hub sees it.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: u64,
    pub user_id: Arc<str>,
    pub platform_id: i32,
    /// Hash of the token the connection authenticated with: a kick revokes it unless the new login uses it too.
    pub token_hash: Arc<[u8]>,
    pub tx: mpsc::Sender<Outbound>,
    /// Cancelled when the connection must close now (slow consumer, shutdown).
    pub close: CancellationToken,
}

impl ConnHandle {
    /// Queues `out` without waiting. A full queue marks a slow consumer: the connection is told to close.
    /// Returns whether the frame was queued.
    pub fn offer(&self, out: Outbound) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(user = %self.user_id, conn = self.id, "slow consumer: send queue full, disconnecting");
                self.close.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The registry of live connections, by user.
#[derive(Debug, Default)]
pub struct Hub {
    users: DashMap<Arc<str>, Vec<ConnHandle>>,
    next_id: AtomicU64,
}

impl Hub {
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers `conn` and applies the multi-login `policy`: returns the user's other connections that the new
    /// one displaces (already removed from the hub; the caller kicks them).
    pub fn register(&self, conn: ConnHandle, policy: i32) -> Vec<ConnHandle> {
        let mut entry = self.users.entry(conn.user_id.clone()).or_default();
        let (kicked, kept): (Vec<_>, Vec<_>) =
            entry.drain(..).partition(|old| displaces(policy, conn.platform_id, old.platform_id));
        *entry = kept;
        entry.push(conn);
        kicked
    }

    /// Removes connection `id` of `user_id` (when it closes).
    pub fn unregister(&self, user_id: &str, id: u64) {
        if let Some(mut conns) = self.users.get_mut(user_id) {
            conns.retain(|c| c.id != id);
            if conns.is_empty() {
                drop(conns);
                self.users.remove_if(user_id, |_, v| v.is_empty());
            }
        }
    }

    /// Removes and returns the connections of `user_id` on `platform_id` (all platforms if `None`).
    pub fn take(&self, user_id: &str, platform_id: Option<i32>) -> Vec<ConnHandle> {
        let Some(mut conns) = self.users.get_mut(user_id) else {
            return Vec::new();
        };
        let (taken, kept): (Vec<_>, Vec<_>) =
            conns.drain(..).partition(|c| platform_id.is_none_or(|p| p == c.platform_id));
        *conns = kept;
        taken
    }

    /// Removes and returns the connections of `user_id` for which `pick` is true.
    pub fn take_where(&self, user_id: &str, pick: impl Fn(&ConnHandle) -> bool) -> Vec<ConnHandle> {
        let Some(mut conns) = self.users.get_mut(user_id) else {
            return Vec::new();
        };
        let (taken, kept): (Vec<_>, Vec<_>) = conns.drain(..).partition(|c| pick(c));
        *conns = kept;
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
                conn.close.cancel();
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
            close: CancellationToken::new(),
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
        assert!(slow.close.is_cancelled());
        assert!(!fast.close.is_cancelled());
        let mut got = 0;
        while fast_rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 3);
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
