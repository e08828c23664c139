//! Layer 3 and the generator: walks the device graph in dependency order, builds the template
//! context (the only thing templates see) and renders the main crate with tera and rustfmt.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::config::{Config, Diagnostics};
use crate::devices::{BootArgs, Crate, Implementation};
use crate::home;
use crate::kv::Pack;
use crate::target::Target;

const MAIN_RS: &str = include_str!("../../templates/main.rs.tera");
const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.tera");
const LINK_LD: &str = include_str!("../../templates/xen-arm/link.ld");

/// A file the generator writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: PathBuf,
    pub contents: String,
}

/// Everything `configure` would do, as values: `--dry-run` prints it, `--check` compares it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub board: String,
    /// `_build/<target>/`, next to unikernel.toml.
    pub dir: PathBuf,
    pub files: Vec<GeneratedFile>,
    /// The devices in the order they are constructed.
    pub order: Vec<String>,
    /// The kv_ro directories packed under `_build/<target>/kv/`, which `src/main.rs` embeds.
    pub packs: Vec<PlannedPack>,
    /// `_build/<target>/uni`, the link to the uni checkout, when the app lives inside it.
    pub uni_link: Option<UniLink>,
}

/// The symlink `_build/<target>/uni` → the uni checkout, through which the generated crate
/// reaches the app and uni's crates when the app lives in the checkout (the examples). Cargo
/// hashes a path package by its path relative to the workspace root when it lies under that
/// root, else by its absolute path (`SourceId::stable_hash`), and those hashes reach every
/// symbol: reached through the link, the image does not depend on where the checkout is.
#[derive(Debug, Clone)]
pub struct UniLink {
    /// `_build/<target>/uni`.
    pub path: PathBuf,
    /// What it points to: the checkout, relative to `_build/<target>/`.
    pub target: PathBuf,
    /// The app's directory as the generated crate names it: `uni/examples/hello`.
    pub app: PathBuf,
}

impl UniLink {
    /// Whether the link is on disk and points where it should.
    pub fn is_current(&self) -> bool {
        std::fs::read_link(&self.path).ok().as_deref() == Some(self.target.as_path())
    }

    /// Makes (or repoints) the link, atomically: a concurrent build never sees it missing.
    pub fn write(&self) -> Result<()> {
        if self.is_current() {
            return Ok(());
        }
        let tmp = self
            .path
            .with_file_name(format!(".uni.link{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&self.target, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .with_context(|| format!("linking `{}` to the uni checkout", self.path.display()))
    }
}

/// A kv_ro directory and the pack file it becomes.
#[derive(Debug, Clone)]
pub struct PlannedPack {
    pub path: PathBuf,
    pub pack: Pack,
}

#[derive(Serialize)]
struct TemplateContext {
    uni_version: &'static str,
    config: String,
    target: &'static str,
    board: String,
    name: String,
    no_std: bool,
    boot_args: String,
    uses_boot_args: bool,
    /// `uni_runtime::boot::Spec`'s fields: the unikernel's name and keys as Rust expressions.
    spec_name: String,
    device_keys: Vec<String>,
    app_keys: Vec<String>,
    open_keys: bool,
    devices: Vec<DeviceContext>,
    app_crate: String,
    entry: String,
    app_args: Vec<String>,
    deps: Vec<DepContext>,
    /// Whether the crate reaches the checkout through `uni/` (then excluded from its workspace).
    uni_link: bool,
    profile: Vec<&'static str>,
    /// For an app outside the checkout on xen-arm: its package, and the rustflags (a TOML
    /// array) that only its crate gets (see [`app_rustflags`]).
    app_profile: Option<(String, String)>,
    /// With tracing on, the ring's capacity in events.
    trace: Option<u32>,
}

#[derive(Serialize)]
struct DeviceContext {
    name: String,
    key: String,
    kind: &'static str,
    expr: String,
}

#[derive(Serialize)]
struct DepContext {
    package: String,
    path: String,
    /// Whether the crate's default features are on; when off, `features` are (see
    /// [`crate::devices::Device::features`]).
    default_features: bool,
    features: Vec<&'static str>,
}

/// The crates with a `trace` feature (docs/tracing.md), turned on with `[trace]` or `--trace`.
const TRACED: &[&str] = &["uni-runtime", "uni-net", "uni-tls", "uni-http"];

/// Plans the generated crate for `cfg` on `target`.
pub fn plan(cfg: &Config, target: Target) -> Result<Plan> {
    let board = match target {
        Target::Unix => cfg.board.clone().unwrap_or_else(|| "-".into()),
        Target::XenArm => crate::board::for_xen(cfg.board.as_deref())?.name,
    };
    let mut impls: Vec<(usize, Implementation)> = vec![];
    let mut errors = vec![];
    for (i, d) in cfg.devices.iter().enumerate() {
        match d.implement(target) {
            Ok(imp) => impls.push((i, imp)),
            Err(u) => errors.push(cfg.source.error(
                d.kind_span.clone(),
                format!("{}.kind", d.key()),
                format!("target {target} cannot provide this device: {}", u.reason),
                format!("not available on {target}"),
                Some(format!("on {target}, use: {}", u.accepted)),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors).into());
    }
    let order = dependency_order(cfg, &impls)?;

    let dir = cfg.dir.join("_build").join(target.name());
    let (app_package, app_crate) = home::app_crate(&cfg.app_dir)?;

    let mut crates: BTreeSet<Crate> = BTreeSet::new();
    let mut devices = vec![];
    let mut uses_boot_args = false;
    let (mut device_keys, mut app_keys, mut open_keys) = (vec![], vec![], false);
    // Every boot argument so far: its name, its runtime type, the device declaring it, and
    // whether that is the app's args device.
    let mut known_keys: Vec<(String, &'static str, String, bool)> = vec![];
    for &i in &order {
        let (_, imp) = impls
            .iter()
            .find(|(j, _)| *j == i)
            .expect("ordered from impls");
        let d = &cfg.devices[i];
        crates.extend(imp.crates.iter().cloned());
        uses_boot_args |= imp.boot_args != BootArgs::None;
        match &imp.boot_args {
            BootArgs::None => {}
            BootArgs::Keys(keys) => {
                for k in keys {
                    if add_key(&mut known_keys, k, d.key(), false)? {
                        device_keys.push(key_expr(k, &d.key()));
                    }
                }
            }
            BootArgs::App { keys, open } => {
                open_keys |= *open;
                for k in keys {
                    if add_key(&mut known_keys, k, d.key(), true)? {
                        app_keys.push(key_expr(k, "app"));
                    }
                }
            }
        }
        let expr = if imp.fallible {
            format!("{}?", imp.constructor)
        } else {
            imp.constructor.clone()
        };
        devices.push(DeviceContext {
            name: d.name.clone(),
            key: d.key(),
            kind: d.kind().name,
            expr,
        });
    }

    // The compiled-in `boot-args`, and on xen-arm the xl file's `extra=`, are checked as the
    // runtime will check them at every boot, at their place in unikernel.toml.
    let mut accepted: Vec<(&str, &str)> = known_keys
        .iter()
        .map(|(n, t, _, _)| (n.as_str(), *t))
        .collect();
    accepted.extend(crate::devices::platform_keys(target).iter().copied());
    let mut refused = vec![];
    let mut check = |line: &str, span: &Option<std::ops::Range<usize>>, key: &str| {
        if let (Err(e), Some(span)) = (
            crate::devices::check_boot_args(line, &accepted, open_keys),
            span,
        ) {
            refused.push(cfg.source.error(
                span.clone(),
                key,
                e,
                "refused at every boot",
                Some(format!(
                    "the unikernel would refuse this at every boot (target {target}); `uni run \
                     -- --help` lists the keys it accepts"
                )),
            ));
        }
    };
    check(&cfg.boot_args, &cfg.boot_args_span, "unikernel.boot-args");
    if target == Target::XenArm {
        check(&cfg.xen.extra, &cfg.xen.extra_span, "xen.extra");
    }
    if !refused.is_empty() {
        return Err(Diagnostics(refused).into());
    }

    let uni_link = uni_link(&dir, &cfg.app_dir)?;
    // Through the link, every path is under the generated workspace's root (see `UniLink`).
    let dep_path = |to: &Path| -> Result<String> {
        Ok(match &uni_link {
            Some(_) => Path::new("uni")
                .join(in_home(to)?.context("uni's crates are in the checkout")?)
                .to_string_lossy()
                .into_owned(),
            None => rel(&dir, to),
        })
    };
    let mut deps = vec![DepContext {
        package: app_package.clone(),
        path: dep_path(&cfg.app_dir)?,
        default_features: true,
        features: vec![],
    }];
    let mut features: std::collections::BTreeMap<Crate, BTreeSet<&'static str>> =
        Default::default();
    for d in &cfg.devices {
        for (c, fs) in d.device.features() {
            features.entry(c).or_default().extend(fs);
        }
    }
    for c in &crates {
        let mut fs: Vec<&'static str> = features
            .get(c)
            .map(|f| f.iter().copied().collect())
            .unwrap_or_default();
        // Tracing: the runtime's ring, and the events of the libraries the devices bring.
        if cfg.trace.is_some() && TRACED.contains(&c.package()) {
            fs.push("trace");
        }
        deps.push(DepContext {
            package: c.package().into(),
            path: dep_path(&home::package_dir(c.package())?)?,
            default_features: !features.contains_key(c),
            features: fs,
        });
    }
    deps.sort_by(|a, b| a.package.cmp(&b.package));

    let profile = match target {
        Target::Unix => vec!["debug = \"line-tables-only\""],
        Target::XenArm => vec![
            "panic = \"abort\"",
            "opt-level = \"z\"",
            "lto = true",
            "codegen-units = 1",
            "debug = false",
        ],
    };
    let config_name = cfg
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cx = TemplateContext {
        uni_version: env!("CARGO_PKG_VERSION"),
        config: config_name,
        target: target.name(),
        board: board.clone(),
        name: cfg.name.clone(),
        no_std: target == Target::XenArm,
        boot_args: cfg.boot_args.clone(),
        uses_boot_args,
        spec_name: format!("{:?}", cfg.name),
        device_keys,
        app_keys,
        open_keys,
        devices,
        app_crate,
        entry: cfg.entry.clone(),
        app_args: cfg.devices.iter().map(|d| d.name.clone()).collect(),
        deps,
        uni_link: uni_link.is_some(),
        profile,
        app_profile: match (&uni_link, target) {
            (None, Target::XenArm) => {
                app_rustflags(&cfg.app_dir).map(|flags| (app_package.clone(), flags))
            }
            _ => None,
        },
        trace: cfg.trace.map(|t| t.events),
    };
    let cx = tera::Context::from_serialize(&cx)?;
    let mut tera = tera::Tera::default();
    tera.add_raw_templates([("main.rs", MAIN_RS), ("Cargo.toml", CARGO_TOML)])?;
    let main_rs = rustfmt(
        &tera
            .render("main.rs", &cx)
            .context("rendering templates/main.rs.tera")?,
    )?;
    let cargo_toml = tera
        .render("Cargo.toml", &cx)
        .context("rendering templates/Cargo.toml.tera")?;

    let mut files = vec![
        GeneratedFile {
            path: dir.join("Cargo.toml"),
            contents: cargo_toml,
        },
        GeneratedFile {
            path: dir.join("src/main.rs"),
            contents: main_rs,
        },
    ];
    if target == Target::XenArm {
        let header = format!(
            "/* @generated by uni {} from templates/xen-arm/link.ld for {} (board {board}). Do not edit. */\n",
            env!("CARGO_PKG_VERSION"),
            cfg.name
        );
        files.push(GeneratedFile {
            path: dir.join("link.ld"),
            contents: header + LINK_LD,
        });
    }
    let mut packs = vec![];
    for d in &cfg.devices {
        if let Some((kv_dir, path)) = d.device.kv_pack(&d.name) {
            let pack = Pack::of_dir(&kv_dir)
                .with_context(|| format!("packing `{}` for {}", kv_dir.display(), d.key()))?;
            packs.push(PlannedPack {
                path: dir.join(path),
                pack,
            });
        }
    }
    Ok(Plan {
        target,
        board,
        files,
        dir,
        order: order.iter().map(|&i| cfg.devices[i].name.clone()).collect(),
        packs,
        uni_link,
    })
}

/// Records boot argument `k` of device `owner` (`app`: the app's args device): whether it is
/// new. The same key of two devices is read by both (two net devices, say); a key the app
/// declares that a device reads too is an error, since they would fight over its value.
fn add_key(
    known: &mut Vec<(String, &'static str, String, bool)>,
    k: &crate::devices::BootKey,
    owner: String,
    app: bool,
) -> Result<bool> {
    match known.iter().find(|(n, ..)| *n == k.name) {
        None => {
            known.push((k.name.clone(), k.ty, owner, app));
            Ok(true)
        }
        Some((_, _, other, other_app)) if app || *other_app => {
            let (args, device) = if app {
                (&owner, other)
            } else {
                (other, &owner)
            };
            bail!(
                "{args}.keys declares --{}, which {device} already reads; give the app's key another name",
                k.name
            )
        }
        Some(_) => Ok(false),
    }
}

/// A boot argument as the generated main declares it: a `uni_runtime::boot::Key`.
fn key_expr(k: &crate::devices::BootKey, owner: &str) -> String {
    let default = match &k.default {
        Some(d) => format!("Some({d:?})"),
        None => "None".into(),
    };
    format!(
        "uni_runtime::boot::Key::new({:?}, uni_runtime::boot::Type::{}, {default}, {owner:?}, {:?})",
        k.name, k.ty, k.doc
    )
}

/// `to` relative to the uni checkout, if it lies inside it.
fn in_home(to: &Path) -> Result<Option<PathBuf>> {
    let home = home::home()?;
    let to = home::normalize(to);
    if let Ok(r) = to.strip_prefix(&home) {
        return Ok(Some(r.to_path_buf()));
    }
    // the same directories under other names (a symlinked /tmp, say)
    let (Ok(home), Ok(to)) = (std::fs::canonicalize(&home), std::fs::canonicalize(&to)) else {
        return Ok(None);
    };
    Ok(to.strip_prefix(&home).ok().map(Path::to_path_buf))
}

/// The rustflags, as a TOML array, of the crate of an app outside the checkout, on xen-arm:
/// rustc names its files from the app's parent directory (`web/src/lib.rs` in a panic), as it
/// names an example's (`crash/src/lib.rs`). Cargo's per-package `rustflags` (the unstable
/// `profile-rustflags`, on the stable toolchain as `-Zbuild-std` is) give it to that crate alone:
/// in the build's RUSTFLAGS, which every crate gets, a flag that depends on where the app lives
/// would make two apps rebuild each other's dependencies, `core` included, in a shared target
/// directory. `None` for an app at the root of the file system.
fn app_rustflags(app_dir: &Path) -> Option<String> {
    let parent = home::normalize(app_dir).parent()?.to_path_buf();
    let flag = format!("--remap-path-prefix={}/=", parent.display());
    Some(toml::Value::Array(vec![toml::Value::String(flag)]).to_string())
}

/// The link to the checkout for the generated crate at `dir`, when the app at `app_dir` lies in
/// the checkout. An app elsewhere names uni's crates by their real paths itself, so the generated
/// crate must too (one package, one path), and gets no link.
fn uni_link(dir: &Path, app_dir: &Path) -> Result<Option<UniLink>> {
    let Some(app) = in_home(app_dir)? else {
        return Ok(None);
    };
    Ok(Some(UniLink {
        path: dir.join("uni"),
        target: PathBuf::from(rel(dir, &home::home()?)),
        app: Path::new("uni").join(app),
    }))
}

/// Devices in dependency order: each after the devices it depends on, otherwise in declaration
/// order. A cycle is a config error.
fn dependency_order(cfg: &Config, impls: &[(usize, Implementation)]) -> Result<Vec<usize>> {
    let index = |name: &str| cfg.devices.iter().position(|d| d.name == name);
    let deps: Vec<Vec<usize>> = impls
        .iter()
        .map(|(i, _)| {
            cfg.devices[*i]
                .device
                .uses()
                .into_iter()
                .filter_map(index)
                .collect()
        })
        .collect();
    let mut done: Vec<usize> = vec![];
    while done.len() < impls.len() {
        let next = impls
            .iter()
            .enumerate()
            .find(|(k, (i, _))| !done.contains(i) && deps[*k].iter().all(|d| done.contains(d)));
        match next {
            Some((_, (i, _))) => done.push(*i),
            None => {
                let (k, (i, _)) = impls
                    .iter()
                    .enumerate()
                    .find(|(_, (i, _))| !done.contains(i))
                    .expect("some left");
                let d = &cfg.devices[*i];
                let cycle: Vec<String> = deps[k]
                    .iter()
                    .map(|&j| cfg.devices[j].name.clone())
                    .collect();
                return Err(Diagnostics(vec![cfg.source.error(
                    d.kind_span.clone(),
                    d.key(),
                    format!(
                        "device `{}` is part of a dependency cycle (it needs {})",
                        d.name,
                        cycle.join(", ")
                    ),
                    "in a cycle",
                    Some("devices must form a graph without cycles".into()),
                )])
                .into());
            }
        }
    }
    Ok(done)
}

fn rel(from: &Path, to: &Path) -> String {
    let to = home::normalize(to);
    pathdiff::diff_paths(&to, from)
        .unwrap_or(to)
        .to_string_lossy()
        .into_owned()
}

/// Formats Rust source with rustfmt (stdin to stdout).
pub fn rustfmt(src: &str) -> Result<String> {
    let sh = xshell::Shell::new()?;
    let out = xshell::cmd!(sh, "rustfmt --edition 2021 --emit stdout")
        .stdin(src)
        .quiet()
        .ignore_status()
        .output()
        .context("running rustfmt (install it with `rustup component add rustfmt`)")?;
    if !out.status.success() {
        bail!(
            "rustfmt rejected the generated code:\n{}\n--- source ---\n{src}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Whether `plan`'s files are all on disk with the same contents.
pub fn stale_files(plan: &Plan) -> Vec<&GeneratedFile> {
    plan.files
        .iter()
        .filter(|f| std::fs::read_to_string(&f.path).ok().as_deref() != Some(f.contents.as_str()))
        .collect()
}

/// The packs of `plan` that are missing or differ on disk.
pub fn stale_packs(plan: &Plan) -> Vec<&PlannedPack> {
    plan.packs
        .iter()
        .filter(|p| !p.pack.is_current(&p.path))
        .collect()
}

/// Every path of `plan` that is missing or differs on disk: generated files, then packs.
pub fn stale_paths(plan: &Plan) -> Vec<&Path> {
    let files = stale_files(plan).into_iter().map(|f| f.path.as_path());
    let link = plan.uni_link.iter().filter(|l| !l.is_current());
    files
        .chain(stale_packs(plan).into_iter().map(|p| p.path.as_path()))
        .chain(link.map(|l| l.path.as_path()))
        .collect()
}

/// Writes `plan`'s files, and the packs that are not current.
pub fn write(plan: &Plan) -> Result<()> {
    let mkdir = |path: &Path| -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating `{}`", parent.display()))?;
        }
        Ok(())
    };
    for f in &plan.files {
        mkdir(&f.path)?;
        std::fs::write(&f.path, &f.contents)
            .with_context(|| format!("writing `{}`", f.path.display()))?;
    }
    for p in stale_packs(plan) {
        mkdir(&p.path)?;
        p.pack.write(&p.path)?;
    }
    if let Some(link) = &plan.uni_link {
        link.write()?;
    }
    Ok(())
}
