//! `kind = "http"`: an HTTP server on `port` (or `--<name>-port=N` at boot, MirageOS's
//! `--https-port`): over the tls device when it names one, else in the clear over the net
//! device. The app gives it a handler and calls `serve`.

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{BootArgs, BootKey, Crate, Device, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "http",
    summary: "an HTTP server",
    receives: "Server<Plain<S>, C>",
    targets: Target::ALL,
    elsewhere: ("", None),
    keys: serde_aux::serde_introspection::serde_introspect::<Keys>,
    resolve,
};

/// What `start` receives for an http device over a tls device (plain: [`KIND`]'s).
pub const OVER_TLS: &str = "Server<Tls<S>, C>";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    net: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
}

#[derive(Debug)]
struct Http {
    net: String,
    tls: Option<String>,
    port: u16,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let net = r.reference("net", &keys.net);
    let tls = keys
        .tls
        .as_ref()
        .map(|t| r.reference("tls", &Some(t.clone())));
    let port = match &keys.port {
        None if tls.is_some() => 443,
        None => 80,
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(p) if p > 0 => p,
            _ => {
                r.err(
                    p.span(),
                    "port",
                    format!("port {} is out of range", p.get_ref()),
                    "not a TCP port",
                    "an integer from 1 to 65535",
                );
                0
            }
        },
    };
    Some(Box::new(Http { net, tls, port }))
}

impl Device for Http {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn receives(&self) -> &'static str {
        match self.tls {
            Some(_) => OVER_TLS,
            None => KIND.receives,
        }
    }

    fn uses(&self) -> Vec<&str> {
        let mut v = vec![self.net.as_str()];
        v.extend(self.tls.as_deref());
        v
    }

    fn implement(&self, name: &str, _target: Target) -> Result<Implementation, Unsupported> {
        let port_arg = format!("{name}-port");
        let (transport, source) = match &self.tls {
            Some(tls) => ("tls", tls.as_str()),
            None => ("plain", self.net.as_str()),
        };
        Ok(Implementation {
            crates: vec![Crate::Runtime, Crate::Http],
            constructor: format!(
                "uni_http::Server::{transport}({source}.clone(), uni_runtime::platform::Clock::new(), boot_args.get_or({port_arg:?}, {})?).named({name:?})",
                self.port
            ),
            fallible: false,
            boot_args: BootArgs::Keys(vec![BootKey::new(
                port_arg,
                "Port",
                Some(self.port.to_string()),
                "the port the HTTP server listens on",
            )]),
        })
    }
}
