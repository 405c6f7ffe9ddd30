//! Retry policy: bounded attempts with exponential backoff and decorrelated jitter.

use std::future::Future;
use std::time::Duration;

use crate::error::Result;

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

#[cfg(test)]
mod tests {
    use super::*;

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
