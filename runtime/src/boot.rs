//! Boot arguments: argv on unix, the xl `extra=` string (`/chosen/bootargs`) on Xen.
//!
//! Arguments use MirageOS's spelling: `--key=value`, `--key value`, or a bare `--flag`.
//! Devices read their own keys (the network device reads `--ipv4` and `--ipv4-gateway`); an
//! application that declares an `args` device reads the rest.
//!
//! The generated main declares every key the unikernel accepts in a [`Spec`] (the devices'
//! keys, the app's keys from its `args` device, the platform's own), and the platform
//! [`check`]s the arguments against it before anything starts: `--help` lists the keys, an
//! unknown key is refused with the nearest known one, a value of the wrong form is refused in
//! words ("a port number, 1–65535").

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// Parsed boot arguments, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootArgs {
    pairs: Vec<(String, Option<String>)>,
}

impl BootArgs {
    /// Parses already-split arguments (argv without the program name).
    pub fn parse<I, S>(args: I) -> Result<BootArgs, BootArgError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut pairs: Vec<(String, Option<String>)> = Vec::new();
        for arg in args {
            let arg = arg.as_ref();
            if let Some(body) = arg.strip_prefix("--") {
                if body.is_empty() {
                    return Err(BootArgError::Malformed(arg.to_string()));
                }
                match body.split_once('=') {
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((body.to_string(), None)),
                }
            } else if let Some((_, value @ None)) = pairs.last_mut() {
                // `--key value`
                *value = Some(arg.to_string());
            } else {
                return Err(BootArgError::Malformed(arg.to_string()));
            }
        }
        Ok(BootArgs { pairs })
    }

    /// Parses a command line, splitting on whitespace (the Xen `extra=` string).
    pub fn parse_cmdline(cmdline: &str) -> Result<BootArgs, BootArgError> {
        BootArgs::parse(cmdline.split_whitespace())
    }

    /// The value of the last `--key`, if given. A bare `--key` has the value `""`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Parses the value of `--key` as `T`, or returns `default` when it is absent. The error
    /// says what was expected in words ("a whole number, 0–65535"), not as a Rust type.
    pub fn get_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, BootArgError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| BootArgError::BadValue {
                key: key.to_string(),
                value: v.to_string(),
                expected: expected_for(core::any::type_name::<T>()),
            }),
        }
    }

    /// Every key given, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }
}

/// What a value parsed as the Rust type named `type_name` must look like, in words.
fn expected_for(type_name: &str) -> &'static str {
    match type_name.rsplit("::").next().unwrap_or(type_name) {
        "u8" => "a whole number, 0–255",
        "u16" => "a whole number, 0–65535",
        "u32" => "a whole number, 0–4294967295",
        "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" => "a whole number, -128–127",
        "i16" => "a whole number, -32768–32767",
        "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        "char" => "a single character",
        "Ipv4Addr" => "an IPv4 address, like 10.0.0.1",
        "Ipv6Addr" => "an IPv6 address",
        "IpAddr" => "an IP address",
        "SocketAddr" | "SocketAddrV4" => "an address and port, like 10.0.0.1:80",
        _ => "a value of another form",
    }
}

/// A boot argument could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootArgError {
    /// An argument that is neither `--key[=value]` nor the value of a preceding `--key`.
    Malformed(String),
    /// A value of the wrong form.
    BadValue {
        /// The key, without `--`.
        key: String,
        /// The value given.
        value: String,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A `--log-level` value that does not parse.
    LogLevel {
        /// The value given.
        value: String,
        /// What is wrong with it, with the nearest module or level.
        why: String,
    },
}

impl fmt::Display for BootArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootArgError::Malformed(a) => {
                write!(f, "boot argument `{a}` is not of the form --key=value")
            }
            BootArgError::BadValue {
                key,
                value,
                expected,
            } => {
                write!(f, "boot argument --{key}={value}: expected {expected}")
            }
            BootArgError::LogLevel { value, why } => {
                write!(f, "boot argument --log-level={value}: {why}")
            }
        }
    }
}

impl core::error::Error for BootArgError {}

// ---------------------------------------------------------------------------------------------
// The keys a unikernel accepts
// ---------------------------------------------------------------------------------------------

/// The form of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A bare `--key`, without a value.
    Flag,
    /// Any text.
    Text,
    /// A file on the host.
    Path,
    /// A TCP or UDP port, 1–65535.
    Port,
    /// A whole number, 0 or more.
    Integer,
    /// A whole number of seconds, 1 or more.
    Seconds,
    /// An IPv4 address.
    Ipv4,
    /// An IPv4 address with a prefix length, `a.b.c.d/n`.
    Ipv4Cidr,
    /// An IPv4 address with an optional port, `a.b.c.d` or `a.b.c.d:port` (a server to ask).
    Ipv4Port,
    /// Log levels, `LEVEL` or `MODULE:LEVEL` items separated by commas
    /// ([`crate::log::parse`]).
    LogLevels,
}

impl Type {
    /// The placeholder `--help` shows after `--key=`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Type::Flag => "",
            Type::Text => "TEXT",
            Type::Path => "PATH",
            Type::Port => "PORT",
            Type::Integer => "N",
            Type::Seconds => "SECONDS",
            Type::Ipv4 => "A.B.C.D",
            Type::Ipv4Cidr => "A.B.C.D/N",
            Type::Ipv4Port => "A.B.C.D[:PORT]",
            Type::LogLevels => "[MODULE:]LEVEL,…",
        }
    }

    /// What a value must look like, in words.
    pub fn expected(self) -> &'static str {
        match self {
            Type::Flag => "no value: the flag is given as --KEY alone",
            Type::Text => "text",
            Type::Path => "a path",
            Type::Port => "a port number, 1–65535",
            Type::Integer => "a whole number, 0 or more",
            Type::Seconds => "a whole number of seconds, 1 or more",
            Type::Ipv4 => "an IPv4 address, like 10.0.0.1",
            Type::Ipv4Cidr => "an address with a prefix length, like 10.0.0.2/24",
            Type::Ipv4Port => "an IPv4 address with an optional port, like 10.0.0.1 or 10.0.0.1:53",
            Type::LogLevels => "a level (off, error, warn, info, debug, trace) or MODULE:LEVEL items, like net:debug,http:info",
        }
    }

    /// The form of a value, as `--help` shows it.
    pub fn describe(self) -> &'static str {
        match self {
            Type::Flag => "a flag, off unless given",
            t => t.expected(),
        }
    }

    /// Whether `value` (`None`: a bare `--key`) has this form.
    pub fn accepts(self, value: Option<&str>) -> bool {
        match (self, value) {
            (Type::Flag, v) => v.is_none(),
            (Type::Text, _) => true,
            (_, None) => false,
            (Type::Path, Some(v)) => !v.is_empty(),
            (Type::Port, Some(v)) => is_digits(v) && v.parse::<u16>().is_ok_and(|p| p > 0),
            (Type::Integer, Some(v)) => is_digits(v) && v.parse::<u64>().is_ok(),
            (Type::Seconds, Some(v)) => is_digits(v) && v.parse::<u32>().is_ok_and(|s| s > 0),
            (Type::Ipv4, Some(v)) => v.parse::<Ipv4Addr>().is_ok(),
            (Type::LogLevels, Some(v)) => crate::log::parse(v).is_ok(),
            (Type::Ipv4Cidr, Some(v)) => v.split_once('/').is_some_and(|(a, n)| {
                a.parse::<Ipv4Addr>().is_ok()
                    && is_digits(n)
                    && n.parse::<u8>().is_ok_and(|n| n <= 32)
            }),
            (Type::Ipv4Port, Some(v)) => match v.split_once(':') {
                Some((a, p)) => a.parse::<Ipv4Addr>().is_ok() && Type::Port.accepts(Some(p)),
                None => v.parse::<Ipv4Addr>().is_ok(),
            },
        }
    }
}

/// Only ASCII digits (so that `+1` is not a port).
fn is_digits(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

/// One key a unikernel accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key, without `--`.
    pub name: &'static str,
    /// The form of its value.
    pub ty: Type,
    /// The value in force when it is not given, as `--help` shows it.
    pub default: Option<&'static str>,
    /// Who reads it: `devices.<name>` in unikernel.toml, `app`, or `platform`.
    pub owner: &'static str,
    /// One line on what it does.
    pub doc: &'static str,
}

impl Key {
    /// A key: see the fields.
    pub const fn new(
        name: &'static str,
        ty: Type,
        default: Option<&'static str>,
        owner: &'static str,
        doc: &'static str,
    ) -> Key {
        Key {
            name,
            ty,
            default,
            owner,
            doc,
        }
    }
}

/// Every key a unikernel accepts: the generated main's declaration, checked at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The unikernel's name, for `--help`.
    pub name: &'static str,
    /// The devices' keys.
    pub devices: &'static [Key],
    /// The app's keys, declared in its `args` device. Those with a default get it when they
    /// are not given, so that the app reads the declared default.
    pub app: &'static [Key],
    /// Whether the app reads undeclared keys itself (an `args` device without `keys`): then no
    /// key is refused as unknown.
    pub open: bool,
}

impl Spec {
    /// A spec that checks nothing: every key is accepted, `--help` included.
    pub const UNCHECKED: Spec = Spec {
        name: "",
        devices: &[],
        app: &[],
        open: true,
    };
}

/// `--log-level`, on every target ([`crate::log`]).
const LOG_LEVEL: Key = Key::new(
    "log-level",
    Type::LogLevels,
    Some("info"),
    "platform",
    "the log records printed: a level for all, or per module (net, http, tls, kv, runtime, xen, netfront, blkfront, app)",
);

/// The platform's own keys.
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub const PLATFORM_KEYS: &[Key] = &[
    LOG_LEVEL,
    Key::new(
        "uni-timestamps",
        Type::Flag,
        None,
        "platform",
        "stamps each console line with the guest's clock",
    ),
    Key::new(
        "uni-boot-info",
        Type::Flag,
        None,
        "platform",
        "prints a platform summary and the boot's stages and milestones",
    ),
    Key::new(
        "uni-seed",
        Type::Text,
        None,
        "platform",
        "hex bytes mixed into the random generator's entropy (not credited)",
    ),
];
/// The platform's own keys.
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
pub const PLATFORM_KEYS: &[Key] = &[LOG_LEVEL];

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The arguments are good: boot with them (the app's declared defaults added).
    Run(BootArgs),
    /// `--help` was given: print this and stop (exit 0, or power off).
    Help(String),
}

/// A boot argument the unikernel does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// A key nothing reads.
    Unknown {
        /// The key, without `--`.
        key: String,
        /// The nearest key that is accepted, if one is near.
        nearest: Option<&'static str>,
    },
    /// A malformed argument, or a value of the wrong form.
    Bad(BootArgError),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Unknown {
                key,
                nearest: Some(n),
            } => write!(
                f,
                "unknown boot argument --{key}: did you mean --{n}? (--help lists every key)"
            ),
            UsageError::Unknown { key, nearest: None } => write!(
                f,
                "unknown boot argument --{key} (--help lists every key this unikernel accepts)"
            ),
            UsageError::Bad(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for UsageError {}

impl From<BootArgError> for UsageError {
    fn from(e: BootArgError) -> UsageError {
        UsageError::Bad(e)
    }
}

/// Checks `args` against `spec` (and the [`PLATFORM_KEYS`]): `--help` anywhere gives the help
/// text (which shows the compiled-in `defaults`, the config's `boot-args`, as the keys'
/// defaults where they set them); otherwise every key must be known (unless the spec is open)
/// and every value of a known key of the right form. The app's declared defaults are added for
/// keys not given.
pub fn check(args: BootArgs, spec: &Spec, defaults: &str) -> Result<Checked, UsageError> {
    if spec.devices.is_empty() && spec.app.is_empty() && spec.open && spec.name.is_empty() {
        return Ok(Checked::Run(args)); // Spec::UNCHECKED
    }
    let known = || spec.devices.iter().chain(spec.app).chain(PLATFORM_KEYS);
    if args.get("help").is_some() && !known().any(|k| k.name == "help") {
        return Ok(Checked::Help(help(spec, defaults)));
    }
    for (k, v) in &args.pairs {
        match known().find(|key| key.name == k) {
            Some(key) => {
                if let (Type::LogLevels, Some(v)) = (key.ty, v) {
                    if let Err(e) = crate::log::parse(v) {
                        return Err(UsageError::Bad(BootArgError::LogLevel {
                            value: v.clone(),
                            why: e.0,
                        }));
                    }
                }
                if !key.ty.accepts(v.as_deref()) {
                    return Err(UsageError::Bad(BootArgError::BadValue {
                        key: k.clone(),
                        value: v.clone().unwrap_or_default(),
                        expected: key.ty.expected(),
                    }));
                }
            }
            None if spec.open => {}
            None => {
                return Err(UsageError::Unknown {
                    key: k.clone(),
                    nearest: nearest(k, known().map(|key| key.name).chain(["help"])),
                })
            }
        }
    }
    let mut pairs: Vec<(String, Option<String>)> = spec
        .app
        .iter()
        .filter(|k| args.get(k.name).is_none())
        .filter_map(|k| k.default.map(|d| (k.name.to_string(), Some(d.to_string()))))
        .collect();
    pairs.extend(args.pairs);
    Ok(Checked::Run(BootArgs { pairs }))
}

/// What `--help` prints: every key, its value's form, default (the compiled-in `defaults`'
/// value where they set it), owner and doc.
pub fn help(spec: &Spec, defaults: &str) -> String {
    let compiled = BootArgs::parse_cmdline(defaults).unwrap_or_default();
    let mut out = String::new();
    let name = if spec.name.is_empty() {
        "this unikernel"
    } else {
        spec.name
    };
    let _ = writeln!(
        out,
        "{name}: boot arguments (--key=value, --key value or --flag; a key given twice takes its last value)"
    );
    let lhs = |k: &Key| match k.ty {
        Type::Flag => format!("--{}", k.name),
        t => format!("--{}={}", k.name, t.placeholder()),
    };
    let all: Vec<&Key> = spec
        .devices
        .iter()
        .chain(spec.app)
        .chain(PLATFORM_KEYS)
        .collect();
    let width = all
        .iter()
        .map(|k| lhs(k).chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    for k in &all {
        let mut line = format!("  {:width$}  {}", lhs(k), k.doc);
        let _ = write!(line, " ({}; {}", k.owner, k.ty.describe());
        match (compiled.get(k.name), k.default) {
            (Some(_), _) if k.ty == Type::Flag => line.push_str("; on by default"),
            (Some(d), _) => {
                let _ = write!(line, "; default {d}");
            }
            (None, Some(d)) => {
                let _ = write!(line, "; default {d}");
            }
            (None, None) => {}
        }
        line.push(')');
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "  {:width$}  prints this list and stops", "--help");
    if spec.open {
        let _ = writeln!(
            out,
            "The app reads other keys itself: its args device declares none (see docs/unikernel-toml.md)."
        );
    }
    out
}

/// The key in `candidates` nearest `key` by edit distance, if it is near enough to be a
/// likely typo (at most a third of its length, at least 2 edits), or if one is `key` with a
/// device's prefix (`port` for `http-port`).
pub fn nearest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = if c.ends_with(&format!("-{key}")) || key.ends_with(&format!("-{c}")) {
            1
        } else {
            edit_distance(key, c)
        };
        if best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    let limit = (key.chars().count() / 3).max(2);
    best.filter(|&(d, _)| d <= limit).map(|(_, c)| c)
}

/// Levenshtein distance between `a` and `b`, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if ca == *cb {
                diag
            } else {
                1 + diag.min(up).min(row[j])
            };
            diag = up;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = BootArgs::parse(["--ipv4=10.0.0.2/24", "--port", "80", "--verbose"]).unwrap();
        assert_eq!(a.get("ipv4"), Some("10.0.0.2/24"));
        assert_eq!(a.get("port"), Some("80"));
        assert_eq!(a.get("verbose"), Some(""));
        assert_eq!(a.get("missing"), None);
        assert_eq!(a.get_or("port", 7u16), Ok(80));
        assert_eq!(a.get_or("missing", 7u16), Ok(7));
    }

    #[test]
    fn a_server_address_takes_an_optional_port() {
        for good in ["10.0.0.1", "127.0.0.1:5353"] {
            assert!(Type::Ipv4Port.accepts(Some(good)), "{good}");
        }
        for bad in [
            "10.0.0",
            "10.0.0.1:",
            "10.0.0.1:0",
            "10.0.0.1:+53",
            "1.2.3.4:65536",
            "a:53",
        ] {
            assert!(!Type::Ipv4Port.accepts(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn last_wins_and_errors() {
        let a = BootArgs::parse_cmdline("--port=1 --port=2").unwrap();
        assert_eq!(a.get("port"), Some("2"));
        assert_eq!(
            BootArgs::parse(["stray"]),
            Err(BootArgError::Malformed("stray".into()))
        );
        assert!(matches!(
            a.get_or::<u8>("port", 0).map(|_| ()).and(
                BootArgs::parse_cmdline("--port=x")
                    .unwrap()
                    .get_or::<u16>("port", 0)
            ),
            Err(BootArgError::BadValue { .. })
        ));
    }

    #[test]
    fn get_or_errors_speak_in_words_not_rust_types() {
        let a = BootArgs::parse_cmdline("--n=abc").unwrap();
        for (shown, want) in [
            (a.get_or::<u16>("n", 0).unwrap_err().to_string(), "0–65535"),
            (
                a.get_or::<i64>("n", 0).unwrap_err().to_string(),
                "a whole number",
            ),
            (
                a.get_or::<bool>("n", false).unwrap_err().to_string(),
                "true or false",
            ),
            (
                a.get_or::<core::net::Ipv4Addr>("n", Ipv4Addr::UNSPECIFIED)
                    .unwrap_err()
                    .to_string(),
                "an IPv4 address",
            ),
        ] {
            assert!(
                shown.starts_with("boot argument --n=abc: expected "),
                "{shown}"
            );
            assert!(shown.contains(want), "{shown}");
            for rust in ["u16", "i64", "bool", "Ipv4Addr", "core::"] {
                assert!(!shown.contains(rust), "{shown}");
            }
        }
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("port", "port"), 0);
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("pot", "port"), 1);
        assert_eq!(edit_distance("ports", "port"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("héllo", "hello"), 1);
    }

    #[test]
    fn nearest_suggests_typos_and_device_prefixes_only() {
        let keys = ["http-port", "ipv4", "ipv4-gateway", "greeting", "help"];
        let near = |k| nearest(k, keys.iter().copied());
        assert_eq!(near("port"), Some("http-port"));
        assert_eq!(near("htp-port"), Some("http-port"));
        assert_eq!(near("ipv4-gatway"), Some("ipv4-gateway"));
        assert_eq!(near("greting"), Some("greeting"));
        assert_eq!(near("ipv6"), Some("ipv4"));
        assert_eq!(near("bogus"), None);
        assert_eq!(near("verbose"), None);
        assert_eq!(nearest("x", [].into_iter()), None);
    }

    const DEVICES: &[Key] = &[
        Key::new(
            "http-port",
            Type::Port,
            Some("8080"),
            "devices.http",
            "the HTTP port",
        ),
        Key::new("ipv4", Type::Ipv4Cidr, None, "devices.net", "the address"),
        Key::new(
            "tcp-timeout",
            Type::Seconds,
            Some("120"),
            "devices.net",
            "idle limit",
        ),
    ];
    const APP: &[Key] = &[
        Key::new("greeting", Type::Text, Some("hello"), "app", "what to say"),
        Key::new("count", Type::Integer, None, "app", "how many"),
        Key::new("loud", Type::Flag, None, "app", "shout"),
    ];
    const SPEC: Spec = Spec {
        name: "web",
        devices: DEVICES,
        app: APP,
        open: false,
    };

    fn run(line: &str, spec: &Spec) -> Result<Checked, UsageError> {
        check(
            BootArgs::parse_cmdline(line).unwrap(),
            spec,
            "--http-port=8443",
        )
    }

    #[test]
    fn check_accepts_declared_keys_and_adds_the_apps_defaults() {
        let Ok(Checked::Run(a)) = run("--http-port=81 --ipv4 10.0.0.9/24 --loud --count=3", &SPEC)
        else {
            panic!("refused")
        };
        assert_eq!(a.get("http-port"), Some("81"));
        assert_eq!(
            a.get("greeting"),
            Some("hello"),
            "the app's declared default"
        );
        assert_eq!(a.get("loud"), Some(""));
        assert_eq!(
            a.get("tcp-timeout"),
            None,
            "device defaults are the device's own"
        );
        let Ok(Checked::Run(a)) = run("--greeting=hi", &SPEC) else {
            panic!("refused")
        };
        assert_eq!(a.get("greeting"), Some("hi"));
    }

    #[test]
    fn check_refuses_unknown_keys_with_the_nearest() {
        let e = run("--port=8082", &SPEC).unwrap_err();
        assert_eq!(
            e,
            UsageError::Unknown {
                key: "port".into(),
                nearest: Some("http-port")
            }
        );
        assert_eq!(
            e.to_string(),
            "unknown boot argument --port: did you mean --http-port? (--help lists every key)"
        );
        let e = run("--bogus", &SPEC).unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown boot argument --bogus (--help lists every key this unikernel accepts)"
        );
        // An open spec (an args device without declared keys) lets the app read any key.
        let open = Spec { open: true, ..SPEC };
        assert!(matches!(run("--bogus=1", &open), Ok(Checked::Run(_))));
        // ... but still checks the declared ones.
        assert!(run("--http-port=0", &open).is_err());
    }

    #[test]
    fn check_refuses_values_of_the_wrong_form_in_words() {
        for (line, want) in [
            (
                "--http-port=abc",
                "boot argument --http-port=abc: expected a port number, 1–65535",
            ),
            (
                "--http-port=0",
                "boot argument --http-port=0: expected a port number, 1–65535",
            ),
            ("--http-port=65536", "expected a port number, 1–65535"),
            ("--http-port=+80", "expected a port number"),
            (
                "--http-port",
                "boot argument --http-port=: expected a port number",
            ),
            ("--count=-1", "expected a whole number, 0 or more"),
            (
                "--tcp-timeout=0",
                "expected a whole number of seconds, 1 or more",
            ),
            (
                "--ipv4=10.0.0.2",
                "expected an address with a prefix length, like 10.0.0.2/24",
            ),
            (
                "--ipv4=10.0.0.2/33",
                "expected an address with a prefix length",
            ),
            ("--loud=yes", "boot argument --loud=yes: expected no value"),
        ] {
            let e = run(line, &SPEC).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        assert!(matches!(
            run("--ipv4=10.1.2.3/0 --http-port=65535", &SPEC),
            Ok(Checked::Run(_))
        ));
    }

    #[test]
    fn help_lists_every_key_with_its_form_and_default() {
        let Ok(Checked::Help(h)) = run("--http-port=81 --help", &SPEC) else {
            panic!("no help")
        };
        assert!(h.starts_with("web: boot arguments"), "{h}");
        for want in [
            "--http-port=PORT",
            "the HTTP port (devices.http; a port number, 1–65535; default 8443)",
            "idle limit (devices.net; a whole number of seconds, 1 or more; default 120)",
            "--ipv4=A.B.C.D/N",
            "--tcp-timeout=SECONDS",
            "--greeting=TEXT",
            "what to say (app; text; default hello)",
            "--count=N",
            "--loud ",
            "shout (app; a flag, off unless given)",
            "--help",
        ] {
            assert!(h.contains(want), "no {want:?} in:\n{h}");
        }
        assert!(!h.contains("u16") && !h.contains("Some("), "{h}");
        // --help is answered even beside a bad key.
        assert!(matches!(run("--bogus --help", &SPEC), Ok(Checked::Help(_))));
        // The unchecked spec (entry! without one) leaves everything to the app.
        assert!(matches!(
            run("--help", &Spec::UNCHECKED),
            Ok(Checked::Run(_))
        ));
    }
}
