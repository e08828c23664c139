//! Entity tags: making a strong ETag from a digest, and matching `If-None-Match`.

use alloc::string::String;

/// A strong entity tag for a value with hex digest `digest`: the digest, quoted.
pub fn from_digest(digest: &str) -> String {
    let mut tag = String::with_capacity(digest.len() + 2);
    tag.push('"');
    // A digest is hex; anything else is dropped so that the tag stays a valid header value.
    tag.extend(digest.chars().filter(|c| c.is_ascii_alphanumeric()));
    tag.push('"');
    tag
}

/// Whether an `If-None-Match` header value matches the entity tag `etag` (quoted, as
/// [`from_digest`] makes it), so that the response is `304 Not Modified`.
///
/// `*` matches any tag. Otherwise the value is a comma-separated list of tags, compared with
/// the weak comparison RFC 9110 §13.1.2 prescribes for `If-None-Match` (a `W/` prefix is
/// ignored). Malformed list members match nothing.
pub fn none_match(header: &[u8], etag: &str) -> bool {
    let Ok(header) = core::str::from_utf8(header) else {
        return false;
    };
    if header.trim() == "*" {
        return true;
    }
    let ours = etag.strip_prefix("W/").unwrap_or(etag);
    header.split(',').map(str::trim).any(|member| {
        let tag = member.strip_prefix("W/").unwrap_or(member);
        tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"') && tag == ours
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_quoted_digest() {
        assert_eq!(from_digest("ab12"), "\"ab12\"");
        assert_eq!(from_digest("a\"b\r\n"), "\"ab\"");
    }

    #[test]
    fn matching() {
        let tag = from_digest("abc");
        assert!(none_match(b"\"abc\"", &tag));
        assert!(none_match(b"*", &tag));
        assert!(none_match(b" * ", &tag));
        assert!(none_match(b"\"x\", \"abc\"", &tag));
        assert!(none_match(b"\"x\",\"abc\" , \"y\"", &tag));
        assert!(
            none_match(b"W/\"abc\"", &tag),
            "If-None-Match compares weakly"
        );
        assert!(!none_match(b"\"abcd\"", &tag));
        assert!(!none_match(b"abc", &tag), "unquoted is malformed");
        assert!(!none_match(b"\"", &tag));
        assert!(!none_match(b"", &tag));
        assert!(!none_match(b"\"x\", *", &tag), "* only on its own");
        assert!(!none_match(b"\xff\"abc\"", &tag));
    }
}
