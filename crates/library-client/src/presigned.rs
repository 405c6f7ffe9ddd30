//! Presigned S3 URLs handed out by the library for uploads.

/// Decodes a query component the way Go's `url.QueryUnescape` does
/// (`+` is a space; a bad `%` escape is an error).
fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a presigned S3 URL signs the `x-amz-content-sha256` header, so
/// that the uploader must send it.
///
/// Takes the first value of the query parameter `X-Amz-SignedHeaders`
/// (exact key), splits it on `;` and looks for `x-amz-content-sha256`.
/// As in Go's query parser, a `key=value` pair containing a raw `;` is
/// ignored. Accepts a full URL or just `?query`.
pub(crate) fn remote_sha256_support(url: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or_default();
    for pair in query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (query_unescape(k), query_unescape(v)) else {
            continue;
        };
        if k == "X-Amz-SignedHeaders" {
            return v.split(';').any(|h| h == "x-amz-content-sha256");
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_sha256_support_vectors() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/vectors/remote_sha256_support.json"
        );
        let text = std::fs::read_to_string(p).unwrap();
        let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert!(!cases.is_empty());
        for c in cases {
            let got = remote_sha256_support(c["input"]["url"].as_str().unwrap());
            assert_eq!(
                got,
                c["expect"]["supported"].as_bool().unwrap(),
                "{}",
                c["name"]
            );
        }
    }

    #[test]
    fn sha256_support_ignores_raw_semicolon_pairs() {
        assert!(!remote_sha256_support(
            "?X-Amz-SignedHeaders=host;x-amz-content-sha256"
        ));
        assert!(remote_sha256_support(
            "?a=b&X-Amz-SignedHeaders=host%3bx-amz-content-sha256"
        ));
    }
}
