//! Retry policy: bounded attempts with exponential backoff and decorrelated jitter.

use std::future::Future;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, Method, StatusCode};

use crate::error::{Error, Result};

/// How failed requests are retried.
///
/// A request is tried once and then up to `max_retries` more times when
/// [`Attempts`] (the one retry policy) says it may be sent again. Between
/// attempts the delay is drawn with decorrelated jitter: uniformly in
/// `init_backoff ..= previous * base`, capped at `max_backoff`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries after the first attempt (default 5).
    pub max_retries: u32,
    /// The smallest delay (default 100 ms).
    pub init_backoff: Duration,
    /// The largest delay (default 15 s).
    pub max_backoff: Duration,
    /// Growth factor of the delay (default 2.0).
    pub base: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 5,
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn none() -> Self {
        RetryConfig {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// Sets the number of retries.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the initial and maximum delays.
    pub fn with_backoff(mut self, init: Duration, max: Duration) -> Self {
        self.init_backoff = init;
        self.max_backoff = max.max(init);
        self
    }

    /// A backoff sequence for one request.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            init: self.init_backoff.as_secs_f64(),
            max: self.max_backoff.as_secs_f64(),
            base: self.base.max(1.0),
            next: self.init_backoff.as_secs_f64(),
            rng: fastrand::Rng::new(),
        }
    }
}

/// Successive delays of one retried request (decorrelated jitter).
#[derive(Debug)]
pub struct Backoff {
    init: f64,
    max: f64,
    base: f64,
    next: f64,
    rng: fastrand::Rng,
}

impl Backoff {
    /// Uses a seeded random source (for tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let cur = self.next;
        let hi = (cur * self.base).min(self.max).max(self.init);
        let lo = self.init.min(hi);
        self.next = lo + (hi - lo) * self.rng.f64();
        Duration::from_secs_f64(cur.min(self.max))
    }
}

/// The attempts of one request (or one part) under a [`RetryConfig`]:
/// the one place that decides whether a request is sent again, and when.
///
/// Every path that sends something again goes through it: single requests
/// ([`HttpClient::send_with_retry`](crate::HttpClient::send_with_retry) and
/// the JSON helpers), the parts of a ranged download, whole-file and part
/// uploads, and the callers above the transport (a streamed pull that
/// starts over, an OCI chunk upload that asks where it stands). The rules:
///
/// - What may be repeated depends on the method: GET, HEAD, PUT, DELETE
///   and OPTIONS are sent again after a transient failure (connection
///   refused or cut, a timeout, an invalid part response) and after 408,
///   429, 500, 502, 503 or 504. POST and PATCH only when the server surely
///   did not act: the connection could not be made, or it answered 429 or
///   503. [`Attempts::repeatable`] is for a request the caller has made
///   safe to repeat whatever its method.
/// - At most `max_retries` times after the first attempt.
/// - The delay grows with decorrelated jitter ([`Backoff`]); a
///   `Retry-After` (seconds) that asks for longer is honoured, up to the
///   largest backoff.
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, Method, StatusCode};
/// use library_transport::{Attempts, RetryConfig};
///
/// let cfg = RetryConfig::default().with_max_retries(1);
/// let mut get = Attempts::new(&cfg, &Method::GET);
/// assert!(get.after_answer(StatusCode::BAD_GATEWAY, &HeaderMap::new()).is_some());
/// // The one retry is used up.
/// assert!(get.after_answer(StatusCode::BAD_GATEWAY, &HeaderMap::new()).is_none());
///
/// let mut post = Attempts::new(&cfg, &Method::POST);
/// assert!(post.after_answer(StatusCode::BAD_GATEWAY, &HeaderMap::new()).is_none());
/// ```
#[derive(Debug)]
pub struct Attempts {
    max_retries: u32,
    max_backoff: Duration,
    idempotent: bool,
    backoff: Backoff,
    retries: u32,
}

impl Attempts {
    /// The attempts of a request with `method`.
    pub fn new(cfg: &RetryConfig, method: &Method) -> Attempts {
        Attempts {
            max_retries: cfg.max_retries,
            max_backoff: cfg.max_backoff,
            idempotent: is_idempotent(method),
            backoff: cfg.backoff(),
            retries: 0,
        }
    }

    /// The attempts of a request that may be sent again whatever its
    /// method, because the caller makes that safe (an OCI chunk `PATCH`
    /// continues from where the registry says the upload stands).
    pub fn repeatable(cfg: &RetryConfig) -> Attempts {
        Attempts::new(cfg, &Method::PUT)
    }

    /// Retries made so far (0 during the first attempt).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// After an attempt failed with `e`: how long to wait before sending
    /// again, or `None` when it must not be sent again (the failure is
    /// final for this method, or the retries are used up). A status error
    /// ([`Error::Status`]) is judged by its status and `Retry-After`.
    pub fn after_error(&mut self, e: &Error) -> Option<Duration> {
        let again = match e.inner() {
            Error::Status {
                status,
                retry_after,
                ..
            } => self.status_may_repeat(*status).then_some(*retry_after),
            inner => self.error_may_repeat(inner).then_some(None),
        }?;
        self.next(again)
    }

    /// After an answer with `status`: how long to wait before sending
    /// again, or `None` when the answer is final (any success, most 4xx)
    /// or the retries are used up.
    pub fn after_answer(&mut self, status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
        if !self.status_may_repeat(status) {
            return None;
        }
        self.next(retry_after(headers))
    }

    /// Sends again for a reason the caller knows to be passing (a
    /// registry's 416 on an upload chunk, mended by asking where the
    /// upload stands): the delay, or `None` when the retries are used up.
    pub fn again(&mut self) -> Option<Duration> {
        self.next(None)
    }

    fn next(&mut self, asked: Option<Duration>) -> Option<Duration> {
        if self.retries >= self.max_retries {
            return None;
        }
        self.retries += 1;
        let delay = self.backoff.next_delay();
        Some(delay.max(asked.unwrap_or_default().min(self.max_backoff)))
    }

    fn status_may_repeat(&self, status: StatusCode) -> bool {
        if self.idempotent {
            matches!(
                status,
                StatusCode::REQUEST_TIMEOUT
                    | StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::INTERNAL_SERVER_ERROR
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            )
        } else {
            matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
        }
    }

    fn error_may_repeat(&self, e: &Error) -> bool {
        if self.idempotent {
            matches!(
                e,
                Error::Connect { .. }
                    | Error::Timeout { .. }
                    | Error::Request { .. }
                    | Error::InvalidResponse { .. }
            )
        } else {
            matches!(
                e,
                Error::Connect { .. }
                    | Error::Timeout {
                        what: "connecting",
                        ..
                    }
            )
        }
    }
}

/// Runs `op` (one attempt of a request with `method`) until it succeeds,
/// fails in a way [`Attempts`] calls final for that method, or the
/// retries are used up; waits between attempts as [`Attempts`] says. `op`
/// gets the number of retries made so far (0 for the first attempt).
pub(crate) async fn retry<T, F, Fut>(
    cfg: &RetryConfig,
    method: &Method,
    what: &str,
    mut op: F,
) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempts = Attempts::new(cfg, method);
    loop {
        let retries = attempts.retries();
        match op(retries).await {
            Ok(v) => return Ok(v),
            Err(e) => match attempts.after_error(&e) {
                Some(d) => {
                    tracing::debug!(what, %method, retries, delay_ms = d.as_millis() as u64, error = %e, "retrying");
                    tokio::time::sleep(d).await;
                }
                None => return Err(e),
            },
        }
    }
}

/// Whether a request with `method` may be sent again after it failed
/// with `e` (the rule of [`Attempts`], without counting attempts).
pub(crate) fn may_retry_error(method: &Method, e: &Error) -> bool {
    Attempts::new(&RetryConfig::default().with_max_retries(1), method)
        .after_error(e)
        .is_some()
}

/// Whether a request with `method` may be sent again after the server
/// answered `status` (the rule of [`Attempts`], without counting
/// attempts).
#[cfg(test)]
pub(crate) fn may_retry_status(method: &Method, status: StatusCode) -> bool {
    Attempts::new(&RetryConfig::default(), method).status_may_repeat(status)
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// The delay a `Retry-After: <seconds>` header asks for (the HTTP-date
/// form is not used by the servers this client talks to and is ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// An answer whose status decides whether its request is sent again.
pub(crate) trait Answer {
    fn status(&self) -> StatusCode;
    fn headers(&self) -> &HeaderMap;
}

/// Runs one HTTP exchange `op` (which builds and sends the request anew
/// each time) for a request with `method`, again while [`Attempts`] says
/// so. When the retries are used up, the last outcome is returned as it
/// is, answer or error, for the caller to judge.
pub(crate) async fn exchange<T, F, Fut>(
    cfg: &RetryConfig,
    method: &Method,
    url: &str,
    mut op: F,
) -> Result<T>
where
    T: Answer,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempts = Attempts::new(cfg, method);
    loop {
        let out = op().await;
        let retries = attempts.retries();
        let delay = match &out {
            Ok(a) => attempts.after_answer(a.status(), a.headers()),
            Err(e) => attempts.after_error(e),
        };
        let Some(delay) = delay else {
            return out;
        };
        match &out {
            Ok(a) => {
                tracing::debug!(%method, url, retries, status = %a.status(), delay_ms = delay.as_millis() as u64, "retrying request")
            }
            Err(e) => {
                tracing::debug!(%method, url, retries, error = %e, delay_ms = delay.as_millis() as u64, "retrying request")
            }
        }
        drop(out);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policy_by_method() {
        let connect = Error::Connect {
            url: "http://x/".into(),
            source: "refused".into(),
        };
        let reset = Error::Request {
            url: "http://x/".into(),
            source: "reset".into(),
        };
        for m in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            assert!(may_retry_error(&m, &connect), "{m}");
            assert!(may_retry_error(&m, &reset), "{m}");
            for s in [408, 429, 500, 502, 503, 504] {
                assert!(
                    may_retry_status(&m, StatusCode::from_u16(s).unwrap()),
                    "{m} {s}"
                );
            }
            for s in [200, 201, 301, 400, 401, 403, 404, 409, 501] {
                assert!(
                    !may_retry_status(&m, StatusCode::from_u16(s).unwrap()),
                    "{m} {s}"
                );
            }
        }
        for m in [Method::POST, Method::PATCH] {
            assert!(may_retry_error(&m, &connect), "{m}");
            assert!(
                !may_retry_error(&m, &reset),
                "{m}: the server may have acted"
            );
            assert!(may_retry_status(&m, StatusCode::SERVICE_UNAVAILABLE));
            assert!(may_retry_status(&m, StatusCode::TOO_MANY_REQUESTS));
            assert!(!may_retry_status(&m, StatusCode::INTERNAL_SERVER_ERROR));
            assert!(!may_retry_status(&m, StatusCode::BAD_GATEWAY));
        }
    }

    fn status(code: u16, retry_after: Option<Duration>) -> Error {
        Error::Status {
            url: "http://x/".into(),
            status: StatusCode::from_u16(code).unwrap(),
            code: None,
            message: None,
            retry_after,
        }
    }

    #[test]
    fn status_errors_follow_the_status_rules() {
        // A part or upload that failed with a status is judged like the
        // answer itself: 501 is final, and a POST is not sent again after
        // a 500 or 502.
        for m in [Method::GET, Method::PUT] {
            assert!(may_retry_error(&m, &status(500, None)), "{m}");
            assert!(may_retry_error(&m, &status(429, None)), "{m}");
            assert!(!may_retry_error(&m, &status(501, None)), "{m}");
            assert!(!may_retry_error(&m, &status(404, None)), "{m}");
        }
        assert!(!may_retry_error(&Method::POST, &status(500, None)));
        assert!(!may_retry_error(&Method::POST, &status(502, None)));
        assert!(may_retry_error(&Method::POST, &status(503, None)));
        let part = Error::Part {
            number: 3,
            source: Box::new(status(502, None)),
        };
        assert!(may_retry_error(&Method::GET, &part));
    }

    #[test]
    fn attempts_are_bounded_and_honour_retry_after() {
        let cfg = RetryConfig::default()
            .with_max_retries(2)
            .with_backoff(Duration::from_millis(1), Duration::from_secs(5));
        let mut a = Attempts::new(&cfg, &Method::GET);
        let d = a
            .after_error(&status(503, Some(Duration::from_secs(2))))
            .unwrap();
        assert_eq!(d, Duration::from_secs(2));
        // Longer than the largest backoff: capped.
        let d = a
            .after_error(&status(503, Some(Duration::from_secs(60))))
            .unwrap();
        assert_eq!(d, Duration::from_secs(5));
        assert_eq!(a.retries(), 2);
        assert_eq!(a.after_error(&status(503, None)), None);
        // A repeatable PATCH is sent again after a 500; a plain one is not.
        let mut r = Attempts::repeatable(&cfg);
        assert!(r.after_error(&status(500, None)).is_some());
        let mut p = Attempts::new(&cfg, &Method::PATCH);
        assert!(p.after_error(&status(500, None)).is_none());
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn delays_stay_in_bounds() {
        let cfg = RetryConfig::default();
        let mut b = cfg.backoff().with_seed(7);
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        for _ in 0..50 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_secs(15),
                "{d:?}"
            );
        }
    }
}
