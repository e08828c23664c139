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

use uni_runtime::boot::Type;

use super::{BootArgs, BootKey, Device, Implementation, Kind, Resolver, Unsupported};
use crate::target::Target;

pub const KIND: Kind = Kind {
    name: "args",
    summary: "the boot arguments, for the app's own keys",
    receives: "BootArgs",
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
    /// Each entry is read on its own ([`Resolver::at`]), so that its errors name it.
    keys: Option<indexmap::IndexMap<Spanned<String>, IgnoredAny>>,
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
    for name in declared.into_keys() {
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
        let Some(key) = r.at::<AppKey>(&["keys", n]) else {
            continue;
        };
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
    runtime_type(ty).accepts(Some(v))
}

/// The platform's own boot arguments on `target` and their runtime types, as
/// `uni_runtime::boot::PLATFORM_KEYS` declares them.
pub fn platform_keys(target: Target) -> &'static [(&'static str, &'static str)] {
    match target {
        Target::Unix => &[("log-level", "LogLevels")],
        Target::XenArm => &[
            ("log-level", "LogLevels"),
            ("uni-timestamps", "Flag"),
            ("uni-boot-info", "Flag"),
            ("uni-seed", "Text"),
        ],
    }
}

/// The runtime's type of a boot argument, by the name the generated main gives it
/// ([`super::BootKey::ty`]): the runtime checks values at boot with it, and configure checks
/// `boot-args` and `[xen] extra` with it too. A type not named here is left to the boot's check.
fn runtime_type(ty: &str) -> Type {
    match ty {
        "Flag" => Type::Flag,
        "Text" => Type::Text,
        "Path" => Type::Path,
        "Port" => Type::Port,
        "Integer" => Type::Integer,
        "Seconds" => Type::Seconds,
        "Ipv4" => Type::Ipv4,
        "Ipv4Cidr" => Type::Ipv4Cidr,
        "Ipv4Port" => Type::Ipv4Port,
        "LogLevels" => Type::LogLevels,
        _ => Type::Text,
    }
}

/// Checks boot arguments written in the config (`boot-args`) against the keys the unikernel
/// accepts (name, runtime type), as the runtime will at boot: the error says what is wrong in
/// the runtime's words. `open`: the app reads undeclared keys itself.
pub fn check_boot_args(line: &str, accepted: &[(&str, &str)], open: bool) -> Result<(), String> {
    let mut pairs: Vec<(&str, Option<&str>)> = vec![];
    for word in line.split_whitespace() {
        if let Some(body) = word.strip_prefix("--").filter(|b| !b.is_empty()) {
            match body.split_once('=') {
                Some((k, v)) => pairs.push((k, Some(v))),
                None => pairs.push((body, None)),
            }
        } else if let Some((_, v @ None)) = pairs.last_mut() {
            *v = Some(word);
        } else {
            return Err(format!("`{word}` is not of the form --key=value"));
        }
    }
    for (k, v) in pairs {
        if k == "help" {
            return Err("--help would print the keys and stop at every boot".into());
        }
        match accepted.iter().find(|(n, _)| *n == k) {
            Some((_, ty)) => {
                let ty = runtime_type(ty);
                // --log-level: the runtime's own reason, with the nearest module or level.
                if let (Type::LogLevels, Some(v)) = (ty, v) {
                    if let Err(e) = uni_runtime::log::parse(v) {
                        return Err(format!("boot argument --{k}={v}: {e}"));
                    }
                }
                if !ty.accepts(v) {
                    let expected = ty.expected();
                    return Err(format!(
                        "boot argument --{k}={}: expected {expected}",
                        v.unwrap_or("")
                    ));
                }
            }
            None if open => {}
            None => {
                let near = uni_runtime::boot::nearest(k, accepted.iter().map(|(n, _)| *n));
                return Err(match near {
                    Some(n) => format!("unknown boot argument --{k}: did you mean --{n}?"),
                    None => format!("unknown boot argument --{k}"),
                });
            }
        }
    }
    Ok(())
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
    fn compiled_boot_args_are_checked_as_at_boot() {
        let keys = [("port", "Port"), ("ipv4", "Ipv4Cidr"), ("verbose", "Flag")];
        assert_eq!(
            check_boot_args("--port=7000 --verbose", &keys, false),
            Ok(())
        );
        assert_eq!(
            check_boot_args("--port 7000 --ipv4=10.0.0.2/24", &keys, false),
            Ok(())
        );
        assert_eq!(
            check_boot_args("--prot=7000", &keys, false),
            Err("unknown boot argument --prot: did you mean --port?".into())
        );
        assert_eq!(check_boot_args("--prot=7000", &keys, true), Ok(()));
        assert_eq!(
            check_boot_args("--port=x", &keys, true),
            Err("boot argument --port=x: expected a port number, 1–65535".into())
        );
        assert_eq!(
            check_boot_args("--ipv4=10.0.0.2", &keys, false),
            Err("boot argument --ipv4=10.0.0.2: expected an address with a prefix length, like 10.0.0.2/24".into())
        );
        assert!(check_boot_args("--verbose=1", &keys, false).is_err());
        assert!(check_boot_args("stray", &keys, false).is_err());
        assert!(check_boot_args("--help", &keys, true).is_err());
        assert_eq!(
            check_boot_args("--bogus", &keys, false),
            Err("unknown boot argument --bogus".into())
        );
    }

    /// The platform's keys here are the runtime's (runtime/src/boot.rs `PLATFORM_KEYS`, whose
    /// entries are `Key::new(...)` or the named consts it shares between targets).
    #[test]
    fn platform_keys_match_the_runtimes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let boot = std::fs::read_to_string(root.join("runtime/src/boot.rs")).unwrap();
        let squeeze = |s: &str| s.split_whitespace().collect::<String>();
        let mut xen = squeeze(
            boot.split("pub const PLATFORM_KEYS: &[Key] = &[")
                .nth(1)
                .unwrap()
                .split("];")
                .next()
                .unwrap(),
        );
        // Named keys (`const LOG_LEVEL: Key = Key::new(...);`) stand in the list by name.
        for named in boot.split("\nconst ").skip(1) {
            let Some((name, rest)) = named.split_once(": Key = ") else {
                continue;
            };
            let body = squeeze(rest.split(";\n").next().unwrap());
            xen = xen.replace(&format!("{name},"), &format!("{body},"));
        }
        let mut declared = 0;
        for (name, ty) in platform_keys(Target::XenArm) {
            assert!(
                xen.contains(&format!("Key::new(\"{name}\",Type::{ty},")),
                "runtime/src/boot.rs's PLATFORM_KEYS has no {name} of type {ty}: {xen}"
            );
            declared += 1;
        }
        assert_eq!(xen.matches("Key::new(").count(), declared);
    }

    #[test]
    fn a_bad_log_level_names_the_nearest_module() {
        let e = check_boot_args("--log-level=nte:debug", platform_keys(Target::Unix), false)
            .unwrap_err();
        assert!(
            e.starts_with(
                "boot argument --log-level=nte:debug: no module `nte`: did you mean `net`?"
            ),
            "{e}"
        );
        assert!(check_boot_args(
            "--log-level=warn,net:debug",
            platform_keys(Target::XenArm),
            false
        )
        .is_ok());
    }

    #[test]
    fn defaults_are_checked_as_the_runtime_checks_values() {
        assert!(accepts("Port", "8080") && !accepts("Port", "0") && !accepts("Port", "+80"));
        assert!(!accepts("Port", "65536") && !accepts("Integer", "-1"));
        assert!(accepts("Seconds", "1") && !accepts("Seconds", "0"));
        assert!(accepts("Ipv4", "10.0.0.1") && !accepts("Ipv4", "10.0.0"));
        assert!(accepts("Text", "") && !accepts("Path", ""));
    }
}
