//! The progress bar: input bytes consumed, on stderr, only when a person is
//! watching (stderr is a terminal, no --quiet) and the work is large enough
//! to be worth watching. Otherwise the bar is hidden and costs a counter.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Inputs smaller than this finish too fast for a bar to help.
const MIN_BYTES: u64 = 16 << 20;

pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` input bytes (`None`: unknown, e.g. stdin).
    pub(crate) fn new(total: Option<u64>, quiet: bool) -> Self {
        let large = total.is_none_or(|total| total >= MIN_BYTES);
        if quiet || !large || !std::io::stderr().is_terminal() {
            return Self {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style(
                    "{msg:20!} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                )),
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(style("{spinner} {msg} {binary_bytes} {binary_bytes_per_sec}"));
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            }
        };
        Self { bar }
    }

    /// Names the file being processed.
    pub(crate) fn set_file(&self, name: String) {
        self.bar.set_message(name);
    }

    /// Counts what `read` yields on the bar.
    pub(crate) fn wrap<R: Read>(&self, read: R) -> impl Read {
        self.bar.wrap_read(read)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Cleared when the run ends, so an error line never lands mid-bar.
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants; a bad one falls back to the default look.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}
