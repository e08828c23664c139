//! Event tracing (cargo feature `trace`, off by default): a fixed ring of small binary records
//! in memory, written by the runtime, the libraries and the app, and read by a reader that is
//! not the writer (`uni`, from a unix process's dump today; from pages granted to dom0 next).
//!
//! Without the feature this module does not exist, and the libraries' own `trace` features
//! (which forward to this one) compile their event calls out: no code, no branch.
//!
//! The memory image, all little-endian (docs/tracing.md has the same layout):
//!
//! ```text
//! header (64 bytes)
//!   0 magic u32 = "UNIT"      4 version u16 = 1     6 header size u16 = 64
//!   8 record size u32 = 32   12 capacity u32 (records, a power of two)
//!  16 write index u32 (events ever written, mod 2^32)
//!  20 name table offset u32  24 name table size u32  28 name table bytes used u32
//!  32 names dropped u32 (no room left)  36..64 zero
//! records (capacity × 32 bytes) at offset 64; event i lives in slot i mod capacity
//!   0 timestamp u64 (ns, the guest's monotonic clock)
//!   8 sequence u32 (= i once the record is complete; !i while it is being written)
//!  12 track u32 (class in the top 4 bits, see [`TRACK_TASK`] and the others)
//!  16 kind u16 ([`Kind`])   18 phase u8 ([`Phase`])   19 zero
//!  20 arg0 u32              24 arg1 u64
//! name table (at its offset): entries one after another, the first has id 1:
//!   len u16, zero u16, len bytes of UTF-8, zero padding to a multiple of 4
//! ```
//!
//! The ring is allocated once, by [`Session::start`] (or a first name or image), with
//! [`configure`]'s capacity (default [`DEFAULT_EVENTS`]); events before that are not recorded.
//! After that an event is a handful of atomic stores into it, and the oldest events are
//! overwritten. The image is made of `AtomicU32` words, so a reader on another
//! thread (the unix dump on `SIGUSR1`) can copy it while events are written; a record it catches
//! half-written has the wrong sequence number and is skipped.

use core::sync::atomic::{AtomicU32, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;

/// `"UNIT"`, the image's first four bytes.
pub const MAGIC: u32 = u32::from_le_bytes(*b"UNIT");
/// The layout's version: a reader refuses any other.
pub const VERSION: u16 = 1;
/// Bytes in the header.
pub const HEADER_SIZE: usize = 64;
/// Bytes in one record.
pub const RECORD_SIZE: usize = 32;
/// Bytes in the name table.
pub const NAMES_SIZE: usize = 4096;
/// Events the ring holds unless configured otherwise (`--uni-trace-events=N`): 8192, 256 KiB.
pub const DEFAULT_EVENTS: u32 = 8192;
/// The most events a ring may hold (32 MiB of records).
pub const MAX_EVENTS: u32 = 1 << 20;

/// Track class: a task (the low bits are its id; 0 is the app's main task).
pub const TRACK_TASK: u32 = 0x1000_0000;
/// Track class: a connection (the low bits are a hash of its peer's address and port).
pub const TRACK_CONN: u32 = 0x2000_0000;
/// Track class: a device.
pub const TRACK_DEVICE: u32 = 0x3000_0000;
/// The mask of a track's class.
pub const TRACK_CLASS: u32 = 0xf000_0000;

/// Device track kind ([`device_track`]): the event channels (Xen's upcalls).
pub const DEV_EVTCHN: u32 = 1;
/// Device track kind: a Xen network frontend (the index is the vif's).
pub const DEV_NETFRONT: u32 = 2;
/// Device track kind: a Xen block frontend (the index is its device number, cut to 16 bits).
pub const DEV_BLKFRONT: u32 = 3;
/// Device track kind: the xenstore client.
pub const DEV_XENSTORE: u32 = 4;

/// The track of device `index` of kind `kind` ([`DEV_EVTCHN`] and the others): the class
/// [`TRACK_DEVICE`], the kind in bits 16 to 27, the index in the low 16 bits.
pub const fn device_track(kind: u32, index: u32) -> u32 {
    TRACK_DEVICE | (kind & 0xfff) << 16 | (index & 0xffff)
}

/// Whether a record starts, ends or is a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// A point in time.
    Instant = 0,
    /// The start of a span on its track.
    Begin = 1,
    /// The end of the innermost open span on its track.
    End = 2,
}

macro_rules! kinds {
    ($($(#[doc = $doc:literal])* $name:ident = $value:literal, $text:literal;)*) => {
        /// What an event is: a fixed vocabulary, stable across versions of the layout (new
        /// kinds get new numbers).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Kind {
            $($(#[doc = $doc])* $name = $value,)*
        }

        /// Every kind with its number and the name a reader shows.
        pub const KINDS: &[(u16, &str)] = &[$(($value, $text),)*];
    };
}

kinds! {
    /// A task was spawned (instant, on the spawner's track): arg0 = the new task's id.
    TaskSpawn = 1, "task spawned";
    /// A task runs (begin and end around one poll, on its track).
    TaskRun = 2, "task run";
    /// A task was woken: recorded (instant, on its track) when the executor polls it again
    /// after a wake-up, so at the time of that poll.
    TaskWoken = 3, "task woken";
    /// A task finished (instant, on its track).
    TaskFinish = 4, "task finished";
    /// A sleep armed its timer (instant, on the sleeping task's track): arg1 = ns until its
    /// deadline.
    TimerArm = 8, "timer armed";
    /// An armed sleep ended after its deadline, completed or dropped (instant, on its task's
    /// track): arg1 = ns between the deadline and then.
    TimerFire = 9, "timer fired";
    /// A connection was accepted (instant, on its track): arg0 = peer IPv4 address (0 for
    /// IPv6), arg1 = peer port | local port << 16.
    TcpAccept = 16, "tcp accept";
    /// A connection was made to a peer (instant, as for accept).
    TcpConnect = 17, "tcp connect";
    /// A segment was retransmitted (instant, on its connection's track): arg0 = its length in
    /// sequence numbers (data, SYN and FIN), arg1 = the connection's retransmissions so far.
    TcpRetransmit = 18, "tcp retransmit";
    /// A connection was closed by this side (instant).
    TcpClose = 19, "tcp close";
    /// The TLS handshake (begin at the first handshake bytes, end when done).
    TlsHandshake = 32, "tls handshake";
    /// A ClientHello was received (instant, server side).
    TlsClientHello = 33, "tls client hello received";
    /// The ServerHello flight was sent (instant, server side).
    TlsServerHello = 34, "tls server hello sent";
    /// The handshake is done (instant): arg0 = protocol version (0x0304 for TLS 1.3).
    TlsDone = 35, "tls handshake done";
    /// A fatal TLS error or alert (instant): arg0 = alert description, 0 when unknown.
    TlsAlert = 36, "tls alert";
    /// An HTTP request (begin with arg0 = method, see docs/tracing.md; end with arg0 =
    /// status, arg1 = body bytes sent).
    HttpRequest = 48, "http request";
    /// A kv read (begin/end, on the running task's track): begin's arg0 = the key's name id
    /// ([`key_name`], 0 when not stored), arg1 = the offset read from; end's arg0 = 1 if found,
    /// arg1 = bytes.
    KvGet = 64, "kv get";
    /// A kv write (begin/end): arg1 = bytes.
    KvSet = 65, "kv set";
    /// A kv removal (begin/end).
    KvRemove = 66, "kv remove";
    /// A block device read (begin/end, on the running task's track): begin's arg0 = bytes,
    /// arg1 = the first sector; end's arg0 = 1 if it succeeded.
    BlockRead = 67, "block read";
    /// A block device write (begin/end, as for a read).
    BlockWrite = 68, "block write";
    /// An app span (begin/end, see [`span`]): arg0 = its name's id.
    AppSpan = 80, "span";
    /// The program panicked (instant): arg0 = the id of the name holding the message.
    Panic = 96, "panic";
    /// Xen raised an event-channel upcall and the executor handled it (instant, on the
    /// [`DEV_EVTCHN`] track): arg0 = the ports found pending, arg1 = a mask of those below 64.
    Upcall = 112, "evtchn upcall";
    /// A netfront's receive batch: the frames the stack took since it last went idle (instant,
    /// on the vif's track): arg0 = frames, arg1 = bytes.
    NetRxBatch = 113, "netfront rx batch";
    /// A netfront's transmit batch, as for receive: arg0 = frames, arg1 = the notifications
    /// sent to the backend meanwhile (both rings).
    NetTxBatch = 114, "netfront tx batch";
    /// The TX ring was full while the stack had frames to send (instant, on the vif's track):
    /// arg0 = the refused transmits since the stack last went idle.
    NetTxFull = 115, "netfront tx ring full";
    /// A blkfront request went on the ring (instant, on the device's track): arg0 = the
    /// operation (0 read, 1 write, others flushes) | segments << 8, arg1 = the first
    /// 512-byte sector.
    BlkRequest = 116, "blkfront request";
    /// blkfront took responses off its ring (instant, on the device's track): arg0 = how many.
    BlkResponses = 117, "blkfront responses";
    /// A xenstore request was queued (instant, on the [`DEV_XENSTORE`] track): arg0 = its
    /// message type, arg1 = its request id.
    XsRequest = 118, "xenstore request";
    /// A xenstore reply arrived for its caller (instant, on the xenstore track): arg0 = the
    /// request's message type, arg1 = ns since the request.
    XsReply = 119, "xenstore reply";
}

/// The ring and its name table: one per program.
struct Ring {
    /// The whole image, header, records and name table, as words (allocated once and never
    /// freed; on Xen page-aligned, so that its pages can be granted to dom0).
    words: &'static [AtomicU32],
    mask: u32,
    names_at: usize,
    names: spin::Mutex<Names>,
}

/// The names interned so far, by the address and length of their `&'static str`, so that an
/// interned name is found again without comparing bytes.
struct Names {
    used: usize,
    count: u16,
    known: [(usize, usize, u16); 128],
    known_len: usize,
    /// Names stored by [`key_name`]: (FNV-1a hash, id, byte offset in the table).
    keys: [(u32, u16, u32); KEYS],
    keys_len: usize,
}

/// The most distinct keys [`key_name`] stores; later ones get id 0.
const KEYS: usize = 64;
/// The part of the name table that [`key_name`] may fill, so that span names and a panic's
/// message always find room.
const KEYS_BYTES: usize = NAMES_SIZE / 2;

static CAPACITY: AtomicU32 = AtomicU32::new(DEFAULT_EVENTS);
static RING: spin::Once<Ring> = spin::Once::new();
static NEXT_TASK: AtomicU32 = AtomicU32::new(1);
static CURRENT: AtomicU32 = AtomicU32::new(TRACK_TASK);

/// Sets the ring's capacity in events (rounded up to a power of two, at least 16, at most
/// [`MAX_EVENTS`]). It counts only before the first event, which allocates the ring.
pub fn configure(events: u32) {
    CAPACITY.store(
        events.clamp(16, MAX_EVENTS).next_power_of_two(),
        Ordering::Relaxed,
    );
}

fn ring() -> &'static Ring {
    RING.call_once(|| Ring::new(CAPACITY.load(Ordering::Relaxed)))
}

impl Ring {
    fn new(capacity: u32) -> Ring {
        let names_at = HEADER_SIZE + capacity as usize * RECORD_SIZE;
        let len = (names_at + NAMES_SIZE) / 4;
        let words = alloc_words(len);
        let header = [
            MAGIC,
            u32::from(VERSION) | (HEADER_SIZE as u32) << 16,
            RECORD_SIZE as u32,
            capacity,
            0,
            names_at as u32,
            NAMES_SIZE as u32,
            0,
        ];
        for (w, v) in words.iter().zip(header) {
            w.store(v, Ordering::Relaxed);
        }
        Ring {
            words,
            mask: capacity - 1,
            names_at,
            names: spin::Mutex::new(Names {
                used: 0,
                count: 0,
                known: [(0, 0, 0); 128],
                known_len: 0,
                keys: [(0, 0, 0); KEYS],
                keys_len: 0,
            }),
        }
    }

    fn record(&self, track: u32, kind: Kind, phase: Phase, arg0: u32, arg1: u64) {
        let ts = now_ns();
        let i = self.words[4].fetch_add(1, Ordering::AcqRel);
        let w = &self.words[(HEADER_SIZE / 4) + (i & self.mask) as usize * (RECORD_SIZE / 4)..];
        w[2].store(!i, Ordering::Release);
        w[0].store(ts as u32, Ordering::Relaxed);
        w[1].store((ts >> 32) as u32, Ordering::Relaxed);
        w[3].store(track, Ordering::Relaxed);
        w[4].store(kind as u32 | (phase as u32) << 16, Ordering::Relaxed);
        w[5].store(arg0, Ordering::Relaxed);
        w[6].store(arg1 as u32, Ordering::Relaxed);
        w[7].store((arg1 >> 32) as u32, Ordering::Relaxed);
        w[2].store(i, Ordering::Release);
    }

    /// Appends `text` (cut to fit) to the name table; 0 when there is no room.
    fn append(&self, names: &mut Names, text: &str) -> u16 {
        let len = floor_char_boundary(text, 1024);
        let size = 4 + len.div_ceil(4) * 4;
        if names.used + size > NAMES_SIZE || names.count == u16::MAX {
            self.words[8].fetch_add(1, Ordering::Relaxed);
            return 0;
        }
        let at = (self.names_at + names.used) / 4;
        self.words[at].store(len as u32, Ordering::Relaxed);
        for (k, chunk) in text.as_bytes()[..len].chunks(4).enumerate() {
            let mut b = [0u8; 4];
            b[..chunk.len()].copy_from_slice(chunk);
            self.words[at + 1 + k].store(u32::from_le_bytes(b), Ordering::Relaxed);
        }
        names.used += size;
        names.count += 1;
        self.words[7].store(names.used as u32, Ordering::Release);
        names.count
    }

    fn intern(&self, name: &'static str) -> u16 {
        let key = (name.as_ptr() as usize, name.len());
        let mut names = self.names.lock();
        if let Some(&(_, _, id)) = names.known[..names.known_len]
            .iter()
            .find(|(p, l, _)| (*p, *l) == key)
        {
            return id;
        }
        let id = self.append(&mut names, name);
        if id != 0 && names.known_len < names.known.len() {
            let n = names.known_len;
            names.known[n] = (key.0, key.1, id);
            names.known_len += 1;
        }
        id
    }

    /// Whether the name at byte `at` of the table is `text`.
    fn name_is(&self, at: usize, text: &[u8]) -> bool {
        let w = (self.names_at + at) / 4;
        if self.words[w].load(Ordering::Relaxed) as usize != text.len() {
            return false;
        }
        text.chunks(4).enumerate().all(|(k, chunk)| {
            let mut b = [0u8; 4];
            b[..chunk.len()].copy_from_slice(chunk);
            self.words[w + 1 + k].load(Ordering::Relaxed) == u32::from_le_bytes(b)
        })
    }

    /// [`key_name`]'s body.
    fn key(&self, text: &str) -> u16 {
        let text = &text[..floor_char_boundary(text, 256)];
        let hash = fnv(text.as_bytes());
        let mut names = self.names.lock();
        let n = names.keys_len;
        if let Some(&(_, id, _)) = names.keys[..n]
            .iter()
            .find(|&&(h, _, at)| h == hash && self.name_is(at as usize, text.as_bytes()))
        {
            return id;
        }
        if n == KEYS || names.used + 4 + text.len() > KEYS_BYTES {
            return 0;
        }
        let at = names.used as u32;
        let id = self.append(&mut names, text);
        if id != 0 {
            names.keys[n] = (hash, id, at);
            names.keys_len += 1;
        }
        id
    }

    fn image(&self) -> Vec<u8> {
        self.words
            .iter()
            .flat_map(|w| w.load(Ordering::Acquire).to_le_bytes())
            .collect()
    }
}

/// The longest prefix of `text` of at most `most` bytes that ends on a character boundary.
fn floor_char_boundary(text: &str, most: usize) -> usize {
    let mut len = text.len().min(most);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    len
}

/// FNV-1a, 32 bits.
fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// `len` zeroed words that live as long as the program.
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
fn alloc_words(len: usize) -> &'static [AtomicU32] {
    Box::leak((0..len).map(|_| AtomicU32::new(0)).collect())
}

/// `len` zeroed words that live as long as the program, from whole pages of their own (so that
/// they can be granted to dom0, see [`Session`]).
#[cfg(all(target_arch = "arm", target_os = "none"))]
fn alloc_words(len: usize) -> &'static [AtomicU32] {
    crate::platform::trace_ring_alloc(len)
}

#[cfg(unix)]
fn now_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

#[cfg(not(unix))]
fn now_ns() -> u64 {
    crate::device::Clock::now(&crate::platform::Clock::new()).0
}

/// Records one event on `track`. Before the ring exists (before [`Session::start`], or a
/// first [`name`] or [`image`]) there is nowhere to record it, and it is not recorded: the
/// platform's own events at boot (a xenstore request, an upcall) must not allocate the ring
/// before the session has set its size.
pub fn event(track: u32, kind: Kind, phase: Phase, arg0: u32, arg1: u64) {
    if let Some(r) = RING.get() {
        r.record(track, kind, phase, arg0, arg1);
    }
}

/// Records an instant event on the running task's track.
pub fn instant(kind: Kind, arg0: u32, arg1: u64) {
    event(current(), kind, Phase::Instant, arg0, arg1);
}

/// The running task's track.
pub fn current() -> u32 {
    CURRENT.load(Ordering::Relaxed)
}

/// The track of the connection with `peer` (its events from TCP, TLS and HTTP share it).
pub fn conn_track(peer: &core::net::SocketAddr) -> u32 {
    let mut bytes = [0u8; 18];
    let n = match peer.ip() {
        core::net::IpAddr::V4(a) => {
            bytes[..4].copy_from_slice(&a.octets());
            4
        }
        core::net::IpAddr::V6(a) => {
            bytes[..16].copy_from_slice(&a.octets());
            16
        }
    };
    bytes[n..n + 2].copy_from_slice(&peer.port().to_le_bytes());
    TRACK_CONN | (fnv(&bytes[..n + 2]) & !TRACK_CLASS)
}

/// arg0 and arg1 of a TCP accept or connect event with `peer` on local port `local`.
pub fn peer_args(peer: &core::net::SocketAddr, local: u16) -> (u32, u64) {
    let ip = match peer.ip() {
        core::net::IpAddr::V4(a) => u32::from_be_bytes(a.octets()),
        core::net::IpAddr::V6(_) => 0,
    };
    (ip, u64::from(peer.port()) | u64::from(local) << 16)
}

/// Records a TCP event (accept, connect, close) with `peer` on its connection's track; `local`
/// is this side's port.
pub fn tcp(kind: Kind, peer: &core::net::SocketAddr, local: u16) {
    let (arg0, arg1) = peer_args(peer, local);
    event(conn_track(peer), kind, Phase::Instant, arg0, arg1);
}

/// Interns `name` in the ring's name table and returns its id (0 when the table is full).
pub fn name(name: &'static str) -> u16 {
    ring().intern(name)
}

/// The name id of a kv key (or any text that is not `&'static`): stored once, found again by
/// its bytes; cut to 256 bytes. The first 64 distinct keys are stored, in at most half the name
/// table (so that spans and a panic's message keep their room); later ones get 0.
pub fn key_name(text: &str) -> u16 {
    ring().key(text)
}

/// Records a timer event ([`Kind::TimerArm`] or [`Kind::TimerFire`]) on the running task's
/// track, with `ns` as arg1.
pub fn timer(kind: Kind, ns: u64) {
    instant(kind, 0, ns);
}

/// Records a device event (instant) on device `index` of kind `dev` ([`device_track`]).
pub fn device(dev: u32, index: u32, kind: Kind, arg0: u32, arg1: u64) {
    event(device_track(dev, index), kind, Phase::Instant, arg0, arg1);
}

/// An operation on the running task's track (a kv read, a block transfer), open until
/// [`Op::end`]: a begin event now, an end event at `end` (or, if the future doing it is dropped
/// first, at the drop, with arg0 = 0 and arg1 = 0).
#[must_use = "the operation ends when this guard is ended or dropped"]
#[derive(Debug)]
pub struct Op {
    track: u32,
    kind: Kind,
    open: bool,
}

/// Begins an operation of `kind` with `arg0` and `arg1` (see [`Op`]).
pub fn op(kind: Kind, arg0: u32, arg1: u64) -> Op {
    let track = current();
    event(track, kind, Phase::Begin, arg0, arg1);
    Op {
        track,
        kind,
        open: true,
    }
}

impl Op {
    /// Ends the operation with `arg0` and `arg1`.
    pub fn end(mut self, arg0: u32, arg1: u64) {
        self.open = false;
        event(self.track, self.kind, Phase::End, arg0, arg1);
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if self.open {
            event(self.track, self.kind, Phase::End, 0, 0);
        }
    }
}

/// An app span, open until dropped: `let _s = uni_runtime::trace::span("render");`. It is a
/// begin event now and an end event at the drop, on the running task's track.
#[must_use = "the span ends when this guard is dropped"]
#[derive(Debug)]
pub struct Span {
    track: u32,
    id: u16,
}

/// Opens an app span named `name` (see [`Span`]).
pub fn span(name: &'static str) -> Span {
    let id = self::name(name);
    let track = current();
    event(track, Kind::AppSpan, Phase::Begin, id.into(), 0);
    Span { track, id }
}

impl Drop for Span {
    fn drop(&mut self) {
        event(self.track, Kind::AppSpan, Phase::End, self.id.into(), 0);
    }
}

/// Records a panic with its message (copied into the name table).
pub fn panic(message: &str) {
    let r = ring();
    // A panic while the table is locked (in `intern`) loses only the message.
    let id = r
        .names
        .try_lock()
        .map_or(0, |mut n| r.append(&mut n, message));
    instant(Kind::Panic, id.into(), 0);
}

/// Records a panic whose message is formatted from `message` into a buffer on the stack (cut
/// to 1024 bytes), without allocating: for a panic handler, which may run because the heap is
/// exhausted.
pub fn panic_fmt(message: core::fmt::Arguments<'_>) {
    struct Buf {
        bytes: [u8; 1024],
        len: usize,
    }
    impl core::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let mut n = s.len().min(self.bytes.len() - self.len);
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
    let mut buf = Buf {
        bytes: [0; 1024],
        len: 0,
    };
    if RING.get().is_none() {
        return; // no session: nothing to record into (and no ring to allocate now)
    }
    let _ = core::fmt::Write::write_fmt(&mut buf, message);
    // Whole characters only were copied in, so this never fails.
    panic(core::str::from_utf8(&buf.bytes[..buf.len]).unwrap_or("panicked"));
}

/// A copy of the ring's memory image as it is now (the format docs/tracing.md describes).
pub fn image() -> Vec<u8> {
    ring().image()
}

/// A task's id and track, wrapped around its future by [`crate::task::spawn`].
pub(crate) struct Traced<F> {
    track: u32,
    started: bool,
    // Boxed (once, at the spawn) so that the wrapper is `Unpin` and needs no pin projection.
    future: core::pin::Pin<Box<F>>,
}

impl<F> Traced<F> {
    /// Gives the future a new task id and records its spawn on the spawner's track.
    pub(crate) fn new(future: F) -> Traced<F> {
        let id = NEXT_TASK.fetch_add(1, Ordering::Relaxed) & !TRACK_CLASS;
        instant(Kind::TaskSpawn, id, 0);
        Traced {
            track: TRACK_TASK | id,
            started: false,
            future: Box::pin(future),
        }
    }
}

impl<F: core::future::Future<Output = ()>> core::future::Future for Traced<F> {
    type Output = ();

    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<()> {
        let this = self.get_mut();
        let track = this.track;
        // Every poll after the first is the answer to a wake-up.
        if this.started {
            event(track, Kind::TaskWoken, Phase::Instant, 0, 0);
        }
        this.started = true;
        let outer = CURRENT.swap(track, Ordering::Relaxed);
        event(track, Kind::TaskRun, Phase::Begin, 0, 0);
        let r = this.future.as_mut().poll(cx);
        event(track, Kind::TaskRun, Phase::End, 0, 0);
        if r.is_ready() {
            event(track, Kind::TaskFinish, Phase::Instant, 0, 0);
        }
        CURRENT.store(outer, Ordering::Relaxed);
        r
    }
}

/// What the generated main holds while the app runs, with tracing on: on unix, it writes the
/// ring to the file `UNI_TRACE_FILE` names when it is dropped (the app returned), on a panic
/// (before the platform's own panic handling), on SIGINT and SIGTERM (then the process ends
/// with status 128 + the signal's number, as the signal would have ended it) and on SIGUSR1
/// (a snapshot: the app keeps running). The ring holds `events` events (`[trace] events` in
/// unikernel.toml); on unix `UNI_TRACE_EVENTS` overrides it.
///
/// On Xen the ring lives in pages of its own, which the session grants to dom0 read-only and
/// publishes in the guest's xenstore directory (`data/uni-trace/`: `refs-K`, the grant
/// references of pages 512K to 512K + 511, in order, decimal, space-separated; then `pages`,
/// their number, written last), so that a program in dom0 (`uni-trace-dump`) can map and copy
/// it while the guest runs, and after it crashed (with `on_crash = "preserve"`). The panic
/// handler records the panic in the ring before the domain shuts down.
#[derive(Debug)]
#[must_use = "the trace is written when the session is dropped"]
pub struct Session(());

impl Session {
    /// Allocates the ring and sets up its dumps (see [`Session`]).
    pub fn start(events: u32) -> Session {
        configure(events);
        #[cfg(unix)]
        {
            if let Some(n) = std::env::var("UNI_TRACE_EVENTS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                configure(n);
            }
            dump::start();
        }
        let r = ring();
        #[cfg(all(target_arch = "arm", target_os = "none"))]
        if let Err(e) = crate::platform::trace_ring_share(r.words) {
            crate::platform::diag(&alloc::format!(
                "trace: the ring is not shared with dom0: {e}"
            ));
        }
        #[cfg(not(all(target_arch = "arm", target_os = "none")))]
        let _ = r;
        Session(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        #[cfg(unix)]
        dump::write();
    }
}

/// The unix dump: the file the ring goes to, and the signals and the panic hook that write it.
#[cfg(unix)]
mod dump {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();

    /// The file named by `UNI_TRACE_FILE`, where the ring is written.
    fn path() -> Option<&'static PathBuf> {
        PATH.get_or_init(|| std::env::var_os("UNI_TRACE_FILE").map(PathBuf::from))
            .as_ref()
    }

    /// Writes the ring's image to the trace file (through a temporary file and a rename, so a
    /// reader never sees half of it). Errors go to stderr.
    pub(super) fn write() {
        let Some(path) = path() else { return };
        let mut tmp = path.clone().into_os_string();
        tmp.push(".partial");
        let r = std::fs::write(&tmp, super::image()).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = r {
            std::eprintln!("trace: cannot write {}: {e}", path.display());
        }
    }

    /// Chains a panic hook that records the panic and writes the ring before the platform's
    /// own hook, and starts the thread that writes it on signals.
    pub(super) fn start() {
        let platform_hook = std::panic::take_hook();
        std::panic::set_hook(std::boxed::Box::new(move |info| {
            super::panic(&std::format!("{info}"));
            write();
            platform_hook(info)
        }));
        use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
        let mut signals = match signal_hook::iterator::Signals::new([SIGUSR1, SIGINT, SIGTERM]) {
            Ok(s) => s,
            Err(e) => {
                std::eprintln!("trace: cannot handle signals: {e}");
                return;
            }
        };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                write();
                if sig != SIGUSR1 {
                    std::process::exit(128 + sig);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec;

    /// A reader that knows only the documented layout (not the writer's types): the header's
    /// fields, the complete records oldest first, and the names.
    struct Decoded {
        capacity: u32,
        written: u32,
        records: Vec<(u64, u32, u32, u16, u8, u32, u64)>,
        names: Vec<String>,
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn decode(b: &[u8]) -> Decoded {
        assert_eq!(&b[0..4], b"UNIT");
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 1);
        let header = u16::from_le_bytes([b[6], b[7]]) as usize;
        let size = u32_at(b, 8) as usize;
        let capacity = u32_at(b, 12);
        let written = u32_at(b, 16);
        let names_at = u32_at(b, 20) as usize;
        let names_used = u32_at(b, 28) as usize;
        assert_eq!(names_at, header + capacity as usize * size);
        let first = written.saturating_sub(capacity);
        let mut records = vec![];
        for i in first..written {
            let r = header + (i % capacity) as usize * size;
            if u32_at(b, r + 8) != i {
                continue;
            }
            records.push((
                u64_at(b, r),
                u32_at(b, r + 8),
                u32_at(b, r + 12),
                u16::from_le_bytes([b[r + 16], b[r + 17]]),
                b[r + 18],
                u32_at(b, r + 20),
                u64_at(b, r + 24),
            ));
        }
        let mut names = vec![];
        let mut at = names_at;
        while at < names_at + names_used {
            let len = u16::from_le_bytes([b[at], b[at + 1]]) as usize;
            names.push(String::from_utf8(b[at + 4..at + 4 + len].to_vec()).unwrap());
            at += 4 + len.div_ceil(4) * 4;
        }
        Decoded {
            capacity,
            written,
            records,
            names,
        }
    }

    #[test]
    fn a_ring_that_wrapped_keeps_the_newest_events_in_order() {
        let ring = Ring::new(16);
        for i in 0..40u32 {
            ring.record(
                TRACK_TASK | 7,
                Kind::TaskRun,
                Phase::Begin,
                i,
                u64::from(i) << 40,
            );
        }
        let d = decode(&ring.image());
        assert_eq!((d.capacity, d.written), (16, 40));
        assert_eq!(d.records.len(), 16);
        for (k, r) in d.records.iter().enumerate() {
            let i = 24 + k as u32;
            assert_eq!(r.1, i, "sequence");
            assert_eq!((r.2, r.3, r.4), (TRACK_TASK | 7, 2, 1));
            assert_eq!((r.5, r.6), (i, u64::from(i) << 40));
        }
        assert!(d.records.windows(2).all(|w| w[0].0 <= w[1].0), "timestamps");
    }

    #[test]
    fn a_half_written_record_is_skipped() {
        let ring = Ring::new(16);
        for i in 0..3 {
            ring.record(TRACK_CONN | 1, Kind::TcpAccept, Phase::Instant, i, 0);
        }
        // What a reader sees while the writer is inside `record` for event 1.
        let slot = HEADER_SIZE / 4 + RECORD_SIZE / 4 + 2;
        ring.words[slot].store(!1, Ordering::Relaxed);
        let d = decode(&ring.image());
        assert_eq!(
            d.records.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![0, 2]
        );
    }

    #[test]
    fn names_are_interned_once_and_cut_to_the_table() {
        let ring = Ring::new(16);
        let (a, b) = ("render", "a longer name, ünïcode");
        assert_eq!(ring.intern(a), 1);
        assert_eq!(ring.intern(b), 2);
        assert_eq!(ring.intern(a), 1);
        let big = "x".repeat(5000);
        let mut names = ring.names.lock();
        assert_eq!(ring.append(&mut names, &big), 3, "cut to 1024 bytes");
        drop(names);
        let d = decode(&ring.image());
        assert_eq!(d.names[..2], [a, b]);
        assert_eq!(d.names[2].len(), 1024);
        // The table fills up: then names get id 0 and are counted as dropped.
        let mut names = ring.names.lock();
        while ring.append(&mut names, &big) != 0 {}
        drop(names);
        assert!(u32_at(&ring.image(), 32) >= 1);
    }

    #[test]
    fn connection_tracks_are_stable_and_distinct() {
        let p = |s: &str| s.parse::<core::net::SocketAddr>().unwrap();
        let t = conn_track(&p("127.0.0.1:40000"));
        assert_eq!(t, conn_track(&p("127.0.0.1:40000")));
        assert_ne!(t, conn_track(&p("127.0.0.1:40001")));
        assert_eq!(t & TRACK_CLASS, TRACK_CONN);
        assert_eq!(
            peer_args(&p("10.0.0.2:5000"), 443),
            (0x0a00_0002, 5000 | 443 << 16)
        );
    }

    #[test]
    fn keys_are_stored_once_by_their_bytes_within_half_the_table() {
        let ring = Ring::new(16);
        let a = std::string::String::from("css/site.css");
        let b = std::string::String::from("css/site.css"); // another allocation, same bytes
        let id = ring.key(&a);
        assert_eq!(id, 1);
        assert_eq!(ring.key(&b), id);
        assert_eq!(ring.key("index.html"), 2);
        let long = "k".repeat(300);
        assert_eq!(ring.key(&long), 3);
        // Distinct keys stop at half the table (or 64 keys); span names still fit after.
        let mut last = 3;
        for i in 0..200 {
            let id = ring.key(&std::format!("{i:040}"));
            if id == 0 {
                break;
            }
            last = id;
        }
        assert_eq!(ring.key(&"z".repeat(40)), 0, "keys past the limit get 0");
        assert!(ring.intern("render") > last, "a span name still finds room");
        let d = decode(&ring.image());
        assert_eq!(d.names[..2], ["css/site.css", "index.html"]);
        assert_eq!(d.names[2].len(), 256, "cut to 256 bytes");
        assert!(u32_at(&ring.image(), 28) as usize <= NAMES_SIZE / 2 + 4 + 12);
    }

    /// The events of issue #18 item 1's second half, recorded through the API the platforms
    /// and libraries call (the program's one ring: no other test here uses it), each on its
    /// track with its arguments.
    #[test]
    fn timer_device_retransmit_and_storage_events_land_on_their_tracks() {
        let _ = ring(); // as `Session::start` makes it
        timer(Kind::TimerArm, 5_000_000);
        timer(Kind::TimerFire, 1_234);
        device(DEV_EVTCHN, 0, Kind::Upcall, 2, 1 << 3 | 1 << 9);
        device(DEV_NETFRONT, 0, Kind::NetRxBatch, 7, 7 * 1514);
        device(DEV_NETFRONT, 0, Kind::NetTxBatch, 5, 2);
        device(DEV_NETFRONT, 1, Kind::NetTxFull, 3, 0);
        device(DEV_BLKFRONT, 51712, Kind::BlkRequest, 1 << 8, 2048);
        device(DEV_BLKFRONT, 51712, Kind::BlkResponses, 1, 0);
        device(DEV_XENSTORE, 0, Kind::XsRequest, 2, 17);
        device(DEV_XENSTORE, 0, Kind::XsReply, 2, 250_000);
        let peer: core::net::SocketAddr = "10.0.0.254:40000".parse().unwrap();
        event(
            conn_track(&peer),
            Kind::TcpRetransmit,
            Phase::Instant,
            1448,
            1,
        );
        let key = key_name("index.html");
        op(Kind::KvGet, key.into(), 0).end(1, 512);
        let o = op(Kind::BlockRead, 4096, 8);
        drop(o); // dropped before its end: ends with zeros
        op(Kind::BlockWrite, 512, 9).end(1, 0);

        let d = decode(&image());
        let main = TRACK_TASK;
        let dev = |k: u32, i: u32| TRACK_DEVICE | k << 16 | i;
        let want: &[(u32, u16, u8, u32, u64)] = &[
            (main, 8, 0, 0, 5_000_000),
            (main, 9, 0, 0, 1_234),
            (dev(1, 0), 112, 0, 2, 1 << 3 | 1 << 9),
            (dev(2, 0), 113, 0, 7, 7 * 1514),
            (dev(2, 0), 114, 0, 5, 2),
            (dev(2, 1), 115, 0, 3, 0),
            (dev(3, 51712), 116, 0, 1 << 8, 2048),
            (dev(3, 51712), 117, 0, 1, 0),
            (dev(4, 0), 118, 0, 2, 17),
            (dev(4, 0), 119, 0, 2, 250_000),
            (conn_track(&peer), 18, 0, 1448, 1),
            (main, 64, 1, u32::from(key), 0),
            (main, 64, 2, 1, 512),
            (main, 67, 1, 4096, 8),
            (main, 67, 2, 0, 0),
            (main, 68, 1, 512, 9),
            (main, 68, 2, 1, 0),
        ];
        // The ring is the process's: other tests running at the same time (kv's, the
        // executor's) may add their events between these, so this test's events must appear
        // in order, and others may come between them.
        let got: Vec<(u32, u16, u8, u32, u64)> = d
            .records
            .iter()
            .map(|r| (r.2, r.3, r.4, r.5, r.6))
            .collect();
        let mut rest = got.iter();
        for w in want {
            assert!(
                rest.any(|g| g == w),
                "{w:?} missing, or out of order, in {got:?}"
            );
        }
        assert_eq!(d.names[usize::from(key) - 1], "index.html");
        assert_eq!(
            device_track(DEV_BLKFRONT, 51712) & TRACK_CLASS,
            TRACK_DEVICE
        );
        // Every kind's number is unique and its name is what the converter shows.
        for (i, (n, _)) in KINDS.iter().enumerate() {
            assert!(KINDS[i + 1..].iter().all(|(m, _)| m != n), "kind {n} twice");
        }
    }
}
