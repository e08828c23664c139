//! Xen's shared-memory wire formats, as pure code: no `unsafe`, no hardware, no allocation of
//! shared pages. Everything here compiles and is unit-tested on every target; the Xen platform
//! (`platform::xen`) does the volatile accesses and hypercalls around it.
//!
//! The style follows smoltcp's `wire` module: each format has a checked `Packet<T: AsRef<[u8]>>`
//! view with its field offsets in a `mod field`, and a `Repr` with `parse`/`emit`.
//!
//! * [`ring`]: free-running producer/consumer index arithmetic on power-of-two byte rings.
//! * [`console`]: the PV console page (`io/console.h`).
//! * [`xenstore`]: the xenstore page and messages (`io/xs_wire.h`, `docs/misc/xenstore.txt`).
//! * [`grant`]: grant-table v1 entries and reference allocation (`grant_table.h`).
//! * [`netif`]: the netfront TX/RX rings, requests and responses (`io/netif.h`, `io/ring.h`).
//! * [`evtchn`]: 2-level event-channel bitmaps and the `shared_info` layout (`xen.h`, ARM ABI).
//!
//! All layouts are those of the ARM ABI, where `xen_ulong_t` and `xen_pfn_t` are 64 bits wide even
//! for a 32-bit guest.
#![forbid(unsafe_code)]

pub mod console;
pub mod evtchn;
pub mod grant;
pub mod netif;
pub mod ring;
pub mod xenstore;
