//! # ami-kernels
//!
//! The numeric hot loops of planning behind one API: fused residual-MLP
//! rollouts (energies of many action sequences), their gradients w.r.t. the
//! actions, CEM/MPPI sampling fused with the rollout, and Adam on action
//! sequences; optionally an MLP value of the final state (a learned critic)
//! added to each rollout's energy. The CPU backend ([`Cpu`]) picks AVX-512, AVX2+FMA or NEON at
//! run time ([`Isa`]), with a plain-Rust scalar reference every SIMD path is
//! tested against, and spreads blocks of samples over a persistent thread
//! pool ([`pool::Pool`]).
//!
//! ```
//! use ami_kernels::{Cpu, Isa, Layer, QuadEnergy, ResidualMlp, SeqBatch};
//! // s' = s + W2 relu(W1 [s, a] + b1) + b2 with S = 1, A = 1, H = 2.
//! let l1 = Layer::new(2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0]).unwrap();
//! let l2 = Layer::new(1, 2, vec![0.0, 1.0], vec![0.0]).unwrap();
//! let m = ResidualMlp::new(1, 1, vec![l1, l2]).unwrap();
//! let c = QuadEnergy::new(vec![1.0], vec![0.0], vec![0.0]);
//! let mut acts = SeqBatch::new(1, 1, 1);
//! acts.set(0, 0, 0, 0.5);
//! let cpu = Cpu::new(Isa::Scalar, 1).unwrap();
//! let mut e = [0.0];
//! cpu.energies(&m, &c, &[1.0], &acts, &mut e).unwrap();
//! assert_eq!(e[0], 1.5 * 1.5); // s' = 1 + relu(0.5)
//! ```

pub mod cpu;
mod fused;
pub mod isa;
pub mod mlp;
pub mod pool;
pub mod rng;
mod scalar;
mod scratch;
mod simd;
mod small_gemm;
pub mod train;
mod value;

pub use cpu::{AdamSpec, Cpu, Sampling, SeqBatch};
pub use isa::Isa;
pub use mlp::{Layer, PackedDense, QuadEnergy, ResidualMlp, Terminal, ValueMlp};

/// Errors of the kernels: bad shapes and unavailable instruction sets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// Buffers or layers whose shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An instruction set this CPU cannot run.
    #[error("instruction set: {0}")]
    Isa(String),
}
