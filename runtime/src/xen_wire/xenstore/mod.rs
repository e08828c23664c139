//! The xenstore wire protocol (`xen/include/public/io/xs_wire.h`, `docs/misc/xenstore.txt`) and a
//! sans-IO client session.
//!
//! The xenstore page holds a request ring and a response ring of 1 KiB each. Messages on both are a
//! 16-byte header `{type, req_id, tx_id, len}` (little-endian `u32`s) and `len <= 4096` payload
//! bytes. Replies carry the request's `req_id`; watch events (`WATCH_EVENT`) arrive at any time,
//! interleaved with replies, so a client matches replies by `req_id`, never by order.
//!
//! This module is the message format: headers ([`Packet`], [`Repr`]), types, payloads and their
//! parsers. [`Session`] ([`session`]) is the client's state without any IO, and [`ring`] moves
//! bytes between a session and the shared page: it feeds the session the bytes of the response
//! ring ([`Session::receive`]) and drains its queued request bytes into the request ring
//! ([`Session::output`], [`Session::consume_output`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::device::XenstoreError;

pub mod ring;
pub mod session;

pub use ring::{page, pump, RING};
pub use session::Session;

/// Byte offsets within a message header.
pub mod field {
    use core::ops::Range;
    /// `uint32_t type`.
    pub const TYPE: Range<usize> = 0..4;
    /// `uint32_t req_id`.
    pub const REQ_ID: Range<usize> = 4..8;
    /// `uint32_t tx_id`.
    pub const TX_ID: Range<usize> = 8..12;
    /// `uint32_t len`.
    pub const LEN: Range<usize> = 12..16;
    /// The payload.
    pub const PAYLOAD: usize = 16;
}

/// Header size.
pub const HEADER_LEN: usize = field::PAYLOAD;
/// `XENSTORE_PAYLOAD_MAX`.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`.
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`.
pub const REL_PATH_MAX: usize = 2048;

/// `enum xsd_sockmsg_type`, the message types a domain uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// `XS_DIRECTORY`: list children.
    Directory,
    /// `XS_READ`.
    Read,
    /// `XS_GET_PERMS`.
    GetPerms,
    /// `XS_WATCH`.
    Watch,
    /// `XS_UNWATCH`.
    Unwatch,
    /// `XS_TRANSACTION_START`.
    TransactionStart,
    /// `XS_TRANSACTION_END`.
    TransactionEnd,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath,
    /// `XS_WRITE`.
    Write,
    /// `XS_MKDIR`.
    Mkdir,
    /// `XS_RM`.
    Rm,
    /// `XS_SET_PERMS`.
    SetPerms,
    /// `XS_WATCH_EVENT`: a watch fired (server to client, `req_id` 0).
    WatchEvent,
    /// `XS_ERROR`: the payload is an errno name such as `ENOENT`.
    Error,
    /// Any other type.
    Other(u32),
}

impl From<u32> for MsgType {
    fn from(v: u32) -> MsgType {
        match v {
            1 => MsgType::Directory,
            2 => MsgType::Read,
            3 => MsgType::GetPerms,
            4 => MsgType::Watch,
            5 => MsgType::Unwatch,
            6 => MsgType::TransactionStart,
            7 => MsgType::TransactionEnd,
            10 => MsgType::GetDomainPath,
            11 => MsgType::Write,
            12 => MsgType::Mkdir,
            13 => MsgType::Rm,
            14 => MsgType::SetPerms,
            15 => MsgType::WatchEvent,
            16 => MsgType::Error,
            v => MsgType::Other(v),
        }
    }
}

impl From<MsgType> for u32 {
    fn from(t: MsgType) -> u32 {
        match t {
            MsgType::Directory => 1,
            MsgType::Read => 2,
            MsgType::GetPerms => 3,
            MsgType::Watch => 4,
            MsgType::Unwatch => 5,
            MsgType::TransactionStart => 6,
            MsgType::TransactionEnd => 7,
            MsgType::GetDomainPath => 10,
            MsgType::Write => 11,
            MsgType::Mkdir => 12,
            MsgType::Rm => 13,
            MsgType::SetPerms => 14,
            MsgType::WatchEvent => 15,
            MsgType::Error => 16,
            MsgType::Other(v) => v,
        }
    }
}

/// Why a message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header, or than the header's `len` says.
    Truncated,
    /// `len` exceeds [`PAYLOAD_MAX`].
    TooLong,
}

impl From<WireError> for XenstoreError {
    fn from(e: WireError) -> XenstoreError {
        XenstoreError::Protocol(match e {
            WireError::Truncated => "truncated message",
            WireError::TooLong => "payload longer than 4096 bytes",
        })
    }
}

/// A checked view of one message (header and payload) in a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking that it holds a header and the whole payload.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the header and payload lengths.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let payload = self.payload_len() as usize;
        if payload > PAYLOAD_MAX {
            return Err(WireError::TooLong);
        }
        if len < HEADER_LEN + payload {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The message type.
    pub fn msg_type(&self) -> MsgType {
        MsgType::from(self.u32_at(field::TYPE))
    }
    /// The request id.
    pub fn req_id(&self) -> u32 {
        self.u32_at(field::REQ_ID)
    }
    /// The transaction id (0 outside a transaction).
    pub fn tx_id(&self) -> u32 {
        self.u32_at(field::TX_ID)
    }
    /// The payload length from the header.
    pub fn payload_len(&self) -> u32 {
        self.u32_at(field::LEN)
    }
    /// The whole message length, header included.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len() as usize
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u32(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_le_bytes());
    }
    /// Sets the type.
    pub fn set_msg_type(&mut self, t: MsgType) {
        self.set_u32(field::TYPE, t.into())
    }
    /// Sets the request id.
    pub fn set_req_id(&mut self, v: u32) {
        self.set_u32(field::REQ_ID, v)
    }
    /// Sets the transaction id.
    pub fn set_tx_id(&mut self, v: u32) {
        self.set_u32(field::TX_ID, v)
    }
    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u32) {
        self.set_u32(field::LEN, v)
    }
    /// The payload, mutable (after `set_payload_len`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A high-level message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Type.
    pub msg_type: MsgType,
    /// Request id.
    pub req_id: u32,
    /// Transaction id.
    pub tx_id: u32,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked packet.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        p.check_len()?;
        Ok(Repr {
            msg_type: p.msg_type(),
            req_id: p.req_id(),
            tx_id: p.tx_id(),
            payload: p.payload(),
        })
    }

    /// Header plus payload length.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the message into `p` (whose buffer must be at least `buffer_len()` bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_msg_type(self.msg_type);
        p.set_req_id(self.req_id);
        p.set_tx_id(self.tx_id);
        p.set_payload_len(self.payload.len() as u32);
        p.payload_mut().copy_from_slice(self.payload);
    }
}

/// An owned message, as the session stores replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Type.
    pub msg_type: MsgType,
    /// Request id.
    pub req_id: u32,
    /// Transaction id.
    pub tx_id: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// The reply's payload if it has type `expected`, the store's error if it is `XS_ERROR`.
    pub fn into_result(self, expected: MsgType) -> Result<Vec<u8>, XenstoreError> {
        match self.msg_type {
            MsgType::Error => Err(error_from_payload(&self.payload)),
            t if t == expected => Ok(self.payload),
            _ => Err(XenstoreError::Protocol("reply of the wrong type")),
        }
    }
}

/// Maps an `XS_ERROR` payload (`"ENOENT\0"`) to an error.
pub fn error_from_payload(payload: &[u8]) -> XenstoreError {
    let name = cstr(payload);
    match name {
        "ENOENT" => XenstoreError::NoEntry,
        "EACCES" => XenstoreError::Denied,
        "" => XenstoreError::Protocol("empty error reply"),
        other => XenstoreError::Xen(other.to_string()),
    }
}

/// The text up to the first NUL (or the end), or `""` if it is not UTF-8.
fn cstr(b: &[u8]) -> &str {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(&b[..end]).unwrap_or("")
}

fn check_path(path: &str) -> Result<(), XenstoreError> {
    let max = if path.starts_with('/') {
        ABS_PATH_MAX
    } else {
        REL_PATH_MAX
    };
    if path.is_empty() || path.len() > max || path.contains('\0') {
        return Err(XenstoreError::Protocol("invalid path"));
    }
    Ok(())
}

/// Payload of READ, DIRECTORY, MKDIR, RM, GET_PERMS: `path\0`.
pub fn path_payload(path: &str) -> Result<Vec<u8>, XenstoreError> {
    check_path(path)?;
    let mut v = Vec::with_capacity(path.len() + 1);
    v.extend_from_slice(path.as_bytes());
    v.push(0);
    Ok(v)
}

/// Payload of WRITE: `path\0value` (the value is not NUL-terminated).
pub fn write_payload(path: &str, value: &[u8]) -> Result<Vec<u8>, XenstoreError> {
    let mut v = path_payload(path)?;
    v.extend_from_slice(value);
    if v.len() > PAYLOAD_MAX {
        return Err(XenstoreError::Protocol("value too long"));
    }
    Ok(v)
}

/// Payload of WATCH and UNWATCH: `path\0token\0`.
pub fn watch_payload(path: &str, token: &str) -> Result<Vec<u8>, XenstoreError> {
    let mut v = path_payload(path)?;
    if token.contains('\0') {
        return Err(XenstoreError::Protocol("invalid watch token"));
    }
    v.extend_from_slice(token.as_bytes());
    v.push(0);
    Ok(v)
}

/// Payload of TRANSACTION_END: `T\0` to commit, `F\0` to abort.
pub fn transaction_end_payload(commit: bool) -> Vec<u8> {
    alloc::vec![if commit { b'T' } else { b'F' }, 0]
}

/// A READ reply's value (xenstored sends it without a trailing NUL).
pub fn parse_value(payload: &[u8]) -> Result<String, XenstoreError> {
    String::from_utf8(payload.to_vec()).map_err(|_| XenstoreError::Protocol("value is not UTF-8"))
}

/// A DIRECTORY reply: NUL-separated (and NUL-terminated) child names.
pub fn parse_directory(payload: &[u8]) -> Result<Vec<String>, XenstoreError> {
    payload
        .split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| {
            core::str::from_utf8(s)
                .map(|s| s.to_string())
                .map_err(|_| XenstoreError::Protocol("name is not UTF-8"))
        })
        .collect()
}

/// A TRANSACTION_START reply: the decimal transaction id.
pub fn parse_tx_id(payload: &[u8]) -> Result<u32, XenstoreError> {
    cstr(payload)
        .parse()
        .map_err(|_| XenstoreError::Protocol("bad transaction id"))
}

/// A WATCH_EVENT payload: `(path, token)`.
pub fn parse_watch_event(payload: &[u8]) -> Result<(String, String), XenstoreError> {
    let mut parts = payload.split(|&c| c == 0);
    let (Some(path), Some(token)) = (parts.next(), parts.next()) else {
        return Err(XenstoreError::Protocol("malformed watch event"));
    };
    let s = |b: &[u8]| {
        core::str::from_utf8(b)
            .map(|s| s.to_string())
            .map_err(|_| XenstoreError::Protocol("watch event is not UTF-8"))
    };
    Ok((s(path)?, s(token)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn msg(t: u32, req: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [t, req, tx, payload.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn header_round_trip() {
        let bytes = msg(2, 7, 3, b"name\0");
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                msg_type: MsgType::Read,
                req_id: 7,
                tx_id: 3,
                payload: b"name\0"
            }
        );
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes);
        assert_eq!(
            Packet::new_checked(&bytes[..20]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&msg(2, 1, 0, &[])[..15]).unwrap_err(),
            WireError::Truncated
        );
        let mut long = msg(2, 1, 0, &[]);
        long[12..16].copy_from_slice(&4097u32.to_le_bytes());
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            WireError::TooLong
        );
    }

    #[test]
    fn payloads() {
        assert_eq!(path_payload("domid").unwrap(), b"domid\0");
        assert_eq!(write_payload("a/b", b"v").unwrap(), b"a/b\0v");
        assert_eq!(watch_payload("/x", "t1").unwrap(), b"/x\0t1\0");
        assert_eq!(transaction_end_payload(false), b"F\0");
        assert!(path_payload("").is_err());
        assert!(path_payload("a\0b").is_err());
        assert_eq!(parse_directory(b"a\0bc\0").unwrap(), ["a", "bc"]);
        assert_eq!(parse_directory(b"").unwrap(), Vec::<String>::new());
        assert_eq!(parse_tx_id(b"42\0").unwrap(), 42);
        assert_eq!(
            parse_watch_event(b"/p/q\0tok\0").unwrap(),
            ("/p/q".into(), "tok".into())
        );
        assert_eq!(error_from_payload(b"ENOENT\0"), XenstoreError::NoEntry);
        assert_eq!(error_from_payload(b"EACCES\0"), XenstoreError::Denied);
        assert_eq!(
            error_from_payload(b"EAGAIN\0"),
            XenstoreError::Xen("EAGAIN".into())
        );
    }
}
