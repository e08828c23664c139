//! `uni stats`: a running guest's counters, asked for through xenstore from dom0
//! (templates/deploy/dom0.sh `stats`, runtime/src/platform/xen/stats.rs).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::deploy::{board_of, explain, name_of, optional_config, place, Place};
use crate::cli::Stats;
use crate::remote::quote;

pub fn run(args: Stats, file: &Path) -> Result<ExitCode> {
    let cfg = optional_config(file)?;
    let name = name_of(args.name, cfg.as_ref())?;
    let Place { remote, .. } = place(&args.remote, cfg.as_ref(), &board_of(cfg.as_ref())?)?;
    let host = remote.spec.to_string();
    let reply = remote
        .call("", &format!("stats {}", quote(&name)))
        .map_err(|e| explain(e, &host))?;
    let rows = parse(reply.all("stat"));
    if rows.is_empty() {
        anyhow::bail!("`{name}` on {host} answered with no counters");
    }
    super::out(&render(&rows, args.json, &name, reply.get("domid")))?;
    Ok(ExitCode::SUCCESS)
}

/// The `uni: stat NAME VALUE` lines' values, sorted by name. (The guest writes the names with
/// dashes for dots, which xenstore refuses in a node's name.)
fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.replace('-', "."), v.trim().parse().ok()?))
        })
        .collect();
    rows.sort();
    rows
}

fn render(rows: &[(String, u64)], json: bool, name: &str, domid: Option<&str>) -> String {
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect();
        let mut j = serde_json::to_string_pretty(&map).unwrap_or_default();
        j.push('\n');
        return j;
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut o = match domid {
        Some(id) => format!("{name} (domain {id}):\n"),
        None => format!("{name}:\n"),
    };
    for (k, v) in rows {
        let _ = writeln!(o, "  {k:<width$}  {v:>12}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_to_a_table_and_json() {
        let rows = parse(
            [
                "tcp-accepted 3",
                "http-requests-200 12",
                "bad",
                "heap-used_bytes x",
            ]
            .into_iter(),
        );
        assert_eq!(
            rows,
            [
                ("http.requests.200".to_string(), 12),
                ("tcp.accepted".to_string(), 3)
            ]
        );
        assert_eq!(
            render(&rows, false, "web", Some("4")),
            "web (domain 4):\n  http.requests.200            12\n  tcp.accepted                  3\n"
        );
        let j: serde_json::Value = serde_json::from_str(&render(&rows, true, "web", None)).unwrap();
        assert_eq!(j["http.requests.200"], 12);
        assert_eq!(j["tcp.accepted"], 3);
    }
}
