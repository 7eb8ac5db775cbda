//! [`PluginConfigurator`]: a plugin configurator behind [`Configurator`].

use std::ffi::c_void;

use ami_core::error::{CoreError, Result};
use ami_core::modules::{Configurator, Modulation};
use ami_plugin_abi::kinds::{ConfiguratorVTable, StrSink};
use ami_plugin_abi::Str;
use ndarray::ArrayView1;

use super::tensor::input_vector;
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin configurator. If the module fails, it emits no modulations and
/// the failure is logged (and, for a panic, reported by the host).
#[derive(Debug)]
pub struct PluginConfigurator {
    inst: Instance,
}

impl PluginConfigurator {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        inst.dims()?;
        Ok(Self { inst })
    }
    /// The modulations for a tick, or the module's error.
    pub fn try_configure(&mut self, tick: u64, state: ArrayView1<'_, f32>) -> Result<Vec<Modulation>> {
        unsafe extern "C" fn sink(ctx: *mut c_void, s: Str) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: `ctx` is the `String` below; `s` is valid for the call.
                unsafe { (*ctx.cast::<String>()).push_str(s.as_str().unwrap_or("")) };
            }));
        }
        let mut text = String::new();
        let snk = StrSink { ctx: (&mut text as *mut String).cast(), write: sink };
        let mut k = None;
        let s = input_vector(&state, &mut k);
        // SAFETY: the instance is a configurator.
        let vt = unsafe { self.inst.vtable::<ConfiguratorVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; the view and sink live across the call.
        self.inst.call(|err| unsafe { (vt.configure)(this, tick, &s, &snk, err) })?;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(&text).map_err(|e| CoreError::module(self.inst.label(), format!("invalid modulations `{text}`: {e}")))
    }
}

impl Configurator for PluginConfigurator {
    fn configure(&mut self, tick: u64, state: ArrayView1<'_, f32>) -> Vec<Modulation> {
        self.try_configure(tick, state).unwrap_or_else(|e| {
            tracing::error!("{e}");
            Vec::new()
        })
    }
    fn reset(&mut self, seed: u64) {
        if let Err(e) = self.inst.reset(seed) {
            tracing::error!("{e}");
        }
    }
}
