//! Instruction sets the CPU backend can use, detected at run time.

use std::fmt;
use std::str::FromStr;

/// An instruction set of the CPU backend. [`Isa::Scalar`] is the plain-Rust
/// reference every SIMD path is tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Plain Rust, one sample at a time: the reference.
    Scalar,
    /// x86-64 AVX2 + FMA (8 lanes).
    Avx2,
    /// x86-64 AVX-512F (16 lanes).
    Avx512,
    /// AArch64 NEON (4 lanes).
    Neon,
}

impl Isa {
    /// Whether this CPU can run `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every instruction set this CPU can run, best first (the scalar
    /// reference last).
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Scalar].into_iter().filter(|i| i.is_available()).collect()
    }

    /// The best instruction set of this CPU. `AMI_ISA` (`scalar`, `avx2`,
    /// `avx512`, `neon`) overrides it when that set is available.
    pub fn detect() -> Isa {
        if let Ok(v) = std::env::var("AMI_ISA") {
            if let Ok(isa) = v.parse::<Isa>() {
                if isa.is_available() {
                    return isa;
                }
            }
        }
        Isa::available()[0]
    }

    /// The name (`scalar`, `avx2`, `avx512`, `neon`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "scalar" => Ok(Isa::Scalar),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx-512" => Ok(Isa::Avx512),
            "neon" => Ok(Isa::Neon),
            other => Err(format!("unknown instruction set `{other}` (expected scalar, avx2, avx512 or neon)")),
        }
    }
}
