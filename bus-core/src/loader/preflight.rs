//! Checks a library file before it is handed to the dynamic loader.
//!
//! `dlopen` maps segments straight from the file: a truncated library (a
//! build still being copied, a broken download) maps pages past the end of
//! the file and the process dies of SIGBUS instead of getting an error. So
//! the file's structure is checked first: on ELF platforms every segment and
//! table must lie inside the file.

/// Why a file cannot be a loadable library, or `Ok` when it may be one.
pub(crate) fn check_library(bytes: &[u8]) -> Result<(), String> {
    if cfg!(target_os = "linux") || cfg!(target_os = "freebsd") {
        check_elf(bytes)
    } else {
        Ok(())
    }
}

fn read_u16(b: &[u8], at: usize, le: bool) -> Option<u64> {
    let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(u64::from(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) }))
}

fn read_u32(b: &[u8], at: usize, le: bool) -> Option<u64> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u64::from(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) }))
}

fn read_u64(b: &[u8], at: usize, le: bool) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(if le { u64::from_le_bytes(s) } else { u64::from_be_bytes(s) })
}

fn check_elf(b: &[u8]) -> Result<(), String> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" {
        return Err("the file is not an ELF shared library".into());
    }
    let is64 = match b[4] {
        1 => false,
        2 => true,
        _ => return Err("the ELF header names no valid class".into()),
    };
    let le = match b[5] {
        1 => true,
        2 => false,
        _ => return Err("the ELF header names no valid byte order".into()),
    };
    let short = || "the ELF header is cut short".to_string();
    let len = b.len() as u64;
    let e_type = read_u16(b, 16, le).ok_or_else(short)?;
    if e_type != 3 {
        return Err(format!("the file is an ELF file of type {e_type}, not a shared library"));
    }
    let (phoff, shoff, phentsize, phnum, shentsize, shnum) = if is64 {
        (
            read_u64(b, 0x20, le),
            read_u64(b, 0x28, le),
            read_u16(b, 0x36, le),
            read_u16(b, 0x38, le),
            read_u16(b, 0x3A, le),
            read_u16(b, 0x3C, le),
        )
    } else {
        (
            read_u32(b, 0x1C, le),
            read_u32(b, 0x20, le),
            read_u16(b, 0x2A, le),
            read_u16(b, 0x2C, le),
            read_u16(b, 0x2E, le),
            read_u16(b, 0x30, le),
        )
    };
    let (phoff, shoff, phentsize, phnum, shentsize, shnum) = (
        phoff.ok_or_else(short)?,
        shoff.ok_or_else(short)?,
        phentsize.ok_or_else(short)?,
        phnum.ok_or_else(short)?,
        shentsize.ok_or_else(short)?,
        shnum.ok_or_else(short)?,
    );
    let truncated = |what: &str, end: u64| {
        format!("the file is truncated: its {what} ends at byte {end} but the file has {len} bytes")
    };
    let ph_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    if ph_end > len {
        return Err(truncated("program header table", ph_end));
    }
    if shnum > 0 {
        let sh_end = shoff.saturating_add(shentsize.saturating_mul(shnum));
        if sh_end > len {
            return Err(truncated("section header table", sh_end));
        }
    }
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        let (offset, filesz) = if is64 {
            (read_u64(b, at + 8, le), read_u64(b, at + 0x20, le))
        } else {
            (read_u32(b, at + 4, le), read_u32(b, at + 0x10, le))
        };
        let end = offset.ok_or_else(short)?.saturating_add(filesz.ok_or_else(short)?);
        if end > len {
            return Err(truncated("segment", end));
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_library() -> Option<Vec<u8>> {
        ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libc.so.6"]
            .iter()
            .find_map(|p| std::fs::read(p).ok())
    }

    #[test]
    fn a_real_library_passes_and_its_truncations_do_not() {
        let Some(lib) = own_library() else { return };
        assert_eq!(check_library(&lib), Ok(()));
        for cut in [4096, lib.len() / 2, lib.len() - 1] {
            let err = check_library(&lib[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
    }

    #[test]
    fn other_files_are_refused() {
        assert!(check_library(b"hello").unwrap_err().contains("not an ELF"));
        let mut exec = own_library().unwrap_or_else(|| vec![0; 64]);
        exec[..4].copy_from_slice(b"\x7fELF");
        exec[4] = 2;
        exec[5] = 1;
        exec[16] = 2; // ET_EXEC
        exec[17] = 0;
        assert!(check_library(&exec).unwrap_err().contains("not a shared library"));
    }
}
