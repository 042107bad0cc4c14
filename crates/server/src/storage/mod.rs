//! Object storage: where the bytes of uploaded files live. Two backends behind one small surface:
//! - [`local`] (the default): files under `<data_dir>/objects` (or `objects.local_dir`, a folder the nodes of a
//!   cluster share); Palaver receives the uploads and serves the downloads itself, on the API port;
//! - [`s3`]: an S3-compatible bucket; clients upload and download directly through presigned URLs.
//!
//! Blobs are content-addressed: the storage key of an upload is OpenIM's content hash (md5 of the comma-joined
//! part md5s, 32 hex digits), so one blob serves every object name with the same bytes, and a key never holds
//! bytes other than those its name promises. The rules (who may upload what, names, limits) are in
//! `service::object`; this module only moves and checks bytes.

pub mod local;
pub mod s3;
pub(crate) mod sigv4;

use crate::config::{ObjectBackend, ObjectsConfig};
use std::path::Path;

/// The configured backend.
#[derive(Debug)]
pub enum Blobs {
    Local(local::LocalBlobs),
    S3(s3::S3Blobs),
}

impl Blobs {
    /// Opens the configured backend (for `local`, under `objects.local_dir`, by default `<data_dir>/objects`).
    pub fn open(config: &ObjectsConfig, data_dir: &Path, admin_secret: &str) -> anyhow::Result<Self> {
        Ok(match config.backend {
            ObjectBackend::Local => {
                let root = config.local_dir.clone().unwrap_or_else(|| data_dir.join("objects"));
                Self::Local(local::LocalBlobs::open(&root, admin_secret)?)
            }
            ObjectBackend::S3 => Self::S3(s3::S3Blobs::new(&config.s3).map_err(anyhow::Error::msg)?),
        })
    }
}

/// A backend operation that failed.
#[derive(Debug)]
pub enum BlobError {
    /// What the client uploaded does not match what it announced; the message says how, for the client.
    Refused(String),
    /// The backend failed (disk, network, S3); the message is for the logs.
    Backend(String),
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(m) => write!(f, "refused: {m}"),
            Self::Backend(m) => write!(f, "storage backend: {m}"),
        }
    }
}

/// Why a part PUT to the local backend was refused.
#[derive(Debug)]
pub enum PartError {
    /// The body went past the part's length.
    TooLong {
        expected: u64,
    },
    /// The body ended at another length than the part's.
    Length {
        expected: u64,
        received: u64,
    },
    /// The client's connection failed mid-body.
    Body(String),
    /// The upload was removed (completed, aborted or expired) while the part arrived.
    NoUpload,
    Io(std::io::Error),
}
