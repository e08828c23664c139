//! examples/notes on unix, end to end with the real curl: the HTTP API over HTTPS, the store
//! across restarts, `uni kv` reading the same image on the host, and power cuts: the unikernel
//! is killed with SIGKILL at random points while curl writes notes, 100 times, and after each
//! restart every acknowledged note reads back byte-identical and no note holds a value that was
//! never written.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uni_tests::{example, free_port, text, uni, Background};

fn ca() -> String {
    example("static-website")
        .join("pki/ca.pem")
        .display()
        .to_string()
}

/// curl with `args`: stdout, and whether it exited 0.
fn curl(args: &[String]) -> (String, bool) {
    let o = Command::new("curl")
        .args(["--silent", "--max-time", "60", "--cacert", &ca()])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        o.status.success(),
    )
}

/// The status of one request.
fn status(args: &[&str]) -> u16 {
    let mut a: Vec<String> = ["-o", "/dev/null", "-w", "%{http_code}"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(args.iter().map(|s| s.to_string()));
    curl(&a).0.trim().parse().unwrap()
}

/// The unikernel itself, `dist/notes`, serving on `port` (the 100 restarts do not go through
/// `uni run`'s freshness check each time).
fn start(dir: &Path, port: u16) -> Background {
    let mut c = Command::new(dir.join("dist/notes"));
    c.arg(format!("--https-port={port}")).current_dir(dir);
    let mut p = Background::spawn(c);
    p.wait_for(
        &format!("https: listening on 0.0.0.0:{port}"),
        false,
        Duration::from_secs(30),
    );
    p
}

fn kill9(p: &mut Background) {
    p.child.kill().unwrap(); // SIGKILL
    let _ = p.child.wait();
}

/// Every note the server holds: key → body.
fn all_notes(base: &str, scratch: &Path) -> BTreeMap<String, Vec<u8>> {
    let (list, ok) = curl(&[format!("{base}/notes/")]);
    assert!(ok, "listing failed");
    let keys: Vec<&str> = list.lines().collect();
    let mut out = BTreeMap::new();
    if keys.is_empty() {
        return out;
    }
    // one connection for all of them
    let mut args = vec!["--output-dir".to_string(), scratch.display().to_string()];
    for k in &keys {
        args.extend(["-o".into(), format!("get-{k}"), format!("{base}/notes/{k}")]);
    }
    args.extend(["-w".into(), "%{http_code}\n".into()]);
    let (codes, ok) = curl(&args);
    assert!(ok && codes.lines().all(|c| c == "200"), "{codes}");
    for k in keys {
        out.insert(
            k.to_string(),
            std::fs::read(scratch.join(format!("get-{k}"))).unwrap(),
        );
    }
    out
}

#[test]
fn notes_serves_its_api_and_keeps_what_it_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    uni_tests::notes_config(dir);

    // no image: refused at boot, saying which file
    let o = uni(dir, &["run", "--target", "unix", "--", "--https-port=1"])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("notes.img"), "{err}");
    // a zeroed image is not a store, and is not formatted without format = true
    std::fs::write(dir.join("notes.img"), vec![0u8; 4 << 20]).unwrap();
    let o = uni(dir, &["run", "--target", "unix", "--", "--https-port=1"])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(err.contains("not a uni kv_rw store"), "{err}");
    assert!(std::fs::read(dir.join("notes.img"))
        .unwrap()
        .iter()
        .all(|&b| b == 0));

    let o = uni(
        dir,
        &["kv", "format", "--force", "--size", "4M", "notes.img"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let port = free_port();
    let mut p = Background::spawn(uni(
        dir,
        &[
            "run",
            "--target",
            "unix",
            "--",
            &format!("--https-port={port}"),
        ],
    ));
    p.wait_for(
        &format!("https: listening on 0.0.0.0:{port}"),
        false,
        Duration::from_secs(300),
    );
    let base = format!("https://localhost:{port}");
    let body = dir.join("body");
    std::fs::write(&body, b"milk\neggs\n").unwrap();
    let b = body.to_str().unwrap();
    let note = |k: &str| format!("{base}/notes/{k}");
    assert_eq!(status(&["-T", b, &note("shopping")]), 201);
    assert_eq!(status(&["-T", b, &note("shopping")]), 204);
    assert_eq!(status(&["-T", b, &note("a.b_c-9")]), 201);
    assert_eq!(curl(&[note("shopping")]).0, "milk\neggs\n");
    assert_eq!(curl(&[format!("{base}/notes/")]).0, "a.b_c-9\nshopping\n");
    assert_eq!(status(&["-I", &note("shopping")]), 200);
    assert_eq!(status(&[&note("nothing")]), 404);
    assert_eq!(status(&["-X", "DELETE", &note("a.b_c-9")]), 204);
    assert_eq!(status(&["-X", "DELETE", &note("a.b_c-9")]), 404);
    // bad input: 4xx, and the store untouched
    let big = dir.join("big");
    std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).unwrap();
    let exact = dir.join("exact");
    std::fs::write(&exact, vec![b'y'; 64 * 1024]).unwrap();
    let at_body = format!("@{b}");
    for (args, want) in [
        (
            vec!["-T", big.to_str().unwrap(), &note("big")][..].to_vec(),
            413,
        ),
        (vec!["-T", b, &note("a%20b")], 400),
        (
            // (not -T: curl would append the file's name to a URL ending in a dot segment)
            vec![
                "--path-as-is",
                "-X",
                "PUT",
                "--data-binary",
                &at_body,
                &note(".."),
            ],
            400,
        ),
        (
            vec!["-T", b, &format!("{base}/notes/{}", "k".repeat(129))],
            400,
        ),
        (vec!["-T", b, &format!("{base}/notes/a/b")], 400),
        (vec!["-X", "POST", &note("shopping")], 405),
        (vec!["-X", "PUT", &format!("{base}/notes/")], 405),
        (vec![&format!("{base}/other")], 404),
    ] {
        assert_eq!(status(&args), want, "{args:?}");
    }
    assert_eq!(curl(&[format!("{base}/notes/")]).0, "shopping\n");
    assert_eq!(
        status(&["-T", exact.to_str().unwrap(), &note("exact")]),
        201
    );
    drop(p); // SIGTERM

    // the host reads the same image
    let kv = |args: &[&str]| {
        let mut a = vec!["kv", "--disk", "notes.img"];
        a.extend_from_slice(args);
        let o = uni(dir, &a).output().unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "uni kv {args:?}: {err}");
        out
    };
    assert_eq!(kv(&["get", "shopping"]), "milk\neggs\n");
    assert!(kv(&["ls"]).contains("shopping"));
    assert!(!kv(&["ls"]).contains("a.b_c-9"));

    power_cuts(dir);
}

/// 100 SIGKILLs at random points of a write load; the model is what curl saw acknowledged.
fn power_cuts(dir: &Path) {
    let scratch = tempfile::tempdir().unwrap();
    let bodies = scratch.path().join("bodies");
    std::fs::create_dir(&bodies).unwrap();
    // what must be there: key → the last acknowledged body
    let mut model: BTreeMap<String, Vec<u8>> = all_notes_offline(dir);
    let mut rng: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let t0 = Instant::now();
    let mut acked_total = 0;
    for round in 0..100u64 {
        let port = free_port();
        let mut p = start(dir, port);
        let base = format!("https://localhost:{port}");
        let got = all_notes(&base, scratch.path());
        check(&model, &got, None, round);

        // up to 40 PUTs on one connection, over 12 keys (so that notes are overwritten)
        let mut sent = Vec::new();
        let mut args: Vec<String> = ["--silent", "--max-time", "30", "--cacert", &ca()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for j in 0..40u64 {
            let key = format!("k{}", (round * 5 + j * 7) % 12);
            let value =
                format!("round {round} put {j} of {key}\n").repeat(1 + (j % 5) as usize * 40);
            let file = bodies.join(format!("{round}-{j}"));
            std::fs::write(&file, &value).unwrap();
            args.extend([
                "-o".into(),
                "/dev/null".into(),
                "-w".into(),
                "%{http_code}\n".into(),
                "-T".into(),
                file.display().to_string(),
                format!("{base}/notes/{key}"),
            ]);
            sent.push((key, value.into_bytes()));
        }
        let mut client = Command::new("curl")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reader = BufReader::new(client.stdout.take().unwrap());
        let codes = std::thread::spawn(move || {
            reader
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(20 + next() % 400));
        kill9(&mut p);
        let _ = client.wait();
        let codes = codes.join().unwrap();
        // acknowledged: a 201 or 204 that curl printed; the first unacknowledged PUT may or may
        // not have reached the disk
        let mut in_flight = None;
        for (i, (key, value)) in sent.into_iter().enumerate() {
            match codes.get(i).map(String::as_str) {
                Some("201" | "204") => {
                    model.insert(key, value);
                    acked_total += 1;
                }
                _ => {
                    in_flight = Some((key, value));
                    break;
                }
            }
        }
        // the next round's first look settles the one in flight
        let port = free_port();
        let mut p = start(dir, port);
        let got = all_notes(&format!("https://localhost:{port}"), scratch.path());
        check(&model, &got, in_flight.as_ref(), round);
        if let Some((key, value)) = in_flight {
            if got.get(&key) == Some(&value) {
                model.insert(key, value);
            }
        }
        kill9(&mut p);
    }
    assert!(
        acked_total > 100,
        "only {acked_total} PUTs were acknowledged in 100 rounds"
    );
    eprintln!(
        "100 power cuts, {acked_total} acknowledged PUTs, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    // the host's view of the image agrees, and its history reads back
    assert_eq!(all_notes_offline(dir), model);
    let o = uni(dir, &["kv", "--disk", "notes.img", "log"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "uni kv log: {err}");
    assert!(
        !out.trim().is_empty(),
        "an empty log after {acked_total} commits"
    );
}

/// Each note of `model` reads back byte-identical; nothing else is there, except `in_flight`'s
/// value under its key.
fn check(
    model: &BTreeMap<String, Vec<u8>>,
    got: &BTreeMap<String, Vec<u8>>,
    in_flight: Option<&(String, Vec<u8>)>,
    round: u64,
) {
    for (k, v) in got {
        let expected = model.get(k) == Some(v);
        let flying = in_flight.is_some_and(|(fk, fv)| fk == k && fv == v);
        assert!(
            expected || flying,
            "round {round}: {k} holds {} bytes that were never acknowledged for it (want {:?} bytes)",
            v.len(),
            model.get(k).map(Vec::len)
        );
    }
    for k in model.keys() {
        assert!(
            got.contains_key(k),
            "round {round}: acknowledged note {k} is gone"
        );
    }
}

/// The notes in `dir/notes.img`, read with `uni kv` on the host.
fn all_notes_offline(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let run = |args: &[&str]| {
        let o = Command::new(uni_tests::uni_bin())
            .args(["kv", "--disk"])
            .arg(dir.join("notes.img"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "uni kv {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let list = String::from_utf8(run(&["ls"])).unwrap();
    list.lines()
        .map(|k| (k.to_string(), run(&["get", k])))
        .collect()
}
