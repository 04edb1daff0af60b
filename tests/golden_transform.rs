//! The whole fast network against TensorFlow running lengstrom's transform.py
//! (`../shared/golden/transform/`), on the raw output before clipping.

mod common;

use std::path::Path;

use wgstyle::weights;
use wgstyle::Stylizer;

const STYLES: [&str; 4] = ["scream", "udnie", "matta", "wave"];
const CASES: [(&str, usize, usize); 3] = [
    ("chicago", 64, 48),
    ("chicago", 256, 171),
    ("stata", 97, 65),
];

/// Max and mean |ours - golden| over the top-left h×w of the golden output.
fn compare(ours: &[f32], golden: &[f32], gw: usize, h: usize, w: usize) -> (f64, f64) {
    let mut max = 0.0f64;
    let mut sum = 0.0f64;
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let d =
                    (ours[(y * w + x) * 3 + c] as f64 - golden[(y * gw + x) * 3 + c] as f64).abs();
                max = max.max(d);
                sum += d;
            }
        }
    }
    (max, sum / (h * w * 3) as f64)
}

fn check_style(shared: &Path, style: &str) {
    let w = weights::load_transform(&shared.join("weights/styles").join(style)).unwrap();
    let stylizer = Stylizer::new(common::ctx(), &w).unwrap();
    for (img, cw, ch) in CASES {
        let file = shared.join(format!(
            "golden/transform/{style}_{img}_{cw}x{ch}.safetensors"
        ));
        let t = common::read_safetensors(&file);
        let (ishape, input) = &t["input_rgb"];
        let (oshape, golden) = &t["output_raw"];
        assert_eq!(ishape, &vec![ch, cw, 3]);
        let ours = stylizer.stylize_raw(input, 1, ch, cw).unwrap();
        assert_eq!(ours.len(), ch * cw * 3);
        let (max, mean) = compare(&ours, golden, oshape[1], ch, cw);
        eprintln!("{style} {img} {cw}x{ch}: max |diff| {max:.2e}, mean {mean:.2e}");
        assert!(
            max <= 0.5 && mean <= 0.05,
            "{style} {img} {cw}x{ch}: max {max}, mean {mean}"
        );

        // The 8-bit image: clip + truncate like lengstrom's save_img, vs the golden PNG (±1).
        let png =
            image::open(shared.join(format!("golden/transform/{style}_{img}_{cw}x{ch}_out.png")))
                .unwrap()
                .to_rgb8();
        let input_img = image::RgbImage::from_raw(
            cw as u32,
            ch as u32,
            input.iter().map(|&v| v as u8).collect(),
        )
        .unwrap();
        let out = stylizer.stylize(&input_img).unwrap();
        assert_eq!(out.dimensions(), (cw as u32, ch as u32));
        for y in 0..ch as u32 {
            for x in 0..cw as u32 {
                let (a, b) = (out.get_pixel(x, y), png.get_pixel(x, y));
                for c in 0..3 {
                    assert!(
                        (a[c] as i32 - b[c] as i32).abs() <= 1,
                        "{style} {img}: pixel ({x},{y}) {a:?} vs {b:?}"
                    );
                }
            }
        }
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn scream_matches_tensorflow() {
    let shared = shared_or_skip!();
    check_style(&shared, STYLES[0]);
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn udnie_matches_tensorflow() {
    let shared = shared_or_skip!();
    check_style(&shared, STYLES[1]);
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn matta_matches_tensorflow() {
    let shared = shared_or_skip!();
    check_style(&shared, STYLES[2]);
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn wave_matches_tensorflow() {
    let shared = shared_or_skip!();
    check_style(&shared, STYLES[3]);
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn batch_of_two_equals_two_single_passes() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/wave")).unwrap();
    let stylizer = Stylizer::new(common::ctx(), &w).unwrap();
    let a = image::open(shared.join("golden/transform/input_chicago_64x48.png"))
        .unwrap()
        .to_rgb8();
    let b = image::imageops::flip_horizontal(&a);
    let batch = stylizer.stylize_batch(&[a.clone(), b.clone()]).unwrap();
    // Instance norm is per image, so batching must not mix statistics.
    let single_b = stylizer.stylize(&b).unwrap();
    let single_a = stylizer.stylize(&a).unwrap();
    for (x, y) in [(&batch[0], &single_a), (&batch[1], &single_b)] {
        let worst = x
            .as_raw()
            .iter()
            .zip(y.as_raw())
            .map(|(p, q)| (*p as i32 - *q as i32).abs())
            .max()
            .unwrap();
        assert_eq!(worst, 0, "batched and single outputs differ by {worst}: a batch must run each image exactly as alone");
    }
}
