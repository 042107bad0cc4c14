//! Login throttling against password guessing: a sliding window of failed logins per account and per source
//! address.
//!
//! Each key keeps the times of its last `limit` failures; when it holds `limit` of them and the oldest is still
//! inside the window, the key is refused until that oldest failure leaves the window. A refused attempt is not
//! checked (no password hash is computed) and not counted, so a locked-out guesser costs the server nothing
//! and cannot extend the lockout of a victim forever. A successful login clears its account's failures (not
//! its address's: one good password does not buy an address more guesses at other accounts).
//!
//! The state lives in memory, per server process: a restart forgets it, and in a cluster of N nodes behind a
//! load balancer a guesser gets up to N times the budget. Both are acceptable for a throttle whose job is to
//! turn "millions of guesses" into "a handful per window"; the budget is small either way.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Most keys one map tracks. When full, keys whose failures have all left the window are dropped; if it is
/// still full, new keys are not tracked (the other map still is). Bounds memory under a flood of made-up
/// account names from many addresses.
const MAX_KEYS: usize = 100_000;

/// The failures of one key, oldest first, at most `limit` of them.
type Failures = VecDeque<Instant>;

#[derive(Debug)]
struct Budget<K> {
    limit: usize,
    keys: Mutex<HashMap<K, Failures>>,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    fn new(limit: u32) -> Self {
        Self { limit: limit.max(1) as usize, keys: Mutex::new(HashMap::new()) }
    }

    /// How long `key` must wait, if it is over budget at `now`.
    fn wait(&self, key: &K, now: Instant, window: Duration) -> Option<Duration> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let failures = keys.get(key)?;
        let oldest = *failures.front()?;
        let until = oldest + window;
        (failures.len() >= self.limit && until > now).then(|| until - now)
    }

    fn fail(&self, key: &K, now: Instant, window: Duration) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.contains_key(key) && keys.len() >= MAX_KEYS {
            keys.retain(|_, f| f.back().is_some_and(|last| *last + window > now));
            if keys.len() >= MAX_KEYS {
                return;
            }
        }
        let failures = keys.entry(key.clone()).or_default();
        if failures.len() >= self.limit {
            failures.pop_front();
        }
        failures.push_back(now);
    }

    fn clear(&self, key: &K) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The throttle the login route consults.
#[derive(Debug)]
pub(super) struct LoginThrottle {
    window: Duration,
    accounts: Budget<String>,
    addresses: Budget<IpAddr>,
}

/// The key of a source address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64, which is what one
/// subscriber usually holds.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

impl LoginThrottle {
    pub(super) fn new(per_account: u32, per_address: u32, window: Duration) -> Self {
        Self { window, accounts: Budget::new(per_account), addresses: Budget::new(per_address) }
    }

    /// `Err(wait)` when the account or the address has used its budget of failures.
    pub(super) fn check(&self, account: &str, addr: IpAddr) -> Result<(), Duration> {
        self.check_at(account, addr, Instant::now())
    }

    fn check_at(&self, account: &str, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let by_account = self.accounts.wait(&account.to_string(), now, self.window);
        let by_address = self.addresses.wait(&address_key(addr), now, self.window);
        match by_account.into_iter().chain(by_address).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed login (wrong password, or an unknown account).
    pub(super) fn failed(&self, account: &str, addr: IpAddr) {
        self.failed_at(account, addr, Instant::now());
    }

    fn failed_at(&self, account: &str, addr: IpAddr, now: Instant) {
        self.accounts.fail(&account.to_string(), now, self.window);
        self.addresses.fail(&address_key(addr), now, self.window);
    }

    /// A successful login clears the account's failures.
    pub(super) fn succeeded(&self, account: &str) {
        self.accounts.clear(&account.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_account_is_refused_after_its_budget_until_the_oldest_failure_leaves_the_window() {
        let t = LoginThrottle::new(3, 100, MIN);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for i in 0..3 {
            assert!(t.check_at("alice", a, t0 + Duration::from_secs(i)).is_ok());
            t.failed_at("alice", a, t0 + Duration::from_secs(i));
        }
        // Refused from any address, for as long as the oldest failure is in the window.
        assert_eq!(t.check_at("alice", ip("10.9.9.9"), t0 + Duration::from_secs(10)), Err(Duration::from_secs(50)));
        assert!(t.check_at("bob", a, t0 + Duration::from_secs(10)).is_ok());
        // One failure left the window: one more attempt is allowed, and failing it refuses again.
        let later = t0 + MIN + Duration::from_millis(1);
        assert!(t.check_at("alice", a, later).is_ok());
        t.failed_at("alice", a, later);
        assert!(t.check_at("alice", a, later).is_err());
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let t = LoginThrottle::new(2, 3, MIN);
        let now = Instant::now();
        let a = ip("10.0.0.1");
        t.failed_at("alice", a, now);
        t.failed_at("alice", a, now);
        assert!(t.check_at("alice", ip("10.0.0.2"), now).is_err());
        t.succeeded("alice");
        assert!(t.check_at("alice", ip("10.0.0.2"), now).is_ok());
        t.failed_at("bob", a, now);
        // The address has 3 failures over two accounts: its budget.
        assert!(t.check_at("carol", a, now).is_err());
        assert!(t.check_at("carol", ip("10.0.0.2"), now).is_ok());
    }

    #[test]
    fn ipv6_addresses_share_a_budget_per_64() {
        let t = LoginThrottle::new(100, 1, MIN);
        let now = Instant::now();
        t.failed_at("x", ip("2001:db8:1:2:aaaa::1"), now);
        assert!(t.check_at("y", ip("2001:db8:1:2:bbbb::2"), now).is_err());
        assert!(t.check_at("y", ip("2001:db8:1:3::1"), now).is_ok());
        t.failed_at("x", ip("::ffff:192.0.2.1"), now);
        assert!(t.check_at("y", ip("192.0.2.1"), now).is_err());
    }

    #[test]
    fn a_full_map_drops_stale_keys_first() {
        let budget: Budget<u32> = Budget::new(1);
        let t0 = Instant::now();
        for k in 0..MAX_KEYS as u32 {
            budget.fail(&k, t0, MIN);
        }
        // Full of fresh keys: a new key is not tracked.
        budget.fail(&u32::MAX, t0, MIN);
        assert!(budget.wait(&u32::MAX, t0, MIN).is_none());
        // Once they are stale, they make room.
        let later = t0 + MIN * 2;
        budget.fail(&u32::MAX, later, MIN);
        assert!(budget.wait(&u32::MAX, later, MIN).is_some());
        assert_eq!(budget.keys.lock().unwrap().len(), 1);
    }
}
