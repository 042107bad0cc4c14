//! OpenIM's error codes (`openimsdk/tools/errs`, `open-im-server/pkg/common/servererrs`, and for accounts
//! `openimsdk/chat`'s `pkg/eerrs`; 29xxx are Palaver's own), with the message text
//! upstream sends beside each, so SDKs and the people reading their logs see what they would see upstream.

/// One OpenIM error code. `code()` is what goes on the wire as `errCode`; `default_msg()` as `errMsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrCode {
    ServerInternal,
    Args,
    NoPermission,
    DuplicateKey,
    RecordNotFound,
    UserIdNotFound,
    RegisteredAlready,
    GroupIdNotFound,
    GroupIdExisted,
    NotInGroupYet,
    DismissedAlready,
    GroupTypeNotSupport,
    GroupRequestHandled,
    CanNotAddYourself,
    BlockedByPeer,
    NotPeersFriend,
    RelationshipAlready,
    FriendRequestHandled,
    MessageHasReadDisable,
    MutedInGroup,
    MutedGroup,
    MsgAlreadyRevoke,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenNotValidYet,
    TokenUnknown,
    TokenKicked,
    TokenNotExist,
    ConnOverMaxNumLimit,
    ConnArgs,
    PushMsg,
    FileUploadedExpired,
    Database,
    Network,
    Data,
    /// Wrong user id or password at `/account/login` (OpenIM chat's `ErrPassword`).
    Password,
    /// The account is blocked by the operator (OpenIM chat's `ErrForbidden`).
    Forbidden,
    /// Palaver's own: too many failed logins for this account or from this address; the detail says when to
    /// try again.
    TooManyLoginAttempts,
}

impl ErrCode {
    /// The numeric code sent as `errCode`.
    pub const fn code(self) -> i32 {
        match self {
            Self::ServerInternal => 500,
            Self::Args => 1001,
            Self::NoPermission => 1002,
            Self::DuplicateKey => 1003,
            Self::RecordNotFound => 1004,
            Self::UserIdNotFound => 1101,
            Self::RegisteredAlready => 1102,
            Self::GroupIdNotFound => 1201,
            Self::GroupIdExisted => 1202,
            Self::NotInGroupYet => 1203,
            Self::DismissedAlready => 1204,
            Self::GroupTypeNotSupport => 1205,
            Self::GroupRequestHandled => 1206,
            Self::CanNotAddYourself => 1301,
            Self::BlockedByPeer => 1302,
            Self::NotPeersFriend => 1303,
            Self::RelationshipAlready => 1304,
            Self::FriendRequestHandled => 1305,
            Self::MessageHasReadDisable => 1401,
            Self::MutedInGroup => 1402,
            Self::MutedGroup => 1403,
            Self::MsgAlreadyRevoke => 1404,
            Self::TokenExpired => 1501,
            Self::TokenInvalid => 1502,
            Self::TokenMalformed => 1503,
            Self::TokenNotValidYet => 1504,
            Self::TokenUnknown => 1505,
            Self::TokenKicked => 1506,
            Self::TokenNotExist => 1507,
            Self::ConnOverMaxNumLimit => 1601,
            Self::ConnArgs => 1602,
            Self::PushMsg => 1603,
            Self::FileUploadedExpired => 1701,
            Self::Database => 90002,
            Self::Network => 90004,
            Self::Data => 90007,
            Self::Password => 20001,
            Self::Forbidden => 20012,
            Self::TooManyLoginAttempts => 29001,
        }
    }

    /// The `errMsg` upstream sends with this code.
    pub const fn default_msg(self) -> &'static str {
        match self {
            Self::ServerInternal => "ServerInternalError",
            Self::Args => "ArgsError",
            Self::NoPermission => "NoPermissionError",
            Self::DuplicateKey => "DuplicateKeyError",
            Self::RecordNotFound => "RecordNotFoundError",
            Self::UserIdNotFound => "UserIDNotFoundError",
            Self::RegisteredAlready => "RegisteredAlreadyError",
            Self::GroupIdNotFound => "GroupIDNotFoundError",
            Self::GroupIdExisted => "GroupIDExisted",
            Self::NotInGroupYet => "NotInGroupYetError",
            Self::DismissedAlready => "DismissedAlreadyError",
            Self::GroupTypeNotSupport => "GroupTypeNotSupport",
            Self::GroupRequestHandled => "GroupRequestHandled",
            Self::CanNotAddYourself => "CanNotAddYourselfError",
            Self::BlockedByPeer => "BlockedByPeer",
            Self::NotPeersFriend => "NotPeersFriend",
            Self::RelationshipAlready => "RelationshipAlreadyError",
            Self::FriendRequestHandled => "FriendRequestHandled",
            Self::MessageHasReadDisable => "MessageHasReadDisable",
            Self::MutedInGroup => "MutedInGroup",
            Self::MutedGroup => "MutedGroup",
            Self::MsgAlreadyRevoke => "MsgAlreadyRevoke",
            Self::TokenExpired => "TokenExpiredError",
            Self::TokenInvalid => "TokenInvalidError",
            Self::TokenMalformed => "TokenMalformedError",
            Self::TokenNotValidYet => "TokenNotValidYetError",
            Self::TokenUnknown => "TokenUnknownError",
            Self::TokenKicked => "TokenKickedError",
            Self::TokenNotExist => "TokenNotExistError",
            Self::ConnOverMaxNumLimit => "ConnOverMaxNumLimit",
            Self::ConnArgs => "args err, need token, sendID, platformID",
            Self::PushMsg => "push msg err",
            Self::FileUploadedExpired => "FileUploadedExpiredError",
            Self::Database => "DatabaseError",
            Self::Network => "NetworkError",
            Self::Data => "DataError",
            Self::Password => "PasswordError",
            Self::Forbidden => "Forbidden",
            Self::TooManyLoginAttempts => "TooManyLoginAttempts",
        }
    }

    /// Token errors stop an SDK's reconnect loop; every other handshake error makes it retry.
    pub const fn is_token_error(self) -> bool {
        matches!(self.code(), 1501..=1507)
    }
}

impl std::fmt::Display for ErrCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.default_msg())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrCode;

    #[test]
    fn token_errors_are_1501_to_1507() {
        assert!(ErrCode::TokenExpired.is_token_error());
        assert!(ErrCode::TokenNotExist.is_token_error());
        assert!(!ErrCode::Args.is_token_error());
        assert_eq!(ErrCode::TokenKicked.code(), 1506);
        assert_eq!(ErrCode::TokenKicked.default_msg(), "TokenKickedError");
    }
}
