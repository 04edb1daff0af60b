//! Training support for the fast network ([`TransformNet`]): a forward pass that keeps what
//! the backward pass needs (a [`Tape`]), the backward pass to every layer's parameters,
//! lengstrom's random initialisation and reading the weights back.
//!
//! The weight tensors of [`TransformNet::layer_weights`] are plain GPU buffers, so an
//! optimiser can update them in place (e.g. [`adam_step`](crate::ops::optim::adam_step)
//! with the matching [`LayerGrads`]).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::nets::transformer::{
    Arch, LayerKind, LayerWeights, TransformNet, TransformWeights, Upsample,
};
use crate::ops::conv::{conv2d, conv2d_transpose, Conv2d, Padding};
use crate::ops::conv_grad::{
    conv2d_input_grad, conv2d_transpose_input_grad, conv2d_transpose_weight_grad,
    conv2d_weight_grad,
};
use crate::ops::elementwise::{add, output_tanh, output_tanh_backward};
use crate::ops::norm::{instance_norm_apply, instance_norm_stats};
use crate::ops::norm_grad::instance_norm_backward;
use crate::ops::upsample::{upsample_nearest, upsample_nearest_backward};

/// Scale and offset of the output mapping `tanh(x)·150 + 127.5`.
const OUT_SCALE: f32 = 150.0;
const OUT_OFFSET: f32 = 127.5;
/// Standard deviation of lengstrom's truncated-normal kernel initialisation.
const INIT_STD: f64 = 0.1;

/// What the backward pass of one layer needs from its forward pass.
struct TapeLayer {
    /// The convolution's input (for nearest-upsampling layers: the upsampled tensor).
    input: Tensor,
    /// Spatial size of the layer's input (before any upsampling).
    in_hw: (usize, usize),
    /// The convolution's output, before instance normalisation.
    pre: Tensor,
    /// Instance-norm statistics of `pre`, `[n, 1, c, 2]`.
    stats: Tensor,
    /// The layer's output (after normalisation, residual add and ReLU).
    out: Tensor,
}

/// The intermediate tensors of [`TransformNet::forward_tape`], for [`TransformNet::backward`].
pub struct Tape {
    layers: Vec<TapeLayer>,
}

impl Tape {
    /// The output of layer `i` (0..16) after normalisation, residual add and ReLU; layer 15's
    /// is the input of the final `tanh`.
    pub fn layer_output(&self, i: usize) -> &Tensor {
        &self.layers[i].out
    }
}

/// The gradients of one layer's parameters, with the shapes of its tensors in
/// [`TransformNet::layer_weights`].
#[derive(Clone, Debug)]
pub struct LayerGrads {
    /// `[k, k, cin, cout]`.
    pub kernel: Tensor,
    /// `[1, 1, 1, cout]`.
    pub shift: Tensor,
    /// `[1, 1, 1, cout]`.
    pub scale: Tensor,
}

impl TransformNet {
    /// Layer `i` forward, keeping its intermediate tensors.
    fn tape_layer(
        &self,
        rec: &mut Recorder,
        i: usize,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<TapeLayer> {
        let (spec, kernel, shift, scale) = self.layer_weights(i);
        let [_, hh, ww, _] = x.shape();
        let same = |stride| Conv2d {
            stride,
            padding: Padding::Same,
            relu: false,
        };
        let (input, pre) = match (spec.kind, self.arch().upsample) {
            (LayerKind::Conv { stride }, _) => {
                (x.clone(), conv2d(rec, x, kernel, None, same(stride))?)
            }
            (LayerKind::Up, Upsample::Transpose) => (
                x.clone(),
                conv2d_transpose(rec, x, kernel, 2, (2 * hh, 2 * ww), false)?,
            ),
            (LayerKind::Up, Upsample::Nearest) => {
                let u = upsample_nearest(rec, x, 2)?;
                let pre = conv2d(rec, &u, kernel, None, same(1))?;
                (u, pre)
            }
        };
        let stats = instance_norm_stats(rec, &pre, self.arch().eps)?;
        let out = instance_norm_apply(rec, &pre, &stats, shift, scale, residual, relu)?;
        Ok(TapeLayer {
            input,
            in_hw: (hh, ww),
            pre,
            stats,
            out,
        })
    }

    /// [`TransformNet::forward`] (the same kernels in the same order, so the same output),
    /// also returning the [`Tape`] that [`TransformNet::backward`] needs. `x` is `[n, h, w, 3]`.
    pub fn forward_tape(&self, rec: &mut Recorder, x: &Tensor) -> Result<(Tensor, Tape)> {
        check_trainable(self.arch())?;
        if x.shape()[3] != 3 {
            return Err(Error::InvalidInput(format!(
                "transform network input must have 3 channels, got {:?}",
                x.shape()
            )));
        }
        let mut layers: Vec<TapeLayer> = Vec::with_capacity(16);
        let mut h = x.clone();
        for i in 0..3 {
            layers.push(self.tape_layer(rec, i, &h, None, true)?);
            h = layers[i].out.clone();
        }
        for r in 0..5 {
            let a = self.tape_layer(rec, 3 + 2 * r, &h, None, true)?;
            let b = self.tape_layer(rec, 4 + 2 * r, &a.out, Some(&h), false)?;
            h = b.out.clone();
            layers.push(a);
            layers.push(b);
        }
        for i in 13..16 {
            layers.push(self.tape_layer(rec, i, &h, None, i != 15)?);
            h = layers[i].out.clone();
        }
        let y = output_tanh(rec, &h, OUT_SCALE, OUT_OFFSET)?;
        Ok((y, Tape { layers }))
    }

    /// Backward of layer `i` given the gradient `g` of its output: its parameter gradients
    /// and, if `need_dx`, the gradient of its input.
    fn layer_backward(
        &self,
        rec: &mut Recorder,
        i: usize,
        t: &TapeLayer,
        g: &Tensor,
        relu: bool,
        need_dx: bool,
    ) -> Result<(LayerGrads, Option<Tensor>)> {
        let (spec, kernel, _, scale) = self.layer_weights(i);
        let ng = instance_norm_backward(rec, &t.pre, &t.stats, scale, &t.out, g, relu)?;
        let k = (spec.k, spec.k);
        let (dw, dx) = match (spec.kind, self.arch().upsample) {
            (LayerKind::Conv { stride }, _) => {
                let dw = conv2d_weight_grad(rec, &t.input, &ng.dx, k, stride, Padding::Same)?;
                let dx = if need_dx {
                    Some(conv2d_input_grad(
                        rec,
                        &ng.dx,
                        kernel,
                        t.in_hw,
                        stride,
                        Padding::Same,
                    )?)
                } else {
                    None
                };
                (dw, dx)
            }
            (LayerKind::Up, Upsample::Transpose) => {
                let dw = conv2d_transpose_weight_grad(rec, &t.input, &ng.dx, k, 2)?;
                let dx = if need_dx {
                    Some(conv2d_transpose_input_grad(
                        rec, &ng.dx, kernel, t.in_hw, 2,
                    )?)
                } else {
                    None
                };
                (dw, dx)
            }
            (LayerKind::Up, Upsample::Nearest) => {
                let dw = conv2d_weight_grad(rec, &t.input, &ng.dx, k, 1, Padding::Same)?;
                let dx = if need_dx {
                    let [_, uh, uw, _] = t.input.shape();
                    let du = conv2d_input_grad(rec, &ng.dx, kernel, (uh, uw), 1, Padding::Same)?;
                    Some(upsample_nearest_backward(rec, &du, 2)?)
                } else {
                    None
                };
                (dw, dx)
            }
        };
        let grads = LayerGrads {
            kernel: dw,
            shift: ng.dshift,
            scale: ng.dscale,
        };
        Ok((grads, dx))
    }

    /// Records the backward pass: given the [`Tape`] of [`TransformNet::forward_tape`] and the
    /// gradient `dy` of the loss with respect to its output, the gradients of every layer's
    /// kernel, shift and scale (layers 0..16 in order; batch gradients are summed over the
    /// images). For either [`Upsample`] kind and any width.
    pub fn backward(
        &self,
        rec: &mut Recorder,
        tape: &Tape,
        dy: &Tensor,
    ) -> Result<Vec<LayerGrads>> {
        let last = &tape.layers[tape.layers.len() - 1];
        if tape.layers.len() != 16 || dy.shape() != last.out.shape() {
            return Err(Error::InvalidInput(format!(
                "backward: gradient {:?} for an output of {:?}",
                dy.shape(),
                last.out.shape()
            )));
        }
        let mut grads: Vec<Option<LayerGrads>> = vec![None; 16];
        let mut g = output_tanh_backward(rec, &last.out, dy, OUT_SCALE)?;
        let mut step = |rec: &mut Recorder, i: usize, g: &Tensor, relu: bool, need_dx: bool| {
            let (lg, dx) = self.layer_backward(rec, i, &tape.layers[i], g, relu, need_dx)?;
            grads[i] = Some(lg);
            Ok::<_, Error>(dx)
        };
        for i in (13..16).rev() {
            g = step(rec, i, &g, i != 15, true)?.expect("input gradient");
        }
        for r in (0..5).rev() {
            // h' = h + IN(conv_b(relu(IN(conv_a(h))))): the residual passes g through.
            let da = step(rec, 4 + 2 * r, &g, false, true)?.expect("input gradient");
            let dh = step(rec, 3 + 2 * r, &da, true, true)?.expect("input gradient");
            g = add(rec, &dh, &g)?;
        }
        for i in (0..3).rev() {
            if let Some(dx) = step(rec, i, &g, true, i > 0)? {
                g = dx;
            }
        }
        Ok(grads
            .into_iter()
            .map(|g| g.expect("every layer visited"))
            .collect())
    }

    /// A network with lengstrom's initialisation: kernels from a normal distribution with
    /// standard deviation 0.1 truncated at two standard deviations (redrawn beyond), shift 0,
    /// scale 1. The same `seed` gives the same weights.
    pub fn init(ctx: &Context, arch: Arch, seed: u64) -> Result<TransformNet> {
        check_trainable(arch)?;
        let mut rng = crate::rng::SplitMix64::new(seed);
        let mut layers = BTreeMap::new();
        for l in arch.layers() {
            let kernel = (0..l.k * l.k * l.cin * l.cout)
                .map(|_| (rng.truncated_normal() * INIT_STD) as f32)
                .collect();
            layers.insert(
                l.name.clone(),
                LayerWeights {
                    kernel,
                    shift: vec![0.0; l.cout],
                    scale: vec![1.0; l.cout],
                    bias: Vec::new(),
                },
            );
        }
        TransformNet::new(ctx, &TransformWeights { arch, layers })
    }

    /// Reads every layer's kernel, shift and scale back from the GPU (one submission).
    pub fn download_weights(&self) -> Result<TransformWeights> {
        let ctx = self.context();
        let mut rec = Recorder::new(ctx, "download_weights");
        let mut pending = Vec::with_capacity(16);
        for i in 0..16 {
            let (spec, kernel, shift, scale) = self.layer_weights(i);
            pending.push((
                spec.name.clone(),
                rec.readback(kernel),
                rec.readback(shift),
                rec.readback(scale),
            ));
        }
        rec.submit()?;
        let mut layers = BTreeMap::new();
        for (name, k, sh, sc) in pending {
            let w = LayerWeights {
                kernel: k.read(ctx)?,
                shift: sh.read(ctx)?,
                scale: sc.read(ctx)?,
                bias: Vec::new(),
            };
            layers.insert(name, w);
        }
        Ok(TransformWeights {
            arch: self.arch(),
            layers,
        })
    }
}

/// Training covers the Johnson family only (no bias, zero padding, tanh output).
fn check_trainable(arch: Arch) -> Result<()> {
    if arch.family != crate::nets::transformer::Family::Johnson {
        return Err(Error::InvalidInput(format!(
            "training supports the johnson network only, not {}",
            arch.family.name()
        )));
    }
    Ok(())
}
