//! [`PluginMemory`]: a plugin short-term memory behind [`ShortTermMemory`].

use std::path::Path;

use ami_core::error::{CoreError, Result};
use ami_core::modules::{ShortTermMemory, SoftRead, Transition, TransitionBatch, TransitionRef};
use ami_core::rng::AmiRng;
use ami_plugin_abi::kinds::{MemoryVTable, TransitionFfi};
use ami_plugin_abi::{Dims, Str, TensorView};
use ndarray::{Array1, Array2, ArrayView1};
use rand::Rng;

use super::common::{shape_err, usize_dim};
use super::tensor::input_vector;
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin short-term memory. Sampling and soft reads are done by the host
/// through `len` and `get`. Plugin ABI 1.0 carries no terminal flag: a
/// plugin memory gives every transition back as non-terminal (a critic
/// trained from it treats episode ends as time limits), and the first
/// terminal transition pushed logs a warning saying so.
#[derive(Debug)]
pub struct PluginMemory {
    inst: Instance,
    dims: Dims,
    warned_terminal: bool,
}

impl PluginMemory {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        Ok(Self { inst, dims, warned_terminal: false })
    }

    fn read(&self, by_time: bool, key: u64) -> std::result::Result<Option<Transition>, PluginError> {
        let (sd, ad) = (self.state_dim(), self.action_dim());
        let (mut s, mut a, mut n) = (vec![0.0f32; sd], vec![0.0f32; ad], vec![0.0f32; sd]);
        let mut out = TransitionFfi {
            t: 0,
            state: TensorView::vector_mut(s.as_mut_ptr(), sd),
            action: TensorView::vector_mut(a.as_mut_ptr(), ad),
            cost: 0.0,
            next_state: TensorView::vector_mut(n.as_mut_ptr(), sd),
            imagined: 0,
        };
        let mut found = 0u8;
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let f = if by_time { vt.by_time } else { vt.get };
        let this = self.inst.this();
        // SAFETY: live instance (memory calls are serialised by `&self`/`&mut self`
        // of a `Send`-only adapter); outputs live across the call.
        self.inst.call(|err| unsafe { f(this, key, &mut out, &mut found, err) })?;
        Ok((found != 0).then_some(Transition { t: out.t, state: s, action: a, cost: out.cost, next_state: n, imagined: out.imagined != 0, terminated: false }))
    }

    fn log_err<T>(&self, r: std::result::Result<T, PluginError>) -> Option<T> {
        r.map_err(|e| tracing::error!("{e}")).ok()
    }
}

impl ShortTermMemory for PluginMemory {
    fn state_dim(&self) -> usize {
        usize_dim(self.dims.state_dim)
    }
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn capacity(&self) -> usize {
        usize_dim(self.dims.capacity)
    }
    fn len(&self) -> usize {
        let mut n = 0u64;
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this();
        // SAFETY: live instance; `n` lives across the call.
        let r = self.inst.call(|err| unsafe { (vt.len)(this, &mut n, err) });
        self.log_err(r).map_or(0, |_| usize_dim(n))
    }
    fn push(&mut self, tr: &TransitionRef<'_>) -> Result<()> {
        let (sd, ad) = (self.state_dim(), self.action_dim());
        if tr.state.len() != sd || tr.next_state.len() != sd || tr.action.len() != ad {
            return Err(shape_err(
                &self.inst,
                "push",
                format!("state/next_state {sd}, action {ad}"),
                format!("{}/{}, {}", tr.state.len(), tr.next_state.len(), tr.action.len()),
            ));
        }
        let (mut k1, mut k2, mut k3) = (None, None, None);
        let t = TransitionFfi {
            t: tr.t,
            state: input_vector(&tr.state, &mut k1),
            action: input_vector(&tr.action, &mut k2),
            cost: tr.cost,
            next_state: input_vector(&tr.next_state, &mut k3),
            imagined: u8::from(tr.imagined),
        };
        if tr.terminated && !self.warned_terminal {
            self.warned_terminal = true;
            tracing::warn!("{}: plugin memories (ABI 1.0) store no terminal flag; terminal transitions come back as time-limit ends", self.inst.label());
        }
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; the transition's views live across the call.
        self.inst.call(|err| unsafe { (vt.push)(this, &t, err) })?;
        Ok(())
    }
    fn get(&self, i: usize) -> Option<Transition> {
        self.log_err(self.read(false, i as u64)).flatten()
    }
    fn by_time(&self, t: u64) -> Option<Transition> {
        self.log_err(self.read(true, t)).flatten()
    }
    fn sample(&self, n: usize, rng: &mut AmiRng) -> Result<TransitionBatch> {
        let len = self.len();
        if len == 0 {
            return Err(CoreError::module(self.inst.label(), "cannot sample from an empty memory"));
        }
        let (sd, ad) = (self.state_dim(), self.action_dim());
        let mut b = TransitionBatch {
            t: Vec::with_capacity(n),
            states: Array2::zeros((n, sd)),
            actions: Array2::zeros((n, ad)),
            costs: Array1::zeros(n),
            next_states: Array2::zeros((n, sd)),
            imagined: Vec::with_capacity(n),
            terminated: Vec::with_capacity(n),
        };
        for row in 0..n {
            let i = rng.gen_range(0..len);
            let tr =
                self.read(false, i as u64)?.ok_or_else(|| CoreError::module(self.inst.label(), format!("get({i}) found nothing though len() is {len}")))?;
            b.t.push(tr.t);
            b.imagined.push(tr.imagined);
            b.terminated.push(tr.terminated);
            b.costs[row] = tr.cost;
            b.states.row_mut(row).assign(&ArrayView1::from(&tr.state));
            b.actions.row_mut(row).assign(&ArrayView1::from(&tr.action));
            b.next_states.row_mut(row).assign(&ArrayView1::from(&tr.next_state));
        }
        Ok(b)
    }
    fn read_soft(&self, key: ArrayView1<'_, f32>, temperature: f32) -> Result<SoftRead> {
        let len = self.len();
        if len == 0 {
            return Err(CoreError::module(self.inst.label(), "cannot read from an empty memory"));
        }
        if key.len() != self.state_dim() {
            return Err(shape_err(&self.inst, "read_soft(key)", format!("length {}", self.state_dim()), format!("length {}", key.len())));
        }
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(CoreError::config("read_soft.temperature", format!("must be positive and finite, got {temperature}")));
        }
        let mut items = Vec::with_capacity(len);
        for i in 0..len {
            if let Some(t) = self.read(false, i as u64)? {
                items.push(t);
            }
        }
        let logits: Vec<f32> = items.iter().map(|t| -t.state.iter().zip(key.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / temperature).collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f32 = w.iter().sum();
        let mut next_state = Array1::zeros(self.state_dim());
        let mut cost = 0.0;
        for (t, &wk) in items.iter().zip(&w) {
            let p = wk / z;
            next_state.scaled_add(p, &ArrayView1::from(&t.next_state));
            cost += p * t.cost;
        }
        Ok(SoftRead { next_state, cost })
    }
    fn save(&self, path: &Path) -> Result<()> {
        let p = path.to_str().ok_or_else(|| CoreError::module(self.inst.label(), format!("{}: path is not UTF-8", path.display())))?;
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this();
        // SAFETY: live instance; the path text lives across the call.
        self.inst.call(|err| unsafe { (vt.save)(this, Str::borrow(p), err) })?;
        Ok(())
    }
    fn clear(&mut self) {
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively.
        let r = self.inst.call(|err| unsafe { (vt.clear)(this, err) });
        self.log_err(r);
    }
}
