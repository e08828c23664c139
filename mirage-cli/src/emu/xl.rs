//! The guest's xl file, as the board runs it: files it names are carried into dom0's `/guest/`
//! and the paths rewritten, and every `on_*` action becomes "preserve" so that a guest that stops
//! stays stopped (a reboot is reported, not repeated) and a crashed one can still be inspected.
//! Every vif gets a MAC (the board's DHCP server keys its static leases on it). Every disk's
//! image becomes a virtio disk of dom0 (`-drive` … `serial=uni-disk<i>`), which dom0's /init
//! makes `/guest/disk<i>`, and the disk spec's `target=` names that instead.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::net;

/// Where the guest's files are inside dom0.
pub const GUEST_DIR: &str = "/guest";

/// The block device dom0's /init makes for the run's disk `i` (QEMU's virtio disk with serial
/// `uni-disk<i>`).
pub fn disk_node(i: usize) -> String {
    format!("{GUEST_DIR}/disk{i}")
}

/// Keys whose value is a file on the host that dom0 needs a copy of.
const FILE_KEYS: &[&str] = &["kernel", "ramdisk", "device_tree"];

const ON_KEYS: &[&str] = &[
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "on_watchdog",
    "on_soft_reset",
];

/// The rewritten xl file and the files to put next to it.
#[derive(Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// The domain's name (`name = "…"`); its console log is `guest-<name>.log`.
    pub name: String,
    pub text: String,
    /// (host file, name under `/guest/`)
    pub files: Vec<(PathBuf, String)>,
    /// The MAC of each vif, in order: the xl file's, else [`net::default_mac`].
    pub macs: Vec<String>,
    /// The `extra` boot arguments.
    pub extra: String,
}

/// Rewrites the xl file `text`. `kernel` replaces its kernel line; other files it names are
/// looked up relative to `dir`, the xl file's directory. A vif without a MAC gets
/// [`net::default_mac`]`(first_vif + i)`, `first_vif` being the number of vifs of the run's
/// guests before this one. Each disk's image (its spec's `target=`, relative to `dir`) is looked
/// up in `disks`, the run's disk images so far, and added when new: guests of one run that name
/// the same image share the disk.
pub fn rewrite(
    text: &str,
    kernel: &Path,
    dir: &Path,
    first_vif: usize,
    disks: &mut Vec<PathBuf>,
) -> Result<RunConfig> {
    let mut name = None;
    let mut out = String::new();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut macs = Vec::new();
    let mut extra = String::new();
    let mut depth = 0i32; // inside a multi-line [ … ] value
                          // a vif or disk value being collected over several lines
    let mut list: Option<(&str, String)> = None;
    for line in text.lines() {
        if depth > 0 {
            depth += brackets(line);
            if let Some((key, v)) = &mut list {
                v.push(' ');
                v.push_str(strip_comment(line));
                if depth <= 0 {
                    out += &list_line(key, v, dir, first_vif, &mut macs, disks)?;
                    list = None;
                }
            } else {
                out += line;
                out.push('\n');
            }
            continue;
        }
        let Some((key, value)) = assignment(line) else {
            out += line;
            out.push('\n');
            continue;
        };
        depth += brackets(value);
        if key == "vif" || key == "disk" {
            let key = if key == "vif" { "vif" } else { "disk" };
            if depth > 0 {
                list = Some((key, value.to_string()));
            } else {
                out += &list_line(key, value, dir, first_vif, &mut macs, disks)?;
            }
            continue;
        }
        if key == "extra" {
            extra = unquote(value).unwrap_or_default().to_string();
        }
        if key == "name" {
            let n = unquote(value).context("`name` in the xl file is not a string")?;
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                bail!("the xl file's name {n:?} must be letters, digits, `-`, `_` or `.`");
            }
            name = Some(n.to_string());
        }
        if ON_KEYS.contains(&key) {
            continue;
        }
        if FILE_KEYS.contains(&key) {
            let host = if key == "kernel" {
                kernel.to_path_buf()
            } else {
                let v = unquote(value)
                    .with_context(|| format!("`{key}` in the xl file is not a string"))?;
                dir.join(v)
            };
            if !host.is_file() {
                bail!("the xl file's {key} `{}` does not exist", host.display());
            }
            let base = host.file_name().unwrap().to_string_lossy().into_owned();
            let unique = if files.iter().any(|(_, n)| *n == base) {
                format!("{key}-{base}")
            } else {
                base
            };
            out += &format!("{key} = \"{GUEST_DIR}/{unique}\"\n");
            files.push((host, unique));
            continue;
        }
        out += line;
        out.push('\n');
    }
    let name = name.context("the xl file has no `name = \"…\"`")?;
    if !files.iter().any(|(h, _)| h == kernel) {
        let base = kernel
            .file_name()
            .context("kernel has no file name")?
            .to_string_lossy()
            .into_owned();
        out += &format!("kernel = \"{GUEST_DIR}/{base}\"\n");
        files.push((kernel.to_path_buf(), base));
    }
    out +=
        "# added by uni's emulated board: report how the guest stopped, leave it for inspection\n";
    for k in ON_KEYS {
        out += &format!("{k} = \"preserve\"\n");
    }
    if let Some((key, _)) = list {
        bail!("the xl file's {key} list has no closing `]`");
    }
    Ok(RunConfig {
        name,
        text: out,
        files,
        macs,
        extra,
    })
}

/// A `vif` or `disk` list, rewritten.
fn list_line(
    key: &str,
    value: &str,
    dir: &Path,
    first_vif: usize,
    macs: &mut Vec<String>,
    disks: &mut Vec<PathBuf>,
) -> Result<String> {
    let specs = specs(key, value)?;
    let out = if key == "vif" {
        vif_specs(&specs, first_vif, macs)
    } else {
        disk_specs(&specs, dir, disks)?
    };
    let list: Vec<String> = out.iter().map(|s| format!("'{s}'")).collect();
    Ok(format!("{key} = [ {} ]\n", list.join(", ")))
}

/// The quoted specs of a list value `[ 'spec', "spec", … ]`.
fn specs<'a>(key: &str, value: &'a str) -> Result<Vec<&'a str>> {
    let value = value.trim().trim_end_matches(';').trim();
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .with_context(|| format!("the xl file's {key} is not a list `[ '…', … ]`"))?;
    let mut specs = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let q = rest.chars().next().unwrap();
        if q != '\'' && q != '"' {
            bail!("the xl file's {key} list holds {rest:?}, not quoted specs");
        }
        let close = rest[1..]
            .find(q)
            .with_context(|| format!("an unterminated string in the xl file's {key} list"))?;
        specs.push(&rest[1..1 + close]);
        rest = rest[close + 2..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Ok(specs)
}

/// Every vif spec with a MAC; the MACs are appended to `macs`.
fn vif_specs(specs: &[&str], first_vif: usize, macs: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for spec in specs {
        let given = spec
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("mac="))
            .map(|m| m.trim().to_ascii_lowercase());
        let mac = given
            .clone()
            .unwrap_or_else(|| net::default_mac(first_vif + macs.len()));
        out.push(match given {
            Some(_) => spec.to_string(),
            None if spec.trim().is_empty() => format!("mac={mac}"),
            None => format!("{spec},mac={mac}"),
        });
        macs.push(mac);
    }
    out
}

/// Every disk spec with its `target=` (the rest of the spec, as xl reads it) replaced by the
/// image's node in dom0; the images are looked up in, or added to, `disks`.
fn disk_specs(specs: &[&str], dir: &Path, disks: &mut Vec<PathBuf>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for spec in specs {
        let at = spec
            .find("target=")
            .filter(|&i| i == 0 || spec[..i].trim_end().ends_with(','))
            .with_context(|| {
                format!(
                    "the xl file's disk spec {spec:?} has no `target=`: the emulated board \
                     attaches the image that `target=` names (uni writes \
                     `format=raw, vdev=xvda, access=rw, target=PATH`)"
                )
            })?;
        let target = spec[at + "target=".len()..].trim();
        let host = dir.join(target);
        crate::image::check_disk_image(&host).context("the xl file's disk target")?;
        let host = host.canonicalize()?;
        let i = match disks.iter().position(|d| *d == host) {
            Some(i) => i,
            None => {
                disks.push(host);
                disks.len() - 1
            }
        };
        out.push(format!("{}target={}", &spec[..at], disk_node(i)));
    }
    Ok(out)
}

/// `key = value` (outside comments) → (key, value).
fn assignment(line: &str) -> Option<(&str, &str)> {
    let code = strip_comment(line);
    let (k, v) = code.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((k, v.trim()))
}

fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The change in `[ … ]` nesting over `s`, outside quotes and comments.
fn brackets(s: &str) -> i32 {
    let mut quote = None;
    let mut d = 0;
    for c in strip_comment(s).chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '[') => d += 1,
            (None, ']') => d -= 1,
            _ => {}
        }
    }
    d
}

fn unquote(v: &str) -> Option<&str> {
    let v = v.trim().trim_end_matches(';').trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'')?.strip_suffix('\''))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XL: &str = r#"# generated by uni
name    = "hello"
kernel  = "/var/lib/uni/hello/hello.xen"
memory  = 32
vcpus   = 1
extra   = "--ipv4=10.0.0.2/24"
vif     = [ 'bridge=xenbr0,mac=00:16:3e:00:00:02',
            'bridge=xenbr0' ]
on_crash = "destroy"  # comment
"#;

    #[test]
    fn rewrites_kernel_and_on_actions() {
        let dir = std::env::temp_dir();
        let kernel = std::env::current_exe().unwrap(); // any existing file
        let rc = rewrite(XL, &kernel, &dir, 0, &mut vec![]).unwrap();
        assert_eq!(rc.name, "hello");
        let base = kernel.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(rc.files, vec![(kernel.clone(), base.clone())]);
        assert!(
            rc.text.contains(&format!("kernel = \"/guest/{base}\"\n")),
            "{}",
            rc.text
        );
        assert!(!rc.text.contains("/var/lib/uni"));
        assert!(!rc.text.contains("destroy"));
        assert!(
            rc.text.contains("vif = [ 'bridge=xenbr0,mac=00:16:3e:00:00:02', 'bridge=xenbr0,mac=00:16:3e:75:6e:03' ]\n"),
            "{}",
            rc.text
        );
        assert_eq!(rc.macs, ["00:16:3e:00:00:02", "00:16:3e:75:6e:03"]);
        assert_eq!(rc.extra, "--ipv4=10.0.0.2/24");
        for k in ON_KEYS {
            assert!(rc.text.contains(&format!("{k} = \"preserve\"\n")), "{k}");
        }
    }

    #[test]
    fn carries_a_ramdisk_and_adds_a_missing_kernel_line() {
        let dir = std::env::temp_dir().join(format!("uni-xl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("initrd.gz"), b"x").unwrap();
        std::fs::write(dir.join("zImage"), b"k").unwrap();
        let rc = rewrite(
            "name='t'\nramdisk = 'initrd.gz'\n",
            &dir.join("zImage"),
            &dir,
            0,
            &mut vec![],
        )
        .unwrap();
        assert_eq!(rc.name, "t");
        assert_eq!(rc.files.len(), 2);
        assert!(rc.text.contains("ramdisk = \"/guest/initrd.gz\"\n"));
        assert!(rc.text.contains("kernel = \"/guest/zImage\"\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_bad_or_missing_names_and_files() {
        let k = std::env::current_exe().unwrap();
        let d = std::env::temp_dir();
        assert!(rewrite("memory = 4\n", &k, &d, 0, &mut vec![]).is_err());
        assert!(rewrite("name = \"a b\"\n", &k, &d, 0, &mut vec![]).is_err());
        assert!(rewrite(
            "name = \"a\"\nramdisk = \"/nonexistent/x\"\n",
            &k,
            &d,
            0,
            &mut vec![]
        )
        .is_err());
        assert!(rewrite(
            "name = \"a\"\nvif = [ 'bridge=xenbr0'\n",
            &k,
            &d,
            0,
            &mut vec![]
        )
        .is_err());
        assert!(rewrite(
            "name = \"a\"\nvif = 'bridge=xenbr0'\n",
            &k,
            &d,
            0,
            &mut vec![]
        )
        .is_err());
    }

    #[test]
    fn every_vif_gets_a_mac_numbered_across_the_run() {
        let k = std::env::current_exe().unwrap();
        let d = std::env::temp_dir();
        let rc = rewrite(
            "name='a'\nvif = [ '' , \"bridge=xenbr0\" ]\n",
            &k,
            &d,
            2,
            &mut vec![],
        )
        .unwrap();
        assert!(
            rc.text.contains(
                "vif = [ 'mac=00:16:3e:75:6e:04', 'bridge=xenbr0,mac=00:16:3e:75:6e:05' ]\n"
            ),
            "{}",
            rc.text
        );
        let rc = rewrite(
            "name='a'\nvif=['bridge=xenbr0,MAC=x', 'mac=00:16:3E:01:02:03']\n",
            &k,
            &d,
            0,
            &mut vec![],
        )
        .unwrap();
        assert_eq!(rc.macs, ["00:16:3e:75:6e:02", "00:16:3e:01:02:03"]);
    }

    #[test]
    fn disks_become_dom0_nodes_shared_across_the_run() {
        let dir = std::env::temp_dir().join(format!("uni-xl-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.img"), vec![0u8; 1024]).unwrap();
        std::fs::write(dir.join("b,c.img"), vec![0u8; 512]).unwrap();
        std::fs::write(dir.join("odd.img"), vec![0u8; 100]).unwrap();
        let k = std::env::current_exe().unwrap();
        let mut disks = vec![];
        let rc = rewrite(
            "name='a'\ndisk = [ 'format=raw, vdev=xvda, access=rw, target=a.img',\n  'vdev=xvdb,target=b,c.img' ]\n",
            &k,
            &dir,
            0,
            &mut disks,
        )
        .unwrap();
        assert!(
            rc.text.contains("disk = [ 'format=raw, vdev=xvda, access=rw, target=/guest/disk0', 'vdev=xvdb,target=/guest/disk1' ]\n"),
            "{}",
            rc.text
        );
        let a = dir.join("a.img").canonicalize().unwrap();
        assert_eq!(
            disks,
            [a.clone(), dir.join("b,c.img").canonicalize().unwrap()]
        );
        // a second guest of the run with the same image gets the same disk
        let abs = format!("name='b'\ndisk = [ 'vdev=xvda, target={}' ]\n", a.display());
        let rc = rewrite(&abs, &k, &dir, 0, &mut disks).unwrap();
        assert!(rc.text.contains("target=/guest/disk0' ]"), "{}", rc.text);
        assert_eq!(disks.len(), 2);
        for bad in [
            "name='a'\ndisk = [ 'vdev=xvda' ]\n",
            "name='a'\ndisk = [ 'vdev=xvda, target=missing.img' ]\n",
            "name='a'\ndisk = [ 'vdev=xvda, target=odd.img' ]\n",
            "name='a'\ndisk = [ 'vdev=xvda, target=a.img'\n",
        ] {
            let e = rewrite(bad, &k, &dir, 0, &mut vec![]).unwrap_err();
            assert!(format!("{e:#}").contains("disk"), "{bad}: {e:#}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn brackets_ignore_quotes_and_comments() {
        assert_eq!(brackets("[ 'a]b', # ]"), 1);
        assert_eq!(brackets("'x' ]"), -1);
        assert_eq!(strip_comment("a = \"#x\" # c"), "a = \"#x\" ");
    }
}
