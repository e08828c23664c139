//! `kind = "tls"`: TLS over a net device, with rustls. The net device's stack, a Fortuna
//! generator over the platform's entropy, the platform's clock, and the certificate files
//! embedded into the image.

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{
    quoted, BootArgs, Crate, Device, EmbeddedFile, Implementation, Kind, Resolver, Unsupported,
};
use crate::target::Target;

mod check;
mod fixed;

pub const KIND: Kind = Kind {
    name: "tls",
    summary: "TLS over a net device",
    receives: "Tls<S>",
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
    versions: Option<Spanned<Vec<Spanned<String>>>>,
    cipher_suites: Option<Spanned<Vec<Spanned<String>>>>,
    kx_groups: Option<Spanned<Vec<Spanned<String>>>>,
    signature_schemes: Option<Spanned<Vec<Spanned<String>>>>,
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
    /// What the provider offers (`versions`, `cipher-suites`, `kx-groups`,
    /// `signature-schemes`); `None` when no key names it: everything.
    narrow: Option<Narrow>,
}

/// The protocol versions and algorithms a `tls` device names, each in preference order.
#[derive(Debug)]
struct Narrow {
    versions: Vec<&'static Version>,
    suites: Vec<&'static Suite>,
    groups: Vec<&'static Group>,
    schemes: Vec<&'static Scheme>,
}

/// A protocol version, as rustls names it.
#[derive(Debug)]
struct Version {
    name: &'static str,
    tls12: bool,
}

const VERSIONS: &[Version] = &[
    Version {
        name: "TLSv1_3",
        tls12: false,
    },
    Version {
        name: "TLSv1_2",
        tls12: true,
    },
];

/// A cipher suite, as rustls names it: its version, and for TLS 1.2 the key type that signs.
#[derive(Debug)]
struct Suite {
    name: &'static str,
    tls12: bool,
    rsa: bool,
}

const fn suite(name: &'static str, tls12: bool, rsa: bool) -> Suite {
    Suite { name, tls12, rsa }
}

const SUITES: &[Suite] = &[
    suite("TLS13_AES_128_GCM_SHA256", false, false),
    suite("TLS13_AES_256_GCM_SHA384", false, false),
    suite("TLS13_CHACHA20_POLY1305_SHA256", false, false),
    suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", true, false),
    suite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", true, false),
    suite("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", true, false),
    suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true, true),
    suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", true, true),
    suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", true, true),
];

/// A key-exchange group, as rustls names it: uni-crypto's constructor, and the feature it needs.
#[derive(Debug)]
struct Group {
    name: &'static str,
    constructor: &'static str,
    feature: Option<&'static str>,
}

const GROUPS: &[Group] = &[
    Group {
        name: "X25519",
        constructor: "x25519",
        feature: None,
    },
    Group {
        name: "secp256r1",
        constructor: "p256",
        feature: None,
    },
    Group {
        name: "secp384r1",
        constructor: "p384",
        feature: Some("p384"),
    },
];

/// A signature scheme, as rustls names it, and the feature it needs.
#[derive(Debug)]
struct Scheme {
    name: &'static str,
    feature: Option<&'static str>,
}

const fn scheme(name: &'static str, feature: Option<&'static str>) -> Scheme {
    Scheme { name, feature }
}

const SCHEMES: &[Scheme] = &[
    scheme("ECDSA_NISTP256_SHA256", None),
    scheme("ECDSA_NISTP384_SHA384", Some("p384")),
    scheme("ED25519", Some("ed25519")),
    scheme("RSA_PSS_SHA512", Some("rsa")),
    scheme("RSA_PSS_SHA384", Some("rsa")),
    scheme("RSA_PSS_SHA256", Some("rsa")),
    scheme("RSA_PKCS1_SHA512", Some("rsa")),
    scheme("RSA_PKCS1_SHA384", Some("rsa")),
    scheme("RSA_PKCS1_SHA256", Some("rsa")),
];

/// What a list key's entry names: one of `table`, by `name`.
trait Named: 'static {
    fn name(&self) -> &'static str;
}

impl Named for Version {
    fn name(&self) -> &'static str {
        self.name
    }
}
impl Named for Suite {
    fn name(&self) -> &'static str {
        self.name
    }
}
impl Named for Group {
    fn name(&self) -> &'static str {
        self.name
    }
}
impl Named for Scheme {
    fn name(&self) -> &'static str {
        self.name
    }
}

type List = Option<Spanned<Vec<Spanned<String>>>>;

/// A list key naming entries of `table`: each unknown or repeated one is an error at its span,
/// and so is an empty list. Returns the entries with their spans (`None`: the key is absent).
fn names<T: Named>(
    r: &mut Resolver<'_>,
    k: &str,
    v: &List,
    table: &'static [T],
) -> Option<Vec<(&'static T, std::ops::Range<usize>)>> {
    let v = v.as_ref()?;
    let accepted = table
        .iter()
        .map(|t| format!("\"{}\"", t.name()))
        .collect::<Vec<_>>()
        .join(", ");
    if v.get_ref().is_empty() {
        r.err(
            v.span(),
            k,
            format!("`{k}` is empty"),
            "names nothing",
            format!("one or more of {accepted}"),
        );
        return Some(vec![]);
    }
    let mut out: Vec<(&'static T, std::ops::Range<usize>)> = vec![];
    for e in v.get_ref() {
        let name = e.get_ref();
        match table.iter().find(|t| t.name() == name) {
            None => r.err(
                e.span(),
                k,
                format!("unknown value \"{name}\""),
                "not one uni offers",
                format!("one or more of {accepted}"),
            ),
            Some(t) if out.iter().any(|(o, _)| o.name() == t.name()) => r.err(
                e.span(),
                k,
                format!("\"{name}\" is named twice"),
                "repeated",
                format!("each of {accepted} at most once"),
            ),
            Some(t) => out.push((t, e.span())),
        }
    }
    Some(out)
}

/// The key a certificate's public key is, as far as signature schemes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    P256,
    P384,
    Ed25519,
    Rsa,
    Other,
}

impl KeyType {
    fn describe(self) -> &'static str {
        match self {
            KeyType::P256 => "an ECDSA P-256 key",
            KeyType::P384 => "an ECDSA P-384 key",
            KeyType::Ed25519 => "an Ed25519 key",
            KeyType::Rsa => "an RSA key",
            KeyType::Other => "a key of another type",
        }
    }

    /// The schemes that verify (or make) its signatures; any one will do.
    fn schemes(self) -> &'static [&'static str] {
        match self {
            KeyType::P256 => &["ECDSA_NISTP256_SHA256"],
            KeyType::P384 => &["ECDSA_NISTP384_SHA384"],
            KeyType::Ed25519 => &["ED25519"],
            KeyType::Rsa => &[
                "RSA_PSS_SHA512",
                "RSA_PSS_SHA384",
                "RSA_PSS_SHA256",
                "RSA_PKCS1_SHA512",
                "RSA_PKCS1_SHA384",
                "RSA_PKCS1_SHA256",
            ],
            KeyType::Other => &[],
        }
    }
}

/// The key types of the certificates in a PEM file, in order; `None` when it does not parse
/// (the device reports that when it loads the file at boot, as it always has).
fn key_types(path: &std::path::Path) -> Option<Vec<KeyType>> {
    use x509_cert::der::asn1::ObjectIdentifier as Oid;
    let pem = check::read(path)?;
    let certs = x509_cert::Certificate::load_pem_chain(&pem).ok()?;
    let ec = Oid::new_unwrap("1.2.840.10045.2.1");
    let p256 = Oid::new_unwrap("1.2.840.10045.3.1.7");
    let p384 = Oid::new_unwrap("1.3.132.0.34");
    let ed25519 = Oid::new_unwrap("1.3.101.112");
    let rsa = Oid::new_unwrap("1.2.840.113549.1.1.1");
    let pss = Oid::new_unwrap("1.2.840.113549.1.1.10");
    Some(
        certs
            .iter()
            .map(|c| {
                let alg = &c.tbs_certificate.subject_public_key_info.algorithm;
                let curve = alg
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<Oid>().ok());
                if alg.oid == ec && curve == Some(p256) {
                    KeyType::P256
                } else if alg.oid == ec && curve == Some(p384) {
                    KeyType::P384
                } else if alg.oid == ed25519 {
                    KeyType::Ed25519
                } else if alg.oid == rsa || alg.oid == pss {
                    KeyType::Rsa
                } else {
                    KeyType::Other
                }
            })
            .collect(),
    )
}

/// Resolves `versions`, `cipher-suites`, `kx-groups` and `signature-schemes`, and checks that
/// the choice can work: each version has a suite and each suite its version, TLS 1.2 suites
/// have schemes to sign with, and the certificates (`cert`, `sni`: their keys sign; `ca`,
/// `client-ca`: their keys' signatures are verified) have schemes. `None` when no key is set.
fn narrow(r: &mut Resolver<'_>, keys: &Keys, certs: &[(&str, &List1, bool)]) -> Option<Narrow> {
    if keys.versions.is_none()
        && keys.cipher_suites.is_none()
        && keys.kx_groups.is_none()
        && keys.signature_schemes.is_none()
    {
        return None;
    }
    let versions = names(r, "versions", &keys.versions, VERSIONS);
    let suites = names(r, "cipher-suites", &keys.cipher_suites, SUITES);
    let groups = names(r, "kx-groups", &keys.kx_groups, GROUPS)
        .unwrap_or_else(|| GROUPS.iter().map(|g| (g, r.table.clone())).collect());
    let schemes = names(r, "signature-schemes", &keys.signature_schemes, SCHEMES)
        .unwrap_or_else(|| SCHEMES.iter().map(|s| (s, r.table.clone())).collect());
    // Unset `versions`: those the suites need (every one, when both are unset); unset
    // `cipher-suites`: every suite of the versions.
    let versions = versions.unwrap_or_else(|| {
        VERSIONS
            .iter()
            .filter(|v| {
                suites
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|(s, _)| s.tls12 == v.tls12))
            })
            .map(|v| (v, r.table.clone()))
            .collect()
    });
    let suites = suites.unwrap_or_else(|| {
        SUITES
            .iter()
            .filter(|s| versions.iter().any(|(v, _)| v.tls12 == s.tls12))
            .map(|s| (s, r.table.clone()))
            .collect()
    });
    let has_scheme = |n: &str| schemes.iter().any(|(s, _)| s.name == n);
    let scheme_names = || {
        let n: Vec<&str> = schemes.iter().map(|(s, _)| s.name).collect();
        quoted(&n)
    };
    for (s, span) in &suites {
        if !versions.iter().any(|(v, _)| v.tls12 == s.tls12) {
            let (want, have) = if s.tls12 {
                ("TLSv1_2", "a TLS 1.2 suite")
            } else {
                ("TLSv1_3", "a TLS 1.3 suite")
            };
            r.err(
                span.clone(),
                "cipher-suites",
                format!(
                    "\"{}\" is {have}, but `versions` does not name \"{want}\"",
                    s.name
                ),
                "its version is not enabled",
                format!("add \"{want}\" to `versions`, or leave this suite out"),
            );
        }
        if s.tls12
            && s.rsa
            && !SCHEMES
                .iter()
                .any(|x| x.feature == Some("rsa") && has_scheme(x.name))
        {
            r.err(
                span.clone(),
                "cipher-suites",
                format!("\"{}\" needs an RSA signature scheme, and `signature-schemes` names none", s.name),
                "the server's RSA signatures cannot be verified",
                "add an RSA scheme such as \"RSA_PSS_SHA256\" to `signature-schemes`, or leave this suite out",
            );
        }
    }
    for (v, span) in &versions {
        if !suites.iter().any(|(s, _)| s.tls12 == v.tls12) {
            r.err(
                span.clone(),
                "versions",
                format!("`cipher-suites` has no suite for \"{}\"", v.name),
                "no suite for this version",
                if v.tls12 {
                    "add a TLS 1.2 suite (\"TLS_ECDHE_ECDSA_WITH_...\") to `cipher-suites`, or leave \"TLSv1_2\" out"
                } else {
                    "add a TLS 1.3 suite (\"TLS13_...\") to `cipher-suites`, or leave \"TLSv1_3\" out"
                },
            );
        }
    }
    for (k, file, signs) in certs {
        let Some(f) = file else { continue };
        let Some(types) = key_types(&r.dir.join(f.get_ref())) else {
            continue;
        };
        // `cert`/`sni`: the end entity's key signs handshakes. `ca`/`client-ca`: each
        // anchor's key signs the certificates under it.
        let types: Vec<KeyType> = if *signs {
            types.into_iter().take(1).collect()
        } else {
            types
        };
        for t in types {
            if t.schemes().iter().any(|n| has_scheme(n)) {
                continue;
            }
            let what = if *signs {
                format!("the certificate has {}", t.describe())
            } else {
                format!("a certificate in \"{}\" has {}", f.get_ref(), t.describe())
            };
            let accepted = match t.schemes() {
                [] => "an ECDSA P-256/P-384, Ed25519 or RSA certificate".to_string(),
                s => format!(
                    "add {} to `signature-schemes` (it names {})",
                    quoted(s),
                    scheme_names()
                ),
            };
            r.err(
                f.span(),
                k,
                format!(
                    "{what}, which none of the configured `signature-schemes` can {}",
                    if *signs { "sign with" } else { "verify" }
                ),
                "no signature scheme for this key",
                accepted,
            );
            break;
        }
        if *signs
            && versions.iter().any(|(v, _)| v.tls12)
            && versions.len() == 1
            && !suites.iter().any(|(s, _)| s.tls12 && !s.rsa)
        {
            r.err(
                f.span(),
                k,
                "a TLS 1.2 server with this certificate needs a TLS_ECDHE_ECDSA_* suite, and `cipher-suites` names none",
                "no TLS 1.2 suite signs with this key",
                "add \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\" (say) to `cipher-suites`",
            );
        }
    }
    Some(Narrow {
        versions: versions.into_iter().map(|(v, _)| v).collect(),
        suites: suites.into_iter().map(|(s, _)| s).collect(),
        groups: groups.into_iter().map(|(g, _)| g).collect(),
        schemes: schemes.into_iter().map(|(s, _)| s).collect(),
    })
}

type List1 = Option<Spanned<String>>;

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
    // The files themselves: they parse, the chain is in order, the key is the certificate's.
    if let (Some(c), Some(k), Some(cf), Some(kf)) = (&keys.cert, &keys.key, &cert, &key) {
        check::identity(
            r,
            &check::Named::new("cert", c, cf),
            &check::Named::new("key", k, kf),
        );
    }
    for (k, v, f) in [
        ("ca", &keys.ca, &ca),
        ("client-ca", &keys.client_ca, &client_ca),
    ] {
        if let (Some(v), Some(f)) = (v, f) {
            check::anchors(r, &check::Named::new(k, v, f));
        }
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
            check::identity(
                r,
                &check::Named::new("sni.cert", &e.cert, &c),
                &check::Named::new("sni.key", &e.key, &k),
            );
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
    let mut certs: Vec<(&str, &List1, bool)> = vec![
        ("cert", &keys.cert, true),
        ("ca", &keys.ca, false),
        ("client-ca", &keys.client_ca, false),
    ];
    let sni_certs: Vec<List1> = keys
        .sni
        .as_ref()
        .map(|s| {
            s.get_ref()
                .iter()
                .map(|e| Some(e.get_ref().cert.clone()))
                .collect()
        })
        .unwrap_or_default();
    certs.extend(sni_certs.iter().map(|c| ("sni.cert", c, true)));
    let narrow = narrow(r, &keys, &certs);
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
        narrow,
    }))
}

impl Device for Tls {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn uses(&self) -> Vec<&str> {
        vec![&self.net]
    }

    /// uni-tls (and under it uni-crypto) with the features the choice needs: all of them when
    /// no key narrows it.
    fn features(&self) -> Vec<(Crate, Vec<&'static str>)> {
        let features = match &self.narrow {
            None => vec!["ed25519", "p384", "rsa", "tls12"],
            Some(n) => {
                let mut f: Vec<&'static str> = n
                    .groups
                    .iter()
                    .filter_map(|g| g.feature)
                    .chain(n.schemes.iter().filter_map(|s| s.feature))
                    .chain(n.versions.iter().filter(|v| v.tls12).map(|_| "tls12"))
                    .collect();
                f.sort();
                f.dedup();
                f
            }
        };
        let mut tls = features.clone();
        if self.narrow.is_none() || self.client_ca.is_some() {
            tls.insert(0, "client-auth");
        }
        vec![(Crate::Tls, tls), (Crate::Crypto, features)]
    }

    fn implement(&self, _name: &str, _target: Target) -> Result<Implementation, Unsupported> {
        // Decoded at configure time when every file decodes (fixed::Embed), so that the image
        // links no PEM or PKCS#8 parser.
        let embed = fixed::Embed::of(
            [
                (&self.cert, false),
                (&self.key, true),
                (&self.ca, false),
                (&self.client_ca, false),
            ]
            .into_iter()
            .filter_map(|(f, key)| f.as_ref().map(|f| (f, key)))
            .chain(
                self.sni
                    .iter()
                    .flat_map(|(_, c, k)| [(c, false), (k, true)]),
            ),
        );
        let opt = |f: &Option<EmbeddedFile>, key: bool| match f {
            Some(f) => format!("Some({})", embed.expr(f, key)),
            None => "None".to_string(),
        };
        let sni: Vec<String> = self
            .sni
            .iter()
            .map(|(name, cert, key)| {
                format!(
                    "uni_tls::SniFiles {{ name: {name:?}, cert: {}, key: {} }}",
                    embed.expr(cert, false),
                    embed.expr(key, true)
                )
            })
            .collect();
        let alpn: Vec<String> = self.alpn.iter().map(|a| format!("{a:?}")).collect();
        let (versions, choice) = match &self.narrow {
            None => (
                String::new(),
                if embed.der {
                    "uni_tls::uni_crypto::Choice { keys: &uni_tls::uni_crypto::sign::FIXED, ..uni_tls::uni_crypto::Choice::ALL }".to_string()
                } else {
                    "uni_tls::uni_crypto::Choice::ALL".to_string()
                },
            ),
            Some(n) => {
                let list = |v: Vec<String>| v.join(", ");
                (
                    list(n.versions.iter().map(|v| format!("&uni_tls::rustls::version::{}", if v.tls12 { "TLS12" } else { "TLS13" })).collect()),
                    format!(
                        "uni_tls::uni_crypto::Choice {{ cipher_suites: &[{}], kx_groups: &[{}], signature_schemes: &[{}], keys: &uni_tls::uni_crypto::sign::{} }}",
                        list(n.suites.iter().map(|s| format!("uni_tls::uni_crypto::suites::{}", s.name)).collect()),
                        list(n.groups.iter().map(|g| format!("uni_tls::uni_crypto::kx::{}", g.constructor)).collect()),
                        list(n.schemes.iter().map(|s| format!("uni_tls::uni_crypto::schemes::{}", s.name)).collect()),
                        if embed.der { "FIXED" } else { "KEYS" },
                    ),
                )
            }
        };
        let files = format!(
            "uni_tls::Files {{ cert: {}, key: {}, sni: &[{}], alpn: &[{}], client_ca: {}, ca: {}, resumption: {}, versions: &[{versions}], choice: {choice}, decode: uni_tls::Decode::{} }}",
            opt(&self.cert, false),
            opt(&self.key, true),
            sni.join(", "),
            alpn.join(", "),
            opt(&self.client_ca, false),
            opt(&self.ca, false),
            self.resumption,
            if embed.der { "DER" } else { "PEM" },
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
