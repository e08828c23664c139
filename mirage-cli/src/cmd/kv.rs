//! `uni kv`: read and change a kv_rw store's disk image on the host, with the same uni-kv code
//! the unikernel runs, over the unix platform's file-backed block device.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use uni_kv::{MountError, Store};
use uni_runtime::device::{Changed, EntryKind, KvRo, KvRw, WallTime};
use uni_runtime::platform::{block_on, Block, Clock};

use crate::cmd::show;
use crate::status::{status, warn};

/// Read and change the kv_rw store in a disk image: list, get, put, remove, show the history,
/// format.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  uni kv --disk data.img format --size 64M     # a new, empty store (creates data.img)
  uni kv format --size 16M notes.img           # the same: format also takes the image itself
  uni kv --disk data.img put config/site.toml site.toml
  echo hello | uni kv --disk data.img put greeting -
  uni kv --disk data.img ls                    # the root: config/ greeting
  uni kv --disk data.img ls -l config          # sizes and times under config/
  uni kv --disk data.img get greeting          # to stdout; -o FILE to a file
  uni kv --disk data.img rm config             # a dictionary goes whole
  uni kv --disk data.img log                   # the commits, newest first
  export UNI_KV_DISK=data.img; uni kv ls       # the image from the environment

The image is the file a unikernel's block device uses (its `file` key, or
--<device>-file=PATH at boot). Each put and rm is one commit, flushed before uni returns.
ls, get and log open the image read-only. format refuses an image that holds a store, or
other data, unless --force.")]
pub struct Kv {
    /// The disk image holding the store.
    #[arg(
        short = 'd',
        long,
        global = true,
        value_name = "PATH",
        env = "UNI_KV_DISK"
    )]
    pub disk: Option<PathBuf>,
    #[command(subcommand)]
    pub command: KvCommand,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// List what is under a dictionary (default: the root): dictionaries end in `/`.
    Ls {
        /// The dictionary.
        prefix: Option<String>,
        /// Also each value's size and last-modified time.
        #[arg(short, long)]
        long: bool,
        /// Every value under it, at any depth.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Print the value under a key.
    Get {
        /// The key.
        key: String,
        /// Write it to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Store a file (or stdin) under a key, replacing what was there.
    Put {
        /// The key.
        key: String,
        /// The file; `-` or nothing for stdin.
        file: Option<PathBuf>,
    },
    /// Remove a value, or a dictionary and everything under it.
    Rm {
        /// The key.
        key: String,
    },
    /// Show the commits, newest first.
    Log,
    /// Make a new, empty store, creating the image if it is missing.
    Format {
        /// The image, as an argument instead of --disk (`uni kv format data.img`).
        #[arg(value_name = "IMAGE")]
        image: Option<PathBuf>,
        /// The image's size: bytes, or with K, M, G (powers of 1024). Default: 64M for a new
        /// image, the image's own size for an existing one.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        size: Option<u64>,
        /// Erase what the image holds: a store, or anything else.
        #[arg(long)]
        force: bool,
    },
}

type HostStore = Store<Block, Clock>;

pub fn run(args: Kv) -> Result<ExitCode> {
    let named = match &args.command {
        KvCommand::Format { image, .. } => image.clone(),
        _ => None,
    };
    let disk = match (named, args.disk) {
        (Some(a), Some(b)) if a != b => bail!(
            "two disk images: {} and --disk {}; name one",
            show(&a),
            show(&b)
        ),
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => bail!("which disk image? pass --disk PATH (or set UNI_KV_DISK=PATH)"),
    };
    match args.command {
        KvCommand::Format { size, force, .. } => format(&disk, size, force)?,
        KvCommand::Ls {
            prefix,
            long,
            recursive,
        } => ls(&open(&disk, true)?, prefix.as_deref(), long, recursive)?,
        KvCommand::Get { key, output } => {
            let store = open(&disk, true)?;
            let value = block_on(store.get(&key)).map_err(|e| in_image(&disk, e))?;
            match output {
                Some(file) => std::fs::write(&file, &value)
                    .with_context(|| format!("writing {}", show(&file)))?,
                None => write_stdout(&value)?,
            }
        }
        KvCommand::Put { key, file } => {
            let value = match file.as_deref() {
                None => read_stdin()?,
                Some(p) if p == Path::new("-") => read_stdin()?,
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", show(p)))?,
            };
            let mut store = open(&disk, false)?;
            block_on(store.set(&key, &value)).map_err(|e| in_image(&disk, e))?;
            status(
                "Stored",
                format!(
                    "{key} ({} bytes) in {}, commit {}",
                    value.len(),
                    show(&disk),
                    store.stats().seq
                ),
            );
        }
        KvCommand::Rm { key } => {
            let mut store = open(&disk, false)?;
            block_on(store.remove(&key)).map_err(|e| in_image(&disk, e))?;
            status(
                "Removed",
                format!("{key} from {}, commit {}", show(&disk), store.stats().seq),
            );
        }
        KvCommand::Log => log(&open(&disk, true)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A store error, naming the image.
fn in_image(disk: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{}: {e}", show(disk))
}

fn path_str(disk: &Path) -> Result<&str> {
    disk.to_str()
        .ok_or_else(|| anyhow!("{}: the path is not UTF-8", disk.display()))
}

/// Mounts the store in `disk`.
fn open(disk: &Path, read_only: bool) -> Result<HostStore> {
    let shown = show(disk);
    if !disk.exists() {
        bail!("no disk image {shown} (`uni kv --disk {shown} format` makes one)");
    }
    let block = Block::open(path_str(disk)?, read_only).map_err(|e| anyhow!("{e}"))?;
    let store = block_on(Store::mount(block, Clock::new())).map_err(|e| match e {
        MountError::NotAStore(_) => {
            anyhow!("{shown}: {e} (`uni kv --disk {shown} format` makes one)")
        }
        e => anyhow!("{shown}: {e}"),
    })?;
    for note in store.notes() {
        warn(format!("{shown}: {note}"));
    }
    Ok(store)
}

fn ls(store: &HostStore, prefix: Option<&str>, long: bool, recursive: bool) -> Result<()> {
    let prefix = prefix.unwrap_or("").trim_matches('/');
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let entries: Vec<(String, EntryKind)> = if recursive {
        // every value under it: the listing must exist and be a dictionary
        block_on(store.list(prefix))?;
        let under = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        store
            .keys()
            .filter(|k| k.starts_with(&under))
            .map(|k| (k.to_string(), EntryKind::Value))
            .collect()
    } else {
        block_on(store.list(prefix))?
            .into_iter()
            .map(|(name, kind)| (join(&name), kind))
            .collect()
    };
    let mut out = String::new();
    for (key, kind) in entries {
        match kind {
            EntryKind::Dictionary => {
                if long {
                    out.push_str(&format!("{:>10}  {:<23}  ", "-", "-"));
                }
                out.push_str(&key);
                out.push_str("/\n");
            }
            EntryKind::Value => {
                if long {
                    let size = block_on(store.size(&key))?;
                    let time = block_on(store.last_modified(&key))?;
                    out.push_str(&format!("{size:>10}  {:<23}  ", utc(time)));
                }
                out.push_str(&key);
                out.push('\n');
            }
        }
    }
    super::out(&out)
}

fn log(store: &HostStore) -> Result<()> {
    let commits = block_on(store.log())?;
    let mut out = String::new();
    for c in &commits {
        out.push_str(&format!("commit {} {}\n", c.seq, c.hash));
        match c.parent {
            Some(p) => out.push_str(&format!("Parent: {p}\n")),
            None => out.push_str("Parent: none (the first commit)\n"),
        }
        out.push_str(&format!("Date:   {}\n", utc(c.time)));
        for ch in &c.changes {
            match ch {
                Changed::Set { key, size, sha256 } => {
                    let hex: String = sha256[..6].iter().map(|b| format!("{b:02x}")).collect();
                    out.push_str(&format!("    set {key} ({size} bytes, sha256 {hex}…)\n"));
                }
                Changed::Removed { key } => out.push_str(&format!("    remove {key}\n")),
            }
        }
        out.push('\n');
    }
    match commits.last() {
        None => out.push_str("no commits yet\n"),
        Some(c) if c.parent.is_some() => out.push_str(&format!(
            "(commits before {} were compacted away: the store keeps the latest {})\n",
            c.seq,
            uni_kv::HISTORY_KEPT
        )),
        Some(_) => {}
    }
    super::out(&out)
}

fn format(disk: &Path, size: Option<u64>, force: bool) -> Result<()> {
    let shown = show(disk);
    if let Some(s) = size {
        if s < 18 * 512 {
            bail!("--size {s}: a kv_rw store needs at least 9K (18 sectors of 512 bytes)");
        }
    }
    if disk.exists() {
        if !force {
            refuse_if_in_use(disk)?;
        }
        if let Some(s) = size {
            std::fs::OpenOptions::new()
                .write(true)
                .open(disk)
                .and_then(|f| f.set_len(s))
                .with_context(|| format!("resizing {shown} to {s} bytes"))?;
        }
    } else {
        let s = size.unwrap_or(64 << 20);
        std::fs::File::create(disk)
            .and_then(|f| f.set_len(s))
            .with_context(|| format!("creating {shown} ({s} bytes)"))?;
    }
    let block = Block::open(path_str(disk)?, false).map_err(|e| anyhow!("{e}"))?;
    let store =
        block_on(Store::format(block, Clock::new())).map_err(|e| anyhow!("{shown}: {e}"))?;
    let st = store.stats();
    status(
        "Formatted",
        format!(
            "{shown}: a kv_rw store with room for {} KiB of values and history",
            st.capacity / 1024
        ),
    );
    Ok(())
}

/// Refuses to format an image holding a store, or data of another kind.
fn refuse_if_in_use(disk: &Path) -> Result<()> {
    let shown = show(disk);
    let block = Block::open(path_str(disk)?, true).map_err(|e| anyhow!("{e}"))?;
    match block_on(Store::mount(block, Clock::new())) {
        Ok(store) => {
            let st = store.stats();
            bail!(
                "{shown} is already a kv_rw store (last commit {}, {} bytes of values); pass \
                 --force to erase it",
                st.seq,
                st.value_bytes
            )
        }
        Err(MountError::NotAStore(what)) => {
            // a blank image (its first sectors zeroed) is fair game
            let mut head = [0u8; 1024];
            let n = std::fs::File::open(disk)
                .and_then(|mut f| f.read(&mut head))
                .with_context(|| format!("reading {shown}"))?;
            if head[..n].iter().any(|&b| b != 0) {
                bail!(
                    "{shown} holds data that is not a kv_rw store ({what}); pass --force to \
                     overwrite it"
                );
            }
            Ok(())
        }
        Err(e) => bail!(
            "{shown} holds a kv_rw store that cannot be mounted ({e}); pass --force \
                         to erase it"
        ),
    }
}

/// `64M`, `1G`, `512K`, `1048576`: bytes, a whole number of 512-byte sectors.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, ' '),
    };
    let mult: u64 = match unit {
        ' ' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        _ => return Err(format!("`{s}`: the unit is K, M, G or T (powers of 1024)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 64M, 1G or 1048576"))?;
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if !bytes.is_multiple_of(512) {
        return Err(format!("`{s}` is not a whole number of 512-byte sectors"));
    }
    Ok(bytes)
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut v = Vec::new();
    std::io::stdin()
        .read_to_end(&mut v)
        .context("reading the value from stdin")?;
    Ok(v)
}

/// Writes bytes to stdout; a reader that went away is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// `2026-12-01 10:00:00.5 UTC`.
fn utc(t: WallTime) -> String {
    let days = (t.secs / 86_400) as i64;
    let rem = t.secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if t.nanos > 0 {
        let frac = format!("{:09}", t.nanos);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" UTC");
    s
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1000").unwrap_err().contains("512-byte"));
        assert!(parse_size("12X").unwrap_err().contains("unit"));
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn utc_dates() {
        assert_eq!(
            utc(WallTime { secs: 0, nanos: 0 }),
            "1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            utc(WallTime {
                secs: 951_782_400,
                nanos: 500_000_000
            }),
            "2000-02-29 00:00:00.5 UTC"
        );
        assert_eq!(
            utc(WallTime {
                secs: 1_796_083_200 + 3723,
                nanos: 0
            }),
            "2026-12-01 01:02:03 UTC"
        );
    }
}
