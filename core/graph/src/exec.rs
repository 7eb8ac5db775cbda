//! What every executor is ([`Executor`], [`ExecutorKind`]) and the tick
//! rules both executors share (rates, background publication, events), in
//! one place so the two cannot disagree.

use std::fmt;
use std::str::FromStr;

use ami_core::Result;

use crate::node::Node;
use crate::value::Value;

/// Which executor runs a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutorKind {
    /// [`TickExecutor`](crate::TickExecutor): one thread, nodes in run order.
    #[default]
    Sequential,
    /// [`ParallelExecutor`](crate::ParallelExecutor): independent nodes of a tick run
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
    /// Waits for any background run in flight (the end of an episode), so
    /// what the nodes counted is complete, without finishing them. The
    /// default has nothing in flight.
    fn settle(&mut self) -> Result<()> {
        Ok(())
    }
    /// Calls `f` with node `name` (to read a concrete node's state through
    /// [`Node::as_any`]); returns false if there is no such node.
    fn inspect(&self, name: &str, f: &mut dyn FnMut(&dyn Node)) -> bool;
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
