//! The cluster, black-box: three real `palaver` processes on 127.0.0.1 sharing one PostgreSQL (a schema of
//! their own) and one NATS (a cluster name of their own), driven by clients spread over the nodes.
//!
//! - 1:1 and group messages cross nodes; online status is seen from every node; a login on one node kicks the
//!   same platform's connection on another; a forced logout closes connections on every node.
//! - A member kicked through one node can no longer send through another (group caches are invalidated across
//!   nodes over the bus).
//! - Members of one group on all three nodes send at once: seqs stay gap-free (PostgreSQL's row lock) and every
//!   member receives the others' messages pushed in seq order (the bus's per-node ordering), so every member
//!   ends with the same sequence.
//! - Two nodes share one port pair with `--reuse-port`.
//! - Nodes sharing one `objects.local_dir` serve each other's files (a part sent to one node, the upload
//!   completed on another, the file downloaded from a third).
//! - NATS (a private server) is killed and restarted: a node keeps serving (logins, requests, sends) however
//!   much it would have to tell the other nodes, reconnects, clears its group cache (a group change made
//!   meanwhile never reached it), and has its clients reconnect and pull what they missed.
//! - A node is killed with SIGKILL mid-load; its clients reconnect to another node and resend what was not
//!   acknowledged: every acknowledged message is stored once, in a gap-free sequence, and after a resync every
//!   client holds each of them exactly once.
//!
//! PostgreSQL and NATS come from `PALAVER_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and `PALAVER_TEST_NATS_URL` (default `nats://127.0.0.1:4222`); `scripts/test` starts both if they are down.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod node;

use common::*;
use node::{admin_token, free_addr, register, user_token, wait_healthy};
use palaver_protocol::{
    constant::{platform, req},
    pb::sdkws,
};
use palaver_store::postgres::PgStore;
use prost::Message as _;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

fn database_url() -> String {
    std::env::var("PALAVER_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn nats_url() -> String {
    std::env::var("PALAVER_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

struct Node {
    child: Option<Child>,
    ws: SocketAddr,
    api: SocketAddr,
    _dir: tempfile::TempDir,
}

/// N nodes on one schema and one cluster name, killed when dropped.
struct Cluster {
    nodes: Vec<Node>,
    schema: String,
    /// The nodes' shared `objects.local_dir`.
    _objects: tempfile::TempDir,
}

impl Cluster {
    async fn start(n: usize) -> Self {
        Self::start_on(n, &nats_url()).await
    }

    /// [`Cluster::start`] on the NATS server at `nats`.
    async fn start_on(n: usize, nats: &str) -> Self {
        let tag = format!("{}_{:08x}", std::process::id(), rand::random::<u32>());
        let schema = format!("palaver_cluster_{tag}");
        PgStore::create_schema(&database_url(), &schema)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} (run scripts/test, which starts it): {e}", database_url()));
        let base = database_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        let objects = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..n {
            let (ws, api, dir) = (free_addr(), free_addr(), tempfile::tempdir().unwrap());
            let child = Command::new(env!("CARGO_BIN_EXE_palaver"))
                .args(["serve", "--data-dir"])
                .arg(dir.path())
                .args(["--ws-addr", &ws.to_string(), "--api-addr", &api.to_string(), "--admin-secret", SECRET])
                .args(["--database-url", &url, "--nats-url", nats, "--cluster-name", &format!("test_{tag}")])
                .env("PALAVER_LOG", "warn")
                .env("PALAVER_DATABASE_MAX_CONNECTIONS", "6")
                .env("PALAVER_OBJECTS__LOCAL_DIR", objects.path())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start palaver");
            nodes.push(Node { child: Some(child), ws, api, _dir: dir });
        }
        for node in &nodes {
            wait_healthy(node.api).await;
        }
        Self { nodes, schema, _objects: objects }
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().expect("kill -9");
            child.wait().unwrap();
        }
    }

    fn alive(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    async fn finish(mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
        PgStore::drop_schema(&database_url(), &self.schema).await.unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

async fn create_group(api: SocketAddr, admin: &str, owner: &str, members: &[String]) -> String {
    let body = serde_json::json!({
        "ownerUserID": owner, "memberUserIDs": members, "groupInfo": {"groupName": "cluster", "groupType": 2}
    });
    let r = post_json(api, "/group/create_group", Some(admin), &body).await;
    assert_eq!(r["errCode"], 0, "{r}");
    r["data"]["groupInfo"]["groupID"].as_str().unwrap().to_string()
}

/// Waits until a client of every node sees each of `users` online (presence has crossed the bus), by asking
/// for their online status (2005) on each node.
async fn wait_online_everywhere(cluster: &Cluster, admin: &str, users: &[String]) {
    for (i, node) in cluster.nodes.iter().enumerate() {
        if !cluster.alive(i) {
            continue;
        }
        let watcher = format!("watcher{i}");
        // Registered on first use (a second registration of the same id fails, which is fine here).
        let body = serde_json::json!({"users": [{"userID": watcher, "nickname": watcher}]});
        post_json(node.api, "/user/user_register", Some(admin), &body).await;
        let token = user_token(node.api, admin, &watcher, platform::IOS).await;
        let mut c = Client::connect(node.ws, &watcher, &token, platform::IOS, GOB_GZIP).await.unwrap();
        let mut ok = false;
        for _ in 0..300 {
            let sub = sdkws::SubUserOnlineStatus { subscribe_user_id: users.to_vec(), ..Default::default() };
            let resp = c.request(req::SUB_USER_ONLINE_STATUS, sub.encode_to_vec()).await;
            assert_eq!(resp.err_code, 0, "{}", resp.err_msg);
            let tips = sdkws::SubUserOnlineStatusTips::decode(&resp.data[..]).unwrap();
            if tips.subscribers.iter().filter(|s| !s.online_platform_ids.is_empty()).count() == users.len() {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ok, "node {i} never saw every user online");
    }
}

/// Pushed messages in the inbox, by conversation, in arrival order.
fn pushes(c: &mut Client) -> BTreeMap<String, Vec<sdkws::MsgData>> {
    let mut out: BTreeMap<String, Vec<sdkws::MsgData>> = BTreeMap::new();
    for resp in c.inbox.drain(..).filter(|r| r.req_identifier == req::PUSH_MSG) {
        let push = sdkws::PushMessages::decode(&resp.data[..]).unwrap();
        for (conv, msgs) in push.msgs.into_iter().chain(push.notification_msgs) {
            out.entry(conv).or_default().extend(msgs.msgs);
        }
    }
    out
}

/// Receives frames into the inbox until `n` pushes are in, or none comes for a while (`Client::recv` gives up
/// after `WAIT`), or the connection closes.
/// The error code of a REST call made with `token` (0: accepted).
async fn token_check(api: SocketAddr, token: &str) -> i64 {
    let r = post_json(api, "/user/get_users_info", Some(token), &serde_json::json!({"userIDs": ["bob"]})).await;
    r["errCode"].as_i64().unwrap_or(-1)
}

/// Whether a node refuses a revoked `token` as revoked (1506) within a second or two: the revocation reaches it
/// over the bus, well before its cached copy would expire (`token_cache::TTL`, 10 s).
async fn token_refused(api: SocketAddr, token: &str) -> bool {
    for _ in 0..30 {
        if token_check(api, token).await == 1506 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn collect_pushes(c: &mut Client, n: usize) {
    while c.inbox.iter().filter(|r| r.req_identifier == req::PUSH_MSG).count() < n {
        match c.recv().await {
            Some(resp) => c.inbox.push_back(resp),
            None => break,
        }
    }
}

/// Everything stored in `conv` that `c` may read, by pull, in seq order.
async fn pull_all(c: &mut Client, conv: &str) -> Vec<sdkws::MsgData> {
    let newest = c.newest_seqs().await;
    let max = newest.max_seqs.get(conv).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut begin = 1;
    while begin <= max {
        let end = (begin + 999).min(max);
        let resp = c.pull_range(conv, begin, end, 1000).await;
        assert_eq!(resp.err_code, 0, "{}", resp.err_msg);
        let mut pulled = sdkws::PullMessageBySeqsResp::decode(&resp.data[..]).unwrap();
        out.extend(pulled.msgs.remove(conv).map(|m| m.msgs).unwrap_or_default());
        begin = end + 1;
    }
    out
}

fn seqs(msgs: &[sdkws::MsgData]) -> Vec<i64> {
    msgs.iter().map(|m| m.seq).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_exchange_direct_and_group_messages_in_order() {
    let cluster = Cluster::start(3).await;
    let n = &cluster.nodes;
    let admin = admin_token(n[0].api).await;

    // 1:1 across nodes, and online status seen from every node.
    let ids: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
    register(n[1].api, &admin, &ids).await;
    let mut alice =
        Client::connect(n[0].ws, "alice", &user_token(n[0].api, &admin, "alice", 5).await, 5, GOB_GZIP).await.unwrap();
    let bob_token = user_token(n[2].api, &admin, "bob", 5).await;
    let mut bob = Client::connect(n[1].ws, "bob", &bob_token, 5, JSON).await.unwrap();
    wait_online_everywhere(&cluster, &admin, &ids[..2]).await;
    let ack = alice.send_text_msg(text_msg("alice", "bob", "c1", "hello bob")).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let (conv, m) = bob.next_push().await.expect("bob (node 1) gets alice's (node 0) message");
    assert_eq!((conv.as_str(), m.seq, text_of(&m).as_str()), ("si_alice_bob", 1, "hello bob"));
    // senderSync (on unless the options say otherwise): the sender's own devices get the message too.
    let (_, own) = alice.next_push().await.expect("alice's devices get her own message");
    assert_eq!(own.seq, 1);
    let ack = bob.send_text_msg(text_msg("bob", "alice", "c2", "hi alice")).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let (_, m) = alice.next_push().await.expect("alice gets bob's answer across nodes");
    assert_eq!((m.seq, text_of(&m).as_str()), (2, "hi alice"));

    // A second Web login of bob on node 2 kicks his Web connection on node 1 (policy 1: same platform). Node 0,
    // where bob's first token was just found valid (and cached), refuses it from then on.
    assert_eq!(token_check(n[0].api, &bob_token).await, 0);
    let bob2_token = user_token(n[2].api, &admin, "bob", 5).await;
    let mut bob2 = Client::connect(n[2].ws, "bob", &bob2_token, 5, GOB_GZIP).await.unwrap();
    let kick = bob.next_of(req::KICK_ONLINE_MSG).await;
    assert!(kick.is_some(), "bob's node-1 connection was kicked by his node-2 login");
    assert!(bob.closed().await);
    assert!(token_refused(n[0].api, &bob_token).await, "node 0 still took the token node 1 revoked");
    // A forced logout on node 0 closes bob's connection on node 2, and node 1 (no connection of bob's, the
    // token cached there) refuses the token too.
    assert_eq!(token_check(n[1].api, &bob2_token).await, 0);
    let r =
        post_json(n[0].api, "/auth/force_logout", Some(&admin), &serde_json::json!({"userID": "bob", "platformID": 5}))
            .await;
    assert_eq!(r["errCode"], 0, "{r}");
    assert!(bob2.closed().await, "force_logout on node 0 closed bob's connection on node 2");
    assert!(token_refused(n[1].api, &bob2_token).await, "node 1 still took the token node 0 revoked");
    // Blocking carol through node 0 logs her out everywhere: her connection on node 2 is kicked too.
    let carol_token = user_token(n[1].api, &admin, "carol", 5).await;
    let mut carol = Client::connect(n[2].ws, "carol", &carol_token, 5, GOB_GZIP).await.unwrap();
    wait_online_everywhere(&cluster, &admin, &ids[2..]).await;
    let block = serde_json::json!({"userID": "carol", "blocked": true});
    let r = post_json(n[0].api, "/palaver/admin/block_user", Some(&admin), &block).await;
    assert_eq!(r["errCode"], 0, "{r}");
    assert!(carol.next_of(req::KICK_ONLINE_MSG).await.is_some(), "carol's node-2 connection was kicked");
    assert!(carol.closed().await, "blocking on node 0 closed carol's connection on node 2");
    drop(alice);

    // A group with two members on each node; everyone sends at once.
    let members: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    register(n[0].api, &admin, &members).await;
    let group = create_group(n[2].api, &admin, &members[0], &members[1..]).await;
    let conv = format!("sg_{group}");
    let mut clients = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let node = &n[i % 3];
        let token = user_token(node.api, &admin, m, 5).await;
        let format = if i % 2 == 0 { GOB_GZIP } else { JSON };
        clients.push(Client::connect(node.ws, m, &token, 5, format).await.unwrap());
    }
    wait_online_everywhere(&cluster, &admin, &members).await;
    const PER_MEMBER: usize = 40;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let (group, me) = (group.clone(), members[i].clone());
            tokio::spawn(async move {
                for k in 0..PER_MEMBER {
                    let ack = c.send_text_msg(group_msg(&me, &group, &format!("{me}-{k}"), "g")).await;
                    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
                }
                c
            })
        })
        .collect();
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let total = (PER_MEMBER * members.len()) as i64;
    let mut reference: Option<Vec<String>> = None;
    for c in &mut clients {
        // Every member is pushed every message, its own included (senderSync: its other devices need them).
        collect_pushes(c, PER_MEMBER * members.len()).await;
        let pushed = pushes(c).remove(&conv).unwrap_or_default();
        let pushed_seqs = seqs(&pushed);
        assert!(pushed_seqs.windows(2).all(|w| w[0] < w[1]), "{}: pushes out of seq order: {pushed_seqs:?}", c.user);
        let all = pull_all(c, &conv).await;
        assert_eq!(seqs(&all), (1..=total + 1).collect::<Vec<_>>(), "{}: gap-free seqs", c.user);
        // Seq 1 is the group's creation tip, stored before anyone connected; the pushes that followed are
        // exactly the stored messages, seq for seq.
        assert_eq!(all[0].content_type, 1501, "{}: the creation's tip first", c.user);
        let stored: Vec<(i64, String)> = all[1..].iter().map(|m| (m.seq, m.client_msg_id.clone())).collect();
        let got: Vec<(i64, String)> = pushed.iter().map(|m| (m.seq, m.client_msg_id.clone())).collect();
        assert_eq!(got, stored, "{}: pushes equal the stored sequence", c.user);
        let ids: Vec<String> = all.iter().map(|m| m.client_msg_id.clone()).collect();
        match &reference {
            None => reference = Some(ids),
            Some(r) => assert_eq!(r, &ids, "{}: the same sequence as every other member", c.user),
        }
    }

    // A member kicked on node 0 can no longer send through node 2, whose group cache held it as a member: the
    // change crossed the bus and dropped the cached group there.
    let kick = serde_json::json!({"groupID": group, "kickedUserIDs": ["m5"], "reason": ""});
    let r = post_json(n[0].api, "/group/kick_group", Some(&admin), &kick).await;
    assert_eq!(r["errCode"], 0, "{r}");
    let m5 = &mut clients[5];
    let refused = m5.send_text_msg(group_msg("m5", &group, "m5-after-kick", "g")).await;
    assert_ne!(refused.err_code, 0, "a member kicked on another node still sent to the group");
    let ok = clients[2].send_text_msg(group_msg("m2", &group, "m2-after-kick", "g")).await;
    assert_eq!(ok.err_code, 0, "{}", ok.err_msg);
    cluster.finish().await;
}

/// What every sender of the kill test shares.
#[derive(Clone)]
struct Load {
    group: String,
    /// (gateway, API) of each node.
    addrs: Vec<(SocketAddr, SocketAddr)>,
    dead: Arc<Mutex<HashSet<usize>>>,
    admin: String,
    /// (conversation, clientMsgID) of every acknowledged message.
    acked: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
}

/// One sender: sends alternately to the group and to the sink, and on losing its node reconnects to a live one
/// and resends the unacknowledged message (same clientMsgID) until it is acknowledged.
async fn sender(me: String, mut node: usize, load: Load) -> Client {
    let Load { group, addrs, dead, admin, acked, stop } = load;
    let connect = |node: usize| {
        let (me, admin) = (me.clone(), admin.clone());
        let (ws, api) = addrs[node];
        async move {
            let token = user_token(api, &admin, &me, platform::ANDROID).await;
            Client::connect(ws, &me, &token, platform::ANDROID, GOB_GZIP).await.ok()
        }
    };
    let mut client = connect(node).await.expect("first connect");
    let mut k = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{me}-{k}");
        let (msg, conv) = if k % 2 == 0 {
            (group_msg(&me, &group, &id, "g"), format!("sg_{group}"))
        } else {
            (text_msg(&me, "sink", &id, "d"), palaver_protocol::conversation_id::single(&me, "sink"))
        };
        loop {
            if let Some(incr) = client.try_send_req(req::SEND_MSG, msg.encode_to_vec()).await {
                let mut answered = None;
                while let Some(resp) = client.recv().await {
                    if resp.msg_incr == incr {
                        answered = Some(resp);
                        break;
                    }
                    client.inbox.push_back(resp);
                }
                if let Some(resp) = answered {
                    assert_eq!(resp.err_code, 0, "{}", resp.err_msg);
                    acked.lock().unwrap().push((conv.clone(), id.clone()));
                    break;
                }
            }
            // The node is gone (or did not answer): move to a live one and resend the same clientMsgID.
            let live: Vec<usize> = (0..addrs.len()).filter(|i| !dead.lock().unwrap().contains(i)).collect();
            node = live[(live.iter().position(|&i| i == node).map_or(0, |p| p + 1)) % live.len()];
            loop {
                if let Some(c) = connect(node).await {
                    client = c;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        k += 1;
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_load_loses_no_acknowledged_message() {
    let mut cluster = Cluster::start(3).await;
    let addrs: Vec<(SocketAddr, SocketAddr)> = cluster.nodes.iter().map(|n| (n.ws, n.api)).collect();
    let admin = admin_token(addrs[0].1).await;
    let senders: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    let mut everyone = senders.clone();
    everyone.push("sink".into());
    register(addrs[0].1, &admin, &everyone).await;
    let group = create_group(addrs[1].1, &admin, "sink", &senders).await;
    let sink_token = user_token(addrs[0].1, &admin, "sink", platform::WEB).await;
    let mut sink = Client::connect(addrs[0].0, "sink", &sink_token, platform::WEB, JSON).await.unwrap();

    let load = Load {
        group: group.clone(),
        addrs: addrs.clone(),
        dead: Arc::default(),
        admin: admin.clone(),
        acked: Arc::default(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let (acked, dead, stop) = (load.acked.clone(), load.dead.clone(), load.stop.clone());
    let mut tasks = Vec::new();
    for (i, me) in senders.iter().enumerate() {
        tasks.push(tokio::spawn(sender(me.clone(), i % 3, load.clone())));
    }
    // The sink reads pushes throughout (so its queue never fills).
    let sink_frames = Arc::new(AtomicUsize::new(0));
    let sink_task = {
        let (stop, frames) = (stop.clone(), sink_frames.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(resp) = sink.recv().await {
                    sink.inbox.push_back(resp);
                    frames.fetch_add(1, Ordering::Relaxed);
                }
            }
            sink
        })
    };

    let wait_for = |n: usize| {
        let acked = acked.clone();
        async move {
            for _ in 0..6000 {
                if acked.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("senders made no progress");
        }
    };
    wait_for(300).await;
    dead.lock().unwrap().insert(2);
    cluster.kill9(2);
    let at_kill = acked.lock().unwrap().len();
    wait_for(at_kill + 300).await;
    stop.store(true, Ordering::Relaxed);
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    let mut sink = sink_task.await.unwrap();
    collect_pushes(&mut sink, usize::MAX).await;

    let acked = acked.lock().unwrap().clone();
    let mut by_conv: HashMap<String, HashSet<String>> = HashMap::new();
    for (conv, id) in &acked {
        by_conv.entry(conv.clone()).or_default().insert(id.clone());
    }
    // The sink (node 0, up throughout): what it was pushed, then a resync by pull of whatever it did not get.
    let pushed = pushes(&mut sink);
    for (conv, ids) in &by_conv {
        let stored = pull_all(&mut sink, conv).await;
        let max = stored.len() as i64;
        assert_eq!(seqs(&stored), (1..=max).collect::<Vec<_>>(), "{conv}: gap-free seqs after SIGKILL");
        let stored_ids: HashSet<&str> = stored.iter().map(|m| m.client_msg_id.as_str()).collect();
        assert_eq!(stored_ids.len(), stored.len(), "{conv}: a message stored twice");
        for id in ids {
            assert!(stored_ids.contains(id.as_str()), "{conv}: acknowledged {id} was lost");
        }
        // The client's view: pushes in seq order, none twice, and with the resync each message exactly once.
        let got = pushed.get(conv).cloned().unwrap_or_default();
        let got_seqs = seqs(&got);
        assert!(got_seqs.windows(2).all(|w| w[0] < w[1]), "{conv}: sink pushes out of order or twice: {got_seqs:?}");
        let mut view: BTreeMap<i64, String> = got.iter().map(|m| (m.seq, m.client_msg_id.clone())).collect();
        let missing: Vec<i64> = (1..=max).filter(|s| !view.contains_key(s)).collect();
        for m in stored.iter().filter(|m| missing.contains(&m.seq)) {
            view.insert(m.seq, m.client_msg_id.clone());
        }
        let view_ids: Vec<&String> = view.values().collect();
        let unique: HashSet<&String> = view_ids.iter().copied().collect();
        assert_eq!(unique.len(), view_ids.len(), "{conv}: a message shown twice after resync");
        for id in ids {
            assert!(unique.contains(id), "{conv}: acknowledged {id} not delivered to the sink");
        }
        for (seq, m) in got.iter().map(|m| (m.seq, m)) {
            assert_eq!(
                stored[(seq - 1) as usize].client_msg_id,
                m.client_msg_id,
                "{conv}: push {seq} differs from the store"
            );
        }
    }
    // Every sender, wherever it ended up, reads the same group sequence.
    let conv = format!("sg_{group}");
    let reference: Vec<String> = pull_all(&mut sink, &conv).await.into_iter().map(|m| m.client_msg_id).collect();
    for c in &mut clients {
        let ids: Vec<String> = pull_all(c, &conv).await.into_iter().map(|m| m.client_msg_id).collect();
        assert_eq!(ids, reference, "{}: the group's sequence after the kill", c.user);
    }
    eprintln!("{} acknowledged ({} before the kill), all delivered once", acked.len(), at_kill);
    assert!(sink_frames.load(Ordering::Relaxed) > 0);
    cluster.finish().await;
}

/// Two nodes on one machine share the gateway and API ports (`--reuse-port`): both bind, both serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_port_pair_with_reuse_port() {
    let (ws, api) = (free_addr(), free_addr());
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut children: Vec<Child> = dirs
        .iter()
        .map(|dir| {
            Command::new(env!("CARGO_BIN_EXE_palaver"))
                .args(["serve", "--data-dir"])
                .arg(dir.path())
                .args(["--ws-addr", &ws.to_string(), "--api-addr", &api.to_string(), "--admin-secret", SECRET])
                .arg("--reuse-port")
                .env("PALAVER_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_healthy(api).await;
    // Both processes are up (a second bind without SO_REUSEPORT would have failed and exited), and the shared
    // gateway port takes connections.
    for _ in 0..20 {
        for child in &mut children {
            assert!(child.try_wait().unwrap().is_none(), "a node sharing the ports exited");
        }
        tokio::net::TcpStream::connect(ws).await.expect("the shared gateway port accepts");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Nodes sharing `objects.local_dir` (as a cluster must when it keeps files on disk) serve each other's files:
/// an upload started on node 0 gets its part through node 1 and is completed on node 2; every node serves the
/// file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_a_local_objects_folder_serve_each_others_files() {
    let cluster = Cluster::start(3).await;
    let n = &cluster.nodes;
    let admin = admin_token(n[0].api).await;
    register(n[0].api, &admin, &["alice".to_string()]).await;
    let token = user_token(n[0].api, &admin, "alice", platform::WEB).await;
    let data = "one part, received by one node, assembled by another, served by all";
    let part_md5 = md5_hex(data.as_bytes());
    let hash = md5_hex(part_md5.as_bytes());
    let name = format!("alice/{hash}.txt");
    let body = serde_json::json!({
        "hash": hash, "size": data.len(), "partSize": data.len(), "maxParts": 1, "cause": "test", "name": name,
        "contentType": "text/plain",
    });
    let initiated = post_json(n[0].api, "/object/initiate_multipart_upload", Some(&token), &body).await;
    assert_eq!(initiated["errCode"], 0, "{initiated}");
    let upload = &initiated["data"]["upload"];
    let url = upload["sign"]["parts"][0]["url"].as_str().expect("a part URL");
    let path = &url[url.find("/object-upload/").expect("the local backend's part URL")..];
    let put = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{data}",
        n[1].api,
        data.len()
    );
    let (status, answer) = http_raw(n[1].api, put.as_bytes()).await.unwrap();
    assert_eq!(status, 200, "the part, on another node than the upload's start: {answer}");
    let body = serde_json::json!({
        "uploadID": upload["uploadID"], "parts": [part_md5], "name": name, "contentType": "text/plain", "cause": "test",
    });
    let completed = post_json(n[2].api, "/object/complete_multipart_upload", Some(&token), &body).await;
    assert_eq!(completed["errCode"], 0, "completed on a third node: {completed}");
    for node in n {
        let (status, got) = http_get(node.api, &format!("/object/{name}")).await.unwrap();
        assert_eq!((status, got.as_str()), (200, data), "node {} serves the file", node.api);
    }
    cluster.finish().await;
}

/// A NATS server of this test's own (so that it can be killed), on `port`.
fn private_nats(port: u16) -> Child {
    let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
    Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (scripts/cluster-services installs it)")
}

async fn wait_port(port: u16) {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing listens on {port}");
}

/// NATS goes away and comes back. Meanwhile a node keeps serving (logins, requests, sends), however many bus
/// messages pile up for the other nodes: more than the NATS client buffers while it reconnects, which used to
/// stall whoever published next (a login being registered, a send under its conversation's lock). A member
/// kicked from a group during the outage, through a node that then dies, can no longer send through the other
/// node once it is back on NATS: that node cleared its group cache, since the change never reached it. And a
/// node back on NATS closes its clients' connections so that they reconnect and pull what was pushed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_nats_keeps_serving_reconnects_and_heals() {
    let port = free_addr().port();
    let mut nats = private_nats(port);
    wait_port(port).await;
    let mut cluster = Cluster::start_on(2, &format!("nats://127.0.0.1:{port}")).await;
    let addrs: Vec<(SocketAddr, SocketAddr)> = cluster.nodes.iter().map(|n| (n.ws, n.api)).collect();
    let admin = admin_token(addrs[0].1).await;
    let logins: Vec<String> = (0..4).map(|i| format!("login{i}")).collect();
    let mut ids: Vec<String> = ["alice", "bob", "mallory"].map(String::from).to_vec();
    ids.extend(logins.iter().cloned());
    register(addrs[0].1, &admin, &ids).await;
    // Mallory sends to a group through node 1, which caches the group with her as a member.
    let group = create_group(addrs[0].1, &admin, "alice", &["bob".to_string(), "mallory".to_string()]).await;
    let mallory_token = user_token(addrs[1].1, &admin, "mallory", 5).await;
    let mut mallory = Client::connect(addrs[1].0, "mallory", &mallory_token, 5, GOB_GZIP).await.unwrap();
    let ack = mallory.send_text_msg(group_msg("mallory", &group, "m-before", "g")).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let alice_token = user_token(addrs[0].1, &admin, "alice", 5).await;
    let mut alice = Client::connect(addrs[0].0, "alice", &alice_token, 5, GOB_GZIP).await.unwrap();
    let bob_token = user_token(addrs[1].1, &admin, "bob", 5).await;
    let mut bob = Client::connect(addrs[1].0, "bob", &bob_token, 5, GOB_GZIP).await.unwrap();
    wait_online_everywhere(&cluster, &admin, &ids[..2]).await;

    nats.kill().unwrap();
    nats.wait().unwrap();
    // Logins on node 0, each announced to the other nodes when it arrives and when it leaves: 2,400 bus
    // messages, past the 2,048 that async-nats buffers while it reconnects. Every one is answered.
    const LOGINS_PER_USER: usize = 300;
    let tasks: Vec<_> = logins
        .iter()
        .map(|user| {
            let (user, admin, (ws, api)) = (user.clone(), admin.clone(), addrs[0]);
            tokio::spawn(async move {
                let token = user_token(api, &admin, &user, platform::IOS).await;
                for _ in 0..LOGINS_PER_USER {
                    let mut c = Client::connect(ws, &user, &token, platform::IOS, GOB_GZIP).await.unwrap();
                    c.newest_seqs().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a node without NATS answers every login");
    }
    let ack = alice.send_text_msg(text_msg("alice", "bob", "during-outage", "sent while NATS was down")).await;
    assert_eq!(ack.err_code, 0, "a node without NATS still stores and acknowledges: {}", ack.err_msg);
    let (_, own) = alice.next_push().await.expect("and pushes to its own clients");
    assert_eq!(own.client_msg_id, "during-outage");
    let kick = serde_json::json!({"groupID": group, "kickedUserIDs": ["mallory"], "reason": ""});
    let r = post_json(addrs[0].1, "/group/kick_group", Some(&admin), &kick).await;
    assert_eq!(r["errCode"], 0, "{r}");
    // Node 0 dies with the kick's bus message unsent: node 1 can only learn of it from the store.
    cluster.kill9(0);
    drop(alice);
    let mut nats = private_nats(port);
    wait_port(port).await;

    // Node 1 reconnects (async-nats retries with a backoff) and then closes bob's connection.
    let mut closed = false;
    for _ in 0..12 {
        if bob.closed().await {
            closed = true;
            break;
        }
    }
    assert!(closed, "node 1 did not close its clients after getting NATS back");
    assert!(mallory.closed().await);
    let mut mallory = Client::connect(addrs[1].0, "mallory", &mallory_token, 5, GOB_GZIP).await.unwrap();
    let refused = mallory.send_text_msg(group_msg("mallory", &group, "m-after-kick", "g")).await;
    assert_ne!(refused.err_code, 0, "node 1 kept a stale group cache: a member kicked during the outage still sent");
    let mut bob = Client::connect(addrs[1].0, "bob", &bob_token, 5, GOB_GZIP).await.expect("bob reconnects");
    let newest = bob.newest_seqs().await;
    assert_eq!(newest.max_seqs["si_alice_bob"], 1);
    let pulled = pull_all(&mut bob, "si_alice_bob").await;
    assert_eq!(pulled.iter().map(|m| m.client_msg_id.as_str()).collect::<Vec<_>>(), ["during-outage"]);
    cluster.finish().await;
    nats.kill().unwrap();
    nats.wait().unwrap();
}
