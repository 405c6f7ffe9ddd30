//! Routing: method and path to an endpoint.

#![allow(clippy::result_large_err)]

use super::*;

/// The endpoints, parsed from method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    Version,
    EntityCreate,
    EntityGet(String),
    CollectionCreate,
    CollectionGet(String),
    ContainerCreate,
    ContainerGet(String),
    ImageCreate,
    ImageGet(String),
    ImageDelete(String),
    Search,
    TagsGet { v2: bool, container: String },
    TagsSet { v2: bool, container: String },
    Pull(String),
    UploadV1(String),
    UploadStart(String),
    UploadComplete(String),
    MultipartStart(String),
    MultipartPartUrl(String),
    MultipartComplete(String),
    MultipartAbort(String),
    OciRedirect,
    Discovery,
    TokenStatus,
    UserCurrent,
    Blob(String),
    UploadPut(String),
    PartPut(String, u64),
    NotFound,
}

impl Route {
    pub(super) fn parse(listener: Listener, method: &Method, path: &str) -> Route {
        let get = method == Method::GET;
        let post = method == Method::POST;
        let put = method == Method::PUT;
        if let Some(id) = path.strip_prefix("blobs/") {
            if get || method == Method::HEAD {
                return Route::Blob(id.to_string());
            }
            return Route::NotFound;
        }
        if let Some(rest) = path.strip_prefix("uploads/") {
            if !put {
                return Route::NotFound;
            }
            return match rest.split_once("/parts/") {
                Some((id, n)) => match n.parse::<u64>() {
                    Ok(n) => Route::PartPut(id.to_string(), n),
                    Err(_) => Route::NotFound,
                },
                None => Route::UploadPut(rest.to_string()),
            };
        }
        if listener == Listener::Blob {
            return Route::NotFound;
        }
        let s = |x: &str| x.to_string();
        match (method.clone(), path) {
            (Method::GET, "version") => return Route::Version,
            (Method::POST, "v1/entities") => return Route::EntityCreate,
            (Method::POST, "v1/collections") => return Route::CollectionCreate,
            (Method::POST, "v1/containers") => return Route::ContainerCreate,
            (Method::POST, "v1/images") => return Route::ImageCreate,
            (Method::GET, "v1/search") => return Route::Search,
            (Method::GET, "v1/oci-redirect") => return Route::OciRedirect,
            (Method::GET, "assets/config/config.prod.json") => return Route::Discovery,
            (Method::GET, "v1/token-status") => return Route::TokenStatus,
            (Method::GET, "v1/rbac/users/current") => return Route::UserCurrent,
            _ => {}
        }
        if let Some(r) = path.strip_prefix("v1/entities/") {
            if get {
                return Route::EntityGet(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/collections/") {
            if get {
                return Route::CollectionGet(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/containers/") {
            if get {
                return Route::ContainerGet(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/images/") {
            if get {
                return Route::ImageGet(s(r));
            }
            if method == Method::DELETE {
                return Route::ImageDelete(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v1/tags/") {
            let container = s(r);
            if get {
                return Route::TagsGet {
                    v2: false,
                    container,
                };
            }
            if post {
                return Route::TagsSet {
                    v2: false,
                    container,
                };
            }
        } else if let Some(r) = path.strip_prefix("v2/tags/") {
            let container = s(r);
            if get {
                return Route::TagsGet {
                    v2: true,
                    container,
                };
            }
            if post {
                return Route::TagsSet {
                    v2: true,
                    container,
                };
            }
        } else if let Some(r) = path.strip_prefix("v1/imagefile/") {
            if get {
                return Route::Pull(s(r));
            }
            if post {
                return Route::UploadV1(s(r));
            }
        } else if let Some(r) = path.strip_prefix("v2/imagefile/") {
            return match (r.split_once('/'), post, put) {
                (None, true, _) => Route::UploadStart(s(r)),
                (Some((id, "_complete")), _, true) => Route::UploadComplete(s(id)),
                (Some((id, "_multipart")), true, _) => Route::MultipartStart(s(id)),
                (Some((id, "_multipart")), _, true) => Route::MultipartPartUrl(s(id)),
                (Some((id, "_multipart_complete")), _, true) => Route::MultipartComplete(s(id)),
                (Some((id, "_multipart_abort")), _, true) => Route::MultipartAbort(s(id)),
                _ => Route::NotFound,
            };
        }
        Route::NotFound
    }

    pub(super) fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Route::Version => Endpoint::Version,
            Route::EntityCreate | Route::EntityGet(_) => Endpoint::Entities,
            Route::CollectionCreate | Route::CollectionGet(_) => Endpoint::Collections,
            Route::ContainerCreate | Route::ContainerGet(_) => Endpoint::Containers,
            Route::ImageCreate | Route::ImageGet(_) | Route::ImageDelete(_) => Endpoint::Images,
            Route::Search => Endpoint::Search,
            Route::TagsGet { .. } | Route::TagsSet { .. } => Endpoint::Tags,
            Route::Pull(_) => Endpoint::ImageFile,
            Route::UploadV1(_) => Endpoint::UploadV1,
            Route::UploadStart(_) => Endpoint::UploadStart,
            Route::UploadComplete(_) => Endpoint::UploadComplete,
            Route::MultipartStart(_) => Endpoint::MultipartStart,
            Route::MultipartPartUrl(_) => Endpoint::MultipartPartUrl,
            Route::MultipartComplete(_) => Endpoint::MultipartComplete,
            Route::MultipartAbort(_) => Endpoint::MultipartAbort,
            Route::OciRedirect => Endpoint::OciRedirect,
            Route::Discovery => Endpoint::Discovery,
            Route::TokenStatus | Route::UserCurrent => Endpoint::Token,
            Route::Blob(_) => Endpoint::Blob,
            Route::UploadPut(_) => Endpoint::UploadPut,
            Route::PartPut(..) => Endpoint::MultipartPartPut,
            Route::NotFound => return None,
        })
    }

    /// Endpoints whose request body is file data, streamed to storage.
    pub(super) fn streams_body(&self) -> bool {
        matches!(
            self,
            Route::UploadV1(_) | Route::UploadPut(_) | Route::PartPut(..)
        )
    }

    /// Endpoints that work like presigned URLs: no library token.
    pub(super) fn needs_token(&self) -> bool {
        !matches!(
            self,
            Route::Blob(_)
                | Route::UploadPut(_)
                | Route::PartPut(..)
                | Route::NotFound
                | Route::Discovery
        )
    }
}

/// Decodes `%XX` escapes of a path.
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |m: Method, p: &str| Route::parse(Listener::Library, &m, p);
        assert_eq!(r(Method::GET, "version"), Route::Version);
        assert_eq!(
            r(Method::PUT, "v2/imagefile/abc/_multipart_complete"),
            Route::MultipartComplete("abc".into())
        );
        assert_eq!(
            r(Method::PUT, "uploads/u1/parts/3"),
            Route::PartPut("u1".into(), 3)
        );
        assert_eq!(
            Route::parse(Listener::Blob, &Method::GET, "version"),
            Route::NotFound
        );
        assert_eq!(percent_decode("a%3Ab%2"), "a:b%2");
    }
}
