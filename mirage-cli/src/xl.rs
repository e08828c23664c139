//! The xl config written next to the image, `dist/<name>.xl`.

use anyhow::{bail, Context, Result};
use serde::Serialize;

const XL: &str = include_str!("../../templates/xen-arm/xl.tera");

/// Everything the xl file says.
#[derive(Debug, Clone, Default, Serialize)]
pub struct XlConfig {
    pub uni_version: &'static str,
    pub config: String,
    pub board: String,
    pub name: String,
    /// The image's path where xl will run.
    pub kernel: String,
    pub memory: u32,
    pub vcpus: u32,
    pub on_crash: String,
    /// Boot arguments (`/chosen/bootargs` in the guest).
    pub extra: String,
    /// One `vif` spec per network device, like `bridge=xenbr0,mac=00:16:3e:00:00:02`.
    pub vifs: Vec<String>,
    /// One `disk` spec per block device, like `format=raw, vdev=xvda, access=rw, target=/x.img`.
    pub disks: Vec<String>,
}

/// One vif spec: the bridge, and the MAC when fixed.
pub fn vif(bridge: &str, mac: Option<[u8; 6]>) -> String {
    match mac {
        Some(m) => format!("bridge={bridge},mac={}", mac_text(m)),
        None => format!("bridge={bridge}"),
    }
}

/// The disk spec of block device `index` (0-based, in declaration order: `xvda`, `xvdb`, …),
/// backed by `target` where xl runs. `target` comes last: xl takes the rest of the spec as the
/// path, commas included.
pub fn disk(index: usize, target: &str, read_only: bool) -> String {
    let access = if read_only { "ro" } else { "rw" };
    let vdev = uni_runtime::xen_wire::blkif::vdev(index as u32);
    format!("format=raw, vdev={vdev}, access={access}, target={target}")
}

/// The MAC of net device `index` (0-based, in declaration order) of the unikernel `name`, when
/// unikernel.toml sets none: Xen's OUI 00:16:3e, then three bytes of SHA-256 of
/// `<name>/<index>` (the first below 0x80, as Xen's own random MACs are). The same name gets the
/// same MAC in every build, so a DHCP server gives a redeployed unikernel its address again.
pub fn stable_mac(name: &str, index: usize) -> [u8; 6] {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{name}/{index}").as_bytes());
    [0x00, 0x16, 0x3e, h[0] & 0x7f, h[1], h[2]]
}

/// `mac` as xl and udhcpd write it: `00:16:3e:0a:0b:0c`.
pub fn mac_text(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Renders the xl file.
pub fn render(x: &XlConfig) -> Result<String> {
    for (what, v) in [("kernel path", &x.kernel), ("boot arguments", &x.extra)] {
        if v.contains('"') || v.contains('\\') || v.contains('\n') {
            bail!("the {what} `{v}` cannot be written into an xl file (it contains a quote, backslash or newline)");
        }
    }
    for d in &x.disks {
        if d.contains('\'') || d.contains('\\') || d.contains('\n') {
            bail!("the disk spec `{d}` cannot be written into an xl file (it contains a single quote, backslash or newline)");
        }
    }
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template("xl", XL)?;
    Ok(tera
        .render("xl", &tera::Context::from_serialize(x)?)?
        .trim_end()
        .to_string()
        + "\n")
}

/// `text` (an xl file uni wrote) with `args` added at the end of its `extra=` line, or a new
/// `extra=` line when it has none.
pub fn append_extra(text: &str, args: &str) -> Result<String> {
    if args.contains('"') || args.contains('\\') || args.contains('\n') {
        bail!("boot arguments `{args}` cannot be written into an xl file (quote, backslash or newline)");
    }
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        match line
            .strip_prefix("extra = \"")
            .and_then(|l| l.strip_suffix('"'))
        {
            Some(old) if !done => {
                out += &format!(
                    "extra = \"{}\"\n",
                    [old, args]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                done = true;
            }
            _ => {
                out += line;
                out.push('\n');
            }
        }
    }
    if !done {
        out += &format!("extra = \"{args}\"\n");
    }
    Ok(out)
}

/// `text` (an xl file uni wrote) with the `target=` of its disk specs, in order, set to
/// `targets` (where the images lie in the dom0 that runs it). It must have as many disk specs.
pub fn set_disk_targets(text: &str, targets: &[String]) -> Result<String> {
    let mut out = String::new();
    let mut seen = 0;
    for line in text.lines() {
        let Some(list) = line
            .strip_prefix("disk = [ '")
            .and_then(|l| l.strip_suffix("' ]"))
        else {
            out += line;
            out.push('\n');
            continue;
        };
        let mut specs = Vec::new();
        for spec in list.split("', '") {
            let (head, _) = spec
                .split_once("target=")
                .with_context(|| format!("the disk spec `{spec}` has no target="))?;
            let target = targets
                .get(seen)
                .with_context(|| format!("the xl file has more disks than {}", targets.len()))?;
            seen += 1;
            specs.push(format!("{head}target={target}"));
        }
        let x = XlConfig {
            disks: specs,
            ..XlConfig::default()
        };
        render(&x)?; // checks the specs can be written
        out += &format!("disk = [ '{}' ]\n", x.disks.join("', '"));
    }
    if seen != targets.len() {
        bail!(
            "the xl file has {seen} disk specs, but the unikernel has {} block devices",
            targets.len()
        );
    }
    Ok(out)
}

/// `text` (an xl file uni wrote) with its `kernel=` line naming `path`, where the image lies in
/// the dom0 that runs it.
pub fn set_kernel(text: &str, path: &str) -> Result<String> {
    if path.contains('"') || path.contains('\\') || path.contains('\n') {
        bail!("the kernel path `{path}` cannot be written into an xl file (quote, backslash or newline)");
    }
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.starts_with("kernel = \"") {
            out += &format!("kernel = \"{path}\"\n");
            done = true;
        } else {
            out += line;
            out.push('\n');
        }
    }
    if !done {
        bail!("the xl file has no `kernel = \"…\"` line to point at the image");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> XlConfig {
        XlConfig {
            uni_version: "0.1.0",
            config: "unikernel.toml".into(),
            board: "qemu-virt".into(),
            name: "echo".into(),
            kernel: "/var/lib/uni/echo/echo.xen".into(),
            memory: 32,
            vcpus: 1,
            on_crash: "preserve".into(),
            extra: String::new(),
            vifs: vec![],
            disks: vec![],
        }
    }

    #[test]
    fn deploy_moves_the_disk_targets() {
        let mut x = base();
        x.disks = vec![
            disk(0, "/home/u/a.img", false),
            disk(1, "/home/u/b.img", true),
        ];
        let text = render(&x).unwrap();
        let moved = set_disk_targets(
            &text,
            &[
                "/var/lib/uni/echo/a.img".into(),
                "/var/lib/uni/echo/b.img".into(),
            ],
        )
        .unwrap();
        assert!(
            moved.contains("\ndisk = [ 'format=raw, vdev=xvda, access=rw, target=/var/lib/uni/echo/a.img', 'format=raw, vdev=xvdb, access=ro, target=/var/lib/uni/echo/b.img' ]\n"),
            "{moved}"
        );
        assert_eq!(moved.lines().count(), text.lines().count());
        assert!(set_disk_targets(&text, &["/x".into()]).is_err());
        assert!(set_disk_targets(&render(&base()).unwrap(), &["/x".into()]).is_err());
        assert_eq!(
            set_disk_targets(&render(&base()).unwrap(), &[]).unwrap(),
            render(&base()).unwrap()
        );
    }

    #[test]
    fn disks_are_named_as_blkfront_names_them() {
        let mut x = base();
        x.disks = vec![
            disk(0, "/var/lib/uni/echo/data.img", false),
            disk(1, "/x/ro.img", true),
        ];
        let text = render(&x).unwrap();
        assert!(
            text.contains("\ndisk = [ 'format=raw, vdev=xvda, access=rw, target=/var/lib/uni/echo/data.img', 'format=raw, vdev=xvdb, access=ro, target=/x/ro.img' ]\n"),
            "{text}"
        );
        x.disks = vec![disk(0, "/a'b", false)];
        assert!(render(&x).is_err(), "a quote cannot be written");
    }

    #[test]
    fn minimal() {
        let text = render(&base()).unwrap();
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "name = \"echo\"",
                "kernel = \"/var/lib/uni/echo/echo.xen\"",
                "memory = 32",
                "vcpus = 1",
                "on_crash = \"preserve\"",
            ]
        );
        assert!(text.starts_with("# @generated by uni 0.1.0"));
    }

    #[test]
    fn stable_macs_follow_the_name_and_index() {
        assert_eq!(stable_mac("echo", 0), stable_mac("echo", 0));
        assert_ne!(stable_mac("echo", 0), stable_mac("echo", 1));
        assert_ne!(stable_mac("echo", 0), stable_mac("hello", 0));
        let m = stable_mac("echo", 0);
        assert_eq!(&m[..3], &[0, 0x16, 0x3e]);
        assert!(m[3] < 0x80);
        // SHA-256("echo/0") = 11 07 49 …: a change here changes every deployed unikernel's MAC
        assert_eq!(mac_text(m), "00:16:3e:11:07:49");
    }

    #[test]
    fn extra_and_vifs() {
        let mut x = base();
        x.extra = "--ipv4=10.0.0.2/24 --ipv4-gateway=10.0.0.1".into();
        x.vifs = vec![
            vif("xenbr0", Some([0, 0x16, 0x3e, 0, 0, 2])),
            vif("br1", None),
        ];
        let text = render(&x).unwrap();
        assert!(
            text.contains("\nextra = \"--ipv4=10.0.0.2/24 --ipv4-gateway=10.0.0.1\"\n"),
            "{text}"
        );
        assert!(
            text.contains("\nvif = [ 'bridge=xenbr0,mac=00:16:3e:00:00:02', 'bridge=br1' ]\n"),
            "{text}"
        );
    }

    #[test]
    fn kernel_for_the_dom0() {
        let text = render(&base()).unwrap();
        let moved = set_kernel(&text, "/var/lib/uni/hello/hello.xen").unwrap();
        assert!(
            moved.contains("\nkernel = \"/var/lib/uni/hello/hello.xen\"\n"),
            "{moved}"
        );
        assert_eq!(moved.lines().count(), text.lines().count());
        assert!(set_kernel("name = \"x\"\n", "/a").is_err());
        assert!(set_kernel(&text, "/a\"b").is_err());
    }

    #[test]
    fn extra_for_one_run() {
        let mut x = base();
        let plain = render(&x).unwrap();
        assert!(append_extra(&plain, "--uni-timestamps")
            .unwrap()
            .ends_with("on_crash = \"preserve\"\nextra = \"--uni-timestamps\"\n"));
        x.extra = "--ipv4=10.0.0.9/24".into();
        let with = append_extra(&render(&x).unwrap(), "--port=80").unwrap();
        assert!(
            with.contains("\nextra = \"--ipv4=10.0.0.9/24 --port=80\"\n"),
            "{with}"
        );
        assert!(append_extra(&plain, "--motd=\"x\"").is_err());
    }

    #[test]
    fn refuses_what_xl_cannot_parse() {
        let mut x = base();
        x.extra = "--motd=\"hi\"".into();
        assert!(render(&x).is_err());
    }
}
