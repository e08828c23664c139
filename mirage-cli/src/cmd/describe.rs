//! `uni describe`: the device graph of a unikernel.toml, as `mirage describe` prints it: each
//! device, its kind, the devices it runs over, the type the app's `start` receives for it and
//! what builds it on the target; `--dot` writes the same graph for Graphviz.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::{out, show};
use crate::cli::Describe;
use crate::config::Config;
use crate::generate;
use crate::target::Target;

/// One device, as described.
struct Node {
    name: String,
    kind: &'static str,
    /// The devices it runs over (constructed before it, handed to its constructor).
    uses: Vec<String>,
    /// The type of `start`'s argument for it (docs/apps.md, "The signature rule").
    receives: String,
    /// The head of its constructor on the target: `uni_runtime::platform::Clock::new`.
    built_by: String,
}

pub fn run(args: Describe, file: &Path) -> Result<ExitCode> {
    let (cfg, target) = super::load_on(file, args.target, args.board.as_deref())?;
    // The plan checks that the target provides every device, and orders their construction.
    let plan = generate::plan(&cfg, target)?;
    let nodes = nodes(&cfg, target);
    let text = if args.dot {
        dot(&cfg, target, &nodes)
    } else {
        text(&cfg, target, &plan.board, &nodes, &plan.order)
    };
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn nodes(cfg: &Config, target: Target) -> Vec<Node> {
    cfg.devices
        .iter()
        .map(|d| {
            let kind = d.kind().name;
            let uses: Vec<String> = d.device.uses().iter().map(|u| u.to_string()).collect();
            let built_by = d
                .implement(target)
                .map(|i| head(&i.constructor))
                .unwrap_or_default();
            Node {
                name: d.name.clone(),
                kind,
                uses,
                receives: d.receives().to_string(),
                built_by,
            }
        })
        .collect()
}

/// A constructor expression cut to what names the implementation: the path it calls
/// (`uni_tls::Tls::new`), or, for an expression that calls no path, the expression itself.
fn head(constructor: &str) -> String {
    match constructor.split_once('(') {
        Some((h, _)) if h.contains("::") => h.to_string(),
        _ => constructor.to_string(),
    }
}

fn text(cfg: &Config, target: Target, board: &str, nodes: &[Node], order: &[String]) -> String {
    let mut o = String::new();
    let on = match target {
        Target::Unix => "target unix".to_string(),
        Target::XenArm => format!("target xen-arm, board {board}"),
    };
    let _ = writeln!(
        o,
        "{} ({on}): `{}` takes {} device{}, in this order",
        cfg.name,
        entry(cfg),
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" }
    );
    let rows: Vec<[String; 6]> = std::iter::once(
        [
            "#",
            "DEVICE",
            "KIND",
            "USES",
            "THE APP RECEIVES",
            "BUILT BY",
        ]
        .map(String::from),
    )
    .chain(nodes.iter().enumerate().map(|(i, n)| {
        [
            (i + 1).to_string(),
            n.name.clone(),
            n.kind.to_string(),
            if n.uses.is_empty() {
                "-".to_string()
            } else {
                n.uses.join(",")
            },
            n.receives.clone(),
            n.built_by.clone(),
        ]
    }))
    .collect();
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..6).map(width).collect();
    for r in &rows {
        let mut line = String::from(" ");
        for (c, cell) in r.iter().enumerate() {
            if c == 5 {
                line.push_str(&format!(" {cell}"));
            } else {
                line.push_str(&format!(" {cell:<w$}", w = widths[c]));
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    if !nodes.is_empty() {
        let _ = writeln!(o, "built in this order: {}", order.join(" -> "));
    }
    let generic = nodes.iter().any(|n| n.receives.contains("<S"));
    let _ = writeln!(
        o,
        "the types: docs/apps.md, \"The signature rule\"{}",
        if generic {
            "; S is the net device's stack, C the clock"
        } else {
            ""
        }
    );
    o
}

/// The app's entry point, as the generated main calls it: `hello::start`.
fn entry(cfg: &Config) -> String {
    let krate = crate::home::app_crate(&cfg.app_dir)
        .map(|(_, c)| c)
        .unwrap_or_else(|_| show(&cfg.app_dir));
    format!("{krate}::{}", cfg.entry)
}

/// A Graphviz string literal.
fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The graph in Graphviz's dot language: the app's entry point, an edge to each device it takes
/// (labelled with the argument's position), and an edge from each device to each it runs over.
fn dot(cfg: &Config, target: Target, nodes: &[Node]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "digraph {} {{", quote(&cfg.name));
    let _ = writeln!(
        o,
        "  label = {};",
        quote(&format!("{} (target {target})", cfg.name))
    );
    let _ = writeln!(o, "  labelloc = t;");
    let _ = writeln!(o, "  node [shape = box, fontname = \"monospace\"];");
    let app = format!("app:{}", cfg.name);
    let _ = writeln!(
        o,
        "  {} [shape = ellipse, label = {}];",
        quote(&app),
        quote(&format!("{}\n(the app)", entry(cfg)))
    );
    let id = |name: &str| quote(&format!("device:{name}"));
    for n in nodes {
        let _ = writeln!(
            o,
            "  {} [label = {}];",
            id(&n.name),
            quote(&format!(
                "{}\nkind {}\n{}\n{}",
                n.name, n.kind, n.receives, n.built_by
            ))
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {} -> {} [label = {}];",
            quote(&app),
            id(&n.name),
            quote(&(i + 1).to_string())
        );
    }
    for n in nodes {
        for u in &n.uses {
            let _ = writeln!(o, "  {} -> {} [style = dashed];", id(&n.name), id(u));
        }
    }
    o.push_str("}\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The type each kind gives `start` (devices/<kind>.rs, [`crate::devices::Kind::receives`])
    /// is the one docs/apps.md's table gives.
    #[test]
    fn every_kind_receives_the_type_docs_apps_md_gives() {
        let doc = include_str!("../../../docs/apps.md");
        for k in crate::devices::KINDS {
            let ty = k.receives;
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", k.name)))
                .unwrap_or_else(|| panic!("docs/apps.md has no row for kind {}", k.name));
            assert!(
                row.contains(&format!("`{ty}`")),
                "docs/apps.md says {row:?}, describe says `{ty}`"
            );
        }
        assert!(doc.contains(&format!("`{}`", crate::devices::HTTP_OVER_TLS)));
    }

    #[test]
    fn dot_strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn heads_of_constructors() {
        assert_eq!(
            head("uni_tls::Tls::new(net.clone(), x)"),
            "uni_tls::Tls::new"
        );
        assert_eq!(head("boot_args.clone()"), "boot_args.clone()");
    }
}
