//! What nodes say to each other over NATS: one protobuf [`Envelope`] per NATS message.
//!
//! Protobuf (prost's derive, no `.proto` file: these messages never leave the cluster) rather than JSON because
//! a delivery carries the push's protobuf payload as bytes, which JSON would have to base64.

/// One bus message: who sent it and what happened.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Envelope {
    /// The sending node's id (random per process start).
    #[prost(string, tag = "1")]
    pub node: String,
    #[prost(oneof = "Event", tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11")]
    pub event: Option<Event>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum Event {
    /// A push for some of the receiving node's users (sent to that node's subject).
    #[prost(message, tag = "2")]
    Deliver(Deliver),
    /// One user's platforms on the sending node changed (empty: the user left it). Broadcast.
    #[prost(message, tag = "3")]
    Presence(Presence),
    /// Everyone connected to the sending node: replaces what the receiver knew of that node.
    #[prost(message, tag = "4")]
    Snapshot(Snapshot),
    /// "Send me your snapshot" (after a reconnect to NATS). Broadcast.
    #[prost(message, tag = "5")]
    SnapshotRequest(SnapshotRequest),
    /// "I am alive." Broadcast every [`super::nats::HEARTBEAT`].
    #[prost(message, tag = "6")]
    Heartbeat(Heartbeat),
    /// A new login elsewhere may displace this user's connections here (multi-login policy).
    #[prost(message, tag = "7")]
    Kick(Kick),
    /// A forced logout: close the user's connections on the platform (every platform if absent), but the ones
    /// using the token kept.
    #[prost(message, tag = "8")]
    Logout(Logout),
    /// A group's membership or settings changed: drop what is cached about it. Broadcast.
    #[prost(message, tag = "9")]
    GroupChanged(GroupChanged),
    /// The sending node is back on NATS after losing it: what it published meanwhile may never have arrived,
    /// group changes included, so receivers drop their cached groups. Broadcast.
    #[prost(message, tag = "10")]
    Rejoined(Rejoined),
    /// A user's tokens were revoked: drop them from the token cache. Broadcast.
    #[prost(message, tag = "11")]
    TokensRevoked(TokensRevoked),
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Deliver {
    /// The receiving node's users to push to (may be empty: the push then only advances the conversation's
    /// order on that node, see `order.rs`).
    #[prost(string, repeated, tag = "1")]
    pub users: Vec<String>,
    #[prost(string, tag = "2")]
    pub conversation_id: String,
    /// The message's seq; 0 for an unstored push (read receipts), which is not ordered.
    #[prost(int64, tag = "3")]
    pub seq: i64,
    #[prost(int32, tag = "4")]
    pub req_identifier: i32,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    /// The frame's payload (`sdkws.PushMessages`, protobuf).
    #[prost(bytes = "vec", tag = "6")]
    pub data: Vec<u8>,
    /// Not to the connection that logged in with this token (the device that made the change); empty: none.
    #[prost(bytes = "vec", tag = "7")]
    pub except_token_hash: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Presence {
    #[prost(string, tag = "1")]
    pub user_id: String,
    #[prost(int32, repeated, tag = "2")]
    pub platforms: Vec<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Snapshot {
    #[prost(message, repeated, tag = "1")]
    pub users: Vec<Presence>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SnapshotRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Heartbeat {}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Kick {
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The platform of the new login.
    #[prost(int32, tag = "2")]
    pub platform_id: i32,
    #[prost(int32, tag = "3")]
    pub policy: i32,
    /// The new login's token hash: displaced connections' tokens are revoked unless they are this one.
    #[prost(bytes = "vec", tag = "4")]
    pub keep_token_hash: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Logout {
    #[prost(string, tag = "1")]
    pub user_id: String,
    #[prost(int32, optional, tag = "2")]
    pub platform_id: Option<i32>,
    /// The token whose connections stay (the session that changed the password); empty: none.
    #[prost(bytes = "vec", tag = "3")]
    pub keep_token_hash: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Rejoined {}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct GroupChanged {
    #[prost(string, tag = "1")]
    pub group_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TokensRevoked {
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The platform; absent: every platform.
    #[prost(int32, optional, tag = "2")]
    pub platform_id: Option<i32>,
}
