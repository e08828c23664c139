//! [`TlsFlow`]: a [`Session`] driven over any [`Flow`].

use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rustls::{ClientConfig, ServerConfig};
use uni_runtime::device::net::{Flow, NetError};
#[cfg(feature = "trace")]
use uni_runtime::trace::{Kind, Phase};

use crate::core_session::{Session, SessionInfo, Status};
use crate::error::TlsError;

/// The most plaintext encrypted per underlying write.
const WRITE_CHUNK: usize = 64 * 1024;

/// A TLS connection over a flow. It is itself a [`Flow`]; errors then become
/// [`NetError::Other`] with the TLS error's text. Its inherent methods return [`TlsError`].
///
/// The handshake runs on the first read or write, or explicitly with
/// [`handshake`](TlsFlow::handshake) (which a server should call, to see handshake errors).
pub struct TlsFlow<F> {
    flow: F,
    session: Session,
    plain: Vec<u8>,
    plain_pos: usize,
    rbuf: Vec<u8>,
    eof: bool,
    failed: Option<TlsError>,
    /// How far the handshake's trace events went: 0 none, 1 begun, 2 first flight sent.
    #[cfg(feature = "trace")]
    traced: u8,
}

impl<F: Flow> TlsFlow<F> {
    /// The client side of a connection to `server_name` over `flow`. No IO happens yet.
    pub fn client(
        flow: F,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> Result<TlsFlow<F>, TlsError> {
        Ok(TlsFlow::new(flow, Session::client(config, server_name)?))
    }

    /// The server side over an accepted `flow`. No IO happens yet.
    pub fn server(flow: F, config: Arc<ServerConfig>) -> Result<TlsFlow<F>, TlsError> {
        Ok(TlsFlow::new(flow, Session::server(config)?))
    }

    fn new(flow: F, session: Session) -> TlsFlow<F> {
        TlsFlow {
            flow,
            session,
            plain: Vec::new(),
            plain_pos: 0,
            rbuf: vec![0; 18 * 1024],
            eof: false,
            failed: None,
            #[cfg(feature = "trace")]
            traced: 0,
        }
    }

    /// What was negotiated.
    pub fn info(&self) -> SessionInfo {
        self.session.info()
    }

    /// The flow underneath.
    pub fn get_ref(&self) -> &F {
        &self.flow
    }

    fn check(&self) -> Result<(), TlsError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Feeds `input` to the session and sends what it produced.
    async fn feed(&mut self, input: &[u8]) -> Result<(), TlsError> {
        let handshaking = self.session.status() == Status::Handshaking;
        #[cfg(feature = "trace")]
        if handshaking && self.traced == 0 {
            self.trace(Kind::TlsHandshake, Phase::Begin, 0);
            if !self.session.is_client() {
                self.trace(Kind::TlsClientHello, Phase::Instant, 0);
            }
            self.traced = 1;
        }
        match self.session.handle(input) {
            Ok(out) => {
                self.flow.write_all(&out.to_send).await?;
                if handshaking && self.session.status() != Status::Handshaking {
                    uni_runtime::metrics::TLS_HANDSHAKES.inc();
                    log::debug!("{}: handshake done", self.flow.peer_addr());
                }
                #[cfg(feature = "trace")]
                if handshaking {
                    if self.traced == 1 && !out.to_send.is_empty() {
                        if !self.session.is_client() {
                            self.trace(Kind::TlsServerHello, Phase::Instant, 0);
                        }
                        self.traced = 2;
                    }
                    if self.session.status() != Status::Handshaking {
                        let v = self.session.info().version.map_or(0, u16::from);
                        self.trace(Kind::TlsDone, Phase::Instant, v.into());
                        self.trace(Kind::TlsHandshake, Phase::End, 0);
                    }
                }
                if !out.data.is_empty() {
                    if self.plain_pos == self.plain.len() {
                        self.plain.clear();
                        self.plain_pos = 0;
                    }
                    self.plain.extend_from_slice(&out.data);
                }
                Ok(())
            }
            Err(f) => {
                #[cfg(feature = "trace")]
                {
                    self.trace(Kind::TlsAlert, Phase::Instant, 0);
                    if handshaking {
                        self.trace(Kind::TlsHandshake, Phase::End, 0);
                    }
                }
                uni_runtime::metrics::TLS_FAILURES.inc();
                log::debug!(
                    "{}: session failed{}: {}",
                    self.flow.peer_addr(),
                    if handshaking { " in the handshake" } else { "" },
                    f.error
                );
                // Tell the peer why, then give up on this connection.
                let _ = self.flow.write_all(&f.to_send).await;
                let _ = self.flow.shutdown().await;
                self.failed = Some(f.error.clone());
                Err(f.error)
            }
        }
    }

    /// Records a TLS event on the connection's track.
    #[cfg(feature = "trace")]
    fn trace(&self, kind: Kind, phase: Phase, arg0: u32) {
        let track = uni_runtime::trace::conn_track(&self.flow.peer_addr());
        uni_runtime::trace::event(track, kind, phase, arg0, 0);
    }

    /// Reads once from the flow and feeds what came. Returns false at end of stream.
    async fn read_more(&mut self) -> Result<bool, TlsError> {
        let n = self.flow.read(&mut self.rbuf).await?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        let input = core::mem::take(&mut self.rbuf);
        let r = self.feed(&input[..n]).await;
        self.rbuf = input;
        r.map(|()| true)
    }

    /// Runs the handshake to completion (a no-op once it has).
    pub async fn handshake(&mut self) -> Result<(), TlsError> {
        self.check()?;
        if self.session.status() == Status::Handshaking {
            self.feed(&[]).await?;
        }
        while self.session.status() == Status::Handshaking {
            if !self.read_more().await? {
                return Err(TlsError::ClosedDuringHandshake);
            }
        }
        Ok(())
    }

    /// Reads plaintext into `buf`; 0 means the peer closed (with `close_notify`, or by closing
    /// the flow after the handshake).
    pub async fn read_tls(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        self.handshake().await?;
        loop {
            if self.plain_pos < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.plain_pos);
                buf[..n].copy_from_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
                self.plain_pos += n;
                return Ok(n);
            }
            if buf.is_empty()
                || self.eof
                || matches!(self.session.status(), Status::PeerClosed | Status::Closed)
            {
                return Ok(0);
            }
            self.read_more().await?;
        }
    }

    /// Encrypts and sends all of `buf`.
    pub async fn write_tls(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        self.handshake().await?;
        for chunk in buf.chunks(WRITE_CHUNK) {
            let records = match self.session.send(chunk) {
                Ok(r) => r,
                Err(f) => {
                    let _ = self.flow.write_all(&f.to_send).await;
                    self.failed = Some(f.error.clone());
                    return Err(f.error);
                }
            };
            self.flow.write_all(&records).await?;
        }
        Ok(buf.len())
    }

    /// Sends `close_notify` (our side is done; reading still works).
    pub async fn close_notify(&mut self) -> Result<(), TlsError> {
        if self.failed.is_some() || self.session.status() == Status::Handshaking {
            return Ok(());
        }
        match self.session.close() {
            Ok(bytes) => Ok(self.flow.write_all(&bytes).await?),
            Err(f) => Err(f.error),
        }
    }
}

fn net(e: TlsError) -> NetError {
    match e {
        TlsError::Net(n) => n,
        other => NetError::Other(other.to_string()),
    }
}

impl<F: Flow> Flow for TlsFlow<F> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        self.read_tls(buf).await.map_err(net)
    }

    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        self.write_tls(buf).await.map_err(net)
    }

    async fn shutdown(&mut self) -> Result<(), NetError> {
        self.close_notify().await.map_err(net)?;
        self.flow.shutdown().await
    }

    async fn close(mut self) -> Result<(), NetError> {
        self.close_notify().await.map_err(net)?;
        self.flow.close().await
    }

    fn peer_addr(&self) -> SocketAddr {
        self.flow.peer_addr()
    }
}
