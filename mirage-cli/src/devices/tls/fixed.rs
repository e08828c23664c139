//! The tls device's files decoded at configure time (issue #16): the certificates as DER, the
//! private keys in uni-crypto's fixed PKCS#8 forms (`uni_crypto::sign::P256_PKCS8_PREFIX` and
//! the others), written into the generated main as byte arrays (as MirageOS's crunch embeds a
//! key in generated code). At boot uni-tls then reads them with `uni_tls::Decode::DER` and
//! uni-crypto's `sign::FIXED`, which compare bytes and split DER headers, so the image links no
//! PEM, PKCS#8, SEC1 or ASN.1 parser.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::devices::EmbeddedFile;

/// uni-crypto's `sign::P256_PKCS8_PREFIX`: the PKCS#8 bytes before a P-256 scalar.
const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];
/// uni-crypto's `sign::P384_PKCS8_PREFIX`.
const P384_PKCS8_PREFIX: [u8; 32] = [
    0x30, 0x4e, 0x02, 0x01, 0x00, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x04, 0x37, 0x30, 0x35, 0x02, 0x01, 0x01, 0x04, 0x30,
];
/// uni-crypto's `sign::ED25519_PKCS8_PREFIX`.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Certificates (PEM blocks, or one DER certificate, as uni-crypto reads them at boot) as
/// their DER concatenated; `None` when the file holds none or is unreadable (the device's
/// checks have reported that).
pub(super) fn certificates(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.first() == Some(&0x30) {
        return Some(bytes.to_vec());
    }
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    (!certs.is_empty()).then(|| certs.iter().flat_map(|c| c.as_ref().to_vec()).collect())
}

/// A key file in DER (it starts with a SEQUENCE): PKCS#8 when it parses as that, else SEC1, as
/// uni-crypto tells them apart at boot; `None` for a PEM file.
pub(super) fn der_key(bytes: &[u8]) -> Option<PrivateKeyDer<'static>> {
    (bytes.first() == Some(&0x30)).then(|| {
        if p256::pkcs8::PrivateKeyInfo::try_from(bytes).is_ok() {
            PrivateKeyDer::Pkcs8(bytes.to_vec().into())
        } else {
            PrivateKeyDer::Sec1(bytes.to_vec().into())
        }
    })
}

/// A private key (PEM or DER; PKCS#8 or SEC1; ECDSA P-256/P-384 or Ed25519) in the fixed
/// PKCS#8 form of its type; `None` for any other key (the device's checks have reported it).
pub(super) fn private_key(bytes: &[u8]) -> Option<Vec<u8>> {
    use p256::pkcs8::DecodePrivateKey;
    let key = match der_key(bytes) {
        Some(key) => key,
        None => PrivateKeyDer::from_pem_slice(bytes).ok()?,
    };
    let fixed = |prefix: &[u8], secret: &[u8]| Some([prefix, secret].concat());
    match key {
        PrivateKeyDer::Pkcs8(k) => {
            let der = k.secret_pkcs8_der();
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
                return fixed(&P256_PKCS8_PREFIX, &k.to_bytes());
            }
            if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
                return fixed(&P384_PKCS8_PREFIX, &k.to_bytes());
            }
            if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
                return fixed(&ED25519_PKCS8_PREFIX, &k.to_bytes());
            }
            None
        }
        PrivateKeyDer::Sec1(k) => {
            let der = k.secret_sec1_der();
            if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
                return fixed(&P256_PKCS8_PREFIX, &k.to_bytes());
            }
            if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
                return fixed(&P384_PKCS8_PREFIX, &k.to_bytes());
            }
            None
        }
        _ => None,
    }
}

/// `bytes` as a Rust expression of type `&[u8; N]` (an array, which rustfmt wraps).
fn literal(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    format!("&[{}]", items.join(", "))
}

/// The generated main's expressions for a device's files: every file decoded as above when
/// all of them decode (`der` is then true), else every file by `include_bytes!` for uni-tls's
/// PEM reader, as before.
pub(super) struct Embed {
    pub der: bool,
}

impl Embed {
    /// Decodes `files` ((file, is a key)) to see whether all of them can be embedded decoded.
    pub(super) fn of<'a>(files: impl IntoIterator<Item = (&'a EmbeddedFile, bool)>) -> Embed {
        let der = files.into_iter().all(|(f, key)| decoded(f, key).is_some());
        Embed { der }
    }

    /// The expression (of type `&[u8]`) for `f`.
    pub(super) fn expr(&self, f: &EmbeddedFile, key: bool) -> String {
        match self.der.then(|| decoded(f, key)).flatten() {
            Some(bytes) => literal(&bytes),
            None => f.include(),
        }
    }
}

fn decoded(f: &EmbeddedFile, key: bool) -> Option<Vec<u8>> {
    let bytes = std::fs::read(&f.path).ok()?;
    if key {
        private_key(&bytes)
    } else {
        certificates(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    /// Keys openssl makes, in each form uni-crypto reads at boot, come out in the fixed PKCS#8
    /// form, and openssl reads that back as the same key (the same public key).
    #[test]
    fn keys_in_every_form_become_the_fixed_pkcs8_of_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, gen, prefix) in [
            (
                "p256",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
                &P256_PKCS8_PREFIX[..],
            ),
            (
                "p384",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
                &P384_PKCS8_PREFIX[..],
            ),
            (
                "ed25519",
                &["-algorithm", "ED25519"][..],
                &ED25519_PKCS8_PREFIX[..],
            ),
        ] {
            let pem = format!("{name}.pem");
            openssl(d, &[&["genpkey", "-out", &pem][..], gen].concat());
            let public = openssl(d, &["pkey", "-in", &pem, "-pubout"]);
            let mut forms = vec![
                ("PKCS#8 PEM", std::fs::read(d.join(&pem)).unwrap()),
                (
                    "PKCS#8 DER",
                    openssl(d, &["pkey", "-in", &pem, "-outform", "DER"]),
                ),
            ];
            if name != "ed25519" {
                forms.push(("SEC1 PEM", openssl(d, &["ec", "-in", &pem])));
                forms.push((
                    "SEC1 DER",
                    openssl(d, &["ec", "-in", &pem, "-outform", "DER"]),
                ));
            }
            for (form, bytes) in forms {
                let fixed = private_key(&bytes).unwrap_or_else(|| panic!("{name} {form}"));
                assert!(fixed.starts_with(prefix), "{name} {form}");
                std::fs::write(d.join("fixed.der"), &fixed).unwrap();
                let back = openssl(
                    d,
                    &["pkey", "-inform", "DER", "-in", "fixed.der", "-pubout"],
                );
                assert_eq!(back, public, "{name} {form}");
            }
        }
        let rsa = openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
            ],
        );
        assert!(private_key(&rsa).is_none());
        assert!(private_key(b"not a key").is_none());
    }

    #[test]
    fn certificates_become_their_der_one_after_another() {
        let pem = include_bytes!("../../../../examples/static-website/pki/server.pem");
        let ca = include_bytes!("../../../../examples/static-website/pki/ca.pem");
        let ders: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&[&pem[..], &ca[..]].concat())
            .map(|c| c.unwrap().as_ref().to_vec())
            .collect();
        assert_eq!(ders.len(), 2);
        let both = certificates(&[&pem[..], &ca[..]].concat()).unwrap();
        assert_eq!(both, ders.concat());
        assert_eq!(certificates(&ders[0]).unwrap(), ders[0]);
        assert!(certificates(b"no PEM here").is_none());
        assert_eq!(literal(&[0, 0xff]), "&[0x00, 0xff]");
    }
}
