//! Layer 1: the file model. Serde structs mirroring `unikernel.toml` schema 1, with spans kept
//! so that later checks can point at the offending value. Nothing here is validated beyond
//! types; see [`super::resolve`].

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub unikernel: Spanned<Unikernel>,
    #[serde(default)]
    pub devices: IndexMap<Spanned<String>, Spanned<DeviceHead>>,
    pub xen: Option<Spanned<Xen>>,
    pub deploy: Option<Spanned<Deploy>>,
    pub trace: Option<Spanned<Trace>>,
}

/// `[unikernel]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Unikernel {
    pub schema: Spanned<i64>,
    pub name: Spanned<String>,
    pub app: Option<Spanned<String>>,
    pub entry: Option<Spanned<String>>,
    pub target: Option<Spanned<String>>,
    pub board: Option<Spanned<String>>,
    pub boot_args: Option<Spanned<String>>,
}

/// `[devices.<name>]`: one table per device. Only `kind` is read here; the kind's own module
/// (see [`crate::devices`]) reads the rest of the table, with its own keys.
#[derive(Debug, Deserialize)]
pub struct DeviceHead {
    pub kind: Spanned<String>,
}

/// `[xen]`: settings for the xen-arm target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Xen {
    pub memory: Option<Spanned<i64>>,
    pub vcpus: Option<Spanned<i64>>,
    pub bridge: Option<Spanned<String>>,
    pub extra: Option<Spanned<String>>,
    pub on_crash: Option<Spanned<String>>,
}

/// `[deploy]`: where `uni deploy`, `ps`, `stop` and `logs` go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Deploy {
    pub host: Option<Spanned<String>>,
    pub dir: Option<Spanned<String>>,
}

/// `[trace]`: build with event tracing (docs/tracing.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Trace {
    pub events: Option<Spanned<i64>>,
}
