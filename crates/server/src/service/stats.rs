//! Counters for the admin console: totals since start and per-minute rates over the last hour.
//!
//! Per process and in memory: cheap enough to bump on every message (one atomic add and, once a minute, a
//! short lock), and a restart starts them over, which the console shows as the server's uptime.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Minutes of history a [`Rate`] keeps.
pub const RATE_MINUTES: usize = 60;

/// A counter with a total and per-minute buckets for the last [`RATE_MINUTES`] minutes.
#[derive(Debug)]
pub struct Rate {
    total: AtomicU64,
    /// `(minute number since start, count)`, indexed by minute modulo the length; a slot whose minute is not
    /// the one asked for is stale and counts as zero.
    buckets: Mutex<[(u64, u64); RATE_MINUTES]>,
}

impl Default for Rate {
    fn default() -> Self {
        Self { total: AtomicU64::new(0), buckets: Mutex::new([(u64::MAX, 0); RATE_MINUTES]) }
    }
}

impl Rate {
    fn add_at(&self, n: u64, minute: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut buckets[(minute % RATE_MINUTES as u64) as usize];
        if slot.0 == minute {
            slot.1 += n;
        } else {
            *slot = (minute, n);
        }
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts per minute for the last [`RATE_MINUTES`] minutes ending with `minute` (the current, still open
    /// minute last).
    fn per_minute_at(&self, minute: u64) -> Vec<u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        (0..RATE_MINUTES as u64)
            .rev()
            .map(|back| {
                let Some(m) = minute.checked_sub(back) else { return 0 };
                let slot = buckets[(m % RATE_MINUTES as u64) as usize];
                if slot.0 == m { slot.1 } else { 0 }
            })
            .collect()
    }
}

/// The server's counters.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// When the process started, in ms since the Unix epoch.
    pub started_at_ms: i64,
    /// Messages stored (user messages and stored notifications; resends of a known clientMsgID do not count).
    pub messages: Rate,
    /// Gateway connections accepted (a device coming online; reconnects count).
    pub connections: Rate,
    /// Successful password logins at `/account/login`.
    pub logins: Rate,
    /// Failed and refused password logins.
    pub login_failures: Rate,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            started_at_ms: super::now_ms(),
            messages: Rate::default(),
            connections: Rate::default(),
            logins: Rate::default(),
            login_failures: Rate::default(),
        }
    }
}

impl Stats {
    fn minute(&self) -> u64 {
        self.started.elapsed().as_secs() / 60
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Adds `n` to `rate` now.
    pub fn add(&self, rate: &Rate, n: u64) {
        rate.add_at(n, self.minute());
    }

    /// `rate` per minute over the last hour, oldest first, the current minute last.
    pub fn per_minute(&self, rate: &Rate) -> Vec<u64> {
        rate.per_minute_at(self.minute())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_roll_over_and_stale_slots_read_zero() {
        let rate = Rate::default();
        rate.add_at(2, 0);
        rate.add_at(3, 0);
        rate.add_at(1, 5);
        let now = rate.per_minute_at(5);
        assert_eq!(now.len(), RATE_MINUTES);
        assert_eq!((now[RATE_MINUTES - 1], now[RATE_MINUTES - 6], now[RATE_MINUTES - 2]), (1, 5, 0));
        // An hour later minute 0's slot is reused by minute 60; minute 0 is out of range anyway.
        rate.add_at(7, 60);
        let later = rate.per_minute_at(61);
        assert_eq!((later[RATE_MINUTES - 2], later[RATE_MINUTES - 1]), (7, 0));
        assert_eq!(later.iter().sum::<u64>(), 7 + 1, "minute 5 is still within the last hour");
        assert_eq!(rate.per_minute_at(200).iter().sum::<u64>(), 0);
        assert_eq!(rate.total(), 13);
    }
}
