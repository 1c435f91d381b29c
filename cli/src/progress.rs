//! The `prepare --all` progress bar: kits done of all, rate and time left, redrawn
//! steadily on stderr, and only when stderr is a terminal (indicatif hides it otherwise).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct BatchProgress {
    bar: Option<ProgressBar>,
}

impl BatchProgress {
    /// A bar when `wanted` (text output) and stderr is a terminal; otherwise nothing.
    pub fn new(wanted: bool) -> BatchProgress {
        let target = ProgressDrawTarget::stderr();
        if !wanted || target.is_hidden() {
            return BatchProgress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, target);
        let style =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} kits  {per_sec}  ETA {eta}  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        // A steady tick keeps the elapsed time and spinner moving while a slow kit runs.
        bar.enable_steady_tick(Duration::from_millis(120));
        BatchProgress { bar: Some(bar) }
    }

    /// Called by the engine after each kit: `done` of `total`.
    pub fn update(&self, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
