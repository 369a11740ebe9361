//! A connector process's stderr (its `println!` too) into the daemon's log,
//! bounded: a line longer than [`MAX_LINE`] bytes is cut where it passes
//! the limit (logged at once, marked, the rest passed over up to its
//! newline, so a stream without newlines holds no more than a line's
//! worth); at most [`LINES_PER_SECOND`] lines a second reach the log (with
//! a burst of [`BURST`]), and the lines left out are counted and said.
//! The last lines are kept, whatever the rate, for the cause of a crash.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest line logged whole, in bytes.
pub(super) const MAX_LINE: usize = 4096;
/// Lines a second a connector's output may add to the log, on average.
pub(super) const LINES_PER_SECOND: f64 = 100.0;
/// Lines logged at once after a quiet spell.
pub(super) const BURST: f64 = 200.0;
/// How many lines are kept for crash causes.
const KEPT: usize = 8;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The last lines a process wrote to stderr, and whether its stderr ended.
#[derive(Default)]
pub(super) struct StderrTail {
    lines: Mutex<(VecDeque<String>, bool)>,
    ended: Condvar,
}

impl StderrTail {
    /// The kept lines once the stream ended (or after `grace`).
    pub(super) fn read_to_end(&self, grace: Duration) -> VecDeque<String> {
        let guard = lock(&self.lines);
        let (guard, _) =
            self.ended.wait_timeout_while(guard, grace, |(_, ended)| !*ended).unwrap_or_else(|p| p.into_inner());
        guard.0.clone()
    }

    fn keep(&self, line: String) {
        let mut kept = lock(&self.lines);
        if kept.0.len() == KEPT {
            kept.0.pop_front();
        }
        kept.0.push_back(line);
    }

    fn end(&self) {
        lock(&self.lines).1 = true;
        self.ended.notify_all();
    }
}

/// Reads `stderr` on a thread of its own until it ends.
pub(super) fn spawn_reader(name: &str, stderr: impl Read + Send + 'static, tail: Arc<StderrTail>) {
    let name = name.to_owned();
    let _ = std::thread::Builder::new().name(format!("stderr-{}", name.replace('\0', "?"))).spawn(move || {
        let mut log = RateLimited::new(&name);
        read_lines(stderr, |line| {
            log.line(&line);
            tail.keep(line);
        });
        log.finish();
        tail.end();
    });
}

/// Calls `each` with every line of `input`, each at most [`MAX_LINE`] bytes
/// (a longer one cut and marked, as soon as it passes the limit).
fn read_lines(input: impl Read, mut each: impl FnMut(String)) {
    let mut reader = BufReader::with_capacity(16 * 1024, input);
    let mut line = Vec::with_capacity(256);
    // The line in progress passed the limit and was handed on already.
    let mut cut = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        if !cut {
            let room = MAX_LINE - line.len();
            line.extend_from_slice(&chunk[..room.min(chunk.len())]);
            if chunk.len() > room {
                cut = true;
                each(format!("{} … [cut: the line is longer than {MAX_LINE} bytes]", text(&line)));
            }
        }
        let consumed = newline.map_or(buf.len(), |i| i + 1);
        reader.consume(consumed);
        if newline.is_some() {
            if !cut {
                each(text(&line));
            }
            line.clear();
            cut = false;
        }
    }
    if !line.is_empty() && !cut {
        each(text(&line));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end_matches('\r').to_owned()
}

/// The log of one connector's output, with a token bucket on its lines.
/// Once over the limit it stays quiet for [`QUIET`] (counting), then says
/// how many lines it left out and logs again.
struct RateLimited<'a> {
    name: &'a str,
    tokens: f64,
    refilled: Instant,
    /// Since when lines are counted instead of logged.
    quiet_since: Option<Instant>,
    /// Lines left out since then.
    dropped: u64,
}

/// How long the log stays quiet once a connector's output passed the limit.
const QUIET: Duration = Duration::from_secs(1);

impl<'a> RateLimited<'a> {
    fn new(name: &'a str) -> Self {
        RateLimited { name, tokens: BURST, refilled: Instant::now(), quiet_since: None, dropped: 0 }
    }

    fn line(&mut self, line: &str) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * LINES_PER_SECOND).min(BURST);
        self.refilled = now;
        if let Some(since) = self.quiet_since {
            if now.duration_since(since) < QUIET {
                self.dropped += 1;
                return;
            }
            self.say_dropped();
        }
        if self.tokens < 1.0 {
            tracing::warn!(
                connector = %self.name,
                limit_per_second = LINES_PER_SECOND,
                "connector output is over the rate limit: the lines beyond it are counted, not logged"
            );
            self.quiet_since = Some(now);
            self.dropped = 1;
            return;
        }
        self.tokens -= 1.0;
        tracing::info!(connector = %self.name, output = %line, "connector output");
    }

    fn say_dropped(&mut self) {
        self.quiet_since = None;
        if self.dropped > 0 {
            tracing::warn!(
                connector = %self.name,
                dropped = self.dropped,
                limit_per_second = LINES_PER_SECOND,
                "connector output: lines over the rate limit were not logged"
            );
            self.dropped = 0;
        }
    }

    fn finish(&mut self) {
        self.say_dropped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        read_lines(input, |l| out.push(l));
        out
    }

    #[test]
    fn lines_are_cut_at_the_limit_and_the_rest_passed_over() {
        assert_eq!(lines(b"one\r\ntwo\nthree"), ["one", "two", "three"]);
        let mut long = vec![b'x'; MAX_LINE * 3];
        long.extend_from_slice(b"\nafter\n");
        let got = lines(&long);
        assert_eq!(got.len(), 2, "{:?}", got.iter().map(String::len).collect::<Vec<_>>());
        assert!(got[0].starts_with(&"x".repeat(MAX_LINE)) && got[0].ends_with("longer than 4096 bytes]"));
        assert!(got[0].len() < MAX_LINE + 100);
        assert_eq!(got[1], "after");
        // No newline at all: one cut line, however long the stream.
        let endless = vec![b'y'; MAX_LINE * 50];
        let got = lines(&endless[..]);
        assert_eq!(got.len(), 1);
        assert!(got[0].len() < MAX_LINE + 100);
        // Exactly the limit is whole.
        let exact = vec![b'z'; MAX_LINE];
        assert_eq!(lines(&exact[..]), [String::from_utf8(exact.clone()).unwrap()]);
    }

    #[test]
    fn the_rate_limit_counts_what_it_leaves_out() {
        let mut log = RateLimited::new("Flood");
        for i in 0..(BURST as usize + 50) {
            log.line(&format!("line {i}"));
        }
        assert!((45..=50).contains(&log.dropped), "{}", log.dropped);
        log.finish();
        assert_eq!(log.dropped, 0);
    }
}
