//! Content types by file extension.

/// The `Content-Type` for a file named `key`, from its extension (case-insensitive). Text types
/// carry `; charset=utf-8`; anything unknown is `application/octet-stream`.
pub fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return DEFAULT;
    };
    if stem.is_empty() && !name[1..].contains('.') {
        // A dotfile such as `.htaccess` has no extension.
        return DEFAULT;
    }
    TABLE
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(DEFAULT, |(_, t)| t)
}

/// The type of files whose extension is not in the table.
pub const DEFAULT: &str = "application/octet-stream";

const TABLE: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "application/xml"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("a/b/site.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("data.json"), "application/json");
        assert_eq!(content_type("notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("logo.svg"), "image/svg+xml");
        assert_eq!(content_type("p.png"), "image/png");
        assert_eq!(content_type("p.jpg"), "image/jpeg");
        assert_eq!(content_type("p.gif"), "image/gif");
        assert_eq!(content_type("p.webp"), "image/webp");
        assert_eq!(content_type("favicon.ico"), "image/x-icon");
        assert_eq!(content_type("m.wasm"), "application/wasm");
        assert_eq!(content_type("doc.pdf"), "application/pdf");
        assert_eq!(content_type("f.woff2"), "font/woff2");
        assert_eq!(content_type("feed.xml"), "application/xml");
        assert_eq!(content_type("archive.tar.gz"), "application/gzip");
    }

    #[test]
    fn unknown_and_odd_names() {
        assert_eq!(content_type("README"), DEFAULT);
        assert_eq!(content_type("x.unknown"), DEFAULT);
        assert_eq!(content_type(".htaccess"), DEFAULT);
        assert_eq!(content_type("dir.html/file"), DEFAULT);
        assert_eq!(content_type("trailing."), DEFAULT);
        assert_eq!(content_type(".hidden.css"), "text/css; charset=utf-8");
        assert_eq!(content_type(""), DEFAULT);
    }
}
