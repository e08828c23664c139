//! `kind = "random"`: cryptographically secure random bytes: Fortuna over the platform's entropy (the OS on
//! unix; counter jitter, event timing and `--uni-seed` on Xen).

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{BootArgs, Crate, Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "random",
    summary: "cryptographically secure random bytes",
    targets: Target::ALL,
    elsewhere: ("", None),
    keys: serde_aux::serde_introspection::serde_introspect::<Keys>,
    resolve,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
}

#[derive(Debug)]
struct Random;

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    r.keys::<Keys>()?;
    Some(Box::new(Random))
}

impl Device for Random {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(
        &self,
        _name: &str,
        _target: Target,
    ) -> Result<Implementation, super::Unsupported> {
        Ok(Implementation {
            crates: vec![Crate::Runtime, Crate::Crypto],
            constructor: "uni_crypto::Rng::from_device(uni_runtime::platform::Random::new(), uni_runtime::platform::Clock::new())".into(),
            fallible: true,
            boot_args: BootArgs::None,
        })
    }
}
