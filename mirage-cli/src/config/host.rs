//! The SSH destination `[deploy] host` and `--host` name.

use std::fmt;
use std::str::FromStr;

/// `[user@]host[:port]`, as `--host` and `[deploy] host` take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl FromStr for HostSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<HostSpec, String> {
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, s),
        };
        // [v6]:port, host:port, or host
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: no `]` after the IPv6 address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let word = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:%".contains(c))
        };
        if !word(host) {
            return Err(format!("`{s}` names no host: expected [USER@]HOST[:PORT], like root@cubie or root@localhost:2222"));
        }
        if let Some(u) = user {
            if !word(u) || u.contains(':') {
                return Err(format!("`{u}` in `{s}` is not a user name"));
            }
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("`{p}` in `{s}` is not a TCP port (1-65535)"))?,
            ),
        };
        Ok(HostSpec {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_specs() {
        let h: HostSpec = "root@localhost:2222".parse().unwrap();
        assert_eq!(
            h,
            HostSpec {
                user: Some("root".into()),
                host: "localhost".into(),
                port: Some(2222)
            }
        );
        assert_eq!(h.to_string(), "root@localhost:2222");
        let h: HostSpec = "cubie".parse().unwrap();
        assert_eq!((h.user, h.host.as_str(), h.port), (None, "cubie", None));
        let h: HostSpec = "me@[fe80::1%eth0]:22".parse().unwrap();
        assert_eq!((h.host.as_str(), h.port), ("fe80::1%eth0", Some(22)));
        assert_eq!(h.to_string(), "me@[fe80::1%eth0]:22");
        for bad in [
            "",
            "root@",
            "root@host:0",
            "root@host:x",
            "a b",
            "root@host;rm",
            "@host",
            "[::1",
        ] {
            assert!(bad.parse::<HostSpec>().is_err(), "{bad:?} parsed");
        }
    }
}
