//! Downloads: ranges, `v1/imagefile`, blobs and the OCI redirect.

#![allow(clippy::result_large_err)]

use super::*;

/// A parsed `Range: bytes=…` header (one range only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeSpec {
    /// `a-b` or `a-` (`None` end).
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

pub(super) fn parse_range(headers: &HeaderMap) -> Option<RangeSpec> {
    let v = headers.get(RANGE)?.to_str().ok()?.trim();
    let spec = v.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Some(RangeSpec::Suffix(b.parse().ok()?));
    }
    let a: u64 = a.parse().ok()?;
    if b.is_empty() {
        return Some(RangeSpec::From(a, None));
    }
    let b: u64 = b.parse().ok()?;
    (b >= a).then_some(RangeSpec::From(a, Some(b)))
}

/// The first and last byte a range selects, or `None` when it cannot be
/// satisfied.
pub(super) fn resolve_range(spec: RangeSpec, total: u64) -> Option<(u64, u64)> {
    match spec {
        RangeSpec::From(a, _) if a >= total => None,
        RangeSpec::From(a, b) => Some((a, b.unwrap_or(total - 1).min(total - 1))),
        RangeSpec::Suffix(0) => None,
        RangeSpec::Suffix(_) if total == 0 => None,
        RangeSpec::Suffix(n) => Some((total.saturating_sub(n), total - 1)),
    }
}

pub(super) fn range_start(headers: &HeaderMap) -> Option<u64> {
    match parse_range(headers)? {
        RangeSpec::From(a, _) => Some(a),
        RangeSpec::Suffix(_) => None,
    }
}

pub(super) fn pull(ctx: &Ctx, r: &str) -> Handled {
    let not_found = || Reply::error(404, "requested image was not found");
    let (path, tag) = Path::parse_with_tag(r).ok_or_else(not_found)?;
    let arch = ctx
        .param("arch")
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| DEFAULT_ARCH.to_string());
    let (id, hash, data) = {
        let mut db = ctx.shared.db();
        let image = db
            .find_image(&path, &tag, Some(&arch))
            .filter(|i| i.uploaded)
            .ok_or_else(not_found)?;
        let (id, hash) = (image.id.clone(), image.hash.clone());
        let data = db.blob(&id).ok_or_else(not_found)?;
        db.count_download(&id);
        (id, hash, data)
    };
    let base = match ctx.shared.config.download {
        DownloadMode::Stream => return Ok(serve_data(ctx, data, &hash)),
        DownloadMode::RedirectSameListener => &ctx.shared.library_url,
        DownloadMode::RedirectOtherListener => &ctx.shared.blob_url,
    };
    let location = format!("{base}blobs/{id}?sig={}", random_hex(32));
    Ok(Reply::empty(303).header("location", location))
}

pub(super) fn blob(ctx: &Ctx, id: &str) -> Handled {
    let (hash, data) = {
        let db = ctx.shared.db();
        let data = db
            .blob(id)
            .ok_or_else(|| Reply::error(404, format!("blob {id} not found")))?;
        (
            db.image(id).map(|i| i.hash.clone()).unwrap_or_default(),
            data,
        )
    };
    Ok(serve_data(ctx, data, &hash))
}

/// Answers a download of stored bytes: 200 with everything, or 206 / 416
/// for a `Range` request, with the range faults applied.
pub(super) fn serve_data(ctx: &Ctx, data: Data, hash: &str) -> Reply {
    let total = data.len();
    let etag = format!("\"{}\"", hash.strip_prefix("sha256.").unwrap_or(hash));
    let whole = |data: Data| {
        Reply::new(
            200,
            Payload::Data {
                data,
                start: 0,
                len: total,
            },
        )
    };
    // Preconditions as RFC 9110 has them: an If-Match that names no
    // current tag fails with 412; an If-Range that is not the current tag
    // turns a range request into one for the whole object.
    let is_current = |v: &str| v.split(',').any(|t| t.trim() == "*" || t.trim() == etag);
    if let Some(want) = ctx.header("if-match") {
        if !is_current(want) {
            return Reply::error(412, format!("If-Match {want}: the object is now {etag}"))
                .header("etag", etag);
        }
    }
    let range = match ctx.header("if-range") {
        Some(v) if v.trim() != etag => None,
        _ => parse_range(&ctx.headers),
    };
    let reply = match range {
        None => whole(data),
        Some(spec) => match resolve_range(spec, total) {
            None => Reply::error(416, "requested range not satisfiable")
                .header("content-range", format!("bytes */{total}")),
            Some(_) if ctx.fault == Some(FaultAction::IgnoreRange) => whole(data),
            Some((a, b)) => {
                let claimed = if ctx.fault == Some(FaultAction::WrongContentRange) {
                    if b + 1 < total {
                        format!("bytes {}-{}/{total}", a + 1, b + 1)
                    } else if a > 0 {
                        format!("bytes {}-{}/{total}", a - 1, b - 1)
                    } else {
                        format!("bytes {a}-{b}/{}", total + 1)
                    }
                } else {
                    format!("bytes {a}-{b}/{total}")
                };
                Reply::new(
                    206,
                    Payload::Data {
                        data,
                        start: a,
                        len: b - a + 1,
                    },
                )
                .header("content-range", claimed)
            }
        },
    };
    reply
        .header("accept-ranges", "bytes")
        .header("etag", etag)
        .header("content-type", "application/octet-stream")
}

/// Checks an image's `sha256.<hex>` hash against the SHA-256 of its bytes
/// (other hash kinds are not checked).
pub(super) fn hash_matches(image_hash: &str, sha256: &str) -> bool {
    match image_hash.strip_prefix("sha256.") {
        Some(h) => h.eq_ignore_ascii_case(sha256),
        None => true,
    }
}

pub(super) fn oci_redirect(ctx: &Ctx) -> Reply {
    let Some((url, token)) = &ctx.shared.config.oci else {
        return Reply::error(404, "this library has no OCI registry");
    };
    let namespace = ctx.param("namespace").unwrap_or_default();
    let name = match Path::parse(&namespace) {
        Some(p) => format!("{}/{}/{}", p.entity, p.collection, p.container),
        None => namespace,
    };
    Reply::raw_json(
        200,
        &serde_json::json!({ "token": token, "url": url.as_str(), "name": name }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(RANGE, v.parse().unwrap());
            parse_range(&m)
        };
        assert_eq!(h("bytes=0-9"), Some(RangeSpec::From(0, Some(9))));
        assert_eq!(h("bytes=5-"), Some(RangeSpec::From(5, None)));
        assert_eq!(h("bytes=-3"), Some(RangeSpec::Suffix(3)));
        assert_eq!(h("bytes=0-1,4-5"), None);
        assert_eq!(
            resolve_range(RangeSpec::From(8, Some(20)), 10),
            Some((8, 9))
        );
        assert_eq!(resolve_range(RangeSpec::From(10, None), 10), None);
        assert_eq!(resolve_range(RangeSpec::Suffix(3), 10), Some((7, 9)));
    }
}
