//! The dataflow graph that wires modules into an agent.
//!
//! Nodes are module instances and sources/sinks (the environment, loggers);
//! each declares named, typed input and output ports ([`PortSpec`]). Edges
//! connect an output port to input ports. A cycle is allowed only through a
//! *delayed* edge, whose input sees the value its source produced on the
//! previous tick (e.g. the action fed back to the environment). A node may
//! run every `rate` ticks only; between runs its outputs keep their last
//! values.
//!
//! Graphs are built with [`GraphBuilder`] (or from an agent file, see
//! [`crate::config`]), validated before anything runs (every problem is
//! reported at once, naming the node and port), exported as Graphviz DOT
//! with [`Graph::to_dot`], and run by an [`Executor`]: the deterministic
//! single-thread [`TickExecutor`] or the [`ParallelExecutor`].
//!
//! # Tick semantics (both executors, bit for bit)
//!
//! * A tick runs the nodes level by level ([`Graph::levels`]); a node of
//!   rate `n` runs on ticks `0, n, 2n, ...` and between runs its outputs keep
//!   their values.
//! * An instant edge delivers the value its source wrote this tick; a
//!   delayed edge the value at the end of the previous tick (`Empty` on tick
//!   0).
//! * Events (modulation ports) are delivered on one tick only: they are
//!   emptied at the start of every tick, so a message the configurator sends
//!   on tick `t` reaches instant consumers on tick `t` and delayed consumers
//!   on tick `t + 1`, once.
//! * A *background* node ([`GraphBuilder::set_background`]) of rate `n` run
//!   on tick `k` reads its inputs as of tick `k`; its outputs are published
//!   at the start of tick `k + n` (held until then). The parallel executor
//!   runs it on its own thread, so the rest of the graph waits for it only
//!   at tick `k + n`, and only if it has not finished.
//!
//! ```
//! use ami_core::graph::*;
//!
//! struct Counter;
//! impl Node for Counter {
//!     fn ports(&self) -> NodePorts {
//!         NodePorts::new().input("prev", PortType::Scalar, false).output("count", PortType::Scalar)
//!     }
//!     fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> ami_core::Result<()> {
//!         let prev = inputs.scalar_opt(0)?.unwrap_or(0.0);
//!         outputs.set_scalar(0, prev + 1.0);
//!         Ok(())
//!     }
//! }
//!
//! let mut b = GraphBuilder::new();
//! b.add_node("counter", Counter);
//! b.connect_delayed("counter.count", "counter.prev");
//! let mut exec = TickExecutor::new(b.build().unwrap());
//! exec.reset(0).unwrap();
//! for _ in 0..3 {
//!     exec.tick().unwrap();
//! }
//! assert_eq!(exec.output("counter", "count").unwrap().as_scalar(), Some(3.0));
//! ```

mod builder;
mod executor;
mod nodes;
mod parallel;
mod value;

pub use builder::{EdgeSpec, Graph, GraphBuilder, GraphProblem, ProblemKind};
pub use executor::{executor, Executor, ExecutorKind, TickExecutor};
pub use nodes::*;
pub use parallel::ParallelExecutor;
pub use value::{Inputs, Outputs, PortType, Value};

use crate::error::Result;

/// One port of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Port name, unique among the node's inputs (or outputs).
    pub name: String,
    /// What flows through the port.
    pub ty: PortType,
    /// For inputs: whether the node cannot run without it.
    pub required: bool,
}

/// The ports a node declares. Inputs and outputs are addressed by index in
/// [`Inputs`] / [`Outputs`], in the order declared here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePorts {
    /// Input ports.
    pub inputs: Vec<PortSpec>,
    /// Output ports.
    pub outputs: Vec<PortSpec>,
}

impl NodePorts {
    /// No ports.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds an input port.
    pub fn input(mut self, name: &str, ty: PortType, required: bool) -> Self {
        self.inputs.push(PortSpec { name: name.into(), ty, required });
        self
    }
    /// Adds an output port.
    pub fn output(mut self, name: &str, ty: PortType) -> Self {
        self.outputs.push(PortSpec { name: name.into(), ty, required: false });
        self
    }
    /// Index of an input port by name.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|p| p.name == name)
    }
    /// Index of an output port by name.
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|p| p.name == name)
    }
}

/// What a node sees of the current tick.
#[derive(Debug, Clone, Copy)]
pub struct TickContext {
    /// Tick number since the last reset (0 = first tick of an episode).
    pub tick: u64,
    /// The episode seed given to [`TickExecutor::reset`].
    pub seed: u64,
}

/// A node of the dataflow graph: a module instance, a source or a sink.
///
/// `tick` reads the node's inputs (by index, in the order of
/// [`Node::ports`]) and writes its outputs. Outputs not written keep their
/// previous value.
pub trait Node: Send {
    /// The node's ports. Must return the same ports every time.
    fn ports(&self) -> NodePorts;
    /// Starts an episode. `seed` is derived from the episode seed and the
    /// node's name, so every node has its own reproducible stream.
    fn reset(&mut self, _seed: u64) -> Result<()> {
        Ok(())
    }
    /// Runs the node for one tick.
    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()>;
    /// Called when the run ends (normally or on error): flush what must not
    /// be lost (e.g. memory writes).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// The node as `Any`, so a runner can read a concrete node's state.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}
