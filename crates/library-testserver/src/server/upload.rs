//! Uploads: v1, v2 single and multipart.

#![allow(clippy::result_large_err)]

use super::*;

pub(super) async fn upload_v1(ctx: &mut Ctx, id: &str) -> Handled {
    let hash = ctx
        .shared
        .db()
        .image(id)
        .map(|i| i.hash.clone())
        .ok_or_else(|| Reply::error(404, format!("image {id} not found")))?;
    let Some(expected) = ctx.content_length() else {
        return Err(Reply::error(411, "Content-Length is required"));
    };
    let r = ctx
        .receive(
            Want {
                md5: false,
                sha256: true,
            },
            expected,
        )
        .await?;
    if r.len != expected {
        return Err(Reply::error(400, "body length differs from Content-Length"));
    }
    let sha = r.sha256.unwrap_or_default();
    if !hash_matches(&hash, &sha) {
        return Err(Reply::error(
            400,
            format!("uploaded file has sha256 {sha}, image hash is {hash}"),
        ));
    }
    ctx.shared.db().mark_uploaded(id, r.data);
    Ok(Reply::empty(200))
}

pub(super) fn complete_answer(db: &Db, base: &Url, image_id: &str) -> Reply {
    let container_url = db
        .image(image_id)
        .and_then(|i| db.image_path(i))
        .map(|p| {
            format!(
                "{base}library/{}/{}/{}",
                p.entity, p.collection, p.container
            )
        })
        .unwrap_or_default();
    Reply::json(&UploadImageComplete {
        quota: db.quota(),
        container_url,
    })
}

/// A presigned-style URL on the blob listener.
pub(super) fn presigned(
    base: &Url,
    path: &str,
    sign_sha256: bool,
    extra: &[(&str, String)],
) -> String {
    let mut url = base.join(path).expect("relative path joins");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
        q.append_pair("X-Amz-Expires", "3600");
        q.append_pair(
            "X-Amz-SignedHeaders",
            if sign_sha256 {
                "host;x-amz-content-sha256"
            } else {
                "host"
            },
        );
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        q.append_pair("X-Amz-Signature", &random_hex(64));
    }
    url.to_string()
}

pub(super) fn v2_available(ctx: &Ctx) -> Result<(), Reply> {
    if ctx.shared.api.v2_upload {
        Ok(())
    } else {
        Err(Reply::error(404, "this server has no v2 upload API"))
    }
}

pub(super) fn image_hash(ctx: &Ctx, id: &str) -> Result<String, Reply> {
    ctx.shared
        .db()
        .image(id)
        .map(|i| i.hash.clone())
        .ok_or_else(|| Reply::error(404, format!("image {id} not found")))
}

pub(super) async fn upload_start(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    image_hash(ctx, id)?;
    let body: UploadImageRequest = ctx.json()?;
    if body.size < 0 {
        return Err(Reply::error(400, "filesize must not be negative"));
    }
    let upload_id = random_hex(32);
    let (url, s3_key) = match &ctx.shared.s3 {
        Some(s3) => {
            let key = format!("images/{id}/{upload_id}");
            (s3.presign_put(&key, &body.sha256_checksum), Some(key))
        }
        None => (
            presigned(
                &ctx.shared.blob_url(),
                &format!("uploads/{upload_id}"),
                ctx.shared.config.s3_compliant,
                &[],
            ),
            None,
        ),
    };
    ctx.shared.db().uploads.insert(
        upload_id,
        SingleUpload {
            image_id: id.to_string(),
            size: body.size as u64,
            md5: body.md5_checksum,
            sha256: body.sha256_checksum,
            sign_sha256: ctx.shared.config.s3_compliant,
            data: None,
            s3_key,
        },
    );
    Ok(Reply::json(&UploadImage { upload_url: url }))
}

/// Checks `x-amz-content-sha256` when it is signed: present, and equal to
/// `expected` when that is known.
pub(super) fn check_signed_sha(ctx: &Ctx, expected: Option<&str>) -> Result<Option<String>, Reply> {
    let Some(sent) = ctx.header("x-amz-content-sha256") else {
        return Err(Reply::s3_error(
            403,
            "SignatureDoesNotMatch",
            "x-amz-content-sha256 is signed but was not sent",
        ));
    };
    if let Some(e) = expected {
        if !e.eq_ignore_ascii_case(sent) {
            return Err(Reply::s3_error(
                400,
                "XAmzContentSHA256Mismatch",
                "x-amz-content-sha256 differs from the announced sha256sum",
            ));
        }
    }
    Ok(Some(sent.to_ascii_lowercase()))
}

pub(super) async fn upload_put(ctx: &mut Ctx, upload_id: &str) -> Handled {
    let upload = ctx
        .shared
        .db()
        .uploads
        .get(upload_id)
        .cloned()
        .ok_or_else(|| Reply::s3_error(404, "NoSuchUpload", "unknown upload"))?;
    if ctx.content_length() != Some(upload.size) {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            &format!(
                "Content-Length must be {} (got {:?})",
                upload.size,
                ctx.header("content-length")
            ),
        ));
    }
    let signed_sha = if upload.sign_sha256 {
        check_signed_sha(ctx, None)?
    } else {
        None
    };
    let r = ctx
        .receive(
            Want {
                md5: true,
                sha256: true,
            },
            upload.size,
        )
        .await?;
    let md5 = r.md5.clone().unwrap_or_default();
    let sha = r.sha256.clone().unwrap_or_default();
    if r.len != upload.size {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            "body length differs",
        ));
    }
    if let Some(sent) = signed_sha {
        if sent != sha {
            return Err(Reply::s3_error(
                400,
                "XAmzContentSHA256Mismatch",
                "the body's SHA-256 differs from x-amz-content-sha256",
            ));
        }
    }
    if !upload.md5.is_empty() && !upload.md5.eq_ignore_ascii_case(&md5) {
        return Err(Reply::s3_error(400, "BadDigest", "md5 differs from md5sum"));
    }
    if !upload.sha256.is_empty() && !upload.sha256.eq_ignore_ascii_case(&sha) {
        return Err(Reply::s3_error(
            400,
            "BadDigest",
            "sha256 differs from sha256sum",
        ));
    }
    let mut db = ctx.shared.db();
    let Some(u) = db.uploads.get_mut(upload_id) else {
        return Err(Reply::s3_error(404, "NoSuchUpload", "unknown upload"));
    };
    u.data = Some(r.data);
    u.sha256 = sha;
    Ok(Reply::empty(200).header("etag", format!("\"{md5}\"")))
}

pub(super) async fn upload_complete(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let hash = image_hash(ctx, id)?;
    let pending = {
        let db = ctx.shared.db();
        db.uploads
            .iter()
            .filter(|(_, u)| u.image_id == id && (u.data.is_some() || u.s3_key.is_some()))
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect::<Vec<_>>()
    };
    let (data, sha) = if let Some(s3) = &ctx.shared.s3 {
        let Some((_, u)) = pending.into_iter().next() else {
            return Err(Reply::error(400, "no upload was started for this image"));
        };
        let key = u.s3_key.clone().unwrap_or_default();
        let (data, sha) = s3
            .fetch(&key, &ctx.shared.store)
            .await
            .map_err(|e| Reply::error(400, format!("reading the object back from S3: {e}")))?;
        if data.len() != u.size {
            return Err(Reply::error(400, "the stored object has the wrong size"));
        }
        (data, sha)
    } else {
        let Some((_, u)) = pending.into_iter().find(|(_, u)| u.data.is_some()) else {
            return Err(Reply::error(400, "no file was uploaded for this image"));
        };
        (u.data.clone().unwrap_or(Data::Mem(Bytes::new())), u.sha256)
    };
    if !hash_matches(&hash, &sha) {
        return Err(Reply::error(
            400,
            format!("uploaded file has sha256 {sha}, image hash is {hash}"),
        ));
    }
    let mut db = ctx.shared.db();
    db.uploads.retain(|_, u| u.image_id != id);
    db.mark_uploaded(id, data);
    Ok(complete_answer(&db, &ctx.shared.library_url, id))
}

pub(super) async fn multipart_start(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let part_size = match ctx.shared.config.multipart {
        Multipart::Supported { part_size } => part_size.max(1),
        Multipart::NotSupported => {
            return Err(Reply::error(404, "multipart upload is not supported"))
        }
    };
    image_hash(ctx, id)?;
    let body: MultipartUploadStartRequest = ctx.json()?;
    if body.size < 0 {
        return Err(Reply::error(400, "filesize must not be negative"));
    }
    let size = body.size as u64;
    let total_parts = size.div_ceil(part_size).max(1);
    let upload_id = random_hex(32);
    let s3 = match &ctx.shared.s3 {
        Some(s3) => {
            let key = format!("images/{id}/{upload_id}");
            let s3_id = s3
                .create_multipart(&key)
                .await
                .map_err(|e| Reply::error(500, format!("S3 CreateMultipartUpload: {e}")))?;
            Some((key, s3_id))
        }
        None => None,
    };
    let s3_compliant = ctx.shared.config.s3_compliant;
    ctx.shared.db().multiparts.insert(
        upload_id.clone(),
        MultipartState {
            image_id: id.to_string(),
            size,
            part_size,
            total_parts,
            s3_compliant,
            announced: Default::default(),
            parts: BTreeMap::new(),
            s3,
        },
    );
    let options = BTreeMap::from([(OPTION_S3_COMPLIANT.to_string(), s3_compliant.to_string())]);
    Ok(Reply::json(&MultipartUpload {
        upload_id,
        total_parts: total_parts as i64,
        part_size: part_size as i64,
        options: Some(options),
    }))
}

pub(super) fn multipart_state(
    ctx: &Ctx,
    upload_id: &str,
    image_id: &str,
) -> Result<MultipartState, Reply> {
    let db = ctx.shared.db();
    let state = db
        .multiparts
        .get(upload_id)
        .ok_or_else(|| Reply::error(404, format!("upload {upload_id} not found")))?;
    if state.image_id != image_id {
        return Err(Reply::error(
            400,
            format!("upload {upload_id} is not for image {image_id}"),
        ));
    }
    Ok(state.clone())
}

pub(super) async fn multipart_part_url(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let body: UploadImagePartRequest = ctx.json()?;
    let state = multipart_state(ctx, &body.upload_id, id)?;
    let n = body.part_number;
    if n < 1 || n as u64 > state.total_parts {
        return Err(Reply::error(
            400,
            format!("partNumber {n} is not in 1..={}", state.total_parts),
        ));
    }
    let n = n as u64;
    let expected = state.part_len(n);
    if body.part_size != expected as i64 {
        return Err(Reply::error(
            400,
            format!(
                "partSize of part {n} must be {expected}, not {}",
                body.part_size
            ),
        ));
    }
    if state.s3_compliant && body.sha256_checksum.is_empty() {
        return Err(Reply::error(
            400,
            "sha256sum is required for every part of an S3-compliant upload",
        ));
    }
    let url = match (&ctx.shared.s3, &state.s3) {
        (Some(s3), Some((key, s3_id))) => s3.presign_part(key, s3_id, n, &body.sha256_checksum),
        _ => presigned(
            &ctx.shared.blob_url(),
            &format!("uploads/{}/parts/{n}", body.upload_id),
            state.s3_compliant,
            &[
                ("partNumber", n.to_string()),
                ("uploadId", body.upload_id.clone()),
            ],
        ),
    };
    if let Some(s) = ctx.shared.db().multiparts.get_mut(&body.upload_id) {
        s.announced
            .insert(n, body.sha256_checksum.to_ascii_lowercase());
    }
    Ok(Reply::json(&UploadImagePart { presigned_url: url }))
}

pub(super) async fn part_put(ctx: &mut Ctx, upload_id: &str, n: u64) -> Handled {
    let state = ctx
        .shared
        .db()
        .multiparts
        .get(upload_id)
        .cloned()
        .ok_or_else(|| Reply::s3_error(404, "NoSuchUpload", "unknown upload"))?;
    if n < 1 || n > state.total_parts {
        return Err(Reply::s3_error(
            400,
            "InvalidArgument",
            "part number out of range",
        ));
    }
    let expected = state.part_len(n);
    if ctx.content_length() != Some(expected) {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            &format!(
                "Content-Length of part {n} must be {expected} (got {:?})",
                ctx.header("content-length")
            ),
        ));
    }
    let signed_sha = if state.s3_compliant {
        let announced = state.announced.get(&n).map(String::as_str);
        check_signed_sha(ctx, announced)?
    } else {
        None
    };
    let r = ctx
        .receive(
            Want {
                md5: true,
                sha256: signed_sha.is_some(),
            },
            expected,
        )
        .await?;
    if r.len != expected {
        return Err(Reply::s3_error(
            400,
            "IncompleteBody",
            "body length differs",
        ));
    }
    if let (Some(sent), Some(sha)) = (signed_sha, r.sha256.as_deref()) {
        if sent != sha {
            return Err(Reply::s3_error(
                400,
                "XAmzContentSHA256Mismatch",
                "the body's SHA-256 differs from x-amz-content-sha256",
            ));
        }
    }
    let etag = format!("\"{}\"", r.md5.unwrap_or_default());
    let mut db = ctx.shared.db();
    let Some(state) = db.multiparts.get_mut(upload_id) else {
        return Err(Reply::s3_error(404, "NoSuchUpload", "upload was aborted"));
    };
    state.parts.insert(
        n,
        StoredPart {
            data: r.data,
            etag: etag.clone(),
        },
    );
    Ok(Reply::empty(200).header("etag", etag))
}

pub(super) async fn multipart_complete(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let hash = image_hash(ctx, id)?;
    let body: CompleteMultipartUploadRequest = ctx.json()?;
    let state = multipart_state(ctx, &body.upload_id, id)?;
    let listed = body.completed_parts.unwrap_or_default();
    if listed.len() as u64 != state.total_parts {
        return Err(Reply::error(
            400,
            format!(
                "InvalidPart: {} parts listed, the upload has {}",
                listed.len(),
                state.total_parts
            ),
        ));
    }
    for (i, p) in listed.iter().enumerate() {
        if p.part_number != i as i64 + 1 {
            return Err(Reply::error(
                400,
                "InvalidPartOrder: parts must be listed in ascending order",
            ));
        }
    }
    let (data, sha) = if let (Some(s3), Some((key, s3_id))) = (&ctx.shared.s3, &state.s3) {
        let etags: Vec<String> = listed.iter().map(|p| p.token.clone()).collect();
        s3.complete_multipart(key, s3_id, &etags)
            .await
            .map_err(|e| Reply::error(400, format!("S3 CompleteMultipartUpload: {e}")))?;
        s3.fetch(key, &ctx.shared.store)
            .await
            .map_err(|e| Reply::error(400, format!("reading the object back from S3: {e}")))?
    } else {
        let mut parts = Vec::new();
        for p in &listed {
            let n = p.part_number as u64;
            let Some(stored) = state.parts.get(&n) else {
                return Err(Reply::error(
                    400,
                    format!("InvalidPart: part {n} was not uploaded"),
                ));
            };
            if stored.etag != p.token {
                return Err(Reply::error(
                    400,
                    format!(
                        "InvalidPart: token {:?} of part {n} differs from its ETag {:?}",
                        p.token, stored.etag
                    ),
                ));
            }
            parts.push(stored.data.clone());
        }
        ctx.shared
            .store
            .assemble(parts)
            .await
            .map_err(|e| Reply::error(500, format!("assembling the parts: {e}")))?
    };
    if data.len() != state.size {
        return Err(Reply::error(
            400,
            format!(
                "assembled {} bytes, filesize was {}",
                data.len(),
                state.size
            ),
        ));
    }
    if !hash_matches(&hash, &sha) {
        return Err(Reply::error(
            400,
            format!("uploaded file has sha256 {sha}, image hash is {hash}"),
        ));
    }
    let mut db = ctx.shared.db();
    db.multiparts.remove(&body.upload_id);
    db.mark_uploaded(id, data);
    Ok(complete_answer(&db, &ctx.shared.library_url, id))
}

pub(super) async fn multipart_abort(ctx: &mut Ctx, id: &str) -> Handled {
    v2_available(ctx)?;
    let body: AbortMultipartUploadRequest = ctx.json()?;
    let state = multipart_state(ctx, &body.upload_id, id)?;
    if let (Some(s3), Some((key, s3_id))) = (&ctx.shared.s3, &state.s3) {
        if let Err(e) = s3.abort_multipart(key, s3_id).await {
            tracing::debug!(error = %e, "S3 AbortMultipartUpload failed");
        }
    }
    ctx.shared.db().multiparts.remove(&body.upload_id);
    Ok(Reply::raw_json(200, &serde_json::json!({ "data": null })))
}
