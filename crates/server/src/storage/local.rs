//! The local-disk backend: files under `<data_dir>/objects`, uploads received and downloads served by Palaver
//! itself on the API port.
//!
//! Layout:
//! - `blobs/<hash>`: stored content, named by OpenIM's content hash, so the same bytes are kept once however
//!   many objects name them;
//! - `uploads/<upload id>/<part number>.<md5>`: the parts of an upload in progress, each named by the md5 the
//!   server computed while receiving it (so completion never re-reads a part to check it);
//! - `tmp/`: files being written (a part being received, a blob being assembled). A file is renamed into place
//!   only once whole, so a crash leaves partial files only here. The upload sweep (at start, then every
//!   `sweep_interval_secs`) removes them once nothing has written to them for [`TMP_STALE_AFTER`]: not all at
//!   start, because the folder may be shared by the nodes of a cluster (`objects.local_dir`), and a node that
//!   starts must not pull a file from under another node's upload.
//!
//! Everything a node needs of an upload is in the store and in this folder, so nodes that share the folder
//! serve each other's uploads and files: a part may go to one node, the completion to another.
//!
//! Presigned URLs are Palaver's own: an expiry and an HMAC-SHA256 over what the URL allows, keyed by a secret
//! derived from the admin secret (so URLs stay valid across restarts and nothing new has to be kept).

use super::{BlobError, PartError};
use crate::service::random_hex;
use md5::{Digest as _, Md5};
use palaver_store::Upload;
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt as _;

/// Size of the write buffer for received parts: fewer, larger writes to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// A file in `tmp/` that nothing has written to for this long is a crash's leftover. Every file there is
/// written in a stream (a part as its body arrives, a blob as parts are copied), so a live one is much younger.
pub(crate) const TMP_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug)]
pub struct LocalBlobs {
    root: PathBuf,
    /// The key of the URL signatures.
    url_key: [u8; 32],
}

impl LocalBlobs {
    /// Creates the layout under `root` if needed.
    pub(crate) fn open(root: &Path, admin_secret: &str) -> io::Result<Self> {
        for dir in ["blobs", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        let url_key = super::sigv4::hmac_sha256(admin_secret.as_bytes(), b"palaver object URL signatures v1");
        Ok(Self { root: root.to_path_buf(), url_key })
    }

    /// Removes the files in `tmp/` that nothing has written to for `age` (a crash's leftovers, see the module
    /// docs). Returns how many.
    pub(crate) async fn remove_stale_tmp(&self, age: std::time::Duration) -> io::Result<usize> {
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(self.root.join("tmp")).await?;
        while let Some(entry) = entries.next_entry().await? {
            let meta = match entry.metadata().await {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let idle = meta.modified()?.elapsed().unwrap_or_default();
            if meta.is_file() && idle >= age {
                match tokio::fs::remove_file(entry.path()).await {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => removed += 1,
                }
            }
        }
        Ok(removed)
    }

    /// The file of a stored blob. `key` is a content hash (32 hex digits), checked by the caller.
    pub(crate) fn blob_path(&self, key: &str) -> PathBuf {
        self.root.join("blobs").join(key)
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join("uploads").join(upload_id)
    }

    /// The signature of `message` (hex).
    pub(crate) fn sign(&self, message: &str) -> String {
        super::sigv4::hex(&super::sigv4::hmac_sha256(&self.url_key, message.as_bytes()))
    }

    /// Whether `signature` is `message`'s, compared in constant time.
    pub(crate) fn verify(&self, message: &str, signature: &str) -> bool {
        crate::service::constant_time_eq(self.sign(message).as_bytes(), signature.as_bytes())
    }

    pub(crate) async fn create_upload(&self, upload_id: &str) -> io::Result<()> {
        tokio::fs::create_dir(self.upload_dir(upload_id)).await
    }

    /// Removes an upload's parts (no error if they are gone already).
    pub(crate) async fn remove_upload(&self, upload_id: &str) -> io::Result<()> {
        match tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Receives part `part_number` of an upload: exactly `expected_len` bytes from `body`, hashed on the way,
    /// written to `tmp/` and renamed into the upload's folder once whole (replacing an earlier copy of the same
    /// part, as S3 does). Returns the part's md5 (hex).
    pub(crate) async fn receive_part(
        &self,
        upload_id: &str,
        part_number: i32,
        expected_len: u64,
        body: axum::body::Body,
    ) -> Result<String, PartError> {
        use futures_util::StreamExt as _;
        let tmp = self.root.join("tmp").join(random_hex(16));
        let result = async {
            let file = tokio::fs::File::create(&tmp).await.map_err(PartError::Io)?;
            let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
            let mut md5 = Md5::new();
            let mut received: u64 = 0;
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| PartError::Body(e.to_string()))?;
                received += chunk.len() as u64;
                if received > expected_len {
                    return Err(PartError::TooLong { expected: expected_len });
                }
                md5.update(&chunk);
                out.write_all(&chunk).await.map_err(PartError::Io)?;
            }
            if received != expected_len {
                return Err(PartError::Length { expected: expected_len, received });
            }
            out.flush().await.map_err(PartError::Io)?;
            let md5 = super::sigv4::hex(&md5.finalize());
            let dir = self.upload_dir(upload_id);
            tokio::fs::rename(&tmp, dir.join(format!("{part_number}.{md5}"))).await.map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound { PartError::NoUpload } else { PartError::Io(e) }
            })?;
            // Earlier copies of this part are superseded.
            let prefix = format!("{part_number}.");
            let mut entries = tokio::fs::read_dir(&dir).await.map_err(PartError::Io)?;
            while let Some(entry) = entries.next_entry().await.map_err(PartError::Io)? {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name != format!("{part_number}.{md5}") {
                    let _ = tokio::fs::remove_file(entry.path()).await;
                }
            }
            Ok(md5)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Assembles the parts named by `part_hashes` (md5 hex of each part, in order) into the upload's blob.
    /// Every part must have been received with exactly that md5; the blob is written to `tmp/`, synced, and
    /// renamed into place. The parts stay until [`remove_upload`](Self::remove_upload).
    pub(crate) async fn complete(&self, upload: &Upload, part_hashes: &[String]) -> Result<(), BlobError> {
        let dir = self.upload_dir(&upload.upload_id);
        let mut files = Vec::with_capacity(part_hashes.len());
        for (i, hash) in part_hashes.iter().enumerate() {
            let number = i + 1;
            let path = dir.join(format!("{number}.{hash}"));
            if tokio::fs::metadata(&path).await.is_ok() {
                files.push(path);
                continue;
            }
            let any = has_part(&dir, number).await.map_err(|e| BlobError::Backend(e.to_string()))?;
            return Err(BlobError::Refused(if any {
                format!("part {number}: the bytes received do not have md5 {hash}")
            } else {
                format!("part {number} was never uploaded")
            }));
        }
        let tmp = self.root.join("tmp").join(random_hex(16));
        let target = self.blob_path(&upload.storage_key);
        let expected = u64::try_from(upload.size).unwrap_or(0);
        let blobs = self.root.join("blobs");
        tokio::task::spawn_blocking(move || -> Result<(), BlobError> {
            let assemble = || -> io::Result<u64> {
                let mut out = std::fs::File::create(&tmp)?;
                let mut written = 0;
                for file in &files {
                    written += io::copy(&mut std::fs::File::open(file)?, &mut out)?;
                }
                out.sync_all()?;
                Ok(written)
            };
            let result = match assemble() {
                Ok(written) if written == expected => std::fs::rename(&tmp, &target)
                    .and_then(|()| std::fs::File::open(&blobs)?.sync_all())
                    .map_err(|e| BlobError::Backend(e.to_string())),
                Ok(written) => Err(BlobError::Refused(format!("the parts hold {written} bytes, not {expected}"))),
                Err(e) => Err(BlobError::Backend(e.to_string())),
            };
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
    }

    /// The stored blob's size, or `None` if there is none.
    pub(crate) async fn size(&self, key: &str) -> io::Result<Option<u64>> {
        match tokio::fs::metadata(self.blob_path(key)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether any copy of part `number` is in `dir`.
async fn has_part(dir: &Path, number: usize) -> io::Result<bool> {
    let prefix = format!("{number}.");
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// The folder may be shared by the nodes of a cluster: a node cleans only what nothing has written to for
    /// a while, never a file another node is writing now.
    #[tokio::test]
    async fn only_stale_files_are_removed_from_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path(), "secret").unwrap();
        let stale = dir.path().join("tmp").join("left-by-a-crash");
        let live = dir.path().join("tmp").join("being-written");
        std::fs::write(&stale, b"partial").unwrap();
        std::fs::write(&live, b"partial").unwrap();
        let long_ago = SystemTime::now() - TMP_STALE_AFTER - Duration::from_secs(60);
        std::fs::File::options().write(true).open(&stale).unwrap().set_modified(long_ago).unwrap();
        LocalBlobs::open(dir.path(), "secret").unwrap();
        assert!(stale.exists() && live.exists(), "opening the folder removes nothing");
        assert_eq!(blobs.remove_stale_tmp(TMP_STALE_AFTER).await.unwrap(), 1);
        assert!(!stale.exists() && live.exists());
    }
}
