//! `kind = "clock"`: monotonic and wall clocks and sleeping.

use super::{Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "clock",
    summary: "monotonic and wall clocks, sleeping",
    receives: "impl Clock",
    targets: Target::ALL,
    elsewhere: ("", None),
    keys: super::no_keys,
    resolve,
};

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    super::keyless(r, &KIND, implement)
}

fn implement(_target: Target) -> Implementation {
    Implementation::runtime("uni_runtime::platform::Clock::new()")
}
