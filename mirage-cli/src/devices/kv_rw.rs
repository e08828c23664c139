//! `kind = "kv_rw"`: a crash-safe key-value store with commit history (uni-kv, MirageOS's
//! `Mirage_kv.RW` as chamelon provides it) on a disk image of its own: the file on unix, a Xen
//! disk (blkfront) on xen-arm, as for `kind = "block"`. The image is made with `uni kv format`;
//! one that holds no store is refused at boot unless `format = true`.

use std::path::PathBuf;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{Crate, Device, Disk, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "kv_rw",
    summary: "a crash-safe key-value store on a disk image",
    receives: "impl KvRw",
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
    format: Option<Spanned<bool>>,
}

#[derive(Debug)]
struct KvRw {
    /// Absolute; it may not exist yet (`uni kv format` makes it).
    file: PathBuf,
    /// As written in the config.
    written: String,
    /// Format an image that holds no store (never a damaged one).
    format: bool,
    /// Among the config's devices with a disk: its Xen disk (0 is `xvda`).
    index: usize,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let keys = r.keys::<Keys>()?;
    let Some(file) = &keys.file else {
        r.err(
            r.table.clone(),
            "file",
            "missing key `file`",
            "this device needs `file`",
            "`file`: the path of the store's disk image, relative to this file (make it with \
             `uni kv format --size 16M FILE`)",
        );
        return None;
    };
    Some(Box::new(KvRw {
        file: r.dir.join(file.get_ref()),
        written: file.get_ref().clone(),
        format: keys.format.as_ref().is_some_and(|f| *f.get_ref()),
        index: r.disk_ordinal(),
    }))
}

impl Device for KvRw {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(&self, name: &str, target: Target) -> Result<Implementation, Unsupported> {
        let (block, boot_args) = super::block::open(name, &self.written, self.index, target);
        Ok(Implementation {
            crates: vec![Crate::Runtime, Crate::Kv],
            constructor: format!(
                "uni_kv::open({block}?, uni_runtime::platform::Clock::new(), {}).await",
                self.format
            ),
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
