//! One direction of one connection of a [`ThrottledLink`](super::ThrottledLink):
//! a reader that applies the stall switches and the rate caps, and a delay
//! line to the writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::LinkDirection;

/// How often a capped direction forwards a slice of data: 50 slices a
/// second keep a rate of a few KB/s smooth.
const SLICES_PER_SECOND: u64 = 50;

/// How far behind its schedule a capped direction may catch up: a timer
/// fires late by up to a millisecond or so, which at tens of MB/s would
/// lose half the rate if the time lost were not made up. One slice
/// period, so bursts stay small.
const CATCH_UP: Duration = Duration::from_millis(1000 / SLICES_PER_SECOND);

/// The most bytes forwarded at once by a direction without a cap.
pub(super) const UNCAPPED_SLICE: usize = 64 * 1024;

/// The most chunks on their way through the delay line of one direction
/// of one connection: 1024 slices of at most 64 KiB, enough for a delay of
/// a second at 50 slices a second, or 64 MiB in flight.
const DELAY_LINE_CHUNKS: usize = 1024;

/// The state of one direction shared by every connection of a link.
#[derive(Debug, Default)]
pub(super) struct DirectionState {
    /// Bytes read from senders so far (what `stall_after` counts).
    pub(super) taken: AtomicU64,
    /// Bytes written to receivers so far.
    pub(super) forwarded: AtomicU64,
    /// The token bucket of the total rate cap.
    pub(super) total: SharedBucket,
}

/// A token bucket shared by the connections of a direction: each slice
/// reserves the next `n / rate` seconds after the last reservation, and its
/// connection waits until the end of its slot before it reads again. The
/// connections so take turns, each getting about an equal share.
#[derive(Debug, Default)]
pub(super) struct SharedBucket {
    /// When the last reserved slot ends.
    next: Mutex<Option<Instant>>,
}

impl SharedBucket {
    /// Reserves a slot for `n` bytes at `rate` bytes per second and returns
    /// when it ends. An idle bucket saves up [`CATCH_UP`] at most.
    pub(super) fn reserve(&self, n: usize, rate: u64) -> Instant {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let start = next.map_or(now, |t| t.max(behind(now)));
        let end = start + slot(n, rate);
        *next = Some(end);
        end
    }
}

/// The earliest a schedule may be at `now`: [`CATCH_UP`] behind.
fn behind(now: Instant) -> Instant {
    now.checked_sub(CATCH_UP).unwrap_or(now)
}

fn slot(n: usize, rate: u64) -> Duration {
    Duration::from_nanos((n as u64).saturating_mul(1_000_000_000) / rate.max(1))
}

/// The slice a direction reads at once under these settings.
fn slice_len(d: &LinkDirection) -> usize {
    [d.rate, d.total_rate]
        .into_iter()
        .flatten()
        .map(|rate| ((rate / SLICES_PER_SECOND).max(1) as usize).min(UNCAPPED_SLICE))
        .min()
        .unwrap_or(UNCAPPED_SLICE)
}

/// Copies `from` to `to` under the settings of the direction: the reader
/// half takes slices under the stall switches and the rate caps and stamps
/// each with the time it may leave (`arrival + delay`); the writer half
/// writes each slice at its time. The two run at once, so that a delay
/// adds latency and leaves the throughput as it is.
pub(super) async fn pump(
    from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    settings: &watch::Sender<LinkDirection>,
    state: &DirectionState,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Slice>(DELAY_LINE_CHUNKS);
    let window = settings
        .borrow()
        .window
        .map(|w| Arc::new(Semaphore::new(w.min(u32::MAX as u64) as usize)));
    let reader = read_side(from, tx, settings, state, window);
    let writer = async {
        while let Some((due, chunk, _room)) = rx.recv().await {
            // (A deadline already passed would still wait for a timer tick.)
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            to.write_all(&chunk).await?;
            state
                .forwarded
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        to.shutdown().await
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

/// A slice in the delay line: when it may leave, its bytes, and its room
/// in the window (given back once it is written).
type Slice = (Instant, Bytes, Option<OwnedSemaphorePermit>);

async fn read_side(
    mut from: OwnedReadHalf,
    tx: mpsc::Sender<Slice>,
    settings: &watch::Sender<LinkDirection>,
    state: &DirectionState,
    window: Option<Arc<Semaphore>>,
) -> std::io::Result<()> {
    let mut dir = settings.subscribe();
    let mut buf = vec![0u8; UNCAPPED_SLICE];
    // When the next byte of this connection may be read (per-connection
    // cap).
    let mut allowed_at = Instant::now();
    loop {
        // While stalled, do not even read: the sender's buffers fill.
        let now = dir
            .wait_for(|d| !d.stalled)
            .await
            .map(|d| (*d).clone())
            .unwrap_or_default();
        let mut slice = slice_len(&now);
        if let Some(limit) = now.stall_after {
            let left = limit.saturating_sub(state.taken.load(Ordering::Relaxed));
            if left == 0 {
                settings.send_if_modified(|d| {
                    let newly = !d.stalled && d.stall_after == Some(limit);
                    d.stalled |= newly;
                    newly
                });
                continue;
            }
            slice = slice.min(left.min(UNCAPPED_SLICE as u64) as usize);
        }
        if let Some(w) = now.window {
            slice = slice.min(w.min(UNCAPPED_SLICE as u64) as usize);
        }
        // Room in the window before reading: a full window stops reading.
        let room = match &window {
            Some(w) => Some(
                w.clone()
                    .acquire_many_owned(slice as u32)
                    .await
                    .expect("the window semaphore is never closed"),
            ),
            None => None,
        };
        let n = from.read(&mut buf[..slice]).await?;
        if n == 0 {
            // Dropping the sender lets the writer finish the delayed bytes
            // and then close its side.
            return Ok(());
        }
        let arrival = Instant::now();
        state.taken.fetch_add(n as u64, Ordering::Relaxed);
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        let room = room.map(|mut r| {
            // Give back what the read did not fill.
            drop(r.split(slice - n));
            r
        });
        if tx.send((arrival + now.delay, chunk, room)).await.is_err() {
            // The writer failed; try_join reports its error.
            return Ok(());
        }
        let mut wait_until = None;
        if let Some(rate) = now.rate {
            allowed_at = allowed_at.max(behind(arrival)) + slot(n, rate);
            wait_until = Some(allowed_at);
        }
        if let Some(total) = now.total_rate {
            let end = state.total.reserve(n, total);
            wait_until = Some(wait_until.map_or(end, |t: Instant| t.max(end)));
        }
        if let Some(t) = wait_until {
            tokio::time::sleep_until(t).await;
        }
    }
}
