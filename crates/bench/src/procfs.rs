//! What the kernel says about a process (`/proc/PID/stat`, `/proc/PID/status`) and about the machine.
//!
//! CPU time is `utime + stime` of all the process's threads, in clock ticks (`getconf CLK_TCK`, 100 on Linux):
//! a 10 ms resolution, fine over runs of seconds. RSS is `VmRSS` (resident memory, KiB in the file). Open files are
//! the entries of `/proc/PID/fd`: every connection is one, and a server at its limit refuses the next.

use serde::Serialize;
use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

/// CPU time over a stretch of wall time, in percent of one CPU (as `top` shows a process: 200 is two CPUs full).
pub(crate) fn pct_of_one_cpu(cpu_ms: f64, secs: f64) -> f64 {
    cpu_ms / secs.max(1e-3) / 10.0
}

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct ProcSample {
    /// CPU time used so far (user + system), ms.
    pub cpu_ms: f64,
    pub rss_bytes: u64,
    /// Number of threads.
    pub threads: u64,
}

fn clock_ticks_per_sec() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Reads `/proc/<pid>`; `None` once the process is gone (or off Linux).
pub(crate) fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: fields are counted after ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so utime (14) is 11, stime (15) 12, num_threads (20) 17.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let threads: u64 = fields.get(17)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcSample { cpu_ms: (utime + stime) * 1000.0 / clock_ticks_per_sec(), rss_bytes: rss_kib * 1024, threads })
}

/// The sum of the readings of `pids` (a cluster's nodes), over those still running; `None` if none is.
pub(crate) fn sample_all(pids: &[u32]) -> Option<ProcSample> {
    pids.iter().filter_map(|pid| sample(*pid)).reduce(|a, b| ProcSample {
        cpu_ms: a.cpu_ms + b.cpu_ms,
        rss_bytes: a.rss_bytes + b.rss_bytes,
        threads: a.threads + b.threads,
    })
}

/// The files `pid` has open, sockets included (0 once it is gone). A walk over a directory of as many entries, so
/// only the background [`Sampler`] counts them, not every reading of CPU time.
pub(crate) fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count() as u64)
}

/// A reading taken at some moment of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct TimedSample {
    /// Seconds since the sampler started.
    pub t_secs: f64,
    #[serde(flatten)]
    pub sample: ProcSample,
    /// CPU use since the previous reading, in percent of one core.
    pub cpu_pct: f64,
    /// Files open, summed over the processes.
    pub open_files: u64,
}

/// Samples processes (their sum) every `period` in the background until dropped.
#[derive(Debug)]
pub(crate) struct Sampler {
    pub pids: Vec<u32>,
    samples: Arc<Mutex<Vec<TimedSample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub(crate) fn start(pids: Vec<u32>, period: Duration) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sink = samples.clone();
        let watched = pids.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut previous: Option<(Instant, f64)> = None;
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(sample) = sample_all(&watched) else { break };
                let now = Instant::now();
                let cpu_pct = match previous {
                    Some((then, cpu)) => pct_of_one_cpu(sample.cpu_ms - cpu, now.duration_since(then).as_secs_f64()),
                    None => 0.0,
                };
                previous = Some((now, sample.cpu_ms));
                let open_files = watched.iter().map(|pid| open_files(*pid)).sum();
                let t_secs = now.duration_since(start).as_secs_f64();
                sink.lock().unwrap().push(TimedSample { t_secs, sample, cpu_pct, open_files });
            }
        });
        Self { pids, samples, task }
    }

    /// The latest reading, taken now.
    pub(crate) fn now(&self) -> Option<ProcSample> {
        sample_all(&self.pids)
    }

    /// The latest background reading.
    pub(crate) fn last(&self) -> Option<TimedSample> {
        self.samples.lock().unwrap().last().copied()
    }

    /// All background readings so far.
    pub(crate) fn samples(&self) -> Vec<TimedSample> {
        self.samples.lock().unwrap().clone()
    }

    /// Highest RSS seen.
    pub(crate) fn peak_rss(&self) -> u64 {
        self.samples.lock().unwrap().iter().map(|s| s.sample.rss_bytes).max().unwrap_or(0)
    }

    /// Most files open at once, as far as the readings saw.
    pub(crate) fn peak_open_files(&self) -> u64 {
        self.samples.lock().unwrap().iter().map(|s| s.open_files).max().unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Busy and total time of every CPU so far, in clock ticks (`/proc/stat`), for per-core utilisation over a
/// run: what else ran on the cores the server and the generator were pinned to shows up here.
pub(crate) fn cpu_times() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            let total: u64 = v.iter().take(8).sum();
            // idle + iowait are not busy.
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// Per-CPU busy percentage between two [`cpu_times`] readings.
pub(crate) fn cpu_busy_pct(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let total = a.1.saturating_sub(b.1).max(1) as f64;
            ((a.0.saturating_sub(b.0)) as f64 / total * 1000.0).round() / 10.0
        })
        .collect()
}

/// The machine's TCP counters that say a run's connections met trouble in the kernel (`/proc/net/snmp`,
/// `/proc/net/netstat`). They count every socket of the machine's network namespace: on a quiet machine, the bench's
/// and its server's; against a remote server, only this end's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpCounters {
    /// Segments sent again (`Tcp: RetransSegs`).
    pub retransmitted: u64,
    /// Of those, tail loss probes (`TcpExt: TCPLossProbes`): a segment sent again because its acknowledgement was
    /// late, usually a receiver's delayed ACK waiting on a busy process's answer rather than a loss.
    pub loss_probes: u64,
    /// Completed handshakes dropped because a listener's accept queue was full (`TcpExt: ListenOverflows`): each
    /// one's client sends it again about a second later.
    pub listen_overflows: u64,
}

impl TcpCounters {
    /// What was counted between `before` and `self`.
    pub(crate) fn since(&self, before: &Self) -> Self {
        Self {
            retransmitted: self.retransmitted.saturating_sub(before.retransmitted),
            loss_probes: self.loss_probes.saturating_sub(before.loss_probes),
            listen_overflows: self.listen_overflows.saturating_sub(before.listen_overflows),
        }
    }
}

/// The counters now; `None` off Linux.
pub(crate) fn tcp_counters() -> Option<TcpCounters> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    Some(TcpCounters {
        retransmitted: counter(&snmp, "Tcp", "RetransSegs")?,
        loss_probes: counter(&netstat, "TcpExt", "TCPLossProbes").unwrap_or(0),
        listen_overflows: counter(&netstat, "TcpExt", "ListenOverflows")?,
    })
}

/// One counter of a `/proc/net/snmp`-style file: for each group, a line of names and then a line of values, both
/// starting with `Group:`.
fn counter(file: &str, group: &str, name: &str) -> Option<u64> {
    let prefix = format!("{group}:");
    let mut lines = file.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// How long, so far, at least one task of the machine was stalled waiting on I/O, in µs: the "some" line's `total`
/// of `/proc/pressure/io` (the kernel's pressure stall information). A durable store's acknowledgement waits for its
/// `fdatasync`, so a second whose slowest latency stands out beside such a stall waited on the disk, not the CPU
/// (runs on tmpfs and on a virtual disk, "The third machine, a sixth session" in BENCHMARKS.md). Machine-wide, as
/// the TCP counters. `None` where the kernel keeps no pressure figures.
pub(crate) fn io_stall_us() -> Option<u64> {
    psi_some_total(&std::fs::read_to_string("/proc/pressure/io").ok()?)
}

fn psi_some_total(psi: &str) -> Option<u64> {
    let some = psi.lines().find_map(|l| l.strip_prefix("some "))?;
    some.split_whitespace().find_map(|f| f.strip_prefix("total="))?.parse().ok()
}

/// The 1-minute load average.
pub(crate) fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_total_bytes: u64,
    pub kernel: String,
    pub open_files_limit: String,
}

impl Machine {
    pub(crate) fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_default();
        let mem_total_bytes = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
        let open_files_limit = std::fs::read_to_string("/proc/self/limits")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .map(|l| l.split_whitespace().skip(3).take(2).collect::<Vec<_>>().join("/"))
            .unwrap_or_default();
        Self {
            // Counted from /proc/cpuinfo, not from the affinity mask: the generator may already be pinned.
            cpus: cpuinfo.lines().filter(|l| l.starts_with("processor")).count().max(1),
            cpu_model,
            mem_total_bytes,
            kernel,
            open_files_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = sample(std::process::id()).expect("/proc is readable");
        assert!(me.rss_bytes > 0);
        assert!(me.threads >= 1);
        let files: Vec<std::fs::File> = (0..5).map(|_| std::fs::File::open("/proc/self/stat").unwrap()).collect();
        let open = open_files(std::process::id());
        // Other tests of this process open and close files meanwhile; these five stay open.
        assert!(open >= 5, "{open} files open with five of ours");
        drop(files);
        assert!(Machine::probe().cpus >= 1);
        let (a, b) = (cpu_times(), cpu_times());
        assert!(!a.is_empty());
        assert!(cpu_busy_pct(&a, &b).iter().all(|p| (0.0..=100.0).contains(p)));
        let tcp = tcp_counters().expect("/proc/net is readable");
        assert_eq!(tcp.since(&tcp), TcpCounters::default());
    }

    /// The I/O stall is the "some" line's total (the "full" line's is the time every task was stalled at once).
    #[test]
    fn reads_the_io_stall_total() {
        let psi = "some avg10=0.39 avg60=3.24 avg300=4.82 total=56402429\n\
                   full avg10=0.14 avg60=1.29 avg300=2.50 total=37287909\n";
        assert_eq!(psi_some_total(psi), Some(56_402_429));
        assert_eq!(psi_some_total("full avg10=0.00 total=5\n"), None);
        if std::path::Path::new("/proc/pressure/io").exists() {
            assert!(io_stall_us().is_some());
        }
    }

    /// A counter is found by its group and name, whatever the other groups and columns around it.
    #[test]
    fn reads_a_counter_by_group_and_name() {
        let netstat = "TcpExt: SyncookiesSent ListenOverflows TCPLossProbes\n\
                       TcpExt: 0 2922 1879\n\
                       IpExt: InNoRoutes ListenOverflows\n\
                       IpExt: 5 7\n";
        assert_eq!(counter(netstat, "TcpExt", "ListenOverflows"), Some(2922));
        assert_eq!(counter(netstat, "TcpExt", "TCPLossProbes"), Some(1879));
        assert_eq!(counter(netstat, "IpExt", "ListenOverflows"), Some(7));
        assert_eq!(counter(netstat, "TcpExt", "TCPTimeouts"), None);
        assert_eq!(counter(netstat, "Udp", "InDatagrams"), None);
    }
}
