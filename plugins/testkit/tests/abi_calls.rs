//! The C call path of a plugin, driven the way the host drives it (register
//! through a registrar, create, call through the vtables with tensor views
//! and error buffers, destroy) but with no dlopen and no ami-core, so it
//! runs under Miri: `cargo +nightly miri test -p ami-plugin-testkit`.

use std::ffi::c_void;

use ami_plugin_abi::kinds::{ConfiguratorVTable, EnvironmentVTable, StepOut, StrSink, WorldModelVTable};
use ami_plugin_abi::{Dims, ErrBuf, ModuleDesc, ModuleKind, Registrar, Status, Str, TensorView, VTableHeader};

struct Found {
    modules: Vec<(String, ModuleKind, *const c_void)>,
}

unsafe extern "C" fn add(ctx: *mut c_void, desc: *const ModuleDesc, _err: *mut ErrBuf) -> Status {
    // SAFETY: `ctx` is the `Found` passed below; `desc` is valid for the call.
    let (found, d) = unsafe { (&mut *ctx.cast::<Found>(), &*desc) };
    // SAFETY: names are static strings of the plugin.
    let name = unsafe { d.name.as_str() }.unwrap().to_string();
    found.modules.push((name, d.kind, d.vtable));
    Status::OK
}

fn modules() -> Found {
    let mut found = Found { modules: Vec::new() };
    let reg = Registrar { ctx: (&mut found as *mut Found).cast(), add_module: add };
    let mut mem = [0u8; 256];
    let mut err = ErrBuf { ptr: mem.as_mut_ptr(), cap: mem.len(), len: 0 };
    let decl = testkit::ami_plugin_decl();
    // SAFETY: the registrar and error buffer live across the call; a null host API is allowed.
    let st = unsafe { (decl.register)(std::ptr::null(), &reg, &mut err) };
    assert_eq!(st, Status::OK);
    found
}

fn vtable(f: &Found, name: &str) -> *const c_void {
    f.modules.iter().find(|m| m.0 == name).map(|m| m.2).unwrap()
}

/// Runs `f` with a fresh error buffer; returns the status and the message.
fn call(f: impl FnOnce(*mut ErrBuf) -> Status) -> (Status, String) {
    let mut mem = [0u8; 256];
    let mut err = ErrBuf { ptr: mem.as_mut_ptr(), cap: mem.len(), len: 0 };
    let st = f(&mut err);
    (st, String::from_utf8_lossy(&mem[..err.len]).into_owned())
}

fn create(h: &VTableHeader, config: &str) -> *mut c_void {
    let mut out = std::ptr::null_mut();
    // SAFETY: `create` of a registered vtable; config and output slot live across the call.
    let (st, msg) = call(|e| unsafe { (h.create)(Str::borrow(config), &mut out, e) });
    assert_eq!(st, Status::OK, "{msg}");
    out
}

#[test]
fn world_models_errors_and_panics() {
    let f = modules();
    assert_eq!(f.modules.len(), 13);
    // SAFETY: the module `shift` is a world model; its vtable is static.
    let vt = unsafe { &*vtable(&f, "shift").cast::<WorldModelVTable>() };
    assert_eq!(vt.header.kind, ModuleKind::WORLD_MODEL);
    let this = create(&vt.header, r#"{"dim": 2}"#);
    let mut d = Dims::default();
    // SAFETY: live instance, output valid.
    assert_eq!(call(|e| unsafe { (vt.header.dims)(this, &mut d, e) }).0, Status::OK);
    assert_eq!((d.state_dim, d.action_dim), (2, 2));
    let s = [1.0f32, 2.0, 3.0, 4.0];
    let mut n = [0.0f32; 4];
    let (sv, nv) = (TensorView::matrix(s.as_ptr(), 2, 2, 2), TensorView::matrix_mut(n.as_mut_ptr(), 2, 2, 2));
    let none = TensorView::none();
    // SAFETY: live instance; views over local arrays of the right shapes.
    assert_eq!(call(|e| unsafe { (vt.predict)(this, &sv, &sv, &none, &nv, e) }).0, Status::OK);
    assert_eq!(n, [2.0, 4.0, 6.0, 8.0]);
    // A read-only output view is refused with a message.
    let ro = TensorView::matrix(n.as_ptr(), 2, 2, 2);
    // SAFETY: as above.
    let (st, msg) = call(|e| unsafe { (vt.predict)(this, &sv, &sv, &none, &ro, e) });
    assert_eq!((st, msg.as_str()), (Status::ERROR, "next: output view is not writable"));
    // vjp adds into the gradients.
    let mut gs = [1.0f32; 4];
    let mut ga = [0.0f32; 4];
    let (gsv, gav) = (TensorView::matrix_mut(gs.as_mut_ptr(), 2, 2, 2), TensorView::matrix_mut(ga.as_mut_ptr(), 2, 2, 2));
    // SAFETY: as above.
    assert_eq!(call(|e| unsafe { (vt.vjp.unwrap())(this, &sv, &sv, &sv, &gsv, &gav, e) }).0, Status::OK);
    assert_eq!((gs, ga), ([2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0]));
    // SAFETY: created above, destroyed once.
    unsafe { (vt.header.destroy)(this) };

    // Bad configuration: an error, no instance.
    let mut out = std::ptr::null_mut();
    // SAFETY: as for `create`.
    let (st, msg) = call(|e| unsafe { (vt.header.create)(Str::borrow(r#"{"nope": 1}"#), &mut out, e) });
    assert_eq!((st, msg.as_str(), out.is_null()), (Status::ERROR, "unknown parameter `nope` (known: dim)", true));

    // A panic becomes PANICKED with its message.
    // SAFETY: `panicky` is a world model.
    let pv = unsafe { &*vtable(&f, "panicky").cast::<WorldModelVTable>() };
    let p = create(&pv.header, r#"{"dim": 2}"#);
    // SAFETY: as above.
    let (st, msg) = call(|e| unsafe { (pv.predict)(p, &sv, &sv, &none, &nv, e) });
    assert_eq!((st, msg.as_str()), (Status::PANICKED, "deliberate panic on call 0"));
    // SAFETY: `failing` is a world model.
    let fv = unsafe { &*vtable(&f, "failing").cast::<WorldModelVTable>() };
    let fi = create(&fv.header, "");
    let one = [0.0f32];
    let (ov, omv) = (TensorView::matrix(one.as_ptr(), 1, 1, 1), TensorView::matrix_mut(n.as_mut_ptr(), 1, 1, 1));
    // SAFETY: as above.
    let (st, msg) = call(|e| unsafe { (fv.predict)(fi, &ov, &ov, &none, &omv, e) });
    assert_eq!((st, msg.as_str()), (Status::ERROR, "deliberate failure"));
    // SAFETY: created above, destroyed once (a host would leak the poisoned `p`).
    unsafe { (fv.header.destroy)(fi) };
}

unsafe extern "C" fn collect(ctx: *mut c_void, s: Str) {
    // SAFETY: `ctx` is the `String` below; `s` is valid for the call.
    unsafe { (*ctx.cast::<String>()).push_str(s.as_str().unwrap()) };
}

#[test]
fn environment_and_configurator() {
    let f = modules();
    // SAFETY: `walk` is an environment.
    let ev = unsafe { &*vtable(&f, "walk").cast::<EnvironmentVTable>() };
    let env = create(&ev.header, r#"{"panic_at_step": 2}"#);
    let mut obs = [0.0f32];
    let ov = TensorView::vector_mut(obs.as_mut_ptr(), 1);
    // SAFETY: live instance; views over locals.
    assert_eq!(call(|e| unsafe { (ev.reset_episode)(env, 4, &ov, e) }).0, Status::OK);
    assert_eq!(obs, [5.0]);
    let a = [-1.0f32];
    let av = TensorView::vector(a.as_ptr(), 1);
    let mut out = StepOut::default();
    // SAFETY: as above.
    assert_eq!(call(|e| unsafe { (ev.step)(env, &av, &ov, &mut out, e) }).0, Status::OK);
    assert_eq!((obs[0], out.reward, out.terminated), (4.0, -4.0, 0));
    // SAFETY: as above.
    let (st, msg) = call(|e| unsafe { (ev.step)(env, &av, &ov, &mut out, e) });
    assert_eq!((st, msg.as_str()), (Status::PANICKED, "deliberate panic at step 2"));

    // SAFETY: `goal_at_start` is a configurator.
    let cv = unsafe { &*vtable(&f, "goal_at_start").cast::<ConfiguratorVTable>() };
    let c = create(&cv.header, r#"{"goal": [0.5, 2]}"#);
    let mut text = String::new();
    let sink = StrSink { ctx: (&mut text as *mut String).cast(), write: collect };
    let state = [0.0f32, 0.0];
    let sv = TensorView::vector(state.as_ptr(), 2);
    // SAFETY: live instance; the view and sink live across the call.
    assert_eq!(call(|e| unsafe { (cv.configure)(c, 0, &sv, &sink, e) }).0, Status::OK);
    assert_eq!(
        text,
        r#"[{"goal":[0.5,2]},{"cost_weight":{"term":"square","weight":2}},{"horizon":7},{"budget":{"iterations":3,"deadline":{"secs":1,"nanos":500000000}}}]"#
    );
    // SAFETY: created above, destroyed once.
    unsafe { (cv.header.destroy)(c) };
}
