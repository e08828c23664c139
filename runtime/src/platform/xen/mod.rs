//! The xen-arm platform: an armv7 (AArch32) Xen domU.
//!
//! Boot ([`boot`]) turns on the MMU and VFP and calls `uni_xen_start`, which reads the device tree,
//! maps the rest of memory, sets up the heap, `shared_info`, the GIC, the timer, the PV console
//! and the xenstore connection, then calls the generated main (the [`entry!`](crate::entry)
//! macro). That parses the boot arguments (compiled-in defaults, then the xl `extra=` string) and
//! runs the application on the executor until it returns; the domain then shuts down with
//! `poweroff` (`Ok`) or `crash` (`Err`, a panic, or a CPU fault), after printing why.
//!
//! Interrupts stay masked in CPSR: the executor blocks the vCPU with WFI, which a pending
//! interrupt still ends, and then acknowledges the GIC and handles event channels and timers
//! itself ([`executor`]). Nothing runs asynchronously to the tasks.
//!
//! Boot arguments the platform itself reads (the application never sees a difference):
//! * `--uni-boot-info`: print a platform summary and boot-stage timings on the console (the guest
//!   clock from the first instruction to the end of each stage, up to the app's start), then a
//!   `uni: boot: … at N us` line at each later milestone ([`boot_milestone`]: the network
//!   interface connected, the entropy source calibrated and first read, the first listen).
//! * `--uni-timestamps`: prefix every console line with the guest's monotonic time since its
//!   first instruction, as Linux's printk does: `[    1.002003] ` (seconds, 6 decimals, the
//!   seconds right-aligned in 5 columns). The time is taken when the line's first byte is
//!   written, so tests can measure line spacing in guest time. Only the platform's own boot-failure
//!   messages, printed before the application starts, carry no prefix.
//!
//! # Building an image
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo build --release --target armv7a-none-eabihf \
//!     -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem
//! RUSTFLAGS: -C link-arg=-T<templates/xen-arm/link.ld> [-C target-cpu=… -C target-feature=…]
//! rust-objcopy -O binary <elf> <name>.xen      # the zImage: bytes from 0x40008000 to __image_end
//! ```
//! `panic = "abort"` in the profile. The linker is the target's default, rust-lld. Without
//! target features the target's baseline (VFPv3-D16, no NEON) is used; `+neon,+vfp3` (QEMU
//! Cortex-A57) or `-C target-cpu=cortex-a7` (Cubieboard 2) enable NEON.
//!
//! All `unsafe` code of the runtime lives under this module.

mod arch;
mod blkfront;
mod boot;
mod console;
mod dtb;
mod entropy;
mod events;
mod executor;
mod gic;
mod grant;
mod granted;
mod hypercall;
mod mmu;
mod netfront;
mod shared;
#[cfg(feature = "stats")]
mod stats;
mod time;
#[cfg(feature = "trace")]
mod trace;
mod xenbus;
mod xenstore;

use core::fmt::Write as _;
use core::future::Future;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::time::Duration;

use crate::device;
use crate::{AppResult, BootArgs};

pub use crate::xen_wire::grant::GrantRef;
pub use blkfront::{BlkfrontError, Block, BlockStats};
pub use entropy::Random;
pub use events::{EventWait, Port};
pub use executor::spawn;
pub use grant::{GrantError, GrantTable};
pub use hypercall::XenError;
pub use netfront::{NetfrontError, Netif, NetifStats};
#[cfg(feature = "trace")]
pub use trace::{trace_ring_alloc, trace_ring_share, REFS_PER_KEY, TRACE_DIR};
pub use xenstore::{Transaction, Watch, Xenstore};

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

/// The PV console.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl Console {
    /// The domain's console (set up at boot).
    pub fn new() -> Console {
        Console
    }
}

impl device::Console for Console {
    async fn write(&self, bytes: &[u8]) -> Result<(), device::ConsoleError> {
        if !console::is_up() {
            return Err(device::ConsoleError(
                "the Xen console ring is not available",
            ));
        }
        console::write(&[bytes]).await;
        Ok(())
    }

    /// Writes `line` and the newline as one unit, so that lines from concurrent tasks never mix.
    async fn log(&self, line: &str) -> Result<(), device::ConsoleError> {
        if !console::is_up() {
            return Err(device::ConsoleError(
                "the Xen console ring is not available",
            ));
        }
        console::write(&[line.as_bytes(), b"\n"]).await;
        Ok(())
    }
}

/// Prints a diagnostic line from the platform or a library (not the app's console output), such
/// as the direct stack's `net: 10.0.0.2/24 (DHCP) on <mac>`: on Xen, a line on the PV console
/// (with the `--uni-timestamps` prefix if enabled). It does not wait for the executor, so it can
/// be called from synchronous code.
pub fn diag(line: &str) {
    console::write_sync_parts(&[line.as_bytes(), b"\n"]);
}

/// Writes one log record's line ([`crate::log`]) on the PV console, stamped with the guest
/// clock (by the console itself when `--uni-timestamps` stamps every line).
pub(crate) fn log_line(line: &str) {
    if console::timestamps_on() {
        return diag(line);
    }
    let mut buf = [0u8; crate::xen_wire::console::TIMESTAMP_MAX];
    let n = crate::xen_wire::console::timestamp(time::now_ns(), &mut buf);
    console::write_sync_parts(&[&buf[..n], line.as_bytes(), b"\n"]);
}

/// The ring counters of every network interface opened, summed ([`crate::metrics`]).
pub fn netif_totals() -> NetifStats {
    netfront::totals()
}

/// The counters of every block device opened, summed ([`crate::metrics`]); `None` if the guest
/// opened none.
pub fn block_totals() -> Option<BlockStats> {
    blkfront::totals()
}

/// The ARM virtual counter (monotonic, from the image's first instruction) and Xen's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

impl Clock {
    /// The domain's clock.
    pub fn new() -> Clock {
        Clock
    }
}

impl device::Clock for Clock {
    fn now(&self) -> device::Instant {
        device::Instant(time::now_ns())
    }

    fn wall(&self) -> device::WallTime {
        let (secs, nanos) = events::wall_clock().plus_nanos(time::since_domain_start_ns());
        device::WallTime { secs, nanos }
    }

    async fn sleep(&self, duration: Duration) {
        time::sleep_ns(duration.as_nanos().min(u128::from(u64::MAX)) as u64).await
    }
}

// ---------------------------------------------------------------------------------------------
// Running the application
// ---------------------------------------------------------------------------------------------

/// Why the domain shuts down (`SCHEDOP_shutdown` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The application finished (`SHUTDOWN_poweroff`).
    Poweroff,
    /// Restart the domain (`SHUTDOWN_reboot`).
    Reboot,
    /// The application failed (`SHUTDOWN_crash`); with `on_crash = "preserve"` the domain stays.
    Crash,
}

/// Shuts the domain down after giving the console backend up to a second to read what is left
/// in the ring.
pub fn shutdown(reason: ShutdownReason) -> ! {
    console::drain(1_000_000_000);
    let code = match reason {
        ShutdownReason::Poweroff => 0,
        ShutdownReason::Reboot => 1,
        ShutdownReason::Crash => 3,
    };
    loop {
        hypercall::sched_shutdown(code);
        arch::wfi();
    }
}

/// The xl `extra=` string (`/chosen/bootargs`).
pub fn cmdline() -> &'static str {
    FACTS.get().map(|f| f.bootargs).unwrap_or("")
}

/// The boot arguments: the compiled-in `defaults`, then the xl `extra=` string (a key given
/// twice takes its last value, so `extra=` overrides the defaults).
pub fn boot_args(defaults: &str) -> Result<BootArgs, crate::boot::BootArgError> {
    BootArgs::parse(
        defaults
            .split_whitespace()
            .chain(cmdline().split_whitespace()),
    )
}

/// Runs `main` with the boot arguments, checked against `spec`, and shuts the domain down with
/// its result. `--help` prints the keys and powers off; an unknown key or a value of the wrong
/// form prints the error and crashes, as an app's error does. Used through
/// [`entry!`](crate::entry).
pub fn run<F, Fut>(defaults: &str, spec: &crate::boot::Spec, main: F) -> !
where
    F: FnOnce(BootArgs) -> Fut,
    Fut: Future<Output = AppResult>,
{
    if cmdline()
        .split_whitespace()
        .any(|a| a == "--uni-timestamps")
    {
        console::enable_timestamps(); // before anything is printed, even a boot-argument error
    }
    let args = match boot_args(defaults)
        .map_err(crate::boot::UsageError::from)
        .and_then(|args| crate::boot::check(args, spec, defaults))
    {
        Ok(crate::boot::Checked::Run(args)) => args,
        Ok(crate::boot::Checked::Help(text)) => {
            let _ = console::SyncWriter.write_str(&text);
            shutdown(ShutdownReason::Poweroff);
        }
        Err(e) => {
            let _ = writeln!(console::SyncWriter, "error: {e}");
            shutdown(ShutdownReason::Crash);
        }
    };
    if args.get("uni-timestamps").is_some() {
        console::enable_timestamps();
    }
    crate::log::init(&args);
    stage_done(STAGE_ARGS);
    // The app starts now; the boot report's own printing is not counted.
    stage_done(STAGE_APP);
    if args.get("uni-boot-info").is_some() {
        BOOT_INFO.store(true, Ordering::Relaxed);
        print_boot_info();
    }
    #[cfg(feature = "stats")]
    spawn(stats::responder());
    match executor::block_on(main(args)) {
        Ok(()) => shutdown(ShutdownReason::Poweroff),
        Err(e) => {
            let _ = writeln!(console::SyncWriter, "error: {e}");
            shutdown(ShutdownReason::Crash)
        }
    }
}

/// Makes `$main` (an `async fn(BootArgs) -> AppResult`) the unikernel's entry point, with
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
        /// Called by the xen-arm runtime once the platform is up.
        #[unsafe(no_mangle)]
        pub extern "Rust" fn __uni_xen_main() -> ! {
            $crate::platform::run($defaults, $spec, $main)
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------------------------

/// GUEST_MAGIC_BASE: the console and xenstore pages (`arch-arm.h`); outside RAM.
const MAGIC_BASE: u64 = 0x3900_0000;

static FACTS: spin::Once<dtb::Facts> = spin::Once::new();
static UART: AtomicU32 = AtomicU32::new(0);
/// The boot stages `--uni-boot-info` reports, in order: each one's end is recorded in
/// microseconds since the first instruction. The first two are stamped by `boot.rs`'s assembly
/// (`uni_boot_ticks`), the last two by [`run`].
const STAGE_NAMES: [&str; 11] = [
    ".bss zeroed",
    "MMU + caches on",
    "console",
    "device tree",
    "mappings",
    "heap",
    "shared_info",
    "GIC",
    "xenstore",
    "boot args",
    "app start",
];
const STAGE_BSS: usize = 0;
const STAGE_MMU: usize = 1;
const STAGE_CONSOLE: usize = 2;
const STAGE_DTB: usize = 3;
const STAGE_MAPPINGS: usize = 4;
const STAGE_HEAP: usize = 5;
const STAGE_SHARED_INFO: usize = 6;
const STAGE_GIC: usize = 7;
const STAGE_XENSTORE: usize = 8;
const STAGE_ARGS: usize = 9;
const STAGE_APP: usize = 10;
static STAGES: [AtomicU32; STAGE_NAMES.len()] = [const { AtomicU32::new(0) }; STAGE_NAMES.len()];
/// Whether `--uni-boot-info` is on: [`boot_milestone`] prints only then.
static BOOT_INFO: AtomicBool = AtomicBool::new(false);

fn stage_done(i: usize) {
    STAGES[i].store((time::now_ns() / 1000) as u32, Ordering::Relaxed);
}

/// Records the counter values `boot.rs` stamped before any Rust code ran.
fn asm_stages() {
    // SAFETY: boot.rs wrote the four words (two CNTVCT values, low word first) with the caches
    // on, before calling `uni_xen_start`; nothing writes them afterwards.
    let t = unsafe { (&raw const uni_boot_ticks).read_volatile() };
    for (stage, (lo, hi)) in [(STAGE_BSS, (t[0], t[1])), (STAGE_MMU, (t[2], t[3]))] {
        let ticks = ((u64::from(hi) << 32) | u64::from(lo)).saturating_sub(time::boot_count());
        let us = ticks * 1_000_000 / time::freq();
        STAGES[stage].store(us as u32, Ordering::Relaxed);
    }
}

/// A boot milestone after the platform is up, such as the network interface connected, the
/// entropy source calibrated or the first listening socket: with `--uni-boot-info` it prints
/// `uni: boot: <what> at N us` (guest clock since the first instruction), at once, on the
/// console. Otherwise it does nothing. Cheap enough to call on every listen.
pub fn boot_milestone(what: &str) {
    if !BOOT_INFO.load(Ordering::Relaxed) {
        return;
    }
    let us = time::now_ns() / 1000;
    diag(&alloc::format!("uni: boot: {what} at {us} us"));
}

unsafe extern "C" {
    static __stack_guard: u8;
    static _end: u8;
    /// CNTVCT after .bss was zeroed and once the MMU and caches were on (`boot.rs`).
    static uni_boot_ticks: [u32; 4];
}

unsafe extern "Rust" {
    /// Defined by [`entry!`](crate::entry) in the generated main crate.
    safe fn __uni_xen_main() -> !;
}

#[global_allocator]
static HEAP: talc::TalcLock<spin::mutex::SpinMutex<()>, talc::source::Manual> =
    talc::TalcLock::new(talc::source::Manual);

/// The heap's use now, from the allocator's counters.
pub fn heap() -> crate::HeapStats {
    let c = *HEAP.lock().counters();
    crate::HeapStats {
        used: c.allocated_bytes,
        free: c.available_bytes,
        allocations: c.allocation_count,
    }
}

/// Writes to the `vuart = "sbsa_uart"` UART if the domain has one (early and fatal messages).
fn debug_uart_write(bytes: &[u8]) {
    let base = UART.load(Ordering::Relaxed) as usize;
    if base == 0 {
        return;
    }
    for &b in bytes {
        for _ in 0..100_000 {
            // SAFETY: UARTFR of the PL011-compatible vUART, mapped as Device memory in `start`.
            if unsafe { arch::mmio_read32(base + 0x18) } & (1 << 5) == 0 {
                break;
            }
        }
        // SAFETY: UARTDR of the same UART.
        unsafe { arch::mmio_write32(base, u32::from(b)) };
    }
}

fn fatal(what: core::fmt::Arguments<'_>) -> ! {
    let _ = writeln!(console::SyncWriter, "uni: boot failed: {what}");
    shutdown(ShutdownReason::Crash)
}

/// Gives `[base, end)` to the heap; returns the heap's end for a later `extend`.
fn claim(base: u64, end: u64) -> Option<core::ptr::NonNull<u8>> {
    let base = (base + 15) & !15;
    if end <= base + 4096 {
        return None;
    }
    // SAFETY: [base, end) is RAM that nothing else uses: above the image, stacks and tables
    // (`_end`), and outside the device tree blob while it is still read; it is mapped Normal and
    // claimed once.
    unsafe {
        HEAP.lock()
            .claim(base as usize as *mut u8, (end - base) as usize)
    }
}

/// Rust entry point, called by `boot.rs` with the MMU on: `dtb` from r2, and the virtual counter
/// read at the first instruction.
#[unsafe(no_mangle)]
extern "C" fn uni_xen_start(dtb: usize, count_lo: u32, count_hi: u32) -> ! {
    time::init((u64::from(count_hi) << 32) | u64::from(count_lo));
    asm_stages();

    // The console first, so that everything after can report failures.
    mmu::map(MAGIC_BASE, 1 << 20, mmu::NORMAL);
    let console_ok = console::init();
    stage_done(STAGE_CONSOLE);

    // SAFETY: r2 holds the device tree Xen built; boot.rs mapped it; nothing writes to it.
    let mut facts = match unsafe { dtb::parse(dtb) } {
        Ok(f) => f,
        Err(e) => fatal(format_args!("{e}")),
    };
    stage_done(STAGE_DTB);
    if let Some(uart) = facts.uart {
        mmu::map(uart, 4096, mmu::DEVICE);
        UART.store(uart as u32, Ordering::Relaxed);
    }
    if let Err(e) = console_ok {
        debug_uart_write(b"uni: no PV console\n");
        fatal(format_args!("console: {e}"));
    }
    for &(base, size) in &facts.ram[..facts.banks] {
        mmu::map(base, size, mmu::NORMAL);
    }
    if let Some((base, size)) = facts.grant_window {
        mmu::map(base, size, mmu::NORMAL);
        grant::set_window(base, size);
    }
    match facts.gic {
        dtb::Gic::V2 { dist, cpu } => {
            mmu::map(dist, 4096, mmu::DEVICE);
            mmu::map(cpu, 8192, mmu::DEVICE);
        }
        dtb::Gic::V3 {
            dist,
            redist,
            redist_size,
        } => {
            mmu::map(dist, 0x10000, mmu::DEVICE);
            mmu::map(redist, redist_size.min(0x20000), mmu::DEVICE);
        }
    }
    mmu::unmap_guard_page((&raw const __stack_guard) as u32);
    stage_done(STAGE_MAPPINGS);

    // The heap: all RAM above the image. The device tree blob (which libxl puts at the end of
    // bank 0, or at RAM + 128 MiB) is left out until the strings still needed from it are copied,
    // then the heap grows over it, so that it does not split the heap in two.
    let image_end = (&raw const _end) as u64;
    let (dtb_base, dtb_size) = facts.blob;
    let dtb_end = (dtb_base + dtb_size + 4095) & !4095;
    let mut grow_over_dtb = None;
    for &(base, size) in &facts.ram[..facts.banks] {
        let (lo, hi) = (base.max(image_end), base + size);
        if lo >= hi {
            continue;
        }
        if dtb_base < hi && dtb_end > lo {
            match claim(lo, dtb_base.max(lo)) {
                Some(end) if dtb_base >= lo + (1 << 20) => grow_over_dtb = Some((end, hi)),
                _ => {
                    claim(dtb_end.min(hi), hi);
                }
            }
        } else {
            claim(lo, hi);
        }
    }
    facts.bootargs = alloc::string::String::from(facts.bootargs).leak();
    facts.xen_compatible = alloc::string::String::from(facts.xen_compatible).leak();
    let facts = *FACTS.call_once(|| facts);
    if let Some((end, hi)) = grow_over_dtb {
        // SAFETY: `end` is the end of the heap claimed above; [end, hi) is the device tree blob
        // (no longer read: what is needed was copied) and free RAM above it.
        unsafe { HEAP.lock().extend(end, hi as usize as *mut u8) };
    }
    stage_done(STAGE_HEAP);
    if let Err(e) = events::init() {
        fatal(format_args!("mapping shared_info: {e}"));
    }
    stage_done(STAGE_SHARED_INFO);
    if let Err(e) = gic::init(facts.gic) {
        fatal(format_args!("GIC: {}", e.0));
    }
    stage_done(STAGE_GIC);
    if let Err(e) = xenstore::init() {
        fatal(format_args!("xenstore: {e}"));
    }
    stage_done(STAGE_XENSTORE);
    __uni_xen_main()
}

/// The `--uni-boot-info` report: the platform summary, the boot stages (microseconds since the
/// first instruction at each stage's end, and each stage's own share in parentheses) and the
/// grant table. Each line is formatted first and written once, so that the report costs few
/// console notifications.
fn print_boot_info() {
    use alloc::string::String;
    let f = FACTS.get().copied();
    let (major, minor) = hypercall::xen_version();
    let ram: u64 = f
        .map(|f| f.ram[..f.banks].iter().map(|r| r.1).sum())
        .unwrap_or(0);
    let app_us = STAGES[STAGE_APP].load(Ordering::Relaxed);
    let created_us = time::boot_count() * 1_000_000 / time::freq();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "uni: Xen {major}.{minor} ({}), {} MiB RAM, GICv{}, counter {} Hz; first instruction {} us after domain creation, platform up in {} us",
        f.map(|f| f.xen_compatible).unwrap_or("?"),
        ram >> 20,
        gic::version(),
        time::freq(),
        created_us,
        STAGES[STAGE_XENSTORE].load(Ordering::Relaxed),
    );
    let _ = write!(
        out,
        "uni: boot stages (us since first instruction, the stage's own in parentheses):"
    );
    let mut prev = 0;
    for (i, (name, t)) in STAGE_NAMES.iter().zip(&STAGES).enumerate() {
        let t = t.load(Ordering::Relaxed);
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(out, "{sep}{name} {t} ({})", t.saturating_sub(prev));
        prev = t;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "uni: app started after {app_us} us (guest clock)");
    if let Ok((mapped, max)) = GrantTable::new().frames() {
        let g = GrantTable::new();
        let show = |r: u32| match g.entry(GrantRef(r)) {
            Ok(Some(e)) => alloc::format!(
                "dom{} pfn {:#x}{}",
                e.domid,
                e.frame,
                if e.readonly { " ro" } else { "" }
            ),
            _ => String::from("-"),
        };
        let _ = writeln!(
            out,
            "uni: grant table {mapped}/{max} frames; ref 0: {}, ref 1: {}",
            show(0),
            show(1)
        );
    }
    // One line at a time: `--uni-timestamps` stamps each.
    for line in out.lines() {
        diag(line);
    }
}

// ---------------------------------------------------------------------------------------------
// Failure paths
// ---------------------------------------------------------------------------------------------

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::SeqCst) {
        shutdown(ShutdownReason::Crash); // a panic while reporting a panic
    }
    // The trace keeps the panic as its last event, for dom0 to read from the preserved domain.
    #[cfg(feature = "trace")]
    match info.location() {
        Some(l) => crate::trace::panic_fmt(format_args!(
            "panicked at {}:{}:{}:\n{}",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        )),
        None => crate::trace::panic_fmt(format_args!("panicked:\n{}", info.message())),
    }
    let mut w = console::SyncWriter;
    let _ = match info.location() {
        Some(l) => writeln!(
            w,
            "panicked at {}:{}:{}:\n{}",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        ),
        None => writeln!(w, "panicked:\n{}", info.message()),
    };
    shutdown(ShutdownReason::Crash)
}

/// Called by the exception vectors (`boot.rs`) with the exception kind, the saved r0–r12 and lr,
/// and the SPSR. Reports the fault and crashes the domain.
#[unsafe(no_mangle)]
extern "C" fn uni_xen_exception(kind: u32, regs: *const [u32; 14], spsr: u32) -> ! {
    // SAFETY: the vector code pushed 14 words at `regs` just before the call.
    let regs = unsafe { *regs };
    let (dfsr, dfar, ifsr, ifar) = arch::fault_registers();
    let (name, pc) = match kind {
        1 => ("undefined instruction", regs[13].wrapping_sub(4)),
        2 => ("unexpected SVC", regs[13].wrapping_sub(4)),
        3 => ("prefetch abort", regs[13].wrapping_sub(4)),
        4 => ("data abort", regs[13].wrapping_sub(8)),
        6 => ("unexpected IRQ", regs[13].wrapping_sub(4)),
        _ => ("unexpected exception", regs[13]),
    };
    let stack_guard = (&raw const __stack_guard) as u32;
    let mut w = console::SyncWriter;
    let _ = writeln!(
        w,
        "uni: CPU exception: {name} at pc {pc:#010x} (exception lr {:#010x}, spsr {spsr:#010x})",
        regs[13]
    );
    if kind == 4 {
        let _ = writeln!(w, "  data address {dfar:#010x}, fault status {dfsr:#x}");
        if dfar & !0xfff == stack_guard {
            let _ = writeln!(
                w,
                "  (stack overflow: the address is the stack's guard page)"
            );
        }
    } else if kind == 3 {
        let _ = writeln!(
            w,
            "  instruction address {ifar:#010x}, fault status {ifsr:#x}"
        );
    }
    for (i, r) in regs[..13].iter().enumerate() {
        let _ = write!(w, "  r{i}={r:#010x}");
        if i % 4 == 3 {
            let _ = writeln!(w);
        }
    }
    let _ = writeln!(w);
    shutdown(ShutdownReason::Crash)
}
