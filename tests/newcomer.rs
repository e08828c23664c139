//! Issue #17's "Done means", end to end: the walk-through of README.md ("Your own app, on unix
//! and on the board"), run as a newcomer would run it. The commands are read from README.md
//! itself, the fenced block after the `tests/newcomer.rs runs` marker, so the README and this
//! test cannot drift apart: `uni new` in a temporary directory outside the checkout, the edit of
//! the handler, `uni run` on unix and the real curl through 127.0.0.1, then
//! `uni run --target xen-arm -p …` on the emulated board (one boot, qemu-virt: CI's smoke board)
//! and curl again through its forward. Each curl must print exactly what the README says it
//! prints, and that must not be the page `uni new` wrote, so the edit is what is seen.
//!
//! What the test changes, and only that: the host port (a free one instead of 8080, on the
//! `-p` forward, on curl's URL and as `--http-port` on unix, so that nothing else on the machine
//! collides with it), a `--timeout` on the board run, and the build directory (the tests'
//! shared target directories, `uni_tests::uni` and `uni_on`, so uni's crates are not compiled
//! again). The step timings are printed, not asserted (bench/README.md has them, against the
//! 10 minutes of the issue). On unix, beyond the README, another path answers 404 and the app
//! logs the request (tests/new.rs leaves its `web` app to this test).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use uni_tests::{curl, free_port, root, run_uni, text, uni, uni_on, Background};

/// The marker, in an HTML comment just before the block's fence.
const MARKER: &str = "<!-- tests/newcomer.rs runs";

/// The page `uni new web` writes, before the edit.
const GENERATED_PAGE: &str = "hello from web\n";

/// How long a `uni run` may take to build and start serving (a cold build in CI included).
const SERVING_LIMIT: Duration = Duration::from_secs(900);

/// One line of the block: the command, and what its comment says it prints (`→ …`).
struct Step {
    line: String,
    command: Vec<String>,
    prints: Option<String>,
}

/// The walk-through's commands, from README.md.
fn walk_through() -> Vec<Step> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let at = readme
        .find(MARKER)
        .unwrap_or_else(|| panic!("README.md has no {MARKER:?} marker before its walk-through"));
    let rest = &readme[at..];
    let body = rest
        .split_once("\n```sh\n")
        .and_then(|(comment, body)| (!comment.contains('\n')).then_some(body))
        .unwrap_or_else(|| panic!("README.md: the line after {MARKER:?} must open a ```sh block"));
    let block = &body[..body.find("\n```").expect("the walk-through's block ends")];
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (command, comment) = match l.split_once(" #") {
                Some((c, comment)) => (c, Some(comment)),
                None => (l, None),
            };
            let prints = comment
                .and_then(|c| c.split_once('→'))
                .map(|(_, p)| format!("{}\n", p.trim()));
            Step {
                line: l.trim().to_string(),
                command: command.split_whitespace().map(String::from).collect(),
                prints,
            }
        })
        .collect()
}

/// A `uni run` serving, and what its page should be reached through.
struct Serving {
    run: Background,
    port: u16,
    started: Instant,
    what: String,
    board: bool,
}

impl Serving {
    /// Stops it (SIGTERM, as Ctrl-C would) and waits for it to end; returns its stderr.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg(self.run.child.id().to_string())
            .status();
        let _ = self.run.child.wait();
        // the collecting threads have the last lines once the pipes close
        std::thread::sleep(Duration::from_millis(300));
        self.run.err()
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[test]
fn the_readme_walk_through_runs_on_unix_and_on_the_board() {
    let steps = walk_through();
    assert!(
        steps[0]
            .line
            .starts_with("uni new web --devices console,clock,net,http "),
        "the walk-through starts with the issue's `uni new`: {}",
        steps[0].line
    );
    let tmp = tempfile::tempdir().unwrap();
    assert!(
        !tmp.path().starts_with(root()),
        "the app must be outside the checkout"
    );
    let mut dir: PathBuf = tmp.path().to_path_buf();
    let mut serving: Option<Serving> = None;
    let mut timings: Vec<(String, Duration)> = vec![];
    let mut next_steps = String::new();
    let mut page_before_edit: Option<String> = None;
    let (mut curls, mut runs) = (0, 0);
    // (cargo's check of the uni binary, before the clock starts: not a newcomer's step)
    uni_tests::uni_bin();
    let walk = Instant::now();

    for step in &steps {
        let words: Vec<&str> = step.command.iter().map(String::as_str).collect();
        let t = Instant::now();
        match words.as_slice() {
            ["uni", "new", args @ ..] => {
                let mut a = vec!["new"];
                a.extend_from_slice(args);
                let o = run_uni(&dir, &a);
                let (out, err) = text(&o);
                assert!(o.status.success(), "{}:\n{out}\n{err}", step.line);
                next_steps = out;
                timings.push((step.command.join(" "), t.elapsed()));
            }
            ["cd", to] => {
                dir = dir.join(to);
                assert!(dir.join("unikernel.toml").is_file(), "{}", step.line);
                let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
                page_before_edit = Some(lib);
            }
            ["uni", "run", args @ ..] => {
                assert!(
                    serving.is_none(),
                    "{}: the previous run still serves",
                    step.line
                );
                runs += 1;
                let xen = step.line.contains("--target xen-arm");
                let port = free_port();
                let mut a: Vec<String> = vec!["run".into()];
                let mut guest = None;
                let mut it = args.iter();
                while let Some(w) = it.next() {
                    if *w == "-p" {
                        let fwd = it.next().expect("-p HOST:GUEST");
                        let (_, g) = fwd.split_once(':').expect("-p HOST:GUEST");
                        guest = Some(g.to_string());
                        a.push("-p".into());
                        a.push(format!("{port}:{g}"));
                    } else {
                        assert_ne!(
                            *w, "--",
                            "{}: boot arguments in the README's run",
                            step.line
                        );
                        a.push(w.to_string());
                    }
                }
                let command = if xen {
                    assert!(guest.is_some(), "{}: no -p forward", step.line);
                    a.extend(["--timeout".into(), SERVING_LIMIT.as_secs().to_string()]);
                    let a: Vec<&str> = a.iter().map(String::as_str).collect();
                    // the default board is qemu-virt, CI's smoke board; uni_on gives it the
                    // tests' target directory of that board
                    uni_on("qemu-virt", &dir, &a)
                } else {
                    a.extend(["--".into(), format!("--http-port={port}")]);
                    let a: Vec<&str> = a.iter().map(String::as_str).collect();
                    uni(&dir, &a)
                };
                let mut run = Background::spawn(command);
                run.wait_for("http: listening on ", false, SERVING_LIMIT);
                timings.push((
                    format!("{}: built, serving", step.command.join(" ")),
                    t.elapsed(),
                ));
                serving = Some(Serving {
                    run,
                    port,
                    started: t,
                    what: step.line.clone(),
                    board: xen,
                });
            }
            ["curl", url] => {
                curls += 1;
                let mut s = serving
                    .take()
                    .unwrap_or_else(|| panic!("{}: nothing runs to answer it", step.line));
                let want = step
                    .prints
                    .clone()
                    .unwrap_or_else(|| panic!("{}: no `→ …` saying what it prints", step.line));
                assert_ne!(
                    want, GENERATED_PAGE,
                    "the README's curl must show the edited page, not the one `uni new` wrote"
                );
                let url = url
                    .strip_prefix("http://localhost:8080")
                    .map(|path| format!("http://127.0.0.1:{}{path}", s.port))
                    .unwrap_or_else(|| panic!("{}: not http://localhost:8080/…", step.line));
                // (no retry: the page must answer once the guest says it listens)
                let o = curl(&[&url]);
                let got = String::from_utf8_lossy(&o.stdout).into_owned();
                assert_eq!(
                    got,
                    want,
                    "{} after {}\n--- its console\n{}",
                    step.line,
                    s.what,
                    s.run.out()
                );
                timings.push((
                    format!("{}: answered (since `uni run`)", step.command.join(" ")),
                    s.started.elapsed(),
                ));
                if !s.board {
                    // beyond the README: any other path is 404, and the app logs the request
                    // (tests/new.rs leaves the http app to this test)
                    let o = curl(&[
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        &format!("{url}nope"),
                    ]);
                    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
                    s.run
                        .wait_for("\"GET /nope HTTP/1.1\" 404", false, Duration::from_secs(10));
                }
                let (out, board) = (s.run.out(), s.board);
                let err = s.stop();
                // uni's own figures of the run: the build's time, the board's start
                for l in err.lines().filter(|l| {
                    l.contains("Finished release build") || l.contains("Halted the board")
                }) {
                    timings.push((format!("    uni: {}", l.trim()), Duration::ZERO));
                }
                if board {
                    assert!(
                        err.contains("Halted the board"),
                        "the board was not halted:\n{err}"
                    );
                }
                assert!(!out.contains("panicked"), "{out}");
            }
            _ => {
                // a shell command of the walk-through (the edit), run as written
                let o = Command::new("sh")
                    .args(["-c", step.command.join(" ").as_str()])
                    .current_dir(&dir)
                    .output()
                    .expect("sh runs");
                let (out, err) = text(&o);
                assert!(o.status.success(), "{}:\n{out}\n{err}", step.line);
                timings.push((step.command.join(" "), t.elapsed()));
            }
        }
    }
    assert!(
        serving.is_none(),
        "the walk-through ends with a run nobody asked"
    );
    assert_eq!(
        (runs, curls),
        (2, 2),
        "the walk-through runs the app twice (unix, then the board) and curls each"
    );

    // the edit changed the handler's page, which `uni new` wrote as GENERATED_PAGE
    let before = page_before_edit.expect("the walk-through cds into the app");
    let literal = format!("Bytes::from({GENERATED_PAGE:?})");
    assert!(before.contains(&literal), "no {literal} in\n{before}");
    let after = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(
        !after.contains(&literal),
        "the edit left the page as it was"
    );

    // what `uni new` printed as the next steps are the README's runs
    for l in next_steps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uni run"))
    {
        let cmd = format!("uni run{}", l.split(" #").next().unwrap_or("").trim_end());
        assert!(
            steps.iter().any(|s| s.command.join(" ") == cmd),
            "`uni new` says `{cmd}`, which the README's walk-through does not"
        );
    }

    for (what, d) in &timings {
        if d.is_zero() {
            eprintln!("newcomer: {:>8}  {what}", "");
        } else {
            eprintln!("newcomer: {:>8}  {what}", secs(*d));
        }
    }
    eprintln!(
        "newcomer: {:>8}  the whole walk-through (the goal: 10 minutes for a newcomer; not asserted)",
        secs(walk.elapsed())
    );
}
