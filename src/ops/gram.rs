//! Gram matrices of feature maps and their backward (`shaders/gram.wgsl`, `conv2d.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{Kernel, GRAM};
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::{conv2d, Conv2d, Padding};
use crate::ops::conv_grad::{conv2d_weight_grad_with, WeightGradKernel};
use crate::ops::vecops::scale;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    k: u32,
    c: u32,
    scale: f32,
    _p: u32,
}

/// `G = FᵀF / (H·W·C)` for `f` `[1, h, w, c]`, returned as `[1, 1, c, c]`: with
/// [`gram_tiled`] on GPUs, with [`gram_direct`] on CPU adapters (where the tiled kernel's
/// workgroup barriers are slow), the same choice as the weight gradient's
/// ([`WeightGradKernel::default_for`]).
pub fn gram(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    match WeightGradKernel::default_on(rec) {
        WeightGradKernel::Direct => gram_direct(rec, f),
        WeightGradKernel::Tiled => gram_tiled(rec, f),
    }
}

/// [`gram`] as the weight gradient of a 1×1 convolution, `dW = Σ_p F[p]ᵀ F[p]`, by the direct
/// (no workgroup memory) weight-gradient kernel with its deterministic split-K, then scaled.
pub fn gram_direct(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    let [_, h, w, c] = check_one(f)?;
    let g = conv2d_weight_grad_with(
        rec,
        f,
        f,
        (1, 1),
        1,
        Padding::Valid,
        WeightGradKernel::Direct,
    )?;
    scale(rec, &g, (1.0 / (h as f64 * w as f64 * c as f64)) as f32)
}

fn check_one(f: &Tensor) -> Result<[usize; 4]> {
    if f.shape()[0] != 1 {
        return Err(Error::InvalidInput(format!(
            "gram of a batch {:?}: one image at a time",
            f.shape()
        )));
    }
    Ok(f.shape())
}

/// [`gram`] by `gram.wgsl`: 16×16 tiles of `G` per workgroup over workgroup-shared tiles of `F`.
pub fn gram_tiled(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    let [_, h, w, c] = check_one(f)?;
    let g = Tensor::uninit(rec.context(), "gram", [1, 1, c, c])?;
    let p = Params {
        k: (h * w) as u32,
        c: c as u32,
        scale: (1.0 / (h as f64 * w as f64 * c as f64)) as f32,
        _p: 0,
    };
    let t = c.div_ceil(16) as u32;
    rec.dispatch(
        &Kernel::new(GRAM, "forward"),
        &p,
        &[(1, f), (2, &g)],
        [t, t, 1],
    );
    Ok(g)
}

/// Backward of [`gram`] for a symmetric `dg` = dL/dG: `dF = 2 F · dG / (H·W·C)`, as a 1×1
/// convolution (implicit GEMM) with the kernel `dg` `[1, 1, c, c]`. `dg` must already
/// include the factor `2 / (H·W·C)`; see [`crate::ops::loss::style_layer`].
pub fn gram_backward(rec: &mut Recorder, f: &Tensor, dg_scaled: &Tensor) -> Result<Tensor> {
    conv2d(
        rec,
        f,
        dg_scaled,
        None,
        Conv2d {
            stride: 1,
            padding: Padding::Valid,
            relu: false,
        },
    )
}
