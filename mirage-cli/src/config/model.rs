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
    pub devices: IndexMap<Spanned<String>, Spanned<DeviceDecl>>,
    pub xen: Option<Spanned<Xen>>,
    pub deploy: Option<Spanned<Deploy>>,
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

/// `[devices.<name>]`: one table per device. `kind` says which keys apply; the union of all
/// kinds' keys is accepted here and [`super::resolve`] rejects those the kind does not take.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceDecl {
    pub kind: Spanned<String>,
    // net
    pub stack: Option<Spanned<String>>,
    pub ipv4: Option<Spanned<String>>,
    pub gateway: Option<Spanned<String>>,
    pub mac: Option<Spanned<String>>,
    // kv_ro
    pub dir: Option<Spanned<String>>,
    // block
    pub file: Option<Spanned<String>>,
    // tls
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub ca: Option<Spanned<String>>,
    pub client_ca: Option<Spanned<String>>,
    pub sni: Option<Spanned<Vec<Spanned<SniDecl>>>>,
    pub alpn: Option<Spanned<Vec<Spanned<String>>>>,
    pub resumption: Option<Spanned<bool>>,
    // tls, http, dns: the devices they run over
    pub net: Option<Spanned<String>>,
    pub tls: Option<Spanned<String>>,
    // http
    pub port: Option<Spanned<i64>>,
    // dns
    pub nameserver: Option<Spanned<String>>,
}

/// One entry of a tls device's `sni = [...]`: the certificate for one server name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniDecl {
    pub name: Spanned<String>,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
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
