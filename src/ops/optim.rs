//! The Adam update (`shaders/optim.wgsl`).

use crate::error::Result;
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;

/// `shaders/optim.wgsl`.
pub const OPTIM: Shader = shader_file!("optim.wgsl");

/// Adam's constants.
#[derive(Clone, Copy, Debug)]
pub struct AdamParams {
    /// Learning rate (pixel units of the preprocessed image).
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the square root of the corrected second moment.
    pub eps: f32,
}

impl Default for AdamParams {
    fn default() -> Self {
        AdamParams {
            lr: 2.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) len: u32,
    pub(crate) _p: [u32; 3],
    pub(crate) lr: f32,
    pub(crate) b1: f32,
    pub(crate) b2: f32,
    pub(crate) eps: f32,
    pub(crate) bc1: f32,
    pub(crate) bc2: f32,
    pub(crate) _q: [f32; 2],
}

/// Step `t` (1-based) of Adam on `x` in place, with moments `m`, `v` (zero at t = 1):
/// `x -= lr · (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + ε)`, bias corrections in f64.
pub fn adam_step(
    rec: &mut Recorder,
    x: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    a: AdamParams,
    t: u32,
) -> Result<()> {
    let p = Params {
        len: x.len() as u32,
        _p: [0; 3],
        lr: a.lr,
        b1: a.beta1,
        b2: a.beta2,
        eps: a.eps,
        bc1: (1.0 - (a.beta1 as f64).powi(t as i32)) as f32,
        bc2: (1.0 - (a.beta2 as f64).powi(t as i32)) as f32,
        _q: [0.0; 2],
    };
    rec.dispatch(
        &Kernel::new(OPTIM, "adam"),
        &p,
        &[(1, g), (3, x), (4, m), (5, v)],
        grid_elems(x.len()),
    );
    Ok(())
}
