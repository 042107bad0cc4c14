//! `palaver bench`: Palaver's load generator.
//!
//! Virtual users speak the real gateway protocol through the SDK's transport (gob + gzip as the Go/wasm SDKs
//! do, or JSON as the JS SDK does), are created through the REST API, and connect from many loopback source
//! addresses (127.0.0.2, 127.0.0.3, …) so that connection counts are not capped by ephemeral ports. Scenarios:
//!
//! - `idle`: N users connected and holding heartbeats; server RSS per connection;
//! - `chat`: U online users sending 1:1 text at a total rate R for D seconds; acked and delivered throughput,
//!   send→ack and send→deliver latency, errors, lost messages;
//! - `group`: a group of M members, K online, one member sending; time from send to delivery at every member;
//! - `login`: a storm of logins with the SDK's sync; logins per second and latency;
//! - `history`: users paging back through a long conversation; pages per second and latency.
//!
//! # How a run goes
//!
//! The coordinator (the `palaver bench` process) starts a server (this very executable, `palaver serve`, with
//! a temporary data folder and free ports, optionally pinned with `taskset`) unless `--server` names one,
//! registers the users and fetches their tokens, then hands the users to workers. Every process is capped at
//! 20,000 open files, so beyond `--conns-per-worker` connections the workers are processes of their own (the
//! same executable re-run as `palaver bench <scenario> --worker`); smaller runs keep one worker inside the
//! coordinator. Workers connect, say they are ready, start together on the coordinator's signal, and report
//! counters every 250 ms and histograms at the end; the coordinator samples the server's CPU time and RSS
//! from `/proc` throughout, merges everything, and prints a table (plus `--json`, `--csv` and `--svg` files).
//!
//! The bench measures; it asserts nothing about speed. Its tests check that each scenario runs and accounts
//! for every message.

mod coordinator;
mod procfs;
mod proto;
mod report;
mod server;
mod stats;
mod svg;
mod worker;

pub use report::{Check, Report};
pub use stats::Summary;

use clap::ValueEnum;
use palaver_protocol::envelope::{Encoding, FrameFormat};
use palaver_sdk::Heartbeat;
use serde::{Deserialize, Serialize};
use std::{path::PathBuf, time::Duration};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// N users connected, holding heartbeats: server memory per connection.
    Idle,
    /// 1:1 text at a total rate: throughput, latency, losses.
    Chat,
    /// One member of a big group sends: time to reach every online member.
    Group,
    /// A storm of logins with sync: logins per second and latency.
    Login,
    /// Paging back through history: pages per second and latency.
    History,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Chat => "chat",
            Scenario::Group => "group",
            Scenario::Login => "login",
            Scenario::History => "history",
        }
    }
}

/// Envelope encoding and compression of the virtual users' connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// gob + gzip, as the Go and wasm SDKs speak.
    GobGzip,
    /// gob without compression.
    Gob,
    /// JSON, as the pure-JS SDK speaks (`sdkType=js`).
    Json,
    /// JSON + gzip.
    JsonGzip,
}

impl WireFormat {
    pub fn frame_format(self) -> FrameFormat {
        match self {
            WireFormat::GobGzip => FrameFormat { encoding: Encoding::Gob, gzip: true },
            WireFormat::Gob => FrameFormat { encoding: Encoding::Gob, gzip: false },
            WireFormat::Json => FrameFormat { encoding: Encoding::Json, gzip: false },
            WireFormat::JsonGzip => FrameFormat { encoding: Encoding::Json, gzip: true },
        }
    }

    fn name(self) -> &'static str {
        match self {
            WireFormat::GobGzip => "gob-gzip",
            WireFormat::Gob => "gob",
            WireFormat::Json => "json",
            WireFormat::JsonGzip => "json-gzip",
        }
    }
}

/// How idle virtual users keep their connections alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeartbeatArg {
    /// Answer the server's control pings (Web platform), as the wasm SDK does.
    Server,
    /// Send `{"type":"ping"}` every 10 s, as the JS SDK does.
    Text,
    /// Send a control ping every 24 s, as the Go SDK does.
    Control,
}

impl HeartbeatArg {
    pub fn heartbeat(self) -> Heartbeat {
        match self {
            HeartbeatArg::Server => Heartbeat::ServerPings,
            HeartbeatArg::Text => Heartbeat::Text(Duration::from_secs(10)),
            HeartbeatArg::Control => Heartbeat::Control(Duration::from_secs(24)),
        }
    }
}

/// `palaver bench <scenario> [options]`. Sizes left out take the scenario's defaults (see `--help`).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The scenario.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// A running server to target, `ws://HOST:PORT,http://HOST:PORT`. Without it the bench starts one itself
    /// (`palaver serve` on free loopback ports with a temporary data folder).
    #[arg(long, value_name = "WS,HTTP")]
    pub server: Option<String>,
    /// Admin secret of the `--server`.
    #[arg(long, env = "PALAVER_ADMIN_SECRET", hide_env_values = true)]
    pub admin_secret: Option<String>,
    /// PIDs of the `--server` processes (comma-separated: a cluster's nodes), for CPU and RSS sampling; the
    /// figures are their sums. Default: every process listening on the gateway's port (several with
    /// `--reuse-port`).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// The executable to start as the server (default: this one).
    #[arg(long, value_name = "PATH")]
    pub server_exe: Option<PathBuf>,
    /// Pin the started server to these CPUs (`taskset -c`), e.g. `1`.
    #[arg(long, value_name = "LIST")]
    pub server_cpus: Option<String>,
    /// Pin the load generator (this process and its workers) to these CPUs, e.g. `0`.
    #[arg(long, value_name = "LIST")]
    pub client_cpus: Option<String>,

    /// Worker processes (0: run the virtual users inside this process). Default: in-process up to
    /// `--conns-per-worker` connections, else enough processes to stay under it.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Most connections one worker process holds (every process may open at most 20,000 files).
    #[arg(long, default_value_t = 15_000)]
    pub conns_per_worker: usize,
    /// Loopback source addresses to spread connections over: 127.0.0.2 … 127.0.0.(1+N). 0: kernel's choice.
    #[arg(long, default_value_t = 8)]
    pub sources: usize,
    /// Envelope format of the virtual users.
    #[arg(long, value_enum, default_value = "gob-gzip")]
    pub format: WireFormat,
    /// How connections are kept alive.
    #[arg(long, value_enum, default_value = "server")]
    pub heartbeat: HeartbeatArg,
    /// Handshakes in flight at once per worker while connecting.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// idle: connections; chat: online users; login: users logging in (a pool); history: readers.
    /// Defaults: idle 1000, chat 1000, login 1000, history 100.
    #[arg(long)]
    pub users: Option<usize>,
    /// chat: total messages per second (default 1000); login: logins per second (default 500).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of load for chat, login and history (default 10).
    #[arg(long)]
    pub duration: Option<f64>,
    /// idle: seconds to hold the connections (default 40, past the server's 30 s read deadline).
    #[arg(long)]
    pub hold: Option<f64>,
    /// group: members (default 1000).
    #[arg(long)]
    pub members: Option<usize>,
    /// group: members online (default: all).
    #[arg(long)]
    pub online: Option<usize>,
    /// group: messages sent (default 100).
    #[arg(long)]
    pub sends: Option<usize>,
    /// group: milliseconds between sends (default 1000: each message's fan-out is timed on its own).
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// history: messages per conversation (default 500); login: messages per pair of users (default 1); chat:
    /// messages each pair exchanges before the measured run (default 0: the run's first messages open the
    /// conversations, which also writes both users' conversation rows).
    #[arg(long)]
    pub history: Option<usize>,
    /// history: messages per page (default 20, as the SDKs ask).
    #[arg(long)]
    pub page: Option<usize>,
    /// login: skip the REST incremental syncs (friends, groups, conversations).
    #[arg(long)]
    pub no_rest_sync: bool,
    /// Seconds to wait after the load for deliveries still on their way.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,

    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as CSV (`metric,value`).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write latency and throughput plots as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    pub no_progress: bool,

    /// Run as a worker of a coordinating `palaver bench` (job and control on stdin, reports on stdout).
    #[arg(long, hide = true)]
    pub worker: bool,
}

/// Runs the bench as the `palaver bench` command does: measures, prints the table, writes the files asked for.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.worker {
        return worker::process_main().await;
    }
    let report = measure(&args).await?;
    println!("{}", report.table());
    report.write_files(&args)?;
    Ok(())
}

/// Runs the scenario and returns its report (no printing, no files).
pub async fn measure(args: &BenchArgs) -> anyhow::Result<Report> {
    coordinator::execute(args).await
}
