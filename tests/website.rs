//! examples/static-website on unix, end to end: `uni build` packs the test site (with a 5 MiB
//! file and names that need URL decoding) into the program, `uni run` serves it over HTTPS and
//! redirects HTTP, and the real curl fetches every file. The Xen run is in website_xen.rs; the
//! HTTP library's own edge cases (pipelining, limits, malformed requests, timeouts) are tested
//! in libs/http.

use std::time::Duration;

use uni_tests::{example, free_port, text, uni, website_test_site, Background, Website};

#[test]
fn static_website_serves_its_files_on_unix() {
    let (config, files) = website_test_site();
    let dir = config.parent().unwrap();
    let o = uni(dir, &["build", "--target", "unix"]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");

    let (https, http) = (free_port(), free_port());
    let c = uni(
        dir,
        &[
            "run",
            "--target",
            "unix",
            "--",
            &format!("--https-port={https}"),
            &format!("--http-port={http}"),
        ],
    );
    let mut p = Background::spawn(c);
    p.wait_for(
        &format!("https: listening on 0.0.0.0:{https}"),
        false,
        Duration::from_secs(60),
    );
    p.wait_for(
        &format!("http: listening on 0.0.0.0:{http}"),
        false,
        Duration::from_secs(10),
    );
    let site = Website {
        https: format!("https://localhost:{https}"),
        http: format!("http://localhost:{http}"),
        ca: example("static-website").join("pki/ca.pem"),
    };
    site.fetch_all(&files);
    let big = files.iter().find(|f| f.bytes.len() == 5 << 20).unwrap();
    site.semantics(big);

    // One console line per request, with the decoded path's request line and the status.
    let log = p.out();
    let odd = files.iter().find(|f| f.url.contains("%C3%BC")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("\"GET {} HTTP/1.1\" 200 ", odd.url))),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("\"GET /no/such/file.html HTTP/1.1\" 404 ")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("\"HEAD ") && l.contains(" 200 ")),
        "{log}"
    );
    assert!(log.lines().any(|l| l.contains(" 304 ")), "{log}");
}
