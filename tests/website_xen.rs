//! examples/static-website on real Xen: the test site (with a 5 MiB file and names that need
//! URL decoding) packed into the image, served over HTTPS by smoltcp over netfront on the
//! emulated board, reached from the host through `uni run -p`. One boot carries every check:
//! every file byte-identical, HEAD/304/404/redirects, 100 requests on one kept-alive
//! connection, 50 concurrent clients, 1000 malformed requests, and the heap the guest reports
//! staying flat across 10,000 requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use uni_tests::{
    assert_lan_is_sealed, curl, example, free_port, full_boards, text, uni_on, website_test_site,
    Background, Website,
};

/// The guest's `heap used N KiB` reports, in order.
fn heap_reports(console: &str) -> Vec<(u64, u64)> {
    console
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("static-website: ")?;
            let (count, rest) = rest.split_once(" requests, heap used ")?;
            let kib = rest.split_once(" KiB")?.0;
            Some((count.parse().ok()?, kib.parse().ok()?))
        })
        .collect()
}

/// The image less the site packed into it (the test site has a 5 MiB file): static-website with
/// the narrow TLS of its unikernel.toml (TLS 1.3, X25519, ECDSA P-256) measured 455,830 bytes
/// (457,968 less its 2,138-byte site) on 2026-12-08 00:55Z, built in Thumb-2 (bench/README.md,
/// "Image size per `tls` choice"; the goal, 512 KiB, is met; in A32 it was 638,990).
/// The ceiling, 472 KiB, leaves about 6% for growth and stays under the goal; an A32 build, or
/// one with every TLS algorithm, fails it.
const STATIC_WEBSITE_CEILING: u64 = 472 * 1024;

fn assert_image_ceiling(dir: &std::path::Path) {
    let size = |p: &str| {
        std::fs::metadata(dir.join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .len()
    };
    let code = size("dist/static-website-test.xen") - size("_build/xen-arm/kv/htdocs.kv");
    assert!(
        code <= STATIC_WEBSITE_CEILING,
        "static-website-test.xen less its site is {code} bytes, over its ceiling of {STATIC_WEBSITE_CEILING}"
    );
}

#[test]
fn static_website_on_real_xen() {
    for on in full_boards() {
        let on = on.as_str();
        eprintln!("=== {on}");
        let (config, files) = website_test_site();
        let dir = config.parent().unwrap();
        let o = uni_on(on, dir, &["build", "--target", "xen-arm"])
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}\n{err}");
        assert_image_ceiling(dir);

        let (https, http) = (free_port(), free_port());
        let mut board = Background::spawn({
            let mut c = uni_on(
                on,
                dir,
                &[
                    "run",
                    "--target",
                    "xen-arm",
                    "--timeout",
                    "1500",
                    "-p",
                    &format!("{https}:443"),
                    "-p",
                    &format!("{http}:80"),
                ],
            );
            c.env("UNI_DOM0_CHECK", "ping -c 2 -w 120 $GUEST_IP");
            c
        });
        board.wait_for("https: listening on", false, Duration::from_secs(300));
        board.wait_for("http: listening on", false, Duration::from_secs(30));
        assert_lan_is_sealed();
        let site = Website {
            https: format!("https://localhost:{https}"),
            http: format!("http://localhost:{http}"),
            ca: example("static-website").join("pki/ca.pem"),
        };

        let t0 = Instant::now();
        site.fetch_all(&files);
        eprintln!(
            "every file ({} bytes) in {:.1?}",
            files.iter().map(|f| f.bytes.len()).sum::<usize>(),
            t0.elapsed()
        );
        site.semantics(files.iter().find(|f| f.url.ends_with(".txt")).unwrap());

        // 100 requests on one kept-alive connection.
        let url = format!("{}/css/site.css", site.https);
        let ca = site.ca.to_str().unwrap();
        let mut args = vec!["--cacert", ca, "-w", "%{http_code} %{num_connects}\\n"];
        for _ in 0..100 {
            args.extend([url.as_str(), "-o", "/dev/null"]);
        }
        let o = curl(&args);
        let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(lines.len(), 100);
        assert!(lines.iter().all(|l| l.starts_with("200 ")), "{lines:?}");
        assert_eq!(
            lines
                .iter()
                .map(|l| l[4..].parse::<u32>().unwrap())
                .sum::<u32>(),
            1,
            "one connection for 100 requests"
        );

        // 50 concurrent clients, each fetching the index page and a text file.
        let t0 = Instant::now();
        let clients: Vec<_> = (0..50)
            .map(|_| {
                let (base, ca) = (site.https.clone(), ca.to_string());
                std::thread::spawn(move || {
                    let o = curl(&[
                        "--cacert",
                        &ca,
                        &format!("{base}/"),
                        &format!("{base}/docs/getting%20started.txt"),
                    ]);
                    o.stdout
                })
            })
            .collect();
        let index = std::fs::read(example("static-website").join("htdocs/index.html")).unwrap();
        let txt = std::fs::read(example("static-website").join("htdocs/docs/getting started.txt"))
            .unwrap();
        for c in clients {
            assert_eq!(
                c.join().unwrap(),
                [index.as_slice(), txt.as_slice()].concat()
            );
        }
        eprintln!("50 concurrent clients in {:.1?}", t0.elapsed());

        // 1000 malformed requests on the plain HTTP port (the same parser and connection code as
        // HTTPS, without a handshake each): each gets an error status or a close, never a hang.
        let t0 = Instant::now();
        let mut statuses = std::collections::BTreeMap::<String, u32>::new();
        for i in 0..1000u32 {
            let req = malformed(i);
            let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let _ = s.write_all(&req);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut reply = Vec::new();
            let _ = s.read_to_end(&mut reply);
            let status =
                String::from_utf8_lossy(reply.get(..12).unwrap_or(b"(closed)")).into_owned();
            *statuses.entry(status).or_default() += 1;
        }
        eprintln!(
            "1000 malformed requests in {:.1?}: {statuses:?}",
            t0.elapsed()
        );
        // Every one is refused (4xx or 5xx), or the connection is closed (noise that never ends a
        // request head): none is redirected as if it were a request.
        for status in statuses.keys() {
            assert!(
                status == "(closed)"
                    || status.starts_with("HTTP/1.1 4")
                    || status.starts_with("HTTP/1.1 5"),
                "{statuses:?}"
            );
        }
        // Still answering.
        let o = curl(&[
            "--cacert",
            ca,
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            &format!("{}/", site.https),
        ]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "200");

        // 10,000 requests over 10 kept-alive connections; the guest reports its heap every 1000
        // HTTPS requests. To compare like with like, the reports compared come at the end of a
        // run of requests on ONE connection: one before the load (padding the count to a multiple
        // of 1000) and one after it (1000 more), when the load's connections are gone.
        let index_url = format!("{}/index.html", site.https);
        let one_connection = |n: usize| assert_eq!(sequential(&index_url, ca, n), n);
        // A warm-up at the same concurrency first: what the stack and the TLS layer size once for
        // 10 connections (socket slots, buffers) is not a leak.
        let load = |per_connection: usize| {
            let workers: Vec<_> = (0..10)
                .map(|_| {
                    let (url, ca) = (index_url.clone(), ca.to_string());
                    std::thread::spawn(move || sequential(&url, &ca, per_connection))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap())
                .sum::<usize>()
        };
        assert_eq!(load(200), 2000);
        let n0 = quiet_count(&board);
        let pad = 1000 - n0 % 1000;
        one_connection(pad);
        let before = wait_for_reports(&board, (n0 + pad) / 1000);
        let t0 = Instant::now();
        let ok = load(1000);
        assert_eq!(ok, 10_000);
        eprintln!("10,000 requests on 10 connections in {:.1?}", t0.elapsed());
        one_connection(1000);
        let after = wait_for_reports(&board, (n0 + pad + 11_000) / 1000);
        one_connection(1000);
        let last = wait_for_reports(&board, (n0 + pad + 12_000) / 1000);
        eprintln!("heap reports (requests, KiB used): {last:?}");
        let (start, end, again) = (
            before.last().unwrap(),
            after.last().unwrap(),
            last.last().unwrap(),
        );
        assert_eq!(
            (end.0 - start.0, again.0 - end.0),
            (11_000, 1000),
            "{last:?}"
        );
        // No growth per request: 1000 more requests on one connection leave the heap where it
        // was, to the KiB, and so do the 10,000 on 10 connections, but for a queue's capacity
        // (8 KiB is less than one TCP socket's buffers). The step once seen there (64 to 192
        // KiB, then flat) was the Xen timer list: timeouts that did not fire stayed in it until
        // their deadline, so it held requests-per-second × timeout entries and kept the
        // capacity of the busiest load (fixed for issue #15: 4290 KiB before and after).
        assert_eq!(
            again.1, end.1,
            "the heap grew over 1000 requests on one connection: {last:?}"
        );
        assert!(
            end.1 <= start.1 + 8,
            "heap went from {} KiB to {} KiB across 11,000 requests: {last:?}",
            start.1,
            end.1
        );
    }
}

/// `n` GETs of `url` on one kept-alive connection (one curl); how many answered 200.
fn sequential(url: &str, ca: &str, n: usize) -> usize {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    let lines: String = (0..n)
        .map(|_| format!("url = \"{url}\"\noutput = \"/dev/null\"\n"))
        .collect();
    std::fs::write(cfg.path(), lines).unwrap();
    let o = curl(&[
        "--cacert",
        ca,
        "-w",
        "%{http_code}\\n",
        "--config",
        cfg.path().to_str().unwrap(),
    ]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| *l == "200")
        .count()
}

/// How many HTTPS requests the guest has logged.
fn https_requests(console: &str) -> usize {
    console
        .lines()
        .filter(|l| l.contains("https: ") && l.contains(" HTTP/1."))
        .count()
}

/// The number of HTTPS requests logged, once the console has been quiet for 3 s (the console
/// reaches the host through dom0 with some delay).
fn quiet_count(board: &Background) -> usize {
    let mut last = (https_requests(&board.out()), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let n = https_requests(&board.out());
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            return n;
        }
    }
}

/// Waits until the guest has made `n` heap reports; returns them.
fn wait_for_reports(board: &Background, n: usize) -> Vec<(u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = heap_reports(&board.out());
        if r.len() >= n {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "the guest made {} of {n} heap reports: {r:?}",
            r.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Malformed request `i`: broken request lines, bad versions, oversized heads and header
/// counts, framing errors, binary noise.
fn malformed(i: u32) -> Vec<u8> {
    let noise: Vec<u8> = (0..(i % 200 + 1))
        .map(|k| (k.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8)
        .collect();
    match i % 12 {
        0 => noise,
        1 => b"GET\r\n\r\n".to_vec(),
        2 => b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        3 => format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000)).into_bytes(),
        4 => format!("GET / HTTP/1.1\r\n{}\r\n", (0..200).map(|k| format!("X-{k}: y\r\n")).collect::<String>()).into_bytes(),
        5 => b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
        6 => b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
        7 => b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n".to_vec(),
        8 => b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        9 => b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz\r\n".to_vec(),
        10 => [b"GET / HTTP/1.1\r\nHo".as_slice(), &noise, b"\r\n\r\n"].concat(),
        _ => b"GET / HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n".to_vec(),
    }
}
