//! Durability under `kill -9`: clients send thousands of messages while the real `palaver` binary is killed
//! with SIGKILL at a random moment, several times over. After each restart every acknowledged message must be
//! stored exactly once, in a gap-free seq order, and be pulled by a client.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod node;

use common::*;
use node::*;
use palaver_protocol::{constant::platform::WEB, pb::sdkws};
use prost::Message as _;
use rand::Rng as _;
use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

fn kill9(node: &mut Node) {
    // SIGKILL: no shutdown path runs, nothing is flushed by the server on the way out.
    node.0.kill().expect("kill -9");
    node.0.wait().unwrap();
}

/// Messages each round must have acknowledged before the kill may come.
const ROUND_MIN: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, api) = (free_addr(), free_addr());
    let mut node = serve(dir.path(), ws, api);
    wait_healthy(api).await;

    let admin = admin_token(api).await;
    let senders = ["s0", "s1", "s2", "s3"];
    let mut ids: Vec<&str> = senders.to_vec();
    ids.push("sink");
    register(api, &admin, &ids).await;
    let group = post_json(
        api,
        "/group/create_group",
        Some(&admin),
        &serde_json::json!({
            "ownerUserID": "sink", "memberUserIDs": senders, "groupInfo": {"groupName": "crash"}
        }),
    )
    .await;
    let group_id = group["data"]["groupInfo"]["groupID"].as_str().unwrap().to_string();

    // (conversation, clientMsgID) of every acknowledged message, over all rounds.
    let acked: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
    let mut rng = rand::rng();
    for round in 0..3 {
        let mut tasks = Vec::new();
        for (i, sender) in senders.iter().enumerate() {
            // A token per round on the Web platform: the default multi-login policy revokes the previous one
            // when the new connection arrives, which is what a reconnecting app does too.
            let token = user_token(api, &admin, sender, WEB).await;
            let (acked, group_id, sender) = (acked.clone(), group_id.clone(), sender.to_string());
            tasks.push(tokio::spawn(async move {
                let format = if i % 2 == 0 { GOB_GZIP } else { JSON };
                let Ok(mut client) = Client::connect(ws, &sender, &token, 5, format).await else { return };
                for n in 0.. {
                    let id = format!("{sender}-r{round}-{n}");
                    let msg = if n % 2 == 0 {
                        group_msg(&sender, &group_id, &id, "g")
                    } else {
                        text_msg(&sender, "sink", &id, "d")
                    };
                    let conv = if n % 2 == 0 {
                        format!("sg_{group_id}")
                    } else {
                        palaver_protocol::conversation_id::single(&sender, "sink")
                    };
                    let incr = client.send_req(palaver_protocol::constant::req::SEND_MSG, msg.encode_to_vec()).await;
                    // Wait for this request's ack; a dead server ends the loop.
                    loop {
                        let Some(resp) = client.recv().await else { return };
                        if resp.msg_incr == incr {
                            assert_eq!(resp.err_code, 0, "{}", resp.err_msg);
                            acked.lock().unwrap().insert((conv.clone(), id.clone()));
                            break;
                        }
                    }
                }
            }));
        }
        // Let this round acknowledge at least ROUND_MIN messages, then kill at a random moment after that, so
        // the kill lands mid-load whatever the machine's speed.
        let before = acked.lock().unwrap().len();
        let started = std::time::Instant::now();
        while acked.lock().unwrap().len() < before + ROUND_MIN {
            assert!(started.elapsed() < Duration::from_secs(120), "senders made no progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let uptime = started.elapsed() + Duration::from_millis(rng.random_range(0..500));
        tokio::time::sleep(uptime.saturating_sub(started.elapsed())).await;
        kill9(&mut node);
        for task in tasks {
            let _ = task.await;
        }
        node = serve(dir.path(), ws, api);
        wait_healthy(api).await;
        let snapshot = acked.lock().unwrap().clone();
        verify(ws, api, &admin, &snapshot).await;
        eprintln!(
            "round {round}: killed after {uptime:?}; {} acknowledged so far, all present",
            acked.lock().unwrap().len()
        );
    }
    kill9(&mut node);
}

/// Every acknowledged message is stored once, seqs are 1..=n, and a client pulls all of it.
async fn verify(ws: SocketAddr, api: SocketAddr, admin: &str, acked: &HashSet<(String, String)>) {
    let token = user_token(api, admin, "sink", WEB).await;
    let mut sink = Client::connect(ws, "sink", &token, 5, GOB_GZIP).await.expect("sink connects after restart");
    let newest = sink.newest_seqs().await;
    let mut by_conv: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for (conv, id) in acked {
        by_conv.entry(conv).or_default().insert(id);
    }
    for (conv, ids) in by_conv {
        let max = newest.max_seqs[conv];
        let mut stored = Vec::new();
        let mut begin = 1;
        while begin <= max {
            let end = (begin + 999).min(max);
            let resp = sink.pull_range(conv, begin, end, 1000).await;
            assert_eq!(resp.err_code, 0);
            let mut pulled = sdkws::PullMessageBySeqsResp::decode(&resp.data[..]).unwrap();
            stored.extend(pulled.msgs.remove(conv).unwrap().msgs);
            begin = end + 1;
        }
        let seqs: Vec<i64> = stored.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=max).collect::<Vec<_>>(), "{conv}: gap-free seqs after SIGKILL");
        let stored_ids: Vec<&str> = stored.iter().map(|m| m.client_msg_id.as_str()).collect();
        let unique: HashSet<&str> = stored_ids.iter().copied().collect();
        assert_eq!(unique.len(), stored_ids.len(), "{conv}: no message stored twice");
        for id in ids {
            assert!(unique.contains(id), "{conv}: acknowledged {id} was lost");
        }
    }
}
