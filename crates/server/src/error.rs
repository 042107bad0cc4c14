//! Errors at the edge: every failure a client sees is an OpenIM code plus a message a person can act on.
//! Internal causes (database errors, bugs) are logged and reach the client only as a bare 500.

use palaver_protocol::errcode::ErrCode;
use palaver_store::{Precondition, StoreError};

/// An error answered to a client, on the REST API or the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrCode,
    /// `errMsg`: OpenIM's name for the code, the same for every occurrence.
    pub msg: String,
    /// `errDlt`: what exactly was wrong, for the person reading the client's log.
    pub detail: String,
}

impl ApiError {
    pub fn new(code: ErrCode, detail: impl Into<String>) -> Self {
        Self { code, msg: code.default_msg().to_string(), detail: detail.into() }
    }

    /// An invalid argument (`1001 ArgsError`).
    pub fn args(detail: impl Into<String>) -> Self {
        Self::new(ErrCode::Args, detail)
    }

    /// The caller may not do this (`1002 NoPermissionError`).
    pub fn no_permission(detail: impl Into<String>) -> Self {
        Self::new(ErrCode::NoPermission, detail)
    }

    /// A failure inside the server. The cause is logged here; the client sees only the code.
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(%cause, %at, "internal error");
        Self::new(ErrCode::ServerInternal, "")
    }

    /// The text sent as `errMsg` on the gateway, where there is no separate detail field.
    pub fn gateway_msg(&self) -> String {
        if self.detail.is_empty() { self.msg.clone() } else { format!("{}: {}", self.msg, self.detail) }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code.code(), self.gateway_msg())
    }
}

impl std::error::Error for ApiError {}

impl From<ErrCode> for ApiError {
    fn from(code: ErrCode) -> Self {
        Self::new(code, "")
    }
}

impl From<StoreError> for ApiError {
    #[track_caller]
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(what) => Self::new(ErrCode::DuplicateKey, what),
            StoreError::NotFound(what) => Self::new(ErrCode::RecordNotFound, what),
            StoreError::Refused(Precondition::UserExists(id)) => {
                Self::new(ErrCode::UserIdNotFound, format!("user {id} is not registered"))
            }
            StoreError::Refused(Precondition::NotBlocked { owner, .. }) => {
                Self::new(ErrCode::BlockedByPeer, format!("{owner} has blocked you"))
            }
            StoreError::Refused(Precondition::IsFriendOf { owner, .. }) => {
                Self::new(ErrCode::NotPeersFriend, format!("{owner} has not added you as a friend"))
            }
            // Upstream answers an argument error: "message is not sent".
            StoreError::Refused(Precondition::Receives { user, .. }) => {
                Self::args(format!("message is not sent: {user} does not receive messages from you"))
            }
            StoreError::Backend(_) => Self::internal(e),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
