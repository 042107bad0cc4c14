//! Protobuf messages generated from the project's own `proto/openim/*.proto`, wire-compatible with OpenIM v3.8
//! (same packages, message names and field numbers).
//!
//! Each module is one protobuf package (`openim.sdkws` → [`sdkws`], the wrapper package `openim.protobuf` →
//! [`protobuf`]). Field names are prost's snake_case of the `.proto` names (`sendID` → `send_id`,
//! `clientMsgID` → `client_msg_id`, `Msgs` → `msgs`).
//!
//! Every message except the wrappers derives `serde::Serialize`/`Deserialize` with Go `encoding/json` semantics
//! (`.proto` names as keys, `null` = default, `bytes` as base64); the wrappers are bare scalars or `null`
//! (see [`crate::gojson`]). Binary (de)coding is [`prost::Message`].

macro_rules! generated {
    ($(#[$doc:meta] $name:ident => $file:literal;)*) => {$(
        #[$doc]
        #[allow(
            clippy::all,
            clippy::pedantic,
            unreachable_pub,
            missing_docs,
            rustdoc::broken_intra_doc_links,
            rustdoc::invalid_html_tags
        )]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        }
    )*};
}

generated! {
    /// `openim.sdkws`: messages shared by the gateway and the HTTP API (`MsgData`, `PullMsgs`, `UserInfo`, …).
    sdkws => "openim.sdkws.rs";
    /// `openim.msg`: message service requests (send, pull by seqs, read state).
    msg => "openim.msg.rs";
    /// `openim.push`: push service requests.
    push => "openim.push.rs";
    /// `openim.auth`: token requests.
    auth => "openim.auth.rs";
    /// `openim.user`: user service requests.
    user => "openim.user.rs";
    /// `openim.group`: group service requests.
    group => "openim.group.rs";
    /// `openim.conversation`: conversation service requests.
    conversation => "openim.conversation.rs";
    /// `openim.relation`: friend and blacklist requests.
    relation => "openim.relation.rs";
    /// `openim.third`: the object (file) API `/object/*`, push tokens, badges and log uploads.
    third => "openim.third.rs";
    /// `openim.jssdk`: the pure-JS SDK's aggregate conversation queries (`/jssdk/*`).
    jssdk => "openim.jssdk.rs";
    /// `openim.protobuf`: nullable scalar wrappers; in JSON a bare scalar or `null`.
    protobuf => "openim.protobuf.rs";
}
