//! 2×2 stride-2 pooling with floor output size, forward and backward (`shaders/pool.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/pool.wgsl`.
pub const POOL: Shader = shader_file!("pool.wgsl");

/// The pooling of VGG's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pooling {
    /// 2×2 max pooling (Keras' VGG19).
    #[default]
    Max,
    /// 2×2 average pooling (Gatys et al.'s choice).
    Avg,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) c: u32,
    pub(crate) ho: u32,
    pub(crate) wo: u32,
    pub(crate) total: u32,
    pub(crate) _p: u32,
}

fn params(shape: [usize; 4], total: usize) -> Result<Params> {
    let [n, h, w, c] = shape;
    if h < 2 || w < 2 {
        return Err(Error::InvalidInput(format!(
            "2x2 pooling of {shape:?}: the image is too small for this layer"
        )));
    }
    Ok(Params {
        n: n as u32,
        h: h as u32,
        w: w as u32,
        c: c as u32,
        ho: (h / 2) as u32,
        wo: (w / 2) as u32,
        total: total as u32,
        _p: 0,
    })
}

/// Pools `x` `[n, h, w, c]` to `[n, h/2, w/2, c]` (floor).
pub fn pool(rec: &mut Recorder, x: &Tensor, mode: Pooling) -> Result<Tensor> {
    let [n, h, w, c] = x.shape();
    let out = [n, h / 2, w / 2, c];
    let p = params(x.shape(), out.iter().product())?;
    let y = Tensor::uninit(rec.context(), "pool", out)?;
    let entry = match mode {
        Pooling::Max => "max_fwd",
        Pooling::Avg => "avg_fwd",
    };
    rec.dispatch(
        &Kernel::new(POOL, entry),
        &p,
        &[(1, x), (3, &y)],
        grid_elems(y.len()),
    );
    Ok(y)
}

/// Gradient of [`pool`] with respect to its input `x`, given `dy` (the pooled shape).
/// Max pooling sends each gradient to the window's first maximum (row-major), as TensorFlow.
pub fn pool_backward(rec: &mut Recorder, x: &Tensor, dy: &Tensor, mode: Pooling) -> Result<Tensor> {
    let [n, h, w, c] = x.shape();
    if dy.shape() != [n, h / 2, w / 2, c] {
        return Err(Error::InvalidInput(format!(
            "pool_backward: dy {:?} does not match input {:?}",
            dy.shape(),
            x.shape()
        )));
    }
    let dx = Tensor::uninit(rec.context(), "pool_backward", x.shape())?;
    if mode == Pooling::Max && c.is_multiple_of(4) {
        // A window and 4 channels per invocation (every VGG layer).
        let windows = n * h.div_ceil(2) * w.div_ceil(2) * (c / 4);
        let p = params(x.shape(), windows)?;
        rec.dispatch(
            &Kernel::new(POOL, "max_bwd4"),
            &p,
            &[(1, x), (2, dy), (3, &dx)],
            grid_elems(windows),
        );
        return Ok(dx);
    }
    let p = params(x.shape(), x.len())?;
    let (entry, bindings): (_, &[(u32, &Tensor)]) = match mode {
        Pooling::Max => ("max_bwd", &[(1, x), (2, dy), (3, &dx)]),
        Pooling::Avg => ("avg_bwd", &[(2, dy), (3, &dx)]),
    };
    rec.dispatch(&Kernel::new(POOL, entry), &p, bindings, grid_elems(x.len()));
    Ok(dx)
}
