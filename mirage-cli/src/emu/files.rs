//! Helpers for the cache and the tools a board run needs.

use super::*;

/// Fails with what to install when `tool` is not on PATH.
pub(super) fn need_tool(tool: &str, debian_package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{tool} not found: install Debian's {debian_package} (apt-get install {debian_package})");
    }
    Ok(())
}

/// 64-bit FNV-1a: a cache key that stays the same across Rust versions and hosts.
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `e` says a file could not be made because the directory is not ours to write.
pub(super) fn read_only(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::PermissionDenied
                || io.raw_os_error() == Some(libc::EROFS)
        })
    })
}

/// One `prepare` at a time per board cache: a lock file holding the owner's pid, taken over
/// when that process is gone.
pub(super) struct Lock(PathBuf);

impl Lock {
    pub(super) fn take(path: &Path) -> Result<Lock> {
        let mut waited = false;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id())?;
                    return Ok(Lock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if !alive && !owner.is_empty() {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if !waited {
                        status(
                            "Waiting",
                            format!("for another uni using {}", path.display()),
                        );
                        waited = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `s` as one shell word.
pub(super) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
