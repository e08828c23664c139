//! `kind = "tls"`: TLS over a net device, with rustls. The net device's stack, a Fortuna
//! generator over the platform's entropy, the platform's clock, and the certificate files
//! embedded into the image.

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{BootArgs, Crate, Device, EmbeddedFile, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "tls",
    summary: "TLS over a net device",
    targets: Target::ALL,
    elsewhere: ("", None),
    keys: serde_aux::serde_introspection::serde_introspect::<Keys>,
    resolve,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Keys {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    net: Option<Spanned<String>>,
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
    client_ca: Option<Spanned<String>>,
    sni: Option<Spanned<Vec<Spanned<Sni>>>>,
    alpn: Option<Spanned<Vec<Spanned<String>>>>,
    resumption: Option<Spanned<bool>>,
    pins: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One entry of `sni = [...]`: the certificate for one server name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sni {
    name: Spanned<String>,
    cert: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Debug)]
struct Tls {
    net: String,
    /// The default certificate chain and key (both or neither).
    cert: Option<EmbeddedFile>,
    key: Option<EmbeddedFile>,
    /// Trust anchors for outgoing connections.
    ca: Option<EmbeddedFile>,
    /// CAs for client certificates; set = client authentication required.
    client_ca: Option<EmbeddedFile>,
    /// (server name, cert, key), chosen by SNI.
    sni: Vec<(String, EmbeddedFile, EmbeddedFile)>,
    alpn: Vec<String>,
    resumption: bool,
    /// SHA-256 fingerprints (hex, no separators) of servers to trust without a CA.
    pins: Vec<String>,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let net = r.reference("net", &keys.net);
    let cert = r.embedded("cert", &keys.cert);
    let key = r.embedded("key", &keys.key);
    let ca = r.embedded("ca", &keys.ca);
    let client_ca = r.embedded("client-ca", &keys.client_ca);
    match (&keys.cert, &keys.key) {
        (Some(c), None) => r.err(c.span(), "cert", "`cert` without `key`", "needs a `key` too", "`key`: the path of the certificate's private key (PEM: PKCS#8 or SEC1; ECDSA P-256/P-384 or Ed25519)"),
        (None, Some(k)) => r.err(
            k.span(),
            "key",
            "`key` without `cert`",
            "needs a `cert` too",
            "`cert`: the path of the certificate chain (PEM, end entity first)",
        ),
        _ => {}
    }
    let mut sni = vec![];
    for e in keys
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
            r.err(
                e.name.span(),
                "sni.name",
                format!("invalid server name \"{name}\""),
                "not a DNS name",
                "a DNS name such as \"www.example.com\", or a wildcard such as \"*.example.com\"",
            );
        }
        let c = r.embedded("sni.cert", &Some(e.cert.clone()));
        let k = r.embedded("sni.key", &Some(e.key.clone()));
        if let (Some(c), Some(k)) = (c, k) {
            sni.push((name.clone(), c, k));
        }
    }
    let mut alpn = vec![];
    for a in keys
        .alpn
        .as_ref()
        .map(|a| a.get_ref().as_slice())
        .unwrap_or_default()
    {
        let s = a.get_ref();
        if s.is_empty() || s.len() > 255 {
            r.err(
                a.span(),
                "alpn",
                format!("invalid ALPN protocol \"{s}\""),
                "empty or too long",
                "protocol names of 1 to 255 bytes, such as \"h2\" or \"http/1.1\"",
            );
        }
        alpn.push(s.clone());
    }
    let mut pins = vec![];
    for p in keys
        .pins
        .as_ref()
        .map(|p| p.get_ref().as_slice())
        .unwrap_or_default()
    {
        let s = p.get_ref();
        let hex: String = s.chars().filter(|c| *c != ':').collect();
        let wrong = if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Some("not hexadecimal".to_string())
        } else if hex.len() != 64 {
            Some(format!(
                "{} hex digits ({} bytes), not 64 (32 bytes)",
                hex.len(),
                hex.len() / 2
            ))
        } else {
            None
        };
        match wrong {
            Some(label) => r.err(
                p.span(),
                "pins",
                format!("invalid pin \"{s}\""),
                label,
                "the SHA-256 fingerprint of the server's certificate: 64 hex digits, `:` separators allowed, as `openssl x509 -noout -fingerprint -sha256` prints it",
            ),
            None => pins.push(hex.to_ascii_lowercase()),
        }
    }
    if cert.is_none() && sni.is_empty() && ca.is_none() && keys.pins.is_none() {
        r.err(r.table.clone(), "", "a tls device needs a certificate to serve, or a `ca` or `pins` to connect", "neither `cert`/`key`, `sni`, `ca` nor `pins`", "`cert` and `key` (to serve), `sni` entries (certificates by name), and/or `ca` (trust anchors for connecting) or `pins` (server certificate fingerprints)");
    }
    let resumption = keys
        .resumption
        .as_ref()
        .map(|r| *r.get_ref())
        .unwrap_or(true);
    Some(Box::new(Tls {
        net,
        cert,
        key,
        ca,
        client_ca,
        sni,
        alpn,
        resumption,
        pins,
    }))
}

fn include_opt(f: &Option<EmbeddedFile>) -> String {
    match f {
        Some(f) => format!("Some({})", f.include()),
        None => "None".into(),
    }
}

impl Device for Tls {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn uses(&self) -> Vec<&str> {
        vec![&self.net]
    }

    fn implement(&self, _name: &str, _target: Target) -> Result<Implementation, Unsupported> {
        let sni: Vec<String> = self
            .sni
            .iter()
            .map(|(name, cert, key)| {
                format!(
                    "uni_tls::SniFiles {{ name: {name:?}, cert: {}, key: {} }}",
                    cert.include(),
                    key.include()
                )
            })
            .collect();
        let alpn: Vec<String> = self.alpn.iter().map(|a| format!("{a:?}")).collect();
        let files = format!(
            "uni_tls::Files {{ cert: {}, key: {}, sni: &[{}], alpn: &[{}], client_ca: {}, ca: {}, resumption: {} }}",
            include_opt(&self.cert),
            include_opt(&self.key),
            sni.join(", "),
            alpn.join(", "),
            include_opt(&self.client_ca),
            include_opt(&self.ca),
            self.resumption
        );
        let mut constructor = format!(
            "uni_tls::Tls::new({}.clone(), uni_runtime::platform::Random::new(), uni_runtime::platform::Clock::new(), &{files})",
            self.net
        );
        if !self.pins.is_empty() {
            let pins: Vec<String> = self.pins.iter().map(|p| format!("{p:?}")).collect();
            constructor = format!(
                "{constructor}.and_then(|t| t.with_pins(&[{}]))",
                pins.join(", ")
            );
        }
        Ok(Implementation {
            crates: vec![Crate::Runtime, Crate::Tls],
            constructor,
            fallible: true,
            boot_args: BootArgs::None,
        })
    }
}
