//! How many parts a ranged download or a multipart upload keeps in flight.

use std::time::{Duration, Instant};

/// How many parts are transferred at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Let a [`Controller`] find the number of streams, never above `max`.
    Auto {
        /// The most streams ever opened (at least 1).
        max: usize,
    },
    /// Always this many streams (at least 1).
    Fixed(usize),
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency::Auto { max: 16 }
    }
}

impl Concurrency {
    /// The most streams this setting can open.
    pub fn max(&self) -> usize {
        match *self {
            Concurrency::Auto { max } | Concurrency::Fixed(max) => max.max(1),
        }
    }
}

/// The adaptive stream controller.
///
/// **What it measures:** the aggregate rate of the transfer, in bytes
/// moved per second by all its streams together (received from the
/// server, or accepted by the connection), over windows of at least
/// [`Controller::RAMP_WINDOW`] while it is still adding streams and of
/// [`Controller::WINDOW`] once settled. The transfer samples its byte
/// count every [`Controller::SAMPLE`]; a window starts with the first
/// byte moved, so time spent connecting is not counted as a slow rate.
/// A window measures one level: after streams are added it starts only
/// once the new ones can have delivered their first bytes (the
/// [`latency`](Controller::set_latency) the transfer reports, a round
/// trip and the server's answer time), and lasts at least twice that;
/// after a step back, the transfer [skips](Controller::skip) the time its
/// streams above the level take to finish their parts.
///
/// **When it adds:** it starts at [`Controller::START`] streams (an upload
/// at [`Controller::UPLOAD_START`]). After each
/// window it compares the rate with the rate of the window before, measured
/// at half the streams: while twice the streams bring more than
/// [`Controller::GAIN`] times the rate, it doubles them again (up to the
/// maximum). The first time they do not, it goes back to the previous level
/// (streams that bring nothing only add load) and settles there. Against a
/// link that caps each connection it so reaches the maximum in a few
/// windows; against a server whose whole bandwidth is capped it stays at
/// the start. An upload sees only what its connections accept, and every
/// new connection takes a socket buffer's worth at once: it keeps doubling
/// while twice the streams are not slower ([`Controller::UPLOAD_GAIN`]),
/// so it relies on the server's refusals, not on its rate, to stay low.
///
/// **When it backs off:** on a 429, a 503 or a refused or reset connection
/// ([`Controller::on_throttle`]) it halves the streams and settles; when
/// settled, a smoothed rate that stays below [`Controller::FALL`] of the
/// best seen at this level for [`Controller::FALL_WINDOWS`] windows halves
/// it too (a short pause, such as every stream between two parts at once,
/// is not a fall). It never goes above the maximum
/// nor below 1, and callers never run more streams than parts left. It does
/// not probe upward again once settled.
#[derive(Debug, Clone)]
pub struct Controller {
    level: usize,
    max: usize,
    fixed: bool,
    settled: bool,
    window_start: Instant,
    window_bytes: u64,
    prev: Option<(usize, f64)>,
    best_settled: f64,
    smoothed: Option<f64>,
    low_windows: u32,
    counting_from: Instant,
    latency: Duration,
    gain: f64,
}

impl Controller {
    /// The length of one measurement window once settled.
    pub const WINDOW: Duration = Duration::from_millis(100);
    /// The length of one measurement window while adding streams: short,
    /// because every window spent below the right level is lost time for
    /// the streams not yet opened.
    pub const RAMP_WINDOW: Duration = Duration::from_millis(50);
    /// How often a transfer reports its bytes moved.
    pub const SAMPLE: Duration = Duration::from_micros(12_500);
    /// The streams an automatic transfer starts with.
    pub const START: usize = 4;
    /// The streams an automatic upload starts with
    /// ([`Controller::starting_at`]): its rate cannot tell a capped server
    /// from a capped connection (see [`Controller::UPLOAD_GAIN`]), so it
    /// spends less time below the maximum, and relies on the server's
    /// refusals to step back.
    pub const UPLOAD_START: usize = 8;
    /// Twice the streams must bring more than this factor of the rate.
    pub const GAIN: f64 = 1.25;
    /// The factor an upload asks instead ([`Controller::gain`]): its rate
    /// is what its connections accept, and each new connection first takes
    /// a socket buffer's worth at once, so the windows of an upload that is
    /// adding streams differ by more than a real gain; it keeps doubling
    /// while twice the streams are not slower.
    pub const UPLOAD_GAIN: f64 = 1.0;
    /// Once settled, a smoothed rate below this fraction of the best seen
    /// at the level for [`FALL_WINDOWS`](Self::FALL_WINDOWS) windows in a
    /// row halves the streams.
    pub const FALL: f64 = 0.5;
    /// How many windows in a row a rate must stay fallen.
    pub const FALL_WINDOWS: u32 = 5;
    /// The weight of a new window in the smoothed rate.
    const SMOOTHING: f64 = 0.25;

    /// A controller for `c`, its first window starting at `now`.
    pub fn new(c: Concurrency, now: Instant) -> Controller {
        let (level, fixed) = match c {
            Concurrency::Auto { max } => (Self::START.min(max.max(1)), false),
            Concurrency::Fixed(n) => (n.max(1), true),
        };
        Controller {
            level,
            max: c.max(),
            fixed,
            settled: fixed,
            window_start: now,
            window_bytes: 0,
            prev: None,
            best_settled: 0.0,
            smoothed: None,
            low_windows: 0,
            counting_from: now,
            latency: Duration::ZERO,
            gain: Self::GAIN,
        }
    }

    /// Starts an automatic setting at `streams` (at least 1, at most its
    /// maximum) instead of [`Controller::START`]; a fixed one is kept.
    pub fn starting_at(mut self, streams: usize) -> Controller {
        if !self.fixed {
            self.level = streams.clamp(1, self.max);
        }
        self
    }

    /// Sets the factor of the rate twice the streams must bring for the
    /// controller to keep doubling them (default [`Controller::GAIN`]).
    pub fn gain(mut self, factor: f64) -> Controller {
        self.gain = factor;
        self
    }

    /// Sets how long a new stream takes to deliver its first bytes (the
    /// time from sending a part's request to its first byte, smoothed):
    /// streams added are measured only after it, over windows of at least
    /// twice it.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// Starts the measurement window again at `now`, dropping what moved
    /// since it started: for the samples in which the transfer runs more
    /// streams than its level (parts sent before a step back, finishing).
    pub fn skip(&mut self, now: Instant) {
        self.window_start = now;
        self.window_bytes = 0;
    }

    /// Ignores the bytes moved during the first `time`: for an upload,
    /// whose first bytes fill the socket buffers at once and so would
    /// overstate the rate.
    pub fn warm_up(mut self, time: Duration) -> Controller {
        self.counting_from = self.window_start + time;
        self
    }

    /// The streams to keep in flight now.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Whether the level never changes (a [`Concurrency::Fixed`] setting).
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// Whether the controller has stopped adding streams.
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// Records `bytes` moved since the previous call, at `now`; may change
    /// the level.
    pub fn on_transferred(&mut self, bytes: u64, now: Instant) {
        if self.fixed {
            return;
        }
        if now < self.counting_from {
            // Still warming up: what moves now says nothing of the rate.
            self.window_start = now;
            return;
        }
        self.window_bytes += bytes;
        if self.window_bytes == 0 {
            // Nothing moved yet (streams still connecting): the window
            // starts with the first bytes.
            self.window_start = now;
            return;
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        let window = if self.settled {
            Self::WINDOW.max(2 * self.latency)
        } else {
            Self::RAMP_WINDOW.max(2 * self.latency)
        };
        if elapsed < window {
            return;
        }
        let rate = self.window_bytes as f64 / elapsed.as_secs_f64();
        self.window_start = now;
        self.window_bytes = 0;

        if self.settled {
            // Smoothed, so that one slow window is not a falling rate.
            let s = match self.smoothed {
                None => rate,
                Some(s) => s + Self::SMOOTHING * (rate - s),
            };
            self.smoothed = Some(s);
            if s > self.best_settled {
                self.best_settled = s;
            }
            if s < self.best_settled * Self::FALL {
                // A pause (every stream between two parts at once) is not
                // a fall; a rate that stays low is.
                self.low_windows += 1;
                if self.low_windows >= Self::FALL_WINDOWS {
                    self.step_back();
                }
            } else {
                self.low_windows = 0;
            }
            return;
        }
        match self.prev {
            Some((prev_level, prev_rate)) if rate <= prev_rate * self.gain => {
                self.level = prev_level;
                self.settled = true;
            }
            _ => {
                self.prev = Some((self.level, rate));
                if self.level >= self.max {
                    self.settled = true;
                } else {
                    self.level = (self.level * 2).min(self.max);
                    // The new streams move nothing before their first bytes.
                    self.counting_from = now + self.latency;
                }
            }
        }
    }

    /// Records a 429, a 503 or a reset connection at `now`: halves the
    /// streams and stops adding. Callers report one throttle per level:
    /// answers to requests sent before the last step back say nothing
    /// about the level now.
    pub fn on_throttle(&mut self, now: Instant) {
        if self.fixed {
            return;
        }
        self.step_back();
        self.window_start = now;
        self.window_bytes = 0;
    }

    fn step_back(&mut self) {
        self.level = (self.level / 2).max(1);
        self.settled = true;
        self.best_settled = 0.0;
        self.smoothed = None;
        self.low_windows = 0;
    }
}
