//! The device kinds, functoria-style. Each kind declares the keys it takes in
//! `unikernel.toml` and, per target, [`Implementation`]: the crates it needs, its one-line
//! constructor, the devices it depends on, and the boot arguments it reads.

use crate::config::{DeviceConfig, DeviceSpec, EmbeddedFile, Ipv4, NetStack, TlsSpec};
use crate::target::Target;

/// A device kind as the config file sees it.
pub struct Kind {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub summary: &'static str,
}

/// Every kind schema 1 knows, in documentation order.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "console",
        keys: &["kind"],
        summary: "text output",
    },
    Kind {
        name: "clock",
        keys: &["kind"],
        summary: "monotonic and wall clocks, sleeping",
    },
    Kind {
        name: "random",
        keys: &["kind"],
        summary: "cryptographically secure random bytes",
    },
    Kind {
        name: "args",
        keys: &["kind"],
        summary: "the boot arguments, for the app's own keys",
    },
    Kind {
        name: "net",
        keys: &["kind", "stack", "ipv4", "gateway", "mac"],
        summary: "a TCP/IP stack",
    },
    Kind {
        name: "kv_ro",
        keys: &["kind", "dir"],
        summary: "a directory embedded into the image",
    },
    Kind {
        name: "block",
        keys: &["kind", "file"],
        summary: "a block device",
    },
    Kind {
        name: "tls",
        keys: &[
            "kind",
            "net",
            "cert",
            "key",
            "ca",
            "client-ca",
            "sni",
            "alpn",
            "resumption",
        ],
        summary: "TLS over a net device",
    },
    Kind {
        name: "http",
        keys: &["kind", "net", "tls", "port"],
        summary: "an HTTP server",
    },
    Kind {
        name: "dns",
        keys: &["kind", "net", "nameserver"],
        summary: "a DNS resolver",
    },
    Kind {
        name: "xenstore",
        keys: &["kind"],
        summary: "the Xen store (xen-arm only)",
    },
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

/// A crate the generated main depends on: a package of the uni workspace or the app itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Crate {
    Runtime,
    Net,
    Crypto,
    Tls,
    Http,
}

impl Crate {
    pub fn package(&self) -> &'static str {
        match self {
            Crate::Runtime => "uni-runtime",
            Crate::Net => "uni-net",
            Crate::Crypto => "uni-crypto",
            Crate::Tls => "uni-tls",
            Crate::Http => "uni-http",
        }
    }
}

/// How one device is provided on one target.
#[derive(Debug, Clone)]
pub struct Implementation {
    pub crates: Vec<Crate>,
    /// A Rust expression of type `Result<T, E>` or `T` (see `fallible`); it may name
    /// `boot_args` and the devices in `deps`.
    pub constructor: String,
    /// Whether the constructor returns a `Result` (the generated line ends with `?`).
    pub fallible: bool,
    pub deps: Vec<String>,
    pub boot_args: Vec<String>,
}

/// Why a target cannot provide a device.
#[derive(Debug)]
pub struct Unsupported {
    pub reason: String,
    /// What the user can choose instead.
    pub accepted: String,
}

fn simple(constructor: &str) -> Implementation {
    Implementation {
        crates: vec![Crate::Runtime],
        constructor: constructor.to_string(),
        fallible: false,
        deps: vec![],
        boot_args: vec![],
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn not_yet(what: &str, issue: &str, accepted: &str) -> Unsupported {
    Unsupported {
        reason: format!("{what} is not implemented yet ({issue})"),
        accepted: accepted.into(),
    }
}

/// The implementation of `dev` on `target`. Devices every platform provides the same way are
/// written once; the platform's own types all live under `uni_runtime::platform`.
pub fn implement(dev: &DeviceConfig, target: Target) -> Result<Implementation, Unsupported> {
    let available = match target {
        Target::Unix => "console, clock, random, args, net, kv_ro, tls, http, dns",
        Target::XenArm => "console, clock, random, args, xenstore, net, kv_ro, tls, http, dns",
    };
    Ok(match &dev.spec {
        DeviceSpec::Console => simple("uni_runtime::platform::Console::new()"),
        DeviceSpec::Clock => simple("uni_runtime::platform::Clock::new()"),
        DeviceSpec::Args => simple("boot_args.clone()"),
        // Fortuna over the platform's entropy: the OS on unix; counter jitter, event timing and
        // `--uni-seed` on Xen.
        DeviceSpec::Random => Implementation {
            crates: vec![Crate::Runtime, Crate::Crypto],
            constructor: "uni_crypto::Rng::from_device(uni_runtime::platform::Random::new(), uni_runtime::platform::Clock::new())".into(),
            fallible: true,
            deps: vec![],
            boot_args: vec![],
        },
        DeviceSpec::Tls(tls) => tls_unix(tls),
        DeviceSpec::Dns { net, nameserver } => dns_resolver(net, nameserver),
        DeviceSpec::Net { stack, ipv4, mac } => net(target, *stack, ipv4, mac)?,
        DeviceSpec::Xenstore => match target {
            Target::XenArm => simple("uni_runtime::platform::Xenstore::new()"),
            Target::Unix => {
                return Err(Unsupported {
                    reason: "the Xen store exists only on Xen".into(),
                    accepted: "target xen-arm for this device".into(),
                })
            }
        },
        // The directory, packed by `uni configure` into `_build/<target>/kv/<name>.kv`; the
        // store borrows the values from the image.
        DeviceSpec::KvRo { .. } => Implementation {
            crates: vec![Crate::Runtime],
            constructor: format!("uni_runtime::kv::Embedded::new(include_bytes!(\"../{}\"))", kv_pack_path(&dev.name)),
            fallible: true,
            deps: vec![],
            boot_args: vec![],
        },
        DeviceSpec::Block { .. } => {
            return Err(not_yet("the block device", "declared in schema 1, no target has it yet", available))
        }
        DeviceSpec::Http { net, tls, port } => http_server(&dev.name, net, tls, *port),
    })
}

/// Where the pack of kv_ro device `name` goes, relative to `_build/<target>/`.
pub fn kv_pack_path(name: &str) -> String {
    format!("kv/{name}.kv")
}

/// A net device: host sockets (unix only, its default) or smoltcp over the platform's network
/// interface (netfront on Xen, where it is the default; a TAP device on unix).
fn net(
    target: Target,
    stack: Option<NetStack>,
    ipv4: &Option<Ipv4>,
    mac: &Option<[u8; 6]>,
) -> Result<Implementation, Unsupported> {
    let default = match target {
        Target::Unix => NetStack::Socket,
        Target::XenArm => NetStack::Direct,
    };
    Ok(match (stack.unwrap_or(default), target) {
        (NetStack::Socket, Target::Unix) => {
            let (addr, gw) = match ipv4 {
                Some(Ipv4::Static { cidr, gateway }) => (cidr.clone(), gateway.clone()),
                None => ("0.0.0.0/0".to_string(), None),
                Some(Ipv4::Dhcp) => unreachable!("resolve rejects dhcp with the socket stack"),
            };
            Implementation {
                crates: vec![Crate::Runtime, Crate::Net],
                constructor: format!(
                    "uni_net::socket::SocketStack::configure({addr:?}, {}, &boot_args)",
                    opt_str(&gw)
                ),
                fallible: true,
                deps: vec![],
                boot_args: strings(&["ipv4", "ipv4-gateway"]),
            }
        }
        (NetStack::Socket, Target::XenArm) => {
            return Err(Unsupported {
                reason: "stack = \"socket\" uses the host's sockets, which exist only on unix"
                    .into(),
                accepted: "stack = \"direct\" (smoltcp over Xen netfront)".into(),
            })
        }
        (NetStack::Direct, Target::Unix) => direct_stack(
            ipv4,
            mac,
            "uni_runtime::platform::Netif::open(0, {mac}, &boot_args)?",
            &["ipv4", "ipv4-gateway", "tap"],
        ),
        (NetStack::Direct, Target::XenArm) => direct_stack(
            ipv4,
            mac,
            "uni_runtime::platform::Netif::open(0, {mac}, &boot_args).await?",
            &["ipv4", "ipv4-gateway"],
        ),
    })
}

fn opt_str(v: &Option<String>) -> String {
    match v {
        Some(g) => format!("Some({g:?})"),
        None => "None".into(),
    }
}

/// smoltcp inside the unikernel over the platform's network interface, built by `netif`
/// (`{mac}` is replaced by the MAC option).
fn direct_stack(
    ipv4: &Option<Ipv4>,
    mac: &Option<[u8; 6]>,
    netif: &str,
    boot_args: &[&str],
) -> Implementation {
    let (addr, gw) = match ipv4 {
        Some(Ipv4::Static { cidr, gateway }) => (cidr.clone(), gateway.clone()),
        None | Some(Ipv4::Dhcp) => ("dhcp".to_string(), None),
    };
    let mac = match mac {
        Some(m) => format!("Some({m:?})"),
        None => "None".into(),
    };
    Implementation {
        crates: vec![Crate::Runtime, Crate::Net],
        constructor: format!(
            "uni_net::direct::DirectStack::configure({}, uni_runtime::platform::Clock::new(), {addr:?}, {}, &boot_args, uni_runtime::platform::diag).await",
            netif.replace("{mac}", &mac),
            opt_str(&gw)
        ),
        fallible: true,
        deps: vec![],
        boot_args: strings(boot_args),
    }
}

/// An HTTP server on `port` (or `--<name>-port=N` at boot, MirageOS's `--https-port`): over the
/// tls device when it names one, else in the clear over the net device. The app gives it a
/// handler and calls `serve`.
fn http_server(name: &str, net: &str, tls: &Option<String>, port: u16) -> Implementation {
    let port_arg = format!("{name}-port");
    let (transport, source) = match tls {
        Some(tls) => ("tls", tls.as_str()),
        None => ("plain", net),
    };
    Implementation {
        crates: vec![Crate::Runtime, Crate::Http],
        constructor: format!(
            "uni_http::Server::{transport}({source}.clone(), uni_runtime::platform::Clock::new(), boot_args.get_or({port_arg:?}, {port})?)"
        ),
        fallible: false,
        deps: vec![source.to_string()],
        boot_args: vec![port_arg],
    }
}

/// A stub resolver over the UDP of the `net` device it names.
fn dns_resolver(net: &str, nameserver: &Option<std::net::Ipv4Addr>) -> Implementation {
    let ns = match nameserver {
        Some(ip) => format!("Some(\"{ip}\")"),
        None => "None".into(),
    };
    Implementation {
        crates: vec![Crate::Runtime, Crate::Net],
        constructor: format!(
            "uni_net::dns::StubResolver::new({net}.clone(), uni_runtime::platform::Clock::new(), {ns}, &boot_args)"
        ),
        fallible: true,
        deps: vec![net.to_string()],
        boot_args: strings(&["nameserver"]),
    }
}

/// `include_bytes!` of a file the config names. The generated `src/main.rs` sits at
/// `<config dir>/_build/<target>/src/`, so a relative path stays relative (and the generated
/// crate portable); an absolute one stays absolute.
fn embed(f: &EmbeddedFile) -> String {
    let p = if std::path::Path::new(&f.written).is_absolute() {
        f.written.clone()
    } else {
        format!("../../../{}", f.written)
    };
    format!("include_bytes!({p:?})")
}

fn embed_opt(f: &Option<EmbeddedFile>) -> String {
    match f {
        Some(f) => format!("Some({})", embed(f)),
        None => "None".into(),
    }
}

/// A tls device on unix: the net device's stack, a Fortuna generator seeded from the OS, the
/// host's clock, and the certificate files embedded into the program.
fn tls_unix(t: &TlsSpec) -> Implementation {
    let sni: Vec<String> = t
        .sni
        .iter()
        .map(|(name, cert, key)| {
            format!(
                "uni_tls::SniFiles {{ name: {name:?}, cert: {}, key: {} }}",
                embed(cert),
                embed(key)
            )
        })
        .collect();
    let alpn: Vec<String> = t.alpn.iter().map(|a| format!("{a:?}")).collect();
    let files = format!(
        "uni_tls::Files {{ cert: {}, key: {}, sni: &[{}], alpn: &[{}], client_ca: {}, ca: {}, resumption: {} }}",
        embed_opt(&t.cert),
        embed_opt(&t.key),
        sni.join(", "),
        alpn.join(", "),
        embed_opt(&t.client_ca),
        embed_opt(&t.ca),
        t.resumption
    );
    Implementation {
        crates: vec![Crate::Runtime, Crate::Tls],
        constructor: format!(
            "uni_tls::Tls::new({}.clone(), uni_runtime::platform::Random::new(), uni_runtime::platform::Clock::new(), &{files})",
            t.net
        ),
        fallible: true,
        deps: vec![t.net.clone()],
        boot_args: vec![],
    }
}
