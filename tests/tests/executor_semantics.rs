//! Tick semantics shared by the sequential and parallel executors: rates,
//! background nodes, one-tick events, configurator modulation through an
//! edge, and clean shutdown on errors and panics.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ami_config::nodes::{ActorNode, ConfiguratorNode, CostNode};
use ami_core::Shared;
use ami_core::{Actor, Budget, Cost, GoalDistance, Modulation, ScheduleConfigurator};
use ami_graph::*;
use ndarray::{array, Array1, ArrayView1};

const KINDS: [ExecutorKind; 2] = [ExecutorKind::Sequential, ExecutorKind::Parallel];

/// Outputs the tick number.
struct Clock;
impl Node for Clock {
    fn ports(&self) -> NodePorts {
        NodePorts::new().output("t", PortType::Scalar)
    }
    fn tick(&mut self, ctx: &TickContext, _i: &Inputs<'_>, o: &mut Outputs<'_>) -> ami_core::Result<()> {
        o.set_scalar(0, ctx.tick as f64);
        Ok(())
    }
}

/// `y = 10 x`, slowly; fails at tick `fail_at` or panics at `panic_at`.
struct Slow {
    sleep_ms: u64,
    fail_at: Option<u64>,
    panic_at: Option<u64>,
}
impl Node for Slow {
    fn ports(&self) -> NodePorts {
        NodePorts::new().input("x", PortType::Scalar, true).output("y", PortType::Scalar)
    }
    fn tick(&mut self, ctx: &TickContext, i: &Inputs<'_>, o: &mut Outputs<'_>) -> ami_core::Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(self.sleep_ms));
        if self.fail_at == Some(ctx.tick) {
            return Err(ami_core::CoreError::module("slow", "deliberate failure"));
        }
        assert!(self.panic_at != Some(ctx.tick), "deliberate panic");
        o.set_scalar(0, i.scalar_opt(0)?.unwrap_or(-1.0) * 10.0);
        Ok(())
    }
}

/// Copies its input; records that `finish` ran.
struct Sink {
    finished: Arc<AtomicBool>,
}
impl Node for Sink {
    fn ports(&self) -> NodePorts {
        NodePorts::new().input("x", PortType::Scalar, false).output("y", PortType::Scalar)
    }
    fn tick(&mut self, _ctx: &TickContext, i: &Inputs<'_>, o: &mut Outputs<'_>) -> ami_core::Result<()> {
        match i.scalar_opt(0)? {
            Some(v) => o.set_scalar(0, v),
            None => *o.get_mut(0) = Value::Empty,
        }
        Ok(())
    }
    fn finish(&mut self) -> ami_core::Result<()> {
        self.finished.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn slow_graph(rate: u32, background: bool, slow: Slow, finished: Arc<AtomicBool>) -> Graph {
    let mut b = GraphBuilder::new();
    b.add_node("clock", Clock);
    b.add_node("slow", slow);
    b.add_node("sink", Sink { finished });
    b.set_rate("slow", rate).set_background("slow", background);
    b.connect("clock.t", "slow.x");
    b.connect("slow.y", "sink.x");
    b.build().unwrap()
}

fn sink_values(exec: &mut dyn Executor, ticks: u64) -> Vec<Option<f64>> {
    exec.reset(7).unwrap();
    (0..ticks)
        .map(|_| {
            exec.tick().unwrap();
            exec.output("sink", "y").and_then(Value::as_scalar)
        })
        .collect()
}

#[test]
fn a_background_node_publishes_rate_ticks_later_in_both_executors() {
    let expect: Vec<Option<f64>> = vec![None, None, None, Some(0.0), Some(0.0), Some(0.0), Some(30.0), Some(30.0), Some(30.0), Some(60.0)];
    for kind in KINDS {
        let g = slow_graph(3, true, Slow { sleep_ms: 2, fail_at: None, panic_at: None }, Arc::default());
        assert!(g.levels()[0].contains(&"sink"), "edges out of a background node impose no order");
        let mut exec = executor(g, kind);
        assert_eq!(sink_values(exec.as_mut(), 10), expect, "{kind}");
        // A second episode starts clean (the run in flight is discarded).
        assert_eq!(sink_values(exec.as_mut(), 10), expect, "{kind}");
    }
    // Not in the background: a rate-3 node's output is visible on its tick.
    for kind in KINDS {
        let mut exec = executor(slow_graph(3, false, Slow { sleep_ms: 0, fail_at: None, panic_at: None }, Arc::default()), kind);
        let v = sink_values(exec.as_mut(), 7);
        assert_eq!(v, [0.0, 0.0, 0.0, 30.0, 30.0, 30.0, 60.0].map(Some), "{kind}");
    }
}

#[test]
fn errors_and_panics_finish_every_node_and_name_the_failing_one() {
    for kind in KINDS {
        for (background, fail, panic) in [(false, Some(4), None), (true, Some(3), None), (false, None, Some(2)), (true, None, Some(0))] {
            if panic.is_some() && kind == ExecutorKind::Sequential {
                continue; // the sequential executor runs nodes on the caller's thread
            }
            let finished = Arc::new(AtomicBool::new(false));
            let g = slow_graph(if background { 3 } else { 1 }, background, Slow { sleep_ms: 0, fail_at: fail, panic_at: panic }, finished.clone());
            let mut exec = executor(g, kind);
            exec.reset(0).unwrap();
            let err = (0..20).find_map(|_| exec.tick().err()).expect("the node fails");
            let msg = err.to_string();
            assert!(msg.contains("node `slow` failed at tick"), "{kind}: {msg}");
            assert!(finished.load(Ordering::SeqCst), "{kind}: every node's finish ran");
            drop(exec); // joins the threads (the test would hang otherwise)
        }
    }
}

/// Sends one modulation every run.
struct Talker;
impl Node for Talker {
    fn ports(&self) -> NodePorts {
        NodePorts::new().output("m", PortType::Modulation)
    }
    fn tick(&mut self, ctx: &TickContext, _i: &Inputs<'_>, o: &mut Outputs<'_>) -> ami_core::Result<()> {
        o.set_modulations(0, vec![Modulation::Horizon(ctx.tick as usize + 1)]);
        Ok(())
    }
}

/// Counts the modulations it receives, on an instant and a delayed input.
struct Listener(Arc<Mutex<Vec<(u64, usize, usize)>>>);
impl Node for Listener {
    fn ports(&self) -> NodePorts {
        NodePorts::new().input("now", PortType::Modulation, false).input("later", PortType::Modulation, false)
    }
    fn tick(&mut self, ctx: &TickContext, i: &Inputs<'_>, _o: &mut Outputs<'_>) -> ami_core::Result<()> {
        self.0.lock().unwrap().push((ctx.tick, i.modulations(0)?.len(), i.modulations(1)?.len()));
        Ok(())
    }
}

#[test]
fn events_are_delivered_on_one_tick_only() {
    for kind in KINDS {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut b = GraphBuilder::new();
        b.add_node("talker", Talker);
        b.add_node("listener", Listener(log.clone()));
        b.set_rate("talker", 3);
        b.connect("talker.m", "listener.now");
        b.connect_delayed("talker.m", "listener.later");
        let mut exec = executor(b.build().unwrap(), kind);
        exec.reset(0).unwrap();
        for _ in 0..7 {
            exec.tick().unwrap();
        }
        let got = log.lock().unwrap().clone();
        assert_eq!(got, vec![(0, 1, 0), (1, 0, 1), (2, 0, 0), (3, 1, 0), (4, 0, 1), (5, 0, 0), (6, 1, 0)], "{kind}");
    }
}

/// An actor that records what it sees: the goal weight, the goal, and the
/// budget the configurator sent.
type Seen = Arc<Mutex<Vec<(f32, Option<Vec<f32>>, usize)>>>;

struct Probe {
    seen: Seen,
    iterations: usize,
}
impl Actor for Probe {
    fn action_dim(&self) -> usize {
        1
    }
    fn reset(&mut self, _seed: u64) {}
    fn act(&mut self, _state: ArrayView1<'_, f32>, cost: &Cost) -> ami_core::Result<Array1<f32>> {
        self.seen.lock().unwrap().push((cost.weight("goal").unwrap(), cost.goal().map(|g| g.to_vec()), self.iterations));
        Ok(array![0.0])
    }
    fn modulate(&mut self, m: &Modulation) -> ami_core::Result<()> {
        if let Modulation::Budget(b) = m {
            self.iterations = b.iterations;
        }
        Ok(())
    }
}

/// A constant state.
struct Const;
impl Node for Const {
    fn ports(&self) -> NodePorts {
        NodePorts::new().output("s", PortType::State).output("a", PortType::Action)
    }
    fn tick(&mut self, _ctx: &TickContext, _i: &Inputs<'_>, o: &mut Outputs<'_>) -> ami_core::Result<()> {
        o.set_vector(0, array![1.0f32].view());
        o.set_vector(1, array![0.0f32].view());
        Ok(())
    }
}

#[test]
fn configurator_modulation_reaches_cost_and_planner_through_an_edge() {
    for kind in KINDS {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cost = || {
            let mut c = Cost::new();
            c.add_intrinsic(Arc::new(GoalDistance::new(1)), 1.0).unwrap();
            Shared::of(c)
        };
        let schedule = ScheduleConfigurator::new(vec![
            (3, Modulation::CostWeight { term: "goal".into(), weight: 0.5 }),
            (3, Modulation::Goal(Some(vec![5.0]))),
            (3, Modulation::Budget(Budget::iterations(2))),
        ]);
        let mut b = GraphBuilder::new();
        b.add_node("world", Const);
        b.add_node("configurator", ConfiguratorNode::new(Box::new(schedule)));
        b.add_node("actor", ActorNode::new(Box::new(Probe { seen: seen.clone(), iterations: 6 }), cost()));
        b.add_node("cost", CostNode::new(cost()));
        b.connect("world.s", "configurator.state");
        b.connect("world.s", "actor.state");
        b.connect("world.s", "cost.state");
        b.connect_delayed("world.s", "cost.prev_state");
        b.connect_delayed("world.a", "cost.prev_action");
        b.connect("configurator.modulation", "actor.modulation");
        b.connect("configurator.modulation", "cost.modulation");
        let mut exec = executor(b.build().unwrap(), kind);
        exec.reset(0).unwrap();
        let mut costs = Vec::new();
        for _ in 0..5 {
            exec.tick().unwrap();
            costs.push(exec.output("cost", "cost").and_then(Value::as_scalar));
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[2], (1.0, None, 6), "{kind}: before the change");
        for s in &seen[3..] {
            assert_eq!(*s, (0.5, Some(vec![5.0]), 2), "{kind}: the change is visible from the tick it is sent");
        }
        // The cost node's own copy: ||1 - 0||^2 = 1, then 0.5 * (1 - 5)^2 = 8.
        assert_eq!(costs, vec![None, Some(1.0), Some(1.0), Some(8.0), Some(8.0)], "{kind}");
    }
}

/// Four independent nodes in one level, each counting its runs (and its
/// runs on a pool thread), slow enough to be worth handing off.
struct Count(Arc<AtomicUsize>, Arc<AtomicUsize>);
impl Node for Count {
    fn ports(&self) -> NodePorts {
        NodePorts::new().input("x", PortType::Scalar, true).output("y", PortType::Scalar)
    }
    fn tick(&mut self, _ctx: &TickContext, i: &Inputs<'_>, o: &mut Outputs<'_>) -> ami_core::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if std::thread::current().name().is_some_and(|n| n.starts_with("ami-exec")) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(std::time::Duration::from_micros(40));
        o.set_scalar(0, i.scalar_opt(0)?.unwrap_or(0.0) + 1.0);
        Ok(())
    }
}

#[test]
fn wide_levels_run_on_the_pool_with_the_same_results() {
    let pooled = Arc::new(AtomicUsize::new(0));
    let build = |runs: &Arc<AtomicUsize>| {
        let mut b = GraphBuilder::new();
        b.add_node("clock", Clock);
        for k in 0..4 {
            b.add_node(&format!("n{k}"), Count(runs.clone(), pooled.clone()));
            b.connect("clock.t", &format!("n{k}.x"));
        }
        b.build().unwrap()
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let mut par = ParallelExecutor::with_threads(build(&runs), 3);
    assert_eq!(par.threads(), 3);
    let mut seq = TickExecutor::new(build(&runs));
    Executor::reset(&mut par, 0).unwrap();
    seq.reset(0).unwrap();
    for _ in 0..50 {
        Executor::tick(&mut par).unwrap();
        seq.tick().unwrap();
        for k in 0..4 {
            let n = format!("n{k}");
            assert_eq!(Executor::output(&par, &n, "y").unwrap(), seq.output(&n, "y").unwrap());
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2 * 4 * 50);
    assert!(pooled.load(Ordering::SeqCst) > 50, "slow nodes of one level run on the pool threads");
}

#[test]
fn dot_shows_rates_background_and_delayed_edges() {
    let g = slow_graph(3, true, Slow { sleep_ms: 0, fail_at: None, panic_at: None }, Arc::default());
    let dot = g.to_dot();
    assert!(dot.contains("every 3 ticks") && dot.contains("background"), "{dot}");
    assert!(dot.contains("\"clock\":\"o_t\" -> \"slow\":\"i_x\""), "{dot}");
}
