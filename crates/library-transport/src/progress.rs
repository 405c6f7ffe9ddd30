//! Progress reporting.

/// A sink for transfer progress. All methods have no-op defaults.
///
/// A transfer calls [`total`](Progress::total) once (when the size is
/// known), then [`increment`](Progress::increment) as bytes land (from
/// every concurrent part; a retried part never reports its bytes twice),
/// then [`finish`](Progress::finish) on success or
/// [`abort`](Progress::abort) on failure.
pub trait Progress: Send + Sync {
    /// The total number of bytes of the transfer.
    fn total(&self, _bytes: u64) {}
    /// More bytes have been transferred.
    fn increment(&self, _bytes: u64) {}
    /// The transfer completed.
    fn finish(&self) {}
    /// The transfer failed or was given up.
    fn abort(&self) {}
    /// Something the user may want to know while no byte moves, such as
    /// waiting for another process that is fetching the same image.
    fn message(&self, _text: &str) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Calls [`Progress::abort`] when dropped unless [`finish`](Self::finish)
/// was called, so that a failed or cancelled (dropped) transfer always
/// ends with one of the two.
pub(crate) struct ProgressGuard {
    sink: std::sync::Arc<dyn Progress>,
    done: bool,
}

impl ProgressGuard {
    pub(crate) fn new(sink: std::sync::Arc<dyn Progress>) -> Self {
        ProgressGuard { sink, done: false }
    }

    pub(crate) fn finish(mut self) {
        self.done = true;
        self.sink.finish();
    }
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        if !self.done {
            self.sink.abort();
        }
    }
}
