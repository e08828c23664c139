//! Trace rings (docs/tracing.md) as `uni` reads them: the memory image a traced unikernel
//! wrote (a unix process's dump; pages granted to dom0 next), decoded from its bytes alone, and
//! turned into Chrome trace-event JSON for ui.perfetto.dev and chrome://tracing.
//!
//! The image is outside input: every size and offset in it is checked, and a bad one is an
//! error that says what is wrong, never a panic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// The layout version this reader knows.
pub const VERSION: u16 = 1;
const HEADER: usize = 64;
const RECORD: usize = 32;

/// Track classes (the top 4 bits of a track).
const TASK: u32 = 0x1000_0000;
const CONN: u32 = 0x2000_0000;
const DEVICE: u32 = 0x3000_0000;
const CLASS: u32 = 0xf000_0000;

/// A device track's name: its kind in bits 16 to 27, its index below (the runtime's
/// `trace::device_track`).
fn device_name(track: u32) -> String {
    let index = track & 0xffff;
    match track >> 16 & 0xfff {
        1 => "event channels".into(),
        2 => format!("netfront vif{index}"),
        3 => format!("blkfront {index}"),
        4 => "xenstore".into(),
        kind => format!("device {kind}.{index}"),
    }
}

/// A xenstore message type's name (`enum xsd_sockmsg_type`).
fn xs_type(t: u32) -> String {
    match t {
        1 => "directory".into(),
        2 => "read".into(),
        4 => "watch".into(),
        5 => "unwatch".into(),
        6 => "transaction start".into(),
        7 => "transaction end".into(),
        10 => "get domain path".into(),
        11 => "write".into(),
        12 => "mkdir".into(),
        13 => "rm".into(),
        t => format!("type {t}"),
    }
}

/// The event kinds, by number (the runtime's `trace::Kind`; docs/tracing.md lists them).
pub const KINDS: &[(u16, &str)] = &[
    (1, "task spawned"),
    (2, "task run"),
    (3, "task woken"),
    (4, "task finished"),
    (8, "timer armed"),
    (9, "timer fired"),
    (16, "tcp accept"),
    (17, "tcp connect"),
    (18, "tcp retransmit"),
    (19, "tcp close"),
    (32, "tls handshake"),
    (33, "tls client hello received"),
    (34, "tls server hello sent"),
    (35, "tls handshake done"),
    (36, "tls alert"),
    (48, "http request"),
    (64, "kv get"),
    (65, "kv set"),
    (66, "kv remove"),
    (67, "block read"),
    (68, "block write"),
    (80, "span"),
    (96, "panic"),
    (112, "evtchn upcall"),
    (113, "netfront rx batch"),
    (114, "netfront tx batch"),
    (115, "netfront tx ring full"),
    (116, "blkfront request"),
    (117, "blkfront responses"),
    (118, "xenstore request"),
    (119, "xenstore reply"),
];

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds on the guest's monotonic clock.
    pub ts: u64,
    /// Its index among all the events the guest wrote.
    pub seq: u32,
    pub track: u32,
    pub kind: u16,
    /// 0 instant, 1 begin, 2 end.
    pub phase: u8,
    pub arg0: u32,
    pub arg1: u64,
}

/// A decoded ring: its complete events, oldest first, and its name table.
#[derive(Debug, Clone)]
pub struct Ring {
    pub capacity: u32,
    /// Events the guest wrote in all (mod 2^32); those before the last `capacity` are lost.
    pub written: u32,
    pub events: Vec<Event>,
    /// Names by id (id 1 first).
    pub names: Vec<String>,
    /// Names the guest could not store (its table was full).
    pub names_dropped: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

/// Decodes a ring's memory image.
pub fn decode(b: &[u8]) -> Result<Ring> {
    if b.len() < HEADER {
        bail!(
            "not a uni trace: {} bytes, shorter than the {HEADER}-byte header",
            b.len()
        );
    }
    if &b[0..4] != b"UNIT" {
        bail!(
            "not a uni trace: it starts with {:02x?}, not the magic \"UNIT\"",
            &b[0..4]
        );
    }
    let version = u16_at(b, 4);
    if version != VERSION {
        bail!("the trace's layout is version {version}; this uni reads version {VERSION}");
    }
    let (header, size) = (u16_at(b, 6) as usize, u32_at(b, 8) as usize);
    if header != HEADER || size != RECORD {
        bail!("the trace's header says {header}-byte header and {size}-byte records; version {VERSION} has {HEADER} and {RECORD}");
    }
    let capacity = u32_at(b, 12);
    if capacity == 0 || !capacity.is_power_of_two() {
        bail!("the trace's capacity, {capacity} records, is not a power of two");
    }
    let written = u32_at(b, 16);
    let names_at = u32_at(b, 20) as usize;
    let names_size = u32_at(b, 24) as usize;
    let names_used = u32_at(b, 28) as usize;
    let records_end = HEADER as u64 + u64::from(capacity) * RECORD as u64;
    if names_at as u64 != records_end {
        bail!("the trace's name table is at byte {names_at}, not right after its {capacity} records (byte {records_end})");
    }
    if names_used > names_size || (names_at + names_size) > b.len() {
        bail!(
            "the trace is cut short or inconsistent: {} bytes, but its name table ends at byte {} ({names_used} of {names_size} bytes used)",
            b.len(),
            names_at + names_size
        );
    }
    let first = written.saturating_sub(capacity);
    let mut events = Vec::new();
    for i in first..written {
        let r = HEADER + (i & (capacity - 1)) as usize * RECORD;
        // A record caught while it was written, or overwritten since, has another sequence.
        if u32_at(b, r + 8) != i {
            continue;
        }
        events.push(Event {
            ts: u64_at(b, r),
            seq: i,
            track: u32_at(b, r + 12),
            kind: u16_at(b, r + 16),
            phase: b[r + 18],
            arg0: u32_at(b, r + 20),
            arg1: u64_at(b, r + 24),
        });
    }
    let mut names = Vec::new();
    let mut at = names_at;
    let end = names_at + names_used;
    while at < end {
        if at + 4 > end {
            bail!("the trace's name table is cut short at byte {at}");
        }
        let len = u16_at(b, at) as usize;
        if at + 4 + len > end {
            bail!(
                "the trace's name {} at byte {at} runs past the table's end",
                names.len() + 1
            );
        }
        names.push(String::from_utf8_lossy(&b[at + 4..at + 4 + len]).into_owned());
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok(Ring {
        capacity,
        written,
        events,
        names,
        names_dropped: u32_at(b, 32),
    })
}

fn kind_name(kind: u16) -> String {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or_else(|| format!("event {kind}"), |(_, n)| (*n).to_string())
}

fn peer(arg0: u32, arg1: u64) -> String {
    let port = arg1 & 0xffff;
    if arg0 == 0 {
        format!("[ipv6]:{port}")
    } else {
        format!("{}:{port}", std::net::Ipv4Addr::from(arg0))
    }
}

impl Ring {
    fn name(&self, id: u32) -> Option<&str> {
        (id as usize)
            .checked_sub(1)
            .and_then(|i| self.names.get(i))
            .map(|s| s.as_str())
    }

    /// The trace as Chrome trace-event JSON: `{"traceEvents": [...]}`, one track (tid) per
    /// task, per connection and per device, `B`/`E`/`i` events, and a flow (`s`, `t`, `f`) from each TCP
    /// accept through the TLS handshake to the connection's first HTTP request. `process` names
    /// the process (the unikernel's name).
    pub fn to_chrome(&self, process: &str) -> Value {
        let mut out = vec![json!({
            "ph": "M", "name": "process_name", "pid": 1, "tid": 0,
            "args": {"name": process},
        })];
        let mut tracks: BTreeMap<u32, String> = BTreeMap::new();
        // A connection's open flow: its id, and whether it passed the TLS handshake.
        let mut flows: BTreeMap<u32, u64> = BTreeMap::new();
        let mut next_flow = 1u64;
        let t0 = self.events.first().map_or(0, |e| e.ts);
        for e in &self.events {
            let ts = (e.ts - t0.min(e.ts)) as f64 / 1000.0;
            let tid = u64::from(e.track);
            tracks
                .entry(e.track)
                .or_insert_with(|| match e.track & CLASS {
                    TASK if e.track == TASK => "main task".into(),
                    TASK => format!("task {}", e.track & !CLASS),
                    CONN => format!("connection {:07x}", e.track & !CLASS),
                    DEVICE => device_name(e.track),
                    _ => format!("track {:#x}", e.track),
                });
            let mut name = kind_name(e.kind);
            let mut args = serde_json::Map::new();
            match e.kind {
                1 => {
                    args.insert("task".into(), json!(e.arg0));
                }
                16 | 17 => {
                    let p = peer(e.arg0, e.arg1);
                    args.insert("peer".into(), json!(p));
                    args.insert("local port".into(), json!(e.arg1 >> 16 & 0xffff));
                    tracks.insert(e.track, format!("tcp {p}"));
                }
                8 => {
                    args.insert("in ns".into(), json!(e.arg1));
                }
                9 => {
                    args.insert("late ns".into(), json!(e.arg1));
                }
                18 => {
                    args.insert("length".into(), json!(e.arg0));
                    args.insert("count".into(), json!(e.arg1));
                }
                35 => {
                    let v = match e.arg0 {
                        0x0304 => "TLS 1.3".to_string(),
                        0x0303 => "TLS 1.2".to_string(),
                        v => format!("{v:#06x}"),
                    };
                    args.insert("version".into(), json!(v));
                }
                48 if e.phase == 2 => {
                    args.insert("status".into(), json!(e.arg0));
                    args.insert("bytes".into(), json!(e.arg1));
                }
                64..=66 if e.phase == 1 => {
                    let key = self
                        .name(e.arg0)
                        .map_or_else(|| "(not recorded)".to_string(), str::to_string);
                    args.insert("key".into(), json!(key));
                    args.insert("offset".into(), json!(e.arg1));
                }
                64..=66 if e.phase == 2 => {
                    args.insert("found".into(), json!(e.arg0 != 0));
                    args.insert("bytes".into(), json!(e.arg1));
                }
                67 | 68 if e.phase == 1 => {
                    args.insert("bytes".into(), json!(e.arg0));
                    args.insert("sector".into(), json!(e.arg1));
                }
                67 | 68 if e.phase == 2 => {
                    args.insert("ok".into(), json!(e.arg0 != 0));
                }
                80 => {
                    name = self.name(e.arg0).unwrap_or("(unnamed span)").to_string();
                }
                96 => {
                    args.insert(
                        "message".into(),
                        json!(self.name(e.arg0).unwrap_or("(not recorded)")),
                    );
                }
                112 => {
                    let ports: Vec<u32> = (0..64).filter(|p| e.arg1 >> p & 1 == 1).collect();
                    args.insert("pending ports".into(), json!(e.arg0));
                    args.insert("ports below 64".into(), json!(ports));
                }
                113 => {
                    args.insert("frames".into(), json!(e.arg0));
                    args.insert("bytes".into(), json!(e.arg1));
                }
                114 => {
                    args.insert("frames".into(), json!(e.arg0));
                    args.insert("notifications".into(), json!(e.arg1));
                }
                115 => {
                    args.insert("refused".into(), json!(e.arg0));
                }
                116 => {
                    let op = match e.arg0 & 0xff {
                        0 => "read".to_string(),
                        1 => "write".to_string(),
                        op => format!("operation {op}"),
                    };
                    args.insert("operation".into(), json!(op));
                    args.insert("segments".into(), json!(e.arg0 >> 8 & 0xff));
                    args.insert("sector".into(), json!(e.arg1));
                }
                117 => {
                    args.insert("responses".into(), json!(e.arg0));
                }
                118 | 119 => {
                    args.insert("type".into(), json!(xs_type(e.arg0)));
                    if e.kind == 118 {
                        args.insert("request id".into(), json!(e.arg1));
                    } else {
                        args.insert("waited ns".into(), json!(e.arg1));
                    }
                }
                _ => {}
            }
            // A block transfer waits for the device across several polls of its task, so its
            // begin and end would not nest inside the task's runs: it is an async slice, by
            // task (a task does one transfer at a time).
            let block = matches!(e.kind, 67 | 68);
            let ph = match (e.phase, block) {
                (1, false) => "B",
                (2, false) => "E",
                (1, true) => "b",
                (2, true) => "e",
                _ => "i",
            };
            let mut ev = json!({
                "name": name, "cat": category(e.kind), "ph": ph, "ts": ts,
                "pid": 1, "tid": tid, "args": args,
            });
            if block {
                ev["id"] = json!(format!("{:#x}", e.track));
            }
            if ph == "i" {
                ev["s"] = json!("t");
            }
            out.push(ev);
            // The request's flow: TCP accept -> TLS handshake done -> HTTP request.
            let flow = |ph: &str, id: u64| {
                let mut f = json!({
                    "name": "request", "cat": "flow", "ph": ph, "id": id, "ts": ts,
                    "pid": 1, "tid": tid,
                });
                if ph == "f" {
                    f["bp"] = json!("e");
                }
                f
            };
            match (e.kind, e.phase) {
                (16, _) => {
                    flows.insert(e.track, next_flow);
                    out.push(flow("s", next_flow));
                    next_flow += 1;
                }
                (35, _) => {
                    if let Some(&id) = flows.get(&e.track) {
                        out.push(flow("t", id));
                    }
                }
                (48, 1) => {
                    if let Some(id) = flows.remove(&e.track) {
                        out.push(flow("f", id));
                    }
                }
                _ => {}
            }
        }
        for (track, name) in tracks {
            out.push(json!({
                "ph": "M", "name": "thread_name", "pid": 1, "tid": u64::from(track),
                "args": {"name": name},
            }));
        }
        json!({
            "traceEvents": out,
            "displayTimeUnit": "ns",
            "otherData": {
                "capacity": self.capacity,
                "written": self.written,
                "lost": self.written.saturating_sub(self.capacity),
                "names dropped": self.names_dropped,
            },
        })
    }

    /// One line on what the ring holds, for `uni run`'s status.
    pub fn summary(&self) -> String {
        let mut s = format!("{} events", self.events.len());
        let lost = self.written.saturating_sub(self.capacity);
        if lost > 0 {
            let _ = write!(s, " (the {lost} oldest overwritten)");
        }
        s
    }
}

fn category(kind: u16) -> &'static str {
    match kind {
        1..=7 => "task",
        8..=15 => "timer",
        16..=31 => "tcp",
        32..=47 => "tls",
        48..=63 => "http",
        64..=79 => "kv",
        80..=95 => "app",
        112..=127 => "xen",
        _ => "runtime",
    }
}

/// Reads the raw image at `raw`, and writes it as Chrome JSON to `out`. Returns the ring.
pub fn convert(raw: &std::path::Path, out: &std::path::Path, process: &str) -> Result<Ring> {
    use anyhow::Context as _;
    let bytes =
        std::fs::read(raw).with_context(|| format!("reading the trace `{}`", raw.display()))?;
    let ring = decode(&bytes).with_context(|| format!("in `{}`", raw.display()))?;
    let json = serde_json::to_vec(&ring.to_chrome(process))?;
    std::fs::write(out, json).with_context(|| format!("writing `{}`", out.display()))?;
    Ok(ring)
}

/// The Rust target and the Debian cross linker of a dom0 architecture (Debian's name).
pub fn dom0_target(arch: &str) -> Result<(&'static str, &'static str, &'static str)> {
    Ok(match arch {
        "armhf" => (
            "armv7-unknown-linux-gnueabihf",
            "arm-linux-gnueabihf-gcc",
            "gcc-arm-linux-gnueabihf",
        ),
        "arm64" => (
            "aarch64-unknown-linux-gnu",
            "aarch64-linux-gnu-gcc",
            "gcc-aarch64-linux-gnu",
        ),
        other => bail!(
            "no dom0 trace reader for a dom0 of architecture `{other}` (uni builds it for armhf and arm64)"
        ),
    })
}

/// Builds `uni-trace-dump` (runtime/src/bin, feature `dom0`), the program that copies a
/// guest's trace ring in dom0, for a dom0 of architecture `arch` (`armhf` or `arm64`): a static
/// executable (glibc's `+crt-static`, so it runs whatever dom0's libraries are), linked by
/// Debian's cross gcc. Cargo rebuilds it only when its sources changed. Returns its path.
pub fn dom0_reader(arch: &str) -> Result<std::path::PathBuf> {
    use anyhow::Context as _;
    let (target, linker, package) = dom0_target(arch)?;
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(linker).is_file()));
    if !found {
        bail!(
            "building the dom0 trace reader for {arch} needs the linker `{linker}`: install Debian's {package} (and `rustup target add {target}`), as .ci/setup does"
        );
    }
    let home = crate::home::home()?;
    let var = target.to_uppercase().replace('-', "_");
    let out = crate::toolchain::command("cargo")
        .args(["build", "--release", "--quiet", "--message-format=json"])
        .args([
            "-p",
            "uni-runtime",
            "--features",
            "dom0",
            "--bin",
            "uni-trace-dump",
        ])
        .args(["--target", target, "--manifest-path"])
        .arg(home.join("Cargo.toml"))
        .env(format!("CARGO_TARGET_{var}_LINKER"), linker)
        .env(
            format!("CARGO_TARGET_{var}_RUSTFLAGS"),
            "-C target-feature=+crt-static -C strip=symbols",
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo to build the dom0 trace reader")?;
    if !out.status.success() {
        bail!(
            "building the dom0 trace reader (uni-trace-dump for {target}) failed; if cargo says the target is missing: `rustup target add {target}`"
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
        .context("cargo built no uni-trace-dump executable")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image as the runtime lays it out, built here by hand from the documented layout.
    fn image(capacity: u32, events: &[(u64, u32, u16, u8, u32, u64)], names: &[&str]) -> Vec<u8> {
        let names_at = HEADER + capacity as usize * RECORD;
        let mut b = vec![0u8; names_at + 4096];
        b[0..4].copy_from_slice(b"UNIT");
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        b[6..8].copy_from_slice(&64u16.to_le_bytes());
        b[8..12].copy_from_slice(&32u32.to_le_bytes());
        b[12..16].copy_from_slice(&capacity.to_le_bytes());
        b[16..20].copy_from_slice(&(events.len() as u32).to_le_bytes());
        b[20..24].copy_from_slice(&(names_at as u32).to_le_bytes());
        b[24..28].copy_from_slice(&4096u32.to_le_bytes());
        for (i, &(ts, track, kind, phase, a0, a1)) in events.iter().enumerate() {
            let r = HEADER + (i % capacity as usize) * RECORD;
            b[r..r + 8].copy_from_slice(&ts.to_le_bytes());
            b[r + 8..r + 12].copy_from_slice(&(i as u32).to_le_bytes());
            b[r + 12..r + 16].copy_from_slice(&track.to_le_bytes());
            b[r + 16..r + 18].copy_from_slice(&kind.to_le_bytes());
            b[r + 18] = phase;
            b[r + 20..r + 24].copy_from_slice(&a0.to_le_bytes());
            b[r + 24..r + 32].copy_from_slice(&a1.to_le_bytes());
        }
        let mut at = names_at;
        for n in names {
            b[at..at + 2].copy_from_slice(&(n.len() as u16).to_le_bytes());
            b[at + 4..at + 4 + n.len()].copy_from_slice(n.as_bytes());
            at += 4 + n.len().div_ceil(4) * 4;
        }
        b[28..32].copy_from_slice(&((at - names_at) as u32).to_le_bytes());
        b
    }

    #[test]
    fn a_request_becomes_tracks_spans_and_a_flow() {
        let c = CONN | 5;
        let b = image(
            16,
            &[
                (1000, c, 16, 0, 0x7f00_0001, 40000 | 443 << 16),
                (2000, c, 32, 1, 0, 0),
                (3000, c, 35, 0, 0x0304, 0),
                (3000, c, 32, 2, 0, 0),
                (4000, c, 48, 1, 0, 0),
                (5000, c, 48, 2, 200, 1234),
                (6000, TASK | 2, 80, 1, 1, 0),
                (7000, TASK | 2, 80, 2, 1, 0),
            ],
            &["render"],
        );
        let ring = decode(&b).unwrap();
        assert_eq!(ring.events.len(), 8);
        let v = ring.to_chrome("web");
        let evs = v["traceEvents"].as_array().unwrap();
        let find = |name: &str, ph: &str| {
            evs.iter()
                .find(|e| e["name"] == name && e["ph"] == ph)
                .unwrap_or_else(|| panic!("no {ph} {name} in {v}"))
        };
        assert_eq!(find("tcp accept", "i")["args"]["peer"], "127.0.0.1:40000");
        assert_eq!(find("http request", "E")["args"]["status"], 200);
        assert_eq!(
            find("tls handshake done", "i")["args"]["version"],
            "TLS 1.3"
        );
        assert_eq!(find("render", "B")["tid"], u64::from(TASK | 2));
        assert_eq!(find("thread_name", "M")["ph"], "M");
        let flow: Vec<&str> = evs
            .iter()
            .filter(|e| e["cat"] == "flow")
            .map(|e| e["ph"].as_str().unwrap())
            .collect();
        assert_eq!(flow, ["s", "t", "f"]);
        assert!(evs
            .iter()
            .any(|e| e["name"] == "thread_name" && e["args"]["name"] == "tcp 127.0.0.1:40000"));
    }

    #[test]
    fn a_wrapped_ring_keeps_its_newest_events() {
        let evs: Vec<_> = (0..40u64)
            .map(|i| (i * 10, TASK, 2, 1, i as u32, 0))
            .collect();
        let ring = decode(&image(16, &evs, &[])).unwrap();
        assert_eq!(ring.events.len(), 16);
        assert_eq!(ring.events[0].arg0, 24);
        assert!(ring.summary().contains("24 oldest overwritten"));
    }

    #[test]
    fn bad_images_are_refused_with_what_is_wrong() {
        let good = image(16, &[(1, TASK, 2, 1, 0, 0)], &["x"]);
        let err = |b: &[u8]| format!("{:#}", decode(b).unwrap_err());
        assert!(err(&good[..10]).contains("shorter than the 64-byte header"));
        let mut b = good.clone();
        b[0] = b'X';
        assert!(err(&b).contains("magic"));
        let mut b = good.clone();
        b[4] = 9;
        assert!(err(&b).contains("version 9"));
        let mut b = good.clone();
        b[12] = 15;
        assert!(err(&b).contains("not a power of two"));
        assert!(err(&good[..good.len() - 1]).contains("cut short"));
        // A write index far past the records: none has the sequence it should, none is read.
        let mut b = good.clone();
        b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&b).unwrap().events.is_empty());
        let mut b = good.clone();
        let at = u32_at(&b, 20) as usize;
        b[at] = 200; // a name longer than the table's used part
        assert!(err(&b).contains("runs past"));
    }

    #[test]
    fn timers_devices_retransmits_and_storage_go_on_their_tracks() {
        let vif0 = DEVICE | 2 << 16;
        let evtchn = DEVICE | 1 << 16;
        let blk = DEVICE | 3 << 16 | 51712;
        let xs = DEVICE | 4 << 16;
        let c = CONN | 9;
        let t = TASK | 3;
        let b = image(
            32,
            &[
                (100, t, 8, 0, 0, 5_000_000),
                (200, t, 9, 0, 0, 1_500),
                (300, evtchn, 112, 0, 2, 1 << 3 | 1 << 9),
                (400, vif0, 113, 0, 7, 9000),
                (500, vif0, 114, 0, 5, 2),
                (600, vif0, 115, 0, 3, 0),
                (700, blk, 116, 0, 1 << 8 | 1, 2048),
                (800, blk, 117, 0, 1, 0),
                (900, xs, 118, 0, 2, 17),
                (1000, xs, 119, 0, 2, 250_000),
                (1100, c, 18, 0, 1448, 1),
                (1200, t, 64, 1, 1, 0),
                (1300, t, 64, 2, 1, 512),
                (1400, t, 67, 1, 4096, 8),
                (1500, t, 67, 2, 1, 0),
            ],
            &["index.html"],
        );
        let v = decode(&b).unwrap().to_chrome("web");
        let evs = v["traceEvents"].as_array().unwrap();
        let find = |name: &str| {
            evs.iter()
                .find(|e| e["name"] == name)
                .unwrap_or_else(|| panic!("no {name} in {v}"))
        };
        let track = |e: &Value| {
            let tid = &e["tid"];
            evs.iter()
                .find(|m| m["ph"] == "M" && m["name"] == "thread_name" && &m["tid"] == tid)
                .map(|m| m["args"]["name"].as_str().unwrap().to_string())
                .unwrap()
        };
        let armed = find("timer armed");
        assert_eq!(
            (track(armed), &armed["cat"]),
            ("task 3".into(), &json!("timer"))
        );
        assert_eq!(armed["args"]["in ns"], 5_000_000);
        assert_eq!(find("timer fired")["args"]["late ns"], 1_500);
        let up = find("evtchn upcall");
        assert_eq!(track(up), "event channels");
        assert_eq!(up["args"]["ports below 64"], json!([3, 9]));
        let rx = find("netfront rx batch");
        assert_eq!(
            (track(rx), &rx["cat"]),
            ("netfront vif0".into(), &json!("xen"))
        );
        assert_eq!(
            (&rx["args"]["frames"], &rx["args"]["bytes"]),
            (&json!(7), &json!(9000))
        );
        assert_eq!(find("netfront tx batch")["args"]["notifications"], 2);
        assert_eq!(find("netfront tx ring full")["args"]["refused"], 3);
        let req = find("blkfront request");
        assert_eq!(track(req), "blkfront 51712");
        assert_eq!(req["args"]["operation"], "write");
        assert_eq!(req["args"]["segments"], 1);
        assert_eq!(find("blkfront responses")["args"]["responses"], 1);
        let xr = find("xenstore reply");
        assert_eq!(
            (track(xr), &xr["args"]["type"]),
            ("xenstore".into(), &json!("read"))
        );
        let rt = find("tcp retransmit");
        assert_eq!(rt["tid"], u64::from(c));
        assert_eq!(
            (&rt["args"]["length"], &rt["args"]["count"]),
            (&json!(1448), &json!(1))
        );
        let get = find("kv get");
        assert_eq!(
            (&get["ph"], &get["args"]["key"]),
            (&json!("B"), &json!("index.html"))
        );
        let read: Vec<&Value> = evs.iter().filter(|e| e["name"] == "block read").collect();
        assert_eq!(read.len(), 2);
        assert_eq!((&read[0]["ph"], &read[1]["ph"]), (&json!("b"), &json!("e")));
        assert_eq!(read[0]["id"], read[1]["id"]);
        assert_eq!(read[0]["args"]["sector"], 8);
        assert_eq!(read[1]["args"]["ok"], true);
    }
}
