//! `/object/*`: OpenIM's file API, plus the two raw HTTP routes behind its URLs: `GET /object/{name}` (the URL
//! of every file) and, for the local backend, `PUT /object-upload/{upload_id}/{part}` (presigned part uploads).
//! The rules are in `service::object`; this file maps HTTP to them.

use super::Ctx;
use crate::{
    config::Config,
    error::{ApiError, ApiResult},
    service::{
        App,
        object::{Download, DownloadQuery, HttpError, PartQuery},
    },
};
use axum::{
    body::Body,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use palaver_protocol::pb::third as pb;
use std::sync::Arc;
use tower_http::cors::CorsLayer;

/// CORS for the whole API: any origin (the wasm SDK runs in pages served from anywhere, and uploads parts from
/// the browser), with the headers a ranged download or an upload answer carries readable by scripts.
pub(super) fn cors() -> CorsLayer {
    CorsLayer::very_permissive().expose_headers([
        header::ETAG,
        header::CONTENT_RANGE,
        header::ACCEPT_RANGES,
        header::CONTENT_DISPOSITION,
        header::CONTENT_LENGTH,
    ])
}

/// The API's URL as the client reaches it: `objects.public_url` if set; else OpenIM's `X-Request-Api` header;
/// else `http://` (or `https://` after `X-Forwarded-Proto: https`) and the `Host` header. `None` when there is
/// nothing usable.
pub(super) fn public_base(config: &Config, headers: &HeaderMap) -> Option<String> {
    if let Some(url) = &config.objects.public_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(api) = text("X-Request-Api")
        && (api.starts_with("http://") || api.starts_with("https://"))
        && api.bytes().all(|b| b.is_ascii_graphic())
    {
        return Some(api.trim_end_matches('/').to_string());
    }
    let host = text("host")?;
    let valid = host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'));
    if !valid {
        return None;
    }
    let scheme =
        if text("X-Forwarded-Proto").is_some_and(|p| p.eq_ignore_ascii_case("https")) { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

fn base(ctx: &Ctx) -> ApiResult<&str> {
    ctx.public_base.as_deref().ok_or_else(|| {
        ApiError::args("cannot tell this server's address from the request (no Host header); set objects.public_url")
    })
}

/// # POST /object/part_limit
pub(super) async fn part_limit(app: Arc<App>, _ctx: Ctx, _req: pb::PartLimitReq) -> ApiResult<pb::PartLimitResp> {
    Ok(app.part_limit())
}

/// # POST /object/part_size
pub(super) async fn part_size(app: Arc<App>, _ctx: Ctx, req: pb::PartSizeReq) -> ApiResult<pb::PartSizeResp> {
    Ok(pb::PartSizeResp { size: app.part_size(req.size)? })
}

/// # POST /object/initiate_multipart_upload
pub(super) async fn initiate_multipart_upload(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::InitiateMultipartUploadReq,
) -> ApiResult<pb::InitiateMultipartUploadResp> {
    app.initiate_upload(&ctx.caller, req, base(&ctx)?).await
}

/// # POST /object/auth_sign
pub(super) async fn auth_sign(app: Arc<App>, ctx: Ctx, req: pb::AuthSignReq) -> ApiResult<pb::AuthSignResp> {
    app.auth_sign(&ctx.caller, req, base(&ctx)?).await
}

/// # POST /object/complete_multipart_upload
pub(super) async fn complete_multipart_upload(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::CompleteMultipartUploadReq,
) -> ApiResult<pb::CompleteMultipartUploadResp> {
    app.complete_upload(&ctx.caller, req, base(&ctx)?).await
}

/// # POST /object/access_url
pub(super) async fn access_url(app: Arc<App>, ctx: Ctx, req: pb::AccessUrlReq) -> ApiResult<pb::AccessUrlResp> {
    app.access_url(req, base(&ctx)?).await
}

/// # PUT /object-upload/{upload_id}/{part} (local backend)
///
/// The target of the presigned part URLs. Answers 200 with the part's md5 as `ETag`, or an HTTP error with a
/// plain-text reason (the SDK logs it).
pub(super) async fn upload_part(
    State(app): State<Arc<App>>,
    Path((upload_id, part)): Path<(String, String)>,
    Query(query): Query<PartQuery>,
    request: Request,
) -> Response {
    let content_length =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match app.receive_part(&upload_id, &part, &query, content_length, request.into_body()).await {
        Ok(md5) => {
            let mut response = StatusCode::OK.into_response();
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{md5}\"")) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Err(e) => http_error(e),
    }
}

/// # GET /object/{name}
///
/// Every file's URL. The S3 backend redirects to a presigned bucket URL; the local backend serves the file,
/// with its `Content-Type`, `Content-Length`, single-range requests (`206`, for audio and video seeking) and an
/// `ETag`. Query parameters OpenIM adds for thumbnails (`type=image&width=…`) are ignored: the original is served.
pub(super) async fn download(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let token = headers.get("token").and_then(|v| v.to_str().ok());
    match app.download(&name, &query, token).await {
        Ok(Download::Redirect(url)) => match HeaderValue::from_str(&url) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => http_error(HttpError { status: 500, message: "internal error".into() }),
        },
        Ok(Download::File { path, size, content_type, disposition, hash }) => {
            serve_file(&path, size, &content_type, &disposition, &hash, &headers).await
        }
        Err(e) => http_error(e),
    }
}

fn http_error(e: HttpError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], e.message).into_response()
}

/// Serves `size` bytes of `path`, or the one range the request asks for.
async fn serve_file(
    path: &std::path::Path,
    size: u64,
    content_type: &str,
    disposition: &str,
    hash: &str,
    headers: &HeaderMap,
) -> Response {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let etag = format!("\"{hash}\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&etag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) => match parse_range(value, size) {
            Some(Ok(range)) => Some(range),
            Some(Err(())) => {
                return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{size}"))])
                    .into_response();
            }
            None => None,
        },
        None => None,
    };
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "a recorded object's file cannot be opened");
            return http_error(HttpError { status: 500, message: "internal error".into() });
        }
    };
    let (status, start, len) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    if start > 0
        && let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await
    {
        tracing::error!(path = %path.display(), error = %e, "cannot seek in an object's file");
        return http_error(HttpError { status: 500, message: "internal error".into() });
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file.take(len), 64 * 1024));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, value(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, value(&etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(d) = HeaderValue::from_str(disposition) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    // Uploaded bytes are the users', not the server's: never sniffed into another type, never run as a page of
    // this origin.
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, value(&format!("bytes {start}-{}/{size}", start + len - 1)));
    }
    response
}

/// One `bytes=` range of a `size`-byte file, as inclusive `(first, last)`: `None` to ignore the header (not
/// bytes, several ranges, malformed: the whole file is served, as RFC 9110 allows), `Err` when unsatisfiable.
fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || size == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(suffix), size - 1)
    } else {
        let first: u64 = first.parse().ok()?;
        let last: u64 = if last.is_empty() { u64::MAX } else { last.parse().ok()? };
        if last < first {
            return None;
        }
        if first >= size {
            return Some(Err(()));
        }
        (first, last.min(size - 1))
    };
    Some(Ok(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-200", 100), Some(Ok((0, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
    }

    #[test]
    fn public_base_from_config_or_request() {
        let mut config = Config::default();
        let mut headers = HeaderMap::new();
        assert_eq!(public_base(&config, &headers), None);
        headers.insert("host", HeaderValue::from_static("im.example.com:10002"));
        assert_eq!(public_base(&config, &headers).as_deref(), Some("http://im.example.com:10002"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(public_base(&config, &headers).as_deref(), Some("https://im.example.com:10002"));
        headers.insert("host", HeaderValue::from_static("evil/path"));
        assert_eq!(public_base(&config, &headers), None);
        config.objects.public_url = Some("https://files.example.com/".into());
        assert_eq!(public_base(&config, &headers).as_deref(), Some("https://files.example.com"));
    }
}
