//! Nearest-neighbour upsampling (`shaders/upsample.wgsl`).

use crate::error::Result;
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/upsample.wgsl`.
pub const UPSAMPLE: Shader = shader_file!("upsample.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) c: u32,
    pub(crate) factor: u32,
    pub(crate) total: u32,
    pub(crate) _p: [u32; 2],
}

/// Parameters of both kernels: the low-resolution shape `[n, h, w, c]`, the factor, and the
/// number of invocations.
fn params([n, h, w, c]: [usize; 4], factor: usize, total: usize) -> Params {
    Params {
        n: n as u32,
        h: h as u32,
        w: w as u32,
        c: c as u32,
        factor: factor as u32,
        total: total as u32,
        _p: [0; 2],
    }
}

/// `y[n, oy, ox, c] = x[n, oy / f, ox / f, c]`, output `[n, f*h, f*w, c]`.
pub fn upsample_nearest(rec: &mut Recorder, x: &Tensor, factor: usize) -> Result<Tensor> {
    let [n, h, w, c] = x.shape();
    let y = Tensor::uninit(
        rec.context(),
        "upsample_nearest",
        [n, h * factor, w * factor, c],
    )?;
    let p = params(x.shape(), factor, y.len());
    rec.dispatch(
        &Kernel::new(UPSAMPLE, "nearest"),
        &p,
        &[(1, x), (2, &y)],
        grid_elems(y.len()),
    );
    Ok(y)
}

/// Backward of [`upsample_nearest`]: `dx[n, y, x, c]` is the sum of `dy` over the
/// `factor × factor` block that `x[n, y, x, c]` was copied to; output `[n, h / f, w / f, c]`.
pub fn upsample_nearest_backward(rec: &mut Recorder, dy: &Tensor, factor: usize) -> Result<Tensor> {
    let [n, ho, wo, c] = dy.shape();
    if factor == 0 || ho % factor != 0 || wo % factor != 0 {
        return Err(crate::Error::InvalidInput(format!(
            "upsample_nearest_backward: {:?} is not a ×{factor} upsampling",
            dy.shape()
        )));
    }
    let (h, w) = (ho / factor, wo / factor);
    let dx = Tensor::uninit(rec.context(), "upsample_nearest_backward", [n, h, w, c])?;
    let p = params(dx.shape(), factor, dx.len());
    rec.dispatch(
        &Kernel::new(UPSAMPLE, "nearest_backward"),
        &p,
        &[(3, dy), (4, &dx)],
        grid_elems(dx.len()),
    );
    Ok(dx)
}
