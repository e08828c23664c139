//! What a kind gets to validate one `[devices.<name>]` table: its typed keys, with spans into
//! the file, and helpers for the checks several kinds share (paths, references to other
//! devices). Every error is collected with its span, key path and the accepted values.

use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use toml::Spanned;

use super::{EmbeddedFile, Kind, KINDS};
use crate::diag::{key_path, toml_error, Diagnostic, Source};

pub struct Resolver<'a> {
    pub src: &'a Source,
    errors: &'a mut Vec<Diagnostic>,
    kind: &'static Kind,
    /// `devices.<name>`.
    pub key: String,
    pub name: &'a str,
    /// The span of the table's `kind` value: errors about the table as a whole point there.
    pub table: Range<usize>,
    /// The config's directory, which relative paths start from.
    pub dir: &'a Path,
    /// Every declared device: (name, kind as written).
    declared: &'a [(String, String)],
    failed: bool,
}

impl<'a> Resolver<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        src: &'a Source,
        errors: &'a mut Vec<Diagnostic>,
        kind: &'static Kind,
        name: &'a str,
        table: Range<usize>,
        dir: &'a Path,
        declared: &'a [(String, String)],
    ) -> Resolver<'a> {
        Resolver {
            src,
            errors,
            kind,
            key: format!("devices.{name}"),
            name,
            table,
            dir,
            declared,
            failed: false,
        }
    }

    /// Runs the kind's validation: `None` when it reported any error.
    pub(crate) fn resolve(mut self) -> Option<Box<dyn super::Device>> {
        let dev = (self.kind.resolve)(&mut self);
        dev.filter(|_| !self.failed)
    }

    /// How many devices with a disk (`block`, `kv_rw`) are declared before this one: its Xen
    /// disk's index (0 is `xvda`), as [`super::Device::disk`] numbers them.
    pub fn disk_ordinal(&self) -> usize {
        self.declared
            .iter()
            .take_while(|(n, _)| n != self.name)
            .filter(|(_, k)| super::DISK_KINDS.contains(&k.as_str()))
            .count()
    }

    /// `devices.<name>.<k>`, or the table's own key for an empty `k`.
    fn path(&self, k: &str) -> String {
        if k.is_empty() {
            self.key.clone()
        } else {
            format!("{}.{k}", self.key)
        }
    }

    /// Reports an error at `span` about key `k` of this table (`""`: the table).
    pub fn err(
        &mut self,
        span: Range<usize>,
        k: &str,
        msg: impl Into<String>,
        label: impl Into<String>,
        accepted: impl Into<String>,
    ) {
        let accepted = accepted.into();
        let accepted = (!accepted.is_empty()).then_some(accepted);
        let key = self.path(k);
        self.errors
            .push(self.src.error(span, key, msg, label, accepted));
        self.failed = true;
    }

    /// The table's keys as the kind's struct `T`. Keys the kind does not take are reported
    /// first, all of them, as keys of another kind ("does not apply") or as unknown ones.
    pub fn keys<T: DeserializeOwned>(&mut self) -> Option<T> {
        let given: indexmap::IndexMap<Spanned<String>, Spanned<IgnoredAny>> = match self.pick() {
            Ok(g) => g,
            Err(d) => {
                self.errors.push(*d);
                self.failed = true;
                return None;
            }
        };
        let takes = (self.kind.keys)();
        let accepts = format!(
            "a device of kind \"{}\" accepts: {}",
            self.kind.name,
            takes
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut stray = false;
        for (k, v) in &given {
            let k_name = k.get_ref().as_str();
            if takes.contains(&k_name) {
                continue;
            }
            stray = true;
            if KINDS.iter().any(|kind| (kind.keys)().contains(&k_name)) {
                let msg = format!(
                    "key `{k_name}` does not apply to a device of kind \"{}\"",
                    self.kind.name
                );
                self.err(v.span(), k_name, msg, "not accepted here", accepts.clone());
            } else {
                let msg = format!("unknown key `{k_name}`");
                self.err(k.span(), k_name, msg, "unknown key", accepts.clone());
            }
        }
        if stray {
            return None;
        }
        match self.pick() {
            Ok(t) => Some(t),
            Err(d) => {
                self.errors.push(*d);
                self.failed = true;
                None
            }
        }
    }

    /// The value at `path` inside this table (`["keys", "colour"]`, a value the kind's struct
    /// took as any), as `T`: its errors name their whole key path,
    /// `devices.args.keys.colour.default`, which a map with spanned keys cannot give.
    pub fn at<T: DeserializeOwned>(&mut self, path: &[&str]) -> Option<T> {
        match self.pick_at(path) {
            Ok(t) => Some(t),
            Err(d) => {
                self.errors.push(*d);
                self.failed = true;
                None
            }
        }
    }

    /// Deserializes this device's table, and only it, from the whole file, so that spans are
    /// offsets into the file.
    fn pick<T: DeserializeOwned>(&self) -> Result<T, Box<Diagnostic>> {
        self.pick_at(&[])
    }

    /// [`Resolver::pick`] of the value at `path` inside the table.
    fn pick_at<T: DeserializeOwned>(&self, path: &[&str]) -> Result<T, Box<Diagnostic>> {
        let de = toml::de::Deserializer::parse(&self.src.text)
            .map_err(|e| toml_error(self.src, &e, String::new()))?;
        let mut track = serde_path_to_error::Track::new();
        let full: Vec<&str> = ["devices", self.name]
            .into_iter()
            .chain(path.iter().copied())
            .collect();
        let seed = Pick::<T> {
            path: &full,
            out: PhantomData,
        };
        match seed.deserialize(serde_path_to_error::Deserializer::new(de, &mut track)) {
            Ok(Some(t)) => Ok(t),
            Ok(None) => unreachable!("the value was found by the first parse"),
            Err(e) => Err(toml_error(self.src, &e, key_path(&track.path())).into()),
        }
    }

    /// A path key that must name an existing file (or, `want_dir`, directory), relative to the
    /// config.
    pub fn existing(&mut self, k: &str, v: &Option<Spanned<String>>, want_dir: bool) -> PathBuf {
        let what = if want_dir { "directory" } else { "file" };
        let Some(v) = v else {
            self.err(
                self.table.clone(),
                k,
                format!("missing key `{k}`"),
                format!("this device needs `{k}`"),
                format!("`{k}`: the path of a {what}, relative to this file"),
            );
            return PathBuf::new();
        };
        let p = self.dir.join(v.get_ref());
        let good = if want_dir { p.is_dir() } else { p.is_file() };
        if !good {
            let why = if p.exists() {
                format!("\"{}\" is not a {what}", v.get_ref())
            } else {
                format!("\"{}\" does not exist", v.get_ref())
            };
            let accepted = format!(
                "the path of an existing {what}, relative to `{}`",
                self.dir.display()
            );
            self.err(v.span(), k, why, format!("no such {what}"), accepted);
        }
        p
    }

    /// An optional key naming a file to embed into the image.
    pub fn embedded(&mut self, k: &str, v: &Option<Spanned<String>>) -> Option<EmbeddedFile> {
        let written = v.as_ref()?.get_ref().clone();
        let path = self.existing(k, v, false);
        Some(EmbeddedFile { path, written })
    }

    /// A key naming another device, which must be of kind `k`.
    pub fn reference(&mut self, k: &str, v: &Option<Spanned<String>>) -> String {
        let names: Vec<&str> = self.declared.iter().map(|(n, _)| n.as_str()).collect();
        let Some(v) = v else {
            self.err(
                self.table.clone(),
                k,
                format!("missing key `{k}`"),
                format!("this device needs `{k}`"),
                format!(
                    "`{k}`: the name of a declared device; declared: {}",
                    quoted(&names)
                ),
            );
            return String::new();
        };
        if !names.contains(&v.get_ref().as_str()) {
            self.err(
                v.span(),
                k,
                format!("no device named \"{}\"", v.get_ref()),
                "unknown device",
                format!("declared devices: {}", quoted(&names)),
            );
        } else if let Some((_, kind)) = self
            .declared
            .iter()
            .find(|(n, kind)| n == v.get_ref() && kind != k)
        {
            let of_kind: Vec<&str> = self
                .declared
                .iter()
                .filter(|(_, kd)| kd == k)
                .map(|(n, _)| n.as_str())
                .collect();
            let msg = format!(
                "device \"{}\" is a {kind} device, not a {k} device",
                v.get_ref()
            );
            let accepted = format!(
                "declared {k} devices: {}",
                if of_kind.is_empty() {
                    "none".to_string()
                } else {
                    quoted(&of_kind)
                }
            );
            self.err(v.span(), k, msg, format!("not a {k} device"), accepted);
        }
        v.get_ref().clone()
    }
}

pub(crate) fn quoted(v: &[&str]) -> String {
    v.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deserializes the value at `path` (table keys, outermost first) of a whole file as `T`,
/// skipping everything else; `None` when the file has no such value.
struct Pick<'p, T> {
    path: &'p [&'p str],
    out: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Pick<'_, T> {
    type Value = Option<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Pick<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(k) = map.next_key::<String>()? {
            match self.path {
                [first] if k == *first => found = Some(map.next_value::<T>()?),
                [first, rest @ ..] if k == *first => {
                    found = map.next_value_seed(Pick::<T> {
                        path: rest,
                        out: PhantomData,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}
