//! VGG19: the tfjs importer (dequantisation spot checks, safetensors round trip) and the
//! forward pass with Gram matrices against Keras (`golden/vgg`), max |Δ| ≤ 1e-4 · max|ref|.

mod common;

use common::{ctx, read_safetensors, rel_err};
use wgstyle::gpu::record::Recorder;
use wgstyle::nets::vgg::{layer_index, Vgg, VggWeights};
use wgstyle::ops::gram::gram;
use wgstyle::ops::pool::Pooling;
use wgstyle::Tensor;

fn load(shared: &std::path::Path) -> VggWeights {
    wgstyle::weights::load_vgg19(&shared.join("weights/vgg19-tfjs")).unwrap()
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn tfjs_dequantisation_matches_spot_checks() {
    let shared = shared_or_skip!();
    let w = load(&shared);
    let check = read_safetensors(&shared.join("golden/vgg/vgg19_dequant_check.safetensors"));
    for c in &w.convs {
        // Within 1 ulp (a value the reference rounds to exactly 0 is ~1e-17 here).
        let close = |a: &[f32], b: &[f32], what: &str| {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-7 + 1.2e-7 * y.abs(),
                    "{} {what}: {x} vs {y}",
                    c.name
                );
            }
        };
        close(
            &c.kernel[..8],
            &check[&format!("{}/kernel/head8", c.name)].1,
            "head",
        );
        let n = c.kernel.len();
        close(
            &c.kernel[n - 8..],
            &check[&format!("{}/kernel/tail8", c.name)].1,
            "tail",
        );
        close(
            &c.bias[..8],
            &check[&format!("{}/bias/head8", c.name)].1,
            "bias",
        );
        let sum: f64 = c.kernel.iter().map(|&v| v as f64).sum();
        let want = check[&format!("{}/kernel/sum_f64", c.name)].1[0] as f64;
        assert!(
            (sum - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{} sum {sum} vs {want}",
            c.name
        );
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn safetensors_round_trip_keeps_every_value() {
    let shared = shared_or_skip!();
    let w = load(&shared);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vgg19.safetensors");
    wgstyle::weights::vgg::save_vgg19(&w, &path, false, &[]).unwrap();
    let back = wgstyle::weights::load_vgg19(&path).unwrap();
    for (a, b) in w.convs.iter().zip(&back.convs) {
        assert_eq!(a.kernel, b.kernel);
        assert_eq!(a.bias, b.bias);
    }
    // The metadata names the preprocessing.
    let bytes = std::fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["wgstyle.input"], "bgr 0..255 minus caffe mean");
}

fn check_golden(name: &str) {
    let shared = shared_or_skip!();
    let w = load(&shared);
    let g = read_safetensors(&shared.join(format!("golden/vgg/{name}.safetensors")));
    let (shape, x) = &g["input_bgr"];
    let ctx = ctx();
    let vgg = Vgg::new(ctx, &w, 13, Pooling::Max).unwrap();
    let xt = Tensor::upload(ctx, "x", [1, shape[0], shape[1], 3], x).unwrap();
    let mut rec = Recorder::new(ctx, "vgg");
    let acts = vgg.forward(&mut rec, &xt, 12).unwrap();
    let layers = [
        "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1",
    ];
    let mut reads = Vec::new();
    for l in layers {
        let a = &acts[layer_index(l).unwrap()];
        reads.push((l.to_string(), rec.readback(a)));
        if l != "relu4_2" {
            let gm = gram(&mut rec, a).unwrap();
            reads.push((format!("gram_{l}"), rec.readback(&gm)));
        }
    }
    rec.submit().unwrap();
    for (key, rb) in reads {
        let got_shape = rb.shape();
        let got = rb.read(ctx).unwrap();
        let (s, want) = &g[&key];
        assert_eq!(got.len(), want.len(), "{key}: {got_shape:?} vs {s:?}");
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        let e = rel_err(&got, &want);
        eprintln!("{name} {key}: rel err {e:.2e}");
        assert!(e <= 1e-4, "{name} {key}: rel err {e:.2e}");
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn activations_and_grams_match_keras_64x64() {
    check_golden("vgg19_tubingen_64x64");
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn activations_and_grams_match_keras_96x72_floor_pooling() {
    check_golden("vgg19_tubingen_96x72");
}
