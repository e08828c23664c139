//! SHA-256 and SHA-384 for the transcript hash, HMAC, HKDF and the TLS 1.2 PRF.

use alloc::boxed::Box;

use rustls::crypto::hash::{self, HashAlgorithm, Output};
use sha2::Digest;

/// A RustCrypto digest as a rustls hash.
pub struct Hash<D>(core::marker::PhantomData<fn() -> D>);

/// SHA-256.
pub static SHA256: Hash<sha2::Sha256> = Hash(core::marker::PhantomData);
/// SHA-384.
pub static SHA384: Hash<sha2::Sha384> = Hash(core::marker::PhantomData);

trait Named {
    const ALG: HashAlgorithm;
}
impl Named for sha2::Sha256 {
    const ALG: HashAlgorithm = HashAlgorithm::SHA256;
}
impl Named for sha2::Sha384 {
    const ALG: HashAlgorithm = HashAlgorithm::SHA384;
}

#[allow(private_bounds)]
impl<D: Digest + Clone + Send + Sync + Named + 'static> hash::Hash for Hash<D> {
    fn start(&self) -> Box<dyn hash::Context> {
        Box::new(Context(D::new()))
    }

    fn hash(&self, data: &[u8]) -> Output {
        Output::new(&D::digest(data)[..])
    }

    fn output_len(&self) -> usize {
        <D as Digest>::output_size()
    }

    fn algorithm(&self) -> HashAlgorithm {
        D::ALG
    }
}

struct Context<D>(D);

impl<D: Digest + Clone + Send + Sync + 'static> hash::Context for Context<D> {
    fn fork_finish(&self) -> Output {
        Output::new(&self.0.clone().finalize()[..])
    }

    fn fork(&self) -> Box<dyn hash::Context> {
        Box::new(Context(self.0.clone()))
    }

    fn finish(self: Box<Self>) -> Output {
        Output::new(&self.0.finalize()[..])
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}
