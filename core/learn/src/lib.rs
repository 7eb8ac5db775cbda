//! # ami-learn: models that learn
//!
//! The home of learning in ami (paper §3.3, §4): trainers that fit world
//! models from short-term memory.
//!
//! * [`EnsembleSpec`] / [`Ensemble`]: residual MLP ensembles (deterministic
//!   or probabilistic, ReLU or SiLU), PETS' world model.
//! * [`Trainer`]: forward, backward and Adam, multi-threaded and
//!   deterministic (the same weights with any thread count).
//! * [`MlpCritic`] / [`fit_critic`]: a learned critic (the planners'
//!   terminal cost), fitted by value iteration on TD(lambda) targets.
//! * [`MlpPolicy`] / [`fit_policy`]: a Mode-1 policy distilled from the
//!   planner's decisions (behaviour cloning, DAgger relabelling).
//! * [`vicreg`] / [`sigreg`] / [`EmbeddingStats`]: anti-collapse
//!   regularisers for JEPA training, with gradients, and the collapse
//!   diagnostics (per-dimension spread, effective rank, `linear_probe`).
//! * [`ConvEncoder`]: a small convolutional image encoder (3x3, stride 2,
//!   ReLU, then linear) with its backward pass, a JEPA's encoder.
//! * [`Jepa`] / [`JepaTrainer`]: a JEPA world model from pixels (the
//!   encoder and an action-conditioned predictor trained in representation
//!   space against collapse), its encoder as [`JepaPerception`] and its
//!   predictor as a [`LearnedModel`].
//! * [`TrajectoryWriter`] / [`read_trajectories`]: trajectory datasets
//!   (observations such as images, actions, diagnostics) streamed to disk,
//!   resumable, every record checksummed.
//! * [`Support`] / [`SupportCost`]: the cells of a state space the
//!   experience visited, and the cost of planned steps that leave them
//!   (pessimism where a learned model has no data).
//! * [`targets`]: a critic's regression targets (n-step and TD(lambda)
//!   returns of intrinsic cost; terminated and truncated episodes differ).
//! * `DfdxMlp` (feature `dfdx`): the residual MLP as a dfdx network (CPU
//!   autodiff), the reference the kernels' gradients are tested against.
//!
//! ## Why a crate of its own
//!
//! The planners stay independent of how a model was trained: a trainer
//! exports its weights into the kernels' layout and publishes them through
//! a model handle, and the planners see an ordinary `WorldModel`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anticollapse;
pub mod conv;
pub mod critic;
#[cfg(feature = "dfdx")]
pub mod dfdx;
pub mod ensemble;
pub mod fit;
pub mod io;
pub mod jepa;
pub mod model;
pub mod norm;
pub mod policy;
pub mod spec;
pub mod support;
pub mod targets;
pub mod train;
pub mod trajectories;

#[cfg(feature = "dfdx")]
pub use crate::dfdx::DfdxMlp;
pub use anticollapse::{linear_probe, sigreg, vicreg, EmbeddingStats, LinearProbe, Regularised, SigRegConfig, VicRegConfig};
pub use conv::{ConvCache, ConvEncoder, ConvSpec};
pub use critic::{fit_critic, CriticData, CriticFitConfig, MlpCritic};
pub use ensemble::Ensemble;
pub use fit::{fit, Chunking, Dataset, FitConfig, FitReport};
pub use jepa::{Jepa, JepaConfig, JepaData, JepaEpoch, JepaPerception, JepaTrainer, Predictor, Regulariser, Target};
pub use model::{LearnedModel, Propagation};
pub use norm::Normalizer;
pub use policy::{fit_policy, MlpPolicy, PolicyData};
pub use spec::{Activation, EnsembleSpec};
pub use support::{Support, SupportCost};
pub use train::{AdamConfig, Trainer};
pub use trajectories::{read_trajectories, ObsEncoding, Trajectory, TrajectoryHeader, TrajectoryWriter};
