//! How many requests each listener is handling at once, and the most it
//! has handled at once.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

use crate::body::RespBody;
use crate::store::BoxError;
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
    Counted {
        body,
        entered: Some(entered),
    }
    .boxed()
}

struct Counted {
    body: RespBody,
    entered: Option<Entered>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.entered = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
