//! Files over real HTTP: OpenIM's object API (`/object/*`), the presigned part uploads and the downloads, driven
//! the way OpenIM's SDKs drive them (sdk-core `internal/third/file/upload.go`), against a server on 127.0.0.1.
//!
//! Every scenario body takes a [`Backend`] and runs twice: on the local-disk backend, and on the S3 backend
//! against a real S3-compatible server (moto, installed and started on 127.0.0.1 by `scripts/s3-server`, one per
//! test process). "Nothing left behind" is checked where things would be left: the store (no upload row, no
//! object row) and the backend (no part files, no blob; no multipart upload, no key in the bucket).

mod common;

use common::{TestServer, WAIT, short_read_timeout};
use http_body_util::{BodyExt as _, Full};
use md5::{Digest as _, Md5};
use palaver_server::config::{DownloadAccess, ObjectBackend, S3Config};
use palaver_store::{ObjectStore as _, sqlite::SqliteStore};
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

const MIB: usize = 1024 * 1024;

// -------------------------------------------------------------------------------------------------------------
// Backends

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    S3,
}

/// A server on one backend, its data folder, and (for S3) its bucket.
struct Env {
    server: TestServer,
    backend: Backend,
    bucket: String,
    admin: String,
}

/// Generates one test per (backend, body).
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Local).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::S3).await;
                }
            )*
        }
    };
}

both_backends!(
    fifty_mib_in_parts_round_trips,
    repeated_upload_transfers_nothing,
    expired_upload_is_refused_and_removed,
    abandoned_uploads_are_swept,
    wrong_part_hash_is_refused,
    oversize_is_refused,
    bad_names_are_refused,
    disallowed_type_is_refused,
    downloads_need_a_token_when_configured,
);

/// The S3-compatible server of this test process: `scripts/s3-server` (moto) on a free port, started on first
/// use. The script stops it when this process exits.
fn s3_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/s3-server");
        let mut child = std::process::Command::new(&script)
            .arg(port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        // The first run installs moto into a virtualenv: allow for that.
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("scripts/s3-server exited ({status}) before serving");
            }
            assert!(std::time::Instant::now() < deadline, "scripts/s3-server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::mem::forget(child);
        format!("http://127.0.0.1:{port}")
    })
}

impl Env {
    async fn start(backend: Backend, tweak: impl FnOnce(&mut palaver_server::Config)) -> Self {
        let bucket = format!("palaver-test-{}", rand_hex());
        if backend == Backend::S3 {
            let endpoint = tokio::task::spawn_blocking(s3_endpoint).await.unwrap();
            let (status, _, body) = http("PUT", &format!("{endpoint}/{bucket}"), &[], Vec::new()).await;
            assert_eq!(status, 200, "creating bucket {bucket}: {}", String::from_utf8_lossy(&body));
        }
        let server = TestServer::start_with(|config| {
            if backend == Backend::S3 {
                config.objects.backend = ObjectBackend::S3;
                config.objects.s3 = S3Config {
                    endpoint: s3_endpoint().to_string(),
                    bucket: bucket.clone(),
                    region: "us-east-1".into(),
                    access_key: "palaver-test".into(),
                    secret_key: "palaver-test-secret".into(),
                    path_style: true,
                    key_prefix: "objects/".into(),
                };
            }
            tweak(config);
        })
        .await;
        let admin = server.admin_token().await;
        server.register(&admin, &["alice", "bob"]).await;
        Self { server, backend, bucket, admin }
    }

    async fn token(&self, user: &str) -> String {
        self.server.user_token(&self.admin, user, 5).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.server.post(path, Some(token), body).await
    }

    fn objects_dir(&self) -> PathBuf {
        self.server.dir.path().join("objects")
    }

    /// The store as the server sees it (a second connection to its database file).
    async fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.server.dir.path().join("palaver.db")).await.unwrap()
    }

    /// Asserts that no upload is in progress: no row in the store, no parts in the backend.
    async fn assert_no_uploads(&self) {
        let store = self.store().await;
        let rows = store.expired_uploads(i64::MAX, 100).await.unwrap();
        assert!(rows.is_empty(), "upload rows left: {rows:?}");
        store.close().await;
        match self.backend {
            Backend::Local => {
                for dir in ["uploads", "tmp"] {
                    let left: Vec<_> = std::fs::read_dir(self.objects_dir().join(dir)).unwrap().collect();
                    assert!(left.is_empty(), "objects/{dir} has {} entries left", left.len());
                }
            }
            Backend::S3 => {
                let (_, _, body) =
                    http("GET", &format!("{}/{}?uploads", s3_endpoint(), self.bucket), &[], vec![]).await;
                let body = String::from_utf8_lossy(&body);
                assert!(!body.contains("<UploadId>"), "multipart uploads left in the bucket: {body}");
            }
        }
    }

    /// Asserts that no object has this content hash: no row, no blob.
    async fn assert_not_stored(&self, hash: &str) {
        let store = self.store().await;
        assert_eq!(store.object_by_hash(hash).await.unwrap(), None, "an object row has hash {hash}");
        store.close().await;
        match self.backend {
            Backend::Local => assert!(!self.objects_dir().join("blobs").join(hash).exists(), "blob {hash} exists"),
            Backend::S3 => {
                let (status, _, _) =
                    http("HEAD", &format!("{}/{}/objects/{hash}", s3_endpoint(), self.bucket), &[], vec![]).await;
                assert_eq!(status, 404, "key objects/{hash} is in the bucket");
            }
        }
    }

    /// How many blobs are stored: files on disk, keys in the bucket.
    async fn blob_count(&self) -> usize {
        match self.backend {
            Backend::Local => std::fs::read_dir(self.objects_dir().join("blobs")).unwrap().count(),
            Backend::S3 => {
                let url = format!("{}/{}?list-type=2", s3_endpoint(), self.bucket);
                let (status, _, body) = http("GET", &url, &[], vec![]).await;
                assert_eq!(status, 200);
                String::from_utf8_lossy(&body).matches("<Key>").count()
            }
        }
    }
}

// -------------------------------------------------------------------------------------------------------------
// A client doing what OpenIM's SDK does

/// A file split as the SDK splits it, with its hashes.
struct File {
    data: Vec<u8>,
    part_size: usize,
    part_md5s: Vec<String>,
    /// OpenIM's content hash: md5 of the comma-joined part md5s.
    hash: String,
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

impl File {
    /// Splits `data` with the part size the SDK computes from `/object/part_limit`.
    async fn new(env: &Env, token: &str, data: Vec<u8>) -> Self {
        let limit = env.post("/object/part_limit", token, json!({})).await;
        assert_eq!(limit["errCode"], 0, "{limit}");
        let (min, num) =
            (limit["data"]["minPartSize"].as_u64().unwrap(), limit["data"]["maxNumSize"].as_u64().unwrap());
        let size = data.len() as u64;
        let part_size = if size <= min * num { min } else { size.div_ceil(num) } as usize;
        Self::with_part_size(data, part_size)
    }

    fn with_part_size(data: Vec<u8>, part_size: usize) -> Self {
        let part_md5s: Vec<String> = data.chunks(part_size).map(md5_hex).collect();
        let hash = md5_hex(part_md5s.join(",").as_bytes());
        Self { data, part_size, part_md5s, hash }
    }

    fn parts(&self) -> Vec<&[u8]> {
        self.data.chunks(self.part_size).collect()
    }
}

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn rand_hex() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    format!("{:x}{:x}", t, N.fetch_add(1, Ordering::Relaxed))
}

/// What an upload did.
#[derive(Debug)]
struct Uploaded {
    url: String,
    /// Part PUTs made (0 when the content was stored already).
    puts: usize,
}

/// `initiate_multipart_upload` for `file` under `name`, signing `batch` parts at a time (the SDK asks for 20).
async fn initiate(env: &Env, token: &str, file: &File, name: &str, content_type: &str, batch: i32) -> Value {
    env.post(
        "/object/initiate_multipart_upload",
        token,
        json!({
            "hash": file.hash, "size": file.data.len(), "partSize": file.part_size,
            "maxParts": batch.min(file.part_md5s.len() as i32), "cause": "test", "name": name,
            "contentType": content_type,
        }),
    )
    .await
}

/// The URL of each part from `initiate`'s answer, getting the rest from `/object/auth_sign` in batches.
async fn part_urls(env: &Env, token: &str, initiated: &Value, parts: usize, batch: usize) -> Vec<String> {
    let upload = &initiated["data"]["upload"];
    let upload_id = upload["uploadID"].as_str().unwrap();
    let mut urls: Vec<Option<String>> = vec![None; parts];
    fn take(urls: &mut [Option<String>], sign: &Value) {
        for part in sign["parts"].as_array().unwrap() {
            let n = part["partNumber"].as_u64().unwrap() as usize;
            urls[n - 1] = Some(part["url"].as_str().unwrap().to_string());
        }
    }
    if !upload["sign"].is_null() {
        take(&mut urls, &upload["sign"]);
    }
    let mut next = 1;
    while next <= parts {
        if urls[next - 1].is_none() {
            let numbers: Vec<usize> = (next..=(next + batch - 1).min(parts)).collect();
            let signed =
                env.post("/object/auth_sign", token, json!({"uploadID": upload_id, "partNumbers": numbers})).await;
            assert_eq!(signed["errCode"], 0, "{signed}");
            take(&mut urls, &signed["data"]);
        }
        next += 1;
    }
    urls.into_iter().map(Option::unwrap).collect()
}

/// Uploads `file` the SDK's way and completes; panics on any failure.
async fn upload(env: &Env, token: &str, file: &File, name: &str, content_type: &str) -> Uploaded {
    let initiated = initiate(env, token, file, name, content_type, 4).await;
    assert_eq!(initiated["errCode"], 0, "initiate: {initiated}");
    let url = initiated["data"]["url"].as_str().unwrap_or("");
    if !url.is_empty() {
        assert!(initiated["data"]["upload"].is_null(), "{initiated}");
        return Uploaded { url: url.to_string(), puts: 0 };
    }
    let upload = &initiated["data"]["upload"];
    assert_eq!(upload["partSize"].as_u64(), Some(file.part_size as u64), "the server's part size is the SDK's");
    let parts = file.parts();
    let urls = part_urls(env, token, &initiated, parts.len(), 4).await;
    for (i, (url, part)) in urls.iter().zip(&parts).enumerate() {
        let (status, headers, body) = http("PUT", url, &[], part.to_vec()).await;
        assert_eq!(status, 200, "PUT part {}: {}", i + 1, String::from_utf8_lossy(&body));
        let etag = headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or("").trim_matches('"').to_string();
        assert_eq!(etag, file.part_md5s[i], "part {} ETag", i + 1);
    }
    let completed =
        complete(env, token, upload["uploadID"].as_str().unwrap(), &file.part_md5s, name, content_type).await;
    assert_eq!(completed["errCode"], 0, "complete: {completed}");
    Uploaded { url: completed["data"]["url"].as_str().unwrap().to_string(), puts: parts.len() }
}

async fn complete(env: &Env, token: &str, upload_id: &str, parts: &[String], name: &str, content_type: &str) -> Value {
    env.post(
        "/object/complete_multipart_upload",
        token,
        json!({"uploadID": upload_id, "parts": parts, "name": name, "contentType": content_type, "cause": "test"}),
    )
    .await
}

/// GET, following one redirect (the S3 backend's); returns status, headers and body.
async fn download(url: &str, headers: &[(&str, &str)]) -> (u16, hyper::HeaderMap, Vec<u8>) {
    let (status, h, body) = http("GET", url, headers, Vec::new()).await;
    if status == 302 {
        let location = h.get("location").unwrap().to_str().unwrap().to_string();
        return http("GET", &location, headers, Vec::new()).await;
    }
    (status, h, body)
}

/// One HTTP/1.1 request to an `http://` URL; returns status, headers and the whole body.
async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, hyper::HeaderMap, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not an http URL: {url}"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = authority.parse().unwrap_or_else(|_| panic!("not ip:port: {authority}"));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", authority);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if method == "PUT" || method == "POST" {
        request = request.header("content-length", body.len());
    }
    let request = request.body(Full::new(bytes::Bytes::from(body))).unwrap();
    // A server that refuses a request before reading its body may close the connection while a large body is
    // still being written: that is a refusal too, reported as status 0.
    let Ok(response) = tokio::time::timeout(WAIT * 12, sender.send_request(request)).await.expect("in time") else {
        return (0, hyper::HeaderMap::new(), Vec::new());
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn header<'a>(headers: &'a hyper::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

// -------------------------------------------------------------------------------------------------------------
// Scenarios

/// A 50 MiB file goes up in ten 5 MiB parts (four signed at a time: initiate, then auth_sign) and comes back
/// byte-identical with its type and length; a range of it comes back as 206.
async fn fifty_mib_in_parts_round_trips(backend: Backend) {
    let env = Env::start(backend, |_| {}).await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(50 * MIB, 1)).await;
    assert_eq!(file.part_md5s.len(), 10);
    let up = upload(&env, &alice, &file, "alice/clip.mp4", "video/mp4").await;
    assert_eq!(up.puts, 10);
    assert!(up.url.ends_with("/object/alice/clip.mp4"), "{}", up.url);
    assert!(up.url.starts_with(&format!("http://{}", env.server.api)), "the URL is the API's: {}", up.url);

    let (status, headers, body) = download(&up.url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), file.data.len());
    assert!(body == file.data, "downloaded bytes differ");
    assert_eq!(header(&headers, "content-type"), "video/mp4");
    assert_eq!(header(&headers, "content-length"), (50 * MIB).to_string());

    let (status, headers, body) = download(&up.url, &[("range", "bytes=1000000-1000999")]).await;
    assert_eq!(status, 206);
    assert_eq!(body, file.data[1_000_000..1_001_000]);
    assert_eq!(header(&headers, "content-range"), format!("bytes 1000000-1000999/{}", 50 * MIB));

    let store = env.store().await;
    let object = store.object("alice/clip.mp4").await.unwrap().expect("object row");
    assert_eq!(
        (object.size, object.hash.as_str(), object.user_id.as_str()),
        (50 * MIB as i64, file.hash.as_str(), "alice")
    );
    store.close().await;
    env.assert_no_uploads().await;
    if backend == Backend::Local {
        assert_eq!(std::fs::metadata(env.objects_dir().join("blobs").join(&file.hash)).unwrap().len(), 50 * MIB as u64);
    }

    // access_url gives a working link too.
    let access = env.post("/object/access_url", &alice, json!({"name": "alice/clip.mp4"})).await;
    assert_eq!(access["errCode"], 0, "{access}");
    let (status, _, body) = download(access["data"]["url"].as_str().unwrap(), &[("range", "bytes=-10")]).await;
    assert_eq!((status, body.as_slice()), (206, &file.data[file.data.len() - 10..]));
    env.server.stop().await;
}

/// The same bytes uploaded again (by another user, under another name) complete at initiate: no upload, no
/// PUT, one blob; the second URL serves the bytes.
async fn repeated_upload_transfers_nothing(backend: Backend) {
    let env = Env::start(backend, |_| {}).await;
    let (alice, bob) = (env.token("alice").await, env.token("bob").await);
    let file = File::new(&env, &alice, bytes(6 * MIB + 123, 2)).await;
    let first = upload(&env, &alice, &file, "alice/song.ogg", "audio/ogg").await;
    assert_eq!(first.puts, 2);
    let blobs = env.blob_count().await;
    assert_eq!(blobs, 1);
    let again = upload(&env, &bob, &file, "bob/same-song.ogg", "audio/ogg").await;
    assert_eq!(again.puts, 0, "a repeated upload transfers nothing");
    assert!(again.url.ends_with("/object/bob/same-song.ogg"));
    assert_eq!(env.blob_count().await, blobs, "no second blob");
    let (status, headers, body) = download(&again.url, &[]).await;
    assert_eq!(status, 200);
    assert!(body == file.data);
    assert_eq!(header(&headers, "content-type"), "audio/ogg");
    env.assert_no_uploads().await;
    env.server.stop().await;
}

/// An upload used after its expiry: the part URL is refused (by Palaver on the local backend; moto does not
/// check presigned expiry, real S3 does) and so is the completion, with OpenIM's 1701, and nothing is left.
async fn expired_upload_is_refused_and_removed(backend: Backend) {
    let env = Env::start(backend, |c| {
        c.objects.upload_ttl_secs = 1;
        c.objects.url_ttl_secs = 1;
        c.objects.sweep_interval_secs = 3600;
    })
    .await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(6 * MIB, 3)).await;
    let initiated = initiate(&env, &alice, &file, "alice/late.bin", "application/octet-stream", 20).await;
    assert_eq!(initiated["errCode"], 0, "{initiated}");
    let upload = &initiated["data"]["upload"];
    let expire_time = upload["expireTime"].as_i64().unwrap();
    let urls = part_urls(&env, &alice, &initiated, 2, 20).await;
    while common_now_ms() <= expire_time + 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A short body: the refusal comes before the body is read, and a short one is sure to be written whole.
    let (status, _, body) = http("PUT", &urls[0], &[], file.parts()[0][..1000].to_vec()).await;
    if backend == Backend::Local {
        assert_eq!(status, 403, "an expired part URL is refused");
        assert!(String::from_utf8_lossy(&body).contains("expired"), "{}", String::from_utf8_lossy(&body));
    }
    let signed =
        env.post("/object/auth_sign", &alice, json!({"uploadID": upload["uploadID"], "partNumbers": [1]})).await;
    assert_eq!(signed["errCode"], 1701, "auth_sign of an expired upload: {signed}");
    let completed =
        complete(&env, &alice, upload["uploadID"].as_str().unwrap(), &file.part_md5s, "alice/late.bin", "").await;
    assert_eq!(completed["errCode"], 1701, "{completed}");
    assert!(completed["errDlt"].as_str().unwrap().contains("expired"), "{completed}");
    env.assert_no_uploads().await;
    env.assert_not_stored(&file.hash).await;
    env.server.stop().await;
}

fn common_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// An upload started and left: the sweeper removes its parts and its row once it expires.
async fn abandoned_uploads_are_swept(backend: Backend) {
    let env = Env::start(backend, |c| {
        c.objects.upload_ttl_secs = 1;
        c.objects.sweep_interval_secs = 1;
    })
    .await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(6 * MIB, 4)).await;
    let initiated = initiate(&env, &alice, &file, "alice/left.bin", "application/octet-stream", 20).await;
    assert_eq!(initiated["errCode"], 0, "{initiated}");
    let urls = part_urls(&env, &alice, &initiated, 2, 20).await;
    let (status, _, _) = http("PUT", &urls[1], &[], file.parts()[1].to_vec()).await;
    assert!(status == 200 || status == 403, "PUT: {status}"); // 403 if it expired already
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let store = env.store().await;
        let left = store.expired_uploads(i64::MAX, 10).await.unwrap().len();
        store.close().await;
        if left == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the abandoned upload was never swept");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.assert_no_uploads().await;
    env.assert_not_stored(&file.hash).await;
    env.server.stop().await;
}

/// Bytes that do not match the md5 given for their part are refused at completion (and the upload ends); so
/// are part hashes that do not combine to the announced hash.
async fn wrong_part_hash_is_refused(backend: Backend) {
    let env = Env::start(backend, |_| {}).await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(6 * MIB, 5)).await;

    // Part 2's bytes are not those hashed.
    let initiated = initiate(&env, &alice, &file, "alice/tampered.bin", "application/octet-stream", 20).await;
    let upload_id = initiated["data"]["upload"]["uploadID"].as_str().unwrap().to_string();
    let urls = part_urls(&env, &alice, &initiated, 2, 20).await;
    assert_eq!(http("PUT", &urls[0], &[], file.parts()[0].to_vec()).await.0, 200);
    let forged = bytes(file.parts()[1].len(), 99);
    assert_eq!(http("PUT", &urls[1], &[], forged).await.0, 200);
    let completed = complete(&env, &alice, &upload_id, &file.part_md5s, "alice/tampered.bin", "").await;
    assert_eq!(completed["errCode"], 1001, "{completed}");
    assert!(completed["errDlt"].as_str().unwrap().contains("md5"), "a clear reason: {completed}");
    env.assert_no_uploads().await;
    env.assert_not_stored(&file.hash).await;

    // Part hashes that do not add up to the hash the upload started with.
    let initiated = initiate(&env, &alice, &file, "alice/tampered.bin", "application/octet-stream", 20).await;
    let upload_id = initiated["data"]["upload"]["uploadID"].as_str().unwrap().to_string();
    let wrong = vec![file.part_md5s[1].clone(), file.part_md5s[0].clone()];
    let completed = complete(&env, &alice, &upload_id, &wrong, "alice/tampered.bin", "").await;
    assert_eq!(completed["errCode"], 1001, "{completed}");
    assert!(completed["errDlt"].as_str().unwrap().contains("hash"), "{completed}");
    env.assert_no_uploads().await;
    env.assert_not_stored(&file.hash).await;
    env.server.stop().await;
}

/// A file over the limit is refused at initiate; a part longer than announced never makes an object.
async fn oversize_is_refused(backend: Backend) {
    let env = Env::start(backend, |c| c.objects.max_object_bytes = 8 * MIB as u64).await;
    let alice = env.token("alice").await;
    let limit = env.post("/object/part_limit", &alice, json!({})).await;
    let data = &limit["data"];
    assert!(
        data["maxPartSize"].as_u64().unwrap() * data["maxNumSize"].as_u64().unwrap() >= 8 * MIB as u64,
        "the SDK's own check lets the largest allowed file through: {limit}"
    );

    let big = File::with_part_size(bytes(9 * MIB, 6), 5 * MIB);
    let refused = initiate(&env, &alice, &big, "alice/big.bin", "application/octet-stream", 20).await;
    assert_eq!(refused["errCode"], 1001, "{refused}");
    assert!(refused["errDlt"].as_str().unwrap().contains("largest file allowed"), "{refused}");
    let sized = env.post("/object/part_size", &alice, json!({"size": 9 * MIB})).await;
    assert_eq!(sized["errCode"], 1001, "{sized}");
    env.assert_no_uploads().await;
    env.assert_not_stored(&big.hash).await;

    // Announce 6 MiB (5 MiB + 1 MiB) but send 2 MiB as part 2, hashes computed over what is sent.
    let real = [bytes(5 * MIB, 7), bytes(2 * MIB, 8)];
    let md5s: Vec<String> = real.iter().map(|p| md5_hex(p)).collect();
    let hash = md5_hex(md5s.join(",").as_bytes());
    let initiated = env
        .post(
            "/object/initiate_multipart_upload",
            &alice,
            json!({"hash": hash, "size": 6 * MIB, "partSize": 5 * MIB, "maxParts": 2, "name": "alice/grown.bin",
                   "contentType": "application/octet-stream"}),
        )
        .await;
    assert_eq!(initiated["errCode"], 0, "{initiated}");
    let upload_id = initiated["data"]["upload"]["uploadID"].as_str().unwrap().to_string();
    let urls = part_urls(&env, &alice, &initiated, 2, 20).await;
    assert_eq!(http("PUT", &urls[0], &[], real[0].clone()).await.0, 200);
    let (status, _, _) = http("PUT", &urls[1], &[], real[1].clone()).await;
    if backend == Backend::Local {
        assert_ne!(status, 200, "a part longer than announced is refused as it arrives");
    }
    let completed = complete(&env, &alice, &upload_id, &md5s, "alice/grown.bin", "").await;
    assert_eq!(completed["errCode"], 1001, "{completed}");
    env.assert_no_uploads().await;
    env.assert_not_stored(&hash).await;
    env.server.stop().await;
}

/// Names that climb out of their folder or into another user's are refused; so is a name another user holds,
/// and downloads by such names.
async fn bad_names_are_refused(backend: Backend) {
    let env = Env::start(backend, |_| {}).await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(1000, 9)).await;
    for (name, code) in [
        ("alice/../bob/x.png", 1001),
        ("../../etc/passwd", 1001),
        ("/alice/x.png", 1001),
        ("alice//x.png", 1001),
        ("alice/./x.png", 1001),
        ("alice/x\\..\\y.png", 1001),
        ("bob/x.png", 1002),
        ("x.png", 1002),
    ] {
        let refused = initiate(&env, &alice, &file, name, "image/png", 20).await;
        assert_eq!(refused["errCode"], code, "{name}: {refused}");
        let refused = complete(&env, &alice, "0123456789abcdef0123456789abcdef", &file.part_md5s, name, "").await;
        assert_eq!(refused["errCode"], code, "complete {name}: {refused}");
    }
    env.assert_no_uploads().await;
    env.assert_not_stored(&file.hash).await;

    // The admin may name anything; then nobody else may take that name.
    let admin_upload = upload(&env, &env.admin, &file, "bob/notice.png", "image/png").await;
    let bob = env.token("bob").await;
    let other = File::new(&env, &bob, bytes(2000, 10)).await;
    let refused = initiate(&env, &bob, &other, "bob/notice.png", "image/png", 20).await;
    assert_eq!(refused["errCode"], 1002, "bob cannot replace the admin's object: {refused}");
    let (status, _, body) = download(&admin_upload.url, &[]).await;
    assert_eq!((status, body == file.data), (200, true));

    let base = format!("http://{}", env.server.api);
    for path in ["/object/alice/../../palaver.db", "/object/alice/%2e%2e/%2e%2e/palaver.db", "/object/..%2fpalaver.db"]
    {
        let (status, _, _) = http("GET", &format!("{base}{path}"), &[], vec![]).await;
        assert!(status == 400 || status == 404, "GET {path}: {status}");
    }
    env.server.stop().await;
}

/// A content type outside `allowed_content_types` is refused before anything is stored.
async fn disallowed_type_is_refused(backend: Backend) {
    let env =
        Env::start(backend, |c| c.objects.allowed_content_types = vec!["image/*".into(), "video/mp4".into()]).await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(4000, 11)).await;
    for content_type in ["application/x-msdownload", "text/html", "video/webm", "image", "image/png\r\nx: y"] {
        let refused = initiate(&env, &alice, &file, "alice/a.exe", content_type, 20).await;
        assert_eq!(refused["errCode"], 1001, "{content_type}: {refused}");
    }
    let refused = initiate(&env, &alice, &file, "alice/a.exe", "application/x-msdownload", 20).await;
    assert!(refused["errDlt"].as_str().unwrap().contains("not accepted"), "{refused}");
    env.assert_no_uploads().await;
    env.assert_not_stored(&file.hash).await;
    let ok = upload(&env, &alice, &file, "alice/a.png", "image/png").await;
    let (status, headers, _) = download(&ok.url, &[]).await;
    assert_eq!((status, header(&headers, "content-type")), (200, "image/png"));
    env.server.stop().await;
}

/// With `download = "token"`, a file URL needs a token (header or query); an access_url link works alone.
async fn downloads_need_a_token_when_configured(backend: Backend) {
    let env = Env::start(backend, |c| c.objects.download = DownloadAccess::Token).await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(3000, 12)).await;
    let up = upload(&env, &alice, &file, "alice/private.txt", "text/plain").await;
    let (status, _, _) = http("GET", &up.url, &[], vec![]).await;
    assert_eq!(status, 401);
    let (status, _, _) = http("GET", &up.url, &[("token", "not-a-token")], vec![]).await;
    assert_eq!(status, 401);
    let bob = env.token("bob").await;
    let (status, headers, body) = download(&up.url, &[("token", &bob)]).await;
    assert_eq!((status, body == file.data), (200, true));
    assert!(header(&headers, "content-disposition").starts_with("attachment"), "text is not shown inline");
    let (status, _, body) = download(&format!("{}?token={bob}", up.url), &[]).await;
    assert_eq!((status, body == file.data), (200, true));
    let access = env.post("/object/access_url", &bob, json!({"name": "alice/private.txt"})).await;
    let (status, _, body) = download(access["data"]["url"].as_str().unwrap(), &[]).await;
    assert_eq!((status, body == file.data), (200, true));
    let missing = env.post("/object/access_url", &bob, json!({"name": "alice/nothing.txt"})).await;
    assert_eq!(missing["errCode"], 1004, "{missing}");
    env.server.stop().await;
}

/// A part sent to the server (the local backend's part URLs) may take longer than `read_timeout_secs` as long as it
/// keeps coming, unlike a JSON body; one that stops arriving for that long is given up and its connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_part_is_taken_and_a_stalled_one_given_up() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let env = Env::start(Backend::Local, short_read_timeout).await;
    let alice = env.token("alice").await;
    let file = File::new(&env, &alice, bytes(6 * MIB, 13)).await;
    let initiated = initiate(&env, &alice, &file, "alice/slow.bin", "application/octet-stream", 20).await;
    let urls = part_urls(&env, &alice, &initiated, file.parts().len(), 20).await;
    // `http://host:port/path?query` as a raw request, its head and then its body as `send` gives it.
    let put = |url: &str, part: &[u8]| {
        let (host, path) = url.strip_prefix("http://").unwrap().split_once('/').unwrap();
        let head = format!("PUT /{path} HTTP/1.1\r\nHost: {host}\r\ncontent-length: {}\r\n\r\n", part.len());
        (host.to_string(), head)
    };

    // Part 1 in six pieces half a second apart: three seconds in all, no pause as long as the read timeout.
    let part = file.parts()[0];
    let (host, head) = put(&urls[0], part);
    let mut slow = tokio::net::TcpStream::connect(&host).await.unwrap();
    slow.write_all(head.as_bytes()).await.unwrap();
    for piece in part.chunks(part.len().div_ceil(6)) {
        slow.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut status = [0; 12];
    tokio::time::timeout(WAIT, slow.read_exact(&mut status)).await.expect("answered").unwrap();
    assert_eq!(&status, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&status));

    // Part 2, half of it and then nothing.
    let part = file.parts()[1];
    let (host, head) = put(&urls[1], part);
    let mut stalled = tokio::net::TcpStream::connect(&host).await.unwrap();
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&part[..part.len() / 2]).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(WAIT, stalled.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "a stalled part still open after {WAIT:?}");
    env.server.stop().await;
}

// -------------------------------------------------------------------------------------------------------------
// Media messages (backend-independent)

/// Picture, voice, video and file messages go through with their elements; malformed ones are refused.
#[tokio::test]
async fn media_messages_carry_their_elements() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut alice = server.connect_new(&admin, "alice", common::GOB_GZIP).await;
    let mut bob = server.connect_new(&admin, "bob", common::GOB_GZIP).await;
    let url = format!("http://{}/object/alice/x", server.api);
    let elements = [
        (
            102,
            json!({"sourcePath": "", "sourcePicture": {"uuid": "u", "type": "image/png", "size": 10, "width": 2,
            "height": 2, "url": url}, "bigPicture": {"url": url}, "snapshotPicture": {"url": format!("{url}?type=image")}}),
        ),
        (103, json!({"uuid": "u", "sourceUrl": url, "dataSize": 10, "duration": 3, "soundType": "audio/ogg"})),
        (104, json!({"videoUrl": url, "videoType": "video/mp4", "videoSize": 10, "duration": 3, "snapshotUrl": url})),
        (105, json!({"uuid": "u", "sourceUrl": url, "fileName": "report.pdf", "fileSize": 10, "fileType": "pdf"})),
    ];
    for (i, (content_type, elem)) in elements.iter().enumerate() {
        let mut msg = common::text_msg("alice", "bob", &format!("media-{i}"), "");
        msg.content_type = *content_type;
        msg.content = elem.to_string().into_bytes();
        let ack = alice.send_text_msg(msg).await;
        assert_eq!(ack.err_code, 0, "content type {content_type}: {}", ack.err_msg);
        let (_, pushed) = bob.next_push().await.expect("pushed to bob");
        assert_eq!(pushed.content_type, *content_type);
        assert_eq!(serde_json::from_slice::<Value>(&pushed.content).unwrap(), *elem);
    }
    let bad = [
        (102, b"not json".to_vec()),
        (102, json!({"sourcePicture": {"url": ""}}).to_string().into_bytes()),
        (103, json!({"sourceUrl": "javascript:alert(1)"}).to_string().into_bytes()),
        (104, json!({"videoUrl": url, "snapshotUrl": "file:///etc/passwd"}).to_string().into_bytes()),
        (105, json!(["sourceUrl", url]).to_string().into_bytes()),
    ];
    for (i, (content_type, content)) in bad.into_iter().enumerate() {
        let mut msg = common::text_msg("alice", "bob", &format!("bad-media-{i}"), "");
        msg.content_type = content_type;
        msg.content = content;
        let ack = alice.send_text_msg(msg).await;
        assert_eq!(ack.err_code, 1001, "bad content {i} of type {content_type} is refused");
    }
    let seqs = alice.newest_seqs().await;
    assert_eq!(seqs.max_seqs.get("si_alice_bob"), Some(&4), "only the four good messages were stored");
    server.stop().await;
}
