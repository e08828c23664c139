//! Xen's shared-memory wire formats and ring protocols, as pure code: no `unsafe`, no hardware, no
//! allocation of shared pages. Everything here compiles and is unit-tested on every target. The
//! code that reads and writes the shared pages is generic over [`mem::SharedMem`]: the tests run it
//! on byte buffers, the Xen platform (`platform::xen`) on its mapped pages, around which it does
//! the hypercalls and the waiting.
//!
//! The message formats follow smoltcp's `wire` module: field offsets in a `mod field`, checked
//! views over byte buffers (`Packet<T: AsRef<[u8]>>`), and `Repr`s with `parse`/`emit`.
//!
//! * [`mem`]: the [`SharedMem`](mem::SharedMem) trait the ring and table code reads and writes
//!   shared memory through (a byte buffer in tests, a mapped page on Xen).
//! * [`ring`]: free-running producer/consumer index arithmetic on power-of-two byte rings.
//! * [`console`]: the PV console page (`io/console.h`).
//! * [`xenstore`]: the xenstore page and messages (`io/xs_wire.h`, `docs/misc/xenstore.txt`).
//! * [`grant`]: grant-table v1 entries and reference allocation (`grant_table.h`).
//! * [`blkif`]: the blkfront ring, its requests, responses and the backend's geometry
//!   (`io/blkif.h`).
//! * [`netif`]: the netfront TX/RX rings, requests and responses (`io/netif.h`, `io/ring.h`).
//! * [`xenbus`]: the front-end/back-end device states (`io/xenbus.h`).
//! * [`evtchn`]: 2-level event-channel bitmaps and the `shared_info` layout (`xen.h`, ARM ABI).
//!
//! All layouts are those of the ARM ABI, where `xen_ulong_t` and `xen_pfn_t` are 64 bits wide even
//! for a 32-bit guest.
#![forbid(unsafe_code)]

pub mod blkif;
pub mod console;
pub mod evtchn;
pub mod grant;
pub mod mem;
pub mod netif;
pub mod ring;
pub mod xenbus;
pub mod xenstore;
