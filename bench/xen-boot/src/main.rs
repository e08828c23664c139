//! `xen-boot`: boots guests one after another in ONE session of uni's emulated Xen board
//! (boards/qemu-virt) and prints, per guest, how it ended and its timings.
//!
//! ```text
//! xen-boot [--timeout SECS] [-p HOST:GUEST]... [--dom0-check CMD] XL[=MARKER]...
//! ```
//! Each XL is an xl file whose `kernel` (relative to the xl file) is the image; MARKER is a
//! console line (substring) dom0 times. The guests' consoles go to stdout as they arrive; the
//! last lines are `result name=… outcome=… first_output_s=… marker_s=… …`, one per guest.
//! The serial log is written to `xen-boot-serial.log` in the current directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use mirage_cli::{board, emu};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xen-boot: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let mut opts = emu::RunOptions::new(
        Duration::from_secs(300),
        PathBuf::from("xen-boot-serial.log"),
    );
    let mut guests = Vec::new();
    let mut board_name = "qemu-virt".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--board" => board_name = args.next().context("--board NAME")?,
            "--timeout" => {
                opts.timeout = Duration::from_secs(args.next().context("--timeout SECS")?.parse()?)
            }
            "-p" => {
                let v = args.next().context("-p HOST:GUEST")?;
                let (h, g) = v.split_once(':').context("-p HOST:GUEST")?;
                opts.forwards.push((h.parse()?, g.parse()?));
            }
            "--dom0-check" => opts.dom0_check = Some(args.next().context("--dom0-check CMD")?),
            "-v" => opts.verbose = true,
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => guests.push(xen_boot_bench::guest(s)?),
        }
    }
    if guests.is_empty() {
        bail!("usage: xen-boot [--board NAME] [--timeout SECS] [-p HOST:GUEST]... [--dom0-check CMD] XL[=MARKER]...");
    }
    let board = board::find(&board_name)
        .with_context(|| format!("no board {board_name}; accepted: {}", board::names()))?;
    let prepared = emu::prepare(&board, &emu::cache_dir())?;
    let report = emu::run_guests(&prepared, &guests, &opts)?;
    let s = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    for g in &report.guests {
        // the runtime's own figures (`--uni-boot-info` / `--uni-boot-report`), if it printed any
        let boot = app_start_in(&g.console)
            .map(|us| us.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "result board={board_name} name={} outcome={} first_output_s={} marker_s={} app_start_guest_us={} ip={}",
            g.name,
            g.outcome.as_ref().map(|o| o.to_string().replace(' ', "_")).unwrap_or_else(|| "-".into()),
            s(g.first_output),
            s(g.marker),
            boot,
            g.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
        );
    }
    if let Some((st, _)) = &report.check {
        println!("result dom0_check_status={st}");
    }
    Ok(ExitCode::from(report.outcome.exit_code()))
}

/// The app's start in a guest's console: the `uni: app started after N us` line if there is
/// one, else an older runtime's "platform up in N us".
fn app_start_in(console: &[String]) -> Option<u64> {
    let started = |l: &String| l.contains("app started after ");
    console
        .iter()
        .find(|l| started(l))
        .or_else(|| console.iter().find(|l| l.contains("platform up in ")))
        .and_then(|l| app_start_us(l))
}

/// `uni: app started after N us (guest clock)` (`--uni-boot-info` since issue #16), else the
/// "platform up in N us" of an older runtime's `--uni-boot-info`.
fn app_start_us(line: &str) -> Option<u64> {
    let num = |s: &str| s.split_whitespace().next()?.parse().ok();
    if let Some(rest) = line.split("app started after ").nth(1) {
        return num(rest);
    }
    line.split("platform up in ").nth(1).and_then(num)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_runtimes_boot_figures() {
        assert_eq!(
            super::app_start_us("uni: app started after 1234 us (guest clock)"),
            Some(1234)
        );
        assert_eq!(
            super::app_start_us("uni: Xen 4.17 (x), 32 MiB RAM, GICv3, counter 62500000 Hz; first instruction 5 us after domain creation, platform up in 2961 us"),
            Some(2961)
        );
        assert_eq!(super::app_start_us("hello"), None);
        // today's report has both lines: the app's start wins
        let console = [
            "uni: Xen 4.17 (x), 32 MiB RAM, GICv2, counter 62500000 Hz; first instruction 5 us after domain creation, platform up in 4930 us".to_string(),
            "uni: app started after 5578 us (guest clock)".to_string(),
        ];
        assert_eq!(super::app_start_in(&console), Some(5578));
    }
}
