//! Go `encoding/json` compatibility for the generated protobuf types.
//!
//! OpenIM's HTTP API binds bodies with Go's `encoding/json` into protoc-gen-go structs whose `omitempty` tags
//! were stripped, and its SDKs decode responses the same way. So, unlike proto3 JSON:
//!
//! - keys are the `.proto` field names verbatim (`userID`, `clientMsgID`, `Msgs`);
//! - every field is emitted; `int64`/`uint64` are JSON numbers and enums are numbers;
//! - `bytes` are base64 (standard alphabet, padded);
//! - on input a missing key or an explicit `null` means the field's default;
//! - the `openim.protobuf` wrappers (`StringValue`, `Int32Value`, …) are a bare scalar, or `null` for `None`.
//!
//! `build.rs` attaches the derives and the per-field attributes that point here; the wrappers' impls are
//! written by hand below.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::pb::protobuf;

/// `deserialize_with` helper: an explicit JSON `null` yields `T::default()`, as Go leaves the zero value.
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// Decoder for base64 input: the standard alphabet, padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_base64<E: de::Error>(s: &str) -> Result<Vec<u8>, E> {
    let result = if s.contains(['\r', '\n']) {
        // Go's base64 decoder skips line breaks.
        LENIENT.decode(s.replace(['\r', '\n'], ""))
    } else {
        LENIENT.decode(s)
    };
    result.map_err(|e| E::custom(format_args!("invalid base64: {e}")))
}

/// Accepts what Go accepts for a `[]byte`: a base64 string, `null` (empty), or an array of byte values.
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        decode_base64(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// `with` helper for `bytes` fields: base64 (standard alphabet, padded) like Go; `null` reads as empty.
pub mod base64_bytes {
    use super::{BytesVisitor, STANDARD};
    use base64::Engine as _;
    use serde::{Deserializer, Serializer};

    /// Writes `bytes` as a padded standard base64 string.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads a base64 string (padding optional), `null` or an array of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_any(BytesVisitor)
    }
}

/// `with` helper for `repeated bytes` fields: an array of base64 strings; `null` reads as empty.
pub mod base64_bytes_list {
    use super::{BytesVisitor, STANDARD};
    use base64::Engine as _;
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::ser::{SerializeSeq, Serializer};
    use std::fmt;

    /// Writes each element as a padded standard base64 string.
    pub fn serialize<S: Serializer>(list: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&STANDARD.encode(bytes))?;
        }
        seq.end()
    }

    /// Reads an array of base64 strings, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<u8>>, D::Error> {
        struct Element(Vec<u8>);
        impl<'de> serde::Deserialize<'de> for Element {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(BytesVisitor).map(Element)
            }
        }
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Vec<Vec<u8>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of base64 strings or null")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Element(b)) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// Wrappers holding a plain scalar: (de)serialized as that scalar.
macro_rules! scalar_wrapper {
    ($($ty:ident($inner:ty)),* $(,)?) => {$(
        impl Serialize for protobuf::$ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.value.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for protobuf::$ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$inner>::deserialize(deserializer).map(|value| Self { value })
            }
        }
    )*};
}

scalar_wrapper!(
    DoubleValue(f64),
    FloatValue(f32),
    Int64Value(i64),
    UInt64Value(u64),
    Int32Value(i32),
    UInt32Value(u32),
    BoolValue(bool),
    StringValue(String),
);

impl Serialize for protobuf::BytesValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        base64_bytes::serialize(&self.value, serializer)
    }
}

impl<'de> Deserialize<'de> for protobuf::BytesValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        base64_bytes::deserialize(deserializer).map(|value| Self { value })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message as _;
    use serde_json::{Value, json};

    use crate::pb::protobuf::{BoolValue, BytesValue, Int32Value, Int64Value, StringValue};
    use crate::pb::{conversation, group, msg, sdkws, user};

    fn full_msg_data() -> sdkws::MsgData {
        sdkws::MsgData {
            send_id: "alice".into(),
            recv_id: "bob".into(),
            group_id: "g1".into(),
            client_msg_id: "c-1".into(),
            server_msg_id: "s-1".into(),
            sender_platform_id: 5,
            sender_nickname: "Alice".into(),
            sender_face_url: "http://x/a.png".into(),
            session_type: 1,
            msg_from: 100,
            content_type: 101,
            content: br#"{"content":"hi"}"#.to_vec(),
            seq: 9_007_199_254_740_000,
            send_time: 1_700_000_000_000,
            create_time: 1_700_000_000_001,
            status: 2,
            is_read: true,
            options: HashMap::from([("history".to_owned(), false), ("unreadCount".to_owned(), true)]),
            offline_push_info: Some(sdkws::OfflinePushInfo {
                title: "t".into(),
                desc: "d".into(),
                ex: "e".into(),
                ios_push_sound: "ding".into(),
                ios_badge_count: true,
                signal_info: "s".into(),
            }),
            at_user_id_list: vec!["bob".into(), "carol".into()],
            attached_info: "{}".into(),
            ex: "x".into(),
        }
    }

    #[test]
    fn msg_data_json_shape() {
        let v = serde_json::to_value(sdkws::MsgData {
            send_id: "alice".into(),
            client_msg_id: "c-1".into(),
            sender_face_url: "u".into(),
            content: b"hello".to_vec(),
            seq: 42,
            ..Default::default()
        })
        .unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o["sendID"], json!("alice"));
        assert_eq!(o["clientMsgID"], json!("c-1"));
        assert_eq!(o["senderFaceURL"], json!("u"));
        assert_eq!(o["content"], json!("aGVsbG8="));
        assert_eq!(o["options"], json!({}));
        assert_eq!(o["seq"], json!(42));
        assert!(o["seq"].is_i64());
        assert_eq!(o["atUserIDList"], json!([]));
        assert_eq!(o["offlinePushInfo"], Value::Null);
        assert_eq!(o["isRead"], json!(false));
        assert_eq!(o["recvID"], json!(""));
        // Every one of the 22 fields is present, with no snake_case keys.
        assert_eq!(o.len(), 22);
        assert!(!o.contains_key("send_id"));

        let full = serde_json::to_value(full_msg_data()).unwrap();
        assert_eq!(full["offlinePushInfo"]["iOSPushSound"], json!("ding"));
        assert_eq!(full["offlinePushInfo"]["iOSBadgeCount"], json!(true));
        assert_eq!(full["seq"], json!(9_007_199_254_740_000_i64));
    }

    #[test]
    fn msg_data_json_round_trip() {
        let m = full_msg_data();
        let text = serde_json::to_string(&m).unwrap();
        let back: sdkws::MsgData = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn pull_msgs_capital_m() {
        let v = serde_json::to_value(sdkws::PullMsgs::default()).unwrap();
        assert_eq!(v, json!({"Msgs": [], "isEnd": false, "endSeq": 0}));
        let p: sdkws::PullMsgs = serde_json::from_value(json!({"Msgs": [{"seq": 3}], "isEnd": true})).unwrap();
        assert_eq!(p.msgs.len(), 1);
        assert_eq!(p.msgs[0].seq, 3);
        assert!(p.is_end);
        // Lowercase-first alias.
        let p: sdkws::PullMsgs = serde_json::from_value(json!({"msgs": [{}]})).unwrap();
        assert_eq!(p.msgs.len(), 1);
    }

    #[test]
    fn null_and_missing_mean_default() {
        let r: user::GetDesignateUsersReq = serde_json::from_str(r#"{"userIDs":null}"#).unwrap();
        assert!(r.user_ids.is_empty());
        let r: user::GetDesignateUsersReq = serde_json::from_str("{}").unwrap();
        assert!(r.user_ids.is_empty());

        let m: sdkws::MsgData =
            serde_json::from_str(r#"{"sendID":"a","content":null,"options":null,"seq":null,"offlinePushInfo":null}"#)
                .unwrap();
        assert_eq!(m.send_id, "a");
        assert!(m.content.is_empty());
        assert!(m.options.is_empty());
        assert_eq!(m.seq, 0);
        assert_eq!(m.offline_push_info, None);
        assert_eq!(m.recv_id, "");

        // Unknown keys are ignored, as in Go.
        let r: msg::GetLastMessageReq =
            serde_json::from_str(r#"{"userID":"u","conversationIDs":["si_a_b"],"extra":1}"#).unwrap();
        assert_eq!(r.user_id, "u");
        assert_eq!(r.conversation_ids, ["si_a_b"]);
    }

    #[test]
    fn int64_is_number_not_string() {
        assert!(serde_json::from_str::<sdkws::MsgData>(r#"{"seq":"5"}"#).is_err());
        let r: group::GetFullJoinGroupIDsReq = serde_json::from_str(r#"{"idHash":18446744073709551615}"#).unwrap();
        assert_eq!(r.id_hash, u64::MAX);
        assert_eq!(serde_json::to_value(&r).unwrap()["idHash"], json!(u64::MAX));
    }

    #[test]
    fn base64_content() {
        let m: sdkws::MsgData = serde_json::from_str(r#"{"content":"aGk="}"#).unwrap();
        assert_eq!(m.content, b"hi");
        let m: sdkws::MsgData = serde_json::from_str(r#"{"content":"aGk"}"#).unwrap();
        assert_eq!(m.content, b"hi");
        assert!(serde_json::from_str::<sdkws::MsgData>(r#"{"content":"!!"}"#).is_err());
    }

    #[test]
    fn update_user_info_ex_wrappers() {
        let body =
            r#"{"userInfo":{"userID":"alice","nickname":"Alice2","faceURL":null,"ex":null,"globalRecvMsgOpt":null}}"#;
        let r: user::UpdateUserInfoExReq = serde_json::from_str(body).unwrap();
        let info = r.user_info.as_ref().unwrap();
        assert_eq!(info.user_id, "alice");
        assert_eq!(info.nickname, Some(StringValue { value: "Alice2".into() }));
        assert_eq!(info.face_url, None);
        assert_eq!(info.ex, None);
        assert_eq!(info.global_recv_msg_opt, None);
        let back: Value = serde_json::to_value(&r).unwrap();
        let expected: Value = serde_json::from_str(body).unwrap();
        assert_eq!(back, expected);

        let r: user::UpdateUserInfoExReq =
            serde_json::from_str(r#"{"userInfo":{"globalRecvMsgOpt":2,"ex":""}}"#).unwrap();
        let info = r.user_info.unwrap();
        assert_eq!(info.global_recv_msg_opt, Some(Int32Value { value: 2 }));
        assert_eq!(info.ex, Some(StringValue { value: String::new() }));
        assert_eq!(info.nickname, None);
        // Never the proto3-JSON object form.
        assert!(serde_json::from_str::<user::UpdateUserInfoExReq>(r#"{"userInfo":{"ex":{"value":"x"}}}"#).is_err());
    }

    #[test]
    fn other_wrappers_are_bare_scalars() {
        assert_eq!(serde_json::to_value(BoolValue { value: true }).unwrap(), json!(true));
        assert_eq!(serde_json::to_value(Int64Value { value: -7 }).unwrap(), json!(-7));
        assert_eq!(serde_json::to_value(BytesValue { value: b"hi".to_vec() }).unwrap(), json!("aGk="));
        let b: BytesValue = serde_json::from_value(json!("aGk=")).unwrap();
        assert_eq!(b.value, b"hi");
        let s: Option<StringValue> = serde_json::from_value(Value::Null).unwrap();
        assert_eq!(s, None);
    }

    #[test]
    fn proto3_optional_and_nested() {
        let r: group::CreateGroupReq =
            serde_json::from_str(r#"{"memberUserIDs":["b"],"groupInfo":{"groupName":"g"},"sendMessage":null}"#)
                .unwrap();
        assert_eq!(r.send_message, None);
        assert_eq!(r.group_info.as_ref().unwrap().group_name, "g");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["sendMessage"], Value::Null);
        assert_eq!(v["adminUserIDs"], json!([]));

        let resp = user::AccountCheckResp {
            results: vec![user::account_check_resp::SingleUserStatus { user_id: "a".into(), account_status: 1 }],
        };
        assert_eq!(serde_json::to_value(&resp).unwrap(), json!({"results": [{"userID": "a", "accountStatus": 1}]}));
    }

    #[test]
    fn conversation_and_maps() {
        let v = serde_json::to_value(conversation::Conversation::default()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 17);
        assert_eq!(v["latestMsgDestructTime"], json!(0));

        let resp = msg::GetConversationsHasReadAndMaxSeqResp {
            seqs: HashMap::from([("si_a_b".to_owned(), msg::Seqs { max_seq: 5, has_read_seq: 3, max_seq_time: 1 })]),
            pinned_conversation_ids: vec![],
        };
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            json!({"seqs": {"si_a_b": {"maxSeq": 5, "hasReadSeq": 3, "maxSeqTime": 1}}, "pinnedConversationIDs": []})
        );
        let r: sdkws::GetMaxSeqResp = serde_json::from_str(r#"{"maxSeqs":null,"minSeqs":{"x":1}}"#).unwrap();
        assert!(r.max_seqs.is_empty());
        assert_eq!(r.min_seqs["x"], 1);
    }

    #[test]
    fn protobuf_binary_round_trip() {
        let m = full_msg_data();
        let bytes = m.encode_to_vec();
        assert_eq!(sdkws::MsgData::decode(bytes.as_slice()).unwrap(), m);

        // Field numbers: sendID = 1 (tag 0x0a), seq = 14 (varint, tag 0x70), options = 19 (tag 0x9a 0x01).
        let only_seq = sdkws::MsgData { seq: 1, ..Default::default() }.encode_to_vec();
        assert_eq!(only_seq, [0x70, 0x01]);
        let only_send = sdkws::MsgData { send_id: "a".into(), ..Default::default() }.encode_to_vec();
        assert_eq!(only_send, [0x0a, 0x01, b'a']);

        let pull = sdkws::PullMessageBySeqsResp {
            msgs: HashMap::from([(
                "si_a_b".to_owned(),
                sdkws::PullMsgs { msgs: vec![m.clone()], is_end: true, end_seq: 7 },
            )]),
            notification_msgs: HashMap::new(),
        };
        assert_eq!(sdkws::PullMessageBySeqsResp::decode(pull.encode_to_vec().as_slice()).unwrap(), pull);

        // ConversationSeqs numbering starts at 2.
        let cs = msg::ConversationSeqs { conversation_id: "c".into(), seqs: vec![] }.encode_to_vec();
        assert_eq!(cs, [0x12, 0x01, b'c']);
    }
}
