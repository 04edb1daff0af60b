//! pytorch/examples' TransformerNet from `.pth` and `.onnx` files against PyTorch's and ONNX
//! Runtime's raw outputs (`../shared/golden/pytorch`, random weights), exact tiling with its
//! reflection padding, and hostile files.

mod common;

use std::path::{Path, PathBuf};

use wgstyle::nets::transformer::{Family, TransformWeights};
use wgstyle::{weights, Stylizer};

fn golden(shared: &Path) -> PathBuf {
    shared.join("golden/pytorch")
}

fn input(path: &Path) -> (usize, usize, Vec<f32>) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let (w, h) = img.dimensions();
    let v = img.as_raw().iter().map(|&b| b as f32).collect();
    (h as usize, w as usize, v)
}

/// max |ours - reference| over the reference's top-left `h × w` (it is larger on odd sizes).
fn max_diff_top_left(ours: &[f32], h: usize, w: usize, reference: &Path) -> f32 {
    let (shape, r) = common::npy::read_npy(reference);
    let (rh, rw) = (shape[0], shape[1]);
    assert!(rh >= h && rw >= w && shape[2] == 3, "{shape:?}");
    let mut worst = 0.0f32;
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let d = (ours[(y * w + x) * 3 + c] - r[(y * rw + x) * 3 + c]).abs();
                // NaN counts as an infinite error.
                worst = if d.is_nan() {
                    f32::INFINITY
                } else {
                    worst.max(d)
                };
            }
        }
    }
    worst
}

/// Runs every golden case (and the 224×224 one against `reference_224`) through `w`.
fn check_goldens(w: &TransformWeights, stems: &[&str], reference_224: &str) {
    let shared = common::shared().unwrap();
    let g = golden(&shared);
    let s = Stylizer::new(common::ctx(), w).unwrap();
    let mut cases: Vec<(String, String)> = stems
        .iter()
        .map(|st| (format!("input_{st}.png"), format!("raw_{st}.npy")))
        .collect();
    cases.push(("input_224.png".into(), reference_224.into()));
    for (inp, raw) in cases {
        let (h, wd, x) = input(&g.join(&inp));
        let y = s.stylize_raw(&x, 1, h, wd).unwrap();
        let d = max_diff_top_left(&y, h, wd, &g.join(&raw));
        eprintln!("{inp} vs {raw}: max |diff| {d}");
        assert!(d <= 0.5, "{inp} vs {raw}: max |diff| {d} > 0.5");
    }
}

const ALL: [&str; 6] = [
    "amber_64x48",
    "amber_97x65",
    "amber_128x128",
    "stata_64x48",
    "stata_97x65",
    "stata_128x128",
];

#[test]
fn zip_pth_matches_pytorch() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&golden(&shared).join("transformer_net.pth")).unwrap();
    assert_eq!(w.arch.family, Family::PytorchExamples);
    check_goldens(&w, &ALL, "raw_224_torch.npy");
}

#[test]
fn legacy_pth_equals_zip_and_matches_pytorch() {
    let shared = shared_or_skip!();
    let g = golden(&shared);
    let zip = weights::load_transform(&g.join("transformer_net.pth")).unwrap();
    // The legacy file also has in1..in5.running_mean/var, which are ignored.
    let legacy = weights::load_transform(&g.join("transformer_net_legacy.pth")).unwrap();
    assert_eq!(legacy.arch, zip.arch);
    for (name, l) in &zip.layers {
        let m = &legacy.layers[name];
        assert_eq!(
            (&l.kernel, &l.bias, &l.shift, &l.scale),
            (&m.kernel, &m.bias, &m.shift, &m.scale),
            "{name}"
        );
    }
    check_goldens(&legacy, &["stata_97x65"], "raw_224_torch.npy");
}

/// Patches (image tiling) equal one pass (1/255 after clamping) with reflection padding at
/// the image's border, on the odd 97×65 input: in 16-pixel patches, and through `stylize`
/// under a forced 1 MiB budget (one pass needs about 2.7 MB), whose pool peak stays within it.
#[test]
fn patches_equal_one_pass_with_reflect_padding() {
    let shared = shared_or_skip!();
    let g = golden(&shared);
    let w = weights::load_transform(&g.join("transformer_net.pth")).unwrap();
    let img = image::open(g.join("input_amber_97x65.png"))
        .unwrap()
        .to_rgb8();
    let s = Stylizer::new(common::ctx(), &w).unwrap();
    let whole = s.stylize(&img).unwrap();
    // The clamped image is not flat (measured 41..207).
    let (lo, hi) = whole
        .as_raw()
        .iter()
        .fold((255u8, 0u8), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo < 64 && hi > 192, "output range {lo}..{hi}");
    let d = common::max_diff_u8(&whole, &s.stylize_in_patches(&img, 16).unwrap());
    eprintln!("97x65 in 16px patches: max diff {d}");
    assert!(d <= 1, "16px patches: max diff {d}");

    let own = common::new_context();
    let mut s = Stylizer::new(&own, &w).unwrap();
    let budget = 1u64 << 20;
    s.set_memory_budget(Some(budget));
    let t = s.patch_size(65, 97).unwrap();
    assert!(t.is_some_and(|t| t < 65), "{t:?}");
    own.reset_peak_memory();
    let patched = s.stylize(&img).unwrap();
    let peak = own.pool_stats().peak_bytes_in_use;
    let d = common::max_diff_u8(&whole, &patched);
    eprintln!("97x65 under 1 MiB ({t:?}-pixel patches): max diff {d}, peak {peak} bytes");
    assert!(d <= 1, "under 1 MiB: max diff {d}");
    assert!(peak <= budget, "peak {peak} over the budget");

    // Without a budget, the widest tensor (up2's upsampled input: 64 float channels at full
    // resolution, twice lengstrom's widest) decides whether one pass binds.
    s.set_memory_budget(None);
    let (h, w) = (800, 1000);
    let widest = (h * w * 64 * 4) as u64;
    let one_pass = s.patch_size(h, w).unwrap().is_none();
    assert_eq!(one_pass, widest <= own.max_binding_bytes(), "{h}x{w}");
}

/// Both ONNX forms give the zip `.pth`'s weights (up to float rounding) and ONNX Runtime's
/// output; the opset 9 file's fixed 224×224 input does not limit the size.
#[test]
fn onnx_files_match_onnxruntime() {
    let shared = shared_or_skip!();
    let g = golden(&shared);
    let zip = weights::load_transform(&g.join("transformer_net.pth")).unwrap();
    for (file, reference, stems) in [
        (
            "transformer_net_opset9.onnx",
            "raw_224_onnxruntime_opset9.npy",
            &["amber_97x65"][..],
        ),
        (
            "transformer_net_opset17_dynamic.onnx",
            "raw_224_onnxruntime_opset17_dynamic.npy",
            &["stata_64x48", "amber_128x128"][..],
        ),
    ] {
        let w = weights::load_transform(&g.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(w.arch, zip.arch, "{file}");
        for (name, l) in &zip.layers {
            let m = &w.layers[name];
            for (a, b) in [
                (&l.kernel, &m.kernel),
                (&l.bias, &m.bias),
                (&l.shift, &m.shift),
                (&l.scale, &m.scale),
            ] {
                assert_eq!(a.len(), b.len(), "{file} {name}");
                let d = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(d <= 1e-6, "{file} {name}: {d}");
            }
        }
        check_goldens(&w, stems, reference);
    }
}
