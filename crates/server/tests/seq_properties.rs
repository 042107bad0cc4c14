//! Property: however many clients send concurrently, into one conversation or many, every conversation's
//! seqs are 1..=n with no gap and no duplicate, each clientMsgID is stored once, and a replayed clientMsgID
//! is answered with the original and creates nothing.

mod common;

use common::*;
use palaver_protocol::pb::{msg as pbmsg, sdkws};
use proptest::prelude::*;
use prost::Message as _;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
struct Plan {
    senders: usize,
    per_sender: usize,
    /// Every `replay_every`-th send repeats the sender's previous clientMsgID.
    replay_every: usize,
    /// Into one group (true) or each sender to its own peer plus a shared peer (false).
    group: bool,
}

fn plans() -> impl Strategy<Value = Plan> {
    (2usize..6, 1usize..25, 2usize..6, any::<bool>()).prop_map(|(senders, per_sender, replay_every, group)| Plan {
        senders,
        per_sender,
        replay_every,
        group,
    })
}

async fn run(plan: Plan) {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let users: Vec<String> = (0..plan.senders).map(|i| format!("u{i}")).collect();
    let ids: Vec<&str> = users.iter().map(String::as_str).chain(["hub"]).collect();
    server.register(&admin, &ids).await;
    let group_id = if plan.group {
        let token = server.user_token(&admin, "hub", 1).await;
        let members: Vec<&str> = users.iter().map(String::as_str).collect();
        let created = server
            .call(
                "/group/create_group",
                &token,
                serde_json::json!({"memberUserIDs": members, "groupInfo": {"groupName": "p"}}),
            )
            .await;
        created["groupInfo"]["groupID"].as_str().unwrap().to_string()
    } else {
        String::new()
    };

    // Each sender sends concurrently with all others; acks map clientMsgID → serverMsgID.
    let mut tasks = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let token = server.user_token(&admin, user, 5).await;
        let mut client =
            Client::connect(server.ws, user, &token, 5, if i % 2 == 0 { GOB_GZIP } else { JSON }).await.unwrap();
        let (user, group_id, plan) = (user.clone(), group_id.clone(), plan.clone());
        tasks.push(tokio::spawn(async move {
            let mut acks: Vec<(String, String, String)> = Vec::new();
            let mut last = String::new();
            for n in 0..plan.per_sender {
                let replay = n > 0 && n % plan.replay_every == 0;
                let id = if replay { last.clone() } else { format!("{user}-{n}") };
                // Alternate between a shared peer ("hub") and a private one, so several 1:1 conversations race.
                let msg = if plan.group {
                    group_msg(&user, &group_id, &id, "g")
                } else if n % 2 == 0 {
                    text_msg(&user, "hub", &id, "shared")
                } else {
                    text_msg(&user, &format!("u{}", (n + 1) % plan.senders), &id, "peer")
                };
                let conv = palaver_protocol::conversation_id::for_message(
                    msg.session_type,
                    &msg.send_id,
                    &msg.recv_id,
                    &msg.group_id,
                    &msg.options,
                )
                .unwrap();
                let resp = client.send_text_msg(msg).await;
                assert_eq!(resp.err_code, 0, "{}", resp.err_msg);
                let ack = pbmsg::SendMsgResp::decode(&resp.data[..]).unwrap();
                client.inbox.clear();
                acks.push((conv, id.clone(), ack.server_msg_id));
                last = id;
            }
            acks
        }));
    }
    let mut expected: HashMap<String, HashMap<String, String>> = HashMap::new();
    for task in tasks {
        for (conv, client_msg_id, server_msg_id) in task.await.unwrap() {
            let seen = expected.entry(conv).or_default().entry(client_msg_id).or_insert(server_msg_id.clone());
            assert_eq!(*seen, server_msg_id, "a replay was answered with a different serverMsgID");
        }
    }

    // Read back every conversation through the REST pull, as the admin acting for one of its members.
    let reader = &users[0];
    for (conv, msgs) in &expected {
        let stored = server
            .call(
                "/msg/pull_msg_by_seq",
                &admin,
                serde_json::json!({"userID": member_of(conv, &users, reader), "seqRanges": [{"conversationID": conv, "begin": 1, "end": 10_000, "num": 10_000}]}),
            )
            .await;
        let list: Vec<sdkws::MsgData> = serde_json::from_value(stored["msgs"][conv]["Msgs"].clone()).unwrap();
        let seqs: Vec<i64> = list.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=list.len() as i64).collect::<Vec<_>>(), "{conv}: seqs must be 1..=n");
        // Besides the users' messages a group's chat holds the server's tips (its creation, seq 1).
        let sent: Vec<&sdkws::MsgData> = list.iter().filter(|m| m.content_type < 1000).collect();
        assert_eq!(sent.len() + usize::from(conv.starts_with("sg_")), list.len(), "{conv}: one tip, the creation's");
        let by_client: BTreeMap<&str, &str> =
            sent.iter().map(|m| (m.client_msg_id.as_str(), m.server_msg_id.as_str())).collect();
        assert_eq!(by_client.len(), msgs.len(), "{conv}: each clientMsgID once");
        for (client_msg_id, server_msg_id) in msgs {
            assert_eq!(by_client.get(client_msg_id.as_str()), Some(&server_msg_id.as_str()));
        }
    }
    server.stop().await;
}

/// A user of the conversation, to pull it as (the admin acts for anyone).
fn member_of(conv: &str, users: &[String], fallback: &str) -> String {
    if let Some(pair) = conv.strip_prefix("si_") {
        return users
            .iter()
            .find(|u| pair.split('_').any(|p| p == u.as_str()))
            .cloned()
            .unwrap_or_else(|| "hub".into());
    }
    fallback.to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn concurrent_senders_keep_seqs_gap_free_and_idempotent(plan in plans()) {
        tokio::runtime::Runtime::new().unwrap().block_on(run(plan));
    }
}
