//! `kind = "kv_ro"`: a directory embedded into the image, read-only. `uni configure` packs it
//! into `_build/<target>/kv/<name>.kv`; the store borrows the values from the image.

use std::path::PathBuf;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{BootArgs, Crate, Device, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "kv_ro",
    summary: "a directory embedded into the image",
    receives: "impl KvRo",
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
    dir: Option<Spanned<String>>,
}

#[derive(Debug)]
struct KvRo {
    /// Absolute.
    dir: PathBuf,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let dir = r.existing("dir", &keys.dir, true);
    Some(Box::new(KvRo { dir }))
}

/// Where the pack of device `name` goes, relative to `_build/<target>/`.
fn pack_path(name: &str) -> String {
    format!("kv/{name}.kv")
}

impl Device for KvRo {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(&self, name: &str, _target: Target) -> Result<Implementation, Unsupported> {
        Ok(Implementation {
            crates: vec![Crate::Runtime],
            constructor: format!(
                "uni_runtime::kv::Embedded::new(include_bytes!(\"../{}\"))",
                pack_path(name)
            ),
            fallible: true,
            boot_args: BootArgs::None,
        })
    }

    fn kv_pack(&self, name: &str) -> Option<(PathBuf, String)> {
        Some((self.dir.clone(), pack_path(name)))
    }
}
