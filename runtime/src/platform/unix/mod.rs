//! The unix platform: a Linux process. The console is stdout, written by a thread of its own
//! (see [`Console`]); the clocks are the host's; the executor runs tasks in rounds on one
//! thread, driven by `async-io`'s reactor (see [`block_on`]).

use std::eprintln;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::device;
use crate::{AppResult, BootArgs};

mod block;
mod console;
mod executor;
mod tap;
pub use block::Block;
pub use console::{Console, BACKLOG};
/// [`run`] runs the application with [`block_on`]; tests use it to run servers that spawn
/// tasks.
pub use executor::{block_on, spawn};
pub use tap::Tap as Netif;

/// The host's monotonic and wall clocks.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: std::time::Instant,
}

impl Clock {
    /// A clock whose monotonic time starts at zero now.
    pub fn new() -> Clock {
        Clock {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl device::Clock for Clock {
    fn now(&self) -> device::Instant {
        device::Instant(self.start.elapsed().as_nanos() as u64)
    }

    fn wall(&self) -> device::WallTime {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        device::WallTime {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
        }
    }

    async fn sleep(&self, duration: Duration) {
        #[cfg(feature = "trace")]
        let _timer = TracedTimer::arm(duration);
        async_io::Timer::after(duration).await;
    }
}

/// With tracing: a sleep's timer, armed when made; it fired if its deadline has passed when the
/// sleep ends, completed or dropped after its deadline without a last poll.
#[cfg(feature = "trace")]
struct TracedTimer(std::time::Instant);

#[cfg(feature = "trace")]
impl TracedTimer {
    fn arm(duration: Duration) -> TracedTimer {
        let ns = duration.as_nanos().min(u128::from(u64::MAX)) as u64;
        crate::trace::timer(crate::trace::Kind::TimerArm, ns);
        TracedTimer(std::time::Instant::now() + duration)
    }
}

#[cfg(feature = "trace")]
impl Drop for TracedTimer {
    fn drop(&mut self) {
        let now = std::time::Instant::now();
        if now >= self.0 {
            let late = now.duration_since(self.0).as_nanos() as u64;
            crate::trace::timer(crate::trace::Kind::TimerFire, late);
        }
    }
}

/// The host's random number generator (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Random;

impl Random {
    /// The OS's CSPRNG.
    pub fn new() -> Random {
        Random
    }
}

impl device::Random for Random {
    fn fill(&self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random number generator failed");
    }
}

/// The boot arguments: the compiled-in `defaults`, then argv without the program name (a key
/// given twice takes its last value, so argv overrides the defaults).
pub fn boot_args(defaults: &str) -> Result<BootArgs, crate::boot::BootArgError> {
    let argv: std::vec::Vec<std::string::String> = std::env::args().skip(1).collect();
    BootArgs::parse(
        defaults
            .split_whitespace()
            .chain(argv.iter().map(|s| s.as_str())),
    )
}

/// Prints a diagnostic line from the platform or a library (not the app's console output):
/// stderr on unix.
pub fn diag(line: &str) {
    eprintln!("{line}");
}

/// How long the process waits, as it ends, for the console's reader to take what is left.
const EXIT_FLUSH: Duration = Duration::from_secs(10);

/// Boots: parses the boot arguments and checks them against `spec` (`--help` prints the keys
/// on stdout and exits 0; an unknown key or a value of the wrong form exits 2, a usage error),
/// runs `main` to completion, and turns its result into the exit code (an `Err` exits 1). A
/// panic on any thread, a spawned task's included, prints its location and message and exits
/// 1, as the Xen guest ends crashed (with `RUST_BACKTRACE` set, Rust's own report, backtrace
/// included). Used through [`entry!`](crate::entry).
pub fn run<F, Fut>(defaults: &str, spec: &crate::boot::Spec, main: F) -> ExitCode
where
    F: FnOnce(BootArgs) -> Fut,
    Fut: Future<Output = AppResult>,
{
    let rust_hook = std::panic::take_hook();
    std::panic::set_hook(std::boxed::Box::new(move |info| {
        // What the app wrote is out before the panic's message (unless the console's own
        // writer panicked: it would wait for itself).
        if std::thread::current().name() != Some("uni-console") {
            console::flush_stdout(EXIT_FLUSH);
        }
        let backtrace = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        if backtrace {
            rust_hook(info);
        } else {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| {
                    payload
                        .downcast_ref::<std::string::String>()
                        .map(|s| s.as_str())
                })
                .unwrap_or("(a panic without a message)");
            match info.location() {
                Some(l) => eprintln!(
                    "panicked at {}:{}:{}:\n{message}",
                    l.file(),
                    l.line(),
                    l.column()
                ),
                None => eprintln!("panicked:\n{message}"),
            }
        }
        // Whatever thread or task panicked, the unikernel ends, as on Xen: the executor would
        // otherwise drop a spawned task's panic and go on serving.
        std::process::exit(1);
    }));
    let args = match boot_args(defaults)
        .map_err(crate::boot::UsageError::from)
        .and_then(|args| crate::boot::check(args, spec, defaults))
    {
        Ok(crate::boot::Checked::Run(args)) => args,
        Ok(crate::boot::Checked::Help(text)) => {
            std::print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::log::init(&args);
    stats_on_sigusr2();
    let result = block_on(main(args));
    console::flush_stdout(EXIT_FLUSH);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the thread that prints the metrics' table ([`crate::metrics::table`]) on stderr at
/// each SIGUSR2. The counters are atomics, so it reads them while the app runs.
fn stats_on_sigusr2() {
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR2]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("uni: stats: cannot handle SIGUSR2: {e}");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("uni-stats".into())
        .spawn(move || {
            for _ in signals.forever() {
                let table = crate::metrics::table();
                // One write, so that the table's lines stay together.
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), table.as_bytes());
            }
        });
    if let Err(e) = spawned {
        eprintln!("uni: stats: cannot start the SIGUSR2 thread: {e}");
    }
}

/// Makes `$main` (an `async fn(BootArgs) -> AppResult`) the program's entry point, with
/// optional compiled-in default boot arguments and the [`Spec`](crate::boot::Spec) of the keys
/// it accepts (without one, nothing is checked).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, "");
    };
    ($main:path, $defaults:expr) => {
        $crate::entry!($main, $defaults, &$crate::boot::Spec::UNCHECKED);
    };
    ($main:path, $defaults:expr, $spec:expr) => {
        fn main() -> ::std::process::ExitCode {
            $crate::platform::run($defaults, $spec, $main)
        }
    };
}

/// The heap's use now, from glibc's `mallinfo2` (zero where the C library has none).
pub fn heap() -> crate::HeapStats {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics and returns them by value.
        let m = unsafe { libc::mallinfo2() };
        crate::HeapStats {
            used: m.uordblks + m.hblkhd,
            free: m.fordblks,
            allocations: 0,
        }
    }
    #[cfg(not(target_env = "gnu"))]
    crate::HeapStats {
        used: 0,
        free: 0,
        allocations: 0,
    }
}
