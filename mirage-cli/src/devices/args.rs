//! `kind = "args"`: the boot arguments, for the app's own keys.
//!
//! The app declares the keys it reads in the device's `keys` table, each with its `type`, an
//! optional `default` and a `doc` line: the generated main hands them to the runtime, which
//! lists them under `--help`, refuses unknown keys and values of the wrong form at boot, and
//! gives the app the declared default. Without a `keys` table the app reads whatever it likes
//! and no key is refused as unknown.

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::{BootArgs, BootKey, Device, Implementation, Kind, Resolver, Unsupported};
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
    keys: Option<indexmap::IndexMap<Spanned<String>, AppKey>>,
}

/// One `keys.<name>` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppKey {
    #[serde(rename = "type")]
    ty: Spanned<String>,
    default: Option<Spanned<toml::Value>>,
    doc: Option<String>,
}

/// The `type`s a declared key takes, and the runtime's `uni_runtime::boot::Type` for each.
pub const TYPES: &[(&str, &str, &str)] = &[
    ("string", "Text", "any text"),
    ("integer", "Integer", "a whole number, 0 or more"),
    ("port", "Port", "a port number, 1–65535"),
    ("seconds", "Seconds", "a whole number of seconds, 1 or more"),
    ("flag", "Flag", "a bare --key, on when given"),
    ("path", "Path", "a path"),
    ("ipv4", "Ipv4", "an IPv4 address"),
];

#[derive(Debug)]
struct Args {
    /// `None`: no `keys` table, the app reads any key.
    keys: Option<Vec<BootKey>>,
}

fn resolve(r: &mut Resolver<'_>) -> Option<Box<dyn Device>> {
    let table = r.keys::<Keys>()?;
    let Some(declared) = table.keys else {
        return Some(Box::new(Args { keys: None }));
    };
    let mut keys = vec![];
    for (name, key) in declared {
        let path = format!("keys.{}", name.get_ref());
        let n = name.get_ref();
        let good_name = !n.is_empty()
            && !n.starts_with('-')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !good_name {
            r.err(
                name.span(),
                &path,
                format!("boot argument name `{n}` cannot be given as --{n}=VALUE"),
                "not a key name",
                "letters, digits, `-` and `_`, not starting with `-`",
            );
            continue;
        }
        if n == "help" || n.starts_with("uni-") {
            r.err(
                name.span(),
                &path,
                format!("boot argument --{n} is the runtime's own"),
                "reserved",
                "another name: --help and the --uni-* keys belong to the runtime",
            );
            continue;
        }
        let accepted = || {
            TYPES
                .iter()
                .map(|(t, _, _)| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(&(_, ty, expected)) = TYPES.iter().find(|(t, _, _)| t == key.ty.get_ref()) else {
            r.err(
                key.ty.span(),
                &format!("{path}.type"),
                format!("unknown boot argument type \"{}\"", key.ty.get_ref()),
                "unknown type",
                accepted(),
            );
            continue;
        };
        let default = match &key.default {
            None => None,
            Some(d) => {
                let text = match d.get_ref() {
                    toml::Value::String(s) => Some(s.clone()),
                    toml::Value::Integer(i) => Some(i.to_string()),
                    _ => None,
                };
                match text {
                    _ if ty == "Flag" => {
                        r.err(
                            d.span(),
                            &format!("{path}.default"),
                            "a flag takes no default: it is off unless given",
                            "not for a flag",
                            "no `default` for type = \"flag\"",
                        );
                        continue;
                    }
                    Some(t) if accepts(ty, &t) => Some(t),
                    _ => {
                        r.err(
                            d.span(),
                            &format!("{path}.default"),
                            format!(
                                "the default of --{n} is not {expected}, as type = \"{}\" wants",
                                key.ty.get_ref()
                            ),
                            "wrong form",
                            expected,
                        );
                        continue;
                    }
                }
            }
        };
        keys.push(BootKey::new(
            n.clone(),
            ty,
            default,
            key.doc.unwrap_or_default(),
        ));
    }
    Some(Box::new(Args { keys: Some(keys) }))
}

/// Whether `v` is a value of the runtime type `ty`, as `uni_runtime::boot::Type::accepts`
/// decides at boot.
fn accepts(ty: &str, v: &str) -> bool {
    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    match ty {
        "Port" => digits && v.parse::<u16>().is_ok_and(|p| p > 0),
        "Integer" => digits && v.parse::<u64>().is_ok(),
        "Seconds" => digits && v.parse::<u32>().is_ok_and(|s| s > 0),
        "Ipv4" => v.parse::<std::net::Ipv4Addr>().is_ok(),
        "Path" => !v.is_empty(),
        _ => true,
    }
}

impl Device for Args {
    fn kind(&self) -> &'static Kind {
        &KIND
    }

    fn implement(&self, _name: &str, _target: Target) -> Result<Implementation, Unsupported> {
        Ok(Implementation {
            boot_args: BootArgs::App {
                keys: self.keys.clone().unwrap_or_default(),
                open: self.keys.is_none(),
            },
            ..Implementation::runtime("boot_args.clone()")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_checked_as_the_runtime_checks_values() {
        assert!(accepts("Port", "8080") && !accepts("Port", "0") && !accepts("Port", "+80"));
        assert!(!accepts("Port", "65536") && !accepts("Integer", "-1"));
        assert!(accepts("Seconds", "1") && !accepts("Seconds", "0"));
        assert!(accepts("Ipv4", "10.0.0.1") && !accepts("Ipv4", "10.0.0"));
        assert!(accepts("Text", "") && !accepts("Path", ""));
    }
}
