//! Log levels and metrics on unix (issue #18, items 5 and 6), on the static website of
//! tests/static-website (the binary website.rs builds too, so this costs no build of its own
//! when the other has run): `--log-level` lets a module's debug records through and only those,
//! a bad value is refused in words, and SIGUSR2 prints counters that match the requests made
//! with the real curl. The Xen side (`uni stats` through xenstore) is checked in deploy.rs, on
//! the board session it already has.

use std::process::Command;
use std::time::{Duration, Instant};

use uni_tests::{example, free_port, text, uni, website_test_site, Background};

/// Serves the test site with `args` after the ports; returns it and its HTTPS port.
fn serve(dir: &std::path::Path, extra: &[&str]) -> (Background, u16) {
    let (https, http) = (free_port(), free_port());
    let (a, b) = (
        format!("--https-port={https}"),
        format!("--http-port={http}"),
    );
    let mut args = vec!["run", "--target", "unix", "--", &a, &b];
    args.extend_from_slice(extra);
    let mut p = Background::spawn(uni(dir, &args));
    p.wait_for(
        &format!("https: listening on 0.0.0.0:{https}"),
        false,
        Duration::from_secs(60),
    );
    (p, https)
}

/// One HTTPS GET of / with the real curl, on a connection of its own: the status.
fn get(https: u16) -> String {
    let ca = example("static-website").join("pki/ca.pem");
    let o = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .arg("--cacert")
        .arg(&ca)
        .arg(format!("https://127.0.0.1:{https}/"))
        .output()
        .expect("curl runs (Debian: apt-get install curl)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of `name` in the last `uni stats:` table of `err`.
fn stat(err: &str, name: &str) -> Option<u64> {
    let table = err.rsplit("uni stats:\n").next()?;
    table
        .lines()
        .take_while(|l| l.starts_with("  "))
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
        })
}

/// Lines of `err` that are log records of `module` at debug level, stamped with the clock.
fn debug_lines<'a>(err: &'a str, module: &str) -> Vec<&'a str> {
    let tag = format!("] DEBUG {module}: ");
    err.lines()
        .filter(|l| {
            l.starts_with('[')
                && l.split_once(tag.as_str()).is_some_and(|(stamp, _)| {
                    stamp[1..]
                        .trim()
                        .split_once('.')
                        .is_some_and(|(s, us)| s.parse::<u64>().is_ok() && us.len() == 6)
                })
        })
        .collect()
}

#[test]
fn log_levels_and_stats_on_unix() {
    let (config, _) = website_test_site();
    let dir = config.parent().unwrap();
    let o = uni(dir, &["build", "--target", "unix"]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");

    // A bad value: refused before anything starts, in words, with the nearest module.
    let o = uni(
        dir,
        &["run", "--target", "unix", "--", "--log-level=nte:debug"],
    )
    .output()
    .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "error: boot argument --log-level=nte:debug: no module `nte`: did you mean `net`?"
        ),
        "{err}"
    );
    let o = uni(
        dir,
        &["run", "--target", "unix", "--", "--log-level=verbose"],
    )
    .output()
    .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`verbose` is not a level"), "{err}");

    // The default level (info): no debug record. N requests, then SIGUSR2: the counters.
    const N: u64 = 5;
    let (mut p, https) = serve(dir, &[]);
    for _ in 0..N {
        assert_eq!(get(https), "200");
    }
    let _ = Command::new("kill")
        .args(["-USR2", &p.child.id().to_string()])
        .status();
    p.wait_for("heap.allocations", true, Duration::from_secs(10));
    let err = p.err();
    assert!(!err.contains("] DEBUG "), "{err}");
    let table = err.rsplit("uni stats:\n").next().unwrap();
    for (name, least) in [
        ("http.requests.200", N),
        ("http.requests", N),
        ("tcp.accepted", N),
        ("tls.handshakes", N),
        ("tcp.rx_bytes", 1),
        ("tcp.tx_bytes", 1),
        ("heap.used_bytes", 1),
    ] {
        let v = stat(&err, name).unwrap_or_else(|| panic!("no {name} in\n{table}"));
        assert!(
            v >= least,
            "{name} = {v}, expected at least {least}:\n{table}"
        );
    }
    assert_eq!(stat(&err, "tls.failures"), Some(0), "{table}");
    drop(p);

    // net:debug: the network stack's debug records, stamped, and no other module's.
    let (p, https) = serve(dir, &["--log-level=net:debug"]);
    assert_eq!(get(https), "200");
    let t0 = Instant::now();
    while debug_lines(&p.err(), "net").is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = p.err();
    assert!(
        debug_lines(&err, "net")
            .iter()
            .any(|l| l.contains("DEBUG net: accepted 127.0.0.1:")),
        "{err}"
    );
    assert!(debug_lines(&err, "http").is_empty(), "{err}");
    assert!(debug_lines(&err, "tls").is_empty(), "{err}");
    drop(p);

    // A bare debug: every module's, the TLS handshake's and the request's among them.
    let (p, https) = serve(dir, &["--log-level=debug"]);
    assert_eq!(get(https), "200");
    let t0 = Instant::now();
    while debug_lines(&p.err(), "http").is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = p.err();
    assert!(
        debug_lines(&err, "tls")
            .iter()
            .any(|l| l.contains(": handshake done")),
        "{err}"
    );
    assert!(
        debug_lines(&err, "http")
            .iter()
            .any(|l| l.contains("\"GET / HTTP/1.1\" 200 ")),
        "{err}"
    );
    assert!(!debug_lines(&err, "net").is_empty(), "{err}");
}
