//! Rows and commands of the store, in plain Rust types (protobuf types only where the wire shape is the
//! stored shape, as for messages).

use palaver_protocol::pb::sdkws::MsgData;

/// A registered user (`sdkws.UserInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    pub nickname: String,
    pub face_url: String,
    pub ex: String,
    /// Milliseconds since the Unix epoch.
    pub create_time: i64,
    pub app_manger_level: i32,
    pub global_recv_msg_opt: i32,
}

/// A partial update of a user: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub user_id: String,
    pub nickname: Option<String>,
    pub face_url: Option<String>,
    pub ex: Option<String>,
    pub global_recv_msg_opt: Option<i32>,
}

/// OpenIM's token states; a token that is not `Normal` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Normal = 0,
    /// Replaced by a newer login or forcibly logged out.
    Kicked = 2,
}

impl TokenStatus {
    pub fn from_i64(v: i64) -> Self {
        if v == 0 { Self::Normal } else { Self::Kicked }
    }
}

/// An issued token. Only its SHA-256 is stored; the token itself is given to the client once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub hash: Vec<u8>,
    pub user_id: String,
    pub platform_id: i32,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    pub status: TokenStatus,
}

/// What a new message's conversation row looks like for one of its parties, created if missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRef {
    pub owner_user_id: String,
    pub conversation_id: String,
    pub conversation_type: i32,
    /// The peer, for 1:1 conversations.
    pub user_id: String,
    pub group_id: String,
}

impl ConversationRef {
    /// `owner`'s row of `conversation_id`, a conversation of `conversation_type` with `peer` (not a group's).
    pub fn with_peer(owner: &str, peer: &str, conversation_id: &str, conversation_type: i32) -> Self {
        Self {
            owner_user_id: owner.into(),
            conversation_id: conversation_id.into(),
            conversation_type,
            user_id: peer.into(),
            group_id: String::new(),
        }
    }
}

/// A message to append. `data` is complete except for `seq`, which the store assigns.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: String,
    pub data: MsgData,
    /// Conversation rows to create (if missing) with the message, durable with it and visible to every read that
    /// begins after it is acknowledged: both parties of a 1:1 chat on its first message. Group rows are created
    /// when members join, not per message.
    pub ensure_conversations: Vec<ConversationRef>,
    /// Whose read cursor moves to the new seq (the sender's: one's own message is read).
    pub reader: Option<String>,
    /// Checked by the store as it appends, after the clientMsgID lookup (a resend of a message stored before a
    /// block still gets its original answer): the first that fails refuses the append with
    /// [`StoreError::Refused`](crate::StoreError::Refused) and nothing is stored. By the store rather than before
    /// the call, so the check and the store are ordered against other writes (on PostgreSQL in the append's
    /// transaction; on SQLite against the snapshot its batch read, so a block committed later is ordered after
    /// the message), and the check costs no round trip.
    pub preconditions: Vec<Precondition>,
}

/// A condition an append requires (see [`NewMessage::preconditions`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Precondition {
    /// The user is registered.
    UserExists(String),
    /// `owner` has not blocked `other`.
    NotBlocked { owner: String, other: String },
    /// `friend` is in `owner`'s friend list (for servers where messaging requires friendship).
    IsFriendOf { owner: String, friend: String },
    /// `user` receives messages in `conversation_id` (OpenIM's receive options, upstream
    /// `modifyMessageByUserMessageReceiveOpt`): refused when its global option, or its option for this
    /// conversation, is "do not receive" (1), the latter except for read receipts (`read_receipt`). When either
    /// is "receive without notification" (2), the message is stored with its `offlinePush` option off, so no
    /// offline push announces it.
    Receives { user: String, conversation_id: String, read_receipt: bool },
}

/// What a recipient's receive options make of a message sent to it ([`Precondition::Receives`]). Both stores
/// read the two options and leave the decision to [`Reception::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reception {
    /// Not stored: the sender is refused.
    Refused,
    /// Stored and delivered, without offline push.
    Quiet,
    /// Stored and delivered as usual.
    Normal,
}

impl Reception {
    /// OpenIM's rule (upstream `modifyMessageByUserMessageReceiveOpt`) for a user whose global option is
    /// `global` and whose option for the conversation is `own` (`None`: it has no row for it yet). Refused when
    /// the global option is "do not receive", or the conversation's is and the message is not a read receipt;
    /// quiet when either is "receive without notification".
    pub fn decide(global: i32, own: Option<i32>, read_receipt: bool) -> Self {
        use palaver_protocol::constant::recv_msg_opt::{NOT_RECEIVE, RECEIVE_NOT_NOTIFY};
        if global == NOT_RECEIVE || (own == Some(NOT_RECEIVE) && !read_receipt) {
            Self::Refused
        } else if global == RECEIVE_NOT_NOTIFY || own == Some(RECEIVE_NOT_NOTIFY) {
            Self::Quiet
        } else {
            Self::Normal
        }
    }

    /// Applies the decision to the message about to be stored: `false` if it is refused; a quiet one gets its
    /// `offlinePush` option turned off, so no offline push announces it.
    pub fn admit(self, data: &mut MsgData) -> bool {
        match self {
            Self::Refused => false,
            Self::Quiet => {
                data.options.insert(palaver_protocol::constant::options::OFFLINE_PUSH.to_string(), false);
                true
            }
            Self::Normal => true,
        }
    }
}

/// The stored message and whether it was stored by this call (`false`: a resend of a known clientMsgID,
/// answered with the original).
#[derive(Debug, Clone)]
pub struct Appended {
    pub data: MsgData,
    pub created: bool,
}

/// A conversation's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationSeq {
    pub conversation_id: String,
    pub max_seq: i64,
    /// Send time (ms) of the newest message, 0 if none.
    pub max_seq_time: i64,
}

/// One user's view of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserConversation {
    pub owner_user_id: String,
    pub conversation_id: String,
    pub conversation_type: i32,
    pub user_id: String,
    pub group_id: String,
    pub recv_msg_opt: i32,
    pub is_pinned: bool,
    pub is_private_chat: bool,
    pub burn_duration: i32,
    pub group_at_type: i32,
    pub attached_info: String,
    pub ex: String,
    /// Lowest seq this user may see (0: all). Set on joining a group, and by clearing history.
    pub min_seq: i64,
    pub has_read_seq: i64,
    /// The conversation's max seq (from its counter, not per user).
    pub max_seq: i64,
    pub max_seq_time: i64,
    /// The highest seq this user may read (`None`: no cap): set when the user left the group, so a former
    /// member keeps the history it had and sees nothing after (`Some(0)`: nothing).
    pub max_seq_cap: Option<i64>,
}

/// A group (`sdkws.GroupInfo` minus the derived member count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub group_id: String,
    pub group_name: String,
    pub notification: String,
    pub introduction: String,
    pub face_url: String,
    pub owner_user_id: String,
    pub creator_user_id: String,
    pub create_time: i64,
    pub ex: String,
    pub status: i32,
    pub group_type: i32,
    pub need_verification: i32,
    pub look_member_info: i32,
    pub apply_member_friend: i32,
    /// When the announcement (`notification`) was last set (ms), and by whom.
    pub notification_update_time: i64,
    pub notification_user_id: String,
}

/// A member of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMember {
    pub group_id: String,
    pub user_id: String,
    pub nickname: String,
    pub face_url: String,
    pub role_level: i32,
    pub join_time: i64,
    pub join_source: i32,
    pub inviter_user_id: String,
    pub operator_user_id: String,
    pub mute_end_time: i64,
    pub ex: String,
}

/// A page of a listing: OpenIM's `pagination{pageNumber (1-based), showNumber}` as offset and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

impl Page {
    /// Everything (for internal use; client-facing listings are always bounded by the services).
    pub const ALL: Page = Page { offset: 0, limit: i64::MAX };
}

/// A partial update of one user's conversation row: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationPatch {
    pub conversation_id: String,
    /// Used only when the row is created by this update.
    pub conversation_type: i32,
    pub user_id: String,
    pub group_id: String,
    pub recv_msg_opt: Option<i32>,
    pub is_pinned: Option<bool>,
    pub is_private_chat: Option<bool>,
    pub burn_duration: Option<i32>,
    pub group_at_type: Option<i32>,
    pub attached_info: Option<String>,
    pub ex: Option<String>,
    pub min_seq: Option<i64>,
}

/// One direction of a friendship: `friend_user_id` is in `owner_user_id`'s list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Friend {
    pub owner_user_id: String,
    pub friend_user_id: String,
    pub remark: String,
    pub create_time: i64,
    pub add_source: i32,
    pub operator_user_id: String,
    pub ex: String,
    pub is_pinned: bool,
}

/// A partial update of friend rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FriendPatch {
    pub remark: Option<String>,
    pub is_pinned: Option<bool>,
    pub ex: Option<String>,
}

/// A friend request and, once answered, its answer (`handle_result`: 0 pending, 1 accepted, -1 refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FriendRequest {
    pub from_user_id: String,
    pub to_user_id: String,
    pub handle_result: i32,
    pub req_msg: String,
    pub create_time: i64,
    pub handler_user_id: String,
    pub handle_msg: String,
    pub handle_time: i64,
    pub ex: String,
}

/// The answer to the pending request `from_user_id → to_user_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FriendAnswer {
    pub from_user_id: String,
    pub to_user_id: String,
    pub accepted: bool,
    pub handle_msg: String,
    pub handler_user_id: String,
    pub time: i64,
}

/// `blocked_user_id` is on `owner_user_id`'s blacklist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Black {
    pub owner_user_id: String,
    pub block_user_id: String,
    pub create_time: i64,
    pub add_source: i32,
    pub operator_user_id: String,
    pub ex: String,
}

/// The lists clients sync incrementally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionKind {
    /// A user's friends; elements are friend user ids.
    Friends,
    /// The groups a user is in; elements are group ids.
    JoinedGroups,
    /// A user's conversations; elements are conversation ids.
    Conversations,
    /// A group's members; elements are user ids, and the empty id stands for "the group's own info changed".
    GroupMembers,
}

impl VersionKind {
    /// The lists every user has. They are created with the user, so that a device's first sync only reads them.
    pub const OF_A_USER: [Self; 3] = [Self::Friends, Self::JoinedGroups, Self::Conversations];

    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Friends => "friends",
            Self::JoinedGroups => "joined_groups",
            Self::Conversations => "conversations",
            Self::GroupMembers => "group_members",
        }
    }
}

/// A fresh opaque version id for a new list: 24 hex digits, the shape of the Mongo ObjectIDs OpenIM uses (clients
/// only compare them, but an upstream-shaped id costs nothing). Both stores make one on every raise (used only if
/// the list is new), twice per new conversation on SQLite's append path: one allocation, not one per byte.
pub(crate) fn new_version_id() -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 12] = rand::random();
    let mut id = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// How an element changed (OpenIM's `VersionState*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Insert = 1,
    Delete = 2,
    Update = 3,
}

/// A list's identity and current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionHead {
    /// Opaque; changes only if the list is recreated, which forces clients to re-list.
    pub version_id: String,
    pub version: i64,
}

/// What changed since a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionDelta {
    pub head: VersionHead,
    /// Element id and its latest change, oldest change first.
    pub changes: Vec<(String, Change)>,
    /// False when the client must re-list instead (too many changes, or the log was compacted past `since`).
    pub complete: bool,
}

/// A person's password account (`/account/*`), beside the user row it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    /// The password's argon2id hash as a PHC string; never the password itself.
    pub password_hash: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When the password was last set.
    pub updated_at: i64,
}

/// How much the server holds, for the admin console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryCounts {
    pub users: i64,
    /// Users with a password account.
    pub accounts: i64,
    pub groups: i64,
    /// Stored messages over all conversations (the sum of their max seqs).
    pub messages: i64,
}

/// A revoke recorded for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRevoke {
    pub conversation_id: String,
    pub seq: i64,
    pub revoker_user_id: String,
    /// The revoker's role when it revoked: its group role level in groups, its app manager level otherwise.
    pub revoker_role: i32,
    pub revoker_nickname: String,
    /// Milliseconds since the Unix epoch.
    pub revoke_time: i64,
}

/// What one user sees changed about some messages of a conversation: which were revoked (for everyone), and
/// which are deleted for this user (by itself, or for everyone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMarks {
    pub revokes: Vec<MessageRevoke>,
    pub deleted: Vec<i64>,
}

/// A user command (OpenIM's per-user app records). `create_time` is in seconds, as upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserCommand {
    pub user_id: String,
    pub command_type: i32,
    pub uuid: String,
    pub value: String,
    pub ex: String,
    pub create_time: i64,
}

/// A log file a client uploaded and reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLog {
    pub log_id: String,
    pub user_id: String,
    pub platform: String,
    pub url: String,
    pub filename: String,
    pub app_framework: String,
    pub version: String,
    pub ex: String,
    /// Milliseconds since the Unix epoch.
    pub create_time: i64,
}

/// The version-log element that stands for "the group's own information changed" in a group's member list.
pub const GROUP_INFO_ELEMENT: &str = "";
/// The version-log element that stands for "the members' order changed" (a role change), OpenIM's
/// `VersionSortChangeID`: a client that sees it re-fetches the member id list.
pub const SORT_ELEMENT: &str = "____S_O_R_T_I_D____";

/// A partial update of a group: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPatch {
    pub group_name: Option<String>,
    pub notification: Option<String>,
    pub notification_update_time: Option<i64>,
    pub notification_user_id: Option<String>,
    pub introduction: Option<String>,
    pub face_url: Option<String>,
    pub ex: Option<String>,
    pub need_verification: Option<i32>,
    pub look_member_info: Option<i32>,
    pub apply_member_friend: Option<i32>,
    pub status: Option<i32>,
}

impl UserConversation {
    /// The highest seq this user may read: the conversation's max seq, or less if capped.
    pub fn visible_max_seq(&self) -> i64 {
        self.max_seq_cap.map_or(self.max_seq, |cap| self.max_seq.min(cap))
    }
}

impl GroupPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A partial update of one member: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPatch {
    pub user_id: String,
    pub nickname: Option<String>,
    pub face_url: Option<String>,
    pub ex: Option<String>,
    pub role_level: Option<i32>,
    /// Milliseconds since the Unix epoch; 0 unmutes.
    pub mute_end_time: Option<i64>,
}

/// What the message path needs to know of one member: its role (mutes of a whole group spare owners and
/// admins) and its own mute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberRole {
    pub user_id: String,
    pub role_level: i32,
    pub mute_end_time: i64,
}

/// Which members a listing returns: those with one of `roles` (all if empty) whose user id or group nickname
/// contains `keyword` (all if empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFilter {
    pub roles: Vec<i32>,
    pub keyword: String,
}

/// A user's application to join a group (`handle_result`: 0 pending, 1 accepted, -1 refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRequest {
    pub group_id: String,
    pub user_id: String,
    pub handle_result: i32,
    pub req_msg: String,
    pub handle_msg: String,
    /// Milliseconds since the Unix epoch.
    pub req_time: i64,
    pub handle_user_id: String,
    pub handle_time: i64,
    pub ex: String,
    pub join_source: i32,
    /// The member whose invitation this is, when an invitation needed approval; empty for an application.
    pub inviter_user_id: String,
}

/// The answer to the pending application of `user_id` to `group_id`; `member` is the row to add when it is
/// accepted (and the user is not in the group yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupAnswer {
    pub group_id: String,
    pub user_id: String,
    pub handle_result: i32,
    pub handle_msg: String,
    pub handle_user_id: String,
    pub handle_time: i64,
    pub member: Option<GroupMember>,
}

/// Which applications a listing returns: to (or of) these groups (all if empty), with one of these results
/// (all if empty), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestQuery {
    pub group_ids: Vec<String>,
    pub handle_results: Vec<i32>,
    pub page: Page,
}

/// Members added to a group: who was new (members already in it are skipped), and the member list's version
/// after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersAdded {
    pub inserted: Vec<String>,
    pub head: VersionHead,
}

/// A stored file: a name (the path of its download URL, `<userID>/…`) pointing at content-addressed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub name: String,
    /// Who stored it: the only user who may store another object under the same name.
    pub user_id: String,
    /// OpenIM's content hash: md5 (lowercase hex) of the comma-joined md5 (lowercase hex) of each part.
    pub hash: String,
    /// Where the bytes are in the object storage backend (a file under the data folder, or an S3 key).
    pub storage_key: String,
    pub size: i64,
    pub content_type: String,
    /// OpenIM's `cause` (`msg-picture`, `msg-voice`, …; may be empty).
    pub cause: String,
    /// Milliseconds since the Unix epoch.
    pub create_time: i64,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Palaver's id for it (what the client sends back), not the backend's.
    pub upload_id: String,
    pub user_id: String,
    /// The content hash the client announced (see [`Object::hash`]); completion checks it.
    pub hash: String,
    pub size: i64,
    /// Every part but the last is exactly this long.
    pub part_size: i64,
    pub part_count: i32,
    /// Where the assembled bytes go.
    pub storage_key: String,
    /// The backend's own id for the upload (S3's `UploadId`); empty where the backend needs none.
    pub backend_upload_id: String,
    /// Milliseconds since the Unix epoch after which the upload is abandoned and may be swept.
    pub expire_time: i64,
    pub create_time: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_protocol::constant::{
        options::OFFLINE_PUSH,
        recv_msg_opt::{NOT_RECEIVE, RECEIVE, RECEIVE_NOT_NOTIFY},
    };

    #[test]
    fn reception_follows_both_receive_options() {
        use Reception::{Normal, Quiet, Refused};
        // (global, own, read receipt) → decision.
        let cases = [
            ((RECEIVE, None, false), Normal),
            ((RECEIVE, Some(RECEIVE), false), Normal),
            // "Do not receive" globally refuses everything, read receipts included.
            ((NOT_RECEIVE, None, false), Refused),
            ((NOT_RECEIVE, Some(RECEIVE), true), Refused),
            ((NOT_RECEIVE, Some(RECEIVE_NOT_NOTIFY), false), Refused),
            // For one conversation: everything but read receipts, which arrive quietly or not.
            ((RECEIVE, Some(NOT_RECEIVE), false), Refused),
            ((RECEIVE, Some(NOT_RECEIVE), true), Normal),
            ((RECEIVE_NOT_NOTIFY, Some(NOT_RECEIVE), false), Refused),
            ((RECEIVE_NOT_NOTIFY, Some(NOT_RECEIVE), true), Quiet),
            // "Receive without notification" on either level makes it quiet.
            ((RECEIVE_NOT_NOTIFY, None, false), Quiet),
            ((RECEIVE_NOT_NOTIFY, Some(RECEIVE), false), Quiet),
            ((RECEIVE, Some(RECEIVE_NOT_NOTIFY), false), Quiet),
            ((RECEIVE, Some(RECEIVE_NOT_NOTIFY), true), Quiet),
        ];
        for ((global, own, read_receipt), want) in cases {
            assert_eq!(
                Reception::decide(global, own, read_receipt),
                want,
                "global {global}, own {own:?}, receipt {read_receipt}"
            );
        }
    }

    #[test]
    fn admitting_turns_offline_push_off_only_when_quiet() {
        let with_push =
            || MsgData { options: [(OFFLINE_PUSH.to_string(), true)].into_iter().collect(), ..MsgData::default() };
        let mut msg = with_push();
        assert!(!Reception::Refused.admit(&mut msg));
        assert!(msg.options[OFFLINE_PUSH], "a refused message is left as it was");
        let mut msg = with_push();
        assert!(Reception::Normal.admit(&mut msg));
        assert!(msg.options[OFFLINE_PUSH]);
        let mut msg = with_push();
        assert!(Reception::Quiet.admit(&mut msg));
        assert!(!msg.options[OFFLINE_PUSH]);
        let mut msg = MsgData::default();
        assert!(Reception::Quiet.admit(&mut msg));
        assert_eq!(msg.options.get(OFFLINE_PUSH), Some(&false), "set even when the sender left it out");
    }

    #[test]
    fn version_ids_are_24_lowercase_hex_digits_and_fresh() {
        let (a, b) = (new_version_id(), new_version_id());
        assert_eq!(a.len(), 24, "{a}");
        assert!(a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{a}");
        assert_ne!(a, b);
    }
}
