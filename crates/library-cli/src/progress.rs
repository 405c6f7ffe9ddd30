//! Progress bars for pull and push: an indicatif bar behind the client's
//! `Progress` sink, shown only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use library_client::{NoProgress, Progress};

/// A bar on stderr. indicatif's bar is shared state behind a lock, so bytes
/// may arrive from several parts at once.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn total(&self, bytes: u64) {
        self.0.set_length(bytes);
        self.0.set_style(bar_style());
        self.0.reset_eta();
    }

    fn increment(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }

    fn abort(&self) {
        self.0.abandon();
    }

    fn message(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg} [{bar:32.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {bytes} {binary_bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// The sink for a transfer labelled `label`: a bar when stderr is a
/// terminal and not `quiet`, otherwise nothing.
pub fn sink(label: &str, quiet: bool) -> Arc<dyn Progress> {
    if quiet || !std::io::stderr().is_terminal() {
        return Arc::new(NoProgress);
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(spinner_style());
    bar.set_message(label.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Arc::new(Bar(bar))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_counts_from_many_threads() {
        let bar = Bar(ProgressBar::hidden());
        bar.total(4000);
        let bar = Arc::new(bar);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = bar.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        b.increment(1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(bar.0.position(), 4000);
        assert_eq!(bar.0.length(), Some(4000));
        bar.finish();
    }

    // Whether a bar is drawn (on a terminal, not with -q) is shown by
    // running the tool with stderr on a pseudo-terminal:
    // tests/flags.rs::a_terminal_shows_the_progress_bar_unless_quiet.
}
