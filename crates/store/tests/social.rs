//! Black-box tests of the store's per-user message state (deletes, revokes, clears), friend request queries,
//! friend touches and app data. Like `sqlite.rs`, every body takes an `Arc<dyn Store>` and knows nothing of
//! the backend.

#[macro_use]
mod common;

use std::sync::Arc;

use palaver_protocol::pb::sdkws::MsgData;
use palaver_store::{
    ClientLog, ConversationPatch, ConversationRef, Friend, FriendAnswer, FriendRequest, MessageRevoke, NewMessage,
    Page, Precondition, Store, StoreError, User, UserCommand, UserPatch, VersionKind,
};

store_tests!(
    "social";
    deletes_are_per_owner_or_for_everyone,
    revokes_are_recorded_once,
    clears_move_one_owners_start,
    clear_for_all_moves_every_owner,
    friend_requests_filter_and_pair,
    accepting_answers_the_reverse_request_and_touching_bumps_owners,
    user_commands_and_client_config,
    push_tokens_badges_and_logs,
    friendship_and_receive_options_guard_appends,
);

/// A 1:1 message from `from` to `to`, with both conversation rows ensured.
fn message(from: &str, to: &str, id: &str) -> NewMessage {
    let conversation_id = palaver_protocol::conversation_id::single(from, to);
    let row = |owner: &str, peer: &str| ConversationRef::with_peer(owner, peer, &conversation_id, 1);
    NewMessage {
        ensure_conversations: vec![row(from, to), row(to, from)],
        data: MsgData {
            send_id: from.into(),
            recv_id: to.into(),
            client_msg_id: id.into(),
            session_type: 1,
            content_type: 101,
            send_time: 1_700_000_000_000,
            ..Default::default()
        },
        conversation_id,
        reader: Some(from.into()),
        preconditions: Vec::new(),
    }
}

async fn deletes_are_per_owner_or_for_everyone(store: Arc<dyn Store>) {
    for i in 1..=3 {
        store.append_message(message("a", "b", &format!("m{i}"))).await.unwrap();
    }
    store.delete_messages(Some("a"), "si_a_b", &[2]).await.unwrap();
    store.delete_messages(Some("a"), "si_a_b", &[2]).await.unwrap();
    assert_eq!(store.message_marks("a", "si_a_b", &[1, 2, 3]).await.unwrap().deleted, vec![2]);
    assert!(store.message_marks("b", "si_a_b", &[1, 2, 3]).await.unwrap().deleted.is_empty(), "b's copy stays");
    store.delete_messages(None, "si_a_b", &[3]).await.unwrap();
    assert_eq!(store.message_marks("a", "si_a_b", &[1, 2, 3]).await.unwrap().deleted, vec![2, 3]);
    assert_eq!(store.message_marks("b", "si_a_b", &[1, 2, 3]).await.unwrap().deleted, vec![3]);
    // The rows stay: seqs are still dense.
    let all = store.messages_in_range("si_a_b", 1, 3, 10).await.unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
}

async fn revokes_are_recorded_once(store: Arc<dyn Store>) {
    store.append_message(message("a", "b", "m1")).await.unwrap();
    let revoke = MessageRevoke {
        conversation_id: "si_a_b".into(),
        seq: 1,
        revoker_user_id: "a".into(),
        revoker_role: 0,
        revoker_nickname: "A".into(),
        revoke_time: 5,
    };
    assert!(store.revoke_message(&revoke).await.unwrap());
    assert!(!store.revoke_message(&MessageRevoke { revoker_user_id: "b".into(), ..revoke.clone() }).await.unwrap());
    let marks = store.message_marks("b", "si_a_b", &[1]).await.unwrap();
    assert_eq!(marks.revokes, vec![revoke]);
    assert!(store.message_marks("b", "si_a_b", &[2]).await.unwrap().revokes.is_empty());
}

async fn clears_move_one_owners_start(store: Arc<dyn Store>) {
    for i in 1..=3 {
        store.append_message(message("b", "a", &format!("m{i}"))).await.unwrap();
    }
    store.append_message(message("a", "c", "x")).await.unwrap();
    let before = store.version_head(VersionKind::Conversations, "a").await.unwrap();
    let cleared = store.clear_conversations("a", &["si_a_b".into(), "si_nobody_else".into()]).await.unwrap();
    assert_eq!(cleared.len(), 1, "only rows the owner has");
    assert_eq!((cleared[0].min_seq, cleared[0].has_read_seq, cleared[0].max_seq), (4, 3, 3));
    let after = store.version_changes(VersionKind::Conversations, "a", before.version, 10).await.unwrap();
    assert_eq!(after.head.version, before.version + 1);
    assert_eq!(after.changes, vec![("si_a_b".to_string(), palaver_store::Change::Update)]);
    let b = store.user_conversations_by_id("b", &["si_a_b".into()]).await.unwrap();
    assert_eq!(b[0].min_seq, 0, "the peer keeps its history");
    let c = store.user_conversations_by_id("a", &["si_a_c".into()]).await.unwrap();
    assert_eq!(c[0].min_seq, 0, "other conversations are untouched");
}

async fn clear_for_all_moves_every_owner(store: Arc<dyn Store>) {
    for i in 1..=2 {
        store.append_message(message("a", "b", &format!("m{i}"))).await.unwrap();
    }
    let owners = store.clear_conversation_for_all("si_a_b").await.unwrap();
    assert_eq!(owners, vec!["a".to_string(), "b".to_string()]);
    for owner in ["a", "b"] {
        let row = store.user_conversations_by_id(owner, &["si_a_b".into()]).await.unwrap();
        assert_eq!((row[0].min_seq, row[0].has_read_seq), (3, 2));
    }
}

fn request(from: &str, to: &str, time: i64) -> FriendRequest {
    FriendRequest { from_user_id: from.into(), to_user_id: to.into(), create_time: time, ..FriendRequest::default() }
}

async fn friend_requests_filter_and_pair(store: Arc<dyn Store>) {
    store.put_friend_request(&request("b", "a", 10)).await.unwrap();
    store.put_friend_request(&request("c", "a", 20)).await.unwrap();
    store.put_friend_request(&request("a", "b", 30)).await.unwrap();
    let refuse = FriendAnswer {
        from_user_id: "c".into(),
        to_user_id: "a".into(),
        accepted: false,
        handler_user_id: "a".into(),
        time: 40,
        ..FriendAnswer::default()
    };
    store.answer_friend_request(&refuse).await.unwrap();
    let page = Page { offset: 0, limit: 10 };
    let (pending, total) = store.friend_requests("a", true, &[0], page).await.unwrap();
    assert_eq!((pending.len(), total, pending[0].from_user_id.as_str()), (1, 1, "b"));
    let (all, total) = store.friend_requests("a", true, &[], page).await.unwrap();
    assert_eq!((all.len(), total), (2, 2));
    let (refused, _) = store.friend_requests("a", true, &[-1, 1], page).await.unwrap();
    assert_eq!(refused[0].from_user_id, "c");
    assert_eq!(store.unhandled_friend_request_count("a", 0).await.unwrap(), 1);
    assert_eq!(store.unhandled_friend_request_count("a", 10).await.unwrap(), 0, "after 10 only");
    let between = store.friend_requests_between("a", "b").await.unwrap();
    assert_eq!(between.len(), 2);
}

async fn accepting_answers_the_reverse_request_and_touching_bumps_owners(store: Arc<dyn Store>) {
    store.put_friend_request(&request("b", "a", 10)).await.unwrap();
    store.put_friend_request(&request("a", "b", 20)).await.unwrap();
    let accept = FriendAnswer {
        from_user_id: "b".into(),
        to_user_id: "a".into(),
        accepted: true,
        handler_user_id: "a".into(),
        time: 30,
        ..FriendAnswer::default()
    };
    store.answer_friend_request(&accept).await.unwrap();
    let reverse = store.friend_request("a", "b").await.unwrap().unwrap();
    assert_eq!(reverse.handle_result, 1, "both asked; one yes answers both");
    let row = store.friends_by_id("a", &["b".into()]).await.unwrap();
    assert_eq!((row[0].add_source, row[0].operator_user_id.as_str()), (2, "b"));
    // c has b as a friend too, one way.
    store
        .add_friendship(
            &Friend { owner_user_id: "c".into(), friend_user_id: "b".into(), ..Friend::default() },
            &Friend { owner_user_id: "c".into(), friend_user_id: "d".into(), ..Friend::default() },
        )
        .await
        .unwrap();
    let heads = [
        store.version_head(VersionKind::Friends, "a").await.unwrap(),
        store.version_head(VersionKind::Friends, "c").await.unwrap(),
    ];
    assert_eq!(store.touch_friend("b").await.unwrap(), vec!["a".to_string(), "c".to_string()]);
    for (owner, head) in ["a", "c"].iter().zip(heads) {
        let delta = store.version_changes(VersionKind::Friends, owner, head.version, 10).await.unwrap();
        assert_eq!(delta.changes, vec![("b".to_string(), palaver_store::Change::Update)], "{owner}");
    }
}

async fn user_commands_and_client_config(store: Arc<dyn Store>) {
    let command = |uuid: &str| UserCommand {
        user_id: "a".into(),
        command_type: 1,
        uuid: uuid.into(),
        value: "v".into(),
        ex: "e".into(),
        create_time: 1,
    };
    store.add_user_command(&command("x")).await.unwrap();
    store.add_user_command(&UserCommand { command_type: 2, create_time: 2, ..command("y") }).await.unwrap();
    assert!(matches!(store.add_user_command(&command("x")).await, Err(StoreError::AlreadyExists(_))));
    store.update_user_command("a", 1, "x", Some("w"), None).await.unwrap();
    assert!(matches!(store.update_user_command("a", 1, "zz", Some("w"), None).await, Err(StoreError::NotFound(_))));
    let ones = store.user_commands("a", Some(1)).await.unwrap();
    assert_eq!((ones.len(), ones[0].value.as_str(), ones[0].ex.as_str()), (1, "w", "e"));
    assert_eq!(store.user_commands("a", None).await.unwrap().len(), 2);
    store.delete_user_command("a", 1, "x").await.unwrap();
    assert!(matches!(store.delete_user_command("a", 1, "x").await, Err(StoreError::NotFound(_))));

    store.set_client_config("", &[("k".into(), "1".into()), ("j".into(), "2".into())]).await.unwrap();
    store.set_client_config("", &[("k".into(), "3".into())]).await.unwrap();
    assert_eq!(store.client_config("").await.unwrap(), vec![("j".into(), "2".into()), ("k".into(), "3".into())]);
    store.delete_client_config("", &["j".into()]).await.unwrap();
    assert_eq!(store.client_config("").await.unwrap().len(), 1);
    assert!(store.client_config("a").await.unwrap().is_empty());
}

async fn push_tokens_badges_and_logs(store: Arc<dyn Store>) {
    store.set_push_token("a", 1, "t1", 0).await.unwrap();
    store.set_push_token("a", 1, "t2", 60).await.unwrap();
    assert_eq!(store.push_token("a", 1).await.unwrap().as_deref(), Some("t2"));
    store.delete_push_token("a", 1).await.unwrap();
    assert_eq!(store.push_token("a", 1).await.unwrap(), None);
    store.set_app_badge("a", 3).await.unwrap();
    store.set_app_badge("a", 4).await.unwrap();
    assert_eq!(store.app_badge("a").await.unwrap(), Some(4));
    let log =
        ClientLog { log_id: "l1".into(), user_id: "a".into(), url: "u".into(), create_time: 1, ..ClientLog::default() };
    store.insert_client_logs(std::slice::from_ref(&log)).await.unwrap();
    assert!(matches!(store.insert_client_logs(&[log]).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(store.client_logs("a").await.unwrap().len(), 1);
}

async fn friendship_and_receive_options_guard_appends(store: Arc<dyn Store>) {
    let users: Vec<User> = ["a", "b"].iter().map(|id| User { user_id: id.to_string(), ..User::default() }).collect();
    store.register_users(&users).await.unwrap();
    let guarded = |id: &str, preconditions: Vec<Precondition>| NewMessage { preconditions, ..message("a", "b", id) };
    let friend = || Precondition::IsFriendOf { owner: "b".into(), friend: "a".into() };
    let receives =
        |read_receipt| Precondition::Receives { user: "b".into(), conversation_id: "si_a_b".into(), read_receipt };

    let refused = store.append_message(guarded("f1", vec![friend()])).await;
    assert!(matches!(refused, Err(StoreError::Refused(Precondition::IsFriendOf { .. }))), "{refused:?}");
    assert_eq!(store.max_seqs(&["si_a_b".into()]).await.unwrap()[0].max_seq, 0, "nothing stored");
    let row = |owner: &str, friend: &str| Friend {
        owner_user_id: owner.into(),
        friend_user_id: friend.into(),
        ..Friend::default()
    };
    store.add_friendship(&row("b", "a"), &row("a", "b")).await.unwrap();
    store.append_message(guarded("f2", vec![friend()])).await.unwrap();

    // Global option: 1 refuses, 2 turns offline push off.
    let set_global = |opt| UserPatch { user_id: "b".into(), global_recv_msg_opt: Some(opt), ..UserPatch::default() };
    store.update_user(&set_global(1)).await.unwrap();
    let refused = store.append_message(guarded("r1", vec![receives(false)])).await;
    assert!(matches!(refused, Err(StoreError::Refused(Precondition::Receives { .. }))), "{refused:?}");
    store.update_user(&set_global(2)).await.unwrap();
    let quiet = store.append_message(guarded("r2", vec![receives(false)])).await.unwrap();
    assert_eq!(quiet.data.options.get("offlinePush"), Some(&false));
    store.update_user(&set_global(0)).await.unwrap();
    let loud = store.append_message(guarded("r3", vec![receives(false)])).await.unwrap();
    assert_eq!(loud.data.options.get("offlinePush"), None);
    // The conversation's own option: 1 refuses all but read receipts.
    let mute =
        ConversationPatch { conversation_id: "si_a_b".into(), recv_msg_opt: Some(1), ..ConversationPatch::default() };
    store.update_conversation("b", &mute).await.unwrap();
    assert!(store.append_message(guarded("r4", vec![receives(false)])).await.is_err());
    store.append_message(guarded("r5", vec![receives(true)])).await.unwrap();
}
