//! `block-bench`: boots guests one after another in ONE session of uni's emulated Xen board and
//! prints what each one's block workloads measured (the `blkbench: NAME bytes=B ops=N us=T`
//! lines of bench/block/app and bench/block/linux), then a markdown table with the first
//! guest's figures as ratios of each other guest's.
//!
//! ```text
//! block-bench [--board NAME] [--timeout SECS] [-v] XL[=MARKER]...
//! ```
//! Each XL is an xl file whose `kernel` (relative to the xl file) is the image, and whose
//! `disk` line names the guest's disk image. The guests' consoles go to stdout as they arrive;
//! then come `result board=… name=… workload=… bytes=… ops=… us=…` lines, one per workload, and
//! the table. The serial log is written to `block-bench-serial.log` in the current directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use mirage_cli::{board, emu};

/// The workloads, in the order of the table's columns: (console name, column heading).
const WORKLOADS: [(&str, &str); 4] = [
    ("seq_write", "sequential write MB/s"),
    ("seq_read", "sequential read MB/s"),
    ("rand_read", "4 KiB random read IOPS"),
    ("rand_write_flush", "4 KiB random write + flush IOPS"),
];

/// One workload's line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    bytes: u64,
    ops: u64,
    us: u64,
}

impl Measured {
    /// MB/s (10^6 bytes) for the sequential workloads, operations per second for the others.
    fn rate(&self, workload: &str) -> f64 {
        let secs = self.us.max(1) as f64 / 1e6;
        if workload.starts_with("seq") {
            self.bytes as f64 / 1e6 / secs
        } else {
            self.ops as f64 / secs
        }
    }
}

/// `blkbench: NAME bytes=B ops=N us=T` (anywhere in the line: the Linux console may prefix it).
fn parse(line: &str) -> Option<(String, Measured)> {
    let rest = line.split("blkbench: ").nth(1)?;
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let mut m = Measured {
        bytes: 0,
        ops: 0,
        us: 0,
    };
    let mut seen = 0;
    for w in words {
        let (k, v) = w.split_once('=')?;
        let v: u64 = v.parse().ok()?;
        match k {
            "bytes" => m.bytes = v,
            "ops" => m.ops = v,
            "us" => m.us = v,
            _ => return None,
        }
        seen += 1;
    }
    (seen == 3).then_some((name, m))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("block-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let mut opts = emu::RunOptions::new(
        Duration::from_secs(900),
        PathBuf::from("block-bench-serial.log"),
    );
    let mut guests = Vec::new();
    let mut board_name = "qemu-virt".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--board" => board_name = args.next().context("--board NAME")?,
            "--timeout" => {
                opts.timeout = Duration::from_secs(args.next().context("--timeout SECS")?.parse()?)
            }
            "-v" => opts.verbose = true,
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => guests.push(xen_boot_bench::guest(s)?),
        }
    }
    if guests.is_empty() {
        bail!("usage: block-bench [--board NAME] [--timeout SECS] [-v] XL[=MARKER]...");
    }
    let board = board::find(&board_name)
        .with_context(|| format!("no board {board_name}; accepted: {}", board::names()))?;
    let prepared = emu::prepare(&board, &emu::cache_dir())?;
    let report = emu::run_guests(&prepared, &guests, &opts)?;

    // each boot's figures, by workload
    let mut boots: Vec<Boot> = Vec::new();
    for g in &report.guests {
        let found: Vec<(String, Measured)> = g.console.iter().filter_map(|l| parse(l)).collect();
        for (name, m) in &found {
            println!(
                "result board={board_name} name={} workload={name} bytes={} ops={} us={}",
                g.name, m.bytes, m.ops, m.us
            );
        }
        let of = |w: &str| found.iter().find(|(n, _)| n == w).map(|(_, m)| *m);
        boots.push(Boot {
            name: g.name.clone(),
            measured: WORKLOADS.map(|(w, _)| of(w)),
            outcome: g
                .outcome
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_else(|| "the run ended first".into()),
        });
    }
    println!();
    for line in table(&board_name, &boots) {
        println!("{line}");
    }
    Ok(ExitCode::from(report.outcome.exit_code()))
}

/// What one boot of a guest measured.
struct Boot {
    name: String,
    measured: [Option<Measured>; 4],
    outcome: String,
}

/// The median and the range.
fn summary(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

/// `median` alone for one boot, else `median (low–high)`.
fn cell(s: Option<(f64, f64, f64)>, n: usize, digits: usize, unit: &str) -> String {
    match s {
        None => "—".into(),
        Some((m, ..)) if n == 1 => format!("{m:.digits$}{unit}"),
        Some((m, lo, hi)) => format!("{m:.digits$}{unit} ({lo:.digits$}–{hi:.digits$})"),
    }
}

/// A markdown table: one row per guest (its boots' median and range), then the first guest's
/// medians as ratios of each other guest's, with the range of the per-round ratios (the k-th
/// boot of one against the k-th boot of the other).
fn table(board: &str, boots: &[Boot]) -> Vec<String> {
    let mut names: Vec<&str> = Vec::new();
    for b in boots {
        if !names.contains(&b.name.as_str()) {
            names.push(&b.name);
        }
    }
    let of = |name: &str| -> Vec<&Boot> { boots.iter().filter(|b| b.name == name).collect() };
    let rates = |bs: &[&Boot], i: usize| -> Vec<f64> {
        bs.iter()
            .filter_map(|b| b.measured[i].map(|m| m.rate(WORKLOADS[i].0)))
            .collect()
    };
    let digits = |i: usize| {
        if WORKLOADS[i].0.starts_with("seq") {
            2
        } else {
            0
        }
    };
    let heads: Vec<&str> = WORKLOADS.iter().map(|(_, h)| *h).collect();
    let mut out = vec![
        format!("| board | guest | boots | {} | ended |", heads.join(" | ")),
        format!("|---|---|---:|{}---|", "---:|".repeat(WORKLOADS.len())),
    ];
    for name in &names {
        let bs = of(name);
        let cells: Vec<String> = (0..WORKLOADS.len())
            .map(|i| {
                let r = rates(&bs, i);
                cell(summary(r.clone()), r.len(), digits(i), "")
            })
            .collect();
        let mut ended: Vec<(String, usize)> = Vec::new();
        for b in &bs {
            match ended.iter_mut().find(|(o, _)| *o == b.outcome) {
                Some((_, n)) => *n += 1,
                None => ended.push((b.outcome.clone(), 1)),
            }
        }
        let ended: Vec<String> = ended
            .iter()
            .map(|(o, n)| {
                if *n == 1 {
                    o.clone()
                } else {
                    format!("{o} ×{n}")
                }
            })
            .collect();
        out.push(format!(
            "| {board} | {name} | {} | {} | {} |",
            bs.len(),
            cells.join(" | "),
            ended.join(", ")
        ));
    }
    if let Some((first, rest)) = names.split_first() {
        let a = of(first);
        for other in rest {
            let b = of(other);
            let cells: Vec<String> = (0..WORKLOADS.len())
                .map(|i| {
                    let (ra, rb) = (rates(&a, i), rates(&b, i));
                    let (Some(ma), Some(mb)) = (summary(ra.clone()), summary(rb.clone())) else {
                        return "—".into();
                    };
                    let per: Vec<f64> = ra.iter().zip(&rb).map(|(x, y)| x / y).collect();
                    let n = per.len();
                    match summary(per) {
                        Some((_, lo, hi)) if n > 1 => {
                            format!("**{:.2}×** ({lo:.2}–{hi:.2})", ma.0 / mb.0)
                        }
                        _ => format!("**{:.2}×**", ma.0 / mb.0),
                    }
                })
                .collect();
            out.push(format!(
                "| {board} | {first} ÷ {other} | | {} | |",
                cells.join(" | ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_guests_lines() {
        let m = Measured {
            bytes: 16777216,
            ops: 16,
            us: 2_000_000,
        };
        assert_eq!(
            parse("blkbench: seq_write bytes=16777216 ops=16 us=2000000"),
            Some(("seq_write".into(), m))
        );
        assert_eq!(
            parse("[   12.5] blkbench: seq_write bytes=16777216 ops=16 us=2000000"),
            Some(("seq_write".into(), m))
        );
        assert!((m.rate("seq_write") - 8.388608).abs() < 1e-9);
        assert_eq!(m.rate("rand_read"), 8.0);
        assert_eq!(parse("blkbench: disk 131072 sectors of 512 bytes"), None);
        assert_eq!(parse("blkbench: done"), None);
    }

    #[test]
    fn tables_medians_and_ratios() {
        let m = |us| {
            Some(Measured {
                bytes: 1_000_000,
                ops: 100,
                us,
            })
        };
        let boot = |name: &str, us| Boot {
            name: name.into(),
            measured: [m(us), m(us), m(us), None],
            outcome: "powered off".into(),
        };
        let t = table(
            "b",
            &[
                boot("uni", 1_000_000),
                boot("linux", 2_000_000),
                boot("uni", 500_000),
                boot("linux", 2_000_000),
            ],
        );
        assert_eq!(
            t[2],
            "| b | uni | 2 | 1.50 (1.00–2.00) | 1.50 (1.00–2.00) | 150 (100–200) | — | powered off ×2 |"
        );
        assert_eq!(
            t[4],
            "| b | uni ÷ linux | | **3.00×** (2.00–4.00) | **3.00×** (2.00–4.00) | **3.00×** (2.00–4.00) | — | |"
        );
    }
}
