//! `wgstyle optimize`: the `--log-json` lines parse back with every field, `--original-colors`
//! keeps the content's chroma (BT.601 U, V), and a missing VGG19 gives a helpful error.

mod common;

use std::process::Command;

use wgstyle::optimize::image::{resize_longest, rgb_to_yuv};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgstyle"));
    c.env("WGSTYLE_CACHE_DIR", common::autotune_cache_dir());
    c
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn log_json_and_original_colors() {
    let shared = shared_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let content = shared.join("golden/gatys/content_tubingen_64x64.png");
    let out = dir.path().join("out.png");
    let log = dir.path().join("log.jsonl");
    let status = bin()
        .arg("optimize")
        .arg(&content)
        .arg("--style-image")
        .arg(shared.join("golden/gatys/style_starry_night_64x64.png"))
        .arg("-o")
        .arg(&out)
        .args(["--size", "32", "--iterations", "3", "--optimizer", "adam"])
        .args([
            "--learning-rate",
            "10",
            "--style-weight",
            "1e-2",
            "--original-colors",
        ])
        .arg("--log-json")
        .arg(&log)
        .arg("--vgg")
        .arg(shared.join("weights/vgg19-tfjs"))
        .status()
        .unwrap();
    assert!(status.success());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["iteration"].as_u64(), Some(i as u64 + 1));
        for k in ["content", "style", "tv", "total", "ms"] {
            assert!(v[k].as_f64().is_some_and(f64::is_finite), "{k} in {v}");
        }
        let sum = v["content"].as_f64().unwrap()
            + v["style"].as_f64().unwrap()
            + v["tv"].as_f64().unwrap();
        let total = v["total"].as_f64().unwrap();
        assert!((sum - total).abs() <= 1e-5 * total.abs(), "{v}");
    }
    assert!(lines[2]["total"].as_f64() < lines[0]["total"].as_f64());

    let got = image::open(&out).unwrap().to_rgb8();
    let want = resize_longest(&image::open(&content).unwrap().to_rgb8(), 32);
    assert_eq!(got.dimensions(), want.dimensions());
    let (mut du, mut dv, mut dy) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in got.pixels().zip(want.pixels()) {
        let f = |p: &image::Rgb<u8>| rgb_to_yuv([p.0[0] as f32, p.0[1] as f32, p.0[2] as f32]);
        let (ya, yb) = (f(a), f(b));
        du += (ya[1] - yb[1]).abs() as f64;
        dv += (ya[2] - yb[2]).abs() as f64;
        dy += (ya[0] - yb[0]).abs() as f64;
    }
    let n = (32 * 32) as f64;
    eprintln!(
        "mean |ΔU| {:.3}, |ΔV| {:.3}, |ΔY| {:.3}",
        du / n,
        dv / n,
        dy / n
    );
    // Chroma equal up to 8-bit rounding (and clipping); luminance changed by the style.
    assert!(du / n <= 1.0 && dv / n <= 1.0);
    assert!(dy / n > 1.0);
}

#[test]
fn missing_vgg_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("c.png");
    image::RgbImage::new(8, 8).save(&img).unwrap();
    let out = bin()
        .current_dir(dir.path())
        .env_remove("WGSTYLE_WEIGHTS")
        .env("HOME", dir.path())
        .env_remove("XDG_DATA_HOME")
        .arg("optimize")
        .arg(&img)
        .arg("--style-image")
        .arg(&img)
        .args(["-o", "o.png", "--weights-dir", "wd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vgg19.safetensors") && err.contains("wd") && err.contains("--vgg"),
        "{err}"
    );
}
