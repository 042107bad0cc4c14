//! What a message costs the server in allocations, counted: a group message allocates as much for a group of a
//! thousand as for a group of a hundred. Its push frame is encoded once and shared by every recipient, and its
//! recipients are the group's cached member list, shared (`Arc<[String]>`); a copy of it per message was a string per
//! member per message (BENCHMARKS.md, "The sixth machine, a sixth session"). Counted by an instrumented global
//! allocator in a test binary of its own, so that no other test allocates beside the counted sends.

mod common;

use common::*;
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static COUNTED: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Messages sent to each group for its average; a few more are sent first, uncounted, to warm its caches.
const SENDS: usize = 20;

/// Allocations (server and test client together) per message sent by `sender` to `group_id`, acknowledged.
async fn allocations_per_message(sender: &mut Client, group_id: &str) -> usize {
    for n in 0..3 {
        let ack = sender.send_text_msg(group_msg("owner", group_id, &format!("{group_id}-warm-{n}"), "hi")).await;
        assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    }
    let region = Region::new(COUNTED);
    for n in 0..SENDS {
        let ack = sender.send_text_msg(group_msg("owner", group_id, &format!("{group_id}-{n}"), "hi")).await;
        assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    }
    let allocations = region.change().allocations;
    sender.clear_inbox();
    allocations / SENDS
}

#[tokio::test]
async fn a_group_message_allocates_nothing_per_member() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut sender = server.connect_new(&admin, "owner", GOB_GZIP).await;
    // Members offline: what is counted is the message's path through the server, not the pushes' writes.
    let members: Vec<String> = (1..1000).map(|n| format!("member{n:04}")).collect();
    server.register(&admin, &members.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let token = server.user_token(&admin, "owner", palaver_protocol::constant::platform::IOS).await;
    let mut per_message = Vec::new();
    for size in [100, 1000] {
        let created = server
            .call(
                "/group/create_group",
                &token,
                json!({"ownerUserID": "owner", "memberUserIDs": &members[..size - 1],
                       "groupInfo": {"groupName": format!("g{size}"), "groupType": 2}}),
            )
            .await;
        let group_id = created["groupInfo"]["groupID"].as_str().unwrap().to_string();
        per_message.push(allocations_per_message(&mut sender, &group_id).await);
    }
    let (small, large) = (per_message[0], per_message[1]);
    // A string per member would be 900 more; a stray allocation or two of the server's timers is not.
    assert!(
        large < small + 90,
        "a message to 1,000 members allocated {large} times, to 100 members {small}: allocations grow with the group"
    );
}
