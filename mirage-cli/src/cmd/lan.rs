//! `uni lan`: a command inside a running board's network namespace (see emu::net).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};

use crate::cli::Lan;

pub fn run(args: Lan) -> Result<ExitCode> {
    let pid = match args.pid {
        Some(pid) => pid,
        None => only_board()?,
    };
    let ns = |kind: &str| PathBuf::from(format!("/proc/{pid}/ns/{kind}"));
    let same = |kind: &str| -> Result<bool> {
        let theirs = std::fs::read_link(ns(kind)).with_context(|| {
            format!(
                "no process {pid} of yours to enter ({})",
                ns(kind).display()
            )
        })?;
        Ok(std::fs::read_link(format!("/proc/self/ns/{kind}"))? == theirs)
    };
    if same("net")? {
        bail!("process {pid} shares this network namespace: it is not a board run (`uni run --target xen-arm` prints its pid)");
    }
    // A user namespace first (a board run without root made one): it is what grants the right
    // to join its network namespace. Opened before either is joined.
    let user = if same("user")? {
        None
    } else {
        Some(std::fs::File::open(ns("user"))?)
    };
    let net = std::fs::File::open(ns("net"))
        .with_context(|| format!("opening {}", ns("net").display()))?;
    if let Some(user) = user {
        setns(user, CloneFlags::CLONE_NEWUSER)
            .with_context(|| format!("entering the user namespace of process {pid}"))?;
    }
    setns(net, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering the network namespace of process {pid}"))?;
    let mut words = args.command.into_iter();
    let program = words.next().unwrap_or_else(|| {
        std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into())
    });
    let err = Command::new(&program).args(words).exec();
    Err(err).with_context(|| format!("starting `{program}` in the board's network namespace"))
}

/// The pid of the one `uni` process of this user whose network namespace is not ours.
fn only_board() -> Result<u32> {
    let own = std::fs::read_link("/proc/self/ns/net")?;
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != "uni" {
            continue;
        }
        // unreadable: another user's process
        if std::fs::read_link(e.path().join("ns/net")).is_ok_and(|n| n != own) {
            found.push(pid);
        }
    }
    match found[..] {
        [pid] => Ok(pid),
        [] => bail!(
            "no board is running: start one with `uni run --target xen-arm` or `uni run --dom0`"
        ),
        _ => bail!(
            "{} boards are running (uni processes {}): name one with --pid",
            found.len(),
            found
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
