//! AWS Signature Version 4, the few pieces an S3 client needs: signed requests (an `Authorization` header) and
//! presigned URLs (the signature in the query string), for the `s3` service.
//!
//! Written here rather than taken from the AWS SDK (hundreds of crates) because the algorithm is small and fixed:
//! a canonical form of the request, hashed, signed with a key derived from the secret by four HMACs. The unit
//! tests pin it to the examples in AWS's documentation.

use sha2::{Digest, Sha256};

/// SHA-256 of the empty payload, the body hash of every request without one.
#[cfg(test)]
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The payload hash of presigned URLs: the body is not known when the URL is made.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Credentials and scope.
#[derive(Clone)]
pub(crate) struct Signer {
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    pub(crate) region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("access_key", &self.access_key).field("region", &self.region).finish()
    }
}

/// A request to sign: method, `Host` header, path (already URI-encoded), query parameters (raw), and the headers
/// to sign besides `host` (names in any case).
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a [(&'a str, &'a str)],
    pub(crate) headers: &'a [(&'a str, &'a str)],
}

impl Signer {
    /// The headers that authenticate `req` with this body: `x-amz-date`, `x-amz-content-sha256` and
    /// `authorization`. `req.headers` must not contain them.
    pub(crate) fn sign_headers(&self, req: &Request<'_>, payload: &[u8], unix_time: u64) -> Vec<(String, String)> {
        let datetime = amz_datetime(unix_time);
        let payload_hash = sha256_hex(payload);
        let mut headers: Vec<(&str, &str)> = req.headers.to_vec();
        headers.push(("x-amz-content-sha256", &payload_hash));
        headers.push(("x-amz-date", &datetime));
        let (signed, signature) = self.signature(req, &headers, &[], &datetime, &payload_hash);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed}, Signature={signature}",
            self.access_key,
            self.scope(&datetime)
        );
        vec![
            ("x-amz-date".to_string(), datetime.clone()),
            ("x-amz-content-sha256".to_string(), payload_hash.clone()),
            ("authorization".to_string(), authorization),
        ]
    }

    /// The query string (without `?`) of a URL presigned for `expires_secs` from `unix_time`: `req.query`
    /// plus the `X-Amz-*` parameters, canonically encoded. Headers in `req.headers` must then be sent with
    /// exactly these values.
    pub(crate) fn presign(&self, req: &Request<'_>, unix_time: u64, expires_secs: u64) -> String {
        let datetime = amz_datetime(unix_time);
        let credential = format!("{}/{}", self.access_key, self.scope(&datetime));
        let expires = expires_secs.to_string();
        let mut names: Vec<String> = req.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        names.push("host".into());
        names.sort();
        let signed_headers = names.join(";");
        let auth: [(&str, &str); 5] = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", &credential),
            ("X-Amz-Date", &datetime),
            ("X-Amz-Expires", &expires),
            ("X-Amz-SignedHeaders", &signed_headers),
        ];
        let (_, signature) = self.signature(req, req.headers, &auth, &datetime, UNSIGNED_PAYLOAD);
        let mut query = canonical_query(req.query.iter().chain(auth.iter()));
        query.push_str("&X-Amz-Signature=");
        query.push_str(&signature);
        query
    }

    fn scope(&self, datetime: &str) -> String {
        format!("{}/{}/s3/aws4_request", &datetime[..8], self.region)
    }

    /// Returns the `SignedHeaders` list and the signature.
    fn signature(
        &self,
        req: &Request<'_>,
        headers: &[(&str, &str)],
        extra_query: &[(&str, &str)],
        datetime: &str,
        payload_hash: &str,
    ) -> (String, String) {
        let mut canonical_headers: Vec<(String, String)> =
            headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), collapse_spaces(v))).collect();
        canonical_headers.push(("host".into(), req.host.to_string()));
        canonical_headers.sort();
        let signed: Vec<&str> = canonical_headers.iter().map(|(n, _)| n.as_str()).collect();
        let signed = signed.join(";");
        let mut canonical = String::new();
        canonical.push_str(req.method);
        canonical.push('\n');
        canonical.push_str(req.path);
        canonical.push('\n');
        canonical.push_str(&canonical_query(req.query.iter().chain(extra_query.iter())));
        canonical.push('\n');
        for (name, value) in &canonical_headers {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value);
            canonical.push('\n');
        }
        canonical.push('\n');
        canonical.push_str(&signed);
        canonical.push('\n');
        canonical.push_str(payload_hash);

        let string_to_sign =
            format!("AWS4-HMAC-SHA256\n{datetime}\n{}\n{}", self.scope(datetime), sha256_hex(canonical.as_bytes()));
        let date_key = hmac_sha256(format!("AWS4{}", self.secret_key).as_bytes(), &datetime.as_bytes()[..8]);
        let region_key = hmac_sha256(&date_key, self.region.as_bytes());
        let service_key = hmac_sha256(&region_key, b"s3");
        let signing_key = hmac_sha256(&service_key, b"aws4_request");
        (signed, hex(&hmac_sha256(&signing_key, string_to_sign.as_bytes())))
    }
}

/// `k=v&k=v`, each part URI-encoded, sorted by key then value (AWS's canonical query string).
fn canonical_query<'a>(params: impl Iterator<Item = &'a (&'a str, &'a str)>) -> String {
    let mut encoded: Vec<(String, String)> =
        params.map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// URI-encodes as AWS specifies: `A-Z a-z 0-9 - _ . ~` stay, every other byte becomes `%XY` (upper-case hex);
/// `/` stays too when `keep_slash` (object key paths).
pub(crate) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// HMAC-SHA256 (RFC 2104).
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `YYYYMMDDTHHMMSSZ` (ISO 8601 basic, UTC) for seconds since the Unix epoch.
pub(crate) fn amz_datetime(unix_time: u64) -> String {
    let days = (unix_time / 86_400) as i64;
    let secs = unix_time % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's example credentials (Signature V4 documentation for S3).
    fn example() -> Signer {
        Signer {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            region: "us-east-1".into(),
        }
    }

    /// 2013-05-24T00:00:00Z, the time of AWS's examples.
    const EXAMPLE_TIME: u64 = 1_369_353_600;

    #[test]
    fn dates() {
        assert_eq!(amz_datetime(0), "19700101T000000Z");
        assert_eq!(amz_datetime(EXAMPLE_TIME), "20130524T000000Z");
        assert_eq!(amz_datetime(951_782_400 + 3661), "20000229T010101Z"); // a leap day
        assert_eq!(amz_datetime(4_102_444_799), "20991231T235959Z");
    }

    #[test]
    fn presigned_url_matches_aws_example() {
        // "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", GET examplebucket/test.txt.
        let req = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            headers: &[],
        };
        let query = example().presign(&req, EXAMPLE_TIME, 86_400);
        assert_eq!(
            query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F\
             aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=\
             aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn signed_request_matches_aws_example() {
        // "Authenticating Requests: Using the Authorization Header", example "GET Object" with a Range header.
        let req = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            headers: &[("Range", "bytes=0-9")],
        };
        let headers = example().sign_headers(&req, b"", EXAMPLE_TIME);
        let auth = &headers.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(headers.contains(&("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string())));
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("a b/c~d+é", false), "a%20b%2Fc~d%2B%C3%A9");
        assert_eq!(uri_encode("dir/file name", true), "dir/file%20name");
        assert_eq!(canonical_query([("uploadId", "x y"), ("partNumber", "2")].iter()), "partNumber=2&uploadId=x%20y");
    }
}
