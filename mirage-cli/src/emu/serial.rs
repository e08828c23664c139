//! Reading the board's serial line: which lines are the guest's, which are dom0's and Xen's,
//! and how the run ended. Sans-IO: the caller feeds lines and acts on what comes back.
//!
//! The protocol is written by `templates/qemu-virt/dom0-init.sh`: dom0 prints its lines for the
//! host as `@@uni:<tag> <text>`. Xen may print in the middle of one of them, so the tag is looked
//! for anywhere in the line.

use super::Outcome;

const TAG: &str = "@@uni:";

/// One serial line, classified.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    /// A line of the guest's console (`@@uni:g`).
    Guest(&'a str),
    /// dom0's progress (`@@uni:s`).
    Progress(&'a str),
    /// A line of `xl create`'s log, printed because the create failed (`@@uni:x`).
    Xl(&'a str),
    /// Diagnostics after a crash or a silent guest: `xl dmesg`, `xenctx` (`@@uni:d`).
    Diag(&'a str),
    /// A timing of the current guest in seconds since its `xl create` began (`@@uni:t`).
    Timing { what: &'a str, secs: f64 },
    /// Output of the dom0 check (`@@uni:c`).
    Check(&'a str),
    /// The dom0 check's exit status (`@@uni:cend`).
    CheckEnd(i32),
    /// The current guest has ended (`@@uni:gend`); more may follow.
    GuestEnd { reason: &'a str, detail: &'a str },
    /// The last line: why the guest (or dom0) ended (`@@uni:end`).
    End { reason: &'a str, detail: &'a str },
    /// One line of the ended guest's trace ring, base64 (`@@uni:T`, `uni run --trace`).
    Trace(&'a str),
    /// A line of the dom0 trace reader's stderr (`@@uni:Terr`).
    TraceErr(&'a str),
    /// The trace reader's exit status, after its last line (`@@uni:Tend`).
    TraceEnd(i32),
    /// Anything else: Xen, the dom0 kernel, QEMU.
    Other(&'a str),
}

pub fn classify(line: &str) -> Line<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(at) = line.find(TAG) else {
        return Line::Other(line);
    };
    let rest = &line[at + TAG.len()..];
    let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
    // the guest's own line may end in \r (its console writes \r\n)
    let text = text.trim_end_matches('\r');
    match tag {
        "g" => Line::Guest(text),
        "s" => Line::Progress(text),
        "x" => Line::Xl(text),
        "d" => Line::Diag(text),
        "end" | "gend" => {
            let (reason, detail) = text.split_once(' ').unwrap_or((text, ""));
            if tag == "end" {
                Line::End { reason, detail }
            } else {
                Line::GuestEnd { reason, detail }
            }
        }
        "c" => Line::Check(text),
        "cend" => match text.trim().parse() {
            Ok(status) => Line::CheckEnd(status),
            Err(_) => Line::Other(line),
        },
        "T" => Line::Trace(text.trim()),
        "Terr" => Line::TraceErr(text),
        "Tend" => match text.trim().parse() {
            Ok(status) => Line::TraceEnd(status),
            Err(_) => Line::Other(line),
        },
        "t" => match text
            .split_once(' ')
            .and_then(|(w, s)| Some((w, s.trim().parse().ok()?)))
        {
            Some((what, secs)) => Line::Timing { what, secs },
            None => Line::Other(line),
        },
        _ => Line::Other(line),
    }
}

/// What the caller should do with a line.
#[derive(Debug, PartialEq)]
pub enum Action<'a> {
    /// Print to stdout: the guest said it.
    Guest(&'a str),
    /// The domain now exists.
    Created { domid: u32 },
    /// A timing of the current guest (seconds since its `xl create`, dom0's clock).
    Timing { what: &'a str, secs: f64 },
    /// A line of the dom0 check's output.
    Check(&'a str),
    /// The dom0 check finished with this exit status.
    CheckEnd(i32),
    /// dom0's DHCP server gave the guest this address.
    Leased(&'a str),
    /// The current guest ended; the run goes on with the next one.
    GuestEnd(Outcome),
    /// Print only when verbose: Xen, dom0, the toolstack.
    Board(&'a str),
    /// The run is over.
    End(Outcome),
    /// A base64 line of the ended guest's trace ring.
    Trace(&'a str),
    /// A line of the dom0 trace reader's stderr.
    TraceErr(&'a str),
    /// The trace reader is done, with this exit status.
    TraceEnd(i32),
}

/// Keeps what a failure report needs while the lines go by.
#[derive(Debug, Default)]
pub struct Monitor {
    pub guest_lines: usize,
    xl: Vec<String>,
    diag: Vec<String>,
    /// the last lines that were not the guest's, for when dom0 or QEMU fails
    tail: std::collections::VecDeque<String>,
}

const TAIL: usize = 40;

impl Monitor {
    pub fn feed<'a>(&mut self, raw: &'a str) -> Action<'a> {
        let line = classify(raw);
        if !matches!(line, Line::Guest(_)) {
            if self.tail.len() == TAIL {
                self.tail.pop_front();
            }
            self.tail
                .push_back(raw.trim_end_matches(['\r', '\n']).to_string());
        }
        match line {
            Line::Guest(t) => {
                self.guest_lines += 1;
                Action::Guest(t)
            }
            Line::Progress(t) => {
                if let Some(domid) = t
                    .strip_prefix("guest created domid=")
                    .and_then(|d| d.parse().ok())
                {
                    return Action::Created { domid };
                }
                match t.strip_prefix("dhcp: sending ACK to ") {
                    Some(ip) => Action::Leased(ip.trim()),
                    None => Action::Board(t),
                }
            }
            Line::Timing { what, secs } => Action::Timing { what, secs },
            Line::Check(t) => Action::Check(t),
            Line::CheckEnd(st) => Action::CheckEnd(st),
            Line::GuestEnd { reason, detail } => {
                let o = self.outcome(reason, detail);
                self.xl.clear();
                Action::GuestEnd(o)
            }
            Line::Xl(t) => {
                self.xl.push(t.to_string());
                Action::Board(t)
            }
            Line::Diag(t) => {
                self.diag.push(t.to_string());
                Action::Board(t)
            }
            Line::End { reason, detail } => Action::End(self.outcome(reason, detail)),
            Line::Trace(t) => Action::Trace(t),
            Line::TraceErr(t) => Action::TraceErr(t),
            Line::TraceEnd(st) => Action::TraceEnd(st),
            Line::Other(t) => Action::Board(t),
        }
    }

    fn outcome(&self, reason: &str, detail: &str) -> Outcome {
        match reason {
            "poweroff" => Outcome::Poweroff,
            "reboot" => Outcome::Reboot,
            "crash" | "watchdog" | "suspend" | "soft_reset" | "unknown" => Outcome::Crash,
            "create-failed" => {
                Outcome::BootFailed(format!("xl create failed: {}", xl_summary(&self.xl)))
            }
            "dom0-failed" => Outcome::BootFailed(format!("dom0 did not come up: {detail}")),
            other => Outcome::BootFailed(format!("dom0 ended with `{other} {detail}`")),
        }
    }

    /// The guest's PC from the `xenctx` dump after a crash.
    pub fn crash_pc(&self) -> Option<&str> {
        self.diag
            .iter()
            .find_map(|l| l.trim().strip_prefix("PC:"))
            .map(str::trim)
    }

    /// What to show on stderr when the guest printed nothing (or the run failed): xl's log,
    /// the hypervisor's lines about the guest, else the last lines of the board.
    pub fn report(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.xl.is_empty() {
            out.push("xl create said:".to_string());
            out.extend(
                self.xl
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("  {l}")),
            );
        }
        if !self.diag.is_empty() {
            out.push("Xen said about the guest (xl dmesg, xenctx):".to_string());
            out.extend(self.diag.iter().map(|l| format!("  {l}")));
        }
        if out.is_empty() && !self.tail.is_empty() {
            out.push("the board's last lines:".to_string());
            out.extend(self.tail.iter().map(|l| format!("  {l}")));
        }
        out
    }
}

/// The first error lines of an xl log (`xc: error: …`, `libxl: error: …`), else lines saying
/// something failed, else its last line.
pub fn xl_summary(xl: &[String]) -> String {
    let lines: Vec<&str> = xl
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let pick = |f: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .copied()
            .filter(|l| f(l))
            .take(2)
            .collect::<Vec<_>>()
    };
    let mut found = pick(&|l| l.contains("error:"));
    if found.is_empty() {
        found = pick(&|l| {
            let l = l.to_ascii_lowercase();
            l.contains("fail") || l.contains("cannot") || l.contains("no such")
        });
    }
    match (found.is_empty(), lines.last()) {
        (false, _) => found.join("; "),
        (true, Some(last)) => last.to_string(),
        (true, None) => "no output".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_tags() {
        assert_eq!(
            classify("@@uni:g Hello, world\r"),
            Line::Guest("Hello, world")
        );
        assert_eq!(classify("@@uni:g "), Line::Guest(""));
        assert_eq!(classify("@@uni:g   indented"), Line::Guest("  indented"));
        assert_eq!(
            classify("@@uni:s dom0 up: 6.1.0 aarch64"),
            Line::Progress("dom0 up: 6.1.0 aarch64")
        );
        assert_eq!(
            classify("@@uni:x libxl: error: x"),
            Line::Xl("libxl: error: x")
        );
        assert_eq!(classify("@@uni:d (XEN) d1v0 x"), Line::Diag("(XEN) d1v0 x"));
        assert_eq!(
            classify("@@uni:end crash code=3 domid=1\r\n"),
            Line::End {
                reason: "crash",
                detail: "code=3 domid=1"
            }
        );
        assert_eq!(
            classify("@@uni:end poweroff"),
            Line::End {
                reason: "poweroff",
                detail: ""
            }
        );
        assert_eq!(
            classify("(XEN) d0v1: vGICR: SGI"),
            Line::Other("(XEN) d0v1: vGICR: SGI")
        );
        assert_eq!(classify("@@uni:zz what"), Line::Other("@@uni:zz what"));
    }

    #[test]
    fn classifies_timings_checks_and_guest_ends() {
        assert_eq!(
            classify("@@uni:t first-output 0.42"),
            Line::Timing {
                what: "first-output",
                secs: 0.42
            }
        );
        assert_eq!(
            classify("@@uni:t marker x"),
            Line::Other("@@uni:t marker x")
        );
        assert_eq!(
            classify("@@uni:c 3 packets transmitted"),
            Line::Check("3 packets transmitted")
        );
        assert_eq!(classify("@@uni:cend 1"), Line::CheckEnd(1));
        assert_eq!(
            classify("@@uni:gend poweroff code=0 domid=1"),
            Line::GuestEnd {
                reason: "poweroff",
                detail: "code=0 domid=1"
            }
        );
        let mut m = Monitor::default();
        assert_eq!(
            m.feed("@@uni:gend crash code=3 domid=2"),
            Action::GuestEnd(Outcome::Crash)
        );
        assert_eq!(
            m.feed("@@uni:s dhcp: sending ACK to 10.0.0.2"),
            Action::Leased("10.0.0.2")
        );
        assert_eq!(
            m.feed("@@uni:s dhcp: sending OFFER to 10.0.0.2"),
            Action::Board("dhcp: sending OFFER to 10.0.0.2")
        );
    }

    #[test]
    fn classifies_the_trace_lines() {
        assert_eq!(
            classify("@@uni:T VU5JVAEAQAAgAAAA\r"),
            Line::Trace("VU5JVAEAQAAgAAAA")
        );
        assert_eq!(
            classify("@@uni:Terr uni-trace-dump: domain 1 published no trace ring"),
            Line::TraceErr("uni-trace-dump: domain 1 published no trace ring")
        );
        assert_eq!(classify("@@uni:Tend 0"), Line::TraceEnd(0));
        assert_eq!(classify("@@uni:Tend x"), Line::Other("@@uni:Tend x"));
        assert_eq!(Monitor::default().feed("@@uni:Tend 1"), Action::TraceEnd(1));
    }

    #[test]
    fn finds_the_tag_behind_interleaved_output() {
        assert_eq!(
            classify("(XEN) d1v0 Unhandled SMC@@uni:g ok"),
            Line::Guest("ok")
        );
    }

    #[test]
    fn a_guest_line_that_looks_like_a_tag_is_still_the_guests() {
        assert_eq!(
            classify("@@uni:g @@uni:end poweroff"),
            Line::Guest("@@uni:end poweroff")
        );
    }

    #[test]
    fn monitor_maps_end_reasons_to_outcomes() {
        let end = |r: &str| match Monitor::default().feed(r) {
            Action::End(o) => o,
            a => panic!("{a:?}"),
        };
        assert_eq!(end("@@uni:end poweroff code=0 domid=1"), Outcome::Poweroff);
        assert_eq!(end("@@uni:end reboot code=1 domid=1"), Outcome::Reboot);
        assert_eq!(end("@@uni:end crash code=3 domid=1"), Outcome::Crash);
        assert_eq!(end("@@uni:end watchdog code=4 domid=1"), Outcome::Crash);
        assert!(
            matches!(end("@@uni:end dom0-failed xenstored"), Outcome::BootFailed(m) if m.contains("xenstored"))
        );
    }

    #[test]
    fn monitor_counts_guest_lines_and_reports_domain_creation() {
        let mut m = Monitor::default();
        assert_eq!(
            m.feed("(XEN) *** LOADING DOMAIN 0 ***"),
            Action::Board("(XEN) *** LOADING DOMAIN 0 ***")
        );
        assert_eq!(
            m.feed("@@uni:s guest created domid=1"),
            Action::Created { domid: 1 }
        );
        assert_eq!(m.feed("@@uni:g hi"), Action::Guest("hi"));
        assert_eq!(m.guest_lines, 1);
        assert_eq!(m.report()[0], "the board's last lines:");
        assert!(!m.report().iter().any(|l| l.contains("hi")));
    }

    #[test]
    fn create_failure_carries_xls_errors() {
        let mut m = Monitor::default();
        m.feed("@@uni:x Parsing config from /guest/hello.xl");
        m.feed("@@uni:x libxl: error: libxl_dom.c:571:libxl__build_dom: Domain 1:xc_dom_parse_image failed");
        m.feed("@@uni:x libxl: error: libxl_create.c:1879:domcreate_rebuild_done: cannot (re-)build domain: -3");
        m.feed("@@uni:x ");
        let Action::End(Outcome::BootFailed(msg)) =
            m.feed("@@uni:end create-failed xl create exited with status 1")
        else {
            panic!()
        };
        assert!(
            msg.starts_with("xl create failed: libxl: error: libxl_dom.c"),
            "{msg}"
        );
        assert!(!msg.contains("Parsing"), "{msg}");
        assert!(msg.contains("cannot (re-)build domain"), "{msg}");
        assert_eq!(m.report()[0], "xl create said:");
        assert_eq!(m.report().len(), 4);
    }

    #[test]
    fn finds_the_crash_pc_in_xenctx_output() {
        let mut m = Monitor::default();
        assert_eq!(m.crash_pc(), None);
        m.feed("@@uni:d PC:       4001bb3c");
        m.feed("@@uni:d CPSR:     600001d3");
        assert_eq!(m.crash_pc(), Some("4001bb3c"));
    }

    #[test]
    fn xl_summary_falls_back_to_the_last_line() {
        assert_eq!(xl_summary(&["a".into(), "b".into(), " ".into()]), "b");
        assert_eq!(xl_summary(&[]), "no output");
        let xl = [
            "domainbuilder: detail: loader probe failed",
            "xc: error: panic: xg_dom_core.c:689: xc_dom_find_loader: no loader found: Invalid kernel",
            "libxl: error: libxl_dom.c:571:libxl__build_dom: xc_dom_parse_image failed",
            "libxl: error: libxl_create.c:1640:domcreate_rebuild_done: Domain 1:cannot (re-)build domain: -3",
        ]
        .map(String::from);
        assert_eq!(
            xl_summary(&xl),
            "xc: error: panic: xg_dom_core.c:689: xc_dom_find_loader: no loader found: Invalid kernel; \
             libxl: error: libxl_dom.c:571:libxl__build_dom: xc_dom_parse_image failed"
        );
        assert_eq!(xl_summary(&["a".into(), "x failed".into()]), "x failed");
    }
}
