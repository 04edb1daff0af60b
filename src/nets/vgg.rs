//! VGG19's 16 convolutions (3×3, stride 1, zero padding 1, bias, ReLU) with 2×2 pooling
//! between blocks, run forward and backward on the GPU up to a chosen layer.
//!
//! Input: one image `[1, h, w, 3]`, BGR, 0..255 minus the Caffe mean ([`CAFFE_MEAN_BGR`]).
//! Layers are named `reluB_C` (block B, conv C; ReLU included). Pooling floors odd sizes.

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::{conv2d, Conv2d, Padding};
use crate::ops::elementwise::add;
use crate::ops::pool::{pool, pool_backward, Pooling};
use crate::ops::vecops::relu_backward;

/// The Caffe/Keras mean subtracted from the BGR input, in B, G, R order.
pub const CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];

/// Keras names, input and output channels of VGG19's convolutions, in order.
pub const VGG19_CONVS: [(&str, usize, usize); 16] = [
    ("block1_conv1", 3, 64),
    ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128),
    ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256),
    ("block3_conv2", 256, 256),
    ("block3_conv3", 256, 256),
    ("block3_conv4", 256, 256),
    ("block4_conv1", 256, 512),
    ("block4_conv2", 512, 512),
    ("block4_conv3", 512, 512),
    ("block4_conv4", 512, 512),
    ("block5_conv1", 512, 512),
    ("block5_conv2", 512, 512),
    ("block5_conv3", 512, 512),
    ("block5_conv4", 512, 512),
];

/// One convolution's weights on the CPU: kernel HWIO `[3, 3, cin, cout]`, bias `[cout]`.
#[derive(Clone, Debug)]
pub struct VggConv {
    /// Keras name, e.g. `block4_conv2`.
    pub name: String,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// `[3, 3, cin, cout]`, row-major.
    pub kernel: Vec<f32>,
    /// `[cout]`.
    pub bias: Vec<f32>,
}

/// VGG19's convolution weights (all 16 layers), on the CPU.
#[derive(Clone, Debug)]
pub struct VggWeights {
    /// The convolutions in order.
    pub convs: Vec<VggConv>,
}

/// Index (0..16) of a layer named `reluB_C` or `convB_C` (also Keras' `blockB_convC`).
pub fn layer_index(name: &str) -> Result<usize> {
    let bad = || {
        Error::InvalidInput(format!(
            "unknown VGG19 layer '{name}' (expected relu1_1..relu5_4, e.g. relu4_2)"
        ))
    };
    let (b, c) = if let Some(rest) = name.strip_prefix("block") {
        rest.split_once("_conv").ok_or_else(bad)?
    } else {
        let rest = name
            .strip_prefix("relu")
            .or_else(|| name.strip_prefix("conv"))
            .ok_or_else(bad)?;
        rest.split_once('_').ok_or_else(bad)?
    };
    let (b, c): (usize, usize) = (b.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?);
    let sizes = [2, 2, 4, 4, 4];
    if !(1..=5).contains(&b) || c < 1 || c > sizes[b - 1] {
        return Err(bad());
    }
    Ok(sizes[..b - 1].iter().sum::<usize>() + c - 1)
}

/// Output channels of layer `i`.
pub fn layer_channels(i: usize) -> usize {
    VGG19_CONVS[i].2
}

/// The `reluB_C` name of layer `i`.
pub fn layer_name(i: usize) -> String {
    let name = VGG19_CONVS[i].0;
    let b = &name[5..6];
    let c = &name[11..];
    format!("relu{b}_{c}")
}

/// The most pixels an image may have for VGG19 to run on it on `ctx`: each activation is one
/// GPU buffer, and the widest per pixel is the first block's (64 f32 channels at full size).
pub fn max_pixels(ctx: &Context) -> u64 {
    ctx.max_binding_bytes() / (4 * VGG19_CONVS[0].2 as u64)
}

/// The longest side (as [`crate::optimize::image::resize_longest`] takes it) to scale a
/// `w × h` image to so that VGG19 runs on it on `ctx`, or `None` when it fits as it is.
pub fn fitting_longest_side(ctx: &Context, w: u32, h: u32) -> Option<u32> {
    let max = max_pixels(ctx);
    let (w, h) = (w.max(1) as u64, h.max(1) as u64);
    if w * h <= max {
        return None;
    }
    let longest = w.max(h);
    // The size resize_longest gives for `side` (same rounding).
    let pixels = |side: u64| {
        let s = side as f64 / longest as f64;
        let d = |v: u64| ((v as f64 * s).round() as u64).max(1);
        d(w) * d(h)
    };
    let mut side = ((max as f64 / (w * h) as f64).sqrt() * longest as f64).floor() as u64;
    while side > 1 && pixels(side) > max {
        side -= 1;
    }
    Some(side.max(1) as u32)
}

/// True when layer `i` is the first of blocks 2..5 (its input is pooled).
fn pooled_input(i: usize) -> bool {
    matches!(i, 2 | 4 | 8 | 12)
}

struct GpuConv {
    w: Tensor,
    w_flipped: Tensor,
    b: Tensor,
}

/// VGG19 on the GPU.
pub struct Vgg {
    convs: Vec<GpuConv>,
    /// The pooling between blocks.
    pub pooling: Pooling,
}

const CONV: Conv2d = Conv2d {
    stride: 1,
    padding: Padding::Zero(1),
    relu: true,
};

/// Kernel of the input gradient: `wf[ky, kx, co, ci] = w[2 − ky, 2 − kx, ci, co]`.
pub fn flip_kernel(w: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let mut f = vec![0.0; w.len()];
    for ky in 0..3 {
        for kx in 0..3 {
            for ci in 0..cin {
                for co in 0..cout {
                    f[((ky * 3 + kx) * cout + co) * cin + ci] =
                        w[(((2 - ky) * 3 + (2 - kx)) * cin + ci) * cout + co];
                }
            }
        }
    }
    f
}

impl Vgg {
    /// Uploads the first `layers` convolutions (1..=16) of `w`.
    pub fn new(ctx: &Context, w: &VggWeights, layers: usize, pooling: Pooling) -> Result<Self> {
        let mut convs = Vec::new();
        for c in w.convs.iter().take(layers) {
            let wf = flip_kernel(&c.kernel, c.cin, c.cout);
            convs.push(GpuConv {
                w: Tensor::persistent(ctx, &c.name, [3, 3, c.cin, c.cout], &c.kernel)?,
                w_flipped: Tensor::persistent(ctx, &c.name, [3, 3, c.cout, c.cin], &wf)?,
                b: Tensor::persistent(ctx, &c.name, [1, 1, 1, c.cout], &c.bias)?,
            });
        }
        Ok(Vgg { convs, pooling })
    }

    /// Number of layers uploaded.
    pub fn layers(&self) -> usize {
        self.convs.len()
    }

    /// The ReLU outputs of layers `0..=last` for image `x` `[1, h, w, 3]`.
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor, last: usize) -> Result<Vec<Tensor>> {
        if last >= self.convs.len() {
            return Err(Error::InvalidInput(format!(
                "layer {} needs VGG loaded up to it",
                layer_name(last)
            )));
        }
        let mut acts: Vec<Tensor> = Vec::with_capacity(last + 1);
        for (i, c) in self.convs.iter().enumerate().take(last + 1) {
            let input = match acts.last() {
                None => x.clone(),
                Some(a) if pooled_input(i) => pool(rec, a, self.pooling)?,
                Some(a) => a.clone(),
            };
            acts.push(conv2d(rec, &input, &c.w, Some(&c.b), CONV)?);
        }
        Ok(acts)
    }

    /// dL/dx given the activations of [`Vgg::forward`] and dL/d(activation) for some layers
    /// (`grads[i]`, `None` where the loss does not read layer `i`).
    pub fn backward(
        &self,
        rec: &mut Recorder,
        acts: &[Tensor],
        grads: &[Option<Tensor>],
    ) -> Result<Tensor> {
        let mut g: Option<Tensor> = None;
        for i in (0..acts.len()).rev() {
            let extra = grads.get(i).and_then(|g| g.as_ref());
            let pre = match (&g, extra) {
                (Some(g), e) => relu_backward(rec, &acts[i], g, e)?,
                (None, Some(e)) => relu_backward(rec, &acts[i], e, None)?,
                (None, None) => continue,
            };
            let c = &self.convs[i];
            let conv = Conv2d {
                relu: false,
                ..CONV
            };
            let dx = conv2d(rec, &pre, &c.w_flipped, None, conv)?;
            g = Some(if i > 0 && pooled_input(i) {
                pool_backward(rec, &acts[i - 1], &dx, self.pooling)?
            } else {
                dx
            });
        }
        g.ok_or_else(|| Error::InvalidInput("backward with no gradient".into()))
    }
}

/// `a + b`, or whichever exists.
pub fn add_opt(rec: &mut Recorder, a: Option<Tensor>, b: Tensor) -> Result<Tensor> {
    match a {
        Some(a) => add(rec, &a, &b),
        None => Ok(b),
    }
}
