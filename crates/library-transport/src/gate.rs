//! The streams of a part transfer: how many requests may be in flight
//! now, and what the parts tell the [`Controller`] (bytes moved, retries,
//! throttles).
//!
//! Every attempt of a part holds one permit while its request runs and
//! gives it back while it waits to retry, so a part that was refused
//! never goes again while the transfer already has as many requests in
//! flight as the controller allows. The loop that runs the parts holds
//! the permits of the streams the controller does not allow now.
//!
//! An attempt the server refused (429, 503, a refused or reset
//! connection) gives its permit to the loop instead: until the loop has
//! applied the throttle to the level, the part cannot go again, however
//! short its backoff, so it does not spend its retries against a server
//! that still has as much load as when it refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Concurrency, Controller, Error};

/// The weight of a part's time to first byte in the smoothed latency.
const LATENCY_SMOOTHING: f64 = 0.25;

/// What the parts share with the loop that runs them.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
    /// Bumped at every step back; a throttle counts only when its request
    /// was sent at the current epoch.
    epoch: AtomicU64,
    /// The epoch of the last throttle reported (0: none yet).
    throttled_at: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
    /// The permits of refused attempts, for the loop to take over.
    refused: Mutex<Vec<OwnedSemaphorePermit>>,
    /// The smoothed time from a request to its first byte, in seconds.
    latency: Mutex<Option<f64>>,
}

/// One attempt's right to send: its permit, and the epoch it was sent in.
#[derive(Debug)]
pub(crate) struct Ticket {
    _permit: OwnedSemaphorePermit,
    epoch: u64,
}

impl Gate {
    /// Waits for a stream to send the next attempt of a part on.
    pub(crate) async fn enter(&self) -> Ticket {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore of a transfer is never closed");
        Ticket {
            _permit: permit,
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    /// Records that an attempt got its first byte `after` its request
    /// was sent.
    pub(crate) fn first_byte(&self, after: std::time::Duration) {
        let x = after.as_secs_f64();
        let mut l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        *l = Some(match *l {
            None => x,
            Some(s) => s + LATENCY_SMOOTHING * (x - s),
        });
    }

    fn latency(&self) -> std::time::Duration {
        let l = *self.latency.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: one very slow answer must not stop the measuring.
        std::time::Duration::from_secs_f64(l.unwrap_or(0.0).min(1.0))
    }

    /// Counts `n` bytes moved.
    pub(crate) fn moved(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Records that the attempt of `ticket` failed with `e` and is about
    /// to be sent again: a retry, and a throttle when the server refused
    /// the load. The permit of a refused attempt goes to the loop, which
    /// lets it go at its next update if the level allows.
    pub(crate) fn retrying(&self, ticket: Ticket, e: &Error) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        if is_throttle(e) {
            let now = self.epoch.load(Ordering::SeqCst);
            if ticket.epoch == now {
                self.throttled_at.fetch_max(now + 1, Ordering::SeqCst);
            }
            self.refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ticket._permit);
        }
    }

    /// Attempts sent again so far.
    pub(crate) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// Whether `e` says that the server or the path to it refuses more load:
/// a 429, a 503, or a connection refused or reset.
pub(crate) fn is_throttle(e: &Error) -> bool {
    match e.inner() {
        Error::Status { status, .. } => status.as_u16() == 429 || status.as_u16() == 503,
        Error::Connect { .. } | Error::Request { .. } => true,
        _ => false,
    }
}

/// Which way a transfer's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Received from the server.
    Download,
    /// Sent to the server.
    Upload,
}

/// The loop's side: the controller, and the permits it holds back.
#[derive(Debug)]
pub(crate) struct Streams {
    gate: Arc<Gate>,
    ctl: Controller,
    max: usize,
    held: Vec<OwnedSemaphorePermit>,
    seen_bytes: u64,
    seen_throttle: u64,
}

impl Streams {
    /// Streams for a transfer in `direction` with setting `c` and `parts`
    /// parts.
    pub(crate) fn new(c: Concurrency, parts: u64, direction: Direction) -> Streams {
        let max = c.max().min(parts.max(1).try_into().unwrap_or(usize::MAX));
        let gate = Arc::new(Gate {
            permits: Arc::new(Semaphore::new(max)),
            epoch: AtomicU64::new(0),
            throttled_at: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            refused: Mutex::new(Vec::new()),
            latency: Mutex::new(None),
        });
        let ctl = match direction {
            Direction::Download => Controller::new(c, Instant::now()),
            // The first bytes of an upload fill its socket buffers at once.
            Direction::Upload => Controller::new(c, Instant::now())
                .starting_at(Controller::UPLOAD_START)
                .warm_up(Controller::RAMP_WINDOW / 2)
                .gain(Controller::UPLOAD_GAIN),
        };
        let mut s = Streams {
            gate,
            ctl,
            max,
            held: Vec::new(),
            seen_bytes: 0,
            seen_throttle: 0,
        };
        s.hold_back();
        s
    }

    /// What the parts share.
    pub(crate) fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    /// The streams allowed now.
    pub(crate) fn level(&self) -> usize {
        self.ctl.level().min(self.max)
    }

    /// Feeds the controller what the parts did since the last call, and
    /// holds back or lets go permits to match its level; `running` is the
    /// parts started and not finished. Must be called now and then even
    /// when no part ends: the permits of refused attempts wait for it.
    pub(crate) fn update(&mut self, running: usize) {
        let now = Instant::now();
        let before = self.ctl.level();
        let throttle = self.gate.throttled_at.load(Ordering::SeqCst);
        if throttle > self.seen_throttle {
            self.seen_throttle = throttle;
            self.ctl.on_throttle(now);
            self.gate.epoch.fetch_add(1, Ordering::SeqCst);
        }
        let bytes = self.gate.bytes.load(Ordering::Relaxed);
        self.ctl.set_latency(self.gate.latency());
        if running > self.level() {
            // Parts sent before a step back still finishing: the rate is
            // not the level's.
            self.ctl.skip(now);
        } else {
            self.ctl
                .on_transferred(bytes.saturating_sub(self.seen_bytes), now);
        }
        self.seen_bytes = bytes;
        // Taken before the level is matched: those the level allows go
        // back to the parts.
        self.held.extend(
            self.gate
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
        if self.ctl.level() != before {
            tracing::debug!(
                from = before,
                to = self.ctl.level(),
                settled = self.ctl.is_settled(),
                bytes,
                "streams"
            );
        }
        self.hold_back();
    }

    fn hold_back(&mut self) {
        let want = self.max - self.level();
        while self.held.len() > want {
            self.held.pop();
        }
        while self.held.len() < want {
            match self.gate.permits.clone().try_acquire_owned() {
                Ok(p) => self.held.push(p),
                // Taken by parts in flight: held back once they are done.
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn refused() -> Error {
        Error::Status {
            url: "http://x/blob".into(),
            status: http::StatusCode::SERVICE_UNAVAILABLE,
            code: None,
            message: None,
            retry_after: None,
        }
    }

    /// Whether a part could start an attempt within a short while.
    async fn can_enter(gate: &Gate) -> Option<Ticket> {
        tokio::time::timeout(Duration::from_millis(30), gate.enter())
            .await
            .ok()
    }

    #[tokio::test]
    async fn a_refused_part_waits_until_the_throttle_is_applied_and_a_stream_is_free() {
        let mut streams = Streams::new(Concurrency::Auto { max: 16 }, 32, Direction::Download);
        let gate = streams.gate();
        assert_eq!(streams.level(), Controller::START);
        let mut running = Vec::new();
        for _ in 0..Controller::START {
            running.push(gate.enter().await);
        }
        // The last one is refused: it may not go again at once, whatever
        // its backoff.
        let last = running.pop().unwrap();
        gate.retrying(last, &refused());
        assert_eq!(gate.retries(), 1);
        assert!(
            can_enter(&gate).await.is_none(),
            "sent again before the throttle was applied"
        );
        // The loop halves the level: 3 in flight is still above it.
        streams.update(Controller::START);
        assert_eq!(streams.level(), Controller::START / 2);
        assert!(
            can_enter(&gate).await.is_none(),
            "sent again above the level"
        );
        // One part ends: the refused one takes its stream.
        running.pop();
        assert!(can_enter(&gate).await.is_some());
    }

    #[tokio::test]
    async fn the_bytes_of_parts_above_the_level_do_not_set_the_rate_to_keep() {
        let mut streams = Streams::new(Concurrency::Auto { max: 16 }, 64, Direction::Download);
        let gate = streams.gate();
        let mut running = Vec::new();
        for _ in 0..Controller::START {
            running.push(gate.enter().await);
        }
        gate.retrying(running.pop().unwrap(), &refused());
        streams.update(Controller::START);
        assert_eq!(streams.level(), 2);
        let per_sample = |rate: f64| (rate * Controller::SAMPLE.as_secs_f64()) as u64;
        // The 4 parts sent before the step back finish: 40 MB/s for 0.2 s.
        for _ in 0..16 {
            tokio::time::sleep(Controller::SAMPLE).await;
            gate.moved(per_sample(40e6));
            streams.update(Controller::START);
        }
        // Then the 2 streams of the level: 16 MB/s, which is their rate,
        // not a fall from 40.
        for _ in 0..80 {
            tokio::time::sleep(Controller::SAMPLE).await;
            gate.moved(per_sample(16e6));
            streams.update(2);
        }
        assert_eq!(streams.level(), 2);
    }

    #[tokio::test]
    async fn with_a_fixed_setting_a_refused_part_goes_again_at_the_next_update() {
        let mut streams = Streams::new(Concurrency::Fixed(2), 10, Direction::Download);
        let gate = streams.gate();
        let first = gate.enter().await;
        let _second = gate.enter().await;
        gate.retrying(first, &refused());
        assert!(can_enter(&gate).await.is_none());
        streams.update(2);
        assert_eq!(streams.level(), 2);
        assert!(
            can_enter(&gate).await.is_some(),
            "a fixed setting keeps its streams"
        );
    }

    #[tokio::test]
    async fn a_part_that_failed_otherwise_frees_its_stream_while_it_waits() {
        let streams = Streams::new(Concurrency::Fixed(1), 10, Direction::Download);
        let gate = streams.gate();
        let t = gate.enter().await;
        let cut = Error::InvalidResponse {
            url: "http://x/blob".into(),
            reason: "short body".into(),
        };
        gate.retrying(t, &cut);
        assert!(can_enter(&gate).await.is_some());
    }
}
