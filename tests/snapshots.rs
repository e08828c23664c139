//! Snapshots of the generated main crate for every example × target. A change to a template,
//! a device's constructor or the generator shows up here as a reviewable diff
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test -p uni-tests --test snapshots`).

use std::fs;

use uni_tests::{example, run_uni, text};

const EXAMPLES: &[&str] = &[
    "hello",
    "echo",
    "crash",
    "xeninfo",
    "lookup",
    "tls-echo",
    "static-website",
    "notes",
];
const TARGETS: &[&str] = &["unix", "xen-arm"];

fn snapshot(name: &str, target: &str) {
    let dir = example(name);
    let o = run_uni(&dir, &["configure", "--target", target]);
    let (_, err) = text(&o);
    if !o.status.success() {
        // A target the example cannot be built for yet: the error is the snapshot.
        insta::assert_snapshot!(format!("{name}-{target}-error"), err);
        return;
    }
    for file in ["Cargo.toml", "src/main.rs"] {
        let contents = fs::read_to_string(dir.join("_build").join(target).join(file)).unwrap();
        assert!(
            contents.contains("@generated"),
            "{file} lacks the @generated header"
        );
        if file.ends_with(".rs") {
            assert!(
                !contents.contains("cfg("),
                "generated main.rs must not use cfg"
            );
        }
        insta::assert_snapshot!(
            format!("{name}-{target}-{}", file.replace('/', "-")),
            contents
        );
    }
    let o = run_uni(&dir, &["configure", "--check", "--target", target]);
    assert!(
        o.status.success(),
        "freshly generated files are stale: {}",
        text(&o).1
    );
}

#[test]
fn every_example_and_target() {
    for name in EXAMPLES {
        for target in TARGETS {
            snapshot(name, target);
        }
    }
}
