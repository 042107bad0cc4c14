//! The web client (`/`) and the admin console (`/admin`): static files from `web/`, embedded in the binary at
//! compile time, so a fresh checkout (and the one binary) serves them with no build step.
//!
//! Caching: the two HTML pages are `no-cache` (revalidated on every load, with an ETag), and they load
//! everything else from `/static/<version>/…`, where `<version>` is a hash of all the embedded files. Those
//! URLs never change content, so they are cached for a year as `immutable`; a new build has a new version and
//! the HTML points there. Module imports inside the JS are relative (`./api.js`), so they stay under the same
//! version prefix by themselves.

use crate::storage::sigv4::hex;
use axum::{
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Embeds files of the repository's `web/` folder, by path relative to it.
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $path)) as &[u8])),*]
    };
}

/// Every file of `web/` (a test checks that none is missing from this list).
pub(super) static FILES: &[(&str, &[u8])] = embed![
    "index.html",
    "admin.html",
    "favicon.svg",
    "css/base.css",
    "css/chat.css",
    "css/admin.css",
    "js/pb.js",
    "js/api.js",
    "js/gateway.js",
    "js/client.js",
    "js/ui.js",
    "js/emoji.js",
    "js/md5.js",
    "js/media.js",
    "js/app.js",
    "js/admin.js",
];

/// Where the HTML pages point for everything else; replaced with `/static/<version>`.
const STATIC_PLACEHOLDER: &str = "{{STATIC}}";

/// Restrictive by default: scripts and styles only from this origin, no inline script, no framing. Images,
/// media and uploads may use other origins (presigned object-store URLs).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; \
                   media-src 'self' data: blob: http: https:; connect-src 'self' ws: wss: http: https:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The hash of every embedded file, names included: the `/static/` version.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        for (path, bytes) in FILES {
            hasher.update((path.len() as u64).to_le_bytes());
            hasher.update(path.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        hex(&hasher.finalize()[..8])
    })
}

fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// An HTML page's bytes (its static prefix filled in) and its ETag.
type Page = (Vec<u8>, String);

/// An HTML page, rendered once.
fn page(name: &'static str) -> &'static Page {
    static PAGES: OnceLock<Vec<(&'static str, Page)>> = OnceLock::new();
    let pages = PAGES.get_or_init(|| {
        ["index.html", "admin.html"]
            .into_iter()
            .map(|n| {
                let text = String::from_utf8_lossy(file(n).unwrap_or_default())
                    .replace(STATIC_PLACEHOLDER, &format!("/static/{}", version()));
                let etag = format!("\"{}\"", hex(&Sha256::digest(text.as_bytes())[..8]));
                (n, (text.into_bytes(), etag))
            })
            .collect()
    });
    &pages.iter().find(|(n, _)| *n == name).expect("known page").1
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn html(name: &'static str, headers: &HeaderMap) -> Response {
    let (body, etag) = page(name);
    let mut response = if not_modified(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body.clone()).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// # GET /
pub(super) async fn chat(headers: HeaderMap) -> Response {
    html("index.html", &headers)
}

/// # GET /admin
pub(super) async fn admin(headers: HeaderMap) -> Response {
    html("admin.html", &headers)
}

/// # GET /static/{version}/{*path}
///
/// The current version's files are immutable. A request for another version (a page loaded before an
/// upgrade) still gets the current file, but uncached, so no wrong content is ever cached under a URL.
pub(super) async fn static_file(Path((v, path)): Path<(String, String)>) -> Response {
    let Some(bytes) = file(&path).filter(|_| !path.ends_with(".html")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if v == version() { "public, max-age=31536000, immutable" } else { "no-cache" };
    (
        [
            (header::CONTENT_TYPE, content_type(&path)),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response()
}

/// # GET /favicon.ico (browsers ask for it whatever the page says)
pub(super) async fn favicon() -> Response {
    let bytes = file("favicon.svg").unwrap_or_default();
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `web/` is embedded (a new file must be added to `FILES`), and nothing embedded is
    /// missing.
    #[test]
    fn every_web_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    on_disk.push(path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn pages_point_at_the_versioned_prefix() {
        for name in ["index.html", "admin.html"] {
            let text = String::from_utf8(page(name).0.clone()).unwrap();
            assert!(!text.contains(STATIC_PLACEHOLDER), "{name}");
            assert!(text.contains(&format!("/static/{}/", version())), "{name}");
        }
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
    }
}
