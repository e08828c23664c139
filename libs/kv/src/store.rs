//! The store: mount (rebuild the index from the log), commits, compaction, reads.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Bound;

use uni_runtime::device::{
    Block, BlockError, Change, Changed, Clock, Commit, CommitHash, EntryKind, KvError, KvRo, KvRw,
    WallTime,
};

use crate::error::{io, MountError};
use crate::format::{
    self, check_key, decode_checkpoint, decode_commit_body, encode_checkpoint, encode_commit_body,
    sectors_for, sha256, tag_of, CheckpointEntry, Framer, MetaChange, RecordHeader, Super,
    SuperFault, KIND_CHECKPOINT, MAGIC, MIN_REGION_SECTORS, SUPERBLOCKS,
};

/// The most commits [`KvRw::log`] returns, and a checkpoint keeps.
pub const HISTORY_KEPT: usize = 64;
/// The most bytes of commit metadata a checkpoint keeps: the oldest commits go first.
pub const HISTORY_BYTES: usize = 64 * 1024;
/// Sectors per device call when reading or writing much.
const CHUNK: u64 = 128;

/// Where a value's bytes are: `offset` bytes into the record that starts at sector `record`,
/// whose sectors carry `seq` and `tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    record: u64,
    offset: u64,
    seq: u64,
    tag: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Disk(Loc),
    /// The `n`th value of the batch being committed (only while a commit runs).
    Batch(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    at: Where,
    len: u64,
    sha256: [u8; 32],
    modified: WallTime,
}

/// A commit as the log keeps it: its body (what its hash covers) and its parsed form.
#[derive(Debug, Clone)]
struct Summary {
    body: Vec<u8>,
    commit: Commit,
}

impl Summary {
    fn new(body: Vec<u8>, meta: &format::CommitMeta) -> Summary {
        let hash = sha256(&body);
        Summary {
            body,
            commit: Commit {
                seq: meta.header.seq,
                hash: CommitHash(hash),
                parent: (meta.parent != [0; 32]).then_some(CommitHash(meta.parent)),
                time: meta.time,
                changes: meta
                    .changes
                    .iter()
                    .map(|c| match c {
                        MetaChange::Set { key, len, sha256 } => Changed::Set {
                            key: key.clone(),
                            size: *len,
                            sha256: *sha256,
                        },
                        MetaChange::Remove { key } => Changed::Removed { key: key.clone() },
                    })
                    .collect(),
            },
        }
    }
}

/// Figures about a mounted store, from [`Store::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Values stored.
    pub values: usize,
    /// Their total size in bytes.
    pub value_bytes: u64,
    /// The last commit's number.
    pub seq: u64,
    /// Compactions so far.
    pub compactions: u32,
    /// The device's sector size.
    pub sector_size: u32,
    /// Bytes of one region: the most the log (live data and overhead) can take.
    pub capacity: u64,
    /// Bytes of the region the log uses now.
    pub used: u64,
}

/// A kv_rw store over a block device `B`, stamping commits with the wall time of `C`.
///
/// [`mount`](Store::mount) opens an existing store, [`format`](Store::format) makes a new one;
/// mount never formats. See the [crate docs](crate) for the guarantees and
/// docs/kv-rw-format.md for the format.
#[derive(Debug)]
pub struct Store<B, C> {
    block: B,
    clock: C,
    /// What both superblocks hold (or, after a failed second superblock write, the first).
    sup: Super,
    index: BTreeMap<String, Entry>,
    /// The latest commits, oldest first, at most [`HISTORY_KEPT`].
    history: VecDeque<Summary>,
    notes: Vec<String>,
    /// Set while a commit runs (so a commit whose future was dropped leaves it set), and
    /// after a device error in the write path: writes are refused until a new mount.
    poisoned: Option<String>,
}

const CANCELLED: &str =
    "a change was cancelled before it completed, so what is in memory may not match the device";

enum LoadError {
    Damaged(u64, String),
    Io(String),
}

/// A failed commit: the error, and whether the commit is durable all the same.
struct Failed {
    error: KvError,
    durable: bool,
}

impl From<KvError> for Failed {
    fn from(error: KvError) -> Failed {
        Failed {
            error,
            durable: false,
        }
    }
}

type Undo = Vec<(String, Option<Entry>)>;

fn dict_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        let mut p = String::with_capacity(key.len() + 1);
        p.push_str(key);
        p.push('/');
        p
    }
}

fn children<'a>(
    index: &'a BTreeMap<String, Entry>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
    index
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(prefix))
}

fn is_dictionary(index: &BTreeMap<String, Entry>, key: &str) -> bool {
    key.is_empty() || children(index, &dict_prefix(key)).next().is_some()
}

fn valid_key(key: &str) -> Result<(), KvError> {
    check_key(key).map_err(|why| KvError::InvalidKey {
        key: key.into(),
        why,
    })
}

/// Sets `key` in `index`, keeping the tree a tree: no value under a value, no value where a
/// dictionary is.
fn apply_set(
    index: &mut BTreeMap<String, Entry>,
    key: &str,
    entry: Entry,
    undo: &mut Undo,
) -> Result<(), KvError> {
    if is_dictionary(index, key) {
        return Err(KvError::ValueExpected(key.into()));
    }
    for (i, _) in key.match_indices('/') {
        if index.contains_key(&key[..i]) {
            return Err(KvError::DictionaryExpected(key[..i].into()));
        }
    }
    let old = index.insert(key.into(), entry);
    undo.push((key.into(), old));
    Ok(())
}

/// Removes the value `key`, or every value under the dictionary `key`.
fn apply_remove(
    index: &mut BTreeMap<String, Entry>,
    key: &str,
    undo: &mut Undo,
) -> Result<(), KvError> {
    if let Some(old) = index.remove(key) {
        undo.push((key.into(), Some(old)));
        return Ok(());
    }
    let prefix = dict_prefix(key);
    let under: Vec<String> = children(index, &prefix).map(|(k, _)| k.clone()).collect();
    if under.is_empty() {
        return Err(KvError::NotFound(key.into()));
    }
    for k in under {
        let old = index.remove(&k);
        undo.push((k, old));
    }
    Ok(())
}

/// The bytes an entry takes in a checkpoint: its index record and its value.
fn footprint(key: &str, e: &Entry) -> u64 {
    (2 + key.len() + 8 + 32 + 12) as u64 + e.len
}

async fn load_read<B: Block>(block: &B, at: u64, buf: &mut [u8]) -> Result<(), LoadError> {
    block
        .read(at, buf)
        .await
        .map_err(|e| LoadError::Io(format!("reading the log (sector {at}): {e}")))
}

async fn read_sectors<B: Block>(
    block: &B,
    at: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<(), KvError> {
    block
        .read(at, buf)
        .await
        .map_err(|e| io(&format!("reading {what} (sector {at})"), e))
}

impl<B: Block, C: Clock> Store<B, C> {
    // -----------------------------------------------------------------------------------------
    // Format and mount
    // -----------------------------------------------------------------------------------------

    /// Makes a new, empty store on `block`, erasing what it held. The only way a store comes
    /// to be: [`mount`](Store::mount) never formats.
    pub async fn format(block: B, clock: C) -> Result<Self, MountError> {
        let info = block.info();
        if info.read_only {
            return Err(MountError::Unsupported(
                "the device is read-only: it cannot be formatted".into(),
            ));
        }
        if info.sector_size < 512 || !info.sector_size.is_power_of_two() {
            return Err(MountError::Unsupported(format!(
                "the device's sectors are {} bytes; kv_rw needs a power of two of at least 512",
                info.sector_size
            )));
        }
        let min = SUPERBLOCKS + 2 * MIN_REGION_SECTORS;
        if info.sectors < min {
            return Err(MountError::Unsupported(format!(
                "the device has {} sectors of {} bytes; a kv_rw store needs at least {min}",
                info.sectors, info.sector_size
            )));
        }
        let meta = encode_checkpoint(0, [0; 32], &[], &[]);
        let tag = tag_of(meta[meta.len() - 32..].try_into().unwrap_or(&[0; 32]));
        let mut f = Framer::new(info.sector_size, SUPERBLOCKS, 0, tag);
        f.push(&meta);
        f.finish();
        let (at, buf) = f.take_sealed();
        let sup = Super {
            sector_size: info.sector_size,
            sectors: info.sectors,
            region_sectors: (info.sectors - SUPERBLOCKS) / 2,
            gen: 1,
            seq: 0,
            epoch: 1,
            region: 0,
            head: (buf.len() / info.sector_size as usize) as u64,
            tip: [0; 32],
            formatted: clock.wall(),
        };
        let mut supers = sup.encode(0);
        supers.extend(sup.encode(1));
        let fail = |doing: &str, e: BlockError| MountError::Io(format!("formatting: {doing}: {e}"));
        // the log first, then the superblocks that point at it
        block
            .write(at, &buf)
            .await
            .map_err(|e| fail("writing the first checkpoint", e))?;
        block.flush().await.map_err(|e| fail("flushing", e))?;
        block
            .write(0, &supers)
            .await
            .map_err(|e| fail("writing the superblocks", e))?;
        block.flush().await.map_err(|e| fail("flushing", e))?;
        Ok(Store {
            block,
            clock,
            sup,
            index: BTreeMap::new(),
            history: VecDeque::new(),
            notes: Vec::new(),
            poisoned: None,
        })
    }

    /// Opens the store on `block`: reads both superblocks, then the whole log, checking every
    /// sector's CRC, every commit's hash and parent, and rebuilds the index in memory.
    ///
    /// A device that holds no store is [`MountError::NotAStore`]; damage is
    /// [`MountError::Damaged`], naming the first damaged sector. A commit that was being
    /// written when the power went (so never acknowledged) is dropped, and a damaged copy of
    /// the superblock is survived from the other: both say so in [`notes`](Store::notes).
    pub async fn mount(block: B, clock: C) -> Result<Self, MountError> {
        let info = block.info();
        if info.sectors < SUPERBLOCKS || info.sector_size < 512 {
            return Err(MountError::NotAStore(format!(
                "the device has {} sectors of {} bytes, too few for a superblock",
                info.sectors, info.sector_size
            )));
        }
        let ss = info.sector_size as usize;
        let mut buf = vec![0u8; 2 * ss];
        block.read(0, &mut buf).await.map_err(|e| {
            MountError::Io(format!("reading the superblocks (sectors 0 and 1): {e}"))
        })?;
        let copies = [Super::decode(&buf[..ss], 0), Super::decode(&buf[ss..], 1)];
        let mut valid: Vec<(u8, Super)> = copies
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| c.as_ref().ok().map(|s| (slot as u8, *s)))
            .collect();
        if valid.is_empty() {
            return Err(Self::not_mountable(&copies));
        }
        valid.sort_by_key(|(_, s)| core::cmp::Reverse(s.gen));
        let mut notes = Vec::new();
        if valid.len() == 1 {
            let (ok, bad) = (valid[0].0, 1 - valid[0].0);
            let why = match &copies[bad as usize] {
                Err(SuperFault::Damaged(m)) => m.clone(),
                Err(SuperFault::Zeroed) => "it is zeroed".into(),
                Err(SuperFault::Foreign(first)) => format::describe_foreign(first),
                Ok(_) => String::new(),
            };
            notes.push(format!(
                "superblock copy {bad} (sector {bad}) is damaged ({why}); mounted from copy {ok} \
                 (commit {}); the next change rewrites both",
                valid[0].1.seq
            ));
        } else if valid[0].1.gen == valid[1].1.gen && valid[0].1 != valid[1].1 {
            return Err(MountError::Damaged {
                sector: 0,
                what: format!(
                    "superblock copies 0 and 1 are both generation {} but differ",
                    valid[0].1.gen
                ),
            });
        }
        let (slot, newest) = valid[0];
        Self::check_geometry(&newest, &info)?;
        let loaded = match Self::load(&block, &newest, slot).await {
            Ok(l) => l,
            Err(LoadError::Io(e)) => return Err(MountError::Io(e)),
            Err(LoadError::Damaged(sector, what)) => {
                // An unacknowledged change: the newer copy names sectors the older one does not
                // vouch for, and those are what is damaged.
                let older = valid.get(1).copied().filter(|(_, o)| {
                    o.gen.checked_add(1) == Some(newest.gen) && !Self::vouches(o, sector)
                });
                let Some((oslot, older)) = older else {
                    return Err(MountError::Damaged { sector, what });
                };
                Self::check_geometry(&older, &info)?;
                match Self::load(&block, &older, oslot).await {
                    Ok(l) => {
                        notes.push(format!(
                            "the last change (superblock generation {}) was not completely \
                             written when the device stopped (sector {sector}: {what}); mounted \
                             at commit {}, the last complete one",
                            newest.gen, older.seq
                        ));
                        return Ok(Self::mounted(block, clock, older, l, notes));
                    }
                    Err(LoadError::Io(e)) => return Err(MountError::Io(e)),
                    Err(LoadError::Damaged(sector, what)) => {
                        return Err(MountError::Damaged { sector, what })
                    }
                }
            }
        };
        Ok(Self::mounted(block, clock, newest, loaded, notes))
    }

    fn mounted(
        block: B,
        clock: C,
        sup: Super,
        (index, history): (BTreeMap<String, Entry>, VecDeque<Summary>),
        notes: Vec<String>,
    ) -> Self {
        Store {
            block,
            clock,
            sup,
            index,
            history,
            notes,
            poisoned: None,
        }
    }

    fn not_mountable(copies: &[Result<Super, SuperFault>; 2]) -> MountError {
        for (slot, c) in copies.iter().enumerate() {
            if let Err(SuperFault::Damaged(m)) = c {
                let other = match &copies[1 - slot] {
                    Err(SuperFault::Damaged(o)) => format!("; copy {}: {o}", 1 - slot),
                    _ => format!("; copy {} is not a superblock either", 1 - slot),
                };
                return MountError::Damaged {
                    sector: slot as u64,
                    what: format!("{m}{other}"),
                };
            }
        }
        let magic = format::describe_foreign(MAGIC);
        MountError::NotAStore(match (&copies[0], &copies[1]) {
            (Err(SuperFault::Zeroed), Err(SuperFault::Zeroed)) => {
                "its first two sectors are zeroed (a blank disk)".into()
            }
            (Err(SuperFault::Foreign(first)), _) => format!(
                "sector 0 is not a kv_rw superblock: {}, where a store's magic is{}",
                format::describe_foreign(first),
                &magic["it starts with".len()..]
            ),
            _ => "sector 0 is zeroed and sector 1 is not a superblock".into(),
        })
    }

    fn check_geometry(s: &Super, info: &uni_runtime::device::BlockInfo) -> Result<(), MountError> {
        if s.sector_size != info.sector_size {
            return Err(MountError::Unsupported(format!(
                "the store was formatted with {}-byte sectors; the device has {}-byte sectors",
                s.sector_size, info.sector_size
            )));
        }
        if s.sectors > info.sectors {
            return Err(MountError::Unsupported(format!(
                "the store was formatted on {} sectors; the device has only {} (was it cut \
                 short?)",
                s.sectors, info.sectors
            )));
        }
        Ok(())
    }

    /// Whether the log `s` describes covers `sector`.
    fn vouches(s: &Super, sector: u64) -> bool {
        let start = s.region_start(s.region);
        (start..start + s.head).contains(&sector)
    }

    /// Reads and checks the log `sup` describes.
    #[allow(clippy::type_complexity)]
    async fn load(
        block: &B,
        sup: &Super,
        slot: u8,
    ) -> Result<(BTreeMap<String, Entry>, VecDeque<Summary>), LoadError> {
        let ss = sup.sector_size as usize;
        let p = sup.payload();
        let start = sup.region_start(sup.region);
        let end = start + sup.head;
        let mut index = BTreeMap::new();
        let mut history: VecDeque<Summary> = VecDeque::new();
        let mut last: Option<(u64, [u8; 32])> = None;
        let mut pos = start;
        let mut chunk = vec![0u8; CHUNK as usize * ss];
        while pos < end {
            let first = last.is_none();
            let name0 = match last {
                None => format!("the checkpoint that starts region {}", sup.region),
                Some((s, _)) => format!(
                    "the first sector of commit {} (its header)",
                    s.wrapping_add(1)
                ),
            };
            load_read(block, pos, &mut chunk[..ss]).await?;
            let (seq, tag) = format::trailer(&chunk[..ss], pos)
                .map_err(|f| LoadError::Damaged(pos, format!("{name0}: {}", f.describe(0, 0))))?;
            let bad = |at: u64, what: String| LoadError::Damaged(at, what);
            if let Some((s, _)) = last {
                if Some(seq) != s.checked_add(1) {
                    return Err(bad(
                        pos,
                        format!(
                            "{name0}: it is a sector of commit {seq} (a lost or misdirected \
                             write)"
                        ),
                    ));
                }
            }
            let header =
                RecordHeader::decode(&chunk[..p]).map_err(|e| bad(pos, format!("{name0}: {e}")))?;
            let name = if header.kind == KIND_CHECKPOINT {
                format!("the checkpoint of commit {}", header.seq)
            } else {
                format!("commit {}", header.seq)
            };
            if header.seq != seq {
                return Err(bad(pos, format!("{name}: its header and sector disagree")));
            }
            if first != (header.kind == KIND_CHECKPOINT) {
                return Err(bad(
                    pos,
                    format!("{name}: a region's log is one checkpoint, then commits"),
                ));
            }
            let nsec = sectors_for(header.length, p);
            if nsec > end - pos {
                return Err(bad(
                    pos,
                    format!("{name}: it runs past the end of the log (sector {end})"),
                ));
            }
            // the metadata, whole, in memory
            let meta_len = header.meta_len as usize;
            let msec = sectors_for(meta_len as u64, p);
            let mut meta = Vec::with_capacity(meta_len);
            let mut s = pos;
            while s < pos + msec {
                let n = (pos + msec - s).min(CHUNK);
                load_read(block, s, &mut chunk[..n as usize * ss]).await?;
                for (i, sector) in chunk[..n as usize * ss].chunks(ss).enumerate() {
                    let abs = s + i as u64;
                    format::check(sector, abs, seq, tag).map_err(|f| {
                        bad(
                            abs,
                            format!("{name}'s header and index: {}", f.describe(seq, tag)),
                        )
                    })?;
                    let want = (meta_len - meta.len()).min(p);
                    meta.extend_from_slice(&sector[..want]);
                }
                s += n;
            }
            // parse and check it, and apply it
            let mut parts: Vec<(u64, u64, String)> = Vec::new();
            let mut offset = meta_len as u64;
            let loc = |offset| Loc {
                record: pos,
                offset,
                seq,
                tag,
            };
            if header.kind == KIND_CHECKPOINT {
                let c = decode_checkpoint(&meta).map_err(|e| bad(pos, format!("{name}: {e}")))?;
                if tag != tag_of(meta[meta_len - 32..].try_into().unwrap_or(&[0; 32])) {
                    return Err(bad(pos, format!("{name}: its sectors carry another tag")));
                }
                for body in &c.history {
                    let m = decode_commit_body(body)
                        .map_err(|e| bad(pos, format!("{name}: its history: {e}")))?;
                    if let Some(prev) = history.back() {
                        if Some(m.header.seq) != prev.commit.seq.checked_add(1)
                            || m.parent != prev.commit.hash.0
                        {
                            return Err(bad(
                                pos,
                                format!(
                                    "{name}: its history: commit {} does not follow commit {}",
                                    m.header.seq, prev.commit.seq
                                ),
                            ));
                        }
                    }
                    history.push_back(Summary::new(body.clone(), &m));
                }
                if let Some(h) = history.back() {
                    if h.commit.seq != c.header.seq || h.commit.hash.0 != c.tip {
                        return Err(bad(
                            pos,
                            format!("{name}: its history does not end at its commit"),
                        ));
                    }
                }
                for e in c.entries {
                    parts.push((offset, e.len, e.key.clone()));
                    let entry = Entry {
                        at: Where::Disk(loc(offset)),
                        len: e.len,
                        sha256: e.sha256,
                        modified: e.modified,
                    };
                    offset += e.len;
                    apply_set(&mut index, &e.key, entry, &mut Vec::new())
                        .map_err(|e| bad(pos, format!("{name}: its index is not a tree: {e}")))?;
                }
                last = Some((c.header.seq, c.tip));
            } else {
                let (body, stored) = meta.split_at(meta_len - 32);
                let hash = sha256(body);
                if hash[..] != *stored || tag != tag_of(&hash) {
                    return Err(bad(
                        pos,
                        format!("{name}: its metadata does not match its hash"),
                    ));
                }
                let m = decode_commit_body(body).map_err(|e| bad(pos, format!("{name}: {e}")))?;
                let (pseq, phash) = last.unwrap_or_default();
                if Some(m.header.seq) != pseq.checked_add(1) || m.parent != phash {
                    return Err(bad(
                        pos,
                        format!("{name}: its parent is not commit {pseq}, the one before it"),
                    ));
                }
                let mut scratch = Vec::new();
                for c in &m.changes {
                    let r = match c {
                        MetaChange::Set { key, len, sha256 } => {
                            parts.push((offset, *len, key.clone()));
                            let entry = Entry {
                                at: Where::Disk(loc(offset)),
                                len: *len,
                                sha256: *sha256,
                                modified: m.time,
                            };
                            offset += len;
                            apply_set(&mut index, key, entry, &mut scratch)
                        }
                        MetaChange::Remove { key } => apply_remove(&mut index, key, &mut scratch),
                    };
                    r.map_err(|e| bad(pos, format!("{name} cannot be applied: {e}")))?;
                    scratch.clear();
                }
                history.push_back(Summary::new(body.to_vec(), &m));
                while history.len() > HISTORY_KEPT {
                    history.pop_front();
                }
                last = Some((m.header.seq, hash));
            }
            // the values' sectors: checked, not kept
            let mut s = pos + msec;
            while s < pos + nsec {
                let n = (pos + nsec - s).min(CHUNK);
                load_read(block, s, &mut chunk[..n as usize * ss]).await?;
                for (i, sector) in chunk[..n as usize * ss].chunks(ss).enumerate() {
                    let abs = s + i as u64;
                    if let Err(f) = format::check(sector, abs, seq, tag) {
                        let what = Self::describe_part(&parts, (abs - pos) * p as u64, p as u64);
                        return Err(bad(
                            abs,
                            format!("{what}, in {name}: {}", f.describe(seq, tag)),
                        ));
                    }
                }
                s += n;
            }
            pos += nsec;
        }
        if last != Some((sup.seq, sup.tip)) {
            let (lseq, _) = last.unwrap_or_default();
            return Err(LoadError::Damaged(
                u64::from(slot),
                format!(
                    "superblock copy {slot} names commit {} ({}…), but the log in region {} ends \
                     at commit {lseq}",
                    sup.seq,
                    &format::hex(&sup.tip)[..12],
                    sup.region
                ),
            ));
        }
        Ok((index, history))
    }

    /// Which values the record bytes `from..from + len` held.
    fn describe_part(parts: &[(u64, u64, String)], from: u64, len: u64) -> String {
        let to = from + len;
        let mut hit = parts
            .iter()
            .filter(|(o, l, _)| *o < to && o + l > from && *l > 0);
        match hit.next() {
            Some((o, l, key)) => {
                let a = from.saturating_sub(*o);
                let b = (to - o).min(*l);
                let more = hit.count();
                let more = if more > 0 {
                    format!(" and {more} more value(s)")
                } else {
                    String::new()
                };
                format!("it held bytes {a}..{b} of the value of {key:?} ({l} bytes){more}")
            }
            None => "it held the padding after the last value".into(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Reads
    // -----------------------------------------------------------------------------------------

    fn value(&self, key: &str) -> Result<&Entry, KvError> {
        match self.index.get(key) {
            Some(e) => Ok(e),
            None if is_dictionary(&self.index, key) => Err(KvError::ValueExpected(key.into())),
            None => Err(KvError::NotFound(key.into())),
        }
    }

    /// Bytes `off..off + len` of the value `key`, checking each sector.
    async fn read_range(
        &self,
        key: &str,
        e: &Entry,
        off: u64,
        len: u64,
    ) -> Result<Vec<u8>, KvError> {
        let Where::Disk(loc) = e.at else {
            return Err(KvError::Io(
                String::from(CANCELLED) + "; mount the store again",
            ));
        };
        let len_usize = usize::try_from(len).map_err(|_| {
            KvError::Io(format!(
                "the value of {key:?} ({len} bytes) does not fit in memory"
            ))
        })?;
        let mut out = Vec::with_capacity(len_usize);
        if len == 0 {
            return Ok(out);
        }
        let ss = self.sup.sector_size as usize;
        let p = self.sup.payload() as u64;
        let (first, last) = (loc.offset + off, loc.offset + off + len);
        let (s0, s1) = (first / p, last.div_ceil(p));
        let mut buf = vec![0u8; (s1 - s0).min(CHUNK) as usize * ss];
        let mut s = s0;
        while s < s1 {
            let n = (s1 - s).min(CHUNK);
            let at = loc.record + s;
            read_sectors(
                &self.block,
                at,
                &mut buf[..n as usize * ss],
                &format!("{key:?}"),
            )
            .await?;
            for (i, sector) in buf[..n as usize * ss].chunks(ss).enumerate() {
                let idx = s + i as u64;
                format::check(sector, at + i as u64, loc.seq, loc.tag).map_err(|f| {
                    KvError::Damaged {
                        sector: at + i as u64,
                        what: format!(
                            "it held part of the value of {key:?} (commit {}): {}",
                            loc.seq,
                            f.describe(loc.seq, loc.tag)
                        ),
                    }
                })?;
                let (lo, hi) = (idx * p, idx * p + p);
                let a = first.max(lo) - lo;
                let b = last.min(hi) - lo;
                out.extend_from_slice(&sector[a as usize..b as usize]);
            }
            s += n;
        }
        Ok(out)
    }

    /// The whole value, checked against its SHA-256.
    async fn read_value(&self, key: &str, e: &Entry) -> Result<Vec<u8>, KvError> {
        let v = self.read_range(key, e, 0, e.len).await?;
        if sha256(&v) != e.sha256 {
            let sector = match e.at {
                Where::Disk(l) => l.record + l.offset / self.sup.payload() as u64,
                Where::Batch(_) => 0,
            };
            return Err(KvError::Damaged {
                sector,
                what: format!(
                    "the value of {key:?} ({} bytes from this sector on) does not match its \
                     SHA-256 {}",
                    e.len,
                    format::hex(&e.sha256)
                ),
            });
        }
        Ok(v)
    }

    /// What mount had to say: a damaged superblock copy it survived, an unacknowledged change
    /// it dropped. Empty when the store was clean.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Figures about the store.
    pub fn stats(&self) -> Stats {
        let ss = u64::from(self.sup.sector_size);
        Stats {
            values: self.index.len(),
            value_bytes: self.index.values().map(|e| e.len).sum(),
            seq: self.sup.seq,
            compactions: self.sup.epoch - 1,
            sector_size: self.sup.sector_size,
            capacity: self.sup.region_sectors * ss,
            used: self.sup.head * ss,
        }
    }

    /// Every value's key, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// The device.
    pub fn block(&self) -> &B {
        &self.block
    }

    /// Gives the device back.
    pub fn into_inner(self) -> B {
        self.block
    }

    // -----------------------------------------------------------------------------------------
    // Writes
    // -----------------------------------------------------------------------------------------

    fn writable(&self) -> Result<(), KvError> {
        if let Some(why) = &self.poisoned {
            return Err(KvError::Io(format!(
                "the store refuses changes: {why}; mount it again"
            )));
        }
        if self.block.info().read_only {
            return Err(KvError::Io("the store's device is read-only".into()));
        }
        Ok(())
    }

    fn undo(&mut self, undo: Undo) {
        for (k, old) in undo.into_iter().rev() {
            match old {
                Some(e) => self.index.insert(k, e),
                None => self.index.remove(&k),
            };
        }
    }

    async fn commit(&mut self, changes: &[Change<'_>]) -> Result<(), KvError> {
        self.writable()?;
        for c in changes {
            let (Change::Set(k, _) | Change::Remove(k)) = c;
            valid_key(k)?;
        }
        if changes.is_empty() {
            return Ok(());
        }
        let (Some(seq), Some(_)) = (self.sup.seq.checked_add(1), self.sup.gen.checked_add(2))
        else {
            return Err(KvError::Io(
                "the store has used up its commit numbers".into(),
            ));
        };
        self.poisoned = Some(CANCELLED.into());
        let time = self.clock.wall();
        let mut undo = Vec::new();
        let mut metas = Vec::with_capacity(changes.len());
        let mut values: Vec<&[u8]> = Vec::new();
        for c in changes {
            let r = match *c {
                Change::Set(key, value) => {
                    let entry = Entry {
                        at: Where::Batch(values.len()),
                        len: value.len() as u64,
                        sha256: sha256(value),
                        modified: time,
                    };
                    metas.push(MetaChange::Set {
                        key: key.into(),
                        len: entry.len,
                        sha256: entry.sha256,
                    });
                    values.push(value);
                    apply_set(&mut self.index, key, entry, &mut undo)
                }
                Change::Remove(key) => {
                    metas.push(MetaChange::Remove { key: key.into() });
                    apply_remove(&mut self.index, key, &mut undo)
                }
            };
            if let Err(e) = r {
                self.undo(undo);
                self.poisoned = None;
                return Err(e);
            }
        }
        let (body, hash) = encode_commit_body(seq, self.sup.tip, time, &metas);
        let header = match RecordHeader::decode(&body) {
            Ok(h) if h.meta_len as usize == body.len() + 32 => h,
            _ => {
                self.undo(undo);
                self.poisoned = None;
                return Err(KvError::Io(format!(
                    "a batch of {} changes is too large: its change list takes {} bytes, more \
                     than a commit can hold (4 GiB)",
                    changes.len(),
                    body.len()
                )));
            }
        };
        let summary = Summary::new(
            body,
            &format::CommitMeta {
                header,
                parent: self.sup.tip,
                time,
                changes: metas,
            },
        );
        let nsec = sectors_for(header.length, self.sup.payload());
        let r = if self.sup.head + nsec <= self.sup.region_sectors {
            self.append(summary, hash, header, &values).await
        } else {
            self.compact_into(Some(summary), &values, &undo).await
        };
        match r {
            Ok(()) => {
                self.poisoned = None;
                Ok(())
            }
            Err(Failed { error, durable }) => {
                if !durable {
                    self.undo(undo);
                }
                if let KvError::Io(why) = &error {
                    self.poisoned = Some(format!("a device error during commit {seq}: {why}"));
                } else {
                    self.poisoned = None;
                }
                Err(error)
            }
        }
    }

    /// Makes the batch values of the last commit point at where they now are.
    fn place(&mut self, summary: &Summary, record: u64, meta_len: u64, seq: u64, tag: u32) {
        let mut offsets = Vec::new();
        let mut o = meta_len;
        for c in &summary.commit.changes {
            if let Changed::Set { key, size, .. } = c {
                offsets.push((key.as_str(), o));
                o += size;
            }
        }
        for (j, (key, offset)) in offsets.into_iter().enumerate() {
            if let Some(e) = self.index.get_mut(key) {
                if e.at == Where::Batch(j) {
                    e.at = Where::Disk(Loc {
                        record,
                        offset,
                        seq,
                        tag,
                    });
                }
            }
        }
    }

    async fn append(
        &mut self,
        summary: Summary,
        hash: [u8; 32],
        header: RecordHeader,
        values: &[&[u8]],
    ) -> Result<(), Failed> {
        let seq = header.seq;
        let tag = tag_of(&hash);
        let at = self.sup.region_start(self.sup.region) + self.sup.head;
        let mut f = Framer::new(self.sup.sector_size, at, seq, tag);
        f.push(&summary.body);
        f.push(&hash);
        for v in values {
            f.push(v);
        }
        f.finish();
        let (at, buf) = f.take_sealed();
        let nsec = (buf.len() / self.sup.sector_size as usize) as u64;
        self.block.write(at, &buf).await.map_err(|e| {
            io(
                &format!("writing commit {seq} (sectors {at}..{})", at + nsec),
                e,
            )
        })?;
        let new = Super {
            gen: self.sup.gen.wrapping_add(1),
            seq,
            head: self.sup.head + nsec,
            tip: hash,
            ..self.sup
        };
        let r = self.publish(new).await;
        if r.is_ok() || r.as_ref().is_err_and(|f| f.durable) {
            self.place(&summary, at, u64::from(header.meta_len), seq, tag);
            self.history.push_back(summary);
            while self.history.len() > HISTORY_KEPT {
                self.history.pop_front();
            }
        }
        r
    }

    /// Writes superblock copy 0, flushes, then copy 1, flushes: once copy 0 is durable the
    /// change is, and after copy 1 both name it.
    async fn publish(&mut self, new: Super) -> Result<(), Failed> {
        let what = |n: u8| {
            format!(
                "writing superblock copy {n} (sector {n}) for commit {}",
                new.seq
            )
        };
        self.block
            .write(0, &new.encode(0))
            .await
            .map_err(|e| io(&what(0), e))?;
        self.block
            .flush()
            .await
            .map_err(|e| io(&format!("flushing commit {}", new.seq), e))?;
        self.sup = new;
        let second = async {
            self.block
                .write(1, &new.encode(1))
                .await
                .map_err(|e| io(&what(1), e))?;
            self.block
                .flush()
                .await
                .map_err(|e| io(&format!("flushing commit {}", new.seq), e))
        };
        let r = second.await;
        if let Err(e) = r {
            // copy 0 is durable: so is the change
            return Err(Failed {
                error: KvError::Io(format!(
                    "{e} (commit {} is durable: superblock copy 0 names it)",
                    new.seq
                )),
                durable: true,
            });
        }
        Ok(())
    }

    /// Rewrites the live state into the other region, with `summary` (the commit being made,
    /// if any) as its last commit, then switches to it. `undo` says what the commit changed,
    /// for the space figures of [`KvError::NoSpace`].
    async fn compact_into(
        &mut self,
        summary: Option<Summary>,
        values: &[&[u8]],
        undo: &Undo,
    ) -> Result<(), Failed> {
        let (seq, tip) = match &summary {
            Some(s) => (s.commit.seq, s.commit.hash.0),
            None => (self.sup.seq, self.sup.tip),
        };
        // the history it keeps: the newest commits whose bodies fit in HISTORY_BYTES
        let mut hist: Vec<&Summary> = self.history.iter().chain(summary.as_ref()).collect();
        if hist.len() > HISTORY_KEPT {
            hist.drain(..hist.len() - HISTORY_KEPT);
        }
        let mut bytes: usize = hist.iter().map(|s| s.body.len() + 4).sum();
        while bytes > HISTORY_BYTES {
            bytes -= hist[0].body.len() + 4;
            hist.remove(0);
        }
        let entries: Vec<CheckpointEntry> = self
            .index
            .iter()
            .map(|(k, e)| CheckpointEntry {
                key: k.clone(),
                len: e.len,
                sha256: e.sha256,
                modified: e.modified,
            })
            .collect();
        let p = self.sup.payload();
        let values_len: u64 = entries.iter().map(|e| e.len).sum();
        let mut meta = {
            let bodies: Vec<&[u8]> = hist.iter().map(|s| s.body.as_slice()).collect();
            encode_checkpoint(seq, tip, &bodies, &entries)
        };
        let mut nsec = sectors_for(meta.len() as u64 + values_len, p);
        if nsec > self.sup.region_sectors {
            // room first, history second
            hist.clear();
            meta = encode_checkpoint(seq, tip, &[], &entries);
            nsec = sectors_for(meta.len() as u64 + values_len, p);
        }
        if nsec > self.sup.region_sectors || u32::try_from(meta.len()).is_err() {
            return Err(self.no_space(nsec, undo).into());
        }
        let kept: VecDeque<Summary> = hist.into_iter().cloned().collect();
        let check: [u8; 32] = meta[meta.len() - 32..].try_into().unwrap_or([0; 32]);
        let tag = tag_of(&check);
        let region = 1 - self.sup.region;
        let start = self.sup.region_start(region);
        let mut f = Framer::new(self.sup.sector_size, start, seq, tag);
        f.push(&meta);
        let mut locs = Vec::with_capacity(self.index.len());
        let mut offset = meta.len() as u64;
        let writing = |at: u64| format!("compacting into region {region} (sector {at})");
        for (k, e) in &self.index {
            locs.push(Loc {
                record: start,
                offset,
                seq,
                tag,
            });
            offset += e.len;
            match e.at {
                Where::Batch(j) => f.push(values[j]),
                Where::Disk(_) => f.push(&self.read_value(k, e).await?),
            }
            if f.sealed_sectors() as u64 >= CHUNK {
                let (at, buf) = f.take_sealed();
                self.block
                    .write(at, &buf)
                    .await
                    .map_err(|e| io(&writing(at), e))?;
            }
        }
        f.finish();
        let (at, buf) = f.take_sealed();
        if !buf.is_empty() {
            self.block
                .write(at, &buf)
                .await
                .map_err(|e| io(&writing(at), e))?;
        }
        let new = Super {
            gen: self.sup.gen.wrapping_add(1),
            seq,
            epoch: self.sup.epoch.saturating_add(1),
            region,
            head: nsec,
            tip,
            ..self.sup
        };
        let r = self.publish(new).await;
        if r.is_ok() || r.as_ref().is_err_and(|f| f.durable) {
            for (e, loc) in self.index.values_mut().zip(locs) {
                e.at = Where::Disk(loc);
            }
            self.history = kept;
        }
        r
    }

    /// The space figures for a change that does not fit even after compaction: what it needs
    /// beyond what the store holds without it, and what is free beyond that.
    fn no_space(&self, after_sectors: u64, undo: &Undo) -> KvError {
        // the state before the change: the index, with the changed keys as they were
        let mut seen = BTreeSet::new();
        let (mut before, mut now) = (0u64, 0u64);
        for (k, old) in undo {
            if seen.insert(k.as_str()) {
                before += old.as_ref().map_or(0, |e| footprint(k, e));
                now += self.index.get(k).map_or(0, |e| footprint(k, e));
            }
        }
        let p = self.sup.payload();
        let ss = u64::from(self.sup.sector_size);
        let after = after_sectors * ss;
        let before_sectors = (after_sectors * p as u64)
            .saturating_sub(now)
            .saturating_add(before)
            .div_ceil(p as u64);
        let before = before_sectors * ss;
        let capacity = self.sup.region_sectors * ss;
        KvError::NoSpace {
            needed: after.saturating_sub(before),
            free: capacity.saturating_sub(before),
        }
    }

    /// Rewrites the live values into the other region now, reclaiming the space of
    /// overwritten and removed ones. Commits do this by themselves when the log is full.
    pub async fn compact(&mut self) -> Result<(), KvError> {
        self.writable()?;
        if self.sup.gen.checked_add(2).is_none() {
            return Err(KvError::Io(
                "the store has used up its generation numbers".into(),
            ));
        }
        self.poisoned = Some(CANCELLED.into());
        match self.compact_into(None, &[], &Vec::new()).await {
            Ok(()) => {
                self.poisoned = None;
                Ok(())
            }
            Err(Failed { error, .. }) => {
                self.poisoned = match &error {
                    KvError::Io(why) => Some(format!("a device error while compacting: {why}")),
                    _ => None,
                };
                Err(error)
            }
        }
    }
}

impl<B: Block, C: Clock> KvRo for Store<B, C> {
    async fn exists(&self, key: &str) -> Result<Option<EntryKind>, KvError> {
        if !key.is_empty() {
            valid_key(key)?;
        }
        Ok(if self.index.contains_key(key) {
            Some(EntryKind::Value)
        } else if is_dictionary(&self.index, key) {
            Some(EntryKind::Dictionary)
        } else {
            None
        })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, KvError> {
        let e = self.value(key)?;
        self.read_value(key, e).await
    }

    async fn get_partial(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>, KvError> {
        let e = self.value(key)?;
        let start = offset.min(e.len);
        let end = start.saturating_add(len as u64).min(e.len);
        self.read_range(key, e, start, end - start).await
    }

    async fn size(&self, key: &str) -> Result<u64, KvError> {
        Ok(self.value(key)?.len)
    }

    async fn list(&self, key: &str) -> Result<Vec<(String, EntryKind)>, KvError> {
        if !key.is_empty() {
            valid_key(key)?;
        }
        if self.index.contains_key(key) {
            return Err(KvError::DictionaryExpected(key.into()));
        }
        if !is_dictionary(&self.index, key) {
            return Err(KvError::NotFound(key.into()));
        }
        let prefix = dict_prefix(key);
        let mut out: Vec<(String, EntryKind)> = Vec::new();
        for (k, _) in children(&self.index, &prefix) {
            let rest = &k[prefix.len()..];
            let (name, kind) = match rest.split_once('/') {
                Some((dir, _)) => (dir, EntryKind::Dictionary),
                None => (rest, EntryKind::Value),
            };
            if out.last().map(|(n, _)| n.as_str()) != Some(name) {
                out.push((name.into(), kind));
            }
        }
        // "a/x" sorts after "a.txt" in the index ('.' < '/'); names are sorted on their own
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    async fn digest(&self, key: &str) -> Result<String, KvError> {
        Ok(format::hex(&self.value(key)?.sha256))
    }
}

impl<B: Block, C: Clock> KvRw for Store<B, C> {
    async fn last_modified(&self, key: &str) -> Result<WallTime, KvError> {
        if let Some(e) = self.index.get(key) {
            return Ok(e.modified);
        }
        if !key.is_empty() {
            valid_key(key)?;
        }
        children(&self.index, &dict_prefix(key))
            .map(|(_, e)| e.modified)
            .max()
            .ok_or_else(|| KvError::NotFound(key.into()))
    }

    async fn set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.commit(&[Change::Set(key, value)]).await
    }

    async fn remove(&mut self, key: &str) -> Result<(), KvError> {
        self.commit(&[Change::Remove(key)]).await
    }

    async fn batch(&mut self, changes: &[Change<'_>]) -> Result<(), KvError> {
        self.commit(changes).await
    }

    async fn log(&self) -> Result<Vec<Commit>, KvError> {
        Ok(self
            .history
            .iter()
            .rev()
            .map(|s| s.commit.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::MemBlock;
    use alloc::string::ToString;
    use core::time::Duration;
    use uni_runtime::device::Instant;

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> Instant {
            Instant(0)
        }
        fn wall(&self) -> WallTime {
            WallTime::default()
        }
        async fn sleep(&self, _: Duration) {}
    }

    /// A CRC-valid image whose counters are at their limits: it mounts, reads, and refuses
    /// changes with an error, without overflowing.
    #[test]
    fn counters_at_their_limits_are_errors_not_overflows() {
        let disk = MemBlock::new(64, 512);
        let seq = u64::MAX;
        let meta = encode_checkpoint(seq, [7; 32], &[], &[]);
        let tag = tag_of(meta[meta.len() - 32..].try_into().unwrap());
        let mut f = Framer::new(512, SUPERBLOCKS, seq, tag);
        f.push(&meta);
        f.finish();
        let (at, buf) = f.take_sealed();
        disk.poke(at as usize * 512, &buf);
        let sup = Super {
            sector_size: 512,
            sectors: 64,
            region_sectors: 31,
            gen: u64::MAX,
            seq,
            epoch: u32::MAX,
            region: 0,
            head: 1,
            tip: [7; 32],
            formatted: WallTime::default(),
        };
        disk.poke(0, &sup.encode(0));
        disk.poke(512, &sup.encode(1));
        futures_lite::future::block_on(async {
            let mut s = Store::mount(disk.clone(), Fixed).await.unwrap();
            assert_eq!(s.stats().seq, u64::MAX);
            assert!(s.list("").await.unwrap().is_empty());
            let e = s.set("k", b"v").await.unwrap_err();
            assert!(e.to_string().contains("used up"), "{e}");
            assert!(s.compact().await.is_err());
            // and the store is not poisoned by a refusal: reads go on
            assert_eq!(s.exists("k").await.unwrap(), None);
        });
    }
}
