//! Configurator: the [`Configurator`] trait and the [`Modulation`]s it emits, the [`ConfiguratorVTable`] and [`StrSink`], and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;
use std::time::Duration;

use super::{header, write_dims, Err, Module, View};
use crate::guard::guard;
use crate::json::Json;
use crate::tensor::TensorView;
use crate::types::{Dims, Error, ModuleKind, Status, Str, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// A modulation a plugin configurator emits (the host's `Modulation`).
#[derive(Debug, Clone, PartialEq)]
pub enum Modulation {
    /// Set the weight of a cost term.
    CostWeight {
        /// Term name.
        term: String,
        /// New weight.
        weight: f32,
    },
    /// Set or clear the goal.
    Goal(Option<Vec<f32>>),
    /// Set the planner's horizon.
    Horizon(usize),
    /// Set the planner's budget.
    Budget {
        /// Iterations.
        iterations: usize,
        /// Optional wall-clock limit per call.
        deadline: Option<Duration>,
    },
}

impl Modulation {
    /// The JSON the host parses (externally tagged, snake_case).
    pub fn to_json(&self) -> Json {
        let num = |x: f64| Json::Number(x);
        let obj = |k: &str, v: Json| Json::Object(vec![(k.to_string(), v)]);
        match self {
            Modulation::CostWeight { term, weight } => {
                obj("cost_weight", Json::Object(vec![("term".into(), Json::String(term.clone())), ("weight".into(), num(f64::from(*weight)))]))
            }
            Modulation::Goal(g) => obj("goal", g.as_ref().map_or(Json::Null, |g| Json::Array(g.iter().map(|&x| num(f64::from(x))).collect()))),
            Modulation::Horizon(h) => obj("horizon", num(*h as f64)),
            Modulation::Budget { iterations, deadline } => obj(
                "budget",
                Json::Object(vec![
                    ("iterations".into(), num(*iterations as f64)),
                    (
                        "deadline".into(),
                        deadline.map_or(Json::Null, |d| {
                            Json::Object(vec![("secs".into(), num(d.as_secs() as f64)), ("nanos".into(), num(f64::from(d.subsec_nanos())))])
                        }),
                    ),
                ]),
            ),
        }
    }
}

/// A configurator: modulations to apply at each tick.
pub trait Configurator: Module {
    /// The modulations for this tick (usually none).
    fn configure(&mut self, tick: u64, state: &[f32]) -> Result<Vec<Modulation>, Error>;
}

// ---------------------------------------------------------------------------
// FFI structures.

/// A host callback receiving text (configurator output).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrSink {
    /// Opaque host state.
    pub ctx: *mut c_void,
    /// Receives one string; the host copies it.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, s: Str),
}

/// Configurator vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ConfiguratorVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `configure(tick, state, sink)`: writes one JSON array of modulations to `sink`.
    pub configure: unsafe extern "C" fn(this: *mut c_void, tick: u64, state: View, sink: *const StrSink, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = ConfiguratorVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::CONFIGURATOR;
/// The vtable of `M`.
pub const fn vtable<M: Configurator>() -> VTable {
    ConfiguratorVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), configure: configure::<M> }
}
unsafe extern "C" fn dims<M: Configurator>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe { write_dims::<M>(this, out, err, |_| Dims::default()) }
}
unsafe extern "C" fn configure<M: Configurator>(this: *mut c_void, tick: u64, state: View, sink: *const StrSink, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; the state view and sink are valid for the call.
    unsafe {
        guard(err, || {
            let ms = (*this.cast::<M>()).configure(tick, TensorView::as_slice(state, "state")?)?;
            let text = Json::Array(ms.iter().map(Modulation::to_json).collect()).to_text();
            let s = sink.as_ref().ok_or_else(|| Error::new("null sink"))?;
            (s.write)(s.ctx, Str::borrow(&text));
            Ok(())
        })
    }
}
