//! The [`Node`] contract of the graph and the [`NodePorts`] it declares.

use ami_core::Result;

use crate::value::{Inputs, Outputs, PortType};

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
    /// The episode seed given to [`TickExecutor::reset`](crate::TickExecutor::reset).
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
