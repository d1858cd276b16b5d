//! Progress reporting. Core code tells a [`Reporter`] what happens; the reporter decides how
//! it looks: an indicatif bar on a terminal, plain throttled lines in logs and CI, or nothing.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Called with the number of bytes that just moved; drives progress bars.
pub type ProgressFn = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// How a transferred item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its bytes were sent.
    Transferred,
    /// The destination already had it.
    Skipped,
    /// The registry linked it from another repository.
    Mounted,
    /// It was read and matched its sums.
    Checked,
}

/// Receives progress events. Implementations must be cheap: `bytes` is called for every
/// buffer that moves.
pub trait Reporter: Send + Sync {
    /// A new phase of work begins, with the items and bytes it will move.
    fn begin(&self, what: &str, items: u64, bytes: u64);
    /// Bytes moved.
    fn bytes(&self, n: u64);
    /// One item (blob, manifest) is finished.
    fn item(&self, name: &str, size: u64, outcome: Outcome);
    /// Something the user should know that does not stop the work.
    fn warn(&self, message: &str);
    /// A line of information (what is being resumed, where files go); not shown with `-q`.
    fn note(&self, message: &str);
    /// The phase is over; `summary` says what was done.
    fn finish(&self, summary: &str);
    /// How many transfers are running now (a bar shows it beside the phase).
    fn in_flight(&self, _transfers: usize) {}
}

/// Reports nothing but warnings (`--quiet`).
pub struct QuietReporter;

impl Reporter for QuietReporter {
    fn begin(&self, _: &str, _: u64, _: u64) {}
    fn bytes(&self, _: u64) {}
    fn item(&self, _: &str, _: u64, _: Outcome) {}
    fn warn(&self, message: &str) {
        eprintln!("warning: {}", terminal_safe(message));
    }
    fn note(&self, _: &str) {}
    fn finish(&self, _: &str) {}
}

/// Plain lines on stderr: one per finished item, a running total at most every
/// [`PlainReporter::EVERY`], and a summary. For logs, CI and `--no-progress`.
pub struct PlainReporter {
    total: AtomicU64,
    done: AtomicU64,
    state: Mutex<PlainState>,
    items: bool,
}

struct PlainState {
    what: String,
    started: Instant,
    last_line: Instant,
}

impl PlainReporter {
    /// Interval between running-total lines.
    pub const EVERY: Duration = Duration::from_secs(5);

    /// A reporter that has seen nothing yet; with `items` it prints a line per finished item
    /// (`--verbose`), else only running totals and summaries.
    pub fn new(items: bool) -> Self {
        let now = Instant::now();
        PlainReporter {
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            state: Mutex::new(PlainState {
                what: String::new(),
                started: now,
                last_line: now,
            }),
            items,
        }
    }
}

impl Reporter for PlainReporter {
    fn begin(&self, what: &str, items: u64, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        let mut state = self.state.lock().expect("reporter lock");
        state.what = what.to_string();
        state.started = Instant::now();
        state.last_line = state.started;
        if items == 0 && bytes == 0 {
            // A phase whose size is not known up front.
            eprintln!("{}...", terminal_safe(what));
        } else {
            eprintln!(
                "{}: {items} items, {}",
                terminal_safe(what),
                human_bytes(bytes)
            );
        }
    }

    fn bytes(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let mut state = self.state.lock().expect("reporter lock");
        if state.last_line.elapsed() >= Self::EVERY {
            state.last_line = Instant::now();
            let total = self.total.load(Ordering::Relaxed).max(1);
            let secs = state.started.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "{}: {} of {} ({}%), {}/s",
                terminal_safe(&state.what),
                human_bytes(done),
                human_bytes(total),
                done * 100 / total,
                human_bytes((done as f64 / secs) as u64)
            );
        }
    }

    fn item(&self, name: &str, size: u64, outcome: Outcome) {
        if !self.items {
            return;
        }
        let how = match outcome {
            Outcome::Transferred => "copied",
            Outcome::Skipped => "exists",
            Outcome::Mounted => "mounted",
            Outcome::Checked => "ok",
        };
        eprintln!("  {how:<7} {} ({})", terminal_safe(name), human_bytes(size));
    }

    fn warn(&self, message: &str) {
        eprintln!("warning: {}", terminal_safe(message));
    }

    fn note(&self, message: &str) {
        eprintln!("{}", terminal_safe(message));
    }

    fn finish(&self, summary: &str) {
        let _ = std::io::stderr().flush();
        eprintln!("{}", terminal_safe(summary));
    }
}

/// One indicatif bar on stderr, for terminals: the phase, how many transfers are running,
/// bytes, rate and time left.
pub struct BarReporter {
    bar: indicatif::ProgressBar,
    phase: Mutex<String>,
}

impl BarReporter {
    /// A bar drawn at most ten times a second.
    pub fn new() -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        BarReporter {
            bar,
            phase: Mutex::new(String::new()),
        }
    }
}

impl Default for BarReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for BarReporter {
    fn begin(&self, what: &str, _items: u64, bytes: u64) {
        self.bar.reset();
        self.bar.set_length(bytes);
        *self.phase.lock().expect("reporter lock") = terminal_safe(what).into_owned();
        self.bar.set_message(terminal_safe(what).into_owned());
    }

    fn in_flight(&self, transfers: usize) {
        let phase = self.phase.lock().expect("reporter lock");
        self.bar
            .set_message(format!("{phase} ({transfers} in flight)"));
    }

    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    fn item(&self, _: &str, _: u64, _: Outcome) {}

    fn warn(&self, message: &str) {
        self.bar
            .suspend(|| eprintln!("warning: {}", terminal_safe(message)));
    }

    fn note(&self, message: &str) {
        self.bar.suspend(|| eprintln!("{}", terminal_safe(message)));
    }

    fn finish(&self, summary: &str) {
        self.bar.finish_and_clear();
        eprintln!("{}", terminal_safe(summary));
    }
}

/// Text from elsewhere (a registry's message, a tag) made safe to print: control characters
/// replaced, at most 300 characters.
pub fn printable(text: &str) -> String {
    const MAX: usize = 300;
    let out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let mut out = terminal_safe(&out).into_owned();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// Text about to reach a terminal, whatever it holds: control characters (escape sequences,
/// carriage returns, backspaces) and the Unicode controls that reorder text become `?`; line
/// breaks and tabs stay. Every line ferry prints goes through here, so a name from a registry
/// can neither move the cursor nor fake a line of its own; [`printable`] also shortens it.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| if unsafe_char(c) { '?' } else { c })
            .collect(),
    )
}

/// The first few items of a list, and how many more there are: "a, b, c and 12 more".
pub fn list_some(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

/// `1.5 GB`-style sizes in powers of ten, as disks and links are sold.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
