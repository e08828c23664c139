//! rustc's diagnostics, as `uni build` shows them: paths relative to the user's directory
//! (`_build/unix/src/main.rs:10:5`, not the generated crate's `src/main.rs`), repeats of one
//! error folded into its first report, the `start` signature that unikernel.toml implies after
//! an error in the generated crate, a one-line explanation of a missing `#![no_std]`, and
//! rustc's target-feature warnings hidden unless `-v`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cargo_metadata::diagnostic::{Diagnostic, DiagnosticLevel, DiagnosticSpan};
use cargo_metadata::CompilerMessage;

use crate::cmd::show;
use crate::config::Config;
use crate::generate::Plan;
use crate::target::Target;

/// Maps the file names rustc prints back to paths the user can open, shown relative to the
/// working directory.
pub struct PathMap {
    /// `_build/<target>/`: cargo runs rustc there, so the generated crate's files are relative to
    /// it.
    generated: PathBuf,
    /// uni's checkout, for `uni/…` (the link, see [`crate::generate::UniLink`]) and `/uni/…`
    /// (xen-arm's `--remap-path-prefix`).
    home: Option<PathBuf>,
    /// The app's parent directory, which xen-arm's flags remap to nothing (`hello/src/lib.rs`).
    app_parent: Option<PathBuf>,
}

impl PathMap {
    pub fn new(cfg: &Config, plan: &Plan) -> PathMap {
        let home = crate::home::home().ok();
        let app_parent = match (&plan.uni_link, plan.target) {
            (_, Target::Unix) => None,
            (Some(link), _) => link
                .app
                .parent()
                .map(|p| plan.dir.join(p))
                .map(|p| crate::home::normalize(&p)),
            (None, _) => crate::home::normalize(&cfg.app_dir)
                .parent()
                .map(Path::to_path_buf),
        };
        PathMap {
            generated: plan.dir.clone(),
            home,
            app_parent,
        }
    }

    /// The real file behind `name` as rustc printed it, if it can be found.
    pub fn real(&self, name: &str) -> Option<PathBuf> {
        let p = Path::new(name);
        let mut candidates: Vec<PathBuf> = vec![];
        if p.is_absolute() {
            if let (Ok(rest), Some(home)) = (p.strip_prefix("/uni"), &self.home) {
                candidates.push(home.join(rest));
            }
            candidates.push(p.to_path_buf());
        } else {
            if let (Ok(rest), Some(home)) = (p.strip_prefix("uni"), &self.home) {
                candidates.push(home.join(rest));
            }
            candidates.push(self.generated.join(p));
            if let Some(parent) = &self.app_parent {
                candidates.push(parent.join(p));
            }
        }
        candidates.into_iter().find(|c| c.is_file())
    }

    /// `name` as the user should read it: relative to the working directory when it is under
    /// it, else absolute; unchanged when no file is found (a path in the toolchain's sources).
    pub fn user(&self, name: &str) -> String {
        match self.real(name) {
            Some(p) => show(&p),
            None => name.to_string(),
        }
    }

    /// `rendered` with every `name:` that names a span's file replaced by the user's path.
    fn rewrite(&self, rendered: &str, d: &Diagnostic) -> String {
        let mut names: Vec<&str> = vec![];
        collect_files(d, &mut names);
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        names.dedup();
        let mut out = rendered.to_string();
        for name in names {
            let shown = self.user(name);
            if shown != name {
                out = replace_path(&out, name, &shown);
            }
        }
        out
    }
}

fn collect_files<'a>(d: &'a Diagnostic, into: &mut Vec<&'a str>) {
    for s in &d.spans {
        into.push(&s.file_name);
        let mut e = s.expansion.as_deref();
        while let Some(x) = e {
            into.push(&x.span.file_name);
            e = x.span.expansion.as_deref();
        }
    }
    for c in &d.children {
        collect_files(c, into);
    }
}

/// Replaces `name:` with `shown:` where `name` starts a word: after a space, a line start, or
/// a colour escape sequence (`\x1b[…m`).
fn replace_path(text: &str, name: &str, shown: &str) -> String {
    let needle = format!("{name}:");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let before = &rest[..i];
        let starts_word = before.is_empty()
            || before.ends_with([' ', '\n'])
            || before
                .rfind("\x1b[")
                .is_some_and(|e| ansi_sequence(&before[e..]));
        out.push_str(before);
        if starts_word {
            out.push_str(shown);
            out.push(':');
        } else {
            out.push_str(&needle);
        }
        rest = &rest[i + needle.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether `s` is exactly one SGR escape sequence, `\x1b[1;34m`.
fn ansi_sequence(s: &str) -> bool {
    s.strip_prefix("\x1b[")
        .and_then(|s| s.strip_suffix('m'))
        .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit() || c == ';'))
}

/// `text` without its SGR colour sequences: cargo colours its status lines on a terminal.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let seq = &rest[i + 2..];
        match seq.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            Some(j) if seq[j..].starts_with('m') => rest = &seq[j + 1..],
            _ => {
                out.push_str("\x1b[");
                rest = seq;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One error or warning as it will be shown, with the places its repeats were at.
struct Shown {
    text: String,
    again: Vec<String>,
}

/// The diagnostics of one build: collected per compiled unit and printed when it ends.
pub struct Diagnostics {
    map: PathMap,
    verbose: bool,
    /// The generated crate's binary target name (the unikernel's name).
    bin: String,
    generated_manifest: PathBuf,
    /// Per unit (package id and target name), in arrival order.
    pending: BTreeMap<(String, String), Vec<CompilerMessage>>,
    order: Vec<(String, String)>,
    /// Whether an error was reported in the generated crate (then the signature note follows).
    pub generated_failed: bool,
    /// Whether a crate that is not `no_std` was found on xen-arm.
    pub needs_std: bool,
}

impl Diagnostics {
    pub fn new(cfg: &Config, plan: &Plan, verbose: bool) -> Diagnostics {
        Diagnostics {
            map: PathMap::new(cfg, plan),
            verbose,
            bin: cfg.name.clone(),
            generated_manifest: plan.dir.join("Cargo.toml"),
            pending: BTreeMap::new(),
            order: vec![],
            generated_failed: false,
            needs_std: false,
        }
    }

    pub fn push(&mut self, m: CompilerMessage) {
        if !self.verbose && target_feature_warning(&m.message) {
            return;
        }
        let key = (m.package_id.repr.clone(), m.target.name.clone());
        if !self.pending.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.pending.entry(key).or_default().push(m);
    }

    /// The text to print for the unit `package_id`/`target` (which has ended), if any.
    pub fn finish_unit(&mut self, package_id: &str, target: &str) -> String {
        let key = (package_id.to_string(), target.to_string());
        self.order.retain(|k| *k != key);
        match self.pending.remove(&key) {
            Some(ms) => self.render_unit(ms),
            None => String::new(),
        }
    }

    /// The text to print for every unit still pending (the build has ended).
    pub fn finish_all(&mut self) -> String {
        let mut out = String::new();
        for key in std::mem::take(&mut self.order) {
            if let Some(ms) = self.pending.remove(&key) {
                out.push_str(&self.render_unit(ms));
            }
        }
        out
    }

    fn render_unit(&mut self, ms: Vec<CompilerMessage>) -> String {
        let Some(first) = ms.first() else {
            return String::new();
        };
        let crate_name = first.target.name.clone();
        let src = first.target.src_path.clone().into_std_path_buf();
        let generated = first.target.name == self.bin
            && first.manifest_path().as_deref() == Some(self.generated_manifest.as_path());
        let missing_std = ms.iter().any(|m| missing_std(&m.message));
        if missing_std && !self.verbose {
            self.needs_std = true;
            let errors = ms
                .iter()
                .filter(|m| m.message.level == DiagnosticLevel::Error)
                .count();
            return format!(
                "{}\n{}\n\n",
                error_line(&no_std_explanation(&crate_name, &show(&src))),
                note_line(&format!(
                    "rustc's {errors} error{} about it (E0463 can't find crate for `std`, then \
                     names of the standard prelude) are not shown; -v shows them",
                    if errors == 1 { "" } else { "s" }
                )),
            );
        }
        let mut shown: Vec<Shown> = vec![];
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for m in &ms {
            let d = &m.message;
            if generated && d.level == DiagnosticLevel::Error {
                self.generated_failed = true;
            }
            let Some(rendered) = &d.rendered else {
                continue;
            };
            let text = self.map.rewrite(rendered, d);
            // The same error: same level, code and message. Folded unless -v.
            let same = format!(
                "{:?}\u{1f}{}\u{1f}{}",
                d.level,
                d.code.as_ref().map_or("", |c| c.code.as_str()),
                d.message
            );
            match index.get(&same) {
                Some(&i) if !self.verbose => {
                    if let Some(at) = primary(d) {
                        let at = format!(
                            "{}:{}:{}",
                            self.map.user(&at.file_name),
                            at.line_start,
                            at.column_start
                        );
                        if !shown[i].again.contains(&at) {
                            shown[i].again.push(at);
                        }
                    }
                }
                _ => {
                    index.insert(same, shown.len());
                    shown.push(Shown {
                        text,
                        again: vec![],
                    });
                }
            }
        }
        let mut out = String::new();
        for s in shown {
            let text = s.text.trim_end();
            out.push_str(text);
            out.push('\n');
            if !s.again.is_empty() {
                let _ = writeln!(
                    out,
                    "   = note: uni: the same error {} more time{}, at {}",
                    s.again.len(),
                    if s.again.len() == 1 { "" } else { "s" },
                    s.again.join(", ")
                );
            }
            out.push('\n');
        }
        out
    }
}

/// Whether stderr gets colour, as for uni's own lines (cargo's rules: NO_COLOR, CLICOLOR,
/// CLICOLOR_FORCE, a terminal); rustc's diagnostics are then rendered with ANSI colours too.
pub fn color() -> bool {
    crate::status::color()
}

/// `error: …`, as rustc and cargo print it (bold red `error` on a terminal), without a newline.
pub fn error_line(message: &str) -> String {
    if color() {
        format!("\x1b[1;31merror\x1b[0m\x1b[1m: {message}\x1b[0m")
    } else {
        format!("error: {message}")
    }
}

/// `note: …`, as rustc prints it, without a newline.
pub fn note_line(message: &str) -> String {
    if color() {
        format!("\x1b[1;32mnote\x1b[0m: {message}")
    } else {
        format!("note: {message}")
    }
}

trait ManifestPath {
    fn manifest_path(&self) -> Option<PathBuf>;
}

impl ManifestPath for CompilerMessage {
    /// The manifest of the message's package, from its package id (`path+file:///…#…`).
    fn manifest_path(&self) -> Option<PathBuf> {
        let repr = &self.package_id.repr;
        let dir = repr.strip_prefix("path+file://")?;
        let dir = dir.split('#').next()?;
        Some(PathBuf::from(dir).join("Cargo.toml"))
    }
}

fn primary(d: &Diagnostic) -> Option<&DiagnosticSpan> {
    d.spans.iter().find(|s| s.is_primary)
}

/// rustc's `unstable feature specified for -Ctarget-feature` (the board's `+neon`, `+vfp4`…),
/// once per crate: noise for the user, shown with -v.
fn target_feature_warning(d: &Diagnostic) -> bool {
    d.level == DiagnosticLevel::Warning && d.message.contains("-Ctarget-feature")
}

/// E0463 for `std`: the crate does not declare `#![no_std]` and xen-arm has no standard library.
fn missing_std(d: &Diagnostic) -> bool {
    d.code.as_ref().is_some_and(|c| c.code == "E0463") && d.message.contains("`std`")
}

/// The one-line explanation of a crate that needs `std` on xen-arm.
pub fn no_std_explanation(crate_name: &str, root: &str) -> String {
    let doc = crate::home::home()
        .map(|h| show(&h.join("docs/apps.md")))
        .unwrap_or_else(|_| "docs/apps.md".into());
    format!(
        "`{crate_name}` does not declare `#![no_std]`, and xen-arm has no standard library: \
         add `#![no_std]` at the top of {root} (with `extern crate alloc;` for Vec, String and \
         format!); see \"The no_std rule\" in {doc}"
    )
}

/// The note after an error in the generated crate: the `start` that unikernel.toml implies,
/// one parameter per device in declaration order, and where each device is declared.
pub fn signature_note(cfg: &Config) -> String {
    let mut generics: Vec<&str> = vec![];
    let mut params = vec![];
    let mut rows = vec![];
    for d in &cfg.devices {
        let ty = d.receives();
        for g in crate::devices::generics(ty) {
            if !generics.contains(&g) {
                generics.push(g);
            }
        }
        let (line, col) = crate::diag::line_col(&cfg.source.text, d.kind_span.start);
        rows.push((
            format!("{}: {ty}", d.name),
            format!(
                "[devices.{}] kind = \"{}\", {}:{line}:{col}",
                d.name,
                d.kind().name,
                cfg.file.display()
            ),
        ));
        params.push(format!("{}: {ty}", d.name));
    }
    generics.sort_by_key(|g| *g != "S");
    let gen = if generics.is_empty() {
        String::new()
    } else {
        format!("<{}>", generics.join(", "))
    };
    let mut out = note_line(&format!(
        "{} gives `{}` one argument per device, in the order they are declared:",
        cfg.file.display(),
        cfg.entry
    ));
    out.push('\n');
    let _ = writeln!(
        out,
        "      pub async fn {}{gen}({}) -> AppResult",
        cfg.entry,
        params.join(", ")
    );
    if !generics.is_empty() {
        let bounds: Vec<&str> = generics
            .iter()
            .map(|g| match *g {
                "S" => "S: Stack + Clone + 'static",
                _ => "C: Clock + Clone + 'static",
            })
            .collect();
        let _ = writeln!(out, "      where {}", bounds.join(", "));
    }
    let width = rows.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    for (p, at) in rows {
        let _ = writeln!(out, "        {p:width$}  from {at}");
    }
    let doc = crate::home::home()
        .map(|h| show(&h.join("docs/apps.md")))
        .unwrap_or_else(|_| "docs/apps.md".into());
    let _ = writeln!(
        out,
        "      (the names do not matter, the types and their order do; see \"The signature rule\" in {doc})"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_replaced_only_where_a_path_starts() {
        let t = "  --> src/main.rs:10:5\n   ::: /x/src/main.rs:3:1\nsrc/main.rs:1:1";
        assert_eq!(
            replace_path(t, "src/main.rs", "_build/unix/src/main.rs"),
            "  --> _build/unix/src/main.rs:10:5\n   ::: /x/src/main.rs:3:1\n_build/unix/src/main.rs:1:1"
        );
        let ansi = "\x1b[0m\x1b[1m\x1b[38;5;12m--> \x1b[0m\x1b[0msrc/main.rs:10:18\x1b[0m";
        assert_eq!(
            replace_path(ansi, "src/main.rs", "_build/unix/src/main.rs"),
            "\x1b[0m\x1b[1m\x1b[38;5;12m--> \x1b[0m\x1b[0m_build/unix/src/main.rs:10:18\x1b[0m"
        );
        assert_eq!(
            replace_path("xsrc/main.rs:1", "src/main.rs", "y"),
            "xsrc/main.rs:1"
        );
    }

    #[test]
    fn the_signature_note_names_every_device_in_order_with_generics_for_http_and_tls() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/static-website/unikernel.toml");
        let cfg = crate::config::load(&file).unwrap();
        let note = signature_note(&cfg);
        assert!(
            note.contains(
                "pub async fn start<S, C>(console: impl Console, net: impl Stack, \
                 htdocs: impl KvRo, tls: Tls<S>, https: Server<Tls<S>, C>, \
                 http: Server<Plain<S>, C>) -> AppResult\n"
            ),
            "{note}"
        );
        assert!(
            note.contains("where S: Stack + Clone + 'static, C: Clock + Clone + 'static"),
            "{note}"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let mut last = 0;
        for d in &cfg.devices {
            let (line, col) = crate::diag::line_col(&text, d.kind_span.start);
            let at = note
                .find(&format!("[devices.{}] kind = ", d.name))
                .unwrap_or_else(|| panic!("{}: {note}", d.name));
            assert!(at > last, "declaration order: {note}");
            last = at;
            assert!(note.contains(&format!(":{line}:{col}\n")), "{note}");
        }
    }

    #[test]
    fn target_feature_warnings_and_missing_std_are_recognized() {
        let d: Diagnostic = serde_json::from_str(
            r#"{"message":"unstable feature specified for `-Ctarget-feature`: `neon`","code":null,
                "level":"warning","spans":[],"children":[],"rendered":"warning: …"}"#,
        )
        .unwrap();
        assert!(target_feature_warning(&d));
        assert!(!missing_std(&d));
        let d: Diagnostic = serde_json::from_str(
            r#"{"message":"can't find crate for `std`","code":{"code":"E0463","explanation":null},
                "level":"error","spans":[],"children":[],"rendered":"error[E0463]: …"}"#,
        )
        .unwrap();
        assert!(missing_std(&d));
        assert!(!target_feature_warning(&d));
    }
}
