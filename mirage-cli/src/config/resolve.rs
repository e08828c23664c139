//! Layer 2: validation. Turns the file model into a [`Config`], collecting every error with
//! its span, key path and the accepted values.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::model::{self, DeviceHead};
use super::{
    Config, DeployConfig, DeviceConfig, Diagnostic, Diagnostics, HostSpec, Source, TraceConfig,
    XenConfig,
};
use crate::devices::{self, quoted, Resolver};
use crate::diag::{key_path, toml_error};
use crate::{board, target::Target};

pub const SCHEMA: i64 = 1;

/// Names a device may not take: they are used by the generated main.
const RESERVED: &[&str] = &[
    "boot_args",
    "unikernel",
    "main",
    "self",
    "super",
    "crate",
    "uni_runtime",
    "uni_net",
    "uni_tls",
    "uni_crypto",
    "uni_http",
];

/// Loads and validates `path`.
pub fn load(path: &Path) -> Result<Config, anyhow::Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
    load_str(path, text).map_err(anyhow::Error::new)
}

/// Validates `text` as if read from `path` (relative paths resolve against its directory).
pub fn load_str(path: &Path, text: String) -> Result<Config, Diagnostics> {
    let src = Source::new(path, text);
    let file = parse(&src).map_err(|d| Diagnostics(vec![*d]))?;
    let mut cx = Cx {
        src: &src,
        errors: vec![],
        kinds: vec![],
    };
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let cfg = cx.resolve(file, &dir);
    if cx.errors.is_empty() {
        Ok(cfg)
    } else {
        Err(Diagnostics(cx.errors))
    }
}

/// Deserializes the file model, turning serde's error into a diagnostic with the key path.
fn parse(src: &Source) -> Result<model::File, Box<Diagnostic>> {
    let de = match toml::de::Deserializer::parse(&src.text) {
        Ok(de) => de,
        Err(e) => return Err(toml_error(src, &e, String::new()).into()),
    };
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        toml_error(src, e.inner(), device_key(src, e.inner(), key)).into()
    })
}

/// serde loses the device name in `devices.<name>.<key>` (the map key is a spanned value), so
/// recover it from the table header above the error.
fn device_key(src: &Source, e: &toml::de::Error, key: String) -> String {
    let Some(rest) = key.strip_prefix("devices") else {
        return key;
    };
    let at = e.span().map_or(0, |s| s.start).min(src.text.len());
    let name = src.text[..at].lines().rev().find_map(|l| {
        let h = l.trim().strip_prefix("[devices.")?.strip_suffix(']')?;
        Some(h.trim().trim_matches('"').to_string())
    });
    match name {
        Some(n) if !rest.starts_with(&format!(".{n}")) => format!("devices.{n}{rest}"),
        _ => key,
    }
}

struct Cx<'a> {
    src: &'a Source,
    errors: Vec<Diagnostic>,
    /// Each declared device's kind, for checking references between devices.
    kinds: Vec<(String, String)>,
}

impl Cx<'_> {
    fn err(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        msg: impl Into<String>,
        label: impl Into<String>,
        accepted: impl Into<String>,
    ) {
        let accepted = accepted.into();
        let accepted = (!accepted.is_empty()).then_some(accepted);
        self.errors
            .push(self.src.error(span, key, msg, label, accepted));
    }

    fn resolve(&mut self, file: model::File, dir: &Path) -> Config {
        let uk_span = file.unikernel.span();
        let uk = file.unikernel.into_inner();

        if *uk.schema.get_ref() != SCHEMA {
            self.err(
                uk.schema.span(),
                "unikernel.schema",
                format!("unsupported schema version {}", uk.schema.get_ref()),
                "unknown version",
                format!("this uni reads schema = {SCHEMA}"),
            );
        }

        let name = uk.name.get_ref().clone();
        if !is_name(&name) {
            self.err(uk.name.span(), "unikernel.name", format!("invalid unikernel name \"{name}\""), "not a valid name", "a name of lowercase letters, digits, `-` and `_`, starting with a letter, at most 64 characters");
        }

        let app_dir = match &uk.app {
            None => dir.to_path_buf(),
            Some(app) => {
                let p = dir.join(app.get_ref());
                if !p.join("Cargo.toml").is_file() {
                    self.err(app.span(), "unikernel.app", format!("no crate at \"{}\": `{}` does not exist", app.get_ref(), p.join("Cargo.toml").display()), "not a crate directory", "the path, relative to this file, of the app's library crate (a directory with a Cargo.toml)");
                }
                p
            }
        };

        let entry = match &uk.entry {
            None => "start".to_string(),
            Some(e) => {
                if !is_ident(e.get_ref()) {
                    self.err(
                        e.span(),
                        "unikernel.entry",
                        format!("\"{}\" is not a Rust function name", e.get_ref()),
                        "not an identifier",
                        "the name of the app's async entry function, like \"start\"",
                    );
                }
                e.get_ref().clone()
            }
        };

        let target = uk.target.as_ref().and_then(|t| {
            let parsed = Target::parse(t.get_ref());
            if parsed.is_none() {
                self.err(
                    t.span(),
                    "unikernel.target",
                    format!("unknown target \"{}\"", t.get_ref()),
                    "unknown target",
                    format!("accepted targets: {}", Target::accepted()),
                );
            }
            parsed
        });

        let (board, board_span) = match &uk.board {
            None => (None, uk_span.clone()),
            Some(b) => {
                if board::find(b.get_ref()).is_none() {
                    self.err(
                        b.span(),
                        "unikernel.board",
                        format!("unknown board \"{}\"", b.get_ref()),
                        "unknown board",
                        format!("accepted boards: {}", board::names()),
                    );
                }
                (Some(b.get_ref().clone()), b.span())
            }
        };

        let boot_args = uk.boot_args.as_ref().map(|b| {
            if let Some(bad) = b
                .get_ref()
                .split_whitespace()
                .find(|w| !w.starts_with("--"))
            {
                // A value after `--key` is fine; only flag a leading stray word.
                if b.get_ref().split_whitespace().next() == Some(bad) {
                    self.err(
                        b.span(),
                        "unikernel.boot-args",
                        format!("boot argument \"{bad}\" does not start with --"),
                        "malformed",
                        "arguments like \"--port=80 --verbose\"",
                    );
                }
            }
            b.get_ref().clone()
        });

        self.kinds = file
            .devices
            .iter()
            .map(|(k, d)| (k.get_ref().clone(), d.get_ref().kind.get_ref().clone()))
            .collect();
        let mut devices = vec![];
        for (name, decl) in file.devices {
            if let Some(d) = self.device(name, decl, dir) {
                devices.push(d);
            }
        }
        let xen = file
            .xen
            .map(|x| self.xen(x.into_inner()))
            .unwrap_or_default();
        let deploy = file
            .deploy
            .map(|d| self.deploy(d.into_inner()))
            .unwrap_or_default();

        let trace = file.trace.map(|t| self.trace(t.into_inner()));

        Config {
            file: self.src.file.clone(),
            dir: dir.to_path_buf(),
            source: self.src.clone(),
            name,
            app_dir,
            entry,
            target,
            board,
            board_span,
            boot_args: boot_args.unwrap_or_default(),
            boot_args_span: uk.boot_args.as_ref().map(Spanned::span),
            devices,
            xen,
            deploy,
            trace,
        }
    }

    fn trace(&mut self, t: model::Trace) -> TraceConfig {
        let mut c = TraceConfig::default();
        if let Some(v) = &t.events {
            let n = *v.get_ref();
            if (16..=1 << 20).contains(&n) {
                c.events = n as u32;
            } else {
                self.err(
                    v.span(),
                    "trace.events",
                    format!("events = {n} is out of range"),
                    "out of range",
                    "the trace ring's size in events, from 16 to 1048576",
                );
            }
        }
        c
    }

    fn device(
        &mut self,
        name: Spanned<String>,
        head: Spanned<DeviceHead>,
        dir: &Path,
    ) -> Option<DeviceConfig> {
        let key = format!("devices.{}", name.get_ref());
        let n = name.get_ref().clone();
        let mut ok = true;
        if !is_ident(&n) || RESERVED.contains(&n.as_str()) {
            self.err(name.span(), key.clone(), format!("invalid device name \"{n}\""), "not usable as a name", format!("a Rust identifier in snake_case (it names a variable in the generated main), other than {}", quoted(RESERVED)));
            ok = false;
        }
        let head = head.into_inner();
        let Some(kind) = devices::kind(head.kind.get_ref()) else {
            self.err(
                head.kind.span(),
                format!("{key}.kind"),
                format!("unknown device kind \"{}\"", head.kind.get_ref()),
                "unknown kind",
                format!("accepted kinds: {}", devices::kind_names()),
            );
            return None;
        };
        let kind_span = head.kind.span();
        let device = Resolver::new(
            self.src,
            &mut self.errors,
            kind,
            &n,
            kind_span.clone(),
            dir,
            &self.kinds,
        )
        .resolve()?;
        ok.then(|| DeviceConfig {
            name: n,
            kind_span,
            device: device.into(),
        })
    }

    fn xen(&mut self, x: model::Xen) -> XenConfig {
        let mut int =
            |v: &Option<Spanned<i64>>, k: &str, lo: i64, hi: i64, what: &str| -> Option<u32> {
                let v = v.as_ref()?;
                let n = *v.get_ref();
                if n < lo || n > hi {
                    self.err(
                        v.span(),
                        format!("xen.{k}"),
                        format!("{k} = {n} is out of range"),
                        "out of range",
                        format!("{what} from {lo} to {hi}"),
                    );
                    None
                } else {
                    Some(n as u32)
                }
            };
        let memory = int(&x.memory, "memory", 4, 3072, "MiB of guest memory,");
        let vcpus = int(&x.vcpus, "vcpus", 1, 8, "a vCPU count");
        let bridge = x.bridge.as_ref().map(|b| {
            let s = b.get_ref();
            if s.is_empty() || s.len() > 15 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                self.err(b.span(), "xen.bridge", format!("invalid bridge name \"{s}\""), "not an interface name", "a Linux interface name: 1 to 15 letters, digits, `-`, `_` or `.`, such as \"xenbr0\"");
            }
            s.clone()
        });
        const ON_CRASH: &[&str] = &[
            "destroy",
            "restart",
            "rename-restart",
            "preserve",
            "coredump-destroy",
            "coredump-restart",
            "soft-reset",
        ];
        let on_crash = x.on_crash.as_ref().map(|o| {
            if !ON_CRASH.contains(&o.get_ref().as_str()) {
                self.err(
                    o.span(),
                    "xen.on-crash",
                    format!("unknown on_crash action \"{}\"", o.get_ref()),
                    "unknown action",
                    format!("accepted (as in xl.cfg): {}", quoted(ON_CRASH)),
                );
            }
            o.get_ref().clone()
        });
        let extra_span = x.extra.as_ref().map(Spanned::span);
        let extra = x.extra.map(|e| e.into_inner()).unwrap_or_default();
        XenConfig {
            memory,
            vcpus,
            bridge,
            extra,
            extra_span,
            on_crash,
        }
    }
}

impl Cx<'_> {
    fn deploy(&mut self, d: model::Deploy) -> DeployConfig {
        let host = d.host.as_ref().and_then(|h| match h.get_ref().parse::<HostSpec>() {
            Ok(spec) => Some(spec),
            Err(why) => {
                self.err(h.span(), "deploy.host", format!("invalid deploy host \"{}\": {why}", h.get_ref()), "not [USER@]HOST[:PORT]", "an SSH destination [USER@]HOST[:PORT], such as \"root@cubie\" or \"root@localhost:2222\"");
                None
            }
        });
        let dir = d.dir.as_ref().and_then(|v| match check_deploy_dir(v.get_ref()) {
            Ok(()) => Some(v.get_ref().clone()),
            Err(why) => {
                self.err(v.span(), "deploy.dir", format!("invalid deploy dir \"{}\": {why}", v.get_ref()), "not an absolute path", "an absolute path in dom0 of letters, digits, `/`, `-`, `_` and `.`, such as \"/var/lib/uni\"");
                None
            }
        });
        DeployConfig { host, dir }
    }
}

/// A directory in dom0 for deployed unikernels: absolute, and plain enough to be a shell word
/// and a path inside an xl file.
pub fn check_deploy_dir(s: &str) -> Result<(), &'static str> {
    if !s.starts_with('/') {
        return Err("it is not absolute");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
        || s.split('/').any(|p| p == "..")
    {
        return Err("only letters, digits, `/`, `-`, `_` and `.` are allowed, and no `..`");
    }
    Ok(())
}

fn is_name(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_ident(s: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
        "where", "while", "gen", "yield", "box", "try",
    ];
    s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s != "_"
        && !KEYWORDS.contains(&s)
}
