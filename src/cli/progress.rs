//! A terminal progress bar (indicatif) for publishes; nothing when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};

use crate::publish::Progress;

pub struct TerminalProgress(ProgressBar, std::sync::atomic::AtomicU64);

impl TerminalProgress {
    pub fn new(is_terminal: bool) -> Option<Self> {
        is_terminal.then(|| Self(ProgressBar::hidden(), Default::default()))
    }
}

impl Progress for TerminalProgress {
    fn start(&self, files: u64) {
        self.0.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.0.set_length(files);
        self.0.set_style(
            ProgressStyle::with_template("{spinner} publishing [{bar:30}] {pos}/{len} files, {msg}, eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(1);
        let total = self.1.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed) + bytes;
        self.0.set_message(indicatif::HumanBytes(total).to_string());
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A bar for downloads: bytes, rate and the current phase as its message.
pub fn download_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A bar counting items of one kind, with what they add up to as its message.
pub fn count_bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let template = format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} eta {{eta}}");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
