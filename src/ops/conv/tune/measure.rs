//! Timing the convolution variants on one shape, for the autotune ([`crate::ops::conv::tune`]).
//!
//! First every variant runs once on a probe (a quarter of the rows and columns; skipped for
//! small shapes), after an untimed warm-up run: variants more than [`GIVE_UP`] times slower
//! than the best there are dropped (on CPU drivers the tiled kernels are 4–30× slower, and one
//! full run of them would cost more than all the rest). The others run [`REPS`] times on the
//! whole shape, or on its top-left half or quarter (rows and columns) when the probe predicts
//! a whole run above [`RUN_BUDGET_MS`] (slow devices: lavapipe); a variant's time is its
//! fastest run (interference from other work only adds).
//!
//! The cooperative-matrix variants (wgpu's experimental feature, on drivers this project may
//! never have run) must also agree with the default variant on the warm-up problem, within
//! [`COOP_AGREEMENT`], or they are not timed.
//!
//! Each run is its own recording and submission, inside its own wgpu error scope, so that it
//! may happen while another recording is open on the same thread (the buffer pool supports
//! nested recordings) without touching that recording's buffers or errors. The scratch
//! tensors are not pooled: tuning leaves the pool's counters as they were.

use std::time::Instant;

use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::conv::algo::ConvAlgo;
use crate::ops::conv::dispatch::run_into;
use crate::ops::conv::params::Params;
use crate::ops::conv::precision::ConvPrecision;
use crate::ops::conv::shape::ConvShape;

/// Timed runs per variant on the whole shape.
pub const REPS: usize = 3;
/// The longest single timed run wanted, in milliseconds (the probe predicts it).
pub const RUN_BUDGET_MS: f64 = 50.0;
/// A variant this many times slower than the best so far (on the probe, or in its first run)
/// is not run again.
pub const GIVE_UP: f64 = 1.5;

/// The largest difference a cooperative-matrix variant may show against the default
/// variant's output on the autotune's warm-up problem, relative to the largest output value:
/// its f16 tiles give about 1e-3 (tests/kernels.rs holds them to 4e-3 against a float64
/// reference); a driver that lays fragments out otherwise gives errors of order 1.
pub const COOP_AGREEMENT: f64 = 2e-2;

/// Per-variant milliseconds (fastest run), fastest first.
pub type Times = Vec<(ConvAlgo, f64)>;

/// The outcome of one tuning run.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Times of the variants that were timed on the whole (proxy) shape, or on the part of it
    /// given by `rows`.
    pub ms: Times,
    /// Output rows per image of the runs in `ms`.
    pub rows: u32,
    /// Times on the probe, of every variant (empty for shapes without a probe).
    pub probe_ms: Times,
}

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
}

/// One run of `tile` on the problem `p` (within the scratch tensors' shape): milliseconds, or
/// `None` if the GPU reported an error.
fn time_once(ctx: &Context, s: &Scratch, p: Params, tile: ConvAlgo) -> Option<f64> {
    let device = ctx.device();
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let mut rec = Recorder::new(ctx, "autotune");
    // Up to three passes: the convolution, and the direct kernel's channel padding.
    rec.enable_pass_timing(3);
    let recorded = run_into(&mut rec, &s.x, &s.w, None, p, tile, &s.y);
    let timing = rec.finish_timing();
    let t0 = Instant::now();
    rec.submit_unchecked();
    let waited = device.poll(wgpu::PollType::wait_indefinitely());
    let wall = t0.elapsed().as_secs_f64() * 1e3;
    let gpu = match timing {
        Some(t) => t.read(ctx).ok().map(|v| v.iter().map(|p| p.ms).sum()),
        None => None,
    };
    let errors = [
        pollster::block_on(oom.pop()),
        pollster::block_on(validation.pop()),
    ];
    if let Some(e) = errors.into_iter().flatten().next() {
        log::warn!("autotune: {} failed: {e}", tile);
        return None;
    }
    if let Err(e) = recorded {
        log::warn!("autotune: {} failed: {e}", tile);
        return None;
    }
    waited.ok()?;
    // A zero GPU duration means the timestamps are not usable: fall back to the wall clock.
    Some(gpu.filter(|ms| *ms > 0.0).unwrap_or(wall))
}

/// Under [`ConvPrecision::Auto`], a half-precision variant must beat the fastest f32 one by
/// this factor to be chosen: timing noise alone never switches a shape to f16 (so that, where
/// f16 does not pay, as on lavapipe, batches of any size give bit-identical results).
pub const F16_MARGIN: f64 = 1.1;

/// The fastest of `times` (sorted), or under `auto` the fastest f32 variant unless a half one
/// beats it by [`F16_MARGIN`].
fn choose(times: &Times, precision: ConvPrecision) -> Option<ConvAlgo> {
    let (first, ms) = *times.first()?;
    if precision == ConvPrecision::Auto && first.is_half() {
        if let Some((t, f32_ms)) = times.iter().find(|(t, _)| !t.is_half()) {
            if ms * F16_MARGIN > *f32_ms {
                return Some(*t);
            }
        }
    }
    Some(first)
}

/// Times every variant of [`ConvAlgo::all`] that `precision` allows and the device can run on
/// `shape` (the default first) and returns the fastest with all the times; `None` if nothing
/// could be timed.
pub(crate) fn measure(
    ctx: &Context,
    shape: ConvShape,
    default: ConvAlgo,
    precision: ConvPrecision,
) -> Option<(ConvAlgo, Measured)> {
    let p = shape.params();
    let (n, h, w, cin) = (p.n as usize, p.h as usize, p.w as usize, p.cin as usize);
    let (ho, wo, cout) = (p.ho as usize, p.wo as usize, p.cout as usize);
    let s = Scratch {
        x: scratch(ctx, "autotune.x", [n, h, w, cin])?,
        w: scratch(ctx, "autotune.w", [p.kh as usize, p.kw as usize, cin, cout])?,
        y: scratch(ctx, "autotune.y", [n, ho, wo, cout])?,
    };
    let mut candidates = vec![default];
    candidates.extend(ConvAlgo::all().filter(|t| *t != default && precision.allows(*t)));
    candidates.retain(|t| t.usable(ctx) && t.applies(ctx, &shape));
    // The probe reads and writes the top-left part of the same scratch tensors.
    let probe = shape.probe().map(ConvShape::params);
    let first = probe.unwrap_or(p);
    if candidates.iter().any(|t| t.coop_size().is_some()) {
        let reference = output_of(ctx, &s, first, *candidates.first()?)?;
        candidates.retain(|&t| {
            t.coop_size().is_none()
                || output_of(ctx, &s, first, t).is_some_and(|y| {
                    let ok = agrees(&reference, &y);
                    if !ok {
                        log::warn!("autotune: {} disagrees with {}: not used", t, default);
                    }
                    ok
                })
        });
    } else {
        time_once(ctx, &s, first, *candidates.first()?);
    }
    let mut quick: Times = Vec::new();
    let mut target = p;
    if let Some(q) = probe {
        quick = candidates
            .iter()
            .filter_map(|&t| Some((t, time_once(ctx, &s, q, t)?)))
            .collect();
        let best = quick.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        candidates.retain(|t| quick.iter().any(|(u, ms)| u == t && *ms <= GIVE_UP * best));
        // The largest of whole, half and quarter whose predicted run fits the budget.
        let pixels = |s: ConvShape| s.n as f64 * s.ho as f64 * s.wo as f64;
        let probe_px = pixels(shape.probe().unwrap_or(shape));
        target = [Some(shape), shape.part(2)]
            .into_iter()
            .flatten()
            .find(|s| best * pixels(*s) / probe_px <= RUN_BUDGET_MS)
            .map_or(q, ConvShape::params);
    }
    let mut times: Times = Vec::new();
    let mut best = f64::INFINITY;
    for tile in candidates {
        let mut fastest = f64::INFINITY;
        for i in 0..REPS {
            let Some(ms) = time_once(ctx, &s, target, tile) else {
                break;
            };
            fastest = fastest.min(ms);
            if i == 0 && ms > GIVE_UP * best {
                break;
            }
        }
        if fastest.is_finite() {
            best = best.min(fastest);
            times.push((tile, fastest));
        }
    }
    times.sort_by(|a, b| a.1.total_cmp(&b.1));
    quick.sort_by(|a, b| a.1.total_cmp(&b.1));
    let tile = choose(&times, precision)?;
    Some((
        tile,
        Measured {
            ms: times,
            rows: target.ho,
            probe_ms: quick,
        },
    ))
}

/// Runs `tile` once on `p` and reads the whole scratch output back.
fn output_of(ctx: &Context, s: &Scratch, p: Params, tile: ConvAlgo) -> Option<Vec<f32>> {
    time_once(ctx, s, p, tile)?;
    let mut rec = Recorder::new(ctx, "autotune.check");
    let rb = rec.readback(&s.y);
    rec.submit().ok()?;
    rb.read(ctx).ok()
}

/// Whether `y` is within [`COOP_AGREEMENT`] of `reference` (relative to its largest value).
fn agrees(reference: &[f32], y: &[f32]) -> bool {
    let scale = reference
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-30);
    reference.len() == y.len()
        && reference
            .iter()
            .zip(y)
            .all(|(a, b)| ((a - b).abs() / scale) as f64 <= COOP_AGREEMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_allows_half_precision_rounding_and_nothing_more() {
        let reference: Vec<f32> = (0..64).map(|i| (i as f32 - 30.0) * 0.25).collect();
        let scale = 8.5;
        let near: Vec<f32> = reference.iter().map(|v| v + 0.01 * scale).collect();
        assert!(agrees(&reference, &near));
        let mut wrong = reference.clone();
        wrong[7] += 0.03 * scale;
        assert!(!agrees(&reference, &wrong));
        let mut nan = reference.clone();
        nan[0] = f32::NAN;
        assert!(!agrees(&reference, &nan));
        assert!(!agrees(&reference, &reference[1..]));
    }

    #[test]
    fn auto_takes_f16_only_when_it_wins_by_the_margin() {
        let f32_tile = ConvAlgo::DIRECT_64X1;
        let f16_tile = f32_tile.half_of();
        let close: Times = vec![(f16_tile, 1.0), (f32_tile, 1.05)];
        let clear: Times = vec![(f16_tile, 1.0), (f32_tile, 1.2)];
        assert_eq!(choose(&close, ConvPrecision::Auto), Some(f32_tile));
        assert_eq!(choose(&clear, ConvPrecision::Auto), Some(f16_tile));
        assert_eq!(choose(&close, ConvPrecision::F16), Some(f16_tile));
        assert_eq!(
            choose(&vec![(f16_tile, 1.0)], ConvPrecision::Auto),
            Some(f16_tile)
        );
        assert_eq!(choose(&Vec::new(), ConvPrecision::Auto), None);
    }
}
