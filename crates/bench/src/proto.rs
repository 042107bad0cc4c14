//! What the coordinator and its workers say to each other.
//!
//! A worker process (`palaver bench <scenario> --worker`) reads one [`Job`] as the first line of its stdin,
//! then [`Control`] lines; it writes [`WorkerMsg`] lines to stdout, each prefixed with [`LINE_PREFIX`] so that
//! anything else printed there (a stray log line) is told apart. An in-process worker exchanges the same
//! values over channels.

use crate::{Scenario, stats::Recorded};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, net::IpAddr};

/// Marks protocol lines on a worker's stdout.
pub(crate) const LINE_PREFIX: &str = "@bench ";

/// One virtual user handed to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobUser {
    /// Index among all users of the run (stable across workers; encoded in clientMsgIDs).
    pub idx: u32,
    pub id: String,
    pub token: String,
    /// Index (in this job's `users`) of the user it talks to, if the scenario pairs users.
    pub peer: Option<usize>,
}

/// Everything one worker needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Job {
    pub scenario: Scenario,
    pub worker: usize,
    pub ws_url: String,
    pub api_url: String,
    /// Local source addresses to spread connections over (empty: let the kernel choose).
    pub sources: Vec<IpAddr>,
    pub format: crate::WireFormat,
    pub heartbeat: crate::HeartbeatArg,
    pub platform_id: i32,
    pub connect_concurrency: usize,
    pub users: Vec<JobUser>,
    pub params: Params,
}

/// Scenario parameters, already divided up for this worker where that applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Params {
    /// Seconds of load (chat, login, history).
    pub duration_secs: f64,
    /// chat: messages per second sent by this worker; login: logins per second started by this worker.
    pub rate: f64,
    /// group: the group; this worker sends when `group_sender` is set (its first user is the sender).
    pub group_id: String,
    pub group_sender: bool,
    pub sends: usize,
    pub interval_ms: u64,
    /// history: messages seeded per conversation, and page size; login: messages seeded per pair.
    pub seed_msgs: usize,
    pub page: usize,
    /// login: also run the REST incremental syncs.
    pub rest_sync: bool,
    /// login: most logins this worker has under way at once (each holds up to three connections).
    pub logins_in_flight: usize,
}

/// Coordinator → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Control {
    /// Begin the measured phase at this wall-clock time (µs since the Unix epoch).
    Start { at_unix_us: u64 },
    /// End: stop generating, report.
    Stop,
}

/// Cumulative counts of one worker (summed over workers by the coordinator).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Counters {
    /// Connections open now (idle, chat, group, history) or logins in flight (login).
    pub connected: u64,
    /// Connections that failed to open.
    pub connect_failed: u64,
    /// Connections that ended on their own during the run.
    pub dropped: u64,
    /// Operations started: messages sent, logins begun, pages requested.
    pub started: u64,
    /// Operations completed successfully: messages acked, logins synced, pages received.
    pub ok: u64,
    /// Operations that failed (error answer, timeout, closed connection).
    pub errors: u64,
    /// Messages pushed to a recipient (not counting the sender's own copy).
    pub delivered: u64,
    /// The sender's own copies pushed back to it (OpenIM pushes to every device of the sender too).
    pub echoes: u64,
    /// Deliveries of a message the recipient already had.
    pub duplicates: u64,
    /// Messages received in pulled pages (history, login sync).
    pub items: u64,
    /// Operations scheduled before the end of the load but never started: the virtual user was still waiting
    /// for an earlier answer (chat), or every user was mid-login (login). Non-zero means the server could not
    /// keep up with the offered rate.
    pub skipped: u64,
    /// The most of `connected` at once (summed over workers: at most the sum of their peaks).
    pub connected_peak: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, o: &Counters) {
        self.connected += o.connected;
        self.connect_failed += o.connect_failed;
        self.dropped += o.dropped;
        self.started += o.started;
        self.ok += o.ok;
        self.errors += o.errors;
        self.delivered += o.delivered;
        self.echoes += o.echoes;
        self.duplicates += o.duplicates;
        self.items += o.items;
        self.skipped += o.skipped;
        self.connected_peak += o.connected_peak;
    }

    /// Operations neither completed nor failed yet.
    pub(crate) fn in_flight(&self) -> u64 {
        self.started.saturating_sub(self.ok + self.errors)
    }
}

/// A worker's final account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WorkerResult {
    pub counters: Counters,
    /// Latency histograms by name (µs).
    pub histograms: BTreeMap<String, Recorded>,
    /// Acked messages never delivered to their recipient (chat, where both ends live in one worker).
    pub lost: u64,
    /// Delivered messages whose send was not acknowledged (an ack that timed out, say).
    pub delivered_unacked: u64,
    /// group: per send index, (deliveries seen by this worker, slowest of them in µs).
    pub per_send: BTreeMap<u32, (u64, u64)>,
    /// Connections still open and answering at the end (idle).
    pub alive_at_end: u64,
    /// Wall-clock µs of the last completion (ack, delivery, login, page), for throughput spans.
    pub last_ok_unix_us: u64,
    pub last_delivery_unix_us: u64,
    /// A few error messages, for the report.
    pub error_samples: Vec<String>,
}

/// Worker → coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WorkerMsg {
    /// Setup progress: connections opened so far, seeding done so far.
    Setup {
        connected: u64,
        failed: u64,
        seeded: u64,
    },
    /// Set up and waiting for `Start`.
    Ready {
        counters: Counters,
        seeded: u64,
        pid: u32,
    },
    /// The running totals, and the slowest latency (of any kind, in µs) recorded since the previous
    /// `Progress`: which stretch of the run made the tail.
    Progress {
        counters: Counters,
        slowest_us: u64,
    },
    Done(Box<WorkerResult>),
    Failed(String),
}
