//! The AEADs: AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305, for TLS 1.3 (RFC 8446 §5.2:
//! nonce = IV ⊕ sequence number, content type inside) and TLS 1.2 (RFC 5288: a 4-byte implicit
//! and an 8-byte explicit GCM nonce; RFC 7905: ChaCha20-Poly1305 with an implicit nonce).

use alloc::boxed::Box;

use aes_gcm::aead::{AeadInPlace, Buffer, KeyInit};
#[cfg(feature = "tls12")]
use rustls::crypto::cipher::{make_tls12_aad, KeyBlockShape, Tls12AeadAlgorithm, NONCE_LEN};
use rustls::crypto::cipher::{
    make_tls13_aad, AeadKey, BorrowedPayload, InboundOpaqueMessage, InboundPlainMessage, Iv,
    MessageDecrypter, MessageEncrypter, Nonce, OutboundOpaqueMessage, OutboundPlainMessage,
    PrefixedPayload, Tls13AeadAlgorithm, UnsupportedOperationError,
};
use rustls::{ConnectionTrafficSecrets, ContentType, ProtocolVersion};

const TAG_LEN: usize = 16;
/// TLS 1.2 GCM's explicit nonce, sent with each record.
#[cfg(feature = "tls12")]
const GCM_EXPLICIT_NONCE_LEN: usize = 8;

/// Which AEAD, for `extract_keys` and the key length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305,
}

/// One AEAD algorithm.
pub struct Aead<C>(Kind, core::marker::PhantomData<fn() -> C>);

/// AES-128-GCM.
pub static AES_128_GCM: Aead<aes_gcm::Aes128Gcm> = Aead(Kind::Aes128Gcm, core::marker::PhantomData);
/// AES-256-GCM.
pub static AES_256_GCM: Aead<aes_gcm::Aes256Gcm> = Aead(Kind::Aes256Gcm, core::marker::PhantomData);
/// ChaCha20-Poly1305.
pub static CHACHA20_POLY1305: Aead<chacha20poly1305::ChaCha20Poly1305> =
    Aead(Kind::Chacha20Poly1305, core::marker::PhantomData);

trait Cipher: AeadInPlace + KeyInit + Send + Sync + 'static {}
impl<T: AeadInPlace + KeyInit + Send + Sync + 'static> Cipher for T {}

fn new_cipher<C: Cipher>(key: &AeadKey) -> C {
    C::new_from_slice(key.as_ref()).expect("rustls derives keys of the suite's length")
}

impl Kind {
    fn key_len(self) -> usize {
        match self {
            Kind::Aes128Gcm => 16,
            Kind::Aes256Gcm | Kind::Chacha20Poly1305 => 32,
        }
    }

    fn secrets(self, key: AeadKey, iv: Iv) -> ConnectionTrafficSecrets {
        match self {
            Kind::Aes128Gcm => ConnectionTrafficSecrets::Aes128Gcm { key, iv },
            Kind::Aes256Gcm => ConnectionTrafficSecrets::Aes256Gcm { key, iv },
            Kind::Chacha20Poly1305 => ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv },
        }
    }
}

#[allow(private_bounds)]
impl<C: Cipher> Tls13AeadAlgorithm for Aead<C> {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(Tls13::<C>(new_cipher(&key), iv))
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(Tls13::<C>(new_cipher(&key), iv))
    }

    fn key_len(&self) -> usize {
        self.0.key_len()
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok(self.0.secrets(key, iv))
    }
}

#[cfg(feature = "tls12")]
#[allow(private_bounds)]
impl<C: Cipher> Tls12AeadAlgorithm for Aead<C> {
    fn encrypter(&self, key: AeadKey, iv: &[u8], extra: &[u8]) -> Box<dyn MessageEncrypter> {
        match self.0 {
            Kind::Chacha20Poly1305 => Box::new(Tls12Chacha::<C>(new_cipher(&key), Iv::copy(iv))),
            _ => {
                // implicit 4 bytes ‖ explicit 8 bytes (random, then ⊕ sequence number).
                let mut n = [0u8; NONCE_LEN];
                n[..4].copy_from_slice(iv);
                n[4..].copy_from_slice(extra);
                Box::new(Tls12Gcm::<C>(new_cipher(&key), Iv::new(n)))
            }
        }
    }

    fn decrypter(&self, key: AeadKey, iv: &[u8]) -> Box<dyn MessageDecrypter> {
        match self.0 {
            Kind::Chacha20Poly1305 => Box::new(Tls12Chacha::<C>(new_cipher(&key), Iv::copy(iv))),
            _ => {
                let mut n = [0u8; NONCE_LEN];
                n[..4].copy_from_slice(iv);
                Box::new(Tls12Gcm::<C>(new_cipher(&key), Iv::new(n)))
            }
        }
    }

    fn key_block_shape(&self) -> KeyBlockShape {
        match self.0 {
            Kind::Chacha20Poly1305 => KeyBlockShape {
                enc_key_len: 32,
                fixed_iv_len: 12,
                explicit_nonce_len: 0,
            },
            k => KeyBlockShape {
                enc_key_len: k.key_len(),
                fixed_iv_len: 4,
                explicit_nonce_len: GCM_EXPLICIT_NONCE_LEN,
            },
        }
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: &[u8],
        explicit: &[u8],
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        let iv = match self.0 {
            Kind::Chacha20Poly1305 => Iv::copy(iv),
            _ => {
                let mut n = [0u8; NONCE_LEN];
                n[..4].copy_from_slice(iv);
                n[4..].copy_from_slice(explicit);
                Iv::new(n)
            }
        };
        Ok(self.0.secrets(key, iv))
    }
}

fn nonce<C: AeadInPlace>(iv: &Iv, seq: u64) -> aes_gcm::aead::Nonce<C> {
    aes_gcm::aead::Nonce::<C>::clone_from_slice(&Nonce::new(iv, seq).0)
}

struct Tls13<C>(C, Iv);

impl<C: Cipher> MessageEncrypter for Tls13<C> {
    fn encrypt(
        &mut self,
        m: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, rustls::Error> {
        let total_len = self.encrypted_payload_len(m.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_chunks(&m.payload);
        payload.extend_from_slice(&m.typ.to_array());
        let aad = make_tls13_aad(total_len);
        self.0
            .encrypt_in_place(
                &nonce::<C>(&self.1, seq),
                &aad,
                &mut EncryptBuffer(&mut payload),
            )
            .map_err(|_| rustls::Error::EncryptError)?;
        Ok(OutboundOpaqueMessage::new(
            ContentType::ApplicationData,
            ProtocolVersion::TLSv1_2,
            payload,
        ))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + TAG_LEN
    }
}

impl<C: Cipher> MessageDecrypter for Tls13<C> {
    fn decrypt<'a>(
        &mut self,
        mut m: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, rustls::Error> {
        let aad = make_tls13_aad(m.payload.len());
        self.0
            .decrypt_in_place(
                &nonce::<C>(&self.1, seq),
                &aad,
                &mut DecryptBuffer(&mut m.payload),
            )
            .map_err(|_| rustls::Error::DecryptError)?;
        m.into_tls13_unpadded_message()
    }
}

#[cfg(feature = "tls12")]
struct Tls12Chacha<C>(C, Iv);

#[cfg(feature = "tls12")]
impl<C: Cipher> MessageEncrypter for Tls12Chacha<C> {
    fn encrypt(
        &mut self,
        m: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, rustls::Error> {
        let total_len = self.encrypted_payload_len(m.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_chunks(&m.payload);
        let aad = make_tls12_aad(seq, m.typ, m.version, m.payload.len());
        self.0
            .encrypt_in_place(
                &nonce::<C>(&self.1, seq),
                &aad,
                &mut EncryptBuffer(&mut payload),
            )
            .map_err(|_| rustls::Error::EncryptError)?;
        Ok(OutboundOpaqueMessage::new(m.typ, m.version, payload))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + TAG_LEN
    }
}

#[cfg(feature = "tls12")]
impl<C: Cipher> MessageDecrypter for Tls12Chacha<C> {
    fn decrypt<'a>(
        &mut self,
        mut m: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, rustls::Error> {
        let len = m
            .payload
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(rustls::Error::DecryptError)?;
        let aad = make_tls12_aad(seq, m.typ, m.version, len);
        self.0
            .decrypt_in_place(
                &nonce::<C>(&self.1, seq),
                &aad,
                &mut DecryptBuffer(&mut m.payload),
            )
            .map_err(|_| rustls::Error::DecryptError)?;
        Ok(m.into_plain_message())
    }
}

#[cfg(feature = "tls12")]
struct Tls12Gcm<C>(C, Iv);

#[cfg(feature = "tls12")]
impl<C: Cipher> MessageEncrypter for Tls12Gcm<C> {
    fn encrypt(
        &mut self,
        m: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, rustls::Error> {
        let total_len = self.encrypted_payload_len(m.payload.len());
        let n = Nonce::new(&self.1, seq).0;
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_slice(&n[4..]);
        payload.extend_from_chunks(&m.payload);
        let aad = make_tls12_aad(seq, m.typ, m.version, m.payload.len());
        let nonce = aes_gcm::aead::Nonce::<C>::clone_from_slice(&n);
        let tag = self
            .0
            .encrypt_in_place_detached(
                &nonce,
                &aad,
                &mut payload.as_mut()[GCM_EXPLICIT_NONCE_LEN..],
            )
            .map_err(|_| rustls::Error::EncryptError)?;
        payload.extend_from_slice(&tag);
        Ok(OutboundOpaqueMessage::new(m.typ, m.version, payload))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        GCM_EXPLICIT_NONCE_LEN + payload_len + TAG_LEN
    }
}

#[cfg(feature = "tls12")]
impl<C: Cipher> MessageDecrypter for Tls12Gcm<C> {
    fn decrypt<'a>(
        &mut self,
        mut m: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, rustls::Error> {
        let payload: &mut [u8] = &mut m.payload;
        if payload.len() < GCM_EXPLICIT_NONCE_LEN + TAG_LEN {
            return Err(rustls::Error::DecryptError);
        }
        let plain_len = payload.len() - GCM_EXPLICIT_NONCE_LEN - TAG_LEN;
        let mut n = [0u8; NONCE_LEN];
        n[..4].copy_from_slice(&self.1.as_ref()[..4]);
        n[4..].copy_from_slice(&payload[..GCM_EXPLICIT_NONCE_LEN]);
        let aad = make_tls12_aad(seq, m.typ, m.version, plain_len);
        let (body, tag) = payload[GCM_EXPLICIT_NONCE_LEN..].split_at_mut(plain_len);
        self.0
            .decrypt_in_place_detached(
                &aes_gcm::aead::Nonce::<C>::clone_from_slice(&n),
                &aad,
                body,
                aes_gcm::aead::Tag::<C>::from_slice(tag),
            )
            .map_err(|_| rustls::Error::DecryptError)?;
        Ok(m.into_plain_message_range(GCM_EXPLICIT_NONCE_LEN..GCM_EXPLICIT_NONCE_LEN + plain_len))
    }
}

struct EncryptBuffer<'a>(&'a mut PrefixedPayload);

impl AsRef<[u8]> for EncryptBuffer<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl AsMut<[u8]> for EncryptBuffer<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.as_mut()
    }
}

impl Buffer for EncryptBuffer<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> aes_gcm::aead::Result<()> {
        self.0.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }
}

struct DecryptBuffer<'a, 'p>(&'a mut BorrowedPayload<'p>);

impl AsRef<[u8]> for DecryptBuffer<'_, '_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl AsMut<[u8]> for DecryptBuffer<'_, '_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0
    }
}

impl Buffer for DecryptBuffer<'_, '_> {
    fn extend_from_slice(&mut self, _: &[u8]) -> aes_gcm::aead::Result<()> {
        // decrypt_in_place only shrinks the buffer.
        Err(aes_gcm::aead::Error)
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }
}
