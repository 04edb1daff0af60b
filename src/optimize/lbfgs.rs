//! L-BFGS on the GPU, as SciPy's L-BFGS-B runs it on an unconstrained problem: the two-loop
//! recursion with GPU dot products and axpys (the dots are read back as scalars), the initial
//! Hessian scaled by `γ = sᵀy / yᵀy` of the newest pair, a pair stored only when
//! `sᵀy > ε·(−stp·gᵀd)`, and the Moré–Thuente line search ([`super::linesearch`]: strong
//! Wolfe conditions, `ftol = 1e-3`, `gtol = 0.9`, `xtol = 0.1`). A failed line search drops
//! the history and retries along −g; a second failure in a row ends the run. The run also
//! ends when the loss stops decreasing by more than [`LbfgsParams::rel_tol`] of itself or the
//! gradient is below [`LbfgsParams::grad_tol`]; [`LbfgsReport`] says which.
//!
//! `tests/lbfgs.rs` checks the iterates against `scipy.optimize.minimize(method='L-BFGS-B')`.

use std::collections::VecDeque;

use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::ops::reduce::dot;
use crate::ops::vecops::{axpy, scale};
use crate::optimize::linesearch::{Dcsrch, Task};
use crate::optimize::{Losses, Objective};

/// L-BFGS settings.
#[derive(Clone, Copy, Debug)]
pub struct LbfgsParams {
    /// Number of (s, y) pairs kept (SciPy's `maxcor`).
    pub history: usize,
    /// RMS size (pixel units) of the first trial step along −g, on the first iteration and
    /// after a reset. SciPy's first step has Euclidean length 1: `1/√n` here.
    pub first_step: f32,
    /// Most function evaluations of one line search (SciPy's `maxls`).
    pub max_evals: usize,
    /// Stop when `(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ rel_tol` (SciPy's
    /// `factr·ε`; default 1e-7, about the resolution of an f32 loss).
    pub rel_tol: f64,
    /// Stop when the gradient's Euclidean norm is at most this (SciPy: `pgtol` on the
    /// largest component).
    pub grad_tol: f64,
}

impl Default for LbfgsParams {
    fn default() -> Self {
        LbfgsParams {
            history: 10,
            first_step: 1.0,
            max_evals: 20,
            rel_tol: 1e-7,
            grad_tol: 1e-5,
        }
    }
}

/// Why an L-BFGS run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum LbfgsStop {
    /// It ran the iterations asked for.
    Iterations,
    /// The loss decreased by at most `rel_tol` of itself in the last iteration.
    Converged,
    /// The gradient norm fell to `grad_tol`.
    SmallGradient,
    /// No step along −g satisfied the line search (after a reset of the history), e.g.
    /// because the loss changes by less than its rounding error.
    LineSearchFailed(&'static str),
    /// The per-iteration callback asked to stop.
    Stopped,
}

impl std::fmt::Display for LbfgsStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LbfgsStop::Iterations => write!(f, "ran the iterations asked for"),
            LbfgsStop::Converged => write!(f, "converged (the loss stopped decreasing)"),
            LbfgsStop::SmallGradient => write!(f, "converged (the gradient vanished)"),
            LbfgsStop::LineSearchFailed(why) => write!(f, "line search failed ({why})"),
            LbfgsStop::Stopped => write!(f, "stopped"),
        }
    }
}

/// How an L-BFGS run went.
#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsReport {
    /// Iterations completed (accepted steps).
    pub iterations: usize,
    /// Loss and gradient evaluations, the first one included.
    pub evaluations: usize,
    /// Times the history was dropped after a failed line search.
    pub resets: usize,
    /// Why it ended.
    pub stop: LbfgsStop,
}

/// A differentiable loss of a GPU tensor, as L-BFGS and Adam see it.
pub trait Evaluate {
    /// Loss and gradient at `x`.
    fn eval(&self, ctx: &Context, x: &Tensor) -> Result<(Losses, Tensor)>;
}

impl Evaluate for Objective<'_> {
    fn eval(&self, ctx: &Context, x: &Tensor) -> Result<(Losses, Tensor)> {
        Objective::eval(self, ctx, x)
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

/// The search direction `−H g` by the two-loop recursion (`−g` without history).
fn direction(ctx: &Context, g: &Tensor, hist: &VecDeque<(Tensor, Tensor, f32)>) -> Result<Tensor> {
    let q = copy(ctx, g, 1.0)?;
    let mut alphas = Vec::with_capacity(hist.len());
    for (s, y, rho) in hist.iter().rev() {
        let a = rho * dot(ctx, s, &q)?;
        axpy_now(ctx, &q, -a, y)?;
        alphas.push(a);
    }
    let gamma = match hist.back() {
        Some((_, y, rho)) => 1.0 / (rho * dot(ctx, y, y)?),
        None => 1.0,
    };
    let d = copy(ctx, &q, -gamma)?;
    for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
        // With d = −r: β = ρ yᵀr = −ρ yᵀd, and r += (α − β) s  ⇔  d −= (α + ρ yᵀd) s.
        // (Before this was fixed, d −= (α − ρ yᵀd) s: a wrong direction from the second
        // iteration on, which is what made the Gatys loss crawl.)
        let b = rho * dot(ctx, y, &d)?;
        axpy_now(ctx, &d, -(a + b), s)?;
    }
    Ok(d)
}

/// An accepted step: step length, new point, its loss and gradient.
type Accepted = (f64, Tensor, Losses, Tensor);

/// One Moré–Thuente line search from `x` along `d` (`gd = gᵀd`) starting at step `stp`:
/// the accepted step, or why none was found. Counts evaluations into `evals`.
#[allow(clippy::too_many_arguments)]
fn line_search(
    ctx: &Context,
    obj: &impl Evaluate,
    x: &Tensor,
    d: &Tensor,
    f0: f32,
    gd: f32,
    stp: f64,
    max_evals: usize,
    evals: &mut usize,
) -> Result<std::result::Result<Accepted, &'static str>> {
    let (mut ls, mut stp, mut task) =
        Dcsrch::start(stp, f0 as f64, gd as f64, 1e-3, 0.9, 0.1, 0.0, 1e10);
    for _ in 0..max_evals {
        if let Task::Error(why) = task {
            return Ok(Err(why));
        }
        let xn = copy(ctx, x, 1.0)?;
        axpy_now(ctx, &xn, stp as f32, d)?;
        let (fnew, gnew) = obj.eval(ctx, &xn)?;
        *evals += 1;
        if !fnew.total.is_finite() {
            return Ok(Err("the loss is not finite"));
        }
        let gdn = dot(ctx, &gnew, d)?;
        let (next, t) = ls.next(stp, fnew.total as f64, gdn as f64);
        match t {
            Task::Evaluate if next.is_finite() => (stp, task) = (next, t),
            Task::Evaluate => return Ok(Err("no finite step")),
            // A warning leaves the best step found; it must at least decrease the loss.
            Task::Converged | Task::Warning(_) if fnew.total < f0 => {
                return Ok(Ok((stp, xn, fnew, gnew)))
            }
            Task::Warning(why) | Task::Error(why) => return Ok(Err(why)),
            Task::Converged => return Ok(Err("no decrease")),
        }
    }
    Ok(Err("too many evaluations"))
}

/// Runs up to `iterations` L-BFGS iterations on `x` in place. `step(i, losses)` gets the loss
/// of the new iterate after iteration `i` (1-based); `Ok(false)` stops the run. Returns how
/// many iterations ran and why the run ended.
pub fn lbfgs(
    ctx: &Context,
    obj: &impl Evaluate,
    x: &Tensor,
    params: LbfgsParams,
    iterations: usize,
    mut step: impl FnMut(usize, &Losses) -> Result<bool>,
) -> Result<LbfgsReport> {
    let (mut f, mut g) = obj.eval(ctx, x)?;
    let mut report = LbfgsReport {
        iterations: 0,
        evaluations: 1,
        resets: 0,
        stop: LbfgsStop::Iterations,
    };
    let mut hist: VecDeque<(Tensor, Tensor, f32)> = VecDeque::new();
    let n = x.len() as f64;
    while report.iterations < iterations {
        let d = direction(ctx, &g, &hist)?;
        let gd = dot(ctx, &g, &d)?;
        // Without history (first iteration, after a reset) d = −g: a first step of RMS
        // `first_step`; with history the quasi-Newton step 1.
        let stp = if hist.is_empty() {
            params.first_step as f64 * n.sqrt() / (-(gd as f64)).sqrt().max(f64::MIN_POSITIVE)
        } else {
            1.0
        };
        let found = if gd < 0.0 {
            line_search(
                ctx,
                obj,
                x,
                &d,
                f.total,
                gd,
                stp,
                params.max_evals.max(1),
                &mut report.evaluations,
            )?
        } else {
            Err("not a descent direction")
        };
        let (stp, xn, fnew, gnew) = match found {
            Ok(a) => a,
            Err(why) if hist.is_empty() => {
                report.stop = LbfgsStop::LineSearchFailed(why);
                return Ok(report);
            }
            Err(why) => {
                log::debug!("L-BFGS: line search failed ({why}): history dropped");
                hist.clear();
                report.resets += 1;
                continue;
            }
        };
        // New pair s = stp·d, y = g_new − g, kept only under positive curvature.
        let s = copy(ctx, &d, stp as f32)?;
        let y = copy(ctx, &gnew, 1.0)?;
        axpy_now(ctx, &y, -1.0, &g)?;
        let ys = dot(ctx, &y, &s)?;
        if ys as f64 > f32::EPSILON as f64 * -(gd as f64) * stp {
            if hist.len() == params.history.max(1) {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / ys));
        }
        let mut rec = Recorder::new(ctx, "lbfgs.accept");
        rec.copy(&xn, x);
        rec.submit()?;
        let fold = f.total as f64;
        f = fnew;
        g = gnew;
        report.iterations += 1;
        if !step(report.iterations, &f)? {
            report.stop = LbfgsStop::Stopped;
            break;
        }
        let fnow = f.total as f64;
        if fold - fnow <= params.rel_tol * fold.abs().max(fnow.abs()).max(1.0) {
            report.stop = LbfgsStop::Converged;
            break;
        }
        if (dot(ctx, &g, &g)? as f64).sqrt() <= params.grad_tol {
            report.stop = LbfgsStop::SmallGradient;
            break;
        }
    }
    Ok(report)
}
