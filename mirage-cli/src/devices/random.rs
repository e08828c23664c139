//! `kind = "random"`: cryptographically secure random bytes: Fortuna over the platform's entropy (the OS on
//! unix; counter jitter, event timing and `--uni-seed` on Xen).

use super::{BootArgs, Crate, Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "random",
    summary: "cryptographically secure random bytes",
    receives: "impl Random",
    targets: Target::ALL,
    elsewhere: ("", None),
    keys: super::no_keys,
    resolve,
};

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    super::keyless(r, &KIND, implement)
}

fn implement(_target: Target) -> Implementation {
    Implementation {
        crates: vec![Crate::Runtime, Crate::Crypto],
        constructor: "uni_crypto::Rng::from_device(uni_runtime::platform::Random::new(), uni_runtime::platform::Clock::new())".into(),
        fallible: true,
        boot_args: BootArgs::None,
    }
}
