//! The S3 backend: any S3-compatible bucket. Clients upload parts and download objects directly to and from the
//! bucket through URLs Palaver presigns; Palaver itself makes only the few calls around them (create, complete
//! and abort a multipart upload, look at and delete an object), signed with [`super::sigv4`] and sent over a
//! plain HTTP/1.1 connection (hyper, already in the tree for the API).
//!
//! Content is checked by S3 itself: completion names each part by its md5, and S3 refuses a part whose stored
//! ETag (its md5) differs (`InvalidPart`). The presigned part URLs also sign the part's `Content-Length`, so S3
//! refuses a body of another length; the size of the assembled object is checked after completion anyway.

use super::BlobError;
use super::sigv4::{self, Request, Signer};
use crate::config::S3Config;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, StatusCode};
use palaver_store::Upload;
use std::time::Duration;

/// How long one call to S3 may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body read from S3 (its answers here are small XML documents).
const MAX_RESPONSE: usize = 1024 * 1024;

#[derive(Debug)]
pub struct S3Blobs {
    signer: Signer,
    /// `http://host[:port]` of presigned URLs (the bucket's host in virtual-hosted style).
    origin: String,
    /// `Host` header value, and what is signed as `host`.
    host: String,
    /// `host:port` to connect to.
    connect_to: String,
    /// Whether the endpoint is `https://` (only with the `s3-tls` feature).
    #[cfg_attr(not(feature = "s3-tls"), allow(dead_code))]
    tls: bool,
    /// `/bucket` in path style, empty in virtual-hosted style.
    bucket_path: String,
    key_prefix: String,
}

/// A response from S3: status, `Content-Length` header if any, body.
struct Answer {
    status: StatusCode,
    content_length: Option<u64>,
    body: Bytes,
}

impl S3Blobs {
    pub(crate) fn new(config: &S3Config) -> Result<Self, String> {
        let (tls, rest) = match (config.endpoint.strip_prefix("http://"), config.endpoint.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) if TLS => (true, rest),
            (None, Some(_)) => return Err(NO_TLS.to_string()),
            (None, None) => return Err(format!("objects.s3.endpoint {:?} must be an http(s):// URL", config.endpoint)),
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("objects.s3.endpoint {:?} must be http(s)://host[:port]", config.endpoint));
        }
        let (host, bucket_path) = if config.path_style {
            (authority.to_string(), format!("/{}", sigv4::uri_encode(&config.bucket, false)))
        } else {
            (format!("{}.{authority}", config.bucket), String::new())
        };
        let region = if config.region.is_empty() { "us-east-1".to_string() } else { config.region.clone() };
        let has_port = host.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']'));
        let connect_to = if has_port { host.clone() } else { format!("{host}:{}", if tls { 443 } else { 80 }) };
        Ok(Self {
            connect_to,
            tls,
            signer: Signer { access_key: config.access_key.clone(), secret_key: config.secret_key.clone(), region },
            origin: format!("{}://{host}", if tls { "https" } else { "http" }),
            host,
            bucket_path,
            key_prefix: config.key_prefix.clone(),
        })
    }

    /// The request path of `key` (URI-encoded, `/` kept).
    fn path(&self, key: &str) -> String {
        format!("{}/{}", self.bucket_path, sigv4::uri_encode(&format!("{}{key}", self.key_prefix), true))
    }

    /// Sends one signed request and reads the whole answer.
    async fn call(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, &str)],
        body: Bytes,
        unix_time: u64,
    ) -> Result<Answer, BlobError> {
        let path = self.path(key);
        let req = Request { method: method.as_str(), host: &self.host, path: &path, query, headers: &[] };
        let signed = self.signer.sign_headers(&req, &body, unix_time);
        let mut uri = path.clone();
        if !query.is_empty() {
            uri.push('?');
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        sigv4::uri_encode(k, false)
                    } else {
                        format!("{}={}", sigv4::uri_encode(k, false), sigv4::uri_encode(v, false))
                    }
                })
                .collect();
            uri.push_str(&pairs.join("&"));
        }
        let mut builder = hyper::Request::builder().method(method.clone()).uri(&uri).header("host", &self.host);
        for (name, value) in &signed {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !body.is_empty() || method == Method::POST || method == Method::PUT {
            builder = builder.header("content-length", body.len());
        }
        let request = builder.body(Full::new(body)).map_err(|e| BlobError::Backend(format!("S3 request: {e}")))?;
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&self.connect_to)
                .await
                .map_err(|e| BlobError::Backend(format!("connecting to S3 at {}: {e}", self.host)))?;
            let _ = stream.set_nodelay(true);
            #[cfg(feature = "s3-tls")]
            if self.tls {
                let stream = tls::connect(&self.host, stream).await?;
                return send(hyper_util::rt::TokioIo::new(stream), request, &method, &uri).await;
            }
            send(hyper_util::rt::TokioIo::new(stream), request, &method, &uri).await
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| BlobError::Backend(format!("S3 did not answer within {CALL_TIMEOUT:?}")))?
    }

    /// `CreateMultipartUpload`: returns S3's upload id.
    pub(crate) async fn initiate(&self, key: &str, unix_time: u64) -> Result<String, BlobError> {
        let answer = self.call(Method::POST, key, &[("uploads", "")], Bytes::new(), unix_time).await?;
        if !answer.status.is_success() {
            return Err(s3_failure("CreateMultipartUpload", &answer));
        }
        xml_text(&answer.body, "UploadId")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| BlobError::Backend("CreateMultipartUpload answered no UploadId".into()))
    }

    /// A presigned `UploadPart` URL for part `part_number`, which must be exactly `len` bytes long.
    pub(crate) fn part_url(&self, upload: &Upload, part_number: i32, len: u64, unix_time: u64, ttl: u64) -> String {
        let path = self.path(&upload.storage_key);
        let number = part_number.to_string();
        let length = len.to_string();
        let req = Request {
            method: "PUT",
            host: &self.host,
            path: &path,
            query: &[("partNumber", &number), ("uploadId", &upload.backend_upload_id)],
            headers: &[("content-length", &length)],
        };
        format!("{}{path}?{}", self.origin, self.signer.presign(&req, unix_time, ttl))
    }

    /// A presigned `GetObject` URL that makes S3 answer with this `Content-Type` and `Content-Disposition`.
    pub(crate) fn download_url(
        &self,
        key: &str,
        content_type: &str,
        disposition: &str,
        unix_time: u64,
        ttl: u64,
    ) -> String {
        let path = self.path(key);
        let query = [("response-content-disposition", disposition), ("response-content-type", content_type)];
        let req = Request { method: "GET", host: &self.host, path: &path, query: &query, headers: &[] };
        format!("{}{path}?{}", self.origin, self.signer.presign(&req, unix_time, ttl))
    }

    /// `CompleteMultipartUpload` naming each part by its md5, then a check of the assembled size (the object is
    /// deleted again if it is not `upload.size`).
    pub(crate) async fn complete(
        &self,
        upload: &Upload,
        part_hashes: &[String],
        unix_time: u64,
    ) -> Result<(), BlobError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, hash) in part_hashes.iter().enumerate() {
            xml.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>\"{hash}\"</ETag></Part>", i + 1));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = [("uploadId", upload.backend_upload_id.as_str())];
        let answer = self.call(Method::POST, &upload.storage_key, &query, Bytes::from(xml), unix_time).await?;
        // S3 may answer 200 and still report an error in the body.
        if !answer.status.is_success() || xml_text(&answer.body, "Code").is_some() {
            let code = xml_text(&answer.body, "Code").unwrap_or_default();
            return Err(match code.as_str() {
                "InvalidPart" => BlobError::Refused(
                    "a part was not uploaded, or its bytes do not have the md5 given for it".to_string(),
                ),
                "InvalidPartOrder" | "EntityTooSmall" | "MalformedXML" => {
                    BlobError::Refused(format!("the storage refused the parts ({code})"))
                }
                "NoSuchUpload" => BlobError::Refused("the upload is gone from the storage".to_string()),
                _ => s3_failure("CompleteMultipartUpload", &answer),
            });
        }
        match self.size(&upload.storage_key, unix_time).await? {
            Some(size) if size == u64::try_from(upload.size).unwrap_or(0) => Ok(()),
            Some(size) => {
                Err(BlobError::Refused(format!("the parts hold {size} bytes, not the {} announced", upload.size)))
            }
            None => Err(BlobError::Backend("the completed object is not in the bucket".into())),
        }
    }

    /// `AbortMultipartUpload` (an upload that is gone already is fine).
    pub(crate) async fn abort(&self, upload: &Upload, unix_time: u64) -> Result<(), BlobError> {
        let query = [("uploadId", upload.backend_upload_id.as_str())];
        let answer = self.call(Method::DELETE, &upload.storage_key, &query, Bytes::new(), unix_time).await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(s3_failure("AbortMultipartUpload", &answer))
        }
    }

    /// `HeadObject`: the object's size, or `None` if there is none.
    pub(crate) async fn size(&self, key: &str, unix_time: u64) -> Result<Option<u64>, BlobError> {
        let answer = self.call(Method::HEAD, key, &[], Bytes::new(), unix_time).await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(answer.content_length.unwrap_or(0))),
            _ => Err(s3_failure("HeadObject", &answer)),
        }
    }

    /// `DeleteObject`.
    pub(crate) async fn delete(&self, key: &str, unix_time: u64) -> Result<(), BlobError> {
        let answer = self.call(Method::DELETE, key, &[], Bytes::new(), unix_time).await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(s3_failure("DeleteObject", &answer))
        }
    }
}

/// Whether this build can reach `https://` endpoints (the `s3-tls` feature).
const TLS: bool = cfg!(feature = "s3-tls");

/// Why an `https://` endpoint is refused without the `s3-tls` feature.
pub(crate) const NO_TLS: &str = "objects.s3.endpoint is https://, but this build has no TLS client: build with \
    `--features s3-tls`, or reach the endpoint through a local TLS-terminating proxy";

/// One request and its whole answer over an HTTP/1.1 connection on `io`.
async fn send<IO>(io: IO, request: hyper::Request<Full<Bytes>>, method: &Method, uri: &str) -> Result<Answer, BlobError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| BlobError::Backend(format!("S3 handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response =
        sender.send_request(request).await.map_err(|e| BlobError::Backend(format!("S3 {method} {uri}: {e}")))?;
    let status = response.status();
    let content_length =
        response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let limited = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE);
    let body = limited.collect().await.map_err(|e| BlobError::Backend(format!("S3 answer: {e}")))?.to_bytes();
    Ok(Answer { status, content_length, body })
}

/// TLS to `https://` endpoints (feature `s3-tls`): rustls with the *ring* provider, trusting the system's root
/// certificates (so a private CA installed on the machine works as it does for every other program).
#[cfg(feature = "s3-tls")]
mod tls {
    use super::BlobError;
    use std::sync::{Arc, OnceLock};
    use tokio_rustls::{TlsConnector, client::TlsStream, rustls};

    fn connector() -> Result<&'static TlsConnector, BlobError> {
        static CONNECTOR: OnceLock<Result<TlsConnector, String>> = OnceLock::new();
        CONNECTOR
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(format!("no root certificates found on this system: {:?}", found.errors));
                }
                let config =
                    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                        .with_safe_default_protocol_versions()
                        .map_err(|e| e.to_string())?
                        .with_root_certificates(roots)
                        .with_no_client_auth();
                Ok(TlsConnector::from(Arc::new(config)))
            })
            .as_ref()
            .map_err(|e| BlobError::Backend(format!("TLS set-up: {e}")))
    }

    /// A TLS session over `stream` with the server named in `host` (`name[:port]`).
    pub(super) async fn connect(
        host: &str,
        stream: tokio::net::TcpStream,
    ) -> Result<TlsStream<tokio::net::TcpStream>, BlobError> {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if !port.contains(']') => name,
            _ => host,
        };
        let name = name.trim_start_matches('[').trim_end_matches(']').to_string();
        let server_name = rustls::pki_types::ServerName::try_from(name)
            .map_err(|e| BlobError::Backend(format!("S3 host {host}: {e}")))?;
        connector()?
            .connect(server_name, stream)
            .await
            .map_err(|e| BlobError::Backend(format!("TLS with S3 at {host}: {e}")))
    }
}

/// A failed S3 call, for the logs: the operation, the status and S3's error code and message.
fn s3_failure(operation: &str, answer: &Answer) -> BlobError {
    let code = xml_text(&answer.body, "Code").unwrap_or_default();
    let message = xml_text(&answer.body, "Message").unwrap_or_default();
    BlobError::Backend(format!("S3 {operation}: HTTP {} {code} {message}", answer.status))
}

/// The text of the first `<tag>…</tag>` in an XML document, entities decoded. S3's answers are flat and
/// small, so finding the element is all the parsing they need.
fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(
        text[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_elements() {
        let body = b"<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>a&amp;b</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(xml_text(body, "UploadId").as_deref(), Some("a&b"));
        assert_eq!(xml_text(body, "Code"), None);
    }

    #[test]
    fn addressing_styles() {
        let mut config = S3Config {
            endpoint: "http://127.0.0.1:9000/".into(),
            bucket: "files".into(),
            access_key: "k".into(),
            secret_key: "s".into(),
            path_style: true,
            key_prefix: "palaver/".into(),
            ..S3Config::default()
        };
        let path_style = S3Blobs::new(&config).unwrap();
        assert_eq!(path_style.host, "127.0.0.1:9000");
        assert_eq!(path_style.path("0123abcd"), "/files/palaver/0123abcd");
        config.path_style = false;
        config.endpoint = "http://s3.example.com".into();
        let virtual_hosted = S3Blobs::new(&config).unwrap();
        assert_eq!(virtual_hosted.host, "files.s3.example.com");
        assert_eq!(virtual_hosted.connect_to, "files.s3.example.com:80");
        assert_eq!(virtual_hosted.path("x"), "/palaver/x");
        let https = S3Blobs::new(&S3Config { endpoint: "https://s3.example.com".into(), ..config });
        if TLS {
            let https = https.unwrap();
            assert_eq!(
                (https.origin.as_str(), https.connect_to.as_str()),
                ("https://files.s3.example.com", "files.s3.example.com:443")
            );
        } else {
            assert_eq!(https.unwrap_err(), NO_TLS);
        }
    }
}
