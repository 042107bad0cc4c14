//! Route coverage (issue #5): every HTTP route and gateway request id that OpenIM's SDKs use (the FULL list of
//! `openim-protocol.md` §9.2–9.3: the 78 SDK routes, `/user/get_user_client_config` of sdk-core HEAD, and the
//! 11 request ids) is served, and is named by at least one test besides this one.
//!
//! "Served" is checked over real HTTP with an empty request: the route must answer OpenIM's envelope (HTTP 200
//! with an `errCode`), never 404 and never "not implemented". What each route *does* is the business of the
//! tests that name it.

mod common;

use common::*;
use palaver_protocol::constant::platform;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The SDK routes (§9.3), in the table's order, plus `/user/get_user_client_config` (§11.1).
const SDK_ROUTES: &[&str] = &[
    "/conversation/get_all_conversations",
    "/conversation/get_conversations",
    "/conversation/get_full_conversation_ids",
    "/conversation/get_incremental_conversations",
    "/conversation/get_not_notify_conversation_ids",
    "/conversation/get_owner_conversation",
    "/conversation/set_conversations",
    "/friend/add_black",
    "/friend/add_friend",
    "/friend/add_friend_response",
    "/friend/delete_friend",
    "/friend/get_black_list",
    "/friend/get_designated_friend_apply",
    "/friend/get_designated_friends",
    "/friend/get_friend_apply_list",
    "/friend/get_friend_list",
    "/friend/get_full_friend_user_ids",
    "/friend/get_incremental_friends",
    "/friend/get_self_friend_apply_list",
    "/friend/get_self_unhandled_apply_count",
    "/friend/get_specified_blacks",
    "/friend/is_friend",
    "/friend/remove_black",
    "/friend/update_friends",
    "/group/cancel_mute_group",
    "/group/cancel_mute_group_member",
    "/group/create_group",
    "/group/dismiss_group",
    "/group/get_full_group_member_user_ids",
    "/group/get_full_join_group_ids",
    "/group/get_group_application_unhandled_count",
    "/group/get_group_member_list",
    "/group/get_group_members_info",
    "/group/get_groups_info",
    "/group/get_incremental_group_members_batch",
    "/group/get_incremental_join_groups",
    "/group/get_joined_group_list",
    "/group/get_recv_group_applicationList",
    "/group/get_specified_user_group_request_info",
    "/group/get_user_req_group_applicationList",
    "/group/group_application_response",
    "/group/invite_user_to_group",
    "/group/join_group",
    "/group/kick_group",
    "/group/mute_group",
    "/group/mute_group_member",
    "/group/quit_group",
    "/group/set_group_info_ex",
    "/group/set_group_member_info",
    "/group/transfer_group",
    "/jssdk/get_active_conversations",
    "/jssdk/get_conversations",
    "/msg/clear_conversation_msg",
    "/msg/delete_msgs",
    "/msg/get_conversations_has_read_and_max_seq",
    "/msg/mark_conversation_as_read",
    "/msg/mark_msgs_as_read",
    "/msg/revoke_msg",
    "/msg/set_conversation_has_read_seq",
    "/msg/user_clear_all_msg",
    "/object/access_url",
    "/object/auth_sign",
    "/object/complete_multipart_upload",
    "/object/initiate_multipart_upload",
    "/object/part_limit",
    "/object/part_size",
    "/third/fcm_update_token",
    "/third/logs/upload",
    "/third/set_app_badge",
    "/user/get_subscribe_users_status",
    "/user/get_users_info",
    "/user/process_user_command_add",
    "/user/process_user_command_delete",
    "/user/process_user_command_get_all",
    "/user/process_user_command_update",
    "/user/set_global_msg_recv_opt",
    "/user/subscribe_users_status",
    "/user/update_user_info_ex",
    "/user/get_user_client_config",
];

/// `[(req::NAME, number, "NAME"), …]`.
macro_rules! ws_requests {
    ($($name:ident = $id:literal),* $(,)?) => { [$((palaver_protocol::constant::req::$name, $id, stringify!($name))),*] };
}

/// The gateway request ids of FULL parity (§2.9): the protocol constant (`req::…`, the name tests use) and the
/// number the SDKs send.
const WS_REQUESTS: &[(i32, i32, &str)] = &ws_requests![
    GET_NEWEST_SEQ = 1001,
    PULL_MSG_BY_RANGE = 1002,
    SEND_MSG = 1003,
    PULL_MSG_BY_SEQ_LIST = 1005,
    GET_CONV_MAX_READ_SEQ = 1006,
    PULL_CONV_LAST_MESSAGE = 1007,
    PUSH_MSG = 2001,
    KICK_ONLINE_MSG = 2002,
    LOGOUT_MSG = 2003,
    SET_BACKGROUND_STATUS = 2004,
    SUB_USER_ONLINE_STATUS = 2005,
];

#[test]
fn the_lists_are_the_documented_ones() {
    assert_eq!(SDK_ROUTES.len(), 78 + 1, "78 SDK routes and get_user_client_config");
    let mut unique = SDK_ROUTES.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), SDK_ROUTES.len(), "no route twice");
    assert_eq!(WS_REQUESTS.len(), 11);
    for (constant, id, name) in WS_REQUESTS {
        assert_eq!(constant, id, "req::{name}");
    }
}

/// Every route answers an authenticated, empty request with OpenIM's envelope: never 404, never "not
/// implemented" (an argument error for the missing fields is the expected answer of most).
#[tokio::test]
async fn every_sdk_route_is_served() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    server.register(&admin, &["alice"]).await;
    let token = server.user_token(&admin, "alice", platform::WEB).await;
    for route in SDK_ROUTES {
        let answer = post_json(server.api, route, Some(&token), &json!({})).await;
        assert!(answer["errCode"].is_i64(), "{route}: not OpenIM's envelope: {answer}");
        let message = answer["errMsg"].as_str().unwrap_or_default().to_lowercase();
        assert!(!message.contains("not implemented") && !message.contains("unsupported"), "{route}: {answer}");
    }
    // And the check itself can fail: a route Palaver does not serve is a 404.
    let (status, _) = http_raw(
        server.api,
        b"POST /group/no_such_route HTTP/1.1\r\nHost: x\r\noperationID: op\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
}

/// Every route and request id is named by some test other than this file: a Rust black-box test or a
/// compatibility scenario driving OpenIM's SDKs.
#[test]
fn every_route_and_request_id_is_named_by_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sources = Vec::new();
    for dir in ["crates/server/tests", "crates/store/tests", "crates/sdk/tests", "crates/cli/tests", "tests"] {
        collect_sources(&root.join(dir), &mut sources);
    }
    let this = Path::new(file!()).file_name().unwrap();
    let texts: Vec<String> = sources
        .iter()
        .filter(|p| p.file_name() != Some(this))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(texts.len() > 10, "found only {} test files under {}", texts.len(), root.display());
    let named = |needle: &str| {
        texts.iter().any(|t| {
            t.match_indices(needle).any(|(at, _)| {
                // The whole route, not a prefix of a longer one (`/msg/delete_msgs` vs `/msg/delete_msgs_x`).
                t[at + needle.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_' && c != '/')
            })
        })
    };
    let unnamed: Vec<&str> = SDK_ROUTES.iter().copied().filter(|r| !named(r)).collect();
    assert!(unnamed.is_empty(), "routes no test names: {unnamed:?}");
    let unnamed: Vec<&str> = WS_REQUESTS.iter().map(|(_, _, n)| *n).filter(|n| !named(&format!("req::{n}"))).collect();
    assert!(unnamed.is_empty(), "request ids no test names: {unnamed:?}");
}

/// The `.rs` and `.js` files under `dir`, leaving out installed packages and build output.
fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "node_modules" && name != "target" {
                collect_sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs" || e == "js") {
            out.push(path);
        }
    }
}
