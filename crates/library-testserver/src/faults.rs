//! Fault injection: which request gets which misbehaviour.

use std::sync::Mutex;
use std::time::Duration;

/// The endpoints a [`Fault`] can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET version`.
    Version,
    /// `GET v1/entities/…`, `POST v1/entities`.
    Entities,
    /// `GET v1/collections/…`, `POST v1/collections`.
    Collections,
    /// `GET v1/containers/…`, `POST v1/containers`.
    Containers,
    /// `GET`/`DELETE v1/images/…`, `POST v1/images`.
    Images,
    /// `GET v1/search`.
    Search,
    /// `GET`/`POST v1/tags/…` and `v2/tags/…`.
    Tags,
    /// `GET v1/imagefile/<ref>` (the pull request to the library).
    ImageFile,
    /// `GET`/`HEAD blobs/<imageID>` (the redirected, ranged download).
    Blob,
    /// `POST v1/imagefile/<imageID>` (v1 upload).
    UploadV1,
    /// `POST v2/imagefile/<imageID>` (start of a v2 single upload).
    UploadStart,
    /// The `PUT` to the presigned-style URL of a single upload.
    UploadPut,
    /// `PUT v2/imagefile/<imageID>/_complete`.
    UploadComplete,
    /// `POST v2/imagefile/<imageID>/_multipart`.
    MultipartStart,
    /// `PUT v2/imagefile/<imageID>/_multipart` (asks for a part's URL).
    MultipartPartUrl,
    /// The `PUT` of a part to its presigned-style URL.
    MultipartPartPut,
    /// `PUT v2/imagefile/<imageID>/_multipart_complete`.
    MultipartComplete,
    /// `PUT v2/imagefile/<imageID>/_multipart_abort`.
    MultipartAbort,
    /// `GET v1/oci-redirect`.
    OciRedirect,
    /// `GET assets/config/config.prod.json` (service discovery).
    Discovery,
    /// `GET v1/token-status` and `GET v1/rbac/users/current`.
    Token,
    /// Any request, including unknown paths.
    Any,
}

/// What a matching request gets instead of the normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer this status with an error envelope
    /// `{"data":null,"error":{"code":N,"message":"injected fault"}}`. An
    /// upload body is read first, so the client sees the status.
    Status(u16),
    /// Close the connection without answering (the request body is not
    /// read).
    DropConnection,
    /// Send the status and headers of the normal answer and this many body
    /// bytes, then cut the connection.
    DropAfter(u64),
    /// Send one byte less than `Content-Length` promises, then cut the
    /// connection.
    ShortBody,
    /// Send more bytes than asked: a `206` keeps the `Content-Range` of the
    /// asked range but the body (and `Content-Length`) has extra bytes.
    LongBody,
    /// Answer a range request with `206` and the asked bytes, but a
    /// `Content-Range` naming another range.
    WrongContentRange,
    /// Answer a range request with `200` and the whole file.
    IgnoreRange,
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Flip one byte of the body (the middle one).
    CorruptBody,
}

/// A queued misbehaviour: which requests ([`Endpoint`], optionally a
/// multipart part number or a `Range` start), what happens
/// ([`FaultAction`]) and how many times.
///
/// ```
/// use library_testserver::{Endpoint, Fault, FaultAction};
///
/// // The second part's PUT fails with 500, twice.
/// let f = Fault::new(Endpoint::MultipartPartPut, FaultAction::Status(500)).part(2).times(2);
/// // Every ranged blob request starting at 5 MiB is cut after 100 bytes.
/// let g = Fault::new(Endpoint::Blob, FaultAction::DropAfter(100)).range_start(5 << 20).always();
/// # let _ = (f, g);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub(crate) endpoint: Endpoint,
    pub(crate) action: FaultAction,
    /// Uses left; `None` is unlimited.
    pub(crate) remaining: Option<usize>,
    pub(crate) part: Option<u64>,
    pub(crate) range_start: Option<u64>,
}

impl Fault {
    /// A fault for the next request to `endpoint`.
    pub fn new(endpoint: Endpoint, action: FaultAction) -> Fault {
        Fault {
            endpoint,
            action,
            remaining: Some(1),
            part: None,
            range_start: None,
        }
    }

    /// Applies to the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Applies to every matching request from now on.
    pub fn always(mut self) -> Fault {
        self.remaining = None;
        self
    }

    /// Only matches requests about multipart part `n` (counted from 1): the
    /// part URL request (`MultipartPartUrl`, by its `partNumber`) and the
    /// part's PUT (`MultipartPartPut`).
    pub fn part(mut self, n: u64) -> Fault {
        self.part = Some(n);
        self
    }

    /// Only matches requests with a `Range: bytes=<offset>-…` header
    /// starting at `offset`.
    pub fn range_start(mut self, offset: u64) -> Fault {
        self.range_start = Some(offset);
        self
    }

    fn matches(&self, endpoint: Option<Endpoint>, part: Option<u64>, range: Option<u64>) -> bool {
        if self.remaining == Some(0) {
            return false;
        }
        let endpoint_ok = self.endpoint == Endpoint::Any || Some(self.endpoint) == endpoint;
        let part_ok = self.part.is_none() || self.part == part;
        let range_ok = self.range_start.is_none() || self.range_start == range;
        endpoint_ok && part_ok && range_ok
    }
}

/// The queue of faults of a server.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    queue: Mutex<Vec<Fault>>,
}

impl Faults {
    pub(crate) fn push(&self, fault: Fault) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fault);
    }

    /// Takes one use of the first matching fault.
    pub(crate) fn take(
        &self,
        endpoint: Option<Endpoint>,
        part: Option<u64>,
        range: Option<u64>,
    ) -> Option<FaultAction> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let i = queue
            .iter()
            .position(|f| f.matches(endpoint, part, range))?;
        let action = queue[i].action;
        if let Some(n) = queue[i].remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                queue.remove(i);
            }
        }
        Some(action)
    }
}
