//! Training fast style networks (Johnson et al. 2016) on the GPU with the same kernels as
//! the fast path, and their backward passes.
//!
//! The loss is lengstrom/fast-style-transfer's, term by term, for a batch of `B` photos
//! `x_i` and the network's outputs `y_i` (RGB 0..255), both fed to VGG19 as BGR minus the
//! ImageNet mean:
//! - content: `cw · Σ_i Σ (F(y_i) − F(x_i))² / (B·H·W·C)` at each content layer;
//! - style: `sw · Σ_layers Σ_i Σ (G(y_i) − A)² / (C²·B)`, `G = FᵀF / (H·W·C)`;
//! - TV: `tvw · Σ_i (Σ dx² + Σ dy²) / ((S−1)·S·3·B)` for `S × S` crops.
//!
//! One iteration is one GPU submission: the network's forward pass, VGG forward and
//! backward for each image, the network's backward pass and Adam on every parameter.

pub mod checkpoint;
pub mod data;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::nets::transformer::{Arch, LayerWeights, TransformNet, TransformWeights};
use crate::nets::vgg::{layer_channels, layer_index, Vgg, CAFFE_MEAN_BGR};
use crate::ops::conv::{conv2d, Conv2d, Padding};
use crate::ops::crop::{batch_item, set_batch_item};
use crate::ops::optim::{adam_step, AdamParams};
use crate::ops::vecops::axpy;
use crate::optimize::{LossSpec, Losses, Objective};
use checkpoint::Checkpoint;

/// Settings of a training run (those that decide its result; stored in checkpoints).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainOptions {
    /// Weight of the content loss (lengstrom: 7.5).
    pub content_weight: f32,
    /// Weight of the style loss (lengstrom: 100).
    pub style_weight: f32,
    /// Weight of the total-variation loss (lengstrom: 200).
    pub tv_weight: f32,
    /// VGG layers of the content loss.
    pub content_layers: Vec<String>,
    /// VGG layers of the style loss.
    pub style_layers: Vec<String>,
    /// Side of the square training crops (a multiple of 4).
    pub image_size: u32,
    /// Photos per iteration.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f32,
    /// Seed of the initial weights, the data order and the crops.
    pub seed: u64,
    /// The network's architecture.
    pub arch: Arch,
}

impl Default for TrainOptions {
    fn default() -> Self {
        // The same layers as the optimisation path (and lengstrom).
        let layers = LossSpec::default();
        TrainOptions {
            content_weight: 7.5,
            style_weight: 100.0,
            tv_weight: 200.0,
            content_layers: layers.content_layers,
            style_layers: layers.style_layers,
            image_size: 256,
            batch_size: 4,
            learning_rate: 1e-3,
            seed: 0,
            arch: Arch::LENGSTROM,
        }
    }
}

impl TrainOptions {
    /// The per-image loss of one batch image, with lengstrom's normalisations folded into
    /// the weights (see the module documentation).
    pub fn loss_spec(&self) -> Result<LossSpec> {
        let b = self.batch_size as f32;
        let s = self.image_size as f32;
        let style_layer_weights = self
            .style_layers
            .iter()
            .map(|n| Ok(1.0 / (layer_channels(layer_index(n)?) as f32).powi(2)))
            .collect::<Result<Vec<f32>>>()?;
        Ok(LossSpec {
            content_layers: self.content_layers.clone(),
            style_layers: self.style_layers.clone(),
            content_weight: self.content_weight / b,
            style_weight: self.style_weight / b,
            style_layer_weights: Some(style_layer_weights),
            tv_weight: self.tv_weight / ((s - 1.0) * s * 3.0 * b),
        })
    }

    /// Checks every setting (image size, batch size, learning rate); [`Trainer::new`] does too.
    pub fn validate(&self) -> Result<()> {
        if self.image_size < 16 || !self.image_size.is_multiple_of(4) {
            return Err(Error::InvalidSetting {
                setting: "image_size",
                value: self.image_size.to_string(),
                expected: "a multiple of 4, at least 16",
            });
        }
        if self.batch_size == 0 {
            return Err(Error::InvalidSetting {
                setting: "batch_size",
                value: self.batch_size.to_string(),
                expected: "at least 1",
            });
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::InvalidSetting {
                setting: "learning_rate",
                value: self.learning_rate.to_string(),
                expected: "positive and finite",
            });
        }
        Ok(())
    }
}

/// The losses of one iteration (before its update).
#[derive(Clone, Debug, PartialEq)]
pub struct StepLosses {
    /// The iteration (1-based: the first iteration is 1).
    pub iteration: u64,
    /// The loss terms, summed over the batch.
    pub losses: Losses,
    /// Seconds from the submission to the losses being read back: the GPU's share of the
    /// iteration (the rest is recording on the CPU and waiting for data).
    pub gpu_seconds: f64,
}

/// A network being trained, with its optimizer state.
pub struct Trainer<'a> {
    ctx: Context,
    net: TransformNet,
    objective: Objective<'a>,
    options: TrainOptions,
    to_vgg: (Tensor, Tensor),
    moments: Vec<[(Tensor, Tensor); 3]>,
    iteration: u64,
}

/// `[1, 1, 3, 3]` kernel swapping R and B (its own transpose), and the mean to subtract.
fn to_vgg_tensors(ctx: &Context) -> Result<(Tensor, Tensor)> {
    let mut k = vec![0.0; 9];
    for c in 0..3 {
        k[c * 3 + (2 - c)] = 1.0;
    }
    let bias = CAFFE_MEAN_BGR.map(|m| -m);
    Ok((
        Tensor::persistent(ctx, "train.rgb_to_bgr", [1, 1, 3, 3], &k)?,
        Tensor::persistent(ctx, "train.minus_mean", [1, 1, 1, 3], &bias)?,
    ))
}

const POINTWISE: Conv2d = Conv2d {
    stride: 1,
    padding: Padding::Valid,
    relu: false,
};

impl<'a> Trainer<'a> {
    /// A freshly initialised network (seeded by `options.seed`) for the style image
    /// `style` (preprocessed BGR, `[1, h, w, 3]`; see [`crate::optimize::image::preprocess`]).
    pub fn new(ctx: &Context, vgg: &'a Vgg, style: &Tensor, options: TrainOptions) -> Result<Self> {
        options.validate()?;
        let net = TransformNet::init(ctx, options.arch, options.seed)?;
        let zeros = |spec: &crate::nets::transformer::Layer| LayerWeights {
            kernel: vec![0.0; spec.k * spec.k * spec.cin * spec.cout],
            shift: vec![0.0; spec.cout],
            scale: vec![0.0; spec.cout],
            bias: Vec::new(),
        };
        let z: Vec<LayerWeights> = options.arch.layers().iter().map(zeros).collect();
        Self::assemble(ctx, vgg, style, options, net, &z, &z, 0)
    }

    /// Continues the run saved in `ck` (the style image must be the run's).
    pub fn resume(ctx: &Context, vgg: &'a Vgg, style: &Tensor, ck: &Checkpoint) -> Result<Self> {
        ck.options.validate()?;
        let net = TransformNet::new(ctx, &ck.weights)?;
        Self::assemble(
            ctx,
            vgg,
            style,
            ck.options.clone(),
            net,
            &ck.m,
            &ck.v,
            ck.iteration,
        )
    }

    #[allow(clippy::too_many_arguments)] // the parts of a trainer, each needed once
    fn assemble(
        ctx: &Context,
        vgg: &'a Vgg,
        style: &Tensor,
        options: TrainOptions,
        net: TransformNet,
        m: &[LayerWeights],
        v: &[LayerWeights],
        iteration: u64,
    ) -> Result<Self> {
        let spec = options.loss_spec()?;
        // The style targets; the content targets are replaced per batch image.
        let objective = Objective::new(ctx, vgg, &spec, style, &[(style.clone(), 1.0)])?;
        let mut moments = Vec::new();
        for (i, (m, v)) in m.iter().zip(v).enumerate() {
            let (_, k, shift, scale) = net.layer_weights(i);
            let up = |t: &Tensor, d: &[f32], what: &str| {
                Tensor::persistent(ctx, &format!("adam.{what}.{i}"), t.shape(), d)
            };
            moments.push([
                (up(k, &m.kernel, "m")?, up(k, &v.kernel, "v")?),
                (up(shift, &m.shift, "m")?, up(shift, &v.shift, "v")?),
                (up(scale, &m.scale, "m")?, up(scale, &v.scale, "v")?),
            ]);
        }
        Ok(Trainer {
            ctx: ctx.clone(),
            net,
            objective,
            options,
            to_vgg: to_vgg_tensors(ctx)?,
            moments,
            iteration,
        })
    }

    /// Iterations done.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The run's settings.
    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    /// The network being trained.
    pub fn net(&self) -> &TransformNet {
        &self.net
    }

    /// One iteration on a batch (`batch_size × S × S × 3` RGB 0..255, NHWC), in one GPU
    /// submission; returns the batch's losses before the update.
    pub fn step(&mut self, pixels: &[f32]) -> Result<StepLosses> {
        let (b, s) = (self.options.batch_size, self.options.image_size as usize);
        let x = Tensor::upload(&self.ctx, "train.batch", [b, s, s, 3], pixels)?;
        let mut rec = Recorder::new(&self.ctx, "train.step");
        let (y, tape) = self.net.forward_tape(&mut rec, &x)?;
        let (k, mean) = &self.to_vgg;
        let p = conv2d(&mut rec, &y, k, Some(mean), POINTWISE)?;
        let pc = conv2d(&mut rec, &x, k, Some(mean), POINTWISE)?;
        let gp = Tensor::uninit(&self.ctx, "train.vgg_grad", p.shape())?;
        let mut scalars: Option<Tensor> = None;
        for i in 0..b {
            let ci = batch_item(&mut rec, &pc, i)?;
            let obj = self.objective.with_content(&mut rec, &ci)?;
            let pi = batch_item(&mut rec, &p, i)?;
            let (g, sc) = obj.record(&mut rec, &pi)?;
            set_batch_item(&mut rec, &gp, i, &g)?;
            match &scalars {
                Some(acc) => axpy(&mut rec, acc, 1.0, &sc)?,
                None => scalars = Some(sc),
            }
        }
        // Back through the colour conversion (a permutation: its own transpose).
        let gy = conv2d(&mut rec, &gp, k, None, POINTWISE)?;
        let grads = self.net.backward(&mut rec, &tape, &gy)?;
        let t = (self.iteration + 1) as u32;
        let a = AdamParams {
            lr: self.options.learning_rate,
            ..AdamParams::default()
        };
        for (i, g) in grads.iter().enumerate() {
            let (_, kernel, shift, scale) = self.net.layer_weights(i);
            let [mk, ms, mc] = &self.moments[i];
            adam_step(&mut rec, kernel, &g.kernel, &mk.0, &mk.1, a, t)?;
            adam_step(&mut rec, shift, &g.shift, &ms.0, &ms.1, a, t)?;
            adam_step(&mut rec, scale, &g.scale, &mc.0, &mc.1, a, t)?;
        }
        let rb = rec.readback(scalars.as_ref().expect("batch_size >= 1"));
        let t0 = std::time::Instant::now();
        rec.submit()?;
        let losses = self.objective.losses(&rb.read(&self.ctx)?);
        self.iteration += 1;
        Ok(StepLosses {
            iteration: self.iteration,
            losses,
            gpu_seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// The current weights, read back from the GPU.
    pub fn weights(&self) -> Result<TransformWeights> {
        self.net.download_weights()
    }

    /// The run's state, to save and resume from.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        // Every moment tensor read back in one submission.
        let mut rec = Recorder::new(&self.ctx, "train.checkpoint");
        let pending: Vec<_> = self
            .moments
            .iter()
            .map(|parts| {
                parts
                    .each_ref()
                    .map(|(m, v)| (rec.readback(m), rec.readback(v)))
            })
            .collect();
        rec.submit()?;
        let mut m = Vec::new();
        let mut v = Vec::new();
        for [a, b, c] in pending {
            let (ctx, (am, av), (bm, bv), (cm, cv)) = (&self.ctx, a, b, c);
            m.push(LayerWeights {
                kernel: am.read(ctx)?,
                shift: bm.read(ctx)?,
                scale: cm.read(ctx)?,
                bias: Vec::new(),
            });
            v.push(LayerWeights {
                kernel: av.read(ctx)?,
                shift: bv.read(ctx)?,
                scale: cv.read(ctx)?,
                bias: Vec::new(),
            });
        }
        Ok(Checkpoint {
            weights: self.weights()?,
            m,
            v,
            iteration: self.iteration,
            options: self.options.clone(),
        })
    }
}
