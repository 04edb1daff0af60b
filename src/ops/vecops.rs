//! Vector kernels (`shaders/vecops.wgsl`): axpy, scale and the ReLU backward.

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/vecops.wgsl`.
pub const VECOPS: Shader = shader_file!("vecops.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) len: u32,
    pub(crate) flags: u32,
    pub(crate) alpha: f32,
    pub(crate) _p: u32,
}

fn same_len(what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::InvalidInput(format!(
            "{what}: lengths of {:?} and {:?} differ",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}

/// `y += alpha · x` in place.
pub fn axpy(rec: &mut Recorder, y: &Tensor, alpha: f32, x: &Tensor) -> Result<()> {
    same_len("axpy", x, y)?;
    let p = Params {
        len: y.len() as u32,
        flags: 0,
        alpha,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(VECOPS, "axpy"),
        &p,
        &[(1, x), (4, y)],
        grid_elems(y.len()),
    );
    Ok(())
}

/// `alpha · x` into a new tensor.
pub fn scale(rec: &mut Recorder, x: &Tensor, alpha: f32) -> Result<Tensor> {
    let y = Tensor::uninit(rec.context(), "scale", x.shape())?;
    let p = Params {
        len: y.len() as u32,
        flags: 0,
        alpha,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(VECOPS, "scale"),
        &p,
        &[(1, x), (4, &y)],
        grid_elems(y.len()),
    );
    Ok(y)
}

/// A new tensor of `shape` filled with `value` on the GPU. Unlike an upload, this is
/// ordered with the recorded work, so it is safe in the middle of a recording (an upload
/// may land in a pooled buffer that earlier recorded dispatches still use).
pub fn fill(rec: &mut Recorder, shape: [usize; 4], value: f32) -> Result<Tensor> {
    let y = Tensor::uninit(rec.context(), "fill", shape)?;
    let p = Params {
        len: y.len() as u32,
        flags: 0,
        alpha: value,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(VECOPS, "fill"),
        &p,
        &[(4, &y)],
        grid_elems(y.len()),
    );
    Ok(y)
}

/// Gradient through a ReLU with output `y`: `(g + extra) · [y > 0]`.
pub fn relu_backward(
    rec: &mut Recorder,
    y: &Tensor,
    g: &Tensor,
    extra: Option<&Tensor>,
) -> Result<Tensor> {
    same_len("relu_backward", y, g)?;
    if let Some(e) = extra {
        same_len("relu_backward", y, e)?;
    }
    let dx = Tensor::uninit(rec.context(), "relu_backward", y.shape())?;
    // vec4s where the length allows (every VGG activation).
    let (entry, len) = if y.len().is_multiple_of(4) {
        ("relu_bwd4", y.len() / 4)
    } else {
        ("relu_bwd", y.len())
    };
    let p = Params {
        len: len as u32,
        flags: extra.is_some() as u32,
        alpha: 0.0,
        _p: 0,
    };
    rec.dispatch(
        &Kernel::new(VECOPS, entry),
        &p,
        &[(1, y), (2, g), (3, extra.unwrap_or(g)), (4, &dx)],
        grid_elems(len),
    );
    Ok(dx)
}
