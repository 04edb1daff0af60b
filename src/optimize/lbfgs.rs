//! L-BFGS on the GPU: the two-loop recursion with GPU dot products and axpys (the dots
//! are read back as scalars), and a backtracking line search that accepts a step only
//! when it satisfies the Armijo condition, so the loss decreases at every iteration.

use std::collections::VecDeque;

use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::reduce::dot;
use crate::ops::vecops::{axpy, scale};
use crate::optimize::{Losses, Objective};

/// L-BFGS settings.
#[derive(Clone, Copy, Debug)]
pub struct LbfgsParams {
    /// Number of (s, y) pairs kept.
    pub history: usize,
    /// RMS size (pixel units) of the first step along −g.
    pub first_step: f32,
    /// Most function evaluations of one line search.
    pub max_evals: usize,
}

impl Default for LbfgsParams {
    fn default() -> Self {
        LbfgsParams {
            history: 10,
            first_step: 1.0,
            max_evals: 20,
        }
    }
}

fn copy(ctx: &Context, t: &Tensor, alpha: f32) -> Result<Tensor> {
    let mut rec = Recorder::new(ctx, "lbfgs.copy");
    let y = scale(&mut rec, t, alpha)?;
    rec.submit()?;
    Ok(y)
}

fn axpy_now(ctx: &Context, y: &Tensor, a: f32, x: &Tensor) -> Result<()> {
    let mut rec = Recorder::new(ctx, "lbfgs.axpy");
    axpy(&mut rec, y, a, x)?;
    rec.submit()
}

/// Runs `iterations` L-BFGS iterations on `x` in place. `step(i, losses)` gets the loss
/// of the new iterate after iteration `i` (1-based); `Ok(false)` stops the run. Stops
/// early when no step along the search direction decreases the loss.
pub fn lbfgs(
    ctx: &Context,
    obj: &Objective<'_>,
    x: &Tensor,
    params: LbfgsParams,
    iterations: usize,
    mut step: impl FnMut(usize, &Losses) -> Result<bool>,
) -> Result<()> {
    let (mut f, mut g) = obj.eval(ctx, x)?;
    let mut hist: VecDeque<(Tensor, Tensor, f32)> = VecDeque::new();
    let n = x.len() as f32;
    for it in 1..=iterations {
        // Two-loop recursion: d = −H g.
        let q = copy(ctx, &g, 1.0)?;
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(ctx, s, &q)?;
            axpy_now(ctx, &q, -a, y)?;
            alphas.push(a);
        }
        let gamma = match hist.back() {
            Some((s, y, _)) => dot(ctx, s, y)? / dot(ctx, y, y)?,
            None => {
                let gg = dot(ctx, &g, &g)?;
                params.first_step / (gg / n).sqrt().max(f32::MIN_POSITIVE)
            }
        };
        let d = copy(ctx, &q, -gamma)?;
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(ctx, y, &d)?;
            // d = −r: r += (a − b) s  ⇔  d −= (a − b) s
            axpy_now(ctx, &d, -(a - b), s)?;
        }
        let mut gd = dot(ctx, &g, &d)?;
        let mut d = d;
        if gd >= 0.0 || gd.is_nan() {
            // Not a descent direction: restart from steepest descent.
            hist.clear();
            let gg = dot(ctx, &g, &g)?;
            d = copy(ctx, &g, -params.first_step / (gg / n).sqrt())?;
            gd = dot(ctx, &g, &d)?;
        }
        // Backtracking line search (Armijo, c1 = 1e-4), quadratic interpolation.
        let mut t = 1.0f32;
        let mut accepted = None;
        for _ in 0..params.max_evals {
            let xn = copy(ctx, x, 1.0)?;
            axpy_now(ctx, &xn, t, &d)?;
            let (fn_, gn) = obj.eval(ctx, &xn)?;
            if fn_.total.is_finite()
                && (fn_.total as f64) <= f.total as f64 + 1e-4 * (t * gd) as f64
                && fn_.total < f.total
            {
                accepted = Some((xn, fn_, gn));
                break;
            }
            let denom = 2.0 * ((fn_.total - f.total) as f64 - (gd * t) as f64);
            let tq = if denom > 0.0 && fn_.total.is_finite() {
                (-(gd as f64) * (t as f64).powi(2) / denom) as f32
            } else {
                0.1 * t
            };
            t = tq.clamp(0.1 * t, 0.5 * t);
        }
        let Some((xn, fn_, gn)) = accepted else {
            return Ok(());
        };
        // New pair s = t d, y = gn − g.
        let s = copy(ctx, &d, t)?;
        let y = copy(ctx, &gn, 1.0)?;
        axpy_now(ctx, &y, -1.0, &g)?;
        let ys = dot(ctx, &y, &s)?;
        if ys > 1e-10 * dot(ctx, &y, &y)?.max(f32::MIN_POSITIVE).sqrt() {
            if hist.len() == params.history.max(1) {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / ys));
        }
        let mut rec = Recorder::new(ctx, "lbfgs.accept");
        rec.copy(&xn, x);
        rec.submit()?;
        f = fn_;
        g = gn;
        if !step(it, &f)? {
            break;
        }
    }
    Ok(())
}
