//! Conversation ids (upstream `pkg/msgprocessor/conversation.go`).
//!
//! A conversation id names where a message lives and so whose seq counter it takes. 1:1 ids sort the two user
//! ids so both sides compute the same id. Notifications (`options.isNotNotification == false`) live in an `n_`
//! twin of the conversation that clients never show as a chat.

use crate::constant::{options, session_type};
use std::collections::HashMap;

/// The conversation a message belongs to, from its session type, parties and options.
/// `None` for a session type OpenIM does not know.
pub fn for_message(
    session: i32,
    send_id: &str,
    recv_id: &str,
    group_id: &str,
    opts: &HashMap<String, bool>,
) -> Option<String> {
    let notification = !options::is_on(opts, options::IS_NOT_NOTIFICATION);
    Some(match (session, notification) {
        (session_type::SINGLE_CHAT, false) => pair("si_", send_id, recv_id),
        (session_type::SINGLE_CHAT, true) => pair("n_", send_id, recv_id),
        (session_type::WRITE_GROUP_CHAT, false) => ["g_", group_id].concat(),
        (session_type::READ_GROUP_CHAT, false) => group(group_id),
        (session_type::WRITE_GROUP_CHAT | session_type::READ_GROUP_CHAT, true) => ["n_", group_id].concat(),
        (session_type::NOTIFICATION_CHAT, false) => pair("sn_", send_id, recv_id),
        (session_type::NOTIFICATION_CHAT, true) => pair("n_", send_id, recv_id),
        _ => return None,
    })
}

/// `si_<a>_<b>` with the two user ids sorted.
pub fn single(a: &str, b: &str) -> String {
    pair("si_", a, b)
}

/// `sg_<groupID>`.
pub fn group(group_id: &str) -> String {
    ["sg_", group_id].concat()
}

/// True for `n_…` conversations, whose messages travel in `notificationMsgs` rather than `msgs`.
pub fn is_notification(conversation_id: &str) -> bool {
    conversation_id.starts_with("n_")
}

/// The group id of an `sg_`/`g_` conversation (and of the group's `n_` twin, which cannot be told apart from a
/// 1:1 `n_` id by its shape alone, so it is not handled here).
pub fn group_id_of(conversation_id: &str) -> Option<&str> {
    conversation_id.strip_prefix("sg_").or_else(|| conversation_id.strip_prefix("g_"))
}

/// `<prefix><a>_<b>` with the two user ids sorted, built in one allocation: every 1:1 message names its
/// conversation at least once.
fn pair(prefix: &str, a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    [prefix, first, "_", second].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_chat_ids_are_symmetric() {
        let none = HashMap::new();
        assert_eq!(for_message(1, "bob", "alice", "", &none).unwrap(), "si_alice_bob");
        assert_eq!(for_message(1, "alice", "bob", "", &none).unwrap(), "si_alice_bob");
        assert_eq!(single("bob", "alice"), "si_alice_bob");
    }

    #[test]
    fn notifications_go_to_n_twins() {
        let notif = HashMap::from([(options::IS_NOT_NOTIFICATION.to_string(), false)]);
        assert_eq!(for_message(1, "b", "a", "", &notif).unwrap(), "n_a_b");
        assert_eq!(for_message(3, "b", "", "g1", &notif).unwrap(), "n_g1");
        assert!(is_notification("n_g1"));
        assert!(!is_notification("sg_g1"));
    }

    #[test]
    fn group_and_unknown_types() {
        let none = HashMap::new();
        assert_eq!(for_message(3, "a", "", "42", &none).unwrap(), "sg_42");
        assert_eq!(for_message(2, "a", "", "42", &none).unwrap(), "g_42");
        assert_eq!(for_message(4, "b", "a", "", &none).unwrap(), "sn_a_b");
        assert_eq!(group_id_of("sg_42"), Some("42"));
        assert_eq!(for_message(9, "a", "b", "", &none), None);
    }
}
