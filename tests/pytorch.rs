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
