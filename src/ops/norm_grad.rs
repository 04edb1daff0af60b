//! Backward pass of instance normalisation (`shaders/instance_norm_grad.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/instance_norm_grad.wgsl`.
pub const INSTANCE_NORM_GRAD: Shader = shader_file!("instance_norm_grad.wgsl");

/// Pixels per partial-sum chunk.
const CHUNK: usize = 1024;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) hw: u32,
    pub(crate) c: u32,
    pub(crate) chunks: u32,
    pub(crate) chunk_len: u32,
    pub(crate) flags: u32,
    pub(crate) total: u32,
    pub(crate) _p: u32,
}

const FLAG_RELU: u32 = 1;

/// Gradients of [`instance_norm_apply`](crate::ops::norm::instance_norm_apply).
#[derive(Clone, Debug)]
pub struct NormGrads {
    /// Gradient of the pre-norm input `x`, shape of `x`.
    pub dx: Tensor,
    /// Gradient of `shift` (beta), summed over the batch, `[1, 1, 1, c]`.
    pub dshift: Tensor,
    /// Gradient of `scale` (gamma), summed over the batch, `[1, 1, 1, c]`.
    pub dscale: Tensor,
}

/// Backward pass of `y = relu?(scale · (x − mean) · inv_std + shift (+ residual))` given the
/// pre-norm input `x`, the forward's `stats` (from
/// [`instance_norm_stats`](crate::ops::norm::instance_norm_stats)), `scale`, the forward
/// output `y` (read only for the ReLU mask, when `relu`) and `dy`.
///
/// The residual's gradient is not computed here: it is `dy` masked by the ReLU, i.e. `dy`
/// itself without ReLU, or [`relu_backward`](crate::ops::vecops::relu_backward)`(y, dy)`.
/// Per-(image, channel) sums are taken in chunks of 1024 pixels, then over the chunks and
/// the images in a fixed order (deterministic).
pub fn instance_norm_backward(
    rec: &mut Recorder,
    x: &Tensor,
    stats: &Tensor,
    scale: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    relu: bool,
) -> Result<NormGrads> {
    let [n, h, w, c] = x.shape();
    if y.shape() != x.shape() || dy.shape() != x.shape() {
        return Err(Error::InvalidInput(format!(
            "instance_norm_backward: x {:?}, y {:?} and dy {:?} differ",
            x.shape(),
            y.shape(),
            dy.shape()
        )));
    }
    if scale.len() != c || stats.len() != 2 * n * c {
        return Err(Error::InvalidInput(format!(
            "instance_norm_backward of {:?} given scale {:?} and stats {:?}",
            x.shape(),
            scale.shape(),
            stats.shape()
        )));
    }
    let hw = h * w;
    let chunks = hw.div_ceil(CHUNK).max(1);
    let p = Params {
        n: n as u32,
        hw: hw as u32,
        c: c as u32,
        chunks: chunks as u32,
        chunk_len: CHUNK as u32,
        flags: if relu { FLAG_RELU } else { 0 },
        total: x.len() as u32,
        _p: 0,
    };
    let ctx = rec.context().clone();
    let partials = Tensor::uninit(&ctx, "instance_norm_grad.partials", [n, chunks, c, 2])?;
    let sums = Tensor::uninit(&ctx, "instance_norm_grad.sums", [n, 1, c, 2])?;
    let dshift = Tensor::uninit(&ctx, "instance_norm_grad.dshift", [1, 1, 1, c])?;
    let dscale = Tensor::uninit(&ctx, "instance_norm_grad.dscale", [1, 1, 1, c])?;
    let dx = Tensor::uninit(&ctx, "instance_norm_grad.dx", x.shape())?;
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM_GRAD, "grad_partial"),
        &p,
        &[(1, x), (2, stats), (3, y), (4, dy), (6, &partials)],
        [c.div_ceil(32) as u32, chunks as u32, n as u32],
    );
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM_GRAD, "grad_finalize"),
        &p,
        &[(6, &partials), (7, &sums), (9, &dshift), (10, &dscale)],
        [c.div_ceil(64) as u32, 1, 1],
    );
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM_GRAD, "grad_input"),
        &p,
        &[
            (1, x),
            (2, stats),
            (3, y),
            (4, dy),
            (5, scale),
            (8, &dx),
            (11, &sums),
        ],
        grid_elems(x.len()),
    );
    Ok(NormGrads { dx, dshift, dscale })
}
