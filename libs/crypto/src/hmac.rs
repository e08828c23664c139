//! HMAC-SHA-256 and HMAC-SHA-384 (HKDF and the TLS 1.2 PRF are built on these by rustls's
//! `HkdfUsingHmac` and `PrfUsingHmac`).

use alloc::boxed::Box;

use ::hmac::{Mac, SimpleHmac};
use rustls::crypto::hmac::{self, Tag};
use sha2::Digest;

/// HMAC over a RustCrypto digest.
pub struct Hmac<D>(core::marker::PhantomData<fn() -> D>);

/// HMAC-SHA-256.
pub static HMAC_SHA256: Hmac<sha2::Sha256> = Hmac(core::marker::PhantomData);
/// HMAC-SHA-384.
pub static HMAC_SHA384: Hmac<sha2::Sha384> = Hmac(core::marker::PhantomData);

impl<D> hmac::Hmac for Hmac<D>
where
    D: Digest + digest_bounds::BlockSized + Clone + Send + Sync + 'static,
{
    fn with_key(&self, key: &[u8]) -> Box<dyn hmac::Key> {
        Box::new(Key(
            <SimpleHmac<D> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
        ))
    }

    fn hash_output_len(&self) -> usize {
        <D as Digest>::output_size()
    }
}

mod digest_bounds {
    /// The bound `SimpleHmac` needs (a block-oriented digest).
    pub trait BlockSized: sha2::digest::core_api::BlockSizeUser {}
    impl<T: sha2::digest::core_api::BlockSizeUser> BlockSized for T {}
}

struct Key<D: Digest + sha2::digest::core_api::BlockSizeUser>(SimpleHmac<D>);

impl<D> hmac::Key for Key<D>
where
    D: Digest + sha2::digest::core_api::BlockSizeUser + Clone + Send + Sync + 'static,
{
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> Tag {
        let mut m = self.0.clone();
        m.update(first);
        for x in middle {
            m.update(x);
        }
        m.update(last);
        Tag::new(&m.finalize().into_bytes()[..])
    }

    fn tag_len(&self) -> usize {
        <D as Digest>::output_size()
    }
}
