//! The blkfront/blkback shared ring (`xen/include/public/io/blkif.h`, `io/ring.h`), as pure code.
//!
//! One 4 KiB ring page: the 64-byte header of every Xen ring (the indices are
//! [`netif::field`](super::netif::field)'s, and [`FrontRing`] does the index arithmetic and the
//! notification rules), then 32 slots of 112 bytes, the size of `blkif_request`, the larger half
//! of the slot union. So at most [`RING_SIZE`] = 32 requests are in flight.
//!
//! # Layout (the ARM ABI, 32- and 64-bit alike: `uint64_t` is 8-byte aligned)
//! `blkif_request` (112 bytes): `u8 operation @0; u8 nr_segments @1; u16 handle @2; (pad 4);
//! u64 id @8; u64 sector_number @16; blkif_request_segment seg[11] @24`, each segment 8 bytes:
//! `u32 gref @0; u8 first_sect @4; u8 last_sect @5; (pad 2)`.
//! `blkif_response` (16 bytes): `u64 id @0; u8 operation @8; (pad 1); i16 status @10; (pad 4)`.
//! (On x86_32 `id` sits at offset 4 and the request is 108 bytes; that ABI is not ours.)
//!
//! # Units
//! `sector_number`, `first_sect`/`last_sect` and the backend's `sectors` node are always in
//! 512-byte units, whatever the disk's `sector-size`; a segment covers sectors
//! `first_sect..=last_sect` of one 4 KiB page (so at most 0..=7).

use core::fmt;

use super::mem::SharedMem;
use super::netif::{slot_offset, FrontRing};

pub use super::netif::{init_shared, need_notify, BadId, BadIndex, IdPool};

/// `BLKIF_OP_*`.
pub mod op {
    /// `BLKIF_OP_READ`.
    pub const READ: u8 = 0;
    /// `BLKIF_OP_WRITE`.
    pub const WRITE: u8 = 1;
    /// `BLKIF_OP_WRITE_BARRIER` (if the backend has `feature-barrier`).
    pub const WRITE_BARRIER: u8 = 2;
    /// `BLKIF_OP_FLUSH_DISKCACHE` (if the backend has `feature-flush-cache`).
    pub const FLUSH_DISKCACHE: u8 = 3;
}

/// `BLKIF_RSP_*`.
pub mod status {
    /// `BLKIF_RSP_OKAY`.
    pub const OKAY: i16 = 0;
    /// `BLKIF_RSP_ERROR` (`-EIO`).
    pub const ERROR: i16 = -1;
    /// `BLKIF_RSP_EOPNOTSUPP`.
    pub const EOPNOTSUPP: i16 = -2;
}

/// `VDISK_*` bits of the backend's `info` node.
pub mod vdisk {
    /// `VDISK_CDROM`.
    pub const CDROM: u32 = 1;
    /// `VDISK_REMOVABLE`.
    pub const REMOVABLE: u32 = 2;
    /// `VDISK_READONLY`.
    pub const READONLY: u32 = 4;
}

/// The unit of `sector_number`, `first_sect`, `last_sect` and `sectors`.
pub const SECTOR: usize = 512;
/// Ring page size.
pub const PAGE_SIZE: usize = 4096;
/// 512-byte sectors in one page.
pub const SECTORS_PER_PAGE: u8 = (PAGE_SIZE / SECTOR) as u8;
/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const MAX_SEGMENTS: usize = 11;
/// A slot: `union { blkif_request (112 B); blkif_response (16 B) }`.
pub const SLOT_LEN: usize = 112;
/// A response's bytes.
pub const RESPONSE_LEN: usize = 16;
/// Slots in the ring (`__RING_SIZE`).
pub const RING_SIZE: u32 = super::netif::ring_size(SLOT_LEN);

/// Field offsets of `blkif_request`.
pub mod req {
    /// `u8 operation`.
    pub const OPERATION: usize = 0;
    /// `u8 nr_segments`.
    pub const NR_SEGMENTS: usize = 1;
    /// `u16 handle`.
    pub const HANDLE: usize = 2;
    /// `u64 id`.
    pub const ID: usize = 8;
    /// `u64 sector_number`.
    pub const SECTOR_NUMBER: usize = 16;
    /// `seg[0]`.
    pub const SEG: usize = 24;
    /// One segment's size.
    pub const SEG_LEN: usize = 8;
}

/// A slot or buffer was the wrong size, or a request is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The buffer is shorter than the structure.
    Truncated,
    /// More than [`MAX_SEGMENTS`] segments.
    TooManySegments(usize),
    /// A segment's sectors are not within one page (`first <= last < 8`).
    BadSegment {
        /// `first_sect`.
        first: u8,
        /// `last_sect`.
        last: u8,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Truncated => f.write_str("buffer shorter than the structure"),
            Malformed::TooManySegments(n) => {
                write!(f, "{n} segments (at most {MAX_SEGMENTS})")
            }
            Malformed::BadSegment { first, last } => {
                write!(f, "segment sectors {first}..={last} are not within a page")
            }
        }
    }
}

/// `blkif_request_segment`: sectors `first_sect..=last_sect` of the page granted as `gref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Grant of the buffer page.
    pub gref: u32,
    /// First 512-byte sector of the page (inclusive).
    pub first_sect: u8,
    /// Last 512-byte sector of the page (inclusive).
    pub last_sect: u8,
}

impl Segment {
    /// A segment of the whole page, or of its first `len` bytes (`len` a non-zero multiple of
    /// 512, at most a page).
    pub fn page_prefix(gref: u32, len: usize) -> Result<Segment, Malformed> {
        if len == 0 || len > PAGE_SIZE || !len.is_multiple_of(SECTOR) {
            return Err(Malformed::BadSegment {
                first: 0,
                last: (len / SECTOR).saturating_sub(1).min(255) as u8,
            });
        }
        Ok(Segment {
            gref,
            first_sect: 0,
            last_sect: (len / SECTOR - 1) as u8,
        })
    }

    /// Whether the sectors lie within one page.
    pub fn is_valid(&self) -> bool {
        self.first_sect <= self.last_sect && self.last_sect < SECTORS_PER_PAGE
    }

    /// Bytes transferred.
    pub fn len(&self) -> usize {
        (usize::from(self.last_sect) + 1 - usize::from(self.first_sect)) * SECTOR
    }

    /// Never: a segment holds at least one sector (for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// `blkif_request` for read, write, barrier and flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// The virtual device (`virtual-device` of the frontend); 0 for flushes in practice.
    pub handle: u16,
    /// Echoed in the response.
    pub id: u64,
    /// First 512-byte sector on the disk.
    pub sector_number: u64,
    /// The segments in use (the first `nr_segments`).
    pub segments: [Segment; MAX_SEGMENTS],
    /// How many of `segments` are in use.
    pub nr_segments: u8,
}

impl Request {
    /// A request with no segments (a flush, or to be filled in with [`push`](Self::push)).
    pub fn new(operation: u8, handle: u16, id: u64, sector_number: u64) -> Request {
        Request {
            operation,
            handle,
            id,
            sector_number,
            segments: [Segment::default(); MAX_SEGMENTS],
            nr_segments: 0,
        }
    }

    /// Appends a segment.
    pub fn push(&mut self, seg: Segment) -> Result<(), Malformed> {
        let n = usize::from(self.nr_segments);
        if n >= MAX_SEGMENTS {
            return Err(Malformed::TooManySegments(n + 1));
        }
        if !seg.is_valid() {
            return Err(Malformed::BadSegment {
                first: seg.first_sect,
                last: seg.last_sect,
            });
        }
        self.segments[n] = seg;
        self.nr_segments += 1;
        Ok(())
    }

    /// The segments in use.
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..usize::from(self.nr_segments).min(MAX_SEGMENTS)]
    }

    /// Bytes the request transfers.
    pub fn len(&self) -> usize {
        self.segments().iter().map(Segment::len).sum()
    }

    /// Whether it transfers nothing (a flush).
    pub fn is_empty(&self) -> bool {
        self.nr_segments == 0
    }

    /// Writes the request into `b` (at least [`SLOT_LEN`] bytes); unused segments are zeroed.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Malformed> {
        if b.len() < SLOT_LEN {
            return Err(Malformed::Truncated);
        }
        if usize::from(self.nr_segments) > MAX_SEGMENTS {
            return Err(Malformed::TooManySegments(usize::from(self.nr_segments)));
        }
        b[..SLOT_LEN].fill(0);
        b[req::OPERATION] = self.operation;
        b[req::NR_SEGMENTS] = self.nr_segments;
        b[req::HANDLE..req::HANDLE + 2].copy_from_slice(&self.handle.to_le_bytes());
        b[req::ID..req::ID + 8].copy_from_slice(&self.id.to_le_bytes());
        b[req::SECTOR_NUMBER..req::SECTOR_NUMBER + 8]
            .copy_from_slice(&self.sector_number.to_le_bytes());
        for (i, s) in self.segments().iter().enumerate() {
            let at = req::SEG + i * req::SEG_LEN;
            b[at..at + 4].copy_from_slice(&s.gref.to_le_bytes());
            b[at + 4] = s.first_sect;
            b[at + 5] = s.last_sect;
        }
        Ok(())
    }

    /// Reads a request from `b` (a backend's side, and the tests).
    pub fn parse(b: &[u8]) -> Result<Request, Malformed> {
        if b.len() < SLOT_LEN {
            return Err(Malformed::Truncated);
        }
        let nr = b[req::NR_SEGMENTS];
        if usize::from(nr) > MAX_SEGMENTS {
            return Err(Malformed::TooManySegments(usize::from(nr)));
        }
        let mut r = Request::new(
            b[req::OPERATION],
            u16::from_le_bytes([b[req::HANDLE], b[req::HANDLE + 1]]),
            u64_at(b, req::ID),
            u64_at(b, req::SECTOR_NUMBER),
        );
        for i in 0..usize::from(nr) {
            let at = req::SEG + i * req::SEG_LEN;
            r.push(Segment {
                gref: u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]),
                first_sect: b[at + 4],
                last_sect: b[at + 5],
            })?;
        }
        Ok(r)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// `blkif_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The request's operation.
    pub operation: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
}

impl Response {
    /// `id`.
    pub const ID: usize = 0;
    /// `operation`.
    pub const OPERATION: usize = 8;
    /// `status`.
    pub const STATUS: usize = 10;

    /// Reads a response from `b`.
    pub fn parse(b: &[u8]) -> Result<Response, Malformed> {
        if b.len() < RESPONSE_LEN {
            return Err(Malformed::Truncated);
        }
        Ok(Response {
            id: u64_at(b, Self::ID),
            operation: b[Self::OPERATION],
            status: i16::from_le_bytes([b[Self::STATUS], b[Self::STATUS + 1]]),
        })
    }

    /// Writes the response into `b` (a backend's side, and the tests).
    pub fn emit(&self, b: &mut [u8]) -> Result<(), Malformed> {
        if b.len() < RESPONSE_LEN {
            return Err(Malformed::Truncated);
        }
        b[..RESPONSE_LEN].fill(0);
        b[..8].copy_from_slice(&self.id.to_le_bytes());
        b[Self::OPERATION] = self.operation;
        b[Self::STATUS..Self::STATUS + 2].copy_from_slice(&self.status.to_le_bytes());
        Ok(())
    }
}

/// The frontend's side of the block ring on the shared page.
pub trait BlkRing {
    /// Writes `req` into the next slot (private until `push_requests`).
    fn put_blk_request<M: SharedMem + ?Sized>(&mut self, page: &M, req: &Request);
    /// Reads the response at `rsp_cons` and consumes it (only after `pending` said it is there).
    fn take_blk_response<M: SharedMem + ?Sized>(&mut self, page: &M) -> Response;
}

impl BlkRing for FrontRing {
    fn put_blk_request<M: SharedMem + ?Sized>(&mut self, page: &M, req: &Request) {
        let mut raw = [0u8; SLOT_LEN];
        let _ = req.emit(&mut raw); // a Request's segments are checked when pushed
        let i = self.next_request();
        page.write_bytes(slot_offset(i, SLOT_LEN, self.size()), &raw);
    }

    fn take_blk_response<M: SharedMem + ?Sized>(&mut self, page: &M) -> Response {
        let mut raw = [0u8; RESPONSE_LEN];
        page.read_bytes(slot_offset(self.rsp_cons, SLOT_LEN, self.size()), &mut raw);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Response::parse(&raw).expect("16 bytes hold a response")
    }
}

/// The backend's geometry, from its xenstore nodes `sectors` (512-byte units), `sector-size`
/// and `info` (`VDISK_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The disk's sector size in bytes (a power of two, at least 512, at most a page).
    pub sector_size: u32,
    /// The capacity in `sector_size` sectors.
    pub sectors: u64,
    /// `VDISK_READONLY` is set.
    pub read_only: bool,
}

/// A backend node holds something unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadGeometry {
    /// `sectors` is not a number.
    Sectors,
    /// `sector-size` is not a power of two between 512 and 4096.
    SectorSize,
    /// `info` is not a number.
    Info,
}

impl fmt::Display for BadGeometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadGeometry::Sectors => "sectors is not a number",
            BadGeometry::SectorSize => "sector-size is not a power of two from 512 to 4096",
            BadGeometry::Info => "info is not a number",
        })
    }
}

impl Geometry {
    /// Parses the three nodes (`info` may be absent: writable).
    pub fn parse(
        sectors: &str,
        sector_size: &str,
        info: Option<&str>,
    ) -> Result<Geometry, BadGeometry> {
        let sectors512: u64 = sectors.trim().parse().map_err(|_| BadGeometry::Sectors)?;
        let sector_size: u32 = sector_size
            .trim()
            .parse()
            .map_err(|_| BadGeometry::SectorSize)?;
        if !sector_size.is_power_of_two() || !(512..=PAGE_SIZE as u32).contains(&sector_size) {
            return Err(BadGeometry::SectorSize);
        }
        let info: u32 = match info {
            Some(s) => s.trim().parse().map_err(|_| BadGeometry::Info)?,
            None => 0,
        };
        Ok(Geometry {
            sector_size,
            sectors: sectors512 / u64::from(sector_size / SECTOR as u32),
            read_only: info & vdisk::READONLY != 0,
        })
    }
}

/// A xenstore boolean feature node: present and not `0`.
pub fn feature(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim() != "0" && !v.trim().is_empty())
}

/// How to make writes durable, from the backend's features: a flush if it has
/// `feature-flush-cache`, else an empty barrier if it has `feature-barrier`, else nothing to do
/// (the backend writes through).
pub fn flush_op(flush_cache: bool, barrier: bool) -> Option<u8> {
    if flush_cache {
        Some(op::FLUSH_DISKCACHE)
    } else if barrier {
        Some(op::WRITE_BARRIER)
    } else {
        None
    }
}

/// The xenstore device number of disk `index` (`xvda` + index): major 202, 16 minors per disk
/// (51712 is `xvda`, 51728 `xvdb`).
pub fn devid(index: u32) -> u32 {
    (202 << 8) | (index << 4)
}

/// The Linux-style name of disk `index`, as xl's `vdev=` takes it: `xvda` … `xvdz`, `xvdaa`, ….
pub fn vdev(index: u32) -> alloc::string::String {
    let mut letters = alloc::vec::Vec::new();
    let mut i = index + 1;
    while i > 0 {
        i -= 1;
        letters.push(b'a' + (i % 26) as u8);
        i /= 26;
    }
    letters.reverse();
    alloc::format!("xvd{}", alloc::string::String::from_utf8_lossy(&letters))
}

/// Splits a transfer of `len` bytes (a multiple of 512) starting at 512-byte sector `sector` into
/// requests of at most [`MAX_SEGMENTS`] whole pages: yields `(sector, byte offset, byte length)`.
pub fn chunks(sector: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let per = MAX_SEGMENTS * PAGE_SIZE;
    (0..len.div_ceil(per)).map(move |i| {
        let off = i * per;
        (sector + (off / SECTOR) as u64, off, per.min(len - off))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen_wire::mem::cells;
    use crate::xen_wire::netif::field;

    #[test]
    fn disks_are_numbered_as_xl_names_them() {
        assert_eq!((devid(0), devid(1)), (51712, 51728));
        assert_eq!(vdev(0), "xvda");
        assert_eq!(vdev(25), "xvdz");
        assert_eq!(vdev(26), "xvdaa");
        assert_eq!(vdev(27), "xvdab");
    }

    #[test]
    fn sizes_and_offsets_match_the_arm_abi() {
        assert_eq!(RING_SIZE, 32);
        assert_eq!(req::SEG + MAX_SEGMENTS * req::SEG_LEN, SLOT_LEN);
        assert_eq!(
            slot_offset(RING_SIZE - 1, SLOT_LEN, RING_SIZE) + SLOT_LEN,
            64 + 32 * 112
        );
        const { assert!(64 + 32 * 112 <= PAGE_SIZE) };
        let mut r = Request::new(op::WRITE, 51712, 0x0102_0304_0506_0708, 0x1_0000_0002);
        r.push(Segment::page_prefix(0xaabbccdd, 4096).unwrap())
            .unwrap();
        r.push(Segment {
            gref: 7,
            first_sect: 2,
            last_sect: 3,
        })
        .unwrap();
        let mut b = [0xffu8; SLOT_LEN];
        r.emit(&mut b).unwrap();
        assert_eq!(&b[..8], &[1, 2, 0x00, 0xca, 0, 0, 0, 0]);
        assert_eq!(&b[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[16..24], &[2, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&b[24..32], &[0xdd, 0xcc, 0xbb, 0xaa, 0, 7, 0, 0]);
        assert_eq!(&b[32..40], &[7, 0, 0, 0, 2, 3, 0, 0]);
        assert!(b[40..].iter().all(|&x| x == 0));
        assert_eq!(Request::parse(&b), Ok(r));
        assert_eq!(r.len(), 4096 + 1024);
        let rsp = Response {
            id: 0x11,
            operation: op::FLUSH_DISKCACHE,
            status: status::EOPNOTSUPP,
        };
        let mut rb = [0u8; RESPONSE_LEN];
        rsp.emit(&mut rb).unwrap();
        assert_eq!(
            rb,
            [0x11, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0xfe, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(Response::parse(&rb), Ok(rsp));
        assert_eq!(Response::parse(&rb[..15]), Err(Malformed::Truncated));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let mut r = Request::new(op::READ, 0, 0, 0);
        for _ in 0..MAX_SEGMENTS {
            r.push(Segment::page_prefix(1, 512).unwrap()).unwrap();
        }
        assert_eq!(
            r.push(Segment::page_prefix(1, 512).unwrap()),
            Err(Malformed::TooManySegments(12))
        );
        let mut fresh = Request::new(op::READ, 0, 0, 0);
        assert!(fresh
            .push(Segment {
                gref: 1,
                first_sect: 3,
                last_sect: 2
            })
            .is_err());
        assert!(fresh
            .push(Segment {
                gref: 1,
                first_sect: 0,
                last_sect: 8
            })
            .is_err());
        assert!(Segment::page_prefix(1, 0).is_err());
        assert!(Segment::page_prefix(1, 100).is_err());
        assert!(Segment::page_prefix(1, 8192).is_err());
        let mut b = [0u8; SLOT_LEN];
        b[req::NR_SEGMENTS] = 12;
        assert_eq!(Request::parse(&b), Err(Malformed::TooManySegments(12)));
        assert_eq!(Request::parse(&b[..100]), Err(Malformed::Truncated));
    }

    #[test]
    fn geometry_features_and_chunks() {
        assert_eq!(
            Geometry::parse("2048\n", "512", Some("0")),
            Ok(Geometry {
                sector_size: 512,
                sectors: 2048,
                read_only: false
            })
        );
        assert_eq!(
            Geometry::parse("2048", "4096", Some("4")),
            Ok(Geometry {
                sector_size: 4096,
                sectors: 256,
                read_only: true
            })
        );
        assert_eq!(Geometry::parse("x", "512", None), Err(BadGeometry::Sectors));
        assert_eq!(
            Geometry::parse("8", "1000", None),
            Err(BadGeometry::SectorSize)
        );
        assert_eq!(
            Geometry::parse("8", "256", None),
            Err(BadGeometry::SectorSize)
        );
        assert_eq!(
            Geometry::parse("8", "512", Some("rw")),
            Err(BadGeometry::Info)
        );
        assert!(feature(Some("1")));
        assert!(!feature(Some("0")));
        assert!(!feature(None));
        assert_eq!(flush_op(true, true), Some(op::FLUSH_DISKCACHE));
        assert_eq!(flush_op(false, true), Some(op::WRITE_BARRIER));
        assert_eq!(flush_op(false, false), None);
        let c: alloc::vec::Vec<_> = chunks(10, 16 * 512).collect();
        assert_eq!(c, [(10, 0, 8192)]);
        let c: alloc::vec::Vec<_> = chunks(0, 12 * 4096).collect();
        assert_eq!(c, [(0, 0, 11 * 4096), (88, 11 * 4096, 4096)]);
        assert_eq!(chunks(0, 0).count(), 0);
    }

    /// The backend's side, for the tests: answers every published request with `status`.
    fn answer(page: &[core::cell::Cell<u8>], from: u32, status: i16) -> u32 {
        let prod = page.read_u32(field::REQ_PROD);
        let mut i = from;
        while i != prod {
            let at = slot_offset(i, SLOT_LEN, RING_SIZE);
            let mut raw = [0u8; SLOT_LEN];
            page.read_bytes(at, &mut raw);
            let r = Request::parse(&raw).unwrap();
            let mut out = [0u8; RESPONSE_LEN];
            Response {
                id: r.id,
                operation: r.operation,
                status,
            }
            .emit(&mut out)
            .unwrap();
            page.write_bytes(at, &out);
            i = i.wrapping_add(1);
        }
        page.write_u32(field::RSP_PROD, prod);
        prod
    }

    #[test]
    fn a_full_ring_of_requests_on_the_page() {
        let mut buf = [0u8; PAGE_SIZE];
        let page = cells(&mut buf);
        init_shared(page);
        let mut ring = FrontRing::new(RING_SIZE);
        let mut ids = IdPool::new(RING_SIZE as u16);
        for n in 0..RING_SIZE {
            let id = ids.alloc().unwrap();
            let mut r = Request::new(op::READ, 0, u64::from(id), u64::from(n) * 8);
            r.push(Segment::page_prefix(100 + n, 4096).unwrap())
                .unwrap();
            ring.put_blk_request(page, &r);
        }
        assert_eq!(ids.alloc(), None);
        assert_eq!(ring.free_requests(), 0);
        assert!(ring.push_requests(page));
        let mut raw = [0u8; SLOT_LEN];
        page.read_bytes(slot_offset(31, SLOT_LEN, RING_SIZE), &mut raw);
        let last = Request::parse(&raw).unwrap();
        assert_eq!((last.sector_number, last.segments()[0].gref), (248, 131));
        let prod = answer(page, 0, status::OKAY);
        assert_eq!(ring.pending(page), Ok(32));
        for n in 0..32u64 {
            let rsp = ring.take_blk_response(page);
            assert_eq!((rsp.id, rsp.status, rsp.operation), (n, 0, op::READ));
            assert_eq!(ids.release(rsp.id as u16), Ok(()));
        }
        // Around the ring again: slot 0 is reused, an error status is reported as such.
        let id = ids.alloc().unwrap();
        ring.put_blk_request(
            page,
            &Request::new(op::FLUSH_DISKCACHE, 0, u64::from(id), 0),
        );
        ring.push_requests(page);
        answer(page, prod, status::ERROR);
        assert_eq!(ring.pending(page), Ok(1));
        let rsp = ring.take_blk_response(page);
        assert_eq!(
            (rsp.id, rsp.status, rsp.operation),
            (u64::from(id), status::ERROR, op::FLUSH_DISKCACHE)
        );
        // A repeated id is caught by the pool; an impossible rsp_prod by the ring.
        assert!(ids.release(rsp.id as u16).is_ok());
        assert!(ids.release(rsp.id as u16).is_err());
        page.write_u32(field::RSP_PROD, prod + 5);
        assert!(ring.pending(page).is_err());
    }
}
