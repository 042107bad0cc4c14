//! Envelope encoding for the client side, with gzip that reuses its compressor.
//!
//! `palaver_protocol::envelope` gzips each frame with a fresh `GzEncoder` (and gunzips with a fresh decoder):
//! correct, but every frame then allocates and clears the deflate state (hundreds of KiB) or the inflate state.
//! A load generator holding thousands of connections on one core spent a third of its time doing just that.
//! Here frames are compressed with a table-free encoder (see [`gzip`]) and each thread keeps one inflater that
//! it resets per frame; the bytes on the wire are ordinary single-member gzip. Anything unusual in a server
//! frame (gzip header flags, several members) falls back to the protocol crate's decoder, which handles it
//! all.

use flate2::{Crc, Decompress, FlushDecompress, Status};
use palaver_protocol::envelope::{EnvelopeError, FrameFormat, MAX_DECOMPRESSED, Req, Resp};
use std::cell::RefCell;

thread_local! {
    static INFLATE: RefCell<Decompress> = RefCell::new(Decompress::new(false));
    static RECENT: RefCell<Recent> = RefCell::default();
}

/// `format` without gzip.
fn plain(format: FrameFormat) -> FrameFormat {
    FrameFormat { gzip: false, ..format }
}

/// Encodes a client → server frame in `format`.
pub(crate) fn encode_req(format: FrameFormat, req: &Req) -> Vec<u8> {
    let raw = plain(format).encode_req(req);
    if format.gzip { gzip(&raw) } else { raw }
}

/// Decodes a server → client frame in `format`.
///
/// A server encodes a push once and sends the same bytes to every recipient, so a process holding many of
/// them (a load generator holding 10,000 members of one group) receives the same frame over and over. The
/// last few decoded gzip frames are remembered per thread and an identical frame is answered from there: the
/// result is the same by construction, and the generator's time goes into what the server does rather than
/// into inflating one frame ten thousand times.
pub(crate) fn decode_resp(format: FrameFormat, frame: &[u8]) -> Result<Resp, EnvelopeError> {
    if !format.gzip {
        return format.decode_resp(frame);
    }
    if let Some(resp) = RECENT.with(|recent| recent.borrow().find(format, frame)) {
        return Ok(resp);
    }
    let resp = match gunzip(frame) {
        Some(raw) => plain(format).decode_resp(&raw),
        None => format.decode_resp(frame),
    }?;
    RECENT.with(|recent| recent.borrow_mut().remember(format, frame, &resp));
    Ok(resp)
}

/// Recently decoded frames, newest last.
#[derive(Default)]
struct Recent {
    entries: Vec<(FrameFormat, Vec<u8>, Resp)>,
}

/// Frames remembered per thread.
const RECENT_FRAMES: usize = 4;
/// Larger frames are not remembered (they are rare, and comparing them costs more).
const RECENT_MAX_BYTES: usize = 16 * 1024;

impl Recent {
    fn find(&self, format: FrameFormat, frame: &[u8]) -> Option<Resp> {
        self.entries.iter().rev().find(|(f, bytes, _)| *f == format && bytes.as_slice() == frame).map(|e| e.2.clone())
    }

    fn remember(&mut self, format: FrameFormat, frame: &[u8], resp: &Resp) {
        // Only frames the server sends on its own (pushes): replies are unique to their request.
        if frame.len() > RECENT_MAX_BYTES || !resp.msg_incr.is_empty() {
            return;
        }
        if self.entries.len() == RECENT_FRAMES {
            self.entries.remove(0);
        }
        self.entries.push((format, frame.to_vec(), resp.clone()));
    }
}

/// One gzip member: a 10-byte header (no flags, OS unknown), one deflate block, CRC-32 and length.
///
/// The block uses the fixed Huffman code with literals only (RFC 1951 §3.2.6): no match search and no tables
/// to build, one table lookup per byte. That is what a speed-over-ratio encoder emits, and frames of a few
/// hundred bytes hardly compress anyway; the receiving side still inflates a genuine Huffman-coded block.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 9 / 8 + 32);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut bits = BitWriter { out: &mut out, acc: 0, n: 0 };
    // BFINAL = 1, BTYPE = 01 (fixed Huffman).
    bits.put(0b011, 3);
    for &b in data {
        let (code, len) = FIXED[b as usize];
        bits.put(u64::from(code), len);
    }
    let (code, len) = FIXED[256];
    bits.put(u64::from(code), len);
    bits.finish();
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Deflate's bit order: values LSB first; Huffman codes are stored bit-reversed so that they too can be
/// written LSB first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter<'_> {
    fn put(&mut self, value: u64, len: u32) {
        self.acc |= value << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn finish(&mut self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// The fixed literal/length code for symbols 0..=256, as (bit-reversed code, length).
static FIXED: [(u16, u32); 257] = fixed_codes();

const fn fixed_codes() -> [(u16, u32); 257] {
    let mut table = [(0u16, 0u32); 257];
    let mut sym = 0;
    while sym < 257 {
        let (code, len) = if sym < 144 {
            (0x30 + sym as u16, 8)
        } else if sym < 256 {
            (0x190 + (sym as u16 - 144), 9)
        } else {
            (0, 7)
        };
        table[sym] = (code.reverse_bits() >> (16 - len), len);
        sym += 1;
    }
    table
}

/// The contents of a plain single-member gzip frame; `None` if it is anything else (or corrupt), in which case
/// the caller uses the general decoder, which reports the precise error.
fn gunzip(frame: &[u8]) -> Option<Vec<u8>> {
    // Header: magic, deflate, no flags (FTEXT aside); MTIME, XFL, OS are not needed.
    if frame.len() < 18 || frame[..3] != [0x1f, 0x8b, 8] || frame[3] & !1 != 0 {
        return None;
    }
    let body = &frame[10..frame.len() - 8];
    let trailer = &frame[frame.len() - 8..];
    let size = u32::from_le_bytes(trailer[4..].try_into().ok()?) as usize;
    if size > MAX_DECOMPRESSED {
        return None;
    }
    let mut out = Vec::with_capacity(size);
    let done = INFLATE.with(|inflate| {
        let mut inflate = inflate.borrow_mut();
        inflate.reset(false);
        let status = inflate.decompress_vec(body, &mut out, FlushDecompress::Finish).ok()?;
        // The whole body, exactly: anything after the deflate stream would be a second member.
        (status == Status::StreamEnd && inflate.total_in() as usize == body.len()).then_some(())
    });
    done?;
    let mut crc = Crc::new();
    crc.update(&out);
    (out.len() == size && crc.sum().to_le_bytes() == trailer[..4]).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_protocol::envelope::Encoding;

    const GOB_GZIP: FrameFormat = FrameFormat { encoding: Encoding::Gob, gzip: true };

    #[test]
    fn frames_round_trip_through_the_protocol_codec() {
        let req = Req {
            req_identifier: 1003,
            send_id: "a".into(),
            msg_incr: "a_1".into(),
            data: vec![7; 300],
            ..Req::default()
        };
        for _ in 0..3 {
            // Ours → the protocol crate's decoder (what the server runs).
            let frame = encode_req(GOB_GZIP, &req);
            assert_eq!(GOB_GZIP.decode_req(&frame).unwrap(), req);
        }
        let resp = Resp { req_identifier: 2001, operation_id: "op".into(), data: vec![1, 2, 3], ..Resp::default() };
        // The protocol crate's encoder (what the server sends) → ours.
        let frame = GOB_GZIP.encode_resp(&resp);
        assert_eq!(decode_resp(GOB_GZIP, &frame).unwrap(), resp);
        assert!(gunzip(&frame).is_some(), "a plain member takes the fast path");
        // Two members: the general decoder's job.
        let mut double = gzip(b"ab");
        double.extend(gzip(b"cd"));
        assert!(gunzip(&double).is_none());
        assert!(decode_resp(GOB_GZIP, b"\x1f\x8bnot gzip at all").is_err());
    }

    #[test]
    fn big_and_empty_inputs() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(gunzip(&gzip(&data)).unwrap(), data);
        assert_eq!(gunzip(&gzip(b"")).unwrap(), b"");
    }
}
