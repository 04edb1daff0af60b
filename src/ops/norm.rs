//! Instance normalisation (`shaders/instance_norm.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{Kernel, INSTANCE_NORM};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// Pixels per partial-statistics chunk.
const CHUNK: usize = 1024;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    hw: u32,
    c: u32,
    chunks: u32,
    chunk_len: u32,
    flags: u32,
    eps: f32,
    total: u32,
}

const FLAG_RELU: u32 = 1;
const FLAG_RESIDUAL: u32 = 2;

fn params(x: &Tensor, eps: f32, flags: u32) -> Params {
    let [n, h, w, c] = x.shape();
    let hw = h * w;
    Params {
        n: n as u32,
        hw: hw as u32,
        c: c as u32,
        chunks: hw.div_ceil(CHUNK).max(1) as u32,
        chunk_len: CHUNK as u32,
        flags,
        eps,
        total: x.len() as u32,
    }
}

/// Per image and channel: `(mean, 1 / sqrt(var + eps))` over H×W, biased variance,
/// as a tensor `[n, 1, c, 2]`. Welford within chunks, Chan's merge across them.
pub fn instance_norm_stats(rec: &mut Recorder, x: &Tensor, eps: f32) -> Result<Tensor> {
    let p = params(x, eps, 0);
    let ctx = rec.context().clone();
    let partials = Tensor::uninit(
        &ctx,
        "instance_norm.partials",
        [p.n as usize, p.chunks as usize, p.c as usize, 4],
    )?;
    let stats = Tensor::uninit(
        &ctx,
        "instance_norm.stats",
        [p.n as usize, 1, p.c as usize, 2],
    )?;
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM, "stats_partial"),
        &p,
        &[(1, x), (2, &partials)],
        [p.c.div_ceil(32), p.chunks, p.n],
    );
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM, "stats_finalize"),
        &p,
        &[(2, &partials), (3, &stats)],
        [(p.n * p.c).div_ceil(64), 1, 1],
    );
    Ok(stats)
}

/// `y = scale * (x - mean) * inv_std + shift (+ residual) (relu)` with `stats` from
/// [`instance_norm_stats`].
pub fn instance_norm_apply(
    rec: &mut Recorder,
    x: &Tensor,
    stats: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
    residual: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let c = x.shape()[3];
    if shift.len() != c || scale.len() != c {
        return Err(Error::InvalidInput(format!(
            "instance norm of {c} channels given shift {:?} and scale {:?}",
            shift.shape(),
            scale.shape()
        )));
    }
    if let Some(r) = residual {
        if r.shape() != x.shape() {
            return Err(Error::InvalidInput(format!(
                "residual {:?} does not match {:?}",
                r.shape(),
                x.shape()
            )));
        }
    }
    let flags = (relu as u32 * FLAG_RELU) | (residual.is_some() as u32 * FLAG_RESIDUAL);
    let p = params(x, 0.0, flags);
    let y = Tensor::uninit(rec.context(), "instance_norm", x.shape())?;
    rec.dispatch(
        &Kernel::new(INSTANCE_NORM, "apply"),
        &p,
        &[
            (1, x),
            (4, stats),
            (5, shift),
            (6, scale),
            (7, residual.unwrap_or(x)),
            (8, &y),
        ],
        grid_elems(x.len()),
    );
    Ok(y)
}

/// Instance normalisation with affine `scale`/`shift`, optional residual add and ReLU.
pub fn instance_norm(
    rec: &mut Recorder,
    x: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
    residual: Option<&Tensor>,
    eps: f32,
    relu: bool,
) -> Result<Tensor> {
    let stats = instance_norm_stats(rec, x, eps)?;
    instance_norm_apply(rec, x, &stats, shift, scale, residual, relu)
}
