//! `kind = "xenstore"`: the Xen store, xen-arm only.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "xenstore",
    summary: "the Xen store (xen-arm only)",
    targets: &[Target::XenArm],
    elsewhere: (
        "the Xen store exists only on Xen",
        Some("target xen-arm for this device"),
    ),
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
struct Xenstore;

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    r.keys::<Keys>()?;
    Some(Box::new(Xenstore))
}

impl Device for Xenstore {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(
        &self,
        _name: &str,
        _target: Target,
    ) -> Result<Implementation, super::Unsupported> {
        Ok(Implementation::runtime(
            "uni_runtime::platform::Xenstore::new()",
        ))
    }
}
