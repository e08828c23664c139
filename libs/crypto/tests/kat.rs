//! Known-answer tests for every primitive the provider exposes, run through the provider's own
//! objects wherever rustls's interfaces let a test in (hashes, HMAC, HKDF, the TLS 1.2 PRF,
//! record protection, key exchange, signature verification, key loading), and against the
//! primitive crates with the published vectors where the TLS framing hides the raw primitive.
//!
//! Sources: FIPS 180-2 (SHA), RFC 4231 (HMAC), RFC 5869 (HKDF), the TLS 1.2 PRF vector used by
//! Go and others, McGrew & Viega's GCM test cases 3 and 15, RFC 8439 §2.8.2 (ChaCha20-Poly1305),
//! RFC 7748 §6.1 (X25519), RFC 8032 §7.1 test 1 (Ed25519).

use aes_gcm::aead::{Aead as _, AeadInPlace, KeyInit, Payload};
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, Iv, OutboundChunks, OutboundPlainMessage,
};
use rustls::crypto::CryptoProvider;
use rustls::{ContentType, ProtocolVersion, SignatureScheme, SupportedCipherSuite};
use uni_crypto::Rng;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(char::is_whitespace, "")).unwrap()
}

fn rng() -> &'static Rng {
    use std::sync::OnceLock;
    static RNG: OnceLock<&'static Rng> = OnceLock::new();
    RNG.get_or_init(|| {
        struct Os;
        impl uni_runtime::device::Random for Os {
            fn fill(&self, buf: &mut [u8]) {
                use std::io::Read;
                std::fs::File::open("/dev/urandom")
                    .unwrap()
                    .read_exact(buf)
                    .unwrap();
            }
        }
        let start = std::time::Instant::now();
        let rng = Rng::new(move || start.elapsed().as_nanos() as u64);
        rng.add_source(uni_crypto::DeviceSource(Os));
        rng.seed().unwrap();
        rng.leak()
    })
}

fn provider() -> CryptoProvider {
    uni_crypto::provider(rng())
}

fn tls13(suite: rustls::CipherSuite) -> &'static rustls::Tls13CipherSuite {
    provider()
        .cipher_suites
        .iter()
        .find_map(|s| match s {
            SupportedCipherSuite::Tls13(t) if t.common.suite == suite => Some(*t),
            _ => None,
        })
        .unwrap()
}

fn tls12(suite: rustls::CipherSuite) -> &'static rustls::Tls12CipherSuite {
    provider()
        .cipher_suites
        .iter()
        .find_map(|s| match s {
            SupportedCipherSuite::Tls12(t) if t.common.suite == suite => Some(*t),
            _ => None,
        })
        .unwrap()
}

use rustls::CipherSuite as CS;

#[test]
fn provider_offers_the_promised_suites_and_groups() {
    let p = provider();
    let suites: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
    assert_eq!(
        suites,
        [
            CS::TLS13_AES_128_GCM_SHA256,
            CS::TLS13_AES_256_GCM_SHA384,
            CS::TLS13_CHACHA20_POLY1305_SHA256,
            CS::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            CS::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            CS::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            CS::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CS::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            CS::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ]
    );
    let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
    assert_eq!(
        groups,
        [
            rustls::NamedGroup::X25519,
            rustls::NamedGroup::secp256r1,
            rustls::NamedGroup::secp384r1
        ]
    );
    // The provider is accepted by rustls's own consistency checks.
    let cfg = rustls::ClientConfig::builder_with_details(p.into(), std::sync::Arc::new(Time))
        .with_safe_default_protocol_versions()
        .unwrap();
    drop(cfg);
}

#[derive(Debug)]
struct Time;
impl rustls::time_provider::TimeProvider for Time {
    fn current_time(&self) -> Option<pki_types::UnixTime> {
        Some(pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(1_700_000_000),
        ))
    }
}

#[test]
fn sha256_sha384_fips180() {
    let s256 = tls13(CS::TLS13_AES_128_GCM_SHA256).common.hash_provider;
    let s384 = tls13(CS::TLS13_AES_256_GCM_SHA384).common.hash_provider;
    assert_eq!(
        s256.hash(b"abc").as_ref(),
        h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        s384.hash(b"abc").as_ref(),
        h("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
    );
    // Incremental contexts, forks included.
    let mut c = s256.start();
    c.update(b"a");
    let fork = c.fork();
    c.update(b"bc");
    assert_eq!(c.fork_finish().as_ref(), s256.hash(b"abc").as_ref());
    assert_eq!(fork.finish().as_ref(), s256.hash(b"a").as_ref());
}

#[test]
fn hmac_rfc4231_case2_and_hkdf_rfc5869_case1() {
    let hk256 = tls13(CS::TLS13_AES_128_GCM_SHA256).hkdf_provider;
    use rustls::crypto::hmac::Hmac;
    assert_eq!(
        uni_crypto::hmac::HMAC_SHA256
            .with_key(b"Jefe")
            .sign(&[b"what do ya want for nothing?"])
            .as_ref(),
        h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
    assert_eq!(
        uni_crypto::hmac::HMAC_SHA384.with_key(b"Jefe").sign(&[b"what do ya ", b"want for nothing?"]).as_ref(),
        h("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649")
    );
    let ikm = [0x0b; 22];
    let salt = h("000102030405060708090a0b0c");
    let info = h("f0f1f2f3f4f5f6f7f8f9");
    let mut okm = [0u8; 42];
    hk256
        .extract_from_secret(Some(&salt), &ikm)
        .expand_slice(&[&info], &mut okm)
        .unwrap();
    assert_eq!(
        okm.to_vec(),
        h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    );
}

#[test]
fn tls12_prf_sha256() {
    let prf = tls12(CS::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256).prf_provider;
    let mut out = [0u8; 100];
    prf.for_secret(
        &mut out,
        &h("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        &h("a0ba9f936cda311827a6f796ffd5198c"),
    );
    assert_eq!(
        out.to_vec(),
        h("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66")
    );
}

const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const GCM_IV: &str = "cafebabefacedbaddecaf888";

#[test]
fn aes_gcm_mcgrew_viega_cases_3_and_15() {
    let k128 = h("feffe9928665731c6d6a8f9467308308");
    let c = aes_gcm::Aes128Gcm::new_from_slice(&k128).unwrap();
    let out = c
        .encrypt(h(GCM_IV).as_slice().into(), h(GCM_P).as_slice())
        .unwrap();
    assert_eq!(
        out,
        h("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985 4d5c2af327cd64a62cf35abd2ba6fab4")
    );
    let k256 = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    let c = aes_gcm::Aes256Gcm::new_from_slice(&k256).unwrap();
    let out = c
        .encrypt(h(GCM_IV).as_slice().into(), h(GCM_P).as_slice())
        .unwrap();
    assert_eq!(
        out,
        h("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad b094dac5d93471bdec1a502270e3cc6c")
    );
}

#[test]
fn chacha20_poly1305_rfc8439() {
    let key = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    let c = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key).unwrap();
    let msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let out = c
        .encrypt(
            h("070000004041424344454647").as_slice().into(),
            Payload {
                msg,
                aad: &h("50515253c0c1c2c3c4c5c6c7"),
            },
        )
        .unwrap();
    assert_eq!(
        out,
        h("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116 1ae10b594f09e26a7e902ecbd0600691")
    );
}

fn key32(k: &[u8]) -> AeadKey {
    AeadKey::from(<[u8; 32]>::try_from(k).unwrap())
}

/// A TLS 1.3 record sealed by the provider is AEAD(K, IV ⊕ seq, 17 03 03 len, P ‖ type), and
/// the provider opens it again.
fn tls13_record_framing<C: AeadInPlace + KeyInit>(suite: CS, key: &[u8]) {
    let alg = tls13(suite).aead_alg;
    let iv: [u8; 12] = h(GCM_IV).try_into().unwrap();
    let p = h(GCM_P);
    let seq = 7u64;
    let mut enc = alg.encrypter(key32(key), Iv::new(iv));
    let chunks = [&p[..]];
    let rec = enc
        .encrypt(
            OutboundPlainMessage {
                typ: ContentType::ApplicationData,
                version: ProtocolVersion::TLSv1_2,
                payload: OutboundChunks::new(&chunks),
            },
            seq,
        )
        .unwrap()
        .encode();
    assert_eq!(&rec[..3], &[0x17, 0x03, 0x03]);
    let body = &rec[5..];
    assert_eq!(body.len(), p.len() + 1 + 16);
    let mut nonce = iv;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let c = C::new_from_slice(key).unwrap();
    let mut expect = p.clone();
    expect.push(0x17);
    c.encrypt_in_place(nonce.as_slice().into(), &rec[..5], &mut expect)
        .unwrap();
    assert_eq!(body, expect.as_slice(), "{suite:?}: record body");

    let mut dec = alg.decrypter(key32(key), Iv::new(iv));
    let mut body = body.to_vec();
    let plain = dec
        .decrypt(
            InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut body,
            ),
            seq,
        )
        .unwrap();
    assert_eq!(plain.payload, p.as_slice());
    assert_eq!(plain.typ, ContentType::ApplicationData);
    // A flipped bit fails authentication.
    let mut bad = expect.clone();
    bad[3] ^= 1;
    let mut dec = alg.decrypter(key32(key), Iv::new(iv));
    assert!(dec
        .decrypt(
            InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut bad
            ),
            seq
        )
        .is_err());
}

#[test]
fn tls13_record_protection_through_the_provider() {
    tls13_record_framing::<aes_gcm::Aes256Gcm>(
        CS::TLS13_AES_256_GCM_SHA384,
        &h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
    );
    tls13_record_framing::<chacha20poly1305::ChaCha20Poly1305>(
        CS::TLS13_CHACHA20_POLY1305_SHA256,
        &h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
    );
}

#[test]
fn tls12_gcm_record_protection_through_the_provider() {
    // RFC 5288: nonce = salt(4) ‖ explicit(8), explicit sent in front of the ciphertext;
    // AAD = seq ‖ type ‖ version ‖ length.
    let alg = tls12(CS::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384).aead_alg;
    let key = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    let iv = h(GCM_IV);
    let p = h(GCM_P);
    let mut enc = alg.encrypter(key32(&key), &iv[..4], &iv[4..]);
    let chunks = [&p[..]];
    let seq = 1u64;
    let rec = enc
        .encrypt(
            OutboundPlainMessage {
                typ: ContentType::ApplicationData,
                version: ProtocolVersion::TLSv1_2,
                payload: OutboundChunks::new(&chunks),
            },
            seq,
        )
        .unwrap()
        .encode();
    let body = &rec[5..];
    let (explicit, ct) = body.split_at(8);
    let mut nonce = iv.clone();
    nonce[4..].copy_from_slice(explicit);
    let mut aad = seq.to_be_bytes().to_vec();
    aad.extend_from_slice(&[0x17, 0x03, 0x03]);
    aad.extend_from_slice(&(p.len() as u16).to_be_bytes());
    let c = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let opened = c
        .decrypt(nonce.as_slice().into(), Payload { msg: ct, aad: &aad })
        .unwrap();
    assert_eq!(opened, p);
    let mut dec = alg.decrypter(key32(&key), &iv[..4]);
    let mut body = body.to_vec();
    let plain = dec
        .decrypt(
            InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut body,
            ),
            seq,
        )
        .unwrap();
    assert_eq!(plain.payload, p.as_slice());
}

#[test]
fn x25519_rfc7748_and_provider_groups_agree() {
    let a = x25519_dalek::StaticSecret::from(
        <[u8; 32]>::try_from(h(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ))
        .unwrap(),
    );
    assert_eq!(
        x25519_dalek::PublicKey::from(&a).as_bytes().to_vec(),
        h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    let bob_pub: [u8; 32] = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        .try_into()
        .unwrap();
    assert_eq!(
        a.diffie_hellman(&bob_pub.into()).as_bytes().to_vec(),
        h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    );

    // Through the provider: two ephemeral shares agree, for every group; bad shares fail.
    for g in provider().kx_groups {
        let (x, y) = (g.start().unwrap(), g.start().unwrap());
        let (xp, yp) = (x.pub_key().to_vec(), y.pub_key().to_vec());
        assert_ne!(xp, yp);
        let s1 = x.complete(&yp).unwrap();
        let s2 = y.complete(&xp).unwrap();
        assert_eq!(s1.secret_bytes(), s2.secret_bytes(), "{:?}", g.name());
        assert!(
            g.start().unwrap().complete(&[0u8; 3]).is_err(),
            "{:?} rejects a short share",
            g.name()
        );
    }
    // X25519: an all-zero (low-order) share is refused.
    let x = provider().kx_groups[0].start().unwrap();
    assert!(x.complete(&[0u8; 32]).is_err());
}

#[test]
fn ed25519_rfc8032_test1_through_the_provider() {
    let alg = provider()
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == SignatureScheme::ED25519)
        .unwrap()
        .1[0];
    let pk = h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    let sig = h("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    assert!(alg.verify_signature(&pk, b"", &sig).is_ok());
    assert!(alg.verify_signature(&pk, b"x", &sig).is_err());
}

fn verifier(scheme: SignatureScheme) -> &'static dyn pki_types::SignatureVerificationAlgorithm {
    uni_crypto::verify::ALGORITHMS
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .unwrap()
        .1[0]
}

#[test]
fn ecdsa_and_ed25519_keys_load_sign_and_verify() {
    use p256::pkcs8::EncodePrivateKey;
    let cases: Vec<(Vec<u8>, Vec<u8>, SignatureScheme)> = vec![
        {
            let k = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
            let point = p256::EncodedPoint::from(k.public_key()).as_bytes().to_vec();
            (
                k.to_pkcs8_pem(Default::default())
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
                point,
                SignatureScheme::ECDSA_NISTP256_SHA256,
            )
        },
        {
            let k = p384::SecretKey::from_slice(&[9u8; 48]).unwrap();
            let point = p384::EncodedPoint::from(k.public_key()).as_bytes().to_vec();
            (
                k.to_sec1_pem(Default::default())
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
                point,
                SignatureScheme::ECDSA_NISTP384_SHA384,
            )
        },
        {
            let k = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
            let pk = k.verifying_key().to_bytes().to_vec();
            (
                k.to_pkcs8_der().unwrap().as_bytes().to_vec(),
                pk,
                SignatureScheme::ED25519,
            )
        },
    ];
    let p = provider();
    for (pem, public, scheme) in cases {
        let der = uni_crypto::pem::private_key(&pem).unwrap();
        let key = p.key_provider.load_private_key(der).unwrap();
        let signer = key.choose_scheme(&[scheme]).expect("scheme offered");
        assert_eq!(signer.scheme(), scheme);
        let sig = signer.sign(b"message").unwrap();
        verifier(scheme)
            .verify_signature(&public, b"message", &sig)
            .unwrap();
        assert!(
            verifier(scheme)
                .verify_signature(&public, b"massage", &sig)
                .is_err(),
            "{scheme:?}"
        );
        assert!(key
            .choose_scheme(&[SignatureScheme::RSA_PSS_SHA256])
            .is_none());
    }
}

#[test]
fn rsa_private_keys_are_refused_with_a_clear_error() {
    // A PKCS#1 "RSA PRIVATE KEY" block (content irrelevant: refused by type).
    let der =
        pki_types::PrivateKeyDer::Pkcs1(pki_types::PrivatePkcs1KeyDer::from(vec![0x30, 0x00]));
    let err = provider().key_provider.load_private_key(der).unwrap_err();
    assert!(
        err.to_string()
            .contains("RSA private keys are not supported"),
        "{err}"
    );
}

#[test]
fn rng_is_the_providers_randomness() {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    provider().secure_random.fill(&mut a).unwrap();
    provider().secure_random.fill(&mut b).unwrap();
    assert_ne!(a, b);
    let unseeded: &'static Rng = Rng::new(|| 0).leak();
    let p = uni_crypto::provider(unseeded);
    assert!(
        p.secure_random.fill(&mut a).is_err(),
        "no output before the first reseed"
    );
    assert!(p.kx_groups[0].start().is_err());
}

/// The fixed PKCS#8 forms `uni configure` writes are PKCS#8 that the general decoders read as
/// the same key, and `sign::FIXED` loads them (and only them) without a parser.
#[test]
fn fixed_pkcs8_forms_are_pkcs8_and_load_without_a_parser() {
    use pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::crypto::KeyProvider;
    let pkcs8 = |prefix: &[u8], secret: &[u8]| {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from([prefix, secret].concat()))
    };
    let cases = [
        (
            pkcs8(&uni_crypto::sign::P256_PKCS8_PREFIX, &[7u8; 32]),
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ),
        (
            pkcs8(&uni_crypto::sign::P384_PKCS8_PREFIX, &[7u8; 48]),
            SignatureScheme::ECDSA_NISTP384_SHA384,
        ),
        (
            pkcs8(&uni_crypto::sign::ED25519_PKCS8_PREFIX, &[7u8; 32]),
            SignatureScheme::ED25519,
        ),
    ];
    for (key, scheme) in cases {
        let fixed = uni_crypto::sign::FIXED
            .load_private_key(key.clone_key())
            .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
        let general = uni_crypto::sign::KEYS.load_private_key(key).unwrap();
        let signer = fixed
            .choose_scheme(&[scheme])
            .expect("signs with its scheme");
        // The same key: what one signs, the other's public half verifies (through the
        // provider's verifier); Ed25519 and RFC 6979 ECDSA are deterministic, so compare.
        let other = general.choose_scheme(&[scheme]).unwrap();
        assert_eq!(
            signer.sign(b"m").unwrap(),
            other.sign(b"m").unwrap(),
            "{scheme:?}"
        );
    }
    // Anything else is refused, with the reason.
    let general = pkcs8(&uni_crypto::sign::P256_PKCS8_PREFIX, &[7u8; 31]);
    let e = uni_crypto::sign::FIXED
        .load_private_key(general)
        .unwrap_err();
    assert!(e.to_string().contains("fixed PKCS#8 form"), "{e}");
}

/// The provider built from every scheme verifies with every algorithm compiled in (the
/// algorithms are zero-sized statics, so telling them apart must not go by address).
#[test]
fn every_scheme_keeps_every_algorithm() {
    let p = uni_crypto::provider(rng());
    let ids = |algs: &[&'static dyn pki_types::SignatureVerificationAlgorithm]| {
        let mut v: Vec<_> = algs
            .iter()
            .map(|a| (a.public_key_alg_id(), a.signature_alg_id()))
            .collect();
        v.sort_by_key(|(k, s)| (k.as_ref().to_vec(), s.as_ref().to_vec()));
        v
    };
    assert_eq!(
        ids(p.signature_verification_algorithms.all),
        ids(uni_crypto::verify::ALGORITHMS.all)
    );
    assert_eq!(
        p.signature_verification_algorithms.mapping.len(),
        uni_crypto::verify::ALGORITHMS.mapping.len()
    );
}
