//! Helpers for the tests of server-generated notifications and the routes around them: pushed messages with
//! their decoded payload, extra devices, and "nothing else happened" checks that need no clock.
#![allow(dead_code, unreachable_pub)]

use crate::common::*;
use palaver_protocol::{
    constant::{platform, req},
    envelope::Resp,
    pb::sdkws,
};
use prost::Message as _;
use serde_json::{Value, json};

/// One pushed message, notification or not, with its notification payload (`Null` for a user message).
#[derive(Debug, Clone)]
pub struct Pushed {
    pub conversation: String,
    /// Whether it came in `notificationMsgs` (an `n_` conversation) rather than `msgs`.
    pub is_notification: bool,
    pub msg: sdkws::MsgData,
    pub tips: Value,
}

/// The `*Tips` of a notification (`{"detail": "<json>"}`), or `Null`.
pub fn tips_of(msg: &sdkws::MsgData) -> Value {
    let Ok(elem) = serde_json::from_slice::<Value>(&msg.content) else {
        return Value::Null;
    };
    elem["detail"].as_str().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null)
}

/// Every message of the next 2001 push (in order).
pub async fn next_pushes(c: &mut Client) -> Option<Vec<Pushed>> {
    let resp = c.next_of(req::PUSH_MSG).await?;
    let push = sdkws::PushMessages::decode(&resp.data[..]).unwrap();
    let mut out = Vec::new();
    for (is_notification, map) in [(false, push.msgs), (true, push.notification_msgs)] {
        for (conversation, pulled) in map {
            for msg in pulled.msgs {
                out.push(Pushed { conversation: conversation.clone(), is_notification, tips: tips_of(&msg), msg });
            }
        }
    }
    Some(out)
}

/// The next pushed message, whatever it is; panics if none comes.
pub async fn next_pushed(c: &mut Client) -> Pushed {
    let mut all = next_pushes(c).await.unwrap_or_else(|| panic!("{}: no push arrived", c.user));
    assert_eq!(all.len(), 1, "one message per push");
    all.remove(0)
}

/// Skips pushes until one of content type `content_type` arrives; panics if none does.
pub async fn next_of_type(c: &mut Client, content_type: i32) -> Pushed {
    loop {
        let p = next_pushes(c).await.unwrap_or_else(|| panic!("{}: no push of content type {content_type}", c.user));
        if let Some(found) = p.into_iter().find(|p| p.msg.content_type == content_type) {
            return found;
        }
    }
}

/// Asserts that `c` gets nothing `forbidden` before the text message `marker_text`, which was sent after
/// whatever must not reach `c`: pushes to one connection leave in order, so anything sent to it before the
/// marker arrives before it. Frames already waiting in the inbox count too.
pub async fn none_before(c: &mut Client, forbidden: impl Fn(&Resp) -> bool, marker_text: &str) {
    loop {
        let frame = match c.inbox.pop_front() {
            Some(f) => f,
            None => c.recv().await.unwrap_or_else(|| panic!("{}: the marker {marker_text:?} never came", c.user)),
        };
        assert!(!forbidden(&frame), "{}: got a frame it must not get: {frame:?}", c.user);
        if frame.req_identifier == req::PUSH_MSG {
            let push = sdkws::PushMessages::decode(&frame.data[..]).unwrap();
            let found =
                push.msgs.values().flat_map(|p| &p.msgs).any(|m| m.content_type == 101 && text_of(m) == marker_text);
            if found {
                return;
            }
        }
    }
}

/// A `forbidden` for [`none_before`]: a pushed notification of this content type.
pub fn push_of_type(content_type: i32) -> impl Fn(&Resp) -> bool {
    move |frame| {
        frame.req_identifier == req::PUSH_MSG
            && sdkws::PushMessages::decode(&frame.data[..])
                .unwrap()
                .notification_msgs
                .values()
                .flat_map(|p| &p.msgs)
                .any(|m| m.content_type == content_type)
    }
}

/// Sends a text from `from` to `to` over a fresh admin call, as a marker that arrives after everything sent
/// before it.
pub async fn marker(server: &TestServer, admin: &str, from: &str, to: &str, text: &str) {
    let body = json!({
        "sendID": from, "recvID": to, "sessionType": 1, "contentType": 101, "content": {"content": text}
    });
    server.call("/msg/send_msg", admin, body).await;
}

/// Another device of a registered user.
pub async fn device(server: &TestServer, admin: &str, user: &str, platform_id: i32) -> Client {
    let token = server.user_token(admin, user, platform_id).await;
    Client::connect(server.ws, user, &token, platform_id, GOB_GZIP).await.expect("connect")
}

/// A REST token for a registered user on a platform no test connects with.
pub async fn rest_token(server: &TestServer, admin: &str, user: &str) -> String {
    server.user_token(admin, user, platform::ANDROID_PAD).await
}

/// The error code of a POST.
pub async fn code(server: &TestServer, path: &str, token: &str, body: Value) -> i64 {
    server.post(path, Some(token), body).await["errCode"].as_i64().unwrap()
}

/// Pulls `begin..=end` of a conversation over REST as `user`.
pub async fn pull(
    server: &TestServer,
    token: &str,
    user: &str,
    conversation: &str,
    begin: i64,
    end: i64,
) -> Vec<Value> {
    let data = server
        .call(
            "/msg/pull_msg_by_seq",
            token,
            json!({"userID": user, "seqRanges": [{"conversationID": conversation, "begin": begin, "end": end, "num": 100}]}),
        )
        .await;
    let group = if conversation.starts_with("n_") { "notificationMsgs" } else { "msgs" };
    data[group][conversation]["Msgs"].as_array().cloned().unwrap_or_default()
}
