//! Optimisation against TensorFlow (`golden/gatys/`): Adam reproduces the loss and its three
//! terms within 0.1 % over the first 10 steps and within 2 % at every later step of
//! `loss_history` (all 200 steps by default, about 3 minutes per config on 2 lavapipe cores;
//! `WGSTYLE_GATYS_STEPS` runs fewer), and L-BFGS beats Adam at equal iterations.
//!
//! The bound is the goldens' own suggestion (golden/README.md, "Observed numerics"): the
//! trajectory drifts with float rounding because max-pooling near-ties decide where the
//! gradient goes (TensorFlow itself, without oneDNN or in float64, drifts by up to 0.44 %).
//! Measured on lavapipe, worst relative error over 200 steps: `spec` total 9.7e-3, terms
//! 1.3e-2 (the scalar direct convolution kernel, which summed the same products in another
//! order: total 6.4e-4); `balanced` total 9.0e-4, terms 2.5e-3. Over the first 10 steps:
//! 1.6e-4 (`spec`) and 2.0e-4 (`balanced`). The single-step gradient matches TensorFlow to
//! 7e-7 (tests/golden_grad.rs).

mod common;

use common::{ctx, read_safetensors};
use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::optim::AdamParams;
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::adam::adam;
use wgstyle::optimize::lbfgs::{lbfgs, LbfgsParams};
use wgstyle::optimize::{LossSpec, Objective};
use wgstyle::Tensor;

fn steps() -> usize {
    std::env::var("WGSTYLE_GATYS_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Relative bound on the loss and on each term, at every step.
const TOL: f64 = 0.02;
/// The same over the first `EARLY_STEPS` steps, before max-pooling near-ties have moved the
/// trajectory: there a wrong gradient shows at once, and the bound is 20x tighter.
const EARLY_TOL: f64 = 1e-3;
const EARLY_STEPS: usize = 10;

fn spec(cw: f32, sw: f32, tvw: f32) -> LossSpec {
    LossSpec {
        content_weight: cw,
        style_weight: sw,
        tv_weight: tvw,
        ..LossSpec::default()
    }
}

fn adam_matches(config: &str, s: LossSpec) {
    let shared = shared_or_skip!();
    let w = wgstyle::weights::load_vgg19(&shared.join("weights/vgg19-tfjs")).unwrap();
    let g =
        read_safetensors(&shared.join(format!("golden/gatys/gatys_{config}_64x64.safetensors")));
    let ctx = ctx();
    let vgg = Vgg::new(ctx, &w, 13, Pooling::Max).unwrap();
    let up = |k: &str| Tensor::upload(ctx, k, [1, 64, 64, 3], &g[k].1).unwrap();
    let (x0, style) = (up("x0"), up("style"));
    let obj = Objective::new(ctx, &vgg, &s, &x0, &[(style, 1.0)]).unwrap();
    let x = up("x0");
    let hist = &g["loss_history"].1;
    let (mut worst, mut worst_term, mut worst_early) = (0.0f64, 0.0f64, 0.0f64);
    adam(ctx, &obj, &x, AdamParams::default(), steps(), |t, l| {
        let k = t - 1; // the loss of x_{t-1}
        let want = &hist[4 * k..4 * k + 4];
        let e = (l.total as f64 - want[0] as f64).abs() / want[0] as f64;
        eprintln!(
            "{config} step {k}: total {:.7e} (tf {:.7e}, rel {e:.1e}) content {:.4e} ({:.4e}) style {:.4e} ({:.4e}) tv {:.4e} ({:.4e})",
            l.total, want[0], l.content, want[1], l.style, want[2], l.tv, want[3]
        );
        worst = worst.max(e);
        let tol = if k < EARLY_STEPS { EARLY_TOL } else { TOL };
        if k < EARLY_STEPS {
            worst_early = worst_early.max(e);
        }
        assert!(e <= tol, "{config} step {k}: {} vs {}", l.total, want[0]);
        // The components too (all zero-free after the first step).
        for (got, w) in [(l.content, want[1]), (l.style, want[2]), (l.tv, want[3])] {
            let e = (got as f64 - w as f64).abs() / (w as f64).abs().max(1e-30);
            let e = if k == 0 { 0.0 } else { e };
            worst_term = worst_term.max(e);
            if k < EARLY_STEPS {
                worst_early = worst_early.max(e);
            }
            assert!(k == 0 || e <= tol, "{config} step {k}: component {got} vs {w}");
        }
        Ok(true)
    })
    .unwrap();
    eprintln!(
        "{config}: worst relative error over {} steps: total {worst:.2e}, terms {worst_term:.2e}; \
         first {EARLY_STEPS} steps {worst_early:.2e}",
        steps()
    );
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn adam_matches_tensorflow_spec_64() {
    adam_matches("spec", spec(1.0, 1e3, 1e5));
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn adam_matches_tensorflow_balanced_64() {
    adam_matches("balanced", spec(1.0, 1e-4, 1e-2));
}

/// The balanced problem at 32×32 (the 64×64 images averaged 2×2), 5 iterations each.
/// Measured on lavapipe: Adam 1.244e7, L-BFGS 6.873e6 (1.117e7 before the two-loop fix).
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn lbfgs_beats_adam_at_equal_iterations() {
    let shared = shared_or_skip!();
    let w = wgstyle::weights::load_vgg19(&shared.join("weights/vgg19-tfjs")).unwrap();
    let g = read_safetensors(&shared.join("golden/gatys/gatys_balanced_64x64.safetensors"));
    let ctx = ctx();
    let vgg = Vgg::new(ctx, &w, 13, Pooling::Max).unwrap();
    let half = |k: &str| {
        let v = &g[k].1;
        let mut o = vec![0.0; 32 * 32 * 3];
        for y in 0..32 {
            for x in 0..32 {
                for c in 0..3 {
                    let at = |yy: usize, xx: usize| v[(yy * 64 + xx) * 3 + c];
                    o[(y * 32 + x) * 3 + c] = 0.25
                        * (at(2 * y, 2 * x)
                            + at(2 * y, 2 * x + 1)
                            + at(2 * y + 1, 2 * x)
                            + at(2 * y + 1, 2 * x + 1));
                }
            }
        }
        Tensor::upload(ctx, k, [1, 32, 32, 3], &o).unwrap()
    };
    let (c, s) = (half("x0"), half("style"));
    let spec = spec(1.0, 1e-4, 1e-2);
    let obj = Objective::new(ctx, &vgg, &spec, &c, &[(s, 1.0)]).unwrap();
    let iters = 5;
    let xa = half("x0");
    adam(ctx, &obj, &xa, AdamParams::default(), iters, |_, _| {
        Ok(true)
    })
    .unwrap();
    let (la, _) = obj.eval(ctx, &xa).unwrap();
    let xl = half("x0");
    let mut prev = f32::INFINITY;
    lbfgs(ctx, &obj, &xl, LbfgsParams::default(), iters, |i, l| {
        eprintln!("lbfgs {i}: {:.6e}", l.total);
        assert!(l.total < prev, "L-BFGS must decrease the loss");
        prev = l.total;
        Ok(true)
    })
    .unwrap();
    let (ll, _) = obj.eval(ctx, &xl).unwrap();
    eprintln!(
        "after {iters} iterations: adam {:.6e}, lbfgs {:.6e}",
        la.total, ll.total
    );
    assert!(
        ll.total < la.total,
        "lbfgs {} vs adam {}",
        ll.total,
        la.total
    );
}
