//! [`TickExecutor`], the deterministic single-thread executor, and
//! [`executor`], which builds the executor a graph asks for.

use crate::exec::{clear_events, publishes_at, runs_at, Executor, ExecutorKind};
use crate::graph::Graph;
use crate::node::{Node, TickContext};
use crate::value::{Inputs, Outputs, Value};
use ami_core::error::{CoreError, Result};
use ami_core::rng::derive_seed;

/// Builds the executor of `kind` for a validated graph.
pub fn executor(graph: Graph, kind: ExecutorKind) -> Box<dyn Executor> {
    match kind {
        ExecutorKind::Sequential => Box::new(TickExecutor::new(graph)),
        ExecutorKind::Parallel => Box::new(crate::parallel::ParallelExecutor::new(graph)),
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
