//! Numeric constants of the OpenIM protocol (upstream `protocol/constant` and `msggateway/constant.go`).

/// Gateway request identifiers (`Req.ReqIdentifier`). The SDK and the server name 1002 and 1005 differently;
/// these names say what the request does.
pub mod req {
    /// `GetMaxSeqReq` → `GetMaxSeqResp`: max and min seq of every conversation of the user.
    pub const GET_NEWEST_SEQ: i32 = 1001;
    /// `PullMessageBySeqsReq` → `PullMessageBySeqsResp`: the last `num` messages of seq ranges.
    pub const PULL_MSG_BY_RANGE: i32 = 1002;
    /// bare `MsgData` → `SendMsgResp`.
    pub const SEND_MSG: i32 = 1003;
    /// RTC signalling; unused by the SDKs.
    pub const SEND_SIGNAL_MSG: i32 = 1004;
    /// `GetSeqMessageReq` → `GetSeqMessageResp`: messages by explicit seqs (history on a fresh device).
    pub const PULL_MSG_BY_SEQ_LIST: i32 = 1005;
    /// `GetConversationsHasReadAndMaxSeqReq` → `…Resp`: drives unread counts.
    pub const GET_CONV_MAX_READ_SEQ: i32 = 1006;
    /// `GetLastMessageReq` → `GetLastMessageResp`.
    pub const PULL_CONV_LAST_MESSAGE: i32 = 1007;
    /// Server → client: `PushMessages`.
    pub const PUSH_MSG: i32 = 2001;
    /// Server → client: this connection was kicked; the server closes it next.
    pub const KICK_ONLINE_MSG: i32 = 2002;
    /// `DelUserPushTokenReq` → empty; the server closes the connection after replying.
    pub const LOGOUT_MSG: i32 = 2003;
    /// `SetAppBackgroundStatusReq` → empty.
    pub const SET_BACKGROUND_STATUS: i32 = 2004;
    /// `SubUserOnlineStatus` → `SubUserOnlineStatusTips`; also pushed unsolicited.
    pub const SUB_USER_ONLINE_STATUS: i32 = 2005;
    /// Server → client: a frame could not be decoded (upstream's `WSDataError`; no SDK handler, but it names
    /// the problem in the client's log before the server closes the connection).
    pub const DATA_ERROR: i32 = 3001;
}

/// `MsgData.sessionType`.
pub mod session_type {
    pub const SINGLE_CHAT: i32 = 1;
    /// "Write diffusion" group chat; never used by v3 clients.
    pub const WRITE_GROUP_CHAT: i32 = 2;
    /// The group chat every v3 client uses ("super group", read diffusion).
    pub const READ_GROUP_CHAT: i32 = 3;
    pub const NOTIFICATION_CHAT: i32 = 4;
}

/// `MsgData.msgFrom`.
pub mod msg_from {
    pub const USER: i32 = 100;
    pub const SYSTEM: i32 = 200;
}

/// `MsgData.status` as the server stores it.
pub mod msg_status {
    pub const SENDING: i32 = 1;
    pub const SUCCESS: i32 = 2;
    pub const FAILED: i32 = 3;
    pub const DELETED: i32 = 4;
}

/// `MsgData.contentType` values the server itself cares about.
pub mod content_type {
    pub const TEXT: i32 = 101;
    pub const PICTURE: i32 = 102;
    pub const VOICE: i32 = 103;
    pub const VIDEO: i32 = 104;
    pub const FILE: i32 = 105;
    pub const AT_TEXT: i32 = 106;
    pub const CUSTOM: i32 = 110;
    pub const TYPING: i32 = 113;
    /// First content type of server-generated notifications.
    pub const NOTIFICATION_BEGIN: i32 = 1000;
    pub const NOTIFICATION_END: i32 = 5000;
    /// Group notifications (1501–1520), each carrying its `*Tips` message.
    pub const GROUP_CREATED: i32 = 1501;
    pub const GROUP_INFO_SET: i32 = 1502;
    pub const JOIN_GROUP_APPLICATION: i32 = 1503;
    pub const MEMBER_QUIT: i32 = 1504;
    pub const GROUP_APPLICATION_ACCEPTED: i32 = 1505;
    pub const GROUP_APPLICATION_REJECTED: i32 = 1506;
    pub const GROUP_OWNER_TRANSFERRED: i32 = 1507;
    pub const MEMBER_KICKED: i32 = 1508;
    pub const MEMBER_INVITED: i32 = 1509;
    pub const MEMBER_ENTER: i32 = 1510;
    pub const GROUP_DISMISSED: i32 = 1511;
    pub const GROUP_MEMBER_MUTED: i32 = 1512;
    pub const GROUP_MEMBER_CANCEL_MUTED: i32 = 1513;
    pub const GROUP_MUTED: i32 = 1514;
    pub const GROUP_CANCEL_MUTED: i32 = 1515;
    pub const GROUP_MEMBER_INFO_SET: i32 = 1516;
    pub const GROUP_MEMBER_SET_TO_ADMIN: i32 = 1517;
    pub const GROUP_MEMBER_SET_TO_ORDINARY: i32 = 1518;
    pub const GROUP_INFO_SET_ANNOUNCEMENT: i32 = 1519;
    pub const GROUP_INFO_SET_NAME: i32 = 1520;
    pub const HAS_READ_RECEIPT: i32 = 2200;

    /// Friend notifications: the SDK hands 1201..=1210 to its relation module.
    pub const FRIEND_APPLICATION_APPROVED: i32 = 1201;
    pub const FRIEND_APPLICATION_REJECTED: i32 = 1202;
    pub const FRIEND_APPLICATION: i32 = 1203;
    pub const FRIEND_ADDED: i32 = 1204;
    pub const FRIEND_DELETED: i32 = 1205;
    pub const FRIEND_REMARK_SET: i32 = 1206;
    pub const BLACK_ADDED: i32 = 1207;
    pub const BLACK_DELETED: i32 = 1208;
    pub const FRIEND_INFO_UPDATED: i32 = 1209;
    pub const FRIENDS_INFO_UPDATE: i32 = 1210;
    /// A user's conversation settings changed (its devices re-sync conversations).
    pub const CONVERSATION_CHANGE: i32 = 1300;
    /// User notifications: the SDK hands 1302..=1398 to its user module.
    pub const USER_INFO_UPDATED: i32 = 1303;
    pub const USER_STATUS_CHANGE: i32 = 1304;
    pub const USER_COMMAND_ADD: i32 = 1305;
    pub const USER_COMMAND_DELETE: i32 = 1306;
    pub const USER_COMMAND_UPDATE: i32 = 1307;
    pub const USER_SUBSCRIBE_ONLINE_STATUS: i32 = 1308;
    pub const CONVERSATION_PRIVATE_CHAT: i32 = 1701;
    pub const CLEAR_CONVERSATION: i32 = 1703;
    /// A revoked message: the revoke notification, and what the revoked message itself becomes in pulls.
    pub const MSG_REVOKE: i32 = 2101;
    pub const DELETE_MSGS: i32 = 2102;
}

/// `recvMsgOpt` of a user (global) or of one of its conversations.
pub mod recv_msg_opt {
    pub const RECEIVE: i32 = 0;
    /// Messages are refused at send time (the sender gets an error).
    pub const NOT_RECEIVE: i32 = 1;
    /// Messages arrive, without offline push.
    pub const RECEIVE_NOT_NOTIFY: i32 = 2;
}

/// `handleResult` of a friend request.
pub mod friend_response {
    pub const NOT_HANDLED: i32 = 0;
    pub const AGREE: i32 = 1;
    pub const REFUSE: i32 = -1;
}

/// `addSource` of a friendship.
pub mod friend_source {
    pub const IMPORT: i32 = 1;
    pub const APPLY: i32 = 2;
}

/// Keys of `MsgData.options`. A missing key means `true`.
pub mod options {
    pub const HISTORY: &str = "history";
    pub const PERSISTENT: &str = "persistent";
    pub const OFFLINE_PUSH: &str = "offlinePush";
    pub const UNREAD_COUNT: &str = "unreadCount";
    pub const CONVERSATION_UPDATE: &str = "conversationUpdate";
    pub const SENDER_SYNC: &str = "senderSync";
    pub const NOT_PRIVATE: &str = "notPrivate";
    pub const SENDER_CONVERSATION_UPDATE: &str = "senderConversationUpdate";
    pub const IS_NOT_NOTIFICATION: &str = "isNotNotification";
    pub const IS_SEND_MSG: &str = "isSendMsg";

    /// OpenIM's rule: an option is on unless explicitly set to `false`.
    pub fn is_on(options: &std::collections::HashMap<String, bool>, key: &str) -> bool {
        options.get(key).copied().unwrap_or(true)
    }
}

/// Platform ids (`protocol/constant/platform_id_to_name.go`).
pub mod platform {
    pub const IOS: i32 = 1;
    pub const ANDROID: i32 = 2;
    pub const WINDOWS: i32 = 3;
    pub const OSX: i32 = 4;
    pub const WEB: i32 = 5;
    pub const MINI_WEB: i32 = 6;
    pub const LINUX: i32 = 7;
    pub const ANDROID_PAD: i32 = 8;
    pub const IPAD: i32 = 9;
    pub const ADMIN: i32 = 10;
    pub const HARMONY_OS: i32 = 11;

    /// Every platform id OpenIM knows.
    pub const ALL: &[i32] = &[IOS, ANDROID, WINDOWS, OSX, WEB, MINI_WEB, LINUX, ANDROID_PAD, IPAD, ADMIN, HARMONY_OS];

    /// The platform's name, or `None` for an id OpenIM does not know (which the gateway refuses).
    pub fn name(id: i32) -> Option<&'static str> {
        Some(match id {
            IOS => "IOS",
            ANDROID => "Android",
            WINDOWS => "Windows",
            OSX => "OSX",
            WEB => "Web",
            MINI_WEB => "MiniWeb",
            LINUX => "Linux",
            ANDROID_PAD => "APad",
            IPAD => "IPad",
            ADMIN => "Admin",
            HARMONY_OS => "HarmonyOS",
            _ => return None,
        })
    }
}

/// Group member roles (`roleLevel`).
pub mod role_level {
    pub const OWNER: i32 = 100;
    pub const ADMIN: i32 = 60;
    pub const ORDINARY: i32 = 20;
}

/// Group status.
pub mod group_status {
    pub const OK: i32 = 0;
    pub const BAN_CHAT: i32 = 1;
    pub const DISMISSED: i32 = 2;
    pub const MUTED: i32 = 3;
}

/// How a member joined a group.
pub mod join_source {
    pub const BY_ADMIN: i32 = 1;
    pub const BY_INVITATION: i32 = 2;
    pub const BY_SEARCH: i32 = 3;
    pub const BY_QR_CODE: i32 = 4;
}

/// How users get into a group (`GroupInfo.needVerification`).
pub mod need_verification {
    /// Applications need an owner's or admin's approval; invitations by any member go straight in.
    pub const APPLY_NEEDS_APPROVAL: i32 = 0;
    /// Everyone needs approval, except users invited by the owner or an admin.
    pub const ALL_NEED_APPROVAL: i32 = 1;
    /// Anyone may join directly.
    pub const DIRECT: i32 = 2;
}

/// A user's standing in the app (`GroupMemberFullInfo.appMangerLevel`).
pub mod app_manager_level {
    pub const ORDINARY: i32 = 1;
    pub const ADMIN: i32 = 2;
}

/// The answer to a join application (`handleResult`).
pub mod group_response {
    pub const PENDING: i32 = 0;
    pub const AGREE: i32 = 1;
    pub const REFUSE: i32 = -1;
}

/// Multi-login policies (`multiLogin.policy` upstream).
pub mod multi_login {
    /// Every login stays online.
    pub const NO_KICK: i32 = 0;
    /// A new login on the same platform kicks the old one (Palaver's default).
    pub const SAME_PLATFORM_KICK: i32 = 1;
    /// A new login in the same class of platform (mobile, PC, web…) kicks the old one.
    pub const SAME_CLASS_KICK: i32 = 4;
    /// One PC-class and one other login may coexist.
    pub const PC_AND_OTHER: i32 = 5;
}

/// The user id OpenIM's tools and tests use for the administrator.
pub const ADMIN_USER_ID: &str = "imAdmin";

/// Largest gateway frame the server reads (upstream `maxMessageSize`).
pub const MAX_GATEWAY_FRAME: usize = 51_200;
