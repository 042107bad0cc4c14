//! Palaver's storage.
//!
//! The server talks to storage only through the [`Store`] trait (split per domain below), so the embedded SQLite
//! store and the PostgreSQL store are interchangeable. The SQL lives here and nowhere else.
//!
//! The invariants every implementation must keep (and that `tests` check on each backend):
//! - per conversation, seqs are 1, 2, 3, … with no gap and no duplicate, however many writers race;
//! - [`MessageStore::append_message`] allocates the seq and inserts the message in one transaction, and a second
//!   append with the same `(conversation_id, client_msg_id)` returns the first one's result and stores nothing;
//! - a successful return means the message is committed (it survives a crash of the process).

mod model;
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
    /// The database failed; the message is for logs, never for clients.
    #[error("storage backend: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Backend(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// All of Palaver's storage, as one object the server holds behind an `Arc<dyn Store>`.
pub trait Store: UserStore + TokenStore + MessageStore + ConversationStore + GroupStore + Send + Sync {}
impl<T: UserStore + TokenStore + MessageStore + ConversationStore + GroupStore + Send + Sync> Store for T {}

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

#[async_trait]
pub trait MessageStore {
    /// Allocates the conversation's next seq and stores the message, in one transaction; see the crate docs.
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
}

#[async_trait]
pub trait GroupStore {
    /// Creates the group, its members and each member's `sg_` conversation row, in one transaction.
    /// `AlreadyExists` if the group id is taken.
    async fn create_group(&self, group: &Group, members: &[GroupMember]) -> Result<()>;
    async fn groups(&self, ids: &[String]) -> Result<Vec<Group>>;
    async fn group_member(&self, group_id: &str, user_id: &str) -> Result<Option<GroupMember>>;
    async fn group_member_ids(&self, group_id: &str) -> Result<Vec<String>>;
    async fn group_member_count(&self, group_id: &str) -> Result<u32>;
}
