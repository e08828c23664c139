//! `kind = "block"`: a block device backed by a disk image file. On unix the file itself
//! (`uni_runtime::platform::Block`: 512-byte sectors, `flush` is `fdatasync`); `--<name>-file=PATH`
//! at boot names another image. Xen's blkfront is not written yet.

use std::path::PathBuf;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{BootArgs, Crate, Device, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "block",
    summary: "a block device",
    targets: &[Target::Unix],
    elsewhere: (
        "the block device is not implemented on Xen yet (blkfront)",
        Some("target unix for this device"),
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

    fn implement(&self, name: &str, _target: Target) -> Result<Implementation, Unsupported> {
        let arg = format!("{name}-file");
        Ok(Implementation {
            crates: vec![Crate::Runtime],
            constructor: format!(
                "uni_runtime::platform::Block::open(&boot_args.get_or({arg:?}, std::string::String::from({:?}))?, false)",
                self.file.display().to_string()
            ),
            fallible: true,
            boot_args: BootArgs::Keys(vec![arg]),
        })
    }
}
