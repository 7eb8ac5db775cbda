//! Handles through which modules are shared between nodes while an agent
//! runs.
//!
//! * [`Handle`]: a versioned, immutable value that a new version replaces
//!   atomically: a world model (new weights from a trainer), a critic, a
//!   policy. Readers take a snapshot ([`Handle::get`]) and keep it for a
//!   whole call, so a planning call never mixes two versions.
//! * [`Shared`]: one mutable module behind a lock, read and written by
//!   several nodes: the short-term memory (written by the memory node,
//!   sampled by a trainer), a cost (modulated by the configurator, read by
//!   the actor).
//!
//! # Determinism
//!
//! A new version published from code between ticks (or between episodes)
//! is seen by every reader from the next tick on, in both executors. A node
//! that publishes while the graph runs must be ordered before its readers
//! by an edge: the graph's reference ports (`PortType::Model`) carry the
//! handle's version, so a reader wired to the writer runs after it in the
//! same tick and sees the new version on that tick, bit for bit the same
//! in the sequential and the parallel executor.

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{CoreError, Result};
use crate::modules::{CostContext, Critic, Policy, ShortTermMemory, TransitionBatch, WorldModel};
use ndarray::{Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2};

struct Slot<T: ?Sized> {
    version: u64,
    value: Arc<T>,
    /// Values staged for a later commit, by tag (oldest first).
    staged: Vec<(u64, Arc<T>)>,
}

/// A versioned value shared by its writer and its readers (see the module
/// docs). Cloning a handle shares it.
pub struct Handle<T: ?Sized> {
    slot: Arc<RwLock<Slot<T>>>,
}

impl<T: ?Sized> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Self { slot: self.slot.clone() }
    }
}

impl<T: ?Sized> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("version", &self.version()).finish()
    }
}

impl<T: ?Sized> Handle<T> {
    /// A handle holding `value` as version 0.
    pub fn new(value: Arc<T>) -> Self {
        Self { slot: Arc::new(RwLock::new(Slot { version: 0, value, staged: Vec::new() })) }
    }
    fn read(&self) -> RwLockReadGuard<'_, Slot<T>> {
        self.slot.read().unwrap_or_else(|p| p.into_inner())
    }
    /// The current version, to keep for a whole call.
    pub fn get(&self) -> Arc<T> {
        self.read().value.clone()
    }
    /// The current version number (0 for the first, +1 per publication).
    pub fn version(&self) -> u64 {
        self.read().version
    }
    /// Replaces the value atomically (readers see the old or the new one,
    /// never a mix); returns the new version number.
    pub fn publish(&self, value: Arc<T>) -> u64 {
        let mut s = self.slot.write().unwrap_or_else(|p| p.into_inner());
        s.version += 1;
        s.value = value;
        s.version
    }
    /// Whether two handles share the same slot.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.slot, &other.slot)
    }
    /// Stages `value` under `tag` without publishing it: readers keep the
    /// current version until someone calls [`Handle::commit`] with that
    /// tag. A writer that runs concurrently with the readers (a background
    /// trainer) stages; a node that runs before the readers in a known tick
    /// commits, so when readers see the new version does not depend on
    /// thread timing.
    pub fn stage(&self, tag: u64, value: Arc<T>) {
        let mut s = self.slot.write().unwrap_or_else(|p| p.into_inner());
        s.staged.retain(|(t, _)| *t != tag);
        s.staged.push((tag, value));
    }
    /// Publishes the value staged under `tag`, dropping it and every value
    /// staged before it; returns the new version number, or `None` (and
    /// changes nothing) if nothing is staged under `tag`.
    pub fn commit(&self, tag: u64) -> Option<u64> {
        let mut s = self.slot.write().unwrap_or_else(|p| p.into_inner());
        let at = s.staged.iter().position(|(t, _)| *t == tag)?;
        let mut older: Vec<_> = s.staged.drain(..=at).collect();
        let (_, value) = older.pop().expect("position is in range");
        s.version += 1;
        s.value = value;
        Some(s.version)
    }
    /// Publishes the value staged last (dropping all staged values);
    /// returns the new version number, or `None` if nothing was staged.
    pub fn commit_latest(&self) -> Option<u64> {
        let tag = self.read().staged.last().map(|(t, _)| *t)?;
        self.commit(tag)
    }
}

/// A shared world model: planners hold one, trainers publish to it.
pub type ModelHandle = Handle<dyn WorldModel>;

impl ModelHandle {
    /// A handle over a world model.
    pub fn of(model: impl WorldModel + 'static) -> Self {
        Handle::new(Arc::new(model))
    }
    /// Publishes a new version of the model after checking that it has the
    /// current version's state and action widths (the planners holding the
    /// handle were checked against those when the agent was built).
    pub fn publish_model(&self, model: Arc<dyn WorldModel>) -> Result<u64> {
        self.check_widths("ModelHandle::publish_model", &*model)?;
        Ok(self.publish(model))
    }
    /// Stages a new version of the model for [`Handle::commit`], after the
    /// same width check as [`ModelHandle::publish_model`].
    pub fn stage_model(&self, tag: u64, model: Arc<dyn WorldModel>) -> Result<()> {
        self.check_widths("ModelHandle::stage_model", &*model)?;
        self.stage(tag, model);
        Ok(())
    }
    fn check_widths(&self, what: &str, model: &dyn WorldModel) -> Result<()> {
        let cur = self.get();
        if (model.state_dim(), model.action_dim()) != (cur.state_dim(), cur.action_dim()) {
            return Err(CoreError::shape(
                what,
                format!("state {} and action {} wide (the current version)", cur.state_dim(), cur.action_dim()),
                format!("state {} and action {}", model.state_dim(), model.action_dim()),
            ));
        }
        Ok(())
    }
}

/// A shared critic: the planners that use it as their terminal cost hold
/// one, a trainer publishes new versions.
pub type CriticHandle = Handle<dyn Critic>;

/// A critic term that reads whatever version its handle holds (so a cost
/// can carry a shared critic). Training goes through the critic's trainer,
/// which publishes new versions; [`Critic::train`] here refuses.
#[derive(Debug, Clone)]
pub struct SharedCritic {
    name: String,
    handle: CriticHandle,
}

impl SharedCritic {
    /// The critic of `handle`, as a cost term called `name`.
    pub fn new(name: impl Into<String>, handle: CriticHandle) -> Self {
        Self { name: name.into(), handle }
    }
}

impl Critic for SharedCritic {
    fn name(&self) -> &str {
        &self.name
    }
    fn add_value(&self, ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, out: ArrayViewMut1<'_, f32>) -> Result<()> {
        self.handle.get().add_value(ctx, weight, states, out)
    }
    fn train(&mut self, _batch: &TransitionBatch, _discount: f32) -> Result<f32> {
        Err(CoreError::config(format!("critic.{}", self.name), "a shared critic is trained by its trainer, which publishes new versions to its handle"))
    }
    fn has_gradient(&self) -> bool {
        self.handle.get().has_gradient()
    }
    fn add_value_gradient(&self, ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, grad: ArrayViewMut2<'_, f32>) -> Result<()> {
        self.handle.get().add_value_gradient(ctx, weight, states, grad)
    }
    fn accelerated(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.handle.get().accelerated()
    }
}

/// A shared Mode-1 policy (a distilled planner, a hand-written controller).
pub type PolicyHandle = Handle<dyn Policy>;

impl Policy for PolicyHandle {
    fn action_dim(&self) -> usize {
        self.get().action_dim()
    }
    fn act_batch(&self, states: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.get().act_batch(states)
    }
    // `as_any` stays `None`: the handle's current policy is
    // `self.get().as_any()`, which outlives no borrow of the handle.
}

/// One mutable module shared by several nodes (see the module docs).
/// Cloning shares it.
pub struct Shared<T: ?Sized> {
    inner: Arc<RwLock<Box<T>>>,
}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<T: ?Sized> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared(..)")
    }
}

impl<T: ?Sized> Shared<T> {
    /// Shares `value`.
    pub fn new(value: Box<T>) -> Self {
        Self { inner: Arc::new(RwLock::new(value)) }
    }
    /// Reads the module (many readers at once). A lock poisoned by a
    /// panicking writer is still readable: modules keep their own
    /// invariants per call.
    pub fn read(&self) -> RwLockReadGuard<'_, Box<T>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
    /// Writes the module (one writer, no readers).
    pub fn write(&self) -> RwLockWriteGuard<'_, Box<T>> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
    /// Whether two handles share the same module.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Shared<T> {
    /// Shares a sized value.
    pub fn of(value: T) -> Self {
        Self::new(Box::new(value))
    }
}

/// The short-term memory, shared by the memory node (which writes it) and
/// whoever reads it (trainers, the code that runs the agent). Memories are
/// `Send` but need not be `Sync` (a plugin's memory may not be), so the
/// handle is a mutex: one reader or writer at a time. Cloning shares it.
#[derive(Clone)]
pub struct MemoryHandle {
    inner: Arc<Mutex<Box<dyn ShortTermMemory>>>,
}

impl std::fmt::Debug for MemoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryHandle(..)")
    }
}

impl MemoryHandle {
    /// Shares `memory`.
    pub fn new(memory: Box<dyn ShortTermMemory>) -> Self {
        Self { inner: Arc::new(Mutex::new(memory)) }
    }
    /// Locks the memory to read or write it. A lock poisoned by a panicking
    /// holder is still usable: the memory keeps its invariants per call.
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn ShortTermMemory>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Whether two handles share the same memory.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinearModel;
    use ndarray::Array2;

    #[test]
    fn publishing_replaces_the_value_and_counts_versions() {
        let a = ModelHandle::of(LinearModel::new(Array2::eye(1), Array2::eye(1)).unwrap());
        let reader = a.clone();
        let snapshot = reader.get();
        assert_eq!(a.version(), 0);
        let v = a.publish(Arc::new(LinearModel::new(Array2::eye(2), Array2::eye(2)).unwrap()));
        assert_eq!(v, 1);
        assert_eq!(reader.version(), 1);
        assert_eq!(reader.get().state_dim(), 2);
        // A snapshot taken before keeps the old version.
        assert_eq!(snapshot.state_dim(), 1);
        assert!(a.same(&reader));
        // The checked publication refuses other widths and keeps the current version.
        let err = a.publish_model(Arc::new(LinearModel::new(Array2::eye(3), Array2::eye(3)).unwrap())).unwrap_err();
        assert!(err.to_string().contains("ModelHandle::publish_model"), "{err}");
        assert_eq!(a.version(), 1);
        assert_eq!(a.publish_model(Arc::new(LinearModel::new(Array2::eye(2), Array2::zeros((2, 2))).unwrap())).unwrap(), 2);
    }

    #[test]
    fn staged_values_wait_for_their_commit_by_tag() {
        let lin = |s: usize, a: usize| Arc::new(LinearModel::new(Array2::eye(s), Array2::zeros((s, a))).unwrap());
        let h = ModelHandle::of(LinearModel::new(Array2::eye(2), Array2::zeros((2, 1))).unwrap());
        h.stage_model(1, lin(2, 1)).unwrap();
        h.stage_model(2, lin(2, 1)).unwrap();
        assert_eq!(h.version(), 0, "staging publishes nothing");
        assert_eq!(h.commit(7), None, "no value staged under 7");
        assert_eq!(h.version(), 0);
        // Committing tag 2 publishes it and drops tag 1, staged before it.
        assert_eq!(h.commit(2), Some(1));
        assert_eq!(h.commit(1), None);
        assert_eq!(h.commit_latest(), None);
        h.stage_model(3, lin(2, 1)).unwrap();
        h.stage_model(4, lin(2, 1)).unwrap();
        assert_eq!(h.commit_latest(), Some(2));
        assert_eq!(h.commit(3), None, "committing the latest drops the older ones");
        // Staging checks the widths as publishing does.
        let err = h.stage_model(5, lin(3, 1)).unwrap_err().to_string();
        assert!(err.contains("ModelHandle::stage_model"), "{err}");
        assert_eq!(h.commit(5), None);
    }
}

/// Whether the agent is learning or being evaluated, shared by the runner
/// (which switches it between episodes) and the nodes that behave
/// differently in evaluation: trainers do not train, memories do not
/// record, exploring actors plan instead of exploring. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct RunPhase {
    evaluating: Arc<std::sync::atomic::AtomicBool>,
}

impl RunPhase {
    /// A phase flag, learning.
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether evaluation episodes are running.
    pub fn is_evaluating(&self) -> bool {
        self.evaluating.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Switches between learning (`false`) and evaluation (`true`); call
    /// between episodes.
    pub fn set_evaluating(&self, on: bool) {
        self.evaluating.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}
