//! Key exchange: X25519 (RFC 7748), and ECDHE over P-256 and P-384 with uncompressed SEC1
//! points (RFC 8446 §4.2.8.2; P-384 with the `p384` feature). Ephemeral secrets come from the
//! [`Rng`] the group was made with.

use alloc::boxed::Box;
use alloc::vec::Vec;

use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};

use crate::rng::{RandCore, Rng};

/// A key-exchange group's constructor: binds the group to the generator its ephemeral
/// secrets come from. A provider names only the constructors it offers, so an image links
/// only those groups' code.
pub type KxGroupFn = fn(&'static Rng) -> &'static dyn SupportedKxGroup;

/// X25519, drawing from `rng`.
pub fn x25519(rng: &'static Rng) -> &'static dyn SupportedKxGroup {
    Box::leak(Box::new(X25519Group(rng)))
}

/// P-256 (secp256r1), drawing from `rng`.
pub fn p256(rng: &'static Rng) -> &'static dyn SupportedKxGroup {
    Box::leak(Box::new(P256Group(rng)))
}

/// P-384 (secp384r1), drawing from `rng`.
#[cfg(feature = "p384")]
pub fn p384(rng: &'static Rng) -> &'static dyn SupportedKxGroup {
    Box::leak(Box::new(P384Group(rng)))
}

/// The generator, if it is seeded (key shares must never come from an unseeded one).
fn seeded(rng: &'static Rng) -> Result<RandCore<'static>, Error> {
    if !rng.is_seeded() {
        return Err(Error::FailedToGetRandomBytes);
    }
    Ok(RandCore(rng))
}

/// The X25519 group.
#[derive(Debug)]
pub struct X25519Group(&'static Rng);

impl SupportedKxGroup for X25519Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let mut rng = seeded(self.0)?;
        let secret = x25519_dalek::EphemeralSecret::random_from_rng(&mut rng);
        let public = x25519_dalek::PublicKey::from(&secret);
        Ok(Box::new(X25519 {
            secret,
            public: public.to_bytes(),
        }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// The P-256 group.
#[derive(Debug)]
pub struct P256Group(&'static Rng);

impl SupportedKxGroup for P256Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let mut rng = seeded(self.0)?;
        let secret = p256::ecdh::EphemeralSecret::random(&mut rng);
        let public = p256::EncodedPoint::from(secret.public_key())
            .as_bytes()
            .to_vec();
        Ok(Box::new(P256 { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

/// The P-384 group.
#[cfg(feature = "p384")]
#[derive(Debug)]
pub struct P384Group(&'static Rng);

#[cfg(feature = "p384")]
impl SupportedKxGroup for P384Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let mut rng = seeded(self.0)?;
        let secret = p384::ecdh::EphemeralSecret::random(&mut rng);
        let public = p384::EncodedPoint::from(secret.public_key())
            .as_bytes()
            .to_vec();
        Ok(Box::new(P384 { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp384r1
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

#[cfg(feature = "p384")]
struct P384 {
    secret: p384::ecdh::EphemeralSecret,
    public: Vec<u8>,
}

#[cfg(feature = "p384")]
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
