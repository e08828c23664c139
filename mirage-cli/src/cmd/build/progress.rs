//! Progress during `uni build`: units done out of the total, as cargo's own bar shows them.
//!
//! The total comes from `cargo build --unit-graph` (unstable, so with `RUSTC_BOOTSTRAP=1`),
//! started once the build's first `Compiling` line shows that something compiles (a no-op
//! build never pays for it; by then the build has written its lockfile, which `--locked` then
//! only reads). Each unit of the graph ends in one JSON message of the build:
//! `compiler-artifact` for a compiled crate or build script, `build-script-executed` for a
//! build script's run, fresh or not, so the count reaches the total exactly when the build
//! succeeds.
//!
//! On a terminal: one line, redrawn in place (`    Building [=====>     ] 23/44: smoltcp`).
//! Elsewhere (a pipe, CI): a line when a quarter of the units is passed, and only once the
//! build has run for [`QUIET_FOR`], so at most three lines and none for a short build.

use std::time::{Duration, Instant};

/// How long a build runs before a non-terminal gets progress lines.
pub const QUIET_FOR: Duration = Duration::from_secs(3);

/// How long a terminal's bar waits for the total before it shows a count without one.
pub const TOTAL_WAIT: Duration = Duration::from_millis(500);

/// Where the progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (`-q`, `-v`: cargo's own lines are shown).
    Off,
    /// A line redrawn in place, on a terminal.
    Bar,
    /// A few whole lines, elsewhere.
    Lines,
}

pub struct Progress {
    mode: Mode,
    started: Instant,
    total: Option<usize>,
    done: usize,
    /// Crates that started compiling and have not ended, oldest first.
    active: Vec<String>,
    /// The bar on screen, if any (cleared before other output, redrawn when it changes).
    drawn: Option<String>,
    /// Quarters already reported in [`Mode::Lines`].
    quarters: usize,
}

impl Progress {
    pub fn new(mode: Mode, now: Instant) -> Progress {
        Progress {
            mode,
            started: now,
            total: None,
            done: 0,
            active: vec![],
            drawn: None,
            quarters: 0,
        }
    }

    pub fn set_total(&mut self, total: usize) {
        self.total = Some(total);
    }

    /// cargo's `Compiling NAME vX (…)`.
    /// (cargo says it once for a package's build script and again for its library.)
    pub fn started(&mut self, package: &str) {
        if !self.active.iter().any(|a| a == package) {
            self.active.push(package.to_string());
        }
    }

    /// One unit has ended: `name` is its target's or package's name.
    pub fn unit_done(&mut self, name: &str) {
        self.done += 1;
        let norm = |s: &str| s.replace('-', "_");
        if let Some(i) = self.active.iter().position(|a| norm(a) == norm(name)) {
            self.active.remove(i);
        }
    }

    /// The line, without a bar: `23/44: smoltcp, uni-runtime`.
    fn counts(&self) -> String {
        let mut s = match self.total {
            Some(t) => format!("{}/{}", self.done.min(t), t),
            None => format!("{} done", self.done),
        };
        if !self.active.is_empty() {
            let names: Vec<&str> = self
                .active
                .iter()
                .rev()
                .take(3)
                .map(String::as_str)
                .collect();
            s.push_str(": ");
            s.push_str(&names.join(", "));
        }
        s
    }

    /// The bar as cargo draws it, at most `width` characters.
    pub fn bar(&self, width: usize) -> String {
        let counts = self.counts();
        let mut line = match self.total {
            Some(t) if t > 0 => {
                const W: usize = 25;
                let filled = (self.done.min(t) * W) / t;
                let mut bar = "=".repeat(filled);
                if filled < W {
                    bar.push('>');
                    bar.push_str(&" ".repeat(W - filled - 1));
                }
                format!("{:>12} [{bar}] {counts}", "Building")
            }
            _ => format!("{:>12} {counts}", "Building"),
        };
        if line.chars().count() > width {
            line = line.chars().take(width.saturating_sub(3)).collect();
            line.push_str("...");
        }
        line
    }

    /// What to write to stderr now, if anything: the bar (`\r`, no newline) or a whole line.
    pub fn update(&mut self, now: Instant) -> Option<String> {
        match self.mode {
            Mode::Off => None,
            Mode::Bar => {
                // the total comes a tenth of a second after the first `Compiling`: no bar
                // without it before then
                if self.total.is_none() && now.duration_since(self.started) < TOTAL_WAIT {
                    return None;
                }
                let bar = self.bar(79);
                if self.drawn.as_ref() == Some(&bar) {
                    return None;
                }
                let out = format!("\r{bar}\x1b[K");
                self.drawn = Some(bar);
                Some(out)
            }
            Mode::Lines => {
                let t = self.total.filter(|t| *t > 0)?;
                let quarter = (self.done * 4) / t;
                if quarter <= self.quarters || quarter >= 4 {
                    return None;
                }
                if now.duration_since(self.started) < QUIET_FOR {
                    return None;
                }
                self.quarters = quarter;
                Some(format!("{:>12} {}\n", "Building", self.counts()))
            }
        }
    }

    /// What to write to stderr before other output: clears the bar.
    pub fn clear(&mut self) -> &'static str {
        if self.drawn.take().is_some() {
            "\r\x1b[K"
        } else {
            ""
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_units_and_names_the_active_crates() {
        let t = Instant::now();
        let mut p = Progress::new(Mode::Bar, t);
        p.set_total(4);
        p.started("uni-runtime");
        p.started("smoltcp");
        p.started("uni-runtime");
        p.unit_done("smoltcp");
        p.unit_done("build-script-build");
        let bar = p.bar(79);
        assert_eq!(
            bar,
            "    Building [============>            ] 2/4: uni-runtime"
        );
        assert!(p.update(t).unwrap().starts_with('\r'));
        assert_eq!(p.update(t), None, "redrawn only when it changes");
        assert_eq!(p.clear(), "\r\x1b[K");
        assert_eq!(p.clear(), "");
        assert!(p.bar(20).chars().count() <= 20);
    }

    #[test]
    fn lines_come_at_quarters_after_a_quiet_start_and_at_most_three() {
        let t = Instant::now();
        let mut p = Progress::new(Mode::Lines, t);
        p.set_total(8);
        let mut lines = vec![];
        for i in 0..8 {
            p.unit_done("x");
            // the first two units inside the quiet start
            let now = t + if i < 2 {
                Duration::from_secs(1)
            } else {
                QUIET_FOR + Duration::from_secs(i)
            };
            lines.extend(p.update(now));
        }
        assert_eq!(
            lines,
            [
                "    Building 3/8\n",
                "    Building 4/8\n",
                "    Building 6/8\n"
            ]
        );
        // without a total, nothing: no spam with no end in sight
        let mut p = Progress::new(Mode::Lines, t);
        p.unit_done("x");
        assert_eq!(p.update(t + QUIET_FOR * 2), None);
        let mut p = Progress::new(Mode::Off, t);
        p.set_total(1);
        assert_eq!(p.update(t), None);
    }
}
