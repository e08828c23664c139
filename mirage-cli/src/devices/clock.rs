//! `kind = "clock"`: monotonic and wall clocks and sleeping.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{Device, Implementation, Kind, Resolver};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "clock",
    summary: "monotonic and wall clocks, sleeping",
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
struct Clock;

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    r.keys::<Keys>()?;
    Some(Box::new(Clock))
}

impl Device for Clock {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(
        &self,
        _name: &str,
        _target: Target,
    ) -> Result<Implementation, super::Unsupported> {
        Ok(Implementation::runtime(
            "uni_runtime::platform::Clock::new()",
        ))
    }
}
