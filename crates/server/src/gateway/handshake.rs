//! Connection set-up: parameters, authentication, upgrade.

use super::conn::{self, Session};
use crate::{
    error::{ApiError, ApiResult},
    service::App,
};
use axum::{
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, Uri, header},
    response::{IntoResponse, Response},
};
use palaver_protocol::{
    constant::platform,
    envelope::{Encoding, FrameFormat},
    errcode::ErrCode,
};
use std::{borrow::Cow, sync::Arc};

/// The handshake answer, as the SDKs parse it (`{"errCode":…,"errMsg":…,"errDlt":…}`).
pub(super) fn status_json(err: Option<&ApiError>) -> String {
    let (code, msg, dlt) = match err {
        None => (0, String::new(), String::new()),
        Some(e) => (e.code.code(), e.msg.clone(), e.detail.clone()),
    };
    serde_json::json!({ "errCode": code, "errMsg": msg, "errDlt": dlt }).to_string()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The handshake's query parameters, percent-decoded, borrowed from the request where nothing was escaped (a
/// map of owned strings, as axum's `Query` makes, was a tenth of the allocations of a login). A name given twice
/// keeps its first value, as Go's `url.Values.Get` in upstream's `parseByQuery` does.
struct ConnQuery<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> ConnQuery<'a> {
    fn parse(query: &'a str) -> Self {
        Self(form_urlencoded::parse(query.as_bytes()).collect())
    }

    /// The value of `name`, or `""` when it is absent.
    fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value)
    }
}

/// What the query string asks for, checked as upstream's `parseByQuery` does.
#[derive(Debug)]
struct ConnArgs {
    send_id: String,
    token: String,
    platform_id: i32,
    operation_id: String,
    format: FrameFormat,
}

fn parse_args(query: &ConnQuery<'_>, headers: &HeaderMap) -> ApiResult<ConnArgs> {
    let arg_err = |what: &str| ApiError::new(ErrCode::ConnArgs, what.to_string());
    let send_id = query.get("sendID");
    let token = query.get("token");
    let operation_id = query.get("operationID");
    if send_id.is_empty() || token.is_empty() || operation_id.is_empty() {
        return Err(arg_err("sendID, token and operationID are required"));
    }
    let platform_id: i32 = query.get("platformID").parse().map_err(|_| arg_err("platformID must be a number"))?;
    if platform::name(platform_id).is_none() {
        return Err(arg_err("unknown platformID"));
    }
    // Required and checked as upstream does, though Palaver has no offline push for it to steer yet.
    parse_go_bool(query.get("isBackground")).ok_or_else(|| arg_err("isBackground must be a bool"))?;
    let encoding = match query.get("sdkType") {
        "" | "go" => Encoding::Gob,
        "js" => Encoding::Json,
        _ => return Err(arg_err("sdkType must be go or js")),
    };
    let gzip =
        query.get("compression") == "gzip" || headers.get("compression").and_then(|v| v.to_str().ok()) == Some("gzip");
    Ok(ConnArgs {
        send_id: send_id.to_string(),
        token: token.to_string(),
        platform_id,
        operation_id: operation_id.to_string(),
        format: FrameFormat { encoding, gzip },
    })
}

/// Checks the token against the parameters: it must belong to `sendID` on `platformID` (else 1502).
async fn authenticate(app: &App, args: &ConnArgs) -> ApiResult<crate::service::Caller> {
    let caller = app.authenticate(&args.token).await?;
    if caller.user_id != args.send_id || caller.platform_id != args.platform_id {
        return Err(ApiError::new(ErrCode::TokenInvalid, "token does not belong to this sendID and platformID"));
    }
    Ok(caller)
}

pub(crate) async fn upgrade(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query = ConnQuery::parse(uri.query().unwrap_or(""));
    let is_msg_resp = parse_go_bool(query.get("isMsgResp")).unwrap_or(false);
    let checked = match parse_args(&query, &headers) {
        Ok(args) => authenticate(&app, &args).await.map(|caller| (args, caller)),
        Err(e) => Err(e),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            // Not a WebSocket request: answer like upstream's HTTP error path.
            let err = checked.err().unwrap_or_else(|| ApiError::args(rejection.body_text()));
            return json_answer(&err);
        }
    };
    // Small buffers: an idle connection should cost a few KiB, not tungstenite's 128 KiB defaults. The read
    // buffer is allocated (and zeroed) for the connection's whole life; most frames fit in it, and a bigger one
    // is read in two steps (tungstenite reserves a frame's full length once its header is in). Frames are fed
    // into the write buffer and sent on the writer's flush, so the frames that are ready together (a reply and
    // the push it caused) leave in one write; a batch bigger than the buffer is written as it fills.
    let ws = ws
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(app.config.max_frame_bytes.max(1 << 20) * 4)
        // Our own limit (`max_frame_bytes`) is checked per frame with a proper error reply; this is the hard stop.
        .max_message_size(app.config.max_frame_bytes * 4)
        .max_frame_size(app.config.max_frame_bytes * 4);
    match checked {
        Ok((args, caller)) => {
            let session = Session { caller, format: args.format, operation_id: args.operation_id, is_msg_resp };
            ws.on_upgrade(move |socket| conn::serve(app, socket, session))
        }
        Err(err) if is_msg_resp => ws.on_upgrade(move |socket| conn::refuse(socket, err)),
        Err(err) => json_answer(&err),
    }
}

fn json_answer(err: &ApiError) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], status_json(Some(err))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query string of `pairs`, encoded as a browser encodes it.
    fn q(pairs: &[(&str, &str)]) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    #[test]
    fn wasm_sdk_query_parses() {
        let args = parse_args(
            &ConnQuery::parse(&q(&[
                ("sendID", "alice"),
                ("token", "t"),
                ("platformID", "5"),
                ("operationID", "1795326452172446142"),
                ("isBackground", "false"),
                ("compression", "gzip"),
                ("isMsgResp", "true"),
            ])),
            &HeaderMap::new(),
        )
        .unwrap();
        assert_eq!(args.format, FrameFormat { encoding: Encoding::Gob, gzip: true });
        assert_eq!(args.platform_id, 5);
    }

    #[test]
    fn bad_queries_are_conn_args_errors() {
        let base =
            [("sendID", "a"), ("token", "t"), ("platformID", "5"), ("operationID", "o"), ("isBackground", "false")];
        for (key, bad) in
            [("platformID", "99"), ("platformID", "x"), ("isBackground", "maybe"), ("sdkType", "rust"), ("sendID", "")]
        {
            let pairs: Vec<(&str, &str)> =
                base.iter().filter(|(k, _)| *k != key).copied().chain([(key, bad)]).collect();
            let err = parse_args(&ConnQuery::parse(&q(&pairs)), &HeaderMap::new()).unwrap_err();
            assert_eq!(err.code, ErrCode::ConnArgs, "{key}={bad}");
        }
    }

    #[test]
    fn query_values_are_decoded_and_the_first_of_a_repeated_name_counts() {
        let query = ConnQuery::parse("sendID=alice&token=a%2Bb%3D&sendID=mallory&operationID=op+1&empty=");
        assert_eq!(query.get("sendID"), "alice");
        assert_eq!(query.get("token"), "a+b=");
        assert_eq!(query.get("operationID"), "op 1");
        assert_eq!(query.get("empty"), "");
        assert_eq!(query.get("platformID"), "");
    }
}
