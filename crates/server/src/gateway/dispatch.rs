//! Gateway requests: decode the envelope, check it, call the service, reply.

use super::conn::{DATA_ERROR_REQ, Next, Session, UNDECODABLE, error_resp, reply};
use crate::{
    error::{ApiError, ApiResult},
    hub::ConnHandle,
    service::App,
};
use palaver_protocol::{
    constant::req,
    envelope::{Req, Resp},
    pb::{msg as pbmsg, push, sdkws},
};
use prost::Message as _;

/// Handles one binary frame. Fatal problems (an undecodable or invalid envelope, a sendID that is not the
/// connection's user, an unknown request id, logout) get an error reply and close the connection, as upstream
/// does; a request the services refuse gets an error reply and the connection goes on.
pub(super) async fn frame(app: &App, session: &Session, handle: &ConnHandle, frame: &[u8]) -> Next {
    if frame.len() > app.config.max_frame_bytes {
        let err = ApiError::args(format!(
            "frame of {} bytes exceeds the limit of {}",
            frame.len(),
            app.config.max_frame_bytes
        ));
        reply(session, handle, &error_resp(DATA_ERROR_REQ, "", "", &err));
        return Next::Close;
    }
    let request = match session.format.decode_req(frame).and_then(|r| r.validate().map(|()| r)) {
        Ok(r) => r,
        Err(e) => {
            let err = ApiError::new(UNDECODABLE, format!("bad frame: {e}"));
            reply(session, handle, &error_resp(DATA_ERROR_REQ, "", "", &err));
            return Next::Close;
        }
    };
    if request.send_id != session.caller.user_id {
        let err = ApiError::no_permission(format!("sendID {} is not this connection's user", request.send_id));
        reply(session, handle, &error_resp(request.req_identifier, &request.msg_incr, &request.operation_id, &err));
        return Next::Close;
    }
    let (result, next) = match request.req_identifier {
        req::GET_NEWEST_SEQ
        | req::PULL_MSG_BY_RANGE
        | req::SEND_MSG
        | req::PULL_MSG_BY_SEQ_LIST
        | req::GET_CONV_MAX_READ_SEQ
        | req::PULL_CONV_LAST_MESSAGE
        | req::SET_BACKGROUND_STATUS
        | req::SUB_USER_ONLINE_STATUS => (handle_request(app, session, handle, &request).await, Next::Continue),
        // RTC signalling: upstream routes it to a send with no message, which fails; no SDK sends it. Answered
        // with an error that says so, and the connection goes on (it is a known request, not a bad frame).
        req::SEND_SIGNAL_MSG => {
            (Err(ApiError::args("signalling (1004) is not supported; use a message (1003)")), Next::Continue)
        }
        req::LOGOUT_MSG => (logout(app, session, &request.data).await, Next::Close),
        other => (Err(ApiError::args(format!("unknown reqIdentifier {other}"))), Next::Close),
    };
    let resp = match result {
        Ok(data) => Resp {
            req_identifier: request.req_identifier,
            msg_incr: request.msg_incr,
            operation_id: request.operation_id,
            data,
            ..Resp::default()
        },
        Err(err) => error_resp(request.req_identifier, &request.msg_incr, &request.operation_id, &err),
    };
    reply(session, handle, &resp);
    next
}

fn decode<T: prost::Message + Default>(data: &[u8]) -> ApiResult<T> {
    T::decode(data).map_err(|e| ApiError::args(format!("malformed protobuf: {e}")))
}

/// The request's `userID`, which must be the connection's user (empty means the connection's user).
fn check_user(session: &Session, user_id: &str) -> ApiResult<()> {
    if user_id.is_empty() || user_id == session.caller.user_id {
        Ok(())
    } else {
        Err(ApiError::no_permission(format!("userID {user_id} is not this connection's user")))
    }
}

/// 2003: the device logs out; its push token is forgotten (it must not be woken for a user who left it).
async fn logout(app: &App, session: &Session, data: &[u8]) -> ApiResult<Vec<u8>> {
    let r: push::DelUserPushTokenReq = decode(data)?;
    check_user(session, &r.user_id)?;
    app.forget_push_token(&session.caller.user_id, session.caller.platform_id).await?;
    Ok(Vec::new())
}

async fn handle_request(app: &App, session: &Session, handle: &ConnHandle, request: &Req) -> ApiResult<Vec<u8>> {
    let me = session.caller.user_id.as_str();
    Ok(match request.req_identifier {
        req::GET_NEWEST_SEQ => {
            let r: sdkws::GetMaxSeqReq = decode(&request.data)?;
            check_user(session, &r.user_id)?;
            app.newest_seqs(me).await?.encode_to_vec()
        }
        req::PULL_MSG_BY_RANGE => {
            let r: sdkws::PullMessageBySeqsReq = decode(&request.data)?;
            check_user(session, &r.user_id)?;
            app.pull_by_range(me, &r).await?.encode_to_vec()
        }
        req::SEND_MSG => {
            let msg: sdkws::MsgData = decode(&request.data)?;
            let stored = app.send_message(&session.caller, msg, &request.operation_id).await?;
            pbmsg::SendMsgResp {
                server_msg_id: stored.server_msg_id,
                client_msg_id: stored.client_msg_id,
                send_time: stored.send_time,
                modify: None,
            }
            .encode_to_vec()
        }
        req::PULL_MSG_BY_SEQ_LIST => {
            let r: pbmsg::GetSeqMessageReq = decode(&request.data)?;
            check_user(session, &r.user_id)?;
            app.pull_by_seqs(me, &r).await?.encode_to_vec()
        }
        req::GET_CONV_MAX_READ_SEQ => {
            let r: pbmsg::GetConversationsHasReadAndMaxSeqReq = decode(&request.data)?;
            check_user(session, &r.user_id)?;
            app.has_read_and_max_seqs(me, &r).await?.encode_to_vec()
        }
        req::PULL_CONV_LAST_MESSAGE => {
            let r: pbmsg::GetLastMessageReq = decode(&request.data)?;
            check_user(session, &r.user_id)?;
            app.last_messages(me, &r.conversation_ids).await?.encode_to_vec()
        }
        req::SET_BACKGROUND_STATUS => {
            let r: sdkws::SetAppBackgroundStatusReq = decode(&request.data)?;
            check_user(session, &r.user_id)?;
            sdkws::SetAppBackgroundStatusResp::default().encode_to_vec()
        }
        req::SUB_USER_ONLINE_STATUS => {
            let r: sdkws::SubUserOnlineStatus = decode(&request.data)?;
            app.subscribe_connection(handle, &r)?.encode_to_vec()
        }
        other => return Err(ApiError::args(format!("unknown reqIdentifier {other}"))),
    })
}
