//! Every scenario, tiny, against a server in this process: the run completes, the report has its figures, and
//! no message is lost. Behaviour only; the figures' values are the bench's business, not the tests'.

use clap::Parser;
use palaver_bench::{BenchArgs, Report};
use palaver_server::{Config, Listeners};
use serde_json::Value;
use tokio::net::TcpListener;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// Starts a server in this process; returns the `--server` value. It runs until the test's runtime ends.
async fn server(dir: &std::path::Path) -> String {
    let config = Config::for_tests(dir);
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spec = format!("ws://{},http://{}", ws.local_addr().unwrap(), api.local_addr().unwrap());
    tokio::spawn(palaver_server::run(config, Listeners { ws, api }, std::future::pending()));
    spec
}

async fn bench(args: &[&str]) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let spec = server(dir.path()).await;
    let mut argv = vec!["bench"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--server", &spec, "--admin-secret", "test-secret", "--workers", "0", "--no-progress"]);
    argv.extend_from_slice(&["--drain", "5", "--sources", "3"]);
    let cli = Cli::try_parse_from(argv).unwrap();
    let report = palaver_bench::measure(&cli.bench).await.expect("the bench runs");
    // The report renders in every form.
    assert!(report.table().contains(report.scenario.name()));
    report
}

fn num(json: &Value, key: &str) -> f64 {
    json[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {json:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_holds_every_connection() {
    let report = bench(&["idle", "--users", "12", "--hold", "0.5"]).await;
    let json = report.to_json();
    assert_eq!(num(&json, "connections"), 12.0);
    assert_eq!(num(&json, "alive_at_end"), 12.0);
    assert_eq!(num(&json, "dropped"), 0.0);
    // The server is this process, found by its listening port: RSS and CPU are sampled. Its bytes per connection
    // are stated, and none when its RSS did not grow: this process also holds the other tests' servers, which may
    // give memory back while 12 connections are made.
    assert!(num(&json, "server_rss_bytes") > 0.0);
    match json.get("server_rss_per_conn_bytes") {
        Some(Value::Null) => {}
        Some(bytes) => assert!(bytes.as_u64().is_some_and(|b| b > 0), "{json:#}"),
        None => panic!("server_rss_per_conn_bytes missing in {json:#}"),
    }
    assert!(json["server_cpu_ms_per_op"].is_number(), "{json:#}");
    assert!(json["connect_ms"]["p99"].is_number());
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_delivers_every_acked_message() {
    let dir = tempfile::tempdir().unwrap();
    let (json_path, csv_path, svg_path) =
        (dir.path().join("r.json"), dir.path().join("r.csv"), dir.path().join("r.svg"));
    // Two seconds: long enough for whole seconds on the timeline.
    let mut args = vec!["chat", "--users", "10", "--rate", "100", "--duration", "2", "--format", "json"];
    let paths = [json_path.to_str().unwrap(), csv_path.to_str().unwrap(), svg_path.to_str().unwrap()];
    args.extend_from_slice(&["--json", paths[0], "--csv", paths[1], "--svg", paths[2]]);
    let report = bench(&args).await;
    let json = report.to_json();
    assert_eq!(num(&json, "lost"), 0.0);
    assert_eq!(num(&json, "errors"), 0.0);
    assert_eq!(num(&json, "duplicates"), 0.0);
    // Every one of the 200 scheduled sends is accounted for: sent, or skipped because its user was still
    // waiting for an earlier answer (a busy machine); every message sent is acknowledged and delivered.
    let sent = num(&json, "sent");
    assert_eq!(sent + num(&json, "skipped"), 200.0, "{json:#}");
    assert!(sent > 0.0);
    assert_eq!(num(&json, "acked"), sent);
    assert_eq!(num(&json, "delivered"), sent);
    assert!(num(&json, "delivered_per_sec") > 0.0);
    assert!(json["send_to_deliver_ms"]["p99"].is_number());
    assert!(json["send_to_ack_ms"]["p999"].is_number());
    assert!(json["server_cpu_ms_per_op"].is_number(), "{json:#}");
    assert!(json["server_rss_per_conn_bytes"].is_number(), "{json:#}");
    assert!(json["targets"].as_array().is_some_and(|t| !t.is_empty()));
    // What the machine's TCP counted meanwhile (other tests' connections too: only that it was read).
    for counter in ["tcp_retransmitted_segments", "tcp_loss_probes", "tcp_listen_overflows"] {
        assert!(json[counter].is_u64(), "{counter} in {json:#}");
    }
    // Each second of the timeline names its slowest latency, none slower than the run's slowest.
    let timeline = json["timeline"].as_array().unwrap();
    let max = json["send_to_deliver_ms"]["max"].as_f64().unwrap().max(json["send_to_ack_ms"]["max"].as_f64().unwrap());
    let slowest: Vec<f64> = timeline.iter().map(|p| p["slowest_ms"].as_f64().unwrap()).collect();
    assert!(slowest.iter().any(|s| *s > 0.0), "{timeline:?}");
    assert!(slowest.iter().all(|s| *s <= max * 1.01), "{slowest:?} against {max}");
    // And the load generator's CPU in it (here the server's too: both are this process).
    assert!(timeline.iter().all(|p| p["client_cpu_pct"].as_f64().is_some_and(|c| c >= 0.0)), "{timeline:?}");
    assert!(timeline.iter().any(|p| p["client_cpu_pct"].as_f64().unwrap() > 0.0), "{timeline:?}");

    // The files, as `palaver bench` writes them.
    let cli = Cli::try_parse_from(["bench", "chat", "--json", paths[0], "--csv", paths[1], "--svg", paths[2]]).unwrap();
    report.write_files(&cli.bench).unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(written["scenario"], "chat");
    assert_eq!(written["lost"], 0);
    assert!(std::fs::read_to_string(&csv_path).unwrap().contains("\nlost,0\n"));
    assert!(std::fs::read_to_string(&svg_path).unwrap().contains("<polyline"));
}

/// With `--history`, each pair has talked before the run: the setup's messages are sent and acknowledged, and
/// none of them is counted (or timed) as one of the run's.
#[tokio::test(flavor = "multi_thread")]
async fn chat_after_seeding_counts_only_the_run() {
    let report = bench(&["chat", "--users", "10", "--rate", "50", "--duration", "1", "--history", "2"]).await;
    let json = report.to_json();
    assert_eq!(json["params"]["seed_msgs_per_pair"], 2);
    assert_eq!(json["setup"]["seeded_msgs"], 10, "five pairs, two each: {json:#}");
    let sent = num(&json, "sent");
    assert_eq!(sent + num(&json, "skipped"), 50.0, "{json:#}");
    assert_eq!(num(&json, "acked"), sent);
    assert_eq!(num(&json, "delivered"), sent, "{json:#}");
    assert_eq!(num(&json, "echoes_to_sender"), sent, "{json:#}");
    assert_eq!(num(&json, "lost"), 0.0);
    assert_eq!(num(&json, "duplicates"), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_messages_reach_every_online_member() {
    let report = bench(&["group", "--members", "15", "--online", "10", "--sends", "5", "--interval-ms", "20"]).await;
    let json = report.to_json();
    assert_eq!(num(&json, "members_online"), 10.0);
    assert_eq!(num(&json, "acked"), 5.0);
    assert_eq!(num(&json, "deliveries_expected"), 45.0);
    assert_eq!(num(&json, "delivered"), 45.0);
    assert_eq!(num(&json, "lost"), 0.0);
    assert_eq!(num(&json, "complete_sends"), 5.0);
    assert_eq!(json["send_to_all_delivered_ms"]["count"], 5);
    assert!(json["server_cpu_ms_per_op"].is_number(), "{json:#}");
    assert!(json["server_rss_per_conn_bytes"].is_number(), "{json:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_sync_without_errors() {
    let report = bench(&["login", "--users", "10", "--rate", "20", "--duration", "1"]).await;
    let json = report.to_json();
    // The 20 scheduled logins are each done or skipped (every user was still mid-login: a busy machine).
    let logins = num(&json, "logins");
    assert_eq!(logins + num(&json, "skipped"), 20.0, "{json:#}");
    assert!(logins > 0.0);
    assert_eq!(num(&json, "errors"), 0.0);
    // Each user has one seeded conversation, and its last message is pulled at login.
    assert_eq!(num(&json, "messages_synced"), logins);
    assert_eq!(json["login_ms"]["count"].as_f64(), Some(logins));
    assert!(json["server_cpu_ms_per_op"].is_number(), "{json:#}");
    // Per connection open at once: null when no second of so short a run caught a login under way.
    assert!(json.get("server_rss_per_conn_bytes").is_some(), "{json:#}");
}

/// A worker's logins under way stay within its connections (`--conns-per-worker`: three a login), however many
/// are due: those beyond wait their turn, late, and are done all the same.
#[tokio::test(flavor = "multi_thread")]
async fn logins_under_way_stay_within_a_worker_s_connections() {
    let storm = ["login", "--users", "10", "--rate", "2000", "--duration", "0.1"];
    let json = bench(&[&storm[..], &["--conns-per-worker", "6"]].concat()).await.to_json();
    assert_eq!(num(&json, "logins") + num(&json, "skipped"), 200.0, "{json:#}");
    assert_eq!(num(&json, "errors"), 0.0, "{json:#}");
    assert_eq!(num(&json, "logins_in_flight_peak"), 2.0, "two logins of three connections: {json:#}");
    // Unbounded, the same storm has more under way at once.
    let json = bench(&storm).await.to_json();
    assert!(num(&json, "logins_in_flight_peak") > 2.0, "{json:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_are_complete() {
    let report = bench(&["history", "--users", "4", "--history", "30", "--page", "10", "--duration", "1"]).await;
    let json = report.to_json();
    assert!(num(&json, "pages") > 0.0);
    assert_eq!(num(&json, "errors"), 0.0);
    assert_eq!(num(&json, "messages"), num(&json, "pages") * 10.0);
    assert!(json["server_cpu_ms_per_op"].is_number(), "{json:#}");
    assert!(json["server_rss_per_conn_bytes"].is_number(), "{json:#}");
}
