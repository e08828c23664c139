//! notes: a small stateful service over HTTPS, kept in a `kv_rw` store.
//!
//! * `PUT /notes/<key>` with a body stores it: `201 Created` for a new key, `204 No Content` for
//!   a replaced one, answered only once the commit is durable.
//! * `GET /notes/<key>` returns the body (`404` if there is none); `HEAD` likewise.
//! * `DELETE /notes/<key>` removes it: `204`, or `404` if there was none.
//! * `GET /notes/` lists the keys, one per line, sorted.
//!
//! Keys are 1 to 128 characters of `[A-Za-z0-9._-]`, other than `.` and `..`; bodies are at most
//! 64 KiB. Anything else gets a 4xx (`400` for a bad key, `413` for a large body, `405` for
//! another method, `404` outside `/notes/`), and the store is not touched. A full store is
//! `507 Insufficient Storage`; any other store failure is a `500`, with the reason on the console.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use async_lock::Mutex;
use uni_http::{Bytes, Handler, Limits, Log, Record, Request, Response, Server};
use uni_runtime::device::net::Stack;
use uni_runtime::device::{Clock, Console, EntryKind, KvError, KvRw};
use uni_runtime::AppResult;
use uni_tls::Tls;

/// The longest key.
pub const MAX_KEY: usize = 128;
/// The largest body.
pub const MAX_BODY: u64 = 64 * 1024;

/// Entry point; the devices come from `unikernel.toml` in declaration order.
pub async fn start<S, C, K>(
    console: impl Console + Clone + 'static,
    _net: impl Stack,
    notes: K,
    _tls: Tls<S>,
    https: Server<Tls<S>, C>,
) -> AppResult
where
    S: Stack + Clone + 'static,
    C: Clock + Clone + 'static,
    K: KvRw + 'static,
{
    let keys = notes.list("").await?.len();
    let https = https
        .with_limits(Limits::default().max_body(MAX_BODY))
        .listen()
        .await?;
    console
        .log(&format!(
            "notes: {keys} notes; https: listening on {}",
            https.local_addr()
        ))
        .await?;
    let handler = Notes {
        store: Mutex::new(notes),
        console: console.clone(),
    };
    let Err(e) = https.serve(handler, RequestLog(console)).await;
    Err(e.into())
}

/// Whether `key` is a note's key.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY).contains(&key.len())
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

struct Notes<K, C> {
    store: Mutex<K>,
    console: C,
}

fn text(status: u16, body: String) -> Response<Bytes> {
    Response::new(status, Bytes::new(body.into_bytes()))
        .header("Content-Type", "text/plain; charset=utf-8")
}

impl<K: KvRw, C: Console> Notes<K, C> {
    /// A store failure as a response: `507` when full, else `500`, said on the console.
    async fn failed(&self, what: &str, e: KvError) -> Response<Bytes> {
        let _ = self.console.log(&format!("notes: {what}: {e}")).await;
        match e {
            KvError::NoSpace { .. } => text(507, format!("{e}\n")),
            _ => text(500, String::from("the store failed; see the console\n")),
        }
    }

    async fn list(&self) -> Response<Bytes> {
        let store = self.store.lock().await;
        match store.list("").await {
            Ok(entries) => {
                let mut body = String::new();
                for (name, kind) in entries {
                    if kind == EntryKind::Value {
                        body.push_str(&name);
                        body.push('\n');
                    }
                }
                text(200, body)
            }
            Err(e) => {
                drop(store);
                self.failed("listing", e).await
            }
        }
    }

    async fn note(&self, req: &Request<'_>, key: &str) -> Response<Bytes> {
        match req.method() {
            "GET" | "HEAD" => {
                let got = self.store.lock().await.get(key).await;
                match got {
                    Ok(v) => Response::new(200, Bytes::new(v))
                        .header("Content-Type", "application/octet-stream"),
                    Err(KvError::NotFound(_)) => Response::status(404),
                    Err(e) => self.failed(&format!("reading {key}"), e).await,
                }
            }
            "PUT" => {
                let mut store = self.store.lock().await;
                let existed = match store.exists(key).await {
                    Ok(e) => e.is_some(),
                    Err(e) => {
                        drop(store);
                        return self.failed(&format!("looking up {key}"), e).await;
                    }
                };
                let body: Vec<u8> = req.body().to_vec();
                match store.set(key, &body).await {
                    Ok(()) if existed => Response::status(204),
                    Ok(()) => Response::status(201).header("Location", format!("/notes/{key}")),
                    Err(e) => {
                        drop(store);
                        self.failed(&format!("storing {key}"), e).await
                    }
                }
            }
            "DELETE" => {
                let removed = self.store.lock().await.remove(key).await;
                match removed {
                    Ok(()) => Response::status(204),
                    Err(KvError::NotFound(_)) => Response::status(404),
                    Err(e) => self.failed(&format!("removing {key}"), e).await,
                }
            }
            _ => Response::status(405).header("Allow", "GET, HEAD, PUT, DELETE"),
        }
    }
}

impl<K: KvRw, C: Console> Handler for Notes<K, C> {
    type Body = Bytes;
    const TAKES_BODY: bool = true;

    async fn handle(&self, req: &Request<'_>) -> Response<Bytes> {
        let Some(rest) = req.path().strip_prefix("/notes/") else {
            return Response::status(404);
        };
        if rest.is_empty() {
            return match req.method() {
                "GET" | "HEAD" => self.list().await,
                _ => Response::status(405).header("Allow", "GET, HEAD"),
            };
        }
        if !valid_key(rest) {
            return text(
                400,
                format!("a key is 1 to {MAX_KEY} characters of A-Z a-z 0-9 . _ - (not . or ..)\n"),
            );
        }
        self.note(req, rest).await
    }
}

/// One console line per request.
struct RequestLog<C>(C);

impl<C: Console> Log for RequestLog<C> {
    async fn request(&self, record: &Record<'_>) {
        let _ = self.0.log(&format!("https: {record}")).await;
    }

    async fn error(&self, peer: Option<core::net::SocketAddr>, error: &uni_http::Error) {
        let line = match peer {
            Some(p) => format!("https: {p} error: {error}"),
            None => format!("https: accept failed: {error}"),
        };
        let _ = self.0.log(&line).await;
    }
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys() {
        for k in ["a", "todo.txt", "A-b_c.9", &"x".repeat(128)] {
            assert!(valid_key(k), "{k}");
        }
        for k in ["", ".", "..", "a/b", "a b", "ü", "a%2f", &"x".repeat(129)] {
            assert!(!valid_key(k), "{k}");
        }
    }
}
