//! Async locks by key, for serialising work on one conversation, group or upload without a map of live keys:
//! a key hashes to one of a fixed number of shards, so unrelated keys may share a lock (and wait on each other
//! briefly), but one key always gets the same one.
//!
//! Two keys of one set may share a shard, so code must never hold one lock of a set while taking another of
//! the same set: `tokio::sync::Mutex` is not reentrant and the two would deadlock whenever they collide. Where
//! work needs two kinds of lock, each kind is its own set, taken in one fixed order (a group's lock, then a
//! conversation's; see [`super::App`]).

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use tokio::sync::Mutex;

/// A fixed set of async locks, one chosen per key by hash.
pub(super) struct KeyedLocks {
    shards: Box<[Mutex<()>]>,
}

impl KeyedLocks {
    pub(super) fn new(shards: usize) -> Self {
        Self { shards: (0..shards.max(1)).map(|_| Mutex::new(())).collect() }
    }

    /// The lock that serialises work on `key`.
    pub(super) fn of(&self, key: &str) -> &Mutex<()> {
        &self.shards[self.shard(key)]
    }

    /// Which shard `key` falls in (fixed hash keys: the same in every run and on every node).
    pub(super) fn shard(&self, key: &str) -> usize {
        (BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize) % self.shards.len()
    }
}
