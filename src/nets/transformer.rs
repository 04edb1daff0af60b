//! The fast style-transfer network (Johnson et al. 2016, as in lengstrom/fast-style-transfer).
//!
//! ```text
//! conv1 9×9/1 3→w, IN, ReLU;  conv2 3×3/2 w→2w, IN, ReLU;  conv3 3×3/2 2w→4w, IN, ReLU
//! res1..res5: x + IN(conv_b(ReLU(IN(conv_a(x)))))            (3×3/1, 4w→4w)
//! up1 (4w→2w), up2 (2w→w): 3×3 transposed conv /2 (or nearest ×2 + 3×3 conv), IN, ReLU
//! conv_out 9×9/1 w→3, IN;  y = tanh(x)·150 + 127.5
//! ```
//! All convolutions use TensorFlow "SAME" zero padding and no bias; w = 32 for lengstrom's.
//!
//! pytorch/examples' `fast_neural_style` TransformerNet ([`Family::PytorchExamples`], also the
//! ONNX model zoo's) has the same layers with reflection padding `k/2`, a bias on every
//! convolution, nearest ×2 + 3×3 convolution to go up, instance-norm epsilon 1e-5, and no
//! instance norm or activation after `conv_out`: its raw output is the image (clamped later).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::{conv2d, conv2d_transpose, Conv2d, Padding};
use crate::ops::elementwise::output_tanh;
use crate::ops::norm::instance_norm;
use crate::ops::upsample::upsample_nearest;

/// How the network goes back up to full resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsample {
    /// 3×3 stride-2 transposed convolution (lengstrom; can leave checkerboard artifacts).
    Transpose,
    /// Nearest-neighbour ×2 then a 3×3 convolution (Odena et al.; no checkerboard).
    Nearest,
}

/// Which network the layers belong to: how they pad, whether they have a bias, and what
/// follows the last convolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Johnson et al. as in lengstrom/fast-style-transfer: "SAME" zero padding, no bias,
    /// instance norm on the last layer, `tanh(x)·150 + 127.5` output.
    #[default]
    Johnson,
    /// pytorch/examples' TransformerNet: reflection padding, conv bias, no norm and no
    /// activation on the last layer (raw output).
    PytorchExamples,
}

impl Family {
    /// The name recorded in metadata (`johnson`, `pytorch-examples`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Johnson => "johnson",
            Family::PytorchExamples => "pytorch-examples",
        }
    }

    /// Parses [`Family::name`].
    pub fn from_name(s: &str) -> Option<Family> {
        match s {
            "johnson" => Some(Family::Johnson),
            "pytorch-examples" => Some(Family::PytorchExamples),
            _ => None,
        }
    }
}

/// A transform-network architecture.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Arch {
    /// Channels of the first layer (32 for lengstrom's network, 16 for the half-width variant).
    pub width: usize,
    /// Upsampling layers.
    pub upsample: Upsample,
    /// Instance-norm epsilon (1e-3 in lengstrom's network).
    pub eps: f32,
    /// Padding, bias and output layer (see [`Family`]).
    #[serde(default)]
    pub family: Family,
}

impl Default for Arch {
    fn default() -> Self {
        Arch::LENGSTROM
    }
}

/// What one layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Convolution with this stride.
    Conv { stride: usize },
    /// Upsampling layer (see [`Upsample`]).
    Up,
}

/// One convolution + instance-norm layer of the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Name, e.g. `conv1`, `res3_b`, `up1`.
    pub name: String,
    /// Kind of layer.
    pub kind: LayerKind,
    /// Kernel size (square).
    pub k: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
}

impl Arch {
    /// lengstrom/fast-style-transfer's network.
    pub const LENGSTROM: Arch = Arch {
        width: 32,
        upsample: Upsample::Transpose,
        eps: 1e-3,
        family: Family::Johnson,
    };

    /// pytorch/examples' `fast_neural_style` TransformerNet (and the ONNX model zoo's).
    pub const PYTORCH_EXAMPLES: Arch = Arch {
        width: 32,
        upsample: Upsample::Nearest,
        eps: 1e-5,
        family: Family::PytorchExamples,
    };

    /// The padding of a `k × k` convolution of this network.
    pub fn padding(&self, k: usize) -> Padding {
        match self.family {
            Family::Johnson => Padding::Same,
            Family::PytorchExamples => Padding::Reflect(k / 2),
        }
    }

    /// Whether every convolution has a bias.
    pub fn has_bias(&self) -> bool {
        self.family == Family::PytorchExamples
    }

    /// Whether layer `i` (0..16) is followed by instance normalisation (all but
    /// pytorch/examples' last).
    pub fn has_norm(&self, i: usize) -> bool {
        !(self.family == Family::PytorchExamples && i == 15)
    }

    /// Float channels of the widest full-resolution tensor: `width`, or twice that where
    /// going up is nearest ×2 then a convolution (up2's upsampled input has `2·width`).
    pub fn widest_channels(&self) -> usize {
        match self.upsample {
            Upsample::Transpose => self.width,
            Upsample::Nearest => 2 * self.width,
        }
    }

    /// Peak GPU memory relative to lengstrom's network, in percent (measured at 512²
    /// without autotuning: 196 MiB in use for lengstrom's, 309 MiB for pytorch/examples').
    pub fn memory_percent(&self) -> u64 {
        match self.upsample {
            Upsample::Transpose => 100,
            Upsample::Nearest => 160,
        }
    }

    /// Checks the combination: pytorch/examples' network goes up by nearest ×2 + conv.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.width == 0 {
            return Err("width 0".into());
        }
        if self.family == Family::PytorchExamples && self.upsample != Upsample::Nearest {
            return Err("the pytorch-examples network upsamples by nearest x2 + conv".into());
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(format!(
                "instance-norm epsilon {} is not positive",
                self.eps
            ));
        }
        Ok(())
    }

    /// The 16 layers in order.
    pub fn layers(&self) -> Vec<Layer> {
        let w = self.width;
        let l = |name: String, kind, k, cin, cout| Layer {
            name,
            kind,
            k,
            cin,
            cout,
        };
        let mut v = vec![
            l("conv1".into(), LayerKind::Conv { stride: 1 }, 9, 3, w),
            l("conv2".into(), LayerKind::Conv { stride: 2 }, 3, w, 2 * w),
            l(
                "conv3".into(),
                LayerKind::Conv { stride: 2 },
                3,
                2 * w,
                4 * w,
            ),
        ];
        for r in 1..=5 {
            for part in ["a", "b"] {
                v.push(l(
                    format!("res{r}_{part}"),
                    LayerKind::Conv { stride: 1 },
                    3,
                    4 * w,
                    4 * w,
                ));
            }
        }
        v.push(l("up1".into(), LayerKind::Up, 3, 4 * w, 2 * w));
        v.push(l("up2".into(), LayerKind::Up, 3, 2 * w, w));
        v.push(l("conv_out".into(), LayerKind::Conv { stride: 1 }, 9, w, 3));
        v
    }

    /// Floating-point operations (2 per multiply-add) of the convolutions of one forward
    /// pass on an `h × w` image.
    pub fn flops(&self, h: usize, w: usize) -> f64 {
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let q = h2.div_ceil(2) * w2.div_ceil(2);
        let mut f = 0.0;
        for layer in self.layers() {
            let out_px = match layer.name.as_str() {
                "conv1" => h * w,
                "conv2" => h2 * w2,
                "up1" => 4 * q,
                "up2" | "conv_out" => 16 * q,
                _ => q,
            } as f64;
            // A transposed conv applies its k×k taps once per *input* pixel.
            let px = if layer.kind == LayerKind::Up && self.upsample == Upsample::Transpose {
                out_px / 4.0
            } else {
                out_px
            };
            f += 2.0 * px * (layer.k * layer.k * layer.cin * layer.cout) as f64;
        }
        f
    }
}

/// Host-side weights of a transform network: per layer a kernel `[k, k, cin, cout]` (HWIO,
/// also for transposed convolutions), a `bias` of length `cout` where [`Arch::has_bias`]
/// (else empty), and instance-norm `shift` and `scale` of length `cout` where
/// [`Arch::has_norm`] (else empty).
#[derive(Clone, Debug)]
pub struct TransformWeights {
    /// The architecture these weights are for.
    pub arch: Arch,
    /// `layer name -> (kernel, shift, scale)`.
    pub layers: BTreeMap<String, LayerWeights>,
}

/// The weights of one layer.
#[derive(Clone, Debug, Default)]
pub struct LayerWeights {
    /// `[k, k, cin, cout]` row-major.
    pub kernel: Vec<f32>,
    /// Instance-norm shift (beta), `cout`.
    pub shift: Vec<f32>,
    /// Instance-norm scale (gamma), `cout`.
    pub scale: Vec<f32>,
    /// Convolution bias, `cout` (empty without [`Arch::has_bias`]).
    pub bias: Vec<f32>,
}

impl TransformWeights {
    /// Checks that every layer is present with the right lengths and finite values.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.arch.check()?;
        for (i, l) in self.arch.layers().into_iter().enumerate() {
            let w = self
                .layers
                .get(&l.name)
                .ok_or_else(|| format!("layer '{}' is missing", l.name))?;
            let kl = l.k * l.k * l.cin * l.cout;
            let norm = if self.arch.has_norm(i) { l.cout } else { 0 };
            let bias = if self.arch.has_bias() { l.cout } else { 0 };
            for (what, v, n) in [
                ("kernel", &w.kernel, kl),
                ("shift", &w.shift, norm),
                ("scale", &w.scale, norm),
                ("bias", &w.bias, bias),
            ] {
                if v.len() != n {
                    return Err(format!(
                        "{}.{what} has {} values, expected {n}",
                        l.name,
                        v.len()
                    ));
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(format!("{}.{what} contains NaN or infinite values", l.name));
                }
            }
        }
        Ok(())
    }
}

struct GpuLayer {
    spec: Layer,
    kernel: Tensor,
    shift: Tensor,
    scale: Tensor,
    bias: Option<Tensor>,
}

/// A transform network with its weights on the GPU.
pub struct TransformNet {
    ctx: Context,
    arch: Arch,
    layers: Vec<GpuLayer>,
}

impl TransformNet {
    /// Uploads `weights` (validated first).
    pub fn new(ctx: &Context, weights: &TransformWeights) -> Result<Self> {
        weights
            .validate()
            .map_err(|m| Error::InvalidInput(format!("transform weights: {m}")))?;
        let mut layers = Vec::new();
        for spec in weights.arch.layers() {
            let w = &weights.layers[&spec.name];
            // A layer without norm keeps a 1-value placeholder (buffers cannot be empty).
            let vec = |label: &str, v: &[f32]| {
                let v = if v.is_empty() { &[0.0][..] } else { v };
                Tensor::persistent(ctx, label, [1, 1, 1, v.len()], v)
            };
            layers.push(GpuLayer {
                kernel: Tensor::persistent(
                    ctx,
                    &format!("{}.kernel", spec.name),
                    [spec.k, spec.k, spec.cin, spec.cout],
                    &w.kernel,
                )?,
                shift: vec(&format!("{}.shift", spec.name), &w.shift)?,
                scale: vec(&format!("{}.scale", spec.name), &w.scale)?,
                bias: if w.bias.is_empty() {
                    None
                } else {
                    Some(vec(&format!("{}.bias", spec.name), &w.bias)?)
                },
                spec,
            });
        }
        Ok(TransformNet {
            ctx: ctx.clone(),
            arch: weights.arch,
            layers,
        })
    }

    /// The context the weights live on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Layer `i` (0..16): its spec, kernel, instance-norm shift and scale.
    pub fn layer_weights(&self, i: usize) -> (&Layer, &Tensor, &Tensor, &Tensor) {
        let l = &self.layers[i];
        (&l.spec, &l.kernel, &l.shift, &l.scale)
    }

    /// Layer `i`'s convolution bias (with [`Arch::has_bias`]).
    pub fn layer_bias(&self, i: usize) -> Option<&Tensor> {
        self.layers[i].bias.as_ref()
    }

    fn layer(
        &self,
        i: usize,
        rec: &mut Recorder,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        let l = &self.layers[i];
        let padding = self.arch.padding(l.spec.k);
        let bias = l.bias.as_ref();
        let h = match l.spec.kind {
            LayerKind::Conv { stride } => conv2d(
                rec,
                x,
                &l.kernel,
                bias,
                Conv2d {
                    stride,
                    padding,
                    relu: false,
                },
            )?,
            LayerKind::Up => {
                let [_, hh, ww, _] = x.shape();
                match self.arch.upsample {
                    Upsample::Transpose => {
                        conv2d_transpose(rec, x, &l.kernel, 2, (2 * hh, 2 * ww), false)?
                    }
                    Upsample::Nearest => {
                        let u = upsample_nearest(rec, x, 2)?;
                        conv2d(
                            rec,
                            &u,
                            &l.kernel,
                            bias,
                            Conv2d {
                                stride: 1,
                                padding,
                                relu: false,
                            },
                        )?
                    }
                }
            }
        };
        if !self.arch.has_norm(i) {
            return Ok(h);
        }
        instance_norm(rec, &h, &l.shift, &l.scale, residual, self.arch.eps, relu)
    }

    /// Records the forward pass on `x` `[n, h, w, 3]` (RGB 0..255) and returns the raw output
    /// (`tanh(·)·150 + 127.5`, or pytorch/examples' unbounded last convolution) of shape `[n, 4⌈⌈h/2⌉/2⌉, 4⌈⌈w/2⌉/2⌉, 3]` (the reference network's
    /// size; the caller crops the top-left `h × w`).
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
        if x.shape()[3] != 3 {
            return Err(Error::InvalidInput(format!(
                "transform network input must have 3 channels, got {:?}",
                x.shape()
            )));
        }
        let mut h = self.layer(0, rec, x, None, true)?;
        h = self.layer(1, rec, &h, None, true)?;
        h = self.layer(2, rec, &h, None, true)?;
        for r in 0..5 {
            let a = self.layer(3 + 2 * r, rec, &h, None, true)?;
            h = self.layer(4 + 2 * r, rec, &a, Some(&h), false)?;
        }
        h = self.layer(13, rec, &h, None, true)?;
        h = self.layer(14, rec, &h, None, true)?;
        h = self.layer(15, rec, &h, None, false)?;
        match self.arch.family {
            Family::Johnson => output_tanh(rec, &h, 150.0, 127.5),
            Family::PytorchExamples => Ok(h),
        }
    }
}
