//! A TLS echo server, and a small TLS client.
//!
//! * Server (default): listens on `--port` (default 4433). Each client's bytes come back
//!   until it closes. A client that opens with an HTTP request line (curl) gets one HTTP
//!   response whose body is its request body, or its request head when there is no body.
//! * Client: `--connect=ADDR:PORT --host=NAME` connects `--connections` times (default 1),
//!   authenticating the server with the tls device's `ca` (the host name is always checked),
//!   or with `--pin=HEX` (SHA-256 of the server's certificate), or with the device's `pins`
//!   when it has some. Each connection prints what
//!   was negotiated, sends `--message` and prints the first reply.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use uni_runtime::device::net::{Flow, Stack};
use uni_runtime::device::Console;
use uni_runtime::{AppResult, BootArgs};
use uni_tls::auth::{self, FingerprintHash};
use uni_tls::{SessionInfo, Tls, TlsError, TlsFlow};

/// Entry point; the devices come from `unikernel.toml` in declaration order.
pub async fn start<S: Stack + 'static>(
    console: impl Console + Clone + 'static,
    _net: impl Stack,
    tls: Tls<S>,
    args: BootArgs,
) -> AppResult {
    if let Some(target) = args.get("connect") {
        return client(console, tls, &args, target).await;
    }
    let port: u16 = args.get_or("port", 4433)?;
    let listener = tls.listen(port).await?;
    console
        .log(&format!("tls-echo: listening on {}", listener.local_addr()))
        .await?;
    loop {
        let (flow, peer) = listener.accept().await?;
        let console = console.clone();
        uni_runtime::task::spawn(async move {
            let line = match serve(flow, &console).await {
                Ok(n) => format!("tls-echo: {peer}: {n} bytes echoed"),
                Err(e) => format!("tls-echo: {peer}: {e}"),
            };
            let _ = console.log(&line).await;
        });
    }
}

fn describe(i: &SessionInfo) -> String {
    let alpn = i.alpn.as_deref().map(String::from_utf8_lossy);
    format!(
        "{:?} {:?} {:?} resumed={} alpn={}",
        i.version
            .unwrap_or(uni_tls::rustls::ProtocolVersion::Unknown(0)),
        i.cipher_suite
            .unwrap_or(uni_tls::rustls::CipherSuite::Unknown(0)),
        i.kx_group
            .unwrap_or(uni_tls::rustls::NamedGroup::Unknown(0)),
        i.resumed,
        alpn.as_deref().unwrap_or("-")
    )
}

async fn serve<F: Flow>(mut flow: TlsFlow<F>, console: &impl Console) -> Result<u64, TlsError> {
    flow.handshake().await?;
    let peer = flow.peer_addr();
    let _ = console
        .log(&format!("tls-echo: {peer}: {}", describe(&flow.info())))
        .await;
    let mut buf = alloc::vec![0u8; 16 * 1024];
    let mut total = 0u64;
    let n = flow.read_tls(&mut buf).await?;
    if is_http(&buf[..n]) {
        return http_echo(flow, buf, n).await;
    }
    let mut n = n;
    while n > 0 {
        flow.write_tls(&buf[..n]).await?;
        total += n as u64;
        n = flow.read_tls(&mut buf).await?;
    }
    flow.close().await.map_err(TlsError::Net)?;
    Ok(total)
}

fn is_http(first: &[u8]) -> bool {
    ["GET ", "POST ", "PUT ", "HEAD "]
        .iter()
        .any(|m| first.starts_with(m.as_bytes()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/1.1 exchange: the response body is the request body, or the request head.
async fn http_echo<F: Flow>(
    mut flow: TlsFlow<F>,
    mut buf: Vec<u8>,
    n: usize,
) -> Result<u64, TlsError> {
    let mut req: Vec<u8> = buf[..n].to_vec();
    let head_end = loop {
        if let Some(p) = find(&req, b"\r\n\r\n") {
            break p + 4;
        }
        let m = flow.read_tls(&mut buf).await?;
        if m == 0 || req.len() > 64 * 1024 {
            return Ok(0);
        }
        req.extend_from_slice(&buf[..m]);
    };
    let head = String::from_utf8_lossy(&req[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while req.len() < head_end + len {
        let m = flow.read_tls(&mut buf).await?;
        if m == 0 {
            break;
        }
        req.extend_from_slice(&buf[..m]);
    }
    let body: &[u8] = if len > 0 {
        &req[head_end..req.len().min(head_end + len)]
    } else {
        &req[..head_end]
    };
    let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    flow.write_tls(resp.as_bytes()).await?;
    flow.write_tls(body).await?;
    flow.close().await.map_err(TlsError::Net)?;
    Ok(body.len() as u64)
}

async fn client<S: Stack>(
    console: impl Console,
    tls: Tls<S>,
    args: &BootArgs,
    target: &str,
) -> AppResult {
    let addr: SocketAddr = target
        .parse()
        .map_err(|_| format!("--connect={target}: expected ADDRESS:PORT"))?;
    let host = args.get("host").unwrap_or("localhost");
    let connections: u32 = args.get_or("connections", 1)?;
    let message = args.get("message").unwrap_or("hello from uni");
    let authenticator = match args.get("pin") {
        Some(pin) => {
            let fp = auth::parse_fingerprint(pin)
                .ok_or_else(|| format!("--pin={pin}: expected a hex SHA-256 fingerprint"))?;
            auth::server_fingerprint(FingerprintHash::Sha256, alloc::vec![fp], tls.provider())
                .map_err(|e| format!("--pin={pin}: {e}"))?
        }
        None if !tls.pins().is_empty() => tls.pinned()?,
        None => tls.chain_of_trust()?,
    };
    let config = tls.client_config(authenticator)?;
    for i in 0..connections {
        let mut flow = match tls.connect(addr, host, config.clone()).await {
            Ok(f) => f,
            Err(e) => {
                console
                    .log(&format!("tls-echo: connection {i}: {e}"))
                    .await?;
                return Err(e.into());
            }
        };
        console
            .log(&format!(
                "tls-echo: connection {i}: {}",
                describe(&flow.info())
            ))
            .await?;
        flow.write_tls(format!("{message}\n").as_bytes()).await?;
        let mut buf = alloc::vec![0u8; 4096];
        let n = flow.read_tls(&mut buf).await?;
        console
            .log(&format!(
                "tls-echo: reply: {}",
                String::from_utf8_lossy(&buf[..n]).trim_end()
            ))
            .await?;
        flow.close().await?;
    }
    Ok(())
}
