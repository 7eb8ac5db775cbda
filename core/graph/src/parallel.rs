//! The parallel executor: the nodes of one level run concurrently on a
//! small pool of persistent threads, background nodes on their own threads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{bounded, Receiver, Sender};

use crate::exec::{clear_events, publishes_at, runs_at, Executor, ExecutorKind};
use crate::graph::{Graph, OutEdge};
use crate::node::{Node, TickContext};
use crate::value::{Binding, Inputs, Outputs, Value};
use ami_core::error::{CoreError, Result};
use ami_core::rng::derive_seed;

/// A node with its own input and output buffers. Only the thread running
/// the node touches its slot while it runs; the coordinating thread copies
/// values between slots when no node reading or writing them runs.
struct Slot {
    node: Box<dyn Node>,
    inputs: Vec<Value>,
    outputs: Vec<Value>,
}

struct Shared {
    slots: Vec<Mutex<Slot>>,
    names: Vec<String>,
    input_names: Vec<Vec<String>>,
    /// Every input bound to the slot's own input buffer (or unconnected).
    local_bindings: Vec<Vec<Binding>>,
    event_ports: Vec<Vec<usize>>,
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Runs node `i` and measures it (nanoseconds).
    fn run_timed(&self, i: usize, ctx: &TickContext) -> (Result<()>, f64) {
        let t0 = Instant::now();
        let r = self.run(i, ctx);
        (r, t0.elapsed().as_nanos() as f64)
    }

    /// Runs node `i` for one tick; a panic is turned into an error.
    fn run(&self, i: usize, ctx: &TickContext) -> Result<()> {
        let mut guard = lock(&self.slots[i]);
        let Slot { node, inputs, outputs } = &mut *guard;
        clear_events(outputs, &self.event_ports[i]);
        let res = catch_unwind(AssertUnwindSafe(|| {
            let view = Inputs {
                node: &self.names[i],
                names: &self.input_names[i],
                bindings: &self.local_bindings[i],
                current: std::slice::from_ref(inputs),
                previous: &[],
            };
            node.tick(ctx, &view, &mut Outputs { values: outputs })
        }));
        match res {
            Ok(r) => r,
            Err(p) => {
                let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
                Err(CoreError::module(&self.names[i], format!("panicked: {msg}")))
            }
        }
    }
}

/// Least work (ns per tick, running mean) that a level must move off the
/// coordinating thread before its nodes are handed to the pool.
const DISPATCH_MIN_NS: f64 = 20_000.0;

enum Job {
    Run(usize, TickContext),
    Stop,
}

struct Worker {
    jobs: Sender<Job>,
    handle: Option<JoinHandle<()>>,
}

/// What a worker reports: the node, its result, and how long it ran (ns).
type Done = (usize, Result<()>, f64);

fn spawn_worker(name: String, shared: Arc<Shared>, done: Sender<Done>, capacity: usize) -> Worker {
    let (tx, rx): (Sender<Job>, Receiver<Job>) = bounded(capacity.max(1));
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            while let Ok(Job::Run(i, ctx)) = rx.recv() {
                let (r, ns) = shared.run_timed(i, &ctx);
                if done.send((i, r, ns)).is_err() {
                    break;
                }
            }
        })
        .ok();
    Worker { jobs: tx, handle }
}

/// A background node's thread and the run it may have in flight.
struct Background {
    worker: Worker,
    done: Receiver<Done>,
    /// The tick of the run in flight, if any.
    in_flight: Option<u64>,
    /// Inputs gathered by the coordinating thread while the node runs,
    /// handed to the node when its next run starts.
    staged: Vec<Value>,
}

/// The parallel executor (crossbeam): within a tick, the nodes of one level
/// of the graph (no instant edge between them) run concurrently on a pool of
/// persistent threads; a background node runs on its own thread and its
/// outputs are published `rate` ticks later, so the fast loop waits for it
/// only then.
///
/// A level's nodes are handed to the pool only when the work that would
/// leave the calling thread (running mean of the nodes' run times) exceeds
/// the cost of the hand-off (about 20 µs); cheaper levels run inline, so a
/// graph of trivial nodes pays no thread hand-offs.
///
/// Values move through bounded channels and per-node buffers; the results
/// are bit-identical to [`crate::TickExecutor`]'s for the same graph and
/// seed. A node error (or panic) ends the tick after the running level
/// finishes; every node's `finish` is then called. Dropping the executor
/// stops and joins its threads.
pub struct ParallelExecutor {
    shared: Arc<Shared>,
    rates: Vec<u32>,
    background: Vec<bool>,
    levels: Vec<Vec<usize>>,
    out_edges: Vec<Vec<OutEdge>>,
    delayed: Vec<(usize, OutEdge)>,
    event_ports: Vec<Vec<usize>>,
    output_names: Vec<Vec<String>>,
    /// The outputs as the rest of the graph sees them.
    visible: Vec<Vec<Value>>,
    pool: Vec<Worker>,
    pool_done: Receiver<Done>,
    /// Running mean of each node's run time (ns), to decide whether handing
    /// a node to another thread pays off.
    cost_ns: Vec<f64>,
    bg: Vec<Option<Background>>,
    runnable: Vec<usize>,
    tick: u64,
    seed: u64,
    finished: bool,
}

impl ParallelExecutor {
    /// An executor for a validated graph, with as many pool threads as the
    /// widest level needs (at most the available parallelism minus one).
    pub fn new(graph: Graph) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let widest = graph.levels.iter().map(|l| l.iter().filter(|&&i| !graph.background[i]).count()).max().unwrap_or(0);
        Self::with_threads(graph, widest.saturating_sub(1).min(cpus.saturating_sub(1).max(1)))
    }

    /// An executor with `threads` pool threads (0: levels run on the calling
    /// thread; background nodes still get their own threads).
    pub fn with_threads(graph: Graph, threads: usize) -> Self {
        let Graph { names, nodes, ports, rates, background, bindings, input_names, levels, out_edges, event_ports, .. } = graph;
        let n_nodes = names.len();
        let local_bindings: Vec<Vec<Binding>> = bindings
            .iter()
            .map(|b| {
                b.iter().enumerate().map(|(k, b)| if matches!(b, Binding::None) { Binding::None } else { Binding::Current { node: 0, port: k } }).collect()
            })
            .collect();
        let slots = nodes
            .into_iter()
            .zip(&ports)
            .map(|(node, p)| Mutex::new(Slot { node, inputs: vec![Value::Empty; p.inputs.len()], outputs: vec![Value::Empty; p.outputs.len()] }))
            .collect();
        let shared = Arc::new(Shared { slots, names: names.clone(), input_names, local_bindings, event_ports: event_ports.clone() });
        let width = levels.iter().map(Vec::len).max().unwrap_or(1);
        let (done_tx, pool_done) = bounded(width.max(1));
        let pool = (0..threads).map(|k| spawn_worker(format!("ami-exec-{k}"), shared.clone(), done_tx.clone(), width)).collect();
        let bg = (0..names.len())
            .map(|i| {
                background[i].then(|| {
                    let (tx, rx) = bounded(1);
                    Background {
                        worker: spawn_worker(format!("ami-bg-{}", names[i]), shared.clone(), tx, 1),
                        done: rx,
                        in_flight: None,
                        staged: vec![Value::Empty; ports[i].inputs.len()],
                    }
                })
            })
            .collect();
        let delayed = out_edges.iter().enumerate().flat_map(|(i, es)| es.iter().filter(|e| e.delayed).map(move |e| (i, *e))).collect();
        let visible = ports.iter().map(|p| vec![Value::Empty; p.outputs.len()]).collect();
        let output_names = ports.iter().map(|p| p.outputs.iter().map(|s| s.name.clone()).collect()).collect();
        Self {
            shared,
            rates,
            background,
            levels,
            out_edges,
            delayed,
            event_ports,
            output_names,
            visible,
            pool,
            pool_done,
            cost_ns: vec![0.0; n_nodes],
            bg,
            runnable: Vec::with_capacity(width),
            tick: 0,
            seed: 0,
            finished: false,
        }
    }

    /// Number of pool threads.
    pub fn threads(&self) -> usize {
        self.pool.len()
    }

    fn node_error(&self, i: usize, tick: u64, e: CoreError) -> CoreError {
        CoreError::Node { node: self.shared.names[i].clone(), tick, source: Box::new(e) }
    }

    /// Writes `value` into input `input` of node `node` (its slot, or its
    /// staging buffer for a background node).
    fn deliver(shared: &Shared, bg: &mut [Option<Background>], node: usize, input: usize, value: &Value) {
        match &mut bg[node] {
            Some(b) => b.staged[input].copy_from(value),
            None => lock(&shared.slots[node]).inputs[input].copy_from(value),
        }
    }

    /// Copies node `i`'s visible outputs to the inputs its instant edges feed.
    fn propagate(&mut self, i: usize) {
        for e in &self.out_edges[i] {
            if !e.delayed {
                Self::deliver(&self.shared, &mut self.bg, e.node, e.input, &self.visible[i][e.port]);
            }
        }
    }

    /// Copies node `i`'s slot outputs to its visible outputs and on.
    fn publish(&mut self, i: usize) {
        {
            let slot = lock(&self.shared.slots[i]);
            for (dst, src) in self.visible[i].iter_mut().zip(&slot.outputs) {
                dst.copy_from(src);
            }
        }
        self.propagate(i);
    }

    /// Waits for background node `i`'s run in flight, if any.
    fn await_background(&mut self, i: usize) -> Option<(u64, Result<()>)> {
        let b = self.bg[i].as_mut()?;
        let tick = b.in_flight.take()?;
        let r = match b.done.recv() {
            Ok((_, r, _)) => r,
            Err(_) => Err(CoreError::module(&self.shared.names[i], "background thread ended unexpectedly")),
        };
        Some((tick, r))
    }

    /// Waits for every background run in flight; returns the first error.
    fn drain_background(&mut self) -> Result<()> {
        let mut first = None;
        for i in 0..self.bg.len() {
            if let Some((t, Err(e))) = self.await_background(i) {
                first.get_or_insert(self.node_error(i, t, e));
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn update_cost(&mut self, i: usize, ns: f64) {
        let c = &mut self.cost_ns[i];
        *c = if *c == 0.0 { ns } else { 0.9 * *c + 0.1 * ns };
    }

    /// Runs node `i` on this thread, measuring it.
    fn measured(&mut self, i: usize, ctx: &TickContext) -> Result<()> {
        let (r, ns) = self.shared.run_timed(i, ctx);
        self.update_cost(i, ns);
        r
    }

    fn fail(&mut self, err: CoreError) -> Result<()> {
        let _ = self.finish_inner();
        Err(err)
    }

    fn tick_inner(&mut self) -> Result<()> {
        let ctx = TickContext { tick: self.tick, seed: self.seed };
        // Start of tick: publish background results that are due, empty the
        // events of everything else.
        for i in 0..self.visible.len() {
            if self.background[i] && publishes_at(self.rates[i], self.tick) {
                if let Some((t, Err(e))) = self.await_background(i) {
                    let err = self.node_error(i, t, e);
                    return self.fail(err);
                }
                self.publish(i);
            } else if self.event_ports[i].iter().any(|&p| matches!(&self.visible[i][p], Value::Modulations(m) if !m.is_empty())) {
                clear_events(&mut self.visible[i], &self.event_ports[i]);
                self.propagate(i);
            }
        }
        for l in 0..self.levels.len() {
            self.runnable.clear();
            for k in 0..self.levels[l].len() {
                let i = self.levels[l][k];
                if !runs_at(self.rates[i], self.tick) {
                    continue;
                }
                if let Some(b) = self.bg[i].as_mut() {
                    // Hand the node its inputs and start its run.
                    {
                        let mut slot = lock(&self.shared.slots[i]);
                        for (dst, src) in slot.inputs.iter_mut().zip(&b.staged) {
                            dst.copy_from(src);
                        }
                    }
                    if b.worker.jobs.send(Job::Run(i, ctx)).is_err() {
                        let err = self.node_error(i, self.tick, CoreError::module(&self.shared.names[i], "background thread ended unexpectedly"));
                        return self.fail(err);
                    }
                    b.in_flight = Some(self.tick);
                } else {
                    self.runnable.push(i);
                }
            }
            let n = self.runnable.len();
            if n == 0 {
                continue;
            }
            let mut first: Option<(usize, CoreError)> = None;
            let note = |first: &mut Option<(usize, CoreError)>, pos: usize, e: CoreError| {
                if first.as_ref().is_none_or(|(p, _)| pos < *p) {
                    *first = Some((pos, e));
                }
            };
            let mut sent = 0;
            // Hand nodes to the pool only when the work moved off this
            // thread outweighs the cost of the hand-off (a few microseconds).
            let (total, max) = self.runnable.iter().fold((0.0, 0.0f64), |(t, m), &i| (t + self.cost_ns[i], m.max(self.cost_ns[i])));
            let dispatch = !self.pool.is_empty() && n > 1 && total - max >= DISPATCH_MIN_NS;
            if dispatch {
                for (k, &i) in self.runnable[1..].iter().enumerate() {
                    if self.pool[k % self.pool.len()].jobs.send(Job::Run(i, ctx)).is_ok() {
                        sent += 1;
                    } else {
                        note(&mut first, k + 1, CoreError::module(&self.shared.names[i], "executor thread ended unexpectedly"));
                    }
                }
            } else {
                for k in 1..n {
                    let i = self.runnable[k];
                    let r = if n > 1 { self.measured(i, &ctx) } else { self.shared.run(i, &ctx) };
                    if let Err(e) = r {
                        note(&mut first, k, e);
                    }
                }
            }
            let i0 = self.runnable[0];
            let r0 = if n > 1 { self.measured(i0, &ctx) } else { self.shared.run(i0, &ctx) };
            if let Err(e) = r0 {
                note(&mut first, 0, e);
            }
            for _ in 0..sent {
                match self.pool_done.recv() {
                    Ok((i, r, ns)) => {
                        self.update_cost(i, ns);
                        if let Err(e) = r {
                            let pos = self.runnable.iter().position(|&x| x == i).unwrap_or(usize::MAX);
                            note(&mut first, pos, e);
                        }
                    }
                    Err(_) => note(&mut first, usize::MAX, CoreError::module("executor", "a pool thread ended unexpectedly")),
                }
            }
            if let Some((pos, e)) = first {
                let i = self.runnable.get(pos).copied().unwrap_or(self.runnable[0]);
                let err = self.node_error(i, self.tick, e);
                return self.fail(err);
            }
            for k in 0..n {
                let i = self.runnable[k];
                self.publish(i);
            }
        }
        // End of tick: delayed edges carry this tick's values to the next.
        for k in 0..self.delayed.len() {
            let (i, e) = self.delayed[k];
            Self::deliver(&self.shared, &mut self.bg, e.node, e.input, &self.visible[i][e.port]);
        }
        self.tick += 1;
        Ok(())
    }

    fn finish_inner(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let mut first = self.drain_background().err();
        for (i, slot) in self.shared.slots.iter().enumerate() {
            let mut s = lock(slot);
            let r = catch_unwind(AssertUnwindSafe(|| s.node.finish())).unwrap_or_else(|_| Err(CoreError::module(&self.shared.names[i], "panicked in finish")));
            if let Err(e) = r {
                first.get_or_insert(CoreError::Node { node: self.shared.names[i].clone(), tick: self.tick, source: Box::new(e) });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Executor for ParallelExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Parallel
    }
    fn node_names(&self) -> &[String] {
        &self.shared.names
    }
    fn settle(&mut self) -> Result<()> {
        self.drain_background()
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        // A run still in flight belongs to the previous episode.
        let _ = self.drain_background();
        for v in &mut self.visible {
            v.iter_mut().for_each(|x| *x = Value::Empty);
        }
        for b in self.bg.iter_mut().flatten() {
            b.staged.iter_mut().for_each(|x| *x = Value::Empty);
        }
        self.tick = 0;
        self.seed = seed;
        self.finished = false;
        for (i, slot) in self.shared.slots.iter().enumerate() {
            let mut guard = lock(slot);
            let s = &mut *guard;
            s.inputs.iter_mut().chain(s.outputs.iter_mut()).for_each(|x| *x = Value::Empty);
            let name = &self.shared.names[i];
            s.node.reset(derive_seed(seed, name)).map_err(|e| CoreError::Node { node: name.clone(), tick: 0, source: Box::new(e) })?;
        }
        Ok(())
    }
    fn tick(&mut self) -> Result<()> {
        self.tick_inner()
    }
    fn ticks(&self) -> u64 {
        self.tick
    }
    fn output_index(&self, node: &str, port: &str) -> Option<(usize, usize)> {
        let i = self.shared.names.iter().position(|n| n == node)?;
        Some((i, self.output_names[i].iter().position(|p| p == port)?))
    }
    fn output_at(&self, node: usize, port: usize) -> Option<&Value> {
        self.visible.get(node)?.get(port)
    }
    fn finish(&mut self) -> Result<()> {
        self.finish_inner()
    }
    fn inspect(&self, name: &str, f: &mut dyn FnMut(&dyn Node)) -> bool {
        match self.shared.names.iter().position(|n| n == name) {
            Some(i) => {
                let s = lock(&self.shared.slots[i]);
                f(s.node.as_ref());
                true
            }
            None => false,
        }
    }
}

impl Drop for ParallelExecutor {
    fn drop(&mut self) {
        let _ = self.finish_inner();
        let workers = self.pool.iter_mut().chain(self.bg.iter_mut().flatten().map(|b| &mut b.worker));
        let mut handles = Vec::new();
        for w in workers {
            let _ = w.jobs.send(Job::Stop);
            handles.extend(w.handle.take());
        }
        for h in handles {
            let _ = h.join();
        }
    }
}
