//! The sans-IO core: bytes in, bytes out, plaintext and status.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use pki_types::{CertificateDer, ServerName};
use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};

use crate::error::{Failure, TlsError};

/// Where a session is.
#[must_use]
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The handshake is under way.
    Handshaking,
    /// Application data flows both ways.
    Established,
    /// The peer sent `close_notify`: it will send nothing more; we may still send.
    PeerClosed,
    /// Both sides sent `close_notify`.
    Closed,
}

/// What one call of [`Session::handle`] produced.
#[must_use]
#[derive(Debug, Default)]
pub struct Output {
    /// Bytes to send to the peer, in order.
    pub to_send: Vec<u8>,
    /// Application data received.
    pub data: Vec<u8>,
    /// The status after this input.
    pub status: Option<Status>,
}

/// What was negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: Option<rustls::ProtocolVersion>,
    /// The cipher suite.
    pub cipher_suite: Option<rustls::CipherSuite>,
    /// The key-exchange group.
    pub kx_group: Option<rustls::NamedGroup>,
    /// The ALPN protocol agreed.
    pub alpn: Option<Vec<u8>>,
    /// Whether this was a resumed session.
    pub resumed: bool,
    /// The peer's certificate chain, end entity first.
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// One TLS connection, without IO.
///
/// ```ignore
/// let mut s = Session::client(config, "example.com")?;
/// let hello = s.handle(&[])?;            // the ClientHello is in hello.to_send
/// let out = s.handle(&bytes_from_peer)?;  // more to send, plaintext, status
/// let records = s.send(b"GET / HTTP/1.0\r\n\r\n")?;
/// ```
pub struct Session {
    conn: Conn,
    incoming: Vec<u8>,
    /// Plaintext queued until the handshake completes.
    pending: Vec<u8>,
    close_queued: bool,
    close_sent: bool,
    status: Status,
    /// Plaintext decrypted during `send`/`close`, handed out by the next `handle`.
    stashed: Vec<u8>,
    /// The first failure: every later call returns it (rustls must not be driven again
    /// after its fatal alert; found by fuzz/ `tls_server`).
    failed: Option<TlsError>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

trait Unbuffered {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// Appends what `f` writes to `out`, growing the buffer as rustls asks.
fn append<E>(
    out: &mut Vec<u8>,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needed: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let start = out.len();
    let mut room = 4096;
    loop {
        out.resize(start + room, 0);
        match f(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match needed(&e) {
                Some(req) if req > room => room = req,
                _ => {
                    out.truncate(start);
                    return Err(e);
                }
            },
        }
    }
}

fn encode_needed(e: &EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

fn encrypt_needed(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

struct Io<'a> {
    incoming: &'a mut Vec<u8>,
    pending: &'a mut Vec<u8>,
    close_queued: bool,
    close_sent: &'a mut bool,
    status: &'a mut Status,
    out: &'a mut Output,
}

fn pump<C: Unbuffered>(conn: &mut C, io: Io<'_>) -> Result<(), rustls::Error> {
    loop {
        let UnbufferedStatus { mut discard, state } = conn.process(&mut io.incoming[..]);
        let mut stop = false;
        match state {
            Err(e) => {
                io.incoming.drain(..discard);
                return Err(e);
            }
            Ok(ConnectionState::ReadTraffic(mut r)) => {
                while let Some(rec) = r.next_record() {
                    let rec = rec?;
                    discard += rec.discard;
                    io.out.data.extend_from_slice(rec.payload);
                }
            }
            Ok(ConnectionState::ReadEarlyData(_)) => {
                // Servers are configured with max_early_data_size = 0, so this cannot happen.
                return Err(rustls::Error::General("0-RTT data is not accepted".into()));
            }
            Ok(ConnectionState::EncodeTlsData(mut e)) => {
                append(&mut io.out.to_send, |b| e.encode(b), encode_needed)
                    .map_err(|e| rustls::Error::General(alloc::format!("{e}")))?;
            }
            Ok(ConnectionState::TransmitTlsData(t)) => t.done(),
            Ok(ConnectionState::BlockedHandshake) => stop = true,
            Ok(ConnectionState::WriteTraffic(mut w)) => {
                if *io.status == Status::Handshaking {
                    *io.status = Status::Established;
                }
                if !io.pending.is_empty() {
                    append(
                        &mut io.out.to_send,
                        |b| w.encrypt(io.pending, b),
                        encrypt_needed,
                    )
                    .map_err(|e| rustls::Error::General(alloc::format!("{e}")))?;
                    io.pending.clear();
                }
                if io.close_queued && !*io.close_sent {
                    append(
                        &mut io.out.to_send,
                        |b| w.queue_close_notify(b),
                        encrypt_needed,
                    )
                    .map_err(|e| rustls::Error::General(alloc::format!("{e}")))?;
                    *io.close_sent = true;
                }
                stop = true;
            }
            Ok(ConnectionState::PeerClosed) => {
                *io.status = Status::PeerClosed;
            }
            Ok(ConnectionState::Closed) => {
                *io.status = Status::Closed;
                stop = true;
            }
            Ok(_) => stop = true,
        }
        io.incoming.drain(..discard);
        if stop {
            return Ok(());
        }
    }
}

/// After an error rustls has queued a fatal alert: collect it, with whatever was queued before
/// it. In TLS 1.3 a server that fails after ServerHello (no common signature scheme, no ALPN
/// overlap) has ServerHello, ChangeCipherSpec and the alert (encrypted with the handshake
/// keys) queued as separate chunks, and each call of `process` hands out one: keep calling
/// while rustls has something queued (`wants_write`). A call with nothing queued would
/// process the remaining input again (and, on garbage, raise a second alert), so none is
/// made. `incoming` must be the buffer of the failed call (rustls remembers positions in it).
fn drain_alert<C>(conn: &mut C, incoming: &mut [u8], to_send: &mut Vec<u8>)
where
    C: Unbuffered + core::ops::Deref,
    C::Target: core::ops::Deref<Target = rustls::CommonState>,
{
    while conn.wants_write() {
        let UnbufferedStatus { state, .. } = conn.process(incoming);
        match state {
            Ok(ConnectionState::EncodeTlsData(mut e)) => {
                if append(to_send, |b| e.encode(b), encode_needed).is_err() {
                    return;
                }
            }
            Ok(ConnectionState::TransmitTlsData(t)) => t.done(),
            _ => return,
        }
    }
}

impl Session {
    /// A client session for `server_name` (a DNS name or an IP address). Call
    /// [`handle`](Session::handle) with no input to get the ClientHello.
    pub fn client(config: Arc<ClientConfig>, server_name: &str) -> Result<Session, TlsError> {
        let name = ServerName::try_from(String::from(server_name)).map_err(|_| {
            TlsError::Config(alloc::format!(
                "`{server_name}` is not a valid DNS name or IP address"
            ))
        })?;
        let conn = UnbufferedClientConnection::new(config, name).map_err(TlsError::from_rustls)?;
        Ok(Session::new(Conn::Client(conn)))
    }

    /// A server session.
    pub fn server(config: Arc<ServerConfig>) -> Result<Session, TlsError> {
        let conn = UnbufferedServerConnection::new(config).map_err(TlsError::from_rustls)?;
        Ok(Session::new(Conn::Server(conn)))
    }

    fn new(conn: Conn) -> Session {
        Session {
            conn,
            incoming: Vec::new(),
            pending: Vec::new(),
            close_queued: false,
            close_sent: false,
            status: Status::Handshaking,
            stashed: Vec::new(),
            failed: None,
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Output, Failure> {
        if let Some(error) = &self.failed {
            return Err(Failure {
                error: error.clone(),
                to_send: Vec::new(),
            });
        }
        self.incoming.extend_from_slice(input);
        let mut out = Output::default();
        // While handshaking, our authenticators (a client's, or a server's check of client
        // certificates) may explain a rejection: hold the gate so that the explanation they
        // leave is this session's (see `auth`).
        let gate = (self.status == Status::Handshaking).then(crate::auth::gate);
        let io = Io {
            incoming: &mut self.incoming,
            pending: &mut self.pending,
            close_queued: self.close_queued,
            close_sent: &mut self.close_sent,
            status: &mut self.status,
            out: &mut out,
        };
        let r = match &mut self.conn {
            Conn::Client(c) => pump(c, io),
            Conn::Server(c) => pump(c, io),
        };
        let explained = gate.as_ref().and_then(|_| crate::auth::take_rejection());
        drop(gate);
        match r {
            Ok(()) => {
                out.status = Some(self.status);
                Ok(out)
            }
            Err(e) => {
                let mut to_send = core::mem::take(&mut out.to_send);
                match &mut self.conn {
                    Conn::Client(c) => drain_alert(c, &mut self.incoming, &mut to_send),
                    Conn::Server(c) => drain_alert(c, &mut self.incoming, &mut to_send),
                }
                let error = match (e, explained) {
                    (rustls::Error::InvalidCertificate(_), Some(r)) => TlsError::Certificate(r),
                    (e, _) => TlsError::from_rustls(e),
                };
                self.failed = Some(error.clone());
                Err(Failure { error, to_send })
            }
        }
    }

    /// Feeds bytes received from the peer (possibly none, to start a client's handshake).
    /// Returns the bytes to send, the plaintext received and the new status; on failure, the
    /// error and the alert to send.
    pub fn handle(&mut self, input: &[u8]) -> Result<Output, Failure> {
        let mut out = self.run(input)?;
        if !self.stashed.is_empty() {
            let mut data = core::mem::take(&mut self.stashed);
            data.extend_from_slice(&out.data);
            out.data = data;
        }
        Ok(out)
    }

    /// Encrypts `data` for the peer. Before the handshake completes the data is queued and
    /// sent as soon as it does. Returns the records to send (and anything else pending).
    pub fn send(&mut self, data: &[u8]) -> Result<Vec<u8>, Failure> {
        self.pending.extend_from_slice(data);
        let out = self.run(&[])?;
        self.stash(out.data);
        Ok(out.to_send)
    }

    /// Queues `close_notify` and returns the bytes to send.
    pub fn close(&mut self) -> Result<Vec<u8>, Failure> {
        self.close_queued = true;
        let out = self.run(&[])?;
        self.stash(out.data);
        Ok(out.to_send)
    }

    fn stash(&mut self, data: Vec<u8>) {
        // `send` and `close` feed no input, but rustls may still decrypt a record it had
        // buffered; keep that plaintext for the next `handle`, so nothing is lost.
        if !data.is_empty() {
            self.stashed.extend_from_slice(&data);
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether this is the client side.
    pub fn is_client(&self) -> bool {
        matches!(self.conn, Conn::Client(_))
    }

    /// What was negotiated so far.
    pub fn info(&self) -> SessionInfo {
        let common: &rustls::CommonState = match &self.conn {
            Conn::Client(c) => c,
            Conn::Server(c) => c,
        };
        SessionInfo {
            version: common.protocol_version(),
            cipher_suite: common.negotiated_cipher_suite().map(|s| s.suite()),
            kx_group: common.negotiated_key_exchange_group().map(|g| g.name()),
            alpn: common.alpn_protocol().map(<[u8]>::to_vec),
            resumed: common.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            peer_certificates: common
                .peer_certificates()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
        }
    }
}
