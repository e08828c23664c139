//! Loading certificates and keys from PEM or DER.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

/// Reads every certificate from PEM text, or one DER certificate.
pub fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(alloc::vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("malformed PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(
            "no certificate found (expected PEM `BEGIN CERTIFICATE` blocks or one DER certificate)"
                .into(),
        );
    }
    Ok(certs)
}

/// Reads a private key: PEM (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`), or DER
/// PKCS#8 or SEC1.
pub fn private_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    if bytes.first() == Some(&0x30) {
        // DER: PKCS#8 starts with an INTEGER 0 then a SEQUENCE; SEC1 with INTEGER 1 then an
        // OCTET STRING. Let the key loader tell them apart by trying PKCS#8 first.
        if pkcs8::PrivateKeyInfo::try_from(bytes).is_ok() {
            return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                bytes.to_vec(),
            )));
        }
        return Ok(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(bytes.to_vec())));
    }
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| format!("no usable PEM private key: {e}"))
}
