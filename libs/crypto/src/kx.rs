//! Key exchange: X25519 (RFC 7748), and ECDHE over P-256 and P-384 with uncompressed SEC1
//! points (RFC 8446 §4.2.8.2). Ephemeral secrets come from the [`Rng`] the group was made with.

use alloc::boxed::Box;
use alloc::vec::Vec;

use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};

use crate::rng::{RandCore, Rng};

/// Which curve a [`KxGroup`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// X25519.
    X25519,
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

/// A key-exchange group bound to a random number generator.
#[derive(Debug)]
pub struct KxGroup {
    curve: Curve,
    rng: &'static Rng,
}

impl KxGroup {
    /// `curve` drawing its ephemeral secrets from `rng`.
    pub const fn new(curve: Curve, rng: &'static Rng) -> KxGroup {
        KxGroup { curve, rng }
    }
}

impl SupportedKxGroup for KxGroup {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let mut rng = RandCore(self.rng);
        if !self.rng.is_seeded() {
            return Err(Error::FailedToGetRandomBytes);
        }
        Ok(match self.curve {
            Curve::X25519 => {
                let secret = x25519_dalek::EphemeralSecret::random_from_rng(&mut rng);
                let public = x25519_dalek::PublicKey::from(&secret);
                Box::new(X25519 {
                    secret,
                    public: public.to_bytes(),
                })
            }
            Curve::P256 => {
                let secret = p256::ecdh::EphemeralSecret::random(&mut rng);
                let public = p256::EncodedPoint::from(secret.public_key())
                    .as_bytes()
                    .to_vec();
                Box::new(P256 { secret, public })
            }
            Curve::P384 => {
                let secret = p384::ecdh::EphemeralSecret::random(&mut rng);
                let public = p384::EncodedPoint::from(secret.public_key())
                    .as_bytes()
                    .to_vec();
                Box::new(P384 { secret, public })
            }
        })
    }

    fn name(&self) -> NamedGroup {
        match self.curve {
            Curve::X25519 => NamedGroup::X25519,
            Curve::P256 => NamedGroup::secp256r1,
            Curve::P384 => NamedGroup::secp384r1,
        }
    }
}

fn bad_share() -> Error {
    PeerMisbehaved::InvalidKeyShare.into()
}

struct X25519 {
    secret: x25519_dalek::EphemeralSecret,
    public: [u8; 32],
}

impl ActiveKeyExchange for X25519 {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        let peer: [u8; 32] = peer.try_into().map_err(|_| bad_share())?;
        let shared = self.secret.diffie_hellman(&peer.into());
        // An all-zero result means a low-order peer point (RFC 7748 §6.1).
        if !shared.was_contributory() {
            return Err(bad_share());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct P256 {
    secret: p256::ecdh::EphemeralSecret,
    public: Vec<u8>,
}

impl ActiveKeyExchange for P256 {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        // Only uncompressed points are allowed in TLS 1.3 (and what TLS 1.2 peers send).
        if peer.first() != Some(&4) {
            return Err(bad_share());
        }
        let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| bad_share())?;
        Ok(SharedSecret::from(
            &self.secret.diffie_hellman(&peer).raw_secret_bytes()[..],
        ))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

struct P384 {
    secret: p384::ecdh::EphemeralSecret,
    public: Vec<u8>,
}

impl ActiveKeyExchange for P384 {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        if peer.first() != Some(&4) {
            return Err(bad_share());
        }
        let peer = p384::PublicKey::from_sec1_bytes(peer).map_err(|_| bad_share())?;
        Ok(SharedSecret::from(
            &self.secret.diffie_hellman(&peer).raw_secret_bytes()[..],
        ))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp384r1
    }
}
