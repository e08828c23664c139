//! `kv-bench`: uni's kv_rw store (`uni_kv::Store` over the unix platform's file-backed
//! `Block`, flush = `fdatasync`) against SQLite (WAL, `synchronous=FULL`) on the same file
//! system, in the same run, with the same keys, values and operations.
//!
//! ```text
//! kv-bench [--dir DIR] [--sets N] [--gets M] [--value-bytes B] [--disk-mib D] [--rounds R]
//! ```
//!
//! Each round makes a fresh directory under DIR (default: the system's temporary directory)
//! and runs both stores in it, one after the other (the order alternates between rounds):
//! 1. **sets**: N `set`s of new keys (`key/000000`, …), one value of B bytes each, every one
//!    durable before the next starts (uni: `KvRw::set`, which commits and flushes; SQLite: one
//!    autocommit `INSERT OR REPLACE` each, which in WAL mode with `synchronous=FULL` syncs the
//!    WAL before it returns);
//! 2. **overwrites**: N more `set`s, of keys already there, picked by a fixed pseudo-random
//!    sequence, with new values;
//! 3. **gets**: M `get`s of keys picked by the same kind of sequence, each value checked
//!    against the one last written.
//!
//! Then each store is closed and opened again (timed too: uni's mount reads and checks the
//! whole log) and its keys are counted. Every figure is host wall time (`std::time::Instant`,
//! the clock the unix platform's `device::Clock` reads). The last lines are a markdown table:
//! the median of the rounds with their range, and uni's figure as a ratio of SQLite's.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use uni_runtime::device::{self, BlockError, BlockInfo, KvRo, KvRw};
use uni_runtime::platform::{block_on, Block, Clock};

struct Opts {
    dir: PathBuf,
    sets: usize,
    gets: usize,
    value_bytes: usize,
    disk_mib: u64,
    rounds: usize,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<()> {
    let mut o = Opts {
        dir: std::env::temp_dir(),
        sets: 5000,
        gets: 50000,
        value_bytes: 1024,
        disk_mib: 64,
        rounds: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => o.dir = PathBuf::from(val()?),
            "--sets" => o.sets = val()?.parse()?,
            "--gets" => o.gets = val()?.parse()?,
            "--value-bytes" => o.value_bytes = val()?.parse()?,
            "--disk-mib" => o.disk_mib = val()?.parse()?,
            "--rounds" => o.rounds = val()?.parse()?,
            _ => bail!(
                "usage: kv-bench [--dir DIR] [--sets N] [--gets M] [--value-bytes B] \
                 [--disk-mib D] [--rounds R]"
            ),
        }
    }
    ensure!(
        o.sets > 0 && o.rounds > 0,
        "--sets and --rounds must be positive"
    );
    println!(
        "kv-bench: {} sets of new keys, {} overwrites, {} gets, values of {} bytes, uni's disk \
         image {} MiB (written with zeros first), {} rounds, in {}",
        o.sets,
        o.sets,
        o.gets,
        o.value_bytes,
        o.disk_mib,
        o.rounds,
        o.dir.display()
    );
    let mut uni = Vec::new();
    let mut sqlite = Vec::new();
    for round in 1..=o.rounds {
        let tmp = tempfile::Builder::new()
            .prefix("uni-bench-kv-")
            .tempdir_in(&o.dir)
            .with_context(|| format!("making a directory in {}", o.dir.display()))?;
        // alternate the order, so that neither store always runs on a quieter disk
        let (u, s) = if round % 2 == 1 {
            let u = run_uni(&o, tmp.path())?;
            (u, run_sqlite(&o, tmp.path())?)
        } else {
            let s = run_sqlite(&o, tmp.path())?;
            (run_uni(&o, tmp.path())?, s)
        };
        for (name, r) in [("uni", &u), ("sqlite", &s)] {
            println!(
                "result round={round} store={name} sets_per_s={:.1} overwrites_per_s={:.1} \
                 gets_per_s={:.0} reopen_ms={:.1} keys={} {}",
                r.sets,
                r.overwrites,
                r.gets,
                r.reopen.as_secs_f64() * 1e3,
                r.keys,
                r.note
            );
        }
        uni.push(u);
        sqlite.push(s);
    }
    table(&o, &uni, &sqlite);
    Ok(())
}

/// One store's figures in one round.
struct Figures {
    sets: f64,
    overwrites: f64,
    gets: f64,
    reopen: Duration,
    keys: usize,
    note: String,
}

fn key(i: usize) -> String {
    format!("key/{i:06}")
}

/// A fixed pseudo-random sequence (xorshift64), the same for both stores.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The value of key `i` written in pass `pass`: B pseudo-random bytes.
fn value(i: usize, pass: u64, len: usize) -> Vec<u8> {
    let mut r = Rng((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ pass.wrapping_add(1));
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// What the workload does, for either store: `set(key, value)` durable on return, `get(key)`.
trait Kv {
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()>;
    fn get(&mut self, key: &str) -> Result<Vec<u8>>;
}

/// The three timed phases, the same for both stores.
fn workload(o: &Opts, kv: &mut impl Kv) -> Result<(f64, f64, f64)> {
    let rate = |n: usize, t: Instant| n as f64 / t.elapsed().as_secs_f64();
    // which pass last wrote each key
    let mut pass = vec![0u64; o.sets];
    let values: Vec<Vec<u8>> = (0..o.sets).map(|i| value(i, 0, o.value_bytes)).collect();
    let t = Instant::now();
    for (i, v) in values.iter().enumerate() {
        kv.set(&key(i), v)?;
    }
    let sets = rate(o.sets, t);

    let mut rng = Rng(0x5eed_0001);
    let picks: Vec<usize> = (0..o.sets).map(|_| rng.below(o.sets)).collect();
    let values: Vec<Vec<u8>> = picks
        .iter()
        .enumerate()
        .map(|(j, &i)| value(i, j as u64 + 1, o.value_bytes))
        .collect();
    let t = Instant::now();
    for (j, (&i, v)) in picks.iter().zip(&values).enumerate() {
        kv.set(&key(i), v)?;
        pass[i] = j as u64 + 1;
    }
    let overwrites = rate(o.sets, t);

    let mut rng = Rng(0x5eed_0002);
    let picks: Vec<usize> = (0..o.gets).map(|_| rng.below(o.sets)).collect();
    let expected: Vec<Vec<u8>> = picks
        .iter()
        .map(|&i| value(i, pass[i], o.value_bytes))
        .collect();
    let t = Instant::now();
    for (&i, want) in picks.iter().zip(&expected) {
        let got = kv.get(&key(i))?;
        ensure!(got == *want, "{} does not read back as written", key(i));
    }
    let gets = rate(o.gets, t);
    Ok((sets, overwrites, gets))
}

// ---- uni: uni_kv::Store over the unix platform's file-backed Block ----

/// Operations that reached the disk image.
#[derive(Default)]
struct Counts {
    writes: Cell<u64>,
    written: Cell<u64>,
    flushes: Cell<u64>,
}

/// The platform's Block, counting writes and flushes.
struct Counted {
    inner: Block,
    counts: Rc<Counts>,
}

impl device::Block for Counted {
    fn info(&self) -> BlockInfo {
        self.inner.info()
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.inner.read(sector, buf).await
    }

    async fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        let c = &self.counts;
        c.writes.set(c.writes.get() + 1);
        c.written.set(c.written.get() + buf.len() as u64);
        self.inner.write(sector, buf).await
    }

    async fn flush(&self) -> Result<(), BlockError> {
        let c = &self.counts;
        c.flushes.set(c.flushes.get() + 1);
        self.inner.flush().await
    }
}

struct Uni(uni_kv::Store<Counted, Clock>);

impl Kv for Uni {
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        block_on(self.0.set(key, value)).with_context(|| format!("uni: set {key}"))
    }

    fn get(&mut self, key: &str) -> Result<Vec<u8>> {
        block_on(self.0.get(key)).with_context(|| format!("uni: get {key}"))
    }
}

fn open_uni(path: &Path, format: bool, counts: &Rc<Counts>) -> Result<Uni> {
    let p = path.to_str().context("the directory's path is not UTF-8")?;
    let inner = Block::open(p, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let block = Counted {
        inner,
        counts: counts.clone(),
    };
    let store = block_on(uni_kv::open(block, Clock::new(), format))
        .map_err(|e| anyhow::anyhow!("uni: opening the store on {}: {e}", path.display()))?;
    Ok(Uni(store))
}

fn run_uni(o: &Opts, dir: &Path) -> Result<Figures> {
    let path = dir.join("uni-kv.img");
    // a disk of zeros, its blocks allocated, as a real disk would be (not a sparse file)
    std::fs::write(&path, vec![0u8; (o.disk_mib << 20) as usize])?;
    let f = std::fs::File::open(&path)?;
    f.sync_all()?;
    let counts = Rc::new(Counts::default());
    let mut s = open_uni(&path, true, &counts)?;
    let before = (
        counts.writes.get(),
        counts.flushes.get(),
        counts.written.get(),
    );
    let (sets, overwrites, gets) = workload(o, &mut s)?;
    let stats = s.0.stats();
    let commits = (2 * o.sets) as f64;
    let note = format!(
        "flushes_per_set={:.2} writes_per_set={:.2} bytes_written_per_set={:.0} compactions={} \
         log_used={}KiB/{}KiB",
        (counts.flushes.get() - before.1) as f64 / commits,
        (counts.writes.get() - before.0) as f64 / commits,
        (counts.written.get() - before.2) as f64 / commits,
        stats.compactions,
        stats.used >> 10,
        stats.capacity >> 10,
    );
    drop(s);
    let t = Instant::now();
    let again = open_uni(&path, false, &counts)?;
    let reopen = t.elapsed();
    let keys = again.0.keys().count();
    Ok(Figures {
        sets,
        overwrites,
        gets,
        reopen,
        keys,
        note,
    })
}

// ---- SQLite: WAL, synchronous=FULL ----

struct Sqlite(Connection);

impl Kv for Sqlite {
    fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        // autocommit: a transaction of its own, its WAL frames synced before it returns
        self.0
            .prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")?
            .execute(params![key, value])
            .with_context(|| format!("sqlite: set {key}"))?;
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Vec<u8>> {
        self.0
            .prepare_cached("SELECT v FROM kv WHERE k = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()?
            .with_context(|| format!("sqlite: {key} is missing"))
    }
}

fn open_sqlite(path: &Path) -> Result<Sqlite> {
    let c = Connection::open(path)?;
    let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    ensure!(mode == "wal", "sqlite: journal_mode is {mode}, not wal");
    c.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY NOT NULL, v BLOB NOT NULL);",
    )?;
    let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    ensure!(sync == 2, "sqlite: synchronous is {sync}, not FULL (2)");
    Ok(Sqlite(c))
}

fn run_sqlite(o: &Opts, dir: &Path) -> Result<Figures> {
    let path = dir.join("sqlite.db");
    let mut s = open_sqlite(&path)?;
    let (sets, overwrites, gets) = workload(o, &mut s)?;
    let version = rusqlite::version();
    drop(s);
    let t = Instant::now();
    let again = open_sqlite(&path)?;
    let keys: i64 = again
        .0
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
    let reopen = t.elapsed();
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len() >> 10).unwrap_or(0);
    Ok(Figures {
        sets,
        overwrites,
        gets,
        reopen,
        keys: keys as usize,
        note: format!(
            "sqlite={version} db={}KiB wal={}KiB",
            size(path.clone()),
            size(dir.join("sqlite.db-wal"))
        ),
    })
}

// ---- the table ----

/// The median and the range.
fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

fn table(o: &Opts, uni: &[Figures], sqlite: &[Figures]) {
    let cell = |(m, lo, hi): (f64, f64, f64)| {
        if uni.len() == 1 {
            format!("{m:.0}")
        } else {
            format!("{m:.0} ({lo:.0}–{hi:.0})")
        }
    };
    let cols: [fn(&Figures) -> f64; 3] = [|f| f.sets, |f| f.overwrites, |f| f.gets];
    println!();
    println!(
        "| store | durable sets/s ({} new keys, {} B values) | durable overwrites/s ({}) | gets/s ({}) |",
        o.sets, o.value_bytes, o.sets, o.gets
    );
    println!("|---|---:|---:|---:|");
    let rows = [
        ("uni kv_rw (uni_kv::Store, file-backed Block)", uni),
        ("SQLite (WAL, synchronous=FULL)", sqlite),
    ];
    for (name, f) in rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|g| cell(summary(f.iter().map(g).collect())))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    // the ratio of the medians, and its range over the rounds (each round's own ratio)
    let ratios: Vec<String> = cols
        .iter()
        .map(|g| {
            let per: Vec<f64> = uni.iter().zip(sqlite).map(|(u, s)| g(u) / g(s)).collect();
            let (_, lo, hi) = summary(per);
            let med =
                summary(uni.iter().map(g).collect()).0 / summary(sqlite.iter().map(g).collect()).0;
            if uni.len() == 1 {
                format!("{med:.2}×")
            } else {
                format!("{med:.2}× ({lo:.2}–{hi:.2})")
            }
        })
        .collect();
    println!("| uni ÷ SQLite | {} |", ratios.join(" | "));
}
