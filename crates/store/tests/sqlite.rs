//! Black-box tests of the store traits, on every backend.
//!
//! Every test body takes an `Arc<dyn Store>` and knows nothing of the backend; [`store_tests!`] runs each one on
//! a SQLite file, an in-memory SQLite and PostgreSQL (Zed's `test_both_dbs!` pattern). A new body only needs its
//! name added to the `store_tests!` list. The SQLite-specific tests (reopen, kill -9, the append writer's
//! batches) are further down.
//!
//! PostgreSQL is the one at `PALAVER_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`,
//! which `scripts/test` starts if it is down). Each test gets a schema of its own, dropped when the test passes,
//! so parallel tests and parallel runs never see each other's rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use palaver_protocol::pb::sdkws::MsgData;
use palaver_store::postgres::PgStore;
use palaver_store::sqlite::SqliteStore;
use palaver_store::{
    Black, Change, ConversationRef, ConversationStore, DirectoryStore as _, Group, GroupAnswer, GroupMember,
    GroupPatch, GroupRequest, GroupStore, MemberFilter, MemberPatch, MessageStore, NewMessage, Object, Page,
    Precondition, RequestQuery, SORT_ELEMENT, Store, StoreError, Token, TokenStatus, TokenStore, Upload, User,
    UserPatch, UserStore, VersionKind,
};
use proptest::prelude::*;
use sqlx::Connection as _;

// ---------------------------------------------------------------------------------------------------------------
// Backends

/// A store under test, and whatever must outlive it (the temporary directory of a file database).
struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite_file() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("palaver.db")).await.unwrap();
    Backend { store: Arc::new(store), _dir: Some(dir) }
}

async fn sqlite_memory() -> Backend {
    Backend { store: Arc::new(SqliteStore::open_in_memory().await.unwrap()), _dir: None }
}

/// A PostgreSQL store in a fresh schema, and the schema's name (for [`drop_postgres`]).
async fn postgres() -> (Backend, String) {
    let url = postgres_url();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "palaver_test_{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    PgStore::create_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (start it, or run scripts/test, which does): {e}"));
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let store = PgStore::connect_with(options.options([("search_path", &schema)]), 8).await.unwrap();
    (Backend { store: Arc::new(store), _dir: None }, schema)
}

async fn drop_postgres(schema: &str) {
    PgStore::drop_schema(&postgres_url(), schema).await.unwrap();
}

fn postgres_url() -> String {
    std::env::var("PALAVER_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Generates one `#[tokio::test]` per (backend, body). Multi-threaded, so "concurrent" really is.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = super::sqlite_file().await;
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = super::sqlite_memory().await;
                    super::$name(backend.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (backend, schema) = super::postgres().await;
                    super::$name(backend.store.clone()).await;
                    drop(backend);
                    super::drop_postgres(&schema).await;
                }
            )*
        }
    };
}

store_tests!(
    send_times_strictly_increase_with_seq,
    concurrent_appends_one_conversation,
    sixty_four_appenders_one_conversation,
    concurrent_appends_many_conversations,
    resend_is_idempotent,
    preconditions_refuse_inside_the_append,
    concurrent_resends_store_one_message,
    simultaneous_duplicate_pairs_store_one_message,
    other_writes_interleave_with_appends,
    reads_by_range_seqs_and_last,
    ensure_conversations_and_read_cursor,
    users_register_and_update,
    tokens_insert_lookup_and_kick,
    groups_create_and_members,
    relations_and_their_version_log,
    conversation_options_and_late_joiners,
    concurrent_friendships_in_both_orders,
    group_membership_changes_bump_versions_and_cap_history,
    group_member_listings_filter_and_order,
    group_requests_and_answers,
    objects_and_uploads,
);

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// Unique serverMsgIDs, so a test can tell the original of a resend from the resend.
static SERVER_IDS: AtomicU64 = AtomicU64::new(1);

fn msg_data(send_id: &str, recv_id: &str, client_msg_id: &str) -> MsgData {
    MsgData {
        send_id: send_id.into(),
        recv_id: recv_id.into(),
        client_msg_id: client_msg_id.into(),
        server_msg_id: format!("srv-{}", SERVER_IDS.fetch_add(1, Ordering::Relaxed)),
        session_type: 1,
        content_type: 101,
        content: format!("hello {client_msg_id}").into_bytes(),
        send_time: 1_700_000_000_000 + i64::try_from(SERVER_IDS.load(Ordering::Relaxed)).unwrap(),
        ex: "extra".into(),
        ..Default::default()
    }
}

/// A bare message into `conversation_id`, creating no conversation rows and moving no cursor.
fn plain(conversation_id: &str, client_msg_id: &str) -> NewMessage {
    NewMessage {
        conversation_id: conversation_id.into(),
        data: msg_data("alice", "bob", client_msg_id),
        ensure_conversations: Vec::new(),
        reader: None,
        preconditions: Vec::new(),
    }
}

/// A 1:1 message as the server sends it: both parties' rows ensured, the sender's cursor moved.
fn one_to_one(from: &str, to: &str, client_msg_id: &str) -> NewMessage {
    let conversation_id = palaver_protocol::conversation_id::single(from, to);
    let row = |owner: &str, peer: &str| ConversationRef::with_peer(owner, peer, &conversation_id, 1);
    NewMessage {
        ensure_conversations: vec![row(from, to), row(to, from)],
        data: msg_data(from, to, client_msg_id),
        conversation_id,
        reader: Some(from.into()),
        preconditions: Vec::new(),
    }
}

fn seqs(msgs: &[MsgData]) -> Vec<i64> {
    msgs.iter().map(|m| m.seq).collect()
}

async fn max_seq(store: &dyn Store, conversation_id: &str) -> i64 {
    let got = store.max_seqs(&[conversation_id.to_string()]).await.unwrap();
    assert_eq!(got.len(), 1);
    got[0].max_seq
}

/// The invariant: the conversation holds exactly seqs 1..=n, each once, and its counter says n.
async fn assert_dense(store: &dyn Store, conversation_id: &str, n: i64) {
    assert_eq!(max_seq(store, conversation_id).await, n, "max seq of {conversation_id}");
    let all = store.messages_in_range(conversation_id, 0, i64::MAX, i64::MAX).await.unwrap();
    assert_eq!(seqs(&all), (1..=n).collect::<Vec<_>>(), "stored seqs of {conversation_id}");
    let ids: BTreeSet<_> = all.iter().map(|m| m.client_msg_id.clone()).collect();
    assert_eq!(ids.len(), all.len(), "a clientMsgID stored twice in {conversation_id}");
}

fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        nickname: format!("{id} nick"),
        face_url: format!("https://example.invalid/{id}.png"),
        ex: String::new(),
        create_time: 1_700_000_000_000,
        app_manger_level: 0,
        global_recv_msg_opt: 0,
    }
}

fn token(hash: u8, user_id: &str, platform_id: i32) -> Token {
    Token {
        hash: vec![hash; 32],
        user_id: user_id.into(),
        platform_id,
        expires_at: 1_800_000_000_000,
        status: TokenStatus::Normal,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Messages and seqs

const TASKS: usize = 16;
const PER_TASK: usize = 50;

/// Messages stamped with the same (or an earlier) millisecond still come out with strictly increasing send times
/// in seq order: clients sort history by sendTime.
async fn send_times_strictly_increase_with_seq(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut msg = plain("si_a_b", &format!("t{i}"));
            // Every message claims the same time, some an older one.
            msg.data.send_time = if i % 3 == 0 { 1_000 } else { 5_000 };
            store.append_message(msg).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stored = store.messages_in_range("si_a_b", 1, 40, 40).await.unwrap();
    assert_eq!(seqs(&stored), (1..=40).collect::<Vec<_>>());
    for pair in stored.windows(2) {
        assert!(
            pair[1].send_time > pair[0].send_time,
            "seq {} and {} share or invert sendTime",
            pair[0].seq,
            pair[1].seq
        );
    }
    let counter = store.max_seqs(&["si_a_b".to_string()]).await.unwrap();
    assert_eq!(counter[0].max_seq_time, stored[39].send_time);
}

async fn concurrent_appends_one_conversation(store: Arc<dyn Store>) {
    appends_into_one_conversation(store, TASKS, PER_TASK).await;
}

/// Many more senders than a batch usually holds at once, each acknowledged exactly once with its own seq.
async fn sixty_four_appenders_one_conversation(store: Arc<dyn Store>) {
    appends_into_one_conversation(store, 64, 20).await;
}

/// `tasks` senders, each sending `per_task` messages one after the other into one conversation.
async fn appends_into_one_conversation(store: Arc<dyn Store>, tasks: usize, per_task: usize) {
    let conv = "si_alice_bob";
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..per_task {
                let a = store.append_message(plain(conv, &format!("c-{t}-{i}"))).await.unwrap();
                assert!(a.created);
                got.push((a.data.client_msg_id.clone(), a.data.seq));
            }
            got
        }));
    }
    let mut by_seq = BTreeMap::new();
    for h in handles {
        let got = h.await.unwrap();
        // One task's own sends are serial, so its seqs must rise.
        assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "seqs of one sender went backwards: {got:?}");
        for (id, seq) in got {
            assert!(by_seq.insert(seq, id).is_none(), "seq {seq} handed out twice");
        }
    }
    let n = i64::try_from(tasks * per_task).unwrap();
    assert_eq!(by_seq.keys().copied().collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
    assert_dense(&*store, conv, n).await;
    // Each stored message is the one its append was answered with.
    let all = store.messages_in_range(conv, 1, n, n).await.unwrap();
    for m in &all {
        assert_eq!(by_seq[&m.seq], m.client_msg_id);
    }
}

async fn concurrent_appends_many_conversations(store: Arc<dyn Store>) {
    const CONVERSATIONS: usize = 7;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..PER_TASK {
                // Each task walks the conversations in its own rotation, so every pair of tasks collides often.
                let conv = format!("sg_group{}", (t + i) % CONVERSATIONS);
                let a = store.append_message(plain(&conv, &format!("c-{t}-{i}"))).await.unwrap();
                assert!(a.created);
                got.push((conv, a.data.seq));
            }
            got
        }));
    }
    let mut per_conv: HashMap<String, Vec<i64>> = HashMap::new();
    for h in handles {
        for (conv, seq) in h.await.unwrap() {
            per_conv.entry(conv).or_default().push(seq);
        }
    }
    assert_eq!(per_conv.len(), CONVERSATIONS);
    let mut total = 0;
    for (conv, mut got) in per_conv {
        got.sort_unstable();
        let n = i64::try_from(got.len()).unwrap();
        assert_eq!(got, (1..=n).collect::<Vec<_>>(), "seqs answered in {conv}");
        assert_dense(&*store, &conv, n).await;
        total += got.len();
    }
    assert_eq!(total, TASKS * PER_TASK);
}

/// A failed precondition stores nothing and burns no seq; a resend of a message stored before the block still
/// gets its original answer.
async fn preconditions_refuse_inside_the_append(store: Arc<dyn Store>) {
    store.register_users(&[user("alice"), user("bob")]).await.unwrap();
    let conv = palaver_protocol::conversation_id::single("alice", "bob");
    let guarded = |client_msg_id: &str, preconditions: Vec<Precondition>| NewMessage {
        preconditions,
        ..one_to_one("alice", "bob", client_msg_id)
    };
    let exists = |id: &str| Precondition::UserExists(id.into());
    let not_blocked = Precondition::NotBlocked { owner: "bob".into(), other: "alice".into() };
    let first = store.append_message(guarded("m1", vec![exists("bob"), not_blocked.clone()])).await.unwrap();
    assert_eq!(first.data.seq, 1);

    let unknown = store.append_message(guarded("m2", vec![exists("bob"), exists("nobody")])).await;
    assert!(matches!(unknown, Err(StoreError::Refused(Precondition::UserExists(ref id))) if id == "nobody"));

    store
        .add_black(&Black {
            owner_user_id: "bob".into(),
            block_user_id: "alice".into(),
            create_time: 1,
            add_source: 0,
            operator_user_id: "bob".into(),
            ex: String::new(),
        })
        .await
        .unwrap();
    let blocked = store.append_message(guarded("m3", vec![not_blocked.clone()])).await;
    assert!(matches!(blocked, Err(StoreError::Refused(Precondition::NotBlocked { .. }))), "{blocked:?}");
    let resend = store.append_message(guarded("m1", vec![not_blocked.clone()])).await.unwrap();
    assert!(!resend.created);
    assert_eq!(resend.data, first.data);
    assert_eq!(max_seq(&*store, &conv).await, 1, "a refused append burns no seq");
    assert_dense(&*store, &conv, 1).await;

    assert!(store.remove_black("bob", "alice").await.unwrap());
    let after = store.append_message(guarded("m4", vec![not_blocked])).await.unwrap();
    assert_eq!(after.data.seq, 2);
}

async fn resend_is_idempotent(store: Arc<dyn Store>) {
    let conv = "si_alice_bob";
    let first = store.append_message(plain(conv, "m1")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.data.seq, 1);
    let second = store.append_message(plain(conv, "m2")).await.unwrap();
    assert_eq!(second.data.seq, 2);

    // The resend carries a fresh serverMsgID and content; the answer is the original, unchanged.
    let mut resend = plain(conv, "m1");
    resend.data.content = b"changed".to_vec();
    let again = store.append_message(resend).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.data, first.data);
    assert_eq!(max_seq(&*store, conv).await, 2);
    assert_dense(&*store, conv, 2).await;

    // The same clientMsgID in another conversation is a different message.
    let elsewhere = store.append_message(plain("si_alice_carol", "m1")).await.unwrap();
    assert!(elsewhere.created);
    assert_eq!(elsewhere.data.seq, 1);
    assert_eq!(max_seq(&*store, conv).await, 2);
}

async fn concurrent_resends_store_one_message(store: Arc<dyn Store>) {
    let conv = "sg_g1";
    store.append_message(plain(conv, "before")).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move { store.append_message(plain(conv, "same")).await.unwrap() }));
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    assert_eq!(results.iter().filter(|a| a.created).count(), 1, "exactly one append stores it");
    let original = &results.iter().find(|a| a.created).unwrap().data;
    assert_eq!(original.seq, 2);
    for a in &results {
        assert_eq!(a.data.seq, original.seq);
        assert_eq!(a.data.server_msg_id, original.server_msg_id);
    }
    assert_dense(&*store, conv, 2).await;
    let after = store.append_message(plain(conv, "after")).await.unwrap();
    assert_eq!(after.data.seq, 3, "no seq was burnt by the resends");
}

/// Two sends of one clientMsgID racing, over and over: they often land in the same writer batch, where the
/// second must find the first's row (not yet committed, but in the same transaction).
async fn simultaneous_duplicate_pairs_store_one_message(store: Arc<dyn Store>) {
    const PAIRS: usize = 100;
    let conv = "sg_dups";
    for i in 0..PAIRS {
        let id = format!("d{i}");
        let (a, b) = (store.clone(), store.clone());
        let (first, second) = (plain(conv, &id), plain(conv, &id));
        let one = tokio::spawn(async move { a.append_message(first).await.unwrap() });
        let two = tokio::spawn(async move { b.append_message(second).await.unwrap() });
        let (one, two) = (one.await.unwrap(), two.await.unwrap());
        assert_eq!(u8::from(one.created) + u8::from(two.created), 1, "exactly one of the pair stores {id}");
        assert_eq!(one.data, two.data, "both sends of {id} are answered with the stored message");
        assert_eq!(one.data.seq, i64::try_from(i + 1).unwrap());
    }
    assert_dense(&*store, conv, i64::try_from(PAIRS).unwrap()).await;
}

/// Appends (through the writer) and the other write methods (straight on the write connection) share one
/// connection; under load from both, everything completes and each write lands.
async fn other_writes_interleave_with_appends(store: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const EACH: usize = 20;
    let mut handles = Vec::new();
    for t in 0..WRITERS {
        let appender = store.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..EACH {
                appender.append_message(one_to_one(&format!("u{t}"), "hub", &format!("m{i}"))).await.unwrap();
            }
        }));
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let conv = palaver_protocol::conversation_id::single(&format!("u{t}"), "hub");
            for i in 0..EACH {
                store.register_users(&[user(&format!("user-{t}-{i}"))]).await.unwrap();
                store.insert_token(&token(u8::try_from(t * EACH + i).unwrap(), "hub", 1)).await.unwrap();
                // The row may not exist yet (no message sent so far): NotFound is a fine answer, a hang is not.
                match store.raise_has_read_seq("hub", &conv, 1).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => panic!("raising a cursor: {e}"),
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    for t in 0..WRITERS {
        let conv = palaver_protocol::conversation_id::single(&format!("u{t}"), "hub");
        assert_dense(&*store, &conv, i64::try_from(EACH).unwrap()).await;
    }
    let ids: Vec<String> = (0..WRITERS).flat_map(|t| (0..EACH).map(move |i| format!("user-{t}-{i}"))).collect();
    assert_eq!(store.users(&ids).await.unwrap().len(), WRITERS * EACH);
    assert_eq!(
        store.set_token_status("hub", 1, TokenStatus::Kicked, None).await.unwrap(),
        u64::try_from(WRITERS * EACH).unwrap()
    );
}

async fn reads_by_range_seqs_and_last(store: Arc<dyn Store>) {
    let (a, b, empty) = ("si_a_b", "sg_b", "si_nobody_here");
    let mut sent = Vec::new();
    for i in 1..=10 {
        sent.push(store.append_message(plain(a, &format!("a{i}"))).await.unwrap().data);
    }
    for i in 1..=3 {
        store.append_message(plain(b, &format!("b{i}"))).await.unwrap();
    }

    // What is read back is exactly what was acknowledged, seq included.
    let all = store.messages_in_range(a, 1, 10, 100).await.unwrap();
    assert_eq!(all, sent);
    // The last `limit` of the range, ascending.
    assert_eq!(seqs(&store.messages_in_range(a, 1, 10, 3).await.unwrap()), [8, 9, 10]);
    assert_eq!(seqs(&store.messages_in_range(a, 2, 6, 3).await.unwrap()), [4, 5, 6]);
    assert_eq!(seqs(&store.messages_in_range(a, 9, 50, 5).await.unwrap()), [9, 10]);
    assert_eq!(seqs(&store.messages_in_range(a, 4, 4, 5).await.unwrap()), [4]);
    assert!(store.messages_in_range(a, 6, 5, 5).await.unwrap().is_empty());
    assert!(store.messages_in_range(a, 1, 10, 0).await.unwrap().is_empty());
    assert!(store.messages_in_range(empty, 1, 10, 10).await.unwrap().is_empty());

    // By seqs: ascending, missing ones absent, duplicates once.
    let by = store.messages_by_seqs(a, &[9, 2, 5, 42, 2]).await.unwrap();
    assert_eq!(seqs(&by), [2, 5, 9]);
    assert_eq!(by[0], sent[1]);
    assert!(store.messages_by_seqs(a, &[]).await.unwrap().is_empty());
    assert!(store.messages_by_seqs(empty, &[1]).await.unwrap().is_empty());

    // Last messages: one per conversation that has any.
    let last = store.last_messages(&[a.to_string(), empty.to_string(), b.to_string()]).await.unwrap();
    let last: HashMap<_, _> = last.iter().map(|m| (m.client_msg_id.as_str(), m.seq)).collect();
    assert_eq!(last, HashMap::from([("a10", 10), ("b3", 3)]));

    // Max seqs: unknown conversations are listed with 0 (documented on `SqliteStore::max_seqs`).
    let max = store.max_seqs(&[a.to_string(), empty.to_string(), b.to_string()]).await.unwrap();
    let max: HashMap<_, _> = max.iter().map(|s| (s.conversation_id.as_str(), (s.max_seq, s.max_seq_time))).collect();
    assert_eq!(max[a], (10, sent[9].send_time));
    assert_eq!(max[b].0, 3);
    assert_eq!(max.get(empty).copied().unwrap_or_default(), (0, 0));
}

/// Random interleavings of sends, some of them resends, from a few concurrent senders.
async fn interleavings_hold(store: Arc<dyn Store>, sends: Vec<(usize, u8)>, senders: usize) {
    let conv = |i: usize| format!("si_conv{i}");
    let mut lanes = vec![Vec::new(); senders];
    for (k, send) in sends.iter().enumerate() {
        lanes[k % senders].push(*send);
    }
    let mut handles = Vec::new();
    for lane in lanes {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for (c, id) in lane {
                let a = store.append_message(plain(&conv(c), &format!("m{id}"))).await.unwrap();
                got.push((c, a.data.client_msg_id.clone(), a.data.seq));
            }
            got
        }));
    }
    // Every answer for one (conversation, clientMsgID) names the same seq.
    let mut answers: HashMap<(usize, String), BTreeSet<i64>> = HashMap::new();
    for h in handles {
        for (c, id, seq) in h.await.unwrap() {
            answers.entry((c, id)).or_default().insert(seq);
        }
    }
    assert!(answers.values().all(|s| s.len() == 1), "a clientMsgID got two seqs: {answers:?}");

    let mut distinct: HashMap<usize, BTreeSet<u8>> = HashMap::new();
    for (c, id) in &sends {
        distinct.entry(*c).or_default().insert(*id);
    }
    for (c, ids) in distinct {
        let n = i64::try_from(ids.len()).unwrap();
        assert_dense(&*store, &conv(c), n).await;
        // And the stored message under each seq is the one that clientMsgID was answered with.
        for m in store.messages_in_range(&conv(c), 1, n, n).await.unwrap() {
            assert_eq!(answers[&(c, m.client_msg_id.clone())], BTreeSet::from([m.seq]));
        }
    }
}

proptest! {
    // Each case opens a database, so few cases; no regression files (this test crate has no lib.rs to put
    // them beside).
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_give_dense_seqs(
        sends in proptest::collection::vec((0usize..3, 0u8..12), 1..60),
        senders in 1usize..5,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let backend = sqlite_memory().await;
            interleavings_hold(backend.store.clone(), sends, senders).await;
        });
    }
}

/// An in-memory store opened on one runtime keeps its data when used from another (a pool's connections do
/// not survive their runtime; the store must not fall back to a fresh, empty database, and the append writer
/// must not die with the first runtime).
#[test]
fn sqlite_memory_outlives_its_runtime() {
    let store = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store.append_message(plain("si_a_b", "m1")).await.unwrap();
        store
    });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        assert_eq!(max_seq(&store, "si_a_b").await, 1);
        assert_eq!(store.append_message(plain("si_a_b", "m2")).await.unwrap().data.seq, 2);
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Conversations

async fn ensure_conversations_and_read_cursor(store: Arc<dyn Store>) {
    let first = store.append_message(one_to_one("alice", "bob", "hi")).await.unwrap();
    let conv = palaver_protocol::conversation_id::single("alice", "bob");
    assert_eq!(first.data.seq, 1);

    let alice = store.user_conversations("alice").await.unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].conversation_id, conv);
    assert_eq!(alice[0].conversation_type, 1);
    assert_eq!(alice[0].user_id, "bob");
    assert_eq!(alice[0].has_read_seq, 1, "one's own message is read");
    assert_eq!((alice[0].max_seq, alice[0].max_seq_time), (1, first.data.send_time));
    let bob = store.user_conversations("bob").await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].user_id, "alice");
    assert_eq!(bob[0].has_read_seq, 0, "the receiver has not read it");
    assert_eq!(bob[0].max_seq, 1);

    // Bob answers: his cursor moves to 2, Alice's stays, and no row is duplicated.
    let reply = store.append_message(one_to_one("bob", "alice", "hello")).await.unwrap();
    assert_eq!(reply.data.seq, 2);
    let rows = |owner: &'static str| {
        let store = store.clone();
        let conv = conv.clone();
        async move { store.user_conversations_by_id(owner, &[conv, "si_x_y".into()]).await.unwrap() }
    };
    let (alice, bob) = (rows("alice").await, rows("bob").await);
    assert_eq!((alice.len(), bob.len()), (1, 1));
    assert_eq!((alice[0].has_read_seq, bob[0].has_read_seq), (1, 2));
    assert_eq!((alice[0].max_seq, bob[0].max_seq), (2, 2));

    // A resend changes nothing, cursors included.
    let again = store.append_message(one_to_one("bob", "alice", "hello")).await.unwrap();
    assert!(!again.created);
    assert_eq!((rows("alice").await[0].has_read_seq, rows("bob").await[0].has_read_seq), (1, 2));

    // The cursor only rises.
    store.raise_has_read_seq("alice", &conv, 2).await.unwrap();
    store.raise_has_read_seq("alice", &conv, 1).await.unwrap();
    assert_eq!(rows("alice").await[0].has_read_seq, 2);
    store.raise_has_read_seq("bob", &conv, 0).await.unwrap();
    assert_eq!(rows("bob").await[0].has_read_seq, 2);
    assert!(matches!(store.raise_has_read_seq("carol", &conv, 1).await, Err(StoreError::NotFound(_))));
    assert!(store.user_conversations("carol").await.unwrap().is_empty());

    // A reader without a row gets none made for it.
    let mut stray = plain("si_alice_dave", "stray");
    stray.reader = Some("dave".into());
    store.append_message(stray).await.unwrap();
    assert!(store.user_conversations("dave").await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Users and tokens

async fn users_register_and_update(store: Arc<dyn Store>) {
    store.register_users(&[user("alice"), user("bob")]).await.unwrap();

    // All or nothing: carol is not stored because bob exists, and the error names bob.
    match store.register_users(&[user("carol"), user("bob")]).await {
        Err(StoreError::AlreadyExists(what)) => {
            assert!(what.contains("bob") && !what.contains("carol"), "{what}")
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // An id twice in one batch cannot be registered either.
    assert!(matches!(store.register_users(&[user("dave"), user("dave")]).await, Err(StoreError::AlreadyExists(_))));
    let ids = ["alice", "bob", "carol", "dave", "nobody"].map(String::from);
    let mut found = store.users(&ids).await.unwrap();
    found.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    assert_eq!(found, vec![user("alice"), user("bob")]);

    // A patch changes only what it names.
    let patch = UserPatch {
        user_id: "alice".into(),
        nickname: Some("Alice".into()),
        global_recv_msg_opt: Some(2),
        ..UserPatch::default()
    };
    let updated = store.update_user(&patch).await.unwrap();
    let expected = User { nickname: "Alice".into(), global_recv_msg_opt: 2, ..user("alice") };
    assert_eq!(updated, expected);
    assert_eq!(store.users(&["alice".into()]).await.unwrap(), vec![expected.clone()]);
    let patch = UserPatch { user_id: "alice".into(), ex: Some(String::new()), ..UserPatch::default() };
    assert_eq!(store.update_user(&patch).await.unwrap(), expected, "setting a field to its value changes nothing");
    let patch = UserPatch { user_id: "nobody".into(), nickname: Some("x".into()), ..UserPatch::default() };
    assert!(matches!(store.update_user(&patch).await, Err(StoreError::NotFound(_))));
    assert!(store.users(&[]).await.unwrap().is_empty());
}

/// Every version list in a store where only alice (by `register_users`) and bob (by `create_account`) were ever
/// created, as the database holds them before anything has read one: (owner, kind).
fn alice_and_bobs_lists() -> Vec<(String, String)> {
    let kinds = ["conversations", "friends", "joined_groups"];
    ["alice", "bob"].iter().flat_map(|owner| kinds.map(|kind| (owner.to_string(), kind.to_string()))).collect()
}

async fn register_alice_and_bob(store: &dyn Store) {
    store.register_users(&[user("alice")]).await.unwrap();
    store.create_account(&user("bob"), "hash").await.unwrap();
}

const EVERY_LIST: &str = "SELECT owner, kind FROM version_lists ORDER BY owner, kind";

/// A user's version lists are created with it, by `register_users` and by `create_account`, so that a device's
/// first sync only reads them (creating them there cost a write transaction per list).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_new_users_version_lists_exist_before_its_first_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    register_alice_and_bob(&SqliteStore::open(&path).await.unwrap()).await;
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let lists: Vec<(String, String)> = sqlx::query_as(EVERY_LIST).fetch_all(&mut raw).await.unwrap();
    assert_eq!(lists, alice_and_bobs_lists());
}

/// The same on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_new_users_version_lists_exist_before_its_first_sync() {
    let (backend, schema) = postgres().await;
    register_alice_and_bob(&*backend.store).await;
    let options: sqlx::postgres::PgConnectOptions = postgres_url().parse().unwrap();
    let mut raw = sqlx::PgConnection::connect_with(&options.options([("search_path", &schema)])).await.unwrap();
    let lists: Vec<(String, String)> = sqlx::query_as(EVERY_LIST).fetch_all(&mut raw).await.unwrap();
    assert_eq!(lists, alice_and_bobs_lists());
    drop((raw, backend));
    drop_postgres(&schema).await;
}

async fn tokens_insert_lookup_and_kick(store: Arc<dyn Store>) {
    let (t1, t2, t3, other) = (token(1, "alice", 1), token(2, "alice", 1), token(3, "alice", 2), token(4, "bob", 1));
    for t in [&t1, &t2, &t3, &other] {
        store.insert_token(t).await.unwrap();
    }
    assert_eq!(store.token(&t1.hash).await.unwrap(), Some(t1.clone()));
    assert_eq!(store.token(&[9; 32]).await.unwrap(), None);

    // Kick alice's other tokens on platform 1, keeping t2.
    let n = store.set_token_status("alice", 1, TokenStatus::Kicked, Some(&t2.hash)).await.unwrap();
    assert_eq!(n, 1);
    let status = |t: Token| {
        let store = store.clone();
        async move { store.token(&t.hash).await.unwrap().unwrap().status }
    };
    assert_eq!(status(t1.clone()).await, TokenStatus::Kicked);
    assert_eq!(status(t2.clone()).await, TokenStatus::Normal);
    assert_eq!(status(t3.clone()).await, TokenStatus::Normal, "another platform is untouched");
    assert_eq!(status(other.clone()).await, TokenStatus::Normal, "another user is untouched");

    // Without `keep`, every live token of (user, platform); tokens already kicked are not counted again.
    assert_eq!(store.set_token_status("alice", 1, TokenStatus::Kicked, None).await.unwrap(), 1);
    assert_eq!(status(t2).await, TokenStatus::Kicked);
    assert_eq!(store.set_token_status("alice", 1, TokenStatus::Kicked, None).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Groups

fn group(id: &str) -> Group {
    Group {
        group_id: id.into(),
        group_name: format!("{id} name"),
        owner_user_id: "alice".into(),
        creator_user_id: "alice".into(),
        create_time: 1_700_000_000_000,
        need_verification: 1,
        ..Group::default()
    }
}

fn member(group_id: &str, user_id: &str, role_level: i32, join_time: i64) -> GroupMember {
    GroupMember {
        group_id: group_id.into(),
        user_id: user_id.into(),
        nickname: format!("{user_id} in {group_id}"),
        role_level,
        join_time,
        inviter_user_id: "alice".into(),
        ..GroupMember::default()
    }
}

async fn groups_create_and_members(store: Arc<dyn Store>) {
    let members = [member("g1", "alice", 100, 1), member("g1", "bob", 20, 2), member("g1", "carol", 20, 3)];
    store.create_group(&group("g1"), &members).await.unwrap();

    // Taken id: refused, and nothing of the second attempt is stored.
    let mut again = group("g1");
    again.group_name = "other".into();
    let result = store.create_group(&again, &[member("g1", "dave", 100, 9)]).await;
    assert!(matches!(result, Err(StoreError::AlreadyExists(_))), "{result:?}");
    assert_eq!(store.groups(&["g1".into(), "nope".into()]).await.unwrap(), vec![group("g1")]);
    assert_eq!(store.group_member_count("g1").await.unwrap(), 3);
    assert_eq!(store.group_member("g1", "dave").await.unwrap(), None);
    assert!(store.user_conversations("dave").await.unwrap().is_empty());

    // A member listed twice fails the whole creation.
    let twice = [member("g2", "alice", 100, 1), member("g2", "alice", 20, 2)];
    assert!(matches!(store.create_group(&group("g2"), &twice).await, Err(StoreError::AlreadyExists(_))));
    assert!(store.groups(&["g2".into()]).await.unwrap().is_empty());
    assert_eq!(store.group_member_count("g2").await.unwrap(), 0);

    assert_eq!(store.group_member("g1", "bob").await.unwrap(), Some(members[1].clone()));
    assert_eq!(store.group_member_ids("g1").await.unwrap(), ["alice", "bob", "carol"]);
    assert_eq!(store.group_member_count("nope").await.unwrap(), 0);

    // Every member has the group's conversation, from seq 0, and sees its max seq move.
    let conv = palaver_protocol::conversation_id::group("g1");
    store.append_message(plain(&conv, "first")).await.unwrap();
    for m in &members {
        let rows = store.user_conversations_by_id(&m.user_id, std::slice::from_ref(&conv)).await.unwrap();
        assert_eq!(rows.len(), 1, "{}'s row", m.user_id);
        let row = &rows[0];
        assert_eq!((row.conversation_type, row.group_id.as_str(), row.user_id.as_str()), (3, "g1", ""));
        assert_eq!((row.min_seq, row.has_read_seq, row.max_seq), (0, 0, 1));
    }
}

/// The ids changed in list `kind` of `owner` after version `since`.
async fn changes_since(store: &dyn Store, kind: VersionKind, owner: &str, since: i64) -> Vec<(String, Change)> {
    let delta = store.version_changes(kind, owner, since, 1000).await.unwrap();
    assert!(delta.complete);
    delta.changes
}

async fn group_row(store: &dyn Store, user: &str, group_id: &str) -> palaver_store::UserConversation {
    let conv = palaver_protocol::conversation_id::group(group_id);
    store.user_conversations_by_id(user, &[conv]).await.unwrap().pop().unwrap()
}

/// PostgreSQL only: SQLite's one writer at a time orders a join against appends for free. A join reads the
/// group's max seq to set where the new member's history starts; an append committing at that moment on another
/// connection (another node) must be either wholly before the join (not visible to the member) or after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_join_is_ordered_against_an_append_in_flight() {
    let (backend, schema) = postgres().await;
    let store = backend.store.clone();
    let conv = palaver_protocol::conversation_id::group("g1");
    store.create_group(&group("g1"), &[member("g1", "alice", 100, 1)]).await.unwrap();
    store.append_message(plain(&conv, "first")).await.unwrap();

    // Another node's append, between its seq bump (which row-locks the counter) and its commit.
    let options: sqlx::postgres::PgConnectOptions = postgres_url().parse().unwrap();
    let mut other = sqlx::PgConnection::connect_with(&options.options([("search_path", &schema)])).await.unwrap();
    let mut in_flight = other.begin().await.unwrap();
    sqlx::query("UPDATE conversation_seqs SET max_seq = max_seq + 1 WHERE conversation_id = $1")
        .bind(&conv)
        .execute(&mut *in_flight)
        .await
        .unwrap();
    let join = tokio::spawn({
        let store = store.clone();
        async move { store.add_group_members("g1", &[member("g1", "dave", 20, 2)]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!join.is_finished(), "the join went ahead of an append that was committing");
    in_flight.commit().await.unwrap();
    join.await.unwrap().unwrap();
    assert_eq!(group_row(&*store, "dave", "g1").await.min_seq, 3, "history from after the append in flight");

    drop((other, store, backend));
    drop_postgres(&schema).await;
}

async fn group_membership_changes_bump_versions_and_cap_history(store: Arc<dyn Store>) {
    let conv = palaver_protocol::conversation_id::group("g1");
    let members = [member("g1", "alice", 100, 1), member("g1", "bob", 20, 2), member("g1", "carol", 60, 3)];
    let created = store.create_group(&group("g1"), &members).await.unwrap();
    assert_eq!(created, store.version_head(VersionKind::GroupMembers, "g1").await.unwrap());
    assert_eq!(store.group_member_ids("g1").await.unwrap(), ["alice", "carol", "bob"], "owner, admins, members");
    let roles = store.group_member_roles("g1").await.unwrap();
    assert_eq!(roles.iter().map(|r| r.role_level).collect::<Vec<_>>(), [100, 60, 20]);

    // Dave joins after two messages: added once (bob, already in, is skipped), one version, history from 3.
    for i in 0..2 {
        store.append_message(plain(&conv, &format!("before-{i}"))).await.unwrap();
    }
    let added =
        store.add_group_members("g1", &[member("g1", "dave", 20, 4), member("g1", "bob", 20, 9)]).await.unwrap();
    assert_eq!(added.inserted, ["dave"]);
    assert_eq!(added.head.version, created.version + 1);
    assert_eq!(added.head.version_id, created.version_id);
    assert_eq!(
        changes_since(&*store, VersionKind::GroupMembers, "g1", created.version).await,
        [("dave".into(), Change::Insert)]
    );
    assert_eq!(group_row(&*store, "dave", "g1").await.min_seq, 3);

    // Bob leaves after seq 3: the member list logs his deletion, his joined groups too, and he keeps seeing
    // 1..=3 but nothing after.
    store.append_message(plain(&conv, "third")).await.unwrap();
    let bob_groups = store.version_head(VersionKind::JoinedGroups, "bob").await.unwrap();
    let removed = store.remove_group_members("g1", &["bob".into(), "nobody".into()]).await.unwrap();
    assert_eq!(removed.version, added.head.version + 1);
    assert_eq!(
        changes_since(&*store, VersionKind::GroupMembers, "g1", added.head.version).await,
        [("bob".into(), Change::Delete)]
    );
    assert_eq!(
        changes_since(&*store, VersionKind::JoinedGroups, "bob", bob_groups.version).await,
        [("g1".into(), Change::Delete)]
    );
    assert_eq!(store.group_member("g1", "bob").await.unwrap(), None);
    store.append_message(plain(&conv, "after bob")).await.unwrap();
    let bob = group_row(&*store, "bob", "g1").await;
    assert_eq!((bob.max_seq_cap, bob.max_seq, bob.visible_max_seq()), (Some(3), 4, 3));
    assert_eq!(group_row(&*store, "alice", "g1").await.visible_max_seq(), 4, "members are not capped");

    // He rejoins: uncapped, history from his new join on.
    store.add_group_members("g1", &[member("g1", "bob", 20, 10)]).await.unwrap();
    let bob = group_row(&*store, "bob", "g1").await;
    assert_eq!((bob.max_seq_cap, bob.min_seq, bob.visible_max_seq()), (None, 5, 4));

    // Group info: one version, logged as the group-info element.
    let before = store.version_head(VersionKind::GroupMembers, "g1").await.unwrap();
    let patch = GroupPatch { group_name: Some("renamed".into()), status: Some(3), ..GroupPatch::default() };
    let after = store.update_group("g1", &patch).await.unwrap();
    assert_eq!(after.version, before.version + 1);
    assert_eq!(
        changes_since(&*store, VersionKind::GroupMembers, "g1", before.version).await,
        [(String::new(), Change::Update)]
    );
    let g = store.groups(&["g1".into()]).await.unwrap().pop().unwrap();
    assert_eq!((g.group_name.as_str(), g.status, g.introduction.as_str()), ("renamed", 3, ""));
    assert!(matches!(store.update_group("nope", &patch).await, Err(StoreError::NotFound(_))));

    // Member updates: one version each, a role change also logs the sort element; a non-member fails all.
    let patches = [
        MemberPatch { user_id: "carol".into(), role_level: Some(20), ..MemberPatch::default() },
        MemberPatch {
            user_id: "dave".into(),
            mute_end_time: Some(99),
            nickname: Some("D".into()),
            ..MemberPatch::default()
        },
    ];
    let heads = store.update_group_members("g1", &patches).await.unwrap();
    assert_eq!(heads.iter().map(|h| h.version).collect::<Vec<_>>(), [after.version + 1, after.version + 2]);
    let mut logged = changes_since(&*store, VersionKind::GroupMembers, "g1", after.version).await;
    logged.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        logged,
        [
            ("____S_O_R_T_I_D____".into(), Change::Update),
            ("carol".into(), Change::Update),
            ("dave".into(), Change::Update)
        ]
    );
    assert_eq!(SORT_ELEMENT, "____S_O_R_T_I_D____");
    let dave = store.group_member("g1", "dave").await.unwrap().unwrap();
    assert_eq!((dave.mute_end_time, dave.nickname.as_str(), dave.role_level), (99, "D", 20));
    let bad = [
        MemberPatch { user_id: "dave".into(), ex: Some("x".into()), ..MemberPatch::default() },
        MemberPatch { user_id: "zed".into(), ..MemberPatch::default() },
    ];
    assert!(matches!(store.update_group_members("g1", &bad).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.group_member("g1", "dave").await.unwrap().unwrap().ex, "", "all or nothing");
    assert_eq!(store.version_head(VersionKind::GroupMembers, "g1").await.unwrap().version, heads[1].version);

    // Ownership: dave becomes owner (and is unmuted), alice takes dave's role, one version.
    let transferred = store.transfer_group_owner("g1", "alice", "dave", 20).await.unwrap();
    assert_eq!(transferred.version, heads[1].version + 1);
    let dave = store.group_member("g1", "dave").await.unwrap().unwrap();
    assert_eq!((dave.role_level, dave.mute_end_time), (100, 0));
    assert_eq!(store.group_member("g1", "alice").await.unwrap().unwrap().role_level, 20);
    assert_eq!(store.groups(&["g1".into()]).await.unwrap()[0].owner_user_id, "dave");
    assert_eq!(store.group_member_ids("g1").await.unwrap()[0], "dave");

    // Dismissal: status 2, every member removed and capped, each one's joined groups logs the deletion.
    let alice_groups = store.version_head(VersionKind::JoinedGroups, "alice").await.unwrap();
    let mut gone = store.dismiss_group("g1").await.unwrap();
    gone.sort();
    assert_eq!(gone, ["alice", "bob", "carol", "dave"]);
    assert_eq!(store.groups(&["g1".into()]).await.unwrap()[0].status, 2);
    assert_eq!(store.group_member_count("g1").await.unwrap(), 0);
    assert_eq!(group_row(&*store, "carol", "g1").await.max_seq_cap, Some(4));
    assert_eq!(
        changes_since(&*store, VersionKind::JoinedGroups, "alice", alice_groups.version).await,
        [("g1".into(), Change::Delete)]
    );
    assert!(store.joined_group_ids("alice").await.unwrap().is_empty());

    // A member who leaves a group without messages sees nothing of it afterwards (cap 0, not "no cap").
    store.create_group(&group("g2"), &[member("g2", "alice", 100, 1), member("g2", "bob", 20, 2)]).await.unwrap();
    store.remove_group_members("g2", &["bob".into()]).await.unwrap();
    store.append_message(plain(&palaver_protocol::conversation_id::group("g2"), "later")).await.unwrap();
    assert_eq!(group_row(&*store, "bob", "g2").await.visible_max_seq(), 0);
}

async fn group_member_listings_filter_and_order(store: Arc<dyn Store>) {
    let mut members = vec![member("g1", "owner", 100, 5), member("g1", "adm", 60, 9)];
    for (i, id) in ["m_1", "m%2", "x3"].iter().enumerate() {
        members.push(member("g1", id, 20, i as i64));
    }
    store.create_group(&group("g1"), &members).await.unwrap();
    let page = Page { offset: 0, limit: 10 };
    let ids = |v: Vec<GroupMember>| v.into_iter().map(|m| m.user_id).collect::<Vec<_>>();
    let (all, total) = store.group_members("g1", page).await.unwrap();
    assert_eq!(
        (ids(all), total),
        (vec!["owner".to_string(), "adm".into(), "m_1".into(), "m%2".into(), "x3".into()], 5)
    );
    let managers = MemberFilter { roles: vec![100, 60], keyword: String::new() };
    let (got, total) = store.group_members_filtered("g1", &managers, page).await.unwrap();
    assert_eq!((ids(got), total), (vec!["owner".to_string(), "adm".into()], 2));
    // The keyword is a literal substring of the id or the nickname: `_` and `%` are not wildcards.
    let literal = MemberFilter { roles: vec![], keyword: "m_".into() };
    assert_eq!(ids(store.group_members_filtered("g1", &literal, page).await.unwrap().0), ["m_1"]);
    let percent = MemberFilter { roles: vec![20], keyword: "%".into() };
    assert_eq!(ids(store.group_members_filtered("g1", &percent, page).await.unwrap().0), ["m%2"]);
    let by_nick = MemberFilter { roles: vec![], keyword: "x3 in".into() };
    assert_eq!(store.group_members_filtered("g1", &by_nick, page).await.unwrap().1, 1);
    let (second, total) = store.group_members("g1", Page { offset: 2, limit: 2 }).await.unwrap();
    assert_eq!((ids(second), total), (vec!["m_1".to_string(), "m%2".into()], 5));
}

fn request(group_id: &str, user_id: &str, req_time: i64) -> GroupRequest {
    GroupRequest {
        group_id: group_id.into(),
        user_id: user_id.into(),
        req_msg: format!("{user_id} please"),
        req_time,
        join_source: 3,
        ..GroupRequest::default()
    }
}

async fn group_requests_and_answers(store: Arc<dyn Store>) {
    store.create_group(&group("g1"), &[member("g1", "alice", 100, 1), member("g1", "carol", 60, 2)]).await.unwrap();
    store.create_group(&group("g2"), &[member("g2", "bob", 100, 1)]).await.unwrap();
    store
        .put_group_requests(&[request("g1", "dave", 10), request("g1", "erin", 20), request("g2", "dave", 30)])
        .await
        .unwrap();
    assert_eq!(store.managed_group_ids("carol").await.unwrap(), ["g1"]);
    assert!(store.managed_group_ids("dave").await.unwrap().is_empty());

    let page = Page { offset: 0, limit: 10 };
    let to_g1 = RequestQuery { group_ids: vec!["g1".into()], handle_results: vec![], page };
    let (list, total) = store.group_requests_to(&to_g1).await.unwrap();
    assert_eq!((list.iter().map(|r| r.user_id.as_str()).collect::<Vec<_>>(), total), (vec!["erin", "dave"], 2));
    let by_dave = RequestQuery { group_ids: vec![], handle_results: vec![0], page };
    let (list, total) = store.group_requests_by("dave", &by_dave).await.unwrap();
    assert_eq!((list.iter().map(|r| r.group_id.as_str()).collect::<Vec<_>>(), total), (vec!["g2", "g1"], 2));
    assert_eq!(store.unhandled_group_requests(&["g1".into(), "g2".into()], 0).await.unwrap(), 3);
    assert_eq!(store.unhandled_group_requests(&["g1".into()], 15).await.unwrap(), 1);

    // Accepting adds the member in the same transaction; a second answer finds nothing pending.
    let before = store.version_head(VersionKind::GroupMembers, "g1").await.unwrap();
    let accept = GroupAnswer {
        group_id: "g1".into(),
        user_id: "dave".into(),
        handle_result: 1,
        handle_msg: "welcome".into(),
        handle_user_id: "alice".into(),
        handle_time: 40,
        member: Some(member("g1", "dave", 20, 40)),
    };
    let head = store.answer_group_request(&accept).await.unwrap().unwrap();
    assert_eq!(head.version, before.version + 1);
    assert!(store.group_member("g1", "dave").await.unwrap().is_some());
    let answered = store.group_requests_of("g1", &["dave".into()]).await.unwrap().pop().unwrap();
    assert_eq!(
        (answered.handle_result, answered.handle_msg.as_str(), answered.handle_user_id.as_str(), answered.handle_time),
        (1, "welcome", "alice", 40)
    );
    assert!(matches!(store.answer_group_request(&accept).await, Err(StoreError::NotFound(_))));
    let refuse = GroupAnswer { user_id: "erin".into(), handle_result: -1, member: None, ..accept.clone() };
    assert_eq!(store.answer_group_request(&refuse).await.unwrap(), None);
    assert_eq!(store.unhandled_group_requests(&["g1".into()], 0).await.unwrap(), 0);
    let refused = RequestQuery { group_ids: vec!["g1".into()], handle_results: vec![-1], page };
    assert_eq!(store.group_requests_to(&refused).await.unwrap().1, 1);

    // Applying again replaces the answered application: pending again.
    store.put_group_requests(&[request("g1", "erin", 50)]).await.unwrap();
    let again = store.group_requests_of("g1", &["erin".into()]).await.unwrap().pop().unwrap();
    assert_eq!((again.handle_result, again.req_time, again.handle_msg.as_str()), (0, 50, ""));
}

// ---------------------------------------------------------------------------------------------------------------
// Durability across reopen (SQLite file only)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    let conv = palaver_protocol::conversation_id::single("alice", "bob");

    let store = SqliteStore::open(&path).await.unwrap();
    store.register_users(&[user("alice"), user("bob")]).await.unwrap();
    store.insert_token(&token(7, "alice", 1)).await.unwrap();
    store.create_group(&group("g1"), &[member("g1", "alice", 100, 1)]).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(store.append_message(one_to_one("alice", "bob", &format!("m{i}"))).await.unwrap().data);
    }
    store.close().await;
    drop(store);

    // Opening again runs the (already applied) migrations and finds everything.
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.users(&["alice".into(), "bob".into()]).await.unwrap().len(), 2);
    assert_eq!(store.token(&[7; 32]).await.unwrap(), Some(token(7, "alice", 1)));
    assert_eq!(store.group_member_ids("g1").await.unwrap(), ["alice"]);
    assert_eq!(store.messages_in_range(&conv, 1, 5, 10).await.unwrap(), sent);
    assert_eq!(max_seq(&store, &conv).await, 5);
    let rows = store.user_conversations("alice").await.unwrap();
    assert_eq!(rows.len(), 2, "si_ and sg_ rows");
    assert_eq!(rows.iter().find(|r| r.conversation_id == conv).unwrap().has_read_seq, 5);
    // The counter continues where it stopped, and a resend from before the restart is still recognised.
    assert!(!store.append_message(one_to_one("alice", "bob", "m0")).await.unwrap().created);
    assert_eq!(store.append_message(one_to_one("alice", "bob", "m5")).await.unwrap().data.seq, 6);
    store.close().await;

    // Without a clean close (the WAL is not checkpointed into the main file), commits are still there.
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(max_seq(&store, &conv).await, 6);
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(max_seq(&store, &conv).await, 6);
}

/// The marks of messages (a revoke, a deletion) are found after a restart: the store answers "no marks" from
/// memory for conversations that have none, so it must know the ones that have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_marks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    let (revoked, deleted) = (
        palaver_protocol::conversation_id::single("alice", "bob"),
        palaver_protocol::conversation_id::single("alice", "carol"),
    );
    let store = SqliteStore::open(&path).await.unwrap();
    store.register_users(&[user("alice"), user("bob"), user("carol")]).await.unwrap();
    for peer in ["bob", "carol"] {
        store.append_message(one_to_one("alice", peer, "m1")).await.unwrap();
        store.append_message(one_to_one("alice", peer, "m2")).await.unwrap();
    }
    let revoke = palaver_store::MessageRevoke {
        conversation_id: revoked.clone(),
        seq: 2,
        revoker_user_id: "alice".into(),
        revoker_role: 0,
        revoker_nickname: "Alice".into(),
        revoke_time: 9,
    };
    assert!(store.revoke_message(&revoke).await.unwrap());
    store.delete_messages(Some("carol"), &deleted, &[1]).await.unwrap();
    assert_eq!(store.message_marks("bob", &revoked, &[1, 2]).await.unwrap().revokes, vec![revoke.clone()]);
    store.close().await;
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.message_marks("bob", &revoked, &[1, 2]).await.unwrap().revokes, vec![revoke]);
    assert_eq!(store.message_marks("carol", &deleted, &[1, 2]).await.unwrap().deleted, vec![1]);
    assert!(store.message_marks("alice", &deleted, &[1, 2]).await.unwrap().deleted.is_empty());
}

/// After a restart, a conversation's first message finds its rows and writes nothing to SQLite: it is stored while
/// another connection holds SQLite's write lock (otherwise it waits the busy timeout out, and fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_existing_conversation_rows_are_not_written_again_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    let conv = palaver_protocol::conversation_id::single("alice", "bob");
    let store = SqliteStore::open(&path).await.unwrap();
    store.register_users(&[user("alice"), user("bob")]).await.unwrap();
    store.append_message(one_to_one("alice", "bob", "before")).await.unwrap();
    store.close().await;
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let appended = store.append_message(one_to_one("bob", "alice", "after")).await.unwrap();
    assert_eq!((appended.created, appended.data.seq), (true, 2));
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(max_seq(&store, &conv).await, 2);
}

/// This test binary running only the test `name`, in a process of its own (a child half, which does its part
/// when the environment names a database).
fn child_test(name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    cmd
}

/// The child half of [`sqlite_file_acknowledged_messages_survive_kill_9`]: when `PALAVER_KILL_TEST_DB` names a
/// database, appends forever and prints `acked <seq>` after each append returns; otherwise does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_child() {
    use std::io::Write as _;
    let Ok(path) = std::env::var("PALAVER_KILL_TEST_DB") else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&path)).await.unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let a = store.append_message(one_to_one("alice", "bob", &format!("k{i}"))).await.unwrap();
        writeln!(out, "acked {}", a.data.seq).unwrap();
        out.flush().unwrap();
    }
}

/// An append that has returned (what the server acknowledges on) survives SIGKILL of the process, mid-write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_acknowledged_messages_survive_kill_9() {
    use std::io::BufRead as _;
    const ACKS: i64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    let mut child = child_test("kill_9_child")
        .env("PALAVER_KILL_TEST_DB", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = 0;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(seq) = line.unwrap().strip_prefix("acked ") {
            acked = seq.parse().unwrap();
            if acked >= ACKS {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no close, likely mid-transaction
    child.wait().unwrap();
    assert_eq!(acked, ACKS, "the child stopped acknowledging early");

    let store = SqliteStore::open(&path).await.unwrap();
    let conv = palaver_protocol::conversation_id::single("alice", "bob");
    let max = max_seq(&store, &conv).await;
    assert!(max >= acked, "acknowledged seq {acked} lost: max seq is {max}");
    assert_dense(&store, &conv, max).await;
}

/// The child half of [`sqlite_file_an_exclusive_store_keeps_other_processes_out`]: when `PALAVER_READER_TEST_DB`
/// names a database, counts its users through SQLite's default layer, without waiting for locks, and prints
/// `answer: users <n>` or `answer: error <message>`; otherwise does nothing.
#[test]
fn other_process_reader_child() {
    let Ok(path) = std::env::var("PALAVER_READER_TEST_DB") else {
        return;
    };
    let read = || -> rusqlite::Result<i64> {
        let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
    };
    match read() {
        Ok(n) => println!("answer: users {n}"),
        Err(e) => println!("answer: error {e}"),
    }
}

/// What another process sees of a store's file while the store is open: nothing but "database is locked" when the
/// store holds it alone (the default), every committed row when it shares it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_an_exclusive_store_keeps_other_processes_out() {
    use palaver_store::sqlite::Sharing;
    let other_process_reads = |path: &std::path::Path| -> String {
        let out = child_test("other_process_reader_child").env("PALAVER_READER_TEST_DB", path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let answer = stdout.split_once("answer: ").and_then(|(_, rest)| rest.lines().next());
        answer.unwrap_or_else(|| panic!("the child printed no answer: {stdout}")).to_string()
    };
    for (sharing, seen) in [(Sharing::Exclusive, "error database is locked"), (Sharing::Shared, "users 2")] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("palaver.db");
        let store = SqliteStore::open_with(&path, sharing).await.unwrap();
        register_alice_and_bob(&store).await;
        assert_eq!(other_process_reads(&path), seen, "{sharing:?}");
        // The exclusive store keeps the WAL's index in its own memory, not in the file other processes map.
        assert_eq!(dir.path().join("palaver.db-shm").exists(), sharing == Sharing::Shared, "{sharing:?}");
        store.close().await;
        drop(store);
        assert_eq!(other_process_reads(&path), "users 2", "{sharing:?}: closed, the file is anyone's");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The message journal (SQLite only): appends are durable in the journal first and reach SQLite about once a second

async fn open_file_store() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.db");
    let store = SqliteStore::open(&path).await.unwrap();
    (dir, path, store)
}

/// Everything a message read answers, as one comparable value.
async fn message_view(store: &SqliteStore, conversation_id: &str) -> impl PartialEq + std::fmt::Debug {
    let id = conversation_id.to_string();
    let page = store.messages_in_range(conversation_id, 2, 7, 4).await.unwrap();
    let all = store.messages_in_range(conversation_id, 0, i64::MAX, i64::MAX).await.unwrap();
    let picked = store.messages_by_seqs(conversation_id, &[7, 1, 4, 4, 99]).await.unwrap();
    let last = store.last_messages(std::slice::from_ref(&id)).await.unwrap();
    let max = store.max_seqs(std::slice::from_ref(&id)).await.unwrap();
    let mut rows = Vec::new();
    for owner in ["alice", "bob"] {
        rows.extend(store.user_conversations(owner).await.unwrap());
        rows.extend(store.user_conversations_by_id(owner, std::slice::from_ref(&id)).await.unwrap());
        rows.extend(store.user_conversations_page(owner, Page { offset: 0, limit: 10 }).await.unwrap().0);
    }
    (page, all, picked, last, max, rows)
}

/// Reads answer the same whether messages are still in the journal's memtable or flushed into SQLite: ranges,
/// picks, the newest, the counter, and the conversation rows' max seq and senders' read cursors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_reads_are_the_same_before_and_after_a_flush() {
    let (_dir, _path, store) = open_file_store().await;
    let conv = palaver_protocol::conversation_id::single("alice", "bob");
    for i in 0..4 {
        store.append_message(one_to_one("alice", "bob", &format!("m{i}"))).await.unwrap();
    }
    store.flush().await.unwrap();
    // Half flushed, half in the memtable: bob answers, so each side's cursor sits in a different place.
    for i in 4..8 {
        let (from, to) = if i % 2 == 0 { ("bob", "alice") } else { ("alice", "bob") };
        store.append_message(one_to_one(from, to, &format!("m{i}"))).await.unwrap();
    }
    let before = message_view(&store, &conv).await;
    let rows = store.user_conversations_by_id("bob", std::slice::from_ref(&conv)).await.unwrap();
    assert_eq!((rows[0].max_seq, rows[0].has_read_seq), (8, 7), "bob sent seq 7, still unflushed");
    assert_eq!(
        store.messages_in_range(&conv, 2, 7, 4).await.unwrap().iter().map(|m| m.seq).collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    assert_eq!(store.directory_counts().await.unwrap().messages, 8);
    store.flush().await.unwrap();
    assert_eq!(message_view(&store, &conv).await, before);
    assert_eq!(store.directory_counts().await.unwrap().messages, 8);
    // A resend of a message in either place finds the original.
    for id in ["m1", "m6"] {
        assert!(!store.append_message(one_to_one("alice", "bob", id)).await.unwrap().created);
    }
    assert_dense(&store, &conv, 8).await;
}

/// Appends, resends and flushes all at once: a resend always finds its original, wherever it is at that moment
/// (in the batch, the memtable, on its way into SQLite, or there), and every conversation's seqs stay dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_resends_find_their_original_while_flushing() {
    let (_dir, _path, store) = open_file_store().await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                store.flush().await.unwrap();
            }
        })
    };
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..4 {
        let store = store.clone();
        senders.spawn(async move {
            let conv = format!("si_s{s}_peer");
            for i in 0..400_u32 {
                let first = store.append_message(plain(&conv, &format!("m{i}"))).await.unwrap();
                assert!(first.created);
                for back in [0, 1, 7] {
                    let Some(j) = i.checked_sub(back) else { continue };
                    let again = store.append_message(plain(&conv, &format!("m{j}"))).await.unwrap();
                    assert!(!again.created, "{conv}: m{j} stored twice");
                    assert_eq!(again.data.seq, i64::from(j) + 1, "{conv}: m{j}");
                }
            }
            conv
        });
    }
    let mut convs = Vec::new();
    while let Some(conv) = senders.join_next().await {
        convs.push(conv.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    flusher.await.unwrap();
    for conv in convs {
        assert_dense(&store, &conv, 400).await;
    }
    store.close().await;
}

/// The journal has one owner. A second store opened on the same file while the first holds it (an admin tool, a
/// test reading what a server stored) refuses appends, and reads what is flushed; once the owner is closed, a new
/// store owns the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_second_store_does_not_take_the_journal() {
    let (_dir, path, owner) = open_file_store().await;
    let conv = palaver_protocol::conversation_id::single("alice", "bob");
    owner.append_message(one_to_one("alice", "bob", "m1")).await.unwrap();
    owner.flush().await.unwrap();
    let second = SqliteStore::open(&path).await.unwrap();
    let refused = second.append_message(one_to_one("alice", "bob", "m2")).await;
    assert!(matches!(&refused, Err(StoreError::Backend(e)) if e.contains("journal")), "{refused:?}");
    assert_eq!(max_seq(&second, &conv).await, 1);
    second.close().await;
    owner.close().await;
    let next = SqliteStore::open(&path).await.unwrap();
    assert_eq!(next.append_message(one_to_one("alice", "bob", "m2")).await.unwrap().data.seq, 2);
    next.close().await;
}

/// The flusher checkpoints as it goes: six rounds of appends later, the WAL is about as long as one round made
/// it, copied back and restarted rather than grown with every flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_flushes_keep_the_wal_short() {
    let (dir, _path, store) = open_file_store().await;
    let wal = || std::fs::metadata(dir.path().join("palaver.db-wal")).unwrap().len();
    let mut first_round = 0;
    for round in 0..6 {
        // A conversation each: every message dirties pages of its own.
        let mut appends = tokio::task::JoinSet::new();
        for i in 0..3_000 {
            let store = store.clone();
            appends.spawn(async move { store.append_message(plain(&format!("si_a_{i:05}_{round}"), "m")).await });
        }
        while let Some(result) = appends.join_next().await {
            result.unwrap().unwrap();
        }
        store.flush().await.unwrap();
        if round == 0 {
            first_round = wal();
        }
    }
    // Not checkpointed, it grows with every round (checked by leaving the checkpoint out: 2.5 times one round
    // after three).
    assert!(wal() < 2 * first_round, "the WAL grew from {first_round} to {} bytes", wal());
    store.close().await;
}

/// After `close`, appends (from any clone) fail with `Backend` rather than hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_closed_store_refuses_appends() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let other = store.clone();
    assert_eq!(store.append_message(plain("si_a_b", "m1")).await.unwrap().data.seq, 1);
    store.close().await;
    for s in [&store, &other] {
        let result = s.append_message(plain("si_a_b", "m2")).await;
        assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement (not run by default)

/// The append writer alone, in the shape of `palaver bench chat`: users in pairs, each pair one 1:1
/// conversation, appends as the server sends them (conversation rows ensured, the sender's cursor moved, the
/// recipient's preconditions checked), `senders` of them waiting at once (so batches are about that big).
/// Prints appends per second, commits, and this process's CPU time per append: a figure to compare one change
/// to the writer with the next, without the gateway around it, not a test. Run it (server-like: on one core) with
/// `taskset -c 1 cargo test --release -p palaver-store --test sqlite -- --ignored --nocapture append_throughput`.
#[ignore = "a measurement, not a test"]
#[tokio::test(flavor = "current_thread")]
async fn append_throughput() {
    fn cpu_ms() -> f64 {
        // utime + stime of this process, in clock ticks of 10 ms.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) * 10.0
    }
    for (senders, users, appends) in [(1_usize, 2_usize, 2_000_usize), (64, 10_000, 100_000), (1_024, 10_000, 100_000)]
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("palaver.db")).await.unwrap());
        let (start, cpu) = (std::time::Instant::now(), cpu_ms());
        let tasks: Vec<_> = (0..senders)
            .map(|s| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..appends / senders {
                        let from = (s * 7_919 + i * 104_729) % users;
                        let mut msg = one_to_one(&format!("u{from}"), &format!("u{}", from ^ 1), &format!("m{s}-{i}"));
                        msg.preconditions = vec![
                            Precondition::NotBlocked {
                                owner: msg.data.recv_id.clone(),
                                other: msg.data.send_id.clone(),
                            },
                            Precondition::Receives {
                                user: msg.data.recv_id.clone(),
                                conversation_id: msg.conversation_id.clone(),
                                read_receipt: false,
                            },
                        ];
                        store.append_message(msg).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_ms() - cpu);
        let n = appends / senders * senders;
        println!(
            "{senders:>5} senders, {users:>6} users: {n:>7} appends in {secs:>6.2} s = {:>6.0}/s, {} commits, \
             {:.1} µs CPU per append",
            n as f64 / secs,
            store.commits(),
            cpu * 1_000.0 / n as f64
        );
        store.close().await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Relations, conversation options, version logs

fn friend(owner: &str, other: &str) -> palaver_store::Friend {
    palaver_store::Friend {
        owner_user_id: owner.into(),
        friend_user_id: other.into(),
        create_time: 1_700_000_000_000,
        ..Default::default()
    }
}

/// What changed in a list since `since`, as (element, change) pairs.
async fn changes(store: &dyn Store, kind: VersionKind, owner: &str, since: i64) -> Vec<(String, Change)> {
    let delta = store.version_changes(kind, owner, since, 100).await.unwrap();
    assert!(delta.complete);
    delta.changes
}

/// Friend requests, answers, friends, blacklists, and the friends version log that records each change.
async fn relations_and_their_version_log(store: Arc<dyn Store>) {
    let start = store.version_head(VersionKind::Friends, "alice").await.unwrap();
    let request = palaver_store::FriendRequest {
        from_user_id: "alice".into(),
        to_user_id: "bob".into(),
        req_msg: "hi".into(),
        create_time: 5,
        ..Default::default()
    };
    store.put_friend_request(&request).await.unwrap();
    let (incoming, total) = store.friend_requests("bob", true, &[], Page::ALL).await.unwrap();
    assert_eq!((incoming.len(), total, incoming[0].handle_result), (1, 1, 0));
    let answer = palaver_store::FriendAnswer {
        from_user_id: "alice".into(),
        to_user_id: "bob".into(),
        accepted: true,
        handle_msg: "ok".into(),
        handler_user_id: "bob".into(),
        time: 6,
    };
    store.answer_friend_request(&answer).await.unwrap();
    assert!(matches!(store.answer_friend_request(&answer).await, Err(StoreError::NotFound(_))), "answered twice");
    assert_eq!(store.friend_request("alice", "bob").await.unwrap().unwrap().handle_result, 1);
    assert_eq!(store.friend_ids("alice").await.unwrap(), ["bob"]);
    assert_eq!(store.friend_ids("bob").await.unwrap(), ["alice"]);
    let head = store.version_head(VersionKind::Friends, "alice").await.unwrap();
    assert_eq!(head.version, start.version + 1, "one change, one version");
    assert_eq!(head.version_id, start.version_id);
    assert_eq!(
        changes(&*store, VersionKind::Friends, "alice", start.version).await,
        [("bob".to_string(), Change::Insert)]
    );

    let patch = palaver_store::FriendPatch { remark: Some("B".into()), is_pinned: Some(true), ex: None };
    store.update_friends("alice", &["bob".into(), "nobody".into()], &patch).await.unwrap();
    let got = store.friends_by_id("alice", &["bob".into()]).await.unwrap();
    assert_eq!((got[0].remark.as_str(), got[0].is_pinned), ("B", true));
    assert_eq!(
        changes(&*store, VersionKind::Friends, "alice", head.version).await,
        [("bob".to_string(), Change::Update)]
    );
    let (page, total) = store.friends("alice", Page { offset: 0, limit: 10 }).await.unwrap();
    assert_eq!((page.len(), total), (1, 1));

    assert!(store.delete_friend("alice", "bob").await.unwrap());
    assert!(!store.delete_friend("alice", "bob").await.unwrap());
    assert_eq!(
        changes(&*store, VersionKind::Friends, "alice", head.version).await,
        [("bob".to_string(), Change::Delete)]
    );
    assert_eq!(store.friend_ids("bob").await.unwrap(), ["alice"], "deleting is one way");

    let black = Black {
        owner_user_id: "bob".into(),
        block_user_id: "carol".into(),
        create_time: 7,
        add_source: 1,
        operator_user_id: "bob".into(),
        ex: "x".into(),
    };
    store.add_black(&black).await.unwrap();
    store.add_black(&black).await.unwrap();
    assert!(store.is_blocked("bob", "carol").await.unwrap());
    assert!(!store.is_blocked("carol", "bob").await.unwrap());
    assert_eq!(store.blacks("bob", Page::ALL).await.unwrap(), (vec![black.clone()], 1));
    assert_eq!(store.blacks_by_id("bob", &["carol".into()]).await.unwrap(), vec![black]);
    assert!(store.remove_black("bob", "carol").await.unwrap());
    assert!(!store.is_blocked("bob", "carol").await.unwrap());
}

/// Options on a conversation (creating its row), and a member who joins a group with history sees it from
/// its join on; the version logs record both, and a delta larger than the limit says so.
async fn conversation_options_and_late_joiners(store: Arc<dyn Store>) {
    let patch = palaver_store::ConversationPatch {
        conversation_id: "si_alice_bob".into(),
        conversation_type: 1,
        user_id: "bob".into(),
        is_pinned: Some(true),
        ex: Some("e".into()),
        ..Default::default()
    };
    let before = store.version_head(VersionKind::Conversations, "alice").await.unwrap();
    let row = store.update_conversation("alice", &patch).await.unwrap();
    assert!(row.is_pinned && row.ex == "e" && row.user_id == "bob" && !row.is_private_chat);
    let unpin = palaver_store::ConversationPatch { is_pinned: Some(false), recv_msg_opt: Some(2), ..patch.clone() };
    let row = store.update_conversation("alice", &unpin).await.unwrap();
    assert!(!row.is_pinned && row.recv_msg_opt == 2 && row.ex == "e");
    assert_eq!(
        changes(&*store, VersionKind::Conversations, "alice", before.version).await,
        [("si_alice_bob".to_string(), Change::Update)],
        "the latest change per element"
    );
    let (page, total) = store.user_conversations_page("alice", Page { offset: 0, limit: 1 }).await.unwrap();
    assert_eq!((page.len(), total), (1, 1));

    store.create_group(&group("g1"), &[member("g1", "owner", 100, 1)]).await.unwrap();
    let conversation = palaver_protocol::conversation_id::group("g1");
    for i in 0..3 {
        let mut msg = plain(&conversation, &format!("g{i}"));
        msg.data.group_id = "g1".into();
        store.append_message(msg).await.unwrap();
    }
    let members: Vec<GroupMember> = (0..5).map(|i| member("g1", &format!("late{i}"), 0, 2)).collect();
    store.add_group_members("g1", &members).await.unwrap();
    store.add_group_members("g1", &members[..1]).await.unwrap();
    assert_eq!(store.group_member_count("g1").await.unwrap(), 6, "adding a member twice adds it once");
    let row = store.user_conversations_by_id("late0", std::slice::from_ref(&conversation)).await.unwrap();
    assert_eq!((row[0].min_seq, row[0].max_seq), (4, 3), "history from the join on");
    assert_eq!(store.joined_group_ids("late3").await.unwrap(), ["g1"]);
    let delta = store.version_changes(VersionKind::GroupMembers, "g1", 0, 3).await.unwrap();
    assert!(!delta.complete, "six members changed, the limit is three");
    assert_eq!(delta.changes.len(), 3);
}

/// Friendships made at once from both sides (each locking two version lists): no deadlock surfaces, and every
/// list ends with every friend once.
async fn concurrent_friendships_in_both_orders(store: Arc<dyn Store>) {
    let users: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let mut tasks = Vec::new();
    for a in &users {
        for b in &users {
            if a != b {
                let (store, a, b) = (store.clone(), a.clone(), b.clone());
                tasks.push(tokio::spawn(async move { store.add_friendship(&friend(&a, &b), &friend(&b, &a)).await }));
            }
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for u in &users {
        let mut ids = store.friend_ids(u).await.unwrap();
        ids.sort();
        let expected: Vec<String> = users.iter().filter(|o| *o != u).cloned().collect();
        assert_eq!(ids, expected);
        let delta = store.version_changes(VersionKind::Friends, u, 0, 100).await.unwrap();
        assert_eq!(delta.changes.len(), 5, "{u}: each friend logged once");
    }
}
fn object(name: &str, user_id: &str, hash: &str) -> Object {
    Object {
        name: name.into(),
        user_id: user_id.into(),
        hash: hash.into(),
        storage_key: hash.into(),
        size: 10,
        content_type: "image/png".into(),
        cause: "msg-picture".into(),
        create_time: 1,
    }
}

fn upload(id: &str, expire_time: i64) -> Upload {
    Upload {
        upload_id: id.into(),
        user_id: "alice".into(),
        hash: "h1".into(),
        size: 25,
        part_size: 10,
        part_count: 3,
        storage_key: "h1".into(),
        backend_upload_id: format!("s3-{id}"),
        expire_time,
        create_time: 0,
    }
}

/// Objects: a name is one user's (the same user may replace it, another may not); lookups by name and by hash.
/// Uploads: insert, read, expire in order, delete; completion is one transaction that needs the upload.
async fn objects_and_uploads(store: Arc<dyn Store>) {
    store.put_object(&object("alice/a.png", "alice", "h1")).await.unwrap();
    assert_eq!(store.object("alice/a.png").await.unwrap(), Some(object("alice/a.png", "alice", "h1")));
    assert_eq!(store.object("alice/none.png").await.unwrap(), None);
    store.put_object(&object("alice/a.png", "alice", "h2")).await.unwrap();
    assert_eq!(store.object("alice/a.png").await.unwrap().unwrap().hash, "h2", "the owner replaces");
    let taken = store.put_object(&object("alice/a.png", "mallory", "h3")).await;
    assert!(matches!(taken, Err(StoreError::AlreadyExists(_))), "{taken:?}");
    assert_eq!(store.object("alice/a.png").await.unwrap().unwrap().user_id, "alice");
    assert_eq!(store.object_by_hash("h2").await.unwrap().unwrap().name, "alice/a.png");
    assert_eq!(store.object_by_hash("h1").await.unwrap(), None);

    for (id, expiry) in [("u3", 300), ("u1", 100), ("u2", 200)] {
        store.insert_upload(&upload(id, expiry)).await.unwrap();
    }
    assert!(matches!(store.insert_upload(&upload("u1", 1)).await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(store.upload("u2").await.unwrap(), Some(upload("u2", 200)));
    assert_eq!(store.upload("nope").await.unwrap(), None);
    let expired: Vec<String> = store.expired_uploads(250, 10).await.unwrap().into_iter().map(|u| u.upload_id).collect();
    assert_eq!(expired, ["u1", "u2"]);
    assert_eq!(store.expired_uploads(1000, 1).await.unwrap().len(), 1);

    store.complete_upload("u1", &object("alice/b.png", "alice", "h1")).await.unwrap();
    assert_eq!(store.upload("u1").await.unwrap(), None);
    assert_eq!(store.object("alice/b.png").await.unwrap().unwrap().hash, "h1");
    let again = store.complete_upload("u1", &object("alice/c.png", "alice", "h1")).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    assert_eq!(store.object("alice/c.png").await.unwrap(), None, "nothing recorded for a gone upload");
    let foreign = store.complete_upload("u2", &object("alice/b.png", "mallory", "h9")).await;
    assert!(matches!(foreign, Err(StoreError::AlreadyExists(_))), "{foreign:?}");
    assert!(store.upload("u2").await.unwrap().is_some(), "a refused completion keeps the upload");

    assert!(store.delete_upload("u2").await.unwrap());
    assert!(!store.delete_upload("u2").await.unwrap());
    assert_eq!(store.expired_uploads(i64::MAX, 10).await.unwrap().len(), 1);
}
