//! The exported declaration: [`PluginDecl`], the constants of its header and
//! the fixed-string helpers it is built with. `PluginDecl::new` is in
//! declare.rs, next to the macro, because it needs the layout hash, and the
//! layout hash (layout.rs) covers `PluginDecl`.

use std::mem::offset_of;

use crate::host::RegisterFn;

/// The first eight bytes of every declaration.
pub const MAGIC: [u8; 8] = *b"AMIPLUG\0";
/// ABI major version: a plugin whose major differs from the host's is refused.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: minors only append fields and functions at the end of
/// vtables. A host accepts plugins of its own minor or older.
pub const ABI_MINOR: u16 = 0;
/// The prefix of the exported symbol holding the [`PluginDecl`]; the plugin
/// name follows (`AMI_PLUGIN_DECL_acrobot`). A library exports exactly one.
pub const DECL_SYMBOL: &str = "AMI_PLUGIN_DECL_";
/// Bytes of the declaration the host reads from the file before loading:
/// everything up to (not including) the `register` pointer.
pub const DECL_HEADER_SIZE: usize = offset_of!(PluginDecl, register);
/// Flag: the plugin was built with `panic = "unwind"` (panics can be caught).
pub const FLAG_PANIC_UNWIND: u64 = 1;
/// Flag: the plugin was built with debug assertions.
pub const FLAG_DEBUG_ASSERTIONS: u64 = 2;

/// The exported declaration. Everything before `register` is plain bytes
/// (no pointers), so the host can read it straight from the file.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDecl {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_MAJOR`] of the abi crate the plugin was built with.
    pub abi_major: u16,
    /// [`ABI_MINOR`] of the abi crate the plugin was built with.
    pub abi_minor: u16,
    /// `size_of::<PluginDecl>()` as the plugin compiled it.
    pub decl_size: u32,
    /// [`LAYOUT_HASH`](crate::LAYOUT_HASH) as the plugin compiled it.
    pub layout_hash: u64,
    /// [`FLAG_PANIC_UNWIND`] | [`FLAG_DEBUG_ASSERTIONS`].
    pub flags: u64,
    /// Plugin name, NUL-padded UTF-8.
    pub name: [u8; 64],
    /// Plugin version, NUL-padded UTF-8.
    pub version: [u8; 32],
    /// [`target()`] of the plugin build, NUL-padded.
    pub target: [u8; 64],
    /// Version of the ami-plugin-abi crate, NUL-padded.
    pub abi_crate_version: [u8; 32],
    /// The register function.
    pub register: RegisterFn,
}

impl PluginDecl {
    /// The plugin name.
    pub fn name(&self) -> &str {
        fixed_str(&self.name)
    }
    /// The plugin version.
    pub fn version(&self) -> &str {
        fixed_str(&self.version)
    }
}

/// Reads a NUL-padded fixed string (up to the first NUL; invalid UTF-8 is cut
/// at the first bad byte).
pub fn fixed_str(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    match std::str::from_utf8(&bytes[..end]) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

pub(crate) const fn fixed<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    assert!(b.len() < N, "string too long for a fixed declaration field");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

const fn push(out: &mut [u8; 64], mut at: usize, s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && at < 63 {
        out[at] = b[i];
        at += 1;
        i += 1;
    }
    at
}

/// The target a library was built for, as NUL-padded text
/// `arch-os-env-pointerbits-endian` (e.g. `x86_64-linux-gnu-64-little`).
/// The host requires the plugin's to equal its own.
pub const fn target() -> [u8; 64] {
    let mut out = [0u8; 64];
    let mut at = push(&mut out, 0, std::env::consts::ARCH);
    at = push(&mut out, at, "-");
    at = push(&mut out, at, std::env::consts::OS);
    at = push(&mut out, at, "-");
    let env = if cfg!(target_env = "gnu") {
        "gnu"
    } else if cfg!(target_env = "musl") {
        "musl"
    } else if cfg!(target_env = "msvc") {
        "msvc"
    } else {
        "none"
    };
    at = push(&mut out, at, env);
    at = push(&mut out, at, if usize::BITS == 64 { "-64" } else { "-32" });
    push(&mut out, at, if cfg!(target_endian = "little") { "-little" } else { "-big" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_pointer_free_and_stable() {
        assert_eq!(offset_of!(PluginDecl, magic), 0);
        assert_eq!(offset_of!(PluginDecl, abi_major), 8);
        assert_eq!(offset_of!(PluginDecl, abi_minor), 10);
        assert_eq!(offset_of!(PluginDecl, decl_size), 12);
        assert_eq!(offset_of!(PluginDecl, layout_hash), 16);
        assert_eq!(DECL_HEADER_SIZE, 224);
        assert_eq!(fixed_str(&target()), format!("{}-{}-gnu-64-little", std::env::consts::ARCH, std::env::consts::OS));
    }
}
