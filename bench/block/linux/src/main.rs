//! `blkbench-linux DEVICE SEQ_MIB CHUNK_KIB OPS SECONDS SEED`: bench/block/app's four
//! workloads, in a Linux domU, on a block device opened with `O_DIRECT` (no page cache), so
//! that every transfer goes through Linux's block layer and xen-blkfront to blkback:
//!
//! | line | workload |
//! |---|---|
//! | `seq_write` | SEQ_MIB MiB from offset 0 on, CHUNK_KIB KiB per `pwrite`, then one `fdatasync` |
//! | `seq_read` | the same range, CHUNK_KIB KiB per `pread` |
//! | `rand_read` | OPS `pread`s of 4 KiB at 4 KiB-aligned offsets anywhere on the device, one at a time |
//! | `rand_write_flush` | OPS `pwrite`s of 4 KiB at such offsets, each followed by `fdatasync`, one at a time |
//!
//! On a block device `fdatasync` sends the device a cache flush (`blkdev_issue_flush`), which
//! xen-blkfront turns into `BLKIF_OP_FLUSH_DISKCACHE`: the request uni's `Block::flush` sends.
//! Times are `CLOCK_MONOTONIC` (on Xen ARM, the virtual counter uni's clock reads too). A
//! random workload stops early after SECONDS, checked every 16 operations, as the app does.
//! The lines are the app's: `blkbench: NAME bytes=B ops=N us=T`.
//!
//! Built for armv7a-none-eabihf with core from rust-src; it links no C library: `_start` takes
//! argc/argv from the stack and everything else is a system call (ARM EABI: number in r7,
//! `svc 0`).
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::{self, Write};

// The kernel enters with sp at argc, then argv[0..argc], NULL, envp, NULL, auxv.
global_asm!(
    ".globl _start",
    ".type _start, %function",
    "_start:",
    "mov r0, sp",
    "bic sp, sp, #7",
    "bl {main}",
    "udf #0",
    main = sym start,
);

// ARM EABI system call numbers (arch/arm/tools/syscall.tbl)
const SYS_EXIT_GROUP: u32 = 248;
const SYS_WRITE: u32 = 4;
const SYS_OPEN: u32 = 5;
const SYS_LLSEEK: u32 = 140;
const SYS_FDATASYNC: u32 = 148;
const SYS_PREAD64: u32 = 180;
const SYS_PWRITE64: u32 = 181;
const SYS_CLOCK_GETTIME: u32 = 263;

// open flags (ARM's values: O_DIRECT and O_LARGEFILE differ from x86's)
const O_RDWR: u32 = 0o2;
const O_DIRECT: u32 = 0o200000;
const O_LARGEFILE: u32 = 0o400000;
const CLOCK_MONOTONIC: u32 = 1;
const SEEK_END: u32 = 2;

/// Bytes of one random transfer.
const BLOCK: usize = 4096;
/// The largest CHUNK_KIB, in bytes.
const MAX_CHUNK: usize = 1 << 20;

/// A system call with up to six arguments; negative results are `-errno`.
fn syscall(n: u32, a: [u32; 6]) -> i32 {
    let r: i32;
    // SAFETY: a Linux system call. The callers pass pointers to memory they own, of the
    // lengths they pass, that the kernel may read or write for the duration of the call only.
    unsafe {
        asm!(
            "svc 0",
            in("r7") n,
            inlateout("r0") a[0] => r,
            in("r1") a[1],
            in("r2") a[2],
            in("r3") a[3],
            in("r4") a[4],
            in("r5") a[5],
            options(nostack)
        );
    }
    r
}

fn exit(code: u32) -> ! {
    syscall(SYS_EXIT_GROUP, [code, 0, 0, 0, 0, 0]);
    // exit_group does not return
    loop {
        core::hint::spin_loop();
    }
}

struct Stdout;

impl Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut b = s.as_bytes();
        while !b.is_empty() {
            let n = syscall(SYS_WRITE, [1, b.as_ptr() as u32, b.len() as u32, 0, 0, 0]);
            if n <= 0 {
                return Err(fmt::Error);
            }
            b = &b[n as usize..];
        }
        Ok(())
    }
}

/// Formats into a line buffer and writes it with one `write`, so that the console gets whole
/// lines.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

macro_rules! say {
    ($($t:tt)*) => {{
        let mut l = Line { buf: [0; 512], len: 0 };
        let _ = writeln!(l, $($t)*);
        // the buffer holds what was formatted, which came from &strs: UTF-8 up to a cut
        let _ = Stdout.write_str(core::str::from_utf8(&l.buf[..l.len]).unwrap_or("?\n"));
    }};
}

fn fail(what: &str, r: i32) -> ! {
    say!("blkbench: {what} failed: errno {}", -r);
    exit(1)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("blkbench: panic: {info}");
    exit(3)
}

/// Monotonic nanoseconds.
fn now_ns() -> u64 {
    let mut ts = [0i32; 2];
    let r = syscall(
        SYS_CLOCK_GETTIME,
        [CLOCK_MONOTONIC, ts.as_mut_ptr() as u32, 0, 0, 0, 0],
    );
    if r < 0 {
        fail("clock_gettime", r);
    }
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// `pread64`/`pwrite64`: the 64-bit offset goes in the even register pair r4:r5 (r3 unused).
fn transfer(n: u32, fd: u32, buf: *mut u8, len: usize, offset: u64) {
    let r = syscall(
        n,
        [
            fd,
            buf as u32,
            len as u32,
            0,
            offset as u32,
            (offset >> 32) as u32,
        ],
    );
    if r != len as i32 {
        let what = if n == SYS_PREAD64 { "pread" } else { "pwrite" };
        if r < 0 {
            fail(what, r);
        }
        say!("blkbench: {what} at {offset}: {r} of {len} bytes");
        exit(1);
    }
}

fn fdatasync(fd: u32) {
    let r = syscall(SYS_FDATASYNC, [fd, 0, 0, 0, 0, 0]);
    if r < 0 {
        fail("fdatasync", r);
    }
}

/// The offsets' sequence (xorshift64), as bench/block/app has it.
struct Offsets {
    state: u64,
    blocks: u64,
}

impl Offsets {
    fn new(seed: u64, blocks: u64) -> Offsets {
        Offsets {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            blocks,
        }
    }

    fn next_block(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x % self.blocks
    }
}

/// O_DIRECT buffers: aligned to a page.
#[repr(C, align(4096))]
struct Buffers {
    chunk: [u8; MAX_CHUNK],
    block: [u8; BLOCK],
}

static mut BUFFERS: Buffers = Buffers {
    chunk: [0; MAX_CHUNK],
    block: [0; BLOCK],
};

/// The NUL-terminated string at `p`, as bytes (without the NUL).
///
/// # Safety
/// `p` points at a NUL-terminated string that lives for the whole program (argv's do).
unsafe fn c_str(p: *const u8) -> &'static [u8] {
    let mut n = 0;
    // SAFETY: the string is NUL-terminated, so every byte up to the NUL is readable.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: the n bytes before the NUL, which live as long as the program.
    unsafe { core::slice::from_raw_parts(p, n) }
}

fn number(arg: &[u8], what: &str) -> u64 {
    let mut v: u64 = 0;
    if arg.is_empty() {
        say!("blkbench: {what} is empty");
        exit(2);
    }
    for &c in arg {
        if !c.is_ascii_digit() {
            say!("blkbench: {what} is not a number");
            exit(2);
        }
        v = v * 10 + u64::from(c - b'0');
    }
    v
}

extern "C" fn start(sp: *const u32) -> ! {
    // SAFETY: sp is where the kernel put argc and the argv pointers, which stay for the
    // program's life.
    let args: [&[u8]; 7] = unsafe {
        let argc = *sp as usize;
        if argc != 7 {
            say!("usage: blkbench-linux DEVICE SEQ_MIB CHUNK_KIB OPS SECONDS SEED");
            exit(2);
        }
        core::array::from_fn(|i| c_str(*sp.add(1 + i) as *const u8))
    };
    let seq = number(args[2], "SEQ_MIB") << 20;
    let chunk = number(args[3], "CHUNK_KIB") as usize * 1024;
    let ops = number(args[4], "OPS");
    let limit = number(args[5], "SECONDS") * 1_000_000_000;
    let seed = number(args[6], "SEED");
    if chunk == 0 || chunk > MAX_CHUNK || !seq.is_multiple_of(chunk as u64) {
        say!("blkbench: CHUNK_KIB must divide SEQ_MIB and be at most 1024");
        exit(2);
    }

    let mut path = [0u8; 256];
    let dev = args[1];
    if dev.len() >= path.len() {
        say!("blkbench: the device's path is too long");
        exit(2);
    }
    path[..dev.len()].copy_from_slice(dev);
    let fd = syscall(
        SYS_OPEN,
        [
            path.as_ptr() as u32,
            O_RDWR | O_DIRECT | O_LARGEFILE,
            0,
            0,
            0,
            0,
        ],
    );
    if fd < 0 {
        fail("opening the device", fd);
    }
    let fd = fd as u32;
    // the size: the end's offset (a block device's capacity, or a file's length)
    let mut size = 0u64;
    let r = syscall(
        SYS_LLSEEK,
        [fd, 0, 0, &mut size as *mut u64 as u32, SEEK_END, 0],
    );
    if r < 0 {
        fail("seeking to the end", r);
    }
    if seq > size {
        say!("blkbench: SEQ_MIB is more than the device's {size} bytes");
        exit(2);
    }
    say!(
        "blkbench: disk {} sectors of 512 bytes; seq {} MiB in {} KiB transfers, {ops} random \
         4 KiB ops (at most {} s each)",
        size / 512,
        seq >> 20,
        chunk / 1024,
        limit / 1_000_000_000
    );

    // SAFETY: the only references to BUFFERS, taken once, on the one thread.
    let bufs = unsafe { &mut *core::ptr::addr_of_mut!(BUFFERS) };
    for (i, b) in bufs.chunk[..chunk].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let us = |t0: u64| (now_ns() - t0) / 1000;

    let n = seq / chunk as u64;
    let t0 = now_ns();
    for k in 0..n {
        transfer(
            SYS_PWRITE64,
            fd,
            bufs.chunk.as_mut_ptr(),
            chunk,
            k * chunk as u64,
        );
    }
    fdatasync(fd);
    let t = us(t0);
    say!("blkbench: seq_write bytes={seq} ops={n} us={t}");

    let t0 = now_ns();
    for k in 0..n {
        transfer(
            SYS_PREAD64,
            fd,
            bufs.chunk.as_mut_ptr(),
            chunk,
            k * chunk as u64,
        );
    }
    let t = us(t0);
    say!("blkbench: seq_read bytes={seq} ops={n} us={t}");

    let blocks = size / BLOCK as u64;
    let mut at = Offsets::new(seed, blocks);
    let t0 = now_ns();
    let mut done = 0u64;
    while done < ops && (!done.is_multiple_of(16) || now_ns() - t0 < limit) {
        let off = at.next_block() * BLOCK as u64;
        transfer(SYS_PREAD64, fd, bufs.block.as_mut_ptr(), BLOCK, off);
        done += 1;
    }
    let t = us(t0);
    say!(
        "blkbench: rand_read bytes={} ops={done} us={t}",
        done * BLOCK as u64
    );

    let mut at = Offsets::new(seed.wrapping_add(1), blocks);
    let t0 = now_ns();
    let mut done = 0u64;
    while done < ops && (!done.is_multiple_of(16) || now_ns() - t0 < limit) {
        let off = at.next_block() * BLOCK as u64;
        transfer(SYS_PWRITE64, fd, bufs.block.as_mut_ptr(), BLOCK, off);
        fdatasync(fd);
        done += 1;
    }
    let t = us(t0);
    say!(
        "blkbench: rand_write_flush bytes={} ops={done} us={t}",
        done * BLOCK as u64
    );
    say!("blkbench: done");
    exit(0)
}
