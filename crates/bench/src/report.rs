//! The report of one run: figures with plain names, latency summaries, checks against the project's targets,
//! the server's samples; as a table, JSON, CSV and (see `svg`) a plot.
//!
//! In JSON every figure is a top-level key (`delivered_per_sec`, `lost`, `server_cpu_ms_per_op`, …) and every
//! latency is an object of milliseconds (`send_to_deliver_ms.p99`), so `jq .send_to_deliver_ms.p99` just works.

use crate::{
    BenchArgs, Scenario,
    procfs::{Machine, TimedSample},
    stats::{self, Summary},
};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// One comparison of a measured figure with a target of the project.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub figure: String,
    pub target: String,
    pub measured: f64,
    pub met: bool,
}

/// Throughput and server readings, once a second.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TimelinePoint {
    pub t_secs: f64,
    pub ok_per_sec: f64,
    pub delivered_per_sec: f64,
    pub connected: u64,
    pub errors: u64,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    /// The load generator's CPU in this second (this process and its workers), in percent of one CPU: a second in
    /// which it was the busier side shows here, beside the server's.
    pub client_cpu_pct: f64,
    /// The slowest latency (send→deliver, login, page: whatever the scenario times) recorded in this second:
    /// the seconds that make a p99 stand out here.
    pub slowest_ms: f64,
    /// How long in this second some task of the machine waited on I/O ([`crate::procfs::io_stall_us`]): beside a
    /// slow second, whether it waited on the disk.
    pub io_stall_ms: Option<f64>,
}

/// A latency: its name, summary and percentile spectrum (for the plot).
type Latency = (String, Summary, Vec<(f64, f64)>);

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: Scenario,
    pub machine: Machine,
    pub(crate) params: Vec<(String, Value)>,
    pub(crate) setup: Vec<(String, Value)>,
    figures: Vec<(String, Value)>,
    latencies: Vec<Latency>,
    pub checks: Vec<Check>,
    pub(crate) timeline: Vec<TimelinePoint>,
    pub(crate) server_samples: Vec<TimedSample>,
    pub(crate) error_samples: Vec<String>,
    /// What a reader should know to trust the figures (a load generator as busy as the server, …).
    pub(crate) notes: Vec<String>,
    started_unix_secs: u64,
}

impl Report {
    pub(crate) fn new(scenario: Scenario, machine: Machine) -> Self {
        Self {
            scenario,
            machine,
            params: Vec::new(),
            setup: Vec::new(),
            figures: Vec::new(),
            latencies: Vec::new(),
            checks: Vec::new(),
            timeline: Vec::new(),
            server_samples: Vec::new(),
            error_samples: Vec::new(),
            notes: Vec::new(),
            started_unix_secs: crate::worker::unix_us(std::time::SystemTime::now()) / 1_000_000,
        }
    }

    pub(crate) fn figure(&mut self, name: &str, value: Value) {
        self.figures.push((name.to_string(), value));
    }

    pub(crate) fn latency(&mut self, name: &str, summary: Summary, histogram: Option<&Histogram<u64>>) {
        let spectrum = histogram.map(stats::spectrum).unwrap_or_default();
        self.latencies.push((name.to_string(), summary, spectrum));
    }

    pub(crate) fn check(&mut self, figure: &str, target: &str, measured: f64, met: bool) {
        self.checks.push(Check { figure: figure.to_string(), target: target.to_string(), measured, met });
    }

    /// A figure by name (latencies as objects of milliseconds).
    pub fn get(&self, name: &str) -> Option<Value> {
        self.figures.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).or_else(|| {
            self.latencies.iter().find(|(n, ..)| n == name).map(|(_, s, _)| serde_json::to_value(s).unwrap_or_default())
        })
    }

    pub(crate) fn spectra(&self) -> impl Iterator<Item = (&str, &[(f64, f64)])> {
        self.latencies.iter().map(|(n, _, s)| (n.as_str(), s.as_slice()))
    }

    /// The whole report as JSON.
    pub fn to_json(&self) -> Value {
        let mut top = Map::new();
        top.insert("scenario".into(), json!(self.scenario.name()));
        top.insert("palaver_version".into(), json!(env!("CARGO_PKG_VERSION")));
        top.insert("started_unix_secs".into(), json!(self.started_unix_secs));
        for (name, value) in &self.figures {
            top.insert(name.clone(), value.clone());
        }
        for (name, summary, _) in &self.latencies {
            top.insert(name.clone(), serde_json::to_value(summary).unwrap_or_default());
        }
        top.insert("params".into(), Value::Object(self.params.iter().cloned().collect()));
        top.insert("setup".into(), Value::Object(self.setup.iter().cloned().collect()));
        top.insert("machine".into(), serde_json::to_value(&self.machine).unwrap_or_default());
        top.insert("targets".into(), serde_json::to_value(&self.checks).unwrap_or_default());
        top.insert("timeline".into(), serde_json::to_value(&self.timeline).unwrap_or_default());
        top.insert("server_samples".into(), serde_json::to_value(&self.server_samples).unwrap_or_default());
        top.insert("error_samples".into(), json!(self.error_samples));
        top.insert("notes".into(), json!(self.notes));
        Value::Object(top)
    }

    /// `metric,value` lines: figures, then latency percentiles as `name.p99`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("metric,value\n");
        let _ = writeln!(out, "scenario,{}", self.scenario.name());
        for (name, value) in self.params.iter().chain(&self.figures) {
            let _ = writeln!(out, "{name},{}", csv_value(value));
        }
        for (name, s, _) in &self.latencies {
            for (k, v) in [
                ("count", s.count as f64),
                ("min", s.min),
                ("mean", s.mean),
                ("p50", s.p50),
                ("p90", s.p90),
                ("p99", s.p99),
                ("p999", s.p999),
                ("max", s.max),
            ] {
                let _ = writeln!(out, "{name}.{k},{v}");
            }
        }
        out
    }

    /// The `n` seconds of the timeline with the slowest latencies, slowest first, if any latency was recorded:
    /// where the tail of the run came from. Each with what the second waited on, as far as it is known: the server's
    /// CPU and the machine's I/O stall (`"12.0 s: 180.3 ms (server 97 %, I/O 420 ms)"`; a stall under a millisecond
    /// is left out), a busy core or a slow disk.
    fn slowest_seconds(&self, n: usize) -> Option<String> {
        let mut points: Vec<&TimelinePoint> = self.timeline.iter().filter(|p| p.slowest_ms > 0.0).collect();
        points.sort_by(|a, b| b.slowest_ms.total_cmp(&a.slowest_ms));
        let shown: Vec<String> = points
            .iter()
            .take(n)
            .map(|p| {
                let cpu = p.server_cpu_pct.map(|pct| format!("server {pct:.0} %"));
                let io = p.io_stall_ms.filter(|ms| *ms >= 1.0).map(|ms| format!("I/O {ms:.0} ms"));
                let waited = [cpu, io].into_iter().flatten().collect::<Vec<_>>().join(", ");
                let waited = if waited.is_empty() { waited } else { format!(" ({waited})") };
                format!("{:.1} s: {:.1} ms{waited}", p.t_secs, p.slowest_ms)
            })
            .collect();
        (!shown.is_empty()).then(|| shown.join(", "))
    }

    /// The human-readable table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
        let _ = writeln!(out, "\npalaver bench {} ({})", self.scenario.name(), params.join(", "));
        let setup: Vec<String> =
            self.setup.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k}={}", plain(v))).collect();
        let _ = writeln!(out, "  {}", setup.join(", "));
        let _ = writeln!(
            out,
            "  machine: {} cpus ({}), {:.1} GiB, kernel {}, open files {}\n",
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.mem_total_bytes as f64 / (1u64 << 30) as f64,
            self.machine.kernel,
            self.machine.open_files_limit
        );
        for (name, value) in &self.figures {
            let _ = writeln!(out, "  {name:<30} {}", human(name, value));
        }
        if !self.latencies.is_empty() {
            let _ = writeln!(
                out,
                "\n  {:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
            );
            for (name, s, _) in &self.latencies {
                let _ = writeln!(
                    out,
                    "  {:<26} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    name.trim_end_matches("_ms"),
                    s.count,
                    s.p50,
                    s.p90,
                    s.p99,
                    s.p999,
                    s.max
                );
            }
        }
        if let Some(slowest) = self.slowest_seconds(3) {
            let _ = writeln!(out, "  slowest seconds (t: slowest latency)  {slowest}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        if !self.checks.is_empty() {
            let _ = writeln!(out, "\n  targets (issue #4):");
            for c in &self.checks {
                let mark = if c.met { "met    " } else { "NOT MET" };
                let _ =
                    writeln!(out, "  [{mark}] {:<32} {:<14} measured {}", c.figure, c.target, trim_float(c.measured));
            }
        }
        if !self.error_samples.is_empty() {
            let _ = writeln!(out, "\n  some errors:");
            for e in self.error_samples.iter().take(5) {
                let _ = writeln!(out, "    {e}");
            }
        }
        out
    }

    /// Writes the `--json`, `--csv` and `--svg` files asked for.
    pub fn write_files(&self, args: &BenchArgs) -> anyhow::Result<()> {
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&self.to_json())? + "\n")?;
        }
        if let Some(path) = &args.csv {
            std::fs::write(path, self.to_csv())?;
        }
        if let Some(path) = &args.svg {
            std::fs::write(path, crate::svg::plot(self))?;
        }
        Ok(())
    }
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.0}") } else { format!("{x:.3}") }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_value(v: &Value) -> String {
    match v {
        Value::String(s) if s.contains([',', '"']) => format!("\"{}\"", s.replace('"', "\"\"")),
        Value::Null => String::new(),
        other => plain(other),
    }
}

/// A figure for the table: bytes in KiB/MiB, big counts grouped.
fn human(name: &str, v: &Value) -> String {
    match v.as_f64() {
        Some(x) if name.ends_with("_bytes") => {
            if x >= (1u64 << 20) as f64 {
                format!("{:.1} MiB ({x:.0})", x / (1u64 << 20) as f64)
            } else {
                format!("{:.2} KiB ({x:.0})", x / 1024.0)
            }
        }
        Some(x) if x.fract() == 0.0 && x.abs() >= 10_000.0 => group_thousands(x as i64),
        Some(_) => v.to_string(),
        None if v.is_null() => "n/a".into(),
        None => plain(v),
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_plain_top_level_keys() {
        let mut r = Report::new(Scenario::Chat, Machine::probe());
        r.figure("delivered_per_sec", json!(12.5));
        r.figure("lost", json!(0));
        let mut h = stats::histogram();
        stats::record(&mut h, 1500);
        r.latency("send_to_deliver_ms", Summary::of(&h), Some(&h));
        r.check("lost", "= 0", 0.0, true);
        let j = r.to_json();
        assert_eq!(j["delivered_per_sec"], 12.5);
        assert_eq!(j["lost"], 0);
        assert_eq!(j["send_to_deliver_ms"]["count"], 1);
        assert!((j["send_to_deliver_ms"]["p99"].as_f64().unwrap() - 1.5).abs() < 0.01);
        assert_eq!(j["targets"][0]["met"], true);
        let csv = r.to_csv();
        assert!(csv.contains("delivered_per_sec,12.5\n"), "{csv}");
        assert!(csv.contains("send_to_deliver_ms.p99,"), "{csv}");
        assert!(r.table().contains("send_to_deliver"));
        assert!(crate::svg::plot(&r).starts_with("<svg"));
    }

    #[test]
    fn the_table_names_the_slowest_seconds() {
        let mut r = Report::new(Scenario::Chat, Machine::probe());
        assert!(!r.table().contains("slowest seconds"), "no timeline, no line");
        let point = |t_secs: f64, slowest_ms: f64| TimelinePoint {
            t_secs,
            ok_per_sec: 1.0,
            delivered_per_sec: 1.0,
            connected: 1,
            errors: 0,
            server_cpu_pct: None,
            server_rss_bytes: None,
            client_cpu_pct: 0.0,
            slowest_ms,
            io_stall_ms: None,
        };
        r.timeline = vec![point(1.0, 3.0), point(2.0, 180.25), point(3.0, 0.0), point(4.0, 41.0), point(5.0, 7.5)];
        assert_eq!(r.slowest_seconds(3).unwrap(), "2.0 s: 180.2 ms, 4.0 s: 41.0 ms, 5.0 s: 7.5 ms");
        assert!(r.table().contains("2.0 s: 180.2 ms"));
        assert_eq!(r.to_json()["timeline"][1]["slowest_ms"], 180.25);
        // A second says what it waited on, as far as it is known: the server's core, the disk.
        r.timeline[1].io_stall_ms = Some(420.4);
        r.timeline[1].server_cpu_pct = Some(62.3);
        r.timeline[3].io_stall_ms = Some(0.2);
        r.timeline[4].server_cpu_pct = Some(97.6);
        assert_eq!(
            r.slowest_seconds(3).unwrap(),
            "2.0 s: 180.2 ms (server 62 %, I/O 420 ms), 4.0 s: 41.0 ms, 5.0 s: 7.5 ms (server 98 %)"
        );
        assert_eq!(r.to_json()["timeline"][1]["io_stall_ms"], 420.4);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_thousands(19000), "19,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
        assert_eq!(human("server_rss_per_conn_bytes", &json!(9216)), "9.00 KiB (9216)");
    }
}
