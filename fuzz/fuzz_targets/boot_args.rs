//! Fuzzes boot-argument parsing: the xl `extra=` string (or argv) as `BootArgs` reads it, and
//! the keys devices read from it (`--ipv4`, `--ipv4-gateway`, `--nameserver`, and the
//! platform's `--uni-*` flags).
//!
//! Input: a command line.
//! Properties: a parse error quotes the argument that is wrong; a parsed line gives, for every
//! key, the last value given, and written back as `--key=value` parses to the same answers;
//! `get_or` errors name the key and the value; the network device's keys give a
//! configuration or an error naming the argument and its value, never a Rust Debug form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uni_net::{Ipv4Setting, NetConfig};
use uni_runtime::boot::{BootArgError, BootArgs};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let args = match BootArgs::parse_cmdline(&line) {
        Ok(a) => a,
        Err(e) => {
            let shown = e.to_string();
            match &e {
                BootArgError::Malformed(a) => {
                    assert!(line.split_whitespace().any(|w| w == a), "{shown}");
                    assert!(shown.contains(a.as_str()));
                }
                BootArgError::BadValue { .. } | BootArgError::LogLevel { .. } => {
                    panic!("parsing alone checks no value: {shown}")
                }
            }
            return;
        }
    };
    // The last value of each key, by hand.
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    for w in &words {
        if let Some(body) = w.strip_prefix("--") {
            match body.split_once('=') {
                Some((k, v)) => pairs.push((k.into(), Some(v.into()))),
                None => pairs.push((body.into(), None)),
            }
        } else {
            let last = pairs.last_mut().expect("a value follows a key");
            assert!(last.1.is_none());
            last.1 = Some(w.to_string());
        }
    }
    let keys: Vec<&str> = args.keys().collect();
    assert_eq!(keys, pairs.iter().map(|p| p.0.as_str()).collect::<Vec<_>>());
    let mut canonical = Vec::new();
    for (k, _) in &pairs {
        let want = pairs
            .iter()
            .rev()
            .find(|p| &p.0 == k)
            .map(|p| p.1.as_deref().unwrap_or(""));
        assert_eq!(args.get(k), want, "--{k}");
        canonical.push(format!("--{k}={}", want.unwrap()));
        match args.get_or::<u16>(k, 7) {
            Ok(v) => assert_eq!(v.to_string().parse::<u16>().unwrap(), v),
            Err(e) => {
                let shown = e.to_string();
                assert!(shown.contains(&format!("--{k}=")), "{shown}");
                assert!(
                    shown.contains("expected a whole number, 0–65535"),
                    "{shown}"
                );
            }
        }
    }
    // Written back as one `--key=value` per key, the answers are the same.
    let again = BootArgs::parse(canonical.iter()).expect("canonical arguments parse");
    for (k, _) in &pairs {
        assert_eq!(again.get(k), args.get(k), "--{k}");
    }

    // What the network device makes of them.
    for base in [
        NetConfig::parse("dhcp", None).unwrap(),
        NetConfig::parse("10.0.0.2/24", Some("10.0.0.1")).unwrap(),
    ] {
        match base.with_boot_args(&args) {
            Ok(c) => {
                if let Some(v) = args.get("ipv4") {
                    let Ipv4Setting::Static(s) = c.ipv4 else {
                        panic!("--ipv4={v} left DHCP on");
                    };
                    let (a, n) = v.split_once('/').expect("a prefix length");
                    assert_eq!(a.parse().ok(), Some(s.address), "--ipv4={v}");
                    assert_eq!(n.parse().ok(), Some(s.prefix_len), "--ipv4={v}");
                    assert!(s.prefix_len <= 32);
                }
            }
            Err(e) => {
                let shown = e.to_string();
                assert!(NetConfig::BOOT_ARGS.contains(&e.arg), "{shown}");
                assert_eq!(args.get(e.arg), Some(e.value.as_str()));
                assert!(
                    shown.starts_with(&format!("boot argument --{}=", e.arg)),
                    "{shown}"
                );
                assert!(
                    !shown.contains("Err(") && !shown.contains("Some("),
                    "{shown}"
                );
            }
        }
    }
    if let Some(v) = args.get("nameserver") {
        if let Err(e) = uni_net::dns::parse_nameserver(v) {
            assert!(e.to_string().contains(v));
        }
    }
    // The platform's own flags are bare keys.
    for flag in ["uni-boot-info", "uni-timestamps"] {
        if words.contains(&&*format!("--{flag}")) {
            assert!(args.get(flag).is_some());
        }
    }
});
