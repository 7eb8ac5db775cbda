//! Per-tick overhead of the executors on a 6-node graph of trivial modules
//! (scalar arithmetic): what the graph machinery itself costs per tick.
//!
//! ```text
//! source -> a -> b -> d -> sink
//!             \-> c -/
//! sink.y -> source.x   (delayed)
//! ```
//!
//! Run: `cargo bench -p ami-benches --bench executor`.

use ami_graph::{Executor, GraphBuilder, Inputs, Node, NodePorts, Outputs, ParallelExecutor, PortType, TickContext, TickExecutor};
use criterion::{criterion_group, criterion_main, Criterion};

/// `y = x0 + x1 + 1` on whichever inputs it has.
struct Add {
    inputs: usize,
}

impl Node for Add {
    fn ports(&self) -> NodePorts {
        let mut p = NodePorts::new();
        for k in 0..self.inputs {
            p = p.input(["x0", "x1"][k], PortType::Scalar, false);
        }
        p.output("y", PortType::Scalar)
    }
    fn tick(&mut self, _ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> ami_core::Result<()> {
        let mut s = 1.0;
        for k in 0..self.inputs {
            s += inputs.scalar_opt(k)?.unwrap_or(0.0);
        }
        outputs.set_scalar(0, s % 1000.0);
        Ok(())
    }
}

fn graph() -> ami_graph::Graph {
    let mut b = GraphBuilder::new();
    for (name, inputs) in [("source", 1), ("a", 1), ("b", 1), ("c", 1), ("d", 2), ("sink", 1)] {
        b.add_node(name, Add { inputs });
    }
    b.connect("source.y", "a.x0");
    b.connect("a.y", "b.x0");
    b.connect("a.y", "c.x0");
    b.connect("b.y", "d.x0");
    b.connect("c.y", "d.x1");
    b.connect("d.y", "sink.x0");
    b.connect_delayed("sink.y", "source.x0");
    b.build().expect("valid graph")
}

fn executor_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("executor_tick_6_trivial_nodes");
    let mut seq = TickExecutor::new(graph());
    seq.reset(0).expect("reset");
    group.bench_function("sequential", |b| b.iter(|| seq.tick().expect("tick")));
    let mut par = ParallelExecutor::new(graph());
    Executor::reset(&mut par, 0).expect("reset");
    group.bench_function(format!("parallel_{}_pool_threads", par.threads()), |b| b.iter(|| Executor::tick(&mut par).expect("tick")));
    let mut inline = ParallelExecutor::with_threads(graph(), 0);
    Executor::reset(&mut inline, 0).expect("reset");
    group.bench_function("parallel_0_pool_threads", |b| b.iter(|| Executor::tick(&mut inline).expect("tick")));
    group.finish();
}

criterion_group!(benches, executor_overhead);
criterion_main!(benches);
