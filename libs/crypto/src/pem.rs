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

/// Reads DER certificates written one after another (what `uni configure` embeds): each is
/// split off by its DER header, nothing else is parsed (webpki parses them when it uses them).
pub fn der_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = der_len(rest).ok_or_else(|| {
            format!(
                "certificate {}: not a DER SEQUENCE that fits in the {} bytes left",
                certs.len() + 1,
                rest.len()
            )
        })?;
        certs.push(CertificateDer::from(rest[..n].to_vec()));
        rest = &rest[n..];
    }
    if certs.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(certs)
}

/// The length of the DER SEQUENCE at the start of `b`, header included, if all of it is there.
fn der_len(b: &[u8]) -> Option<usize> {
    if *b.first()? != 0x30 {
        return None;
    }
    let first = *b.get(1)? as usize;
    let (header, len) = if first < 0x80 {
        (2, first)
    } else {
        let n = first - 0x80;
        if !(1..=3).contains(&n) {
            return None;
        }
        let len = b.get(2..2 + n)?.iter().fold(0, |a, &d| a << 8 | d as usize);
        (2 + n, len)
    };
    let total = header + len;
    (total <= b.len()).then_some(total)
}

/// A private key in one of uni-crypto's fixed PKCS#8 forms (`crate::sign::P256_PKCS8_PREFIX`
/// and the others), as `uni configure` embeds it: taken as PKCS#8 unparsed;
/// [`crate::sign::FIXED`] checks its form when it loads it.
pub fn fixed_private_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        bytes.to_vec(),
    )))
}
