//! Backward kernels on random small shapes (odd sizes included), each against a CPU float64
//! implementation (max |Δ| ≤ 1e-4 · max|ref|) and against central finite differences of
//! the CPU float64 loss at sampled coordinates (relative error ≤ 1e-3 · max|grad|).

mod common;

use common::reference::{self, f64s};
use common::{ctx, rel_err, up, Rng};
use wgstyle::gpu::record::Recorder;
use wgstyle::nets::vgg::flip_kernel;
use wgstyle::ops::conv::{conv2d, Conv2d, Padding};
use wgstyle::ops::gemm::{batched_gemm, batched_gemm_at, GemmKernel};
use wgstyle::ops::gram::{gram, gram_direct, gram_gemm, gram_tiled};
use wgstyle::ops::loss::{content_layer, style_layer, tv};
use wgstyle::ops::pool::{pool, pool_backward, Pooling};
use wgstyle::ops::reduce::{reduce_into, scalars, Reduce};
use wgstyle::ops::vecops::relu_backward;
use wgstyle::Tensor;

const TOL: f64 = 1e-4;

/// Checks `grad` against central differences of `loss` at sampled coordinates
/// ([`reference::finite_diff`]): relative error ≤ 1e-3 · max |grad|.
fn finite_diff(x: &[f32], grad: &[f32], loss: impl Fn(&[f64]) -> f64, rng: &mut Rng, h: f64) {
    let e = reference::finite_diff(x, grad, loss, rng, h);
    assert!(e <= 1e-3, "finite differences: rel err {e:.1e}");
}

#[test]
fn pooling_forward_and_backward() {
    let mut rng = Rng::new(7);
    for (h, w, c) in [(5, 7, 3), (8, 6, 17), (9, 9, 1)] {
        for mode in [Pooling::Max, Pooling::Avg] {
            let shape = [1, h, w, c];
            let x = rng.vec(h * w * c, -1.0, 1.0);
            let r = rng.vec((h / 2) * (w / 2) * c, -1.0, 1.0);
            let (xt, rt) = (up(shape, &x), up([1, h / 2, w / 2, c], &r));
            let mut rec = Recorder::new(ctx(), "t");
            let y = pool(&mut rec, &xt, mode).unwrap();
            let dx = pool_backward(&mut rec, &xt, &rt, mode).unwrap();
            let (ry, rdx) = (rec.readback(&y), rec.readback(&dx));
            rec.submit().unwrap();
            let (y, dx) = (ry.read(ctx()).unwrap(), rdx.read(ctx()).unwrap());
            let max = mode == Pooling::Max;
            assert!(rel_err(&y, &reference::pool2x2(&f64s(&x), shape, max)) <= TOL);
            // L = Σ r · pool(x)
            let loss = |xv: &[f64]| -> f64 {
                reference::pool2x2(xv, shape, max)
                    .iter()
                    .zip(&r)
                    .map(|(a, b)| a * *b as f64)
                    .sum()
            };
            finite_diff(&x, &dx, loss, &mut rng, 1e-4);
        }
    }
}

#[test]
fn max_pool_backward_matches_cpu_everywhere() {
    let mut rng = Rng::new(29);
    // 4 channels per invocation (odd sizes: the dropped row and column get 0) and the
    // per-element kernel; values on a coarse grid so that windows hold ties.
    for shape in [[2, 5, 7, 8], [1, 8, 6, 4], [1, 6, 5, 3], [1, 9, 9, 12]] {
        let [n, h, w, c] = shape;
        let x: Vec<f32> = rng
            .vec(n * h * w * c, -2.0, 2.0)
            .iter()
            .map(|v| (v * 2.0).round() / 2.0)
            .collect();
        let dy = rng.vec(n * (h / 2) * (w / 2) * c, -1.0, 1.0);
        let (xt, dyt) = (up(shape, &x), up([n, h / 2, w / 2, c], &dy));
        // NaNs in the buffer the output will reuse: every element must be written.
        drop(up(shape, &vec![f32::NAN; x.len()]));
        let mut rec = Recorder::new(ctx(), "t");
        let dx = pool_backward(&mut rec, &xt, &dyt, Pooling::Max).unwrap();
        let r = rec.readback(&dx);
        rec.submit().unwrap();
        let got = r.read(ctx()).unwrap();
        let want = reference::max_pool2x2_backward(&f64s(&x), &f64s(&dy), shape);
        assert!(rel_err(&got, &want) <= TOL, "{shape:?}");
    }
}

#[test]
fn relu_backward_masks_by_output() {
    let mut rng = Rng::new(3);
    // vec4s (1000) and single values (1001), with and without the extra gradient.
    for (n, with_extra) in [(1000, true), (1001, true), (1000, false), (1001, false)] {
        let y: Vec<f32> = rng
            .vec(n, -1.0, 1.0)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let (g, e) = (rng.vec(n, -1.0, 1.0), rng.vec(n, -1.0, 1.0));
        let s = [1, 1, 1, n];
        let (yt, gt, et) = (up(s, &y), up(s, &g), up(s, &e));
        let mut rec = Recorder::new(ctx(), "t");
        let d = relu_backward(&mut rec, &yt, &gt, with_extra.then_some(&et)).unwrap();
        let rb = rec.readback(&d);
        rec.submit().unwrap();
        let got = rb.read(ctx()).unwrap();
        let want: Vec<f64> = (0..n)
            .map(|i| {
                if y[i] > 0.0 {
                    g[i] as f64 + if with_extra { e[i] as f64 } else { 0.0 }
                } else {
                    0.0
                }
            })
            .collect();
        assert!(rel_err(&got, &want) <= TOL, "{n} {with_extra}");
    }
}

/// 3×3 convolution, zero padding 1, of one image.
fn cpu_conv3(x: &[f64], [_, h, w, cin]: [usize; 4], k: &[f32], cout: usize) -> Vec<f64> {
    let geometry = reference::ConvGeometry {
        n: 1,
        input: (h, w),
        output: (h, w),
        k: 3,
        stride: 1,
        pad: (1, 1),
        reflect: false,
        transposed: false,
    };
    geometry.conv().forward(x, cin, &f64s(k), cout)
}

#[test]
fn conv_input_gradient_is_the_flipped_conv() {
    let mut rng = Rng::new(11);
    for (h, w, cin, cout) in [(5, 7, 3, 8), (6, 9, 13, 5), (4, 4, 2, 33)] {
        let x = rng.vec(h * w * cin, -1.0, 1.0);
        let k = rng.vec(9 * cin * cout, -1.0, 1.0);
        let r = rng.vec(h * w * cout, -1.0, 1.0);
        let wf = flip_kernel(&k, cin, cout);
        let mut rec = Recorder::new(ctx(), "t");
        let p = Conv2d {
            stride: 1,
            padding: Padding::Zero(1),
            relu: false,
        };
        let dx = conv2d(
            &mut rec,
            &up([1, h, w, cout], &r),
            &up([3, 3, cout, cin], &wf),
            None,
            p,
        )
        .unwrap();
        let rb = rec.readback(&dx);
        rec.submit().unwrap();
        let dx = rb.read(ctx()).unwrap();
        let loss = |xv: &[f64]| -> f64 {
            cpu_conv3(xv, [1, h, w, cin], &k, cout)
                .iter()
                .zip(&r)
                .map(|(a, b)| a * *b as f64)
                .sum()
        };
        // CPU reference gradient: L is linear in x, so dL/dx_i = L(e_i).
        let want: Vec<f64> = (0..x.len())
            .map(|i| {
                let mut e = vec![0.0; x.len()];
                e[i] = 1.0;
                loss(&e)
            })
            .collect();
        assert!(rel_err(&dx, &want) <= TOL, "{h}x{w} {cin}->{cout}");
        finite_diff(&x, &dx, loss, &mut rng, 1e-3);
    }
}

#[test]
fn gram_and_style_loss_with_gradient() {
    let mut rng = Rng::new(5);
    // 32 channels: the matrix-product forward and backward on CPU adapters.
    for (h, w, c) in [(3, 5, 7), (9, 4, 20), (6, 6, 33), (5, 9, 32)] {
        let f = rng.vec(h * w * c, 0.0, 2.0);
        // Style targets are Gram matrices, hence symmetric (the backward relies on it).
        let r = rng.vec(c * c, 0.0, 1.0);
        let a: Vec<f32> = (0..c * c)
            .map(|k| 0.5 * (r[k] + r[(k % c) * c + k / c]))
            .collect();
        let weight = 0.7f32;
        // Upload before recording (uploads are not ordered with recorded work).
        let (ft, at) = (up([1, h, w, c], &f), up([1, 1, c, c], &a));
        let mut rec = Recorder::new(ctx(), "t");
        let gm = gram(&mut rec, &ft).unwrap();
        // Both implementations, whichever this adapter uses by default.
        let (gt, gd) = (
            gram_tiled(&mut rec, &ft).unwrap(),
            gram_direct(&mut rec, &ft).unwrap(),
        );
        let s = scalars(&mut rec, 1).unwrap();
        let df = style_layer(&mut rec, &ft, &at, weight, &s, 0).unwrap();
        let (rg, rs, rd) = (rec.readback(&gm), rec.readback(&s), rec.readback(&df));
        let (rt, rdi) = (rec.readback(&gt), rec.readback(&gd));
        rec.submit().unwrap();
        let (gm, s, df) = (
            rg.read(ctx()).unwrap(),
            rs.read(ctx()).unwrap(),
            rd.read(ctx()).unwrap(),
        );
        let want = reference::gram(&f64s(&f), h * w, c);
        assert!(rel_err(&gm, &want) <= TOL);
        assert!(rel_err(&rt.read(ctx()).unwrap(), &want) <= TOL, "tiled");
        assert!(rel_err(&rdi.read(ctx()).unwrap(), &want) <= TOL, "direct");
        let loss = |fv: &[f64]| -> f64 {
            let g = reference::gram(fv, h * w, c);
            weight as f64
                * g.iter()
                    .zip(&a)
                    .map(|(x, y)| (x - *y as f64).powi(2))
                    .sum::<f64>()
        };
        let l = loss(&f64s(&f));
        assert!(
            (s[0] as f64 - l).abs() <= TOL * l,
            "style loss {} vs {l}",
            s[0]
        );
        finite_diff(&f, &df, loss, &mut rng, 1e-3);
    }
}

#[test]
fn gram_gemm_matches_cpu() {
    let mut rng = Rng::new(17);
    // One chunk; two chunks of 600 pixels; two chunks of 548 (zero rows past the end); an
    // 8×8 map of 512 channels (8 column blocks of 64).
    for (h, w, c) in [(5, 7, 32), (40, 30, 32), (33, 33, 64), (8, 8, 512)] {
        let f = rng.vec(h * w * c, 0.0, 2.0);
        let ft = up([1, h, w, c], &f);
        let mut rec = Recorder::new(ctx(), "t");
        let g = gram_gemm(&mut rec, &ft).unwrap();
        assert_eq!(g.shape(), [1, 1, c, c]);
        let r = rec.readback(&g);
        rec.submit().unwrap();
        let want = reference::gram(&f64s(&f), h * w, c);
        let e = rel_err(&r.read(ctx()).unwrap(), &want);
        assert!(e <= TOL, "{h}x{w}x{c}: {e:.1e}");
    }
    // Channels that are not a multiple of 32 are refused, not mis-computed.
    let mut rec = Recorder::new(ctx(), "t");
    assert!(gram_gemm(&mut rec, &up([1, 2, 2, 20], &[0.0; 80])).is_err());
}

#[test]
fn batched_gemm_matches_cpu() {
    let mut rng = Rng::new(23);
    let mut kernels = vec![GemmKernel::Tiled, GemmKernel::Rows { subgroup: false }];
    if GemmKernel::rows_on(ctx()) != kernels[1] {
        kernels.push(GemmKernel::rows_on(ctx()));
    }
    // m not a multiple of 8 (rows past m), n of 32 and of 64 (the N16 build), 3 batches.
    for (batch, [m, k, n]) in [(3, [13, 12, 32]), (2, [40, 36, 64]), (1, [600, 8, 96])] {
        let a = rng.vec(batch * m * k, -1.0, 1.0);
        let b = rng.vec(batch * k * n, -1.0, 1.0);
        let (at, bt) = (up([batch, 1, m, k], &a), up([batch, 1, k, n], &b));
        for &kernel in &kernels {
            for trans_a in [false, true] {
                if trans_a && (kernel == GemmKernel::Tiled || !m.is_multiple_of(8)) {
                    let c = Tensor::uninit(ctx(), "c", [batch, 1, m, n]).unwrap();
                    let mut rec = Recorder::new(ctx(), "t");
                    let r = batched_gemm_at(&mut rec, kernel, &at, &bt, &c, batch, [m, k, n]);
                    assert!(r.is_err(), "{kernel:?} m = {m}: refused");
                    continue;
                }
                let c = Tensor::uninit(ctx(), "c", [batch, 1, m, n]).unwrap();
                let mut rec = Recorder::new(ctx(), "t");
                let run = if trans_a {
                    batched_gemm_at
                } else {
                    batched_gemm
                };
                run(&mut rec, kernel, &at, &bt, &c, batch, [m, k, n]).unwrap();
                let r = rec.readback(&c);
                rec.submit().unwrap();
                let got = r.read(ctx()).unwrap();
                for i in 0..batch {
                    let want = reference::gemm(
                        &f64s(&a[i * m * k..(i + 1) * m * k]),
                        &f64s(&b[i * k * n..(i + 1) * k * n]),
                        [m, k, n],
                        trans_a,
                    );
                    let e = rel_err(&got[i * m * n..(i + 1) * m * n], &want);
                    assert!(
                        e <= TOL,
                        "{kernel:?} {trans_a} batch {i} {m}x{k}x{n}: {e:.1e}"
                    );
                }
            }
        }
    }
}

#[test]
fn content_and_tv_losses_with_gradients() {
    let mut rng = Rng::new(9);
    for (h, w, c) in [(5, 7, 3), (8, 3, 11)] {
        let n = h * w * c;
        let (x, t, g0) = (
            rng.vec(n, -5.0, 5.0),
            rng.vec(n, -5.0, 5.0),
            rng.vec(n, -1.0, 1.0),
        );
        let sh = [1, h, w, c];
        // Upload before recording (uploads are not ordered with recorded work).
        let (xt, tt, gt) = (up(sh, &x), up(sh, &t), up(sh, &g0));
        let mut rec = Recorder::new(ctx(), "t");
        let s = scalars(&mut rec, 4).unwrap();
        let dc = content_layer(&mut rec, &xt, &tt, 1.5, &s, 0).unwrap();
        let dt = tv(&mut rec, &xt, 0.3, &gt, &s, 1).unwrap();
        reduce_into(&mut rec, &xt, Some(&tt), Reduce::Dot, &s, 2, 2.0).unwrap();
        reduce_into(&mut rec, &xt, None, Reduce::SumSq, &s, 3, 1.0).unwrap();
        let (rs, rc, rt) = (rec.readback(&s), rec.readback(&dc), rec.readback(&dt));
        rec.submit().unwrap();
        let (s, dc, dt) = (
            rs.read(ctx()).unwrap(),
            rc.read(ctx()).unwrap(),
            rt.read(ctx()).unwrap(),
        );
        let content = |v: &[f64]| -> f64 {
            1.5 * v
                .iter()
                .zip(&t)
                .map(|(a, b)| (a - *b as f64).powi(2))
                .sum::<f64>()
                / n as f64
        };
        let tvf = |v: &[f64]| -> f64 {
            let mut acc = 0.0;
            for y in 0..h {
                for xx in 0..w {
                    for ch in 0..c {
                        let i = (y * w + xx) * c + ch;
                        if y + 1 < h {
                            acc += (v[i + w * c] - v[i]).powi(2);
                        }
                        if xx + 1 < w {
                            acc += (v[i + c] - v[i]).powi(2);
                        }
                    }
                }
            }
            0.3 * acc
        };
        let xv = f64s(&x);
        let dot: f64 = 2.0
            * x.iter()
                .zip(&t)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum::<f64>();
        let sumsq: f64 = xv.iter().map(|v| v * v).sum();
        for (got, want) in [
            (s[0], content(&xv)),
            (s[1], tvf(&xv)),
            (s[2], dot),
            (s[3], sumsq),
        ] {
            assert!(
                (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
        finite_diff(&x, &dc, content, &mut rng, 1e-3);
        // tv_grad adds to g0: subtract it before comparing.
        let dtv: Vec<f32> = dt.iter().zip(&g0).map(|(a, b)| a - b).collect();
        finite_diff(&x, &dtv, tvf, &mut rng, 1e-3);
    }
}
