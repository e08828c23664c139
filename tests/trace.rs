//! Tracing on unix (issue #18, docs/tracing.md), end to end with the real `uni`: a traced
//! static-website answers the real curl over HTTPS, and the Chrome JSON that `uni run --trace`
//! writes holds that request's TCP accept, TLS handshake and HTTP request in order; a traced
//! app that panics leaves a trace that ends with the panic; and a build without tracing is the
//! same program before and after a traced build.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use uni_tests::{
    check_traced_https_request, config_copy, example, free_port, full_boards, text,
    trace_events as events, trace_track_name as thread_name, traced_website_dir, uni, uni_on,
    Background,
};

/// One HTTPS request to static-website's page through 127.0.0.1:`https` (it must answer
/// 200), then SIGTERM to uni: passed on to the unikernel, or to the board, which writes the
/// ring before it ends (128 + 15).
fn fetch_then_sigterm(p: &mut Background, https: u16) {
    let ca = example("static-website").join("pki/ca.pem");
    let c = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60", "--cacert"])
        .arg(&ca)
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://localhost:{https}/"))
        .output()
        .unwrap();
    let (code, err) = text(&c);
    assert_eq!(code, "200", "curl: {err}");
    Command::new("kill")
        .arg(p.child.id().to_string())
        .status()
        .unwrap();
    let status = p.child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{}\n{}", p.out(), p.err());
}

#[test]
fn a_traced_https_request_shows_tcp_tls_and_http_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config_copy("static-website", tmp.path());
    let out = tmp.path().join("out.json");
    let (https, http) = (free_port(), free_port());
    let mut p = Background::spawn(uni(
        &dir,
        &[
            "run",
            "--target",
            "unix",
            "--trace",
            out.to_str().unwrap(),
            "--",
            &format!("--https-port={https}"),
            &format!("--http-port={http}"),
        ],
    ));
    p.wait_for(
        &format!("https: listening on 0.0.0.0:{https}"),
        false,
        Duration::from_secs(600),
    );
    fetch_then_sigterm(&mut p, https);
    assert!(p.err().contains("Traced"), "{}", p.err());
    item_1_events(&events(&out), false);

    check_traced_https_request(&events(&out), https, "tcp 127.0.0.1:");
}

/// The last event of a traced run of examples/crash is its panic, with its message and
/// location.
fn last_is_the_crash_examples_panic(evs: &[Value]) {
    let last = evs.iter().rev().find(|e| e["ph"] != "M").unwrap();
    assert_eq!(last["name"], "panic", "{evs:#?}");
    let message = last["args"]["message"].as_str().unwrap();
    assert!(
        message.contains("crash/src/lib.rs:13:5")
            && message.contains("deliberate panic at depth 3"),
        "{message}"
    );
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_traced_panic_is_in_the_trace_and_an_untraced_build_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config_copy("crash", tmp.path());
    let bin = dir.join("dist/crash");

    let o = uni(&dir, &["build", "--target", "unix"]).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let plain = sha(&bin);
    let cargo_toml = std::fs::read_to_string(dir.join("_build/unix/Cargo.toml")).unwrap();
    assert!(!cargo_toml.contains("trace"), "{cargo_toml}");

    // The app's own panic: the last event, with its message and location.
    let out = tmp.path().join("out.json");
    let o = uni(
        &dir,
        &["run", "--target", "unix", "--trace", out.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert_ne!(sha(&bin), plain, "the traced build is another program");
    compiled_out(
        &plain,
        &sha(&bin),
        &[b"uni_runtime5trace", b"UNI_TRACE_FILE"],
    );
    let evs = events(&out);
    last_is_the_crash_examples_panic(&evs);

    // A panic in a spawned task: on that task's track, after its spawn.
    let o = uni(
        &dir,
        &[
            "run",
            "--target",
            "unix",
            "--no-build",
            "--trace",
            out.to_str().unwrap(),
            "--",
            "--in-task",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let evs = events(&out);
    let panic = evs.iter().find(|e| e["name"] == "panic").unwrap();
    assert!(panic["args"]["message"]
        .as_str()
        .unwrap()
        .contains("deliberate panic in a task"));
    assert!(
        thread_name(&evs, &panic["tid"]).starts_with("task "),
        "{evs:#?}"
    );
    let spawn = evs.iter().find(|e| e["name"] == "task spawned").unwrap();
    assert_eq!(
        spawn["args"]["task"].as_u64().unwrap() | 0x1000_0000,
        panic["tid"].as_u64().unwrap()
    );

    // Back to the untraced build: the same generated crate, and the same program, as before.
    let o = uni(&dir, &["build", "--target", "unix"]).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("_build/unix/Cargo.toml")).unwrap(),
        cargo_toml
    );
    assert!(
        sha(&bin) == plain,
        "the untraced build changed after a traced one"
    );
}

/// `[trace]` in unikernel.toml: the generated crate turns the features on and starts the
/// session with the ring's size; a size out of range is refused where it is written.
#[test]
fn the_trace_table_configures_tracing_and_checks_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = config_copy("hello", tmp.path());
    let toml = std::fs::read_to_string(dir.join("unikernel.toml")).unwrap();

    std::fs::write(
        dir.join("unikernel.toml"),
        format!("{toml}\n[trace]\nevents = 65536\n"),
    )
    .unwrap();
    let o = uni(&dir, &["configure", "--target", "unix"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let cargo = std::fs::read_to_string(dir.join("_build/unix/Cargo.toml")).unwrap();
    assert!(
        cargo
            .lines()
            .any(|l| l.starts_with("uni-runtime = ") && l.contains("features = [\"trace\"]")),
        "{cargo}"
    );
    let main = std::fs::read_to_string(dir.join("_build/unix/src/main.rs")).unwrap();
    assert!(
        main.contains("uni_runtime::trace::Session::start(65536)"),
        "{main}"
    );

    let lines = toml.lines().count();
    std::fs::write(
        dir.join("unikernel.toml"),
        format!("{toml}\n[trace]\nevents = 5\n"),
    )
    .unwrap();
    let o = uni(&dir, &["configure", "--target", "unix"])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success(), "{err}");
    for want in [
        "trace.events",
        "events = 5 is out of range",
        "from 16 to 1048576",
        &format!("unikernel.toml:{}:10", lines + 3),
    ] {
        assert!(err.contains(want), "no {want:?} in: {err}");
    }
}

/// The Xen half, on the emulated board: dom0 copies the guest's ring from the pages the guest
/// granted it (`uni-trace-dump`, through gntdev) and `uni run` converts it. Two boots, one after
/// the other: a traced static-website answers curl over HTTPS through a `-p` forward and is
/// stopped by SIGTERM (uni asks dom0 for the running guest's ring first); and the traced crash
/// example, whose ring dom0 reads from the crashed domain (preserved) and which ends with the
/// panic. The crash image built without tracing is the same bytes before and after.
#[test]
fn on_xen_dom0_reads_the_ring_of_a_running_and_of_a_crashed_guest() {
    let board = full_boards().remove(0);
    let tmp = tempfile::tempdir().unwrap();

    // (the directory tests/deploy.rs's traced static-website is built in: one build for both)
    let dir = traced_website_dir(&board);
    let out = tmp.path().join("site.json");
    let https = free_port();
    let mut p = Background::spawn(uni_on(
        &board,
        &dir,
        &[
            "run",
            "--target",
            "xen-arm",
            "--timeout",
            "900",
            "--trace",
            out.to_str().unwrap(),
            "-p",
            &format!("{https}:443"),
        ],
    ));
    p.wait_for("https: listening on", false, Duration::from_secs(900));
    fetch_then_sigterm(&mut p, https);
    assert!(
        p.err().contains("asked dom0 for the running guest's trace") && p.err().contains("Traced"),
        "{}",
        p.err()
    );
    item_1_events(&events(&out), true);
    // curl's connection reaches the guest from the host's end of the board's LAN.
    check_traced_https_request(&events(&out), 443, "tcp 10.0.0.254:");

    let crash = tmp.path().join("crash");
    std::fs::create_dir(&crash).unwrap();
    let dir = config_copy("crash", &crash);
    let image = dir.join("dist/crash.xen");
    let o = uni_on(&board, &dir, &["build", "--target", "xen-arm"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let plain = sha(&image);
    let out = crash.join("out.json");
    let o = uni_on(
        &board,
        &dir,
        &[
            "run",
            "--target",
            "xen-arm",
            "--timeout",
            "600",
            "--trace",
            out.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert_ne!(sha(&image), plain, "the traced image is another program");
    compiled_out(
        &plain,
        &sha(&image),
        &[b"data/uni-trace", b"the ring is not shared with dom0"],
    );
    let evs = events(&out);
    last_is_the_crash_examples_panic(&evs);
    let ts: Vec<f64> = evs
        .iter()
        .filter(|e| e["ph"] != "M" && e["cat"] != "flow")
        .map(|e| e["ts"].as_f64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "timestamps: {ts:?}");

    let o = uni_on(&board, &dir, &["build", "--target", "xen-arm"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        sha(&image) == plain,
        "the image built without tracing changed after a traced build"
    );
}

/// Issue #18 item 1's events in the trace of static-website serving one HTTPS request: the
/// page read from its kv_ro store (with its key), timers armed by the sleeping tasks, and on
/// Xen (`xen`) the event-channel upcalls, netfront's batches and xenstore's requests (the
/// session publishing its ring), each on its device's track.
fn item_1_events(evs: &[Value], xen: bool) {
    let on = |name: &str| -> Vec<&Value> { evs.iter().filter(|e| e["name"] == name).collect() };
    let track_of = |e: &Value| thread_name(evs, &e["tid"]);
    let get = on("kv get");
    assert!(
        get.iter()
            .any(|e| e["ph"] == "B" && e["args"]["key"] == "index.html"),
        "no kv get of index.html in {get:#?}"
    );
    assert!(
        get.iter().any(|e| e["ph"] == "E"
            && e["args"]["found"] == true
            && e["args"]["bytes"].as_u64() > Some(0)),
        "{get:#?}"
    );
    let armed = on("timer armed");
    assert!(
        armed
            .iter()
            .any(|e| track_of(e).starts_with("task ") && e["args"]["in ns"].as_u64() > Some(0)),
        "no timer armed by a task in {armed:#?}"
    );
    // Whether a sleep's deadline passes during the run is the network's timing (the direct
    // stack's driver sleeps until smoltcp's next timer, and is mostly woken by frames first;
    // the server's timeouts do not expire): any that did is on its task's track.
    for e in on("timer fired") {
        assert!(
            track_of(e).contains("task") && e["args"]["late ns"].is_u64(),
            "{e:#}"
        );
    }
    if !xen {
        return;
    }
    let upcalls = on("evtchn upcall");
    assert!(
        upcalls
            .iter()
            .any(|e| track_of(e) == "event channels"
                && e["args"]["pending ports"].as_u64() >= Some(1)),
        "{upcalls:#?}"
    );
    for batch in ["netfront rx batch", "netfront tx batch"] {
        let b = on(batch);
        assert!(
            b.iter()
                .any(|e| track_of(e) == "netfront vif0" && e["args"]["frames"].as_u64() >= Some(1)),
            "no {batch} on netfront vif0 in {b:#?}"
        );
    }
    // The curl request and the page came through netfront: at least as many frames each way
    // as the request's segments (the handshake, the request, the response, the close).
    let frames = |name: &str| -> u64 {
        on(name)
            .iter()
            .map(|e| e["args"]["frames"].as_u64().unwrap())
            .sum()
    };
    assert!(
        frames("netfront rx batch") >= 4 && frames("netfront tx batch") >= 4,
        "rx {} tx {}",
        frames("netfront rx batch"),
        frames("netfront tx batch")
    );
    let xs = on("xenstore reply");
    assert!(
        xs.iter()
            .any(|e| track_of(e) == "xenstore" && e["args"]["type"] == "write"),
        "no xenstore write reply in {xs:#?}"
    );
}

/// Tracing compiled out: the image built without it (`plain`) holds none of `marks`, strings
/// and symbol names that only tracing's code brings (its module's symbols, the variables and
/// xenstore paths of its sessions), while the traced image (`traced`) holds every one, so
/// that the check is not vacuous. With the before-and-after comparison of the untraced image,
/// this is what "compiled out leaves the image as it was" is checked by: none of the ring, its
/// session and its dumps is linked without the feature. (A build from before tracing existed
/// is not made: too slow for CI, and it would differ by every later change.)
fn compiled_out(plain: &[u8], traced: &[u8], marks: &[&[u8]]) {
    let holds = |image: &[u8], mark: &[u8]| {
        image
            .windows(mark.len())
            .any(|w| w[0] == mark[0] && w == mark)
    };
    for mark in marks {
        let m = String::from_utf8_lossy(mark);
        assert!(holds(traced, mark), "the traced image lacks {m:?}");
        assert!(!holds(plain, mark), "the untraced image holds {m:?}");
    }
}
