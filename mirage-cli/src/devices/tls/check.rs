//! Configure-time checks of a `tls` device's files, so that what would fail at boot (or at each
//! handshake) fails in `uni configure`, at the key that names the file: the certificates parse,
//! a chain is in order (each certificate issued by the next), the private key is one uni-crypto
//! signs with, and it is the key of its certificate.
//!
//! The files are read as uni-crypto reads them at boot (`uni_crypto::pem`: PEM through
//! rustls-pki-types, or DER), and the key is decoded by the same RustCrypto calls
//! (`uni_crypto::sign::load`), so this refuses what the device would refuse, no more.

use std::ops::Range;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_cert::der::asn1::ObjectIdentifier as Oid;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::Certificate;

use super::super::Resolver;

/// What the device accepts as a private key, for messages.
const KEYS_ACCEPTED: &str = "an unencrypted PEM or DER private key: ECDSA P-256 or P-384 (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`), or Ed25519 (PKCS#8)";

/// What the device accepts as certificates, for messages.
const CERTS_ACCEPTED: &str =
    "PEM `BEGIN CERTIFICATE` blocks, or one DER certificate, as `openssl x509` writes them";

/// The largest file read for these checks: a CA bundle is a few hundred KiB.
const LARGEST: u64 = 16 << 20;

/// The bytes of `path` when it is a regular file of at most [`LARGEST`] bytes; `None` otherwise
/// (the resolver reports a path that is no file; a device, a FIFO or `/dev/zero` named in the
/// config must not make `uni configure` hang or run out of memory).
pub(in crate::devices) fn read(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > LARGEST {
        return None;
    }
    std::fs::read(path).ok()
}

/// A key path and the value naming a file, with the file's path.
pub(in crate::devices) struct Named<'a> {
    /// The key path within the device: `cert`, `sni.key`, ….
    pub key: &'a str,
    /// The file as written in the config.
    pub written: &'a str,
    /// The value's span.
    pub span: Range<usize>,
    /// The file.
    pub path: &'a Path,
}

impl<'a> Named<'a> {
    pub fn new(
        key: &'a str,
        value: &'a toml::Spanned<String>,
        file: &'a super::super::EmbeddedFile,
    ) -> Named<'a> {
        Named {
            key,
            written: value.get_ref(),
            span: value.span(),
            path: &file.path,
        }
    }
}

/// A public key of a type uni-crypto signs with.
#[derive(PartialEq, Eq)]
enum Public {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Public {
    fn describe(&self) -> &'static str {
        match self {
            Public::P256(_) => "an ECDSA P-256 key",
            Public::P384(_) => "an ECDSA P-384 key",
            Public::Ed25519(_) => "an Ed25519 key",
        }
    }

    /// A certificate's subject public key, when of a type uni-crypto signs with; else what
    /// type it is.
    fn of(cert: &Certificate) -> Result<Public, &'static str> {
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let der = spki.to_der().map_err(|_| "a key that does not encode")?;
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&der) {
            return Ok(Public::P256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&der) {
            return Ok(Public::P384(k));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(&der) {
            return Ok(Public::Ed25519(k));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<Oid>().ok());
        Err(algorithm(&spki.algorithm.oid, curve))
    }
}

/// A key algorithm uni-crypto does not sign with, in words.
fn algorithm(oid: &Oid, curve: Option<Oid>) -> &'static str {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => "an RSA key",
        "1.2.840.10045.2.1" => match curve.map(|c| c.to_string()).as_deref() {
            Some("1.3.132.0.35") => "an ECDSA P-521 key",
            Some("1.3.132.0.10") => "an ECDSA secp256k1 key",
            _ => "an ECDSA key on another curve",
        },
        "1.3.101.113" => "an Ed448 key",
        "1.3.101.110" | "1.3.101.111" => "an X25519/X448 key (it cannot sign)",
        "1.2.840.10040.4.1" => "a DSA key",
        _ => "a key of another type",
    }
}

/// The certificates in a file, parsed, as the device reads them: PEM `CERTIFICATE` blocks, or
/// one DER certificate. Reports an error at the key and returns `None` when it cannot.
fn certificates(r: &mut Resolver<'_>, file: &Named<'_>) -> Option<Vec<Certificate>> {
    let bytes = read(file.path)?;
    let ders = if bytes.first() == Some(&0x30) {
        Ok(vec![CertificateDer::from(bytes)])
    } else {
        CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("it is not valid PEM ({e})"))
    };
    let ders = match ders {
        Ok(d) if d.is_empty() => Err("it holds no certificate".to_string()),
        d => d,
    };
    let bad = |r: &mut Resolver<'_>, why: String| {
        r.err(
            file.span.clone(),
            file.key,
            format!("\"{}\": {why}", file.written),
            "no certificate read from this file",
            CERTS_ACCEPTED,
        );
        None
    };
    let ders = match ders {
        Ok(d) => d,
        Err(why) => return bad(r, why),
    };
    let mut certs = vec![];
    for (i, der) in ders.iter().enumerate() {
        match Certificate::from_der(der.as_ref()) {
            Ok(c) => certs.push(c),
            Err(e) => {
                return bad(
                    r,
                    format!("certificate {} is not an X.509 certificate ({e})", i + 1),
                )
            }
        }
    }
    Some(certs)
}

/// A private key the device could not use: the message, the label, what is accepted.
struct Refused(String, &'static str, String);

/// The private key in `bytes`, read as `uni_crypto::pem::private_key` and loaded as
/// `uni_crypto::sign::load` does; its public half.
fn private_key(bytes: &[u8]) -> Result<Public, Refused> {
    let rsa = || {
        Refused(
            "it is an RSA private key, and uni's TLS does not sign with RSA".into(),
            "RSA key",
            "an ECDSA P-256/P-384 or Ed25519 key: no constant-time pure-Rust RSA exists (RUSTSEC-2023-0071), and a server's key is what a timing attack targets; make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key` and get a certificate for it".into(),
        )
    };
    let unreadable = |why: String| {
        Refused(
            why,
            "no private key read from this file",
            KEYS_ACCEPTED.into(),
        )
    };
    let key = if let Some(key) = super::fixed::der_key(bytes) {
        key
    } else {
        if String::from_utf8_lossy(bytes).contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(Refused(
                "the private key is encrypted".into(),
                "encrypted key",
                "an unencrypted key: `openssl pkey -in KEY -out server.key` asks for the passphrase and writes it unencrypted".into(),
            ));
        }
        PrivateKeyDer::from_pem_slice(bytes)
            .map_err(|e| unreadable(format!("no PEM private key in it ({e})")))?
    };
    match key {
        PrivateKeyDer::Pkcs8(k) => {
            let der = k.secret_pkcs8_der();
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
                return Ok(Public::P256(*k.verifying_key()));
            }
            if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
                return Ok(Public::P384(*k.verifying_key()));
            }
            if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
                return Ok(Public::Ed25519(k.verifying_key()));
            }
            let info = p256::pkcs8::PrivateKeyInfo::try_from(der)
                .map_err(|e| unreadable(format!("a malformed PKCS#8 private key ({e})")))?;
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<Oid>().ok());
            match algorithm(&info.algorithm.oid, curve) {
                "an RSA key" => Err(rsa()),
                other => Err(Refused(
                    format!("it is {other}, which uni's TLS does not sign with"),
                    "unsupported key type",
                    KEYS_ACCEPTED.into(),
                )),
            }
        }
        PrivateKeyDer::Sec1(k) => {
            let der = k.secret_sec1_der();
            if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
                return Ok(Public::P256(
                    *p256::ecdsa::SigningKey::from(k).verifying_key(),
                ));
            }
            if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
                return Ok(Public::P384(
                    *p384::ecdsa::SigningKey::from(k).verifying_key(),
                ));
            }
            Err(Refused(
                "it is not a P-256 or P-384 key in SEC1 or PKCS#8 form".into(),
                "unsupported key",
                KEYS_ACCEPTED.into(),
            ))
        }
        PrivateKeyDer::Pkcs1(_) => Err(rsa()),
        _ => Err(unreadable("an unsupported private key format".into())),
    }
}

/// `cert` (a chain, end entity first) and `key` (its private key): the certificates parse and
/// are in order, the key is one uni-crypto signs with, and it is the first certificate's.
pub(in crate::devices) fn identity(r: &mut Resolver<'_>, cert: &Named<'_>, key: &Named<'_>) {
    let certs = certificates(r, cert);
    if let Some(certs) = &certs {
        chain_order(r, cert, certs);
    }
    let Some(bytes) = read(key.path) else {
        return;
    };
    let public = match private_key(&bytes) {
        Ok(p) => p,
        Err(Refused(why, label, accepted)) => {
            r.err(
                key.span.clone(),
                key.key,
                format!("\"{}\": {why}", key.written),
                label,
                accepted,
            );
            return;
        }
    };
    let Some(certs) = certs else { return };
    let theirs: Vec<Result<Public, &str>> = certs.iter().map(Public::of).collect();
    if theirs[0].as_ref().is_ok_and(|p| *p == public) {
        return;
    }
    let accepted = format!(
        "the private key of the first certificate in \"{}\" (`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` print the same key)",
        cert.written
    );
    if let Some(i) = theirs
        .iter()
        .position(|t| t.as_ref().is_ok_and(|p| *p == public))
    {
        r.err(
            key.span.clone(),
            key.key,
            format!(
                "\"{}\" is the key of certificate {} in \"{}\", not of the first",
                key.written,
                i + 1,
                cert.written
            ),
            "the key of another certificate in the chain",
            format!(
                "the server's own certificate first in \"{}\", then the certificate that issued it, and so on towards the root",
                cert.written
            ),
        );
        return;
    }
    let why = match &theirs[0] {
        Ok(p) if p.describe() == public.describe() => format!(
            "\"{}\" does not match the certificate in \"{}\": both are {}, but different ones",
            key.written,
            cert.written,
            public.describe()
        ),
        Ok(p) => format!(
            "\"{}\" does not match the certificate in \"{}\": the certificate has {}, this is {}",
            key.written,
            cert.written,
            p.describe(),
            public.describe()
        ),
        Err(other) => format!(
            "\"{}\" does not match the certificate in \"{}\": the certificate has {other}, this is {}",
            key.written,
            cert.written,
            public.describe()
        ),
    };
    r.err(
        key.span.clone(),
        key.key,
        why,
        "not the certificate's key",
        accepted,
    );
}

/// Each certificate of a chain is issued by the next: its issuer is the next one's subject.
fn chain_order(r: &mut Resolver<'_>, file: &Named<'_>, certs: &[Certificate]) {
    for (i, pair) in certs.windows(2).enumerate() {
        let (issued, issuer) = (&pair[0].tbs_certificate, &pair[1].tbs_certificate);
        if issued.issuer != issuer.subject {
            r.err(
                file.span.clone(),
                file.key,
                format!(
                    "the chain in \"{}\" is out of order: certificate {} (\"{}\") was issued by \"{}\", but certificate {} is \"{}\"",
                    file.written,
                    i + 1,
                    issued.subject,
                    issued.issuer,
                    i + 2,
                    issuer.subject
                ),
                "chain out of order",
                "the server's own certificate first, then the certificate that issued it, and so on towards the root (which may be left out)",
            );
            return;
        }
    }
}

/// `ca` or `client-ca`: trust anchors; every certificate in the file parses.
pub(in crate::devices) fn anchors(r: &mut Resolver<'_>, file: &Named<'_>) {
    certificates(r, file);
}
