//! Losses of optimisation style transfer with their gradients (`shaders/loss.wgsl`).
//! Loss values go into slots of a scalar vector on the GPU (see [`crate::ops::reduce`]).

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::{grid_elems, Recorder};
use crate::gpu::tensor::Tensor;
use crate::ops::gram::{gram, gram_backward};
use crate::ops::reduce::{finish, parts_for, reduce_into, Reduce};

/// `shaders/loss.wgsl`.
pub const LOSS: Shader = shader_file!("loss.wgsl");

/// Scalar slots: total, content, style, TV; per-term slots follow from [`FIRST_TERM_SLOT`].
pub const SLOT_TOTAL: usize = 0;
/// Sum of the content terms.
pub const SLOT_CONTENT: usize = 1;
/// Sum of the style terms.
pub const SLOT_STYLE: usize = 2;
/// The weighted TV term.
pub const SLOT_TV: usize = 3;
/// First per-layer slot (content layers, then style layers).
pub const FIRST_TERM_SLOT: usize = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) len: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) c: u32,
    pub(crate) scale: f32,
    pub(crate) first: u32,
    pub(crate) n_content: u32,
    pub(crate) n_style: u32,
}

fn params(t: &Tensor, scale: f32) -> Params {
    let [_, h, w, c] = t.shape();
    Params {
        len: t.len() as u32,
        h: h as u32,
        w: w as u32,
        c: c as u32,
        scale,
        first: 0,
        n_content: 0,
        n_style: 0,
    }
}

/// `scale · (a − b)` into a new tensor.
pub fn scaled_diff(rec: &mut Recorder, a: &Tensor, b: &Tensor, scale: f32) -> Result<Tensor> {
    if a.len() != b.len() {
        return Err(Error::InvalidInput(format!(
            "difference of {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let y = Tensor::uninit(rec.context(), "scaled_diff", a.shape())?;
    rec.dispatch(
        &Kernel::new(LOSS, "scaled_diff"),
        &params(a, scale),
        &[(1, a), (2, b), (3, &y)],
        grid_elems(a.len()),
    );
    Ok(y)
}

/// Content loss `weight · mean((f − target)²)` into `scalars[slot]`; returns dL/df.
pub fn content_layer(
    rec: &mut Recorder,
    f: &Tensor,
    target: &Tensor,
    weight: f32,
    scalars: &Tensor,
    slot: usize,
) -> Result<Tensor> {
    let n = f.len() as f64;
    reduce_into(
        rec,
        f,
        Some(target),
        Reduce::SqDiff,
        scalars,
        slot,
        (weight as f64 / n) as f32,
    )?;
    scaled_diff(rec, f, target, (2.0 * weight as f64 / n) as f32)
}

/// Style loss `weight · Σ (G(f) − target)²` (G normalised by H·W·C) into `scalars[slot]`;
/// returns dL/df = f · 4·weight·(G − target)/(H·W·C).
pub fn style_layer(
    rec: &mut Recorder,
    f: &Tensor,
    target_gram: &Tensor,
    weight: f32,
    scalars: &Tensor,
    slot: usize,
) -> Result<Tensor> {
    let g = gram(rec, f)?;
    reduce_into(
        rec,
        &g,
        Some(target_gram),
        Reduce::SqDiff,
        scalars,
        slot,
        weight,
    )?;
    let n = f.len() as f64;
    let d = scaled_diff(rec, &g, target_gram, (4.0 * weight as f64 / n) as f32)?;
    gram_backward(rec, f, &d)
}

/// Total variation `weight · tv(x)` into `scalars[slot]`; returns `g + weight · dtv/dx`.
pub fn tv(
    rec: &mut Recorder,
    x: &Tensor,
    weight: f32,
    g: &Tensor,
    scalars: &Tensor,
    slot: usize,
) -> Result<Tensor> {
    if x.shape()[0] != 1 || g.shape() != x.shape() {
        return Err(Error::InvalidInput(format!(
            "tv of {:?} with gradient {:?}: one image, same shapes",
            x.shape(),
            g.shape()
        )));
    }
    let n = parts_for(x.len());
    let parts = Tensor::uninit(rec.context(), "tv.parts", [1, 1, 1, n])?;
    rec.dispatch(
        &Kernel::new(LOSS, "tv_partial"),
        &params(x, 1.0),
        &[(1, x), (3, &parts)],
        [n as u32, 1, 1],
    );
    finish(rec, &parts, n, scalars, slot, weight)?;
    let y = Tensor::uninit(rec.context(), "tv_grad", x.shape())?;
    rec.dispatch(
        &Kernel::new(LOSS, "tv_grad"),
        &params(x, weight),
        &[(1, x), (2, g), (3, &y)],
        grid_elems(x.len()),
    );
    Ok(y)
}

/// Fills the content, style and total slots from the per-layer slots (TV already in place).
pub fn combine(rec: &mut Recorder, scalars: &Tensor, n_content: usize, n_style: usize) {
    let p = Params {
        len: 0,
        h: 0,
        w: 0,
        c: 0,
        scale: 0.0,
        first: FIRST_TERM_SLOT as u32,
        n_content: n_content as u32,
        n_style: n_style as u32,
    };
    rec.dispatch(
        &Kernel::new(LOSS, "combine"),
        &p,
        &[(3, scalars)],
        [1, 1, 1],
    );
}
