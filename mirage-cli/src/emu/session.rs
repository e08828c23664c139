//! One session of the board: the guests' files in dom0's initramfs, the network plan, the
//! boot, and each guest's run from `xl create` to its shutdown.

use super::*;

/// Boots `guest` on the prepared board and returns how it ended. The guest's console goes to
/// stdout as it arrives; if the guest printed nothing, what the board said about it goes to
/// stderr.
pub fn run(prepared: &Prepared, guest: &Guest, opts: &RunOptions) -> Result<Outcome> {
    Ok(run_guests(prepared, std::slice::from_ref(guest), opts)?.outcome)
}

/// A guest's files and place in the run.
pub(super) struct Planned<'a> {
    guest: &'a Guest,
    cfg: xl::RunConfig,
    ip: Option<Ipv4Addr>,
}

/// Boots `guests` one after another in one session of the board: each runs until it shuts
/// down, then the next is created. Every guest's console goes to stdout.
pub fn run_guests(prepared: &Prepared, guests: &[Guest], opts: &RunOptions) -> Result<Report> {
    if guests.is_empty() {
        bail!("no guest to run");
    }
    let mut plan = Vec::new();
    let mut vifs = 0;
    // the run's disk images, each a virtio disk of dom0 (`xl::disk_node`)
    let mut disks: Vec<PathBuf> = Vec::new();
    // dom0's static leases: each distinct MAC of the run the next address, so a guest that
    // comes again (the same MAC) gets its address again
    let mut leases: Vec<(String, Ipv4Addr)> = Vec::new();
    for guest in guests {
        let xl_text = std::fs::read_to_string(&guest.xl)
            .with_context(|| format!("reading {}", guest.xl.display()))?;
        let xl_dir = guest.xl.parent().unwrap_or(Path::new("."));
        let cfg = xl::rewrite(&xl_text, &guest.image, xl_dir, vifs, &mut disks)
            .with_context(|| format!("in {}", guest.xl.display()))?;
        for mac in &cfg.macs {
            if !leases.iter().any(|(m, _)| m == mac) {
                leases.push((mac.clone(), net::lease_ip(leases.len())));
            }
        }
        let ip = cfg.macs.first().map(|mac| {
            let leased = leases
                .iter()
                .find(|(m, _)| m == mac)
                .expect("leased above")
                .1;
            net::static_ipv4(&cfg.extra).unwrap_or(leased)
        });
        vifs += cfg.macs.len();
        plan.push(Planned { guest, cfg, ip });
    }
    if !opts.forwards.is_empty() && plan[0].ip.is_none() {
        bail!(
            "`-p` forwards to the guest's network, but {} has no vif (no network device in \
             unikernel.toml)",
            plan[0].guest.xl.display()
        );
    }

    // The network: only when a guest has a vif, so that other runs boot as fast as before.
    // The `-p` listeners are bound here, in the caller's namespace; then the process moves to
    // the board's own, where the TAP device and every connection to a guest are made.
    let net_on = vifs > 0;
    let listeners = opts
        .forwards
        .iter()
        .map(|&(h, g)| net::Listener::bind(h, &format!("`-p {h}:{g}`")))
        .collect::<Result<Vec<_>>>()?;
    let tap = if net_on {
        net::isolate()?;
        match net::Tap::create(net::TAP_NAME) {
            Ok(tap) => Some(tap),
            Err(e) if opts.forwards.is_empty() => {
                warn(format!(
                    "the host cannot reach the guest: {e:#}. The guest still gets its address \
                     from dom0's DHCP server."
                ));
                None
            }
            Err(e) => return Err(e.context("`-p` needs the host on the board's network")),
        }
    } else {
        None
    };
    let ready = Arc::new(AtomicBool::new(false));
    let mut forwards = Vec::new();
    if let Some(ip) = plan[0].ip {
        for (l, &(_, g)) in listeners.into_iter().zip(&opts.forwards) {
            forwards.push(net::Forward::start(
                l,
                SocketAddrV4::new(ip, g),
                ready.clone(),
            )?);
        }
    }
    if net_on {
        // the first guest with a vif (a run may start with guests without one)
        let first = plan
            .iter()
            .find(|p| !p.cfg.macs.is_empty())
            .unwrap_or(&plan[0]);
        let ip = first.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let how = if net::static_ipv4(&first.cfg.extra).is_some() {
            "static, from --ipv4"
        } else {
            "DHCP"
        };
        let host = match &tap {
            Some(t) => format!(
                "; host {} on {} (10.0.0.0/24) in this run's own network namespace, entered with \
                 `uni lan --pid {}`",
                net::HOST_IP,
                t.name,
                std::process::id()
            ),
            None => String::new(),
        };
        let fwd: String = forwards
            .iter()
            .map(|f| format!("; 127.0.0.1:{} -> {}", f.host, f.guest))
            .collect();
        status(
            "Network",
            format!(
                "{} at {ip} ({how}, MAC {}){host}{fwd}",
                first.guest.name,
                first.cfg.macs.first().map(String::as_str).unwrap_or("-")
            ),
        );
    }

    let scratch = scratch()?;
    let initrd = scratch.path().join("initrd.cpio");
    let net = NetPlan {
        on: net_on,
        nic: tap.is_some(),
        leases,
        check: opts.dom0_check.clone(),
    };
    write_initrd(
        &prepared.base.initrd,
        &plan,
        &net,
        disks.len(),
        opts.trace_reader.as_deref(),
        &initrd,
    )?;
    for (i, d) in disks.iter().enumerate() {
        status(
            "Disk",
            format!(
                "{} as dom0's virtio disk {} ({}), writes land in the file",
                d.display(),
                xl::disk_node(i),
                crate::cmd::build::human(std::fs::metadata(d)?.len())
            ),
        );
    }

    if let Some(dir) = opts.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(&opts.log)
            .with_context(|| format!("creating {}", opts.log.display()))?,
    );

    let mut qemu = qemu_command(prepared, &initrd, tap.as_ref(), None, &disks);
    if opts.trace_reader.is_some() {
        // the serial line's input: how a stopped run asks dom0 for the trace (below)
        qemu.stdin(Stdio::piped());
    }
    let names: Vec<&str> = guests.iter().map(|g| g.name.as_str()).collect();
    let (signals, t0, running) = boot(
        prepared,
        qemu,
        &format!("{} on {}", names.join(", then "), prepared.board),
        &opts.log,
    )?;
    let Running {
        mut child,
        rx,
        errs,
    } = running;
    let mut serial_in = child.stdin.take();
    // A run stopped (a signal, the timeout) while a traced guest runs first asks dom0 for its
    // trace and waits for it, up to a minute: how the run ended, and until when it waits.
    let mut stopping: Option<(Outcome, Instant)> = None;

    let mut monitor = serial::Monitor::default();
    let mut runs: Vec<GuestRun> = Vec::new();
    let mut check = None;
    let mut check_lines = Vec::new();
    let mut first_line = None;
    // the current guest's trace ring as it arrives (base64), and its reader's errors
    let mut trace_text = String::new();
    let mut trace_err: Vec<String> = Vec::new();
    let deadline = t0 + opts.timeout;
    let out = std::io::stdout();
    let outcome = loop {
        let stop = match &stopping {
            Some((o, until)) if Instant::now() >= *until => {
                warn("dom0 did not send the trace in time; stopping the board");
                break o.clone();
            }
            Some(_) => None,
            None => signals
                .caught()
                .map(Outcome::Interrupted)
                .or_else(|| (Instant::now() >= deadline).then_some(Outcome::Timeout)),
        };
        if let Some(o) = stop {
            let guest_runs = runs
                .last()
                .is_some_and(|r| r.outcome.is_none() && r.domid.is_some());
            let asked = guest_runs
                && serial_in.as_mut().is_some_and(|w| {
                    writeln!(w, "uni-trace-now")
                        .and_then(|()| w.flush())
                        .is_ok()
                });
            if !asked {
                break o;
            }
            status("Tracing", "asked dom0 for the running guest's trace");
            stopping = Some((o, Instant::now() + Duration::from_secs(60)));
        }
        let left = match &stopping {
            Some((_, until)) => until.saturating_duration_since(Instant::now()),
            None => deadline.saturating_duration_since(Instant::now()),
        };
        let raw = match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(raw) => raw,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let st = child.wait()?;
                if let Some(sig) = signals.caught() {
                    break Outcome::Interrupted(sig);
                }
                let err = errs.join().unwrap_or_default();
                let err = err.trim();
                break Outcome::BootFailed(if err.is_empty() {
                    format!("QEMU stopped ({st}) before the guest did")
                } else {
                    format!("QEMU stopped ({st}) before the guest did: {err}")
                });
            }
        };
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        writeln!(log, "{line}")?;
        let current = runs.len().checked_sub(1);
        match monitor.feed(line) {
            serial::Action::Guest(text) => {
                first_line.get_or_insert_with(|| t0.elapsed());
                if let Some(i) = current {
                    runs[i].console.push(text.to_string());
                }
                let mut o = out.lock();
                writeln!(o, "{text}")?;
                o.flush()?;
            }
            serial::Action::Created { domid } => {
                let p = &plan[current.unwrap_or(0).min(plan.len() - 1)];
                status(
                    "Started",
                    format!(
                        "{} as domain {domid} after {:.1}s",
                        p.guest.name,
                        t0.elapsed().as_secs_f64()
                    ),
                );
                if let Some(r) = current.and_then(|i| runs.get_mut(i)) {
                    r.domid = Some(domid);
                }
                ready.store(true, Ordering::Relaxed);
            }
            serial::Action::Timing { what, secs } => {
                if let Some(r) = current.and_then(|i| runs.get_mut(i)) {
                    match what {
                        "first-output" => r.first_output = Some(secs),
                        "marker" => r.marker = Some(secs),
                        _ => {}
                    }
                }
            }
            serial::Action::Leased(ip) => status("Leased", format!("{ip} by dom0's DHCP server")),
            serial::Action::Check(text) => {
                eprintln!("  dom0 check | {text}");
                check_lines.push(text.to_string());
            }
            serial::Action::CheckEnd(st) => {
                status(
                    "Checked",
                    format!(
                        "`{}` in dom0: {}",
                        opts.dom0_check.as_deref().unwrap_or(""),
                        if st == 0 {
                            "ok".to_string()
                        } else {
                            format!("failed (exit status {st})")
                        }
                    ),
                );
                check = Some((st, std::mem::take(&mut check_lines)));
            }
            serial::Action::GuestEnd(o) => {
                if let Some(r) = current.and_then(|i| runs.get_mut(i)) {
                    r.outcome = Some(o);
                }
            }
            serial::Action::Board(text) => {
                if text.starts_with("xl create ") && runs.len() < plan.len() {
                    let p = &plan[runs.len()];
                    runs.push(GuestRun {
                        name: p.guest.name.clone(),
                        ip: p.ip,
                        ..GuestRun::default()
                    });
                }
                if opts.verbose {
                    eprintln!("{text}");
                }
            }
            serial::Action::Trace(text) => trace_text.push_str(text),
            serial::Action::TraceErr(text) => trace_err.push(text.to_string()),
            serial::Action::TraceEnd(st) => {
                use base64::Engine as _;
                let text = std::mem::take(&mut trace_text);
                let err = std::mem::take(&mut trace_err).join("; ");
                let got = if st != 0 {
                    Err(format!(
                        "the trace reader in dom0 failed (exit status {st}): {err}"
                    ))
                } else {
                    base64::engine::general_purpose::STANDARD
                        .decode(text.as_bytes())
                        .map_err(|e| {
                            format!(
                                "the trace ring came from dom0 damaged ({e}; {} base64 characters)",
                                text.len()
                            )
                        })
                };
                if let Some(r) = current.and_then(|i| runs.get_mut(i)) {
                    r.trace = Some(got);
                }
                if let Some((o, _)) = stopping.take() {
                    break o;
                }
            }
            serial::Action::End(o) => {
                if let Some(r) = runs.last_mut() {
                    r.outcome.get_or_insert(o.clone());
                }
                break o;
            }
        }
    };
    // dom0 is powering off by now; nothing after the end line matters
    let _ = child.kill();
    let _ = child.wait();
    drop(forwards);
    drop(tap);
    drop(signals);
    log.flush()?;

    // The guest's own words come first; what the board knows is shown when the guest printed
    // nothing, or did not boot. After a crash with output, only the PC: the dump is in the log.
    let name = &guests.last().unwrap().name;
    let silent = monitor.guest_lines == 0;
    let quiet = matches!(outcome, Outcome::Interrupted(_));
    if !opts.verbose && !quiet {
        if silent || matches!(outcome, Outcome::BootFailed(_)) {
            if silent && !matches!(outcome, Outcome::BootFailed(_)) {
                warn(format!("{name} printed nothing"));
            }
            for l in monitor.report() {
                eprintln!("{l}");
            }
        } else if outcome == Outcome::Crash {
            if let Some(pc) = monitor.crash_pc() {
                eprintln!(
                    "{name} crashed at PC {pc} (xenctx; the register dump is in {})",
                    opts.log.display()
                );
            }
        }
    }
    let first = first_line
        .map(|t| format!("; the guest's first line came at {:.1}s", t.as_secs_f64()))
        .unwrap_or_default();
    let after = runs
        .iter()
        .filter_map(|r| Some((r, r.first_output?)))
        .map(|(r, t)| format!(", {}s after xl create for {}", t, r.name))
        .collect::<String>();
    status(
        "Halted",
        format!(
            "the board after {:.1}s{first}{after}",
            t0.elapsed().as_secs_f64()
        ),
    );
    Ok(Report {
        outcome,
        guests: runs,
        check,
    })
}

/// What dom0 sets up for the network.
pub(super) struct NetPlan {
    /// bridge + udhcpd (a guest has a vif)
    on: bool,
    /// dom0 has a NIC to the host's tap
    nic: bool,
    /// udhcpd's static leases, MAC and address
    leases: Vec<(String, Ipv4Addr)>,
    check: Option<String>,
}

/// The cached dom0 initramfs, then a cpio (uncompressed) with the guests' files and
/// `/guest/run.env`. Linux unpacks both, one after the other.
pub(super) fn write_initrd(
    base: &Path,
    plan: &[Planned],
    net: &NetPlan,
    disks: usize,
    trace_reader: Option<&Path>,
    to: &Path,
) -> Result<()> {
    let mut bytes = std::fs::read(base).with_context(|| format!("reading {}", base.display()))?;
    // the next archive starts on a 4-byte boundary; Linux skips the zeros in between
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    let mut w = cpio::Writer::new(Vec::new());
    let mut env = format!(
        "GUESTS={}\nDISKS={disks}\nNET={}\nNIC={}\nNIC_MAC={}\n",
        plan.len(),
        net.on as u8,
        net.nic as u8,
        sh_quote(net::DOM0_NIC_MAC)
    );
    let mut written: Vec<String> = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let cfg = &p.cfg;
        for (host, name) in &cfg.files {
            if written.contains(name) {
                continue;
            }
            let data =
                std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
            w.file(&format!("guest/{name}"), 0o644, &data)?;
            written.push(name.clone());
        }
        let xl_name = format!("{}-{}.xl", i + 1, cfg.name);
        w.file(&format!("guest/{xl_name}"), 0o644, cfg.text.as_bytes())?;
        env += &format!(
            "G{n}_NAME={}\nG{n}_CFG={}\nG{n}_MARK={}\n",
            sh_quote(&cfg.name),
            sh_quote(&format!("{}/{xl_name}", xl::GUEST_DIR)),
            sh_quote(p.guest.marker.as_deref().unwrap_or("")),
            n = i + 1
        );
    }
    let leases: Vec<String> = net
        .leases
        .iter()
        .map(|(mac, ip)| format!("{mac} {ip}"))
        .collect();
    env += &format!(
        "DHCP_STATIC={}\nGUEST_IP={}\nDOM0_CHECK={}\n",
        sh_quote(&leases.join(";")),
        plan[0].ip.map(|ip| ip.to_string()).unwrap_or_default(),
        sh_quote(net.check.as_deref().unwrap_or(""))
    );
    if let Some(reader) = trace_reader {
        let data =
            std::fs::read(reader).with_context(|| format!("reading {}", reader.display()))?;
        w.file("guest/uni-trace-dump", 0o755, &data)?;
        env += "TRACE=1\n";
    }
    w.file("guest/run.env", 0o644, env.as_bytes())?;
    let (guest, _) = w.finish()?;
    bytes.extend_from_slice(&guest);
    std::fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_cpio_follows_the_base_on_a_4_byte_boundary() {
        let dir = std::env::temp_dir().join(format!("uni-emu-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("base"), b"12345").unwrap();
        std::fs::write(dir.join("hello.xen"), b"image").unwrap();
        let cfg = xl::rewrite(
            "name = \"hello\"\nvif = [ 'bridge=xenbr0' ]\n",
            &dir.join("hello.xen"),
            &dir,
            0,
            &mut vec![],
        )
        .unwrap();
        let guest = Guest {
            name: "hello".into(),
            image: dir.join("hello.xen"),
            xl: dir.join("hello.xl"),
            marker: Some("it's up".into()),
        };
        let plan = [Planned {
            guest: &guest,
            cfg,
            ip: Some(net::lease_ip(0)),
        }];
        let net = NetPlan {
            on: true,
            nic: false,
            leases: vec![("00:16:3e:75:6e:02".into(), net::lease_ip(0))],
            check: Some("ping -c 3 $GUEST_IP".into()),
        };
        write_initrd(&dir.join("base"), &plan, &net, 0, None, &dir.join("out")).unwrap();
        let out = std::fs::read(dir.join("out")).unwrap();
        assert_eq!(&out[..8], b"12345\0\0\0");
        assert_eq!(&out[8..14], b"070701");
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("guest/hello.xen\0"));
        assert!(s.contains("guest/1-hello.xl\0"));
        assert!(s.contains("vif = [ 'bridge=xenbr0,mac=00:16:3e:75:6e:02' ]\n"));
        assert!(
            s.contains(
                "GUESTS=1\nDISKS=0\nNET=1\nNIC=0\nNIC_MAC='52:54:00:75:6e:01'\nG1_NAME='hello'\nG1_CFG='/guest/1-hello.xl'\n\
                 G1_MARK='it'\\''s up'\nDHCP_STATIC='00:16:3e:75:6e:02 10.0.0.2'\n\
                 GUEST_IP=10.0.0.2\nDOM0_CHECK='ping -c 3 $GUEST_IP'\n"
            ),
            "{s}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
