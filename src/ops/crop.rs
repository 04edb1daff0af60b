//! Window copy (`shaders/crop.wgsl`), used to cut tiles out of larger tensors.

use crate::error::{Error, Result};
use crate::gpu::kernels::{Kernel, CROP};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    src_h: u32,
    src_w: u32,
    c: u32,
    y0: u32,
    x0: u32,
    h: u32,
    w: u32,
    total: u32,
    _p: [u32; 3],
}

/// `y = x[:, y0..y0+h, x0..x0+w, :]`.
pub fn crop(
    rec: &mut Recorder,
    x: &Tensor,
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
) -> Result<Tensor> {
    let [n, sh, sw, c] = x.shape();
    if y0 + h > sh || x0 + w > sw {
        return Err(Error::InvalidInput(format!(
            "crop {h}x{w} at ({y0}, {x0}) outside {:?}",
            x.shape()
        )));
    }
    if (y0, x0, h, w) == (0, 0, sh, sw) {
        return Ok(x.clone());
    }
    let y = Tensor::uninit(rec.context(), "crop", [n, h, w, c])?;
    let p = Params {
        n: n as u32,
        src_h: sh as u32,
        src_w: sw as u32,
        c: c as u32,
        y0: y0 as u32,
        x0: x0 as u32,
        h: h as u32,
        w: w as u32,
        total: y.len() as u32,
        _p: [0; 3],
    };
    rec.dispatch(
        &Kernel::new(CROP, "crop"),
        &p,
        &[(1, x), (2, &y)],
        grid_elems(y.len()),
    );
    Ok(y)
}
