//! The kernels of the fast network's backward pass, on lavapipe-sized shapes (batch 2, odd
//! sizes so TensorFlow's "SAME" padding is asymmetric); the whole network's gradients are in
//! `train_grad_net.rs`.
//!
//! Against the float64 CPU references of `common::reference` (max |Δ| ≤ `TOL` · max |ref|),
//! and against central differences of the CPU float64 loss at sampled coordinates.
//! Forward references are checked against the library's forward kernels first, so the
//! gradients are those of the forward the network really runs.

mod common;

use common::reference::{self, dot, f64s, finite_diff, ConvGeometry};
use common::{rel_err, run_all, up, Rng};
use wgstyle::ops::conv::{conv2d, conv2d_transpose, Conv2d, Padding};
use wgstyle::ops::conv_grad::{
    conv2d_input_grad, conv2d_transpose_input_grad, conv2d_transpose_weight_grad_with,
    conv2d_weight_grad_with, WeightGradKernel,
};
use wgstyle::ops::elementwise::{output_tanh, output_tanh_backward};
use wgstyle::ops::norm::{instance_norm_apply, instance_norm_stats};
use wgstyle::ops::norm_grad::instance_norm_backward;
use wgstyle::ops::upsample::{upsample_nearest, upsample_nearest_backward};

/// Kernels against their CPU float64 references: max |Δ| / max |ref|.
const TOL: f64 = 1e-5;
/// Finite differences of the CPU float64 losses: |fd − gpu| / max |gpu grad|.
const FD_TOL: f64 = 1e-4;

struct ConvCase {
    n: usize,
    hw: (usize, usize),
    ci: usize,
    co: usize,
    k: usize,
    s: usize,
    /// `Some(output size)`: a transposed convolution.
    transposed: Option<(usize, usize)>,
}

fn check_conv(c: &ConvCase, rng: &mut Rng) {
    let (h, w) = c.hw;
    let (ci, co, k, s, n) = (c.ci, c.co, c.k, c.s, c.n);
    let geometry = match c.transposed {
        None => ConvGeometry::same(n, (h, w), k, s),
        Some(out) => ConvGeometry::transposed(n, (h, w), out, k, s),
    };
    let ((ho, wo), (pt, pl)) = (geometry.output, geometry.pad);
    let cn = geometry.conv();
    let x = rng.vec(n * h * w * ci, -1.0, 1.0);
    let wt = rng.vec(k * k * ci * co, -1.0, 1.0);
    let dy = rng.vec(n * ho * wo * co, -1.0, 1.0);
    let (xs, ws, dys) = ([n, h, w, ci], [k, k, ci, co], [n, ho, wo, co]);
    let got = run_all(|rec| {
        let (xt, wtt, dyt) = (up(xs, &x), up(ws, &wt), up(dys, &dy));
        match c.transposed {
            None => {
                let p = Conv2d {
                    stride: s,
                    padding: Padding::Same,
                    relu: false,
                };
                let mut v = vec![
                    conv2d(rec, &xt, &wtt, None, p).unwrap(),
                    conv2d_input_grad(rec, &dyt, &wtt, (h, w), s, Padding::Same).unwrap(),
                ];
                for kernel in WeightGradKernel::VARIANTS {
                    let pad = Padding::Same;
                    v.push(
                        conv2d_weight_grad_with(rec, &xt, &dyt, (k, k), s, pad, kernel).unwrap(),
                    );
                }
                v
            }
            Some(out) => {
                let mut v = vec![
                    conv2d_transpose(rec, &xt, &wtt, s, out, false).unwrap(),
                    conv2d_transpose_input_grad(rec, &dyt, &wtt, (h, w), s).unwrap(),
                ];
                for kernel in WeightGradKernel::VARIANTS {
                    v.push(
                        conv2d_transpose_weight_grad_with(rec, &xt, &dyt, (k, k), s, kernel)
                            .unwrap(),
                    );
                }
                v
            }
        }
    });
    // got: forward, dX, then dW from each of WeightGradKernel::VARIANTS.
    let (xd, wd, dyd) = (f64s(&x), f64s(&wt), f64s(&dy));
    let e_fwd = rel_err(&got[0], &cn.forward(&xd, ci, &wd, co));
    let dw_ref = cn.weight_grad(&xd, ci, &dyd, co);
    let e_dws: Vec<f64> = got[2..].iter().map(|g| rel_err(g, &dw_ref)).collect();
    let e_dx = rel_err(&got[1], &cn.input_grad(&dyd, co, &wd, ci));
    // L = Σ dy · conv(x, w), in float64 on the CPU.
    let loss_w = |wv: &[f64]| dot(&cn.forward(&xd, ci, wv, co), &dy);
    let loss_x = |xv: &[f64]| dot(&cn.forward(xv, ci, &wd, co), &dy);
    let fd_dw = finite_diff(&wt, &got[2], loss_w, rng, 1e-3);
    let fd_dx = finite_diff(&x, &got[1], loss_x, rng, 1e-3);
    let what = format!(
        "{}{n}x{h}x{w}x{ci} k{k} s{s} -> {ho}x{wo}x{co} (pad {pt},{pl})",
        if c.transposed.is_some() {
            "transposed "
        } else {
            ""
        }
    );
    let dws: Vec<String> = e_dws.iter().map(|e| format!("{e:.1e}")).collect();
    eprintln!(
        "{what}: forward {e_fwd:.1e}, dW tiled/direct {} (fd {fd_dw:.1e}), dX {e_dx:.1e} (fd {fd_dx:.1e})",
        dws.join("/")
    );
    assert!(e_fwd <= TOL, "{what}: forward reference {e_fwd:.1e}");
    for (kernel, e_dw) in WeightGradKernel::VARIANTS.iter().zip(&e_dws) {
        assert!(*e_dw <= TOL, "{what}: dW ({kernel:?}) {e_dw:.1e}");
    }
    assert!(fd_dw <= FD_TOL, "{what}: dW fd {fd_dw:.1e}");
    assert!(
        e_dx <= TOL && fd_dx <= FD_TOL,
        "{what}: dX {e_dx:.1e} fd {fd_dx:.1e}"
    );
}

#[test]
fn conv_gradients_match_cpu_and_finite_differences() {
    let mut rng = Rng::new(21);
    let case = |n, hw, ci, co, k, s| ConvCase {
        n,
        hw,
        ci,
        co,
        k,
        s,
        transposed: None,
    };
    for c in [
        // 9×9 stride 1 (conv1, conv_out), one split.
        case(2, (11, 13), 3, 5, 9, 1),
        // 3×3 stride 2: even rows pad 0 before / 1 after, odd columns 1 / 1.
        case(2, (10, 7), 7, 6, 3, 2),
        // 9×9 stride 2: rows pad 4 / 4, columns 3 / 4.
        case(1, (13, 10), 4, 3, 9, 2),
        // Two row tiles and two channel tiles of the GEMM, five splits of the reduction.
        case(2, (23, 25), 13, 70, 3, 1),
        // Stride 2 with several splits and odd channel counts.
        case(2, (31, 36), 9, 17, 3, 2),
        // A long reduction (2·97·89 pixels): the split count at its cap of 64.
        case(2, (97, 89), 3, 4, 3, 1),
    ] {
        check_conv(&c, &mut rng);
    }
}

#[test]
fn transposed_conv_gradients_match_cpu_and_finite_differences() {
    let mut rng = Rng::new(22);
    let case = |n, hw: (usize, usize), ci, co, out| ConvCase {
        n,
        hw,
        ci,
        co,
        k: 3,
        s: 2,
        transposed: Some(out),
    };
    for c in [
        // The network's ×2 (padding 0 before, the last row cropped).
        case(2, (5, 7), 7, 5, (10, 14)),
        // Odd output sizes: padding 1 before.
        case(2, (6, 5), 4, 9, (11, 9)),
        // Two tiles each way and several splits.
        case(2, (17, 19), 70, 66, (34, 38)),
    ] {
        check_conv(&c, &mut rng);
    }
}

#[test]
fn instance_norm_backward_matches_cpu_and_finite_differences() {
    let mut rng = Rng::new(23);
    let eps = 1e-3;
    // (shape, relu, residual, offset of x): two chunks of 1024 pixels in the second case,
    // two channel workgroups in the third, a large mean in the fourth (as after conv1).
    for (shape, relu, residual, offset) in [
        ([2, 7, 9, 5], true, false, 0.0),
        ([1, 33, 40, 3], false, true, 0.0),
        ([2, 5, 5, 37], true, true, 0.0),
        ([2, 9, 11, 4], true, false, 100.0),
    ] {
        let [n, _, _, c] = shape;
        let len: usize = shape.iter().product();
        let x: Vec<f32> = rng.vec(len, -2.0, 2.0).iter().map(|v| v + offset).collect();
        let gamma = rng.vec(c, 0.5, 1.5);
        let beta = rng.vec(c, -0.5, 0.5);
        let res = rng.vec(len, -1.0, 1.0);
        let dy = rng.vec(len, -1.0, 1.0);
        let got = run_all(|rec| {
            let (xt, gt, bt, rt, dyt) = (
                up(shape, &x),
                up([1, 1, 1, c], &gamma),
                up([1, 1, 1, c], &beta),
                up(shape, &res),
                up(shape, &dy),
            );
            let stats = instance_norm_stats(rec, &xt, eps).unwrap();
            let r = residual.then_some(&rt);
            let y = instance_norm_apply(rec, &xt, &stats, &bt, &gt, r, relu).unwrap();
            let g = instance_norm_backward(rec, &xt, &stats, &gt, &y, &dyt, relu).unwrap();
            vec![y, g.dx, g.dscale, g.dshift]
        });
        let (xd, gd, bd, rd, dyd) = (f64s(&x), f64s(&gamma), f64s(&beta), f64s(&res), f64s(&dy));
        let r = residual.then_some(&rd[..]);
        let eps = eps as f64;
        let y = reference::instance_norm(&xd, shape, &gd, &bd, r, eps, relu);
        let (dx, dg, db) = reference::instance_norm_backward(&xd, shape, &gd, &y, &dyd, eps, relu);
        let errs = [
            rel_err(&got[0], &y),
            rel_err(&got[1], &dx),
            rel_err(&got[2], &dg),
            rel_err(&got[3], &db),
        ];
        // L = Σ dy · y, in float64.
        let loss = |xv: &[f64], gv: &[f64], bv: &[f64]| {
            dot(
                &reference::instance_norm(xv, shape, gv, bv, r, eps, relu),
                &dy,
            )
        };
        let h = 1e-6 * (1.0 + offset as f64);
        let fd = [
            finite_diff(&x, &got[1], |v| loss(v, &gd, &bd), &mut rng, h),
            finite_diff(&gamma, &got[2], |v| loss(&xd, v, &bd), &mut rng, 1e-6),
            finite_diff(&beta, &got[3], |v| loss(&xd, &gd, v), &mut rng, 1e-6),
        ];
        eprintln!(
            "instance norm {shape:?} relu {relu} residual {residual} offset {offset}: y {:.1e}, \
             dx {:.1e} (fd {:.1e}), dscale {:.1e} (fd {:.1e}), dshift {:.1e} (fd {:.1e}) [n {n}]",
            errs[0], errs[1], fd[0], errs[2], fd[1], errs[3], fd[2]
        );
        // Forward and backward in float32 against float64 (measured ≤ 2e-7); the large-offset
        // case loses two digits in x − mean (measured ≤ 6e-6).
        let tol = if offset > 0.0 { 1e-4 } else { 1e-5 };
        assert!(errs.iter().all(|&e| e <= tol), "{shape:?}: {errs:?}");
        assert!(fd.iter().all(|&e| e <= 10.0 * tol), "{shape:?}: fd {fd:?}");
    }
}

#[test]
fn upsample_and_output_backward_match_cpu() {
    let mut rng = Rng::new(24);
    let shape = [2, 5, 7, 3];
    let len = 2 * 5 * 7 * 3;
    let x = rng.vec(len, -4.0, 4.0);
    let dy_up = rng.vec(4 * len, -1.0, 1.0);
    let dy = rng.vec(len, -1.0, 1.0);
    let got = run_all(|rec| {
        let xt = up(shape, &x);
        let dyu = up([2, 10, 14, 3], &dy_up);
        let dyt = up(shape, &dy);
        vec![
            upsample_nearest(rec, &xt, 2).unwrap(),
            upsample_nearest_backward(rec, &dyu, 2).unwrap(),
            output_tanh(rec, &xt, 150.0, 127.5).unwrap(),
            output_tanh_backward(rec, &xt, &dyt, 150.0).unwrap(),
        ]
    });
    let xd = f64s(&x);
    // The backward is the adjoint of the forward: dx_i = Σ_j dy_j · ∂up_j/∂x_i.
    let mut want_up = vec![0.0; len];
    for i in 0..len {
        let mut e = vec![0.0; len];
        e[i] = 1.0;
        want_up[i] = dot(&reference::upsample_nearest(&e, shape, 2), &dy_up);
    }
    let y: Vec<f64> = xd.iter().map(|v| v.tanh() * 150.0 + 127.5).collect();
    let dtanh: Vec<f64> = xd
        .iter()
        .zip(&dy)
        .map(|(v, g)| *g as f64 * 150.0 * (1.0 - v.tanh().powi(2)))
        .collect();
    let errs = [
        rel_err(&got[0], &reference::upsample_nearest(&xd, shape, 2)),
        rel_err(&got[1], &want_up),
        rel_err(&got[2], &y),
        rel_err(&got[3], &dtanh),
    ];
    let loss = |xv: &[f64]| -> f64 {
        xv.iter()
            .zip(&dy)
            .map(|(v, g)| (v.tanh() * 150.0 + 127.5) * *g as f64)
            .sum()
    };
    let fd = finite_diff(&x, &got[3], loss, &mut rng, 1e-5);
    eprintln!(
        "upsample {:.1e}, its backward {:.1e}; tanh {:.1e}, its backward {:.1e} (fd {fd:.1e})",
        errs[0], errs[1], errs[2], errs[3]
    );
    assert!(errs.iter().all(|&e| e <= TOL), "{errs:?}");
    assert!(fd <= FD_TOL, "tanh backward fd {fd:.1e}");
}
