//! `kind = "console"`: text output: stdout on unix, the PV console on Xen.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "console",
    summary: "text output",
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
struct Console;

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    r.keys::<Keys>()?;
    Some(Box::new(Console))
}

impl Device for Console {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(
        &self,
        _name: &str,
        _target: Target,
    ) -> Result<Implementation, super::Unsupported> {
        Ok(Implementation::runtime(
            "uni_runtime::platform::Console::new()",
        ))
    }
}
