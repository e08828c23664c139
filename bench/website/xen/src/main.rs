//! `website-xen`: in ONE session of uni's emulated Xen board (boards/qemu-virt), boots the
//! xen-rig's Linux armhf domU (which powers itself off), then examples/static-website once per
//! `memory=` size, one after the other, while the host fetches `https://10.0.0.2/` from each
//! over the board's TAP. Prints, per guest, how it ended and its timings.
//!
//! ```text
//! website-xen [--timeout SECS] [--limit SECS] --ca CA.pem --linux XL --site XL
//!             [--example XL MARKER]... MIB...
//! ```
//! - `--linux XL`: tests/tools/linux-guest.sh's linux-boot.xl (no vif; /init prints `LINUX UP`
//!   and powers off). Its marker is `LINUX UP`.
//! - `--site XL`: examples/static-website/dist/static-website.xl. For each MIB, a copy with
//!   `name = "static-website-m<MIB>"` and `memory = <MIB>` is written to the current directory.
//!   Each gets one vif, so the board's DHCP server gives the k-th of them 10.0.0.(2+k). Its marker
//!   is the request line of the host's first `GET /` answered 200.
//! - `--example XL MARKER` (any number): another example's dist/<name>.xl, booted after the
//!   static-website copies once per MIB as `<name>-m<MIB>` (its own vif and MAC kept), with
//!   MARKER, a console line's text, as its sign that it works (echo's `listening on`, hello's
//!   `world`, …). Nothing fetches from these.
//! - The host side: one thread per static-website guest probes TCP port 443 of its address
//!   (300 ms connect timeout, every 100 ms) and, once a connection is accepted, runs
//!   `curl --cacert CA --connect-to 10.0.0.2:443:<its address>:443 https://10.0.0.2/` (the
//!   certificate names 10.0.0.2) until one answers 200.
//! - static-website never shuts down by itself, and only the run's first guest gets a dom0 check,
//!   so the dom0 check (started when the Linux guest exists) is a script that follows the
//!   static-website guests one by one: it destroys each one 2 s after its console shows the
//!   request line, or when `--limit` seconds (45 after a first failure) pass without it. So the
//!   run ends by itself; if it does not, the run's timeout ends it, and what was measured until
//!   then is still reported (the timings come from dom0 as they happen).
//!
//! The last lines are `result …`, one per guest, then `verdict …` lines from the dom0 script.
//! The serial log is `website-xen-serial.log` in the current directory.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mirage_cli::{board, emu};
use xen_boot_bench::xl_value;

mod common;
use common::key;

/// The request line the host's first fetch makes the guest log (uni-http's log format:
/// `https: <peer> "GET / HTTP/1.1" 200 <bytes> <duration>`).
const SERVED: &str = "\"GET / HTTP/1.1\" 200";
const LINUX_MARK: &str = "LINUX UP";

fn main() -> ExitCode {
    // The board's LAN lives in a network namespace of this process's own, which every thread
    // made afterwards shares: the measuring threads reach the guests there, and nothing of the
    // LAN is visible in the caller's namespace. It must be made while there is one thread.
    if let Err(e) = emu::net::isolate() {
        eprintln!("website-xen: {e:#}");
        return ExitCode::from(2);
    }
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("website-xen: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[derive(Default, Clone)]
struct Fetch {
    /// host seconds since the board started, when the first 200 came back
    ok_at: Option<f64>,
    /// curl's `%{time_total}` of that request
    total: Option<String>,
    /// failed curl attempts after an accepted connection, and the last one's message
    failures: u32,
    last_error: String,
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let mut timeout = 1200u64;
    let mut limit = 120u32;
    let (mut ca, mut linux, mut site) = (None, None, None);
    let mut examples: Vec<(PathBuf, String)> = Vec::new();
    let mut sizes: Vec<u32> = Vec::new();
    let mut board_name = "qemu-virt".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--board" => board_name = args.next().context("--board NAME")?,
            "--timeout" => timeout = args.next().context("--timeout SECS")?.parse()?,
            "--limit" => limit = args.next().context("--limit SECS")?.parse()?,
            "--ca" => ca = Some(PathBuf::from(args.next().context("--ca FILE")?)),
            "--linux" => linux = Some(PathBuf::from(args.next().context("--linux XL")?)),
            "--site" => site = Some(PathBuf::from(args.next().context("--site XL")?)),
            "--example" => {
                let xl = PathBuf::from(args.next().context("--example XL MARKER")?);
                let marker = args.next().context("--example XL MARKER")?;
                if marker.contains('\'') {
                    bail!("--example {}: a marker with no ' in it", xl.display());
                }
                examples.push((xl, marker));
            }
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => sizes.push(
                s.parse()
                    .with_context(|| format!("{s}: not a size in MiB"))?,
            ),
        }
    }
    let (Some(ca), Some(linux), Some(site)) = (ca, linux, site) else {
        bail!("usage: website-xen [--board NAME] [--timeout SECS] [--limit SECS] --ca CA.pem --linux XL --site XL [--example XL MARKER]... MIB...");
    };
    if sizes.is_empty() {
        bail!("no memory size given");
    }
    let ca = std::fs::canonicalize(&ca).with_context(|| format!("{}", ca.display()))?;

    let mut guests = vec![guest(&linux, None, Some(LINUX_MARK))?];
    let site_text =
        std::fs::read_to_string(&site).with_context(|| format!("reading {}", site.display()))?;
    let mut names = Vec::new();
    for &m in &sizes {
        let name = format!("static-website-m{m}");
        let text: String = site_text
            .lines()
            .filter(|l| !matches!(key(l), Some("name" | "memory" | "vif")))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            // no MAC: the board numbers each guest's (uni build gives every copy of the site
            // the same one, from its name), so the k-th copy gets 10.0.0.(2+k)
            + &format!("name = \"{name}\"\nmemory = {m}\nvif = [ 'bridge=xenbr0' ]\n");
        let xl = PathBuf::from(format!("{name}.xl"));
        std::fs::write(&xl, text)?;
        // the kernel line of the generated xl file is absolute: keep it
        guests.push(guest(&xl, Some(&site), Some(SERVED))?);
        names.push(name);
    }
    // the other examples after the site's copies, so that those keep their numbered addresses
    let mut followed: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), SERVED.to_string()))
        .collect();
    for (xl_path, marker) in &examples {
        let text = std::fs::read_to_string(xl_path)
            .with_context(|| format!("reading {}", xl_path.display()))?;
        let base = xl_value(&text, "name")
            .with_context(|| format!("{} has no name", xl_path.display()))?;
        for &m in &sizes {
            let name = format!("{base}-m{m}");
            let copy: String = text
                .lines()
                .filter(|l| !matches!(key(l), Some("name" | "memory")))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                + &format!("name = \"{name}\"\nmemory = {m}\n");
            let xl = PathBuf::from(format!("{name}.xl"));
            std::fs::write(&xl, copy)?;
            guests.push(guest(&xl, Some(xl_path), Some(marker))?);
            followed.push((name, marker.clone()));
        }
    }

    let mut opts = emu::RunOptions::new(
        Duration::from_secs(timeout),
        PathBuf::from("website-xen-serial.log"),
    );
    opts.dom0_check = Some(dom0_script(&followed, limit));

    let board = board::find(&board_name)
        .with_context(|| format!("no board {board_name}; accepted: {}", board::names()))?;
    let prepared = emu::prepare(&board, &emu::cache_dir())?;

    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    common::fast_arp(stop.clone());
    let fetches: Arc<Mutex<HashMap<String, Fetch>>> = Arc::default();
    let mut pollers = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let ip = Ipv4Addr::new(10, 0, 0, 2 + k as u8);
        let (stop, fetches, name, ca) = (stop.clone(), fetches.clone(), name.clone(), ca.clone());
        pollers.push(std::thread::spawn(move || {
            poll(ip, &ca, &name, t0, &stop, &fetches)
        }));
    }

    let report = emu::run_guests(&prepared, &guests, &opts);
    stop.store(true, Ordering::Relaxed);
    let report = report?;
    let fetches = fetches.lock().unwrap().clone();

    let s = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    // `verdict <name> <what> <seconds>` from the dom0 script
    let verdicts: HashMap<String, String> = report
        .check
        .iter()
        .flat_map(|(_, lines)| lines.iter())
        .filter_map(|l| {
            let mut w = l.strip_prefix("verdict ")?.split_whitespace();
            Some((w.next()?.to_string(), w.collect::<Vec<_>>().join("_")))
        })
        .collect();
    for g in &report.guests {
        let f = fetches.get(&g.name).cloned().unwrap_or_default();
        // `memory=` of the guest's xl file
        let mem = guests
            .iter()
            .find(|x| x.name == g.name)
            .and_then(|x| std::fs::read_to_string(&x.xl).ok())
            .and_then(|t| {
                t.lines()
                    .find(|l| key(l) == Some("memory"))
                    .and_then(|l| l.split_once('='))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "result board={board_name} name={} memory={} outcome={} verdict={} ip={} first_output_s={} marker_s={} host_first_200_s={} curl_time_total_s={} curl_failures={} console_lines={}",
            g.name,
            mem,
            g.outcome.as_ref().map(|o| o.to_string().replace(' ', "_")).unwrap_or_else(|| "-".into()),
            verdicts.get(&g.name).map(String::as_str).unwrap_or("-"),
            g.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            s(g.first_output),
            s(g.marker),
            s(f.ok_at),
            f.total.unwrap_or_else(|| "-".into()),
            f.failures,
            g.console.len(),
        );
        if f.failures > 0 {
            println!(
                "curl name={} last_error={}",
                g.name,
                f.last_error.trim().replace('\n', " | ")
            );
        }
        if g.name != "linux" && g.marker.is_none() {
            for l in g
                .console
                .iter()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                println!("console name={} | {l}", g.name);
            }
        }
    }
    match &report.check {
        Some((st, lines)) => {
            for l in lines.iter().filter(|l| l.starts_with("verdict ")) {
                println!("{l}");
            }
            println!("result dom0_script_status={st}");
        }
        None => println!("result dom0_script_status=- (did not finish)"),
    }
    println!(
        "result run_outcome={} host_run_s={:.1}",
        report.outcome.to_string().replace(' ', "_"),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The host's side for one guest at `ip`: wait for port 443 to accept, then curl until a 200.
fn poll(
    ip: Ipv4Addr,
    ca: &Path,
    name: &str,
    t0: Instant,
    stop: &AtomicBool,
    fetches: &Mutex<HashMap<String, Fetch>>,
) {
    let addr = SocketAddr::from((ip, 443));
    while !stop.load(Ordering::Relaxed) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let o = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "60",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{time_total}",
                "--cacert",
            ])
            .arg(ca)
            .args([
                "--connect-to",
                &format!("10.0.0.2:443:{ip}:443"),
                "https://10.0.0.2/",
            ])
            .output();
        let at = t0.elapsed().as_secs_f64();
        let mut map = fetches.lock().unwrap();
        let f = map.entry(name.to_string()).or_default();
        match o {
            Ok(o) if o.status.success() && o.stdout.starts_with(b"200 ") => {
                f.ok_at = Some(at);
                f.total = String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .nth(1)
                    .map(String::from);
                return;
            }
            Ok(o) => {
                f.failures += 1;
                f.last_error = format!(
                    "{} {}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            Err(e) => {
                f.failures += 1;
                f.last_error = e.to_string();
            }
        }
        drop(map);
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The dom0 check: follows the guests `followed` (name, marker), in the order the board creates
/// them (each one's console log appears when its turn comes), and destroys each one 2 s after its
/// console shows its marker ([`SERVED`] for static-website), or after `limit` seconds without it
/// (45 s once one has failed). Prints one `verdict <name> <served|ended|never-created|timeout>
/// <seconds>` line per guest ("served": the marker was seen).
fn dom0_script(followed: &[(String, String)], limit: u32) -> String {
    let mut calls = String::new();
    for (i, (name, mark)) in followed.iter().enumerate() {
        let next = followed.get(i + 1).map(|n| n.0.as_str()).unwrap_or("");
        calls += &format!("follow {name} '{mark}' '{next}'\n");
    }
    format!(
        r#"LIM={limit}
follow() {{
  g=$1; mark=$2; next=$3
  L=/var/log/xen/console/guest-$g.log
  # a guest xl could not create has no log: give up on it when the next one's appears, or
  # after 120 s
  w=0
  while [ ! -e "$L" ]; do
    if [ -n "$next" ] && [ -e "/var/log/xen/console/guest-$next.log" ]; then break; fi
    w=$((w + 1)); [ $w -lt 240 ] || break
    sleep 0.5
  done
  if [ ! -e "$L" ]; then echo "verdict $g never-created 0s"; return; fi
  t0=$(cut -d' ' -f1 /proc/uptime); seen=; r=timeout; el=0
  while :; do
    el=$(awk -v a="$t0" '{{ printf "%d", $1 - a }}' /proc/uptime)
    if grep -qF "$mark" "$L"; then r=served; break; fi
    if xl domid "$g" >/dev/null 2>&1; then seen=1
    elif [ -n "$seen" ]; then r=ended; break
    elif [ -n "$next" ] && [ -e "/var/log/xen/console/guest-$next.log" ]; then r=never-created; break
    elif [ "$el" -ge 60 ]; then r=never-created; break
    fi
    [ "$el" -lt "$LIM" ] || break
    sleep 0.5
  done
  echo "verdict $g $r ${{el}}s"
  if [ $r = served ]; then sleep 2; else LIM=45; fi
  xl destroy "$g" >/dev/null 2>&1
}}
{calls}"#
    )
}

/// A guest from an xl file; its image is the xl file's `kernel`, relative to `kernel_dir`'s
/// directory (default: the xl file's).
fn guest(xl: &Path, kernel_dir: Option<&Path>, marker: Option<&str>) -> Result<emu::Guest> {
    let text = std::fs::read_to_string(xl).with_context(|| format!("reading {}", xl.display()))?;
    let kernel =
        xl_value(&text, "kernel").with_context(|| format!("{} has no kernel", xl.display()))?;
    let base = kernel_dir.unwrap_or(xl);
    let image = base.parent().unwrap_or(Path::new(".")).join(kernel);
    let name = xl_value(&text, "name").unwrap_or_else(|| {
        xl.file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    });
    Ok(emu::Guest {
        name,
        image,
        xl: xl.to_path_buf(),
        marker: marker.map(String::from),
    })
}
