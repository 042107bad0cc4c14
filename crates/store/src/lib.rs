//! Palaver's storage.
//!
//! The server talks to storage only through the [`Store`] trait (split per domain below), so the embedded SQLite
//! store ([`sqlite`]) and the PostgreSQL store ([`postgres`]) are interchangeable. The SQL lives here and nowhere else.
//!
//! The invariants every implementation must keep (and that `tests` check on each backend):
//! - per conversation, seqs are 1, 2, 3, … with no gap and no duplicate, however many writers race;
//! - [`MessageStore::append_message`] allocates the seq and inserts the message in one transaction, and a second
//!   append with the same `(conversation_id, client_msg_id)` returns the first one's result and stores nothing;
//! - a successful return means the message is committed (it survives a crash of the process).

pub mod migrate;
mod model;
pub mod postgres;
mod search;
pub mod sqlite;

pub use model::*;

use async_trait::async_trait;
use palaver_protocol::pb::sdkws::MsgData;

/// Storage errors. Callers map them to OpenIM codes at the edge; `Backend` details stay in the logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row that must be unique exists already (a user id on register, a group id on create).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A row the operation needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A [`Precondition`] of the operation does not hold; nothing was changed.
    #[error("precondition failed: {0:?}")]
    Refused(Precondition),
    /// The database failed; the message is for logs, never for clients.
    #[error("storage backend: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    /// Keeps the database's error code in the text (`[SQLSTATE 40P01]`): the PostgreSQL store retries a
    /// transaction that lost a deadlock or a serialisation conflict by looking for it.
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error().and_then(|db| db.code()) {
            Some(code) => Self::Backend(format!("{e} [SQLSTATE {code}]")),
            None => Self::Backend(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Backend(e.to_string())
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Self::Backend(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// All of Palaver's storage, as one object the server holds behind an `Arc<dyn Store>`.
pub trait Store:
    UserStore
    + TokenStore
    + AccountStore
    + DirectoryStore
    + MessageStore
    + ConversationStore
    + GroupStore
    + RelationStore
    + VersionStore
    + AppStore
    + ObjectStore
    + Send
    + Sync
{
}
impl<T> Store for T where
    T: UserStore
        + TokenStore
        + AccountStore
        + DirectoryStore
        + MessageStore
        + ConversationStore
        + GroupStore
        + RelationStore
        + VersionStore
        + AppStore
        + ObjectStore
        + Send
        + Sync
{
}

#[async_trait]
pub trait UserStore {
    /// Inserts all users or none: if any id exists already, fails with `AlreadyExists` naming it.
    async fn register_users(&self, users: &[User]) -> Result<()>;
    /// The users among `ids` that exist, in no particular order.
    async fn users(&self, ids: &[String]) -> Result<Vec<User>>;
    /// Applies the fields that are `Some`; `NotFound` if the user does not exist.
    async fn update_user(&self, patch: &UserPatch) -> Result<User>;
}

#[async_trait]
pub trait TokenStore {
    async fn insert_token(&self, token: &Token) -> Result<()>;
    /// The token stored under this hash, whatever its status.
    async fn token(&self, hash: &[u8]) -> Result<Option<Token>>;
    /// Sets `status` on every live (`Normal`) token of `user_id` on `platform_id`, except `keep` if given.
    /// Returns how many tokens changed.
    async fn set_token_status(
        &self,
        user_id: &str,
        platform_id: i32,
        status: TokenStatus,
        keep: Option<&[u8]>,
    ) -> Result<u64>;
}

/// Password accounts for people (`/account/register`, `/account/login`) and the operator's blocks.
///
/// Deliberately small: hashing, policy and throttling live in the server; the store only keeps rows.
#[async_trait]
pub trait AccountStore {
    /// Registers `user` and gives it the password hash `password_hash`, in one transaction: both rows or
    /// neither. `AlreadyExists` (naming the id) if the user id is taken, whether or not it has an account.
    async fn create_account(&self, user: &User, password_hash: &str) -> Result<()>;
    /// The account of `user_id`, if it has one.
    async fn account(&self, user_id: &str) -> Result<Option<Account>>;
    /// Replaces the password hash and sets `updated_at` to now. `NotFound` if the user has no account.
    async fn set_password_hash(&self, user_id: &str, password_hash: &str) -> Result<()>;
    /// Blocks (`true`) or unblocks a user; `at` is the block's time (ms). Returns whether anything changed
    /// (blocking a blocked user, or unblocking an unblocked one, changes nothing). Does not check that the
    /// user exists: the server does.
    async fn set_blocked(&self, user_id: &str, blocked: bool, at: i64) -> Result<bool>;
    /// The ids among `user_ids` that are blocked, in no particular order.
    async fn blocked_users(&self, user_ids: &[String]) -> Result<Vec<String>>;
}

/// The admin console's read-only queries over everyone: search and totals.
///
/// `keyword` matching is a case-insensitive (ASCII) substring match on the id or the name; an empty keyword
/// matches everything. `%`, `_` and `\` in a keyword match themselves, not as wildcards.
#[async_trait]
pub trait DirectoryStore {
    /// One page of the users whose id or nickname contains `keyword`, newest first (then by id), and how
    /// many match in all.
    async fn search_users(&self, keyword: &str, page: Page) -> Result<(Vec<User>, i64)>;
    /// One page of the groups whose id or name contains `keyword`, newest first (then by id), and how many
    /// match in all. Dismissed groups are included (the console shows their status).
    async fn search_groups(&self, keyword: &str, page: Page) -> Result<(Vec<Group>, i64)>;
    /// Totals of users, accounts, groups and stored messages.
    async fn directory_counts(&self) -> Result<DirectoryCounts>;
}

#[async_trait]
pub trait MessageStore {
    /// Allocates the conversation's next seq and stores the message, in one transaction; see the crate docs.
    /// The stored `send_time` is the message's, raised if needed to one ms past the previous message of the
    /// conversation, so send times strictly increase with seq (clients sort history by them).
    async fn append_message(&self, msg: NewMessage) -> Result<Appended>;
    /// Up to `limit` messages of `conversation_id` with `begin <= seq <= end`: the **last** `limit` of them
    /// (highest seqs), returned in ascending seq order.
    async fn messages_in_range(&self, conversation_id: &str, begin: i64, end: i64, limit: i64) -> Result<Vec<MsgData>>;
    /// The messages of `conversation_id` with these seqs, ascending; missing seqs are simply absent.
    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> Result<Vec<MsgData>>;
    /// The newest message of each conversation that has one.
    async fn last_messages(&self, conversation_ids: &[String]) -> Result<Vec<MsgData>>;
    /// Max seq (0 if none) and the time of the last message, per conversation.
    async fn max_seqs(&self, conversation_ids: &[String]) -> Result<Vec<ConversationSeq>>;
    /// Marks the messages `seqs` of a conversation deleted for `owner`, or for everyone when `owner` is
    /// `None`. The rows stay (seqs stay contiguous); reads report them through [`MessageStore::message_marks`].
    /// Marking twice is harmless.
    async fn delete_messages(&self, owner: Option<&str>, conversation_id: &str, seqs: &[i64]) -> Result<()>;
    /// Records a revoke. Returns false, changing nothing, if the message was already revoked.
    async fn revoke_message(&self, revoke: &MessageRevoke) -> Result<bool>;
    /// Which of the messages `seqs` of a conversation are revoked, and which are deleted for `owner` (by
    /// itself or for everyone).
    async fn message_marks(&self, owner: &str, conversation_id: &str, seqs: &[i64]) -> Result<MessageMarks>;
}

#[async_trait]
pub trait ConversationStore {
    /// The conversation rows `owner` has, each with its conversation's max seq.
    async fn user_conversations(&self, owner: &str) -> Result<Vec<UserConversation>>;
    /// The rows among `conversation_ids` that `owner` has.
    async fn user_conversations_by_id(&self, owner: &str, conversation_ids: &[String])
    -> Result<Vec<UserConversation>>;
    /// Raises `owner`'s read cursor to `seq` (never lowers it). `NotFound` if `owner` has no such conversation.
    async fn raise_has_read_seq(&self, owner: &str, conversation_id: &str, seq: i64) -> Result<()>;
    /// One page of `owner`'s conversations (ordered by conversation id) and how many there are in all.
    async fn user_conversations_page(&self, owner: &str, page: Page) -> Result<(Vec<UserConversation>, i64)>;
    /// Applies the `Some` fields of `patch` to `owner`'s row, creating the row if it is missing (OpenIM lets a
    /// user set options on a conversation before its first message), and bumps `owner`'s conversation version
    /// (insert or update). Returns the row as stored.
    async fn update_conversation(&self, owner: &str, patch: &ConversationPatch) -> Result<UserConversation>;
    /// Clears `owner`'s history of the named conversations it has: in one transaction, each row's `min_seq`
    /// becomes its conversation's max seq + 1 (history before it is hidden from `owner` only) and its read
    /// cursor the max seq, and `owner`'s conversation version is bumped (update). Returns the rows cleared,
    /// as stored.
    async fn clear_conversations(&self, owner: &str, conversation_ids: &[String]) -> Result<Vec<UserConversation>>;
    /// Clears a conversation for everyone who has it, as [`ConversationStore::clear_conversations`] does for
    /// one user. Returns the owners whose rows were cleared.
    async fn clear_conversation_for_all(&self, conversation_id: &str) -> Result<Vec<String>>;
}

/// Friends, friend requests and blacklists. Every change to a user's friend list bumps that user's
/// [`VersionKind::Friends`] version in the same transaction.
#[async_trait]
pub trait RelationStore {
    /// One page of `owner`'s friends (oldest friendship first) and the total.
    async fn friends(&self, owner: &str, page: Page) -> Result<(Vec<Friend>, i64)>;
    /// The friends of `owner` among `ids`.
    async fn friends_by_id(&self, owner: &str, ids: &[String]) -> Result<Vec<Friend>>;
    /// All friend ids of `owner`, oldest friendship first.
    async fn friend_ids(&self, owner: &str) -> Result<Vec<String>>;
    /// Stores a friend request, replacing an earlier one between the same two users (it becomes pending again).
    async fn put_friend_request(&self, request: &FriendRequest) -> Result<()>;
    async fn friend_request(&self, from: &str, to: &str) -> Result<Option<FriendRequest>>;
    /// Requests sent to `user_id` (`incoming`) or by it, with one of `handle_results` (any, if empty): one page,
    /// newest first, and the total.
    async fn friend_requests(
        &self,
        user_id: &str,
        incoming: bool,
        handle_results: &[i32],
        page: Page,
    ) -> Result<(Vec<FriendRequest>, i64)>;
    /// The requests between `a` and `b`, in both directions.
    async fn friend_requests_between(&self, a: &str, b: &str) -> Result<Vec<FriendRequest>>;
    /// Pending requests to `user_id` created after `since` (ms; 0: all).
    async fn unhandled_friend_request_count(&self, user_id: &str, since: i64) -> Result<i64>;
    /// Records the answer to the pending request `from → to`; when accepted, also answers a pending request the
    /// other way and makes both users friends of each other (both rows, both versions bumped, `add_source`
    /// "by request"), all in one transaction. `NotFound` if there is no pending request.
    async fn answer_friend_request(&self, answer: &FriendAnswer) -> Result<()>;
    /// Makes `a` and `b` friends directly (admin import), both rows, both versions bumped. Existing rows stay.
    async fn add_friendship(&self, a: &Friend, b: &Friend) -> Result<()>;
    /// Removes `friend` from `owner`'s list (one way, as OpenIM does). Returns whether a row was removed.
    async fn delete_friend(&self, owner: &str, friend: &str) -> Result<bool>;
    /// Applies remark/pin/ex to `owner`'s rows for `friends` and bumps the version (update).
    async fn update_friends(&self, owner: &str, friends: &[String], patch: &FriendPatch) -> Result<()>;
    /// Records, in the friend list of everyone who has `friend` as a friend, that `friend` changed (its profile
    /// did): one version bump (update) per such list. Returns their owners.
    async fn touch_friend(&self, friend: &str) -> Result<Vec<String>>;
    /// One page of `owner`'s blacklist, and the total.
    async fn blacks(&self, owner: &str, page: Page) -> Result<(Vec<Black>, i64)>;
    async fn blacks_by_id(&self, owner: &str, ids: &[String]) -> Result<Vec<Black>>;
    /// Whether `owner` has blocked `other`.
    async fn is_blocked(&self, owner: &str, other: &str) -> Result<bool>;
    /// Adds to the blacklist (no-op if present).
    async fn add_black(&self, black: &Black) -> Result<()>;
    /// Returns whether a row was removed.
    async fn remove_black(&self, owner: &str, blocked: &str) -> Result<bool>;
}

/// Per-user app data: user commands, client configuration, push tokens, badges, uploaded client logs.
#[async_trait]
pub trait AppStore {
    /// Adds a command; `AlreadyExists` if the user has one of this type and uuid.
    async fn add_user_command(&self, command: &UserCommand) -> Result<()>;
    /// Sets `value` and/or `ex` of a command; `NotFound` if there is none.
    async fn update_user_command(
        &self,
        user_id: &str,
        command_type: i32,
        uuid: &str,
        value: Option<&str>,
        ex: Option<&str>,
    ) -> Result<()>;
    /// Removes a command; `NotFound` if there is none.
    async fn delete_user_command(&self, user_id: &str, command_type: i32, uuid: &str) -> Result<()>;
    /// The user's commands, of one type or (`None`) all, oldest first.
    async fn user_commands(&self, user_id: &str, command_type: Option<i32>) -> Result<Vec<UserCommand>>;
    /// The configuration rows of `user_id` (`""`: the defaults for everyone).
    async fn client_config(&self, user_id: &str) -> Result<Vec<(String, String)>>;
    /// Sets (inserts or replaces) configuration rows of `user_id`.
    async fn set_client_config(&self, user_id: &str, configs: &[(String, String)]) -> Result<()>;
    /// Removes configuration rows of `user_id`.
    async fn delete_client_config(&self, user_id: &str, keys: &[String]) -> Result<()>;
    /// Stores (replacing) the push token of a user's device on a platform.
    async fn set_push_token(&self, user_id: &str, platform_id: i32, token: &str, expire_time: i64) -> Result<()>;
    /// Forgets the push token of a user's device on a platform (logout).
    async fn delete_push_token(&self, user_id: &str, platform_id: i32) -> Result<()>;
    /// The push token of a user's device on a platform.
    async fn push_token(&self, user_id: &str, platform_id: i32) -> Result<Option<String>>;
    /// Stores the badge count the user's app reported.
    async fn set_app_badge(&self, user_id: &str, unread_count: i32) -> Result<()>;
    /// The badge count last reported, if any.
    async fn app_badge(&self, user_id: &str) -> Result<Option<i32>>;
    /// Stores uploaded client logs (all or none); `AlreadyExists` on a log id collision.
    async fn insert_client_logs(&self, logs: &[ClientLog]) -> Result<()>;
    /// The logs a user uploaded, newest first.
    async fn client_logs(&self, user_id: &str) -> Result<Vec<ClientLog>>;
}

/// Version logs: what changed in a synced list since a version a client holds (protocol §6).
///
/// Each list (a user's friends, joined groups or conversations; a group's members) has an opaque `version_id`
/// and a version number that every change raises by exactly one; the log keeps, per element, its latest state
/// and the version of that change. A client sends the `{version_id, version}` it holds and gets back only the
/// elements changed since, or is told to re-list (`complete == false`).
#[async_trait]
pub trait VersionStore {
    /// The list's current head. A list that was never touched is created at version 1 (empty), so that a client
    /// that synced it while empty can receive its first change incrementally.
    async fn version_head(&self, kind: VersionKind, owner: &str) -> Result<VersionHead>;
    /// The elements changed after version `since`, oldest change first. `complete` is false when more than
    /// `limit` elements changed or the log no longer reaches back to `since` (compacted).
    async fn version_changes(&self, kind: VersionKind, owner: &str, since: i64, limit: usize) -> Result<VersionDelta>;
}

/// Groups, members and join applications. Every change to a membership bumps, in the same transaction, the
/// group's [`VersionKind::GroupMembers`] list and each affected user's [`VersionKind::JoinedGroups`] list; the
/// mutations return the member list's head after the change, which the server puts in its notification so that
/// a client one version behind can apply the change without asking (protocol §6.5).
#[async_trait]
pub trait GroupStore {
    /// Creates the group, its members and each member's `sg_` conversation row, in one transaction, with the
    /// version bumps `add_group_members` makes. `AlreadyExists` if the group id is taken.
    async fn create_group(&self, group: &Group, members: &[GroupMember]) -> Result<VersionHead>;
    async fn groups(&self, ids: &[String]) -> Result<Vec<Group>>;
    async fn group_member(&self, group_id: &str, user_id: &str) -> Result<Option<GroupMember>>;
    /// Member ids, owner first, then admins, then the others, each by join time.
    async fn group_member_ids(&self, group_id: &str) -> Result<Vec<String>>;
    /// Every member's id, role and mute, in the order of [`GroupStore::group_member_ids`].
    async fn group_member_roles(&self, group_id: &str) -> Result<Vec<MemberRole>>;
    async fn group_member_count(&self, group_id: &str) -> Result<u32>;
    /// Adds members to an existing group, in one transaction: their member rows; their `sg_` conversation rows
    /// with `min_seq` = the group's current max seq + 1 (a member sees history from its join on; 0 if the group
    /// has no messages) and no read cap; and the version bumps: the group's members (insert), each new member's
    /// joined groups (insert) and conversations (insert). Members already in the group are left as they are.
    async fn add_group_members(&self, group_id: &str, members: &[GroupMember]) -> Result<MembersAdded>;
    /// Removes these members (those that are not members are ignored), in one transaction: their rows; a read
    /// cap at the group's current max seq on their `sg_` rows; and the bumps: the group's members (delete),
    /// each one's joined groups (delete) and conversations (update).
    async fn remove_group_members(&self, group_id: &str, user_ids: &[String]) -> Result<VersionHead>;
    /// Applies the `Some` fields and bumps the member list's group-info element. `NotFound` if no such group.
    async fn update_group(&self, group_id: &str, patch: &GroupPatch) -> Result<VersionHead>;
    /// Applies each patch to its member, in one transaction, one version per patch (in order), with the sort
    /// element too when a role changes. `NotFound` (and nothing changes) if one of them is not a member.
    async fn update_group_members(&self, group_id: &str, patches: &[MemberPatch]) -> Result<Vec<VersionHead>>;
    /// Makes `new_owner` the owner and gives `old_owner` `old_owner_role`, unmutes the new owner, and records
    /// the owner on the group, in one transaction (one version, with the sort element).
    async fn transfer_group_owner(
        &self,
        group_id: &str,
        old_owner: &str,
        new_owner: &str,
        old_owner_role: i32,
    ) -> Result<VersionHead>;
    /// Marks the group dismissed and removes every member as [`GroupStore::remove_group_members`] does, in one
    /// transaction. Returns the ids of the members it had.
    async fn dismiss_group(&self, group_id: &str) -> Result<Vec<String>>;
    /// One page of the groups `user_id` is in (by join time), and the total.
    async fn joined_groups(&self, user_id: &str, page: Page) -> Result<(Vec<Group>, i64)>;
    /// The ids of the groups `user_id` is in, by join time.
    async fn joined_group_ids(&self, user_id: &str) -> Result<Vec<String>>;
    /// The ids of the groups `user_id` owns or administers.
    async fn managed_group_ids(&self, user_id: &str) -> Result<Vec<String>>;
    /// One page of a group's members (owner first, then admins, then by join time), and the total.
    async fn group_members(&self, group_id: &str, page: Page) -> Result<(Vec<GroupMember>, i64)>;
    /// Like [`GroupStore::group_members`], only the members `filter` selects (and their total).
    async fn group_members_filtered(
        &self,
        group_id: &str,
        filter: &MemberFilter,
        page: Page,
    ) -> Result<(Vec<GroupMember>, i64)>;
    /// The members of `group_id` among `user_ids`.
    async fn group_members_by_id(&self, group_id: &str, user_ids: &[String]) -> Result<Vec<GroupMember>>;
    /// Stores applications, each replacing an earlier one of the same user to the same group (pending again).
    async fn put_group_requests(&self, requests: &[GroupRequest]) -> Result<()>;
    /// The applications to `group_id` of the users among `user_ids`.
    async fn group_requests_of(&self, group_id: &str, user_ids: &[String]) -> Result<Vec<GroupRequest>>;
    /// Records the answer to a pending application and, if `answer.member` is given, adds that member as
    /// [`GroupStore::add_group_members`] does, in one transaction. Returns the member list's head when a member
    /// was added. `NotFound` if there is no pending application (none, or answered meanwhile).
    async fn answer_group_request(&self, answer: &GroupAnswer) -> Result<Option<VersionHead>>;
    /// One page of the applications to the groups of `query` (which must not be empty), and the total.
    async fn group_requests_to(&self, query: &RequestQuery) -> Result<(Vec<GroupRequest>, i64)>;
    /// One page of the applications `user_id` made (to the groups of `query`, if any), and the total.
    async fn group_requests_by(&self, user_id: &str, query: &RequestQuery) -> Result<(Vec<GroupRequest>, i64)>;
    /// How many pending applications to `group_ids` were made after `after` (ms; 0: ever).
    async fn unhandled_group_requests(&self, group_ids: &[String], after: i64) -> Result<i64>;
}

/// Files: object records and multipart uploads in progress (the bytes themselves live in the object storage
/// backend, local disk or S3; this is only what points at them).
///
/// An object is a *name* (`<userID>/…`, the path of its download URL) pointing at content addressed by OpenIM's
/// hash, so several names may share one stored blob. An upload is created by `initiate`, and either completes
/// (its row goes and an object row appears, in one transaction) or expires and is swept.
#[async_trait]
pub trait ObjectStore {
    /// Records `object` under its name, replacing an earlier object of the **same user** under that name (a user
    /// may re-upload a name). `AlreadyExists` if another user holds the name: nobody overwrites another's object.
    async fn put_object(&self, object: &Object) -> Result<()>;
    async fn object(&self, name: &str) -> Result<Option<Object>>;
    /// Any one object whose content has this hash, to answer a repeated upload without transferring it again.
    async fn object_by_hash(&self, hash: &str) -> Result<Option<Object>>;
    /// `AlreadyExists` if the id is taken.
    async fn insert_upload(&self, upload: &Upload) -> Result<()>;
    async fn upload(&self, upload_id: &str) -> Result<Option<Upload>>;
    /// Ends the upload and records its object, in one transaction: deletes the upload row, then
    /// [`put_object`](Self::put_object)s. `NotFound` if the upload is gone (completed, aborted or swept
    /// meanwhile), and then nothing is recorded; `AlreadyExists` as `put_object`, and then the upload stays.
    async fn complete_upload(&self, upload_id: &str, object: &Object) -> Result<()>;
    /// Deletes the upload row; returns whether there was one.
    async fn delete_upload(&self, upload_id: &str) -> Result<bool>;
    /// Up to `limit` uploads with `expire_time <= now_ms`, soonest-expired first.
    async fn expired_uploads(&self, now_ms: i64, limit: u32) -> Result<Vec<Upload>>;
}
