//! Black-box tests of the account and directory traits, on every backend (bodies take `Arc<dyn Store>`; see
//! `common`).

#[macro_use]
mod common;

use std::sync::Arc;

use palaver_store::{Group, GroupMember, Page, Store, StoreError, User};

store_tests!(
    "accounts";
    accounts_create_with_their_user,
    passwords_change,
    blocks_toggle,
    users_search_by_id_or_nickname,
    groups_search_and_counts,
);

fn user(id: &str, nickname: &str, create_time: i64) -> User {
    User { user_id: id.into(), nickname: nickname.into(), create_time, ..User::default() }
}

async fn accounts_create_with_their_user(store: Arc<dyn Store>) {
    store.create_account(&user("alice", "Alice", 1), "$argon2id$hash-a").await.unwrap();
    let account = store.account("alice").await.unwrap().expect("account");
    assert_eq!(account.password_hash, "$argon2id$hash-a");
    assert!(account.created_at > 0 && account.updated_at == account.created_at);
    assert_eq!(store.users(&["alice".into()]).await.unwrap()[0].nickname, "Alice");

    // The id is taken: by an account, or by a user registered without one (nothing is half-created).
    let again = store.create_account(&user("alice", "Other", 2), "x").await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(id)) if id == "alice"));
    store.register_users(&[user("bob", "Bob", 3)]).await.unwrap();
    assert!(matches!(store.create_account(&user("bob", "B", 4), "x").await, Err(StoreError::AlreadyExists(_))));
    assert_eq!(store.account("bob").await.unwrap(), None);
    assert_eq!(store.users(&["bob".into()]).await.unwrap()[0].nickname, "Bob");
    assert_eq!(store.account("nobody").await.unwrap(), None);
}

async fn passwords_change(store: Arc<dyn Store>) {
    store.create_account(&user("alice", "Alice", 1), "old").await.unwrap();
    store.set_password_hash("alice", "new").await.unwrap();
    assert_eq!(store.account("alice").await.unwrap().unwrap().password_hash, "new");
    store.register_users(&[user("bob", "Bob", 2)]).await.unwrap();
    assert!(matches!(store.set_password_hash("bob", "x").await, Err(StoreError::NotFound(_))));
}

async fn blocks_toggle(store: Arc<dyn Store>) {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(store.set_blocked("alice", true, 10).await.unwrap());
    assert!(!store.set_blocked("alice", true, 11).await.unwrap(), "already blocked");
    assert!(store.set_blocked("carol", true, 12).await.unwrap());
    let mut blocked = store.blocked_users(&ids(&["alice", "bob", "carol"])).await.unwrap();
    blocked.sort();
    assert_eq!(blocked, ids(&["alice", "carol"]));
    assert!(store.set_blocked("alice", false, 13).await.unwrap());
    assert!(!store.set_blocked("alice", false, 14).await.unwrap(), "not blocked");
    assert_eq!(store.blocked_users(&ids(&["alice", "bob", "carol"])).await.unwrap(), ids(&["carol"]));
    assert!(store.blocked_users(&[]).await.unwrap().is_empty());
}

async fn users_search_by_id_or_nickname(store: Arc<dyn Store>) {
    let users = [
        user("alice", "Alice Liddell", 1),
        user("bob", "Robert", 2),
        user("ALFRED", "Butler", 3),
        user("pct", "100% sure", 4),
        user("under_score", "x", 5),
    ];
    store.register_users(&users).await.unwrap();
    let ids = |(found, total): (Vec<User>, i64)| (found.into_iter().map(|u| u.user_id).collect::<Vec<_>>(), total);
    let all = Page { offset: 0, limit: 100 };
    // Newest first; case-insensitive on id and nickname.
    assert_eq!(ids(store.search_users("al", all).await.unwrap()), (vec!["ALFRED".into(), "alice".into()], 2));
    assert_eq!(ids(store.search_users("ROB", all).await.unwrap()), (vec!["bob".into()], 1));
    assert_eq!(store.search_users("", all).await.unwrap().1, 5);
    // Wildcards in the keyword are literal.
    assert_eq!(ids(store.search_users("%", all).await.unwrap()), (vec!["pct".into()], 1));
    assert_eq!(ids(store.search_users("_", all).await.unwrap()), (vec!["under_score".into()], 1));
    assert_eq!(store.search_users("zzz", all).await.unwrap(), (vec![], 0));
    // Pages.
    let page = store.search_users("", Page { offset: 1, limit: 2 }).await.unwrap();
    assert_eq!(ids(page), (vec!["pct".into(), "ALFRED".into()], 5));
}

async fn groups_search_and_counts(store: Arc<dyn Store>) {
    store.register_users(&[user("alice", "Alice", 1), user("bob", "Bob", 2)]).await.unwrap();
    store.create_account(&user("carol", "Carol", 3), "h").await.unwrap();
    for (id, name, time) in [("100", "Book club", 1), ("200", "Chess", 2)] {
        let group = Group {
            group_id: id.into(),
            group_name: name.into(),
            owner_user_id: "alice".into(),
            create_time: time,
            ..Group::default()
        };
        let member =
            GroupMember { group_id: id.into(), user_id: "alice".into(), role_level: 100, ..Default::default() };
        store.create_group(&group, &[member]).await.unwrap();
    }
    let all = Page { offset: 0, limit: 10 };
    let (found, total) = store.search_groups("", all).await.unwrap();
    assert_eq!((found.iter().map(|g| g.group_id.as_str()).collect::<Vec<_>>(), total), (vec!["200", "100"], 2));
    let (found, total) = store.search_groups("BOOK", all).await.unwrap();
    assert_eq!((found[0].group_name.as_str(), total), ("Book club", 1));
    assert_eq!(store.search_groups("10", all).await.unwrap().1, 1, "by id");

    let counts = store.directory_counts().await.unwrap();
    assert_eq!((counts.users, counts.accounts, counts.groups, counts.messages), (3, 1, 2, 0));
}
