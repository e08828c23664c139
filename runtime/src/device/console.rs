use core::fmt;

/// A console: the unikernel's text output (stdout on unix, the PV console ring on Xen).
///
/// # Contract
/// * [`write`](Console::write) MUST deliver all of `bytes`, in order, or return an error; it
///   MUST NOT write a prefix and then report success.
/// * Output from successive calls MUST appear in call order.
/// * A write SHOULD be visible to the operator when the future completes (flushed), so that a
///   crash right after a log line does not lose it.
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
