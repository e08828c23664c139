//! `kind = "block"`: a block device backed by a disk image file. Declared in schema 1 and
//! validated; no target provides it yet.

use std::path::PathBuf;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{Device, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "block",
    summary: "a block device",
    targets: &[],
    elsewhere: (
        "the block device is not implemented yet (declared in schema 1, no target has it yet)",
        None,
    ),
    keys: serde_aux::serde_introspection::serde_introspect::<Keys>,
    resolve,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    file: Option<Spanned<String>>,
}

#[derive(Debug)]
struct Block {
    /// Absolute.
    #[allow(dead_code)] // read by the targets that will provide it
    file: PathBuf,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let file = r.existing("file", &keys.file, false);
    Some(Box::new(Block { file }))
}

impl Device for Block {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(&self, _name: &str, target: Target) -> Result<Implementation, Unsupported> {
        unreachable!("KIND.targets is empty, so {target} was never asked")
    }
}
