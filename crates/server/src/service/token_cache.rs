//! Tokens recently found valid, so that the checks of one login read the store once rather than four times.
//!
//! A returning device checks its token on the WebSocket connect and again on each REST sync that follows,
//! within milliseconds; the profile of a login storm had those token reads at 6 % of a login's CPU. Entries
//! live [`TTL`] at most, which is all a login needs.
//!
//! **Revocation is exact on the node that revokes.** Every path that revokes tokens (a forced logout, a login
//! that displaces another, a password change, a block) writes the store and then calls
//! [`TokenCache::revoke`] through `Bus::tokens_revoked`, before it answers; the next check reads the store.
//!
//! **Other nodes hear of it over the bus** (`TokensRevoked`, broadcast). NATS core keeps nothing, so where a
//! broadcast may have been lost the bus clears the cache, as it does the group cache; and no entry outlives
//! [`TTL`], which bounds what a lost message could leave behind.
//!
//! **A load never resurrects a revoked token.** A check reads the store without holding the cache's lock, so a
//! revocation can land between the read and the insert; every revocation raises a generation, and an insert
//! whose read began before the latest revocation is dropped.
//!
//! Expiry is checked on every hit against the token's own expiry, so a cached token expires on time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token found valid is believed without reading the store again.
pub const TTL: Duration = Duration::from_secs(10);
/// Most tokens cached; past it, stale entries are swept (and everything dropped if none were stale).
const MAX_CACHED: usize = 200_000;

/// SHA-256 of a token, the key it is stored under.
pub type TokenHash = [u8; 32];

/// What a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub user_id: String,
    pub platform_id: i32,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: HashMap<TokenHash, (ValidToken, Instant)>,
    /// The cached tokens of each user, with their platforms: a revocation looks up its user's, not every entry.
    by_user: HashMap<String, Vec<(i32, TokenHash)>>,
    /// Raised by every revocation and clear.
    generation: u64,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_ttl(TTL)
    }
}

impl TokenCache {
    pub fn with_ttl(ttl: Duration) -> Self {
        Self { ttl, inner: Mutex::default() }
    }

    /// The token, if it was found valid less than the TTL ago and not revoked since.
    pub fn get(&self, hash: &TokenHash) -> Option<ValidToken> {
        let inner = self.inner.lock().expect("token cache lock");
        inner.tokens.get(hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(token, _)| token.clone())
    }

    /// Take this before reading a token from the store, and hand it to [`TokenCache::insert`].
    pub fn generation(&self) -> u64 {
        self.inner.lock().expect("token cache lock").generation
    }

    /// Remembers a token read from the store as valid, unless a revocation came after `read_from`.
    pub fn insert(&self, hash: TokenHash, token: ValidToken, read_from: u64) {
        let mut inner = self.inner.lock().expect("token cache lock");
        if inner.generation != read_from {
            return;
        }
        if inner.tokens.len() >= MAX_CACHED {
            self.sweep(&mut inner);
        }
        let owned = inner.by_user.entry(token.user_id.clone()).or_default();
        if !owned.contains(&(token.platform_id, hash)) {
            owned.push((token.platform_id, hash));
        }
        inner.tokens.insert(hash, (token, Instant::now()));
    }

    /// Forgets the tokens of `user_id` on `platform_id` (all platforms if `None`): call after revoking them in
    /// the store.
    pub fn revoke(&self, user_id: &str, platform_id: Option<i32>) {
        let mut inner = self.inner.lock().expect("token cache lock");
        inner.generation += 1;
        let Inner { tokens, by_user, .. } = &mut *inner;
        let Some(owned) = by_user.get_mut(user_id) else { return };
        owned.retain(|(platform, hash)| {
            let revoked = platform_id.is_none_or(|p| p == *platform);
            if revoked {
                tokens.remove(hash);
            }
            !revoked
        });
        if owned.is_empty() {
            by_user.remove(user_id);
        }
    }

    /// Forgets everything (a revocation elsewhere may have been missed).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("token cache lock");
        inner.generation += 1;
        inner.tokens.clear();
        inner.by_user.clear();
    }

    /// Drops entries older than the TTL, or all of them if none are.
    fn sweep(&self, inner: &mut Inner) {
        inner.tokens.retain(|_, (_, at)| at.elapsed() < self.ttl);
        if inner.tokens.len() >= MAX_CACHED {
            inner.tokens.clear();
        }
        let Inner { tokens, by_user, .. } = inner;
        by_user.retain(|_, owned| {
            owned.retain(|(_, hash)| tokens.contains_key(hash));
            !owned.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(user: &str, platform_id: i32) -> ValidToken {
        ValidToken { user_id: user.to_string(), platform_id, expires_at: i64::MAX }
    }

    #[test]
    fn a_revocation_forgets_only_that_owners_tokens() {
        let cache = TokenCache::default();
        let g = cache.generation();
        cache.insert([1; 32], token("alice", 5), g);
        cache.insert([2; 32], token("alice", 1), g);
        cache.insert([3; 32], token("bob", 5), g);
        cache.revoke("alice", Some(5));
        assert_eq!(cache.get(&[1; 32]), None);
        assert_eq!(cache.get(&[2; 32]), Some(token("alice", 1)));
        assert_eq!(cache.get(&[3; 32]), Some(token("bob", 5)));
        cache.revoke("alice", None);
        assert_eq!(cache.get(&[2; 32]), None);
        assert_eq!(cache.get(&[3; 32]), Some(token("bob", 5)));
    }

    #[test]
    fn a_read_that_a_revocation_overtook_is_not_kept() {
        let cache = TokenCache::default();
        let read_from = cache.generation();
        // The store was read (token valid), then the token was revoked, then the reader inserts.
        cache.revoke("alice", Some(5));
        cache.insert([1; 32], token("alice", 5), read_from);
        assert_eq!(cache.get(&[1; 32]), None);
        // A clear counts as a revocation too.
        let read_from = cache.generation();
        cache.clear();
        cache.insert([1; 32], token("alice", 5), read_from);
        assert_eq!(cache.get(&[1; 32]), None);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TokenCache::with_ttl(Duration::ZERO);
        cache.insert([1; 32], token("alice", 5), cache.generation());
        assert_eq!(cache.get(&[1; 32]), None);
    }

    #[test]
    fn a_full_cache_sweeps_its_stale_entries() {
        let cache = TokenCache::with_ttl(Duration::ZERO);
        let mut inner = Inner::default();
        for i in 0..3u8 {
            inner.tokens.insert([i; 32], (token("alice", 5), Instant::now()));
            inner.by_user.entry("alice".into()).or_default().push((5, [i; 32]));
        }
        cache.sweep(&mut inner);
        assert!(inner.tokens.is_empty() && inner.by_user.is_empty());
    }
}
