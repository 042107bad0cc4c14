//! `/account/*`: Palaver's accounts for people (paths and field names as in OpenIM's "chat" server, whose
//! clients call the same routes): sign-up, password login, password change. Login answers with an ordinary IM
//! token (`imToken`) for the gateway and every OpenIM route.
//!
//! Also `GET /palaver/client_config`, what the web client needs to know before anyone logs in.

use super::{BoxedResponse, Ctx, authenticate, operation_id, parse_body, respond};
use crate::{
    error::{ApiError, ApiResult},
    listener::PeerAddr,
    service::{App, MIN_PASSWORD_CHARS, NewAccount},
};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, request::Parts},
    response::Response,
};
use serde::{Deserialize, Serialize};
use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

/// The new user of `/account/register` (chat's `RegisterUserInfo`, the fields Palaver uses).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RegisterUserInfo {
    #[serde(rename = "userID")]
    user_id: String,
    nickname: String,
    #[serde(rename = "faceURL")]
    face_url: String,
    password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RegisterReq {
    user: RegisterUserInfo,
    /// The platform to log in on when `autoLogin` is set.
    #[serde(alias = "platformID")]
    platform: i32,
    #[serde(rename = "autoLogin")]
    auto_login: bool,
}

/// What register (with `autoLogin`) and login answer. Without `autoLogin`, `imToken` is empty.
#[derive(Debug, Serialize)]
pub(super) struct LoginResp {
    #[serde(rename = "userID")]
    user_id: String,
    #[serde(rename = "imToken")]
    im_token: String,
    #[serde(rename = "expireTimeSeconds")]
    expire_time_seconds: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LoginReq {
    /// The user id (chat calls it `account`).
    #[serde(rename = "userID", alias = "account")]
    user_id: String,
    password: String,
    #[serde(alias = "platformID")]
    platform: i32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ChangePasswordReq {
    #[serde(rename = "userID")]
    user_id: String,
    #[serde(rename = "currentPassword")]
    current_password: String,
    #[serde(rename = "newPassword")]
    new_password: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Empty {}

/// # POST /account/register (public when self-registration is on; else admin)
///
/// A `token` header is optional: an admin token may register accounts whatever the setting, and with ids of
/// the wider admin form.
pub(super) fn register(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> BoxedResponse {
    Box::pin(async move {
        let result = async {
            operation_id(&headers)?;
            let caller = match headers.get("token") {
                Some(_) => Some(authenticate(&app, &headers).await?.caller),
                None => None,
            };
            let req: RegisterReq = parse_body(&body)?;
            let account = NewAccount {
                user_id: req.user.user_id,
                nickname: req.user.nickname,
                face_url: req.user.face_url,
                password: req.user.password,
                auto_login: req.auto_login.then_some(req.platform),
            };
            let registered = app.register_account(caller.as_ref(), account).await?;
            let (im_token, expire_time_seconds) = registered.token.unwrap_or_default();
            Ok(LoginResp { user_id: registered.user.user_id, im_token, expire_time_seconds })
        }
        .await;
        respond(result)
    })
}

/// The address a request came from: the TCP peer, or with `trust_forwarded_for` the last `X-Forwarded-For`
/// entry (the one the trusted proxy appended; if it is not an address, the peer). Unknown (no connection info, as in a router driven without a
/// socket) counts as 0.0.0.0: one shared budget, the safe side.
fn source_address(app: &App, parts: &Parts) -> IpAddr {
    if app.config.trust_forwarded_for
        && let Some(last) = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
        && let Ok(addr) = last.trim().parse::<IpAddr>()
    {
        return addr;
    }
    parts.extensions.get::<PeerAddr>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.0.ip())
}

/// # POST /account/login (public)
pub(super) fn login(State(app): State<Arc<App>>, request: axum::extract::Request) -> BoxedResponse {
    Box::pin(async move {
        let (parts, body) = request.into_parts();
        let result = async {
            operation_id(&parts.headers)?;
            let body = axum::body::to_bytes(body, app.config.max_body_bytes)
                .await
                .map_err(|e| ApiError::args(format!("cannot read body: {e}")))?;
            let req: LoginReq = parse_body(&body)?;
            let source = source_address(&app, &parts);
            let (im_token, expire_time_seconds) = app.login(&req.user_id, &req.password, req.platform, source).await?;
            Ok(LoginResp { user_id: req.user_id, im_token, expire_time_seconds })
        }
        .await;
        respond(result)
    })
}

/// # POST /account/password/change (self with the current password, or admin)
pub(super) async fn change_password(app: Arc<App>, ctx: Ctx, req: ChangePasswordReq) -> ApiResult<Empty> {
    let user_id = if req.user_id.is_empty() { ctx.caller.user_id.clone() } else { req.user_id };
    app.change_password(&ctx.caller, &user_id, &req.current_password, &req.new_password).await?;
    Ok(Empty {})
}

#[derive(Debug, Serialize)]
pub(super) struct ClientConfig {
    version: &'static str,
    #[serde(rename = "selfRegistration")]
    self_registration: bool,
    #[serde(rename = "minPasswordLength")]
    min_password_length: usize,
    /// Where the web client opens its gateway connection: a path on this same origin.
    #[serde(rename = "wsPath")]
    ws_path: &'static str,
}

/// # GET /palaver/client_config (public)
pub(super) async fn client_config(State(app): State<Arc<App>>) -> Response {
    respond(Ok(ClientConfig {
        version: env!("CARGO_PKG_VERSION"),
        self_registration: app.config.self_registration,
        min_password_length: MIN_PASSWORD_CHARS,
        ws_path: super::GATEWAY_PATH,
    }))
}
