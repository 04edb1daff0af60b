//! The fast network's layers other than convolutions (instance norm, nearest upsampling,
//! residual add, output tanh) against plain CPU implementations (float64). Tolerance: max
//! |gpu - cpu| / max |cpu| ≤ 1e-4. (The convolutions: tests/kernels.rs.)

mod common;

use common::reference::{self, f64s};
use common::{rel_err, run, up, Rng};
use wgstyle::ops::elementwise::{add, output_tanh};
use wgstyle::ops::norm::instance_norm;
use wgstyle::ops::upsample::upsample_nearest;

const TOL: f64 = 1e-4;

fn cpu_instance_norm(
    x: &[f32],
    shape: [usize; 4],
    shift: &[f32],
    scale: &[f32],
    residual: Option<&[f32]>,
    eps: f64,
    relu: bool,
) -> Vec<f64> {
    let (x, shift, scale) = (f64s(x), f64s(shift), f64s(scale));
    let residual = residual.map(f64s);
    reference::instance_norm(&x, shape, &scale, &shift, residual.as_deref(), eps, relu)
}

#[test]
fn instance_norm_matches_cpu() {
    let mut rng = Rng::new(4);
    for case in 0..10 {
        // Sizes up to 47x47 cover several 1024-pixel chunks.
        let (n, h, w, mut c) = (
            rng.range(1, 3),
            rng.range(1, 47),
            rng.range(1, 47),
            rng.range(1, 70),
        );
        if case >= 6 {
            // Multiples of 4: `apply4` (4 channels per invocation); the others run `apply`.
            c = c.next_multiple_of(4);
        }
        let relu = case % 2 == 0;
        let res = case % 3 == 0;
        let x = rng.vec(n * h * w * c, -3.0, 5.0);
        let r = rng.vec(x.len(), -1.0, 1.0);
        let shift = rng.vec(c, -1.0, 1.0);
        let scale = rng.vec(c, 0.5, 2.0);
        let want = cpu_instance_norm(
            &x,
            [n, h, w, c],
            &shift,
            &scale,
            res.then_some(&r[..]),
            1e-3,
            relu,
        );
        let (got, _) = run(|rec| {
            let rt = up([n, h, w, c], &r);
            instance_norm(
                rec,
                &up([n, h, w, c], &x),
                &up([1, 1, 1, c], &shift),
                &up([1, 1, 1, c], &scale),
                res.then_some(&rt),
                1e-3,
                relu,
            )
            .unwrap()
        });
        let e = rel_err(&got, &want);
        assert!(e <= TOL, "case {case} n{n} {h}x{w}x{c}: rel err {e}");
    }
}

#[test]
fn instance_norm_is_stable_at_large_activations() {
    // Mean 1e4, spread 1: E[x²] - E[x]² would lose every significant digit in float32.
    let mut rng = Rng::new(5);
    let (n, h, w, c) = (1, 40, 37, 5);
    let x: Vec<f32> = (0..n * h * w * c)
        .map(|_| 1.0e4 + rng.uniform(-1.0, 1.0))
        .collect();
    let shift = vec![0.0; c];
    let scale = vec![1.0; c];
    let want = cpu_instance_norm(&x, [n, h, w, c], &shift, &scale, None, 1e-3, false);
    let (got, _) = run(|rec| {
        instance_norm(
            rec,
            &up([n, h, w, c], &x),
            &up([1, 1, 1, c], &shift),
            &up([1, 1, 1, c], &scale),
            None,
            1e-3,
            false,
        )
        .unwrap()
    });
    // The inputs themselves are only exact to ~1e-3 at 1e4 in float32; normalised values are O(1).
    let e = rel_err(&got, &want);
    assert!(e <= 1e-3, "rel err {e}");
}

#[test]
fn upsample_nearest_matches_cpu() {
    let mut rng = Rng::new(6);
    let (n, h, w, c) = (2, 5, 7, 3);
    let x = rng.vec(n * h * w * c, -1.0, 1.0);
    let want = reference::upsample_nearest(&f64s(&x), [n, h, w, c], 2);
    let (got, shape) = run(|rec| upsample_nearest(rec, &up([n, h, w, c], &x), 2).unwrap());
    assert_eq!(shape, [n, 2 * h, 2 * w, c]);
    assert_eq!(rel_err(&got, &want), 0.0);
}

#[test]
fn add_and_output_tanh_match_cpu() {
    let mut rng = Rng::new(7);
    let len = 1000;
    let a = rng.vec(len, -30.0, 30.0);
    let b = rng.vec(len, -1.0, 1.0);
    let want_add: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| *x as f64 + *y as f64)
        .collect();
    let (got, _) = run(|rec| add(rec, &up([1, 1, 1, len], &a), &up([1, 1, 1, len], &b)).unwrap());
    assert!(rel_err(&got, &want_add) <= 1e-6);
    // Includes |x| up to 30 (and 1e4 below): tanh must saturate, not overflow to NaN.
    let mut big = a.clone();
    big[0] = 1.0e4;
    big[1] = -1.0e4;
    let want: Vec<f64> = big
        .iter()
        .map(|x| (*x as f64).tanh() * 150.0 + 127.5)
        .collect();
    let (got, _) = run(|rec| output_tanh(rec, &up([1, 1, 1, len], &big), 150.0, 127.5).unwrap());
    assert!(
        rel_err(&got, &want) <= TOL,
        "rel err {}",
        rel_err(&got, &want)
    );
}
