//! Fuzzes the device-tree and boot-info parsing the Xen platform does at boot
//! (`uni_runtime::dtb::parse`, over the blob Xen passes in r2; then the boot arguments from
//! `/chosen/bootargs`).
//!
//! Seeds: `seeds-dtb/`: libxl-layout guest trees compiled with dtc from `fuzz/dts/`, and QEMU
//! virt's own trees (`-machine dumpdtb=`) for the emulated boards.
//! Properties: a tree is refused with an error that names what was wrong (and where in the
//! blob), or gives facts the platform can act on: 1 to 4 RAM banks, each non-empty and below
//! 4 GiB; a GIC; the blob's size no more than the input; the strings borrowed from the blob;
//! and the boot arguments either parse or give an error quoting the argument.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uni_runtime::boot::BootArgs;
use uni_runtime::dtb::{parse, DtError, Gic, MAX_BANKS};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(f) => {
            assert!(f.banks >= 1 && f.banks <= MAX_BANKS);
            for &(base, size) in &f.ram[..f.banks] {
                assert!(size > 0);
                assert!(base < 1 << 32);
                assert!(base + size <= 1 << 32, "{base:#x}+{size:#x} crosses 4 GiB");
            }
            assert!(f.ram[f.banks..].iter().all(|&r| r == (0, 0)));
            match f.gic {
                Gic::V2 { .. } | Gic::V3 { .. } => {}
            }
            assert_eq!(f.blob.0, data.as_ptr() as usize as u64);
            assert!(f.blob.1 as usize <= data.len());
            let inside = |s: &str| {
                s.is_empty()
                    || (s.as_ptr() as usize >= data.as_ptr() as usize
                        && s.as_ptr() as usize + s.len() <= data.as_ptr() as usize + data.len())
            };
            assert!(inside(f.bootargs) && inside(f.xen_compatible));
            assert!(f.xen_compatible.is_empty() || f.xen_compatible.starts_with("xen,xen-"));
            if let Err(e) = BootArgs::parse_cmdline(f.bootargs) {
                let shown = e.to_string();
                assert!(shown.starts_with("boot argument `"), "{shown}");
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("device tree: "), "{shown}");
            match e {
                DtError::Header(what) => assert!(shown.ends_with(what)),
                DtError::Structure(what, at) => {
                    assert!(at < data.len(), "{shown}");
                    assert!(shown.ends_with(what));
                }
                DtError::NoMemory | DtError::NoGic => {}
            }
        }
    }
});
