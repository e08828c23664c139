//! `kind = "dns"`: a stub resolver over the UDP of the net device it names.

use std::net::Ipv4Addr;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{
    opt_str, BootArgs, BootKey, Crate, Device, Implementation, Kind, Resolver, Unsupported,
};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "dns",
    summary: "a DNS resolver",
    receives: "impl Resolver",
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
    net: Option<Spanned<String>>,
    nameserver: Option<Spanned<String>>,
}

#[derive(Debug)]
struct Dns {
    net: String,
    nameserver: Option<Ipv4Addr>,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let net = r.reference("net", &keys.net);
    let nameserver = keys
        .nameserver
        .as_ref()
        .and_then(|n| match n.get_ref().parse() {
            Ok(a) => Some(a),
            Err(_) => {
                r.err(
                    n.span(),
                    "nameserver",
                    format!("invalid nameserver \"{}\"", n.get_ref()),
                    "not an IPv4 address",
                    "an IPv4 address such as \"9.9.9.9\"",
                );
                None
            }
        });
    Some(Box::new(Dns { net, nameserver }))
}

impl Device for Dns {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn uses(&self) -> Vec<&str> {
        vec![&self.net]
    }

    fn implement(&self, _name: &str, _target: Target) -> Result<Implementation, Unsupported> {
        Ok(Implementation {
            crates: vec![Crate::Runtime, Crate::Net],
            constructor: format!(
                "uni_net::dns::StubResolver::new({}.clone(), uni_runtime::platform::Clock::new(), {}, &boot_args)",
                self.net,
                opt_str(&self.nameserver)
            ),
            fallible: true,
            boot_args: BootArgs::Keys(vec![BootKey::new(
                "nameserver",
                "Ipv4Port",
                self.nameserver.map(|n| n.to_string()),
                "the DNS server, A.B.C.D or A.B.C.D:PORT",
            )]),
        })
    }
}
