//! # ami-graph: the dataflow graph and its executors
//!
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
//! `ami-config`), validated before anything runs (every problem is
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
//! use ami_graph::*;
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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod dot;
mod exec;
mod executor;
mod graph;
mod node;
mod parallel;
mod spec;
mod validate;
mod value;

pub use ami_core::{Location, Problem, ProblemKind};
pub use builder::GraphBuilder;
pub use exec::{Executor, ExecutorKind};
pub use executor::{executor, TickExecutor};
pub use graph::Graph;
pub use node::{Node, NodePorts, PortSpec, TickContext};
pub use parallel::ParallelExecutor;
pub use spec::EdgeSpec;
pub use value::{Inputs, Outputs, PortType, Value};
