//! Suite cases for the backward kernels (training and Gatys), the Gram matrix, and what the
//! fused instance-norm epilogue saves over separate kernels.

use super::cases::{random_tensor as t, Case};
use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::ops::conv::Padding;
use crate::ops::conv_grad::{conv2d_input_grad, conv2d_transpose_weight_grad, conv2d_weight_grad};
use crate::ops::elementwise::add;
use crate::ops::gram::{gram, gram_backward};
use crate::ops::norm::{instance_norm_apply, instance_norm_stats};
use crate::ops::norm_grad::instance_norm_backward;

/// Weight and input gradients of the fast network's convolutions at input size `s`.
pub fn conv_grads(ctx: &Context, s: usize, v: &mut Vec<Case<'_>>) -> Result<()> {
    // (name, input size, k, stride, cin, cout)
    let layers = [
        ("transform.conv1", s, 9, 1, 3, 32),
        ("transform.conv2", s, 3, 2, 32, 64),
        ("transform.res", s / 4, 3, 1, 128, 128),
        ("transform.conv_out", s, 9, 1, 32, 3),
    ];
    for (name, hw, k, stride, cin, cout) in layers {
        let out = hw.div_ceil(stride);
        let x = t(ctx, [1, hw, hw, cin], 11)?;
        let dy = t(ctx, [1, out, out, cout], 12)?;
        let w = t(ctx, [k, k, cin, cout], 13)?;
        let flops = 2.0 * (out * out * k * k * cin * cout) as f64;
        let (nx, ny, nw) = (hw * hw * cin, out * out * cout, k * k * cin * cout);
        let shape = format!("{k}x{k}/{stride} {cin}->{cout} @{hw}x{hw}");
        v.push(Case {
            name: format!("conv_weight_grad/{name} {shape}"),
            kind: "kernel",
            flops,
            bytes: 4.0 * (nx + ny + nw) as f64,
            record: Box::new(move |rec| {
                Ok(vec![conv2d_weight_grad(
                    rec,
                    &x,
                    &dy,
                    (k, k),
                    stride,
                    Padding::Same,
                )?])
            }),
        });
        let dy = t(ctx, [1, out, out, cout], 14)?;
        v.push(Case {
            name: format!("conv_input_grad/{name} {shape}"),
            kind: "kernel",
            flops,
            bytes: 4.0 * (nx + ny + 2 * nw) as f64,
            record: Box::new(move |rec| {
                let dx = conv2d_input_grad(rec, &dy, &w, (hw, hw), stride, Padding::Same)?;
                Ok(vec![dx])
            }),
        });
    }
    let q = s / 4;
    let x = t(ctx, [1, q, q, 128], 15)?;
    let dy = t(ctx, [1, 2 * q, 2 * q, 64], 16)?;
    v.push(Case {
        name: format!("conv_transpose_weight_grad/transform.up 3x3/2 128->64 @{q}x{q}"),
        kind: "kernel",
        flops: 2.0 * (q * q * 9 * 128 * 64) as f64,
        bytes: 4.0 * (q * q * 128 + 4 * q * q * 64 + 9 * 128 * 64) as f64,
        record: Box::new(move |rec| {
            Ok(vec![conv2d_transpose_weight_grad(rec, &x, &dy, (3, 3), 2)?])
        }),
    });
    Ok(())
}

/// Instance-norm backward at the fast network's widest and deepest layers.
pub fn norm_grads(ctx: &Context, s: usize, v: &mut Vec<Case<'_>>) -> Result<()> {
    for (c, q) in [(32, s), (128, s / 4)] {
        let x = t(ctx, [1, q, q, c], 21)?;
        let dy = t(ctx, [1, q, q, c], 22)?;
        let scale = t(ctx, [1, 1, 1, c], 23)?;
        let shift = t(ctx, [1, 1, 1, c], 24)?;
        // The forward's statistics and output, computed once, outside the timed runs.
        let mut fwd = Recorder::new(ctx, "bench.instance_norm_forward");
        let stats = instance_norm_stats(&mut fwd, &x, 1e-3)?;
        let y = instance_norm_apply(&mut fwd, &x, &stats, &shift, &scale, None, true)?;
        fwd.submit()?;
        let n = (q * q * c) as f64;
        v.push(Case {
            name: format!("instance_norm_backward/{c}ch @{q}x{q}"),
            kind: "kernel",
            // Two reductions (dy, dy·x̂) and the per-element combination.
            flops: 10.0 * n,
            // x, y and dy read, dx written.
            bytes: 4.0 * 4.0 * n,
            record: Box::new(move |rec| {
                let g = instance_norm_backward(rec, &x, &stats, &scale, &y, &dy, true)?;
                Ok(vec![g.dx, g.dscale, g.dshift])
            }),
        });
    }
    Ok(())
}

/// Gram matrices and their backward at VGG19's style layers relu1_1 and relu4_1 for an
/// `s × s` input.
pub fn grams(ctx: &Context, s: usize, v: &mut Vec<Case<'_>>) -> Result<()> {
    for (c, q) in [(64, s), (512, s / 8)] {
        let f = t(ctx, [1, q, q, c], 31)?;
        let dg = t(ctx, [1, 1, c, c], 32)?;
        let flops = 2.0 * (q * q * c * c) as f64;
        let bytes = 4.0 * (q * q * c + c * c) as f64;
        let f2 = f.clone();
        v.push(Case {
            name: format!("gram/{c}ch @{q}x{q}"),
            kind: "kernel",
            flops,
            bytes,
            record: Box::new(move |rec| Ok(vec![gram(rec, &f)?])),
        });
        v.push(Case {
            name: format!("gram_backward/{c}ch @{q}x{q}"),
            kind: "kernel",
            flops,
            bytes: bytes + 4.0 * (q * q * c) as f64,
            record: Box::new(move |rec| Ok(vec![gram_backward(rec, &f2, &dg)?])),
        });
    }
    Ok(())
}

/// The residual block's epilogue, instance norm + residual add, as one fused kernel and as
/// two (apply, then add): the pair shows what the fusion saves. Statistics are computed
/// in both.
pub fn fusions(ctx: &Context, s: usize, v: &mut Vec<Case<'_>>) -> Result<()> {
    let q = s / 4;
    let c = 128;
    let n = (q * q * c) as f64;
    for fused in [true, false] {
        let x = t(ctx, [1, q, q, c], 41)?;
        let r = t(ctx, [1, q, q, c], 42)?;
        let scale = t(ctx, [1, 1, 1, c], 43)?;
        let shift = t(ctx, [1, 1, 1, c], 44)?;
        let which = if fused { "fused" } else { "unfused" };
        v.push(Case {
            name: format!("fusion/norm+residual {which} {c}ch @{q}x{q}"),
            kind: "fusion",
            flops: 9.0 * n,
            // Fused: x twice (stats, apply), residual, output; unfused: also y written and read.
            bytes: 4.0 * n * if fused { 4.0 } else { 6.0 },
            record: Box::new(move |rec| {
                let stats = instance_norm_stats(rec, &x, 1e-3)?;
                let y = if fused {
                    instance_norm_apply(rec, &x, &stats, &shift, &scale, Some(&r), false)?
                } else {
                    let y = instance_norm_apply(rec, &x, &stats, &shift, &scale, None, false)?;
                    add(rec, &y, &r)?
                };
                Ok(vec![y])
            }),
        });
    }
    Ok(())
}
