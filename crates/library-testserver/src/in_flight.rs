//! How many requests each listener is handling at once, and the most it
//! has handled at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::body::RespBody;
use crate::Listener;

/// The counters of both listeners.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    library: Counter,
    blob: Counter,
}

#[derive(Debug, Default)]
struct Counter {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    fn counter(&self, listener: Listener) -> &Counter {
        match listener {
            Listener::Library => &self.library,
            Listener::Blob => &self.blob,
        }
    }

    /// The most requests `listener` has handled at once.
    pub(crate) fn peak(&self, listener: Listener) -> usize {
        self.counter(listener).peak.load(Ordering::SeqCst)
    }

    /// Starts counting the peaks again from the requests in flight now.
    pub(crate) fn reset_peaks(&self) {
        for c in [&self.library, &self.blob] {
            c.peak.store(c.now.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }

    /// Counts one request in until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>, listener: Listener) -> Entered {
        let c = self.counter(listener);
        let now = c.now.fetch_add(1, Ordering::SeqCst) + 1;
        c.peak.fetch_max(now, Ordering::SeqCst);
        Entered {
            counters: self.clone(),
            listener,
        }
    }
}

/// One request in flight; dropping it counts the request out.
#[derive(Debug)]
pub(crate) struct Entered {
    counters: Arc<InFlight>,
    listener: Listener,
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.counters
            .counter(self.listener)
            .now
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body that keeps the request counted in until it has been sent in full
/// or dropped (its connection closed).
pub(crate) fn counted_until_sent(body: RespBody, entered: Entered) -> RespBody {
    crate::body::keep_until_sent(body, entered)
}
