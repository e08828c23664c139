//! `kind = "net"`: a TCP/IP stack. Host sockets (unix only, its default), or smoltcp inside the
//! unikernel over the platform's network interface (netfront on Xen, where it is the default; a
//! TAP device on unix).

use std::net::Ipv4Addr;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{
    opt_str, BootArgs, BootKey, Crate, Device, Implementation, Kind, Resolver, Unsupported,
};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "net",
    summary: "a TCP/IP stack",
    receives: "impl Stack",
    targets: Target::ALL,
    elsewhere: ("", None),
    keys: serde_aux::serde_introspection::serde_introspect::<Keys>,
    resolve,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    stack: Option<Spanned<String>>,
    ipv4: Option<Spanned<String>>,
    gateway: Option<Spanned<String>>,
    mac: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
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

#[derive(Debug)]
struct Net {
    stack: Option<Stack>,
    ipv4: Option<Ipv4>,
    mac: Option<[u8; 6]>,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let stack = keys.stack.as_ref().and_then(|s| match s.get_ref().as_str() {
        "socket" => Some(Stack::Socket),
        "direct" => Some(Stack::Direct),
        other => {
            r.err(s.span(), "stack", format!("unknown network stack \"{other}\""), "unknown stack", "accepted: \"socket\" (host sockets, unix only), \"direct\" (smoltcp over the platform's network device)");
            None
        }
    });
    let ipv4 = keys.ipv4.as_ref().and_then(|v| {
        let s = v.get_ref();
        if s == "dhcp" {
            return Some(Ipv4::Dhcp);
        }
        match parse_cidr(s) {
            Ok(()) => Some(Ipv4::Static {
                cidr: s.clone(),
                gateway: None,
            }),
            Err(why) => {
                r.err(v.span(), "ipv4", format!("invalid IPv4 setting \"{s}\": {why}"), why, "accepted: \"dhcp\", or an address with a prefix length such as \"10.0.0.2/24\"");
                None
            }
        }
    });
    let ipv4 = match (ipv4, &keys.gateway) {
        (Some(Ipv4::Static { cidr, .. }), Some(g)) => {
            if g.get_ref().parse::<Ipv4Addr>().is_err() {
                r.err(
                    g.span(),
                    "gateway",
                    format!("invalid gateway \"{}\"", g.get_ref()),
                    "not an IPv4 address",
                    "an IPv4 address without prefix, such as \"10.0.0.1\"",
                );
            }
            Some(Ipv4::Static {
                cidr,
                gateway: Some(g.get_ref().clone()),
            })
        }
        (other, Some(g)) => {
            r.err(
                g.span(),
                "gateway",
                "a gateway needs a static address",
                "gateway without a static `ipv4`",
                "set `ipv4 = \"A.B.C.D/N\"` as well, or drop `gateway` (DHCP supplies one)",
            );
            other
        }
        (other, None) => other,
    };
    if let (Some(Ipv4::Dhcp), Some(Stack::Socket)) = (&ipv4, stack) {
        let span = keys
            .ipv4
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(r.table.clone());
        r.err(span, "ipv4", "DHCP needs the direct stack", "the socket stack uses the host's addresses", "with stack = \"socket\": omit `ipv4` or give a static address; or use stack = \"direct\"");
    }
    let mac = keys
        .mac
        .as_ref()
        .and_then(|m| match parse_mac(m.get_ref()) {
            Some(mac) => Some(mac),
            None => {
                r.err(
                    m.span(),
                    "mac",
                    format!("invalid MAC address \"{}\"", m.get_ref()),
                    "not a MAC address",
                    "six hex bytes separated by colons, such as \"00:16:3e:00:00:02\"",
                );
                None
            }
        });
    Some(Box::new(Net { stack, ipv4, mac }))
}

impl Device for Net {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(&self, name: &str, target: Target) -> Result<Implementation, Unsupported> {
        let default = match target {
            Target::Unix => Stack::Socket,
            Target::XenArm => Stack::Direct,
        };
        Ok(match (self.stack.unwrap_or(default), target) {
            (Stack::Socket, Target::Unix) => {
                let (addr, gw) = match &self.ipv4 {
                    Some(Ipv4::Static { cidr, gateway }) => (cidr.clone(), gateway.clone()),
                    None => ("0.0.0.0/0".to_string(), None),
                    Some(Ipv4::Dhcp) => unreachable!("resolve rejects dhcp with the socket stack"),
                };
                Implementation {
                    crates: vec![Crate::Runtime, Crate::Net],
                    constructor: format!(
                        "uni_net::socket::SocketStack::configure({name:?}, {addr:?}, {}, &boot_args)",
                        opt_str(&gw)
                    ),
                    fallible: true,
                    boot_args: BootArgs::Keys(address_keys(&addr, &gw)),
                }
            }
            (Stack::Socket, Target::XenArm) => {
                return Err(Unsupported {
                    reason: "stack = \"socket\" uses the host's sockets, which exist only on unix"
                        .into(),
                    accepted: "stack = \"direct\" (smoltcp over Xen netfront)".into(),
                })
            }
            (Stack::Direct, Target::Unix) => self.direct(
                name,
                "uni_runtime::platform::Netif::open(0, {mac}, &boot_args)?",
                true,
            ),
            (Stack::Direct, Target::XenArm) => self.direct(
                name,
                "uni_runtime::platform::Netif::open(0, {mac}, &boot_args).await?",
                false,
            ),
        })
    }

    fn vif(&self) -> Option<Option<[u8; 6]>> {
        Some(self.mac)
    }
}

impl Net {
    /// smoltcp inside the unikernel over the platform's network interface, built by `netif`
    /// (`{mac}` is replaced by the MAC option); `tap`: the interface is a TAP device, named by
    /// `--tap`. `name`: the device's, which the stack's errors name.
    fn direct(&self, name: &str, netif: &str, tap: bool) -> Implementation {
        let (addr, gw) = match &self.ipv4 {
            Some(Ipv4::Static { cidr, gateway }) => (cidr.clone(), gateway.clone()),
            None | Some(Ipv4::Dhcp) => ("dhcp".to_string(), None),
        };
        let mac = match self.mac {
            Some(m) => format!("Some({m:?})"),
            None => "None".into(),
        };
        Implementation {
            crates: vec![Crate::Runtime, Crate::Net],
            constructor: format!(
                "uni_net::direct::DirectStack::configure({name:?}, {}, uni_runtime::platform::Clock::new(), {addr:?}, {}, &boot_args, uni_runtime::platform::diag).await",
                netif.replace("{mac}", &mac),
                opt_str(&gw)
            ),
            fallible: true,
            boot_args: BootArgs::Keys(direct_keys(&addr, &gw, tap)),
        }
    }
}

/// `--ipv4` and `--ipv4-gateway`, over the configured address and gateway.
fn address_keys(addr: &str, gw: &Option<String>) -> Vec<BootKey> {
    vec![
        BootKey::new(
            "ipv4",
            "Ipv4Cidr",
            Some(addr.to_string()),
            "the stack's address and prefix length",
        ),
        BootKey::new(
            "ipv4-gateway",
            "Ipv4",
            gw.clone(),
            "the default gateway (with a static address)",
        ),
    ]
}

/// The direct stack's keys: the address, the TAP device's name (on unix), and the TCP
/// timeouts `uni_net::direct::TcpTimeouts` reads (with its defaults).
fn direct_keys(addr: &str, gw: &Option<String>, tap: bool) -> Vec<BootKey> {
    let mut keys = address_keys(addr, gw);
    if tap {
        keys.push(BootKey::new(
            "tap",
            "Text",
            Some("tap0".into()),
            "the host's TAP interface",
        ));
    }
    for (name, default, doc) in [
        (
            "tcp-keepalive",
            75,
            "how often an idle flow probes its peer",
        ),
        (
            "tcp-timeout",
            675,
            "how long a silent peer's flow lives before it is reset",
        ),
        (
            "tcp-fin-timeout",
            60,
            "how long a closed flow waits for its peer",
        ),
        ("tcp-syn-timeout", 63, "how long a handshake may take"),
    ] {
        keys.push(BootKey::new(
            name,
            "Seconds",
            Some(default.to_string()),
            doc,
        ));
    }
    keys
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults `--help` shows for the TCP timeouts are uni-net's
    /// (`TcpTimeouts::default` in libs/net/src/direct.rs, whose `from_boot_args` ties each key
    /// to its field), and the keys are the ones it reads.
    #[test]
    fn tcp_timeout_defaults_are_uni_nets() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let src = std::fs::read_to_string(root.join("libs/net/src/direct.rs")).unwrap();
        let between = |from: &str, to: &str| -> String {
            let rest = src
                .split(from)
                .nth(1)
                .unwrap_or_else(|| panic!("libs/net/src/direct.rs has no {from:?}"));
            rest.split(to).next().unwrap().to_string()
        };
        let defaults = between("fn default() -> TcpTimeouts {", "\n    }\n");
        let table = between("let mut t = TcpTimeouts::default();", "] {");
        let keys = direct_keys("dhcp", &None, false);
        let tcp: Vec<&BootKey> = keys.iter().filter(|k| k.name.starts_with("tcp-")).collect();
        assert_eq!(tcp.len(), table.matches("(\"tcp-").count());
        for k in tcp {
            let field = between(&format!("(\"{}\", &mut t.", k.name), ")");
            let want = format!(
                "{field}: Duration::from_secs({}),",
                k.default.as_deref().unwrap()
            );
            assert!(
                defaults.contains(&want),
                "--{} defaults to {:?} here, but uni-net's TcpTimeouts::default has no `{want}`",
                k.name,
                k.default
            );
            assert_eq!(k.ty, "Seconds");
        }
    }
}
