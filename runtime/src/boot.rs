//! Boot arguments: argv on unix, the xl `extra=` string (`/chosen/bootargs`) on Xen.
//!
//! Arguments use MirageOS's spelling: `--key=value`, `--key value`, or a bare `--flag`.
//! Devices read their own keys (the network device reads `--ipv4` and `--ipv4-gateway`); an
//! application that declares an `args` device reads the rest.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

/// Parsed boot arguments, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootArgs {
    pairs: Vec<(String, Option<String>)>,
}

impl BootArgs {
    /// Parses already-split arguments (argv without the program name).
    pub fn parse<I, S>(args: I) -> Result<BootArgs, BootArgError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut pairs: Vec<(String, Option<String>)> = Vec::new();
        for arg in args {
            let arg = arg.as_ref();
            if let Some(body) = arg.strip_prefix("--") {
                if body.is_empty() {
                    return Err(BootArgError::Malformed(arg.to_string()));
                }
                match body.split_once('=') {
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((body.to_string(), None)),
                }
            } else if let Some((_, value @ None)) = pairs.last_mut() {
                // `--key value`
                *value = Some(arg.to_string());
            } else {
                return Err(BootArgError::Malformed(arg.to_string()));
            }
        }
        Ok(BootArgs { pairs })
    }

    /// Parses a command line, splitting on whitespace (the Xen `extra=` string).
    pub fn parse_cmdline(cmdline: &str) -> Result<BootArgs, BootArgError> {
        BootArgs::parse(cmdline.split_whitespace())
    }

    /// The value of the last `--key`, if given. A bare `--key` has the value `""`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Parses the value of `--key` as `T`, or returns `default` when it is absent.
    pub fn get_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, BootArgError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| BootArgError::BadValue {
                key: key.to_string(),
                value: v.to_string(),
                expected: core::any::type_name::<T>(),
            }),
        }
    }

    /// Every key given, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }
}

/// A boot argument could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootArgError {
    /// An argument that is neither `--key[=value]` nor the value of a preceding `--key`.
    Malformed(String),
    /// A value of the wrong form.
    BadValue {
        /// The key, without `--`.
        key: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl fmt::Display for BootArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootArgError::Malformed(a) => {
                write!(f, "boot argument `{a}` is not of the form --key=value")
            }
            BootArgError::BadValue {
                key,
                value,
                expected,
            } => {
                write!(f, "boot argument --{key}={value}: expected {expected}")
            }
        }
    }
}

impl core::error::Error for BootArgError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = BootArgs::parse(["--ipv4=10.0.0.2/24", "--port", "80", "--verbose"]).unwrap();
        assert_eq!(a.get("ipv4"), Some("10.0.0.2/24"));
        assert_eq!(a.get("port"), Some("80"));
        assert_eq!(a.get("verbose"), Some(""));
        assert_eq!(a.get("missing"), None);
        assert_eq!(a.get_or("port", 7u16), Ok(80));
        assert_eq!(a.get_or("missing", 7u16), Ok(7));
    }

    #[test]
    fn last_wins_and_errors() {
        let a = BootArgs::parse_cmdline("--port=1 --port=2").unwrap();
        assert_eq!(a.get("port"), Some("2"));
        assert_eq!(
            BootArgs::parse(["stray"]),
            Err(BootArgError::Malformed("stray".into()))
        );
        assert!(matches!(
            a.get_or::<u8>("port", 0).map(|_| ()).and(
                BootArgs::parse_cmdline("--port=x")
                    .unwrap()
                    .get_or::<u16>("port", 0)
            ),
            Err(BootArgError::BadValue { .. })
        ));
    }
}
