//! GEMM shapes of a training step.
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
fn time(name: &str, flops: f64, mut f: impl FnMut()) {
    for _ in 0..20 {
        f();
    }
    let n = 200;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    let dt = t0.elapsed().as_secs_f64() / n as f64;
    println!("{name}: {:.1} us, {:.1} GFLOP/s", dt * 1e6, flops / dt / 1e9);
}
fn main() {
    let h = Array2::<f32>::from_shape_fn((128, 200), |(i, j)| ((i * 7 + j) % 13) as f32 * 0.1);
    let w = Array2::<f32>::from_shape_fn((200, 200), |(i, j)| ((i * 3 + j) % 11) as f32 * 0.1);
    let mut z = Array2::<f32>::zeros((128, 200));
    let mut dw = Array2::<f32>::zeros((200, 200));
    let fl = 2.0 * 128.0 * 200.0 * 200.0;
    time("fwd h W^T", fl, || general_mat_mul(1.0, &h, &w.t(), 0.0, &mut z));
    time("fwd h W", fl, || general_mat_mul(1.0, &h, &w, 0.0, &mut z));
    time("dW g^T h", fl, || general_mat_mul(1.0, &h.t(), &h, 0.0, &mut dw));
    let h2 = Array2::<f32>::from_shape_fn((256, 200), |(i, j)| ((i * 7 + j) % 13) as f32 * 0.1);
    let mut z2 = Array2::<f32>::zeros((256, 200));
    time("fwd 256 h W^T", fl * 2.0, || general_mat_mul(1.0, &h2, &w.t(), 0.0, &mut z2));
}
