//! Progress of long operations (backup, verify, restore, reading large sync files) on stderr.
//!
//! On a terminal one line is rewritten in place, at most ten times a second. Without one (a
//! cron job, systemd, a pipe) a rewritten line would be noise in a log, so a whole line is
//! written every few seconds instead, and nothing at all for an operation that ends sooner.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::store::backup::{Phase, Progress};

/// How often the line is rewritten on a terminal.
const TERMINAL_EVERY: Duration = Duration::from_millis(100);
/// How often a progress line is logged without a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress on `W` (stderr in the CLI).
pub struct Meter<W: Write> {
    out: W,
    terminal: bool,
    started: Instant,
    /// When a line was last shown (on a terminal: drawn; otherwise: logged).
    last: Option<Instant>,
    bytes: u64,
    /// A terminal line is drawn and not yet ended.
    open: bool,
}

impl Meter<std::io::Stderr> {
    /// Progress on stderr, rewritten in place when it is a terminal.
    pub fn stderr() -> Self {
        let terminal = std::io::stderr().is_terminal();
        Meter::new(std::io::stderr(), terminal, Instant::now())
    }
}

impl<W: Write> Meter<W> {
    pub fn new(out: W, terminal: bool, started: Instant) -> Self {
        Meter {
            out,
            terminal,
            started,
            last: None,
            bytes: 0,
            open: false,
        }
    }

    /// Whether a line is due at `now`; a final line (`last`) is always due on a terminal, so
    /// that the line ends on the true total.
    fn due(&mut self, now: Instant, last: bool) -> bool {
        let due = if self.terminal {
            last || self.last.is_none_or(|t| now - t >= TERMINAL_EVERY)
        } else {
            // The first log line comes only once the operation has run for a while.
            now - self.last.unwrap_or(self.started) >= LOG_EVERY
        };
        if due {
            self.last = Some(now);
        }
        due
    }

    fn show(&mut self, line: &str) {
        // Progress is best effort: a closed stderr must not fail the operation.
        if self.terminal {
            let _ = write!(self.out, "\r{line}");
            self.open = true;
        } else {
            let _ = writeln!(self.out, "progress: {line}");
        }
        let _ = self.out.flush();
    }

    /// `n` more bytes received.
    pub fn bytes(&mut self, n: u64) {
        self.bytes_at(n, Instant::now());
    }

    pub fn bytes_at(&mut self, n: u64, now: Instant) {
        self.bytes += n;
        if self.due(now, false) {
            let line = format!("downloading  {} bytes", self.bytes);
            self.show(&line);
        }
    }

    /// Bytes read of a file of `total` bytes.
    pub fn reading(&mut self, what: &str, done: u64, total: u64) {
        if self.due(Instant::now(), done == total) {
            let line = format!("reading {what}: {} / {} MiB", done >> 20, total >> 20);
            self.show(&line);
        }
    }

    /// Records done in a phase of a backup, verify or restore.
    pub fn records(&mut self, p: Progress) {
        self.records_at(p, Instant::now());
    }

    pub fn records_at(&mut self, p: Progress, now: Instant) {
        if self.due(now, p.records == p.total) {
            let what = match p.phase {
                Phase::Export => "exporting",
                Phase::Verify => "verifying",
                Phase::Restore => "restoring",
            };
            let line = format!("{what}    {}/{} records", p.records, p.total);
            self.show(&line);
        }
    }

    /// Ends the terminal line, if one was drawn.
    pub fn done(&mut self) {
        if self.open {
            let _ = writeln!(self.out);
            self.open = false;
            self.last = None;
        }
    }

    #[cfg(test)]
    fn written(&self) -> &W {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifying(records: u64, total: u64) -> Progress {
        Progress {
            phase: Phase::Verify,
            records,
            total,
        }
    }

    #[test]
    fn without_a_terminal_a_long_run_logs_whole_lines_every_few_seconds() {
        let start = Instant::now();
        let mut m = Meter::new(Vec::new(), false, start);
        // A quick run logs nothing.
        m.records_at(verifying(1000, 3000), start + Duration::from_secs(1));
        m.records_at(verifying(3000, 3000), start + Duration::from_secs(2));
        assert_eq!(m.written().len(), 0);
        // A long one logs a line per interval, never a carriage return.
        m.records_at(verifying(4000, 9000), start + LOG_EVERY);
        m.records_at(
            verifying(5000, 9000),
            start + LOG_EVERY + Duration::from_secs(1),
        );
        m.records_at(verifying(8000, 9000), start + LOG_EVERY * 2);
        m.done();
        let text = String::from_utf8(m.written().clone()).expect("UTF-8");
        assert_eq!(
            text,
            "progress: verifying    4000/9000 records\nprogress: verifying    8000/9000 records\n"
        );
    }

    #[test]
    fn on_a_terminal_the_line_is_rewritten_and_ends_on_the_total() {
        let start = Instant::now();
        let mut m = Meter::new(Vec::new(), true, start);
        m.records_at(verifying(1000, 2000), start);
        m.records_at(verifying(1500, 2000), start + Duration::from_millis(10));
        m.records_at(verifying(2000, 2000), start + Duration::from_millis(20));
        m.done();
        let text = String::from_utf8(m.written().clone()).expect("UTF-8");
        assert_eq!(
            text,
            "\rverifying    1000/2000 records\rverifying    2000/2000 records\n"
        );
    }
}
