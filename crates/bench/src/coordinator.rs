//! The coordinator: sets the run up, drives the workers through their phases, samples the server, and merges
//! what the workers saw into a [`Report`].

use crate::{
    BenchArgs, Scenario,
    procfs::{Machine, ProcSample, Sampler, TcpCounters, pct_of_one_cpu},
    proto::{Control, Counters, Job, JobUser, LINE_PREFIX, Params, WorkerMsg, WorkerResult},
    report::{Report, TimelinePoint},
    server::{self, Target},
    stats::{self, Summary},
    worker::{self, unix_us},
};
use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use palaver_protocol::{constant::platform, pb::conversation as pbconv};
use palaver_sdk::RestClient;
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    io::IsTerminal as _,
    net::{IpAddr, Ipv4Addr},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt},
    sync::{Semaphore, mpsc},
    task::JoinSet,
};

/// The run's sizes, with the scenario's defaults filled in.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub scenario: Scenario,
    /// Users registered.
    pub users: usize,
    /// Users holding a connection during the run (the login pool for `login`).
    pub online: usize,
    pub rate: f64,
    pub duration: f64,
    pub hold: f64,
    pub sends: usize,
    pub interval_ms: u64,
    pub seed_msgs: usize,
    pub page: usize,
    pub rest_sync: bool,
    pub drain: f64,
}

impl Plan {
    fn new(args: &BenchArgs) -> anyhow::Result<Self> {
        let duration = args.duration.unwrap_or(10.0);
        let mut plan = Plan {
            scenario: args.scenario,
            users: 0,
            online: 0,
            rate: 0.0,
            duration,
            hold: 0.0,
            sends: 0,
            interval_ms: 0,
            seed_msgs: 0,
            page: 0,
            rest_sync: !args.no_rest_sync,
            drain: args.drain,
        };
        match args.scenario {
            Scenario::Idle => {
                plan.users = args.users.unwrap_or(1000);
                plan.online = plan.users;
                plan.hold = args.hold.unwrap_or(40.0);
            }
            Scenario::Chat => {
                plan.users = args.users.unwrap_or(1000);
                plan.online = plan.users;
                plan.rate = args.rate.unwrap_or(1000.0);
                plan.seed_msgs = args.history.unwrap_or(0);
                anyhow::ensure!(plan.users >= 2, "chat needs at least 2 users");
            }
            Scenario::Group => {
                plan.users = args.members.unwrap_or(1000);
                plan.online = args.online.unwrap_or(plan.users).min(plan.users);
                plan.sends = args.sends.unwrap_or(100);
                plan.interval_ms = args.interval_ms.unwrap_or(1000);
                anyhow::ensure!(plan.online >= 2, "group needs at least 2 members online");
            }
            Scenario::Login => {
                plan.users = args.users.unwrap_or(1000);
                plan.online = plan.users;
                plan.rate = args.rate.unwrap_or(500.0);
                plan.seed_msgs = args.history.unwrap_or(1);
                anyhow::ensure!(plan.users >= 2, "login needs at least 2 users");
            }
            Scenario::History => {
                plan.users = args.users.unwrap_or(100);
                plan.online = plan.users;
                plan.seed_msgs = args.history.unwrap_or(500).max(1);
                plan.page = args.page.unwrap_or(20).max(1);
                anyhow::ensure!(plan.users >= 2, "history needs at least 2 users");
            }
        }
        // Pairs: chat, login and history users talk to a peer; keep them even.
        if matches!(args.scenario, Scenario::Chat | Scenario::Login | Scenario::History) {
            plan.users -= plan.users % 2;
            plan.online = plan.users;
        }
        Ok(plan)
    }

    /// How many worker processes the virtual users are split among (`--workers 0` runs them in this process: one).
    ///
    /// As few as their connections allow (`--conns-per-worker`, under the 20,000 files a process may open): the
    /// workers share the generator's CPU, and each one more makes every operation dearer on both sides. A login
    /// storm in one process cost the generator a third less CPU per login than split over four on its one core,
    /// and the server a fifth less (fewer wake-ups of event loops taking turns, and connections kept open a third as
    /// long). In a login storm the users hold no connection between logins; a worker bounds its logins under way
    /// instead ([`Plan::logins_in_flight`]), so one does.
    fn workers(&self, args: &BenchArgs) -> usize {
        let held = if self.scenario == Scenario::Login { 0 } else { self.online };
        match args.workers {
            Some(0) => 1,
            Some(n) => n,
            None => held.div_ceil(args.conns_per_worker.max(1)).max(1),
        }
    }

    /// Most logins a worker has under way at once: each holds the WebSocket and, with REST sync, the two HTTP
    /// connections a device's SDK syncs its lists over, and however far the server falls behind a storm, a worker
    /// stays within `--conns-per-worker` connections. A login due when all are taken waits for one, and is timed
    /// from when it was due.
    fn logins_in_flight(&self, args: &BenchArgs) -> usize {
        let per_login = if self.rest_sync { 3 } else { 1 };
        (args.conns_per_worker / per_login).max(1)
    }

    /// The scenario's parameters as they appear in the report.
    fn params(&self) -> Vec<(String, Value)> {
        let mut p: Vec<(&str, Value)> = Vec::new();
        match self.scenario {
            Scenario::Idle => {
                p.push(("connections", json!(self.users)));
                p.push(("hold_secs", json!(self.hold)));
            }
            Scenario::Chat => {
                p.push(("users", json!(self.users)));
                p.push(("rate_per_sec", json!(self.rate)));
                p.push(("duration_secs", json!(self.duration)));
                p.push(("seed_msgs_per_pair", json!(self.seed_msgs)));
            }
            Scenario::Group => {
                p.push(("members", json!(self.users)));
                p.push(("online", json!(self.online)));
                p.push(("sends", json!(self.sends)));
                p.push(("interval_ms", json!(self.interval_ms)));
            }
            Scenario::Login => {
                p.push(("users", json!(self.users)));
                p.push(("rate_per_sec", json!(self.rate)));
                p.push(("duration_secs", json!(self.duration)));
                p.push(("seed_msgs_per_pair", json!(self.seed_msgs)));
                p.push(("rest_sync", json!(self.rest_sync)));
            }
            Scenario::History => {
                p.push(("readers", json!(self.users)));
                p.push(("messages_per_conversation", json!(self.seed_msgs)));
                p.push(("page", json!(self.page)));
                p.push(("duration_secs", json!(self.duration)));
            }
        }
        p.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// How long the load lasts, in seconds (deliveries may take longer).
    fn load_secs(&self) -> f64 {
        match self.scenario {
            Scenario::Idle => self.hold,
            Scenario::Group => self.sends as f64 * self.interval_ms as f64 / 1000.0,
            _ => self.duration,
        }
    }

    /// Longest the measured phase may last before the coordinator stops waiting.
    fn hard_limit(&self) -> f64 {
        match self.scenario {
            Scenario::Idle => self.hold,
            Scenario::Group => self.sends as f64 * self.interval_ms as f64 / 1000.0 + self.drain,
            _ => self.duration + self.drain,
        }
    }

    /// Whether the measured phase is over, given the workers' summed counters.
    fn finished(&self, elapsed: f64, t: &Counters, online: u64) -> bool {
        match self.scenario {
            Scenario::Idle => elapsed >= self.hold,
            Scenario::Chat => elapsed >= self.duration && t.in_flight() == 0 && t.delivered >= t.ok,
            Scenario::Group => {
                t.started >= self.sends as u64 && t.in_flight() == 0 && t.delivered >= t.ok * online.saturating_sub(1)
            }
            Scenario::Login | Scenario::History => elapsed >= self.duration && t.in_flight() == 0,
        }
    }
}

/// Progress display: an indicatif bar on a terminal, a plain line every few seconds otherwise.
struct Ui {
    bar: Option<ProgressBar>,
    plain: bool,
    last_plain: Instant,
    phase: String,
}

impl Ui {
    fn new(enabled: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self { bar: None, plain: enabled && !terminal, last_plain: Instant::now(), phase: String::new() }
            .with_bar(enabled && terminal)
    }

    fn with_bar(mut self, on: bool) -> Self {
        if on {
            let bar = ProgressBar::new(1);
            bar.enable_steady_tick(Duration::from_millis(200));
            self.bar = Some(bar);
        }
        self
    }

    fn phase(&mut self, name: &str, len: u64) {
        self.phase_with_unit(name, len, "");
    }

    fn phase_with_unit(&mut self, name: &str, len: u64, unit: &str) {
        self.phase = name.to_string();
        if let Some(bar) = &self.bar {
            let template =
                format!("{{spinner}} {{prefix:>12}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}}{unit} {{msg}}");
            bar.reset_elapsed();
            let style = ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name.to_string());
            bar.set_length(len.max(1));
            bar.set_position(0);
            bar.set_message("");
        } else if self.plain {
            eprintln!("bench: {name}…");
            self.last_plain = Instant::now();
        }
    }

    fn update(&mut self, pos: u64, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
            bar.set_message(msg.to_string());
        } else if self.plain && self.last_plain.elapsed() >= Duration::from_secs(5) {
            eprintln!("bench: {} {pos}: {msg}", self.phase);
            self.last_plain = Instant::now();
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A worker, as the coordinator holds it.
enum WorkerHandle {
    Process { stdin: tokio::process::ChildStdin, _child: Box<tokio::process::Child> },
    Local { control: mpsc::UnboundedSender<Control> },
}

impl WorkerHandle {
    async fn send(&mut self, control: &Control) -> anyhow::Result<()> {
        match self {
            WorkerHandle::Process { stdin, .. } => {
                let line = format!("{}\n", serde_json::to_string(control)?);
                stdin.write_all(line.as_bytes()).await?;
                stdin.flush().await?;
            }
            WorkerHandle::Local { control: tx } => {
                let _ = tx.send(control.clone());
            }
        }
        Ok(())
    }
}

/// Starts worker `index` with `job`; its messages arrive on `out` tagged with its index.
async fn start_worker(
    index: usize,
    job: Job,
    in_process: bool,
    out: mpsc::UnboundedSender<(usize, WorkerMsg)>,
) -> anyhow::Result<WorkerHandle> {
    if in_process {
        let (control_tx, control) = mpsc::unbounded_channel();
        let (msgs_tx, mut msgs) = mpsc::unbounded_channel();
        tokio::spawn(worker::run(job, control, msgs_tx));
        tokio::spawn(async move {
            while let Some(msg) = msgs.recv().await {
                if out.send((index, msg)).is_err() {
                    break;
                }
            }
        });
        return Ok(WorkerHandle::Local { control: control_tx });
    }
    let exe = std::env::current_exe().context("finding the palaver executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["bench", job.scenario.name(), "--worker"])
        .env("PALAVER_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting a worker process")?;
    let mut stdin = child.stdin.take().context("worker stdin")?;
    let stdout = child.stdout.take().context("worker stdout")?;
    stdin.write_all(format!("{}\n", serde_json::to_string(&job)?).as_bytes()).await?;
    stdin.flush().await?;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match line.strip_prefix(LINE_PREFIX) {
                Some(json) => match serde_json::from_str::<WorkerMsg>(json) {
                    Ok(msg) => {
                        let _ = out.send((index, msg));
                    }
                    Err(e) => eprintln!("worker {index}: unreadable report ({e})"),
                },
                None => eprintln!("worker {index}: {line}"),
            }
        }
        let _ = out.send((index, WorkerMsg::Failed("the worker process ended".into())));
    });
    Ok(WorkerHandle::Process { stdin, _child: Box::new(child) })
}

/// Registers `ids` (1000 per call, a few calls at once).
async fn register(rest: &Arc<RestClient>, admin: &str, ids: &[String], ui: &mut Ui) -> anyhow::Result<()> {
    ui.phase("register", ids.len() as u64);
    let gate = Arc::new(Semaphore::new(4));
    let mut tasks = JoinSet::new();
    for chunk in ids.chunks(1000) {
        let users: Vec<(String, String)> = chunk.iter().map(|id| (id.clone(), format!("Bench {id}"))).collect();
        let (rest, admin, gate) = (rest.clone(), admin.to_string(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            rest.user_register(&admin, &users).await.map(|()| users.len())
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined?.context("registering users")?;
        ui.update(done as u64, "");
    }
    Ok(())
}

/// Tokens of `ids` on `platform_id`, in order.
async fn tokens(
    rest: &Arc<RestClient>,
    admin: &str,
    ids: &[String],
    platform_id: i32,
    ui: &mut Ui,
) -> anyhow::Result<Vec<String>> {
    ui.phase("tokens", ids.len() as u64);
    let gate = Arc::new(Semaphore::new(64));
    let mut tasks = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let (rest, admin, gate, id) = (rest.clone(), admin.to_string(), gate.clone(), id.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            rest.get_user_token(&admin, &id, platform_id).await.map(|t| (i, t))
        });
    }
    let mut out = vec![String::new(); ids.len()];
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, token) = joined?.context("getting user tokens")?;
        out[i] = token;
        done += 1;
        if done % 256 == 0 {
            ui.update(done, "");
        }
    }
    Ok(out)
}

/// Creates the group of `ids` (owner first): 1000 at creation, the rest invited 1000 at a time.
async fn create_group(rest: &Arc<RestClient>, admin: &str, ids: &[String], ui: &mut Ui) -> anyhow::Result<String> {
    ui.phase("group", ids.len() as u64);
    let first = ids.len().min(1000);
    let group = rest.create_group(admin, &ids[0], &ids[1..first], "bench group").await.context("creating the group")?;
    ui.update(first as u64, "");
    for (n, chunk) in ids[first..].chunks(1000).enumerate() {
        rest.invite_user_to_group(admin, &group.group_id, chunk).await.context("inviting members")?;
        ui.update((first + (n + 1) * 1000).min(ids.len()) as u64, "");
    }
    Ok(group.group_id)
}

fn sources(n: usize) -> Vec<IpAddr> {
    (0..n.min(250)).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8))).collect()
}

fn fmt_count(n: f64) -> String {
    if n >= 10_000.0 { format!("{:.1}k", n / 1000.0) } else { format!("{n:.0}") }
}

pub(crate) async fn execute(args: &BenchArgs) -> anyhow::Result<Report> {
    let plan = Plan::new(args)?;
    if let Some(cpus) = &args.client_cpus {
        server::pin_self(cpus)?;
    }
    let machine = Machine::probe();
    let mut ui = Ui::new(!args.no_progress);
    ui.phase(if args.server.is_some() { "server" } else { "start server" }, 1);
    let target = Target::new(args).await?;
    let rest = Arc::new(RestClient::new(&target.api_url).await?.with_max_idle(128));
    let admin = rest.get_admin_token(&target.admin_secret, "imAdmin").await.context("getting an admin token")?;

    // Users: fresh ids every run, so that runs against one server do not collide.
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let ids: Vec<String> = (0..plan.users).map(|i| format!("b{run_id}_{i}")).collect();
    register(&rest, &admin, &ids, &mut ui).await?;
    let group_id = if plan.scenario == Scenario::Group {
        create_group(&rest, &admin, &ids, &mut ui).await?
    } else {
        String::new()
    };
    let platform_id = platform::WEB;
    let tokens = tokens(&rest, &admin, &ids[..plan.online], platform_id, &mut ui).await?;

    // Split the users among workers; pairs (2k, 2k+1) stay together so each worker accounts for its messages.
    let workers = plan.workers(args);
    let in_process = args.workers == Some(0) || (args.workers.is_none() && workers == 1);
    let mut per_worker = plan.online.div_ceil(workers);
    per_worker += per_worker % 2;
    let mut jobs = Vec::new();
    for (w, chunk) in (0..plan.online).collect::<Vec<_>>().chunks(per_worker.max(2)).enumerate() {
        let paired = matches!(plan.scenario, Scenario::Chat | Scenario::Login | Scenario::History);
        let users: Vec<JobUser> = chunk
            .iter()
            .enumerate()
            .map(|(local, &i)| JobUser {
                idx: i as u32,
                id: ids[i].clone(),
                token: tokens[i].clone(),
                peer: (paired && local ^ 1 < chunk.len()).then_some(local ^ 1),
            })
            .collect();
        let share = users.len() as f64 / plan.online as f64;
        jobs.push(Job {
            scenario: plan.scenario,
            worker: w,
            ws_url: target.ws_url.clone(),
            api_url: target.api_url.clone(),
            sources: sources(args.sources),
            format: args.format,
            heartbeat: args.heartbeat,
            platform_id,
            connect_concurrency: args.connect_concurrency,
            users,
            params: Params {
                duration_secs: plan.duration,
                rate: plan.rate * share,
                group_id: group_id.clone(),
                group_sender: w == 0,
                sends: plan.sends,
                interval_ms: plan.interval_ms,
                seed_msgs: plan.seed_msgs,
                page: plan.page,
                rest_sync: plan.rest_sync,
                logins_in_flight: plan.logins_in_flight(args),
            },
        });
    }

    // The server before any virtual user connects.
    let server_sampler =
        (!target.pids.is_empty()).then(|| Sampler::start(target.pids.clone(), Duration::from_millis(500)));
    let server_baseline = server_sampler.as_ref().and_then(Sampler::now);

    let (out_tx, mut out) = mpsc::unbounded_channel();
    let mut handles = Vec::new();
    let worker_count = jobs.len();
    for (w, job) in jobs.into_iter().enumerate() {
        handles.push(start_worker(w, job, in_process, out_tx.clone()).await?);
    }
    drop(out_tx);

    // Setup: wait for every worker to be ready.
    let setup_began = Instant::now();
    // Only the scenarios that seed set `seed_msgs`.
    let seed_total = (plan.online / 2 * plan.seed_msgs) as u64;
    ui.phase("connect", plan.online as u64 + seed_total);
    let mut setup: Vec<(u64, u64, u64)> = vec![(0, 0, 0); worker_count];
    let mut ready: Vec<Option<Counters>> = vec![None; worker_count];
    let mut worker_pids = Vec::new();
    while ready.iter().any(Option::is_none) {
        let Some((w, msg)) = out.recv().await else { bail!("the workers went away during setup") };
        match msg {
            WorkerMsg::Setup { connected, failed, seeded } => setup[w] = (connected, failed, seeded),
            WorkerMsg::Ready { counters, seeded, pid } => {
                setup[w] = (counters.connected, counters.connect_failed, seeded);
                ready[w] = Some(counters);
                if !in_process {
                    worker_pids.push(pid);
                }
            }
            WorkerMsg::Failed(e) => bail!("worker {w} failed during setup: {e}"),
            WorkerMsg::Progress { .. } | WorkerMsg::Done(_) => {}
        }
        let (c, f, s) = setup.iter().fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        let shown = if plan.scenario == Scenario::Login { s } else { c + s };
        ui.update(shown, &format!("connected {c}, failed {f}, seeded {s}"));
    }
    let setup_secs = setup_began.elapsed().as_secs_f64();
    let seeded: u64 = setup.iter().map(|s| s.2).sum();
    let ready_totals = ready.iter().flatten().fold(Counters::default(), |mut a, c| {
        a.add(c);
        a
    });
    let online = ready_totals.connected;
    let server_ready = server_sampler.as_ref().and_then(Sampler::now);
    if seeded > 0 {
        flush_seeded(&rest, &admin, &run_id).await?;
    }
    let settle_secs = settle(&target.pids).await;
    let client_pids: Vec<u32> = std::iter::once(std::process::id()).chain(worker_pids.iter().copied()).collect();
    let client_cpu = || crate::procfs::sample_all(&client_pids).map_or(0.0, |s| s.cpu_ms);
    let client_cpu_start = client_cpu();
    let tcp_before = crate::procfs::tcp_counters();
    let io_before = crate::procfs::io_stall_us();
    let load_before = crate::procfs::load_avg();

    // The measured phase.
    let start_at = SystemTime::now() + Duration::from_millis(300);
    let start_us = unix_us(start_at);
    for h in &mut handles {
        h.send(&Control::Start { at_unix_us: start_us }).await?;
    }
    tokio::time::sleep(start_at.duration_since(SystemTime::now()).unwrap_or_default()).await;
    let began = Instant::now();
    let server_start = server_sampler.as_ref().and_then(Sampler::now);
    let cores_start = crate::procfs::cpu_times();
    let run_len = plan.hard_limit();
    ui.phase_with_unit(plan.scenario.name(), plan.load_secs().ceil() as u64, " s");
    let mut latest: Vec<Counters> = ready.iter().map(|c| c.unwrap_or_default()).collect();
    let mut results: Vec<Option<WorkerResult>> = vec![None; worker_count];
    let mut timeline = Vec::new();
    let mut last_point = (Instant::now(), Counters::default());
    let mut last_client_cpu_ms = client_cpu_start;
    let mut last_io = io_before;
    // The slowest latency any worker recorded since the last timeline point.
    let mut slowest_us = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            msg = out.recv() => {
                let Some((w, msg)) = msg else { bail!("the workers went away") };
                match msg {
                    WorkerMsg::Progress { counters, slowest_us: s } => {
                        latest[w] = counters;
                        slowest_us = slowest_us.max(s);
                    }
                    WorkerMsg::Failed(e) => bail!("worker {w} failed: {e}"),
                    WorkerMsg::Done(r) => results[w] = Some(*r),
                    WorkerMsg::Setup { .. } | WorkerMsg::Ready { .. } => {}
                }
            }
            _ = tick.tick() => {
                let elapsed = began.elapsed().as_secs_f64();
                let t = latest.iter().fold(Counters::default(), |mut a, c| { a.add(c); a });
                if last_point.0.elapsed() >= Duration::from_secs(1) {
                    let dt = last_point.0.elapsed().as_secs_f64();
                    let server = server_sampler.as_ref().and_then(Sampler::last);
                    let client_cpu_ms = client_cpu();
                    let io = crate::procfs::io_stall_us();
                    timeline.push(TimelinePoint {
                        t_secs: elapsed,
                        ok_per_sec: (t.ok - last_point.1.ok) as f64 / dt,
                        delivered_per_sec: (t.delivered - last_point.1.delivered) as f64 / dt,
                        connected: t.connected,
                        errors: t.errors,
                        server_cpu_pct: server.map(|s| s.cpu_pct),
                        server_rss_bytes: server.map(|s| s.sample.rss_bytes),
                        client_cpu_pct: pct_of_one_cpu(client_cpu_ms - last_client_cpu_ms, dt),
                        slowest_ms: std::mem::take(&mut slowest_us) as f64 / 1_000.0,
                        io_stall_ms: stall_ms(io, last_io),
                    });
                    last_point = (Instant::now(), t);
                    last_client_cpu_ms = client_cpu_ms;
                    last_io = io;
                }
                let rate = timeline.last().map(|p| p.ok_per_sec.max(p.delivered_per_sec)).unwrap_or(0.0);
                let server = server_sampler.as_ref().and_then(Sampler::last).map(|s| {
                    format!(" | server {:.0}% cpu {} MiB", s.cpu_pct, s.sample.rss_bytes >> 20)
                }).unwrap_or_default();
                ui.update(
                    elapsed as u64,
                    &format!(
                        "conns {} ok {} delivered {} err {} | {}/s{server}",
                        t.connected, t.ok, t.delivered, t.errors, fmt_count(rate)
                    ),
                );
                if plan.finished(elapsed, &t, online) || elapsed >= run_len {
                    break;
                }
            }
        }
    }
    let run_secs = began.elapsed().as_secs_f64();
    let server_end = server_sampler.as_ref().and_then(Sampler::now);
    let cores_busy = crate::procfs::cpu_busy_pct(&cores_start, &crate::procfs::cpu_times());
    let load_after = crate::procfs::load_avg();
    let client_cpu_end = client_cpu();
    let tcp = crate::procfs::tcp_counters().zip(tcp_before).map(|(after, before)| after.since(&before));
    let io_stall_ms = stall_ms(crate::procfs::io_stall_us(), io_before);
    for h in &mut handles {
        h.send(&Control::Stop).await?;
    }
    ui.phase("finish", worker_count as u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while results.iter().any(Option::is_none) {
        let msg = tokio::time::timeout_at(deadline, out.recv()).await.context("workers did not report in time")?;
        let Some((w, msg)) = msg else { bail!("the workers went away before reporting") };
        match msg {
            WorkerMsg::Done(r) => results[w] = Some(*r),
            WorkerMsg::Failed(e) if results[w].is_none() => bail!("worker {w} failed: {e}"),
            _ => {}
        }
        ui.update(results.iter().flatten().count() as u64, "");
    }
    ui.finish();
    let results: Vec<WorkerResult> = results.into_iter().flatten().collect();

    let merged = Merged::of(&results);
    let server = ServerFigures {
        baseline: server_baseline,
        ready: server_ready,
        start: server_start,
        end: server_end,
        peak_rss: server_sampler.as_ref().map(Sampler::peak_rss).unwrap_or(0),
        peak_open_files: server_sampler.as_ref().map(Sampler::peak_open_files).unwrap_or(0),
    };
    let client_cpu_ms = client_cpu_end - client_cpu_start;
    let mut report = Report::new(plan.scenario, machine);
    report.params = plan.params();
    report.setup = vec![
        ("server".into(), json!(if target.spawned { "started by the bench" } else { "external" })),
        ("server_pids".into(), json!(target.pids)),
        ("server_cpus".into(), json!(args.server_cpus)),
        ("client_cpus".into(), json!(args.client_cpus)),
        ("workers".into(), json!(if in_process { 0 } else { worker_count })),
        ("sources".into(), json!(args.sources)),
        ("format".into(), json!(args.format.name())),
        ("heartbeat".into(), json!(args.heartbeat)),
        ("setup_secs".into(), json!(round(setup_secs, 3))),
        ("seeded_msgs".into(), json!(seeded)),
        ("settle_secs".into(), json!(round(settle_secs, 3))),
        // What the whole machine did meanwhile: other processes on the pinned cores distort the figures.
        ("cpu_busy_pct_per_core".into(), json!(cores_busy)),
        ("load_avg_before".into(), json!(load_before)),
        ("load_avg_after".into(), json!(load_after)),
        ("run_secs".into(), json!(round(run_secs, 3))),
    ];
    report.timeline = timeline;
    report.server_samples = server_sampler.as_ref().map(Sampler::samples).unwrap_or_default();
    report.error_samples = merged.error_samples.clone();
    fill_figures(
        &mut report,
        &plan,
        &merged,
        &server,
        FigureCtx {
            start_us,
            run_secs,
            setup_secs,
            online,
            client_cpu_ms,
            // The coordinator runs where its workers do (pinned by re-executing under `taskset`).
            client_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tcp,
            io_stall_ms,
        },
    );
    Ok(report)
}

/// Milliseconds of I/O stall between two readings of [`crate::procfs::io_stall_us`].
fn stall_ms(now: Option<u64>, then: Option<u64>) -> Option<f64> {
    now.zip(then).map(|(now, then)| round(now.saturating_sub(then) as f64 / 1_000.0, 1))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Everything the workers reported, merged.
struct Merged {
    c: Counters,
    histograms: BTreeMap<String, Histogram<u64>>,
    lost: u64,
    delivered_unacked: u64,
    per_send: BTreeMap<u32, (u64, u64)>,
    alive_at_end: u64,
    last_ok_us: u64,
    last_delivery_us: u64,
    error_samples: Vec<String>,
}

impl Merged {
    fn of(results: &[WorkerResult]) -> Self {
        let mut m = Merged {
            c: Counters::default(),
            histograms: BTreeMap::new(),
            lost: 0,
            delivered_unacked: 0,
            per_send: BTreeMap::new(),
            alive_at_end: 0,
            last_ok_us: 0,
            last_delivery_us: 0,
            error_samples: Vec::new(),
        };
        for r in results {
            m.c.add(&r.counters);
            for (name, recorded) in &r.histograms {
                recorded.merge_into(m.histograms.entry(name.clone()).or_insert_with(stats::histogram));
            }
            m.lost += r.lost;
            m.delivered_unacked += r.delivered_unacked;
            for (n, (count, slowest)) in &r.per_send {
                let e = m.per_send.entry(*n).or_default();
                e.0 += count;
                e.1 = e.1.max(*slowest);
            }
            m.alive_at_end += r.alive_at_end;
            m.last_ok_us = m.last_ok_us.max(r.last_ok_unix_us);
            m.last_delivery_us = m.last_delivery_us.max(r.last_delivery_unix_us);
            m.error_samples.extend(r.error_samples.iter().take(5).cloned());
        }
        m
    }

    fn summary(&self, name: &str) -> Summary {
        self.histograms.get(name).map(Summary::of).unwrap_or_default()
    }
}

/// Readings of the server's process at the phase boundaries.
struct ServerFigures {
    baseline: Option<ProcSample>,
    ready: Option<ProcSample>,
    start: Option<ProcSample>,
    end: Option<ProcSample>,
    peak_rss: u64,
    peak_open_files: u64,
}

impl ServerFigures {
    /// CPU ms the server used during the measured phase.
    fn cpu_ms(&self) -> Option<f64> {
        Some(self.end?.cpu_ms - self.start?.cpu_ms)
    }
}

struct FigureCtx {
    start_us: u64,
    run_secs: f64,
    setup_secs: f64,
    online: u64,
    client_cpu_ms: f64,
    /// CPUs the load generator may run on (those of `--client-cpus`, else the machine's).
    client_cpus: usize,
    /// What the machine's TCP counted during the run (none off Linux).
    tcp: Option<TcpCounters>,
    /// How long some task of the machine waited on I/O during the run (none without the kernel's pressure figures).
    io_stall_ms: Option<f64>,
}

/// How busy the load generator's CPUs may be before its own queueing shows in the latencies it measures: a login
/// storm's generator at 98 % started each login late, and the lateness counts (latency is timed from when each
/// operation was due).
const CLIENT_BUSY_PCT: f64 = 90.0;

/// The load generator's CPU over the run, and a note when it was nearly as busy as it could be.
fn client_figures(report: &mut Report, ctx: &FigureCtx) {
    report.figure("client_cpu_ms", json!(round(ctx.client_cpu_ms, 1)));
    // Of one CPU, as `server_cpu_pct`.
    let pct = pct_of_one_cpu(ctx.client_cpu_ms, ctx.run_secs);
    report.figure("client_cpu_pct", json!(round(pct, 1)));
    let of_its_cpus = pct / ctx.client_cpus.max(1) as f64;
    if of_its_cpus >= CLIENT_BUSY_PCT {
        report.notes.push(format!(
            "the load generator kept its {} CPU(s) {of_its_cpus:.0} % busy: the latencies include its own queueing",
            ctx.client_cpus
        ));
    }
}

/// What the kernel's TCP counted during the run, machine-wide, and a note when it dropped handshakes: a client
/// whose handshake is dropped from a full accept queue sends it again about a second later, and that second is in
/// the latencies (a login storm's accept loop that fell behind, "The sixth machine, a fourth session" in
/// BENCHMARKS.md, was found this way).
fn tcp_figures(report: &mut Report, tcp: Option<&TcpCounters>) {
    report.figure("tcp_retransmitted_segments", json!(tcp.map(|t| t.retransmitted)));
    report.figure("tcp_loss_probes", json!(tcp.map(|t| t.loss_probes)));
    report.figure("tcp_listen_overflows", json!(tcp.map(|t| t.listen_overflows)));
    if let Some(dropped) = tcp.map(|t| t.listen_overflows).filter(|n| *n > 0) {
        report.notes.push(format!(
            "the kernel dropped {dropped} handshake(s) from full accept queues (ListenOverflows, machine-wide): each \
             is sent again about a second later, in the latencies"
        ));
    }
}

/// Has the server move the setup's messages into its database before the run rather than during it. Palaver's
/// embedded store journals a message and, every few seconds, moves the journal into SQLite, where a conversation's
/// first message also makes its rows; a conversation sync that needs rows not made yet has the journal moved at
/// once. Left to the journal's clock, the seeded messages' move fell in a run's first second, and the logins there
/// waited for it: a first second's slowest login of 400–580 ms in login runs whose other seconds' slowest were
/// under 30 ms. So a fresh pair of users talks, as the last thing journaled, and one of them syncs. (A server
/// that writes each message through just answers.)
async fn flush_seeded(rest: &RestClient, admin: &str, run_id: &str) -> anyhow::Result<()> {
    let (from, to) = (format!("b{run_id}_flush_a"), format!("b{run_id}_flush_b"));
    rest.user_register(admin, &[(from.clone(), from.clone()), (to.clone(), to.clone())]).await?;
    let text = json!({
        "sendID": from, "recvID": to, "sessionType": 1, "contentType": 101, "content": {"content": "setup done"}
    });
    let _: Value = rest.post("/msg/send_msg", Some(admin), &text).await.context("sending the setup's last message")?;
    let req = pbconv::GetIncrementalConversationReq { user_id: from, ..Default::default() };
    let _: pbconv::GetIncrementalConversationResp = rest
        .post("/conversation/get_incremental_conversations", Some(admin), &req)
        .await
        .context("syncing the setup's last conversation")?;
    Ok(())
}

/// A window of the server's CPU use while it settles.
const SETTLE_WINDOW: Duration = Duration::from_millis(250);
/// The server is quiet in a window in which it used less CPU than this (a tenth of a core).
const SETTLE_BUSY_MS: f64 = 25.0;
/// How long the server must stay quiet: through the checkpoint that may follow the seeded messages' move into
/// SQLite ([`flush_seeded`]).
const SETTLE_QUIET: Duration = Duration::from_secs(2);
/// The longest wait for a quiet server; past it the run starts anyway.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// Waits until the servers `pids` have done the work the setup left them (the seeded messages' flush from the
/// journal into SQLite, a checkpoint), so that the measured phase is charged with its own work only: until they
/// have stayed quiet for [`SETTLE_QUIET`], at most [`SETTLE_LIMIT`]. Returns the seconds waited (0 with no server
/// to watch).
async fn settle(pids: &[u32]) -> f64 {
    let cpu_ms = || crate::procfs::sample_all(pids).map(|s| s.cpu_ms);
    let began = Instant::now();
    let mut quiet_since = began;
    let Some(mut last) = cpu_ms() else { return 0.0 };
    while began.elapsed() < SETTLE_LIMIT && quiet_since.elapsed() < SETTLE_QUIET {
        tokio::time::sleep(SETTLE_WINDOW).await;
        // The servers are gone: nothing left to wait for (the run reports it).
        let Some(now) = cpu_ms() else { break };
        if now - last >= SETTLE_BUSY_MS {
            quiet_since = Instant::now();
        }
        last = now;
    }
    began.elapsed().as_secs_f64()
}

fn fill_figures(report: &mut Report, plan: &Plan, m: &Merged, server: &ServerFigures, ctx: FigureCtx) {
    let c = &m.c;
    let span = |last_us: u64| ((last_us.saturating_sub(ctx.start_us)) as f64 / 1e6).max(plan.duration).max(1e-3);
    let per_op = |ops: u64| server.cpu_ms().filter(|_| ops > 0).map(|cpu| round(cpu / ops as f64, 4));
    let fig = |r: &mut Report, name: &str, v: Value| r.figure(name, v);
    let rss_per_conn = rss_per_conn(plan.scenario, server, ctx.online, &report.timeline);
    match plan.scenario {
        Scenario::Idle => {
            let rss = server.ready.map(|s| s.rss_bytes);
            let base = server.baseline.map(|s| s.rss_bytes);
            fig(report, "connections", json!(ctx.online));
            fig(report, "connect_failed", json!(c.connect_failed));
            fig(report, "connects_per_sec", json!(round(ctx.online as f64 / ctx.setup_secs.max(1e-3), 1)));
            fig(report, "hold_secs", json!(round(ctx.run_secs, 1)));
            fig(report, "dropped", json!(c.dropped));
            fig(report, "alive_at_end", json!(m.alive_at_end));
            fig(report, "server_rss_baseline_bytes", json!(base));
            fig(report, "server_rss_bytes", json!(rss));
            fig(report, "server_rss_end_bytes", json!(server.end.map(|s| s.rss_bytes)));
            fig(report, "server_cpu_ms", json!(server.cpu_ms().map(|v| round(v, 1))));
            // Holding is the work here: CPU per connection per second held (heartbeats, read deadlines, timers).
            let held_secs = ctx.online as f64 * ctx.run_secs;
            let per_held = server.cpu_ms().filter(|_| held_secs > 0.0).map(|cpu| round(cpu / held_secs, 6));
            fig(report, "server_cpu_ms_per_op", json!(per_held));
            fig(report, "server_cpu_op", json!("connection held for a second"));
            fig(report, "server_cpu_pct", json!(server.cpu_ms().map(|v| round(pct_of_one_cpu(v, ctx.run_secs), 2))));
            report.latency("connect_ms", m.summary("connect"), m.histograms.get("connect"));
            report.check("connections", ">= 19000", ctx.online as f64, ctx.online >= 19_000);
            report.check("alive_at_end", "= connections", m.alive_at_end as f64, m.alive_at_end == ctx.online);
            if let Some(p) = rss_per_conn {
                report.check("server_rss_per_conn_bytes", "<= 10240", p as f64, p <= 10_240);
            }
        }
        Scenario::Chat => {
            let lost = m.lost;
            fig(report, "users_online", json!(ctx.online));
            fig(report, "sent", json!(c.started));
            fig(report, "acked", json!(c.ok));
            fig(report, "delivered", json!(c.delivered));
            fig(report, "lost", json!(lost));
            fig(report, "duplicates", json!(c.duplicates));
            fig(report, "delivered_unacked", json!(m.delivered_unacked));
            fig(report, "echoes_to_sender", json!(c.echoes));
            fig(report, "errors", json!(c.errors));
            fig(report, "skipped", json!(c.skipped));
            fig(report, "dropped", json!(c.dropped));
            let acked_per_sec = c.ok as f64 / span(m.last_ok_us);
            let delivered_per_sec = c.delivered as f64 / span(m.last_delivery_us);
            fig(report, "acked_per_sec", json!(round(acked_per_sec, 1)));
            fig(report, "delivered_per_sec", json!(round(delivered_per_sec, 1)));
            let cpu_per_op = per_op(c.delivered);
            fig(report, "server_cpu_ms", json!(server.cpu_ms().map(|v| round(v, 1))));
            fig(report, "server_cpu_ms_per_op", json!(cpu_per_op));
            fig(report, "server_cpu_op", json!("delivered 1:1 message"));
            fig(report, "server_cpu_pct", json!(server.cpu_ms().map(|v| round(pct_of_one_cpu(v, ctx.run_secs), 1))));
            fig(report, "server_rss_bytes", json!(server.end.map(|s| s.rss_bytes)));
            client_figures(report, &ctx);
            let deliver = m.summary("send_to_deliver");
            report.latency("send_to_ack_ms", m.summary("send_to_ack"), m.histograms.get("send_to_ack"));
            report.latency("send_to_deliver_ms", deliver, m.histograms.get("send_to_deliver"));
            report.check("users_online", ">= 10000", ctx.online as f64, ctx.online >= 10_000);
            report.check("delivered_per_sec", ">= 10000", delivered_per_sec, delivered_per_sec >= 10_000.0);
            if let Some(p) = cpu_per_op {
                report.check("server_cpu_ms_per_op", "<= 0.1", p, p <= 0.1);
            }
            report.check("send_to_deliver_ms.p99", "< 50", deliver.p99, deliver.count > 0 && deliver.p99 < 50.0);
            report.check("lost", "= 0", lost as f64, lost == 0);
            report.check("skipped", "= 0", c.skipped as f64, c.skipped == 0);
        }
        Scenario::Group => {
            let recipients = ctx.online.saturating_sub(1);
            let expected = c.ok * recipients;
            let lost = expected.saturating_sub(c.delivered);
            let mut all = stats::histogram();
            let mut complete = 0u64;
            for (count, slowest) in m.per_send.values() {
                if *count >= recipients {
                    complete += 1;
                    stats::record(&mut all, *slowest);
                }
            }
            fig(report, "members_online", json!(ctx.online));
            fig(report, "sends", json!(c.started));
            fig(report, "acked", json!(c.ok));
            fig(report, "deliveries_expected", json!(expected));
            fig(report, "delivered", json!(c.delivered));
            fig(report, "lost", json!(lost));
            fig(report, "duplicates", json!(c.duplicates));
            fig(report, "complete_sends", json!(complete));
            fig(report, "errors", json!(c.errors));
            fig(report, "dropped", json!(c.dropped));
            fig(report, "delivered_per_sec", json!(round(c.delivered as f64 / ctx.run_secs.max(1e-3), 1)));
            fig(report, "server_cpu_ms", json!(server.cpu_ms().map(|v| round(v, 1))));
            fig(report, "server_cpu_ms_per_op", json!(per_op(c.ok)));
            fig(report, "server_cpu_op", json!("group message sent to every member"));
            fig(
                report,
                "server_cpu_us_per_delivery",
                json!(server.cpu_ms().filter(|_| c.delivered > 0).map(|v| round(v * 1000.0 / c.delivered as f64, 3))),
            );
            fig(report, "server_rss_bytes", json!(server.end.map(|s| s.rss_bytes)));
            client_figures(report, &ctx);
            let all_summary = Summary::of(&all);
            report.latency("send_to_ack_ms", m.summary("send_to_ack"), m.histograms.get("send_to_ack"));
            report.latency("send_to_deliver_ms", m.summary("send_to_deliver"), m.histograms.get("send_to_deliver"));
            report.latency("send_to_all_delivered_ms", all_summary, Some(&all));
            report.check("members_online", ">= 10000", ctx.online as f64, ctx.online >= 10_000);
            report.check("sends", ">= 100", c.ok as f64, c.ok >= 100);
            report.check(
                "send_to_all_delivered_ms.p99",
                "< 200",
                all_summary.p99,
                all_summary.count > 0 && all_summary.p99 < 200.0,
            );
            report.check("lost", "= 0", lost as f64, lost == 0);
        }
        Scenario::Login => {
            let per_sec = c.ok as f64 / span(m.last_ok_us);
            let login = m.summary("login");
            fig(report, "logins", json!(c.ok));
            fig(report, "errors", json!(c.errors));
            fig(report, "skipped", json!(c.skipped));
            fig(report, "logins_per_sec", json!(round(per_sec, 1)));
            fig(report, "messages_synced", json!(c.items));
            // How far behind the server fell: a login holds connections while it is under way.
            fig(report, "logins_in_flight_peak", json!(c.connected_peak));
            fig(report, "server_cpu_ms", json!(server.cpu_ms().map(|v| round(v, 1))));
            fig(report, "server_cpu_ms_per_op", json!(per_op(c.ok)));
            fig(report, "server_cpu_op", json!("login with sync"));
            fig(report, "server_cpu_pct", json!(server.cpu_ms().map(|v| round(pct_of_one_cpu(v, ctx.run_secs), 1))));
            fig(report, "server_rss_bytes", json!(server.end.map(|s| s.rss_bytes)));
            client_figures(report, &ctx);
            report.latency("login_ms", login, m.histograms.get("login"));
            report.latency("connect_ms", m.summary("connect"), m.histograms.get("connect"));
            report.check("logins_per_sec", ">= 5000", per_sec, per_sec >= 5000.0);
            report.check("login_ms.p99", "< 100", login.p99, login.count > 0 && login.p99 < 100.0);
            report.check("errors", "= 0", c.errors as f64, c.errors == 0);
            report.check("skipped", "= 0", c.skipped as f64, c.skipped == 0);
        }
        Scenario::History => {
            let secs = span(m.last_ok_us);
            fig(report, "pages", json!(c.ok));
            fig(report, "messages", json!(c.items));
            fig(report, "errors", json!(c.errors));
            fig(report, "pages_per_sec", json!(round(c.ok as f64 / secs, 1)));
            fig(report, "messages_per_sec", json!(round(c.items as f64 / secs, 1)));
            fig(report, "server_cpu_ms", json!(server.cpu_ms().map(|v| round(v, 1))));
            fig(report, "server_cpu_ms_per_op", json!(per_op(c.ok)));
            fig(report, "server_cpu_op", json!("history page"));
            fig(report, "server_cpu_pct", json!(server.cpu_ms().map(|v| round(pct_of_one_cpu(v, ctx.run_secs), 1))));
            fig(report, "server_rss_bytes", json!(server.end.map(|s| s.rss_bytes)));
            client_figures(report, &ctx);
            report.latency("page_ms", m.summary("page"), m.histograms.get("page"));
            report.check("errors", "= 0", c.errors as f64, c.errors == 0);
        }
    }
    // Every report states the server's bytes per connection (issue 4), beside its peak.
    report.figure("server_rss_per_conn_bytes", json!(rss_per_conn));
    report.figure("server_rss_peak_bytes", json!(server.peak_rss));
    // Beside the machine's limit on open files in the report's header: a server at it refuses connections.
    report.figure("server_open_files_peak", json!(server.peak_open_files));
    tcp_figures(report, ctx.tcp.as_ref());
    report.figure("io_stall_ms", json!(ctx.io_stall_ms));
}

/// The server's bytes per connection: what its RSS grew by, over the connections it grew for. Every scenario but
/// `login` holds its connections through the setup: from before the first connected to when all had (whatever else
/// the setup made the server keep counts too: `history`'s seeded messages). A login opens and closes its own during
/// the run: what the run added at its highest, over the most connections open in any of its seconds, an upper bound
/// (the caches the logins warm count too); none when the RSS did not grow past where the run began (a storm the
/// server keeps up with holds a few dozen logins at once, too few to show in it: `idle` measures a connection).
fn rss_per_conn(scenario: Scenario, server: &ServerFigures, online: u64, timeline: &[TimelinePoint]) -> Option<u64> {
    let rss = |s: Option<ProcSample>| s.map(|s| s.rss_bytes);
    let (from, to, conns) = if scenario == Scenario::Login {
        let highest = timeline.iter().filter_map(|p| p.server_rss_bytes).max();
        (rss(server.start), highest, timeline.iter().map(|p| p.connected).max().unwrap_or(0))
    } else {
        (rss(server.baseline), rss(server.ready), online)
    };
    match (from, to) {
        (Some(from), Some(to)) if conns > 0 && to > from => Some((to - from) / conns),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    fn bench_args(command_line: &str) -> BenchArgs {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: BenchArgs,
        }
        Cli::try_parse_from(std::iter::once("bench").chain(command_line.split_whitespace())).unwrap().args
    }

    fn workers(command_line: &str) -> usize {
        let args = bench_args(command_line);
        Plan::new(&args).unwrap().workers(&args)
    }

    #[test]
    fn workers_are_as_few_as_their_connections_allow() {
        assert_eq!(workers("idle --users 19000"), 2, "one connection a user, 15,000 a worker");
        assert_eq!(workers("chat --users 10000"), 1);
        // Between logins a user holds no connection; logins under way are bounded per worker instead.
        assert_eq!(workers("login --users 20000"), 1);
        assert_eq!(workers("login --users 20000 --workers 3"), 3);
        assert_eq!(workers("login --users 20000 --workers 0"), 1, "in this process");
    }

    #[test]
    fn a_worker_s_logins_under_way_stay_within_its_connections() {
        let in_flight = |command_line: &str| {
            let args = bench_args(command_line);
            Plan::new(&args).unwrap().logins_in_flight(&args)
        };
        // A WebSocket and two HTTP connections each.
        assert_eq!(in_flight("login --users 20000"), 5_000, "15,000 connections a worker");
        assert_eq!(in_flight("login --users 20000 --no-rest-sync"), 15_000);
        assert_eq!(in_flight("login --users 20000 --conns-per-worker 2"), 1, "never none");
    }

    #[tokio::test]
    async fn settling_waits_until_the_server_has_been_quiet() {
        assert_eq!(settle(&[]).await, 0.0, "no server to watch: no wait");
        // This process stands for a server still busy with its setup's work for a while.
        let stop = Arc::new(AtomicBool::new(false));
        let burner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    std::hint::black_box(0u64);
                }
                Instant::now()
            })
        };
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            stop.store(true, Relaxed);
        });
        settle(&[std::process::id()]).await;
        let returned = Instant::now();
        stopper.await.unwrap();
        let quiet_from = burner.join().unwrap();
        assert!(
            returned >= quiet_from + SETTLE_QUIET - SETTLE_WINDOW,
            "settled {:?} after the work ended",
            returned.saturating_duration_since(quiet_from)
        );
    }

    /// A load generator nearly as busy as its CPUs allow is said so beside the figures it measured.
    #[test]
    fn a_busy_load_generator_is_noted() {
        let report = |client_cpu_ms, client_cpus| {
            let mut r = Report::new(Scenario::Login, Machine::probe());
            let ctx = FigureCtx {
                start_us: 0,
                run_secs: 10.0,
                setup_secs: 1.0,
                online: 10,
                client_cpu_ms,
                client_cpus,
                tcp: None,
                io_stall_ms: None,
            };
            client_figures(&mut r, &ctx);
            r
        };
        let busy = report(9_800.0, 1);
        assert_eq!(busy.get("client_cpu_pct"), Some(json!(98.0)));
        assert_eq!(busy.notes.len(), 1, "{:?}", busy.notes);
        assert!(busy.table().contains("note: the load generator kept its 1 CPU(s) 98 % busy"), "{}", busy.table());
        assert_eq!(busy.to_json()["notes"][0], json!(busy.notes[0]));
        // The same CPU time over two CPUs leaves each half idle.
        let spread = report(9_800.0, 2);
        assert_eq!(spread.get("client_cpu_pct"), Some(json!(98.0)));
        assert!(spread.notes.is_empty(), "{:?}", spread.notes);
        assert!(report(5_000.0, 1).notes.is_empty());
    }

    /// Handshakes the kernel dropped during a run are said so beside the figures; retransmissions alone are only
    /// counted.
    #[test]
    fn dropped_handshakes_are_noted() {
        let report = |listen_overflows| {
            let mut r = Report::new(Scenario::Login, Machine::probe());
            let tcp = TcpCounters { retransmitted: 40, loss_probes: 30, listen_overflows };
            tcp_figures(&mut r, Some(&tcp));
            r
        };
        let quiet = report(0);
        assert_eq!(quiet.get("tcp_retransmitted_segments"), Some(json!(40)));
        assert_eq!(quiet.get("tcp_loss_probes"), Some(json!(30)));
        assert_eq!(quiet.get("tcp_listen_overflows"), Some(json!(0)));
        assert!(quiet.notes.is_empty(), "{:?}", quiet.notes);
        let dropped = report(2_922);
        assert_eq!(dropped.notes.len(), 1);
        assert!(dropped.table().contains("note: the kernel dropped 2922 handshake(s)"), "{}", dropped.table());
    }

    /// A login storm's bytes per connection come from what the server's RSS grew by during the run; when it did not
    /// grow there is nothing to divide (not zero bytes).
    #[test]
    fn a_login_run_s_bytes_per_connection_need_the_rss_to_grow() {
        let sample = |rss_bytes| Some(ProcSample { cpu_ms: 0.0, rss_bytes, threads: 1 });
        let server = ServerFigures {
            baseline: None,
            ready: None,
            start: sample(100_000),
            end: None,
            peak_rss: 0,
            peak_open_files: 0,
        };
        let point = |connected, rss| TimelinePoint {
            t_secs: 1.0,
            ok_per_sec: 0.0,
            delivered_per_sec: 0.0,
            connected,
            errors: 0,
            server_cpu_pct: None,
            server_rss_bytes: Some(rss),
            client_cpu_pct: 0.0,
            slowest_ms: 0.0,
            io_stall_ms: None,
        };
        let grew = [point(10, 90_000), point(100, 300_000)];
        assert_eq!(rss_per_conn(Scenario::Login, &server, 0, &grew), Some(2_000));
        let fell = [point(10, 90_000), point(15, 95_000)];
        assert_eq!(rss_per_conn(Scenario::Login, &server, 0, &fell), None);
    }
}
