//! The on-disk format, as pure code: superblocks, sector framing, and the two record kinds.
//! docs/kv-rw-format.md describes the same layout in tables; the offsets live here, in `mod
//! field`-style constants, and nowhere else.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use sha2::{Digest, Sha256};
use uni_runtime::device::WallTime;

/// The first 8 bytes of both superblocks.
pub const MAGIC: &[u8; 8] = b"UNIKVRW\0";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;
/// Sectors 0 and 1 hold the two copies of the superblock.
pub const SUPERBLOCKS: u64 = 2;
/// Bytes of a superblock that carry data (the rest of a larger sector is zero and ignored).
pub const SUPER_LEN: usize = 512;
/// Bytes at the end of every log sector: seq, tag, CRC-32C.
pub const TRAILER: usize = 16;
/// The fixed header every record starts with.
pub const RECORD_HEADER: usize = 24;
/// The smallest region: room for a checkpoint and a few commits.
pub const MIN_REGION_SECTORS: u64 = 8;
/// The longest key, in bytes.
pub const MAX_KEY: usize = 1024;

/// Record kinds (byte 0 of a record).
pub const KIND_CHECKPOINT: u8 = 1;
/// A commit appended to the log.
pub const KIND_COMMIT: u8 = 2;
/// Change opcodes in a commit's change list.
pub const OP_SET: u8 = 1;
/// Removes a value or a whole dictionary.
pub const OP_REMOVE: u8 = 2;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Superblock field offsets.
mod sb {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const SECTOR_SIZE: usize = 12;
    pub const SECTORS: usize = 16;
    pub const REGION_SECTORS: usize = 24;
    pub const SEQ: usize = 32;
    pub const EPOCH: usize = 40;
    pub const REGION: usize = 44;
    pub const SLOT: usize = 45;
    pub const HEAD: usize = 48;
    pub const TIP: usize = 56;
    pub const FORMATTED_SECS: usize = 88;
    pub const FORMATTED_NANOS: usize = 96;
    pub const GEN: usize = 104;
    pub const CRC: usize = 508;
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

// ---------------------------------------------------------------------------------------------
// Superblock
// ---------------------------------------------------------------------------------------------

/// What both superblocks hold: the geometry, and the durable end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Super {
    pub sector_size: u32,
    /// The device's capacity when formatted.
    pub sectors: u64,
    /// The length of each of the two regions.
    pub region_sectors: u64,
    /// Counts superblock updates: the copy with the higher `gen` is the newer.
    pub gen: u64,
    /// The last commit (0: none yet).
    pub seq: u64,
    /// How many times the store was compacted, plus one.
    pub epoch: u32,
    /// The region the log lives in, 0 or 1.
    pub region: u8,
    /// Sectors of that region the log uses, from its start.
    pub head: u64,
    /// The hash of commit `seq` (zero when `seq` is 0).
    pub tip: [u8; 32],
    /// When the store was formatted.
    pub formatted: WallTime,
}

/// Why a superblock sector is not a superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuperFault {
    /// All zero bytes.
    Zeroed,
    /// Something else than this format: the first bytes found.
    Foreign([u8; 16]),
    /// Has the magic, but is damaged or not usable: why.
    Damaged(String),
}

impl Super {
    /// The first sector of region `r`.
    pub fn region_start(&self, r: u8) -> u64 {
        SUPERBLOCKS + u64::from(r) * self.region_sectors
    }

    /// Payload bytes per log sector.
    pub fn payload(&self) -> usize {
        self.sector_size as usize - TRAILER
    }

    /// The sector holding copy `slot` (0 or 1).
    pub fn encode(&self, slot: u8) -> Vec<u8> {
        let mut b = alloc::vec![0u8; self.sector_size as usize];
        b[sb::MAGIC..sb::MAGIC + 8].copy_from_slice(MAGIC);
        b[sb::VERSION..sb::VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        b[sb::SECTOR_SIZE..sb::SECTOR_SIZE + 4].copy_from_slice(&self.sector_size.to_le_bytes());
        b[sb::SECTORS..sb::SECTORS + 8].copy_from_slice(&self.sectors.to_le_bytes());
        b[sb::REGION_SECTORS..sb::REGION_SECTORS + 8]
            .copy_from_slice(&self.region_sectors.to_le_bytes());
        b[sb::SEQ..sb::SEQ + 8].copy_from_slice(&self.seq.to_le_bytes());
        b[sb::EPOCH..sb::EPOCH + 4].copy_from_slice(&self.epoch.to_le_bytes());
        b[sb::REGION] = self.region;
        b[sb::SLOT] = slot;
        b[sb::HEAD..sb::HEAD + 8].copy_from_slice(&self.head.to_le_bytes());
        b[sb::TIP..sb::TIP + 32].copy_from_slice(&self.tip);
        b[sb::FORMATTED_SECS..sb::FORMATTED_SECS + 8]
            .copy_from_slice(&self.formatted.secs.to_le_bytes());
        b[sb::FORMATTED_NANOS..sb::FORMATTED_NANOS + 4]
            .copy_from_slice(&self.formatted.nanos.to_le_bytes());
        b[sb::GEN..sb::GEN + 8].copy_from_slice(&self.gen.to_le_bytes());
        let crc = CRC32C.checksum(&b[..sb::CRC]);
        b[sb::CRC..sb::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads copy `slot` from its sector, checking everything but the device's geometry.
    pub fn decode(b: &[u8], slot: u8) -> Result<Super, SuperFault> {
        let b = &b[..SUPER_LEN.min(b.len())];
        if b.len() < SUPER_LEN {
            return Err(SuperFault::Damaged("shorter than a superblock".into()));
        }
        if &b[..8] != MAGIC {
            if b.iter().all(|&x| x == 0) {
                return Err(SuperFault::Zeroed);
            }
            let mut first = [0u8; 16];
            first.copy_from_slice(&b[..16]);
            return Err(SuperFault::Foreign(first));
        }
        let crc = CRC32C.checksum(&b[..sb::CRC]);
        if crc != u32_at(b, sb::CRC) {
            return Err(SuperFault::Damaged(alloc::format!(
                "superblock copy {slot} fails its CRC-32C (stored {:08x}, computed {crc:08x})",
                u32_at(b, sb::CRC)
            )));
        }
        let version = u32_at(b, sb::VERSION);
        if version != VERSION {
            return Err(SuperFault::Damaged(alloc::format!(
                "superblock copy {slot} is format version {version}; this build reads version \
                 {VERSION}"
            )));
        }
        if b[sb::SLOT] != slot {
            return Err(SuperFault::Damaged(alloc::format!(
                "superblock copy {slot} says it is copy {} (a misdirected write)",
                b[sb::SLOT]
            )));
        }
        let mut tip = [0u8; 32];
        tip.copy_from_slice(&b[sb::TIP..sb::TIP + 32]);
        let s = Super {
            sector_size: u32_at(b, sb::SECTOR_SIZE),
            sectors: u64_at(b, sb::SECTORS),
            region_sectors: u64_at(b, sb::REGION_SECTORS),
            gen: u64_at(b, sb::GEN),
            seq: u64_at(b, sb::SEQ),
            epoch: u32_at(b, sb::EPOCH),
            region: b[sb::REGION],
            head: u64_at(b, sb::HEAD),
            tip,
            formatted: WallTime {
                secs: u64_at(b, sb::FORMATTED_SECS),
                nanos: u32_at(b, sb::FORMATTED_NANOS),
            },
        };
        let bad = |what: &str| {
            Err(SuperFault::Damaged(alloc::format!(
                "superblock copy {slot} is inconsistent: {what}"
            )))
        };
        if s.sector_size < 512 || !s.sector_size.is_power_of_two() {
            return bad("its sector size is not a power of two of at least 512");
        }
        if s.region_sectors < MIN_REGION_SECTORS
            || s.region_sectors
                .checked_mul(2)
                .and_then(|r| r.checked_add(SUPERBLOCKS))
                .is_none_or(|n| n > s.sectors)
        {
            return bad("its regions do not fit the device it describes");
        }
        if s.region > 1 {
            return bad("the active region is neither 0 nor 1");
        }
        if s.head == 0 || s.head > s.region_sectors {
            return bad("the log's end lies outside its region");
        }
        if s.epoch == 0 || s.gen == 0 {
            return bad("epoch or generation 0");
        }
        if b[sb::GEN + 8..sb::CRC].iter().any(|&x| x != 0)
            || b[sb::SLOT + 1..sb::HEAD] != [0, 0]
            || b[sb::FORMATTED_NANOS + 4..sb::GEN] != [0, 0, 0, 0]
        {
            return bad("reserved bytes are not zero");
        }
        if s.formatted.nanos >= 1_000_000_000 {
            return bad("its format time has more than 10^9 nanoseconds");
        }
        Ok(s)
    }
}

/// Describes what a sector that is not a superblock looks like, for "not a store" errors.
pub fn describe_foreign(first: &[u8]) -> String {
    let mut s = String::from("it starts with");
    for b in first {
        let _ = write!(s, " {b:02x}");
    }
    s.push_str(" (\"");
    for &b in first {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            s.push(b as char);
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s.push_str("\")");
    s
}

// ---------------------------------------------------------------------------------------------
// Log sectors: payload, then seq u64, tag u32, CRC-32C u32
// ---------------------------------------------------------------------------------------------

fn sector_crc(payload: &[u8], seq: u64, tag: u32, abs: u64) -> u32 {
    let mut d = CRC32C.digest();
    d.update(payload);
    d.update(&seq.to_le_bytes());
    d.update(&tag.to_le_bytes());
    d.update(&abs.to_le_bytes());
    d.finalize()
}

/// A record's tag: the first 4 bytes of its hash (a commit's hash, a checkpoint's check), in
/// every sector's trailer, so that the sectors of two different records of the same commit
/// number (a commit written again after a crash) cannot pass for each other.
pub fn tag_of(hash: &[u8; 32]) -> u32 {
    u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]])
}

/// Writes the trailer of `sector` (its payload already in place), sector number `abs`.
pub fn seal(sector: &mut [u8], abs: u64, seq: u64, tag: u32) {
    let p = sector.len() - TRAILER;
    let crc = sector_crc(&sector[..p], seq, tag, abs);
    sector[p..p + 8].copy_from_slice(&seq.to_le_bytes());
    sector[p + 8..p + 12].copy_from_slice(&tag.to_le_bytes());
    sector[p + 12..p + 16].copy_from_slice(&crc.to_le_bytes());
}

/// Why a log sector is not what the log expects there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorFault {
    /// All zero bytes: never written.
    Zeroed,
    /// The CRC-32C does not match: a torn write or a flipped bit.
    Checksum,
    /// A valid sector of another record: left from an earlier use of the region or an
    /// interrupted write, or a write that went elsewhere.
    Stale { seq: u64, tag: u32 },
}

impl SectorFault {
    /// The fault in words.
    pub fn describe(&self, want_seq: u64, want_tag: u32) -> String {
        match self {
            SectorFault::Zeroed => "it is zeroed (never written)".into(),
            SectorFault::Checksum => {
                "it fails its CRC-32C check (a torn write or flipped bits)".into()
            }
            SectorFault::Stale { seq, tag } => alloc::format!(
                "it holds a sector of record {tag:08x} (commit {seq}), where record \
                 {want_tag:08x} (commit {want_seq}) belongs (a lost, interrupted or misdirected \
                 write)"
            ),
        }
    }
}

/// The seq and tag a sector's trailer claims, if its CRC holds.
pub fn trailer(sector: &[u8], abs: u64) -> Result<(u64, u32), SectorFault> {
    let p = sector.len() - TRAILER;
    let seq = u64_at(sector, p);
    let tag = u32_at(sector, p + 8);
    let crc = u32_at(sector, p + 12);
    if sector_crc(&sector[..p], seq, tag, abs) != crc {
        return Err(if sector.iter().all(|&b| b == 0) {
            SectorFault::Zeroed
        } else {
            SectorFault::Checksum
        });
    }
    Ok((seq, tag))
}

/// Checks that `sector` (number `abs`) is a sound sector of the record `tag` of commit `seq`.
pub fn check(sector: &[u8], abs: u64, seq: u64, tag: u32) -> Result<(), SectorFault> {
    match trailer(sector, abs)? {
        (s, t) if s == seq && t == tag => Ok(()),
        (s, t) => Err(SectorFault::Stale { seq: s, tag: t }),
    }
}

/// Lays a record's bytes over sectors: payload, trailer, payload, trailer, ….
#[derive(Debug)]
pub struct Framer {
    sector_size: usize,
    /// The sector number of the first sector in `buf`.
    pub start: u64,
    seq: u64,
    tag: u32,
    /// Sealed sectors, then the one being filled.
    pub buf: Vec<u8>,
    fill: usize,
}

impl Framer {
    pub fn new(sector_size: u32, start: u64, seq: u64, tag: u32) -> Framer {
        Framer {
            sector_size: sector_size as usize,
            start,
            seq,
            tag,
            buf: Vec::new(),
            fill: 0,
        }
    }

    fn payload(&self) -> usize {
        self.sector_size - TRAILER
    }

    /// Appends record bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.fill == 0 {
                self.buf.resize(self.buf.len() + self.sector_size, 0);
            }
            let base = self.buf.len() - self.sector_size;
            let n = (self.payload() - self.fill).min(bytes.len());
            self.buf[base + self.fill..base + self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            bytes = &bytes[n..];
            if self.fill == self.payload() {
                self.seal_last();
            }
        }
    }

    fn seal_last(&mut self) {
        let base = self.buf.len() - self.sector_size;
        let abs = self.start + (base / self.sector_size) as u64;
        seal(&mut self.buf[base..], abs, self.seq, self.tag);
        self.fill = 0;
    }

    /// Sealed sectors ready to be written.
    pub fn sealed_sectors(&self) -> usize {
        let n = self.buf.len() / self.sector_size;
        if self.fill > 0 {
            n - 1
        } else {
            n
        }
    }

    /// Takes the sealed sectors out: their first sector number and bytes.
    pub fn take_sealed(&mut self) -> (u64, Vec<u8>) {
        let n = self.sealed_sectors();
        let rest = self.buf.split_off(n * self.sector_size);
        let out = core::mem::replace(&mut self.buf, rest);
        let at = self.start;
        self.start += n as u64;
        (at, out)
    }

    /// Pads and seals the last sector.
    pub fn finish(&mut self) {
        if self.fill > 0 {
            self.seal_last();
        }
    }
}

/// Sectors a record of `len` bytes takes, with `payload` bytes per sector.
pub fn sectors_for(len: u64, payload: usize) -> u64 {
    len.div_ceil(payload as u64)
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// The fixed header of a record: kind u8, 3 zero bytes, meta_len u32, length u64, seq u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: u8,
    /// Bytes of metadata, this header and the trailing 32-byte hash included.
    pub meta_len: u32,
    /// Bytes of the whole record: metadata, then values.
    pub length: u64,
    /// The commit (for a checkpoint: the commit whose state it holds).
    pub seq: u64,
}

impl RecordHeader {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind);
        out.extend([0u8; 3]);
        out.extend(self.meta_len.to_le_bytes());
        out.extend(self.length.to_le_bytes());
        out.extend(self.seq.to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> Result<RecordHeader, &'static str> {
        if b.len() < RECORD_HEADER {
            return Err("too short for a record header");
        }
        let h = RecordHeader {
            kind: b[0],
            meta_len: u32_at(b, 4),
            length: u64_at(b, 8),
            seq: u64_at(b, 16),
        };
        if b[1..4] != [0, 0, 0] {
            return Err("the record header's reserved bytes are not zero");
        }
        if h.kind != KIND_CHECKPOINT && h.kind != KIND_COMMIT {
            return Err("unknown record kind");
        }
        if (h.meta_len as usize) < RECORD_HEADER + 32 || u64::from(h.meta_len) > h.length {
            return Err("the record's lengths are inconsistent");
        }
        Ok(h)
    }
}

/// One change in a commit's change list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaChange {
    Set {
        key: String,
        len: u64,
        sha256: [u8; 32],
    },
    Remove {
        key: String,
    },
}

/// A commit's metadata. Its "body" (the encoded metadata without the trailing hash) is what
/// its hash covers, and what checkpoints keep of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMeta {
    pub header: RecordHeader,
    pub parent: [u8; 32],
    pub time: WallTime,
    pub changes: Vec<MetaChange>,
}

fn encode_key(out: &mut Vec<u8>, key: &str) {
    out.extend((key.len() as u16).to_le_bytes());
    out.extend(key.as_bytes());
}

/// The body of a commit: header, parent, time, change list. Returns it and its hash.
pub fn encode_commit_body(
    seq: u64,
    parent: [u8; 32],
    time: WallTime,
    changes: &[MetaChange],
) -> (Vec<u8>, [u8; 32]) {
    let mut body = Vec::new();
    // lengths first: the header is written once they are known
    let mut list = Vec::new();
    let mut values = 0u64;
    for c in changes {
        match c {
            MetaChange::Set { key, len, sha256 } => {
                list.push(OP_SET);
                encode_key(&mut list, key);
                list.extend(len.to_le_bytes());
                list.extend(sha256);
                values += len;
            }
            MetaChange::Remove { key } => {
                list.push(OP_REMOVE);
                encode_key(&mut list, key);
            }
        }
    }
    let meta_len = RECORD_HEADER + 32 + 8 + 4 + 4 + list.len() + 32;
    RecordHeader {
        kind: KIND_COMMIT,
        meta_len: meta_len as u32,
        length: meta_len as u64 + values,
        seq,
    }
    .encode(&mut body);
    body.extend(parent);
    body.extend(time.secs.to_le_bytes());
    body.extend(time.nanos.to_le_bytes());
    body.extend((changes.len() as u32).to_le_bytes());
    body.extend(list);
    let hash = sha256(&body);
    (body, hash)
}

/// A cursor over metadata bytes.
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("the metadata ends early")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32_at(self.take(4)?, 0))
    }
    pub fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64_at(self.take(8)?, 0))
    }
    pub fn hash(&mut self) -> Result<[u8; 32], &'static str> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32)?);
        Ok(h)
    }
    pub fn key(&mut self) -> Result<String, &'static str> {
        let n = self.u16()? as usize;
        let k = core::str::from_utf8(self.take(n)?).map_err(|_| "a key is not UTF-8")?;
        check_key(k).map_err(|_| "a key is malformed")?;
        Ok(k.into())
    }
    pub fn time(&mut self) -> Result<WallTime, &'static str> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err("a time has more than 10^9 nanoseconds");
        }
        Ok(WallTime { secs, nanos })
    }
    pub fn done(&self) -> bool {
        self.pos == self.b.len()
    }
}

/// Parses a commit body (metadata without its hash).
pub fn decode_commit_body(body: &[u8]) -> Result<CommitMeta, &'static str> {
    let header = RecordHeader::decode(body)?;
    if header.kind != KIND_COMMIT {
        return Err("not a commit");
    }
    if body.len() + 32 != header.meta_len as usize {
        return Err("the commit's metadata length does not match its header");
    }
    let mut r = Reader::new(body);
    r.take(RECORD_HEADER)?;
    let parent = r.hash()?;
    let time = r.time()?;
    let n = r.u32()? as usize;
    // each change takes at least 4 bytes: a count that cannot fit is damage
    if n > body.len() / 4 {
        return Err("the change count is larger than the metadata");
    }
    let mut changes = Vec::with_capacity(n);
    let mut values = 0u64;
    for _ in 0..n {
        let op = r.u8()?;
        let key = r.key()?;
        changes.push(match op {
            OP_SET => {
                let len = r.u64()?;
                let sha256 = r.hash()?;
                values = values.checked_add(len).ok_or("value lengths overflow")?;
                MetaChange::Set { key, len, sha256 }
            }
            OP_REMOVE => MetaChange::Remove { key },
            _ => return Err("unknown change opcode"),
        });
    }
    if !r.done() {
        return Err("bytes after the change list");
    }
    if u64::from(header.meta_len).checked_add(values) != Some(header.length) {
        return Err("the record length is not its metadata plus its values");
    }
    Ok(CommitMeta {
        header,
        parent,
        time,
        changes,
    })
}

/// One value of a checkpoint's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointEntry {
    pub key: String,
    pub len: u64,
    pub sha256: [u8; 32],
    pub modified: WallTime,
}

/// A checkpoint's metadata: the state after commit `header.seq`, and the bodies of the
/// commits kept in the history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointMeta {
    pub header: RecordHeader,
    pub tip: [u8; 32],
    pub history: Vec<Vec<u8>>,
    pub entries: Vec<CheckpointEntry>,
}

/// The metadata of a checkpoint (with its trailing check hash).
pub fn encode_checkpoint(
    seq: u64,
    tip: [u8; 32],
    history: &[&[u8]],
    entries: &[CheckpointEntry],
) -> Vec<u8> {
    let mut rest = Vec::new();
    rest.extend(tip);
    rest.extend((history.len() as u32).to_le_bytes());
    for h in history {
        rest.extend((h.len() as u32).to_le_bytes());
        rest.extend(*h);
    }
    rest.extend((entries.len() as u32).to_le_bytes());
    let mut values = 0u64;
    for e in entries {
        encode_key(&mut rest, &e.key);
        rest.extend(e.len.to_le_bytes());
        rest.extend(e.sha256);
        rest.extend(e.modified.secs.to_le_bytes());
        rest.extend(e.modified.nanos.to_le_bytes());
        values += e.len;
    }
    let meta_len = RECORD_HEADER + rest.len() + 32;
    let mut meta = Vec::with_capacity(meta_len);
    RecordHeader {
        kind: KIND_CHECKPOINT,
        meta_len: meta_len as u32,
        length: meta_len as u64 + values,
        seq,
    }
    .encode(&mut meta);
    meta.extend(rest);
    let check = sha256(&meta);
    meta.extend(check);
    meta
}

/// Parses a checkpoint's metadata (with its check hash), checking it.
pub fn decode_checkpoint(meta: &[u8]) -> Result<CheckpointMeta, &'static str> {
    let header = RecordHeader::decode(meta)?;
    if header.kind != KIND_CHECKPOINT || meta.len() != header.meta_len as usize {
        return Err("not a checkpoint");
    }
    let (body, check) = meta.split_at(meta.len() - 32);
    if sha256(body) != check {
        return Err("the checkpoint's metadata does not match its SHA-256");
    }
    let mut r = Reader::new(body);
    r.take(RECORD_HEADER)?;
    let tip = r.hash()?;
    let nhist = r.u32()? as usize;
    if nhist > body.len() / 4 {
        return Err("the history count is larger than the metadata");
    }
    let mut history = Vec::with_capacity(nhist);
    for _ in 0..nhist {
        let n = r.u32()? as usize;
        history.push(r.take(n)?.to_vec());
    }
    let n = r.u32()? as usize;
    if n > body.len() / 54 {
        return Err("the entry count is larger than the metadata");
    }
    let mut entries: Vec<CheckpointEntry> = Vec::with_capacity(n);
    let mut values = 0u64;
    for _ in 0..n {
        let e = CheckpointEntry {
            key: r.key()?,
            len: r.u64()?,
            sha256: r.hash()?,
            modified: r.time()?,
        };
        if let Some(prev) = entries.last() {
            if prev.key.as_bytes() >= e.key.as_bytes() {
                return Err("the checkpoint's keys are not sorted and unique");
            }
        }
        values = values.checked_add(e.len).ok_or("value lengths overflow")?;
        entries.push(e);
    }
    if !r.done() {
        return Err("bytes after the checkpoint's index");
    }
    if u64::from(header.meta_len).checked_add(values) != Some(header.length) {
        return Err("the record length is not its metadata plus its values");
    }
    Ok(CheckpointMeta {
        header,
        tip,
        history,
        entries,
    })
}

/// Checks a key: non-empty, at most [`MAX_KEY`] bytes, `/`-separated segments that are neither
/// empty, `.` nor `..`, and no NUL.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("it is empty");
    }
    if key.len() > MAX_KEY {
        return Err("it is longer than 1024 bytes");
    }
    if key.contains('\0') {
        return Err("it contains a NUL byte");
    }
    for seg in key.split('/') {
        match seg {
            "" => return Err("it has an empty segment (a leading, trailing or doubled '/')"),
            "." | ".." => return Err("it has a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sup() -> Super {
        Super {
            sector_size: 512,
            sectors: 100,
            region_sectors: 49,
            gen: 11,
            seq: 7,
            epoch: 3,
            region: 1,
            head: 12,
            tip: [9; 32],
            formatted: WallTime {
                secs: 1_700_000_000,
                nanos: 5,
            },
        }
    }

    #[test]
    fn superblock_round_trips_and_refuses_damage() {
        let s = sup();
        let b = s.encode(1);
        assert_eq!(b.len(), 512);
        assert_eq!(&b[..8], MAGIC);
        assert_eq!(Super::decode(&b, 1), Ok(s));
        // written for the other slot: a misdirected write
        assert!(
            matches!(Super::decode(&b, 0), Err(SuperFault::Damaged(m)) if m.contains("misdirected"))
        );
        let mut flipped = b.clone();
        flipped[40] ^= 0x10;
        assert!(
            matches!(Super::decode(&flipped, 1), Err(SuperFault::Damaged(m)) if m.contains("CRC-32C"))
        );
        assert_eq!(Super::decode(&[0u8; 512], 0), Err(SuperFault::Zeroed));
        let mut elf = vec![0u8; 512];
        elf[..4].copy_from_slice(b"\x7fELF");
        let Err(SuperFault::Foreign(first)) = Super::decode(&elf, 0) else {
            panic!("an ELF header is foreign");
        };
        assert!(describe_foreign(&first).contains("7f 45 4c 46"));
        assert!(describe_foreign(&first).contains("\\x7fELF"));
    }

    #[test]
    fn sectors_check_their_crc_seq_tag_and_place() {
        let mut f = Framer::new(512, 40, 5, 2);
        let data: Vec<u8> = (0..1200u32).map(|i| i as u8).collect();
        f.push(&data);
        f.finish();
        let (at, buf) = f.take_sealed();
        assert_eq!(at, 40);
        assert_eq!(buf.len(), 3 * 512, "1200 bytes over 496-byte payloads");
        assert_eq!(sectors_for(1200, 496), 3);
        for (i, s) in buf.chunks(512).enumerate() {
            assert_eq!(check(s, 40 + i as u64, 5, 2), Ok(()));
        }
        let s0 = &buf[..512];
        assert_eq!(&s0[..496], &data[..496]);
        // the same bytes read from another sector number, or as another commit
        assert_eq!(check(s0, 41, 5, 2), Err(SectorFault::Checksum));
        assert_eq!(
            check(s0, 40, 6, 2),
            Err(SectorFault::Stale { seq: 5, tag: 2 })
        );
        assert_eq!(
            check(s0, 40, 5, 3),
            Err(SectorFault::Stale { seq: 5, tag: 2 })
        );
        assert_eq!(check(&[0u8; 512], 40, 5, 2), Err(SectorFault::Zeroed));
        let mut torn = s0.to_vec();
        torn[300..].fill(0);
        assert_eq!(check(&torn, 40, 5, 2), Err(SectorFault::Checksum));
    }

    #[test]
    fn commit_bodies_round_trip_and_hash_their_changes() {
        let changes = vec![
            MetaChange::Set {
                key: "a/b".into(),
                len: 3,
                sha256: sha256(b"abc"),
            },
            MetaChange::Remove { key: "c".into() },
        ];
        let t = WallTime {
            secs: 10,
            nanos: 20,
        };
        let (body, hash) = encode_commit_body(4, [1; 32], t, &changes);
        assert_eq!(hash, sha256(&body));
        let m = decode_commit_body(&body).unwrap();
        assert_eq!(m.header.seq, 4);
        assert_eq!(m.header.length, u64::from(m.header.meta_len) + 3);
        assert_eq!((m.parent, m.time, m.changes), ([1; 32], t, changes.clone()));
        // another parent is another commit
        let (_, other) = encode_commit_body(4, [2; 32], t, &changes);
        assert_ne!(hash, other);
        // a truncated body is refused, not misread
        assert!(decode_commit_body(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn checkpoints_round_trip_and_detect_damage() {
        let (body, _) = encode_commit_body(1, [0; 32], WallTime::default(), &[]);
        let entries = vec![
            CheckpointEntry {
                key: "a".into(),
                len: 5,
                sha256: [3; 32],
                modified: WallTime { secs: 1, nanos: 2 },
            },
            CheckpointEntry {
                key: "b/c".into(),
                len: 0,
                sha256: [4; 32],
                modified: WallTime::default(),
            },
        ];
        let meta = encode_checkpoint(1, [7; 32], &[&body], &entries);
        let c = decode_checkpoint(&meta).unwrap();
        assert_eq!(c.header.length, meta.len() as u64 + 5);
        assert_eq!(
            (c.tip, c.history, c.entries),
            ([7; 32], vec![body], entries)
        );
        let mut bad = meta.clone();
        bad[30] ^= 1;
        assert!(decode_checkpoint(&bad).is_err());
    }

    #[test]
    fn keys() {
        for ok in ["a", "a/b", "a.b/c d", "é/ü"] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", ".", "a/../b", "a\0"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"x".repeat(1025)).is_err());
    }
}
