//! A small convolutional encoder for images (a JEPA's `Enc`): 3x3
//! convolutions of stride 2 and padding 1, each followed by a ReLU, then a
//! linear map to the embedding. Forward and backward passes by im2col and
//! matrix products (`ndarray`'s), checked against central differences.
//!
//! Images come as rows of `channels * size * size` values, channel-major
//! (`[C, H, W]` flattened, row 0 the top). Inside, activations are kept
//! `[H * W, C]` per sample, so a 3x3 patch is a contiguous run per pixel.

use ami_core::error::{CoreError, Result};
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
}

/// What a forward pass keeps for the backward one.
#[derive(Debug, Clone, Default)]
pub struct ConvCache {
    /// Per convolution: its im2col matrix per sample (`[out_hw, 9 in]`).
    cols: Vec<Vec<Array2<f32>>>,
    /// Per convolution: its output after the ReLU per sample (`[out_hw, out]`).
    acts: Vec<Vec<Array2<f32>>>,
    /// The flattened last feature maps (`[n, flat]`).
    flat: Array2<f32>,
}

impl ConvEncoder {
    /// Weights drawn He-uniform from `seed`, biases zero.
    pub fn new(spec: ConvSpec, seed: u64) -> Result<Self> {
        spec.check()?;
        let (offs, total) = spec.offsets();
        let mut params = vec![0.0f32; total];
        let mut rng = ami_core::rng::rng(seed);
        for (l, &(w, b)) in offs.iter().enumerate() {
            let fan_in = if l < spec.channels.len() { 9 * spec.cin(l) } else { spec.flat() };
            let bound = (6.0 / fan_in as f32).sqrt();
            for p in &mut params[w..b] {
                *p = rng.gen_range(-bound..bound);
            }
        }
        Ok(Self { spec, params })
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

    fn layer(&self, l: usize) -> (ArrayView2<'_, f32>, &[f32]) {
        let (offs, _) = self.spec.offsets();
        let (w, b) = offs[l];
        let (rows, cols) = if l < self.spec.channels.len() { (self.spec.channels[l], 9 * self.spec.cin(l)) } else { (self.spec.embed, self.spec.flat()) };
        (ArrayView2::from_shape((rows, cols), &self.params[w..b]).expect("offsets"), &self.params[b..b + rows])
    }

    /// Embeddings of a batch of images (`[n, input_dim]`) -> `[n, embed]`,
    /// and what the backward pass needs.
    pub fn forward(&self, images: ArrayView2<'_, f32>) -> Result<(Array2<f32>, ConvCache)> {
        let s = &self.spec;
        if images.ncols() != s.input_dim() {
            return Err(CoreError::shape("ConvEncoder::forward", format!("images of {} values", s.input_dim()), format!("{}", images.ncols())));
        }
        let n = images.nrows();
        let mut cache = ConvCache {
            cols: vec![Vec::with_capacity(n); s.channels.len()],
            acts: vec![Vec::with_capacity(n); s.channels.len()],
            flat: Array2::zeros((n, s.flat())),
        };
        for (i, img) in images.rows().into_iter().enumerate() {
            // [C, H, W] -> [H * W, C].
            let hw = s.size * s.size;
            let mut x = Array2::from_shape_fn((hw, s.in_channels), |(p, c)| img[c * hw + p]);
            for l in 0..s.channels.len() {
                let cols = im2col(&x, s.side(l), s.cin(l));
                let (w, b) = self.layer(l);
                let mut y = cols.dot(&w.t());
                for mut row in y.rows_mut() {
                    for (v, bias) in row.iter_mut().zip(b) {
                        *v = (*v + bias).max(0.0);
                    }
                }
                cache.cols[l].push(cols);
                x = y.clone();
                cache.acts[l].push(y);
            }
            cache.flat.row_mut(i).assign(&ndarray::ArrayView1::from(x.as_slice().expect("standard layout")));
        }
        let (w, b) = self.layer(s.channels.len());
        let z = cache.flat.dot(&w.t()) + ndarray::ArrayView1::from(b);
        Ok((z, cache))
    }

    /// The gradient of the parameters (flat, as [`ConvEncoder::params`])
    /// given `d loss / d z` (`[n, embed]`) and the forward pass's cache.
    pub fn backward(&self, cache: &ConvCache, grad_z: ArrayView2<'_, f32>) -> Result<Array1<f32>> {
        let s = &self.spec;
        let n = cache.flat.nrows();
        if grad_z.dim() != (n, s.embed) {
            return Err(CoreError::shape("ConvEncoder::backward", format!("[{n}, {}]", s.embed), format!("{:?}", grad_z.shape())));
        }
        let (offs, total) = s.offsets();
        let mut g = Array1::<f32>::zeros(total);
        let last = s.channels.len();
        let (wl, bl) = offs[last];
        // Linear map.
        let gs = g.as_slice_mut().expect("contiguous");
        let gw = grad_z.t().dot(&cache.flat);
        gs[wl..bl].copy_from_slice(gw.as_standard_layout().as_slice().expect("standard"));
        let gb = grad_z.sum_axis(Axis(0));
        gs[bl..bl + s.embed].copy_from_slice(gb.as_slice().expect("standard"));
        let (w, _) = self.layer(last);
        let gflat = grad_z.dot(&w);
        for i in 0..n {
            let side = s.side(last);
            let mut gy = Array2::from_shape_vec((side * side, s.cin(last)), gflat.row(i).to_vec()).expect("flat shape");
            for l in (0..last).rev() {
                // Through the ReLU.
                let act = &cache.acts[l][i];
                gy.zip_mut_with(act, |gv, &a| {
                    if a <= 0.0 {
                        *gv = 0.0;
                    }
                });
                let (wo, bo) = offs[l];
                let gw = gy.t().dot(&cache.cols[l][i]);
                let gs = g.as_slice_mut().expect("contiguous");
                for (d, v) in gs[wo..bo].iter_mut().zip(gw.as_standard_layout().iter()) {
                    *d += v;
                }
                for (d, v) in gs[bo..bo + s.channels[l]].iter_mut().zip(gy.sum_axis(Axis(0)).iter()) {
                    *d += v;
                }
                if l > 0 {
                    let (w, _) = self.layer(l);
                    let gcols = gy.dot(&w);
                    gy = col2im(&gcols, s.side(l), s.cin(l));
                }
            }
        }
        Ok(g)
    }
}

/// The 3x3, stride 2, padding 1 patches of `x` (`[side * side, c]`):
/// `[out * out, 9 c]`, out = ceil(side / 2).
fn im2col(x: &Array2<f32>, side: usize, c: usize) -> Array2<f32> {
    let out = side.div_ceil(2);
    let mut cols = Array2::<f32>::zeros((out * out, 9 * c));
    let src = x.as_slice().expect("activations are in standard layout");
    let dst = cols.as_slice_mut().expect("fresh array");
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
    cols
}

/// The adjoint of [`im2col`]: patch gradients summed back into a
/// `[side * side, c]` map.
fn col2im(cols: &Array2<f32>, side: usize, c: usize) -> Array2<f32> {
    let out = side.div_ceil(2);
    let mut x = Array2::<f32>::zeros((side * side, c));
    for oy in 0..out {
        for ox in 0..out {
            let row = cols.row(oy * out + ox);
            for ky in 0..3 {
                for kx in 0..3 {
                    let (iy, ix) = ((2 * oy + ky) as isize - 1, (2 * ox + kx) as isize - 1);
                    if iy < 0 || ix < 0 || iy as usize >= side || ix as usize >= side {
                        continue;
                    }
                    let mut dst = x.row_mut(iy as usize * side + ix as usize);
                    let k = (3 * ky + kx) * c;
                    for ch in 0..c {
                        dst[ch] += row[k + ch];
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
