//! Downloads: ranges, `v1/imagefile`, blobs and the OCI redirect.

#![allow(clippy::result_large_err)]

use super::*;

/// The one range a request asks for, if any.
pub(super) fn requested_range(headers: &HeaderMap) -> Option<ByteRange> {
    ByteRange::parse(headers.get(RANGE)?.to_str().ok()?)
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
        DownloadMode::RedirectSameListener => ctx.shared.library_url.clone(),
        DownloadMode::RedirectOtherListener => ctx.shared.blob_url(),
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
///
/// Beyond [`refuse_downloads_above`](crate::TestServerBuilder::refuse_downloads_above)
/// downloads in flight, answers `503` at once instead; an admitted download
/// counts as in flight until its body has been sent in full.
pub(super) fn serve_data(ctx: &Ctx, data: Data, hash: &str) -> Reply {
    let limit = ctx.shared.config.busy_above;
    let Some(entered) = ctx.shared.in_flight.enter_download(limit) else {
        return Reply::error(503, "too many downloads at once; try again later");
    };
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
        _ => requested_range(&ctx.headers),
    };
    let reply = match range {
        None => whole(data),
        Some(spec) => match spec.resolve(total) {
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
        .counted(ctx.shared.image_bytes_sent.clone())
        .kept_until_sent(entered)
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
