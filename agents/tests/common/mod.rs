//! Helpers shared by the tests that run `ami` with plugin libraries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Runs the `ami` binary under test.
pub fn ami(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ami")).args(args).output().expect("run ami")
}

/// The directory of the plugin libraries shipped with ami (acrobot,
/// sampling, testkit), built once per test binary.
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "-p", "ami-plugin-acrobot", "-p", "ami-plugin-sampling", "-p", "ami-plugin-testkit"])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo build for the plugins");
        assert!(st.success(), "building the plugins failed");
        target.join("debug")
    })
}

/// The library file of plugin `name`.
pub fn plugin_lib(name: &str) -> PathBuf {
    plugin_dir().join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
}

/// xorshift64*: a tiny seeded generator, so the cases are reproducible.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// How a process ended, for messages: `exit N` or `signal N`.
pub fn ended(out: &Output) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (out.status.code(), out.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "?".into(),
    }
}
