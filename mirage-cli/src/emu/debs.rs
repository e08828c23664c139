//! Downloading dom0's Debian packages with the host's `apt-get`, for dom0's architecture (arm64
//! or armhf), into the cache.
//!
//! apt runs on its own state under `<cache>/<board>/apt/`: its own sources.list (the board's
//! Debian release), its own package lists of dom0's architecture, no dpkg status. The host's apt setup is not
//! touched and needs no root. Once a package set has been downloaded its file names are
//! recorded, and later runs use the files without asking apt anything.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{fnv, need_tool};
use crate::board::Dom0;
use crate::status::status;

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The downloaded packages: every `.deb` of the board's dom0, the hypervisor and kernel included.
pub struct Debs {
    pub files: Vec<PathBuf>,
}

/// `bash_5.2.15-2+b13_arm64.deb` → `bash`.
pub fn package_of(file: &Path) -> Option<&str> {
    file.file_name()?.to_str()?.split('_').next()
}

/// The cached packages, downloading whatever is missing.
pub fn fetch(dom0: &Dom0, dir: &Path) -> Result<Debs> {
    let debs = dir.join("debs");
    let request = format!(
        "{} {} {} {} {} {}",
        dom0.debian,
        dom0.mirror,
        dom0.security_mirror,
        dom0.kernel,
        dom0.hypervisor,
        dom0.packages.join(" ")
    );
    let manifest = debs.join(format!("set-{:016x}.txt", fnv(request.as_bytes())));
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        let files: Vec<PathBuf> = text.lines().map(|l| debs.join(l)).collect();
        if files.iter().all(|f| f.is_file()) {
            return Ok(Debs { files });
        }
    }

    need_tool("apt-get", "apt")?;
    std::fs::create_dir_all(&debs)?;
    let apt = Apt::new(dom0, &dir.join("apt"))?;
    if !apt.has_lists() {
        apt.update()?;
    }
    let mut packages = vec![dom0.hypervisor.clone()];
    packages.extend(dom0.packages.iter().cloned());
    packages.push(apt.kernel_package(&dom0.kernel)?);

    let mut uris = apt.uris(&packages);
    if uris.is_err() {
        // old lists name versions the mirror no longer has
        apt.update()?;
        uris = apt.uris(&packages);
    }
    let uris = uris?;
    let missing: Vec<&Uri> = uris
        .iter()
        .filter(|u| std::fs::metadata(debs.join(&u.file)).map(|m| m.len()).ok() != Some(u.size))
        .collect();
    if !missing.is_empty() {
        let bytes: u64 = missing.iter().map(|u| u.size).sum();
        status(
            "Downloading",
            format!(
                "{} Debian packages for dom0 ({:.1} MB, {}, {})",
                missing.len(),
                mb(bytes),
                dom0.arch,
                dom0.debian
            ),
        );
        let t = std::time::Instant::now();
        let names: Vec<&str> = missing.iter().map(|u| u.package.as_str()).collect();
        apt.download(&debs, &names)?;
        for u in &missing {
            let got = std::fs::metadata(debs.join(&u.file))
                .map(|m| m.len())
                .unwrap_or(0);
            if got != u.size {
                bail!(
                    "apt-get download left {} with {got} bytes, not {}",
                    u.file,
                    u.size
                );
            }
        }
        status(
            "Downloaded",
            format!("{:.1} MB in {:.1}s", mb(bytes), t.elapsed().as_secs_f64()),
        );
    }
    let mut names: Vec<&str> = uris.iter().map(|u| u.file.as_str()).collect();
    names.sort();
    std::fs::write(&manifest, names.join("\n") + "\n")?;
    Ok(Debs {
        files: names.iter().map(|n| debs.join(n)).collect(),
    })
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// apt-get with the board's own state directory.
struct Apt {
    dir: PathBuf,
    arch: String,
    options: Vec<String>,
}

impl Apt {
    fn new(dom0: &Dom0, dir: &Path) -> Result<Apt> {
        if !Path::new(KEYRING).is_file() {
            bail!("{KEYRING} not found: install Debian's archive keys (package debian-archive-keyring)");
        }
        for d in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        let src =
            |url: &str, suite: &str| format!("deb [signed-by={KEYRING}] {url} {suite} main\n");
        let sources = src(&dom0.mirror, &dom0.debian)
            + &src(&dom0.mirror, &format!("{}-updates", dom0.debian))
            + &src(&dom0.security_mirror, &format!("{}-security", dom0.debian));
        std::fs::write(dir.join("sources.list"), sources)?;
        let d = dir.display();
        let mut options = vec![
            format!("-oAPT::Architecture={}", dom0.arch),
            format!("-oAPT::Architectures={}", dom0.arch),
            format!("-oDir::State::Lists={d}/lists"),
            format!("-oDir::Cache={d}/cache"),
            format!("-oDir::Etc::SourceList={d}/sources.list"),
            format!("-oDir::Etc::SourceParts={d}/sources.list.d"),
            "-oDir::State::status=/dev/null".to_string(),
            "-oAcquire::Languages=none".to_string(),
            "-oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".to_string(),
            "-oAcquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".to_string(),
            "-oAcquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".to_string(),
            "-oAcquire::IndexTargets::deb::CNF::DefaultEnabled=false".to_string(),
        ];
        if is_root() {
            // apt drops to the _apt user to download, who cannot write into the cache
            options.push("-oAPT::Sandbox::User=root".to_string());
        }
        Ok(Apt {
            dir: dir.to_path_buf(),
            arch: dom0.arch.clone(),
            options,
        })
    }

    fn has_lists(&self) -> bool {
        std::fs::read_dir(self.dir.join("lists"))
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
            })
            .unwrap_or(false)
    }

    fn update(&self) -> Result<()> {
        status(
            "Updating",
            format!("Debian package lists for {}", self.arch),
        );
        let out = std::process::Command::new("apt-get")
            .args(&self.options)
            .args(["-q", "update"])
            .output()
            .context("running apt-get update")?;
        if !self.has_lists() {
            bail!(
                "apt-get update fetched no package lists:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `linux-image-arm64` → `linux-image-6.1.0-NN-arm64`, from the candidate's Depends.
    fn kernel_package(&self, meta: &str) -> Result<String> {
        let out = self.run(&["apt-cache"], &["show", "--no-all-versions", meta])?;
        kernel_from_depends(&out)
            .with_context(|| format!("`apt-cache show {meta}` names no linux-image-* dependency"))
    }

    fn uris(&self, packages: &[String]) -> Result<Vec<Uri>> {
        let mut args = vec!["--print-uris", "download"];
        args.extend(packages.iter().map(|p| p.as_str()));
        let out = self.run(&["apt-get"], &args)?;
        let uris = parse_uris(&out);
        if uris.len() != packages.len() {
            bail!(
                "apt-get --print-uris named {} files for {} packages:\n{out}",
                uris.len(),
                packages.len()
            );
        }
        Ok(uris)
    }

    fn download(&self, into: &Path, packages: &[&str]) -> Result<()> {
        let st = std::process::Command::new("apt-get")
            .args(&self.options)
            .args(["-q", "download"])
            .args(packages)
            .current_dir(into)
            .stdout(std::process::Stdio::null())
            .status()
            .context("running apt-get download")?;
        if !st.success() {
            bail!("apt-get download {} failed ({st})", packages.join(" "));
        }
        Ok(())
    }

    fn run(&self, program: &[&str], args: &[&str]) -> Result<String> {
        let out = std::process::Command::new(program[0])
            .args(&self.options)
            .args(args)
            .output()
            .with_context(|| format!("running {}", program[0]))?;
        if !out.status.success() {
            bail!(
                "{} {} failed ({}):\n{}",
                program[0],
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[derive(Debug, PartialEq, Eq)]
struct Uri {
    package: String,
    file: String,
    size: u64,
}

/// Lines of `apt-get --print-uris download`: `'URL' FILE SIZE HASH`.
fn parse_uris(out: &str) -> Vec<Uri> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix('\'')?.split_whitespace();
            let _url = w.next()?;
            let file = w.next()?.to_string();
            let size = w.next()?.parse().ok()?;
            let package = file.split('_').next()?.to_string();
            Some(Uri {
                package,
                file,
                size,
            })
        })
        .collect()
}

fn kernel_from_depends(show: &str) -> Option<String> {
    let deps = show.lines().find_map(|l| l.strip_prefix("Depends:"))?;
    deps.split(',')
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find(|d| {
            d.starts_with("linux-image-") && d.chars().nth(12).is_some_and(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_print_uris() {
        let out = "'http://deb.debian.org/debian/pool/main/b/bash/bash_5.2.15-2%2bb13_arm64.deb' bash_5.2.15-2+b13_arm64.deb 1444200 SHA256:ab\n\
                   'http://x/linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb' linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb 59812568 SHA256:6f\n";
        let u = parse_uris(out);
        assert_eq!(u.len(), 2);
        assert_eq!(
            u[0],
            Uri {
                package: "bash".into(),
                file: "bash_5.2.15-2+b13_arm64.deb".into(),
                size: 1444200
            }
        );
        assert_eq!(u[1].package, "linux-image-6.1.0-56-arm64");
    }

    #[test]
    fn resolves_the_kernel_abi_from_the_metapackage() {
        let show = "Package: linux-image-arm64\nSource: linux-signed-arm64 (6.1.192+2)\nVersion: 6.1.192-2\n\
                    Depends: linux-image-6.1.0-56-arm64 (= 6.1.192-2)\nDescription: Linux for 64-bit ARMv8 machines\n";
        assert_eq!(
            kernel_from_depends(show).as_deref(),
            Some("linux-image-6.1.0-56-arm64")
        );
        assert_eq!(
            kernel_from_depends("Depends: linux-image-arm64-signed, linux-image-6.1.0-1-arm64")
                .as_deref(),
            Some("linux-image-6.1.0-1-arm64")
        );
        assert_eq!(kernel_from_depends("Package: x\n"), None);
    }

    #[test]
    fn package_names_come_from_file_names() {
        assert_eq!(
            package_of(Path::new("/c/debs/libxenmisc4.17_4.17.7+13_arm64.deb")),
            Some("libxenmisc4.17")
        );
    }
}
