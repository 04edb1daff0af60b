//! The fast network's backward pass and the kernels it is built from, on lavapipe-sized
//! shapes (batch 2, odd sizes so TensorFlow's "SAME" padding is asymmetric).
//!
//! Kernels: against CPU float64 implementations written here (max |Δ| ≤ `TOL` · max |ref|),
//! and against central differences of the CPU float64 loss at sampled coordinates.
//! Forward references are checked against the library's forward kernels first, so the
//! gradients are those of the forward the network really runs.
//!
//! The whole network (width 4, both upsampling kinds, 2 images of 11×13), for
//! `L = Σ r · y` with fixed random `r`:
//! - against central differences of a float64 CPU implementation of the network (step 1e-6,
//!   every kernel, shift and scale of every layer sampled; error ≤ `NET_TOL` · max |grad|);
//! - against central differences of the GPU (float32) forward itself, loss summed in float64
//!   on the CPU (steps and tolerance at `gpu_forward_finite_differences`).

mod common;

use common::{ctx, rel_err, Rng};
use wgstyle::gpu::record::Recorder;
use wgstyle::nets::transformer::{Arch, LayerKind, TransformNet, TransformWeights, Upsample};
use wgstyle::ops::conv::{conv2d, conv2d_transpose, Conv2d, Padding};
use wgstyle::ops::conv_grad::{
    conv2d_input_grad, conv2d_transpose_input_grad, conv2d_transpose_weight_grad_with,
    conv2d_weight_grad_with, WeightGradKernel,
};
use wgstyle::ops::elementwise::{output_tanh, output_tanh_backward};
use wgstyle::ops::norm::{instance_norm_apply, instance_norm_stats};
use wgstyle::ops::norm_grad::instance_norm_backward;
use wgstyle::ops::upsample::{upsample_nearest, upsample_nearest_backward};
use wgstyle::Tensor;

/// Kernels against their CPU float64 references: max |Δ| / max |ref|.
const TOL: f64 = 1e-5;
/// Finite differences of the CPU float64 losses: |fd − gpu| / max |gpu grad|.
const FD_TOL: f64 = 1e-4;
/// The whole network against finite differences of the float64 CPU network.
const NET_TOL: f64 = 2e-4;

fn up(shape: [usize; 4], v: &[f32]) -> Tensor {
    Tensor::upload(ctx(), "t", shape, v).unwrap()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Records `f`, submits, and reads back the tensors it returns.
fn run(f: impl FnOnce(&mut Recorder) -> Vec<Tensor>) -> Vec<Vec<f32>> {
    let mut rec = Recorder::new(ctx(), "train_grad");
    let out = f(&mut rec);
    let rbs: Vec<_> = out.iter().map(|t| rec.readback(t)).collect();
    rec.submit().unwrap();
    rbs.into_iter().map(|r| r.read(ctx()).unwrap()).collect()
}

fn dot(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * *y as f64).sum()
}

/// Max over `k` sampled coordinates (and the largest gradient) of
/// |central difference − grad| / max |grad|.
fn finite_diff(
    x: &[f32],
    grad: &[f32],
    loss: impl Fn(&[f64]) -> f64,
    rng: &mut Rng,
    h: f64,
) -> f64 {
    let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs() as f64));
    let scale = scale.max(1e-12);
    let mut xv = f64s(x);
    let mut worst = 0.0f64;
    let argmax = (0..grad.len())
        .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
        .unwrap();
    for j in 0..12 {
        let i = if j == 0 {
            argmax
        } else {
            rng.range(0, x.len() - 1)
        };
        let o = xv[i];
        xv[i] = o + h;
        let lp = loss(&xv);
        xv[i] = o - h;
        let lm = loss(&xv);
        xv[i] = o;
        let fd = (lp - lm) / (2.0 * h);
        worst = worst.max((fd - grad[i] as f64).abs() / scale);
    }
    worst
}

// ---------------------------------------------------------------------------------------
// CPU references

/// TensorFlow "SAME": output length and padding before.
fn same(n: usize, k: usize, s: usize) -> (usize, usize) {
    let out = n.div_ceil(s);
    (out, ((out - 1) * s + k).saturating_sub(n) / 2)
}

/// Padding before of a transposed convolution from `n` to `out` pixels.
fn tpad(n: usize, k: usize, s: usize, out: usize) -> usize {
    ((n - 1) * s + k).saturating_sub(out) / 2
}

/// A convolution's connections: (input pixel, output pixel, tap) over the batch. Input
/// `(h, w)`, output `(ho, wo)`; regular: input row `oy·s − pt + ky`; transposed: output row
/// `s·i + ky − pt` of input row `i`.
#[derive(Clone)]
struct Conn {
    pairs: Vec<(usize, usize, usize)>,
    taps: usize,
}

#[allow(clippy::too_many_arguments)]
fn conn(
    n: usize,
    (h, w): (usize, usize),
    (ho, wo): (usize, usize),
    k: usize,
    s: usize,
    (pt, pl): (usize, usize),
    transposed: bool,
) -> Conn {
    let mut pairs = Vec::new();
    for b in 0..n {
        for oy in 0..ho {
            for ox in 0..wo {
                for ky in 0..k {
                    for kx in 0..k {
                        let src = |o: usize, kk: usize, p: usize, lim: usize| -> Option<usize> {
                            let v = if transposed {
                                let t = o as isize + p as isize - kk as isize;
                                if t < 0 || t % s as isize != 0 {
                                    return None;
                                }
                                t / s as isize
                            } else {
                                (o * s + kk) as isize - p as isize
                            };
                            (v >= 0 && (v as usize) < lim).then_some(v as usize)
                        };
                        if let (Some(iy), Some(ix)) = (src(oy, ky, pt, h), src(ox, kx, pl, w)) {
                            pairs.push((
                                (b * h + iy) * w + ix,
                                (b * ho + oy) * wo + ox,
                                ky * k + kx,
                            ));
                        }
                    }
                }
            }
        }
    }
    Conn { pairs, taps: k * k }
}

impl Conn {
    fn forward(&self, x: &[f64], ci: usize, wt: &[f64], co: usize, out_px: usize) -> Vec<f64> {
        let mut y = vec![0.0; out_px * co];
        for &(pi, po, t) in &self.pairs {
            for c in 0..ci {
                let xv = x[pi * ci + c];
                for o in 0..co {
                    y[po * co + o] += xv * wt[(t * ci + c) * co + o];
                }
            }
        }
        y
    }

    fn weight_grad(&self, x: &[f64], ci: usize, dy: &[f64], co: usize) -> Vec<f64> {
        let mut dw = vec![0.0; self.taps * ci * co];
        for &(pi, po, t) in &self.pairs {
            for c in 0..ci {
                for o in 0..co {
                    dw[(t * ci + c) * co + o] += x[pi * ci + c] * dy[po * co + o];
                }
            }
        }
        dw
    }

    fn input_grad(&self, dy: &[f64], co: usize, wt: &[f64], ci: usize, in_px: usize) -> Vec<f64> {
        let mut dx = vec![0.0; in_px * ci];
        for &(pi, po, t) in &self.pairs {
            for c in 0..ci {
                for o in 0..co {
                    dx[pi * ci + c] += dy[po * co + o] * wt[(t * ci + c) * co + o];
                }
            }
        }
        dx
    }
}

/// Instance norm forward: `relu?(gamma · (x − mean) / sqrt(var + eps) + beta (+ res))`.
#[allow(clippy::too_many_arguments)]
fn norm_cpu(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    gamma: &[f64],
    beta: &[f64],
    res: Option<&[f64]>,
    relu: bool,
    eps: f64,
) -> Vec<f64> {
    let hw = h * w;
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            let at = |p: usize| (b * hw + p) * c + ch;
            let mean = (0..hw).map(|p| x[at(p)]).sum::<f64>() / hw as f64;
            let var = (0..hw).map(|p| (x[at(p)] - mean).powi(2)).sum::<f64>() / hw as f64;
            let istd = 1.0 / (var + eps).sqrt();
            for p in 0..hw {
                let i = at(p);
                let mut v = gamma[ch] * (x[i] - mean) * istd + beta[ch];
                if let Some(r) = res {
                    v += r[i];
                }
                y[i] = if relu { v.max(0.0) } else { v };
            }
        }
    }
    y
}

/// Instance norm backward in float64: (dx, dgamma, dbeta).
fn norm_backward_cpu(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    gamma: &[f64],
    y: &[f64],
    dy: &[f64],
    relu: bool,
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let hw = h * w;
    let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
    for b in 0..n {
        for ch in 0..c {
            let at = |p: usize| (b * hw + p) * c + ch;
            let mean = (0..hw).map(|p| x[at(p)]).sum::<f64>() / hw as f64;
            let var = (0..hw).map(|p| (x[at(p)] - mean).powi(2)).sum::<f64>() / hw as f64;
            let istd = 1.0 / (var + eps).sqrt();
            let g = |p: usize| {
                if relu && y[at(p)] <= 0.0 {
                    0.0
                } else {
                    dy[at(p)]
                }
            };
            let xh = |p: usize| (x[at(p)] - mean) * istd;
            let s1: f64 = (0..hw).map(g).sum();
            let s2: f64 = (0..hw).map(|p| g(p) * xh(p)).sum();
            db[ch] += s1;
            dg[ch] += s2;
            for p in 0..hw {
                dx[at(p)] = gamma[ch] * istd * (g(p) - s1 / hw as f64 - xh(p) * s2 / hw as f64);
            }
        }
    }
    (dx, dg, db)
}

fn upsample_cpu(x: &[f64], [n, h, w, c]: [usize; 4]) -> Vec<f64> {
    let mut y = vec![0.0; 4 * x.len()];
    for b in 0..n {
        for oy in 0..2 * h {
            for ox in 0..2 * w {
                for ch in 0..c {
                    y[((b * 2 * h + oy) * 2 * w + ox) * c + ch] =
                        x[((b * h + oy / 2) * w + ox / 2) * c + ch];
                }
            }
        }
    }
    y
}

// ---------------------------------------------------------------------------------------
// Kernels

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
    let ((ho, pt), (wo, pl)) = match c.transposed {
        None => (same(h, k, s), same(w, k, s)),
        Some((oh, ow)) => ((oh, tpad(h, k, s, oh)), (ow, tpad(w, k, s, ow))),
    };
    let cn = conn(n, (h, w), (ho, wo), k, s, (pt, pl), c.transposed.is_some());
    let x = rng.vec(n * h * w * ci, -1.0, 1.0);
    let wt = rng.vec(k * k * ci * co, -1.0, 1.0);
    let dy = rng.vec(n * ho * wo * co, -1.0, 1.0);
    let (xs, ws, dys) = ([n, h, w, ci], [k, k, ci, co], [n, ho, wo, co]);
    let got = run(|rec| {
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
    let e_fwd = rel_err(&got[0], &cn.forward(&xd, ci, &wd, co, n * ho * wo));
    let dw_ref = cn.weight_grad(&xd, ci, &dyd, co);
    let e_dws: Vec<f64> = got[2..].iter().map(|g| rel_err(g, &dw_ref)).collect();
    let e_dx = rel_err(&got[1], &cn.input_grad(&dyd, co, &wd, ci, n * h * w));
    // L = Σ dy · conv(x, w), in float64 on the CPU.
    let loss_w = |wv: &[f64]| dot(&cn.forward(&xd, ci, wv, co, n * ho * wo), &dy);
    let loss_x = |xv: &[f64]| dot(&cn.forward(xv, ci, &wd, co, n * ho * wo), &dy);
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
        let got = run(|rec| {
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
        let y = norm_cpu(&xd, shape, &gd, &bd, r, relu, eps);
        let (dx, dg, db) = norm_backward_cpu(&xd, shape, &gd, &y, &dyd, relu, eps);
        let errs = [
            rel_err(&got[0], &y),
            rel_err(&got[1], &dx),
            rel_err(&got[2], &dg),
            rel_err(&got[3], &db),
        ];
        // L = Σ dy · y, in float64.
        let loss = |xv: &[f64], gv: &[f64], bv: &[f64]| {
            dot(&norm_cpu(xv, shape, gv, bv, r, relu, eps), &dy)
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
    let got = run(|rec| {
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
        want_up[i] = dot(&upsample_cpu(&e, shape), &dy_up);
    }
    let y: Vec<f64> = xd.iter().map(|v| v.tanh() * 150.0 + 127.5).collect();
    let dtanh: Vec<f64> = xd
        .iter()
        .zip(&dy)
        .map(|(v, g)| *g as f64 * 150.0 * (1.0 - v.tanh().powi(2)))
        .collect();
    let errs = [
        rel_err(&got[0], &upsample_cpu(&xd, shape)),
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

// ---------------------------------------------------------------------------------------
// The network

const ARCHS: [Arch; 2] = [
    Arch {
        width: 4,
        upsample: Upsample::Transpose,
        ..Arch::LENGSTROM
    },
    Arch {
        width: 4,
        upsample: Upsample::Nearest,
        ..Arch::LENGSTROM
    },
];

/// Per layer: kernel, shift, scale in float64.
type Params64 = Vec<[Vec<f64>; 3]>;

fn params64(w: &TransformWeights) -> Params64 {
    w.arch
        .layers()
        .iter()
        .map(|l| {
            let lw = &w.layers[&l.name];
            [f64s(&lw.kernel), f64s(&lw.shift), f64s(&lw.scale)]
        })
        .collect()
}

/// The network in float64 on the CPU: output and its shape.
fn net_cpu(arch: Arch, p: &Params64, x: &[f64], shape: [usize; 4]) -> (Vec<f64>, [usize; 4]) {
    let specs = arch.layers();
    let eps = arch.eps as f64;
    let layer = |i: usize, x: &[f64], [n, h, w, c]: [usize; 4], res: Option<&[f64]>, relu| {
        let l = &specs[i];
        let [kern, shift, scale] = &p[i];
        let (input, cn, ohw) = match (l.kind, arch.upsample) {
            (LayerKind::Conv { stride }, _) => {
                let ((ho, pt), (wo, pl)) = (same(h, l.k, stride), same(w, l.k, stride));
                let cn = conn(n, (h, w), (ho, wo), l.k, stride, (pt, pl), false);
                (x.to_vec(), cn, (ho, wo))
            }
            (LayerKind::Up, Upsample::Transpose) => {
                let (pt, pl) = (tpad(h, l.k, 2, 2 * h), tpad(w, l.k, 2, 2 * w));
                let cn = conn(n, (h, w), (2 * h, 2 * w), l.k, 2, (pt, pl), true);
                (x.to_vec(), cn, (2 * h, 2 * w))
            }
            (LayerKind::Up, Upsample::Nearest) => {
                let u = upsample_cpu(x, [n, h, w, c]);
                let (pt, pl) = (same(2 * h, l.k, 1).1, same(2 * w, l.k, 1).1);
                let cn = conn(n, (2 * h, 2 * w), (2 * h, 2 * w), l.k, 1, (pt, pl), false);
                (u, cn, (2 * h, 2 * w))
            }
        };
        let os = [n, ohw.0, ohw.1, l.cout];
        let pre = cn.forward(&input, l.cin, kern, l.cout, n * ohw.0 * ohw.1);
        (norm_cpu(&pre, os, scale, shift, res, relu, eps), os)
    };
    let (mut h, mut s) = layer(0, x, shape, None, true);
    for i in 1..3 {
        (h, s) = layer(i, &h, s, None, true);
    }
    for r in 0..5 {
        let (a, sa) = layer(3 + 2 * r, &h, s, None, true);
        (h, s) = layer(4 + 2 * r, &a, sa, Some(&h), false);
    }
    for i in 13..16 {
        (h, s) = layer(i, &h, s, None, i != 15);
    }
    (h.iter().map(|v| v.tanh() * 150.0 + 127.5).collect(), s)
}

/// An initialised network with random shifts and scales (so no gradient sits at a special
/// point), its weights, an input of 2 images of 11×13 and the loss weights `r`.
struct Setup {
    net: TransformNet,
    weights: TransformWeights,
    x: Vec<f32>,
    x_shape: [usize; 4],
    r: Vec<f32>,
    y_shape: [usize; 4],
}

fn setup(arch: Arch, seed: u64) -> Setup {
    let mut rng = Rng::new(seed);
    let mut weights = TransformNet::init(ctx(), arch, seed)
        .unwrap()
        .download_weights()
        .unwrap();
    for lw in weights.layers.values_mut() {
        lw.shift = rng.vec(lw.shift.len(), -0.5, 0.5);
        lw.scale = rng.vec(lw.scale.len(), 0.5, 1.5);
    }
    let net = TransformNet::new(ctx(), &weights).unwrap();
    let x_shape = [2, 11, 13, 3];
    let x = rng.vec(x_shape.iter().product(), 0.0, 255.0);
    let y_shape = [2, 12, 16, 3];
    let r = rng.vec(y_shape.iter().product(), -1.0, 1.0);
    Setup {
        net,
        weights,
        x,
        x_shape,
        r,
        y_shape,
    }
}

/// The GPU output of `net` and, from `forward_tape` + `backward` with `dy = r`, every
/// layer's (kernel, shift, scale) gradients.
fn gpu_grads(s: &Setup) -> (Vec<f32>, Vec<[Vec<f32>; 3]>) {
    let out = run(|rec| {
        let x = up(s.x_shape, &s.x);
        let (y, tape) = s.net.forward_tape(rec, &x).unwrap();
        assert_eq!(y.shape(), s.y_shape);
        let grads = s.net.backward(rec, &tape, &up(s.y_shape, &s.r)).unwrap();
        for (i, g) in grads.iter().enumerate() {
            let (_, k, sh, sc) = s.net.layer_weights(i);
            assert_eq!(g.kernel.shape(), k.shape());
            assert_eq!(g.shift.shape(), sh.shape());
            assert_eq!(g.scale.shape(), sc.shape());
        }
        let mut v = vec![y];
        v.extend(grads.into_iter().flat_map(|g| [g.kernel, g.shift, g.scale]));
        v
    });
    let mut it = out.into_iter();
    let y = it.next().unwrap();
    let mut grads = Vec::new();
    while let (Some(k), Some(sh), Some(sc)) = (it.next(), it.next(), it.next()) {
        grads.push([k, sh, sc]);
    }
    (y, grads)
}

const PARTS: [&str; 3] = ["kernel", "shift", "scale"];

/// Coordinates to check in a gradient: the largest, then `k − 1` random ones.
fn sample(g: &[f32], k: usize, rng: &mut Rng) -> Vec<usize> {
    let argmax = (0..g.len())
        .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
        .unwrap();
    let mut v = vec![argmax];
    v.extend((1..k.min(g.len())).map(|_| rng.range(0, g.len() - 1)));
    v
}

#[test]
fn network_gradients_match_float64_finite_differences() {
    for (ai, arch) in ARCHS.into_iter().enumerate() {
        let s = setup(arch, 31 + ai as u64);
        let (y, grads) = gpu_grads(&s);
        let p = params64(&s.weights);
        let xd = f64s(&s.x);
        let (y64, ys) = net_cpu(arch, &p, &xd, s.x_shape);
        assert_eq!(ys, s.y_shape);
        let e_fwd = rel_err(&y, &y64);
        eprintln!(
            "{:?}: GPU forward vs float64 CPU network {e_fwd:.1e}",
            arch.upsample
        );
        assert!(e_fwd <= 1e-4, "forward {e_fwd:.1e}");
        let loss = |p: &Params64| dot(&net_cpu(arch, p, &xd, s.x_shape).0, &s.r);
        let mut rng = Rng::new(99);
        let h = 1e-6;
        for (li, l) in arch.layers().iter().enumerate() {
            let mut line = format!("{:?} {:>8}:", arch.upsample, l.name);
            for part in 0..3 {
                let g = &grads[li][part];
                let scale = g.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
                let mut worst = 0.0f64;
                for i in sample(g, if part == 0 { 4 } else { 2 }, &mut rng) {
                    let mut q = p.clone();
                    q[li][part][i] += h;
                    let lp = loss(&q);
                    q[li][part][i] -= 2.0 * h;
                    let lm = loss(&q);
                    let fd = (lp - lm) / (2.0 * h);
                    worst = worst.max((fd - g[i] as f64).abs() / scale.max(1e-12));
                }
                line += &format!(" {} {worst:.1e} (max|g| {scale:.2e})", PARTS[part]);
                assert!(
                    worst <= NET_TOL,
                    "{:?} {}.{}: {worst:.1e}",
                    arch.upsample,
                    l.name,
                    PARTS[part]
                );
            }
            eprintln!("{line}");
        }
    }
}

#[test]
fn forward_tape_gives_the_forward_output_exactly() {
    for (ai, arch) in ARCHS.into_iter().enumerate() {
        let s = setup(arch, 41 + ai as u64);
        let out = run(|rec| {
            let x = up(s.x_shape, &s.x);
            let (yt, tape) = s.net.forward_tape(rec, &x).unwrap();
            let y = s.net.forward(rec, &x).unwrap();
            vec![yt, y, tape.layer_output(15).clone()]
        });
        assert_eq!(out[0].len(), s.y_shape.iter().product::<usize>());
        let same = out[0]
            .iter()
            .zip(&out[1])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{:?}: forward_tape differs from forward",
            arch.upsample
        );
        // The tape's last layer output is the input of tanh·150 + 127.5.
        let mapped: Vec<f64> = out[2]
            .iter()
            .map(|v| (*v as f64).tanh() * 150.0 + 127.5)
            .collect();
        assert!(rel_err(&out[0], &mapped) <= 1e-6);
    }
}

#[test]
fn init_is_truncated_normal_and_download_round_trips() {
    let arch = Arch {
        width: 8,
        ..Arch::LENGSTROM
    };
    let net = TransformNet::init(ctx(), arch, 5).unwrap();
    let w = net.download_weights().unwrap();
    w.validate().unwrap();
    assert_eq!(w.arch, arch);
    let all: Vec<f64> = w.layers.values().flat_map(|l| f64s(&l.kernel)).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let std = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
    // N(0, 0.1²) truncated at ±0.2 has standard deviation 0.1 · 0.8796.
    eprintln!("init: {} values, mean {mean:.2e}, std {std:.4}", all.len());
    assert!(all.iter().all(|v| v.abs() <= 0.2));
    assert!(
        mean.abs() < 3e-3 && (std - 0.08796).abs() < 2e-3,
        "{mean} {std}"
    );
    for l in w.layers.values() {
        assert!(l.shift.iter().all(|&v| v == 0.0) && l.scale.iter().all(|&v| v == 1.0));
    }
    // The same seed gives the same weights, another seed others.
    let again = TransformNet::init(ctx(), arch, 5)
        .unwrap()
        .download_weights()
        .unwrap();
    let other = TransformNet::init(ctx(), arch, 6)
        .unwrap()
        .download_weights()
        .unwrap();
    assert_eq!(w.layers["res3_a"].kernel, again.layers["res3_a"].kernel);
    assert_ne!(w.layers["res3_a"].kernel, other.layers["res3_a"].kernel);
    // Upload and download again: bit-exact.
    let mut rng = Rng::new(8);
    let mut changed = w.clone();
    for l in changed.layers.values_mut() {
        l.shift = rng.vec(l.shift.len(), -1.0, 1.0);
        l.scale = rng.vec(l.scale.len(), -1.0, 1.0);
    }
    let back = TransformNet::new(ctx(), &changed)
        .unwrap()
        .download_weights()
        .unwrap();
    for (name, l) in &changed.layers {
        let b = &back.layers[name];
        assert!(
            l.kernel == b.kernel && l.shift == b.shift && l.scale == b.scale,
            "{name}"
        );
    }
}

/// Central differences of the GPU forward itself (float32; the loss is summed in float64 on
/// the CPU from the downloaded output): per layer the largest kernel gradient and one random
/// kernel entry, the largest shift and scale gradients, step 1e-3 for every parameter (kernel
/// entries are ~0.1, shifts ~0.5, scales ~1).
///
/// Two checks per coordinate, relative to max |grad| of that tensor:
/// - |fd − grad| ≤ `GPU_FD_TOL`. This is loose because of the ReLUs: any finite step moves
///   some of them across zero, and the differences of even the exact float64 network (same
///   weights, same step) are off by that much (measured at 1e-2: up to 9%; at 1e-3: up to
///   3.0e-2, up2's kernel; at 3e-4 and below float32 rounding in the forward adds up to 3e-3).
/// - |fd − fd₆₄| ≤ `SAME_STEP_TOL`, fd₆₄ being the float64 network's difference at the same
///   step: the GPU forward differs like the exact network, kinks included (measured worst
///   3.0e-3, float32 rounding of the forward over a step of 1e-3). Together with
///   `network_gradients_match_float64_finite_differences` (step 1e-6, no kinks) this ties the
///   gradients to the GPU forward tightly.
#[test]
fn network_gradients_match_gpu_finite_differences() {
    const GPU_FD_TOL: f64 = 5e-2;
    const SAME_STEP_TOL: f64 = 1e-2;
    let step = 1e-3f32;
    let mut failures = Vec::new();
    for (ai, arch) in ARCHS.into_iter().enumerate() {
        let s = setup(arch, 51 + ai as u64);
        let (_, grads) = gpu_grads(&s);
        let xd = f64s(&s.x);
        let r64 = f64s(&s.r);
        let mut rng = Rng::new(7);
        for (li, l) in arch.layers().iter().enumerate() {
            // (part, index) to check, and the weights with that entry at ±step.
            let mut probes = Vec::new();
            for (part, g) in grads[li].iter().enumerate() {
                let n = if part == 0 { 2 } else { 1 };
                for i in sample(g, n, &mut rng) {
                    probes.push((part, i));
                }
            }
            let mut perturbed = Vec::new();
            for &(part, i) in &probes {
                for sign in [1.0f32, -1.0] {
                    let mut w = s.weights.clone();
                    let lw = w.layers.get_mut(&l.name).unwrap();
                    let v = match part {
                        0 => &mut lw.kernel,
                        1 => &mut lw.shift,
                        _ => &mut lw.scale,
                    };
                    v[i] += sign * step;
                    perturbed.push(w);
                }
            }
            let nets: Vec<TransformNet> = perturbed
                .iter()
                .map(|w| TransformNet::new(ctx(), w).unwrap())
                .collect();
            let ys = run(|rec| {
                let x = up(s.x_shape, &s.x);
                nets.iter().map(|n| n.forward(rec, &x).unwrap()).collect()
            });
            let loss_gpu =
                |y: &[f32]| -> f64 { y.iter().zip(&r64).map(|(a, b)| *a as f64 * b).sum() };
            let loss_64 =
                |w: &TransformWeights| dot(&net_cpu(arch, &params64(w), &xd, s.x_shape).0, &s.r);
            let mut line = format!("{:?} {:>8}:", arch.upsample, l.name);
            for (j, &(part, i)) in probes.iter().enumerate() {
                let g = &grads[li][part];
                let scale = g
                    .iter()
                    .fold(0.0f64, |m, v| m.max(v.abs() as f64))
                    .max(1e-12);
                // The step actually taken (float32 rounds the perturbed weight).
                let value = |w: &TransformWeights| {
                    let lw = &w.layers[&l.name];
                    [&lw.kernel, &lw.shift, &lw.scale][part][i] as f64
                };
                let h = (value(&perturbed[2 * j]) - value(&perturbed[2 * j + 1])) / 2.0;
                let fd = (loss_gpu(&ys[2 * j]) - loss_gpu(&ys[2 * j + 1])) / (2.0 * h);
                let fd64 =
                    (loss_64(&perturbed[2 * j]) - loss_64(&perturbed[2 * j + 1])) / (2.0 * h);
                let e = (fd - g[i] as f64).abs() / scale;
                let e_same = (fd - fd64).abs() / scale;
                line += &format!(" {}[{i}] {e:.1e} ({e_same:.1e})", PARTS[part]);
                if e > GPU_FD_TOL || e_same > SAME_STEP_TOL {
                    failures.push(format!(
                        "{:?} {}.{}[{i}]: grad {}, fd {fd}, float64 fd {fd64}",
                        arch.upsample, l.name, PARTS[part], g[i]
                    ));
                }
            }
            eprintln!("{line}");
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
