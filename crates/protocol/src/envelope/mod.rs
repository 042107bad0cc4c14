//! The gateway envelope: OpenIM's `Req`/`Resp` wrapper around every WebSocket frame.
//!
//! Every binary frame on the gateway carries one envelope (protocol doc §2.5–§2.8):
//!
//! ```text
//! Req  { ReqIdentifier int32; Token string; SendID string; OperationID string; MsgIncr string; Data []byte }  // client → server
//! Resp { ReqIdentifier int32; MsgIncr string; OperationID string; ErrCode int; ErrMsg string; Data []byte }   // server → client
//! ```
//!
//! How it is serialized depends on the connection's query parameters, captured once in a [`FrameFormat`]:
//!
//! - `sdkType` absent or `go` (Go and wasm SDKs) → Go `encoding/gob` ([`Encoding::Gob`], see the `gob` module);
//! - `sdkType=js` (JS SDK) → JSON ([`Encoding::Json`], see the `json` module);
//! - `compression=gzip` → each frame, in both directions, is additionally one complete gzip member.
//!
//! Everything here is pure: bytes in, values out. Decoders treat their input as hostile (it comes straight off
//! the network): they never panic, never allocate more than the input justifies (gzip output is capped at
//! [`MAX_DECOMPRESSED`]) and never recurse without a bound.
//!
//! Decoding does not validate: upstream decodes first and then runs `validate:"required"`, closing the
//! connection on either failure, so a server calls [`FrameFormat::decode_req`] and then [`Req::validate`].

mod gob;
mod json;

use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};

/// Upper bound on the size of a gunzipped frame, in bytes.
///
/// The gateway's read limit (51,200 bytes, §2.8) applies to the *compressed* frame, and gzip can expand input
/// about a thousandfold, so the decompressed size needs its own cap or a small frame could make us allocate
/// tens of megabytes. 1 MiB is the SDK's own read limit: no legitimate envelope is larger.
pub const MAX_DECOMPRESSED: usize = 1 << 20;

/// A client → server envelope (upstream `msggateway.Req`, the SDK's `GeneralWsReq`).
///
/// The SDKs always send an empty `token` (§2.8); `data` is a protobuf message chosen by `req_identifier`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Req {
    pub req_identifier: i32,
    pub token: String,
    pub send_id: String,
    pub operation_id: String,
    pub msg_incr: String,
    pub data: Vec<u8>,
}

/// A server → client envelope (upstream `msggateway.Resp`, the SDK's `GeneralWsResp`).
///
/// Replies echo `req_identifier`, `msg_incr` and `operation_id` of their request, which is how the SDK matches
/// them (§2.8). Pushes (2001, 2005) and kicks (2002) have an empty `msg_incr`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resp {
    pub req_identifier: i32,
    pub msg_incr: String,
    pub operation_id: String,
    pub err_code: i32,
    pub err_msg: String,
    pub data: Vec<u8>,
}

/// How envelopes are serialized on a connection (query parameter `sdkType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Go `encoding/gob`: `sdkType` absent or `go` (Go and wasm SDKs).
    Gob,
    /// JSON with Go `encoding/json` conventions: `sdkType=js` (JS SDK).
    Json,
}

/// The complete framing of one connection: envelope encoding plus optional per-frame gzip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameFormat {
    pub encoding: Encoding,
    /// `compression=gzip`: every frame, in both directions, is one complete gzip member.
    pub gzip: bool,
}

/// Why a frame could not be decoded, or an envelope is invalid.
///
/// Upstream closes the connection on any of these (§2.8), so the messages are for logs, not for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The frame is not a valid gzip stream.
    #[error("gzip: {0}")]
    Gzip(String),
    /// The frame gunzips to more than [`MAX_DECOMPRESSED`] bytes.
    #[error("gzip: decompressed frame exceeds {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    /// The (decompressed) frame is not a gob stream holding a compatible struct.
    #[error("gob: {0}")]
    Gob(String),
    /// The (decompressed) frame is not a JSON object holding a compatible envelope.
    #[error("json: {0}")]
    Json(String),
    /// A field that upstream marks `validate:"required"` is zero or empty.
    #[error("missing required field {0}")]
    MissingField(&'static str),
}

impl Req {
    /// Upstream's `validate:"required"` on the server's `Req`: `reqIdentifier` non-zero and `sendID`,
    /// `operationID`, `msgIncr` non-empty. `token` and `data` may be empty. The error names the first missing
    /// field by its JSON key.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if self.req_identifier == 0 {
            return Err(EnvelopeError::MissingField("reqIdentifier"));
        }
        if self.send_id.is_empty() {
            return Err(EnvelopeError::MissingField("sendID"));
        }
        if self.operation_id.is_empty() {
            return Err(EnvelopeError::MissingField("operationID"));
        }
        if self.msg_incr.is_empty() {
            return Err(EnvelopeError::MissingField("msgIncr"));
        }
        Ok(())
    }

    fn field_refs(&self) -> [FieldRef<'_>; FIELDS] {
        [
            FieldRef::Int(self.req_identifier),
            FieldRef::Str(&self.token),
            FieldRef::Str(&self.send_id),
            FieldRef::Str(&self.operation_id),
            FieldRef::Str(&self.msg_incr),
            FieldRef::Bytes(&self.data),
        ]
    }

    fn from_values(values: Values) -> Self {
        let [a, b, c, d, e, f] = values;
        Req {
            req_identifier: a.into_int(),
            token: b.into_string(),
            send_id: c.into_string(),
            operation_id: d.into_string(),
            msg_incr: e.into_string(),
            data: f.into_bytes(),
        }
    }
}

impl Resp {
    fn field_refs(&self) -> [FieldRef<'_>; FIELDS] {
        [
            FieldRef::Int(self.req_identifier),
            FieldRef::Str(&self.msg_incr),
            FieldRef::Str(&self.operation_id),
            FieldRef::Int(self.err_code),
            FieldRef::Str(&self.err_msg),
            FieldRef::Bytes(&self.data),
        ]
    }

    fn from_values(values: Values) -> Self {
        let [a, b, c, d, e, f] = values;
        Resp {
            req_identifier: a.into_int(),
            msg_incr: b.into_string(),
            operation_id: c.into_string(),
            err_code: d.into_int(),
            err_msg: e.into_string(),
            data: f.into_bytes(),
        }
    }
}

impl FrameFormat {
    /// Decodes a client → server frame. Does not [validate](Req::validate) it.
    pub fn decode_req(&self, frame: &[u8]) -> Result<Req, EnvelopeError> {
        self.decode(frame, &REQ_SCHEMA).map(Req::from_values)
    }

    /// Encodes a server → client frame, byte for byte as upstream's Go server would (modulo the DEFLATE stream
    /// when gzip is on).
    pub fn encode_resp(&self, resp: &Resp) -> Vec<u8> {
        self.encode(&RESP_SCHEMA, &resp.field_refs())
    }

    /// Encodes a client → server frame as the Go SDK would (gob type name `GeneralWsReq`). For Palaver's own
    /// client, load generator and tests.
    pub fn encode_req(&self, req: &Req) -> Vec<u8> {
        self.encode(&REQ_SCHEMA, &req.field_refs())
    }

    /// Decodes a server → client frame. For Palaver's own client, load generator and tests.
    pub fn decode_resp(&self, frame: &[u8]) -> Result<Resp, EnvelopeError> {
        self.decode(frame, &RESP_SCHEMA).map(Resp::from_values)
    }

    fn decode(&self, frame: &[u8], schema: &Schema) -> Result<Values, EnvelopeError> {
        let gunzipped;
        let bytes = if self.gzip {
            gunzipped = gunzip(frame)?;
            &gunzipped[..]
        } else {
            frame
        };
        match self.encoding {
            Encoding::Gob => gob::decode(bytes, schema),
            Encoding::Json => json::decode(bytes, schema),
        }
    }

    fn encode(&self, schema: &Schema, fields: &[FieldRef<'_>; FIELDS]) -> Vec<u8> {
        let encoded = match self.encoding {
            Encoding::Gob => gob::encode(schema, fields),
            Encoding::Json => json::encode(schema, fields),
        };
        if self.gzip { gzip(&encoded) } else { encoded }
    }
}

/// Gunzips one frame, refusing output beyond [`MAX_DECOMPRESSED`].
///
/// Go's `gzip.Reader` (what both upstream sides use, `compressor.go`) is multistream by default, so a frame of
/// several concatenated members decodes to their concatenation; so does this. Every member's CRC and length
/// trailer is verified. The inflater is one per thread, reset between members: a fresh one allocates and
/// zeroes its window and tables, which costs more than inflating a small frame.
fn gunzip(frame: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    thread_local! {
        static INFLATE: std::cell::RefCell<Decompress> = std::cell::RefCell::new(Decompress::new(false));
    }
    let corrupt = |why: &str| EnvelopeError::Gzip(why.to_string());
    if frame.is_empty() {
        return Err(corrupt("empty frame"));
    }
    let mut out = Vec::with_capacity(frame.len().saturating_mul(4).clamp(256, MAX_DECOMPRESSED + 1));
    let mut rest = frame;
    while !rest.is_empty() {
        let body = &rest[gzip_header_len(rest)?..];
        let start = out.len();
        let used = INFLATE.with_borrow_mut(|inflate| {
            inflate.reset(false);
            loop {
                if out.len() > MAX_DECOMPRESSED {
                    return Err(EnvelopeError::DecompressedTooLarge { limit: MAX_DECOMPRESSED });
                }
                if out.len() == out.capacity() {
                    // One byte past the cap is room enough to tell "exactly the cap" from "over it".
                    out.reserve((out.capacity()).min(MAX_DECOMPRESSED + 1 - out.len()).max(1));
                }
                let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
                let consumed = usize::try_from(before_in).unwrap_or(usize::MAX).min(body.len());
                let status = inflate
                    .decompress_vec(&body[consumed..], &mut out, FlushDecompress::None)
                    .map_err(|e| EnvelopeError::Gzip(e.to_string()))?;
                if status == Status::StreamEnd && out.len() <= MAX_DECOMPRESSED {
                    return Ok(usize::try_from(inflate.total_in()).unwrap_or(usize::MAX));
                }
                if status != Status::StreamEnd
                    && inflate.total_in() == before_in
                    && inflate.total_out() == before_out
                    && out.len() < out.capacity()
                {
                    return Err(corrupt("truncated deflate stream"));
                }
            }
        })?;
        let trailer = body.get(used..used + 8).ok_or_else(|| corrupt("truncated gzip trailer"))?;
        let mut crc = Crc::new();
        crc.update(&out[start..]);
        if trailer[..4] != crc.sum().to_le_bytes() {
            return Err(corrupt("gzip CRC mismatch"));
        }
        if trailer[4..] != ((out.len() - start) as u32).to_le_bytes() {
            return Err(corrupt("gzip length mismatch"));
        }
        rest = &body[used + 8..];
    }
    Ok(out)
}

/// The length of the gzip member header at the start of `member` (RFC 1952 §2.3: ten fixed bytes, then the
/// optional extra field, name, comment and header CRC that its flags announce).
fn gzip_header_len(member: &[u8]) -> Result<usize, EnvelopeError> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let corrupt = |why: &str| EnvelopeError::Gzip(why.to_string());
    if member.len() < 10 || member[..3] != [0x1f, 0x8b, 8] {
        return Err(corrupt("not a gzip member"));
    }
    let flags = member[3];
    if flags & 0xe0 != 0 {
        return Err(corrupt("reserved gzip flags set"));
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = member.get(at..at + 2).ok_or_else(|| corrupt("truncated gzip header"))?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = member.get(at..).and_then(|r| r.iter().position(|&b| b == 0));
            at += end.ok_or_else(|| corrupt("truncated gzip header"))? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if at > member.len() {
        return Err(corrupt("truncated gzip header"));
    }
    Ok(at)
}

/// Deflate level of the frames Palaver gzips. The fastest: frames are small protobuf payloads that compress
/// about as well at level 1 as at Go's default 6, and the server gzips every reply and push it sends.
const GZIP_LEVEL: u32 = 1;

/// Frames shorter than this are gzipped without compression (deflate "stored" blocks): deflating them saves a
/// few dozen bytes, while even a reused compressor first clears ~128 KB of hash tables. Any gzip reader takes
/// stored blocks; a typical 1:1 text push or send reply is well under this.
const GZIP_STORE_BELOW: usize = 512;

thread_local! {
    /// One raw-deflate compressor per thread, reset between frames: a fresh one allocates and zeroes ~300 KB of
    /// hash tables, which cost more than compressing a small frame (`palaver bench chat` profile).
    static DEFLATE: std::cell::RefCell<Compress> = std::cell::RefCell::new(Compress::new(Compression::new(GZIP_LEVEL), false));
}

/// Gzips one frame as a single member (RFC 1952: the fixed 10-byte header, raw deflate, CRC-32 and length).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    /// Magic, deflate, no flags, no mtime, no extra flags, OS unknown (as Go writes it).
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut out = Vec::with_capacity(HEADER.len() + bytes.len() + 64);
    out.extend_from_slice(&HEADER);
    if bytes.len() < GZIP_STORE_BELOW {
        // One final stored block (RFC 1951 §3.2.4): BFINAL=1 BTYPE=00, then LEN and its complement.
        let len = bytes.len() as u16;
        out.push(1);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(bytes);
    } else {
        DEFLATE.with_borrow_mut(|deflate| {
            deflate.reset();
            loop {
                let consumed = usize::try_from(deflate.total_in()).unwrap_or(bytes.len()).min(bytes.len());
                let status = deflate
                    .compress_vec(&bytes[consumed..], &mut out, FlushCompress::Finish)
                    .expect("deflating into a Vec cannot fail");
                if status == Status::StreamEnd {
                    break;
                }
                // `compress_vec` only fills spare capacity.
                out.reserve(out.capacity().max(256));
            }
        });
    }
    let mut crc = Crc::new();
    crc.update(bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out
}

/// Both envelope structs have six fields; the codecs work on them positionally through a [`Schema`].
const FIELDS: usize = 6;

/// The Go-side shape of a field, which is all that either codec needs to know about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Go `int32`/`int`; Palaver keeps both as `i32`.
    Int,
    /// Go `string`.
    Str,
    /// Go `[]byte`.
    Bytes,
}

/// One field of an envelope struct, under both of its names.
#[derive(Debug)]
struct FieldSpec {
    /// The Go field name: what gob matches on (case-sensitively).
    go: &'static str,
    /// The `json:"…"` tag: what JSON matches on (case-insensitively, as Go does).
    json: &'static str,
    kind: Kind,
}

/// One envelope struct: its Go name (for error messages) and its fields in Go declaration order, which is also
/// the order in which both encoders emit them.
#[derive(Debug)]
struct Schema {
    name: &'static str,
    fields: [FieldSpec; FIELDS],
}

const fn field(go: &'static str, json: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec { go, json, kind }
}

/// `Req`, in the SDK's `GeneralWsReq` field order (which is also upstream's).
static REQ_SCHEMA: Schema = Schema {
    name: "Req",
    fields: [
        field("ReqIdentifier", "reqIdentifier", Kind::Int),
        field("Token", "token", Kind::Str),
        field("SendID", "sendID", Kind::Str),
        field("OperationID", "operationID", Kind::Str),
        field("MsgIncr", "msgIncr", Kind::Str),
        field("Data", "data", Kind::Bytes),
    ],
};

/// `Resp`, in upstream's field order.
static RESP_SCHEMA: Schema = Schema {
    name: "Resp",
    fields: [
        field("ReqIdentifier", "reqIdentifier", Kind::Int),
        field("MsgIncr", "msgIncr", Kind::Str),
        field("OperationID", "operationID", Kind::Str),
        field("ErrCode", "errCode", Kind::Int),
        field("ErrMsg", "errMsg", Kind::Str),
        field("Data", "data", Kind::Bytes),
    ],
};

/// A borrowed field value, for encoding.
#[derive(Clone, Copy, Debug)]
enum FieldRef<'a> {
    Int(i32),
    Str(&'a str),
    Bytes(&'a [u8]),
}

/// An owned field value, produced by decoding.
#[derive(Debug)]
enum Value {
    Int(i32),
    Str(String),
    Bytes(Vec<u8>),
}

/// Decoded fields, in schema order.
type Values = [Value; FIELDS];

impl Value {
    /// The Go zero value of a field, which is what a field absent from the frame decodes to.
    fn zero(kind: Kind) -> Self {
        match kind {
            Kind::Int => Value::Int(0),
            Kind::Str => Value::Str(String::new()),
            Kind::Bytes => Value::Bytes(Vec::new()),
        }
    }

    // The codecs only ever store a value of the field's own kind, so the fallbacks below are unreachable; they
    // are zero values rather than panics all the same.
    fn into_int(self) -> i32 {
        match self {
            Value::Int(i) => i,
            _ => 0,
        }
    }

    fn into_string(self) -> String {
        match self {
            Value::Str(s) => s,
            _ => String::new(),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Value::Bytes(b) => b,
            _ => Vec::new(),
        }
    }
}

impl Schema {
    fn zero_values(&self) -> Values {
        self.fields.each_ref().map(|f| Value::zero(f.kind))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const FORMATS: [FrameFormat; 4] = [
        FrameFormat { encoding: Encoding::Gob, gzip: false },
        FrameFormat { encoding: Encoding::Gob, gzip: true },
        FrameFormat { encoding: Encoding::Json, gzip: false },
        FrameFormat { encoding: Encoding::Json, gzip: true },
    ];

    fn sample_req() -> Req {
        Req {
            req_identifier: 1003,
            token: String::new(),
            send_id: "alice".into(),
            operation_id: "6f1c0b7e-op".into(),
            msg_incr: "alice_1795326452332557071".into(),
            data: vec![0x0a, 0x05, b'h', b'e', b'l', b'l', b'o'],
        }
    }

    fn sample_resp() -> Resp {
        Resp {
            req_identifier: 1003,
            msg_incr: "alice_1795326452332557071".into(),
            operation_id: "6f1c0b7e-op".into(),
            err_code: 1004,
            err_msg: "RecordNotFoundError".into(),
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip_every_format() {
        for format in FORMATS {
            let req = sample_req();
            assert_eq!(format.decode_req(&format.encode_req(&req)), Ok(req), "{format:?}");
            let resp = sample_resp();
            assert_eq!(format.decode_resp(&format.encode_resp(&resp)), Ok(resp), "{format:?}");
            assert_eq!(format.decode_req(&format.encode_req(&Req::default())), Ok(Req::default()));
            assert_eq!(format.decode_resp(&format.encode_resp(&Resp::default())), Ok(Resp::default()));
        }
    }

    #[test]
    fn gzip_wraps_the_plain_encoding() {
        for encoding in [Encoding::Gob, Encoding::Json] {
            let plain = FrameFormat { encoding, gzip: false };
            let zipped = FrameFormat { encoding, gzip: true };
            let resp = sample_resp();
            let frame = zipped.encode_resp(&resp);
            assert_eq!(&frame[..2], &[0x1f, 0x8b], "a gzip member starts with the gzip magic");
            assert_eq!(gunzip(&frame).unwrap(), plain.encode_resp(&resp));
            // And a frame gzipped by anyone else (here: with another level) decodes too.
            let mut other = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
            std::io::Write::write_all(&mut other, &plain.encode_req(&sample_req())).unwrap();
            assert_eq!(zipped.decode_req(&other.finish().unwrap()), Ok(sample_req()));
            // A gzip connection does not accept uncompressed frames.
            assert!(matches!(zipped.decode_req(&plain.encode_req(&sample_req())), Err(EnvelopeError::Gzip(_))));
        }
    }

    /// Stored and deflated members are standard gzip whatever the input: empty, tiny, either side of the stored
    /// threshold, large and incompressible (more output than the first guess of capacity), one after the other
    /// on one thread's reused compressor.
    #[test]
    fn gzip_members_are_standard_and_the_compressor_is_reusable() {
        let mut noise = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..300_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            noise.push((x >> 16) as u8);
        }
        let inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"a".to_vec(),
            noise[..GZIP_STORE_BELOW - 1].to_vec(),
            noise[..GZIP_STORE_BELOW].to_vec(),
            b"hello hello hello hello".repeat(5000),
            noise.clone(),
            b"x".to_vec(),
        ];
        for input in &inputs {
            let member = gzip(input);
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut out).unwrap();
            assert_eq!(&out, input, "{} bytes", input.len());
        }
    }

    /// What Go's gzip.Reader accepts, this accepts: several members in one frame, and headers with a name,
    /// a comment, an extra field and a header CRC (as other gzip writers produce).
    #[test]
    fn gunzip_takes_multistream_frames_and_optional_header_fields() {
        let a = gzip(b"first, ");
        let mut with_fields = flate2::GzBuilder::new()
            .filename("f.bin")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), Compression::default());
        std::io::Write::write_all(&mut with_fields, &b"second".repeat(100)).unwrap();
        let b = with_fields.finish().unwrap();
        let mut frame = a.clone();
        frame.extend_from_slice(&b);
        let mut want = b"first, ".to_vec();
        want.extend_from_slice(&b"second".repeat(100));
        assert_eq!(gunzip(&frame).unwrap(), want);
        // Reserved flag bits are refused.
        let mut reserved = a;
        reserved[3] |= 0x80;
        assert!(gunzip(&reserved).is_err());
    }

    #[test]
    fn gzip_errors() {
        let format = FrameFormat { encoding: Encoding::Gob, gzip: true };
        assert!(matches!(format.decode_req(&[]), Err(EnvelopeError::Gzip(_))));
        assert!(matches!(format.decode_req(b"\x1f\x8b\x08garbage"), Err(EnvelopeError::Gzip(_))));
        let frame = format.encode_req(&sample_req());
        for len in 1..frame.len() {
            assert!(format.decode_req(&frame[..len]).is_err(), "truncated to {len}");
        }
        // Corrupt the CRC.
        let mut bad = frame.clone();
        let n = bad.len();
        bad[n - 8] ^= 0xff;
        assert!(matches!(format.decode_req(&bad), Err(EnvelopeError::Gzip(_))));
        // The same for a deflated (not stored) member.
        let big = Req { data: b"compressible ".repeat(200), ..sample_req() };
        let frame_big = format.encode_req(&big);
        assert_eq!(format.decode_req(&frame_big), Ok(big));
        for len in (1..frame_big.len()).step_by(7) {
            assert!(format.decode_req(&frame_big[..len]).is_err(), "truncated to {len}");
        }
        // Trailing garbage after the member is not a second member.
        let mut trailing = frame;
        trailing.extend_from_slice(b"xyz");
        assert!(format.decode_req(&trailing).is_err());
    }

    #[test]
    fn zip_bomb_is_refused() {
        let bomb = gzip(&vec![0u8; MAX_DECOMPRESSED + 1]);
        assert!(bomb.len() < 8 * 1024, "the bomb is small: {}", bomb.len());
        for encoding in [Encoding::Gob, Encoding::Json] {
            let format = FrameFormat { encoding, gzip: true };
            assert_eq!(format.decode_req(&bomb), Err(EnvelopeError::DecompressedTooLarge { limit: MAX_DECOMPRESSED }));
        }
        // Exactly at the cap is fine as far as gzip is concerned (the gob decoder then rejects the zeros).
        assert_eq!(gunzip(&gzip(&vec![0u8; MAX_DECOMPRESSED])).unwrap().len(), MAX_DECOMPRESSED);
    }

    #[test]
    fn validate_requires_upstream_fields() {
        assert_eq!(sample_req().validate(), Ok(()));
        type Mutation = fn(&mut Req);
        let cases: [(Mutation, &str); 4] = [
            (|r| r.req_identifier = 0, "reqIdentifier"),
            (|r| r.send_id.clear(), "sendID"),
            (|r| r.operation_id.clear(), "operationID"),
            (|r| r.msg_incr.clear(), "msgIncr"),
        ];
        for (mutate, name) in cases {
            let mut req = sample_req();
            mutate(&mut req);
            assert_eq!(req.validate(), Err(EnvelopeError::MissingField(name)));
            assert_eq!(req.validate().unwrap_err().to_string(), format!("missing required field {name}"));
        }
        // Token and data are optional; a negative identifier is non-zero.
        let req = Req { token: String::new(), data: Vec::new(), req_identifier: -1, ..sample_req() };
        assert_eq!(req.validate(), Ok(()));
    }

    #[test]
    fn error_messages_name_the_layer() {
        let gob = FrameFormat { encoding: Encoding::Gob, gzip: false };
        let json = FrameFormat { encoding: Encoding::Json, gzip: false };
        let gz = FrameFormat { encoding: Encoding::Json, gzip: true };
        assert!(gob.decode_req(b"\x05garbage").unwrap_err().to_string().starts_with("gob: "));
        assert!(json.decode_req(b"{nope").unwrap_err().to_string().starts_with("json: "));
        assert!(gz.decode_req(b"{}").unwrap_err().to_string().starts_with("gzip: "));
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), any::<String>(), "[a-zA-Z0-9_-]{0,40}", "\\PC{0,20}"]
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..300)
    }

    prop_compose! {
        fn arb_req()(req_identifier in any::<i32>(), token in arb_string(), send_id in arb_string(),
                     operation_id in arb_string(), msg_incr in arb_string(), data in arb_bytes()) -> Req {
            Req { req_identifier, token, send_id, operation_id, msg_incr, data }
        }
    }

    prop_compose! {
        fn arb_resp()(req_identifier in any::<i32>(), msg_incr in arb_string(), operation_id in arb_string(),
                      err_code in any::<i32>(), err_msg in arb_string(), data in arb_bytes()) -> Resp {
            Resp { req_identifier, msg_incr, operation_id, err_code, err_msg, data }
        }
    }

    fn arb_format() -> impl Strategy<Value = FrameFormat> {
        prop::sample::select(FORMATS.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn req_round_trips(req in arb_req(), format in arb_format()) {
            prop_assert_eq!(format.decode_req(&format.encode_req(&req)), Ok(req));
        }

        #[test]
        fn resp_round_trips(resp in arb_resp(), format in arb_format()) {
            prop_assert_eq!(format.decode_resp(&format.encode_resp(&resp)), Ok(resp));
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), format in arb_format()) {
            let _ = format.decode_req(&bytes);
            let _ = format.decode_resp(&bytes);
        }

        /// Random bytes rarely get past the first length check; damaging valid frames reaches deeper code.
        #[test]
        fn damaged_frames_never_panic(
            req in arb_req(),
            format in arb_format(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut frame = format.encode_req(&req);
            for (at, byte) in edits {
                let i = at.index(frame.len());
                frame[i] = byte;
            }
            let _ = format.decode_req(&frame);
            let _ = format.decode_resp(&frame);
            let len = cut.index(frame.len() + 1);
            let _ = format.decode_req(&frame[..len]);
        }
    }
}
