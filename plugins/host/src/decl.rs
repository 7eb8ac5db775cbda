//! Reading a plugin's declaration from the library file, without running
//! any of its code, and deciding whether this host can load it.

use std::path::{Path, PathBuf};

use ami_plugin_abi::{
    fixed_str, PluginDecl, ABI_MAJOR, ABI_MINOR, DECL_HEADER_SIZE, DECL_SYMBOL, FLAG_DEBUG_ASSERTIONS, FLAG_PANIC_UNWIND, KNOWN_LAYOUT_HASHES, MAGIC,
};
use object::{Object, ObjectSegment, ObjectSymbol};

use crate::error::PluginError;

/// The fixed, pointer-free part of a [`PluginDecl`], as read from a file or
/// from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclInfo {
    /// The magic bytes.
    pub magic: [u8; 8],
    /// ABI major version.
    pub abi_major: u16,
    /// ABI minor version.
    pub abi_minor: u16,
    /// Declared size of the whole declaration.
    pub decl_size: u32,
    /// Layout hash.
    pub layout_hash: u64,
    /// Flags ([`FLAG_PANIC_UNWIND`], [`FLAG_DEBUG_ASSERTIONS`]).
    pub flags: u64,
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Target the plugin was built for.
    pub target: String,
    /// Version of the ami-plugin-abi crate it was built with.
    pub abi_crate_version: String,
    /// Offset of the declaration in the file (when read from a file).
    pub file_offset: Option<u64>,
    /// Size of the exported symbol (when read from a file).
    pub symbol_size: Option<u64>,
    /// Name of the exported symbol (when read from a file).
    pub symbol: Option<String>,
}

impl DeclInfo {
    /// Parses the first [`DECL_HEADER_SIZE`] bytes of a declaration.
    pub fn from_header_bytes(b: &[u8]) -> Option<DeclInfo> {
        if b.len() < DECL_HEADER_SIZE {
            return None;
        }
        let u16_at = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[0..8]);
        Some(DeclInfo {
            magic,
            abi_major: u16_at(8),
            abi_minor: u16_at(10),
            decl_size: u32_at(12),
            layout_hash: u64_at(16),
            flags: u64_at(24),
            name: fixed_str(&b[32..96]).to_string(),
            version: fixed_str(&b[96..128]).to_string(),
            target: fixed_str(&b[128..192]).to_string(),
            abi_crate_version: fixed_str(&b[192..224]).to_string(),
            file_offset: None,
            symbol_size: None,
            symbol: None,
        })
    }

    /// Reads the header of a declaration in memory (a statically linked plugin).
    pub fn from_static(decl: &'static PluginDecl) -> DeclInfo {
        // SAFETY: `PluginDecl` is `#[repr(C)]` and its first `DECL_HEADER_SIZE`
        // bytes are integers and byte arrays with no padding (checked by the
        // abi crate's tests), so they are initialised and readable as bytes.
        let bytes = unsafe { std::slice::from_raw_parts((decl as *const PluginDecl).cast::<u8>(), DECL_HEADER_SIZE) };
        DeclInfo::from_header_bytes(bytes).unwrap_or_else(|| unreachable!("DECL_HEADER_SIZE bytes were given"))
    }

    /// Whether panics can be caught (built with `panic = "unwind"`).
    pub fn panic_unwind(&self) -> bool {
        self.flags & FLAG_PANIC_UNWIND != 0
    }

    /// Whether built with debug assertions.
    pub fn debug_assertions(&self) -> bool {
        self.flags & FLAG_DEBUG_ASSERTIONS != 0
    }
}

/// Where the declaration of a library file lies and what it says.
pub fn read_declaration(path: &Path, bytes: &[u8]) -> Result<DeclInfo, PluginError> {
    let p = || path.to_path_buf();
    let file = object::File::parse(bytes)
        .map_err(|e| PluginError::NotALibrary { path: p(), reason: format!("cannot parse it as an object file: {e} (truncated or not a library?)") })?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(PluginError::NotALibrary { path: p(), reason: format!("a {:?} file; this host loads ELF shared libraries", file.format()) });
    }
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(PluginError::NotALibrary { path: p(), reason: format!("an ELF {:?} file, not a shared library", file.kind()) });
    }
    let host_arch = host_architecture();
    if file.architecture() != host_arch {
        return Err(PluginError::Incompatible {
            path: p(),
            what: "architecture".into(),
            expected: format!("{host_arch:?}"),
            found: format!("{:?}", file.architecture()),
        });
    }
    if file.is_little_endian() != cfg!(target_endian = "little") {
        return Err(PluginError::Incompatible {
            path: p(),
            what: "byte order".into(),
            expected: endian(cfg!(target_endian = "little")),
            found: endian(file.is_little_endian()),
        });
    }
    let mut count = 0usize;
    let mut found = Vec::new();
    for sym in file.dynamic_symbols() {
        count += 1;
        if sym.name().is_ok_and(|n| n.starts_with(DECL_SYMBOL)) && sym.is_definition() {
            found.push(sym);
        }
    }
    if found.len() > 1 {
        let names: Vec<&str> = found.iter().filter_map(|s| s.name().ok()).collect();
        return Err(PluginError::NotAPlugin {
            path: p(),
            reason: format!("it exports several declarations ({}); a library holds one plugin", names.join(", ")),
        });
    }
    let sym = found.pop().ok_or_else(|| PluginError::NotAPlugin {
        path: p(),
        reason: format!("it exports no symbol `{DECL_SYMBOL}<name>` ({count} dynamic symbols); a plugin must use ami_plugin_abi::declare_plugin!"),
    })?;
    let symbol = sym.name().unwrap_or_default().to_string();
    if sym.size() != 0 && sym.size() < DECL_HEADER_SIZE as u64 {
        return Err(PluginError::Incompatible {
            path: p(),
            what: "declaration size".into(),
            expected: format!("at least {DECL_HEADER_SIZE} bytes"),
            found: format!("a {}-byte `{symbol}`", sym.size()),
        });
    }
    let addr = sym.address();
    for seg in file.segments() {
        let (seg_off, seg_size) = seg.file_range();
        if addr < seg.address() || addr >= seg.address() + seg_size {
            continue;
        }
        let data = seg.data_range(addr, DECL_HEADER_SIZE as u64).ok().flatten();
        let Some(data) = data else {
            return Err(PluginError::NotALibrary { path: p(), reason: format!("`{symbol}` lies beyond the end of the file (truncated?)") });
        };
        let mut info = DeclInfo::from_header_bytes(data).ok_or_else(|| PluginError::NotALibrary { path: p(), reason: "short declaration".into() })?;
        info.file_offset = Some(seg_off + (addr - seg.address()));
        info.symbol_size = Some(sym.size());
        info.symbol = Some(symbol);
        return Ok(info);
    }
    Err(PluginError::NotALibrary { path: p(), reason: format!("`{symbol}` at address {addr:#x} is in no loadable segment stored in the file (truncated?)") })
}

fn endian(little: bool) -> String {
    if little { "little-endian" } else { "big-endian" }.to_string()
}

fn host_architecture() -> object::Architecture {
    use object::Architecture as A;
    match std::env::consts::ARCH {
        "x86_64" => A::X86_64,
        "aarch64" => A::Aarch64,
        "x86" => A::I386,
        "arm" => A::Arm,
        "riscv64" => A::Riscv64,
        "powerpc64" => A::PowerPc64,
        "s390x" => A::S390x,
        "loongarch64" => A::LoongArch64,
        _ => A::Unknown,
    }
}

/// The host's own target string (what a plugin's must equal).
pub fn host_target() -> String {
    fixed_str(&ami_plugin_abi::target()).to_string()
}

fn show_bytes(b: &[u8]) -> String {
    b.iter().map(|&c| std::ascii::escape_default(c).to_string()).collect::<String>()
}

/// Checks a declaration against this host, in order: magic, ABI major, ABI
/// minor, declaration size, layout hash, target, panic strategy. Returns
/// warnings for accepted oddities.
pub fn check_declaration(path: &Path, d: &DeclInfo, allow_panic_abort: bool) -> Result<Vec<String>, PluginError> {
    let inc = |what: &str, expected: String, found: String| PluginError::Incompatible { path: PathBuf::from(path), what: what.into(), expected, found };
    if d.magic != MAGIC {
        return Err(inc("magic", format!("\"{}\"", show_bytes(&MAGIC)), format!("\"{}\"", show_bytes(&d.magic))));
    }
    if d.abi_major != ABI_MAJOR {
        return Err(inc(
            "ABI major version",
            format!("{ABI_MAJOR} (this ami speaks plugin ABI {ABI_MAJOR}.{ABI_MINOR})"),
            format!("{} (built with ami-plugin-abi {}); rebuild the plugin against ABI {ABI_MAJOR}.x", d.abi_major, d.abi_crate_version),
        ));
    }
    if d.abi_minor > ABI_MINOR {
        return Err(inc(
            "ABI minor version",
            format!("at most {ABI_MINOR} (this ami speaks plugin ABI {ABI_MAJOR}.{ABI_MINOR})"),
            format!("{} (built with ami-plugin-abi {}); the plugin needs a newer ami", d.abi_minor, d.abi_crate_version),
        ));
    }
    let min = std::mem::size_of::<PluginDecl>() as u32;
    if d.decl_size < min {
        return Err(inc("declaration size", format!("at least {min} bytes"), format!("{} bytes", d.decl_size)));
    }
    let known = KNOWN_LAYOUT_HASHES.iter().find(|(m, _)| *m == d.abi_minor).map(|(_, h)| *h);
    if known != Some(d.layout_hash) {
        return Err(inc(
            "layout hash",
            known.map_or_else(|| format!("none known for ABI {}.{}", d.abi_major, d.abi_minor), |h| format!("{h:#018x} (ABI {}.{})", d.abi_major, d.abi_minor)),
            format!("{:#018x}; the plugin was built against a modified ABI crate", d.layout_hash),
        ));
    }
    if let Some(sym) = &d.symbol {
        let want = format!("{}{}", ami_plugin_abi::DECL_SYMBOL, d.name);
        if *sym != want {
            return Err(inc("declaration symbol", want, sym.clone()));
        }
    }
    let host = host_target();
    if d.target != host {
        return Err(inc("target", host, d.target.clone()));
    }
    let mut warnings = Vec::new();
    if !d.panic_unwind() {
        if allow_panic_abort {
            warnings.push(format!(
                "plugin {}: built with panic = \"abort\": a panic in it will abort the whole process instead of poisoning the module",
                path.display()
            ));
        } else {
            return Err(inc(
                "panic strategy",
                "unwind (so a panicking module can be contained)".into(),
                "abort; rebuild with panic = \"unwind\" or allow it with allow_panic_abort".into(),
            ));
        }
    }
    Ok(warnings)
}
