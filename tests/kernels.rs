//! Every convolution kernel variant against a plain CPU implementation (float64), on random
//! shapes including odd sizes and both strides (the other layers: tests/layer_kernels.rs). Tolerance: max |gpu - cpu| / max |cpu| ≤ 1e-4
//! (f32 kernels); ≤ 4e-3 for the half-precision convolution variants, which run where the
//! adapter has SHADER_F16 (f16 has a unit roundoff of 4.9e-4; inputs, weights, products and
//! 16-term partial sums are rounded to it).

mod common;

use common::reference::{self, f64s};
use common::{ctx, rel_err, run, up, Rng};
use wgstyle::gpu::record::Recorder;
use wgstyle::ops::conv::{conv2d_transpose_with, conv2d_with, out_len, Conv2d, ConvAlgo, Padding};
use wgstyle::ops::gemm::GemmKernel;
use wgstyle::Tensor;

const TOL: f64 = 1e-4;
const TOL_F16: f64 = 4e-3;

/// Every convolution variant this adapter runs, with its tolerance.
fn conv_variants() -> Vec<(ConvAlgo, f64)> {
    let mut v: Vec<(ConvAlgo, f64)> = ConvAlgo::F32.iter().map(|t| (*t, TOL)).collect();
    if ctx().supports_f16() {
        v.extend(ConvAlgo::F16.iter().map(|t| (*t, TOL_F16)));
    } else {
        eprintln!("adapter without SHADER_F16: half-precision convolutions not tested here");
    }
    v.retain(|(t, _)| {
        let ok = t.usable(ctx());
        if !ok {
            eprintln!("{}: not supported by this adapter, not tested here", t);
        }
        ok
    });
    v
}

/// The subgroup variant (shared weight loads) runs wherever the adapter has SUBGROUP, and
/// an unusable variant is refused with an error rather than a GPU validation failure.
#[test]
fn subgroup_variant_runs_where_supported() {
    let sg = ConvAlgo::F32
        .into_iter()
        .find(|t| t.uses_subgroups())
        .unwrap();
    let features = ctx().device().features();
    let info = ctx().device().adapter_info();
    let expected = features.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size >= 8;
    assert_eq!(sg.usable(ctx()), expected);
    if info.backend == wgpu::Backend::Vulkan && info.name.contains("llvmpipe") {
        // lavapipe has subgroups of 8 (CI's Vulkan leg): the variant must be tested there.
        assert!(expected, "lavapipe should offer SUBGROUP");
    }
    if !expected {
        assert_refused(sg);
    }
}

/// A convolution on `tile`, which this adapter cannot run, fails with an error naming it.
fn assert_refused(tile: ConvAlgo) {
    let x = up([1, 4, 4, 4], &[0.5; 64]);
    let k = up([3, 3, 4, 8], &[0.25; 288]);
    let p = Conv2d {
        stride: 1,
        padding: Padding::Same,
        relu: false,
    };
    let mut rec = Recorder::new(ctx(), "test");
    let err = conv2d_with(&mut rec, &x, &k, None, p, tile).unwrap_err();
    assert!(err.to_string().contains(&tile.to_string()), "{err}");
}

/// The cooperative-matrix variants run exactly where the adapter offers their fragment size
/// (f16×f16→f32) with the features they need: on lavapipe from Mesa 26 the 8×8 one must be
/// offered (so that it is tested there); elsewhere they are refused with a clear error.
#[test]
fn cooperative_matrix_variants_run_where_supported() {
    let info = ctx().adapter_info();
    let sizes = ctx().coop_fragment_sizes();
    eprintln!(
        "{} ({:?}, {}): cooperative-matrix fragment sizes {sizes:?}",
        info.name, info.backend, info.driver_info
    );
    let mesa = info
        .driver_info
        .split_whitespace()
        .skip_while(|w| *w != "Mesa")
        .nth(1)
        .and_then(|v| v.split('.').next()?.parse::<u32>().ok());
    if info.backend == wgpu::Backend::Vulkan
        && info.name.contains("llvmpipe")
        && mesa.is_some_and(|m| m >= 26)
        && std::env::var("WGSTYLE_NO_COOP").is_err()
    {
        assert!(
            sizes.contains(&8),
            "lavapipe from Mesa 26 should offer 8x8 f16 fragments"
        );
    }
    for tile in ConvAlgo::F16
        .into_iter()
        .filter(|t| t.coop_size().is_some())
    {
        let expected = tile.coop_size().is_some_and(|s| sizes.contains(&s))
            && info.subgroup_min_size == info.subgroup_max_size
            && ctx().supports_f16();
        assert_eq!(tile.usable(ctx()), expected, "{tile}");
        if !expected {
            assert_refused(tile);
        }
    }
}

/// CPU convolution, f64 ([`reference::ConvGeometry`]). `pad` = (top, left); zero or
/// reflect padding.
#[allow(clippy::too_many_arguments)]
fn cpu_conv(
    x: &[f32],
    [n, h, w, cin]: [usize; 4],
    k: &[f32],
    [kh, _, _, cout]: [usize; 4],
    b: Option<&[f32]>,
    stride: usize,
    pad: (usize, usize),
    out: (usize, usize),
    reflect: bool,
    relu: bool,
) -> Vec<f64> {
    let geometry = reference::ConvGeometry {
        n,
        input: (h, w),
        output: out,
        k: kh,
        stride,
        pad,
        reflect,
        transposed: false,
    };
    let y = geometry.conv().forward(&f64s(x), cin, &f64s(k), cout);
    reference::bias_relu(y, b.map(f64s).as_deref(), relu)
}

/// CPU transposed conv, f64: y[s*i + a - pad, s*j + b - pad, co] += x[i, j, ci] * k[a, b, ci, co].
fn cpu_conv_t(
    x: &[f32],
    [n, h, w, cin]: [usize; 4],
    k: &[f32],
    [kh, _, _, cout]: [usize; 4],
    stride: usize,
    out: (usize, usize),
) -> Vec<f64> {
    let geometry = reference::ConvGeometry::transposed(n, (h, w), out, kh, stride);
    geometry.conv().forward(&f64s(x), cin, &f64s(k), cout)
}

#[test]
fn conv2d_same_padding_matches_cpu() {
    let mut rng = Rng::new(1);
    for case in 0..12 {
        let n = rng.range(1, 2);
        let h = rng.range(1, 19);
        // Rows wider than the direct kernel's 16 pixels per invocation where aligned.
        let w = if case >= 6 {
            rng.range(17, 40)
        } else {
            rng.range(1, 19)
        };
        let (mut cin, mut cout) = (rng.range(1, 20), rng.range(1, 70));
        if case % 6 == 5 {
            // At most 4 output channels: the direct kernel's NARROW body.
            cout = 1 + case % 4;
        }
        if case >= 6 {
            // Multiples of 4: the direct kernel without channel padding (the other cases
            // are padded first); at stride 1 its `ROWS` window slides along rows of 16 pixels.
            (cin, cout) = (cin.next_multiple_of(4), cout.next_multiple_of(4));
        }
        let k = [1, 3, 5, 9][case % 4];
        let stride = 1 + case % 2;
        let relu = case % 3 == 0;
        let with_bias = case % 2 == 0;
        let x = rng.vec(n * h * w * cin, -1.0, 1.0);
        let kern = rng.vec(k * k * cin * cout, -0.5, 0.5);
        let bias = rng.vec(cout, -1.0, 1.0);
        let (ho, pt) = out_len(h, k, stride, Padding::Same).unwrap();
        let (wo, pl) = out_len(w, k, stride, Padding::Same).unwrap();
        assert_eq!((ho, wo), (h.div_ceil(stride), w.div_ceil(stride)));
        let want = cpu_conv(
            &x,
            [n, h, w, cin],
            &kern,
            [k, k, cin, cout],
            with_bias.then_some(&bias[..]),
            stride,
            (pt, pl),
            (ho, wo),
            false,
            relu,
        );
        for (tile, tol) in conv_variants() {
            let (got, shape) = run(|rec| {
                let b = up([1, 1, 1, cout], &bias);
                conv2d_with(
                    rec,
                    &up([n, h, w, cin], &x),
                    &up([k, k, cin, cout], &kern),
                    with_bias.then_some(&b),
                    Conv2d {
                        stride,
                        padding: Padding::Same,
                        relu,
                    },
                    tile,
                )
                .unwrap()
            });
            assert_eq!(shape, [n, ho, wo, cout]);
            let e = rel_err(&got, &want);
            assert!(
                e <= tol,
                "case {case} {tile:?} n{n} {h}x{w}x{cin} k{k} s{stride} -> {cout}: rel err {e}"
            );
        }
    }
}

#[test]
fn same_padding_is_asymmetric_on_even_sizes() {
    // TF SAME, 3x3 stride 2: 0 before / 1 after on even sizes, 1/1 on odd sizes.
    assert_eq!(out_len(8, 3, 2, Padding::Same).unwrap(), (4, 0));
    assert_eq!(out_len(7, 3, 2, Padding::Same).unwrap(), (4, 1));
    assert_eq!(out_len(10, 9, 1, Padding::Same).unwrap(), (10, 4));
}

#[test]
fn conv2d_reflect_and_zero_padding_match_cpu() {
    let mut rng = Rng::new(2);
    for case in 0..8 {
        let (n, h) = (rng.range(1, 2), rng.range(4, 17));
        let w = if case % 3 == 0 {
            rng.range(17, 40)
        } else {
            rng.range(4, 17)
        };
        let (mut cin, mut cout) = (rng.range(1, 9), rng.range(1, 40));
        if case % 4 == 1 {
            // At most 4 output channels (as the fast network's last layer): NARROW.
            cout = 3;
        }
        if case % 3 == 0 {
            // Multiples of 4 (and rows wider than 16): the direct kernel without padding.
            (cin, cout) = (cin.next_multiple_of(4), cout.next_multiple_of(4));
        }
        let k = [3, 5][case % 2];
        let stride = 1 + (case / 2) % 2;
        let p = k / 2;
        let reflect = case < 4;
        let padding = if reflect {
            Padding::Reflect(p)
        } else {
            Padding::Zero(p)
        };
        let x = rng.vec(n * h * w * cin, -1.0, 1.0);
        let kern = rng.vec(k * k * cin * cout, -0.5, 0.5);
        let (ho, _) = out_len(h, k, stride, padding).unwrap();
        let (wo, _) = out_len(w, k, stride, padding).unwrap();
        let want = cpu_conv(
            &x,
            [n, h, w, cin],
            &kern,
            [k, k, cin, cout],
            None,
            stride,
            (p, p),
            (ho, wo),
            reflect,
            false,
        );
        for (tile, tol) in conv_variants() {
            let (got, shape) = run(|rec| {
                let p = Conv2d {
                    stride,
                    padding,
                    relu: false,
                };
                conv2d_with(
                    rec,
                    &up([n, h, w, cin], &x),
                    &up([k, k, cin, cout], &kern),
                    None,
                    p,
                    tile,
                )
                .unwrap()
            });
            assert_eq!(shape, [n, ho, wo, cout]);
            let e = rel_err(&got, &want);
            assert!(
                e <= tol,
                "case {case} {tile:?} {padding:?} s{stride}: rel err {e}"
            );
        }
    }
}

#[test]
fn conv2d_transpose_matches_cpu() {
    let mut rng = Rng::new(3);
    for case in 0..8 {
        let (n, h, w) = (rng.range(1, 2), rng.range(1, 13), rng.range(1, 13));
        let (mut cin, mut cout) = (rng.range(1, 24), rng.range(1, 70));
        if case >= 4 {
            // Multiples of 4: the direct kernel without channel padding.
            (cin, cout) = (cin.next_multiple_of(4), cout.next_multiple_of(4));
        }
        let relu = case % 2 == 1;
        let x = rng.vec(n * h * w * cin, -1.0, 1.0);
        let kern = rng.vec(9 * cin * cout, -0.5, 0.5);
        let mut want = cpu_conv_t(
            &x,
            [n, h, w, cin],
            &kern,
            [3, 3, cin, cout],
            2,
            (2 * h, 2 * w),
        );
        if relu {
            want.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        for (tile, tol) in conv_variants() {
            let (got, shape) = run(|rec| {
                let (xt, kt) = (up([n, h, w, cin], &x), up([3, 3, cin, cout], &kern));
                conv2d_transpose_with(rec, &xt, &kt, 2, (2 * h, 2 * w), relu, tile).unwrap()
            });
            assert_eq!(shape, [n, 2 * h, 2 * w, cout]);
            let e = rel_err(&got, &want);
            assert!(
                e <= tol,
                "case {case} {tile:?} n{n} {h}x{w}x{cin} -> {cout}: rel err {e}"
            );
        }
    }
}

/// (n, h, w, cin, cout, kernel size, padding (None: a stride-1 transposed convolution), bias,
/// relu)
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    Option<Padding>,
    bool,
    bool,
);

/// The Winograd variants (3×3 and 9×9, stride 1) on shapes that exercise their tiling: sizes
/// that are not multiples of the 4×4 output tile, single pixels, batches, channel counts that
/// need padding (input: to 4; products: to 32 columns), each padding mode, bias and ReLU,
/// stride-1 transposed convolutions (run with the rotated kernel), and 9×9 kernels (3×3
/// blocks of shifted 3×3 convolutions). Each case must take the Winograd path (its transform
/// kernels are recorded), within the f32 tolerance.
#[test]
fn winograd_matches_cpu() {
    let variants: Vec<ConvAlgo> = ConvAlgo::F32
        .into_iter()
        .filter(|t| t.gemm().is_some() && t.usable(ctx()))
        .collect();
    assert!(
        !variants.is_empty(),
        "the Winograd variant without subgroups runs everywhere"
    );
    let mut rng = Rng::new(11);
    let cases: [Case; 11] = [
        (1, 6, 6, 8, 32, 3, Some(Padding::Same), true, true),
        (2, 13, 18, 5, 36, 3, Some(Padding::Reflect(1)), false, false),
        (1, 1, 1, 16, 4, 3, Some(Padding::Same), true, false),
        (1, 2, 3, 4, 8, 3, Some(Padding::Reflect(1)), false, true),
        (1, 17, 33, 20, 64, 3, Some(Padding::Zero(1)), true, false),
        (1, 9, 11, 12, 28, 3, Some(Padding::Valid), false, false),
        (2, 7, 10, 3, 12, 3, None, false, true),
        (1, 16, 16, 32, 40, 3, None, false, false),
        (1, 13, 11, 3, 32, 9, Some(Padding::Same), true, true),
        (2, 10, 17, 8, 12, 9, Some(Padding::Reflect(4)), false, false),
        (1, 9, 12, 4, 8, 9, Some(Padding::Valid), true, false),
    ];
    for (case, &(n, h, w, cin, cout, k, padding, with_bias, relu)) in cases.iter().enumerate() {
        let x = rng.vec(n * h * w * cin, -1.0, 1.0);
        let kern = rng.vec(k * k * cin * cout, -0.5, 0.5);
        let bias = rng.vec(cout, -1.0, 1.0);
        let (want, out) = match padding {
            Some(pad) => {
                let (ho, pt) = out_len(h, k, 1, pad).unwrap();
                let (wo, pl) = out_len(w, k, 1, pad).unwrap();
                let y = cpu_conv(
                    &x,
                    [n, h, w, cin],
                    &kern,
                    [k, k, cin, cout],
                    with_bias.then_some(&bias[..]),
                    1,
                    (pt, pl),
                    (ho, wo),
                    matches!(pad, Padding::Reflect(_)),
                    relu,
                );
                (y, (ho, wo))
            }
            None => {
                let mut y = cpu_conv_t(&x, [n, h, w, cin], &kern, [3, 3, cin, cout], 1, (h, w));
                if relu {
                    y.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                (y, (h, w))
            }
        };
        for &tile in &variants {
            let mut rec = Recorder::new(ctx(), "test");
            let (xt, kt, b) = (
                up([n, h, w, cin], &x),
                up([k, k, cin, cout], &kern),
                up([1, 1, 1, cout], &bias),
            );
            let y = match padding {
                Some(padding) => {
                    let p = Conv2d {
                        stride: 1,
                        padding,
                        relu,
                    };
                    conv2d_with(&mut rec, &xt, &kt, with_bias.then_some(&b), p, tile).unwrap()
                }
                None => conv2d_transpose_with(&mut rec, &xt, &kt, 1, (h, w), relu, tile).unwrap(),
            };
            for entry in ["weights", "input", "output"] {
                let label = format!("winograd.{entry}");
                assert!(
                    rec.kernel_labels().contains(&label),
                    "case {case} {}: no {label} in {:?}",
                    tile,
                    rec.kernel_labels()
                );
            }
            let rb = rec.readback(&y);
            rec.submit().unwrap();
            assert_eq!(rb.shape(), [n, out.0, out.1, cout]);
            let got = rb.read(ctx()).unwrap();
            let e = rel_err(&got, &want);
            assert!(
                e <= TOL,
                "case {case} {} n{n} {h}x{w}x{cin} -> {cout} {padding:?}: rel err {e}",
                tile
            );
        }
    }
}

/// Under a memory budget a large Winograd convolution runs in several passes of as many tiles
/// as fit (here a 9×9 one, whose transformed input is 81 floats per pixel and channel: 400
/// tiles in passes of at most 336 under 14 MiB), with the same result as in one.
#[test]
fn winograd_passes_under_a_budget_match_cpu() {
    let own = common::new_context();
    own.set_pool_limit(Some(14 << 20));
    let tile = ConvAlgo::F32
        .into_iter()
        .find(|t| matches!(t.gemm(), Some(GemmKernel::Rows { .. })) && t.usable(&own))
        .unwrap();
    let (h, w, cin, cout) = (80, 80, 3, 32);
    let mut rng = Rng::new(12);
    let x = rng.vec(h * w * cin, -1.0, 1.0);
    let kern = rng.vec(81 * cin * cout, -0.5, 0.5);
    let want = cpu_conv(
        &x,
        [1, h, w, cin],
        &kern,
        [9, 9, cin, cout],
        None,
        1,
        (4, 4),
        (h, w),
        false,
        true,
    );
    let mut rec = Recorder::new(&own, "test");
    let (xt, kt) = (
        Tensor::upload(&own, "x", [1, h, w, cin], &x).unwrap(),
        Tensor::upload(&own, "k", [9, 9, cin, cout], &kern).unwrap(),
    );
    let p = Conv2d {
        stride: 1,
        padding: Padding::Same,
        relu: true,
    };
    let y = conv2d_with(&mut rec, &xt, &kt, None, p, tile).unwrap();
    let passes = rec
        .kernel_labels()
        .iter()
        .filter(|l| *l == "winograd.input")
        .count();
    assert!(passes >= 2, "one pass ({:?})", rec.kernel_labels());
    let rb = rec.readback(&y);
    rec.submit().unwrap();
    let e = rel_err(&rb.read(&own).unwrap(), &want);
    eprintln!("{passes} passes: rel err {e:.2e}");
    assert!(e <= TOL, "{passes} passes: rel err {e}");
}
