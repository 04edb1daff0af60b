//! Gram matrices of feature maps and their backward (`shaders/gram.wgsl`, `conv2d.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{Kernel, GRAM};
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::{conv2d, Conv2d, Padding};

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    k: u32,
    c: u32,
    scale: f32,
    _p: u32,
}

/// `G = FᵀF / (H·W·C)` for `f` `[1, h, w, c]`, returned as `[1, 1, c, c]`.
pub fn gram(rec: &mut Recorder, f: &Tensor) -> Result<Tensor> {
    let [n, h, w, c] = f.shape();
    if n != 1 {
        return Err(Error::InvalidInput(format!(
            "gram of a batch {:?}: one image at a time",
            f.shape()
        )));
    }
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
