//! `kind = "console"`: text output: stdout on unix, the PV console on Xen.

use super::{Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "console",
    summary: "text output",
    receives: "impl Console",
    targets: Target::ALL,
    elsewhere: ("", None),
    keys: super::no_keys,
    resolve,
};

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    super::keyless(r, &KIND, implement)
}

fn implement(_target: Target) -> Implementation {
    Implementation::runtime("uni_runtime::platform::Console::new()")
}
