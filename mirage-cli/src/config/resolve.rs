//! Layer 2: validation. Turns the file model into a [`Config`], collecting every error with
//! its span, key path and the accepted values.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::model::{self, DeviceDecl};
use super::{
    Config, DeployConfig, DeviceConfig, DeviceSpec, Diagnostic, Diagnostics, EmbeddedFile, Ipv4,
    NetStack, Source, TlsSpec, XenConfig,
};
use crate::remote::HostSpec;
use crate::{board, devices, target::Target};

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
    let file = parse(&src).map_err(|d| Diagnostics(vec![d]))?;
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
fn parse(src: &Source) -> Result<model::File, Diagnostic> {
    let de = match toml::de::Deserializer::parse(&src.text) {
        Ok(de) => de,
        Err(e) => return Err(toml_error(src, &e, String::new())),
    };
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e
            .path()
            .iter()
            .map(|s| s.to_string())
            .filter(|s| !s.starts_with("$__") && s != "?")
            .collect::<Vec<_>>()
            .join(".");
        toml_error(src, e.inner(), device_key(src, e.inner(), key))
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

fn toml_error(src: &Source, e: &toml::de::Error, key: String) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let raw = e.message().trim().to_string();
    // serde's wording: "unknown field `x`, expected one of `a`, `b`": split into what is wrong
    // and what is accepted.
    let (message, accepted) = match raw.split_once(", expected ") {
        Some((what, acc)) => (what.to_string(), Some(format!("expected {acc}"))),
        None => (raw.clone(), None),
    };
    let accepted = improve_unknown_field(src, &key, &message).or(accepted);
    let label = if message.starts_with("unknown field") {
        "unknown key".to_string()
    } else if message.starts_with("missing field") {
        "in this table".to_string()
    } else if message.starts_with("invalid type") {
        "wrong type".to_string()
    } else {
        "here".to_string()
    };
    let message = message.replace("field", "key");
    src.error(span, key, message, label, accepted)
}

/// An unknown key inside `[devices.X]`: list the keys X's kind takes, not the union.
fn improve_unknown_field(src: &Source, key: &str, message: &str) -> Option<String> {
    if !message.starts_with("unknown field") {
        return None;
    }
    let mut parts = key.split('.');
    if parts.next() != Some("devices") {
        return None;
    }
    let name = parts.next()?;
    let table: toml::Table = src.text.parse().ok()?;
    let kind = table.get("devices")?.get(name)?.get("kind")?.as_str()?;
    let k = devices::kind(kind)?;
    Some(format!(
        "a device of kind \"{kind}\" accepts: {}",
        k.keys
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

struct Cx<'a> {
    src: &'a Source,
    errors: Vec<Diagnostic>,
    /// Each declared device's kind, for checking references between devices.
    kinds: Vec<(String, String)>,
}

fn quoted(v: &[&str]) -> String {
    v.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
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

        let names: Vec<String> = file.devices.keys().map(|k| k.get_ref().clone()).collect();
        self.kinds = file
            .devices
            .iter()
            .map(|(k, d)| (k.get_ref().clone(), d.get_ref().kind.get_ref().clone()))
            .collect();
        let mut devices = vec![];
        for (name, decl) in file.devices {
            if let Some(d) = self.device(name, decl, dir, &names) {
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
            devices,
            xen,
            deploy,
        }
    }

    fn device(
        &mut self,
        name: Spanned<String>,
        decl: Spanned<DeviceDecl>,
        dir: &Path,
        names: &[String],
    ) -> Option<DeviceConfig> {
        let key = format!("devices.{}", name.get_ref());
        let n = name.get_ref().clone();
        let mut ok = true;
        if !is_ident(&n) || RESERVED.contains(&n.as_str()) {
            self.err(name.span(), key.clone(), format!("invalid device name \"{n}\""), "not usable as a name", format!("a Rust identifier in snake_case (it names a variable in the generated main), other than {}", quoted(RESERVED)));
            ok = false;
        }
        let decl = decl.into_inner();
        let Some(kind) = devices::kind(decl.kind.get_ref()) else {
            self.err(
                decl.kind.span(),
                format!("{key}.kind"),
                format!("unknown device kind \"{}\"", decl.kind.get_ref()),
                "unknown kind",
                format!("accepted kinds: {}", devices::kind_names()),
            );
            return None;
        };

        // Keys the kind does not take.
        let given: [(&str, Option<Range<usize>>); 17] = [
            ("stack", decl.stack.as_ref().map(Spanned::span)),
            ("ipv4", decl.ipv4.as_ref().map(Spanned::span)),
            ("gateway", decl.gateway.as_ref().map(Spanned::span)),
            ("mac", decl.mac.as_ref().map(Spanned::span)),
            ("dir", decl.dir.as_ref().map(Spanned::span)),
            ("file", decl.file.as_ref().map(Spanned::span)),
            ("cert", decl.cert.as_ref().map(Spanned::span)),
            ("key", decl.key.as_ref().map(Spanned::span)),
            ("ca", decl.ca.as_ref().map(Spanned::span)),
            ("client-ca", decl.client_ca.as_ref().map(Spanned::span)),
            ("sni", decl.sni.as_ref().map(Spanned::span)),
            ("alpn", decl.alpn.as_ref().map(Spanned::span)),
            ("resumption", decl.resumption.as_ref().map(Spanned::span)),
            ("net", decl.net.as_ref().map(Spanned::span)),
            ("tls", decl.tls.as_ref().map(Spanned::span)),
            ("port", decl.port.as_ref().map(Spanned::span)),
            ("nameserver", decl.nameserver.as_ref().map(Spanned::span)),
        ];
        for (k, span) in given {
            if let Some(span) = span {
                if !kind.keys.contains(&k) {
                    self.err(
                        span,
                        format!("{key}.{k}"),
                        format!(
                            "key `{k}` does not apply to a device of kind \"{}\"",
                            kind.name
                        ),
                        "not accepted here",
                        format!(
                            "a device of kind \"{}\" accepts: {}",
                            kind.name,
                            kind.keys
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        let kind_span = decl.kind.span();
        let span_all = kind_span.clone();

        let spec = match kind.name {
            "console" => DeviceSpec::Console,
            "clock" => DeviceSpec::Clock,
            "random" => DeviceSpec::Random,
            "args" => DeviceSpec::Args,
            "xenstore" => DeviceSpec::Xenstore,
            "net" => {
                let stack = decl.stack.as_ref().and_then(|s| match s.get_ref().as_str() {
                    "socket" => Some(NetStack::Socket),
                    "direct" => Some(NetStack::Direct),
                    other => {
                        self.err(s.span(), format!("{key}.stack"), format!("unknown network stack \"{other}\""), "unknown stack", "accepted: \"socket\" (host sockets, unix only), \"direct\" (smoltcp over the platform's network device)");
                        ok = false;
                        None
                    }
                });
                let ipv4 = decl.ipv4.as_ref().and_then(|v| {
                    let s = v.get_ref();
                    if s == "dhcp" {
                        return Some(Ipv4::Dhcp);
                    }
                    match parse_cidr(s) {
                        Ok(()) => Some(Ipv4::Static { cidr: s.clone(), gateway: None }),
                        Err(why) => {
                            self.err(v.span(), format!("{key}.ipv4"), format!("invalid IPv4 setting \"{s}\": {why}"), why, "accepted: \"dhcp\", or an address with a prefix length such as \"10.0.0.2/24\"");
                            ok = false;
                            None
                        }
                    }
                });
                let ipv4 = match (ipv4, &decl.gateway) {
                    (Some(Ipv4::Static { cidr, .. }), Some(g)) => {
                        if g.get_ref().parse::<Ipv4Addr>().is_err() {
                            self.err(
                                g.span(),
                                format!("{key}.gateway"),
                                format!("invalid gateway \"{}\"", g.get_ref()),
                                "not an IPv4 address",
                                "an IPv4 address without prefix, such as \"10.0.0.1\"",
                            );
                            ok = false;
                        }
                        Some(Ipv4::Static {
                            cidr,
                            gateway: Some(g.get_ref().clone()),
                        })
                    }
                    (other, Some(g)) => {
                        self.err(g.span(), format!("{key}.gateway"), "a gateway needs a static address", "gateway without a static `ipv4`", "set `ipv4 = \"A.B.C.D/N\"` as well, or drop `gateway` (DHCP supplies one)");
                        ok = false;
                        other
                    }
                    (other, None) => other,
                };
                if let (Some(Ipv4::Dhcp), Some(NetStack::Socket)) = (&ipv4, stack) {
                    let span = decl
                        .ipv4
                        .as_ref()
                        .map(Spanned::span)
                        .unwrap_or(span_all.clone());
                    self.err(span, format!("{key}.ipv4"), "DHCP needs the direct stack", "the socket stack uses the host's addresses", "with stack = \"socket\": omit `ipv4` or give a static address; or use stack = \"direct\"");
                    ok = false;
                }
                let mac = decl
                    .mac
                    .as_ref()
                    .and_then(|m| match parse_mac(m.get_ref()) {
                        Some(mac) => Some(mac),
                        None => {
                            self.err(
                                m.span(),
                                format!("{key}.mac"),
                                format!("invalid MAC address \"{}\"", m.get_ref()),
                                "not a MAC address",
                                "six hex bytes separated by colons, such as \"00:16:3e:00:00:02\"",
                            );
                            ok = false;
                            None
                        }
                    });
                DeviceSpec::Net { stack, ipv4, mac }
            }
            "kv_ro" => {
                let dir =
                    self.existing(&key, "dir", &decl.dir, dir, true, span_all.clone(), &mut ok);
                DeviceSpec::KvRo { dir }
            }
            "block" => {
                let file = self.existing(
                    &key,
                    "file",
                    &decl.file,
                    dir,
                    false,
                    span_all.clone(),
                    &mut ok,
                );
                DeviceSpec::Block { file }
            }
            "tls" => DeviceSpec::Tls(self.tls(&key, &decl, dir, names, span_all.clone(), &mut ok)),
            "http" => {
                let net = self.reference(&key, "net", &decl.net, names, span_all.clone(), &mut ok);
                let tls = decl.tls.as_ref().map(|t| {
                    self.reference(
                        &key,
                        "tls",
                        &Some(t.clone()),
                        names,
                        span_all.clone(),
                        &mut ok,
                    )
                });
                let port = match &decl.port {
                    None => {
                        if tls.is_some() {
                            443
                        } else {
                            80
                        }
                    }
                    Some(p) => match u16::try_from(*p.get_ref()) {
                        Ok(p) if p > 0 => p,
                        _ => {
                            self.err(
                                p.span(),
                                format!("{key}.port"),
                                format!("port {} is out of range", p.get_ref()),
                                "not a TCP port",
                                "an integer from 1 to 65535",
                            );
                            ok = false;
                            0
                        }
                    },
                };
                DeviceSpec::Http { net, tls, port }
            }
            "dns" => {
                let net = self.reference(&key, "net", &decl.net, names, span_all.clone(), &mut ok);
                let nameserver = decl
                    .nameserver
                    .as_ref()
                    .and_then(|n| match n.get_ref().parse() {
                        Ok(a) => Some(a),
                        Err(_) => {
                            self.err(
                                n.span(),
                                format!("{key}.nameserver"),
                                format!("invalid nameserver \"{}\"", n.get_ref()),
                                "not an IPv4 address",
                                "an IPv4 address such as \"9.9.9.9\"",
                            );
                            ok = false;
                            None
                        }
                    });
                DeviceSpec::Dns { net, nameserver }
            }
            other => unreachable!("kind {other} is in KINDS but not resolved"),
        };
        ok.then_some(DeviceConfig {
            name: n,
            kind_span,
            spec,
        })
    }

    /// A `kind = "tls"` table.
    fn tls(
        &mut self,
        key: &str,
        decl: &DeviceDecl,
        dir: &Path,
        names: &[String],
        table: Range<usize>,
        ok: &mut bool,
    ) -> TlsSpec {
        let net = self.reference(key, "net", &decl.net, names, table.clone(), ok);
        let file = |cx: &mut Self,
                    k: &str,
                    v: &Option<Spanned<String>>,
                    ok: &mut bool|
         -> Option<EmbeddedFile> {
            v.as_ref()?;
            let path = cx.existing(key, k, v, dir, false, table.clone(), ok);
            Some(EmbeddedFile {
                path,
                written: v.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default(),
            })
        };
        let cert = file(self, "cert", &decl.cert, ok);
        let k = file(self, "key", &decl.key, ok);
        let ca = file(self, "ca", &decl.ca, ok);
        let client_ca = file(self, "client-ca", &decl.client_ca, ok);
        match (&decl.cert, &decl.key) {
            (Some(c), None) => {
                self.err(c.span(), format!("{key}.cert"), "`cert` without `key`", "needs a `key` too", "`key`: the path of the certificate's private key (PEM: PKCS#8 or SEC1; ECDSA P-256/P-384 or Ed25519)");
                *ok = false;
            }
            (None, Some(k)) => {
                self.err(
                    k.span(),
                    format!("{key}.key"),
                    "`key` without `cert`",
                    "needs a `cert` too",
                    "`cert`: the path of the certificate chain (PEM, end entity first)",
                );
                *ok = false;
            }
            _ => {}
        }
        let mut sni = vec![];
        for e in decl
            .sni
            .as_ref()
            .map(|s| s.get_ref().as_slice())
            .unwrap_or_default()
        {
            let e = e.get_ref();
            let name = e.name.get_ref();
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.trim_start_matches("*.").split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !valid {
                self.err(e.name.span(), format!("{key}.sni.name"), format!("invalid server name \"{name}\""), "not a DNS name", "a DNS name such as \"www.example.com\", or a wildcard such as \"*.example.com\"");
                *ok = false;
            }
            let c = file(self, "sni.cert", &Some(e.cert.clone()), ok);
            let k = file(self, "sni.key", &Some(e.key.clone()), ok);
            if let (Some(c), Some(k)) = (c, k) {
                sni.push((name.clone(), c, k));
            }
        }
        let mut alpn = vec![];
        for a in decl
            .alpn
            .as_ref()
            .map(|a| a.get_ref().as_slice())
            .unwrap_or_default()
        {
            let s = a.get_ref();
            if s.is_empty() || s.len() > 255 {
                self.err(
                    a.span(),
                    format!("{key}.alpn"),
                    format!("invalid ALPN protocol \"{s}\""),
                    "empty or too long",
                    "protocol names of 1 to 255 bytes, such as \"h2\" or \"http/1.1\"",
                );
                *ok = false;
            }
            alpn.push(s.clone());
        }
        if cert.is_none() && sni.is_empty() && ca.is_none() {
            self.err(table, key.to_string(), "a tls device needs a certificate to serve or a `ca` to connect", "neither `cert`/`key`, `sni` nor `ca`", "`cert` and `key` (to serve), `sni` entries (certificates by name), and/or `ca` (trust anchors for connecting)");
            *ok = false;
        }
        let resumption = decl
            .resumption
            .as_ref()
            .map(|r| *r.get_ref())
            .unwrap_or(true);
        TlsSpec {
            net,
            cert,
            key: k,
            ca,
            client_ca,
            sni,
            alpn,
            resumption,
        }
    }

    /// A path key that must name an existing file or directory, relative to the config.
    #[allow(clippy::too_many_arguments)]
    fn existing(
        &mut self,
        key: &str,
        k: &str,
        v: &Option<Spanned<String>>,
        dir: &Path,
        want_dir: bool,
        table: Range<usize>,
        ok: &mut bool,
    ) -> PathBuf {
        let what = if want_dir { "directory" } else { "file" };
        let Some(v) = v else {
            self.err(
                table,
                format!("{key}.{k}"),
                format!("missing key `{k}`"),
                format!("this device needs `{k}`"),
                format!("`{k}`: the path of a {what}, relative to this file"),
            );
            *ok = false;
            return PathBuf::new();
        };
        let p = dir.join(v.get_ref());
        let good = if want_dir { p.is_dir() } else { p.is_file() };
        if !good {
            let why = if p.exists() {
                format!("\"{}\" is not a {what}", v.get_ref())
            } else {
                format!("\"{}\" does not exist", v.get_ref())
            };
            self.err(
                v.span(),
                format!("{key}.{k}"),
                why,
                format!("no such {what}"),
                format!(
                    "the path of an existing {what}, relative to `{}`",
                    dir.display()
                ),
            );
            *ok = false;
        }
        p
    }

    /// A key naming another device.
    fn reference(
        &mut self,
        key: &str,
        k: &str,
        v: &Option<Spanned<String>>,
        names: &[String],
        table: Range<usize>,
        ok: &mut bool,
    ) -> String {
        let Some(v) = v else {
            self.err(
                table,
                format!("{key}.{k}"),
                format!("missing key `{k}`"),
                format!("this device needs `{k}`"),
                format!(
                    "`{k}`: the name of a declared device; declared: {}",
                    quoted(&names.iter().map(String::as_str).collect::<Vec<_>>())
                ),
            );
            *ok = false;
            return String::new();
        };
        if !names.contains(v.get_ref()) {
            self.err(
                v.span(),
                format!("{key}.{k}"),
                format!("no device named \"{}\"", v.get_ref()),
                "unknown device",
                format!(
                    "declared devices: {}",
                    quoted(&names.iter().map(String::as_str).collect::<Vec<_>>())
                ),
            );
            *ok = false;
        } else if let Some((_, kind)) = self
            .kinds
            .iter()
            .find(|(n, kind)| n == v.get_ref() && kind != k)
        {
            let of_kind: Vec<&str> = self
                .kinds
                .iter()
                .filter(|(_, kd)| kd == k)
                .map(|(n, _)| n.as_str())
                .collect();
            let kind = kind.clone();
            self.err(
                v.span(),
                format!("{key}.{k}"),
                format!(
                    "device \"{}\" is a {kind} device, not a {k} device",
                    v.get_ref()
                ),
                format!("not a {k} device"),
                format!(
                    "declared {k} devices: {}",
                    if of_kind.is_empty() {
                        "none".to_string()
                    } else {
                        quoted(&of_kind)
                    }
                ),
            );
            *ok = false;
        }
        v.get_ref().clone()
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
        let extra = x.extra.map(|e| e.into_inner()).unwrap_or_default();
        XenConfig {
            memory,
            vcpus,
            bridge,
            extra,
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

fn parse_cidr(s: &str) -> Result<(), &'static str> {
    let Some((a, n)) = s.split_once('/') else {
        return Err(if s.parse::<Ipv4Addr>().is_ok() {
            "no prefix length"
        } else {
            "not an IPv4 address"
        });
    };
    a.parse::<Ipv4Addr>().map_err(|_| "not an IPv4 address")?;
    match n.parse::<u8>() {
        Ok(n) if n <= 32 => Ok(()),
        _ => Err("prefix length must be 0 to 32"),
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
