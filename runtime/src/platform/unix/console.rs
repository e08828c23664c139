//! The console: stdout, written by a thread of its own so that a slow or blocked reader (a full
//! pipe, a paused terminal) never stops the program's one serving thread.
//!
//! A write appends to a backlog in memory and returns at once; the writer thread empties the
//! backlog in batches (one `write` for many lines under load, at most every 2 ms). When the
//! backlog is full, whole writes are dropped, and once the writer catches up it reports how
//! much, on a line of its own:
//!
//! ```text
//! console: 1532 lines (118220 bytes) dropped: the output was not read fast enough
//! ```

use std::boxed::Box;
use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::device;

/// How much output stdout's console holds while its reader is slow: 1 MiB.
pub const BACKLOG: usize = 1 << 20;

/// How long the writer lets output gather after a batch, before it takes the next. A writer
/// that took every line as it came would be woken (a system call on the serving thread, a
/// context switch on a core that the clients may need) once per line under load; this way it
/// wakes at most about 500 times a second, and a line after a quiet spell goes out at once.
const GATHER: Duration = Duration::from_millis(2);

/// A console: stdout ([`Console::new`]), or any writer ([`Console::to`]).
#[derive(Clone, Copy)]
pub struct Console {
    sink: &'static Sink,
}

impl core::fmt::Debug for Console {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Console")
            .field("backlog", &self.sink.backlog)
            .finish_non_exhaustive()
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

static STDOUT: OnceLock<&'static Sink> = OnceLock::new();

impl Console {
    /// The process's stdout, with a [`BACKLOG`] of 1 MiB. Every `Console::new()` is the same
    /// console; its thread starts with the first.
    pub fn new() -> Console {
        Console {
            sink: STDOUT.get_or_init(|| Sink::start(Box::new(std::io::stdout()), BACKLOG)),
        }
    }

    /// A console that writes to `out` from a thread of its own, holding at most `backlog`
    /// bytes while `out` is slow. The console (its thread and buffer) lives until the process
    /// ends: make one per output, not one per use.
    pub fn to(out: impl Write + Send + 'static, backlog: usize) -> Console {
        Console {
            sink: Sink::start(Box::new(out), backlog),
        }
    }

    /// Waits until everything written so far is out (or the output failed), at most `limit`.
    /// Returns whether it is.
    pub fn flush(&self, limit: Duration) -> bool {
        self.sink.flush(limit)
    }
}

/// Waits (at most `limit`) until stdout's console has written what it was given, if it was
/// ever used. The platform calls it before the process exits.
pub(super) fn flush_stdout(limit: Duration) {
    if let Some(sink) = STDOUT.get() {
        sink.flush(limit);
    }
}

impl device::Console for Console {
    async fn write(&self, bytes: &[u8]) -> Result<(), device::ConsoleError> {
        self.sink.push(&[bytes])
    }

    /// The line and its newline go in together, so that a line is kept or dropped whole.
    async fn log(&self, line: &str) -> Result<(), device::ConsoleError> {
        self.sink.push(&[line.as_bytes(), b"\n"])
    }
}

struct Sink {
    state: Mutex<State>,
    /// The writer waits on it for output.
    more: Condvar,
    /// [`Sink::flush`] waits on it for the backlog to empty.
    drained: Condvar,
    backlog: usize,
}

#[derive(Default)]
struct State {
    /// What the writer has not taken yet.
    buf: Vec<u8>,
    /// Bytes and lines dropped since the writer last took the buffer. While any are, every
    /// write is dropped, so that the report lands where the output has its gap.
    dropped_bytes: u64,
    dropped_lines: u64,
    /// The writer is waiting on `more` (a write must wake it).
    idle: bool,
    /// The writer holds a batch it has not finished writing.
    busy: bool,
    /// The output failed (closed): writes fail from now on.
    failed: bool,
}

impl Sink {
    fn start(out: Box<dyn Write + Send>, backlog: usize) -> &'static Sink {
        let sink: &'static Sink = Box::leak(Box::new(Sink {
            state: Mutex::new(State::default()),
            more: Condvar::new(),
            drained: Condvar::new(),
            backlog,
        }));
        std::thread::Builder::new()
            .name("uni-console".into())
            .spawn(move || sink.write_out(out))
            .expect("the operating system could not start the console's thread");
        sink
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it; the state is plain
        // data and stays consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `parts` as one write, or drops all of them.
    fn push(&self, parts: &[&[u8]]) -> Result<(), device::ConsoleError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut s = self.lock();
        if s.failed {
            return Err(device::ConsoleError("the output is closed"));
        }
        if s.dropped_bytes > 0 || s.buf.len() + len > self.backlog {
            s.dropped_bytes += len as u64;
            s.dropped_lines += parts
                .iter()
                .map(|p| p.iter().filter(|&&b| b == b'\n').count() as u64)
                .sum::<u64>();
            return Ok(());
        }
        for p in parts {
            s.buf.extend_from_slice(p);
        }
        if s.idle {
            s.idle = false;
            drop(s);
            self.more.notify_one();
        }
        Ok(())
    }

    /// The writer thread: takes the backlog whole, writes it, and reports drops after it.
    fn write_out(&self, mut out: Box<dyn Write + Send>) {
        let mut batch = Vec::new();
        let mut at_line_start = true;
        loop {
            let (dropped_bytes, dropped_lines) = {
                let mut s = self.lock();
                while s.buf.is_empty() && s.dropped_bytes == 0 {
                    s.busy = false;
                    self.drained.notify_all();
                    s.idle = true;
                    s = self.more.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                s.idle = false;
                s.busy = true;
                batch.clear();
                core::mem::swap(&mut batch, &mut s.buf);
                let d = (s.dropped_bytes, s.dropped_lines);
                (s.dropped_bytes, s.dropped_lines) = (0, 0);
                d
            };
            if let Some(&last) = batch.last() {
                at_line_start = last == b'\n';
            }
            let mut result = out.write_all(&batch);
            if result.is_ok() && dropped_bytes > 0 {
                let report = std::format!(
                    "{}console: {dropped_lines} lines ({dropped_bytes} bytes) dropped: the output was not read fast enough\n",
                    if at_line_start { "" } else { "\n" },
                );
                at_line_start = true;
                result = out.write_all(report.as_bytes());
            }
            let result = result.and_then(|()| out.flush());
            if batch.capacity() > self.backlog.max(64 * 1024) {
                // A burst grew it; give the memory back.
                batch = Vec::new();
            }
            if result.is_err() {
                let mut s = self.lock();
                s.failed = true;
                s.busy = false;
                s.buf = Vec::new();
                self.drained.notify_all();
                return;
            }
            std::thread::sleep(GATHER);
        }
    }

    fn flush(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        let mut s = self.lock();
        loop {
            if s.failed || (s.buf.is_empty() && s.dropped_bytes == 0 && !s.busy) {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            s = self
                .drained
                .wait_timeout(s, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
