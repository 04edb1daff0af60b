//! Adam on the GPU: one submission per iteration (loss, gradient and update), the loss
//! scalars read back.

use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::optim::{adam_step, AdamParams};
use crate::optimize::{Losses, Objective};

/// Runs `iterations` Adam steps on `x` in place. `step(i, losses)` is called after
/// iteration `i` (1-based) with the loss of the iterate it started from (`x_{i-1}`); it
/// may stop the run by returning `Ok(false)`.
pub fn adam(
    ctx: &Context,
    obj: &Objective<'_>,
    x: &Tensor,
    params: AdamParams,
    iterations: usize,
    mut step: impl FnMut(usize, &Losses) -> Result<bool>,
) -> Result<()> {
    let zeros = vec![0.0; x.len()];
    let m = Tensor::upload(ctx, "adam.m", x.shape(), &zeros)?;
    let v = Tensor::upload(ctx, "adam.v", x.shape(), &zeros)?;
    for t in 1..=iterations {
        let mut rec = Recorder::new(ctx, "adam");
        let (g, s) = obj.record(&mut rec, x)?;
        adam_step(&mut rec, x, &g, &m, &v, params, t as u32)?;
        let rb = rec.readback(&s);
        rec.submit()?;
        let l = obj.losses(&rb.read(ctx)?);
        if !step(t, &l)? {
            break;
        }
    }
    Ok(())
}
