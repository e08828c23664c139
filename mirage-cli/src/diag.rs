//! Config errors that read like rustc's: `error: …`, ` --> file:line:col`, the offending line
//! with a caret, and what is accepted.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{Level, Renderer, Snippet};

/// One error in a `unikernel.toml`, pointing at the bytes it is about.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// The file's text.
    pub source: String,
    /// The bytes the error is about.
    pub span: Range<usize>,
    /// The key path, like `devices.net.ipv4`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// A short label under the caret.
    pub label: String,
    /// What would be accepted, if there is a finite or describable set.
    pub accepted: Option<String>,
}

impl Diagnostic {
    /// 1-based line and column of the span's start (as shown: see [`clamp`]).
    pub fn line_col(&self) -> (usize, usize) {
        let source = shown(&self.source);
        line_col(&source, clamp(&source, self.span.clone()).start)
    }

    /// Renders the diagnostic, with colour when `color` is set.
    pub fn render(&self, color: bool) -> String {
        let (line, col) = self.line_col();
        let title = if self.key.is_empty() {
            self.message.clone()
        } else {
            format!("`{}`: {}", self.key, self.message)
        };
        let origin = self.file.display().to_string();
        // annotate-snippets 0.11 overflows computing margins for long lines, tabs and other
        // control characters (found by the fuzzer). So it is given only the offending line,
        // sanitized (control characters become spaces of the same byte length) and cut to a
        // window around the caret; the location line is written here.
        let source = shown(&self.source);
        let span = clamp(&source, self.span.clone());
        let (window, wspan) = window(&source, span);
        let mut msg = Level::Error.title(&title).snippet(
            Snippet::source(&window)
                .line_start(line)
                .annotation(Level::Error.span(wspan).label(&self.label)),
        );
        if let Some(acc) = &self.accepted {
            msg = msg.footer(Level::Help.title(acc));
        }
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let text = renderer.render(msg).to_string();
        let width = line.to_string().len();
        match text.split_once('\n') {
            Some((head, rest)) => format!("{head}\n{:width$}--> {origin}:{line}:{col}\n{rest}", ""),
            None => format!("{text}\n{:width$}--> {origin}:{line}:{col}", ""),
        }
    }
}

/// Characters of context kept on each side of the caret.
const CONTEXT: usize = 48;

/// The line holding `span.start`, cut to at most `CONTEXT` characters either side of it (with
/// `...` where cut), and the span relative to that text, within the line.
fn window(src: &str, span: Range<usize>) -> (String, Range<usize>) {
    let line_start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[span.start..]
        .find('\n')
        .map_or(src.len(), |i| span.start + i);
    let line = &src[line_start..line_end];
    let at = span.start - line_start;
    let end = span.end.min(line_end) - line_start;
    let before: Vec<(usize, char)> = line[..at].char_indices().collect();
    let from = if before.len() > CONTEXT {
        before[before.len() - CONTEXT].0
    } else {
        0
    };
    let to = line[at..]
        .char_indices()
        .nth(CONTEXT)
        .map_or(line.len(), |(i, _)| at + i)
        .max(end.min(line.len()));
    let to = line[..to]
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .rfind(|&i| i <= at + 4 * CONTEXT)
        .unwrap_or(to)
        .max(at);
    let prefix = if from > 0 { "..." } else { "" };
    let suffix = if to < line.len() { "..." } else { "" };
    let text = format!("{prefix}{}{suffix}", &line[from..to]);
    let s = prefix.len() + at - from;
    let e = (prefix.len() + end.min(to).max(at) - from).max(s);
    let e = if e == s {
        s + line[at..to].chars().next().map_or(0, char::len_utf8)
    } else {
        e
    };
    (text, s..e)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics from one file, reported together.
#[derive(Debug)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Prints every diagnostic to stderr, coloured on a terminal.
    pub fn eprint(&self) {
        let color = stderr_color();
        for d in &self.0 {
            eprintln!("{}\n", d.render(color));
        }
        let n = self.0.len();
        if let Some(first) = self.0.first() {
            eprintln!(
                "{}: could not load `{}` due to {n} previous error{}",
                error_word(color),
                first.file.display(),
                if n == 1 { "" } else { "s" }
            );
        }
    }
}

/// Whether what uni writes to stderr gets colour, decided as cargo and clap decide it
/// (anstream): never with `NO_COLOR` set, always with `CLICOLOR_FORCE` set (not `0`), never with
/// `CLICOLOR=0`, else on a terminal (whose `TERM` is not `dumb`).
pub fn stderr_color() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

/// `error`, bold red when `color`, as rustc and cargo print it.
fn error_word(color: bool) -> &'static str {
    if color {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    }
}

/// Prints an error that is not a config diagnostic to stderr: `error: …` (coloured as
/// [`stderr_color`] says), then each cause on a line of its own.
pub fn eprint_error(e: &anyhow::Error) {
    eprintln!("{}: {e}", error_word(stderr_color()));
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A builder for diagnostics in one file.
#[derive(Debug, Clone)]
pub struct Source {
    pub file: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(file: &Path, text: String) -> Source {
        Source {
            file: file.to_path_buf(),
            text,
        }
    }

    pub fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
        label: impl Into<String>,
        accepted: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            source: self.text.clone(),
            span,
            key: key.into(),
            message: message.into(),
            label: label.into(),
            accepted,
        }
    }
}

/// A serde path as a config key path: `devices.web.port` (serde's names for spanned values and
/// unknown map keys left out).
pub fn key_path(path: &serde_path_to_error::Path) -> String {
    path.iter()
        .map(|s| s.to_string())
        .filter(|s| !s.starts_with("$__") && s != "?")
        .collect::<Vec<_>>()
        .join(".")
}

/// A toml or serde error as a diagnostic at its span, under key path `key`.
pub fn toml_error(src: &Source, e: &toml::de::Error, key: String) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let raw = e.message().trim().to_string();
    // serde's wording: "unknown field `x`, expected one of `a`, `b`": split into what is wrong
    // and what is accepted.
    let (message, accepted) = match raw.split_once(", expected ") {
        Some((what, acc)) => (what.to_string(), Some(format!("expected {acc}"))),
        None => (raw.clone(), None),
    };
    let label = if message.starts_with("unknown field") {
        "unknown key".to_string()
    } else if message.starts_with("missing field") {
        "in this table".to_string()
    } else if message.starts_with("invalid type") {
        "wrong type".to_string()
    } else {
        "here".to_string()
    };
    let message = message.replace("field", "key");
    src.error(span, key, message, label, accepted)
}

/// The source as displayed: control characters other than newlines become spaces.
fn shown(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for c in src.chars() {
        if c.is_control() && c != '\n' {
            // as many spaces as the character has bytes, so byte offsets still line up
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

/// `span` inside `src`, on character boundaries, and at least one character wide where the
/// source has one (a parser's empty span at a multi-byte character must not split it). A span
/// that starts in a line's indentation moves to the line's first token (or its end):
/// annotate-snippets 0.11 overflows on carets inside the indentation of long lines (found by
/// the fuzzer), and the token is what the error is about anyway.
fn clamp(src: &str, span: Range<usize>) -> Range<usize> {
    let mut start = floor_boundary(src, span.start);
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    if src[line_start..start].chars().all(char::is_whitespace) {
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        start = src[start..line_end]
            .find(|c: char| !c.is_whitespace())
            .map_or(line_end, |i| start + i);
    }
    let mut end = span.end.clamp(start, src.len());
    while !src.is_char_boundary(end) {
        end += 1;
    }
    if start == end {
        end += src[start..].chars().next().map_or(0, char::len_utf8);
    }
    start..end
}

fn floor_boundary(src: &str, at: usize) -> usize {
    let mut at = at.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// 1-based line and column (in characters) of byte offset `at`.
pub fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..floor_boundary(src, at)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_inside_multibyte_characters_render() {
        let src = "name = \"h\u{e9}llo\"\n\u{1F600}";
        for at in 0..=src.len() + 2 {
            let d = Source::new(Path::new("u.toml"), src.into()).error(at..at, "k", "m", "l", None);
            assert!(d.render(false).contains("error"));
            d.line_col();
        }
    }

    #[test]
    fn tabs_and_long_lines_render() {
        // Found by cargo fuzz: tabs before a long line made annotate-snippets overflow.
        let crs = "\r\r\r\r \r\r\u{c}\r \r\u{85}\r\u{fffd}\u{fffd}\r\r#\r# \n";
        let src = format!(
            "# x\t\n{crs}{}[unikernel]{} port is--p\u{fffd}ort{} 3= \"echo\"\n",
            "\t".repeat(40),
            "\t".repeat(40),
            "\u{fffd}".repeat(30)
        );
        for at in 0..src.len() + 1 {
            let d =
                Source::new(Path::new("u.toml"), src.clone()).error(at..at, "k", "m", "l", None);
            assert!(d.render(false).contains("error"));
        }
    }

    #[test]
    fn line_col_counts_from_one() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 11), (2, 6));
    }
}
