//! A small convolutional encoder for images (a JEPA's `Enc`): 3x3
//! convolutions of stride 2 and padding 1, each followed by a ReLU, then a
//! linear map to the embedding. Forward and backward passes by im2col and
//! matrix products (`ndarray`'s), checked against central differences.
//!
//! Images come as rows of `channels * size * size` values, channel-major
//! (`[C, H, W]` flattened, row 0 the top). Inside, activations are kept
//! `[H * W, C]` per sample, so a 3x3 patch is a contiguous run per pixel.

use ami_core::error::{CoreError, Result};
use ami_kernels::train::{self as kt, Mat};
use ami_kernels::Isa;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;

/// The encoder's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Input side in pixels (square images).
    pub size: usize,
    /// Output channels of each convolution (each halves the side).
    pub channels: Vec<usize>,
    /// Embedding width.
    pub embed: usize,
}

impl ConvSpec {
    /// Side after `l` convolutions.
    fn side(&self, l: usize) -> usize {
        (0..l).fold(self.size, |s, _| s.div_ceil(2))
    }
    /// Input channels of convolution `l`.
    fn cin(&self, l: usize) -> usize {
        if l == 0 {
            self.in_channels
        } else {
            self.channels[l - 1]
        }
    }
    /// Side of the last feature map.
    pub fn size_after(&self) -> usize {
        self.side(self.channels.len())
    }
    /// Width of the flattened last feature map.
    pub fn flat(&self) -> usize {
        let l = self.channels.len();
        let s = self.side(l);
        s * s * self.cin(l)
    }
    /// Input width (`in_channels * size * size`).
    pub fn input_dim(&self) -> usize {
        self.in_channels * self.size * self.size
    }
    /// (weights offset, bias offset) of each convolution and of the
    /// linear map, and the total.
    fn offsets(&self) -> (Vec<(usize, usize)>, usize) {
        let mut at = 0;
        let mut out = Vec::new();
        for l in 0..self.channels.len() {
            let w = self.channels[l] * 9 * self.cin(l);
            out.push((at, at + w));
            at += w + self.channels[l];
        }
        out.push((at, at + self.embed * self.flat()));
        at += self.embed * self.flat() + self.embed;
        (out, at)
    }
    /// Number of parameters.
    pub fn params(&self) -> usize {
        self.offsets().1
    }
    fn check(&self) -> Result<()> {
        if self.in_channels == 0 || self.size < 2 || self.embed == 0 || self.channels.contains(&0) || self.channels.len() > 8 {
            return Err(CoreError::config("encoder", format!("a usable shape has channels >= 1, size >= 2, 1..=8 convolutions of >= 1 channel: {self:?}")));
        }
        Ok(())
    }
}

/// The encoder: its shape and flat parameters (per convolution: weights
/// `[out, 9 * in]`, the column `(3 ky + kx) * in + c`, then the bias; then
/// the linear map's weights `[embed, flat]` and bias).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvEncoder {
    spec: ConvSpec,
    params: Vec<f32>,
    /// `spec.offsets().0`, kept.
    offsets: Vec<(usize, usize)>,
}

/// What a forward pass keeps for the backward one. Pass the same cache to
/// [`ConvEncoder::forward_into`] again and its buffers are reused (a batch
/// of the same size allocates nothing but the embeddings).
#[derive(Debug, Clone, Default)]
pub struct ConvCache {
    /// Samples in the batch.
    n: usize,
    /// The images as `[n * H * W, C]`.
    input: Vec<f32>,
    /// Per convolution: the batch's im2col matrix (`[n * out_hw, 9 in]`).
    cols: Vec<Vec<f32>>,
    /// Per convolution: its output after the ReLU (`[n * out_hw, out]`);
    /// the last is also the flattened feature maps `[n, flat]`.
    acts: Vec<Vec<f32>>,
}

/// Resizes `v` to `len` zeros unless it already has that length (then its
/// contents stay: im2col's padding entries are zero from the first fill,
/// and every other entry is overwritten).
fn reuse(v: &mut Vec<f32>, len: usize) {
    if v.len() != len {
        v.clear();
        v.resize(len, 0.0);
    }
}

impl ConvEncoder {
    /// Weights drawn He-uniform from `seed`, biases zero.
    pub fn new(spec: ConvSpec, seed: u64) -> Result<Self> {
        spec.check()?;
        let (offsets, total) = spec.offsets();
        let mut params = vec![0.0f32; total];
        let mut rng = ami_core::rng::rng(seed);
        for (l, &(w, b)) in offsets.iter().enumerate() {
            let fan_in = if l < spec.channels.len() { 9 * spec.cin(l) } else { spec.flat() };
            let bound = (6.0 / fan_in as f32).sqrt();
            for p in &mut params[w..b] {
                *p = rng.gen_range(-bound..bound);
            }
        }
        Ok(Self { spec, params, offsets })
    }
    /// An encoder of shape `spec` with these parameters (the layout of
    /// [`ConvEncoder::params`]).
    pub fn from_params(spec: ConvSpec, params: Vec<f32>) -> Result<Self> {
        spec.check()?;
        let (offsets, total) = spec.offsets();
        if params.len() != total {
            return Err(CoreError::shape("ConvEncoder::from_params", format!("{total} parameters"), format!("{}", params.len())));
        }
        Ok(Self { spec, params, offsets })
    }
    /// The shape.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }
    /// The parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// The parameters, to update.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Layer `l`'s weights (`[out, in]`) and bias.
    fn layer(&self, l: usize) -> (Mat<'_>, &[f32]) {
        let (w, b) = self.offsets[l];
        let (rows, cols) = if l < self.spec.channels.len() { (self.spec.channels[l], 9 * self.spec.cin(l)) } else { (self.spec.embed, self.spec.flat()) };
        (Mat::rows(&self.params[w..b], rows, cols), &self.params[b..b + rows])
    }

    /// Embeddings of a batch of images (`[n, input_dim]`) -> `[n, embed]`,
    /// and what the backward pass needs. Each layer is one matrix product
    /// over the whole batch.
    pub fn forward(&self, images: ArrayView2<'_, f32>) -> Result<(Array2<f32>, ConvCache)> {
        let mut cache = ConvCache::default();
        let z = self.forward_into(images, &mut cache)?;
        Ok((z, cache))
    }

    /// [`ConvEncoder::forward`] into a cache whose buffers are reused.
    pub fn forward_into(&self, images: ArrayView2<'_, f32>, cache: &mut ConvCache) -> Result<Array2<f32>> {
        let s = &self.spec;
        if images.ncols() != s.input_dim() {
            return Err(CoreError::shape("ConvEncoder::forward", format!("images of {} values", s.input_dim()), format!("{}", images.ncols())));
        }
        let n = images.nrows();
        let hw = s.size * s.size;
        let convs = s.channels.len();
        cache.n = n;
        cache.cols.resize_with(convs, Vec::new);
        cache.acts.resize_with(convs, Vec::new);
        // [C, H, W] per row -> [n * H * W, C].
        reuse(&mut cache.input, n * hw * s.in_channels);
        for (i, img) in images.rows().into_iter().enumerate() {
            for c in 0..s.in_channels {
                for p in 0..hw {
                    cache.input[(i * hw + p) * s.in_channels + c] = img[c * hw + p];
                }
            }
        }
        for l in 0..convs {
            let (side, cin, cout) = (s.side(l), s.cin(l), s.channels[l]);
            let out = s.side(l + 1);
            let rows = n * out * out;
            let mut cols = std::mem::take(&mut cache.cols[l]);
            reuse(&mut cols, rows * 9 * cin);
            im2col(if l == 0 { &cache.input } else { &cache.acts[l - 1] }, &mut cols, n, side, cin);
            let mut y = std::mem::take(&mut cache.acts[l]);
            reuse(&mut y, rows * cout);
            let (w, b) = self.layer(l);
            kt::matmul(Isa::detect(), Mat::rows(&cols, rows, 9 * cin), w.t(), 0.0, &mut y).expect("shapes agree by construction");
            for row in y.chunks_exact_mut(cout) {
                for (v, bias) in row.iter_mut().zip(b) {
                    *v = (*v + bias).max(0.0);
                }
            }
            cache.cols[l] = cols;
            cache.acts[l] = y;
        }
        // [n * side^2, c] is [n, side^2 * c] in memory.
        let (w, b) = self.layer(convs);
        let mut z = product(Mat::rows(&cache.acts[convs - 1], n, s.flat()), w.t());
        z += &ndarray::ArrayView1::from(b);
        Ok(z)
    }

    /// The gradient of the parameters (flat, as [`ConvEncoder::params`])
    /// given `d loss / d z` (`[n, embed]`) and the forward pass's cache.
    pub fn backward(&self, cache: &ConvCache, grad_z: ArrayView2<'_, f32>) -> Result<Array1<f32>> {
        let s = &self.spec;
        let n = cache.n;
        if grad_z.dim() != (n, s.embed) {
            return Err(CoreError::shape("ConvEncoder::backward", format!("[{n}, {}]", s.embed), format!("{:?}", grad_z.shape())));
        }
        let mut g = Array1::<f32>::zeros(self.params.len());
        let last = s.channels.len();
        let (wl, bl) = self.offsets[last];
        // Linear map.
        let gs = g.as_slice_mut().expect("contiguous");
        let grad_z = grad_z.as_standard_layout();
        let gz = Mat::rows(grad_z.as_slice().expect("standard"), n, s.embed);
        let flat = Mat::rows(&cache.acts[last - 1], n, s.flat());
        let gw = product(gz.t(), flat);
        gs[wl..bl].copy_from_slice(gw.as_slice().expect("standard"));
        let gb = grad_z.sum_axis(Axis(0));
        gs[bl..bl + s.embed].copy_from_slice(gb.as_slice().expect("standard"));
        let (w, _) = self.layer(last);
        let side = s.side(last);
        let mut gy = product(gz, w).into_shape_with_order((n * side * side, s.cin(last))).expect("flat shape");
        for l in (0..last).rev() {
            // Through the ReLU.
            let gys = gy.as_slice_mut().expect("standard layout");
            for (gv, &a) in gys.iter_mut().zip(&cache.acts[l]) {
                if a <= 0.0 {
                    *gv = 0.0;
                }
            }
            let (wo, bo) = self.offsets[l];
            let rows = gy.nrows();
            let gw = product(mat(&gy).t(), Mat::rows(&cache.cols[l], rows, 9 * s.cin(l)));
            let gs = g.as_slice_mut().expect("contiguous");
            for (d, v) in gs[wo..bo].iter_mut().zip(gw.iter()) {
                *d += v;
            }
            for (d, v) in gs[bo..bo + s.channels[l]].iter_mut().zip(gy.sum_axis(Axis(0)).iter()) {
                *d += v;
            }
            if l > 0 {
                let (w, _) = self.layer(l);
                let gcols = product(mat(&gy), w);
                gy = col2im(&gcols, n, s.side(l), s.cin(l));
            }
        }
        Ok(g)
    }
}

/// `a b` (`a`, `b` given as kernel matrices) into a fresh `[a.rows, b.cols]`
/// array, on the kernels' SIMD GEMM (one thread).
pub(crate) fn product(a: Mat<'_>, b: Mat<'_>) -> Array2<f32> {
    let mut c = Array2::<f32>::zeros((a.rows, b.cols));
    kt::matmul(Isa::detect(), a, b, 0.0, c.as_slice_mut().expect("fresh array")).expect("shapes agree by construction");
    c
}

/// A standard-layout array as a kernel matrix.
pub(crate) fn mat(x: &Array2<f32>) -> Mat<'_> {
    Mat::rows(x.as_slice().expect("standard layout"), x.nrows(), x.ncols())
}

/// The 3x3, stride 2, padding 1 patches of `n` maps `x` (`[n * side *
/// side, c]`) into `dst` (`[n * out * out, 9 c]`, out = ceil(side / 2);
/// the padding entries are left as they are: zero).
fn im2col(src: &[f32], dst: &mut [f32], n: usize, side: usize, c: usize) {
    let out = side.div_ceil(2);
    for i in 0..n {
        let (src, dst) = (&src[i * side * side * c..(i + 1) * side * side * c], &mut dst[i * out * out * 9 * c..(i + 1) * out * out * 9 * c]);
        for oy in 0..out {
            for ox in 0..out {
                let row = &mut dst[(oy * out + ox) * 9 * c..(oy * out + ox + 1) * 9 * c];
                for ky in 0..3 {
                    let iy = (2 * oy + ky) as isize - 1;
                    if iy < 0 || iy as usize >= side {
                        continue;
                    }
                    for kx in 0..3 {
                        let ix = (2 * ox + kx) as isize - 1;
                        if ix < 0 || ix as usize >= side {
                            continue;
                        }
                        let p = (iy as usize * side + ix as usize) * c;
                        let k = (3 * ky + kx) * c;
                        row[k..k + c].copy_from_slice(&src[p..p + c]);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: patch gradients summed back into `n`
/// `[side * side, c]` maps.
fn col2im(cols: &Array2<f32>, n: usize, side: usize, c: usize) -> Array2<f32> {
    let out = side.div_ceil(2);
    let mut x = Array2::<f32>::zeros((n * side * side, c));
    let src = cols.as_slice().expect("a fresh product is in standard layout");
    let dst = x.as_slice_mut().expect("fresh array");
    for i in 0..n {
        let (src, dst) = (&src[i * out * out * 9 * c..(i + 1) * out * out * 9 * c], &mut dst[i * side * side * c..(i + 1) * side * side * c]);
        for oy in 0..out {
            for ox in 0..out {
                let row = &src[(oy * out + ox) * 9 * c..(oy * out + ox + 1) * 9 * c];
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (iy, ix) = ((2 * oy + ky) as isize - 1, (2 * ox + kx) as isize - 1);
                        if iy < 0 || ix < 0 || iy as usize >= side || ix as usize >= side {
                            continue;
                        }
                        let p = (iy as usize * side + ix as usize) * c;
                        let k = (3 * ky + kx) * c;
                        for (d, v) in dst[p..p + c].iter_mut().zip(&row[k..k + c]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ConvSpec {
        ConvSpec { in_channels: 2, size: 7, channels: vec![3, 4], embed: 5 }
    }

    #[test]
    fn shapes_follow_the_strides() {
        let s = ConvSpec { in_channels: 1, size: 64, channels: vec![16, 32, 32], embed: 32 };
        assert_eq!((s.side(1), s.side(2), s.side(3), s.flat()), (32, 16, 8, 8 * 8 * 32));
        assert_eq!(s.params(), (16 * 9 + 16) + (32 * 9 * 16 + 32) + (32 * 9 * 32 + 32) + (32 * 2048 + 32));
        let e = ConvEncoder::new(s, 0).unwrap();
        let (z, _) = e.forward(Array2::zeros((3, 4096)).view()).unwrap();
        assert_eq!(z.dim(), (3, 32));
        assert!(ConvEncoder::new(ConvSpec { channels: vec![0], ..tiny() }, 0).is_err());
        assert!(e.forward(Array2::zeros((1, 10)).view()).unwrap_err().to_string().contains("images of 4096 values"));
    }

    #[test]
    fn a_convolution_is_what_its_definition_says() {
        // One channel in, one out, 3x3 image, the kernel picking the centre
        // tap: output pixel (oy, ox) = input (2 oy, 2 ox) (stride 2).
        let spec = ConvSpec { in_channels: 1, size: 3, channels: vec![1], embed: 1 };
        let mut e = ConvEncoder::new(spec, 0).unwrap();
        let p = e.params_mut();
        p.iter_mut().for_each(|v| *v = 0.0);
        p[4] = 1.0; // centre tap
                    // Linear: embed = sum of the 2x2 feature map weighted 1, 10, 100, 1000.
        let lin = 10;
        p[lin..lin + 4].copy_from_slice(&[1.0, 10.0, 100.0, 1000.0]);
        let img = Array2::from_shape_vec((1, 9), (1..=9).map(|v| v as f32).collect()).unwrap();
        let (z, _) = e.forward(img.view()).unwrap();
        // Pixels (0,0)=1, (0,2)=3, (2,0)=7, (2,2)=9.
        assert_eq!(z[[0, 0]], 1.0 + 30.0 + 700.0 + 9000.0);
    }

    #[test]
    fn gradients_match_central_differences() {
        let e = ConvEncoder::new(tiny(), 3).unwrap();
        let mut rng = ami_core::rng::rng(5);
        let imgs = Array2::<f32>::from_shape_fn((2, tiny().input_dim()), |_| rng.gen_range(-1.0..1.0));
        let wz = Array2::<f32>::from_shape_fn((2, 5), |_| rng.gen_range(-1.0..1.0));
        let loss = |e: &ConvEncoder| -> f64 { (&e.forward(imgs.view()).unwrap().0 * &wz).iter().map(|&v| f64::from(v)).sum() };
        let (_, cache) = e.forward(imgs.view()).unwrap();
        let g = e.backward(&cache, wz.view()).unwrap();
        let h = 1e-3f32;
        let mut worst = 0.0f64;
        for k in 0..e.params().len() {
            let (mut p, mut m) = (e.clone(), e.clone());
            p.params_mut()[k] += h;
            m.params_mut()[k] -= h;
            let num = (loss(&p) - loss(&m)) / (2.0 * f64::from(h));
            let err = (num - f64::from(g[k])).abs() / (1.0 + num.abs());
            worst = worst.max(err);
        }
        // A step of 1e-3: wide steps (1e-2) cross ReLU kinks here.
        assert!(worst < 2e-3, "worst relative error {worst}");
    }
}
