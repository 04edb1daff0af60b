//! Nearest-neighbour upsampling (`shaders/upsample.wgsl`).

use crate::error::Result;
use crate::gpu::kernels::{Kernel, UPSAMPLE};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    factor: u32,
    total: u32,
    _p: [u32; 2],
}

/// `y[n, oy, ox, c] = x[n, oy / f, ox / f, c]`, output `[n, f*h, f*w, c]`.
pub fn upsample_nearest(rec: &mut Recorder, x: &Tensor, factor: usize) -> Result<Tensor> {
    let [n, h, w, c] = x.shape();
    let y = Tensor::uninit(
        rec.context(),
        "upsample_nearest",
        [n, h * factor, w * factor, c],
    )?;
    let p = Params {
        n: n as u32,
        h: h as u32,
        w: w as u32,
        c: c as u32,
        factor: factor as u32,
        total: y.len() as u32,
        _p: [0; 2],
    };
    rec.dispatch(
        &Kernel::new(UPSAMPLE, "nearest"),
        &p,
        &[(1, x), (2, &y)],
        grid_elems(y.len()),
    );
    Ok(y)
}
