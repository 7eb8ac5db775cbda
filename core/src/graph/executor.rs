use super::builder::Graph;
use super::value::{Inputs, Outputs, Value};
use super::TickContext;
use crate::error::{CoreError, Result};
use crate::rng::derive_seed;

/// The deterministic single-thread executor: runs every node once per tick
/// (respecting rates) in topological order. Same graph and seed, same
/// values, bit for bit.
pub struct TickExecutor {
    graph: Graph,
    current: Vec<Vec<Value>>,
    previous: Vec<Vec<Value>>,
    tick: u64,
    seed: u64,
    finished: bool,
}

impl TickExecutor {
    /// An executor for a validated graph.
    pub fn new(graph: Graph) -> Self {
        let current: Vec<Vec<Value>> = graph.ports.iter().map(|p| vec![Value::Empty; p.outputs.len()]).collect();
        let previous = current.clone();
        Self { graph, current, previous, tick: 0, seed: 0, finished: false }
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Starts an episode: clears every port and resets every node with a
    /// seed derived from `seed` and the node's name.
    pub fn reset(&mut self, seed: u64) -> Result<()> {
        for v in self.current.iter_mut().chain(self.previous.iter_mut()) {
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
        for k in 0..self.graph.order.len() {
            let i = self.graph.order[k];
            if !self.tick.is_multiple_of(u64::from(self.graph.rates[i])) {
                continue;
            }
            let mut outs = std::mem::take(&mut self.current[i]);
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
            self.current[i] = outs;
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

impl Drop for TickExecutor {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
