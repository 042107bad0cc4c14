//! Files: OpenIM's object API (`/object/*`) over the configured storage backend (`crate::storage`).
//!
//! The flow the SDKs follow (sdk-core `internal/third/file/upload.go`):
//! 1. `part_limit` → the client computes the part size the same way [`App::part_size`] does, hashes each part
//!    (md5) and the whole (md5 of the comma-joined part md5s: OpenIM's content hash);
//! 2. `initiate_multipart_upload` with that hash: if the content is stored already, the answer is its URL and
//!    nothing is transferred; otherwise an upload id and presigned URLs for the first parts;
//! 3. a PUT of each part to its URL (`auth_sign` presigns more as needed);
//! 4. `complete_multipart_upload` with the part md5s: checked against the announced hash and against the bytes
//!    received, then the object is recorded and its URL returned.
//!
//! Rules kept here: an object name is `<userID>/…` (the caller's own prefix, unless an admin), has no empty,
//! `.` or `..` segment and nothing that could climb out of a folder, and never replaces another user's object;
//! sizes, part counts and content types are within the configuration; an upload is only seen and completed by
//! its owner, and dies at its expiry (a refused completion ends it at once, leaving nothing behind).

use super::{App, Caller, now_ms, random_hex};
use crate::{
    config::DownloadAccess,
    error::{ApiError, ApiResult},
    storage::{BlobError, Blobs, PartError, sigv4},
};
use md5::{Digest as _, Md5};
use palaver_protocol::{errcode::ErrCode, pb::third};
use palaver_store::{Object, StoreError, Upload};
use std::path::PathBuf;

/// Most parts presigned in one answer (initiate or auth_sign).
pub const MAX_SIGN_PARTS: usize = 1000;
/// Longest object name, in bytes (OpenIM's limit).
const MAX_NAME_BYTES: usize = 1024;
/// Longest content type.
const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Uploads swept per store query.
const SWEEP_BATCH: u32 = 100;

/// An answer of the raw HTTP routes (part PUTs and downloads), which speak HTTP status codes, not OpenIM's
/// envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
}

impl HttpError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// What a download request gets.
#[derive(Debug)]
pub enum Download {
    /// Go there (a presigned bucket URL).
    Redirect(String),
    /// Serve this file.
    File {
        path: PathBuf,
        size: u64,
        content_type: String,
        disposition: String,
        /// The content hash, as the `ETag`.
        hash: String,
    },
}

/// The query parameters of a download URL that matter here.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DownloadQuery {
    pub token: Option<String>,
    pub expires: Option<i64>,
    pub sig: Option<String>,
}

/// The query parameters of a local part upload URL.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PartQuery {
    pub expires: Option<i64>,
    pub sig: Option<String>,
}

impl App {
    /// `/object/part_limit`. `maxPartSize` is large enough that `maxPartSize × maxNumSize` covers the largest
    /// object, so the SDK's own size check agrees with ours.
    pub fn part_limit(&self) -> third::PartLimitResp {
        let o = &self.config.objects;
        let min_part = i64::try_from(o.min_part_bytes).unwrap_or(i64::MAX);
        let needed = ceil_div(i64::try_from(o.max_object_bytes).unwrap_or(i64::MAX), i64::from(o.max_parts));
        third::PartLimitResp {
            min_part_size: min_part,
            max_part_size: needed.max(min_part),
            max_num_size: i32::try_from(o.max_parts).unwrap_or(i32::MAX),
        }
    }

    /// `/object/part_size`: the part size of a `size`-byte file, computed exactly as the SDKs compute it from
    /// `part_limit` (the smallest part, unless the file needs more than `max_parts` of them).
    pub fn part_size(&self, size: i64) -> ApiResult<i64> {
        let o = &self.config.objects;
        if size <= 0 {
            return Err(ApiError::args("size must be greater than 0"));
        }
        if u64::try_from(size).unwrap_or(u64::MAX) > o.max_object_bytes {
            return Err(ApiError::args(format!(
                "the file is {size} bytes; the largest file allowed is {} bytes",
                o.max_object_bytes
            )));
        }
        let min = i64::try_from(o.min_part_bytes).unwrap_or(i64::MAX);
        let parts = i64::from(o.max_parts);
        Ok(if size <= min.saturating_mul(parts) { min } else { ceil_div(size, parts) })
    }

    /// `/object/initiate_multipart_upload`. `base` is the API's URL as this client reaches it.
    pub async fn initiate_upload(
        &self,
        caller: &Caller,
        req: third::InitiateMultipartUploadReq,
        base: &str,
    ) -> ApiResult<third::InitiateMultipartUploadResp> {
        self.check_object_name(caller, &req.name)?;
        let content_type = self.check_content_type(&req.content_type)?;
        let hash = check_md5_hex(&req.hash, "hash")?;
        let part_size = self.part_size(req.size)?;
        let part_count = i32::try_from(ceil_div(req.size, part_size))
            .ok()
            .filter(|&n| n <= i32::try_from(self.config.objects.max_parts).unwrap_or(i32::MAX))
            .ok_or_else(|| ApiError::args("the file needs more parts than allowed"))?;
        self.check_name_free(caller, &req.name).await?;
        let now = now_ms();

        // The same bytes are stored already: record the name over them, nothing to transfer.
        if let Some(existing) = self.store.object_by_hash(&hash).await?
            && existing.size == req.size
            && self.blob_size(&existing.storage_key).await? == Some(u64::try_from(req.size).unwrap_or(0))
        {
            let object = Object {
                name: req.name.clone(),
                user_id: caller.user_id.clone(),
                hash,
                storage_key: existing.storage_key,
                size: req.size,
                content_type,
                cause: req.cause,
                create_time: now,
            };
            self.store.put_object(&object).await.map_err(name_taken)?;
            return Ok(third::InitiateMultipartUploadResp { url: object_url(base, &req.name), upload: None });
        }

        let mut upload = Upload {
            upload_id: random_hex(16),
            user_id: caller.user_id.clone(),
            hash: hash.clone(),
            size: req.size,
            part_size,
            part_count,
            storage_key: hash,
            backend_upload_id: String::new(),
            expire_time: now + secs_to_ms(self.config.objects.upload_ttl_secs),
            create_time: now,
        };
        // The row goes in before the local parts folder (a crash between leaves a row the sweeper ends at its
        // expiry) but after S3's upload (whose id the row holds; a crash between leaves an incomplete multipart
        // upload, which the bucket's AbortIncompleteMultipartUpload lifecycle rule removes).
        match &self.blobs {
            Blobs::Local(local) => {
                self.store.insert_upload(&upload).await?;
                if let Err(e) = local.create_upload(&upload.upload_id).await {
                    let _ = self.store.delete_upload(&upload.upload_id).await;
                    return Err(ApiError::internal(e));
                }
            }
            Blobs::S3(s3) => {
                upload.backend_upload_id =
                    s3.initiate(&upload.storage_key, unix_secs(now)).await.map_err(ApiError::internal)?;
                if let Err(e) = self.store.insert_upload(&upload).await {
                    self.abort_in_backend(&upload).await;
                    return Err(e.into());
                }
            }
        }
        let signed = match req.max_parts {
            n if n < 0 => part_count,
            n => n.min(part_count),
        };
        let signed = usize::try_from(signed).unwrap_or(0).min(MAX_SIGN_PARTS);
        let sign = (signed > 0).then(|| self.sign_parts(&upload, (1..=signed).map(|p| p as i32), base, now));
        Ok(third::InitiateMultipartUploadResp {
            url: String::new(),
            upload: Some(third::UploadInfo {
                upload_id: upload.upload_id,
                part_size,
                sign,
                expire_time: upload.expire_time,
            }),
        })
    }

    /// `/object/auth_sign`: fresh URLs for more parts of an upload.
    pub async fn auth_sign(
        &self,
        caller: &Caller,
        req: third::AuthSignReq,
        base: &str,
    ) -> ApiResult<third::AuthSignResp> {
        let upload = self.own_upload(caller, &req.upload_id).await?;
        let now = now_ms();
        if upload.expire_time <= now {
            return Err(upload_expired(&upload));
        }
        if req.part_numbers.is_empty() || req.part_numbers.len() > MAX_SIGN_PARTS {
            return Err(ApiError::args(format!("partNumbers must name 1 to {MAX_SIGN_PARTS} parts")));
        }
        if let Some(bad) = req.part_numbers.iter().find(|&&p| p < 1 || p > upload.part_count) {
            return Err(ApiError::args(format!("part {bad} is not between 1 and {}", upload.part_count)));
        }
        let sign = self.sign_parts(&upload, req.part_numbers.iter().copied(), base, now);
        Ok(third::AuthSignResp { url: sign.url, query: sign.query, header: sign.header, parts: sign.parts })
    }

    /// `/object/complete_multipart_upload`. A completion refused for what was uploaded (hashes that do not add
    /// up, a part missing or not matching its md5, the wrong total size) ends the upload: its parts are deleted
    /// and the client starts again.
    pub async fn complete_upload(
        &self,
        caller: &Caller,
        req: third::CompleteMultipartUploadReq,
        base: &str,
    ) -> ApiResult<third::CompleteMultipartUploadResp> {
        self.check_object_name(caller, &req.name)?;
        let content_type = self.check_content_type(&req.content_type)?;
        let upload = self.own_upload(caller, &req.upload_id).await?;
        let _one_at_a_time = self.upload_lock(&upload.upload_id).lock().await;
        let now = now_ms();
        if upload.expire_time <= now {
            self.abort_upload(&upload).await;
            return Err(upload_expired(&upload));
        }
        self.check_name_free(caller, &req.name).await?;
        if req.parts.len() != usize::try_from(upload.part_count).unwrap_or(0) {
            self.abort_upload(&upload).await;
            return Err(ApiError::args(format!(
                "{} part hashes given; the upload has {} parts",
                req.parts.len(),
                upload.part_count
            )));
        }
        let mut parts = Vec::with_capacity(req.parts.len());
        for part in &req.parts {
            match check_md5_hex(part, "part hash") {
                Ok(p) => parts.push(p),
                Err(e) => {
                    self.abort_upload(&upload).await;
                    return Err(e);
                }
            }
        }
        let combined = sigv4::hex(&Md5::digest(parts.join(",").as_bytes()));
        if combined != upload.hash {
            self.abort_upload(&upload).await;
            return Err(ApiError::args(format!(
                "the part hashes combine to {combined}, not to the hash {} the upload was started with",
                upload.hash
            )));
        }
        let completed = match &self.blobs {
            Blobs::Local(local) => local.complete(&upload, &parts).await,
            Blobs::S3(s3) => s3.complete(&upload, &parts, unix_secs(now)).await,
        };
        match completed {
            Ok(()) => {}
            Err(BlobError::Refused(why)) => {
                if let Blobs::S3(_) = &self.blobs {
                    self.delete_unreferenced_blob(&upload).await;
                }
                self.abort_upload(&upload).await;
                return Err(ApiError::args(format!("upload refused, start again: {why}")));
            }
            Err(e @ BlobError::Backend(_)) => return Err(ApiError::internal(e)),
        }
        let object = Object {
            name: req.name.clone(),
            user_id: caller.user_id.clone(),
            hash: upload.hash.clone(),
            storage_key: upload.storage_key.clone(),
            size: upload.size,
            content_type,
            cause: req.cause,
            create_time: now,
        };
        match self.store.complete_upload(&upload.upload_id, &object).await {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(upload_expired(&upload)),
            Err(e) => return Err(name_taken(e)),
        }
        if let Blobs::Local(local) = &self.blobs
            && let Err(e) = local.remove_upload(&upload.upload_id).await
        {
            tracing::warn!(upload = %upload.upload_id, error = %e, "cannot remove the parts of a completed upload");
        }
        Ok(third::CompleteMultipartUploadResp { url: object_url(base, &req.name) })
    }

    /// `/object/access_url`: a URL that downloads `name` until `expireTime`, whatever the download setting.
    /// OpenIM's `type=image` (thumbnails) is accepted and answered with the original.
    pub async fn access_url(&self, req: third::AccessUrlReq, base: &str) -> ApiResult<third::AccessUrlResp> {
        check_name_syntax(&req.name)?;
        match req.query.get("type").map(String::as_str) {
            None | Some("" | "image") => {}
            Some(other) => return Err(ApiError::args(format!("invalid query type {other:?}"))),
        }
        let object = self
            .store
            .object(&req.name)
            .await?
            .ok_or_else(|| ApiError::new(ErrCode::RecordNotFound, format!("no object named {}", req.name)))?;
        let now = now_ms();
        let expire_time = now + secs_to_ms(self.config.objects.url_ttl_secs);
        let url = match &self.blobs {
            Blobs::Local(local) => {
                let sig = local.sign(&get_message(&object.name, expire_time));
                format!("{}?expires={expire_time}&sig={sig}", object_url(base, &object.name))
            }
            Blobs::S3(s3) => s3.download_url(
                &object.storage_key,
                &object.content_type,
                &disposition(&object),
                unix_secs(now),
                self.config.objects.url_ttl_secs,
            ),
        };
        Ok(third::AccessUrlResp { url, expire_time })
    }

    /// `PUT /object-upload/{upload_id}/{part}` (local backend): checks the URL's signature and expiry and the
    /// part's length, and stores it. Returns the part's md5, sent back as its `ETag` as S3 does.
    pub async fn receive_part(
        &self,
        upload_id: &str,
        part: &str,
        query: &PartQuery,
        content_length: Option<u64>,
        body: axum::body::Body,
    ) -> Result<String, HttpError> {
        let Blobs::Local(local) = &self.blobs else {
            return Err(HttpError::new(404, "this server's uploads go to its bucket"));
        };
        let part_number: i32 = part.parse().map_err(|_| HttpError::new(404, "no such part"))?;
        let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
            return Err(HttpError::new(403, "the upload URL is not signed"));
        };
        if !is_hex(upload_id, 32) || !local.verify(&put_message(upload_id, part_number, expires), sig) {
            return Err(HttpError::new(403, "the upload URL's signature does not match"));
        }
        let now = now_ms();
        if expires <= now {
            return Err(HttpError::new(
                403,
                format!("the upload URL expired at {expires} (ms since 1970); ask /object/auth_sign for a new one"),
            ));
        }
        let upload = self
            .store
            .upload(upload_id)
            .await
            .map_err(|e| internal_http(&e))?
            .ok_or_else(|| HttpError::new(404, "no such upload: it was completed, or it expired"))?;
        if upload.expire_time <= now {
            return Err(HttpError::new(403, "the upload has expired; start again"));
        }
        if part_number < 1 || part_number > upload.part_count {
            return Err(HttpError::new(400, format!("part {part_number} is not between 1 and {}", upload.part_count)));
        }
        let expected = part_len(&upload, part_number);
        if let Some(len) = content_length
            && len != expected
        {
            return Err(HttpError::new(400, format!("part {part_number} is {expected} bytes, not {len}")));
        }
        local.receive_part(upload_id, part_number, expected, body).await.map_err(|e| match e {
            PartError::TooLong { expected } => {
                HttpError::new(400, format!("part {part_number} is {expected} bytes; more were sent"))
            }
            PartError::Length { expected, received } => {
                HttpError::new(400, format!("part {part_number} is {expected} bytes; {received} were sent"))
            }
            PartError::Body(e) => HttpError::new(400, format!("the body could not be read: {e}")),
            PartError::NoUpload => HttpError::new(404, "no such upload: it was completed, or it expired"),
            PartError::Io(e) => internal_http(&e),
        })
    }

    /// `GET /object/{name}`: who may download, and from where. `token` is the request's `token` header.
    pub async fn download(
        &self,
        name: &str,
        query: &DownloadQuery,
        token: Option<&str>,
    ) -> Result<Download, HttpError> {
        check_name_syntax(name).map_err(|e| HttpError::new(400, e.detail))?;
        let now = now_ms();
        let signed = match (&self.blobs, query.expires, query.sig.as_deref()) {
            (Blobs::Local(local), Some(expires), Some(sig)) => {
                if !local.verify(&get_message(name, expires), sig) {
                    return Err(HttpError::new(403, "the download URL's signature does not match"));
                }
                if expires <= now {
                    return Err(HttpError::new(403, "the download URL has expired"));
                }
                true
            }
            _ => false,
        };
        if !signed && self.config.objects.download == DownloadAccess::Token {
            let Some(token) = token.or(query.token.as_deref()) else {
                return Err(HttpError::new(401, "downloads need a token (header or ?token=)"));
            };
            self.authenticate(token).await.map_err(|e| HttpError::new(401, e.gateway_msg()))?;
        }
        let object = self
            .store
            .object(name)
            .await
            .map_err(|e| internal_http(&e))?
            .ok_or_else(|| HttpError::new(404, format!("no object named {name}")))?;
        match &self.blobs {
            Blobs::Local(local) => Ok(Download::File {
                path: local.blob_path(&object.storage_key),
                size: u64::try_from(object.size).unwrap_or(0),
                disposition: disposition(&object),
                content_type: object.content_type,
                hash: object.hash,
            }),
            Blobs::S3(s3) => Ok(Download::Redirect(s3.download_url(
                &object.storage_key,
                &object.content_type,
                &disposition(&object),
                unix_secs(now),
                self.config.objects.url_ttl_secs,
            ))),
        }
    }

    /// Ends every upload past its expiry: its parts in the backend, then its row. Returns how many. On the local
    /// backend, also removes what a crash left in its `tmp/` folder.
    pub async fn sweep_expired_uploads(&self) -> Result<usize, StoreError> {
        if let Blobs::Local(local) = &self.blobs {
            match local.remove_stale_tmp(crate::storage::local::TMP_STALE_AFTER).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "removed partial files a crash left behind"),
                Err(e) => tracing::warn!(error = %e, "cannot clean the objects' tmp folder"),
            }
        }
        let mut swept = 0;
        loop {
            let batch = self.store.expired_uploads(now_ms(), SWEEP_BATCH).await?;
            for upload in &batch {
                let _one_at_a_time = self.upload_lock(&upload.upload_id).lock().await;
                self.abort_upload(upload).await;
            }
            swept += batch.len();
            if batch.len() < SWEEP_BATCH as usize {
                return Ok(swept);
            }
        }
    }

    /// The upload, if it exists and `caller` may use it.
    async fn own_upload(&self, caller: &Caller, upload_id: &str) -> ApiResult<Upload> {
        let upload = self.store.upload(upload_id).await?.ok_or_else(|| {
            ApiError::new(ErrCode::RecordNotFound, format!("no upload {upload_id}: it was completed, or it expired"))
        })?;
        if upload.user_id != caller.user_id && !caller.is_admin {
            return Err(ApiError::no_permission(format!("upload {upload_id} is another user's")));
        }
        Ok(upload)
    }

    /// Deletes an upload's parts from the backend and its row from the store. Failures are logged: the row is
    /// deleted only once the parts are, so the sweeper tries again later.
    async fn abort_upload(&self, upload: &Upload) {
        if self.abort_in_backend(upload).await
            && let Err(e) = self.store.delete_upload(&upload.upload_id).await
        {
            tracing::warn!(upload = %upload.upload_id, error = %e, "cannot delete an upload row");
        }
    }

    /// Returns whether the backend's parts are gone.
    async fn abort_in_backend(&self, upload: &Upload) -> bool {
        let result = match &self.blobs {
            Blobs::Local(local) => local.remove_upload(&upload.upload_id).await.map_err(|e| e.to_string()),
            Blobs::S3(s3) => s3.abort(upload, unix_secs(now_ms())).await.map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(upload = %upload.upload_id, error = %e, "cannot delete the parts of an upload");
                false
            }
        }
    }

    /// After S3 refused a completed object (wrong size), deletes it unless an object record names the same
    /// content (then it was stored by another upload, and is not ours to delete).
    async fn delete_unreferenced_blob(&self, upload: &Upload) {
        if let Blobs::S3(s3) = &self.blobs {
            match self.store.object_by_hash(&upload.hash).await {
                Ok(None) => {
                    if let Err(e) = s3.delete(&upload.storage_key, unix_secs(now_ms())).await {
                        tracing::warn!(key = %upload.storage_key, error = %e, "cannot delete a refused object");
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check whether a refused object is in use"),
            }
        }
    }

    async fn blob_size(&self, key: &str) -> ApiResult<Option<u64>> {
        match &self.blobs {
            Blobs::Local(local) => local.size(key).await.map_err(ApiError::internal),
            Blobs::S3(s3) => s3.size(key, unix_secs(now_ms())).await.map_err(ApiError::internal),
        }
    }

    fn sign_parts(
        &self,
        upload: &Upload,
        parts: impl Iterator<Item = i32>,
        base: &str,
        now: i64,
    ) -> third::AuthSignParts {
        let expires = upload.expire_time.min(now + secs_to_ms(self.config.objects.url_ttl_secs));
        let ttl_secs = u64::try_from(ceil_div(expires - now, 1000)).unwrap_or(1).max(1);
        let parts = parts
            .map(|part_number| {
                let url = match &self.blobs {
                    Blobs::Local(local) => {
                        let sig = local.sign(&put_message(&upload.upload_id, part_number, expires));
                        format!("{base}/object-upload/{}/{part_number}?expires={expires}&sig={sig}", upload.upload_id)
                    }
                    Blobs::S3(s3) => {
                        s3.part_url(upload, part_number, part_len(upload, part_number), unix_secs(now), ttl_secs)
                    }
                };
                third::SignPart { part_number, url, query: Vec::new(), header: Vec::new() }
            })
            .collect();
        third::AuthSignParts { url: String::new(), query: Vec::new(), header: Vec::new(), parts }
    }

    /// An object name `caller` may write: see the module docs.
    fn check_object_name(&self, caller: &Caller, name: &str) -> ApiResult<()> {
        check_name_syntax(name)?;
        if !caller.is_admin && !name.starts_with(&format!("{}/", caller.user_id)) {
            return Err(ApiError::no_permission(format!("the name must start with `{}/`", caller.user_id)));
        }
        Ok(())
    }

    /// Refuses a name another user's object holds.
    async fn check_name_free(&self, caller: &Caller, name: &str) -> ApiResult<()> {
        match self.store.object(name).await? {
            Some(existing) if existing.user_id != caller.user_id => {
                Err(ApiError::no_permission(format!("{name} is another user's object")))
            }
            _ => Ok(()),
        }
    }

    /// The content type to record (`application/octet-stream` when none is given), if the configuration allows it.
    fn check_content_type(&self, content_type: &str) -> ApiResult<String> {
        let content_type = content_type.trim();
        let content_type = if content_type.is_empty() { "application/octet-stream" } else { content_type };
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let valid = content_type.len() <= MAX_CONTENT_TYPE_BYTES
            && content_type.bytes().all(|b| (0x20..0x7f).contains(&b))
            && essence.split_once('/').is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains('/'));
        if !valid {
            return Err(ApiError::args(format!("{content_type:?} is not a content type")));
        }
        let allowed = &self.config.objects.allowed_content_types;
        let ok = allowed.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            pattern == "*"
                || pattern == essence
                || pattern.strip_suffix('*').is_some_and(|prefix| prefix.ends_with('/') && essence.starts_with(prefix))
        });
        if !ok {
            return Err(ApiError::args(format!(
                "files of type {essence} are not accepted here (accepted: {})",
                allowed.join(", ")
            )));
        }
        Ok(content_type.to_string())
    }

    /// Serialises completion and sweeping of one upload (by hash shard; not the conversation locks, which a
    /// long completion must not hold up).
    fn upload_lock(&self, upload_id: &str) -> &tokio::sync::Mutex<()> {
        self.upload_locks.of(upload_id)
    }
}

/// A name's form, whoever writes it: 1 to 1024 bytes, no control character or backslash, no leading `/`, and
/// no empty, `.` or `..` segment (so it can never climb out of a folder or alias another name).
fn check_name_syntax(name: &str) -> ApiResult<()> {
    if name.is_empty() {
        return Err(ApiError::args("name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ApiError::args(format!("name is longer than {MAX_NAME_BYTES} bytes")));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(ApiError::args("name has a control character or a backslash"));
    }
    if name.starts_with('/') {
        return Err(ApiError::args("name cannot start with `/`"));
    }
    if name.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return Err(ApiError::args("name has an empty, `.` or `..` segment"));
    }
    Ok(())
}

/// A 32-digit md5 in hex, lower-cased.
fn check_md5_hex(value: &str, what: &str) -> ApiResult<String> {
    if is_hex(value, 32) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(ApiError::args(format!("{what} {value:?} is not an md5 in hex (32 digits)")))
    }
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The length of part `part_number` (1-based): `part_size`, but the last part holds the rest.
fn part_len(upload: &Upload, part_number: i32) -> u64 {
    let len = if part_number < upload.part_count {
        upload.part_size
    } else {
        upload.size - upload.part_size * i64::from(upload.part_count - 1)
    };
    u64::try_from(len).unwrap_or(0)
}

/// The download URL of an object: `<base>/object/<name>`, each segment URI-encoded.
pub fn object_url(base: &str, name: &str) -> String {
    format!("{base}/object/{}", sigv4::uri_encode(name, true))
}

/// What a local part upload URL signs.
fn put_message(upload_id: &str, part_number: i32, expires: i64) -> String {
    format!("PUT\n{upload_id}\n{part_number}\n{expires}")
}

/// What a local download URL signs.
fn get_message(name: &str, expires: i64) -> String {
    format!("GET\n{name}\n{expires}")
}

/// `Content-Disposition` of a download: pictures, sound and video display in place (but not SVG, which can
/// carry script), everything else downloads as a file under the name's last segment.
fn disposition(object: &Object) -> String {
    let essence = object.content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let inline = (essence.starts_with("image/") && essence != "image/svg+xml")
        || essence.starts_with("audio/")
        || essence.starts_with("video/");
    let file = object.name.rsplit('/').next().unwrap_or("file");
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename*=UTF-8''{}", sigv4::uri_encode(file, false))
}

fn upload_expired(upload: &Upload) -> ApiError {
    ApiError::new(
        ErrCode::FileUploadedExpired,
        format!("upload {} expired at {} (ms since 1970); start again", upload.upload_id, upload.expire_time),
    )
}

/// `AlreadyExists` from the store means the name is another user's.
fn name_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyExists(what) => ApiError::no_permission(what),
        other => other.into(),
    }
}

/// A failure inside the server on a plain-HTTP route: logged here, answered 500 without the cause.
#[track_caller]
fn internal_http(cause: &dyn std::fmt::Display) -> HttpError {
    let at = std::panic::Location::caller();
    tracing::error!(%cause, %at, "internal error");
    HttpError::new(500, "internal error")
}

/// `a / b` rounded up, for `a >= 0` and `b > 0` (`i64::div_ceil` is not stable).
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
}

fn unix_secs(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["alice/a.png", "alice/dir/file name.txt", "alice/..x", "alice/é"] {
            assert!(check_name_syntax(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/alice/a", "alice/../bob/a", "alice//a", "alice/./a", "alice/a/", "alice\\a", "alice/\n", ".."]
        {
            assert!(check_name_syntax(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn part_lengths() {
        let upload = Upload {
            upload_id: String::new(),
            user_id: String::new(),
            hash: String::new(),
            size: 25,
            part_size: 10,
            part_count: 3,
            storage_key: String::new(),
            backend_upload_id: String::new(),
            expire_time: 0,
            create_time: 0,
        };
        assert_eq!([1, 2, 3].map(|p| part_len(&upload, p)), [10, 10, 5]);
        assert_eq!(object_url("http://h", "alice/a b.png"), "http://h/object/alice/a%20b.png");
    }
}
