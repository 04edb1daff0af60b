//! The half-precision convolution path (`--precision f16|f32|auto`): its error against f32 on
//! every shipped fast-style network (bound: 2/255 of the 8-bit output after clipping), that it
//! really computes in half precision, how the autotune keeps f32, f16 and auto choices apart,
//! and the errors where it is not available. The f16 parts skip (saying so) on adapters
//! without SHADER_F16, such as llvmpipe through GL. The cooperative-matrix kernels (f16 tiles,
//! f32 sums) are held to the same bound where the adapter has them (lavapipe from Mesa 26,
//! GPUs with matrix units), and skip elsewhere.

mod common;

use common::cli::{photo, run, stderr, wgstyle};
use wgstyle::gpu::record::Recorder;
use wgstyle::ops::conv::ConvPrecision;
use wgstyle::ops::conv::AUTO_DECIDER;
use wgstyle::ops::conv::{conv2d, Conv2d, ConvAlgo, Padding};
use wgstyle::{weights, Context, Error, Stylizer, Tensor};

/// A private context (precision is a per-context setting).
fn f16_context() -> Option<Context> {
    let ctx = common::new_context();
    if !ctx.supports_f16() {
        eprintln!(
            "SKIPPED: {} ({:?}) has no SHADER_F16",
            ctx.adapter_info().name,
            ctx.adapter_info().backend
        );
        return None;
    }
    Some(ctx)
}

/// Largest difference between two 8-bit images, and how many values differ at all.
fn diff(a: &image::RgbImage, b: &image::RgbImage) -> (u8, usize) {
    let d = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y));
    (d.clone().max().unwrap(), d.filter(|v| *v > 0).count())
}

/// Stylizes a 128×96 photo with every shipped style in f32 and after `low` (which switches
/// `ctx` to a lower-precision path), and checks the two within 2/255 of each other, and that
/// `low` changed something.
fn within_2_of_255_on_every_style(
    shared: &std::path::Path,
    ctx: &Context,
    what: &str,
    low: impl Fn(&Context),
) {
    let img = photo(shared, 128, 96);
    let mut any_differs = false;
    for style in common::ALL_STYLES {
        let w = weights::load_transform(&shared.join("weights/styles").join(style)).unwrap();
        let s = Stylizer::new(ctx, &w).unwrap();
        ctx.set_precision(ConvPrecision::F32).unwrap();
        ctx.set_conv_variant(None).unwrap();
        let f32_out = s.stylize(&img).unwrap();
        low(ctx);
        let low_out = s.stylize(&img).unwrap();
        let (max, count) = diff(&f32_out, &low_out);
        eprintln!(
            "{style}: {what} vs f32 max {max}/255, {count} of {} values differ",
            img.len()
        );
        assert!(
            max <= 2,
            "{style}: {what} output differs from f32 by {max}/255"
        );
        any_differs |= count > 0;
    }
    // If the half-precision kernels were not in use, the outputs would be identical.
    assert!(
        any_differs,
        "{what} and f32 outputs are identical: {what} not in effect"
    );
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn f16_stays_within_2_of_255_of_f32_on_every_shipped_style() {
    let shared = shared_or_skip!();
    let Some(ctx) = f16_context() else { return };
    within_2_of_255_on_every_style(&shared, &ctx, "f16", |ctx| {
        ctx.set_precision(ConvPrecision::F16).unwrap()
    });
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn cooperative_matrix_kernels_stay_within_2_of_255_of_f32_on_every_shipped_style() {
    let shared = shared_or_skip!();
    let ctx = common::new_context();
    let coop: Vec<ConvAlgo> = ConvAlgo::F16
        .into_iter()
        .filter(|t| t.coop_size().is_some() && t.usable(&ctx))
        .collect();
    if coop.is_empty() {
        eprintln!(
            "SKIPPED: {} ({:?}, {}) runs no cooperative-matrix kernel",
            ctx.adapter_info().name,
            ctx.adapter_info().backend,
            ctx.adapter_info().driver_info
        );
        return;
    }
    for tile in coop {
        // Every convolution of the network (transposed ones too) on the coop kernel.
        within_2_of_255_on_every_style(&shared, &ctx, &tile.to_string(), |ctx| {
            ctx.set_conv_variant(Some(tile)).unwrap()
        });
    }
}

#[test]
fn autotune_keeps_f32_f16_and_auto_choices_apart_and_auto_decides_once() {
    let Some(ctx) = f16_context() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    ctx.set_autotune(true);
    ctx.set_autotune_cache(Some(cache.clone()));
    let mut rng = common::Rng::new(5);
    let x = Tensor::upload(&ctx, "x", [1, 12, 10, 8], &rng.vec(960, -1.0, 1.0)).unwrap();
    let k = Tensor::upload(&ctx, "k", [3, 3, 8, 16], &rng.vec(1152, -0.5, 0.5)).unwrap();
    let conv = |ctx: &Context| {
        let mut rec = Recorder::new(ctx, "test");
        let p = Conv2d {
            stride: 1,
            padding: Padding::Same,
            relu: false,
        };
        let y = conv2d(&mut rec, &x, &k, None, p).unwrap();
        let labels = rec.kernel_labels().to_vec();
        rec.submit().unwrap();
        drop(y);
        labels
    };
    for precision in [ConvPrecision::F16, ConvPrecision::F32] {
        ctx.set_precision(precision).unwrap();
        assert_eq!(ctx.effective_precision(), precision);
        let labels = conv(&ctx);
        let choices = ctx.conv_choices();
        assert!(!choices.is_empty(), "{precision}: nothing tuned");
        for (shape, tile) in &choices {
            assert_eq!(
                tile.is_half(),
                precision == ConvPrecision::F16,
                "{precision}: {shape:?} got {}",
                tile
            );
        }
        let half_label = labels.iter().any(|l| is_half_conv(l));
        assert_eq!(half_label, precision == ConvPrecision::F16, "{labels:?}");
    }
    // Auto: one decision for the whole context, on the decider shape, among f32 and f16
    // variants; then every convolution uses the decided precision's own choices.
    ctx.set_precision(ConvPrecision::Auto).unwrap();
    let decided = ctx.effective_precision();
    assert_ne!(decided, ConvPrecision::Auto);
    let labels = conv(&ctx);
    let half_label = labels.iter().any(|l| is_half_conv(l));
    assert_eq!(half_label, decided == ConvPrecision::F16, "{labels:?}");
    let choices = ctx.conv_choices();
    assert!(choices
        .iter()
        .all(|(_, t)| t.is_half() == (decided == ConvPrecision::F16)));
    assert!(
        !choices.iter().any(|(s, _)| *s == AUTO_DECIDER),
        "decider kept apart"
    );
    // The cache file names the precision of each choice.
    let text = std::fs::read_to_string(&cache).unwrap();
    for p in ["\"f32\"", "\"f16\"", "\"auto\""] {
        assert!(text.contains(p), "cache lacks {p}: {text}");
    }
    // Where the device has cooperative matrices, their variants agreed with the default
    // variant's output (else the autotune drops them untimed) and were timed among the f16
    // ones.
    for size in ctx.coop_fragment_sizes() {
        let name = format!("\"coop {size}x{size} f16\"");
        assert!(text.contains(&name), "{name} not timed: {text}");
    }
    // Autotune off: auto means f32 (there is nothing to measure with).
    ctx.set_autotune(false);
    assert_eq!(ctx.effective_precision(), ConvPrecision::F32);
    assert!(!conv(&ctx).iter().any(|l| is_half_conv(l)));
}

#[test]
fn f16_on_a_device_without_shader_f16_is_a_clear_error() {
    // A device created by an embedding program without SHADER_F16 (on every adapter).
    let ctx = common::embedded_context();
    assert!(!ctx.supports_f16());
    let e = ctx.set_precision(ConvPrecision::F16).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert!(e.to_string().contains("SHADER_F16"), "{e}");
    assert_eq!(
        ctx.precision(),
        ConvPrecision::F32,
        "a refused setting changes nothing"
    );
    ctx.set_autotune(true);
    ctx.set_precision(ConvPrecision::Auto).unwrap();
    assert_eq!(ctx.effective_precision(), ConvPrecision::F32);
}

#[test]
fn precision_other_than_f32_is_refused_by_optimize_and_train() {
    let dir = tempfile::tempdir().unwrap();
    for (cmd, extra) in [
        (
            "optimize",
            vec!["c.png", "--style-image", "s.png", "-o", "o.png"],
        ),
        (
            "train",
            vec![
                "--style-image",
                "s.png",
                "--dataset",
                "d",
                "-o",
                "o.safetensors",
            ],
        ),
    ] {
        let out = run(wgstyle(dir.path())
            .current_dir(dir.path())
            .args([cmd, "--precision", "f16"])
            .args(extra));
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("--precision f16") && err.contains("runs in f32"),
            "{cmd}: {err}"
        );
    }
    let out = run(wgstyle(dir.path()).args(["--precision", "f8", "x.png"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("f8"), "{}", stderr(&out));
}

/// Whether a pipeline label is that of a half-precision convolution (`conv2d_f16.direct[..]`,
/// `conv2d_subgroup_f16.direct[..]`).
fn is_half_conv(label: &str) -> bool {
    label
        .split('.')
        .next()
        .is_some_and(|stem| stem.starts_with("conv2d") && stem.ends_with("_f16"))
}
