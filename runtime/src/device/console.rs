use core::fmt;

/// A console: the unikernel's text output (stdout on unix, the PV console ring on Xen).
///
/// # Contract
/// * [`write`](Console::write) MUST deliver all of `bytes`, in order, or none of them: it MUST
///   NOT write a prefix and then report success. When the operator's side reads more slowly
///   than the app writes, a write MAY be dropped whole rather than hold the app back; the
///   console then reports how many writes and bytes were lost once it has caught up (both
///   targets keep a bounded backlog: a request's log line never waits for the reader).
/// * Output from successive calls MUST appear in call order.
/// * A write SHOULD be on its way to the operator when the future completes: panics, faults
///   and boot errors are written synchronously (on Xen, after the backlog), so that a crash
///   right after a log line does not lose it.
/// * [`log`](Console::log) writes one line: the text followed by `\n`.
pub trait Console {
    /// Writes `bytes` to the console.
    async fn write(&self, bytes: &[u8]) -> Result<(), ConsoleError>;

    /// Writes `line` and a newline.
    async fn log(&self, line: &str) -> Result<(), ConsoleError> {
        self.write(line.as_bytes()).await?;
        self.write(b"\n").await
    }
}

/// The console could not take the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleError(pub &'static str);

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "console: {}", self.0)
    }
}

impl core::error::Error for ConsoleError {}
