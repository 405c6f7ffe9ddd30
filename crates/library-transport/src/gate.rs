//! The streams of a part transfer: how many requests may be in flight
//! now, and what the parts tell the [`Controller`] (bytes moved, retries,
//! throttles).
//!
//! Every attempt of a part holds one permit while its request runs and
//! gives it back while it waits to retry, so a part that was refused
//! never goes again while the transfer already has as many requests in
//! flight as the controller allows. The loop that runs the parts holds
//! the permits of the streams the controller does not allow now.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Concurrency, Controller, Error};

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

    /// Counts `n` bytes moved.
    pub(crate) fn moved(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Records that the attempt of `ticket` failed with `e` and is about
    /// to be sent again: a retry, and a throttle when the server refused
    /// the load.
    pub(crate) fn retrying(&self, ticket: Ticket, e: &Error) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        if is_throttle(e) {
            let now = self.epoch.load(Ordering::SeqCst);
            if ticket.epoch == now {
                self.throttled_at.fetch_max(now + 1, Ordering::SeqCst);
            }
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
    /// Streams for a transfer with setting `c` and `parts` parts.
    pub(crate) fn new(c: Concurrency, parts: u64, warm_up: std::time::Duration) -> Streams {
        let max = c.max().min(parts.max(1).try_into().unwrap_or(usize::MAX));
        let gate = Arc::new(Gate {
            permits: Arc::new(Semaphore::new(max)),
            epoch: AtomicU64::new(0),
            throttled_at: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        });
        let ctl = Controller::new(c, Instant::now()).warm_up(warm_up);
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

    /// Whether the level can still change (an automatic setting).
    pub(crate) fn adapts(&self) -> bool {
        !self.ctl.is_fixed()
    }

    /// Feeds the controller what the parts did since the last call, and
    /// holds back or lets go permits to match its level.
    pub(crate) fn update(&mut self) {
        let now = Instant::now();
        let before = self.ctl.level();
        let throttle = self.gate.throttled_at.load(Ordering::SeqCst);
        if throttle > self.seen_throttle {
            self.seen_throttle = throttle;
            self.ctl.on_throttle(now);
            self.gate.epoch.fetch_add(1, Ordering::SeqCst);
        }
        let bytes = self.gate.bytes.load(Ordering::Relaxed);
        self.ctl
            .on_transferred(bytes.saturating_sub(self.seen_bytes), now);
        self.seen_bytes = bytes;
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
