//! Decoding server frames on the client side, with a memory of the last few pushes.
//!
//! The envelope itself (gob or JSON, and gzip) is `palaver_protocol::envelope::FrameFormat`'s, the same code the
//! server runs: it gzips with one reused deflater per thread (small frames as stored blocks) and gunzips with
//! one reused inflater per thread, so neither side pays for a fresh compressor per frame. What this module adds
//! is for a process that holds many connections (a load generator): see [`decode_resp`].

use palaver_protocol::envelope::{EnvelopeError, FrameFormat, Resp};
use std::cell::RefCell;

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::default();
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
    let resp = format.decode_resp(frame)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_protocol::envelope::Encoding;

    const GOB_GZIP: FrameFormat = FrameFormat { encoding: Encoding::Gob, gzip: true };

    #[test]
    fn pushes_are_remembered_and_replies_are_not() {
        let push = Resp { req_identifier: 2001, operation_id: "op".into(), data: vec![1, 2, 3], ..Resp::default() };
        let frame = GOB_GZIP.encode_resp(&push);
        assert_eq!(decode_resp(GOB_GZIP, &frame).unwrap(), push);
        assert!(RECENT.with(|r| r.borrow().find(GOB_GZIP, &frame)).is_some(), "a push is remembered");
        // Answered from memory, the same again.
        assert_eq!(decode_resp(GOB_GZIP, &frame).unwrap(), push);

        let reply = Resp { req_identifier: 1003, msg_incr: "a_1".into(), data: vec![9; 300], ..Resp::default() };
        let frame = GOB_GZIP.encode_resp(&reply);
        assert_eq!(decode_resp(GOB_GZIP, &frame).unwrap(), reply);
        assert!(RECENT.with(|r| r.borrow().find(GOB_GZIP, &frame)).is_none(), "a reply is not");

        // Only the last few are kept.
        for i in 0..RECENT_FRAMES as u8 + 1 {
            let other = Resp { req_identifier: 2001, data: vec![i; 40], ..Resp::default() };
            decode_resp(GOB_GZIP, &GOB_GZIP.encode_resp(&other)).unwrap();
        }
        let first = GOB_GZIP.encode_resp(&Resp { req_identifier: 2001, data: vec![0; 40], ..Resp::default() });
        assert!(RECENT.with(|r| r.borrow().find(GOB_GZIP, &first)).is_none(), "the oldest was dropped");
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(decode_resp(GOB_GZIP, b"\x1f\x8bnot gzip at all").is_err());
        assert!(decode_resp(GOB_GZIP, b"").is_err());
    }
}
