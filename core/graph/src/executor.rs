use std::fmt;
use std::str::FromStr;

use crate::graph::Graph;
use crate::node::{Node, TickContext};
use crate::value::{Inputs, Outputs, Value};
use ami_core::error::{CoreError, Result};
use ami_core::rng::derive_seed;

/// Which executor runs a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutorKind {
    /// [`TickExecutor`]: one thread, nodes in run order.
    #[default]
    Sequential,
    /// [`crate::parallel::ParallelExecutor`]: independent nodes of a tick run
    /// concurrently, background nodes on their own threads.
    Parallel,
}

impl ExecutorKind {
    /// The names [`FromStr`] accepts.
    pub const NAMES: [&'static str; 2] = ["sequential", "parallel"];
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutorKind::Sequential => "sequential",
            ExecutorKind::Parallel => "parallel",
        })
    }
}

impl FromStr for ExecutorKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "sequential" => Ok(ExecutorKind::Sequential),
            "parallel" => Ok(ExecutorKind::Parallel),
            _ => Err(format!("unknown executor `{s}` (expected one of: sequential, parallel)")),
        }
    }
}

/// What every executor offers: episodes of ticks over a validated graph.
///
/// For the same graph and seed every executor produces the same values,
/// bit for bit (see the module documentation for the tick semantics).
pub trait Executor: Send {
    /// Which executor this is.
    fn kind(&self) -> ExecutorKind;
    /// Node names, in insertion order.
    fn node_names(&self) -> &[String];
    /// Starts an episode: clears every port and resets every node with a
    /// seed derived from `seed` and the node's name.
    fn reset(&mut self, seed: u64) -> Result<()>;
    /// Runs one tick. On error every node's `finish` is called and the error
    /// names the failing node and tick.
    fn tick(&mut self) -> Result<()>;
    /// Ticks run since the last reset.
    fn ticks(&self) -> u64;
    /// `(node index, output index)` of an output port, for
    /// [`Executor::output_at`].
    fn output_index(&self, node: &str, port: &str) -> Option<(usize, usize)>;
    /// The value on an output port as the other nodes see it after the last
    /// tick (for a background node: its last published value).
    fn output_at(&self, node: usize, port: usize) -> Option<&Value>;
    /// The value on output `port` of `node` after the last tick.
    fn output(&self, node: &str, port: &str) -> Option<&Value> {
        let (n, p) = self.output_index(node, port)?;
        self.output_at(n, p)
    }
    /// Calls every node's `finish` once (waiting first for any background
    /// run in flight). Reports the first error after calling all of them.
    fn finish(&mut self) -> Result<()>;
    /// Calls `f` with node `name` (to read a concrete node's state through
    /// [`Node::as_any`]); returns false if there is no such node.
    fn inspect(&self, name: &str, f: &mut dyn FnMut(&dyn Node)) -> bool;
}

/// Builds the executor of `kind` for a validated graph.
pub fn executor(graph: Graph, kind: ExecutorKind) -> Box<dyn Executor> {
    match kind {
        ExecutorKind::Sequential => Box::new(TickExecutor::new(graph)),
        ExecutorKind::Parallel => Box::new(crate::parallel::ParallelExecutor::new(graph)),
    }
}

/// Whether a node of `rate` runs at `tick`.
#[inline]
pub(crate) fn runs_at(rate: u32, tick: u64) -> bool {
    tick.is_multiple_of(u64::from(rate.max(1)))
}

/// Whether a background node of `rate` publishes, at `tick`, the outputs of
/// its run at `tick - rate`.
#[inline]
pub(crate) fn publishes_at(rate: u32, tick: u64) -> bool {
    tick > 0 && runs_at(rate, tick)
}

/// Empties the event (modulation) values of `values` at `ports`.
#[inline]
pub(crate) fn clear_events(values: &mut [Value], ports: &[usize]) {
    for &p in ports {
        if let Some(Value::Modulations(m)) = values.get_mut(p) {
            m.clear();
        }
    }
}

/// The deterministic single-thread executor: runs every node once per tick
/// (respecting rates) in [`Graph::order`]. Same graph and seed, same
/// values, bit for bit.
pub struct TickExecutor {
    graph: Graph,
    current: Vec<Vec<Value>>,
    previous: Vec<Vec<Value>>,
    /// Outputs of background nodes' runs, published `rate` ticks later.
    pending: Vec<Vec<Value>>,
    tick: u64,
    seed: u64,
    finished: bool,
}

impl TickExecutor {
    /// An executor for a validated graph.
    pub fn new(graph: Graph) -> Self {
        let current: Vec<Vec<Value>> = graph.ports.iter().map(|p| vec![Value::Empty; p.outputs.len()]).collect();
        let previous = current.clone();
        let pending = current.clone();
        Self { graph, current, previous, pending, tick: 0, seed: 0, finished: false }
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Starts an episode: clears every port and resets every node with a
    /// seed derived from `seed` and the node's name.
    pub fn reset(&mut self, seed: u64) -> Result<()> {
        for v in self.current.iter_mut().chain(self.previous.iter_mut()).chain(self.pending.iter_mut()) {
            v.iter_mut().for_each(|x| *x = Value::Empty);
        }
        self.tick = 0;
        self.seed = seed;
        self.finished = false;
        for (i, node) in self.graph.nodes.iter_mut().enumerate() {
            let name = &self.graph.names[i];
            node.reset(derive_seed(seed, name)).map_err(|e| CoreError::Node { node: name.clone(), tick: 0, source: Box::new(e) })?;
        }
        Ok(())
    }

    /// The number of ticks run since the last reset.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    /// Runs one tick. On error, every node's `finish` is called (so nothing
    /// is lost) and the error names the failing node and tick.
    pub fn tick(&mut self) -> Result<()> {
        let ctx = TickContext { tick: self.tick, seed: self.seed };
        let g = &self.graph;
        // Events are delivered on one tick only; background nodes publish
        // the outputs of their run `rate` ticks ago.
        for i in 0..g.nodes.len() {
            if g.background[i] && publishes_at(g.rates[i], self.tick) {
                for (dst, src) in self.current[i].iter_mut().zip(&self.pending[i]) {
                    dst.copy_from(src);
                }
            } else {
                clear_events(&mut self.current[i], &g.event_ports[i]);
            }
        }
        for k in 0..self.graph.order.len() {
            let i = self.graph.order[k];
            if !runs_at(self.graph.rates[i], self.tick) {
                continue;
            }
            let bg = self.graph.background[i];
            let mut outs = if bg { std::mem::take(&mut self.pending[i]) } else { std::mem::take(&mut self.current[i]) };
            clear_events(&mut outs, &self.graph.event_ports[i]);
            let result = {
                let inputs = Inputs {
                    node: &self.graph.names[i],
                    names: &self.graph.input_names[i],
                    bindings: &self.graph.bindings[i],
                    current: &self.current,
                    previous: &self.previous,
                };
                self.graph.nodes[i].tick(&ctx, &inputs, &mut Outputs { values: &mut outs })
            };
            if bg {
                self.pending[i] = outs;
            } else {
                self.current[i] = outs;
            }
            if let Err(e) = result {
                let err = CoreError::Node { node: self.graph.names[i].clone(), tick: self.tick, source: Box::new(e) };
                let _ = self.finish();
                return Err(err);
            }
        }
        for &(n, p) in &self.graph.delayed_sources {
            let (cur, prev) = (&self.current[n][p], &mut self.previous[n][p]);
            prev.copy_from(cur);
        }
        self.tick += 1;
        Ok(())
    }

    /// The value on an output port after the last tick.
    pub fn output(&self, node: &str, port: &str) -> Option<&Value> {
        let i = self.graph.index(node)?;
        let p = self.graph.ports[i].output_index(port)?;
        Some(&self.current[i][p])
    }

    /// Calls every node's `finish` once (flushes memories). Reports the
    /// first error after calling all of them.
    pub fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let mut first = None;
        for (i, node) in self.graph.nodes.iter_mut().enumerate() {
            if let Err(e) = node.finish() {
                first.get_or_insert(CoreError::Node { node: self.graph.names[i].clone(), tick: self.tick, source: Box::new(e) });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Executor for TickExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Sequential
    }
    fn node_names(&self) -> &[String] {
        &self.graph.names
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        TickExecutor::reset(self, seed)
    }
    fn tick(&mut self) -> Result<()> {
        TickExecutor::tick(self)
    }
    fn ticks(&self) -> u64 {
        self.tick
    }
    fn output_index(&self, node: &str, port: &str) -> Option<(usize, usize)> {
        let i = self.graph.index(node)?;
        Some((i, self.graph.ports[i].output_index(port)?))
    }
    fn output_at(&self, node: usize, port: usize) -> Option<&Value> {
        self.current.get(node)?.get(port)
    }
    fn finish(&mut self) -> Result<()> {
        TickExecutor::finish(self)
    }
    fn inspect(&self, name: &str, f: &mut dyn FnMut(&dyn Node)) -> bool {
        match self.graph.node(name) {
            Some(n) => {
                f(n);
                true
            }
            None => false,
        }
    }
}

impl Drop for TickExecutor {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
