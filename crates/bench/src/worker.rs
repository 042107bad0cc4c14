//! A worker: runs one share of the virtual users of a scenario and accounts for what it saw.
//!
//! The same code runs in a worker process (`palaver bench <scenario> --worker`, job and control lines on stdin,
//! reports on stdout: see [`process_main`]) or as a task of the coordinator's process (small runs and tests).
//!
//! Every worker goes through the same phases: set up (connect its users, seed data) and say `Ready`; wait for
//! `Start` (a wall-clock instant shared by all workers); generate load until the scenario's own end; keep
//! receiving until `Stop` (the coordinator sends it once the deliveries it expects have arrived, or the drain
//! time is up); report `Done` with counters and histograms.
//!
//! Latencies are measured from the *intended* send time of each operation (its slot in the open-loop
//! schedule), not from when the generator got round to it, so a stalled generator or server shows up as
//! latency instead of silently lowering the load (no coordinated omission). Deliveries are measured across
//! processes with the wall clock: the send time travels inside the clientMsgID.

use crate::{
    Scenario,
    proto::{Control, Counters, Job, LINE_PREFIX, WorkerMsg, WorkerResult},
    stats::{self, Recorded},
};
use hdrhistogram::Histogram;
use palaver_protocol::{
    constant::{content_type, msg_from, session_type},
    pb::{conversation as pbconv, group as pbgroup, msg as pbmsg, relation as pbrel, sdkws},
};
use palaver_sdk::{ConnectOptions, Connection, Event, EventKind, RestClient};
use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt},
    sync::{Semaphore, mpsc},
    task::JoinSet,
};

/// Wall-clock µs since the Unix epoch.
pub(crate) fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Maps this process's monotonic clock onto the wall clock, once, so that intended send times (instants) can
/// be written into messages as wall-clock µs.
#[derive(Debug, Clone, Copy)]
struct Clock {
    instant: Instant,
    unix_us: u64,
}

impl Clock {
    fn now() -> Self {
        Self { instant: Instant::now(), unix_us: unix_us(SystemTime::now()) }
    }

    fn unix_us(&self, t: Instant) -> u64 {
        if t >= self.instant {
            self.unix_us + t.duration_since(self.instant).as_micros() as u64
        } else {
            self.unix_us.saturating_sub(self.instant.duration_since(t).as_micros() as u64)
        }
    }

    fn instant(&self, unix_us: u64) -> Instant {
        if unix_us >= self.unix_us {
            self.instant + Duration::from_micros(unix_us - self.unix_us)
        } else {
            self.instant.checked_sub(Duration::from_micros(self.unix_us - unix_us)).unwrap_or(self.instant)
        }
    }
}

/// A clientMsgID that carries its intended send time, its sender and its number: 32 hex digits, the shape
/// of the SDKs' own ids.
fn client_msg_id(sent_unix_us: u64, sender: u32, n: u32) -> String {
    format!("{sent_unix_us:016x}{sender:08x}{n:08x}")
}

/// (send time µs, sender, number) of a bench clientMsgID.
fn parse_client_msg_id(id: &str) -> Option<(u64, u32, u32)> {
    if id.len() != 32 || !id.is_ascii() {
        return None;
    }
    Some((
        u64::from_str_radix(&id[..16], 16).ok()?,
        u32::from_str_radix(&id[16..24], 16).ok()?,
        u32::from_str_radix(&id[24..], 16).ok()?,
    ))
}

/// Counters as atomics, shared by a worker's tasks.
#[derive(Debug, Default)]
struct Atomics {
    connected: AtomicU64,
    connect_failed: AtomicU64,
    dropped: AtomicU64,
    started: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
    echoes: AtomicU64,
    duplicates: AtomicU64,
    items: AtomicU64,
    skipped: AtomicU64,
    connected_peak: AtomicU64,
    seeded: AtomicU64,
    last_ok_us: AtomicU64,
    last_delivery_us: AtomicU64,
    /// The slowest latency recorded since the last progress report (taken, and so reset, by each report).
    slowest_us: AtomicU64,
}

/// What a worker's tasks share: counters, histograms, error samples.
#[derive(Debug, Default)]
struct Shared {
    n: Atomics,
    histograms: Mutex<BTreeMap<&'static str, Histogram<u64>>>,
    error_samples: Mutex<Vec<String>>,
}

const MAX_ERROR_SAMPLES: usize = 10;

impl Shared {
    fn counters(&self) -> Counters {
        let n = &self.n;
        Counters {
            connected: n.connected.load(Relaxed),
            connect_failed: n.connect_failed.load(Relaxed),
            dropped: n.dropped.load(Relaxed),
            started: n.started.load(Relaxed),
            ok: n.ok.load(Relaxed),
            errors: n.errors.load(Relaxed),
            delivered: n.delivered.load(Relaxed),
            echoes: n.echoes.load(Relaxed),
            duplicates: n.duplicates.load(Relaxed),
            items: n.items.load(Relaxed),
            skipped: n.skipped.load(Relaxed),
            connected_peak: n.connected_peak.load(Relaxed),
        }
    }

    fn record(&self, name: &'static str, us: u64) {
        self.n.slowest_us.fetch_max(us, Relaxed);
        let mut histograms = self.histograms.lock().unwrap();
        stats::record(histograms.entry(name).or_insert_with(stats::histogram), us);
    }

    fn sample_error(&self, what: impl std::fmt::Display) {
        let mut samples = self.error_samples.lock().unwrap();
        if samples.len() < MAX_ERROR_SAMPLES {
            samples.push(what.to_string());
        }
    }

    /// An operation failed.
    fn error(&self, what: impl std::fmt::Display) {
        self.n.errors.fetch_add(1, Relaxed);
        self.sample_error(what);
    }

    /// An operation completed at `at`.
    fn ok(&self, at: SystemTime) {
        self.n.ok.fetch_add(1, Relaxed);
        self.n.last_ok_us.fetch_max(unix_us(at), Relaxed);
    }

    fn result(&self) -> WorkerResult {
        let histograms = self
            .histograms
            .lock()
            .unwrap()
            .iter()
            .map(|(name, h)| (name.to_string(), Recorded::from_histogram(h)))
            .collect();
        WorkerResult {
            counters: self.counters(),
            histograms,
            last_ok_unix_us: self.n.last_ok_us.load(Relaxed),
            last_delivery_unix_us: self.n.last_delivery_us.load(Relaxed),
            error_samples: self.error_samples.lock().unwrap().clone(),
            ..WorkerResult::default()
        }
    }
}

/// The worker's side of the conversation with the coordinator.
struct Link {
    control: mpsc::UnboundedReceiver<Control>,
    out: mpsc::UnboundedSender<WorkerMsg>,
}

impl Link {
    fn send(&self, msg: WorkerMsg) {
        let _ = self.out.send(msg);
    }

    /// Reports the setup done: connections, messages seeded, and this process.
    fn ready(&self, shared: &Shared) {
        let seeded = shared.n.seeded.load(Relaxed);
        self.send(WorkerMsg::Ready { counters: shared.counters(), seeded, pid: std::process::id() });
    }

    /// Waits for `Start`; `None` if the coordinator went away or said `Stop` first.
    async fn start(&mut self) -> Option<u64> {
        match self.control.recv().await? {
            Control::Start { at_unix_us } => Some(at_unix_us),
            Control::Stop => None,
        }
    }

    /// Waits for `Stop` (or for the coordinator to go away).
    async fn stop(&mut self) {
        while let Some(c) = self.control.recv().await {
            if matches!(c, Control::Stop) {
                return;
            }
        }
    }
}

/// Reports counters every 250 ms until dropped.
struct Reporter(tokio::task::JoinHandle<()>);

impl Reporter {
    fn start(shared: Arc<Shared>, out: mpsc::UnboundedSender<WorkerMsg>, setup: bool) -> Self {
        // The run's first window does not inherit the slowest connection of the setup.
        shared.n.slowest_us.store(0, Relaxed);
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let msg = if setup {
                    let c = shared.counters();
                    WorkerMsg::Setup {
                        connected: c.connected,
                        failed: c.connect_failed,
                        seeded: shared.n.seeded.load(Relaxed),
                    }
                } else {
                    WorkerMsg::Progress {
                        counters: shared.counters(),
                        slowest_us: shared.n.slowest_us.swap(0, Relaxed),
                    }
                };
                if out.send(msg).is_err() {
                    break;
                }
            }
        }))
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `job`, talking over `control`/`out`.
pub(crate) async fn run(job: Job, control: mpsc::UnboundedReceiver<Control>, out: mpsc::UnboundedSender<WorkerMsg>) {
    let mut link = Link { control, out };
    let shared = Arc::new(Shared::default());
    let result = match job.scenario {
        Scenario::Idle => idle(&job, &shared, &mut link).await,
        Scenario::Chat => chat(&job, &shared, &mut link).await,
        Scenario::Group => group(&job, &shared, &mut link).await,
        Scenario::Login => login(&job, &shared, &mut link).await,
        Scenario::History => history(&job, &shared, &mut link).await,
    };
    match result {
        Ok(Some(result)) => link.send(WorkerMsg::Done(Box::new(result))),
        Ok(None) => link.send(WorkerMsg::Failed("stopped before the start".into())),
        Err(e) => link.send(WorkerMsg::Failed(format!("{e:#}"))),
    }
}

/// Connect options for `user` of `job`, from the source address its index selects.
fn options(job: &Job, user: &crate::proto::JobUser) -> ConnectOptions {
    let mut options = ConnectOptions::new(&job.ws_url, &user.id, &user.token);
    options.platform_id = job.platform_id;
    options.format = job.format.frame_format();
    options.heartbeat = job.heartbeat.heartbeat();
    if !job.sources.is_empty() {
        options.source_ip = Some(job.sources[user.idx as usize % job.sources.len()]);
    }
    options
}

/// Connects every user of `job` (at most `connect_concurrency` handshakes at once). Connection-time
/// latencies go to the `connect` histogram. A user that cannot connect is `None`.
async fn connect_all(
    job: &Job,
    shared: &Arc<Shared>,
    events: &mpsc::UnboundedSender<Event>,
) -> Vec<Option<Connection>> {
    let gate = Arc::new(Semaphore::new(job.connect_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (i, user) in job.users.iter().enumerate() {
        let (options, gate, shared, events) = (options(job, user), gate.clone(), shared.clone(), events.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let began = Instant::now();
            match Connection::connect(&options, events).await {
                Ok(conn) => {
                    shared.record("connect", began.elapsed().as_micros() as u64);
                    shared.n.connected.fetch_add(1, Relaxed);
                    Some((i, conn))
                }
                Err(e) => {
                    shared.n.connect_failed.fetch_add(1, Relaxed);
                    shared.sample_error(format!("connect {}: {e}", options.user_id));
                    None
                }
            }
        });
    }
    let mut conns: Vec<Option<Connection>> = vec![None; job.users.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some((i, conn))) = joined {
            conns[i] = Some(conn);
        }
    }
    conns
}

/// Counts connections that end on their own (`dropped`) and hands pushes to `on_push`.
fn spawn_events(
    shared: Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<Event>,
    mut on_push: impl FnMut(&Event, &sdkws::PushMessages) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match &event.kind {
                EventKind::Push(push) => on_push(&event, push),
                EventKind::Closed { reason } => {
                    shared.n.dropped.fetch_add(1, Relaxed);
                    shared.n.connected.fetch_sub(1, Relaxed);
                    shared.sample_error(format!("{} disconnected: {reason}", event.user_id));
                }
                EventKind::Kicked => shared.sample_error(format!("{} was kicked", event.user_id)),
                EventKind::Other(_) => {}
            }
        }
    })
}

/// A 1:1 text message as the SDK builds it.
fn text_msg(from: &str, to: &str, client_msg_id: String, n: u32) -> sdkws::MsgData {
    sdkws::MsgData {
        send_id: from.to_string(),
        recv_id: to.to_string(),
        client_msg_id,
        sender_platform_id: palaver_protocol::constant::platform::WEB,
        session_type: session_type::SINGLE_CHAT,
        msg_from: msg_from::USER,
        content_type: content_type::TEXT,
        content: format!(r#"{{"content":"palaver bench message number {n}"}}"#).into_bytes(),
        create_time: (unix_us(SystemTime::now()) / 1000) as i64,
        status: 1,
        ..Default::default()
    }
}

async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(at.into()).await;
}

// ---------------------------------------------------------------------------------------------------------------
// idle: hold connections; at the end, check each still answers.

async fn idle(job: &Job, shared: &Arc<Shared>, link: &mut Link) -> anyhow::Result<Option<WorkerResult>> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let reporter = Reporter::start(shared.clone(), link.out.clone(), true);
    let conns = connect_all(job, shared, &events_tx).await;
    drop(reporter);
    let _events = spawn_events(shared.clone(), events, |_, _| {});
    link.ready(shared);
    if link.start().await.is_none() {
        return Ok(None);
    }
    let _reporter = Reporter::start(shared.clone(), link.out.clone(), false);
    link.stop().await;
    // Still there, still authenticated: one request each. (The connections are dropped only after the result
    // is taken, so that closing them is not counted as dropping.)
    let alive = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let mut checks = JoinSet::new();
    for conn in conns.iter().flatten() {
        let conn = conn.clone();
        let (alive, gate) = (alive.clone(), gate.clone());
        checks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            if conn.get_newest_seq().await.is_ok() {
                alive.fetch_add(1, Relaxed);
            }
        });
    }
    while checks.join_next().await.is_some() {}
    let mut result = shared.result();
    result.alive_at_end = alive.load(Relaxed);
    drop(conns);
    Ok(Some(result))
}

// ---------------------------------------------------------------------------------------------------------------
// chat: every user sends 1:1 text to its peer (both in this worker) on an open-loop schedule.

/// A set with room for the `expected` entries of a run (at most 2^24), made before it starts.
///
/// Growing a set of hundreds of thousands of entries rehashes all of them at once: tens of milliseconds in which
/// the load generator's core does nothing else, and every message that arrives meanwhile is timed late. In the
/// group run (a million deliveries) that happened at sends 46 and 92, when the set passed 7/8 of 2^19 and then
/// 2^20 entries, and those two were the run's slowest sends, the p99 of 100.
fn presized<T: std::hash::Hash + Eq>(expected: usize) -> HashSet<T> {
    HashSet::with_capacity(expected.min(1 << 24))
}

/// Key of a message in the acked/delivered sets: (sender index, number).
fn key(sender: u32, n: u32) -> u64 {
    (u64::from(sender) << 32) | u64::from(n)
}

async fn chat(job: &Job, shared: &Arc<Shared>, link: &mut Link) -> anyhow::Result<Option<WorkerResult>> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let reporter = Reporter::start(shared.clone(), link.out.clone(), true);
    let conns = connect_all(job, shared, &events_tx).await;
    let expected = (job.params.rate * job.params.duration_secs).ceil() as usize;
    let delivered = Arc::new(Mutex::new(presized(expected)));
    let acked = Arc::new(Mutex::new(presized(expected)));
    let _events = {
        let (shared, delivered) = (shared.clone(), delivered.clone());
        spawn_events(shared.clone(), events, move |event, push| {
            for msg in push.msgs.values().flat_map(|m| &m.msgs) {
                let Some((sent_us, sender, n)) = parse_client_msg_id(&msg.client_msg_id) else { continue };
                // A message of the setup (see `seed_over`), not of the measured run.
                if sent_us == SEEDED {
                    continue;
                }
                if *msg.send_id == *event.user_id {
                    shared.n.echoes.fetch_add(1, Relaxed);
                    continue;
                }
                let at = unix_us(event.at);
                shared.record("send_to_deliver", at.saturating_sub(sent_us));
                if delivered.lock().unwrap().insert(key(sender, n)) {
                    shared.n.delivered.fetch_add(1, Relaxed);
                    shared.n.last_delivery_us.fetch_max(at, Relaxed);
                } else {
                    shared.n.duplicates.fetch_add(1, Relaxed);
                }
            }
        })
    };
    seed_over(job, &conns, shared).await;
    drop(reporter);
    link.ready(shared);
    let Some(start_us) = link.start().await else { return Ok(None) };
    let _reporter = Reporter::start(shared.clone(), link.out.clone(), false);
    let clock = Clock::now();
    let start = clock.instant(start_us);
    let end = start + Duration::from_secs_f64(job.params.duration_secs);
    let senders: Vec<usize> =
        (0..job.users.len()).filter(|&i| conns[i].is_some() && job.users[i].peer.is_some()).collect();
    // Each sender sends at rate / senders, from a random phase of its period.
    let period = Duration::from_secs_f64(senders.len().max(1) as f64 / job.params.rate.max(1e-9));
    let mut tasks = JoinSet::new();
    for i in senders {
        let conn = conns[i].clone().expect("filtered");
        let me = job.users[i].clone();
        let peer = job.users[job.users[i].peer.expect("filtered")].id.clone();
        let (shared, acked) = (shared.clone(), acked.clone());
        let phase = period.mul_f64(rand::random::<f64>());
        tasks.spawn(async move {
            // This user's slots in the schedule; one at a time (a person types one message after the other),
            // so a user whose answers come late falls behind, and what is left at the end is skipped.
            let slots =
                (end.saturating_duration_since(start + phase).as_secs_f64() / period.as_secs_f64()).ceil() as u32;
            for n in 0..slots {
                let due = start + phase + period * n;
                if Instant::now() >= end {
                    shared.n.skipped.fetch_add(u64::from(slots - n), Relaxed);
                    break;
                }
                sleep_until(due).await;
                let msg = text_msg(&me.id, &peer, client_msg_id(clock.unix_us(due), me.idx, n), n);
                shared.n.started.fetch_add(1, Relaxed);
                match conn.send_msg(&msg).await {
                    Ok(_) => {
                        shared.record("send_to_ack", due.elapsed().as_micros() as u64);
                        acked.lock().unwrap().insert(key(me.idx, n));
                        shared.ok(SystemTime::now());
                    }
                    Err(e) => shared.error(format!("send from {}: {e}", me.id)),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    link.stop().await;
    // A push may trail its ack (they travel on different connections), and even the echo that came before its
    // ack on the sender's connection may still wait in the events channel: give the last ones a moment.
    let grace = Instant::now() + Duration::from_secs(5);
    let settled = || {
        let acked = acked.lock().unwrap();
        acked.is_subset(&delivered.lock().unwrap()) && shared.n.echoes.load(Relaxed) >= acked.len() as u64
    };
    while Instant::now() < grace && !settled() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut result = shared.result();
    let acked = acked.lock().unwrap();
    let delivered = delivered.lock().unwrap();
    result.lost = acked.difference(&delivered).count() as u64;
    result.delivered_unacked = delivered.difference(&acked).count() as u64;
    Ok(Some(result))
}

// ---------------------------------------------------------------------------------------------------------------
// group: one member (the first user of the sending worker) sends to the group; every online member times
// each message's arrival.

/// A (member, send number) pair already delivered.
type Seen = (Arc<str>, u32);

async fn group(job: &Job, shared: &Arc<Shared>, link: &mut Link) -> anyhow::Result<Option<WorkerResult>> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let reporter = Reporter::start(shared.clone(), link.out.clone(), true);
    let conns = connect_all(job, shared, &events_tx).await;
    drop(reporter);
    // (user, send) pairs seen, and per send: (deliveries, slowest µs).
    let seen: Arc<Mutex<HashSet<Seen>>> = Arc::new(Mutex::new(presized(conns.len() * job.params.sends)));
    let per_send: Arc<Mutex<BTreeMap<u32, (u64, u64)>>> = Arc::default();
    let _events = {
        let (shared, seen, per_send) = (shared.clone(), seen.clone(), per_send.clone());
        spawn_events(shared.clone(), events, move |event, push| {
            for msg in push.msgs.values().flat_map(|m| &m.msgs) {
                if msg.session_type != session_type::READ_GROUP_CHAT {
                    continue;
                }
                let Some((sent_us, _, n)) = parse_client_msg_id(&msg.client_msg_id) else { continue };
                if *msg.send_id == *event.user_id {
                    shared.n.echoes.fetch_add(1, Relaxed);
                    continue;
                }
                let at = unix_us(event.at);
                let latency = at.saturating_sub(sent_us);
                if !seen.lock().unwrap().insert((event.user_id.clone(), n)) {
                    shared.n.duplicates.fetch_add(1, Relaxed);
                    continue;
                }
                shared.record("send_to_deliver", latency);
                shared.n.delivered.fetch_add(1, Relaxed);
                shared.n.last_delivery_us.fetch_max(at, Relaxed);
                let mut per_send = per_send.lock().unwrap();
                let entry = per_send.entry(n).or_default();
                entry.0 += 1;
                entry.1 = entry.1.max(latency);
            }
        })
    };
    link.ready(shared);
    let Some(start_us) = link.start().await else { return Ok(None) };
    let _reporter = Reporter::start(shared.clone(), link.out.clone(), false);
    let clock = Clock::now();
    let start = clock.instant(start_us);
    if job.params.group_sender {
        let conn = conns.first().cloned().flatten().ok_or_else(|| anyhow::anyhow!("the group sender is offline"))?;
        let me = &job.users[0];
        for n in 0..job.params.sends as u32 {
            let due = start + Duration::from_millis(job.params.interval_ms) * n;
            sleep_until(due).await;
            let msg = sdkws::MsgData {
                recv_id: String::new(),
                group_id: job.params.group_id.clone(),
                session_type: session_type::READ_GROUP_CHAT,
                ..text_msg(&me.id, "", client_msg_id(clock.unix_us(due), me.idx, n), n)
            };
            shared.n.started.fetch_add(1, Relaxed);
            match conn.send_msg(&msg).await {
                Ok(_) => {
                    shared.record("send_to_ack", due.elapsed().as_micros() as u64);
                    shared.ok(SystemTime::now());
                }
                Err(e) => shared.error(format!("group send {n}: {e}")),
            }
        }
    }
    link.stop().await;
    let mut result = shared.result();
    result.per_send = per_send.lock().unwrap().clone();
    Ok(Some(result))
}

// ---------------------------------------------------------------------------------------------------------------
// login: a storm of logins, each as a returning SDK does it: connect (token check), newest seqs (1001), the
// incremental syncs over REST, read/max seqs (1006), the last message of each conversation (1002), then close.

/// The send time written into the client message ids of setup messages: never a run's.
const SEEDED: u64 = 0;

/// Seeds `job.params.seed_msgs` messages from each even user to its peer over the users' own connections, 16 in
/// flight per user: history's long conversations, and chat's users who have talked before (so that the run
/// times messages in existing conversations, not the first of each, which also creates both users' rows).
async fn seed_over(job: &Job, conns: &[Option<Connection>], shared: &Arc<Shared>) {
    let mut tasks = JoinSet::new();
    for (i, user) in job.users.iter().enumerate() {
        let (Some(conn), Some(peer)) = (conns[i].clone(), user.peer) else { continue };
        if user.idx % 2 != 0 {
            continue;
        }
        let (peer, idx, count, shared) =
            (job.users[peer].id.clone(), user.idx, job.params.seed_msgs as u32, shared.clone());
        tasks.spawn(async move {
            let mut inflight = JoinSet::new();
            for n in 0..count {
                if inflight.len() >= 16 {
                    inflight.join_next().await;
                }
                let (conn, shared) = (conn.clone(), shared.clone());
                let msg = text_msg(conn.user_id(), &peer, client_msg_id(SEEDED, idx, n), n);
                inflight.spawn(async move { send_seed(&conn, &msg, &shared).await });
            }
            while inflight.join_next().await.is_some() {}
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Sends one setup message, counted as seeded (or its error sampled).
async fn send_seed(conn: &Connection, msg: &sdkws::MsgData, shared: &Shared) {
    match conn.send_msg(msg).await {
        Ok(_) => {
            shared.n.seeded.fetch_add(1, Relaxed);
        }
        Err(e) => shared.sample_error(format!("seeding: {e}")),
    }
}

/// Seeds `job.params.seed_msgs` messages from each even user to its peer, over short-lived connections.
async fn seed_pairs(job: &Job, shared: &Arc<Shared>) {
    let gate = Arc::new(Semaphore::new(job.connect_concurrency.max(1)));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let mut tasks = JoinSet::new();
    for user in job.users.iter().filter(|u| u.peer.is_some() && u.idx % 2 == 0) {
        let peer = job.users[user.peer.expect("filtered")].id.clone();
        let (options, gate, shared, events_tx) = (options(job, user), gate.clone(), shared.clone(), events_tx.clone());
        let (count, idx) = (job.params.seed_msgs as u32, user.idx);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let conn = match Connection::connect(&options, events_tx).await {
                Ok(conn) => conn,
                Err(e) => return shared.sample_error(format!("seeding connect: {e}")),
            };
            for n in 0..count {
                send_seed(&conn, &text_msg(&options.user_id, &peer, client_msg_id(SEEDED, idx, n), n), &shared).await;
            }
            conn.close();
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn login(job: &Job, shared: &Arc<Shared>, link: &mut Link) -> anyhow::Result<Option<WorkerResult>> {
    let reporter = Reporter::start(shared.clone(), link.out.clone(), true);
    seed_pairs(job, shared).await;
    drop(reporter);
    link.ready(shared);
    let Some(start_us) = link.start().await else { return Ok(None) };
    let _reporter = Reporter::start(shared.clone(), link.out.clone(), false);
    let clock = Clock::now();
    let start = clock.instant(start_us);
    let end = start + Duration::from_secs_f64(job.params.duration_secs);
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    // Users not logged in right now; a login returns its user here when it is over.
    let mut free: VecDeque<usize> = (0..job.users.len()).collect();
    let (back_tx, mut back) = mpsc::unbounded_channel::<usize>();
    let period = Duration::from_secs_f64(1.0 / job.params.rate.max(1e-9));
    let slots = Arc::new(Semaphore::new(job.params.logins_in_flight.max(1)));
    let mut tasks = JoinSet::new();
    for n in 0u32.. {
        let due = start + period * n;
        if due >= end {
            break;
        }
        sleep_until(due).await;
        while let Ok(i) = back.try_recv() {
            free.push_back(i);
        }
        let Some(i) = free.pop_front() else {
            // Every user is mid-login: the server is behind the offered rate (or --users is too small).
            shared.n.skipped.fetch_add(1, Relaxed);
            continue;
        };
        // All slots taken (the server far behind): this login starts when one frees, late, and its latency says so.
        let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
        shared.n.started.fetch_add(1, Relaxed);
        let options = options(job, &job.users[i]);
        let (shared, events_tx, back_tx) = (shared.clone(), events_tx.clone(), back_tx.clone());
        let rest_api = job.params.rest_sync.then(|| job.api_url.clone());
        let token = job.users[i].token.clone();
        tasks.spawn(async move {
            let under_way = shared.n.connected.fetch_add(1, Relaxed) + 1;
            shared.n.connected_peak.fetch_max(under_way, Relaxed);
            match login_once(&options, &token, rest_api.as_deref(), events_tx, due, &shared).await {
                Ok(items) => {
                    shared.record("login", due.elapsed().as_micros() as u64);
                    shared.n.items.fetch_add(items, Relaxed);
                    shared.ok(SystemTime::now());
                }
                Err(e) => shared.error(format!("login {}: {e}", options.user_id)),
            }
            shared.n.connected.fetch_sub(1, Relaxed);
            drop(slot);
            let _ = back_tx.send(i);
        });
        // Reap finished logins as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    link.stop().await;
    Ok(Some(shared.result()))
}

/// One login with sync, as a device's OpenIM SDK does it: the WebSocket's message sync beside the REST syncs of
/// its lists, those over HTTP connections of the device's own (friends and joined groups at once, then
/// conversations), from the WebSocket's source address. Returns the number of messages pulled.
async fn login_once(
    options: &ConnectOptions,
    token: &str,
    rest_api: Option<&str>,
    events: mpsc::UnboundedSender<Event>,
    due: Instant,
    shared: &Shared,
) -> anyhow::Result<u64> {
    let conn = Connection::connect(options, events).await?;
    shared.record("connect", due.elapsed().as_micros() as u64);
    let user = options.user_id.clone();
    let rest_calls = async {
        let Some(api) = rest_api else { return anyhow::Ok(()) };
        let rest = RestClient::new(api).await?.with_sources(options.source_ip.into_iter().collect());
        let friends = pbrel::GetIncrementalFriendsReq { user_id: user.clone(), ..Default::default() };
        let groups = pbgroup::GetIncrementalJoinGroupReq { user_id: user.clone(), ..Default::default() };
        let (a, b) = tokio::join!(
            rest.post::<_, pbrel::GetIncrementalFriendsResp>("/friend/get_incremental_friends", Some(token), &friends),
            rest.post::<_, pbgroup::GetIncrementalJoinGroupResp>(
                "/group/get_incremental_join_groups",
                Some(token),
                &groups
            ),
        );
        a?;
        b?;
        let conversations = pbconv::GetIncrementalConversationReq { user_id: user.clone(), ..Default::default() };
        let _: pbconv::GetIncrementalConversationResp =
            rest.post("/conversation/get_incremental_conversations", Some(token), &conversations).await?;
        Ok(())
    };
    let (seqs, synced) = tokio::join!(conn.get_newest_seq(), rest_calls);
    let seqs = seqs?;
    synced?;
    let conversation_ids: Vec<String> = seqs.max_seqs.keys().cloned().collect();
    conn.has_read_and_max_seq(conversation_ids).await?;
    let ranges: Vec<sdkws::SeqRange> = seqs
        .max_seqs
        .iter()
        .filter(|(_, max)| **max > 0)
        .map(|(c, max)| sdkws::SeqRange { conversation_id: c.clone(), begin: 1, end: *max, num: 1 })
        .collect();
    let mut items = 0;
    if !ranges.is_empty() {
        let pulled = conn.pull_by_range(ranges).await?;
        items = pulled.msgs.values().map(|m| m.msgs.len() as u64).sum();
    }
    conn.close();
    Ok(items)
}

// ---------------------------------------------------------------------------------------------------------------
// history: pairs hold a long conversation; every user pages through it from the newest message back, as a
// fresh device scrolling up does (1005 with explicit seqs), as fast as answers come.

async fn history(job: &Job, shared: &Arc<Shared>, link: &mut Link) -> anyhow::Result<Option<WorkerResult>> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let reporter = Reporter::start(shared.clone(), link.out.clone(), true);
    let conns = connect_all(job, shared, &events_tx).await;
    let _events = spawn_events(shared.clone(), events, |_, _| {});
    seed_over(job, &conns, shared).await;
    // Where each reader's conversation ends.
    let mut readers = Vec::new();
    for conn in conns.iter().flatten() {
        let seqs = conn.get_newest_seq().await?;
        if let Some((conversation, max)) = seqs.max_seqs.into_iter().find(|(_, max)| *max > 0) {
            readers.push((conn.clone(), conversation, max));
        }
    }
    drop(reporter);
    link.ready(shared);
    let Some(start_us) = link.start().await else { return Ok(None) };
    let _reporter = Reporter::start(shared.clone(), link.out.clone(), false);
    let clock = Clock::now();
    let start = clock.instant(start_us);
    let end = start + Duration::from_secs_f64(job.params.duration_secs);
    let page = job.params.page.max(1) as i64;
    let mut tasks = JoinSet::new();
    for (conn, conversation, max) in readers {
        let shared = shared.clone();
        tasks.spawn(async move {
            sleep_until(start).await;
            let mut top = max;
            while Instant::now() < end {
                let low = (top - page + 1).max(1);
                let seqs: Vec<i64> = (low..=top).collect();
                let want = seqs.len() as u64;
                shared.n.started.fetch_add(1, Relaxed);
                let began = Instant::now();
                let asked = pbmsg::ConversationSeqs { conversation_id: conversation.clone(), seqs };
                match conn.pull_by_seqs(vec![asked]).await {
                    Ok(resp) => {
                        let got: u64 = resp.msgs.values().map(|m| m.msgs.len() as u64).sum();
                        if got == want {
                            shared.record("page", began.elapsed().as_micros() as u64);
                            shared.n.items.fetch_add(got, Relaxed);
                            shared.ok(SystemTime::now());
                        } else {
                            shared.error(format!("page {low}..={top} of {conversation}: {got} of {want} messages"));
                        }
                    }
                    Err(e) => shared.error(format!("page of {conversation}: {e}")),
                }
                top = if low <= 1 { max } else { low - 1 };
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    link.stop().await;
    Ok(Some(shared.result()))
}

// ---------------------------------------------------------------------------------------------------------------
// The worker process: job and control lines on stdin, reports on stdout.

/// `palaver bench <scenario> --worker`.
pub(crate) async fn process_main() -> anyhow::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let first = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("no job on stdin"))?;
    let job: Job = serde_json::from_str(&first)?;
    let (control_tx, control) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(c) = serde_json::from_str::<Control>(&line) {
                let _ = control_tx.send(c);
            }
        }
        // The coordinator is gone: stop.
        let _ = control_tx.send(Control::Stop);
    });
    let (out, mut out_rx) = mpsc::unbounded_channel::<WorkerMsg>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(msg) = out_rx.recv().await {
            let done = matches!(msg, WorkerMsg::Done(_) | WorkerMsg::Failed(_));
            let line = format!("{LINE_PREFIX}{}\n", serde_json::to_string(&msg).unwrap_or_default());
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() || done {
                break;
            }
        }
    });
    run(job, control, out).await;
    let _ = writer.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_msg_ids_carry_time_sender_and_number() {
        let id = client_msg_id(1_763_800_000_123_456, 42, 7);
        assert_eq!(id.len(), 32);
        assert_eq!(parse_client_msg_id(&id), Some((1_763_800_000_123_456, 42, 7)));
        assert_eq!(parse_client_msg_id("not-ours"), None);
    }

    #[test]
    fn clock_maps_both_ways() {
        let clock = Clock::now();
        let later = clock.instant + Duration::from_millis(5);
        assert_eq!(clock.instant(clock.unix_us(later)), later);
    }
}
