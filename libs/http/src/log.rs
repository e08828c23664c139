//! The request log: one [`Record`] per request, handed to a [`Log`].

use alloc::format;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use uni_runtime::device::Console;

use crate::Error;

/// One answered request, for the log. Its [`Display`](fmt::Display) is one line:
///
/// ```text
/// 10.0.0.254:51234 "GET /index.html HTTP/1.1" 200 1234 1.2ms
/// ```
///
/// (peer, request line, status, body bytes sent, time from the complete head to the last
/// byte written). A request whose head could not be parsed shows `"-"` as its request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The client.
    pub peer: SocketAddr,
    /// The method, or `""` when the head was refused unparsed.
    pub method: &'a str,
    /// The request target as sent, or `""`.
    pub target: &'a str,
    /// The HTTP minor version (1 for HTTP/1.1).
    pub minor_version: u8,
    /// The status sent.
    pub status: u16,
    /// The body bytes sent (0 for `HEAD` and `304`).
    pub bytes: u64,
    /// How long the response took.
    pub duration: Duration,
}

impl fmt::Display for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} \"", self.peer)?;
        if self.method.is_empty() {
            f.write_str("-")?;
        } else {
            // The target is visible ASCII (httparse checks); quotes and backslashes are escaped
            // so that the line stays parseable.
            write!(f, "{} ", self.method)?;
            for c in self.target.chars() {
                match c {
                    '"' | '\\' => write!(f, "\\{c}")?,
                    c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            write!(f, " HTTP/1.{}", self.minor_version)?;
        }
        write!(f, "\" {} {} ", self.status, self.bytes)?;
        let us = self.duration.as_micros();
        if us < 1_000_000 {
            write!(f, "{}.{}ms", us / 1000, us % 1000 / 100)
        } else {
            write!(f, "{}.{:02}s", us / 1_000_000, us % 1_000_000 / 10_000)
        }
    }
}

/// Where the server reports requests and connection errors.
///
/// Any [`Console`] is a `Log` (one line per request, and one per connection error); so is
/// [`NoLog`], and any `Fn(&Record)` wrapped in [`LogFn`].
pub trait Log {
    /// Called once per answered request, after its response was written (or failed).
    async fn request(&self, record: &Record<'_>);

    /// Called when a connection ends with an error (`peer` is `None` for a failed accept).
    /// Does nothing unless overridden.
    async fn error(&self, peer: Option<SocketAddr>, error: &Error) {
        let _ = (peer, error);
    }
}

impl<C: Console> Log for C {
    async fn request(&self, record: &Record<'_>) {
        let _ = self.log(&format!("{record}")).await;
    }

    async fn error(&self, peer: Option<SocketAddr>, error: &Error) {
        let line = match peer {
            Some(p) => format!("{p} error: {error}"),
            None => format!("http: accept failed: {error}"),
        };
        let _ = self.log(&line).await;
    }
}

/// A log that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLog;

impl Log for NoLog {
    async fn request(&self, _: &Record<'_>) {}
}

/// A log that calls a function with each record (errors are dropped).
#[derive(Debug, Clone, Copy)]
pub struct LogFn<F>(pub F);

impl<F: Fn(&Record<'_>)> Log for LogFn<F> {
    async fn request(&self, record: &Record<'_>) {
        (self.0)(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn rec(method: &'static str, target: &'static str, us: u64) -> Record<'static> {
        Record {
            peer: "10.0.0.254:51234".parse().unwrap(),
            method,
            target,
            minor_version: 1,
            status: 200,
            bytes: 1234,
            duration: Duration::from_micros(us),
        }
    }

    #[test]
    fn one_line() {
        assert_eq!(
            rec("GET", "/index.html", 1234).to_string(),
            "10.0.0.254:51234 \"GET /index.html HTTP/1.1\" 200 1234 1.2ms"
        );
        assert_eq!(
            rec("GET", "/", 56).to_string(),
            "10.0.0.254:51234 \"GET / HTTP/1.1\" 200 1234 0.0ms"
        );
        assert_eq!(
            rec("HEAD", "/a\"b", 2_345_678).to_string(),
            "10.0.0.254:51234 \"HEAD /a\\\"b HTTP/1.1\" 200 1234 2.34s"
        );
        let mut r = rec("", "", 10);
        r.status = 400;
        r.bytes = 12;
        assert_eq!(r.to_string(), "10.0.0.254:51234 \"-\" 400 12 0.0ms");
    }

    /// A console that keeps what is written to it.
    #[derive(Default)]
    struct Recorder(core::cell::RefCell<alloc::vec::Vec<u8>>);

    impl Console for Recorder {
        async fn write(&self, bytes: &[u8]) -> Result<(), uni_runtime::device::ConsoleError> {
            self.0.borrow_mut().extend_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn a_console_is_a_log() {
        let console = Recorder::default();
        futures_lite::future::block_on(async {
            console.request(&rec("GET", "/", 1500)).await;
            let peer = Some("10.0.0.254:51234".parse().unwrap());
            console
                .error(peer, &Error::TimedOut(crate::Phase::Head))
                .await;
            console
                .error(
                    None,
                    &Error::Net(uni_runtime::device::net::NetError::Exhausted),
                )
                .await;
            NoLog.request(&rec("GET", "/", 1)).await;
            NoLog
                .error(None, &Error::TimedOut(crate::Phase::Idle))
                .await;
        });
        assert_eq!(
            alloc::string::String::from_utf8(console.0.into_inner()).unwrap(),
            "10.0.0.254:51234 \"GET / HTTP/1.1\" 200 1234 1.5ms\n\
             10.0.0.254:51234 error: timed out waiting for the request head\n\
             http: accept failed: network: out of sockets or buffers\n"
        );
    }
}
