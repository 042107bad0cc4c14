//! Worker processes: the coordinator re-runs its own executable as `<exe> bench <scenario> --worker` and merges
//! what the workers report. This test binary plays that executable (so it has no libtest harness: `main`
//! decides whether it is the test or one of its workers) and checks that a run split over two worker
//! processes accounts for every connection and message.

use clap::Parser;
use palaver_bench::BenchArgs;
use palaver_server::{Config, Listeners};
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

const NAME: &str = "chat_and_idle_over_two_worker_processes";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if args.iter().any(|a| a == "--worker") {
        // `<exe> bench <scenario> --worker`: "bench" stands where clap expects the program name.
        let cli = Cli::parse_from(&args[1..]);
        runtime.block_on(palaver_bench::run(cli.bench)).expect("worker");
        return;
    }
    // Enough of libtest's command line for `cargo test` and nextest.
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    let filters: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        return;
    }
    runtime.block_on(test());
    println!("test {NAME} ... ok");
}

async fn test() {
    let dir = tempfile::tempdir().unwrap();
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spec = format!("ws://{},http://{}", ws.local_addr().unwrap(), api.local_addr().unwrap());
    tokio::spawn(palaver_server::run(Config::for_tests(dir.path()), Listeners { ws, api }, std::future::pending()));

    let run = |args: &[&str]| {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--server", &spec, "--admin-secret", "test-secret", "--workers", "2"]);
        argv.extend_from_slice(&["--no-progress", "--drain", "5"]);
        Cli::parse_from(argv).bench
    };

    let report = palaver_bench::measure(&run(&["chat", "--users", "12", "--rate", "60", "--duration", "1"]))
        .await
        .expect("chat over two workers");
    let json = report.to_json();
    assert_eq!(json["setup"]["workers"], 2, "{json:#}");
    for (key, want) in [("users_online", 12), ("sent", 60), ("acked", 60), ("delivered", 60), ("lost", 0)] {
        assert_eq!(json[key].as_u64(), Some(want), "{key}: {json:#}");
    }
    assert!(json["client_cpu_ms"].as_f64().is_some());

    let report = palaver_bench::measure(&run(&["idle", "--users", "10", "--hold", "0.3", "--conns-per-worker", "5"]))
        .await
        .expect("idle over two workers");
    let json: Value = report.to_json();
    assert_eq!(json["connections"], 10, "{json:#}");
    assert_eq!(json["alive_at_end"], 10, "{json:#}");
}
