//! How many requests each listener is handling at once, and the most it
//! has handled at once; and how many image downloads are being sent.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::body::RespBody;
use crate::Listener;

/// The counters of both listeners, and of image downloads (on whichever
/// listener serves them).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    library: Counter,
    blob: Counter,
    downloads: Counter,
    /// Downloads refused by [`InFlight::enter_download`].
    refused: AtomicU64,
}

/// What a guard counts.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Listener(Listener),
    Downloads,
}

#[derive(Debug, Default)]
struct Counter {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    fn counter(&self, which: Counted) -> &Counter {
        match which {
            Counted::Listener(Listener::Library) => &self.library,
            Counted::Listener(Listener::Blob) => &self.blob,
            Counted::Downloads => &self.downloads,
        }
    }

    /// The most requests `listener` has handled at once.
    pub(crate) fn peak(&self, listener: Listener) -> usize {
        self.counter(Counted::Listener(listener))
            .peak
            .load(Ordering::SeqCst)
    }

    /// How many downloads [`enter_download`](Self::enter_download) refused.
    pub(crate) fn refused_downloads(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Starts counting the peaks again from the requests in flight now.
    pub(crate) fn reset_peaks(&self) {
        for c in [&self.library, &self.blob] {
            c.peak.store(c.now.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }

    /// Counts one request in until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>, listener: Listener) -> Entered {
        self.enter_below(Counted::Listener(listener), usize::MAX)
            .expect("no limit")
    }

    /// Counts one image download in until the returned guard is dropped,
    /// unless `limit` downloads are in flight already: then counts it as
    /// refused and returns `None`.
    pub(crate) fn enter_download(self: &Arc<Self>, limit: Option<usize>) -> Option<Entered> {
        let entered = self.enter_below(Counted::Downloads, limit.unwrap_or(usize::MAX));
        if entered.is_none() {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        entered
    }

    fn enter_below(self: &Arc<Self>, which: Counted, limit: usize) -> Option<Entered> {
        let c = self.counter(which);
        let now = c
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?
            + 1;
        c.peak.fetch_max(now, Ordering::SeqCst);
        Some(Entered {
            counters: self.clone(),
            which,
        })
    }
}

/// One request in flight; dropping it counts the request out.
#[derive(Debug)]
pub(crate) struct Entered {
    counters: Arc<InFlight>,
    which: Counted,
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.counters
            .counter(self.which)
            .now
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body that keeps the request counted in until it has been sent in full
/// or dropped (its connection closed).
pub(crate) fn counted_until_sent(body: RespBody, entered: Entered) -> RespBody {
    crate::body::keep_until_sent(body, entered)
}
