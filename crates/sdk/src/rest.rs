//! A small client for OpenIM's REST API (protocol §3), over hyper's HTTP/1.1 client connections.
//!
//! Every call is `POST` + JSON with the `operationID` header (and `token`, except on the whitelisted auth
//! routes); every answer is HTTP 200 with `{errCode, errMsg, errDlt, data}`. [`RestClient::post`] does that
//! dance for any request/response pair (the generated protobuf types serialize as Go's `encoding/json`, which
//! is what the server speaks), and the typed helpers below cover provisioning: admin and user tokens, user
//! registration, groups.
//!
//! Connections are kept alive and reused: idle ones wait in a small pool, and a call that finds none opens
//! another. A connection goes back to the pool as soon as its answer is read, before hyper has turned it around
//! for the next request, so a call that takes one from the pool waits for it to be ready; a pooled connection that
//! the server closed meanwhile hands its unsent request back, and the call goes on with another. Plain HTTP only
//! (the API is on loopback or behind a TLS-terminating proxy), which keeps TLS out of the dependency tree.

use crate::error::{SdkError, SdkResult};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{
    Request, StatusCode,
    client::conn::http1::{self, SendRequest},
    header,
};
use hyper_util::rt::TokioIo;
use palaver_protocol::pb::{auth, group, sdkws, user};
use serde::{Serialize, de::DeserializeOwned};
use std::{
    net::SocketAddr,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// The answer envelope of every REST route.
#[derive(serde::Deserialize)]
struct Envelope<T> {
    #[serde(rename = "errCode")]
    err_code: i32,
    #[serde(rename = "errMsg", default)]
    err_msg: String,
    #[serde(rename = "errDlt", default)]
    err_dlt: String,
    #[serde(default)]
    data: Option<T>,
}

/// A REST client for one server. Share it (it is `Sync`); calls run concurrently over pooled connections.
#[derive(Debug)]
pub struct RestClient {
    /// `host:port`, for the `Host` header and for connecting.
    authority: String,
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    max_idle: usize,
    timeout: Duration,
    next_op: AtomicU64,
    /// Local addresses new connections are opened from, in turn (empty: the kernel's choice).
    sources: Vec<std::net::IpAddr>,
}

impl RestClient {
    /// A client for `base`, e.g. `http://127.0.0.1:10002`.
    pub async fn new(base: &str) -> SdkResult<Self> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| SdkError::Invalid(format!("{base}: only http:// URLs are supported")))?;
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(SdkError::Invalid(format!("{base}: expected http://host:port")));
        }
        let addr = tokio::net::lookup_host(authority.as_str())
            .await?
            .next()
            .ok_or_else(|| SdkError::Invalid(format!("{authority} does not resolve")))?;
        Ok(Self {
            authority,
            addr,
            idle: Mutex::new(Vec::new()),
            max_idle: 64,
            timeout: Duration::from_secs(60),
            next_op: AtomicU64::new(1),
            sources: Vec::new(),
        })
    }

    /// Most idle connections kept for reuse (default 64).
    pub fn with_max_idle(mut self, max_idle: usize) -> Self {
        self.max_idle = max_idle;
        self
    }

    /// Open new connections from these local addresses in turn (a load generator's 127.0.0.2, 127.0.0.3, …):
    /// every closed connection holds its local port for a minute (TIME_WAIT), and one address has ~28,000.
    pub fn with_sources(mut self, sources: Vec<std::net::IpAddr>) -> Self {
        self.sources = sources;
        self
    }

    /// How long one call may take (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `POST path` with `body`; returns `data` (its default when absent). A non-zero `errCode` is an
    /// [`SdkError::Api`].
    pub async fn post<Req: Serialize, Resp: DeserializeOwned + Default>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Req,
    ) -> SdkResult<Resp> {
        let body = serde_json::to_vec(body).map_err(|e| SdkError::Invalid(e.to_string()))?;
        let answer = tokio::time::timeout(self.timeout, self.post_raw(path, token, body))
            .await
            .map_err(|_| SdkError::Timeout("REST call"))??;
        let envelope: Envelope<Resp> = serde_json::from_slice(&answer)
            .map_err(|e| SdkError::Decode(format!("{path}: {e}: {}", String::from_utf8_lossy(&answer))))?;
        if envelope.err_code != 0 {
            let msg = if envelope.err_dlt.is_empty() {
                envelope.err_msg
            } else {
                format!("{} ({})", envelope.err_msg, envelope.err_dlt)
            };
            return Err(SdkError::Api { code: envelope.err_code, msg });
        }
        Ok(envelope.data.unwrap_or_default())
    }

    /// `POST path` with a raw JSON body; returns the raw answer body (HTTP 200 only).
    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> SdkResult<Bytes> {
        let op = self.next_op.fetch_add(1, Ordering::Relaxed);
        let mut request = Request::post(path)
            .header(header::HOST, self.authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header("operationID", format!("rest-{op}"));
        if let Some(token) = token {
            request = request.header("token", token);
        }
        let mut request = request.body(Full::new(Bytes::from(body))).map_err(|e| SdkError::Http(e.to_string()))?;
        let (sender, response) = loop {
            let (mut sender, pooled) = self.checkout().await?;
            match sender.try_send_request(request).await {
                Ok(response) => break (sender, response),
                Err(mut e) => match e.take_message() {
                    // Closed before a byte of the request was written (an idle connection the server let go):
                    // nothing reached the server, so another connection may carry it.
                    Some(unsent) if pooled => request = unsent,
                    _ => return Err(http_error(&e.into_error())),
                },
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| http_error(&e))?.to_bytes();
        self.checkin(sender);
        if status != StatusCode::OK {
            return Err(SdkError::Http(format!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&body))));
        }
        Ok(body)
    }

    /// A pooled connection once it is ready for a request (`true`), or a new one (`false`).
    async fn checkout(&self) -> SdkResult<(SendRequest<Full<Bytes>>, bool)> {
        loop {
            let Some(mut sender) = self.idle.lock().unwrap().pop() else { break };
            // Checked in the moment its last answer was read, it turns around as soon as its connection task runs;
            // one that closed meanwhile answers with an error.
            if sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
        let source = (!self.sources.is_empty()).then(|| {
            let turn = self.next_op.fetch_add(1, Ordering::Relaxed) as usize;
            self.sources[turn % self.sources.len()]
        });
        let stream = crate::transport::connect_tcp(self.addr, source).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| http_error(&e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok((sender, false))
    }

    /// Keeps a connection whose answer has been read whole for the next call (unless it closed or the pool is full).
    fn checkin(&self, sender: SendRequest<Full<Bytes>>) {
        if !sender.is_closed() {
            let mut idle = self.idle.lock().unwrap();
            if idle.len() < self.max_idle {
                idle.push(sender);
            }
        }
    }

    /// `/auth/get_admin_token`: an admin token from the admin secret.
    pub async fn get_admin_token(&self, secret: &str, user_id: &str) -> SdkResult<String> {
        let req = auth::GetAdminTokenReq { secret: secret.to_string(), user_id: user_id.to_string() };
        let resp: auth::GetAdminTokenResp = self.post("/auth/get_admin_token", None, &req).await?;
        Ok(resp.token)
    }

    /// `/auth/get_user_token` (admin): a token for `user_id` on `platform_id`.
    pub async fn get_user_token(&self, admin_token: &str, user_id: &str, platform_id: i32) -> SdkResult<String> {
        let req = auth::GetUserTokenReq { platform_id, user_id: user_id.to_string() };
        let resp: auth::GetUserTokenResp = self.post("/auth/get_user_token", Some(admin_token), &req).await?;
        Ok(resp.token)
    }

    /// `/user/user_register` (admin): registers users given as `(userID, nickname)`.
    pub async fn user_register(&self, admin_token: &str, users: &[(String, String)]) -> SdkResult<()> {
        let users = users
            .iter()
            .map(|(id, nickname)| sdkws::UserInfo {
                user_id: id.clone(),
                nickname: nickname.clone(),
                ..Default::default()
            })
            .collect();
        let _: user::UserRegisterResp =
            self.post("/user/user_register", Some(admin_token), &user::UserRegisterReq { users }).await?;
        Ok(())
    }

    /// `/group/create_group`: a group owned by `owner` with `members` (at most 1000 at creation); returns it.
    pub async fn create_group(
        &self,
        token: &str,
        owner: &str,
        members: &[String],
        group_name: &str,
    ) -> SdkResult<sdkws::GroupInfo> {
        let req = group::CreateGroupReq {
            member_user_ids: members.to_vec(),
            group_info: Some(sdkws::GroupInfo { group_name: group_name.to_string(), ..Default::default() }),
            owner_user_id: owner.to_string(),
            ..Default::default()
        };
        let resp: group::CreateGroupResp = self.post("/group/create_group", Some(token), &req).await?;
        resp.group_info.ok_or_else(|| SdkError::Decode("create_group answered without groupInfo".into()))
    }

    /// `/group/invite_user_to_group`: adds users (at most 1000 per call).
    pub async fn invite_user_to_group(&self, token: &str, group_id: &str, user_ids: &[String]) -> SdkResult<()> {
        let req = group::InviteUserToGroupReq {
            group_id: group_id.to_string(),
            invited_user_ids: user_ids.to_vec(),
            ..Default::default()
        };
        let _: group::InviteUserToGroupResp = self.post("/group/invite_user_to_group", Some(token), &req).await?;
        Ok(())
    }
}

/// A hyper error with its causes: hyper's own message names only the kind ("connection error"), the I/O error
/// under it says what happened ("Connection reset by peer").
fn http_error(e: &hyper::Error) -> SdkError {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message = format!("{message}: {c}");
        cause = c.source();
    }
    SdkError::Http(message)
}
