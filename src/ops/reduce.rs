//! Reductions to scalars on the GPU (`shaders/reduce.wgsl`): two passes, per-workgroup
//! partial sums then one workgroup, so float32 sums keep ~1e-6 relative accuracy.

use crate::error::{Error, Result};
use crate::gpu::kernels::{shader_file, Kernel, Shader};
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;

/// `shaders/reduce.wgsl`.
pub const REDUCE: Shader = shader_file!("reduce.wgsl");

/// What [`reduce_into`] sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// `Σ a·b`
    Dot,
    /// `Σ (a − b)²`
    SqDiff,
    /// `Σ a²` (`b` ignored)
    SumSq,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub len: u32,
    pub mode: u32,
    pub count: u32,
    pub slot: u32,
    pub scale: f32,
    pub _p: [u32; 3],
}

/// Most partial sums per reduction (one per workgroup of the first pass).
pub const MAX_PARTS: usize = 256;

/// Number of first-pass workgroups for `len` elements.
pub fn parts_for(len: usize) -> usize {
    len.div_ceil(256).clamp(1, MAX_PARTS)
}

/// Writes `out[slot] = scale · Σ f(a, b)` (`out` is a vector of scalars on the GPU).
pub fn reduce_into(
    rec: &mut Recorder,
    a: &Tensor,
    b: Option<&Tensor>,
    kind: Reduce,
    out: &Tensor,
    slot: usize,
    scale: f32,
) -> Result<()> {
    let b = match (kind, b) {
        (Reduce::SumSq, _) => a,
        (_, Some(b)) if b.len() == a.len() => b,
        _ => {
            return Err(Error::InvalidInput(format!(
                "{kind:?} reduction of {:?} needs a second tensor of the same length",
                a.shape()
            )))
        }
    };
    if slot >= out.len() {
        return Err(Error::InvalidInput(format!(
            "scalar slot {slot} outside {:?}",
            out.shape()
        )));
    }
    let n = parts_for(a.len());
    let parts = Tensor::uninit(rec.context(), "reduce.parts", [1, 1, 1, n])?;
    let mode = match kind {
        Reduce::Dot => 0,
        Reduce::SqDiff => 1,
        Reduce::SumSq => 2,
    };
    let p = Params {
        len: a.len() as u32,
        mode,
        count: n as u32,
        slot: slot as u32,
        scale,
        _p: [0; 3],
    };
    rec.dispatch(
        &Kernel::new(REDUCE, "partial"),
        &p,
        &[(1, a), (2, b), (3, &parts)],
        [n as u32, 1, 1],
    );
    finish(rec, &parts, n, out, slot, scale)
}

/// Second pass: `out[slot] = scale · Σ parts[0..count]`.
pub(crate) fn finish(
    rec: &mut Recorder,
    parts: &Tensor,
    count: usize,
    out: &Tensor,
    slot: usize,
    scale: f32,
) -> Result<()> {
    let p = Params {
        len: 0,
        mode: 0,
        count: count as u32,
        slot: slot as u32,
        scale,
        _p: [0; 3],
    };
    rec.dispatch(
        &Kernel::new(REDUCE, "finish"),
        &p,
        &[(1, parts), (3, out)],
        [1, 1, 1],
    );
    Ok(())
}

/// A fresh vector of `n` scalars on the GPU, zeroed by a recorded dispatch.
pub fn scalars(rec: &mut Recorder, n: usize) -> Result<Tensor> {
    crate::ops::vecops::fill(rec, [1, 1, 1, n], 0.0)
}

/// `Σ a·b` read back to the CPU (one submission). For optimisers, which may read scalars.
pub fn dot(ctx: &crate::Context, a: &Tensor, b: &Tensor) -> Result<f32> {
    let mut rec = Recorder::new(ctx, "dot");
    let out = scalars(&mut rec, 1)?;
    reduce_into(&mut rec, a, Some(b), Reduce::Dot, &out, 0, 1.0)?;
    let rb = rec.readback(&out);
    rec.submit()?;
    Ok(rb.read(ctx)?[0])
}
