//! Server-generated notifications (protocol §8.5): messages with `msgFrom` 200, a notification content type,
//! and content `{"detail": "<Go-JSON of the *Tips message>"}`, sent to the `n_` twin of a conversation so that
//! every affected device's SDK fires its listeners without waiting for a resync.
//!
//! Reliable notifications are stored and get a seq like any message (a device that was offline pulls them);
//! unreliable ones (read receipts) are only pushed, with seq 0, as upstream does.
//!
//! Which is which, and the rest of a notification's options, follow OpenIM's defaults
//! (`config/notification.yml`, [`NotifyOptions::for_type`]): friend, user and conversation notifications are
//! unreliable (a device that missed one catches up through incremental sync at its next login, which is what
//! the notification would have triggered anyway); revokes and deletes are stored. Some notifications are also
//! "sent as a message" (`isSendMsg`): a copy lands in the regular conversation as a tip the user sees ("you are
//! now friends", "Bob joined the group"), counted as unread.

use super::{App, Caller, now_ms, random_hex};
use crate::{error::ApiResult, hub::PushFrame};
use palaver_protocol::{
    constant::{msg_from, options, req, session_type},
    conversation_id,
    envelope::Resp,
    pb::sdkws,
};
use prost::Message as _;
use serde::Serialize;
use std::{collections::HashMap, sync::Arc};

/// Whether a notification is kept (pulled later by offline devices) or only pushed to who is online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Stored,
    PushOnly,
}

/// One notification: `content_type` carrying `tips`, from `send_id` to `recv_id` (a user, or a group id when
/// `session` is the group session type).
#[derive(Debug)]
pub struct Notification<'a, T: Serialize> {
    pub send_id: &'a str,
    pub recv_id: &'a str,
    pub session: i32,
    pub content_type: i32,
    pub tips: &'a T,
    pub delivery: Delivery,
}

impl<'a, T: Serialize> Notification<'a, T> {
    /// A push-only notification between two users, in their `n_` conversation: what upstream sends for
    /// friend, user, conversation and group-application changes.
    pub fn between_users(send_id: &'a str, recv_id: &'a str, content_type: i32, tips: &'a T) -> Self {
        Self { send_id, recv_id, session: session_type::SINGLE_CHAT, content_type, tips, delivery: Delivery::PushOnly }
    }
}

/// A notification's options beyond where it goes (OpenIM's per-type notification configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyOptions {
    /// Also store a copy in the regular conversation between sender and recipient (OpenIM's `isSendMsg`): a
    /// tip the user sees in the chat, counted as unread.
    pub send_msg: bool,
    /// Whether an offline push would announce it (carried in the options; Palaver has no push gateway yet).
    pub offline_push: bool,
    /// Push to the sender's devices only: the recipient named in the notification is not told. Used where
    /// upstream would tell a user something that is none of its business (that it was blocked).
    pub sender_only: bool,
    /// Do not push to the sender's own devices (OpenIM's `senderSync: false`).
    pub no_sender_sync: bool,
    /// Do not push to the device(s) connected with this token (hash): the device whose own request caused
    /// the notification, where the SDK updates itself after the call and would race a notification-driven
    /// update of the same rows (see `relation.rs`). Only for push-only notifications.
    pub except_device: Option<Arc<[u8]>>,
}

impl NotifyOptions {
    /// OpenIM's defaults for a content type (`config/notification.yml`, `pkg/notification/msg.go`).
    pub fn for_type(content_type: i32) -> Self {
        use palaver_protocol::constant::content_type as ct;
        match content_type {
            ct::FRIEND_APPLICATION_APPROVED => Self { send_msg: true, offline_push: true, ..Self::default() },
            ct::FRIEND_APPLICATION | ct::FRIEND_APPLICATION_REJECTED => Self { offline_push: true, ..Self::default() },
            ct::CONVERSATION_PRIVATE_CHAT => Self { send_msg: true, ..Self::default() },
            // The group changes members see as tips in the group's chat ("Bob joined the group"). Not the
            // dismissal: by the time it is announced the group has no members left to store it for.
            ct::GROUP_CREATED
            | ct::MEMBER_QUIT
            | ct::GROUP_OWNER_TRANSFERRED
            | ct::MEMBER_KICKED
            | ct::MEMBER_INVITED
            | ct::MEMBER_ENTER
            | ct::GROUP_MEMBER_MUTED
            | ct::GROUP_MEMBER_CANCEL_MUTED
            | ct::GROUP_MUTED
            | ct::GROUP_CANCEL_MUTED
            | ct::GROUP_INFO_SET_ANNOUNCEMENT
            | ct::GROUP_INFO_SET_NAME => Self { send_msg: true, ..Self::default() },
            ct::USER_STATUS_CHANGE => Self { no_sender_sync: true, ..Self::default() },
            _ => Self::default(),
        }
    }
}

impl App {
    /// Sends `n`. Failures are logged, not returned: the change it reports has already happened.
    pub async fn notify<T: Serialize>(&self, n: Notification<'_, T>, operation_id: &str) {
        let options = NotifyOptions::for_type(n.content_type);
        self.notify_with(n, options, operation_id).await;
    }

    /// Pushes a notification from `from` to `to` ([`Notification::between_users`]) with OpenIM's options for
    /// its content type: to `to`'s devices and, unless the type says otherwise, `from`'s own.
    pub async fn notify_user<T: Serialize>(&self, from: &str, to: &str, content_type: i32, tips: &T, op: &str) {
        self.notify(Notification::between_users(from, to, content_type, tips), op).await;
    }

    /// [`App::notify`] with explicit options.
    pub async fn notify_with<T: Serialize>(&self, n: Notification<'_, T>, options: NotifyOptions, operation_id: &str) {
        let (content_type, send_id, recv_id) = (n.content_type, n.send_id, n.recv_id);
        if let Err(e) = self.try_notify(n, options, operation_id).await {
            tracing::warn!(error = %e, content_type, send_id, recv_id, "notification not sent");
        }
    }

    async fn try_notify<T: Serialize>(
        &self,
        n: Notification<'_, T>,
        nopts: NotifyOptions,
        operation_id: &str,
    ) -> ApiResult<()> {
        let stored = n.delivery == Delivery::Stored;
        let (session, send_id, recv_id) = (n.session, n.send_id, n.recv_id);
        let msg = notification_msg_with(&n, &nopts)?;
        if nopts.send_msg {
            self.store_tip(&msg, &nopts, operation_id).await?;
        }
        if stored {
            self.send_message(&system_caller(), msg, operation_id).await?;
            return Ok(());
        }
        let recipients: Arc<[String]> = if nopts.sender_only {
            Arc::from([send_id.to_string()])
        } else if session == session_type::READ_GROUP_CHAT {
            match self.group_snapshot(recv_id).await? {
                Some(group) => group.member_ids.clone(),
                None => Arc::from([]),
            }
        } else {
            Arc::from([recv_id.to_string(), send_id.to_string()])
        };
        self.push_notification_with(msg, &recipients, &nopts, operation_id).await;
        Ok(())
    }

    /// Pushes an unstored group notification ([`App::push_notification_with`]) and then, when its options ask
    /// for one, stores its tip ([`App::store_tip`]) in the group's chat. In that order: a wasm SDK that meets a
    /// message of a group it does not know yet fetches and stores the group itself, and its sync on the
    /// notification then finds nothing new to announce (no `OnJoinedGroupAdded`); each connection gets its pushes
    /// in the order they are made.
    pub(crate) async fn push_notification_and_tip(
        &self,
        msg: sdkws::MsgData,
        recipients: &[String],
        nopts: &NotifyOptions,
        operation_id: &str,
    ) -> ApiResult<()> {
        let tip = nopts.send_msg.then(|| msg.clone());
        self.push_notification_with(msg, recipients, nopts, operation_id).await;
        if let Some(tip) = tip {
            self.store_tip(&tip, nopts, operation_id).await?;
        }
        Ok(())
    }

    /// Stores the copy of notification `msg` that its `isSendMsg` option asks for, in the regular conversation
    /// (the 1:1 chat, or the group's): a tip the users see in the chat. A plain message as far as options go, so
    /// it creates the conversation and counts as unread (upstream msgtransfer's clone of an `isSendMsg`
    /// notification).
    pub(crate) async fn store_tip(
        &self,
        msg: &sdkws::MsgData,
        nopts: &NotifyOptions,
        operation_id: &str,
    ) -> ApiResult<()> {
        let copy_options: HashMap<String, bool> =
            [(options::OFFLINE_PUSH, nopts.offline_push), (options::UNREAD_COUNT, true)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let copy = sdkws::MsgData { client_msg_id: random_hex(16), options: copy_options, ..msg.clone() };
        self.send_message(&system_caller(), copy, operation_id).await?;
        Ok(())
    }

    /// Pushes an unstored notification (seq 0) to every connection of `recipients`, in `notificationMsgs`
    /// under its `n_` conversation (the SDKs act on a seq-0 notification at once, without a pull), leaving out
    /// the sender's devices (`no_sender_sync`) or the device that caused it (`except_device`) as `nopts` says.
    async fn push_notification_with(
        &self,
        msg: sdkws::MsgData,
        recipients: &[String],
        nopts: &NotifyOptions,
        operation_id: &str,
    ) {
        let Some(conversation) =
            conversation_id::for_message(msg.session_type, &msg.send_id, &msg.recv_id, &msg.group_id, &msg.options)
        else {
            return;
        };
        let sender = msg.send_id.clone();
        let msg = sdkws::MsgData { server_msg_id: random_hex(16), send_time: now_ms(), ..msg };
        let mut push = sdkws::PushMessages::default();
        push.notification_msgs
            .insert(conversation.clone(), sdkws::PullMsgs { msgs: vec![msg], is_end: false, end_seq: 0 });
        let frame = PushFrame::new(Resp {
            req_identifier: req::PUSH_MSG,
            operation_id: operation_id.to_string(),
            data: push.encode_to_vec(),
            ..Resp::default()
        });
        let mut targets: Vec<&str> = recipients.iter().map(String::as_str).collect();
        if nopts.no_sender_sync {
            targets.retain(|u| *u != sender);
        }
        targets.sort_unstable();
        targets.dedup();
        let targets: Vec<String> = targets.into_iter().map(String::from).collect();
        let except = nopts.except_device.as_deref();
        self.bus.deliver_unstored(&targets, &conversation, frame, except);
    }
}

/// The system as a caller: it acts here, not the user named as a notification's sender, so no membership or mute
/// checks apply.
fn system_caller() -> Caller {
    Caller { user_id: String::new(), platform_id: 0, token_hash: Arc::from(&[][..]), is_admin: true }
}

/// The message carrying notification `n`: OpenIM's notification options for its content type, the Tips as
/// Go-JSON in a `NotificationElem`, addressed to a user (or a group, for the group session type).
pub(crate) fn notification_msg<T: Serialize>(n: &Notification<'_, T>) -> ApiResult<sdkws::MsgData> {
    notification_msg_with(n, &NotifyOptions::for_type(n.content_type))
}

fn notification_msg_with<T: Serialize>(n: &Notification<'_, T>, nopts: &NotifyOptions) -> ApiResult<sdkws::MsgData> {
    let (send_id, recv_id, session, content_type, tips, delivery) =
        (n.send_id, n.recv_id, n.session, n.content_type, n.tips, n.delivery);
    let detail = serde_json::to_string(tips).map_err(crate::error::ApiError::internal)?;
    let content = serde_json::to_vec(&sdkws::NotificationElem { detail }).map_err(crate::error::ApiError::internal)?;
    let stored = delivery == Delivery::Stored;
    // Upstream's options for a notification: everything off but senderSync, history/persistent when stored.
    let opts: HashMap<String, bool> = [
        (options::IS_NOT_NOTIFICATION, false),
        (options::IS_SEND_MSG, nopts.send_msg),
        (options::HISTORY, stored),
        (options::PERSISTENT, stored),
        (options::OFFLINE_PUSH, false),
        (options::UNREAD_COUNT, false),
        (options::CONVERSATION_UPDATE, false),
        (options::SENDER_SYNC, !nopts.no_sender_sync),
        (options::NOT_PRIVATE, false),
        (options::SENDER_CONVERSATION_UPDATE, false),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let is_group = session == session_type::READ_GROUP_CHAT;
    Ok(sdkws::MsgData {
        send_id: send_id.to_string(),
        recv_id: if is_group { String::new() } else { recv_id.to_string() },
        group_id: if is_group { recv_id.to_string() } else { String::new() },
        client_msg_id: random_hex(16),
        msg_from: msg_from::SYSTEM,
        content_type,
        session_type: session,
        content,
        create_time: now_ms(),
        options: opts,
        offline_push_info: Some(sdkws::OfflinePushInfo::default()),
        ..Default::default()
    })
}
