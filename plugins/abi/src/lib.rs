//! # ami-plugin-abi
//!
//! The contract between the ami host and plugin libraries: a versioned C ABI
//! made only of `#[repr(C)]` types, plus [`declare_plugin!`], which turns
//! ordinary Rust types implementing the module traits of [`kinds`] into an
//! exported declaration and `catch_unwind` shims. This crate has no
//! dependencies and never will.
//!
//! A plugin is a `cdylib` exporting one static, [`PluginDecl`], under the
//! symbol [`DECL_SYMBOL`]`NAME` (`AMI_PLUGIN_DECL_acrobot` for the plugin
//! `acrobot`: one name per plugin, so several plugin crates can be linked
//! statically into one binary). The host reads that static
//! **from the file** (without running plugin code) and refuses the library
//! unless the magic, ABI major/minor, declaration size, layout hash, target
//! and panic strategy are compatible. Only then is the library opened and
//! its `register` function called; through the [`Registrar`] it adds any
//! number of modules of any kind, each with a kind-specific vtable that
//! starts with a [`VTableHeader`] and only ever grows at the end.
//!
//! Rules of the boundary:
//! * data crosses as [`TensorView`]s borrowing **host-owned** buffers; a
//!   plugin writes its outputs into views the host allocated and never
//!   hands back memory it owns;
//! * configuration crosses as JSON text ([`Str`]), parsed by [`Config`];
//! * errors are written into a host-owned [`ErrBuf`];
//! * every call into plugin code is wrapped in `catch_unwind`
//!   ([`guard`]): a panic becomes [`Status::PANICKED`] and the host poisons
//!   the module instance.
//!
//! ```
//! use ami_plugin_abi::prelude::*;
//!
//! /// `s' = s + dt * a` on a 1-D state.
//! pub struct Integrator { dt: f32 }
//!
//! impl Module for Integrator {
//!     const NAME: &'static str = "integrator";
//!     const PARAMS: &'static [Param] = &[Param::new("dt", "number", "0.1", "time step")];
//!     fn create(config: &Config) -> Result<Self, Error> {
//!         Ok(Self { dt: config.f32_or("dt", 0.1)? })
//!     }
//! }
//!
//! impl WorldModel for Integrator {
//!     fn state_dim(&self) -> usize { 1 }
//!     fn action_dim(&self) -> usize { 1 }
//!     fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, _latents: Option<Tensor<'_>>, mut next: TensorMut<'_>) -> Result<(), Error> {
//!         for i in 0..states.rows() {
//!             next.row_mut(i)[0] = states.row(i)[0] + self.dt * actions.row(i)[0];
//!         }
//!         Ok(())
//!     }
//! }
//!
//! ami_plugin_abi::declare_plugin! {
//!     name: "integrator",
//!     version: "0.1.0",
//!     modules: [world_model: Integrator],
//! }
//!
//! let decl = ami_plugin_decl();
//! assert_eq!(decl.name(), "integrator");
//! assert_eq!(decl.abi_major, ami_plugin_abi::ABI_MAJOR);
//! ```

// The crate's files, from the leaves up: `types` (the basic `#[repr(C)]`
// types), `guard` (the panic guard), `tensor` and `json`, `host` (what
// `register` exchanges with the host), `logging`, `decl` (the declaration
// struct and its constants), `kinds`, `layout` (the layout hash over all of
// the above) and `declare` (`declare_plugin!` and `PluginDecl::new`). This
// file only declares them and re-exports their public items.

mod decl;
mod declare;
mod guard;
mod host;
mod json;
pub mod kinds;
mod layout;
mod logging;
mod tensor;
mod types;

#[doc(hidden)]
pub use declare::__private;

pub use decl::{fixed_str, target, PluginDecl, ABI_MAJOR, ABI_MINOR, DECL_HEADER_SIZE, DECL_SYMBOL, FLAG_DEBUG_ASSERTIONS, FLAG_PANIC_UNWIND, MAGIC};
pub use guard::guard;
pub use host::{HostApi, ModuleDesc, RegisterFn, Registrar};
pub use json::{Config, Json};
pub use kinds::{
    Actor, Batch, Configurator, CostContext, Critic, Environment, HostCostRef, IntrinsicCost, Memory, Modulation, Module, Perception, PlanInfo, Planner,
    Problem, StepResult, TransitionIn, TransitionOut, WorldModel,
};
pub use layout::{KNOWN_LAYOUT_HASHES, LAYOUT_HASH};
pub use logging::{log, Level};
pub use tensor::{Tensor, TensorMut, TensorView, DEVICE_CPU, DTYPE_F32, MAX_DIMS};
pub use types::{Dims, ErrBuf, Error, ModuleKind, Param, Status, Str, VTableHeader};

/// Everything a plugin author needs, in one `use`.
pub mod prelude {
    pub use crate::kinds::{
        Actor, Batch, Configurator, CostContext, Critic, Environment, HostCostRef, IntrinsicCost, Memory, Modulation, Module, Perception, PlanInfo, Planner,
        Problem, StepResult, TransitionIn, TransitionOut, WorldModel,
    };
    pub use crate::{Config, Error, Json, Param, Tensor, TensorMut};
}
