//! `unikernel.toml`, in three layers: the file model ([`model`]), the resolved config (this
//! module, validated), and the template context ([`crate::generate`]).

pub mod diag;
pub mod model;
mod resolve;

pub use diag::{Diagnostic, Diagnostics, Source};
pub use resolve::{check_deploy_dir, load, load_str};

use std::ops::Range;
use std::path::PathBuf;

use crate::target::Target;

/// A validated `unikernel.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file, as given.
    pub file: PathBuf,
    /// Its directory (absolute); relative paths in the file resolve against it.
    pub dir: PathBuf,
    pub source: Source,
    pub name: String,
    /// The app crate's directory (absolute).
    pub app_dir: PathBuf,
    /// The app's entry point function, inside the app crate.
    pub entry: String,
    pub target: Option<Target>,
    pub board: Option<String>,
    pub board_span: Range<usize>,
    /// Compiled-in default boot arguments.
    pub boot_args: String,
    pub devices: Vec<DeviceConfig>,
    pub xen: XenConfig,
    pub deploy: DeployConfig,
}

/// One `[devices.<name>]` table.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub name: String,
    pub kind_span: Range<usize>,
    pub spec: DeviceSpec,
}

impl DeviceConfig {
    pub fn key(&self) -> String {
        format!("devices.{}", self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetStack {
    Socket,
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4 {
    Dhcp,
    Static {
        cidr: String,
        gateway: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub enum DeviceSpec {
    Console,
    Clock,
    Random,
    Args,
    Net {
        stack: Option<NetStack>,
        ipv4: Option<Ipv4>,
        mac: Option<[u8; 6]>,
    },
    KvRo {
        dir: PathBuf,
    },
    Block {
        file: PathBuf,
    },
    Tls(TlsSpec),
    Http {
        net: String,
        tls: Option<String>,
        port: u16,
    },
    Dns {
        net: String,
        nameserver: Option<std::net::Ipv4Addr>,
    },
    Xenstore,
}

impl DeviceSpec {
    /// Other devices this one is declared to run over.
    pub fn references(&self) -> Vec<&str> {
        match self {
            DeviceSpec::Tls(TlsSpec { net, .. }) | DeviceSpec::Dns { net, .. } => vec![net],
            DeviceSpec::Http { net, tls, .. } => {
                let mut v = vec![net.as_str()];
                v.extend(tls.as_deref());
                v
            }
            _ => vec![],
        }
    }
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

/// A `kind = "tls"` device.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub net: String,
    /// The default certificate chain and key (both or neither).
    pub cert: Option<EmbeddedFile>,
    pub key: Option<EmbeddedFile>,
    /// Trust anchors for outgoing connections.
    pub ca: Option<EmbeddedFile>,
    /// CAs for client certificates; set = client authentication required.
    pub client_ca: Option<EmbeddedFile>,
    /// (server name, cert, key), chosen by SNI.
    pub sni: Vec<(String, EmbeddedFile, EmbeddedFile)>,
    pub alpn: Vec<String>,
    pub resumption: bool,
}

/// `[xen]`, with defaults filled in from the board where the file is silent.
#[derive(Debug, Clone, Default)]
pub struct XenConfig {
    pub memory: Option<u32>,
    pub vcpus: Option<u32>,
    pub bridge: Option<String>,
    pub extra: String,
    pub on_crash: Option<String>,
}

/// `[deploy]`; the command line's `--host` and `--dir` win over it.
#[derive(Debug, Clone, Default)]
pub struct DeployConfig {
    pub host: Option<crate::remote::HostSpec>,
    /// Absolute, in dom0.
    pub dir: Option<String>,
}

impl DeviceConfig {
    /// The kind's name, as written in the file.
    pub fn spec_kind(&self) -> &'static str {
        match self.spec {
            DeviceSpec::Console => "console",
            DeviceSpec::Clock => "clock",
            DeviceSpec::Random => "random",
            DeviceSpec::Args => "args",
            DeviceSpec::Net { .. } => "net",
            DeviceSpec::KvRo { .. } => "kv_ro",
            DeviceSpec::Block { .. } => "block",
            DeviceSpec::Tls(_) => "tls",
            DeviceSpec::Http { .. } => "http",
            DeviceSpec::Dns { .. } => "dns",
            DeviceSpec::Xenstore => "xenstore",
        }
    }
}
