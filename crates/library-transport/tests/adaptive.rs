//! The adaptive stream controller on simulated rate curves: where it settles.

use library_transport::{Concurrency, Controller};
use std::time::{Duration, Instant};

const MB: f64 = 1e6;

/// Runs a controller for `secs` simulated seconds against a link whose
/// aggregate rate at `n` streams is `rate(n)` bytes/s; `throttled(n)` says
/// whether the server answers 503 at `n` streams. Returns the controller.
fn simulate(
    c: Concurrency,
    secs: f64,
    rate: impl Fn(usize) -> f64,
    throttled: impl Fn(usize) -> bool,
) -> Controller {
    let t0 = Instant::now();
    let mut ctl = Controller::new(c, t0);
    let dt = Duration::from_millis(50);
    let steps = (secs / dt.as_secs_f64()) as u32;
    for i in 1..=steps {
        let now = t0 + dt * i;
        if throttled(ctl.level()) {
            ctl.on_throttle(now);
            continue;
        }
        let bytes = rate(ctl.level()) * dt.as_secs_f64();
        ctl.on_transferred(bytes as u64, now);
    }
    ctl
}

fn never(_: usize) -> bool {
    false
}

#[test]
fn grows_with_every_stream_up_to_the_maximum() {
    let ctl = simulate(
        Concurrency::Auto { max: 16 },
        5.0,
        |n| n as f64 * 40.0 * MB,
        never,
    );
    assert_eq!(ctl.level(), 16);
    assert!(ctl.is_settled());
}

#[test]
fn never_above_a_small_maximum() {
    let ctl = simulate(
        Concurrency::Auto { max: 3 },
        5.0,
        |n| n as f64 * 40.0 * MB,
        never,
    );
    assert_eq!(ctl.level(), 3);
}

#[test]
fn maximum_of_one_stays_at_one() {
    let ctl = simulate(
        Concurrency::Auto { max: 1 },
        5.0,
        |n| n as f64 * 40.0 * MB,
        never,
    );
    assert_eq!(ctl.level(), 1);
}

#[test]
fn plateau_at_four_settles_at_four() {
    let ctl = simulate(
        Concurrency::Auto { max: 16 },
        5.0,
        |n| n.min(4) as f64 * 40.0 * MB,
        never,
    );
    assert_eq!(ctl.level(), 4);
    assert!(ctl.is_settled());
}

#[test]
fn plateau_at_eight_settles_at_eight() {
    let ctl = simulate(
        Concurrency::Auto { max: 16 },
        5.0,
        |n| n.min(8) as f64 * 40.0 * MB,
        never,
    );
    assert_eq!(ctl.level(), 8);
}

#[test]
fn total_cap_stays_at_the_start() {
    // A server whose total bandwidth is capped: more streams add nothing.
    let ctl = simulate(Concurrency::Auto { max: 16 }, 5.0, |_| 100.0 * MB, never);
    assert_eq!(ctl.level(), Controller::START);
    assert!(ctl.is_settled());
}

#[test]
fn falling_rate_with_more_streams_goes_back() {
    let ctl = simulate(
        Concurrency::Auto { max: 16 },
        5.0,
        |n| 200.0 * MB / n as f64,
        never,
    );
    assert_eq!(ctl.level(), Controller::START);
}

#[test]
fn small_gain_is_not_worth_a_stream() {
    // 5 % more for twice the streams is below the 10 % margin.
    let ctl = simulate(
        Concurrency::Auto { max: 16 },
        5.0,
        |n| {
            if n <= Controller::START {
                100.0 * MB
            } else {
                105.0 * MB
            }
        },
        never,
    );
    assert_eq!(ctl.level(), Controller::START);
}

#[test]
fn answers_503_above_four_backs_off_to_four() {
    let ctl = simulate(
        Concurrency::Auto { max: 16 },
        5.0,
        |n| n as f64 * 40.0 * MB,
        |n| n > 4,
    );
    assert_eq!(ctl.level(), 4);
    assert!(ctl.is_settled());
}

#[test]
fn throttle_halves_and_never_below_one() {
    let mut ctl = Controller::new(Concurrency::Auto { max: 16 }, Instant::now());
    for _ in 0..5 {
        ctl.on_throttle(Instant::now());
    }
    assert_eq!(ctl.level(), 1);
}

#[test]
fn rate_collapse_after_settling_halves() {
    let t0 = Instant::now();
    let mut ctl = Controller::new(Concurrency::Auto { max: 16 }, t0);
    let dt = Duration::from_millis(50);
    let mut now = t0;
    for _ in 0..100 {
        now += dt;
        ctl.on_transferred((ctl.level() as f64 * 40.0 * MB * 0.05) as u64, now);
    }
    assert_eq!(ctl.level(), 16);
    // 300 ms at a tenth (every stream between two parts at once) is a
    // pause, not a fall.
    for _ in 0..6 {
        now += dt;
        ctl.on_transferred((40.0 * MB * 0.05) as u64, now);
    }
    for _ in 0..10 {
        now += dt;
        ctl.on_transferred((ctl.level() as f64 * 40.0 * MB * 0.05) as u64, now);
    }
    assert_eq!(ctl.level(), 16);
    // The link degrades to a tenth of its rate, for good.
    for _ in 0..20 {
        now += dt;
        ctl.on_transferred((40.0 * MB * 0.05) as u64, now);
    }
    assert_eq!(ctl.level(), 8);
}

#[test]
fn fixed_never_changes() {
    let ctl = simulate(
        Concurrency::Fixed(5),
        5.0,
        |n| n as f64 * 40.0 * MB,
        |n| n > 2,
    );
    assert_eq!(ctl.level(), 5);
    let ctl = simulate(Concurrency::Fixed(0), 1.0, |_| MB, never);
    assert_eq!(ctl.level(), 1);
}

#[test]
fn default_is_auto_up_to_sixteen() {
    assert_eq!(Concurrency::default(), Concurrency::Auto { max: 16 });
    assert_eq!(Concurrency::default().max(), 16);
}
