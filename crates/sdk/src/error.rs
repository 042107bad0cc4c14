//! The SDK's one error type.

/// What went wrong talking to a server.
///
/// `Api` and `Refused` carry OpenIM's error codes (protocol §4) as the server sent them, so a caller can react to
/// them (1501–1507 are token errors: reconnecting with the same token is pointless).
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// A socket-level failure (connect, read, write).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer failed (handshake, framing, closed underneath us).
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The HTTP layer failed (not an API error: those are [`SdkError::Api`]).
    #[error("http: {0}")]
    Http(String),
    /// The gateway refused the connection; `code` is the first text frame's `errCode`.
    #[error("connection refused by the server: {code} {msg}")]
    Refused { code: i32, msg: String },
    /// A request got an answer with a non-zero `errCode` (REST envelope or gateway `Resp`).
    #[error("server error {code}: {msg}")]
    Api { code: i32, msg: String },
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The connection closed before the answer came.
    #[error("connection closed")]
    Closed,
    /// An answer could not be decoded.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// The caller passed something unusable (a bad address, an unparsable URL).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl SdkError {
    /// OpenIM's error code, for API errors and refusals.
    pub fn code(&self) -> Option<i32> {
        match self {
            SdkError::Api { code, .. } | SdkError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether this is a token error (1501–1507), after which the SDKs stop reconnecting.
    pub fn is_token_error(&self) -> bool {
        self.code().is_some_and(|c| (1501..=1507).contains(&c))
    }
}

/// Results of SDK calls.
pub type SdkResult<T> = Result<T, SdkError>;
