//! `website-nginx`: drives bench/website/nginx.sh (issue #16 item 4). In ONE session of uni's
//! emulated Xen board it boots, one after the other, the rig's Linux armhf domU serving
//! examples/static-website's files with Debian's nginx, and examples/static-website itself, and
//! measures each over the board's LAN from this process's own network namespace (the board's:
//! nothing here touches the caller's network).
//!
//! ```text
//! website-nginx [--board NAME] [--timeout SECS] --ca CA.pem --htdocs DIR [--path /index.html]
//!               [--wrk-seconds 20] [--conns 16] [--new-seconds 10] [--also-conns N]
//!               [--split] (--nginx XL | --uni XL)...
//! ```
//! Guests are booted in the order given. Each has one vif and no MAC, so the k-th gets
//! 10.0.0.(2+k) from dom0's DHCP server. A second `--nginx` right after a first is a spare: it
//! is measured only if the first did not come up (the rig's Linux domU has been unreliable on
//! this board, bench/README.md); otherwise a dom0 script destroys it as soon as it exists.
//!
//! For each guest (a thread per guest waits for it, so each is found as soon as it serves; the
//! measurements run one guest at a time):
//! 1. probe TCP port 443 every 100 ms (300 ms connect timeout) and then `curl https://10.0.0.2/`
//!    (`--connect-to` its address: the certificate names 10.0.0.2) until it answers 200. The
//!    guest's console marks that request (static-website logs the request line; the Linux
//!    domU's /init prints `NGINX FIRST 200` once nginx's access log has a 200), and dom0 times
//!    the mark from the start of `xl create` (its clock: host time under TCG, sampled every
//!    20 ms): the `first_200_s` figure;
//! 2. fetch /index.html, /css/site.css and /img/logo.svg, verifying the certificate against
//!    `--ca`, and compare them byte for byte with `--htdocs`;
//! 3. `openssl s_client -brief`: the TLS version, suite and group negotiated;
//! 4. `wrk -t1 -c CONNS -d WRK_SECONDS --latency https://<ip><path>` (keep-alive), and with
//!    `--also-conns N` once more with N connections (`also_wrk=cN:<requests/s>/<p50>/<p99>/…`);
//! 5. `openssl s_time -connect <ip>:443 -new -time NEW_SECONDS` (full handshakes one after the
//!    other, no request), counted over this process's wall time around it;
//! 6. end it: the Linux domU powers off on a connection to its port 99; static-website is
//!    destroyed by the dom0 script once its console logs the request for `/bench-done`.
//!
//! With `--split`, the dom0 script also times the steps of each static-website guest's
//! `xl create` → first 200 (`split` lines: the vif's hotplug script, the unpause, the guest's
//! first line, DHCP address, first 200). Its looks (an awk every 0.1 s) take dom0 time from the
//! `xl create` they time, so the first-200 figures of such a run are not the unperturbed ones.
//!
//! Every command runs under `timeout`, and the run under `--timeout`, so everything stops by
//! itself. The last lines are `result server=…` per measured guest, then `result guest=…` per
//! guest and the dom0 script's `verdict` lines. The serial log is `website-nginx-serial.log`.

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

/// static-website's console line for the host's first `GET /` answered 200.
const UNI_SERVED: &str = "\"GET / HTTP/1.1\" 200";
/// The Linux domU's /init line once nginx has logged a 200.
const NGINX_SERVED: &str = "NGINX FIRST 200";
/// The request that makes the dom0 script destroy static-website.
const DONE_PATH: &str = "/bench-done";
/// The files compared with htdocs/.
const FILES: &[&str] = &["index.html", "css/site.css", "img/logo.svg"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Uni,
}

struct Spec {
    kind: Kind,
    name: String,
    xl: PathBuf,
    /// a Linux boot measured only if the one before it did not come up
    spare: bool,
}

struct Opts {
    ca: PathBuf,
    htdocs: PathBuf,
    path: String,
    wrk_seconds: u32,
    conns: u32,
    new_seconds: u32,
    /// a second wrk run with this many connections (0: none)
    also_conns: u32,
}

#[derive(Default, Clone, Debug)]
struct Measured {
    /// host seconds since the run started, when the first 200 came back
    first_200_host_s: Option<f64>,
    curl_total: String,
    same_files: String,
    tls: String,
    rps: String,
    p50: String,
    p99: String,
    requests: String,
    errors: String,
    new_count: Option<u64>,
    new_wall_s: f64,
    note: String,
    /// the second wrk run: `c<N>:<requests/s>/<p50>/<p99>/<errors>`
    also: String,
}

fn main() -> ExitCode {
    // The board's LAN lives in this process's own network namespace, which every thread and
    // every command started afterwards shares; it must be made while there is one thread.
    if let Err(e) = emu::net::isolate() {
        eprintln!("website-nginx: {e:#}");
        return ExitCode::from(2);
    }
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("website-nginx: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let mut board_name = "cubieboard2".to_string();
    let mut timeout = 900u64;
    let (mut ca, mut htdocs) = (None, None);
    let mut path = "/index.html".to_string();
    let (mut wrk_seconds, mut conns, mut new_seconds) = (20u32, 16u32, 10u32);
    let mut also_conns = 0u32;
    let mut split = false;
    let mut specs: Vec<Spec> = Vec::new();
    let num = |v: Option<String>, what: &str| -> Result<u32> {
        let v = v.with_context(|| format!("{what} needs a number"))?;
        v.parse()
            .with_context(|| format!("{what} {v}: not a whole number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--board" => board_name = args.next().context("--board NAME")?,
            "--timeout" => timeout = num(args.next(), "--timeout")?.into(),
            "--ca" => ca = Some(PathBuf::from(args.next().context("--ca FILE")?)),
            "--htdocs" => htdocs = Some(PathBuf::from(args.next().context("--htdocs DIR")?)),
            "--path" => path = args.next().context("--path /FILE")?,
            "--wrk-seconds" => wrk_seconds = num(args.next(), "--wrk-seconds")?,
            "--conns" => conns = num(args.next(), "--conns")?,
            "--new-seconds" => new_seconds = num(args.next(), "--new-seconds")?,
            "--also-conns" => also_conns = num(args.next(), "--also-conns")?,
            "--split" => split = true,
            "--nginx" | "--uni" => {
                let xl = PathBuf::from(args.next().with_context(|| format!("{a} XL"))?);
                let kind = if a == "--nginx" {
                    Kind::Nginx
                } else {
                    Kind::Uni
                };
                let spare =
                    kind == Kind::Nginx && specs.last().is_some_and(|s| s.kind == Kind::Nginx);
                specs.push(Spec {
                    kind,
                    name: String::new(),
                    xl,
                    spare,
                });
            }
            s => bail!("unknown argument {s}"),
        }
    }
    let (Some(ca), Some(htdocs)) = (ca, htdocs) else {
        bail!("usage: website-nginx [--board NAME] [--timeout SECS] --ca CA.pem --htdocs DIR [--path P] [--wrk-seconds N] [--conns N] [--new-seconds N] [--also-conns N] [--split] (--nginx XL | --uni XL)...");
    };
    if specs.is_empty() {
        bail!("no guest given (--nginx XL, --uni XL)");
    }
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        bail!("--path {path}: a URL path starting with / and without spaces");
    }
    let ca = std::fs::canonicalize(&ca).with_context(|| format!("{}", ca.display()))?;
    let opts = Opts {
        ca,
        htdocs,
        path,
        wrk_seconds,
        conns,
        new_seconds,
        also_conns,
    };

    // Each guest's xl file, renamed when a name comes twice (each domain's console log is
    // guest-<name>.log), next to the original so that its relative paths still hold.
    let mut guests = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for s in specs.iter_mut() {
        let text = std::fs::read_to_string(&s.xl)
            .with_context(|| format!("reading {}", s.xl.display()))?;
        let base =
            xl_value(&text, "name").with_context(|| format!("{} has no name", s.xl.display()))?;
        let n = seen.iter().filter(|x| **x == base).count();
        seen.push(base.clone());
        s.name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{}", n + 1)
        };
        if n > 0 {
            let copy: String = text
                .lines()
                .filter(|l| key(l) != Some("name"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                + &format!("name = \"{}\"\n", s.name);
            let dir = s.xl.parent().unwrap_or(Path::new("."));
            s.xl = dir.join(format!("{}.xl", s.name));
            std::fs::write(&s.xl, copy)?;
        }
        let kernel = xl_value(&text, "kernel")
            .with_context(|| format!("{} has no kernel", s.xl.display()))?;
        let image = s.xl.parent().unwrap_or(Path::new(".")).join(kernel);
        guests.push(emu::Guest {
            name: s.name.clone(),
            image,
            xl: s.xl.clone(),
            marker: Some(
                match s.kind {
                    Kind::Nginx => NGINX_SERVED,
                    Kind::Uni => UNI_SERVED,
                }
                .to_string(),
            ),
        });
    }

    let mut run_opts = emu::RunOptions::new(
        Duration::from_secs(timeout),
        PathBuf::from("website-nginx-serial.log"),
    );
    run_opts.dom0_check = Some(dom0_script(&specs, split));
    let board = board::find(&board_name)
        .with_context(|| format!("no board {board_name}; accepted: {}", board::names()))?;
    let prepared = emu::prepare(&board, &emu::cache_dir())?;

    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    common::fast_arp(stop.clone());
    let results: Arc<Mutex<Vec<Option<Measured>>>> = Arc::new(Mutex::new(vec![None; specs.len()]));
    let plan: Vec<(Kind, bool, String)> = specs
        .iter()
        .map(|s| (s.kind, s.spare, s.name.clone()))
        .collect();
    let opts = Arc::new(opts);
    let measurer = {
        let (stop, results) = (stop.clone(), results.clone());
        std::thread::spawn(move || measure_all(&plan, &opts, t0, &stop, &results))
    };

    let report = emu::run_guests(&prepared, &guests, &run_opts);
    stop.store(true, Ordering::Relaxed);
    let _ = measurer.join();
    let report = report?;
    let results = results.lock().unwrap().clone();

    let s = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    let w = |v: &str| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.replace(' ', "_")
        }
    };
    // `verdict <name> <what> <seconds>` from the dom0 script
    let verdict = |name: &str| -> Option<String> {
        report.check.as_ref()?.1.iter().find_map(|l| {
            let mut w = l.strip_prefix("verdict ")?.split_whitespace();
            (w.next()? == name).then(|| w.next().unwrap_or("").to_string())
        })
    };
    for (i, g) in report.guests.iter().enumerate() {
        let spec = specs.iter().find(|s| s.name == g.name);
        // a guest the dom0 script destroyed looks to the board like a failed `xl create` (xl
        // saw no shutdown reason), which it was not
        let outcome = match (verdict(&g.name).as_deref(), &g.outcome) {
            (Some("measured"), _) => "destroyed_by_the_bench_after_measuring".to_string(),
            (Some("skipped"), _) => "a_spare,_destroyed_unused".to_string(),
            (_, Some(o)) => o.to_string().replace(' ', "_"),
            (_, None) => "-".into(),
        };
        println!(
            "result guest={} ip={} outcome={} first_output_s={} marker_s={} console_lines={}",
            g.name,
            g.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            outcome,
            s(g.first_output),
            s(g.marker),
            g.console.len()
        );
        let idx = specs.iter().position(|s| s.name == g.name).unwrap_or(i);
        if let (Some(spec), Some(Some(m))) = (spec, results.get(idx)) {
            let server = match spec.kind {
                Kind::Nginx => "nginx",
                Kind::Uni => "static-website",
            };
            let new_per_s = m
                .new_count
                .filter(|_| m.new_wall_s > 0.0)
                .map(|n| format!("{:.1}", n as f64 / m.new_wall_s))
                .unwrap_or_else(|| "-".into());
            println!(
                "result server={server} guest={} first_output_s={} first_200_s={} host_first_200_s={} curl_time_total_s={} same_files={} tls={} rps={} p50={} p99={} requests={} errors={} new_count={} new_wall_s={:.2} new_per_s={new_per_s} also_wrk={} outcome={outcome} note={}",
                g.name,
                s(g.first_output),
                s(g.marker),
                s(m.first_200_host_s),
                w(&m.curl_total),
                w(&m.same_files),
                w(&m.tls),
                w(&m.rps),
                w(&m.p50),
                w(&m.p99),
                w(&m.requests),
                w(&m.errors),
                m.new_count.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
                m.new_wall_s,
                w(&m.also),
                w(&m.note),
            );
        }
        // what a guest that did not serve said last
        if g.marker.is_none() {
            let tail: Vec<_> = g.console.iter().rev().take(15).collect();
            for l in tail.into_iter().rev() {
                println!("console name={} | {l}", g.name);
            }
        } else {
            for l in g
                .console
                .iter()
                .filter(|l| l.starts_with("LINUX") || l.starts_with("NGINX") || l.contains("heap"))
            {
                println!("console name={} | {l}", g.name);
            }
            // static-website logs every connection that ends in an error (s_time's end
            // each of its connections with a reset)
            let errors = g.console.iter().filter(|l| l.contains(" error: ")).count();
            if errors > 0 {
                println!("console name={} | ({errors} lines with ` error: `)", g.name);
            }
        }
    }
    match &report.check {
        Some((st, lines)) => {
            for l in lines {
                println!("dom0 | {l}");
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

/// The host's side: one thread per guest waits for its first 200 (so that a guest is found
/// as soon as it serves, whichever came up before it), and this thread measures each guest
/// whose first 200 came, one at a time, and then ends it.
fn measure_all(
    plan: &[(Kind, bool, String)],
    opts: &Arc<Opts>,
    t0: Instant,
    stop: &Arc<AtomicBool>,
    results: &Mutex<Vec<Option<Measured>>>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Measured)>();
    for k in 0..plan.len() {
        let (tx, opts, stop) = (tx.clone(), opts.clone(), stop.clone());
        std::thread::spawn(move || {
            let ip = emu::net::lease_ip(k);
            if let Some(m) = first_200(ip, &opts, t0, &stop) {
                let _ = tx.send((k, m));
            }
        });
    }
    drop(tx);
    while let Ok((k, mut m)) = rx.recv() {
        let (kind, _, name) = &plan[k];
        let ip = emu::net::lease_ip(k);
        eprintln!(
            "website-nginx: {name} ({ip}): first 200 at {:.2} s of the run; measuring",
            m.first_200_host_s.unwrap_or(0.0)
        );
        m.same_files = same_files(ip, opts);
        m.tls = tls_info(ip);
        wrk(ip, opts, opts.conns, &mut m);
        if opts.also_conns > 0 {
            let mut a = Measured::default();
            wrk(ip, opts, opts.also_conns, &mut a);
            m.also = format!(
                "c{}:{}/{}/{}/{}",
                opts.also_conns, a.rps, a.p50, a.p99, a.errors
            );
        }
        s_time(ip, opts, &mut m);
        results.lock().unwrap()[k] = Some(m);
        // end it
        match kind {
            Kind::Nginx => {
                let _ =
                    TcpStream::connect_timeout(&SocketAddr::from((ip, 99)), Duration::from_secs(5));
            }
            Kind::Uni => {
                let _ = curl(ip, opts, DONE_PATH, &["-o", "/dev/null"]);
            }
        }
    }
}

/// Waits for `ip`'s port 443 (a connect every 100 ms, 300 ms timeout) and then for a 200 for
/// `GET /`; `None` when the run stopped first.
fn first_200(ip: Ipv4Addr, opts: &Opts, t0: Instant, stop: &AtomicBool) -> Option<Measured> {
    let addr = SocketAddr::from((ip, 443));
    let mut m = Measured::default();
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        match curl(
            ip,
            opts,
            "/",
            &["-o", "/dev/null", "-w", "%{http_code} %{time_total}"],
        ) {
            Ok(out) if out.starts_with("200 ") => {
                m.first_200_host_s = Some(t0.elapsed().as_secs_f64());
                m.curl_total = out.split_whitespace().nth(1).unwrap_or("").to_string();
                if failures > 0 {
                    m.note = format!("{failures} failed fetches before the first 200");
                }
                return Some(m);
            }
            Ok(out) => {
                failures += 1;
                eprintln!("website-nginx: {ip}: GET / answered {out}");
            }
            Err(e) => {
                failures += 1;
                eprintln!("website-nginx: {ip}: GET /: {e:#}");
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    None
}

/// `curl` of `https://10.0.0.2<path>` at `ip` (the certificate names 10.0.0.2), verified
/// against the CA; its stdout.
fn curl(ip: Ipv4Addr, opts: &Opts, path: &str, extra: &[&str]) -> Result<String> {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(&opts.ca)
        .args(["--connect-to", &format!("10.0.0.2:443:{ip}:443")])
        .args(extra)
        .arg(format!("https://10.0.0.2{path}"))
        .output()
        .context("running curl")?;
    if !o.status.success() {
        bail!(
            "curl failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// "yes" when every file of [`FILES`] came back identical to htdocs/'s, else which did not.
fn same_files(ip: Ipv4Addr, opts: &Opts) -> String {
    let mut bad = Vec::new();
    for f in FILES {
        let want = std::fs::read(opts.htdocs.join(f)).unwrap_or_default();
        let got = Command::new("curl")
            .args(["-sS", "--max-time", "60", "--cacert"])
            .arg(&opts.ca)
            .args(["--connect-to", &format!("10.0.0.2:443:{ip}:443")])
            .arg(format!("https://10.0.0.2/{f}"))
            .output();
        match got {
            Ok(o) if o.status.success() && o.stdout == want && !want.is_empty() => {}
            Ok(o) => bad.push(format!("{f}({}_bytes)", o.stdout.len())),
            Err(_) => bad.push(format!("{f}(no_curl)")),
        }
    }
    if bad.is_empty() {
        "yes".into()
    } else {
        format!("no:{}", bad.join(","))
    }
}

/// The protocol, suite and key exchange group `openssl s_client -brief` reports.
fn tls_info(ip: Ipv4Addr) -> String {
    let o = Command::new("timeout")
        .args(["30", "openssl", "s_client", "-brief", "-connect"])
        .arg(format!("{ip}:443"))
        .stdin(std::process::Stdio::null())
        .output();
    let Ok(o) = o else {
        return "s_client_failed".into();
    };
    let text =
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    let pick = |p: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let group = {
        let g = pick("Negotiated TLS1.3 group:");
        if g.is_empty() {
            pick("Server Temp Key:")
        } else {
            g
        }
    };
    // "X25519, 253 bits": the group's name
    let group = group.split(',').next().unwrap_or("").trim().to_string();
    format!(
        "{}/{}/{}",
        pick("Protocol version:"),
        pick("Ciphersuite:"),
        group
    )
}

/// `wrk --latency`, keep-alive: requests/s, p50, p99, the request count and errors.
fn wrk(ip: Ipv4Addr, opts: &Opts, conns: u32, m: &mut Measured) {
    let limit = (opts.wrk_seconds + 60).to_string();
    let o = Command::new("timeout")
        .args(["--kill-after=5", &limit, "wrk", "-t1"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", opts.wrk_seconds))
        .args(["--latency", "--timeout", "10s"])
        .arg(format!("https://{ip}{}", opts.path))
        .output();
    let Ok(o) = o else {
        m.errors = "wrk_did_not_run".into();
        return;
    };
    let text = String::from_utf8_lossy(&o.stdout);
    eprintln!("website-nginx: wrk {ip}, {conns} connections:\n{text}");
    let mut errors = Vec::new();
    for l in text.lines() {
        let t = l.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            m.rps = v.trim().to_string();
        } else if let Some(v) = t.strip_prefix("50%") {
            m.p50 = v.trim().to_string();
        } else if let Some(v) = t.strip_prefix("99%") {
            m.p99 = v.trim().to_string();
        } else if t.contains(" requests in ") {
            m.requests = t.split_whitespace().next().unwrap_or("").to_string();
        } else if t.starts_with("Socket errors:") || t.starts_with("Non-2xx") {
            errors.push(t.replace([',', ':'], "").replace(' ', "_"));
        }
    }
    if !o.status.success() {
        errors.push(format!("wrk_exit_{}", o.status.code().unwrap_or(-1)));
    }
    m.errors = if errors.is_empty() {
        "none".into()
    } else {
        errors.join(";")
    };
}

/// `openssl s_time -new`: full TLS handshakes one after the other; the count over the wall time.
fn s_time(ip: Ipv4Addr, opts: &Opts, m: &mut Measured) {
    let limit = (opts.new_seconds + 60).to_string();
    let start = Instant::now();
    let o = Command::new("timeout")
        .args(["--kill-after=5", &limit, "openssl", "s_time", "-connect"])
        .arg(format!("{ip}:443"))
        .args(["-new", "-time", &opts.new_seconds.to_string()])
        .stdin(std::process::Stdio::null())
        .output();
    m.new_wall_s = start.elapsed().as_secs_f64();
    let Ok(o) = o else { return };
    let text = String::from_utf8_lossy(&o.stdout);
    // "N connections in T.TTs; …" (T is the client's CPU time: the wall time is ours)
    m.new_count = text
        .lines()
        .find(|l| l.contains(" connections in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    eprintln!(
        "website-nginx: s_time {ip}: {} in {:.2} s of wall time",
        text.lines()
            .filter(|l| l.contains("connections"))
            .collect::<Vec<_>>()
            .join(" / "),
        m.new_wall_s
    );
}

/// The dom0 check: dom0 on pCPU 0 alone (its second vCPU offline, as bench/net does), then each
/// guest followed in order: a spare Linux is destroyed as soon as it exists when the boot before
/// it was measured (its console says `LINUX QUIT`); static-website is destroyed 1 s after its
/// console logs the request for [`DONE_PATH`]; the Linux domU powers itself off; any guest is
/// destroyed after its time limit (Linux 300 s, static-website 180 s). One
/// `verdict <name> <measured|ended|skipped|never-created|timeout> <seconds>` line per guest.
fn dom0_script(specs: &[Spec], split: bool) -> String {
    let mut calls = String::new();
    for (i, s) in specs.iter().enumerate() {
        let next = specs.get(i + 1).map(|n| n.name.as_str()).unwrap_or("");
        let (end, limit) = match s.kind {
            Kind::Nginx => ("", 300),
            Kind::Uni => (DONE_PATH, 180),
        };
        let skip_if = if s.spare {
            format!("/var/log/xen/console/guest-{}.log", specs[i - 1].name)
        } else {
            String::new()
        };
        calls += &format!("follow {} '{end}' '{skip_if}' '{next}' {limit}\n", s.name);
    }
    let uni: Vec<&str> = specs
        .iter()
        .filter(|s| s.kind == Kind::Uni)
        .map(|s| s.name.as_str())
        .collect();
    let (uni_count, uni_names) = (uni.len(), uni.join(" "));
    // the splits' looks take dom0 time from the `xl create`s they time: only on --split
    let watch = if split { "watch_creates &" } else { "" };
    format!(
        r#"if [ -e /sys/devices/system/cpu/cpu1/online ]; then echo 0 > /sys/devices/system/cpu/cpu1/online; fi
xl vcpu-pin Domain-0 0 0
xl vcpu-list
# splits GUEST T0: from T0, the start of its `xl create` (seconds since dom0 booted), until its
# first 200 shows in its console log, a look every 0.1 s: `split GUEST SECONDS what` for the xl
# create log's lines about the devices' hotplug scripts and the domain's unpause, and for the
# guest's first console line, its address line and its first 200. One awk a look (dom0 forks
# slowly under TCG, and every look takes dom0 time from the xl create it times).
splits() {{
  g=$1; t0=$2; mark='{served}'; L=/var/log/xen/console/guest-$g.log; S=/tmp/split-$g
  echo "split $g 0.00 xl create started (its process's start time)"
  seen=0; flags=...; k=0
  while [ $k -lt 1200 ]; do
    awk -v t0="$t0" -v seen="$seen" -v flags="$flags" -v g="$g" -v mark="$mark" -v state="$S" '
      FILENAME == "/proc/uptime" {{ t = sprintf("%.2f", $1 - t0); next }}
      FILENAME == "/tmp/xl.log" {{ n = FNR; if (FNR > seen && $0 ~ /hotplug|unpause|Waiting for domain|complete, rc|create: how/) print "split " g " " t " xl: " $0; next }}
      {{ if (substr(flags, 1, 1) == ".") {{ print "split " g " " t " console: first line"; flags = "1" substr(flags, 2) }}
        if (substr(flags, 2, 1) == "." && $0 ~ /\(DHCP\)/) {{ print "split " g " " t " console: its address (DHCP): " $0; flags = substr(flags, 1, 1) "1" substr(flags, 3) }}
        if (substr(flags, 3, 1) == "." && index($0, mark)) {{ print "split " g " " t " console: the first 200"; flags = substr(flags, 1, 2) "1" }} }}
      END {{ print (n > seen ? n : seen) " " flags > state }}' /proc/uptime /tmp/xl.log "$L" 2>/dev/null
    read -r seen flags <"$S"
    [ "$flags" != 111 ] || break
    k=$((k + 1)); sleep 0.1
  done
}}
# the static-website guests' `xl create`s, found within 0.5 s by their xl process (dom0's /init
# runs `xl create -F /guest/<i>-<name>.xl`), timed from that process's start time
# (/proc/PID/stat field 22, in 1/100 s since boot); each gets its splits
watch_creates() {{
  found=; n=0; k=0
  while [ $n -lt {uni_count} ] && [ $k -lt 1200 ]; do
    for p in $(pidof xl 2>/dev/null); do
      case " $found " in *" $p "*) continue ;; esac
      c=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)
      case $c in *" create "*) ;; *) continue ;; esac
      found="$found $p"
      for g in {uni_names}; do
        case $c in *"-$g.xl"*) n=$((n + 1)); splits "$g" "$(awk '{{ print $22 / 100 }}' /proc/$p/stat)" & ;; esac
      done
    done
    k=$((k + 1)); sleep 0.5
  done
}}
{watch}
follow() {{
  g=$1; end=$2; skip_if=$3; next=$4; lim=$5
  L=/var/log/xen/console/guest-$g.log
  w=0
  while [ ! -e "$L" ]; do
    if [ -n "$next" ] && [ -e "/var/log/xen/console/guest-$next.log" ]; then break; fi
    w=$((w + 1)); [ $w -lt 600 ] || break
    sleep 0.5
  done
  if [ ! -e "$L" ]; then echo "verdict $g never-created 0s"; return; fi
  if [ -n "$skip_if" ] && grep -q 'LINUX QUIT' "$skip_if"; then
    # its log comes with xl create, the domain a moment later
    w=0; while ! xl domid "$g" >/dev/null 2>&1 && [ $w -lt 120 ]; do w=$((w + 1)); sleep 0.5; done
    xl destroy "$g" >/dev/null 2>&1; echo "verdict $g skipped 0s"; return
  fi
  t0=$(cut -d' ' -f1 /proc/uptime); seen=; r=timeout; el=0
  while :; do
    el=$(awk -v a="$t0" '{{ printf "%d", $1 - a }}' /proc/uptime)
    if [ -n "$end" ] && grep -qF "$end" "$L"; then r=measured; sleep 1; break; fi
    if xl domid "$g" >/dev/null 2>&1; then seen=1
    elif [ -n "$seen" ]; then r=ended; break
    elif [ -n "$next" ] && [ -e "/var/log/xen/console/guest-$next.log" ]; then r=never-created; break
    elif [ "$el" -ge 60 ]; then r=never-created; break
    fi
    [ "$el" -lt "$lim" ] || break
    sleep 0.5
  done
  echo "verdict $g $r ${{el}}s"
  xl destroy "$g" >/dev/null 2>&1
}}
{calls}"#,
        served = UNI_SERVED,
    )
}
