//! The group-member cache: what the message path asks of a group on every message (who its members are, and
//! each one's role and mute), kept in memory instead of read from the store per message.
//!
//! A group of 100,000 members would otherwise cost a 100,000-row read per message. With the cache, a message
//! costs one map lookup; the store is read once per change of the group.
//!
//! **Invalidation is the writer's job.** Every service call that changes a group's status, its member list or a
//! member's role or mute calls [`GroupCache::invalidate`] (through `Bus::group_changed`, which also tells the
//! other nodes) after its commit and before it answers or notifies, so the next reader loads the new state.
//! Nothing expires by time: a member's mute ends by comparing its `mute_end_time` with the clock, not by
//! reloading.
//!
//! **A node that may have missed an invalidation forgets everything.** In a cluster another node's change
//! arrives as a bus message, and NATS core keeps nothing: a message sent while this node was cut off from NATS,
//! or dropped because this node read too slowly, is gone. Without a fallback the cache would keep a kicked or
//! muted member able to send, and push to a stale member list, until the next change of that group. So the bus
//! calls [`GroupCache::clear`] whenever that can have happened (NATS reconnected, a slow-consumer event, another
//! node saying it was cut off); each group is then read once more on its next message.
//!
//! **A load never resurrects stale data.** Loading reads the store without holding the cache's lock, so an
//! invalidation can happen while a load is in flight; the loaded snapshot is then kept out of the cache (the
//! caller still uses it: it was current when read). That check is by a generation counter that every
//! invalidation raises. It is global rather than per group, so a busy cache may occasionally not keep a load
//! (and read the store again next time) but never keeps one that an invalidation should have dropped.
//!
//! **Memory is bounded** by the total number of members cached and the number of groups; past either bound,
//! arbitrary groups are dropped (they are reloaded on their next message).

use palaver_store::{MemberRole, Store, StoreError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Most members cached over all groups (about 100 bytes each).
const MAX_CACHED_MEMBERS: usize = 4_000_000;
/// Most groups cached.
const MAX_CACHED_GROUPS: usize = 100_000;

/// One member as the message path sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberState {
    pub role_level: i32,
    /// Milliseconds since the Unix epoch; the member may not send before it.
    pub mute_end_time: i64,
}

/// A group as the message path sees it, at one moment.
#[derive(Debug)]
pub struct GroupSnapshot {
    /// The group's status (`group_status`): muted and dismissed groups refuse messages.
    pub status: i32,
    /// Member ids, owner first, then admins, then the others: the recipients of every group message, shared by
    /// every send and notification that fans out to them (a copy per message was a string per member per message).
    pub member_ids: Arc<[String]>,
    members: HashMap<String, MemberState>,
}

impl GroupSnapshot {
    pub fn new(status: i32, roles: Vec<MemberRole>) -> Self {
        let members = roles
            .iter()
            .map(|m| (m.user_id.clone(), MemberState { role_level: m.role_level, mute_end_time: m.mute_end_time }))
            .collect();
        Self { status, member_ids: roles.into_iter().map(|m| m.user_id).collect(), members }
    }

    /// Reads `group_id` from the store: `None` if there is no such group.
    pub async fn load(store: &dyn Store, group_id: &str) -> Result<Option<Self>, StoreError> {
        let Some(group) = store.groups(&[group_id.to_string()]).await?.pop() else {
            return Ok(None);
        };
        let roles = store.group_member_roles(group_id).await?;
        Ok(Some(Self::new(group.status, roles)))
    }

    /// The member `user_id`, if it is one.
    pub fn member(&self, user_id: &str) -> Option<MemberState> {
        self.members.get(user_id).copied()
    }

    pub fn is_member(&self, user_id: &str) -> bool {
        self.members.contains_key(user_id)
    }
}

/// The cache itself: group id → snapshot.
#[derive(Debug, Default)]
pub struct GroupCache {
    inner: RwLock<Inner>,
    /// Loads from the store so far (for tests and metrics: a message to a cached group adds none).
    loads: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    groups: HashMap<String, Arc<GroupSnapshot>>,
    /// Raised by every invalidation; a load that started before a raise is not kept.
    generation: u64,
    /// Members over all cached snapshots.
    members: usize,
}

impl GroupCache {
    /// The snapshot of `group_id`: the cached one, or else what `load` reads from the store (`None`: no such
    /// group, which is not cached), kept for next time unless an invalidation raced the load.
    pub async fn get_or_load<F, Fut, E>(&self, group_id: &str, load: F) -> Result<Option<Arc<GroupSnapshot>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<GroupSnapshot>, E>>,
    {
        if let Some(snapshot) = self.get(group_id) {
            return Ok(Some(snapshot));
        }
        let generation = self.generation();
        self.loads.fetch_add(1, Ordering::Relaxed);
        let Some(snapshot) = load().await? else {
            return Ok(None);
        };
        let snapshot = Arc::new(snapshot);
        self.insert(group_id, snapshot.clone(), generation);
        Ok(Some(snapshot))
    }

    /// How many times a snapshot was read from the store.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The cached snapshot of `group_id`, if any.
    pub fn get(&self, group_id: &str) -> Option<Arc<GroupSnapshot>> {
        self.read().groups.get(group_id).cloned()
    }

    /// The generation to pass to [`GroupCache::insert`] for a load that starts now.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Keeps `snapshot` of `group_id`, loaded from a read that began at `generation`, unless an invalidation
    /// happened since (see the module docs). Returns whether it was kept.
    pub fn insert(&self, group_id: &str, snapshot: Arc<GroupSnapshot>, generation: u64) -> bool {
        let mut inner = self.write();
        if inner.generation != generation {
            return false;
        }
        let size = snapshot.member_ids.len();
        if size > MAX_CACHED_MEMBERS {
            return false;
        }
        if let Some(old) = inner.groups.remove(group_id) {
            inner.members -= old.member_ids.len();
        }
        while !inner.groups.is_empty()
            && (inner.members + size > MAX_CACHED_MEMBERS || inner.groups.len() >= MAX_CACHED_GROUPS)
        {
            let Some(victim) = inner.groups.keys().next().cloned() else { break };
            if let Some(old) = inner.groups.remove(&victim) {
                inner.members -= old.member_ids.len();
            }
        }
        inner.members += size;
        inner.groups.insert(group_id.to_string(), snapshot);
        true
    }

    /// Drops what is cached of `group_id`: its status, members, roles or mutes changed.
    pub fn invalidate(&self, group_id: &str) {
        let mut inner = self.write();
        inner.generation += 1;
        if let Some(old) = inner.groups.remove(group_id) {
            inner.members -= old.member_ids.len();
        }
    }

    /// Drops every cached group (an invalidation of some group may have been lost, see the module docs). A load
    /// in flight is not kept either.
    pub fn clear(&self) {
        let mut inner = self.write();
        inner.generation += 1;
        inner.groups.clear();
        inner.members = 0;
    }

    /// How many groups are cached (for tests and metrics).
    pub fn len(&self) -> usize {
        self.read().groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock cannot leave the map half-updated in a way that matters (every update is a
    // few map operations), so a poisoned lock is used as it is.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(ids: &[&str]) -> Arc<GroupSnapshot> {
        let roles =
            ids.iter().map(|id| MemberRole { user_id: id.to_string(), role_level: 20, mute_end_time: 0 }).collect();
        Arc::new(GroupSnapshot::new(0, roles))
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_kept() {
        let cache = GroupCache::default();
        let before = cache.generation();
        cache.invalidate("g");
        assert!(!cache.insert("g", snapshot(&["a"]), before), "a stale load was kept");
        assert!(cache.get("g").is_none());
        let now = cache.generation();
        assert!(cache.insert("g", snapshot(&["a", "b"]), now));
        assert_eq!(*cache.get("g").unwrap().member_ids, ["a", "b"]);
        assert!(cache.get("g").unwrap().is_member("b"));
        cache.invalidate("g");
        assert!(cache.get("g").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn member_accounting_follows_replacements_and_invalidations() {
        let cache = GroupCache::default();
        let g = cache.generation();
        cache.insert("g1", snapshot(&["a", "b"]), g);
        cache.insert("g1", snapshot(&["a"]), g);
        cache.insert("g2", snapshot(&["a", "b", "c"]), g);
        assert_eq!(cache.read().members, 4);
        cache.invalidate("g2");
        assert_eq!(cache.read().members, 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn clear_drops_every_group_and_any_load_in_flight() {
        let cache = GroupCache::default();
        let g = cache.generation();
        cache.insert("g1", snapshot(&["a", "b"]), g);
        cache.insert("g2", snapshot(&["c"]), g);
        let in_flight = cache.generation();
        cache.clear();
        assert!(cache.is_empty() && cache.get("g1").is_none() && cache.get("g2").is_none());
        assert_eq!(cache.read().members, 0);
        assert!(!cache.insert("g1", snapshot(&["a", "b"]), in_flight), "a load that raced the clear was kept");
        assert!(cache.insert("g1", snapshot(&["a"]), cache.generation()));
        assert_eq!(cache.read().members, 1);
    }
}
