//! Assembling the board's boot files from the `.deb`s: the Xen hypervisor, the dom0 kernel and
//! the dom0 initramfs (busybox, bash, the xl toolstack and its libraries, the Xen and bridge
//! modules, the /init of `templates/qemu-virt/dom0-init.sh`).
//!
//! The result is cached under `<cache>/<board>/dom0-<key>/`, the key hashing the `.deb` file
//! names, the init script and everything else that goes in, so a second run assembles nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::debs::{mb, package_of, Debs};
use super::{cpio, fnv, need_tool};
use crate::board::Dom0;
use crate::status::status;

/// dom0's /init.
pub const INIT: &str = include_str!("../../../templates/qemu-virt/dom0-init.sh");

/// Bumped when the assembly below changes what it produces.
const RECIPE: &str = "dom0 recipe 6";

/// What a toolstack-only dom0 does not need (rig.sh's list): docs, python (pygrub, xenfsimage),
/// locales, SysV init scripts.
const PRUNE: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/info",
    "usr/share/python3",
    "usr/lib/xen-4.17/lib/python",
    "usr/lib/TRIPLET/gconv",
    "usr/lib/TRIPLET/audit",
    "usr/lib/xen-4.17/lib/TRIPLET/xenfsimage",
    "etc/init.d",
];

/// The ELF files whose libraries must all be in the initramfs (dom0's ld.so has no cache and no
/// fallback, so a missing one only shows when the tool runs).
const MUST_LINK: &[&str] = &[
    "usr/lib/xen-4.17/bin/xl",
    "usr/lib/xen-4.17/bin/xenstored",
    "usr/lib/xen-4.17/bin/xenconsoled",
    "usr/lib/xen-4.17/bin/xen-init-dom0",
    "usr/lib/xen-4.17/bin/libxl-save-helper",
    "usr/lib/xen-4.17/bin/xenctx",
    "bin/bash",
    "usr/sbin/dropbear",
    "usr/bin/dropbearconvert",
    "usr/bin/flock",
];

/// Where dom0's ld.so looks (the init script's LD_LIBRARY_PATH); TRIPLET is
/// [`Dom0::triplet`], as in [`PRUNE`].
const LIB_DIRS: &[&str] = &[
    "lib/TRIPLET",
    "usr/lib/TRIPLET",
    "usr/lib/xen-4.17/lib/TRIPLET",
];

/// `paths` for dom0's architecture.
fn for_arch(paths: &[&str], dom0: &Dom0) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.replace("TRIPLET", dom0.triplet()))
        .collect()
}

/// How many assemblies the cache keeps.
const KEEP: usize = 3;

/// The board's boot files.
#[derive(Debug, Clone)]
pub struct Base {
    pub xen: PathBuf,
    pub kernel: PathBuf,
    /// gzip'd newc cpio
    pub initrd: PathBuf,
}

/// The cache key of the assembled files.
pub fn key(dom0: &Dom0, debs: &Debs) -> u64 {
    let mut names: Vec<String> = debs
        .files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let input = format!(
        "{RECIPE}\n{}\n{}\n{}\n{}\n{}\n{}\n{:?}\n{INIT}",
        dom0.arch,
        names.join(" "),
        dom0.modules.join(" "),
        dom0.net_modules.join(" "),
        dom0.disk_modules.join(" "),
        for_arch(PRUNE, dom0).join(" "),
        dom0.pick,
    );
    fnv(input.as_bytes())
}

fn base_in(dir: &Path) -> Base {
    Base {
        xen: dir.join("xen"),
        kernel: dir.join("Image"),
        initrd: dir.join("dom0.cpio.gz"),
    }
}

/// The cached boot files, assembling them if needed.
pub fn assemble(dom0: &Dom0, debs: &Debs, dir: &Path) -> Result<Base> {
    let out = dir.join(format!("dom0-{:016x}", key(dom0, debs)));
    if out.join("ok").is_file() {
        return Ok(base_in(&out));
    }
    need_tool("dpkg-deb", "dpkg")?;
    need_tool("gzip", "gzip")?;
    need_tool("readelf", "binutils")?;
    let t = std::time::Instant::now();
    status(
        "Assembling",
        format!("dom0 from {} packages", debs.files.len()),
    );
    let work = dir.join(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let r = build(dom0, debs, &work);
    if r.is_ok() {
        let _ = std::fs::remove_dir_all(&out);
        std::fs::rename(work.join("out"), &out)?;
        std::fs::write(out.join("ok"), "")?;
    }
    let _ = std::fs::remove_dir_all(&work);
    r?;
    let base = base_in(&out);
    let size = std::fs::metadata(&base.initrd)?.len();
    status(
        "Assembled",
        format!(
            "dom0 initramfs ({:.1} MB) in {:.1}s",
            mb(size),
            t.elapsed().as_secs_f64()
        ),
    );
    // Keep the newest few assemblies: uni binaries of different versions may share the cache
    // (and one of them may be booting from its assembly right now); older ones are dead weight.
    let mut old: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dom0-") && e.path() != out)
        .map(|e| {
            (
                e.metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH),
                e.path(),
            )
        })
        .collect();
    old.sort_by_key(|b| std::cmp::Reverse(b.0));
    for (_, p) in old.iter().skip(KEEP - 1) {
        let _ = std::fs::remove_dir_all(p);
    }
    Ok(base)
}

fn build(dom0: &Dom0, debs: &Debs, work: &Path) -> Result<()> {
    let (root, boot, out) = (work.join("root"), work.join("boot"), work.join("out"));
    for d in [&root, &boot, &out] {
        std::fs::create_dir_all(d)?;
    }
    let kernel_pkg = debs
        .files
        .iter()
        .filter_map(|f| package_of(f))
        .find(|p| p.starts_with("linux-image-"))
        .context("no linux-image package among the downloads")?
        .to_string();
    for deb in &debs.files {
        let pkg = package_of(deb).unwrap_or_default();
        let pick = dom0.pick.get(pkg);
        let into = if pkg == kernel_pkg || pkg == dom0.hypervisor {
            boot.clone()
        } else if pick.is_some() {
            work.join(format!("pick-{pkg}"))
        } else {
            root.clone()
        };
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(&into)
            .status()?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed ({st})", deb.display());
        }
        for file in pick.into_iter().flatten() {
            let to = root.join(file);
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(into.join(file), &to)
                .with_context(|| format!("{pkg} has no {file} (board.toml's [dom0] pick)"))?;
        }
    }

    // the hypervisor and the kernel stay outside the initramfs: QEMU loads them
    let abi = kernel_pkg.trim_start_matches("linux-image-");
    // xen-hypervisor-4.17-arm64 installs boot/xen-4.17-arm64 (and .config, .efi), -armhf
    // boot/xen-4.17-armhf
    let xen = format!(
        "xen-{}",
        dom0.hypervisor.trim_start_matches("xen-hypervisor-")
    );
    std::fs::rename(boot.join("boot").join(&xen), out.join("xen"))
        .with_context(|| format!("{} has no boot/{xen}", dom0.hypervisor))?;
    std::fs::rename(
        boot.join("boot").join(format!("vmlinuz-{abi}")),
        out.join("Image"),
    )
    .with_context(|| format!("{kernel_pkg} has no boot/vmlinuz-{abi}"))?;

    for p in for_arch(PRUNE, dom0) {
        let _ = std::fs::remove_dir_all(root.join(p));
    }
    for d in [
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "guest",
        "etc/xen",
        "var/lib/xen",
        "var/log/xen/console",
        "lib/modules",
        "sbin",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let _ = std::fs::remove_dir_all(root.join("var/run"));
    std::os::unix::fs::symlink("../run", root.join("var/run"))?;
    if !root.join("bin/busybox").is_file() {
        bail!("busybox-static did not provide bin/busybox");
    }
    check_libraries(&root, dom0)?;

    // modules, in load order; no depmod: the order comes from each .ko's depends=
    let moddir = boot.join("lib/modules").join(abi);
    let mut order = Vec::new();
    for m in &dom0.modules {
        module_order(&moddir, m, &mut order)?;
    }
    let mut net_order = order.clone();
    for m in &dom0.net_modules {
        module_order(&moddir, m, &mut net_order)?;
    }
    let mut disk_order = order.clone();
    for m in &dom0.disk_modules {
        module_order(&moddir, m, &mut disk_order)?;
    }
    // order: always loaded; order-net: then loaded when the run has networking; order-disk: when
    // it has disks (a module in both lists is loaded once)
    for (list, file) in [
        (&order[..], "order"),
        (&net_order[order.len()..], "order-net"),
        (&disk_order[order.len()..], "order-disk"),
    ] {
        let mut names = String::new();
        for f in list {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            // (a module of both optional lists is copied twice, the same file)
            std::fs::copy(f, root.join("lib/modules").join(&name))?;
            names += &name;
            names.push('\n');
        }
        std::fs::write(root.join("lib/modules").join(file), names)?;
    }

    let init = root.join("init");
    std::fs::write(&init, INIT)?;
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    // cpio → gzip -6 → dom0.cpio.gz
    let file = std::fs::File::create(out.join("dom0.cpio.gz"))?;
    let mut gz = Command::new("gzip")
        .arg("-6")
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()?;
    let stdin = std::io::BufWriter::with_capacity(1 << 20, gz.stdin.take().unwrap());
    let mut w = cpio::Writer::new(stdin);
    w.tree(&root).context("writing the dom0 cpio")?;
    let (stdin, _) = w.finish()?;
    drop(stdin.into_inner().map_err(|e| e.into_error())?);
    let st = gz.wait()?;
    if !st.success() {
        bail!("gzip failed ({st})");
    }
    Ok(())
}

/// Every NEEDED library of [`MUST_LINK`] must be in one of [`LIB_DIRS`].
fn check_libraries(root: &Path, dom0: &Dom0) -> Result<()> {
    let lib_dirs = for_arch(LIB_DIRS, dom0);
    let mut missing = Vec::new();
    for f in MUST_LINK {
        let out = Command::new("readelf")
            .arg("-d")
            .arg(root.join(f))
            .output()?;
        if !out.status.success() {
            bail!(
                "readelf -d {f} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for lib in needed(&String::from_utf8_lossy(&out.stdout)) {
            if !lib_dirs.iter().any(|d| root.join(d).join(&lib).exists()) {
                missing.push(format!("{lib} (for {f})"));
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "dom0 lacks libraries: {}; add their packages to [dom0] packages",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The NEEDED entries of `readelf -d`.
fn needed(readelf: &str) -> Vec<String> {
    readelf
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

/// Appends `name`'s dependencies, then `name`, to `order` (once each).
fn module_order(moddir: &Path, name: &str, order: &mut Vec<PathBuf>) -> Result<()> {
    let file = find_module(moddir, name)?
        .with_context(|| format!("module {name} not found under {}", moddir.display()))?;
    if order.contains(&file) {
        return Ok(());
    }
    let bytes = std::fs::read(&file)?;
    for dep in depends(&bytes) {
        module_order(moddir, &dep, order)?;
    }
    order.push(file);
    Ok(())
}

/// The `depends=` field of a module's .modinfo: NUL-separated `key=value` strings.
fn depends(ko: &[u8]) -> Vec<String> {
    ko.split(|&b| b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|d| {
            String::from_utf8_lossy(d)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Module names use `-` and `_` interchangeably.
fn find_module(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let want = |n: &str| {
        n.strip_suffix(".ko")
            .is_some_and(|s| s.replace('_', "-") == name.replace('_', "-"))
    };
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
    {
        let ft = e.file_type()?;
        if ft.is_dir() {
            if let Some(f) = find_module(&e.path(), name)? {
                return Ok(Some(f));
            }
        } else if want(&e.file_name().to_string_lossy()) {
            return Ok(Some(e.path()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_depends_from_modinfo() {
        let ko = b"\x7fELF...\0license=GPL\0depends=llc,stp\0intree=Y\0name=bridge\0";
        assert_eq!(depends(ko), ["llc", "stp"]);
        assert!(depends(b"\0depends=\0name=llc\0").is_empty());
        assert!(depends(b"no modinfo").is_empty());
    }

    #[test]
    fn reads_needed_from_readelf() {
        let out =
            " 0x0000000000000001 (NEEDED)             Shared library: [libxenlight.so.4.17]\n \
                   0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n \
                   0x000000000000000c (INIT)               0x4000\n";
        assert_eq!(needed(out), ["libxenlight.so.4.17", "libc.so.6"]);
    }

    #[test]
    fn the_cache_key_follows_the_debs_and_the_init_script() {
        let dom0: Dom0 = toml::from_str(
            "arch='arm64'\ndebian='bookworm'\nmirror='m'\nsecurity-mirror='s'\nkernel='k'\nhypervisor='h'\npackages=[]\nmodules=['bridge']\nmemory=512",
        )
        .unwrap();
        let debs = |names: &[&str]| Debs {
            files: names
                .iter()
                .map(|n| PathBuf::from("/c/debs").join(n))
                .collect(),
        };
        let a = key(&dom0, &debs(&["a_1_arm64.deb", "b_1_arm64.deb"]));
        assert_eq!(
            a,
            key(&dom0, &debs(&["b_1_arm64.deb", "a_1_arm64.deb"])),
            "order does not matter"
        );
        assert_ne!(
            a,
            key(&dom0, &debs(&["a_2_arm64.deb", "b_1_arm64.deb"])),
            "a new version is a new key"
        );
        let other = Dom0 {
            modules: vec!["bridge".into(), "xenfs".into()],
            ..dom0.clone()
        };
        assert_ne!(a, key(&other, &debs(&["a_1_arm64.deb", "b_1_arm64.deb"])));
        let other = Dom0 {
            arch: "armhf".into(),
            ..dom0.clone()
        };
        assert_ne!(
            a,
            key(&other, &debs(&["a_1_arm64.deb", "b_1_arm64.deb"])),
            "another architecture"
        );
        let other = Dom0 {
            net_modules: vec!["virtio_net".into()],
            ..dom0.clone()
        };
        assert_ne!(a, key(&other, &debs(&["a_1_arm64.deb", "b_1_arm64.deb"])));
        let other = Dom0 {
            disk_modules: vec!["virtio_blk".into()],
            ..dom0.clone()
        };
        assert_ne!(a, key(&other, &debs(&["a_1_arm64.deb", "b_1_arm64.deb"])));
    }
}
