//! Retry policy: bounded attempts with exponential backoff and decorrelated jitter.

use std::future::Future;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, Method, StatusCode};

use crate::error::{Error, Result};

/// How failed requests are retried.
///
/// A request is tried once and then up to `max_retries` more times when the
/// failure is retryable (see [`Error::is_retryable`](crate::Error::is_retryable)). Between attempts the
/// delay is drawn with decorrelated jitter: uniformly in
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

/// Runs `op` until it succeeds, fails with a non-retryable error, or the
/// retries are used up; sleeps with backoff between attempts. `op` gets
/// the attempt number (0 for the first).
///
/// ```
/// # async fn demo() -> library_transport::Result<()> {
/// use library_transport::{retry, RetryConfig};
/// let v = retry(&RetryConfig::default(), "demo", |_attempt| async { Ok::<_, library_transport::Error>(1) }).await?;
/// assert_eq!(v, 1);
/// # Ok(()) }
/// ```
pub async fn retry<T, F, Fut>(cfg: &RetryConfig, what: &str, mut op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = cfg.backoff();
    let mut attempt = 0u32;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < cfg.max_retries && e.is_retryable() => {
                let d = backoff.next_delay();
                tracing::debug!(what, attempt, delay_ms = d.as_millis() as u64, error = %e, "retrying");
                tokio::time::sleep(d).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a request with `method` may be sent again after it failed
/// with `e`.
///
/// Idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried after
/// any retryable failure ([`Error::is_retryable`]). Others (POST, PATCH)
/// only when the request surely never reached the server: the connection
/// could not be made.
pub fn may_retry_error(method: &Method, e: &Error) -> bool {
    if is_idempotent(method) {
        return e.is_retryable();
    }
    matches!(
        e,
        Error::Connect { .. }
            | Error::Timeout {
                what: "connecting",
                ..
            }
    )
}

/// Whether a request with `method` may be sent again after the server
/// answered `status`.
///
/// Idempotent methods are retried after 408, 429, 500, 502, 503 and 504.
/// Others only after 429 and 503, with which the server says it did not
/// act on the request (see [`may_retry_error`]).
///
/// ```
/// use library_transport::may_retry_status;
/// use http::{Method, StatusCode};
/// assert!(may_retry_status(&Method::GET, StatusCode::BAD_GATEWAY));
/// assert!(!may_retry_status(&Method::POST, StatusCode::BAD_GATEWAY));
/// assert!(may_retry_status(&Method::POST, StatusCode::SERVICE_UNAVAILABLE));
/// assert!(!may_retry_status(&Method::GET, StatusCode::NOT_FOUND));
/// ```
pub fn may_retry_status(method: &Method, status: StatusCode) -> bool {
    if is_idempotent(method) {
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

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// The delay a `Retry-After: <seconds>` header asks for (the HTTP-date
/// form is not used by the servers this client talks to and is ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// An answer whose status decides whether its request is sent again.
pub(crate) trait Answer {
    fn status(&self) -> StatusCode;
    fn headers(&self) -> &HeaderMap;
}

/// Runs one HTTP exchange `op` (which builds and sends the request anew
/// each time) for a request with `method`, again with backoff while the
/// outcome may be retried ([`may_retry_error`], [`may_retry_status`]).
/// A `Retry-After` longer than the backoff is honoured, up to the
/// configured maximum delay. When the retries are used up, the last
/// outcome is returned as it is, answer or error, for the caller to judge.
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
    let mut backoff = cfg.backoff();
    let mut attempt = 0u32;
    loop {
        let out = op().await;
        if attempt >= cfg.max_retries {
            return out;
        }
        let (again, asked) = match &out {
            Ok(a) => (
                may_retry_status(method, a.status()),
                retry_after(a.headers()),
            ),
            Err(e) => (may_retry_error(method, e), None),
        };
        if !again {
            return out;
        }
        let delay = backoff
            .next_delay()
            .max(asked.unwrap_or_default().min(cfg.max_backoff));
        match &out {
            Ok(a) => {
                tracing::debug!(%method, url, attempt, status = %a.status(), delay_ms = delay.as_millis() as u64, "retrying request")
            }
            Err(e) => {
                tracing::debug!(%method, url, attempt, error = %e, delay_ms = delay.as_millis() as u64, "retrying request")
            }
        }
        drop(out);
        tokio::time::sleep(delay).await;
        attempt += 1;
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
