//! # ami-learn: models that learn
//!
//! The home of learning in ami (paper §3.3, §4): trainers that fit world
//! models, critics and policies from short-term memory, and the JEPA path.
//! Today it holds [`DfdxMlp`], the residual MLP of `ami-planners` as a dfdx
//! network (CPU autodiff): the reference the fused kernels' gradients are
//! tested against and the shape trainable world models take.
//!
//! ## Why a crate of its own
//!
//! dfdx is the heaviest dependency of the workspace. Keeping it here means a
//! user who plans with hand-written or loaded models never compiles it, and
//! the planners stay independent of how a model was trained: a trainer
//! exports its weights into the kernels' layout and publishes them through
//! a model handle, and the planners see an ordinary `WorldModel`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dfdx;

pub use crate::dfdx::DfdxMlp;
