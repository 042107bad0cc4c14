//! SQLite's write lock, taken in turn by the store's two threads before they ask SQLite for it.
//!
//! The append writer and the flusher both write to SQLite: the writer the conversation rows a first message
//! creates, in its batch's path (every append of the batch waits for them), the flusher a second's messages, a
//! chunk per transaction, on a thread that runs ten nice steps below the gateway. Left to SQLite, the writer
//! waited in its busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ms and on, up to 100 ms a try, and only
//! then looks again: in `palaver bench chat`, whose 5,000 conversations all begin in the run's first second, the
//! writer slept hundreds of times a run, and a run's first seconds held messages 600–1,200 ms (BENCHMARKS.md,
//! "New conversations wait no more for the flusher").
//!
//! Here the writer goes first: it waits only for a chunk in progress, is woken the moment that ends, and a
//! chunk in progress ends early when the writer asks ([`WriteLock::wanted`]); the flusher takes its turns
//! when no writer waits. Writes through the sqlx pool (rare, and not on a message's path) still meet these two
//! at SQLite's own lock, as before.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
pub(super) struct WriteLock {
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    held: bool,
    /// Writers waiting to take the lock first.
    first_waiting: usize,
}

/// A turn at SQLite's write lock; the next one may begin when it is dropped.
#[must_use = "the turn ends when it is dropped"]
pub(super) struct Turn<'a>(&'a WriteLock);

impl WriteLock {
    /// For the append writer: the next turn, ahead of the flusher.
    pub(super) fn first(&self) -> Turn<'_> {
        let mut state = self.state();
        state.first_waiting += 1;
        while state.held {
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.first_waiting -= 1;
        state.held = true;
        Turn(self)
    }

    /// For the flusher: a turn once nobody holds the lock and no writer waits for it.
    pub(super) fn when_free(&self) -> Turn<'_> {
        let mut state = self.state();
        while state.held || state.first_waiting > 0 {
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.held = true;
        Turn(self)
    }

    /// Whether a writer waits for the turn in progress to end.
    pub(super) fn wanted(&self) -> bool {
        self.state().first_waiting > 0
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.state().held = false;
        self.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::WriteLock;

    /// A writer that asks while the flusher holds a turn is seen asking, and gets the next turn even though the
    /// flusher asked for one before it.
    #[test]
    fn the_writer_goes_before_a_waiting_flusher() {
        let lock = Arc::new(WriteLock::default());
        let flushing = lock.when_free();
        let (order_tx, order) = mpsc::channel();
        let flusher = {
            let (lock, order_tx) = (lock.clone(), order_tx.clone());
            std::thread::spawn(move || {
                let _turn = lock.when_free();
                order_tx.send("flusher").unwrap();
            })
        };
        // Give the flusher's second request time to queue first; the order must not depend on it.
        std::thread::sleep(Duration::from_millis(50));
        let writer = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let _turn = lock.first();
                order_tx.send("writer").unwrap();
            })
        };
        while !lock.wanted() {
            std::thread::yield_now();
        }
        drop(flushing);
        writer.join().unwrap();
        flusher.join().unwrap();
        assert_eq!(order.iter().collect::<Vec<_>>(), ["writer", "flusher"]);
        assert!(!lock.wanted());
    }
}
