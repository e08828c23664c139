//! The device kinds, functoria-style: one module per kind, each holding everything about it.
//!
//! A kind module declares
//! - its keys in `unikernel.toml`, as a serde struct with spans and `deny_unknown_fields`;
//! - how a table of its keys is validated into a [`Device`], and the devices it runs over;
//! - per target, the [`Implementation`]: the crates it needs, its one-line constructor and the
//!   boot arguments it reads;
//! - its build hooks: a kv pack to write, a Xen network interface to declare.
//!
//! [`KINDS`] lists them. Adding a kind is one module here and one line in that table (plus its
//! runtime trait and its library).

mod args;
mod block;
mod clock;
mod console;
mod dns;
mod http;
mod kv_ro;
mod kv_rw;
mod net;
mod random;
mod resolver;
mod tls;
mod xenstore;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) use args::{check_boot_args, platform_keys};
pub use http::OVER_TLS as HTTP_OVER_TLS;
pub(crate) use resolver::quoted;
pub use resolver::Resolver;

use crate::target::Target;

/// A device kind as the config file sees it.
pub struct Kind {
    pub name: &'static str,
    pub summary: &'static str,
    /// The type the app's `start` receives for a device of this kind (docs/apps.md, "The
    /// signature rule"); a device may refine it ([`Device::receives`]: http over tls).
    pub receives: &'static str,
    /// The targets that provide it.
    pub targets: &'static [Target],
    /// Why another target cannot, and what to use there instead (`None`: the kinds that target
    /// has).
    pub elsewhere: (&'static str, Option<&'static str>),
    /// The keys a `[devices.<name>]` table of this kind takes, `kind` first: the fields of the
    /// kind's serde struct.
    pub keys: fn() -> &'static [&'static str],
    /// Validates one table of this kind. Errors go to the resolver; `None` after any.
    pub resolve: fn(&mut Resolver<'_>) -> Option<Box<dyn Device>>,
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kind")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every kind schema 1 knows, in documentation order.
pub const KINDS: &[Kind] = &[
    console::KIND,
    clock::KIND,
    random::KIND,
    args::KIND,
    net::KIND,
    kv_ro::KIND,
    kv_rw::KIND,
    block::KIND,
    tls::KIND,
    http::KIND,
    dns::KIND,
    xenstore::KIND,
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

pub fn kind_names() -> String {
    KINDS
        .iter()
        .map(|k| format!("\"{}\"", k.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names of the kinds `target` provides, comma separated.
pub fn available_on(target: Target) -> String {
    KINDS
        .iter()
        .filter(|k| k.targets.contains(&target))
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keys of a kind that takes none but `kind`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {
    #[serde(rename = "kind")]
    _kind: serde::de::IgnoredAny,
}

/// [`Kind::keys`] for a kind that takes none but `kind`.
fn no_keys() -> &'static [&'static str] {
    serde_aux::serde_introspection::serde_introspect::<NoKeys>()
}

/// A device of a kind without keys of its own: how it is provided depends on the target only.
#[derive(Debug)]
struct Keyless {
    kind: &'static Kind,
    implement: fn(Target) -> Implementation,
}

impl Device for Keyless {
    fn kind(&self) -> &'static Kind {
        self.kind
    }

    fn implement(&self, _name: &str, target: Target) -> Result<Implementation, Unsupported> {
        Ok((self.implement)(target))
    }
}

/// Validates a table of a kind without keys (see [`no_keys`]).
fn keyless(
    r: &mut Resolver<'_>,
    kind: &'static Kind,
    implement: fn(Target) -> Implementation,
) -> Option<Box<dyn Device>> {
    r.keys::<NoKeys>()?;
    Some(Box::new(Keyless { kind, implement }))
}

/// A validated device, as its kind resolved it.
pub trait Device: fmt::Debug + Send + Sync {
    fn kind(&self) -> &'static Kind;

    /// The devices this one runs over, by name: they are constructed first and its constructor
    /// names them.
    fn uses(&self) -> Vec<&str> {
        vec![]
    }

    /// The type the app's `start` receives for it: its kind's [`Kind::receives`] unless the
    /// device says otherwise.
    fn receives(&self) -> &'static str {
        self.kind().receives
    }

    /// How `target` provides it. Only called for the kind's [`Kind::targets`].
    fn implement(&self, name: &str, target: Target) -> Result<Implementation, Unsupported>;

    /// A directory `uni configure` packs for it into `_build/<target>/`, and the pack's path
    /// relative to that directory.
    fn kv_pack(&self, _name: &str) -> Option<(PathBuf, String)> {
        None
    }

    /// The Xen network interface it needs: `Some(mac)` (`None` inside: derived from the
    /// unikernel's name).
    fn vif(&self) -> Option<Option<[u8; 6]>> {
        None
    }

    /// Cargo features it selects on the crates it needs: a crate named here is depended on with
    /// its default features off and the union of the features every device names for it.
    fn features(&self) -> Vec<(Crate, Vec<&'static str>)> {
        vec![]
    }

    /// The Xen disk it needs: the image on the host (absolute) that the xl file's `disk =` entry
    /// names. Disks are numbered in declaration order (`xvda`, `xvdb`, …).
    fn disk(&self) -> Option<Disk> {
        None
    }
}

/// The kinds whose devices have a disk ([`Device::disk`]), numbered together in declaration
/// order.
pub const DISK_KINDS: &[&str] = &["block", "kv_rw"];

/// A disk image a device is backed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Absolute.
    pub file: PathBuf,
    pub read_only: bool,
}

/// One `[devices.<name>]` table, validated.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub name: String,
    /// The span of its `kind` value, where errors about the whole device point.
    pub kind_span: std::ops::Range<usize>,
    pub device: Arc<dyn Device>,
}

impl DeviceConfig {
    /// The type `start` receives for this device ([`Device::receives`]).
    pub fn receives(&self) -> &'static str {
        self.device.receives()
    }

    pub fn key(&self) -> String {
        format!("devices.{}", self.name)
    }

    pub fn kind(&self) -> &'static Kind {
        self.device.kind()
    }

    /// How `target` provides this device, or why it cannot.
    pub fn implement(&self, target: Target) -> Result<Implementation, Unsupported> {
        let kind = self.kind();
        if !kind.targets.contains(&target) {
            let (reason, accepted) = kind.elsewhere;
            return Err(Unsupported {
                reason: reason.into(),
                accepted: accepted
                    .map(str::to_string)
                    .unwrap_or_else(|| available_on(target)),
            });
        }
        self.device.implement(&self.name, target)
    }
}

/// A crate the generated main depends on: a package of the uni workspace or the app itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Crate {
    Runtime,
    Net,
    Crypto,
    Tls,
    Http,
    Kv,
}

impl Crate {
    pub fn package(&self) -> &'static str {
        match self {
            Crate::Runtime => "uni-runtime",
            Crate::Net => "uni-net",
            Crate::Crypto => "uni-crypto",
            Crate::Tls => "uni-tls",
            Crate::Http => "uni-http",
            Crate::Kv => "uni-kv",
        }
    }
}

/// The boot arguments a device's constructor reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootArgs {
    None,
    /// These keys (`--key=value`).
    Keys(Vec<BootKey>),
    /// All of them (the `args` device hands them to the app): the app's declared `keys`, and
    /// whether it reads undeclared ones too (no `keys` table).
    App {
        keys: Vec<BootKey>,
        open: bool,
    },
}

/// One boot argument, as the generated main declares it to the runtime (`--help` lists it, and
/// it is checked at boot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootKey {
    pub name: String,
    /// The `uni_runtime::boot::Type` variant of its value: `Port`, `Ipv4Cidr`, …
    pub ty: &'static str,
    /// The value in force when it is not given, as `--help` shows it.
    pub default: Option<String>,
    /// One line on what it does.
    pub doc: String,
}

impl BootKey {
    pub fn new(
        name: impl Into<String>,
        ty: &'static str,
        default: Option<String>,
        doc: impl Into<String>,
    ) -> BootKey {
        BootKey {
            name: name.into(),
            ty,
            default,
            doc: doc.into(),
        }
    }
}

/// How one device is provided on one target.
#[derive(Debug, Clone)]
pub struct Implementation {
    pub crates: Vec<Crate>,
    /// A Rust expression of type `Result<T, E>` or `T` (see `fallible`); it may name
    /// `boot_args` (when [`Implementation::boot_args`] says so) and the devices it
    /// [uses](Device::uses).
    pub constructor: String,
    /// Whether the constructor returns a `Result` (the generated line ends with `?`).
    pub fallible: bool,
    pub boot_args: BootArgs,
}

impl Implementation {
    /// A constructor from `uni_runtime` alone, infallible, reading no boot arguments.
    fn runtime(constructor: &str) -> Implementation {
        Implementation {
            crates: vec![Crate::Runtime],
            constructor: constructor.to_string(),
            fallible: false,
            boot_args: BootArgs::None,
        }
    }
}

/// Why a target cannot provide a device.
#[derive(Debug)]
pub struct Unsupported {
    pub reason: String,
    /// What the user can choose instead.
    pub accepted: String,
}

/// A file a device embeds: where it is, and how the config wrote it (so that generated code
/// can name it relative to itself and stay portable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedFile {
    /// Absolute.
    pub path: PathBuf,
    /// As written in the config: relative to the config's directory, or absolute.
    pub written: String,
}

impl EmbeddedFile {
    /// `include_bytes!` of the file. The generated `src/main.rs` sits at
    /// `<config dir>/_build/<target>/src/`, so a relative path stays relative (and the
    /// generated crate portable); an absolute one stays absolute.
    fn include(&self) -> String {
        let p = if std::path::Path::new(&self.written).is_absolute() {
            self.written.clone()
        } else {
            format!("../../../{}", self.written)
        };
        format!("include_bytes!({p:?})")
    }
}

/// A path the program opens at run time, as a Rust expression of type `&'static str`: as
/// written in the config when absolute, else relative to the config's directory, resolved when
/// the generated crate (at `<config dir>/_build/<target>/`) is compiled, so that the generated
/// source does not depend on where the checkout lies.
pub fn runtime_path(written: &str) -> String {
    if std::path::Path::new(written).is_absolute() {
        format!("{written:?}")
    } else {
        format!(
            "concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?})",
            format!("/../../{written}")
        )
    }
}

/// The type parameters a [`Kind::receives`] type names (`S` in `Tls<S>`; `S` and `C` in
/// `Server<Plain<S>, C>`): its one-letter capitals, in order of first appearance.
pub fn generics(ty: &str) -> Vec<&str> {
    let mut out: Vec<&str> = vec![];
    for word in ty.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.len() == 1
            && word.starts_with(|c: char| c.is_ascii_uppercase())
            && !out.contains(&word)
        {
            out.push(word);
        }
    }
    out
}

/// `Some("..")` or `None`, as Rust source.
fn opt_str(v: &Option<impl fmt::Display>) -> String {
    match v {
        Some(s) => format!("Some({:?})", s.to_string()),
        None => "None".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_takes_kind_first_and_unique_keys() {
        for k in KINDS {
            let keys = (k.keys)();
            assert_eq!(keys.first(), Some(&"kind"), "{}", k.name);
            let mut sorted = keys.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), keys.len(), "{}", k.name);
        }
    }

    #[test]
    fn type_parameters_of_what_start_receives() {
        assert_eq!(generics("Server<Plain<S>, C>"), ["S", "C"]);
        assert_eq!(generics("Tls<S>"), ["S"]);
        assert!(generics("impl KvRo").is_empty() && generics("BootArgs").is_empty());
    }

    #[test]
    fn names_are_unique_and_available_lists_follow_targets() {
        let mut names: Vec<_> = KINDS.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
        assert!(!available_on(Target::Unix).contains("xenstore"));
        assert!(available_on(Target::XenArm).contains("xenstore"));
        assert!(available_on(Target::XenArm).contains("block"));
        assert!(available_on(Target::Unix).contains("block"));
    }

    /// The reference and the fuzzer's dictionary know every kind: a new kind's module is not
    /// done until both name it.
    #[test]
    fn docs_and_fuzz_dictionary_name_every_kind_and_key() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let docs = std::fs::read_to_string(root.join("docs/unikernel-toml.md")).unwrap();
        let dict = std::fs::read_to_string(root.join("fuzz/config.dict")).unwrap();
        for k in KINDS {
            let header = format!("### `{}`: {}", k.name, k.summary);
            assert!(
                docs.contains(&header),
                "docs/unikernel-toml.md has no {header:?}"
            );
            let section = docs.split(&header).nth(1).unwrap();
            let section = section.split("\n### ").next().unwrap();
            for key in (k.keys)().iter().skip(1) {
                assert!(
                    section.contains(&format!("{key} =")) || section.contains(&format!("`{key}`")),
                    "docs/unikernel-toml.md's {} section does not describe `{key}`",
                    k.name
                );
            }
            let quoted = format!("\"\\\"{}\\\"\"", k.name);
            assert!(dict.contains(&quoted), "fuzz/config.dict has no {quoted}");
            for key in (k.keys)() {
                let entry = format!("\"{key} = \"");
                assert!(dict.contains(&entry), "fuzz/config.dict has no {entry}");
            }
        }
    }
}
