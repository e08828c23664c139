//! `net-bench`: boots guests one after another in ONE session of uni's emulated Xen board
//! (boards/qemu-virt) and measures each over the board's network from the host, through the
//! TAP device that puts the host on the board's LAN (10.0.0.254), in the network namespace this
//! process makes for it at start (emu::net::isolate): the measurements never leave it.
//!
//! ```text
//! net-bench [--timeout SECS] [--mib N] [--repeat R] [--seconds S] [--ready-within SECS] [--dom0-check CMD] XL[=MARKER]...
//! ```
//! Each XL (see `xen_boot_bench::guest`) must have one vif; guest i gets 10.0.0.(2+i) from
//! dom0's DHCP server and must serve, as bench/net/app does:
//! TCP 9 discard (answers the byte count once the client shuts down its side), 19 source
//! (a line `N` in, N bytes out, then close), 7 echo, and 99 quit (powers the guest off, so that
//! the next one starts). Per guest it measures:
//! - host→guest: N MiB to the discard port, from connect to the guest's count (R times);
//! - guest→host: N MiB from the source port, from the request to the guest's close (R times);
//! - connections per second for S seconds, with 1 and with 8 clients: connect, 16 bytes echoed,
//!   shut down, wait for the guest's close.
//!
//! A guest that does not answer within 90 s (`--ready-within`) gets a row saying so. A guest
//! whose xl file (name) was already measured in this run is not measured again, only waited
//! for and quit: name it twice to have a spare boot of a guest that does not always come up.
//!
//! The guests' consoles go to stdout as they arrive, each figure to stderr as it is taken, and
//! at the end one markdown table row per guest. The serial log is `net-bench-serial.log` in the
//! current directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mirage_cli::{board, emu};

const DISCARD: u16 = 9;
const SOURCE: u16 = 19;
const ECHO: u16 = 7;
const QUIT: u16 = 99;

/// What to measure.
#[derive(Clone, Copy)]
struct Plan {
    bytes: u64,
    repeat: usize,
    seconds: u64,
    /// how long to wait for a guest to answer
    ready_within: Duration,
}

/// The figures of one guest (`None`: not measured, see `error`).
#[derive(Default, Debug)]
struct Figures {
    to_guest: Vec<f64>,
    from_guest: Vec<f64>,
    conns_1: Option<(f64, u64)>,
    conns_8: Option<(f64, u64)>,
    error: Option<String>,
}

fn main() -> ExitCode {
    // The board's LAN lives in a network namespace of this process's own, which every thread
    // made afterwards shares: the measuring threads reach the guests there, and nothing of the
    // LAN is visible in the caller's namespace. It must be made while there is one thread.
    if let Err(e) = emu::net::isolate() {
        eprintln!("net-bench: {e:#}");
        return ExitCode::from(2);
    }
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("net-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let mut opts = emu::RunOptions::new(
        Duration::from_secs(900),
        PathBuf::from("net-bench-serial.log"),
    );
    let mut plan = Plan {
        bytes: 8 << 20,
        repeat: 3,
        seconds: 10,
        ready_within: Duration::from_secs(90),
    };
    let mut guests = Vec::new();
    let num = |v: Option<String>, what: &str| -> Result<u64> {
        v.with_context(|| what.to_string())?
            .parse()
            .with_context(|| what.to_string())
    };
    let mut board_name = "qemu-virt".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--board" => board_name = args.next().context("--board NAME")?,
            "--timeout" => opts.timeout = Duration::from_secs(num(args.next(), "--timeout SECS")?),
            "--mib" => plan.bytes = num(args.next(), "--mib N")? << 20,
            "--repeat" => plan.repeat = num(args.next(), "--repeat R")? as usize,
            "--seconds" => plan.seconds = num(args.next(), "--seconds S")?,
            "--ready-within" => {
                plan.ready_within = Duration::from_secs(num(args.next(), "--ready-within SECS")?)
            }
            "--dom0-check" => opts.dom0_check = Some(args.next().context("--dom0-check CMD")?),
            "-v" => opts.verbose = true,
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => guests.push(xen_boot_bench::guest(s)?),
        }
    }
    if guests.is_empty() {
        bail!("usage: net-bench [--timeout SECS] [--mib N] [--repeat R] [--seconds S] [--ready-within SECS] [--dom0-check CMD] XL[=MARKER]...");
    }
    let board = board::find(&board_name)
        .with_context(|| format!("no board {board_name}; accepted: {}", board::names()))?;
    let prepared = emu::prepare(&board, &emu::cache_dir())?;

    // The host side runs beside the board: guest i at its lease, one after another.
    let figures: Arc<Mutex<Vec<Option<Figures>>>> = Arc::default();
    let host = {
        let figures = figures.clone();
        let names: Vec<String> = guests.iter().map(|g| g.name.clone()).collect();
        std::thread::spawn(move || {
            let mut measured: Vec<&str> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let ip = emu::net::lease_ip(i);
                let spare = measured.contains(&name.as_str());
                let mut f = Figures::default();
                let result = if spare {
                    wait_ready(ip, plan.ready_within)
                } else {
                    measure(ip, plan, &mut f)
                };
                match result {
                    Ok(()) if !spare => measured.push(name),
                    Ok(()) => {}
                    Err(e) => {
                        eprintln!("net-bench: {name} at {ip}: {e:#}");
                        f.error = Some(format!("{e:#}"));
                    }
                }
                figures
                    .lock()
                    .unwrap()
                    .push((!spare || f.error.is_some()).then_some(f));
                // the next guest starts once this one has powered off
                if let Ok(s) = TcpStream::connect_timeout(
                    &SocketAddr::from((ip, QUIT)),
                    Duration::from_secs(5),
                ) {
                    drop(s);
                }
            }
        })
    };
    let report = emu::run_guests(&prepared, &guests, &opts)?;
    // whatever the host side had not finished when the board stopped was not measured
    let mut figures = std::mem::take(&mut *figures.lock().unwrap());
    figures.resize_with(report.guests.len().max(figures.len()), || {
        Some(Figures {
            error: Some("not measured: the board stopped first".into()),
            ..Figures::default()
        })
    });
    drop(host);

    println!();
    let mib = plan.bytes >> 20;
    println!(
        "| board | guest | xl create → serving | host→guest MB/s ({mib} MiB, median of {r}) | guest→host MB/s ({mib} MiB, median of {r}) | connections/s, 1 client | connections/s, 8 clients | ended |",
        r = plan.repeat
    );
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    // (name, medians) of the guests measured, for the ratios below
    let mut measured: Vec<(&str, [Option<f64>; 4])> = Vec::new();
    for (g, f) in report.guests.iter().zip(&figures) {
        let Some(f) = f else { continue }; // a spare boot of a guest already measured
        if f.error.is_none() {
            measured.push((
                &g.name,
                [
                    median_of(&f.to_guest),
                    median_of(&f.from_guest),
                    f.conns_1.map(|c| c.0),
                    f.conns_8.map(|c| c.0),
                ],
            ));
        }
        let ready = g
            .marker
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "—".into());
        let conns = |c: Option<(f64, u64)>| match c {
            Some((rate, errors)) if errors > 0 => format!("{rate:.0} ({errors} failed)"),
            Some((rate, _)) => format!("{rate:.0}"),
            None => "—".into(),
        };
        let mut ended = g
            .outcome
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_else(|| "still running at the end".into());
        if let Some(e) = &f.error {
            ended = format!("{ended}; {e}");
        }
        println!(
            "| {board_name} | {} | {ready} | {} | {} | {} | {} | {ended} |",
            g.name,
            median(&f.to_guest),
            median(&f.from_guest),
            conns(f.conns_1),
            conns(f.conns_8)
        );
    }
    // The first guest against each later one, as ratios of the medians (issue #16 item 3's
    // goal: at least 1.2 both ways against the Linux domU).
    if let Some(((first, a), rest)) = measured.split_first() {
        for (other, b) in rest {
            let ratio = |i: usize| match (a[i], b[i]) {
                (Some(x), Some(y)) if y > 0.0 => format!("{:.2}x", x / y),
                _ => "—".into(),
            };
            println!(
                "\n{first} / {other} on {board_name}: host→guest {}, guest→host {}, connections/s {} (1 client), {} (8 clients)",
                ratio(0),
                ratio(1),
                ratio(2),
                ratio(3)
            );
        }
    }
    Ok(ExitCode::from(report.outcome.exit_code()))
}

/// The median, if any.
fn median_of(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied()
}

/// The median and the range, `3.1 (2.9–3.3)`, or `—`.
fn median(v: &[f64]) -> String {
    if v.is_empty() {
        return "—".into();
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = median_of(v).unwrap_or_default();
    if s.len() == 1 {
        format!("{m:.2}")
    } else {
        format!("{m:.2} ({:.2}–{:.2})", s[0], s[s.len() - 1])
    }
}

fn measure(ip: Ipv4Addr, plan: Plan, f: &mut Figures) -> Result<()> {
    wait_ready(ip, plan.ready_within)?;
    eprintln!("net-bench: {ip} answers");
    let mb = |bytes: u64, d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    for _ in 0..plan.repeat {
        let d = to_guest(ip, plan.bytes)?;
        f.to_guest.push(mb(plan.bytes, d));
        eprintln!(
            "net-bench: {ip}: host→guest {} bytes in {d:.2?}: {:.2} MB/s",
            plan.bytes,
            mb(plan.bytes, d)
        );
        let d = from_guest(ip, plan.bytes)?;
        f.from_guest.push(mb(plan.bytes, d));
        eprintln!(
            "net-bench: {ip}: guest→host {} bytes in {d:.2?}: {:.2} MB/s",
            plan.bytes,
            mb(plan.bytes, d)
        );
    }
    for (clients, slot) in [(1, &mut f.conns_1), (8, &mut f.conns_8)] {
        let (done, errors, d) = connections(ip, clients, Duration::from_secs(plan.seconds));
        let rate = done as f64 / d.as_secs_f64();
        eprintln!("net-bench: {ip}: {done} connections in {d:.2?} with {clients} client(s), {errors} failed: {rate:.0}/s");
        *slot = Some((rate, errors));
    }
    Ok(())
}

/// Waits until the guest's echo port answers one exchange.
fn wait_ready(ip: Ipv4Addr, within: Duration) -> Result<()> {
    let t0 = Instant::now();
    loop {
        if exchange(ip).is_ok() {
            return Ok(());
        }
        ensure!(
            t0.elapsed() < within,
            "no answer on {ip}:{ECHO} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn connect(ip: Ipv4Addr, port: u16) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(5))
        .with_context(|| format!("connecting to {ip}:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    Ok(s)
}

/// `bytes` to the discard port, until the guest reports having read them all.
fn to_guest(ip: Ipv4Addr, bytes: u64) -> Result<Duration> {
    let t0 = Instant::now();
    let mut s = connect(ip, DISCARD)?;
    let chunk = vec![0x5au8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        s.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line)?;
    let d = t0.elapsed();
    ensure!(
        line.trim() == bytes.to_string(),
        "the guest counted {:?} bytes, not {bytes}",
        line.trim()
    );
    Ok(d)
}

/// `bytes` from the source port, until the guest closes.
fn from_guest(ip: Ipv4Addr, bytes: u64) -> Result<Duration> {
    let t0 = Instant::now();
    let mut s = connect(ip, SOURCE)?;
    s.write_all(format!("{bytes}\n").as_bytes())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf)? {
            0 => break,
            n => got += n as u64,
        }
    }
    let d = t0.elapsed();
    ensure!(got == bytes, "the guest sent {got} bytes, not {bytes}");
    Ok(d)
}

/// One short connection: connect, 16 bytes echoed, shut down, wait for the guest's close.
fn exchange(ip: Ipv4Addr) -> Result<()> {
    let mut s = connect(ip, ECHO)?;
    let msg = b"net-bench ping!\n";
    s.write_all(msg)?;
    let mut back = [0u8; 16];
    s.read_exact(&mut back)?;
    ensure!(&back == msg, "echo sent back other bytes");
    s.shutdown(Shutdown::Write)?;
    ensure!(s.read(&mut back)? == 0, "echo sent more than it got");
    Ok(())
}

/// `clients` threads doing [`exchange`] back to back for `span`: (done, failed, elapsed).
fn connections(ip: Ipv4Addr, clients: usize, span: Duration) -> (u64, u64, Duration) {
    let t0 = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut done, mut failed) = (0u64, 0u64);
                while t0.elapsed() < span {
                    match exchange(ip) {
                        Ok(()) => done += 1,
                        Err(_) => failed += 1,
                    }
                }
                (done, failed)
            })
        })
        .collect();
    let (mut done, mut failed) = (0, 0);
    for w in workers {
        let (d, f) = w.join().unwrap_or((0, 1));
        done += d;
        failed += f;
    }
    (done, failed, t0.elapsed())
}
