//! Log levels: the runtime's logger behind the [`log`] crate's facade.
//!
//! The libraries (libs/net, libs/http, libs/tls) and the runtime's Xen devices log with
//! `log::debug!` and its siblings, under their module paths (`uni_net::direct`,
//! `uni_runtime::platform::xen::netfront`, …). The platform installs [`Logger`] at boot, before
//! the devices start; it keeps the records at or above the level set for their module and
//! writes each as one line on the platform's diagnostic output (the PV console on Xen, stderr on
//! unix), stamped with the guest's clock as `--uni-timestamps` stamps console lines:
//!
//! ```text
//! [    2.104512] DEBUG net: accepted 10.0.0.254:40312 on port 80
//! ```
//!
//! Levels are set at boot with `--log-level`: a bare level for every module
//! (`--log-level=debug`), per-module levels (`--log-level=net:debug,http:info`), or both
//! (`--log-level=warn,tls:debug`). The [`MODULES`] are the names it accepts; a module not named
//! gets the bare level, `info` when none is given. The platform's own lines (the direct stack's
//! `net: 10.0.0.2/24 (DHCP) …`, `--uni-boot-info`) are not records: they are always printed.
//!
//! Levels above the build's static maximum (the `log` crate's `max_level_*` and
//! `release_max_level_*` features, which the generated main sets from `[log] max-level` in
//! unikernel.toml) are compiled out: their `log::debug!` calls cost nothing, not even the check.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU8, Ordering};

use ::log::{Level, LevelFilter, Metadata, Record};

/// The modules `--log-level` names: (name, the `log` target prefix it covers, what logs there).
/// A record's module is the one with the longest prefix of its target; `app` covers every
/// target outside uni's crates (the app's own crate and its dependencies).
pub const MODULES: &[(&str, &str, &str)] = &[
    ("net", "uni_net", "the network stack: TCP connections, DHCP"),
    (
        "http",
        "uni_http",
        "the HTTP server: each request, connection errors",
    ),
    (
        "tls",
        "uni_tls",
        "TLS sessions: handshakes and their failures",
    ),
    ("kv", "uni_kv", "the kv_rw store"),
    ("runtime", "uni_runtime", "the runtime and its devices"),
    (
        "xen",
        "uni_runtime::platform::xen",
        "the Xen platform: xenstore, events",
    ),
    (
        "netfront",
        "uni_runtime::platform::xen::netfront",
        "the Xen network device: rings, reconnects",
    ),
    (
        "blkfront",
        "uni_runtime::platform::xen::blkfront",
        "the Xen block device",
    ),
    (
        "app",
        "",
        "the app's own crate and every crate outside uni's",
    ),
];

const LEVEL_WORDS: &str = "off, error, warn, info, debug or trace";

/// The level `--log-level` was given for each of [`MODULES`] (0: none; else the
/// `LevelFilter` as a number plus one), and for the modules not named (index `MODULES.len()`).
static LEVELS: [AtomicU8; MODULES.len() + 1] = [const { AtomicU8::new(0) }; MODULES.len() + 1];

/// A parsed `--log-level` value: the bare level, and the level of each module named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    /// The level of modules not named (`info` when no bare level is given).
    pub default: LevelFilter,
    /// (index in [`MODULES`], level), in the order given.
    pub modules: alloc::vec::Vec<(usize, LevelFilter)>,
}

impl Levels {
    /// The most verbose level anything gets.
    pub fn max(&self) -> LevelFilter {
        self.modules
            .iter()
            .map(|&(_, l)| l)
            .fold(self.default, core::cmp::Ord::max)
    }
}

/// What was wrong with a `--log-level` value, in words (`Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelsError(pub alloc::string::String);

impl core::fmt::Display for LevelsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for LevelsError {}

fn level(word: &str) -> Option<LevelFilter> {
    Some(match word.to_ascii_lowercase().as_str() {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

/// Parses a `--log-level` value: comma-separated items, each `LEVEL` (every module) or
/// `MODULE:LEVEL`. The error names the item that is wrong, and the nearest module or level.
pub fn parse(value: &str) -> Result<Levels, LevelsError> {
    use alloc::format;
    let mut levels = Levels {
        default: LevelFilter::Info,
        modules: alloc::vec::Vec::new(),
    };
    if value.trim().is_empty() {
        return Err(LevelsError(format!(
            "no level given: a level ({LEVEL_WORDS}) or MODULE:LEVEL items, like net:debug,http:info"
        )));
    }
    let bad_level = |w: &str| {
        let near = crate::boot::nearest(
            &w.to_ascii_lowercase(),
            ["off", "error", "warn", "info", "debug", "trace"].into_iter(),
        );
        LevelsError(match near {
            Some(n) => format!("`{w}` is not a level: did you mean `{n}`? (levels: {LEVEL_WORDS})"),
            None => format!("`{w}` is not a level (levels: {LEVEL_WORDS})"),
        })
    };
    for item in value.split(',') {
        let item = item.trim();
        match item.split_once(':') {
            None if item.is_empty() => {
                return Err(LevelsError(format!(
                    "an empty item in `{value}`: items are LEVEL or MODULE:LEVEL, separated by commas"
                )));
            }
            None => levels.default = level(item).ok_or_else(|| bad_level(item))?,
            Some((module, word)) => {
                let Some(i) = MODULES.iter().position(|(m, _, _)| *m == module) else {
                    let names = MODULES.iter().map(|(m, _, _)| *m);
                    let list = names.clone().collect::<alloc::vec::Vec<_>>().join(", ");
                    return Err(LevelsError(match crate::boot::nearest(module, names) {
                        Some(n) => {
                            format!("no module `{module}`: did you mean `{n}`? (modules: {list})")
                        }
                        None => format!("no module `{module}` (modules: {list})"),
                    }));
                };
                let l = level(word).ok_or_else(|| bad_level(word))?;
                levels.modules.push((i, l));
            }
        }
    }
    Ok(levels)
}

/// Which of [`MODULES`] `target` belongs to: the longest prefix, `app` outside uni's crates.
fn module_of(target: &str) -> usize {
    let mut best: Option<(usize, usize)> = None;
    for (i, (_, prefix, _)) in MODULES.iter().enumerate() {
        if prefix.is_empty() {
            continue;
        }
        let hit = target == *prefix
            || (target.starts_with(prefix) && target[prefix.len()..].starts_with("::"));
        if hit && best.is_none_or(|(_, len)| prefix.len() > len) {
            best = Some((i, prefix.len()));
        }
    }
    match best {
        Some((i, _)) => i,
        None => MODULES.len() - 1, // app
    }
}

fn filter_of(i: usize) -> LevelFilter {
    const ALL: [LevelFilter; 6] = [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ];
    ALL[usize::from(LEVELS[i].load(Ordering::Relaxed)).saturating_sub(1)]
}

/// The level in force for `target`: its module's own, else the modules' parents' (`netfront`
/// inherits from `xen`, which inherits from `runtime`), else the bare level.
pub fn level_for(target: &str) -> LevelFilter {
    let mut i = module_of(target);
    loop {
        if LEVELS[i].load(Ordering::Relaxed) != 0 {
            return filter_of(i);
        }
        // The parent: the longest other prefix of this module's prefix.
        let prefix = MODULES[i].1;
        let parent = MODULES.iter().enumerate().filter(|(j, (_, p, _))| {
            *j != i && !p.is_empty() && prefix.len() > p.len() && prefix.starts_with(p)
        });
        match parent.max_by_key(|(_, (_, p, _))| p.len()) {
            Some((j, _)) => i = j,
            None => return filter_of(MODULES.len()),
        }
    }
}

/// Sets the levels (the platform calls it at boot with `--log-level`'s value; [`init`] does).
pub fn set(levels: &Levels) {
    for l in &LEVELS {
        l.store(0, Ordering::Relaxed);
    }
    LEVELS[MODULES.len()].store(levels.default as u8 + 1, Ordering::Relaxed);
    for &(i, l) in &levels.modules {
        LEVELS[i].store(l as u8 + 1, Ordering::Relaxed);
    }
    ::log::set_max_level(levels.max());
}

/// The runtime's logger: see the module's documentation.
#[derive(Debug)]
pub struct Logger;

static LOGGER: Logger = Logger;

impl ::log::Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = alloc::string::String::new();
        let _ = write!(
            line,
            "{:<5} {}: {}",
            record.level(),
            MODULES[module_of(record.target())].0,
            record.args()
        );
        emit(record.level(), &line);
    }

    fn flush(&self) {}
}

/// Writes one record's line, stamped with the guest clock.
fn emit(_level: Level, line: &str) {
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    crate::platform::log_line(line);
    #[cfg(unix)]
    {
        let mut stamp = [0u8; crate::xen_wire::console::TIMESTAMP_MAX];
        let n = crate::xen_wire::console::timestamp(since_start_ns(), &mut stamp);
        let stamp = core::str::from_utf8(&stamp[..n]).unwrap_or("");
        std::eprintln!("{stamp}{line}");
    }
    #[cfg(not(any(unix, all(target_arch = "arm", target_os = "none"))))]
    let _ = line;
}

#[cfg(unix)]
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Nanoseconds since the process started logging (unix's guest clock, near enough: [`init`]
/// runs before the devices start).
#[cfg(unix)]
fn since_start_ns() -> u64 {
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

/// Installs the logger with `--log-level`'s value from `args` (the platform calls it once the
/// arguments are checked, before the devices start). A value that does not parse was refused
/// by [`crate::boot::check`] already; here it leaves the default, `info`.
pub fn init(args: &crate::BootArgs) {
    #[cfg(unix)]
    let _ = since_start_ns();
    let levels = args
        .get("log-level")
        .and_then(|v| parse(v).ok())
        .unwrap_or(Levels {
            default: LevelFilter::Info,
            modules: alloc::vec::Vec::new(),
        });
    // A second call (a test running two unikernels in one process) keeps the first logger,
    // which is this one.
    let _ = ::log::set_logger(&LOGGER);
    set(&levels);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn forms() {
        let l = parse("debug").unwrap();
        assert_eq!(l.default, LevelFilter::Debug);
        assert!(l.modules.is_empty());
        let l = parse("net:debug,http:info").unwrap();
        assert_eq!(l.default, LevelFilter::Info);
        assert_eq!(l.modules, [(0, LevelFilter::Debug), (1, LevelFilter::Info)]);
        assert_eq!(l.max(), LevelFilter::Debug);
        let l = parse("warn, tls:TRACE").unwrap();
        assert_eq!(l.default, LevelFilter::Warn);
        assert_eq!(l.max(), LevelFilter::Trace);
    }

    #[test]
    fn refusals_say_what_and_suggest() {
        let e = parse("nte:debug").unwrap_err().to_string();
        assert!(e.starts_with("no module `nte`: did you mean `net`?"), "{e}");
        assert!(e.contains("modules: net, http, tls"), "{e}");
        let e = parse("net:debgu").unwrap_err().to_string();
        assert!(
            e.starts_with("`debgu` is not a level: did you mean `debug`?"),
            "{e}"
        );
        assert!(parse("")
            .unwrap_err()
            .to_string()
            .contains("no level given"));
        assert!(parse("debug,")
            .unwrap_err()
            .to_string()
            .contains("empty item"));
        let e = parse("zzzzzzzz").unwrap_err().to_string();
        assert_eq!(
            e,
            "`zzzzzzzz` is not a level (levels: off, error, warn, info, debug or trace)"
        );
    }

    #[test]
    fn boot_refuses_a_bad_value_in_words() {
        let spec = crate::boot::Spec {
            name: "t",
            devices: &[],
            app: &[],
            open: false,
        };
        let args = crate::BootArgs::parse(["--log-level=net:debug,htp:info"]).unwrap();
        let e = crate::boot::check(args, &spec, "").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "boot argument --log-level=net:debug,htp:info: no module `htp`: did you mean `http`?"
            ),
            "{e}"
        );
        let args = crate::BootArgs::parse(["--log-level=net:debug"]).unwrap();
        assert!(crate::boot::check(args, &spec, "").is_ok());
        let help = crate::boot::help(&spec, "");
        assert!(help.contains("--log-level=[MODULE:]LEVEL,…"), "{help}");
    }

    #[test]
    fn modules_by_longest_prefix() {
        assert_eq!(MODULES[module_of("uni_net::direct")].0, "net");
        assert_eq!(MODULES[module_of("uni_net")].0, "net");
        assert_eq!(MODULES[module_of("uni_network")].0, "app");
        assert_eq!(
            MODULES[module_of("uni_runtime::platform::xen::netfront::rings")].0,
            "netfront"
        );
        assert_eq!(MODULES[module_of("uni_runtime::platform::xen")].0, "xen");
        assert_eq!(MODULES[module_of("uni_runtime::boot")].0, "runtime");
        assert_eq!(MODULES[module_of("static_website")].0, "app");
    }

    /// One test owns the global levels (tests run on threads).
    #[test]
    fn levels_inherit_from_parents_then_the_bare_level() {
        set(&parse("warn,runtime:debug,http:off").unwrap());
        assert_eq!(level_for("uni_net::direct"), LevelFilter::Warn);
        assert_eq!(level_for("uni_http::server"), LevelFilter::Off);
        assert_eq!(
            level_for("uni_runtime::platform::xen::netfront"),
            LevelFilter::Debug
        );
        assert_eq!(level_for("my_app"), LevelFilter::Warn);
        set(&parse("xen:trace").unwrap());
        assert_eq!(
            level_for("uni_runtime::platform::xen::netfront"),
            LevelFilter::Trace
        );
        assert_eq!(level_for("uni_runtime::kv"), LevelFilter::Info);
    }
}
