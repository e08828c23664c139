//! The QEMU process of a board run: its command line (Xen's and dom0's too), starting it,
//! and the signals that stop it.

use super::*;

/// Xen's command line: dom0's memory, all log levels, console on the device tree's UART, then
/// the board's own options.
pub(super) fn xen_cmdline(dom0_memory: u32, options: &[String]) -> String {
    let mut line = format!("dom0_mem={dom0_memory}M loglvl=all guest_loglvl=all console=dtuart console_timestamps=boot");
    for o in options {
        line.push(' ');
        line.push_str(o);
    }
    line
}

pub(super) const DOM0_CMDLINE: &str = "console=hvc0 earlycon=xen rdinit=/init loglevel=5";
/// Where QEMU's guest-loader puts dom0's kernel and initramfs. Not 0x48000000: QEMU puts the
/// device tree there.
pub(super) const DOM0_KERNEL_ADDR: &str = "0x49000000";
pub(super) const DOM0_INITRD_ADDR: &str = "0x50000000";

/// Says what boots, catches the signals that stop the board, and starts QEMU.
pub(super) fn boot(
    prepared: &Prepared,
    qemu: Command,
    what: &str,
    log: &Path,
) -> Result<(Signals, Instant, Running)> {
    let stands_for = match &prepared.stands_for {
        Some(b) => format!(", standing for {b}"),
        None => String::new(),
    };
    status(
        "Booting",
        format!(
            "{what} (Xen {} under QEMU {}{stands_for}, log {})",
            prepared.arch,
            prepared.qemu.cpu,
            log.display()
        ),
    );
    let signals = Signals::catch();
    Ok((signals, Instant::now(), Running::spawn(qemu)?))
}

/// QEMU started: its serial lines arrive on `rx`; `errs` ends with its stderr.
pub(super) struct Running {
    pub(super) child: std::process::Child,
    pub(super) rx: mpsc::Receiver<Vec<u8>>,
    pub(super) errs: std::thread::JoinHandle<String>,
}

impl Running {
    pub(super) fn spawn(mut qemu: Command) -> Result<Running> {
        let program = qemu.get_program().to_string_lossy().into_owned();
        let mut child = qemu
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let errs = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        Ok(Running { child, rx, errs })
    }
}

/// QEMU for the board. `ssh`: a host port on 127.0.0.1 forwarded to port 22 of dom0's NIC
/// [`ssh::DOM0_SSH_MAC`] on QEMU's user network (no privileges needed). `disks`: disk images,
/// each a virtio disk of dom0 with serial `uni-disk<i>` (dom0's /init finds them by it).
pub(super) fn qemu_command(
    p: &Prepared,
    initrd: &Path,
    tap: Option<&net::Tap>,
    ssh: Option<u16>,
    disks: &[PathBuf],
) -> Command {
    // QEMU's option syntax: a comma inside a value is written twice
    let opt = |p: &Path| p.display().to_string().replace(',', ",,");
    // if `uni` dies, even by SIGKILL, QEMU goes too (and with it the board's namespace):
    // util-linux's setpriv sets the parent-death signal, then runs QEMU in its place
    let mut c = Command::new("setpriv");
    c.args(["--pdeathsig", "KILL", "--", p.program]);
    c.args(["-machine", &p.qemu.machine, "-cpu", &p.qemu.cpu])
        .args([
            "-smp",
            &p.qemu.smp.to_string(),
            "-m",
            &p.qemu.memory.to_string(),
        ])
        .args(["-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&p.base.xen)
        .args(["-append", &xen_cmdline(p.dom0_memory, &p.qemu.xen_options)])
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={DOM0_KERNEL_ADDR},kernel={},bootargs={DOM0_CMDLINE}",
            opt(&p.base.kernel)
        ))
        .arg("-device")
        .arg(format!(
            "guest-loader,addr={DOM0_INITRD_ADDR},initrd={}",
            opt(initrd)
        ));
    if let Some(tap) = tap {
        // dom0's virtio NIC is the other end of the host's tap
        c.args([
            "-netdev",
            &format!("tap,id=net0,ifname={},script=no,downscript=no", tap.name),
            "-device",
            &format!("virtio-net-device,netdev=net0,mac={}", net::DOM0_NIC_MAC),
        ]);
    } else if ssh.is_none() {
        // no default NIC: dom0 would only probe it
        c.args(["-nic", "none"]);
    }
    if let Some(port) = ssh {
        c.args([
            "-netdev",
            &format!("user,id=ssh,hostfwd=tcp:127.0.0.1:{port}-:22"),
            "-device",
            &format!("virtio-net-device,netdev=ssh,mac={}", ssh::DOM0_SSH_MAC),
        ]);
    }
    for (i, d) in disks.iter().enumerate() {
        // cache=writeback (QEMU's default) with flushes passed on: what the guest flushes,
        // through blkback and dom0's virtio disk, is fdatasync'd into the file
        c.args([
            "-drive",
            &format!("if=none,id=disk{i},format=raw,file={}", opt(d)),
            "-device",
            &format!("virtio-blk-device,drive=disk{i},serial=uni-disk{i}"),
        ]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // QEMU gets its own process group, so a ^C reaches `uni` only, which stops QEMU itself.
    c.process_group(0);
    c
}

/// SIGINT, SIGTERM and SIGHUP, caught while the board runs: the run stops QEMU, removes what
/// it made, and reports [`Outcome::Interrupted`]. The handlers are removed on drop (a signal
/// after that is ignored until `uni` exits, which it then does at once).
pub(super) struct Signals {
    caught: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    pub(super) fn catch() -> Signals {
        let caught = Arc::new(AtomicUsize::new(0));
        let ids = [SIGINT, SIGTERM, SIGHUP]
            .into_iter()
            .filter_map(|sig| {
                signal_hook::flag::register_usize(sig, caught.clone(), sig as usize).ok()
            })
            .collect();
        Signals { caught, ids }
    }

    pub(super) fn caught(&self) -> Option<i32> {
        match self.caught.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s as i32),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
