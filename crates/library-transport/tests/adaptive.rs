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
    run(Controller::new(c, Instant::now()), secs, rate, throttled)
}

/// Like [`simulate`], for a controller already built.
fn run(
    mut ctl: Controller,
    secs: f64,
    rate: impl Fn(usize) -> f64,
    throttled: impl Fn(usize) -> bool,
) -> Controller {
    let t0 = Instant::now();
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
fn adding_streams_takes_one_short_window_per_doubling() {
    // Sampled as a transfer does; every stream brings 40 MB/s.
    let t0 = Instant::now();
    let mut ctl = Controller::new(Concurrency::Auto { max: 16 }, t0);
    let mut now = t0;
    let mut reached = None;
    while now < t0 + Duration::from_secs(1) {
        now += Controller::SAMPLE;
        let bytes = ctl.level() as f64 * 40.0 * MB * Controller::SAMPLE.as_secs_f64();
        ctl.on_transferred(bytes as u64, now);
        if ctl.level() == 16 && reached.is_none() {
            reached = Some(now - t0);
        }
    }
    // 4 to 8 to 16: two ramp windows (each ends at the first sample at or
    // after its length), where the settled window would take twice as long.
    let reached = reached.expect("never reached 16 streams");
    assert!(
        reached <= 2 * (Controller::RAMP_WINDOW + Controller::SAMPLE),
        "16 streams only after {reached:?}"
    );
    assert!(Controller::RAMP_WINDOW < Controller::WINDOW);
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

/// Runs an automatic controller, sampled as a transfer samples it, against
/// a link where every stream brings `per_stream` bytes/s but only
/// `latency` after it was added (a round trip and the server's answer).
/// The controller is told the latency when `told`.
fn ramp_with_latency(latency: Duration, told: bool) -> Controller {
    let t0 = Instant::now();
    let mut ctl = Controller::new(Concurrency::Auto { max: 16 }, t0);
    if told {
        ctl.set_latency(latency);
    }
    let per_stream = 13.0 * MB;
    // When each stream was added.
    let mut started: Vec<Instant> = vec![t0; ctl.level()];
    let mut now = t0;
    while now < t0 + Duration::from_secs(2) {
        now += Controller::SAMPLE;
        let moving = started.iter().filter(|&&s| s + latency <= now).count();
        let bytes = moving as f64 * per_stream * Controller::SAMPLE.as_secs_f64();
        ctl.on_transferred(bytes as u64, now);
        while started.len() < ctl.level() {
            started.push(now);
        }
        started.truncate(ctl.level());
    }
    ctl
}

#[test]
fn streams_added_on_a_long_round_trip_are_measured_once_they_deliver() {
    let latency = Duration::from_millis(45);
    let ctl = ramp_with_latency(latency, true);
    assert_eq!(ctl.level(), 16);
    // Measured at once, the new streams seem to bring nothing: the
    // controller would settle at the start.
    let blind = ramp_with_latency(latency, false);
    assert_eq!(blind.level(), Controller::START);
}

#[test]
fn streams_finishing_after_a_step_back_are_not_a_fall() {
    // Settled at 16 on a link where each stream brings 13 MB/s.
    let t0 = Instant::now();
    let mut ctl = Controller::new(Concurrency::Auto { max: 16 }, t0);
    let dt = Controller::SAMPLE;
    let per = 13.0 * MB * dt.as_secs_f64();
    let mut now = t0;
    for _ in 0..80 {
        now += dt;
        ctl.on_transferred((ctl.level() as f64 * per) as u64, now);
    }
    assert_eq!(ctl.level(), 16);
    ctl.on_throttle(now);
    assert_eq!(ctl.level(), 8);
    // The 8 streams above the level finish their parts over 0.6 s: the
    // transfer skips those samples.
    for _ in 0..48 {
        now += dt;
        ctl.skip(now);
    }
    // Then 8 streams for 2 s: the rate of 8, not a fall from 16.
    for _ in 0..160 {
        now += dt;
        ctl.on_transferred((8.0 * per) as u64, now);
    }
    assert_eq!(ctl.level(), 8);
}

#[test]
fn an_upload_keeps_doubling_while_twice_the_streams_are_not_slower() {
    let upload = || {
        Controller::new(Concurrency::Auto { max: 16 }, Instant::now()).gain(Controller::UPLOAD_GAIN)
    };
    // Each doubling brings 10 % (what a download would not call worth it).
    let small_gain = |n: usize| 100.0 * MB * 1.1f64.powf((n as f64).log2());
    assert_eq!(run(upload(), 3.0, small_gain, never).level(), 16);
    let download = Controller::new(Concurrency::Auto { max: 16 }, Instant::now());
    assert_eq!(
        run(download, 3.0, small_gain, never).level(),
        Controller::START
    );
    // Slower at 16 than at 8: back to 8.
    let slower_at_16 = |n: usize| {
        if n >= 16 {
            150.0 * MB
        } else {
            n as f64 * 20.0 * MB
        }
    };
    let ctl = run(upload(), 3.0, slower_at_16, never);
    assert_eq!(ctl.level(), 8);
    assert!(ctl.is_settled());
}

#[test]
fn a_start_is_bounded_by_the_maximum_and_keeps_a_fixed_setting() {
    let now = Instant::now();
    let auto = |max| Controller::new(Concurrency::Auto { max }, now);
    assert_eq!(auto(16).starting_at(Controller::UPLOAD_START).level(), 8);
    assert_eq!(auto(4).starting_at(Controller::UPLOAD_START).level(), 4);
    assert_eq!(auto(16).starting_at(0).level(), 1);
    let fixed = Controller::new(Concurrency::Fixed(3), now).starting_at(8);
    assert_eq!(fixed.level(), 3);
}
