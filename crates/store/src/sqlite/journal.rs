//! The message journal: where an append becomes durable before it is acknowledged, ahead of SQLite.
//!
//! # Why
//!
//! Committing each batch of appends into SQLite costs what the pages it dirties cost: a message dirties a leaf of
//! each of the log's two indexes (by seq and by clientMsgID), both at random over the conversations, and every
//! dirty page is written whole to the WAL, checksummed, and later checkpointed back (BENCHMARKS.md: ~15 KiB of
//! WAL per message of a few hundred bytes, and the writer's time split COMMIT 39 %, checkpoint 20 %, statements
//! 31 %). Not the fsync: with none at all the cost did not move. So the batch is made durable here instead, as
//! the message's own bytes appended to a file, and reaches SQLite every few seconds, a segment at a time, sorted
//! by conversation (see [`super::flusher`]): a leaf then takes all of its conversations' messages of those seconds
//! in one write, rather than one write per message.
//!
//! # Files
//!
//! Beside the database `palaver.db`: segments `palaver.db-log.000001`, `…000002`, …, each the appends of about a
//! second, and `palaver.db-log.lock`, held (`flock`) by the one store that writes them. A segment is retired once
//! every message in it is committed in SQLite: kept as a spare (`palaver.db-log.spare-…`) for a later segment to
//! write over, or deleted ([`retire_segment`] says why). Opening the store replays what is left into SQLite before anything
//! else runs ([`segments`], [`read_segment`]): a message is stored at most once (the log's keys make a replay of
//! a message already flushed a no-op).
//!
//! # Records
//!
//! `len: u32 LE | crc: u32 LE | body`, where `crc` is the CRC-32 of the segment's number followed by `body`, and
//! `body` is `conversation_id` and `reader` (each a `u32 LE` length and UTF-8 bytes; `reader` absent as length
//! `u32::MAX`), then the stored `sdkws.MsgData` blob to the end. A conversation's first message also carries the
//! conversation rows it creates ([`Record::rows`]), ahead of the rest: the mark `u32::MAX - 1` (never a length
//! here), their number (`u32 LE`), and each row's owner, conversation, type (`i32 LE`), peer and group. Records
//! without rows are as they were before rows were journaled, so a journal left by an older build replays.
//!
//! Records are written a batch at a time and `fdatasync`ed before any of them is acknowledged, so a crash can
//! only leave a torn *tail*: reading stops at the first record that is short or fails its CRC, and nothing before
//! it was lost.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::{ConversationRef, Result, StoreError};

/// One journaled message: what SQLite's `messages` row and the sender's cursor move are made from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    pub conversation_id: String,
    /// Whose read cursor moves to this message's seq (the sender's), as [`crate::NewMessage::reader`].
    pub reader: Option<String>,
    /// The `sdkws.MsgData`, encoded, with its seq: exactly what the `data` column holds.
    pub blob: Vec<u8>,
    /// Conversation rows this message creates (its conversation's first: both parties' rows of a 1:1 chat). The
    /// flusher creates them with the message, so they are durable here first, like the message itself.
    pub rows: Vec<ConversationRef>,
}

/// The segment being appended to.
pub(super) struct Journal {
    db: PathBuf,
    number: u64,
    path: PathBuf,
    file: File,
    /// Bytes of the batch being encoded, reused.
    buf: Vec<u8>,
}

impl Journal {
    /// Starts segment `number` for the database at `db`: a spare, written over from its start, or a new file.
    pub(super) fn create(db: &Path, number: u64) -> Result<Self> {
        let path = segment_path(db, number);
        if path.exists() {
            return Err(io(&path, &std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
        }
        let reused = spares(db)?.into_iter().any(|spare| std::fs::rename(spare, &path).is_ok());
        let file = if reused {
            OpenOptions::new().write(true).open(&path)
        } else {
            OpenOptions::new().write(true).create_new(true).open(&path)
        };
        let file = file.map_err(|e| io(&path, &e))?;
        // The new name must be durable before a record in it is acknowledged.
        sync_dir(db)?;
        Ok(Self { db: db.to_path_buf(), number, path, file, buf: Vec::new() })
    }

    pub(super) fn number(&self) -> u64 {
        self.number
    }

    /// Appends `records` and makes them durable (one write, one `fdatasync`).
    pub(super) fn append<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) -> Result<()> {
        self.buf.clear();
        for record in records {
            encode(self.number, record, &mut self.buf);
        }
        self.file.write_all(&self.buf).map_err(|e| io(&self.path, &e))?;
        self.file.sync_data().map_err(|e| io(&self.path, &e))
    }

    /// Closes this segment and starts the next; returns the closed one's number.
    pub(super) fn rotate(&mut self) -> Result<u64> {
        let next = Self::create(&self.db, self.number + 1)?;
        Ok(std::mem::replace(self, next).number)
    }
}

/// `palaver.db-log.000042` for segment 42 of `palaver.db`.
pub(super) fn segment_path(db: &Path, number: u64) -> PathBuf {
    sibling(db, &format!("-log.{number:06}"))
}

/// `db`'s path with `suffix` added to its file name.
pub(super) fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Takes the lock that makes this process the one store writing the journal of `db`: `None` if another holds it.
/// Held until the file is dropped (or the process ends, however it ends).
pub(super) fn lock(db: &Path) -> Result<Option<File>> {
    let path = sibling(db, "-log.lock");
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| io(&path, &e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path, &e)),
    }
}

/// The files beside `db` whose names continue its own with `infix`, as (the rest of the name, path).
fn listed(db: &Path, infix: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut prefix = db.file_name().unwrap_or_default().to_string_lossy().into_owned();
    prefix.push_str(infix);
    let dir = parent(db);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, &e))? {
        let entry = entry.map_err(|e| io(dir, &e))?;
        if let Some(rest) = entry.file_name().to_str().and_then(|n| n.strip_prefix(&prefix)) {
            found.push((rest.to_string(), entry.path()));
        }
    }
    Ok(found)
}

/// The segments left beside `db`, oldest first, as `(number, path)`.
pub(super) fn segments(db: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found: Vec<(u64, PathBuf)> =
        listed(db, "-log.")?.into_iter().filter_map(|(rest, path)| Some((rest.parse().ok()?, path))).collect();
    found.sort_unstable();
    Ok(found)
}

/// Every file of the journal of `db` but its lock: the segments and the spares.
pub(super) fn files(db: &Path) -> Result<Vec<PathBuf>> {
    let segments = segments(db)?.into_iter().map(|(_, path)| path);
    Ok(segments.chain(spares(db)?).collect())
}

/// The whole records of segment `number` at `path`, up to the first torn or foreign one.
pub(super) fn read_segment(path: &Path, number: u64) -> Result<Vec<Record>> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| io(path, &e))?;
    let mut records = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((record, tail)) = decode(number, rest) {
        records.push(record);
        rest = tail;
    }
    if !rest.is_empty() {
        // A torn last record, or the old bytes of a reused file.
        tracing::info!(segment = %path.display(), bytes = rest.len(), "a journal segment's records end before its file");
    }
    Ok(records)
}

/// Spare files kept for new segments to write over.
const SPARES: usize = 2;

/// Retires a segment whose messages are all in SQLite: kept as a spare while there are fewer than [`SPARES`], else
/// deleted. One already gone is fine (a replay retires what it replayed).
///
/// A spare is why a segment is written over rather than created: an `fdatasync` of a file that grows must also
/// write its inode (its new size), a second write to the disk per batch (`palaver bench chat`, profiled: `fdatasync`
/// was 14 % of the server's CPU with a new file per segment, 9 % with spares, and the CPU per message fell by 8 %).
/// A reused file is already as long as a segment usually gets. Its old records fail their checksums (which cover
/// the segment's number), so reading a segment stops where its own records end.
pub(super) fn retire_segment(db: &Path, number: u64) -> Result<()> {
    if spares(db)?.len() >= SPARES {
        return remove_segment(db, number);
    }
    let path = segment_path(db, number);
    ignore_missing(&path, std::fs::rename(&path, sibling(db, &format!("-log.spare-{number:06}"))))
}

/// The spare files beside `db`.
pub(super) fn spares(db: &Path) -> Result<Vec<PathBuf>> {
    Ok(listed(db, "-log.spare-")?.into_iter().map(|(_, path)| path).collect())
}

fn remove_segment(db: &Path, number: u64) -> Result<()> {
    let path = segment_path(db, number);
    ignore_missing(&path, std::fs::remove_file(&path))
}

/// A file operation's result, where the file being gone already is as good as done.
fn ignore_missing(path: &Path, result: std::io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path, &e)),
        _ => Ok(()),
    }
}

fn encode(segment: u64, record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    if !record.rows.is_empty() {
        out.extend_from_slice(&ROWS_MARK.to_le_bytes());
        out.extend_from_slice(&u32::try_from(record.rows.len()).expect("two rows a message").to_le_bytes());
        for row in &record.rows {
            put_str(out, Some(&row.owner_user_id));
            put_str(out, Some(&row.conversation_id));
            out.extend_from_slice(&row.conversation_type.to_le_bytes());
            put_str(out, Some(&row.user_id));
            put_str(out, Some(&row.group_id));
        }
    }
    put_str(out, Some(&record.conversation_id));
    put_str(out, record.reader.as_deref());
    out.extend_from_slice(&record.blob);
    let body = &out[start + 8..];
    let len = u32::try_from(body.len()).expect("a message is far below 4 GiB");
    let crc = checksum(segment, body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The record at the start of `bytes` and what follows it, or `None` if there is no whole, valid record there.
fn decode(segment: u64, bytes: &[u8]) -> Option<(Record, &[u8])> {
    let (len, rest) = take_u32(bytes)?;
    let (crc, rest) = take_u32(rest)?;
    let len = usize::try_from(len).ok()?;
    if rest.len() < len {
        return None;
    }
    let (body, rest) = rest.split_at(len);
    if checksum(segment, body) != crc {
        return None;
    }
    let (rows, body) = take_rows(body)?;
    let (conversation_id, tail) = take_str(body)?;
    let (reader, blob) = take_str(tail)?;
    let record = Record { conversation_id: conversation_id?, reader, blob: blob.to_vec(), rows };
    Some((record, rest))
}

/// Marks a record that begins with conversation rows (where a record without begins with a string's length).
const ROWS_MARK: u32 = u32::MAX - 1;

/// The conversation rows at the start of a record's body, if it has any, and the rest of the body.
fn take_rows(body: &[u8]) -> Option<(Vec<ConversationRef>, &[u8])> {
    match take_u32(body)? {
        (ROWS_MARK, rest) => {
            let (count, mut rest) = take_u32(rest)?;
            let mut rows = Vec::new();
            for _ in 0..count {
                let (owner_user_id, tail) = take_str(rest)?;
                let (conversation_id, tail) = take_str(tail)?;
                let (kind, tail) = tail.split_first_chunk::<4>()?;
                let (user_id, tail) = take_str(tail)?;
                let (group_id, tail) = take_str(tail)?;
                rows.push(ConversationRef {
                    owner_user_id: owner_user_id?,
                    conversation_id: conversation_id?,
                    conversation_type: i32::from_le_bytes(*kind),
                    user_id: user_id?,
                    group_id: group_id?,
                });
                rest = tail;
            }
            Some((rows, rest))
        }
        _ => Some((Vec::new(), body)),
    }
}

fn checksum(segment: u64, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&segment.to_le_bytes());
    h.update(body);
    h.finalize()
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&u32::try_from(s.len()).expect("an id is short").to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

/// A string field: `Some(None)` for an absent one.
fn take_str(bytes: &[u8]) -> Option<(Option<String>, &[u8])> {
    let (len, rest) = take_u32(bytes)?;
    if len == u32::MAX {
        return Some((None, rest));
    }
    let len = usize::try_from(len).ok()?;
    if rest.len() < len {
        return None;
    }
    let (s, rest) = rest.split_at(len);
    Some((Some(String::from_utf8(s.to_vec()).ok()?), rest))
}

fn parent(db: &Path) -> &Path {
    match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the creation (or removal) of a file in the database's folder durable.
fn sync_dir(db: &Path) -> Result<()> {
    let dir = parent(db);
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, &e))
}

fn io(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Backend(format!("message journal {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every third record carries the conversation rows of a first message.
    fn record(i: usize) -> Record {
        let conversation_id = format!("si_a_{i}");
        let row = |owner: &str, peer: &str| ConversationRef::with_peer(owner, peer, &conversation_id, 1);
        let rows = if i.is_multiple_of(3) { vec![row("a", &i.to_string()), row(&i.to_string(), "a")] } else { vec![] };
        Record {
            conversation_id: conversation_id.clone(),
            reader: i.is_multiple_of(2).then(|| format!("u{i}")),
            blob: vec![u8::try_from(i % 256).unwrap(); i],
            rows,
        }
    }

    /// A record without rows is laid out as before rows were journaled: a segment an older build left replays.
    #[test]
    fn a_record_without_rows_keeps_the_older_layout() {
        let old =
            Record { conversation_id: "si_a_b".into(), reader: Some("a".into()), blob: b"msg".to_vec(), rows: vec![] };
        let mut bytes = Vec::new();
        encode(7, &old, &mut bytes);
        let mut body = Vec::new();
        for s in ["si_a_b", "a"] {
            body.extend_from_slice(&u32::try_from(s.len()).unwrap().to_le_bytes());
            body.extend_from_slice(s.as_bytes());
        }
        body.extend_from_slice(b"msg");
        assert_eq!(&bytes[8..], &body[..]);
        assert_eq!(decode(7, &bytes).unwrap().0, old);
    }

    #[test]
    fn records_read_back_up_to_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let mut journal = Journal::create(&db, 1).unwrap();
        let first: Vec<_> = (0..10).map(record).collect();
        journal.append(&first).unwrap();
        journal.append(&[record(10)]).unwrap();
        let path = segment_path(&db, 1);
        let mut all = first.clone();
        all.push(record(10));
        assert_eq!(read_segment(&path, 1).unwrap(), all);

        // A crash mid-write leaves part of the last record: it is dropped, the rest is whole.
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        assert_eq!(read_segment(&path, 1).unwrap(), first);

        // Bytes from another segment (a file reused, or renamed by hand) fail the checksum, which covers the
        // segment's number.
        assert!(read_segment(&path, 2).unwrap().is_empty());

        // A flipped bit ends the segment there.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_segment(&path, 1).unwrap().len() < 10);
    }

    #[test]
    fn segments_are_listed_in_order_and_rotation_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let mut journal = Journal::create(&db, 9).unwrap();
        assert_eq!(journal.rotate().unwrap(), 9);
        assert_eq!(journal.rotate().unwrap(), 10);
        assert_eq!(journal.number(), 11);
        std::fs::write(dir.path().join("p.db-wal"), b"").unwrap();
        std::fs::write(dir.path().join("other.db-log.000001"), b"").unwrap();
        let numbers: Vec<u64> = segments(&db).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(numbers, [9, 10, 11]);
        remove_segment(&db, 10).unwrap();
        remove_segment(&db, 10).unwrap();
        let numbers: Vec<u64> = segments(&db).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(numbers, [9, 11]);
        assert!(Journal::create(&db, 9).is_err(), "a segment is never overwritten");
    }

    /// A retired segment's file is written over by a later one, whose reading stops at its own records.
    #[test]
    fn retired_segments_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let mut journal = Journal::create(&db, 1).unwrap();
        journal.append(&(0..50).map(record).collect::<Vec<_>>()).unwrap();
        journal.rotate().unwrap();
        let old_len = std::fs::metadata(segment_path(&db, 1)).unwrap().len();
        retire_segment(&db, 1).unwrap();
        assert_eq!(spares(&db).unwrap().len(), 1);
        assert!(segments(&db).unwrap().iter().all(|(n, _)| *n == 2), "a spare is not a segment");

        let mut journal = Journal::create(&db, 3).unwrap();
        assert!(spares(&db).unwrap().is_empty(), "segment 3 took the spare");
        journal.append(&[record(7)]).unwrap();
        let path = segment_path(&db, 3);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), old_len, "written over, not grown");
        assert_eq!(read_segment(&path, 3).unwrap(), [record(7)]);

        // Beyond the spares kept, a retired segment is deleted.
        for n in [2, 3] {
            retire_segment(&db, n).unwrap();
        }
        assert_eq!(spares(&db).unwrap().len(), SPARES);
        std::fs::write(segment_path(&db, 8), b"").unwrap();
        retire_segment(&db, 8).unwrap();
        assert_eq!(spares(&db).unwrap().len(), SPARES);
        assert!(!segment_path(&db, 8).exists());
    }
}
