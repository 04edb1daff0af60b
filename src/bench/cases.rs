//! The cases of the suite, at the real shapes of the networks.

use self::random_tensor as t;
use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::record::Recorder;
use crate::gpu::tensor::Tensor;
use crate::nets::transformer::{Arch, TransformNet, TransformWeights};
use crate::nets::vgg::Vgg;
use crate::ops::conv::{conv2d, conv2d_transpose, Conv2d, ConvAlgo, Padding};
use crate::ops::norm::instance_norm;

/// Records one run of a case; returns whatever must outlive the submission.
pub type RecordFn<'a> = Box<dyn Fn(&mut Recorder) -> Result<Vec<Tensor>> + 'a>;

/// One benchmark case.
pub struct Case<'a> {
    /// Stable name, e.g. `conv/transform.res 3x3 128->128 @64x64`.
    pub name: String,
    /// `kernel`, `fusion` (pairs of fused and unfused runs) or `network`.
    pub kind: &'static str,
    /// Floating-point operations of one run.
    pub flops: f64,
    /// Bytes read and written by one run (each tensor once).
    pub bytes: f64,
    /// Records the work.
    pub record: RecordFn<'a>,
}

/// Deterministic pseudo-random values in [-a, a).
pub fn pseudo_random(n: usize, seed: u64, a: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            a * (2.0 * ((s >> 40) as f32 / (1u64 << 24) as f32) - 1.0)
        })
        .collect()
}

/// A persistent tensor of pseudo-random values in [-1, 1).
pub fn random_tensor(ctx: &Context, shape: [usize; 4], seed: u64) -> Result<Tensor> {
    Tensor::persistent(
        ctx,
        "bench.input",
        shape,
        &pseudo_random(shape.iter().product(), seed, 1.0),
    )
}

#[allow(clippy::too_many_arguments)] // one case: the shape, spelled out
fn conv_case(
    ctx: &Context,
    name: &str,
    hw: usize,
    k: usize,
    stride: usize,
    cin: usize,
    cout: usize,
    vgg: bool,
) -> Result<Case<'static>> {
    let x = t(ctx, [1, hw, hw, cin], 1)?;
    let w = t(ctx, [k, k, cin, cout], 2)?;
    let b = t(ctx, [1, 1, 1, cout], 3)?;
    let out = hw.div_ceil(stride);
    let (padding, relu) = if vgg {
        (Padding::Zero(1), true)
    } else {
        (Padding::Same, false)
    };
    let flops = 2.0 * (out * out * k * k * cin * cout) as f64;
    let bytes = 4.0 * (hw * hw * cin + k * k * cin * cout + out * out * cout) as f64;
    Ok(Case {
        name: format!("conv/{name} {k}x{k}/{stride} {cin}->{cout} @{hw}x{hw}"),
        kind: "kernel",
        flops,
        bytes,
        record: Box::new(move |rec| {
            let bias = vgg.then_some(&b);
            Ok(vec![conv2d(
                rec,
                &x,
                &w,
                bias,
                Conv2d {
                    stride,
                    padding,
                    relu,
                },
            )?])
        }),
    })
}

/// Whether the suite also times `case` with its convolutions in f16 (as `NAME f16`, on
/// adapters with `SHADER_F16`): the fast network's forward convolutions and the networks.
pub fn has_f16_copy(case: &Case) -> bool {
    case.name.starts_with("conv/transform.")
        || case.name.starts_with("conv_transpose/transform.")
        || case.kind == "network"
}

/// Whether the suite also times `case` on the cooperative-matrix kernel (as `NAME coop`, pinned
/// with [`Context::set_conv_variant`], on adapters that have one): the fast network's forward
/// convolutions, so that reports show the matrix units' speed beside whatever the autotune
/// chose for `NAME f16`.
pub fn has_coop_copy(case: &Case) -> bool {
    case.kind == "kernel"
        && (case.name.starts_with("conv/transform.")
            || case.name.starts_with("conv_transpose/transform."))
}

/// Whether the suite also times `case` with the direct convolution kernel pinned (as
/// `NAME direct`, [`ConvAlgo::default_on`]), on adapters whose default for 3×3 convolutions is
/// another variant ([`ConvAlgo::default_for_shape`]: Winograd, the `wide` block): the 3×3
/// convolutions and transposed convolutions, and the networks, so that reports show what
/// those variants gained.
pub fn has_direct_copy(ctx: &Context, case: &Case) -> bool {
    ConvAlgo::default_for_shape(ctx, &crate::ops::conv::AUTO_DECIDER)
        .gemm()
        .is_some()
        && (case.kind == "network"
            || (case.kind == "kernel"
                && (case.name.starts_with("conv/") || case.name.starts_with("conv_transpose/"))
                && case.name.contains(" 3x3/")))
}

/// Weights of the real shapes of `arch`, pseudo-random (fan-in scaled), for benchmarks and tests
/// that need no download.
pub fn synthetic_weights(arch: Arch) -> TransformWeights {
    let mut layers = std::collections::BTreeMap::new();
    for (i, l) in arch.layers().into_iter().enumerate() {
        let fan_in = (l.k * l.k * l.cin) as f32;
        let norm = |v: Vec<f32>| if arch.has_norm(i) { v } else { Vec::new() };
        layers.insert(
            l.name.clone(),
            crate::nets::transformer::LayerWeights {
                kernel: pseudo_random(
                    l.k * l.k * l.cin * l.cout,
                    10 + i as u64,
                    1.0 / fan_in.sqrt(),
                ),
                shift: norm(pseudo_random(l.cout, 100 + i as u64, 0.1)),
                scale: norm(vec![1.0; l.cout]),
                bias: if arch.has_bias() {
                    pseudo_random(l.cout, 200 + i as u64, 0.1)
                } else {
                    Vec::new()
                },
            },
        );
    }
    TransformWeights { arch, layers }
}

/// The suite: every distinct convolution of the fast network (at 256² and 512²) and of
/// VGG19 up to relu5_1 (at 256²), the transposed convolutions, instance norm, the backward
/// kernels of training and Gatys (256²), the Gram matrix, the norm + residual fusion, the
/// whole fast network at 256², 512² and 1024², and one Gatys iteration at 256² and 512² on
/// `vgg` (none without it); some also in f16 ([`has_f16_copy`]) and on the cooperative-matrix
/// kernel ([`has_coop_copy`]). `quick`: every kind of case
/// once, at 64². `wanted` says which
/// expensive cases to build at all (the caller filters the rest by name).
pub fn suite<'a>(
    ctx: &Context,
    quick: bool,
    vgg: Option<&'a Vgg>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Case<'a>>> {
    let mut v = Vec::new();
    let sizes: &[usize] = if quick { &[64] } else { &[256, 512] };
    for &s in sizes {
        v.push(conv_case(ctx, "transform.conv1", s, 9, 1, 3, 32, false)?);
        v.push(conv_case(ctx, "transform.conv2", s, 3, 2, 32, 64, false)?);
        v.push(conv_case(
            ctx,
            "transform.conv3",
            s / 2,
            3,
            2,
            64,
            128,
            false,
        )?);
        v.push(conv_case(
            ctx,
            "transform.res",
            s / 4,
            3,
            1,
            128,
            128,
            false,
        )?);
        v.push(conv_case(ctx, "transform.conv_out", s, 9, 1, 32, 3, false)?);
        for (cin, cout, q) in [(128, 64, s / 4), (64, 32, s / 2)] {
            let x = t(ctx, [1, q, q, cin], 4)?;
            let w = t(ctx, [3, 3, cin, cout], 5)?;
            v.push(Case {
                name: format!("conv_transpose/transform.up 3x3/2 {cin}->{cout} @{q}x{q}"),
                kind: "kernel",
                flops: 2.0 * (q * q * 9 * cin * cout) as f64,
                bytes: 4.0 * (q * q * cin + 9 * cin * cout + 4 * q * q * cout) as f64,
                record: Box::new(move |rec| {
                    Ok(vec![conv2d_transpose(
                        rec,
                        &x,
                        &w,
                        2,
                        (2 * q, 2 * q),
                        true,
                    )?])
                }),
            });
        }
        for (c, q) in [(32, s), (128, s / 4)] {
            let x = t(ctx, [1, q, q, c], 6)?;
            let sh = t(ctx, [1, 1, 1, c], 7)?;
            let sc = t(ctx, [1, 1, 1, c], 8)?;
            let n = (q * q * c) as f64;
            v.push(Case {
                name: format!("instance_norm/{c}ch @{q}x{q}"),
                kind: "kernel",
                flops: 8.0 * n,
                bytes: 4.0 * 3.0 * n,
                record: Box::new(move |rec| {
                    Ok(vec![instance_norm(rec, &x, &sh, &sc, None, 1e-3, true)?])
                }),
            });
        }
    }
    let s = sizes[0];
    super::backward::conv_grads(ctx, s, &mut v)?;
    super::backward::norm_grads(ctx, s, &mut v)?;
    super::backward::grams(ctx, s, &mut v)?;
    super::backward::fusions(ctx, s, &mut v)?;
    let vgg_size = if quick { 64 } else { 256 };
    let vgg_convs = [
        (3, 64, 1),
        (64, 64, 1),
        (64, 128, 2),
        (128, 128, 2),
        (128, 256, 4),
        (256, 256, 4),
        (256, 512, 8),
        (512, 512, 8),
        (512, 512, 16),
    ];
    for (cin, cout, div) in vgg_convs {
        v.push(conv_case(
            ctx,
            "vgg19",
            vgg_size / div,
            3,
            1,
            cin,
            cout,
            true,
        )?);
    }
    let arch = Arch::LENGSTROM;
    let net = std::rc::Rc::new(TransformNet::new(ctx, &synthetic_weights(arch))?);
    let nets: &[usize] = if quick { &[64] } else { &[256, 512, 1024] };
    for &s in nets {
        let x = Tensor::persistent(
            ctx,
            "bench.image",
            [1, s, s, 3],
            &pseudo_random(s * s * 3, 9, 127.0),
        )?;
        let net = net.clone();
        v.push(Case {
            name: format!("network/fast style transfer @{s}x{s}"),
            kind: "network",
            flops: arch.flops(s, s),
            bytes: 4.0 * (2 * s * s * 3) as f64 + 4.0 * 1_677_638.0,
            record: Box::new(move |rec| Ok(vec![net.forward(rec, &x)?])),
        });
    }
    // Computing the Gatys targets costs two VGG forwards: only for cases that will run.
    if let Some(vgg) = vgg {
        for &s in super::gatys::sizes(quick) {
            if wanted(&super::gatys::name(s)) {
                v.push(super::gatys::iteration(ctx, vgg, s)?);
            }
        }
    }
    Ok(v)
}
