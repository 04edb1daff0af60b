//! Timing the convolution variants on one shape, for the autotune ([`crate::ops::conv_tune`]).
//!
//! Each run is its own recording and submission, inside its own wgpu error scope, so that it
//! may happen while another recording is open on the same thread (the buffer pool supports
//! nested recordings) without touching that recording's buffers or errors. The scratch
//! tensors are not pooled: tuning leaves the pool's counters as they were.

use std::time::Instant;

use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::{run_into, Params, Tile};
use crate::ops::conv_tune::ConvShape;

/// Timed runs per variant.
const REPS: usize = 3;
/// A variant whose first run is this many times slower than the best so far is not run again.
const GIVE_UP: f64 = 1.5;

/// Per-variant median milliseconds of one tuning run, fastest first.
pub type Times = Vec<(Tile, f64)>;

fn scratch(ctx: &Context, label: &str, shape: [usize; 4]) -> Option<Tensor> {
    let n: usize = shape.iter().product();
    // Small, varied, finite values (no denormals or NaNs that could distort a CPU's timing).
    let data: Vec<f32> = (0..n).map(|i| (i % 17) as f32 * 0.01 - 0.08).collect();
    match Tensor::persistent(ctx, label, shape, &data) {
        Ok(t) => Some(t),
        Err(e) => {
            log::warn!("autotune: no scratch tensor {label} {shape:?}: {e}");
            None
        }
    }
}

struct Scratch {
    x: Tensor,
    w: Tensor,
    y: Tensor,
    p: Params,
}

/// One run of `tile`: milliseconds, or `None` if the GPU reported an error.
fn time_once(ctx: &Context, s: &Scratch, tile: Tile) -> Option<f64> {
    let device = ctx.device();
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let mut rec = Recorder::new(ctx, "autotune");
    rec.enable_pass_timing(1);
    run_into(&mut rec, &s.x, &s.w, None, s.p, tile, &s.y);
    let timing = rec.finish_timing();
    let t0 = Instant::now();
    rec.submit_unchecked();
    let waited = device.poll(wgpu::PollType::wait_indefinitely());
    let wall = t0.elapsed().as_secs_f64() * 1e3;
    let gpu = match timing {
        Some(t) => t.read(ctx).ok().and_then(|v| v.first().map(|p| p.ms)),
        None => None,
    };
    let errors = [
        pollster::block_on(oom.pop()),
        pollster::block_on(validation.pop()),
    ];
    if let Some(e) = errors.into_iter().flatten().next() {
        log::warn!("autotune: {} failed: {e}", tile.name());
        return None;
    }
    waited.ok()?;
    // A zero GPU duration means the timestamps are not usable: fall back to the wall clock.
    Some(gpu.filter(|ms| *ms > 0.0).unwrap_or(wall))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times every variant of [`Tile::VARIANTS`] that fits the device on `shape` (the default
/// first, after one untimed warm-up run of it) and returns the fastest with all the times;
/// `None` if nothing could be timed.
pub(crate) fn measure(ctx: &Context, shape: ConvShape, default: Tile) -> Option<(Tile, Times)> {
    let p = shape.params();
    let (n, h, w, cin) = (p.n as usize, p.h as usize, p.w as usize, p.cin as usize);
    let (ho, wo, cout) = (p.ho as usize, p.wo as usize, p.cout as usize);
    let s = Scratch {
        x: scratch(ctx, "autotune.x", [n, h, w, cin])?,
        w: scratch(ctx, "autotune.w", [p.kh as usize, p.kw as usize, cin, cout])?,
        y: scratch(ctx, "autotune.y", [n, ho, wo, cout])?,
        p,
    };
    let mut candidates = vec![default];
    candidates.extend(Tile::VARIANTS.into_iter().filter(|t| *t != default));
    candidates.retain(|t| t.fits(ctx.limits()));
    time_once(ctx, &s, *candidates.first()?);
    let mut times: Times = Vec::new();
    let mut best = f64::INFINITY;
    for tile in candidates {
        let mut runs = Vec::new();
        for _ in 0..REPS {
            let Some(ms) = time_once(ctx, &s, tile) else {
                break;
            };
            runs.push(ms);
            if runs.len() == 1 && ms > GIVE_UP * best {
                break;
            }
        }
        if runs.is_empty() {
            continue;
        }
        let ms = median(&mut runs);
        best = best.min(ms);
        times.push((tile, ms));
    }
    times.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (tile, _) = *times.first()?;
    Some((tile, times))
}
