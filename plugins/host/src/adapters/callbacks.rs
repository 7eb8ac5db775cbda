//! Host callbacks handed to plugins: the world model a planner rolls out
//! ([`host_predict`]) and the cost it evaluates ([`host_cost`]), with host
//! panics contained ([`host_guard`]).

use std::ffi::c_void;

use ami_core::modules::WorldModel;
use ami_core::Cost;
use ami_plugin_abi::kinds::HostCost;
use ami_plugin_abi::{ErrBuf, Status, TensorView};

use super::tensor::{plugin_matrix, plugin_matrix_mut, plugin_vector_mut};

/// Runs a host callback for a plugin, containing panics.
fn host_guard(err: *mut ErrBuf, f: impl FnOnce() -> std::result::Result<(), String>) -> Status {
    let (st, msg) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => return Status::OK,
        Ok(Err(m)) => (Status::ERROR, m),
        Err(_) => (Status::ERROR, "the host panicked in a callback".to_string()),
    };
    // SAFETY: the plugin passes its error buffer (or null).
    unsafe { ErrBuf::write(err, &msg) };
    st
}

/// [`ami_plugin_abi::kinds::HostModel::predict`]: the host's world model.
pub(super) unsafe extern "C" fn host_predict(
    ctx: *const c_void,
    states: *const TensorView,
    actions: *const TensorView,
    next: *const TensorView,
    err: *mut ErrBuf,
) -> Status {
    host_guard(err, || {
        // SAFETY: `ctx` is the `&dyn WorldModel` the adapter put in `HostModel`, alive across `plan`.
        let model = unsafe { *ctx.cast::<&dyn WorldModel>() };
        // SAFETY: the plugin's views are valid for the call.
        let (s, a, n) = unsafe { (plugin_matrix(states, "states")?, plugin_matrix(actions, "actions")?, plugin_matrix_mut(next, "next")?) };
        model.predict(s, a, n).map_err(|e| e.to_string())
    })
}

/// [`HostCost::step_energy`]: the host cost's per-step energies.
unsafe extern "C" fn host_step_energy(
    ctx: *const c_void,
    step: u64,
    states: *const TensorView,
    actions: *const TensorView,
    next: *const TensorView,
    out: *const TensorView,
    err: *mut ErrBuf,
) -> Status {
    host_guard(err, || {
        // SAFETY: `ctx` is the `&Cost` the adapter put in `HostCost`, alive across the call into the plugin.
        let cost = unsafe { &*ctx.cast::<Cost>() };
        // SAFETY: the plugin's views are valid for the call.
        let (s, a, n, o) = unsafe {
            (plugin_matrix(states, "states")?, plugin_matrix(actions, "actions")?, plugin_matrix(next, "next_states")?, plugin_vector_mut(out, "out")?)
        };
        let b = s.nrows();
        if a.nrows() != b || n.dim() != s.dim() || o.len() != b {
            return Err(format!("step_energy: inconsistent batch: states {:?}, actions {:?}, next {:?}, out {}", s.dim(), a.dim(), n.dim(), o.len()));
        }
        cost.step_energy(step as usize, s, a, n, o).map_err(|e| e.to_string())
    })
}

/// [`HostCost::terminal_energy`]: the host cost's terminal energies.
unsafe extern "C" fn host_terminal_energy(ctx: *const c_void, step: u64, states: *const TensorView, out: *const TensorView, err: *mut ErrBuf) -> Status {
    host_guard(err, || {
        // SAFETY: as in `host_step_energy`.
        let cost = unsafe { &*ctx.cast::<Cost>() };
        // SAFETY: the plugin's views are valid for the call.
        let (s, o) = unsafe { (plugin_matrix(states, "states")?, plugin_vector_mut(out, "out")?) };
        if o.len() != s.nrows() {
            return Err(format!("terminal_energy: {} states but out has {}", s.nrows(), o.len()));
        }
        cost.add_terminal_energy(step as usize, s, o).map_err(|e| e.to_string())
    })
}

/// The host cost `cost` as callbacks; `cost` must outlive every call through them.
pub(super) fn host_cost(cost: &Cost) -> HostCost {
    HostCost {
        ctx: (cost as *const Cost).cast(),
        has_terminal: u32::from(cost.has_terminal()),
        step_energy: host_step_energy,
        terminal_energy: host_terminal_energy,
    }
}
