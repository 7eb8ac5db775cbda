//! Layout hash: FNV-1a over the size, alignment and field offsets of every
//! #[repr(C)] type of the ABI. Changing any of them changes the hash, so a
//! plugin built against a different layout is refused even if someone forgot
//! to bump the version.
//!
//! This module names every FFI type of the crate and nothing in the crate
//! depends on it except `PluginDecl::new` (declare.rs) and the re-exports.

use std::mem::{offset_of, size_of};

use crate::decl::{PluginDecl, ABI_MAJOR};
use crate::host::{HostApi, ModuleDesc, Registrar};
use crate::kinds::{
    ActorVTable, BatchFfi, ConfiguratorVTable, CostCtxFfi, CriticVTable, EnvironmentVTable, HostCost, HostModel, IntrinsicCostVTable, MemoryVTable,
    PerceptionVTable, PlanInfoFfi, PlanProblemFfi, PlannerVTable, StepOut, StrSink, TransitionFfi, WorldModelVTable,
};
use crate::tensor::TensorView;
use crate::types::{Dims, ErrBuf, Param, Str, VTableHeader};

const fn fnv(mut h: u64, v: u64) -> u64 {
    let mut i = 0;
    while i < 8 {
        h ^= (v >> (i * 8)) & 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! layout {
    ($h:ident, $t:ty; $($f:ident),* $(,)?) => {{
        $h = fnv($h, size_of::<$t>() as u64);
        $h = fnv($h, std::mem::align_of::<$t>() as u64);
        $( $h = fnv($h, offset_of!($t, $f) as u64); )*
    }};
}

const fn layout_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    h = fnv(h, ABI_MAJOR as u64);
    layout!(h, Str; ptr, len);
    layout!(h, ErrBuf; ptr, cap, len);
    layout!(h, Param; name, ty, default, doc);
    layout!(h, Dims; obs_dim, state_dim, action_dim, latent_dim, horizon, capacity, max_steps, reserved);
    layout!(h, VTableHeader; size, kind, create, destroy, reset, dims);
    layout!(h, ModuleDesc; size, kind, name, description, params, n_params, vtable);
    layout!(h, HostApi; size, abi_major, abi_minor, log);
    layout!(h, Registrar; ctx, add_module);
    layout!(h, PluginDecl; magic, abi_major, abi_minor, decl_size, layout_hash, flags, name, version, target, abi_crate_version, register);
    layout!(h, TensorView; data, dtype, device, ndim, flags, reserved, shape, strides);
    layout!(h, CostCtxFfi; goal, step);
    layout!(h, StepOut; reward, terminated, truncated, reserved);
    layout!(h, PlanInfoFfi; energy, iterations, evaluated);
    layout!(h, HostModel; ctx, state_dim, action_dim, predict);
    layout!(h, HostCost; ctx, has_terminal, step_energy, terminal_energy);
    layout!(h, PlanProblemFfi; state, low, high, model, cost);
    layout!(h, BatchFfi; states, actions, costs, next_states);
    layout!(h, TransitionFfi; t, state, action, cost, next_state, imagined);
    layout!(h, StrSink; ctx, write);
    layout!(h, PerceptionVTable; header, encode);
    layout!(h, WorldModelVTable; header, predict, vjp);
    layout!(h, IntrinsicCostVTable; header, add_cost);
    layout!(h, CriticVTable; header, add_value, train);
    layout!(h, ActorVTable; header, act, modulate);
    layout!(h, PlannerVTable; header, plan, set_horizon, set_budget);
    layout!(h, MemoryVTable; header, len, push, get, by_time, save, clear);
    layout!(h, ConfiguratorVTable; header, configure);
    layout!(h, EnvironmentVTable; header, bounds, reset_episode, step);
    h
}

/// The layout hash of this ABI version (see the source for what it covers).
pub const LAYOUT_HASH: u64 = layout_hash();

/// The layout hashes a host of this version accepts, by ABI minor.
pub const KNOWN_LAYOUT_HASHES: &[(u16, u64)] = &[(0, LAYOUT_HASH)];
