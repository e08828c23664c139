//! `kind = "args"`: the boot arguments, for the app's own keys.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{BootArgs, Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "args",
    summary: "the boot arguments, for the app's own keys",
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
struct Args;

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    r.keys::<Keys>()?;
    Some(Box::new(Args))
}

impl Device for Args {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(
        &self,
        _name: &str,
        _target: Target,
    ) -> Result<Implementation, super::Unsupported> {
        Ok(Implementation {
            boot_args: BootArgs::All,
            ..Implementation::runtime("boot_args.clone()")
        })
    }
}
