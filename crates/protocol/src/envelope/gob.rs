//! A hand-written Go `encoding/gob` codec for the two envelope structs.
//!
//! # Why this shape
//!
//! Both upstream sides create a **new `gob.Encoder` for every frame** (`encoder.go`), so every frame is a complete
//! gob stream: one message defining the struct type, then one message holding the value. There is no state to
//! keep between frames, and a decoder must accept a fresh definition in each one.
//!
//! gob matches struct fields **by name** through that definition, never by position, and ignores type names
//! (the SDK calls its type `GeneralWsReq`, the server `Req`). So the decoder reads the definition, maps each wire
//! field to one of ours by its Go name, skips fields it does not know and leaves fields the sender did not send
//! at their zero value. That is how a Go decoder behaves, and it is what keeps a future SDK that adds a field
//! working.
//!
//! # Wire format (the parts used here; protocol doc §2.6 has a worked example)
//!
//! - **Stream**: a sequence of messages, each `uint byteCount` + `int typeId` + body. A negative `typeId`
//!   introduces the definition (a `wireType` value) of type `-typeId`; a positive one a value of that type.
//!   Definitions precede the value that needs them.
//! - **uint**: < 128 is one byte; otherwise the byte `-n` (two's complement) followed by `n` ≤ 8 big-endian
//!   bytes. **int**: zig-zag, `n<<1` or `(^n<<1)|1` for negative `n`, then as a uint.
//! - **string / []byte**: uint length, then the bytes.
//! - **struct**: for each *non-zero* field, the uint delta from the previous field number (starting at -1)
//!   followed by the field's value; then a `0` delta. Zero values are never sent. A top-level struct value has
//!   no leading byte (non-struct top-level values get a `0` first; envelopes are always structs).
//! - **slice / array**: uint count then the elements; **map**: uint count then key/value pairs;
//!   `GobEncoder`/`BinaryMarshaler`/`TextMarshaler` values: like `[]byte`. Pointers are flattened.
//! - **Predeclared type ids**: bool 1, int 2, uint 3, float 4, []byte 5, string 6, complex 7, interface 8.
//!   User types start at 65 (ids below 64 are reserved). Go's `int32` and `int` are both `int`.
//! - **Definitions** are `wireType` values, itself a struct whose fields are pointers of which exactly one is
//!   set: `ArrayT` 0, `SliceT` 1, `StructT` 2, `MapT` 3, `GobEncoderT` 4, `BinaryMarshalerT` 5,
//!   `TextMarshalerT` 6 (field numbers; the first delta is number + 1, hence "StructT = 03" in the doc). Inside:
//!   `CommonType{Name string; Id typeId}` is field 0 of each, then `arrayType{.., Elem typeId, Len int}`,
//!   `sliceType{.., Elem}`, `structType{.., Field []fieldType}`, `mapType{.., Key, Elem}`, with
//!   `fieldType{Name string; Id typeId}`.
//!
//! # Go's decoder behaviours reproduced
//!
//! - A type definition for an id below 64 or one already defined: "duplicate type received". Leftover bytes
//!   in a definition message: "extra data in buffer".
//! - A matched field whose wire type differs from ours (`int` for ints, `string`, `[]byte`): "wrong type".
//!   A definition with fields none of which match: "type mismatch: no fields matched".
//! - An `int` that does not fit the field: "value out of range" (we keep `ErrCode` as `i32` too).
//! - A struct ends at its `0` delta **or at the end of its message**; bytes after the value (in the message or
//!   the frame) are ignored, since Go's `Decode` reads one value and stops.
//!
//! Deliberate differences: strings must be valid UTF-8 (they become Rust `String`s; every SDK sends UTF-8);
//! `interface` values in unknown fields are refused rather than skipped (they may carry nested definitions and
//! no SDK sends them); unknown fields' types are checked only when the field is actually present.
//!
//! # Robustness
//!
//! Input is untrusted. Every read is bounds-checked; a length or count is compared with the bytes left before
//! anything is allocated or looped over (every encoded value takes at least one byte, so a count larger than
//! the remaining input is necessarily bogus); nesting of skipped values is limited to [`MAX_DEPTH`].

use std::collections::HashMap;

use super::{EnvelopeError, FIELDS, FieldRef, Kind, Schema, Value, Values};

/// Predeclared gob type ids (`encoding/gob/type.go`).
const BOOL: i32 = 1;
const INT: i32 = 2;
const UINT: i32 = 3;
const FLOAT: i32 = 4;
const BYTES: i32 = 5;
const STRING: i32 = 6;
const COMPLEX: i32 = 7;
const INTERFACE: i32 = 8;
/// Go's `firstUserId`: definitions for lower ids are refused.
const FIRST_USER_ID: i64 = 64;
/// The id a fresh Go encoder gives the first user type it sends, i.e. our envelope struct.
const ENVELOPE_TYPE_ID: i64 = 65;

/// Nesting limit for skipped values of composite types (recursive type definitions are legal in gob).
const MAX_DEPTH: u32 = 32;

/// The `Resp` type definition message exactly as a fresh Go encoder sends it (§2.6): `wireType{StructT:
/// {CommonType{"Resp", 65}, Field: [6 fields]}}` under type id -65, length-prefixed. It never changes, so it is
/// a constant prefix of every gob `Resp` frame.
const RESP_TYPE_DEF: &[u8] = b"\x60\xff\x81\x03\x01\x01\x04Resp\x01\xff\x82\x00\x01\x06\
    \x01\x0dReqIdentifier\x01\x04\x00\
    \x01\x07MsgIncr\x01\x0c\x00\
    \x01\x0bOperationID\x01\x0c\x00\
    \x01\x07ErrCode\x01\x04\x00\
    \x01\x06ErrMsg\x01\x0c\x00\
    \x01\x04Data\x01\x0a\x00\
    \x00\x00";

/// The SDK's `GeneralWsReq` type definition message, as the Go SDK sends it before every request.
const REQ_TYPE_DEF: &[u8] = b"\x66\xff\x81\x03\x01\x01\x0cGeneralWsReq\x01\xff\x82\x00\x01\x06\
    \x01\x0dReqIdentifier\x01\x04\x00\
    \x01\x05Token\x01\x0c\x00\
    \x01\x06SendID\x01\x0c\x00\
    \x01\x0bOperationID\x01\x0c\x00\
    \x01\x07MsgIncr\x01\x0c\x00\
    \x01\x04Data\x01\x0a\x00\
    \x00\x00";

fn err(msg: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Gob(msg.into())
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------------------------

/// gob `uint`: one byte below 128, else the negated byte count and the minimal big-endian bytes.
fn put_uint(out: &mut Vec<u8>, x: u64) {
    if x < 0x80 {
        out.push(x as u8);
    } else {
        let bytes = x.to_be_bytes();
        let skip = (x.leading_zeros() / 8) as usize;
        let n = bytes.len() - skip;
        out.push((n as u8).wrapping_neg());
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// gob `int`: zig-zag into a `uint`.
fn put_int(out: &mut Vec<u8>, i: i64) {
    let x = if i < 0 { ((!i as u64) << 1) | 1 } else { (i as u64) << 1 };
    put_uint(out, x);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Prefixes a message body with its length, appending the message to `out`.
fn put_message(out: &mut Vec<u8>, body: &[u8]) {
    put_uint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// Encodes one frame as a fresh Go `gob.Encoder` would: the (constant) type definition, then the value message
/// with zero-valued fields omitted.
pub(super) fn encode(schema: &Schema, fields: &[FieldRef<'_>; FIELDS]) -> Vec<u8> {
    let def = if schema.name == "Resp" { RESP_TYPE_DEF } else { REQ_TYPE_DEF };
    let mut body = Vec::with_capacity(64 + fields.iter().map(field_len).sum::<usize>());
    put_int(&mut body, ENVELOPE_TYPE_ID);
    let mut last: i64 = -1;
    for (i, f) in fields.iter().enumerate() {
        let is_zero = match f {
            FieldRef::Int(v) => *v == 0,
            FieldRef::Str(s) => s.is_empty(),
            FieldRef::Bytes(b) => b.is_empty(),
        };
        if is_zero {
            continue;
        }
        put_uint(&mut body, (i as i64 - last) as u64);
        last = i as i64;
        match f {
            FieldRef::Int(v) => put_int(&mut body, i64::from(*v)),
            FieldRef::Str(s) => put_bytes(&mut body, s.as_bytes()),
            FieldRef::Bytes(b) => put_bytes(&mut body, b),
        }
    }
    body.push(0);
    let mut out = Vec::with_capacity(def.len() + 9 + body.len());
    out.extend_from_slice(def);
    put_message(&mut out, &body);
    out
}

fn field_len(f: &FieldRef<'_>) -> usize {
    match f {
        FieldRef::Int(_) => 0,
        FieldRef::Str(s) => s.len(),
        FieldRef::Bytes(b) => b.len(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------------------

/// A bounds-checked reader over part of the frame.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if n > self.buf.len() {
            return Err(err(format!("unexpected end of data: need {n} bytes, have {}", self.buf.len())));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn uint(&mut self) -> Result<u64, EnvelopeError> {
        let b = *self.take(1)?.first().ok_or_else(|| err("unexpected end of data"))?;
        if b < 0x80 {
            return Ok(u64::from(b));
        }
        // The byte is -n in two's complement: 0xff = 1 byte follows, … 0xf8 = 8 bytes follow.
        let n = usize::from(b.wrapping_neg());
        if n > 8 {
            return Err(err(format!("encoded unsigned integer out of range (byte count {n})")));
        }
        Ok(self.take(n)?.iter().fold(0u64, |x, &b| (x << 8) | u64::from(b)))
    }

    fn int(&mut self) -> Result<i64, EnvelopeError> {
        let x = self.uint()?;
        let i = (x >> 1) as i64;
        Ok(if x & 1 != 0 { !i } else { i })
    }

    /// A `typeId` (Go `int32`, sent as an `int`).
    fn type_id(&mut self) -> Result<i32, EnvelopeError> {
        let i = self.int()?;
        i32::try_from(i).map_err(|_| err(format!("type id {i} out of range")))
    }

    /// A count or length: anything beyond the bytes left cannot be genuine, since every element or byte it
    /// announces takes at least one byte. Checking this first is what bounds allocation and loop lengths.
    fn count(&mut self) -> Result<usize, EnvelopeError> {
        let n = self.uint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(err(format!("length {n} exceeds the {} bytes left", self.buf.len()))),
        }
    }

    /// A `string` or `[]byte` value.
    fn byte_string(&mut self) -> Result<&'a [u8], EnvelopeError> {
        let n = self.count()?;
        self.take(n)
    }
}

/// Walks the fields of one struct value: calls `f` with each present field's number (guaranteed `< nfields`),
/// leaving the cursor on that field's value for `f` to consume. Stops at the `0` delta or, as Go's
/// `decodeStruct` does, at the end of the message.
fn struct_fields<'a>(
    c: &mut Cursor<'a>,
    nfields: usize,
    mut f: impl FnMut(&mut Cursor<'a>, usize) -> Result<(), EnvelopeError>,
) -> Result<(), EnvelopeError> {
    // Number of the next field if the delta is 1, i.e. last field number + 1 (the numbering starts at -1).
    let mut next = 0usize;
    while !c.is_empty() {
        let delta = c.uint()?;
        if delta == 0 {
            break;
        }
        let field = usize::try_from(delta - 1)
            .ok()
            .and_then(|d| next.checked_add(d))
            .filter(|&n| n < nfields)
            .ok_or_else(|| err(format!("field delta {delta} out of range for a struct of {nfields} fields")))?;
        f(c, field)?;
        next = field + 1;
    }
    Ok(())
}

/// One field of a received struct definition.
#[derive(Debug)]
struct WireField<'a> {
    name: &'a [u8],
    id: i32,
}

/// A received type definition, reduced to what decoding or skipping its values needs.
#[derive(Debug)]
enum WireType<'a> {
    Array {
        elem: i32,
        len: i64,
    },
    Slice {
        elem: i32,
    },
    Struct {
        name: &'a [u8],
        fields: Vec<WireField<'a>>,
    },
    Map {
        key: i32,
        elem: i32,
    },
    /// `GobEncoder`, `BinaryMarshaler` or `TextMarshaler`: the value is an opaque byte string.
    Opaque,
}

/// `CommonType{Name string; Id typeId}`: returns the name (the id is redundant with the message's).
fn common_type<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8], EnvelopeError> {
    let mut name: &[u8] = b"";
    struct_fields(c, 2, |c, f| {
        match f {
            0 => name = c.byte_string()?,
            _ => {
                c.type_id()?;
            }
        }
        Ok(())
    })?;
    Ok(name)
}

/// Parses a `wireType` value (the body of a definition message after its type id).
fn wire_type<'a>(c: &mut Cursor<'a>) -> Result<WireType<'a>, EnvelopeError> {
    let mut result: Option<WireType<'a>> = None;
    struct_fields(c, 7, |c, kind| {
        let t = match kind {
            0 => {
                let (mut elem, mut len) = (0, 0);
                struct_fields(c, 3, |c, f| {
                    match f {
                        0 => {
                            common_type(c)?;
                        }
                        1 => elem = c.type_id()?,
                        _ => len = c.int()?,
                    }
                    Ok(())
                })?;
                WireType::Array { elem, len }
            }
            1 => {
                let mut elem = 0;
                struct_fields(c, 2, |c, f| {
                    match f {
                        0 => {
                            common_type(c)?;
                        }
                        _ => elem = c.type_id()?,
                    }
                    Ok(())
                })?;
                WireType::Slice { elem }
            }
            2 => {
                let mut name: &[u8] = b"";
                let mut fields = Vec::new();
                struct_fields(c, 2, |c, f| {
                    match f {
                        0 => name = common_type(c)?,
                        _ => {
                            let n = c.count()?;
                            fields = Vec::with_capacity(n);
                            for _ in 0..n {
                                fields.push(field_type(c)?);
                            }
                        }
                    }
                    Ok(())
                })?;
                WireType::Struct { name, fields }
            }
            3 => {
                let (mut key, mut elem) = (0, 0);
                struct_fields(c, 3, |c, f| {
                    match f {
                        0 => {
                            common_type(c)?;
                        }
                        1 => key = c.type_id()?,
                        _ => elem = c.type_id()?,
                    }
                    Ok(())
                })?;
                WireType::Map { key, elem }
            }
            _ => {
                struct_fields(c, 1, |c, _| common_type(c).map(|_| ()))?;
                WireType::Opaque
            }
        };
        if result.is_some() {
            return Err(err("type definition sets more than one kind"));
        }
        result = Some(t);
        Ok(())
    })?;
    result.ok_or_else(|| err("empty type definition"))
}

/// `fieldType{Name string; Id typeId}`, one element of `structType.Field`.
fn field_type<'a>(c: &mut Cursor<'a>) -> Result<WireField<'a>, EnvelopeError> {
    let mut field = WireField { name: b"", id: 0 };
    struct_fields(c, 2, |c, f| {
        match f {
            0 => field.name = c.byte_string()?,
            _ => field.id = c.type_id()?,
        }
        Ok(())
    })?;
    Ok(field)
}

/// The gob type id Go uses for a field of this kind; a matched wire field must have exactly this type.
fn wire_id(kind: Kind) -> i32 {
    match kind {
        Kind::Int => INT,
        Kind::Str => STRING,
        Kind::Bytes => BYTES,
    }
}

fn go_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Int => "int32",
        Kind::Str => "string",
        Kind::Bytes => "[]uint8",
    }
}

/// Decodes one frame (a complete gob stream) into the fields of `schema`.
pub(super) fn decode(frame: &[u8], schema: &Schema) -> Result<Values, EnvelopeError> {
    if frame.is_empty() {
        return Err(err("empty frame"));
    }
    let mut input = Cursor { buf: frame };
    let mut types: HashMap<i32, WireType<'_>> = HashMap::new();
    loop {
        if input.is_empty() {
            return Err(err("unexpected end of frame: type definitions without a value"));
        }
        let len = input
            .count()
            .map_err(|_| err(format!("invalid message length: frame has {} bytes left", input.buf.len())))?;
        let mut msg = Cursor { buf: input.take(len)? };
        let id = msg.type_id()?;
        if id > 0 {
            return decode_value(&mut msg, id, &types, schema);
        }
        if id == 0 {
            return Err(err("bad type id 0"));
        }
        let defined = -i64::from(id);
        let defined_id = i32::try_from(defined).map_err(|_| err(format!("type id {defined} out of range")))?;
        if defined < FIRST_USER_ID || types.contains_key(&defined_id) {
            return Err(err(format!("duplicate type received (id {defined})")));
        }
        let t = wire_type(&mut msg)?;
        if !msg.is_empty() {
            return Err(err("extra data in buffer after type definition"));
        }
        types.insert(defined_id, t);
    }
}

/// Decodes the top-level value of type `id`, which must be a struct defined in this frame.
fn decode_value(
    msg: &mut Cursor<'_>,
    id: i32,
    types: &HashMap<i32, WireType<'_>>,
    schema: &Schema,
) -> Result<Values, EnvelopeError> {
    let Some(WireType::Struct { name, fields }) = types.get(&id) else {
        return Err(err(format!(
            "decoding into local type {}: received type id {id}, which is not a struct defined in this frame",
            schema.name
        )));
    };
    // Map wire fields to ours by name, checking types as Go's compileDec does.
    let mut plan: Vec<Option<usize>> = Vec::with_capacity(fields.len());
    for wf in fields {
        let local = schema.fields.iter().position(|f| f.go.as_bytes() == wf.name);
        if let Some(i) = local {
            let kind = schema.fields[i].kind;
            if wf.id != wire_id(kind) {
                return Err(err(format!(
                    "wrong type ({}) for received field {}.{}",
                    go_type(kind),
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(wf.name)
                )));
            }
        }
        plan.push(local);
    }
    if !fields.is_empty() && plan.iter().all(Option::is_none) {
        return Err(err(format!("type mismatch: no fields matched compiling decoder for {}", schema.name)));
    }

    let mut values = schema.zero_values();
    struct_fields(msg, fields.len(), |c, f| match plan.get(f).copied().flatten() {
        Some(i) => {
            let spec = &schema.fields[i];
            values[i] = match spec.kind {
                Kind::Int => {
                    let v = c.int()?;
                    Value::Int(
                        i32::try_from(v).map_err(|_| err(format!("value {v} out of range for field {}", spec.go)))?,
                    )
                }
                Kind::Str => Value::Str(
                    std::str::from_utf8(c.byte_string()?)
                        .map_err(|_| err(format!("field {} is not valid UTF-8", spec.go)))?
                        .to_owned(),
                ),
                Kind::Bytes => Value::Bytes(c.byte_string()?.to_vec()),
            };
            Ok(())
        }
        None => match fields.get(f) {
            Some(wf) => skip(c, wf.id, types, 1),
            None => Err(err("field number out of range")),
        },
    })?;
    Ok(values)
}

/// Consumes one value of wire type `id` without storing it (Go's `decIgnoreOpFor`), for fields we do not know.
fn skip(c: &mut Cursor<'_>, id: i32, types: &HashMap<i32, WireType<'_>>, depth: u32) -> Result<(), EnvelopeError> {
    if depth > MAX_DEPTH {
        return Err(err("value nesting too deep"));
    }
    match id {
        BOOL | INT | UINT | FLOAT => {
            // bool is a uint 0/1, float a byte-reversed uint.
            c.uint()?;
        }
        BYTES | STRING => {
            c.byte_string()?;
        }
        COMPLEX => {
            c.uint()?;
            c.uint()?;
        }
        INTERFACE => return Err(err("cannot skip an interface value in an unknown field")),
        _ => match types.get(&id) {
            None => return Err(err(format!("undefined type id {id}"))),
            Some(WireType::Array { elem, len }) => {
                let n = c.count()?;
                if i64::try_from(n) != Ok(*len) {
                    return Err(err(format!("length mismatch in array: {n} elements for length {len}")));
                }
                for _ in 0..n {
                    skip(c, *elem, types, depth + 1)?;
                }
            }
            Some(WireType::Slice { elem }) => {
                for _ in 0..c.count()? {
                    skip(c, *elem, types, depth + 1)?;
                }
            }
            Some(WireType::Map { key, elem }) => {
                for _ in 0..c.count()? {
                    skip(c, *key, types, depth + 1)?;
                    skip(c, *elem, types, depth + 1)?;
                }
            }
            Some(WireType::Struct { fields, .. }) => {
                struct_fields(c, fields.len(), |c, f| match fields.get(f) {
                    Some(wf) => skip(c, wf.id, types, depth + 1),
                    None => Err(err("field number out of range")),
                })?;
            }
            Some(WireType::Opaque) => {
                c.byte_string()?;
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Encoding, FrameFormat, REQ_SCHEMA, RESP_SCHEMA, Req, Resp};
    use super::*;

    const GOB: FrameFormat = FrameFormat { encoding: Encoding::Gob, gzip: false };

    /// Builds a struct type definition message the generic way, to check the constants and to hand-craft
    /// frames from other "senders".
    fn struct_def(id: i64, name: &str, fields: &[(&str, i64)]) -> Vec<u8> {
        let mut body = Vec::new();
        put_int(&mut body, -id);
        put_uint(&mut body, 3); // wireType.StructT
        put_uint(&mut body, 1); // structType.CommonType
        put_uint(&mut body, 1);
        put_bytes(&mut body, name.as_bytes());
        put_uint(&mut body, 1);
        put_int(&mut body, id);
        put_uint(&mut body, 0);
        put_uint(&mut body, 1); // structType.Field
        put_uint(&mut body, fields.len() as u64);
        for (name, ty) in fields {
            put_uint(&mut body, 1);
            put_bytes(&mut body, name.as_bytes());
            put_uint(&mut body, 1);
            put_int(&mut body, *ty);
            put_uint(&mut body, 0);
        }
        put_uint(&mut body, 0); // end structType
        put_uint(&mut body, 0); // end wireType
        let mut out = Vec::new();
        put_message(&mut out, &body);
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn ints_match_go() {
        let enc = |f: fn(&mut Vec<u8>, i64), v: i64| {
            let mut out = Vec::new();
            f(&mut out, v);
            out
        };
        let uint = |out: &mut Vec<u8>, v: i64| put_uint(out, v as u64);
        assert_eq!(enc(uint, 0), [0x00]);
        assert_eq!(enc(uint, 127), [0x7f]);
        assert_eq!(enc(uint, 128), [0xff, 0x80]);
        assert_eq!(enc(uint, 256), [0xfe, 0x01, 0x00]);
        assert_eq!(enc(uint, -1), [0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(enc(put_int, 1001), [0xfe, 0x07, 0xd2]);
        assert_eq!(enc(put_int, 65), [0xff, 0x82]);
        assert_eq!(enc(put_int, -65), [0xff, 0x81]);
        assert_eq!(enc(put_int, -1), [0x01]);
        assert_eq!(enc(put_int, i64::MIN), [0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        for v in [0, 1, -1, 63, 64, -64, -65, 1001, i64::from(i32::MIN), i64::MAX, i64::MIN] {
            let bytes = enc(put_int, v);
            let mut c = Cursor { buf: &bytes };
            assert_eq!(c.int().unwrap(), v);
            assert!(c.is_empty());
        }
    }

    #[test]
    fn type_def_constants_match_the_generic_encoder() {
        let resp: Vec<_> = RESP_SCHEMA.fields.iter().map(|f| (f.go, i64::from(wire_id(f.kind)))).collect();
        assert_eq!(RESP_TYPE_DEF, struct_def(65, "Resp", &resp));
        let req: Vec<_> = REQ_SCHEMA.fields.iter().map(|f| (f.go, i64::from(wire_id(f.kind)))).collect();
        assert_eq!(REQ_TYPE_DEF, struct_def(65, "GeneralWsReq", &req));
    }

    /// The worked example of protocol doc §2.6, byte for byte.
    #[test]
    fn resp_matches_protocol_doc_example() {
        let mut expected = hex("60 ff81 03 01 01 04");
        expected.extend_from_slice(b"Resp");
        expected.extend(hex("01 ff82 00 01 06"));
        for (name, ty) in [
            ("ReqIdentifier", 4),
            ("MsgIncr", 0xc),
            ("OperationID", 0xc),
            ("ErrCode", 4),
            ("ErrMsg", 0xc),
            ("Data", 0xa),
        ] {
            expected.extend([0x01, name.len() as u8]);
            expected.extend_from_slice(name.as_bytes());
            expected.extend([0x01, ty, 0x00]);
        }
        expected.extend(hex("00 00"));
        expected.extend(hex("19 ff82 01 fe07d2 01 07"));
        expected.extend_from_slice(b"alice_1");
        expected.extend(hex("01 03"));
        expected.extend_from_slice(b"op1");
        expected.extend(hex("03 02 0a00 00"));

        let resp = Resp {
            req_identifier: 1001,
            msg_incr: "alice_1".into(),
            operation_id: "op1".into(),
            data: vec![0x0a, 0x00],
            ..Resp::default()
        };
        assert_eq!(GOB.encode_resp(&resp), expected);
        assert_eq!(GOB.decode_resp(&expected), Ok(resp));
    }

    #[test]
    fn req_encoding_matches_go_sdk_layout() {
        let req = Req {
            req_identifier: 1001,
            token: String::new(),
            send_id: "alice".into(),
            operation_id: "op".into(),
            msg_incr: "alice_1".into(),
            data: vec![],
        };
        let frame = GOB.encode_req(&req);
        assert!(frame.starts_with(REQ_TYPE_DEF));
        // Token (field 1) and Data (field 5) are zero: SendID is delta 2 from ReqIdentifier.
        let mut value = hex("1b ff82 01 fe07d2 02 05");
        value.extend_from_slice(b"alice");
        value.extend(hex("01 02"));
        value.extend_from_slice(b"op");
        value.extend(hex("01 07"));
        value.extend_from_slice(b"alice_1");
        value.push(0);
        assert_eq!(&frame[REQ_TYPE_DEF.len()..], value);
        assert_eq!(GOB.decode_req(&frame), Ok(req));
    }

    /// A sender whose struct lists the fields in another order, lacks `Token`, and has an extra `Extra string`
    /// field: written out by hand, independently of our encoder.
    #[test]
    fn decodes_by_name_in_any_order_skipping_unknown_fields() {
        let mut frame = vec![0x66, 0xff, 0x81, 0x03, 0x01, 0x01, 0x0c];
        frame.extend_from_slice(b"GeneralWsReq");
        frame.extend(hex("01 ff82 00 01 06"));
        for (name, ty) in [
            ("Data", 0xa),
            ("MsgIncr", 0xc),
            ("Extra", 0xc),
            ("OperationID", 0xc),
            ("SendID", 0xc),
            ("ReqIdentifier", 4),
        ] {
            frame.extend([0x01, name.len() as u8]);
            frame.extend_from_slice(name.as_bytes());
            frame.extend([0x01, ty, 0x00]);
        }
        frame.extend(hex("00 00"));
        frame.extend(hex("1b ff82 01 02 0102 01 02"));
        frame.extend_from_slice(b"m1");
        frame.extend(hex("01 02"));
        frame.extend_from_slice(b"zz");
        frame.extend(hex("01 02"));
        frame.extend_from_slice(b"op");
        frame.extend(hex("01 02"));
        frame.extend_from_slice(b"u1");
        frame.extend(hex("01 fe07d6 00"));
        let fields =
            [("Data", 5), ("MsgIncr", 6), ("Extra", 6), ("OperationID", 6), ("SendID", 6), ("ReqIdentifier", 2)];
        assert_eq!(
            frame[..0x67],
            struct_def(65, "GeneralWsReq", &fields),
            "the hand-written definition is well-formed"
        );

        let req = GOB.decode_req(&frame).unwrap();
        assert_eq!(
            req,
            Req {
                req_identifier: 1003,
                token: String::new(),
                send_id: "u1".into(),
                operation_id: "op".into(),
                msg_incr: "m1".into(),
                data: vec![1, 2],
            }
        );
        assert_eq!(req.validate(), Ok(()));
    }

    /// Values of every skippable kind in unknown fields, including user-defined composite types.
    #[test]
    fn skips_unknown_fields_of_every_supported_type() {
        // Type 66: struct Inner { A int; B []byte }; 67: []Inner; 68: map[string]int; 69: [2]bool;
        // 70: a GobEncoder.
        let mut frame = struct_def(66, "Inner", &[("A", 2), ("B", 5)]);
        let mut slice = Vec::new();
        put_int(&mut slice, -67);
        slice.extend(hex("02 01 02 ff86 00 01 ff84 00 00")); // SliceT{CommonType{Id 67}, Elem 66}
        put_message(&mut frame, &slice);
        let mut map = Vec::new();
        put_int(&mut map, -68);
        map.extend(hex("04 01 02 ff88 00 01 0c 01 04 00 00")); // MapT{CommonType{Id 68}, Key string, Elem int}
        put_message(&mut frame, &map);
        let mut array = Vec::new();
        put_int(&mut array, -69);
        array.extend(hex("01 01 02 ff8a 00 01 02 01 04 00 00")); // ArrayT{CommonType{Id 69}, Elem bool, Len 2}
        put_message(&mut frame, &array);
        let mut opaque = Vec::new();
        put_int(&mut opaque, -70);
        opaque.extend(hex("05 01 02 ff8c 00 00 00")); // GobEncoderT{CommonType{Id 70}}
        put_message(&mut frame, &opaque);
        frame.extend(struct_def(
            65,
            "Future",
            &[
                ("B", 1),
                ("U", 3),
                ("F", 4),
                ("C", 7),
                ("SendID", 6),
                ("In", 66),
                ("Sl", 67),
                ("M", 68),
                ("Ar", 69),
                ("G", 70),
                ("ReqIdentifier", 2),
            ],
        ));
        let mut value = Vec::new();
        put_int(&mut value, 65);
        value.extend(hex("01 01")); // B = true
        value.extend(hex("01 fe 0100")); // U = 256
        value.extend(hex("01 fe f03f")); // F = 1.0 (byte-reversed float64)
        value.extend(hex("01 fe f03f 00")); // C = 1+0i
        value.extend(hex("01 01 78")); // SendID = "x"
        value.extend(hex("01 01 0e 01 02 aabb 00")); // In = {A: 7, B: aabb}
        value.extend(hex("01 02 00 01 02 00")); // Sl = [{}, {A: 1}]
        value.extend(hex("01 01 01 6b 06")); // M = {"k": 3}
        value.extend(hex("01 02 01 00")); // Ar = [true, false]
        value.extend(hex("01 03 010203")); // G = opaque 010203
        value.extend(hex("01 fe07d2 00")); // ReqIdentifier = 1001
        put_message(&mut frame, &value);

        let req = GOB.decode_req(&frame).unwrap();
        assert_eq!(req, Req { req_identifier: 1001, send_id: "x".into(), ..Req::default() });
    }

    #[test]
    fn tolerant_shapes() {
        // Missing terminator at the end of the message, and trailing bytes after the value: both as Go.
        let resp = Resp { req_identifier: 7, ..Resp::default() };
        let mut frame = RESP_TYPE_DEF.to_vec();
        frame.extend(hex("04 ff82 01 0e"));
        frame.extend(hex("05 ff82 01 0e 00 99"));
        assert_eq!(GOB.decode_resp(&frame), Ok(resp));
        // An unrelated type definition before ours is fine.
        let mut frame = struct_def(70, "Other", &[("X", 2)]);
        frame.extend(struct_def(65, "Resp", &[("ErrMsg", 6)]));
        frame.extend(hex("05 ff82 01 01 61 00"));
        assert_eq!(GOB.decode_resp(&frame), Ok(Resp { err_msg: "a".into(), ..Resp::default() }));
        // A struct with no fields at all decodes to zero (Go only complains when fields exist but none match).
        let mut frame = struct_def(65, "Empty", &[]);
        frame.extend(hex("03 ff82 00"));
        assert_eq!(GOB.decode_req(&frame), Ok(Req::default()));
    }

    fn gob_err(frame: &[u8]) -> String {
        match GOB.decode_req(frame) {
            Err(EnvelopeError::Gob(msg)) => msg,
            other => panic!("expected a gob error, got {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_frames() {
        let good = GOB.encode_req(&Req { req_identifier: 1001, send_id: "a".into(), ..Req::default() });
        // Every truncation is an error.
        for len in 0..good.len() {
            assert!(GOB.decode_req(&good[..len]).is_err(), "truncated to {len}");
        }
        assert!(gob_err(&[]).contains("empty"));
        assert!(gob_err(REQ_TYPE_DEF).contains("without a value"));
        assert!(gob_err(&hex("ff ffff")).contains("length"));
        assert!(gob_err(&hex("f8 ffffffffffffffff")).contains("length"));
        assert!(gob_err(&hex("81 00")).contains("length"));
        // A value with no definition, a definition of a reserved id, a duplicate definition.
        assert!(gob_err(&hex("03 ff82 00")).contains("not a struct"));
        assert!(gob_err(&hex("02 04 00")).contains("not a struct"));
        assert!(gob_err(&hex("02 00 00")).contains("bad type id"));
        let mut reserved = struct_def(60, "X", &[("SendID", 6)]);
        reserved.extend(hex("03 ff78 00"));
        assert!(gob_err(&reserved).contains("duplicate type"));
        let mut dup = REQ_TYPE_DEF.to_vec();
        dup.extend_from_slice(REQ_TYPE_DEF);
        assert!(gob_err(&dup).contains("duplicate type"));
        // Wrong field type, and no matching field.
        let mut wrong = struct_def(65, "Req", &[("ReqIdentifier", 6)]);
        wrong.extend(hex("03 ff82 00"));
        assert!(gob_err(&wrong).contains("wrong type (int32) for received field Req.ReqIdentifier"));
        let mut none = struct_def(65, "Other", &[("Foo", 2)]);
        none.extend(hex("03 ff82 00"));
        assert!(gob_err(&none).contains("no fields matched"));
        // Out-of-range int, field delta past the end, bad UTF-8.
        let mut big = REQ_TYPE_DEF.to_vec();
        big.extend(hex("0a ff82 01 fb 0100000000 00"));
        assert!(gob_err(&big).contains("out of range"));
        let mut delta = REQ_TYPE_DEF.to_vec();
        delta.extend(hex("04 ff82 07 00"));
        assert!(gob_err(&delta).contains("delta"));
        let mut utf8 = REQ_TYPE_DEF.to_vec();
        utf8.extend(hex("07 ff82 03 02 c328 00"));
        assert!(gob_err(&utf8).contains("UTF-8"));
        // Extra data after a definition; a definition setting two kinds.
        let mut extra = struct_def(65, "X", &[("SendID", 6)]);
        extra[0] += 1;
        extra.insert(extra.len(), 0x00);
        extra.extend(hex("03 ff82 00"));
        assert!(gob_err(&extra).contains("extra data"));
        assert!(gob_err(&hex("08 ff81 02 02 04 00 01 00 00")).contains("more than one kind"));
        // An unknown interface field is refused; an unknown field of an undefined type too.
        let mut iface = struct_def(65, "X", &[("SendID", 6), ("I", 8)]);
        iface.extend(hex("03 ff82 02 00"));
        assert!(gob_err(&iface).contains("interface"));
        let mut undef = struct_def(65, "X", &[("SendID", 6), ("I", 99)]);
        undef.extend(hex("03 ff82 02 00"));
        assert!(gob_err(&undef).contains("undefined type"));
        // A uint with a 9-byte count.
        let mut nine = REQ_TYPE_DEF.to_vec();
        nine.extend(hex("0e ff82 01 f7 000000000000000001 00"));
        assert!(gob_err(&nine).contains("out of range"));
    }

    /// A self-referential type (`type T []T`) with deeply nested values must hit the depth limit, not the stack.
    #[test]
    fn deep_nesting_is_bounded() {
        // Type 66 = SliceT{CommonType{Id: 66}, Elem: 66}; type 65 = struct { SendID string; Deep T }.
        let mut defs = Vec::new();
        let mut slice = Vec::new();
        put_int(&mut slice, -66);
        slice.extend(hex("02 01 02 ff84 00 01 ff84 00 00"));
        put_message(&mut defs, &slice);
        defs.extend(struct_def(65, "X", &[("SendID", 6), ("Deep", 66)]));

        let frame_with = |nesting: usize| {
            let mut value = Vec::new();
            put_int(&mut value, 65);
            value.extend(hex("01 01 61 01")); // SendID = "a", then Deep:
            value.extend(std::iter::repeat_n(0x01, nesting)); // [[[[…
            value.extend(hex("00 00")); // innermost empty slice, end of struct
            let mut frame = defs.clone();
            put_message(&mut frame, &value);
            frame
        };
        assert!(gob_err(&frame_with(10_000)).contains("too deep"));
        assert_eq!(GOB.decode_req(&frame_with(5)).unwrap().send_id, "a");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Random value messages behind a valid definition exercise the field walker and skipper, which random
        /// frames rarely reach.
        #[test]
        fn random_values_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut frame = struct_def(66, "Inner", &[("A", 2), ("B", 5)]);
            frame.extend(struct_def(65, "X", &[("SendID", 6), ("In", 66), ("F", 4), ("ReqIdentifier", 2)]));
            let mut value = Vec::new();
            put_int(&mut value, 65);
            value.extend(&body);
            put_message(&mut frame, &value);
            let _ = GOB.decode_req(&frame);
        }

        /// Random definition bodies exercise the `wireType` parser.
        #[test]
        fn random_definitions_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut frame = Vec::new();
            let mut def = Vec::new();
            put_int(&mut def, -65);
            def.extend(&body);
            put_message(&mut frame, &def);
            frame.extend(hex("03 ff82 00"));
            let _ = GOB.decode_req(&frame);
        }
    }
}
