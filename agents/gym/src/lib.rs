//! ami's Gymnasium bridge: any Python Gymnasium environment behind ami's
//! [`Environment`](ami_core::Environment) contract.
//!
//! [`GymEnv::make`] starts a Python child with a small server (embedded in
//! this crate, so the `ami` binary needs no files beside itself) that runs
//! `gymnasium.make(id, **kwargs)` and answers `reset` and `step` over the
//! child's stdin and stdout in binary frames (a byte, a length, the
//! payload: f64 actions and observations, no text on the hot path). The
//! server moves fd 1 to stderr before importing gymnasium, so an
//! environment's own prints cannot corrupt a reply; its stderr is kept (the
//! last 8 KB) for error messages. No libpython is linked into ami.
//!
//! Failures are errors, never hangs: every call has a timeout after which
//! the child is killed ([`GymError::Timeout`]); a child that exits is
//! reported with its status and stderr ([`GymError::Exited`]); a missing
//! interpreter or gymnasium names the interpreter and the pip command.
//! Dropping a [`GymEnv`] ends the child, which also exits when its stdin
//! closes or ami is gone (a watchdog thread in the server).
//!
//! The interpreter is [`python`]: an explicit path, else `$AMI_PYTHON`,
//! else `python3`. `scripts/gym-venv.sh` makes `.venv-gym` with the
//! pinned gymnasium ([`GYMNASIUM_VERSION`]) the tests use.

#![forbid(unsafe_code)]

mod env;
mod error;
mod process;

pub use env::{checkout_python, list, python, space_words, EnvInfo, GymConfig, GymEnv, GymVecEnv, SpaceInfo};
pub use error::GymError;
pub use process::SERVER;

/// The gymnasium release ami is tested against.
pub const GYMNASIUM_VERSION: &str = "1.4.0";
