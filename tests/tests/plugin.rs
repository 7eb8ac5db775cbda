//! Plugins end to end: build the plugin crates with cargo, load them with
//! dlopen, run them, and check every refusal and the containment of panics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ami_core::{Bounds, Cost, Environment, PlanRequest, Planner, WorldModel};
use ami_planners::{Cem, CemConfig};
use ami_plugin_host::{decl, PluginError, PluginHost, PluginHostConfig};
use ndarray::{Array1, Array2};

fn plugin_dir() -> &'static Path {
    ami_tests::plugin_dir()
}

fn lib(name: &str) -> PathBuf {
    plugin_dir().join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
}

fn host() -> PluginHost {
    PluginHost::new(PluginHostConfig::default())
}

/// A copy of a library with bytes patched, in its own temp dir.
fn patched(name: &str, patch: impl FnOnce(&mut Vec<u8>, usize)) -> (tempfile::TempDir, PathBuf) {
    let src = lib(name);
    let mut bytes = std::fs::read(&src).unwrap();
    let info = decl::read_declaration(&src, &bytes).unwrap();
    let off = info.file_offset.unwrap() as usize;
    patch(&mut bytes, off);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(format!("lib{name}.so"));
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

fn refusal(path: &Path) -> String {
    let e = host().load(path).expect_err("the library must be refused");
    e.to_string()
}

fn batch(n: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut r = seed;
    let mut next = || {
        r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((r >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let mut s = Array2::zeros((n, 6));
    let mut a = Array2::zeros((n, 1));
    for i in 0..n {
        let (t1, t2) = (3.0 * next(), 3.0 * next());
        s.row_mut(i).assign(&ndarray::arr1(&[t1.cos(), t1.sin(), t2.cos(), t2.sin(), 4.0 * next(), 8.0 * next()]));
        a[[i, 0]] = next();
    }
    (s, a)
}

#[test]
fn load_and_run_acrobot() {
    let mut h = host();
    let p = h.load(lib("acrobot")).unwrap();
    assert_eq!(p.name(), "acrobot");
    let names: Vec<&str> = p.modules().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["env", "model", "swingup"]);
    let model = h.world_model("plugin:acrobot/model", "{}").unwrap();
    assert_eq!((model.state_dim(), model.action_dim(), model.latent_dim()), (6, 1, 0));
    assert!(model.differentiable().is_none());
    // Environment and model agree.
    let mut env = h.environment("acrobot/env", "").unwrap();
    assert_eq!(env.action_bounds(), Bounds::new(vec![-1.0], vec![1.0]).unwrap());
    let mut obs = env.reset(4).unwrap();
    let mut next = Array2::zeros((1, 6));
    for i in 0..30 {
        let a = Array1::from(vec![if i % 8 < 4 { 1.0 } else { -1.0 }]);
        model.predict(obs.view().insert_axis(ndarray::Axis(0)), a.view().insert_axis(ndarray::Axis(0)), next.view_mut()).unwrap();
        let st = env.step(a.view()).unwrap();
        for j in 0..6 {
            assert!((next[[0, j]] - st.observation[j]).abs() < 1e-3);
        }
        assert_eq!(st.reward, if st.terminated { 0.0 } else { -1.0 });
        obs = st.observation;
    }
    // Shape errors name the module.
    let e = model.predict(Array2::zeros((2, 5)).view(), Array2::zeros((2, 1)).view(), Array2::zeros((2, 6)).view_mut()).unwrap_err();
    assert!(e.to_string().contains("plugin:acrobot/model"), "{e}");
    // A cost from the plugin, and config errors naming the parameter.
    let cost_term = h.intrinsic_cost("acrobot/swingup", r#"{"velocity_weight": 0.5}"#).unwrap();
    let e = h.intrinsic_cost("acrobot/swingup", r#"{"bogus": 1}"#).unwrap_err().to_string();
    assert!(e.contains("unknown parameter `bogus`") && e.contains("height_weight"), "{e}");
    let e = h.intrinsic_cost("acrobot/swingup", r#"{"height_weight": "x"}"#).unwrap_err().to_string();
    assert!(e.contains("parameter `height_weight`: expected a number, found string"), "{e}");
    let e = h.world_model("acrobot/swingup", "{}").unwrap_err().to_string();
    assert!(e.contains("is a intrinsic_cost, expected a world_model"), "{e}");
    let e = h.world_model("acrobot/nope", "{}").unwrap_err().to_string();
    assert!(e.contains("has no module `nope`") && e.contains("model (world_model)"), "{e}");
    // Plan with CEM through the plugin model and cost, then with the plugin planner.
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(cost_term), 1.0).unwrap();
    let state = env.reset(1).unwrap();
    let mut cem =
        Cem::new(CemConfig { horizon: 10, samples: 64, iterations: 3, elites: Some(8), ..CemConfig::default() }, env.action_bounds().clone()).unwrap();
    cem.reset(0);
    let plan = cem.plan(&PlanRequest::new(&model, &cost, state.view())).unwrap();
    assert!(plan.energy.is_finite());
    h.load(lib("sampling")).unwrap();
    let mut ps = h.planner("sampling/predictive", r#"{"horizon": 12, "samples": 32}"#, env.action_bounds().clone()).unwrap();
    assert_eq!((ps.name(), ps.horizon(), ps.action_dim()), ("plugin:sampling/predictive", 12, 1));
    ps.reset(3);
    let p1 = ps.plan(&PlanRequest::new(&model, &cost, state.view())).unwrap();
    assert_eq!(p1.actions.dim(), (12, 1));
    assert!(p1.energy.is_finite() && p1.iterations == 4 && p1.evaluated == 128, "{p1:?}");
    ps.set_horizon(5).unwrap();
    assert_eq!(ps.horizon(), 5);
    assert!(ps.set_horizon(0).unwrap_err().to_string().contains("horizon must be at least 1"));
    // Same seed, same plan.
    let mut ps2 = h.planner("sampling/predictive", r#"{"horizon": 12, "samples": 32}"#, env.action_bounds().clone()).unwrap();
    ps2.reset(3);
    assert_eq!(ps2.plan(&PlanRequest::new(&model, &cost, state.view())).unwrap().actions, p1.actions);
}

#[test]
fn static_and_dynamic_plugins_give_bit_identical_results() {
    let mut dynamic = host();
    dynamic.load(lib("acrobot")).unwrap();
    let mut stat = host();
    stat.load_static(acrobot::ami_plugin_decl()).unwrap();
    let md = dynamic.world_model("acrobot/model", "{}").unwrap();
    let ms = stat.world_model("acrobot/model", "{}").unwrap();
    let (s, a) = batch(257, 11);
    let (mut nd, mut ns, mut nr) = (Array2::zeros((257, 6)), Array2::zeros((257, 6)), Array2::zeros((257, 6)));
    md.predict(s.view(), a.view(), nd.view_mut()).unwrap();
    ms.predict(s.view(), a.view(), ns.view_mut()).unwrap();
    // The module called directly, without any ABI.
    use ami_plugin_abi::{Tensor, TensorMut, WorldModel as _};
    acrobot::AcrobotModel
        .predict(
            Tensor::from_slice(s.as_slice().unwrap(), 257, 6).unwrap(),
            Tensor::from_slice(a.as_slice().unwrap(), 257, 1).unwrap(),
            None,
            TensorMut::from_slice(nr.as_slice_mut().unwrap(), 257, 6).unwrap(),
        )
        .unwrap();
    let bits = |x: &Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&nd), bits(&ns));
    assert_eq!(bits(&nd), bits(&nr));
    // Non-contiguous inputs are copied, with the same result.
    // Rows further apart than their width are passed as they are; a
    // column-major view is copied first. Same results either way.
    let wide = ndarray::concatenate(ndarray::Axis(1), &[s.view(), s.view()]).unwrap();
    let strided = wide.slice(ndarray::s![.., 0..6]);
    let transposed = s.t().as_standard_layout().into_owned();
    let column_major = transposed.t();
    assert_eq!(column_major.strides(), &[1, 257]);
    let mut n1 = Array2::zeros((257, 6));
    let mut n2 = Array2::zeros((6, 257));
    md.predict(strided, a.view(), n1.view_mut()).unwrap();
    md.predict(column_major, a.view(), n2.view_mut().reversed_axes()).unwrap();
    assert_eq!(bits(&n1), bits(&nd));
    assert_eq!(bits(&n2.t().to_owned()), bits(&nd));
    // Whole episodes: same returns through either path.
    let run = |h: &mut PluginHost| {
        let mut env = h.environment("acrobot/env", "{}").unwrap();
        let mut traj: Vec<u32> = env.reset(5).unwrap().iter().map(|v| v.to_bits()).collect();
        let mut total = 0.0;
        for i in 0..100 {
            let st = env.step(Array1::from(vec![((i as f32) * 0.3).sin()]).view()).unwrap();
            total += st.reward;
            traj.extend(st.observation.iter().map(|v| v.to_bits()));
        }
        (total, traj)
    };
    assert_eq!(run(&mut dynamic), run(&mut stat));
    // A second copy of the same plugin name is refused.
    let e = stat.load(lib("acrobot")).unwrap_err().to_string();
    assert!(e.contains("plugin `acrobot`") && e.contains("already loaded"), "{e}");
}

#[test]
fn incompatible_libraries_are_refused_with_expected_and_found() {
    // Wrong magic.
    let (_d, p) = patched("acrobot", |b, o| b[o..o + 8].copy_from_slice(b"NOTAPLUG"));
    let e = refusal(&p);
    assert!(e.contains("incompatible magic: expected \"AMIPLUG\\x00\", found \"NOTAPLUG\""), "{e}");
    // Wrong ABI major.
    let (_d, p) = patched("acrobot", |b, o| b[o + 8..o + 10].copy_from_slice(&2u16.to_ne_bytes()));
    let e = refusal(&p);
    assert!(e.contains("incompatible ABI major version: expected 1") && e.contains("found 2"), "{e}");
    // A newer minor.
    let (_d, p) = patched("acrobot", |b, o| b[o + 10..o + 12].copy_from_slice(&7u16.to_ne_bytes()));
    let e = refusal(&p);
    assert!(e.contains("incompatible ABI minor version: expected at most 0") && e.contains("found 7") && e.contains("needs a newer ami"), "{e}");
    // A declaration smaller than this ABI's.
    let (_d, p) = patched("acrobot", |b, o| b[o + 12..o + 16].copy_from_slice(&100u32.to_ne_bytes()));
    let e = refusal(&p);
    assert!(e.contains("incompatible declaration size: expected at least 232 bytes, found 100 bytes"), "{e}");
    // Layout hash mismatch.
    let (_d, p) = patched("acrobot", |b, o| b[o + 16] ^= 0xff);
    let e = refusal(&p);
    assert!(e.contains("incompatible layout hash: expected 0x") && e.contains("modified ABI crate"), "{e}");
    // Another target.
    let (_d, p) = patched("acrobot", |b, o| b[o + 128..o + 134].copy_from_slice(b"mips64"));
    let e = refusal(&p);
    assert!(e.contains("incompatible target: expected x86_64-") && e.contains("found mips64"), "{e}");
    // panic = "abort": refused, or accepted with a warning when allowed.
    let (_d, p) = patched("acrobot", |b, o| b[o + 24] &= !1);
    let e = refusal(&p);
    assert!(e.contains("incompatible panic strategy: expected unwind") && e.contains("found abort"), "{e}");
    let mut lenient = PluginHost::new(PluginHostConfig { allow_panic_abort: true, ..Default::default() });
    lenient.load(&p).unwrap();
    assert!(lenient.warnings()[0].contains("panic = \"abort\""), "{:?}", lenient.warnings());
    // A shared library that is not a plugin: the same file with its symbol renamed.
    let (_d, p) = patched("acrobot", |b, _| {
        let at = b.windows(23).position(|w| w == b"AMI_PLUGIN_DECL_acrobot").unwrap();
        b[at + 14] = b'X';
    });
    let e = refusal(&p);
    assert!(e.contains("not an ami plugin: it exports no symbol `AMI_PLUGIN_DECL_<name>`"), "{e}");
    // Truncated file.
    let (_d, p) = patched("acrobot", |b, _| b.truncate(b.len() / 3));
    let e = refusal(&p);
    assert!(e.contains("not a loadable shared library") && e.contains("truncated"), "{e}");
    // Not an object file at all, and a missing file.
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("libjunk.so");
    std::fs::write(&junk, b"#!/bin/sh\necho hi\n").unwrap();
    let e = refusal(&junk);
    assert!(e.contains("libjunk.so: not a loadable shared library"), "{e}");
    let e = refusal(&d.path().join("libmissing.so"));
    assert!(e.contains("libmissing.so: cannot read the file"), "{e}");
    let e = host().load("nosuchplugin").unwrap_err().to_string();
    assert!(e.contains("plugin `nosuchplugin` is not loaded and no library for it was found"), "{e}");
}

#[test]
fn sha256_pins_are_enforced() {
    let path = lib("acrobot");
    let digest = {
        let mut h = host();
        h.load(&path).unwrap().info().sha256.clone().unwrap()
    };
    let mut ok = host();
    ok.pin("acrobot", digest.to_uppercase());
    ok.load(&path).unwrap();
    let mut bad = host();
    bad.pin(path.to_string_lossy(), "0".repeat(64));
    let e = bad.load(&path).unwrap_err().to_string();
    assert!(e.contains(&format!("SHA-256 mismatch: expected {}, found {digest}", "0".repeat(64))), "{e}");
    let mut malformed = host();
    malformed.pin("acrobot", "xyz");
    let e = malformed.load(&path).unwrap_err();
    assert!(matches!(e, PluginError::BadPin { .. }), "{e}");
    // By name through a search path.
    let mut by_name = PluginHost::new(PluginHostConfig { search_paths: vec![plugin_dir().to_path_buf()], ..Default::default() });
    by_name.pin("acrobot", "1".repeat(64));
    assert!(by_name.world_model("plugin:acrobot/model", "{}").unwrap_err().to_string().contains("SHA-256 mismatch"));
}

#[test]
fn a_panicking_module_is_contained_and_poisoned() {
    let mut h = host();
    h.load(lib("testkit")).unwrap();
    let m = h.world_model("testkit/panicky", r#"{"dim": 2, "panic_at": 1}"#).unwrap();
    let s = Array2::<f32>::ones((3, 2));
    let mut n = Array2::zeros((3, 2));
    m.predict(s.view(), s.view(), n.view_mut()).unwrap();
    assert_eq!(n, Array2::from_elem((3, 2), 2.0));
    let e = m.predict(s.view(), s.view(), n.view_mut()).unwrap_err().to_string();
    assert!(e.contains("plugin:testkit/panicky") && e.contains("deliberate panic on call 1") && e.contains("poisoned"), "{e}");
    assert!(m.is_poisoned());
    // Never called again (call 2 would succeed).
    let e = m.predict(s.view(), s.view(), n.view_mut()).unwrap_err().to_string();
    assert!(e.contains("panicked: deliberate panic on call 1"), "{e}");
    assert_eq!(
        h.poison_reports(),
        ["plugin `testkit` module `panicky` panicked: deliberate panic on call 1; the module is poisoned and will not be called again"]
    );
    // Other instances of the same module keep working.
    let m2 = h.world_model("testkit/panicky", r#"{"dim": 2, "panic_at": 5}"#).unwrap();
    m2.predict(s.view(), s.view(), n.view_mut()).unwrap();
    // An error is not a panic: reported, not poisoned.
    let f = h.world_model("testkit/failing", "{}").unwrap();
    let one = Array2::<f32>::zeros((1, 1));
    let e = f.predict(one.view(), one.view(), Array2::zeros((1, 1)).view_mut()).unwrap_err().to_string();
    assert_eq!(e, "module `plugin:testkit/failing`: deliberate failure");
    // A panicking cost term is an error of the call, naming it, and is
    // poisoned: the next call says so too.
    let c = h.intrinsic_cost("testkit/panicky_cost", "{}").unwrap();
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(c), 1.0).unwrap();
    let mut e1 = Array1::zeros(3);
    let e = cost.step_energy(0, s.view(), s.view(), s.view(), e1.view_mut()).unwrap_err().to_string();
    assert!(e.contains("plugin `testkit` module `panicky_cost` panicked: deliberate panic in a cost"), "{e}");
    let e = cost.step_energy(0, s.view(), s.view(), s.view(), e1.view_mut()).unwrap_err().to_string();
    assert!(e.contains("poisoned"), "{e}");
    // A panicking environment step: an error naming the plugin, the host keeps running.
    let mut env = h.environment("testkit/walk", r#"{"panic_at_step": 2}"#).unwrap();
    env.reset(0).unwrap();
    env.step(Array1::from(vec![0.5]).view()).unwrap();
    let e = env.step(Array1::from(vec![0.5]).view()).unwrap_err().to_string();
    assert!(e.contains("plugin `testkit` module `walk` panicked: deliberate panic at step 2"), "{e}");
    assert!(env.reset(0).is_err());
    assert_eq!(h.poison_reports().len(), 3);
}

#[test]
fn every_module_kind_works_through_its_adapter() {
    use ami_core::{Actor, Configurator, Critic, Modulation, Perception, ShortTermMemory, TransitionRef};
    let mut h = host();
    h.load(lib("testkit")).unwrap();
    // Differentiable world model.
    let m = h.world_model("testkit/shift", r#"{"dim": 2}"#).unwrap();
    let d = m.differentiable().expect("shift has a vjp");
    let g = Array2::from_elem((2, 2), 0.5f32);
    let (mut gs, mut ga) = (Array2::from_elem((2, 2), 1.0f32), Array2::zeros((2, 2)));
    d.vjp(g.view(), g.view(), g.view(), gs.view_mut(), ga.view_mut()).unwrap();
    assert_eq!((gs[[1, 1]], ga[[0, 0]]), (1.5, 0.5));
    // Perception.
    let p = h.perception("testkit/scale", r#"{"dim": 3, "factor": 4}"#).unwrap();
    assert_eq!(p.encode(ndarray::array![[1.0f32, 2.0, 3.0]].view()).unwrap(), ndarray::array![[4.0f32, 8.0, 12.0]]);
    // Cost term with the goal from the context.
    let sq = h.intrinsic_cost("testkit/square", "{}").unwrap();
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(sq), 2.0).unwrap();
    cost.set_goal(Some(ndarray::array![1.0, 0.0]));
    let mut e = Array1::zeros(1);
    let z = ndarray::array![[3.0f32, 1.0]];
    cost.step_energy(0, z.view(), z.view(), z.view(), e.view_mut()).unwrap();
    assert_eq!(e[0], 2.0 * (4.0 + 1.0));
    // Actor calling back the host's cost.
    let mut actor = h.actor("testkit/greedy", r#"{"dim": 2, "limit": 1}"#).unwrap();
    actor.reset(0);
    assert_eq!(actor.act(ndarray::array![3.0f32, -0.2].view(), &cost).unwrap(), ndarray::array![-1.0f32, 0.0]);
    actor.modulate(&Modulation::Horizon(3)).unwrap();
    // Critic.
    let mut critic = h.critic("testkit/zero_critic", r#"{"bias": 1.5}"#).unwrap();
    let mut v = Array1::zeros(2);
    critic.add_value(&cost.context(0), 2.0, g.view(), v.view_mut()).unwrap();
    assert_eq!(v, ndarray::array![3.0f32, 3.0]);
    let mut mem = ami_core::RingMemory::new(2, 2, 8).unwrap();
    for t in 0..3u64 {
        let x = ndarray::array![t as f32, 0.0];
        mem.push(&TransitionRef { t, state: x.view(), action: x.view(), cost: 1.0, next_state: x.view(), imagined: false, terminated: false }).unwrap();
    }
    let b = mem.sample(4, &mut ami_core::rng::rng(0)).unwrap();
    assert_eq!(critic.train(&b, 0.9).unwrap(), 1.0);
    // Configurator: the plugin's JSON is the host's Modulation.
    let mut conf = h.configurator("testkit/goal_at_start", r#"{"goal": [0.5, -1]}"#).unwrap();
    let ms = conf.configure(0, ndarray::array![0.0f32, 0.0].view());
    assert_eq!(
        ms,
        vec![
            Modulation::Goal(Some(vec![0.5, -1.0])),
            Modulation::CostWeight { term: "square".into(), weight: 2.0 },
            Modulation::Horizon(7),
            Modulation::Budget(ami_core::Budget { iterations: 3, deadline: Some(std::time::Duration::from_millis(1500)) }),
        ]
    );
    assert!(conf.configure(1, ndarray::array![0.0f32, 0.0].view()).is_empty());
    // Memory.
    let mut pm = h.memory("testkit/ring", r#"{"state_dim": 2, "action_dim": 1, "capacity": 3}"#).unwrap();
    assert_eq!((pm.state_dim(), pm.action_dim(), pm.capacity(), pm.len()), (2, 1, 3, 0));
    assert!(pm.sample(1, &mut ami_core::rng::rng(0)).is_err());
    for t in 0..5u64 {
        let s = ndarray::array![t as f32, 1.0];
        let a = ndarray::array![0.5f32];
        pm.push(&TransitionRef { t, state: s.view(), action: a.view(), cost: t as f32, next_state: s.view(), imagined: t % 2 == 0, terminated: t == 3 })
            .unwrap();
    }
    assert_eq!(pm.len(), 3);
    assert_eq!(pm.get(0).unwrap().t, 2);
    assert!(pm.get(3).is_none());
    let tr = pm.by_time(4).unwrap();
    assert_eq!((tr.state, tr.action, tr.cost, tr.imagined), (vec![4.0, 1.0], vec![0.5], 4.0, true));
    assert!(!pm.by_time(3).unwrap().terminated, "plugin ABI 1.0 carries no terminal flag");
    let sb = pm.sample(5, &mut ami_core::rng::rng(1)).unwrap();
    assert_eq!(sb.states.dim(), (5, 2));
    assert!(sb.t.iter().all(|t| (2..5).contains(t)));
    let soft = pm.read_soft(ndarray::array![4.0f32, 1.0].view(), 1e-3).unwrap();
    assert!((soft.cost - 4.0).abs() < 1e-3, "{soft:?}");
    let (one, half) = (ndarray::array![1.0f32], ndarray::array![0.5f32]);
    let bad = TransitionRef { t: 0, state: one.view(), action: half.view(), cost: 0.0, next_state: one.view(), imagined: false, terminated: false };
    assert!(pm.push(&bad).unwrap_err().to_string().contains("plugin:testkit/ring"));
    pm.clear();
    assert_eq!(pm.len(), 0);
}

#[test]
fn plugin_modules_run_in_agent_files() {
    let mut h = host();
    let acro = h.load(lib("acrobot")).unwrap();
    let samp = h.load(lib("sampling")).unwrap();
    let mut reg = ami_agents::registry();
    ami_plugin_host::register_plugin(&mut reg, &acro).unwrap();
    ami_plugin_host::register_plugin(&mut reg, &samp).unwrap();
    let text = format!(
        "[agent]\nname = \"acrobot\"\nseeds = [3]\n\n[[nodes]]\nname = \"env\"\nkind = \"environment\"\nimplementation = \"plugin:acrobot/env\"\nparams = {{ costs = {{ swingup = {{ velocity_weight = 0.0 }} }} }}\n\n\
         [[nodes]]\nname = \"perception\"\nkind = \"perception\"\nimplementation = \"identity\"\n\n\
         [[nodes]]\nname = \"configurator\"\nkind = \"configurator\"\nimplementation = \"schedule\"\n\n\
         [[nodes]]\nname = \"actor\"\nkind = \"actor\"\nimplementation = \"plugin:sampling/predictive\"\nparams = {{ horizon = 15, samples = 64, iterations = 2 }}\n\n\
         [[nodes]]\nname = \"cost\"\nkind = \"cost\"\nimplementation = \"task\"\n\n\
         [[nodes]]\nname = \"memory\"\nkind = \"memory\"\nimplementation = \"ring\"\n\n{}",
        ami_config::agent::standard_edges_toml()
    );
    let graph = ami_config::load_str(&text, "acrobot.toml", &reg).unwrap_or_else(|e| panic!("{e}"));
    let mut agent = ami_config::Agent::from_agent_graph(graph, ami_graph::ExecutorKind::Sequential).unwrap();
    let r = agent.run_episode(3, |_| {}).unwrap();
    assert!(r.steps <= 500 && r.episode_return <= 0.0, "{r:?}");
    // The shipped example agent file validates.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/acrobot/agent.toml");
    let text_ex = std::fs::read_to_string(&example).unwrap();
    let (cfg_ex, _) = ami_config::parse_agent(&text_ex, "agent.toml").unwrap();
    let (libs, names) = ami_agents::loader::plugins_needed(&cfg_ex, Path::new("plugins/acrobot"));
    assert!(libs.is_empty(), "{libs:?}");
    assert_eq!(names, ["acrobot", "sampling"]);
    ami_config::load_str(&text_ex, "plugins/acrobot/agent.toml", &reg).unwrap_or_else(|e| panic!("{e}"));
    // Unknown plugin parameters are refused by the agent-file loader, naming the node.
    let bad = text.replace("iterations = 2", "iterations = 2, bogus = 1");
    let e = ami_config::load_str(&bad, "acrobot.toml", &reg).unwrap_err().to_string();
    assert!(e.contains("actor") && e.contains("bogus"), "{e}");
}

#[test]
fn agent_files_list_their_plugins_in_a_plugins_table() {
    use ami_config::{parse_agent, PluginsConfig};
    use ami_plugin_host::{host_config, libraries_to_load};
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let text = format!(
        "[plugins]\nsearch = [{:?}]\nload = [\"sampling\"]\nsha256 = {{ acrobot = \"{wrong}\" }}\n\n[agent]\nseeds = [1]\n\n\
         [[nodes]]\nname = \"env\"\nkind = \"environment\"\nimplementation = \"plugin:acrobot/env\"\n",
        plugin_dir().display().to_string()
    );
    let (cfg, problems) = parse_agent(&text, "a.toml").unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let table = cfg.plugins;
    assert_eq!(table.load, ["sampling"]);
    let host_cfg = host_config(&table, dir.path(), PluginHostConfig { search_paths: vec![dir.path().join("cli")], ..Default::default() });
    assert_eq!(host_cfg.search_paths, [dir.path().join("cli"), plugin_dir().to_path_buf()], "command-line dirs first");
    let mut h = PluginHost::new(host_cfg);
    for l in libraries_to_load(&table, dir.path()) {
        h.load(&l).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(h.plugin("sampling").is_some());
    // The table's pin is enforced when the agent's other plugin is found by name.
    let e = h.load("acrobot").unwrap_err().to_string();
    assert!(e.contains(&format!("SHA-256 mismatch: expected {wrong}")), "{e}");
    // A pin on the command line wins over the file's for the same plugin.
    let digest = host().load(lib("acrobot")).unwrap().info().sha256.clone().unwrap();
    let mut cli = PluginHostConfig::default();
    cli.sha256.insert("acrobot".into(), digest);
    let mut h = PluginHost::new(host_config(&table, dir.path(), cli));
    h.load("acrobot").unwrap_or_else(|e| panic!("{e}"));
    // Relative paths resolve against the agent file's directory.
    let t = PluginsConfig { load: vec!["libs/libx.so".into(), "named".into()], search: vec!["plugins".into()], ..Default::default() };
    assert_eq!(libraries_to_load(&t, Path::new("/a/b")), [PathBuf::from("/a/b/libs/libx.so"), PathBuf::from("named")]);
    assert_eq!(host_config(&t, Path::new("/a/b"), PluginHostConfig::default()).search_paths, [PathBuf::from("/a/b/plugins")]);
    // Problems in the table are reported with file and line.
    let (_, problems) =
        parse_agent("[plugins]\nload = \"acrobot\"\nbogus = 1\n\n[[nodes]]\nname = \"p\"\nkind = \"perception\"\nimplementation = \"identity\"\n", "p.toml")
            .unwrap();
    let msgs: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(msgs.iter().any(|m| m.starts_with("p.toml:2: plugins.load must be an array of strings")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("p.toml:3: unknown key `bogus` in [plugins]")), "{msgs:?}");
}

#[test]
fn plugins_to_load_come_from_the_parsed_file_not_its_text() {
    use ami_agents::{load, AgentSource, LoadOptions};
    // Comments and strings that mention plugins load nothing.
    let text = ami_agents::DEFAULT_AGENT
        .replace("[agent]", "# implementation = \"plugin:acrobot/env\"   (commented out: must not be loaded)\n[agent]\n# see plugin:sampling/predictive");
    let text = text.replace("name = \"pendulum-cem\"", "name = \"plugin:sampling/predictive\"");
    let loaded = load(&AgentSource::Text { text, name: "commented.toml".into() }, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.graph.config.name.as_deref(), Some("plugin:sampling/predictive"));
    assert!(loaded.host.is_none(), "a plugin was loaded for a comment");
    // A node that names a plugin does load it (and says which one is missing).
    let text = ami_agents::DEFAULT_AGENT.replace("implementation = \"pendulum\"", "implementation = \"plugin:nosuch/env\"");
    let err = load(&AgentSource::Text { text, name: "named.toml".into() }, &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("named.toml:19: node `env`: plugin `nosuch`: plugin `nosuch` is not loaded and no library for it was found"), "{err}");
}
