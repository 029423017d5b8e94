//! The download progress bar: shown on stderr only when stderr is a terminal, otherwise a no-op
//! (logs and scripts stay quiet).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A cheap, clonable handle; every clone updates the same bar.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `total` stored bytes when `wanted` and stderr is a terminal; hidden otherwise.
    pub fn new(total: u64, wanted: bool) -> Progress {
        if !wanted || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "));
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar.set_message("downloading");
        Progress { bar: Some(bar) }
    }

    /// No bar at all.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// Counts `n` more downloaded bytes.
    pub fn add(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Shows a phase name next to the bar.
    pub fn set_phase(&self, phase: &'static str) {
        if let Some(bar) = &self.bar {
            bar.set_message(phase);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Clears the bar when dropped, so a failed restore does not leave a stale bar on screen.
#[derive(Debug)]
pub struct FinishOnDrop(pub Progress);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish();
    }
}
