//! `kind = "args"`: the boot arguments, for the app's own keys.

use super::{BootArgs, Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "args",
    summary: "the boot arguments, for the app's own keys",
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
        boot_args: BootArgs::All,
        ..Implementation::runtime("boot_args.clone()")
    }
}
