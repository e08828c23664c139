//! `kind = "block"`: a block device backed by a disk image file (MirageOS's mirage-block-unix and
//! mirage-block-xen).
//! * unix: the file itself (`uni_runtime::platform::Block`: 512-byte sectors, `flush` is
//!   `fdatasync`); `--<name>-file=PATH` at boot names another image.
//! * xen-arm: blkfront. The xl file gets a `disk =` entry for the image (`xvda` for the first
//!   block device, `xvdb` for the second, …), and the guest opens that disk by its index.

use std::path::PathBuf;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{BootArgs, BootKey, Crate, Device, Disk, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "block",
    summary: "a block device",
    receives: "impl Block",
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
    file: Option<Spanned<String>>,
}

#[derive(Debug)]
struct Block {
    /// Absolute.
    file: PathBuf,
    /// As written in the config.
    written: String,
    /// Among the config's block devices: its Xen disk (0 is `xvda`).
    index: usize,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let file = r.existing("file", &keys.file, false);
    Some(Box::new(Block {
        file,
        written: keys
            .file
            .as_ref()
            .map(|f| f.get_ref().clone())
            .unwrap_or_default(),
        index: r.disk_ordinal(),
    }))
}

impl Device for Block {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(&self, name: &str, target: Target) -> Result<Implementation, Unsupported> {
        let (constructor, boot_args) = open(name, &self.written, self.index, target);
        Ok(Implementation {
            crates: vec![Crate::Runtime],
            constructor,
            fallible: true,
            boot_args,
        })
    }

    fn disk(&self) -> Option<Disk> {
        Some(Disk {
            file: self.file.clone(),
            read_only: false,
        })
    }
}

/// The expression that opens a disk (a `Result` of `uni_runtime::platform::Block`) for device
/// `name`, and the boot arguments it reads: on unix the image as written in the config
/// (`--<name>-file=PATH` overrides), on xen-arm Xen disk `index`. Shared with `kv_rw`.
pub(super) fn open(name: &str, written: &str, index: usize, target: Target) -> (String, BootArgs) {
    match target {
        Target::Unix => {
            let arg = format!("{name}-file");
            (
                format!(
                    "uni_runtime::platform::Block::open(&boot_args.get_or({arg:?}, std::string::String::from({}))?, false)",
                    super::runtime_path(written)
                ),
                BootArgs::Keys(vec![BootKey::new(
                    arg,
                    "Path",
                    Some(written.to_string()),
                    "the disk image on the host",
                )]),
            )
        }
        Target::XenArm => (
            format!("uni_runtime::platform::Block::open({index}).await"),
            BootArgs::None,
        ),
    }
}
