//! `kind = "xenstore"`: the Xen store, xen-arm only.

use super::{Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "xenstore",
    summary: "the Xen store (xen-arm only)",
    receives: "impl Xenstore",
    targets: &[Target::XenArm],
    elsewhere: (
        "the Xen store exists only on Xen",
        Some("target xen-arm for this device"),
    ),
    keys: super::no_keys,
    resolve,
};

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    super::keyless(r, &KIND, implement)
}

fn implement(_target: Target) -> Implementation {
    Implementation::runtime("uni_runtime::platform::Xenstore::new()")
}
