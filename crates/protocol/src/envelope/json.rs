//! The JSON envelope (`sdkType=js`), with Go `encoding/json` semantics on both sides.
//!
//! Upstream's JSON encoder is plain `json.Marshal`/`json.Unmarshal` on the tagged structs, so:
//!
//! - **Output** is written by hand to be byte-identical to `json.Marshal`: keys in Go declaration order,
//!   strings escaped as Go escapes them (including its HTML-safe `\u003c`, `\u003e`, `\u0026` and
//!   `\u2028`/`\u2029`), `data` as padded standard base64, and an empty `data` as `null` (a nil `[]byte`; the
//!   server never has a non-nil empty one).
//! - **Input** follows `json.Unmarshal`: keys match exactly or case-insensitively (Go's fold: ASCII case plus
//!   `ſ`≈`s` and the Kelvin sign `K`≈`k`); unknown keys are ignored; for a repeated key the last one wins;
//!   `null` leaves a number or string untouched and clears `data`; a top-level `null` is an all-zero envelope.
//!   `data` may be base64 (standard alphabet, padding required, `\r`/`\n` ignored, as Go's `StdEncoding`) or,
//!   as Go also allows for `[]byte`, an array of byte values. Numbers must be integers that fit `int32`.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{EnvelopeError, FIELDS, FieldRef, Kind, Schema, Value, Values};

/// Go's `base64.StdEncoding` as a decoder: padding required, non-zero trailing bits tolerated (Go only rejects
/// them in `Strict` mode).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Encodes one envelope as Go's `json.Marshal` would.
pub(super) fn encode(schema: &Schema, fields: &[FieldRef<'_>; FIELDS]) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    out.push('{');
    for (i, (spec, value)) in schema.fields.iter().zip(fields).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(spec.json);
        out.push_str("\":");
        match value {
            FieldRef::Int(v) => out.push_str(&v.to_string()),
            FieldRef::Str(s) => push_go_string(&mut out, s),
            FieldRef::Bytes([]) => out.push_str("null"),
            FieldRef::Bytes(b) => {
                out.push('"');
                STANDARD.encode_string(b, &mut out);
                out.push('"');
            }
        }
    }
    out.push('}');
    out.into_bytes()
}

/// Appends `s` as a JSON string literal escaped exactly as Go's `encoding/json` does with HTML escaping on.
fn push_go_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Decodes one envelope as Go's `json.Unmarshal` would into the struct described by `schema`.
pub(super) fn decode(bytes: &[u8], schema: &Schema) -> Result<Values, EnvelopeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let values = Envelope(schema)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| EnvelopeError::Json(e.to_string()))?;
    Ok(values)
}

/// Go's case-insensitive key match for our (ASCII) field names: each key character equals the name's, or
/// folds to it. Go folds through `unicode.SimpleFold`, whose only non-ASCII members of ASCII letters' orbits
/// are `ſ` (U+017F, with `s`/`S`) and the Kelvin sign (U+212A, with `k`/`K`).
fn go_fold_eq(key: &str, name: &str) -> bool {
    let mut key = key.chars();
    for n in name.chars() {
        let Some(k) = key.next() else { return false };
        let same = k.eq_ignore_ascii_case(&n)
            || (k == '\u{17f}' && n.eq_ignore_ascii_case(&'s'))
            || (k == '\u{212a}' && n.eq_ignore_ascii_case(&'k'));
        if !same {
            return false;
        }
    }
    key.next().is_none()
}

/// Deserializes the top-level object, visiting keys in document order so that "last one wins" holds across
/// case variants as well.
struct Envelope<'s>(&'s Schema);

impl<'de> DeserializeSeed<'de> for Envelope<'_> {
    type Value = Values;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Values, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Envelope<'_> {
    type Value = Values;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object (envelope {})", self.0.name)
    }

    /// A top-level `null`: `json.Unmarshal` accepts it and leaves the struct zero.
    fn visit_unit<E: de::Error>(self) -> Result<Values, E> {
        Ok(self.0.zero_values())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Values, A::Error> {
        let schema = self.0;
        let mut values = schema.zero_values();
        while let Some(key) = map.next_key::<String>()? {
            let index = schema
                .fields
                .iter()
                .position(|f| f.json == key)
                .or_else(|| schema.fields.iter().position(|f| go_fold_eq(&key, f.json)));
            let Some(i) = index else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match schema.fields[i].kind {
                Kind::Int => {
                    if let Some(v) = map.next_value::<Option<i32>>()? {
                        values[i] = Value::Int(v);
                    }
                }
                Kind::Str => {
                    if let Some(v) = map.next_value::<Option<String>>()? {
                        values[i] = Value::Str(v);
                    }
                }
                Kind::Bytes => values[i] = Value::Bytes(map.next_value_seed(GoBytes)?),
            }
        }
        Ok(values)
    }
}

/// A Go `[]byte` in JSON: base64 string, array of byte values, or `null` (nil).
struct GoBytes;

impl<'de> DeserializeSeed<'de> for GoBytes {
    type Value = Vec<u8>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for GoBytes {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string, an array of bytes or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
        let result =
            if s.contains(['\r', '\n']) { GO_STD.decode(s.replace(['\r', '\n'], "")) } else { GO_STD.decode(s) };
        result.map_err(|e| E::custom(format_args!("data: illegal base64 data: {e}")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // No size hint is trusted: the vector grows with what the input actually contains.
        let mut out = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Encoding, FrameFormat, Req, Resp};
    use super::*;

    const JSON: FrameFormat = FrameFormat { encoding: Encoding::Json, gzip: false };

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn encodes_like_go_json_marshal() {
        let resp = Resp {
            req_identifier: 1001,
            msg_incr: "alice_1".into(),
            operation_id: "op1".into(),
            err_code: 0,
            err_msg: String::new(),
            data: vec![0x0a, 0x00],
        };
        assert_eq!(
            text(JSON.encode_resp(&resp)),
            r#"{"reqIdentifier":1001,"msgIncr":"alice_1","operationID":"op1","errCode":0,"errMsg":"","data":"CgA="}"#
        );
        let kick = Resp { req_identifier: 2002, ..Resp::default() };
        assert_eq!(
            text(JSON.encode_resp(&kick)),
            r#"{"reqIdentifier":2002,"msgIncr":"","operationID":"","errCode":0,"errMsg":"","data":null}"#
        );
        let req = Req {
            req_identifier: -5,
            token: "t".into(),
            send_id: "bob".into(),
            operation_id: "op".into(),
            msg_incr: "m".into(),
            data: vec![0xff; 4],
        };
        assert_eq!(
            text(JSON.encode_req(&req)),
            r#"{"reqIdentifier":-5,"token":"t","sendID":"bob","operationID":"op","msgIncr":"m","data":"/////w=="}"#
        );
    }

    #[test]
    fn escapes_strings_like_go() {
        let mut out = String::new();
        push_go_string(&mut out, "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}<>&\u{2028}\u{2029}é😀\u{7f}");
        assert_eq!(out, r#""a\"\\\n\r\t\b\f\u0001\u001f\u003c\u003e\u0026\u2028\u2029é😀"#.to_owned() + "\u{7f}\"");
        // (DEL is not escaped by Go.) The output is valid JSON that reads back to the input.
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}<>&\u{2028}\u{2029}é😀\u{7f}");
    }

    #[test]
    fn decodes_like_go_json_unmarshal() {
        let req = JSON
            .decode_req(br#"{"msgIncr":"m1","data":"CgA=","reqIdentifier":1003,"sendID":"u1","operationID":"op","extra":{"x":[1,2]}}"#)
            .unwrap();
        assert_eq!(
            req,
            Req {
                req_identifier: 1003,
                token: String::new(),
                send_id: "u1".into(),
                operation_id: "op".into(),
                msg_incr: "m1".into(),
                data: vec![0x0a, 0x00],
            }
        );
        // Case-insensitive keys, Go's special folds, last one wins, nulls.
        let req = JSON
            .decode_req(
                "{\"REQIDENTIFIER\":1,\"reqidentifier\":2,\"\u{17f}endid\":\"s\",\"Token\":\"t\",\"token\":null,\
                 \"data\":\"AA==\",\"DATA\":null,\"msgIncr\":null}"
                    .as_bytes(),
            )
            .unwrap();
        assert_eq!(req, Req { req_identifier: 2, send_id: "s".into(), token: "t".into(), ..Req::default() });
        // Data as missing, as an array of bytes, base64 with line breaks; top-level null.
        assert_eq!(JSON.decode_resp(b"{}"), Ok(Resp::default()));
        assert_eq!(JSON.decode_resp(br#"{"data":[1,2,255]}"#).unwrap().data, [1, 2, 255]);
        assert_eq!(JSON.decode_resp(br#"{"data":"Cg\r\nA="}"#).unwrap().data, [0x0a, 0]);
        assert_eq!(JSON.decode_resp(br#"{"errCode":-1,"errMsg":"x\u003c"}"#).unwrap().err_msg, "x<");
        assert_eq!(JSON.decode_req(b" null "), Ok(Req::default()));
        assert!(go_fold_eq("\u{212a}", "k") && !go_fold_eq("sendI", "sendID") && !go_fold_eq("sendIDx", "sendID"));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            &b""[..],
            b"[]",
            b"\"x\"",
            b"{",
            b"{\"reqIdentifier\":1}x",
            b"{\"reqIdentifier\":1.5}",
            b"{\"reqIdentifier\":\"1\"}",
            b"{\"reqIdentifier\":2147483648}",
            b"{\"sendID\":5}",
            b"{\"data\":\"CgA\"}",
            b"{\"data\":\"!!!!\"}",
            b"{\"data\":[256]}",
            b"{\"data\":5}",
        ] {
            let e = JSON.decode_req(bad).expect_err(&String::from_utf8_lossy(bad));
            assert!(matches!(e, EnvelopeError::Json(_)), "{e:?}");
        }
        // Deep nesting in an ignored key: serde_json skips ignored values iteratively, so this is fine for the
        // stack (Go would refuse beyond 10,000 levels; accepting it is harmless).
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(JSON.decode_req(deep.as_bytes()).is_ok());
    }
}
