//! The request and response slots of the TX and RX rings (`netif_tx_request` and friends), and
//! their flags and statuses.

use core::fmt;

use super::{RX_SLOT_LEN, TX_SLOT_LEN};

/// `NETTXF_*` flags of a TX request.
pub mod txf {
    /// The protocol checksum is blank (partial): the backend must fill it in.
    pub const CSUM_BLANK: u16 = 1;
    /// The protocol checksum is known good.
    pub const DATA_VALIDATED: u16 = 2;
    /// More fragments of this packet follow.
    pub const MORE_DATA: u16 = 4;
    /// An extra-info slot follows.
    pub const EXTRA_INFO: u16 = 8;
}

/// `NETRXF_*` flags of an RX response.
pub mod rxf {
    /// The protocol checksum is known good.
    pub const DATA_VALIDATED: u16 = 1;
    /// The protocol checksum is blank (partial).
    pub const CSUM_BLANK: u16 = 2;
    /// More fragments of this packet follow.
    pub const MORE_DATA: u16 = 4;
    /// An extra-info slot follows.
    pub const EXTRA_INFO: u16 = 8;
}

/// `NETIF_RSP_*` statuses.
pub mod status {
    /// `NETIF_RSP_OKAY`.
    pub const OKAY: i16 = 0;
    /// `NETIF_RSP_ERROR`.
    pub const ERROR: i16 = -1;
    /// `NETIF_RSP_DROPPED`.
    pub const DROPPED: i16 = -2;
    /// `NETIF_RSP_NULL`: the response to an extra-info slot.
    pub const NULL: i16 = 1;
}

/// A slot buffer was shorter than the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `netif_tx_request`: `{ grant_ref_t gref; u16 offset; u16 flags; u16 id; u16 size }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRequest {
    /// Grant of the page holding the frame.
    pub gref: u32,
    /// Offset of the frame in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// Frame length (for the first fragment: the whole packet's).
    pub size: u16,
}

impl TxRequest {
    /// Field offsets.
    pub const GREF: usize = 0;
    /// `offset`.
    pub const OFFSET: usize = 4;
    /// `flags`.
    pub const FLAGS: usize = 6;
    /// `id`.
    pub const ID: usize = 8;
    /// `size`.
    pub const SIZE: usize = 10;

    /// Reads a request from `b`.
    pub fn parse(b: &[u8]) -> Result<TxRequest, Truncated> {
        if b.len() < TX_SLOT_LEN {
            return Err(Truncated);
        }
        Ok(TxRequest {
            gref: u32_at(b, Self::GREF),
            offset: u16_at(b, Self::OFFSET),
            flags: u16_at(b, Self::FLAGS),
            id: u16_at(b, Self::ID),
            size: u16_at(b, Self::SIZE),
        })
    }

    /// Writes the request into `b` (at least 12 bytes).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < TX_SLOT_LEN {
            return Err(Truncated);
        }
        b[0..4].copy_from_slice(&self.gref.to_le_bytes());
        b[4..6].copy_from_slice(&self.offset.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..10].copy_from_slice(&self.id.to_le_bytes());
        b[10..12].copy_from_slice(&self.size.to_le_bytes());
        Ok(())
    }
}

/// `netif_tx_response`: `{ u16 id; i16 status }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxResponse {
    /// The request's id.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

impl TxResponse {
    /// Reads a response from `b`.
    pub fn parse(b: &[u8]) -> Result<TxResponse, Truncated> {
        if b.len() < 4 {
            return Err(Truncated);
        }
        Ok(TxResponse {
            id: u16_at(b, 0),
            status: u16_at(b, 2) as i16,
        })
    }

    /// Writes the response into `b` (tests, and a backend).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < 4 {
            return Err(Truncated);
        }
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.status.to_le_bytes());
        Ok(())
    }
}

/// `netif_rx_request`: `{ u16 id; u16 pad; grant_ref_t gref }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Grant of the (writable) buffer page.
    pub gref: u32,
}

impl RxRequest {
    /// Reads a request from `b`.
    pub fn parse(b: &[u8]) -> Result<RxRequest, Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        Ok(RxRequest {
            id: u16_at(b, 0),
            gref: u32_at(b, 4),
        })
    }

    /// Writes the request into `b` (at least 8 bytes).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&0u16.to_le_bytes());
        b[4..8].copy_from_slice(&self.gref.to_le_bytes());
        Ok(())
    }
}

/// `netif_rx_response`: `{ u16 id; u16 offset; u16 flags; i16 status }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxResponse {
    /// The request's id.
    pub id: u16,
    /// Offset of the data in the buffer page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// The data length if positive; `NETIF_RSP_*` otherwise.
    pub status: i16,
}

/// Why an RX response carries no usable frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    /// A negative status (`NETIF_RSP_ERROR`, `NETIF_RSP_DROPPED`, ...).
    Status(i16),
    /// A zero-length frame.
    Empty,
    /// `offset + status` runs past the end of the buffer page.
    Oversize {
        /// The response's offset.
        offset: u16,
        /// The response's length.
        len: i16,
    },
    /// A multi-slot packet (`NETRXF_more_data` or `NETRXF_extra_info`), which was not negotiated.
    Fragmented(u16),
}

impl fmt::Display for RxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RxError::Status(s) => write!(f, "error status {s}"),
            RxError::Empty => f.write_str("empty frame"),
            RxError::Oversize { offset, len } => {
                write!(
                    f,
                    "frame of {len} bytes at offset {offset} overruns the page"
                )
            }
            RxError::Fragmented(flags) => write!(f, "unexpected fragment flags {flags:#x}"),
        }
    }
}

impl RxResponse {
    /// Reads a response from `b`.
    pub fn parse(b: &[u8]) -> Result<RxResponse, Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        Ok(RxResponse {
            id: u16_at(b, 0),
            offset: u16_at(b, 2),
            flags: u16_at(b, 4),
            status: u16_at(b, 6) as i16,
        })
    }

    /// Writes the response into `b` (tests, and a backend).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Truncated> {
        if b.len() < RX_SLOT_LEN {
            return Err(Truncated);
        }
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.offset.to_le_bytes());
        b[4..6].copy_from_slice(&self.flags.to_le_bytes());
        b[6..8].copy_from_slice(&self.status.to_le_bytes());
        Ok(())
    }

    /// The frame's byte range in a buffer of `buf_len` bytes, or why there is none.
    pub fn frame(&self, buf_len: usize) -> Result<core::ops::Range<usize>, RxError> {
        if self.flags & (rxf::MORE_DATA | rxf::EXTRA_INFO) != 0 {
            return Err(RxError::Fragmented(self.flags));
        }
        if self.status < 0 {
            return Err(RxError::Status(self.status));
        }
        if self.status == 0 {
            return Err(RxError::Empty);
        }
        let start = usize::from(self.offset);
        let end = start + self.status as usize;
        if end > buf_len {
            return Err(RxError::Oversize {
                offset: self.offset,
                len: self.status,
            });
        }
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let mut b = [0u8; 12];
        let r = TxRequest {
            gref: 0x1234_5678,
            offset: 2048,
            flags: txf::DATA_VALIDATED,
            id: 255,
            size: 1514,
        };
        r.emit(&mut b).unwrap();
        assert_eq!(&b[..4], &[0x78, 0x56, 0x34, 0x12]);
        assert_eq!(TxRequest::parse(&b), Ok(r));
        let rs = TxResponse {
            id: 7,
            status: status::DROPPED,
        };
        rs.emit(&mut b).unwrap();
        assert_eq!(TxResponse::parse(&b), Ok(rs));
        let rq = RxRequest { id: 3, gref: 99 };
        rq.emit(&mut b).unwrap();
        assert_eq!(RxRequest::parse(&b), Ok(rq));
        assert_eq!(&b[..8], &[3, 0, 0, 0, 99, 0, 0, 0]);
        let rr = RxResponse {
            id: 3,
            offset: 0,
            flags: rxf::DATA_VALIDATED,
            status: 60,
        };
        rr.emit(&mut b).unwrap();
        assert_eq!(RxResponse::parse(&b), Ok(rr));
        assert!(TxRequest::parse(&b[..11]).is_err());
        assert!(RxResponse::parse(&b[..7]).is_err());
    }

    #[test]
    fn rx_responses_are_checked() {
        let ok = RxResponse {
            id: 0,
            offset: 16,
            flags: 0,
            status: 60,
        };
        assert_eq!(ok.frame(4096), Ok(16..76));
        let rr = |offset, flags, status| RxResponse {
            id: 0,
            offset,
            flags,
            status,
        };
        assert_eq!(rr(0, 0, -1).frame(4096), Err(RxError::Status(-1)));
        assert_eq!(rr(0, 0, 0).frame(4096), Err(RxError::Empty));
        assert_eq!(
            rr(4000, 0, 100).frame(4096),
            Err(RxError::Oversize {
                offset: 4000,
                len: 100
            })
        );
        assert!(rr(0xffff, 0, 0x7fff).frame(4096).is_err());
        assert_eq!(
            rr(0, rxf::MORE_DATA, 100).frame(4096),
            Err(RxError::Fragmented(4))
        );
        assert_eq!(
            rr(0, rxf::EXTRA_INFO, 100).frame(4096),
            Err(RxError::Fragmented(8))
        );
        // Checksum flags alone are fine.
        assert!(rr(0, rxf::DATA_VALIDATED | rxf::CSUM_BLANK, 100)
            .frame(4096)
            .is_ok());
    }
}
