//! The plugin call path without dlopen: plugins linked statically (rlibs)
//! and registered with `PluginHost::load_static`, through the same adapters,
//! C shims, tensor views, error buffers and `catch_unwind` as a loaded
//! library. (Miri cannot build ami-core: its dfdx dependency fails to compile
//! under Miri; see plugins/check-valgrind.sh and plugins/testkit/tests.)

use std::sync::Arc;

use ami_core::{Bounds, Cost, Environment, PlanRequest, Planner, WorldModel};
use ami_plugin_host::{PluginHost, PluginHostConfig};
use ndarray::{array, Array1, Array2};

fn host() -> PluginHost {
    let mut h = PluginHost::new(PluginHostConfig::default());
    h.load_static(testkit::ami_plugin_decl()).unwrap();
    h.load_static(sampling::ami_plugin_decl()).unwrap();
    h
}

#[test]
fn calls_errors_and_panics_cross_the_boundary() {
    let mut h = host();
    // A world model: views in, view out, shapes checked on both sides.
    let m = h.world_model("testkit/shift", r#"{"dim": 2}"#).unwrap();
    let s = array![[1.0f32, 2.0], [3.0, 4.0]];
    let mut n = Array2::zeros((2, 2));
    m.predict(s.view(), s.view(), n.view_mut()).unwrap();
    assert_eq!(n, array![[2.0f32, 4.0], [6.0, 8.0]]);
    // A strided (copied) output.
    let mut wide = Array2::<f32>::zeros((2, 4));
    m.predict(s.view(), s.view(), wide.slice_mut(ndarray::s![.., ..;2])).unwrap();
    assert_eq!(wide, array![[2.0f32, 0.0, 4.0, 0.0], [6.0, 0.0, 8.0, 0.0]]);
    // An error message through the host-owned buffer.
    let e = h.world_model("testkit/shift", r#"{"dim": "x"}"#).unwrap_err().to_string();
    assert!(e.contains("parameter `dim`: expected an integer, found string"), "{e}");
    // A panic is caught, the module poisoned, and never called again.
    let p = h.world_model("testkit/panicky", r#"{"dim": 2}"#).unwrap();
    let e = p.predict(s.view(), s.view(), n.view_mut()).unwrap_err().to_string();
    assert!(e.contains("deliberate panic on call 0") && e.contains("poisoned"), "{e}");
    assert!(p.is_poisoned());
    assert!(p.predict(s.view(), s.view(), n.view_mut()).is_err());
    drop(p);
    // A plugin planner calling back into the host's (plugin) model and cost.
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(h.intrinsic_cost("testkit/square", "{}").unwrap()), 1.0).unwrap();
    cost.set_goal(Some(array![1.0, -1.0]));
    let mut planner = h.planner("sampling/predictive", r#"{"horizon": 3, "samples": 8, "iterations": 2}"#, Bounds::symmetric(2, 1.0)).unwrap();
    planner.reset(1);
    let plan = planner.plan(&PlanRequest::new(&m, &cost, Array1::zeros(2).view())).unwrap();
    assert_eq!(plan.actions.dim(), (3, 2));
    assert!(plan.energy.is_finite() && plan.evaluated == 16);
    // An environment episode.
    let mut env = h.environment("testkit/walk", "{}").unwrap();
    assert_eq!(env.reset(2).unwrap(), array![3.0f32]);
    let st = env.step(array![-1.0f32].view()).unwrap();
    assert_eq!((st.observation[0], st.reward), (2.0, -2.0));
}
