//! The `.xen` image: the linked ELF flattened into a raw binary, with its zImage header
//! checked and its start and end addresses written.
//!
//! Xen's ARM domain builder (`xg_dom_armzimageloader.c`) recognises a 32-bit zImage by the
//! magic 0x016f2818 at offset 0x24, then reads the start address at 0x28 and the end address
//! at 0x2c. It copies `end - start` bytes of the file to `start` and jumps there.

use std::path::Path;

use anyhow::{bail, Context, Result};

pub const ZIMAGE_MAGIC: u32 = 0x016f_2818;
const MAGIC_AT: usize = 0x24;
/// The smallest file Xen accepts as a zImage.
const MIN_LEN: usize = 0x30;

/// Fills in the header of `image`, a raw binary that will run at `load`: checks the magic the
/// runtime's entry code reserves, then writes start = `load` and end = `load + len`.
pub fn write_zimage_header(image: &mut [u8], load: u32) -> Result<()> {
    if image.len() < MIN_LEN {
        bail!(
            "the image is {} bytes; a zImage needs at least {MIN_LEN}",
            image.len()
        );
    }
    let magic = u32::from_le_bytes(image[MAGIC_AT..MAGIC_AT + 4].try_into().expect("4 bytes"));
    if magic != ZIMAGE_MAGIC {
        bail!(
            "no zImage magic at offset {MAGIC_AT:#x} (found {magic:#010x}): the image does not start with the runtime's entry code; \
             is the linker script placing .text.uni_head first?"
        );
    }
    let len = u32::try_from(image.len()).context("image larger than 4 GiB")?;
    let end = load
        .checked_add(len)
        .context("image does not fit below 4 GiB at its load address")?;
    image[MAGIC_AT + 4..MAGIC_AT + 8].copy_from_slice(&load.to_le_bytes());
    image[MAGIC_AT + 8..MAGIC_AT + 12].copy_from_slice(&end.to_le_bytes());
    Ok(())
}

/// The header fields of a zImage: (start, end), or why it is not one.
pub fn read_zimage_header(image: &[u8]) -> Result<(u32, u32)> {
    if image.len() < MIN_LEN {
        bail!("{} bytes: too short for a zImage", image.len());
    }
    let word = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().expect("4 bytes"));
    if word(MAGIC_AT) != ZIMAGE_MAGIC {
        bail!("no zImage magic at {MAGIC_AT:#x}");
    }
    Ok((word(MAGIC_AT + 4), word(MAGIC_AT + 8)))
}

/// The loadable bytes of an ELF as one flat image starting at `load`, as `objcopy -O binary`
/// writes them: each allocated section with contents at its address, gaps zeroed, zero-fill
/// sections (BSS, stacks) left out.
pub fn flatten_elf(elf: &[u8], load: u32) -> Result<Vec<u8>> {
    use object::read::elf::{ElfFile32, SectionHeader};
    use object::Endianness;
    let file = ElfFile32::<Endianness>::parse(elf).context("not a 32-bit ELF file")?;
    let endian = file.endian();
    let mut out: Vec<u8> = Vec::new();
    for sh in file.elf_section_table().iter() {
        let alloc = sh.sh_flags(endian) & object::elf::SHF_ALLOC != 0;
        if !alloc || sh.sh_type(endian) == object::elf::SHT_NOBITS || sh.sh_size(endian) == 0 {
            continue;
        }
        let addr = sh.sh_addr(endian);
        let Some(offset) = addr.checked_sub(load) else {
            bail!("a section is at {addr:#x}, below the load address {load:#x}");
        };
        let data = sh
            .data(endian, elf)
            .map_err(|_| anyhow::anyhow!("a section lies outside the file"))?;
        let start = offset as usize;
        let end = start + data.len();
        if out.len() < end {
            out.resize(end, 0);
        }
        out[start..end].copy_from_slice(data);
    }
    if out.is_empty() {
        bail!("the ELF has no loadable bytes");
    }
    Ok(out)
}

/// Turns the ELF at `elf` into the image at `out`, loaded at `load`; returns its size.
pub fn make_image(elf: &Path, out: &Path, load: u32) -> Result<u64> {
    let bytes = std::fs::read(elf).with_context(|| format!("reading `{}`", elf.display()))?;
    let mut image =
        flatten_elf(&bytes, load).with_context(|| format!("flattening `{}`", elf.display()))?;
    write_zimage_header(&mut image, load)
        .with_context(|| format!("writing the zImage header of `{}`", out.display()))?;
    let tmp = out.with_extension(format!("xen.tmp{}", std::process::id()));
    std::fs::write(&tmp, &image)?;
    std::fs::rename(&tmp, out)?;
    Ok(image.len() as u64)
}

/// The size of the disk image at `path`, which must be a file of a non-empty whole number of
/// 512-byte sectors (what blkback and the unix block device accept).
pub fn check_disk_image(path: &Path) -> Result<u64> {
    let p = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        anyhow::anyhow!(
            "the disk image {p} cannot be read: {e}; make one with `truncate -s 64M {p}` (or \
             `uni kv format {p}` for a kv_rw store)"
        )
    })?;
    if !meta.is_file() || meta.len() == 0 || meta.len() % 512 != 0 {
        bail!(
            "the disk image {p} is {} bytes: a disk image is a non-empty file of whole 512-byte \
             sectors",
            meta.len()
        );
    }
    Ok(meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[MAGIC_AT..MAGIC_AT + 4].copy_from_slice(&ZIMAGE_MAGIC.to_le_bytes());
        v
    }

    #[test]
    fn header_gets_start_and_end() {
        let mut img = blank(0x1000);
        write_zimage_header(&mut img, 0x4000_8000).unwrap();
        assert_eq!(
            read_zimage_header(&img).unwrap(),
            (0x4000_8000, 0x4000_9000)
        );
        assert_eq!(
            &img[0x28..0x30],
            &[0x00, 0x80, 0x00, 0x40, 0x00, 0x90, 0x00, 0x40]
        );
    }

    #[test]
    fn header_refuses_what_xen_would() {
        assert!(
            write_zimage_header(&mut [0u8; 0x2f], 0x4000_8000).is_err(),
            "too short"
        );
        let err = write_zimage_header(&mut [0u8; 0x100], 0x4000_8000).unwrap_err();
        assert!(err.to_string().contains("no zImage magic"), "{err}");
        assert!(
            write_zimage_header(&mut blank(0x100), 0xffff_ff80).is_err(),
            "wraps past 4 GiB"
        );
    }
}
