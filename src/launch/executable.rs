//! What kind of executable a file is, read from its first bytes: an ELF
//! binary (architecture, static/glibc/musl, the glibc version and the
//! shared libraries it needs), a script with a shebang, or something that
//! cannot run on Linux nodes (macOS, Windows).

/// How a Linux binary is linked, which decides its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    Static,
    Glibc,
    Musl,
    /// Another dynamic loader (its path).
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// The Kubernetes name of the architecture (`amd64`, `arm64`…), or the
    /// ELF machine number when kubesh does not know it.
    pub arch: String,
    pub linkage: Linkage,
    /// Whether the file holds everything its headers point to: a binary
    /// still being written by a linker does not.
    pub complete: bool,
    /// For a glibc binary, the newest glibc version it needs (the highest
    /// `GLIBC_2.N` among its symbol versions), as (2, N).
    pub glibc: Option<(u32, u32)>,
    /// The shared libraries it needs (`DT_NEEDED`: `libssl.so.3`), in order.
    pub needed: Vec<String>,
    /// Where it looks for them first (`DT_RUNPATH`, else `DT_RPATH`):
    /// directories, `$ORIGIN` standing for its own.
    pub runpath: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    Elf(Elf),
    /// A Mach-O binary (macOS).
    MachO,
    /// A PE binary (Windows `.exe`).
    Windows,
    /// `#!…`: the interpreter's command word (`python3` for
    /// `#!/usr/bin/env python3`).
    Shebang(String),
    /// Anything else.
    Other,
}

/// Classifies a file from its contents.
pub fn inspect(bytes: &[u8]) -> FileKind {
    if bytes.starts_with(b"\x7fELF") {
        return parse_elf(bytes).map_or(FileKind::Other, FileKind::Elf);
    }
    if bytes.starts_with(b"MZ") {
        return FileKind::Windows;
    }
    if let Some(magic) = bytes.get(..4) {
        let magic = u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]);
        if matches!(magic, 0xfeedface | 0xfeedfacf | 0xcefaedfe | 0xcffaedfe) {
            return FileKind::MachO;
        }
    }
    if let Some(rest) = bytes.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else {
            return FileKind::Other;
        };
        let program = first.rsplit('/').next().unwrap_or(first);
        let interpreter = if program == "env" {
            words.find(|w| !w.starts_with('-'))
        } else {
            Some(program)
        };
        return interpreter.map_or(FileKind::Other, |i| FileKind::Shebang(i.to_string()));
    }
    FileKind::Other
}

/// The Kubernetes architecture name of an ELF machine number.
fn arch_name(machine: u16) -> String {
    match machine {
        3 => "386",
        40 => "arm",
        62 => "amd64",
        183 => "arm64",
        243 => "riscv64",
        21 => "ppc64le",
        22 => "s390x",
        _ => return format!("elf-machine-{machine}"),
    }
    .to_string()
}

/// The architecture of the machine kubesh runs on, in Kubernetes' terms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

fn parse_elf(bytes: &[u8]) -> Option<Elf> {
    let wide = match bytes.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match bytes.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u64> {
        let b = bytes.get(at..at.checked_add(2)?)?;
        Some(u64::from(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        }))
    };
    let u32_at = |at: usize| -> Option<u64> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    let u64_at = |at: usize| -> Option<u64> {
        let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let machine = u16_at(18)? as u16;
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(32)?, u16_at(54)?, u16_at(56)?)
    } else {
        (u32_at(28)?, u16_at(42)?, u16_at(44)?)
    };
    let (shoff, shentsize, shnum) = if wide {
        (u64_at(40)?, u16_at(58)?, u16_at(60)?)
    } else {
        (u32_at(32)?, u16_at(46)?, u16_at(48)?)
    };
    let length = bytes.len() as u64;
    let within = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= length);
    let mut complete = within(shoff, shentsize.saturating_mul(shnum));
    const PT_LOAD: u64 = 1;
    const PT_INTERP: u64 = 3;
    let mut interpreter = None;
    // A program header's segment: its offset in the file and its size there.
    let segment = |header: usize| -> Option<(u64, u64)> {
        Some(if wide {
            (
                u64_at(header.checked_add(8)?)?,
                u64_at(header.checked_add(32)?)?,
            )
        } else {
            (
                u32_at(header.checked_add(4)?)?,
                u32_at(header.checked_add(16)?)?,
            )
        })
    };
    for index in 0..phnum {
        let header = usize::try_from(phoff.checked_add(index.checked_mul(phentsize)?)?).ok()?;
        let kind = u32_at(header)?;
        if kind == PT_LOAD {
            let (offset, size) = segment(header)?;
            complete &= within(offset, size);
        }
        if kind != PT_INTERP {
            continue;
        }
        let (offset, size) = segment(header)?;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        let path = bytes.get(start..end)?;
        interpreter = Some(
            String::from_utf8_lossy(path)
                .trim_end_matches('\0')
                .to_string(),
        );
    }
    let linkage = match interpreter {
        None => Linkage::Static,
        Some(path) if path.contains("ld-musl") => Linkage::Musl,
        Some(path) if path.contains("ld-linux") || path.contains("ld64.so") => Linkage::Glibc,
        Some(path) => Linkage::Other(path),
    };
    // A section's name (an offset in the section names) and its bytes.
    let section = |index: u64| -> Option<(u32, &[u8])> {
        let header = usize::try_from(shoff.checked_add(index.checked_mul(shentsize)?)?).ok()?;
        let name = u32_at(header)? as u32;
        let (offset, size) = if wide {
            (
                u64_at(header.checked_add(24)?)?,
                u64_at(header.checked_add(32)?)?,
            )
        } else {
            (
                u32_at(header.checked_add(16)?)?,
                u32_at(header.checked_add(20)?)?,
            )
        };
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        Some((name, bytes.get(start..end)?))
    };
    let names_index = if wide { u16_at(62) } else { u16_at(50) };
    let names = names_index.and_then(&section).map(|(_, names)| names);
    let named = |wanted: &[u8]| -> Option<&[u8]> {
        let names = names?;
        (0..shnum).find_map(|index| {
            let (name, data) = section(index)?;
            let name = names.get(usize::try_from(name).ok()?..)?;
            (name.starts_with(wanted) && name.get(wanted.len()) == Some(&0)).then_some(data)
        })
    };
    let dynstr = (linkage != Linkage::Static)
        .then(|| named(b".dynstr"))
        .flatten();
    let glibc = dynstr
        .filter(|_| linkage == Linkage::Glibc)
        .and_then(newest_glibc);
    let (needed, runpath) = match (dynstr, named(b".dynamic")) {
        (Some(strings), Some(dynamic)) => dynamic_names(dynamic, strings, wide, little),
        _ => (Vec::new(), Vec::new()),
    };
    Some(Elf {
        arch: arch_name(machine),
        linkage,
        complete,
        glibc,
        needed,
        runpath,
    })
}

/// The libraries a dynamic section names (`DT_NEEDED`) and its search
/// path (`DT_RUNPATH`, else `DT_RPATH`, split at `:`), read with the
/// strings of `.dynstr`.
fn dynamic_names(
    dynamic: &[u8],
    strings: &[u8],
    wide: bool,
    little: bool,
) -> (Vec<String>, Vec<String>) {
    const DT_NULL: u64 = 0;
    const DT_NEEDED: u64 = 1;
    const DT_RPATH: u64 = 15;
    const DT_RUNPATH: u64 = 29;
    let word = |bytes: &[u8]| -> u64 {
        match (wide, little) {
            (true, true) => bytes.try_into().map_or(0, u64::from_le_bytes),
            (true, false) => bytes.try_into().map_or(0, u64::from_be_bytes),
            (false, true) => bytes
                .try_into()
                .map_or(0, |b| u64::from(u32::from_le_bytes(b))),
            (false, false) => bytes
                .try_into()
                .map_or(0, |b| u64::from(u32::from_be_bytes(b))),
        }
    };
    let string = |offset: u64| -> Option<String> {
        let rest = strings.get(usize::try_from(offset).ok()?..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let size = if wide { 8 } else { 4 };
    let (mut needed, mut rpath, mut runpath) = (Vec::new(), None, None);
    for entry in dynamic.chunks_exact(2 * size) {
        let (tag, value) = (word(&entry[..size]), word(&entry[size..]));
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.extend(string(value)),
            DT_RPATH => rpath = string(value),
            DT_RUNPATH => runpath = string(value),
            _ => {}
        }
    }
    let path = runpath
        .or(rpath)
        .map(|path| {
            path.split(':')
                .filter(|dir| !dir.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    (needed, path)
}

/// The highest `GLIBC_X.Y` version name in a dynamic string table
/// (`.dynstr`), where the symbol versions a glibc binary needs are named.
fn newest_glibc(bytes: &[u8]) -> Option<(u32, u32)> {
    const MARK: &[u8] = b"GLIBC_";
    let mut newest = None;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(MARK.len()).position(|w| w == MARK) {
        let start = at + found + MARK.len();
        at = start;
        let name: Vec<u8> = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .copied()
            .collect();
        // A version name ends its string: `GLIBC_2.34\0`.
        if bytes.get(start + name.len()) != Some(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&name);
        let mut parts = text.split('.');
        let (Some(Ok(major)), Some(Ok(minor))) = (
            parts.next().map(str::parse::<u32>),
            parts.next().map(str::parse::<u32>),
        ) else {
            continue;
        };
        newest = newest.max(Some((major, minor)));
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ELF header with one program header.
    fn elf64(machine: u16, interpreter: Option<&str>) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + 56];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&1u16.to_le_bytes());
        if let Some(path) = interpreter {
            let offset = bytes.len() as u64;
            let mut text = path.as_bytes().to_vec();
            text.push(0);
            bytes[64..68].copy_from_slice(&3u32.to_le_bytes());
            bytes[72..80].copy_from_slice(&offset.to_le_bytes());
            bytes[96..104].copy_from_slice(&(text.len() as u64).to_le_bytes());
            bytes.extend(text);
        }
        bytes
    }

    #[test]
    fn elf_linkage_and_architecture() {
        assert_eq!(
            inspect(&elf64(62, None)),
            FileKind::Elf(Elf {
                arch: "amd64".into(),
                linkage: Linkage::Static,
                complete: true,
                glibc: None,
                needed: vec![],
                runpath: vec![],
            })
        );
        assert_eq!(
            inspect(&elf64(183, Some("/lib/ld-linux-aarch64.so.1"))),
            FileKind::Elf(Elf {
                arch: "arm64".into(),
                linkage: Linkage::Glibc,
                complete: true,
                glibc: None,
                needed: vec![],
                runpath: vec![],
            })
        );
        assert_eq!(
            inspect(&elf64(62, Some("/lib/ld-musl-x86_64.so.1"))),
            FileKind::Elf(Elf {
                arch: "amd64".into(),
                linkage: Linkage::Musl,
                complete: true,
                glibc: None,
                needed: vec![],
                runpath: vec![],
            })
        );
    }

    #[test]
    fn the_newest_glibc_a_string_table_names() {
        let dynstr =
            b"\0libc.so.6\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.38\0GLIBC_PRIVATE\0GLIBC_2.4\0\
                       text mentioning GLIBC_2.99 in prose";
        assert_eq!(newest_glibc(dynstr), Some((2, 38)));
        assert_eq!(newest_glibc(b"\0libm.so.6\0"), None);
    }

    #[test]
    fn this_test_binary_is_a_host_elf() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        match inspect(&me) {
            FileKind::Elf(elf) => {
                assert_eq!(elf.arch, host_arch());
                assert!(elf.complete);
                if elf.linkage != Linkage::Static {
                    assert!(
                        elf.needed
                            .iter()
                            .any(|n| n == "libc.so.6" || n.starts_with("libc.musl")),
                        "{:?}",
                        elf.needed
                    );
                }
                // Built against this machine's glibc, it needs no newer
                // one, whatever versions its own tests name in its data.
                if elf.linkage == Linkage::Glibc {
                    let needs = elf.glibc.expect("a glibc binary names glibc versions");
                    // SAFETY: returns a static NUL-terminated string.
                    let here = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
                    let here = here.to_string_lossy();
                    let (major, minor) = here.split_once('.').expect("a glibc version");
                    let here = (major.parse().unwrap(), minor.parse().unwrap());
                    assert!(needs >= (2, 2) && needs <= here, "{needs:?} {here:?}");
                }
            }
            other => panic!("{other:?}"),
        }
        // The same binary cut short, as while a linker writes it.
        match inspect(&me[..me.len() / 2]) {
            FileKind::Elf(elf) => assert!(!elf.complete, "a half-written binary"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_kinds() {
        assert_eq!(inspect(b"MZ\x90\0"), FileKind::Windows);
        assert_eq!(inspect(&0xcffaedfe_u32.to_be_bytes()), FileKind::MachO);
        assert_eq!(
            inspect(b"#!/usr/bin/env python3\nprint(1)"),
            FileKind::Shebang("python3".into())
        );
        assert_eq!(
            inspect(b"#!/usr/bin/env -S node --x\n"),
            FileKind::Shebang("node".into())
        );
        assert_eq!(inspect(b"#!/bin/sh\n"), FileKind::Shebang("sh".into()));
        assert_eq!(inspect(b"hello"), FileKind::Other);
        assert_eq!(inspect(b"\x7fELF\x09"), FileKind::Other);
        assert_eq!(inspect(b""), FileKind::Other);
    }

    #[test]
    fn truncated_or_hostile_headers_do_not_panic() {
        let mut bytes = elf64(62, Some("/lib/ld-linux-x86-64.so.2"));
        for cut in 0..bytes.len() {
            let _ = inspect(&bytes[..cut]);
        }
        bytes[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        let _ = inspect(&bytes);
    }
}
