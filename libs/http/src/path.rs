//! Turning a request path into a key of a [`KvRo`](uni_runtime::device::KvRo) store.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a request path cannot name a key. Each is answered with `400 Bad Request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A `%` is not followed by two hex digits.
    BadEscape,
    /// The decoded path is not UTF-8.
    NotUtf8,
    /// The decoded path holds a NUL or another control character.
    ControlCharacter,
    /// A `/` or `\` was percent-encoded, which could smuggle a separator past the segment checks.
    EncodedSeparator,
    /// A segment is `.`, `..`, or empty (`//`).
    BadSegment,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "path does not start with /",
            PathError::BadEscape => "malformed percent-escape",
            PathError::NotUtf8 => "path is not UTF-8 once decoded",
            PathError::ControlCharacter => "path holds a control character",
            PathError::EncodedSeparator => "path holds an encoded / or \\",
            PathError::BadSegment => "path has a ., .. or empty segment",
        })
    }
}

impl core::error::Error for PathError {}

/// A decoded request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPath {
    /// The key: the decoded path without its leading `/` (and without a trailing one).
    pub key: String,
    /// Whether the path ended in `/` (it names a directory). The root `/` does.
    pub directory: bool,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `path` (the request target without its query) into a key.
///
/// The path MUST start with `/`. Escapes decode to bytes that together MUST be UTF-8. NUL and
/// other control characters, encoded `/` and `\`, and `.`, `..` and empty segments are
/// refused, so a key never leaves the store's root and one path has one spelling.
pub fn decode(path: &str) -> Result<DecodedPath, PathError> {
    let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let (rest, directory) = match rest.strip_suffix('/') {
        Some(r) => (r, true),
        None => (rest, rest.is_empty()),
    };
    let mut bytes = Vec::with_capacity(rest.len());
    let raw = rest.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let h = raw.get(i + 1).copied().and_then(hex);
            let l = raw.get(i + 2).copied().and_then(hex);
            let (Some(h), Some(l)) = (h, l) else {
                return Err(PathError::BadEscape);
            };
            let d = h << 4 | l;
            if d == b'/' || d == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            bytes.push(d);
            i += 3;
        } else {
            bytes.push(b);
            i += 1;
        }
    }
    let key = String::from_utf8(bytes).map_err(|_| PathError::NotUtf8)?;
    if key.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if !key.is_empty()
        && key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(PathError::BadSegment);
    }
    if rest.is_empty() && directory && path.len() > 1 {
        // "//": an empty segment.
        return Err(PathError::BadSegment);
    }
    Ok(DecodedPath { key, directory })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> (String, bool) {
        let d = decode(p).unwrap();
        (d.key, d.directory)
    }

    #[test]
    fn plain_and_directories() {
        assert_eq!(ok("/"), ("".into(), true));
        assert_eq!(ok("/index.html"), ("index.html".into(), false));
        assert_eq!(ok("/docs/"), ("docs".into(), true));
        assert_eq!(ok("/docs"), ("docs".into(), false));
        assert_eq!(ok("/a/b/c.css"), ("a/b/c.css".into(), false));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(ok("/a%20b.txt"), ("a b.txt".into(), false));
        assert_eq!(ok("/caf%C3%A9/%e2%82%ac.txt"), ("café/€.txt".into(), false));
        assert_eq!(ok("/100%25"), ("100%".into(), false));
        assert_eq!(ok("/r%C3%A9sum%C3%A9/"), ("résumé".into(), true));
        assert_eq!(
            ok("/a+b"),
            ("a+b".into(), false),
            "+ is not a space in a path"
        );
    }

    #[test]
    fn refusals() {
        use PathError::*;
        for (p, e) in [
            ("index.html", NotAbsolute),
            ("", NotAbsolute),
            ("/%", BadEscape),
            ("/%2", BadEscape),
            ("/%zz", BadEscape),
            ("/%C3", NotUtf8),
            ("/%ff", NotUtf8),
            ("/a%00b", ControlCharacter),
            ("/a%0d%0a", ControlCharacter),
            ("/a%2fb", EncodedSeparator),
            ("/a%2Fb", EncodedSeparator),
            ("/..%2fetc", EncodedSeparator),
            ("/a%5cb", EncodedSeparator),
            ("/..", BadSegment),
            ("/../etc/passwd", BadSegment),
            ("/a/../b", BadSegment),
            ("/%2e%2e/x", BadSegment),
            ("/a/%2E%2E", BadSegment),
            ("/./a", BadSegment),
            ("/a//b", BadSegment),
            ("//", BadSegment),
            ("/a/./", BadSegment),
        ] {
            assert_eq!(decode(p), Err(e), "{p:?}");
        }
    }
}
