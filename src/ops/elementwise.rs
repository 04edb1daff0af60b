//! Element-wise kernels (`shaders/elementwise.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/elementwise.wgsl`.
pub const ELEMENTWISE: Shader = shader_file!("elementwise.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) len: u32,
    pub(crate) scale: f32,
    pub(crate) offset: f32,
    pub(crate) _p: u32,
}

/// `y = a + b` (same shapes).
pub fn add(rec: &mut Recorder, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(Error::InvalidInput(format!(
            "add of {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let y = Tensor::uninit(rec.context(), "add", a.shape())?;
    let p = Params {
        len: a.len() as u32,
        scale: 0.0,
        offset: 0.0,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(ELEMENTWISE, "add"),
        &p,
        &[(1, a), (2, b), (3, &y)],
        grid_elems(a.len()),
    );
    Ok(y)
}

/// `y = tanh(x) * scale + offset`; the fast network uses 150 and 127.5.
pub fn output_tanh(rec: &mut Recorder, x: &Tensor, scale: f32, offset: f32) -> Result<Tensor> {
    let y = Tensor::uninit(rec.context(), "output_tanh", x.shape())?;
    let p = Params {
        len: x.len() as u32,
        scale,
        offset,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(ELEMENTWISE, "output_tanh"),
        &p,
        &[(1, x), (3, &y)],
        grid_elems(x.len()),
    );
    Ok(y)
}

/// Backward of [`output_tanh`] given its input `x` and the output gradient `dy`:
/// `dx = dy · scale · (1 − tanh(x)²)`.
pub fn output_tanh_backward(
    rec: &mut Recorder,
    x: &Tensor,
    dy: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    if x.shape() != dy.shape() {
        return Err(Error::InvalidInput(format!(
            "output_tanh_backward of {:?} given gradient {:?}",
            x.shape(),
            dy.shape()
        )));
    }
    let dx = Tensor::uninit(rec.context(), "output_tanh_backward", x.shape())?;
    let p = Params {
        len: x.len() as u32,
        scale,
        offset: 0.0,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(ELEMENTWISE, "output_tanh_backward"),
        &p,
        &[(1, x), (2, dy), (3, &dx)],
        grid_elems(x.len()),
    );
    Ok(dx)
}
