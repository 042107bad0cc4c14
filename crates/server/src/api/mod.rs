//! The REST API (port 10002): OpenIM's routes, OpenIM's conventions.
//!
//! Every route is `POST` with a JSON body in Go `encoding/json` shape, headers `operationID` (required) and
//! `token` (required except on the whitelisted auth routes), and always answers HTTP 200 with
//! `{errCode, errMsg, errDlt, data}`. Handlers are thin: parse, authenticate, one service call, map the result.

mod account;
mod admin;
mod auth;
mod conversation;
mod convert;
mod friend;
mod group;
mod jssdk;
mod msg;
mod object;
mod third;
mod user;
mod web;

use crate::{
    error::{ApiError, ApiResult},
    service::{App, Caller},
};
use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde::{Serialize, de::DeserializeOwned};
use std::{future::Future, sync::Arc};

/// Who is calling, and under which operation id (echoed in logs).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub operation_id: String,
    pub caller: Caller,
    /// The API's URL as this client reaches it (see [`object::public_base`]), for the URLs of files; `None` when
    /// the request does not tell and the configuration does not either.
    pub public_base: Option<String>,
}

/// Where the API port also accepts gateway connections, so the web client talks to one origin (one port
/// behind one reverse proxy). Port 10001 serves the same gateway on every path, as OpenIM's does.
pub const GATEWAY_PATH: &str = "/msg_gateway";

/// The API router, over the shared `App`.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = app.config.max_body_bytes;
    // A body that stops arriving is given up, so that a client cannot hold a request (and its connection) open by
    // sending a head and then little or nothing; the head's deadline is hyper's (`crate::serve`). A JSON body must
    // have arrived whole within the read timeout (it is at most `max_body_bytes`, and a few hundred bytes as the SDKs
    // send them); a file's part, as large as the upload allows, may take longer as long as it keeps coming (as
    // nginx's `client_body_timeout`).
    let read_timeout = app.config.read_timeout();
    let uploads = Router::new()
        .route("/object-upload/{upload_id}/{part}", put(object::upload_part))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(read_timeout));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(web::chat))
        .route("/admin", get(web::admin))
        .route("/admin/", get(web::admin))
        .route("/static/{version}/{*path}", get(web::static_file))
        .route("/favicon.ico", get(web::favicon))
        .route(GATEWAY_PATH, get(crate::gateway::upgrade))
        .route("/palaver/client_config", get(account::client_config))
        .route("/account/register", post(account::register))
        .route("/account/login", post(account::login))
        .route("/account/password/change", post(authed(account::change_password)))
        .route("/palaver/admin/overview", post(authed(admin::overview)))
        .route("/palaver/admin/search_users", post(authed(admin::search_users)))
        .route("/palaver/admin/search_groups", post(authed(admin::search_groups)))
        .route("/palaver/admin/block_user", post(authed(admin::block_user)))
        .route("/palaver/admin/force_logout", post(authed(admin::force_logout)))
        .route("/auth/get_admin_token", post(public(auth::get_admin_token)))
        .route("/auth/parse_token", post(public(auth::parse_token)))
        .route("/auth/get_user_token", post(authed(auth::get_user_token)))
        .route("/auth/force_logout", post(authed(auth::force_logout)))
        .route("/user/user_register", post(authed(user::user_register)))
        .route("/user/get_users_info", post(authed(user::get_users_info)))
        .route("/user/update_user_info_ex", post(authed(user::update_user_info_ex)))
        .route("/user/account_check", post(authed(user::account_check)))
        .route("/user/set_global_msg_recv_opt", post(authed(user::set_global_msg_recv_opt)))
        .route("/user/process_user_command_add", post(authed(user::process_user_command_add)))
        .route("/user/process_user_command_update", post(authed(user::process_user_command_update)))
        .route("/user/process_user_command_delete", post(authed(user::process_user_command_delete)))
        .route("/user/process_user_command_get", post(authed(user::process_user_command_get)))
        .route("/user/process_user_command_get_all", post(authed(user::process_user_command_get_all)))
        .route("/user/subscribe_users_status", post(authed(user::subscribe_users_status)))
        .route("/user/get_subscribe_users_status", post(authed(user::get_subscribe_users_status)))
        .route("/user/get_users_status", post(authed(user::get_users_status)))
        .route("/user/get_user_client_config", post(authed(user::get_user_client_config)))
        .route("/user/set_user_client_config", post(authed(user::set_user_client_config)))
        .route("/user/del_user_client_config", post(authed(user::del_user_client_config)))
        .route("/group/create_group", post(authed(group::create_group)))
        .route("/group/get_groups_info", post(authed(group::get_groups_info)))
        .route("/group/invite_user_to_group", post(authed(group::invite_user_to_group)))
        .route("/group/get_joined_group_list", post(authed(group::get_joined_group_list)))
        .route("/group/get_full_join_group_ids", post(authed(group::get_full_join_group_ids)))
        .route("/group/get_incremental_join_groups", post(authed(group::get_incremental_join_groups)))
        .route("/group/get_group_member_list", post(authed(group::get_group_member_list)))
        .route("/group/get_group_members_info", post(authed(group::get_group_members_info)))
        .route("/group/get_full_group_member_user_ids", post(authed(group::get_full_group_member_user_ids)))
        .route("/group/get_incremental_group_members_batch", post(authed(group::get_incremental_group_members_batch)))
        .route("/group/set_group_info_ex", post(authed(group::set_group_info_ex)))
        .route("/group/join_group", post(authed(group::join_group)))
        .route("/group/quit_group", post(authed(group::quit_group)))
        .route("/group/kick_group", post(authed(group::kick_group)))
        .route("/group/transfer_group", post(authed(group::transfer_group)))
        .route("/group/dismiss_group", post(authed(group::dismiss_group)))
        .route("/group/mute_group_member", post(authed(group::mute_group_member)))
        .route("/group/cancel_mute_group_member", post(authed(group::cancel_mute_group_member)))
        .route("/group/mute_group", post(authed(group::mute_group)))
        .route("/group/cancel_mute_group", post(authed(group::cancel_mute_group)))
        .route("/group/set_group_member_info", post(authed(group::set_group_member_info)))
        .route("/group/get_recv_group_applicationList", post(authed(group::get_recv_group_application_list)))
        .route("/group/get_user_req_group_applicationList", post(authed(group::get_user_req_group_application_list)))
        .route(
            "/group/get_group_application_unhandled_count",
            post(authed(group::get_group_application_unhandled_count)),
        )
        .route("/group/group_application_response", post(authed(group::group_application_response)))
        .route(
            "/group/get_specified_user_group_request_info",
            post(authed(group::get_specified_user_group_request_info)),
        )
        .route("/friend/add_friend", post(authed(friend::add_friend)))
        .route("/friend/add_friend_response", post(authed(friend::add_friend_response)))
        .route("/friend/import_friend", post(authed(friend::import_friend)))
        .route("/friend/delete_friend", post(authed(friend::delete_friend)))
        .route("/friend/update_friends", post(authed(friend::update_friends)))
        .route("/friend/set_friend_remark", post(authed(friend::set_friend_remark)))
        .route("/friend/get_friend_id", post(authed(friend::get_friend_id)))
        .route("/friend/get_designated_friend_apply", post(authed(friend::get_designated_friend_apply)))
        .route("/friend/get_specified_blacks", post(authed(friend::get_specified_blacks)))
        .route("/friend/get_friend_list", post(authed(friend::get_friend_list)))
        .route("/friend/get_designated_friends", post(authed(friend::get_designated_friends)))
        .route("/friend/get_full_friend_user_ids", post(authed(friend::get_full_friend_user_ids)))
        .route("/friend/get_incremental_friends", post(authed(friend::get_incremental_friends)))
        .route("/friend/is_friend", post(authed(friend::is_friend)))
        .route("/friend/get_friend_apply_list", post(authed(friend::get_friend_apply_list)))
        .route("/friend/get_self_friend_apply_list", post(authed(friend::get_self_friend_apply_list)))
        .route("/friend/get_self_unhandled_apply_count", post(authed(friend::get_self_unhandled_apply_count)))
        .route("/friend/add_black", post(authed(friend::add_black)))
        .route("/friend/remove_black", post(authed(friend::remove_black)))
        .route("/friend/get_black_list", post(authed(friend::get_black_list)))
        .route("/conversation/get_owner_conversation", post(authed(conversation::get_owner_conversation)))
        .route("/conversation/get_all_conversations", post(authed(conversation::get_all_conversations)))
        .route("/conversation/get_conversations", post(authed(conversation::get_conversations)))
        .route("/conversation/get_incremental_conversations", post(authed(conversation::get_incremental_conversations)))
        .route("/conversation/get_full_conversation_ids", post(authed(conversation::get_full_conversation_ids)))
        .route(
            "/conversation/get_not_notify_conversation_ids",
            post(authed(conversation::get_not_notify_conversation_ids)),
        )
        .route("/conversation/set_conversations", post(authed(conversation::set_conversations)))
        .route("/conversation/get_pinned_conversation_ids", post(authed(conversation::get_pinned_conversation_ids)))
        .route("/jssdk/get_active_conversations", post(authed_dual(jssdk::get_active_conversations)))
        .route("/jssdk/get_conversations", post(authed_dual(jssdk::get_conversations)))
        .route("/msg/send_msg", post(authed(msg::send_msg)))
        .route("/msg/newest_seq", post(authed(msg::newest_seq)))
        .route("/msg/pull_msg_by_seq", post(authed(msg::pull_msg_by_seq)))
        .route("/msg/mark_conversation_as_read", post(authed(msg::mark_conversation_as_read)))
        .route("/msg/mark_msgs_as_read", post(authed(msg::mark_msgs_as_read)))
        .route("/msg/set_conversation_has_read_seq", post(authed(msg::set_conversation_has_read_seq)))
        .route("/msg/get_conversations_has_read_and_max_seq", post(authed(msg::get_conversations_has_read_and_max_seq)))
        .route("/msg/revoke_msg", post(authed(msg::revoke_msg)))
        .route("/msg/delete_msgs", post(authed(msg::delete_msgs)))
        .route("/msg/clear_conversation_msg", post(authed(msg::clear_conversation_msg)))
        .route("/msg/user_clear_all_msg", post(authed(msg::user_clear_all_msg)))
        .route("/msg/get_server_time", post(authed(msg::get_server_time)))
        .route("/third/fcm_update_token", post(authed(third::fcm_update_token)))
        .route("/third/set_app_badge", post(authed(third::set_app_badge)))
        .route("/third/logs/upload", post(authed(third::upload_logs)))
        .route("/object/part_limit", post(authed(object::part_limit)))
        .route("/object/part_size", post(authed(object::part_size)))
        .route("/object/initiate_multipart_upload", post(authed(object::initiate_multipart_upload)))
        .route("/object/auth_sign", post(authed(object::auth_sign)))
        .route("/object/complete_multipart_upload", post(authed(object::complete_multipart_upload)))
        .route("/object/access_url", post(authed(object::access_url)))
        .route("/object/{*name}", get(object::download))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::RequestBodyDeadlineLayer::new(read_timeout))
        .merge(uploads)
        .fallback(unknown_route)
        .layer(object::cors())
        .with_state(app)
}

/// `GET /healthz`: 200 when the store answers.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.users(&[]).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// Any other route: 404, as upstream answers (the SDKs treat it as a network error, not an API error). Logged,
/// because an SDK calling a route Palaver does not serve is worth knowing about; once per path, because what a
/// client asks for is up to the client: logged at every request, one calling a route in a loop (or making up
/// paths) filled the log and pushed the real errors out of the admin console's recent list.
async fn unknown_route(method: axum::http::Method, uri: axum::http::Uri) -> StatusCode {
    if first_unknown(uri.path()) {
        tracing::warn!(%method, path = uri.path(), "no such API route (logged once per path)");
    } else {
        tracing::debug!(%method, path = uri.path(), "no such API route");
    }
    StatusCode::NOT_FOUND
}

/// Most unknown paths remembered as logged; past them none is logged at WARN.
const UNKNOWN_ROUTES_LOGGED: usize = 64;

/// Whether `path` is an unknown route not logged yet (and one of the first [`UNKNOWN_ROUTES_LOGGED`]).
fn first_unknown(path: &str) -> bool {
    static LOGGED: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    logged.len() < UNKNOWN_ROUTES_LOGGED && !logged.contains(path) && logged.insert(path.to_string())
}

/// OpenIM's response envelope.
#[derive(Serialize)]
struct Envelope<T> {
    #[serde(rename = "errCode")]
    err_code: i32,
    #[serde(rename = "errMsg")]
    err_msg: String,
    #[serde(rename = "errDlt")]
    err_dlt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

fn respond<T: Serialize>(result: ApiResult<T>) -> Response {
    let envelope = match result {
        Ok(data) => Envelope { err_code: 0, err_msg: String::new(), err_dlt: String::new(), data: Some(data) },
        Err(e) => Envelope { err_code: e.code.code(), err_msg: e.msg, err_dlt: e.detail, data: None },
    };
    match serde_json::to_vec(&envelope) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn operation_id(headers: &HeaderMap) -> ApiResult<String> {
    match headers.get("operationID").and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => Err(ApiError::args("header must have operationID")),
    }
}

fn parse_body<Req: DeserializeOwned>(body: &[u8]) -> ApiResult<Req> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::args(format!("invalid request body: {e}")))
}

/// What the route adapters below return: one boxed future type, so axum sees one handler shape.
type BoxedResponse = std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;

/// A route that needs no token (`/auth/get_admin_token`, `/auth/parse_token`).
fn public<Req, Resp, F, Fut>(
    f: F,
) -> impl Fn(State<Arc<App>>, HeaderMap, Bytes) -> BoxedResponse + Clone + Send + Sync + 'static
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Arc<App>, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Resp>> + Send + 'static,
{
    move |State(app), headers, body| {
        let f = f.clone();
        Box::pin(async move {
            let result = async {
                operation_id(&headers)?;
                f(app, parse_body(&body)?).await
            }
            .await;
            respond(result)
        })
    }
}

/// Whether a request body is protobuf (`/jssdk/*` from the pure-JS SDK) rather than JSON.
fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("application/protobuf") || ct.contains("application/x-protobuf"))
}

/// Like [`authed`], for routes that also speak protobuf: a protobuf request body is decoded as such, and the
/// answer's `data` is then the base64 of the protobuf response (upstream `jssdk/tools.go`).
fn authed_dual<Req, Resp, F, Fut>(
    f: F,
) -> impl Fn(State<Arc<App>>, HeaderMap, Bytes) -> BoxedResponse + Clone + Send + Sync + 'static
where
    Req: DeserializeOwned + prost::Message + Default + Send + 'static,
    Resp: Serialize + prost::Message + Send + 'static,
    F: Fn(Arc<App>, Ctx, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Resp>> + Send + 'static,
{
    let json = authed(f.clone());
    move |State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes| {
        if !is_protobuf(&headers) {
            return json(State(app), headers, body);
        }
        let f = f.clone();
        Box::pin(async move {
            let result = async {
                let ctx = authenticate(&app, &headers).await?;
                let req = Req::decode(&body[..]).map_err(|e| ApiError::args(format!("invalid protobuf body: {e}")))?;
                let resp = f(app, ctx, req).await?;
                use base64::Engine as _;
                Ok(base64::engine::general_purpose::STANDARD.encode(resp.encode_to_vec()))
            }
            .await;
            respond(result)
        })
    }
}

/// The `operationID` and `token` headers, checked.
async fn authenticate(app: &App, headers: &HeaderMap) -> ApiResult<Ctx> {
    let operation_id = operation_id(headers)?;
    let token = match headers.get("token").and_then(|v| v.to_str().ok()) {
        Some(t) if !t.is_empty() => t,
        _ => return Err(ApiError::args("header must have token")),
    };
    let caller = app.authenticate(token).await?;
    let public_base = object::public_base(&app.config, headers);
    Ok(Ctx { operation_id, caller, public_base })
}

/// A route that needs a valid `token` header; the handler gets the caller.
fn authed<Req, Resp, F, Fut>(
    f: F,
) -> impl Fn(State<Arc<App>>, HeaderMap, Bytes) -> BoxedResponse + Clone + Send + Sync + 'static
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Arc<App>, Ctx, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Resp>> + Send + 'static,
{
    move |State(app), headers, body| {
        let f = f.clone();
        Box::pin(async move {
            let result = async {
                let ctx = authenticate(&app, &headers).await?;
                let req = parse_body(&body)?;
                f(app, ctx, req).await
            }
            .await;
            respond(result)
        })
    }
}
