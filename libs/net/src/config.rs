//! IP configuration: from unikernel.toml, overridable by boot arguments.

use alloc::string::{String, ToString};
use core::fmt;
use core::net::Ipv4Addr;

use uni_runtime::device::net::Ipv4Config;
use uni_runtime::BootArgs;

/// How the interface gets its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Setting {
    /// Ask a DHCP server.
    Dhcp,
    /// A fixed address.
    Static(Ipv4Config),
}

/// A network device's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// The IPv4 setting.
    pub ipv4: Ipv4Setting,
    /// The MAC address, if fixed (direct stack only).
    pub mac: Option<[u8; 6]>,
}

impl NetConfig {
    /// Boot-time arguments this device reads, in MirageOS's spelling.
    pub const BOOT_ARGS: &'static [&'static str] = &["ipv4", "ipv4-gateway"];

    /// The configuration from `unikernel.toml`'s spelling: `ipv4` is `"dhcp"` or
    /// `"A.B.C.D/N"`, `gateway` an address.
    pub fn parse(ipv4: &str, gateway: Option<&str>) -> Result<NetConfig, NetConfigError> {
        let bad = |arg, value: &str, expected| NetConfigError {
            arg,
            value: value.to_string(),
            expected,
        };
        let ipv4 = if ipv4 == "dhcp" {
            Ipv4Setting::Dhcp
        } else {
            let (address, prefix_len) = parse_cidr(ipv4).ok_or_else(|| {
                bad(
                    "ipv4",
                    ipv4,
                    "\"dhcp\" or an address with a prefix length, like 10.0.0.2/24",
                )
            })?;
            let gateway = match gateway {
                None => None,
                Some(g) => Some(
                    g.parse()
                        .map_err(|_| bad("ipv4-gateway", g, "an IPv4 address, like 10.0.0.1"))?,
                ),
            };
            Ipv4Setting::Static(Ipv4Config {
                address,
                prefix_len,
                gateway,
            })
        };
        Ok(NetConfig { ipv4, mac: None })
    }

    /// Applies `--ipv4=A.B.C.D/N` and `--ipv4-gateway=A.B.C.D` from the boot arguments.
    pub fn with_boot_args(mut self, args: &BootArgs) -> Result<NetConfig, NetConfigError> {
        if let Some(v) = args.get("ipv4") {
            let (address, prefix_len) = parse_cidr(v).ok_or_else(|| NetConfigError {
                arg: "ipv4",
                value: v.to_string(),
                expected: "an address with a prefix length, like 10.0.0.2/24",
            })?;
            let gateway = match self.ipv4 {
                Ipv4Setting::Static(c) => c.gateway,
                Ipv4Setting::Dhcp => None,
            };
            self.ipv4 = Ipv4Setting::Static(Ipv4Config {
                address,
                prefix_len,
                gateway,
            });
        }
        if let Some(v) = args.get("ipv4-gateway") {
            let gw: Ipv4Addr = v.parse().map_err(|_| NetConfigError {
                arg: "ipv4-gateway",
                value: v.to_string(),
                expected: "an IPv4 address, like 10.0.0.1",
            })?;
            match &mut self.ipv4 {
                Ipv4Setting::Static(c) => c.gateway = Some(gw),
                Ipv4Setting::Dhcp => {
                    return Err(NetConfigError {
                        arg: "ipv4-gateway",
                        value: v.to_string(),
                        expected: "no gateway while the address comes from DHCP; give --ipv4 too",
                    })
                }
            }
        }
        Ok(self)
    }
}

/// Parses `A.B.C.D/N`.
pub(crate) fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, n) = s.split_once('/')?;
    let n: u8 = n.parse().ok()?;
    (n <= 32).then_some(())?;
    Some((a.parse().ok()?, n))
}

/// A boot argument for the network device had a bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfigError {
    /// The argument, without `--`.
    pub arg: &'static str,
    /// The value given.
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

impl fmt::Display for NetConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "boot argument --{}={}: expected {}",
            self.arg, self.value, self.expected
        )
    }
}

impl core::error::Error for NetConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_args_override() {
        let base = NetConfig {
            ipv4: Ipv4Setting::Dhcp,
            mac: None,
        };
        let args = BootArgs::parse(["--ipv4=10.0.0.2/24", "--ipv4-gateway=10.0.0.1"]).unwrap();
        let c = base.with_boot_args(&args).unwrap();
        assert_eq!(
            c.ipv4,
            Ipv4Setting::Static(Ipv4Config {
                address: Ipv4Addr::new(10, 0, 0, 2),
                prefix_len: 24,
                gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            })
        );
        let bad = BootArgs::parse(["--ipv4=10.0.0.2"]).unwrap();
        assert_eq!(base.with_boot_args(&bad).unwrap_err().arg, "ipv4");
        let gw_only = BootArgs::parse(["--ipv4-gateway=10.0.0.1"]).unwrap();
        assert!(base.with_boot_args(&gw_only).is_err());
    }
}
