//! Training on lavapipe at tiny sizes: 30 iterations lower the loss, `--resume` continues
//! exactly (same batches, same optimizer state: the iteration losses agree), the saved model
//! stylizes through the normal fast path, and the `wgstyle train` command writes its model,
//! checkpoint, samples and JSON log, skips unreadable photos and resumes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::image::{resize_longest, upload_preprocessed};
use wgstyle::train::checkpoint::Checkpoint;
use wgstyle::train::data::{Dataset, Loader, LoaderOptions};
use wgstyle::train::{TrainOptions, Trainer};
use wgstyle::{Stylizer, Tensor};

/// The first `n` photos of train256, copied into a temporary folder.
fn photos(shared: &Path, n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<PathBuf> = std::fs::read_dir(shared.join("train256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    all.sort();
    for p in &all[..n] {
        std::fs::copy(p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn style(shared: &Path, size: u32) -> image::RgbImage {
    let img = image::open(shared.join("images/style/wave.jpg"))
        .unwrap()
        .to_rgb8();
    resize_longest(&img, size)
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn training_lowers_the_loss_and_resumes_exactly() {
    let shared = shared_or_skip!();
    let ctx = common::ctx();
    let data = photos(&shared, 8);
    let ds = Arc::new(Dataset::open(data.path()).unwrap());
    let w = wgstyle::weights::load_vgg19(&shared.join("weights/vgg19-tfjs")).unwrap();
    let vgg = Vgg::new(ctx, &w, 13, Pooling::Max).unwrap();
    let s = style(&shared, 64);
    let st = upload_preprocessed(ctx, "style", &s).unwrap();
    let opts = TrainOptions {
        image_size: 64,
        batch_size: 2,
        seed: 7,
        ..TrainOptions::default()
    };
    let lo = LoaderOptions {
        batch: 2,
        size: 64,
        seed: 7,
        workers: 2,
        prefetch: 2,
    };
    let mut trainer = Trainer::new(ctx, &vgg, &st, opts).unwrap();
    let mut loader = Loader::new(ds.clone(), lo, 0);
    let ckpt = data.path().join("ckpt.safetensors");
    let mut totals = Vec::new();
    for i in 1..=30 {
        let b = loader.next_batch().unwrap();
        assert_eq!(b.iteration, i - 1);
        let l = trainer.step(&b.pixels).unwrap();
        assert_eq!(l.iteration, i);
        eprintln!("iteration {i}: {:?}", l.losses);
        totals.push(l.losses.total as f64);
        if i == 10 {
            trainer.checkpoint().unwrap().save(&ckpt).unwrap();
        }
    }
    let first: f64 = totals[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = totals[25..].iter().sum::<f64>() / 5.0;
    eprintln!("mean loss: first five {first:.4e}, last five {last:.4e}");
    assert!(last < 0.5 * first, "loss {first:.4e} -> {last:.4e}");

    // Resume at iteration 10: iterations 11..=20 see the same batches and Adam state.
    let ck = Checkpoint::load(&ckpt).unwrap();
    assert_eq!(ck.iteration, 10);
    let mut resumed = Trainer::resume(ctx, &vgg, &st, &ck).unwrap();
    let mut loader = Loader::new(ds, lo, 10);
    for i in 11..=20 {
        let l = resumed.step(&loader.next_batch().unwrap().pixels).unwrap();
        let want = totals[i - 1];
        let e = (l.losses.total as f64 - want).abs() / want;
        eprintln!(
            "resumed iteration {i}: {:.6e} vs {want:.6e} (rel {e:.1e})",
            l.losses.total
        );
        assert!(e <= 1e-5, "iteration {i}: {} vs {want}", l.losses.total);
    }

    // The trained model, saved and loaded, stylizes through the fast path like the network
    // being trained (and unlike the untrained one).
    let path = data.path().join("model.safetensors");
    let weights = trainer.weights().unwrap();
    wgstyle::weights::safetensors::save_transform(&weights, &path, Default::default(), false, &[])
        .unwrap();
    let loaded = wgstyle::weights::load_transform(&path).unwrap();
    let photo = image::imageops::resize(
        &image::open(shared.join("images/content/chicago.jpg"))
            .unwrap()
            .to_rgb8(),
        48,
        40,
        image::imageops::FilterType::Triangle,
    );
    let input: Vec<f32> = photo.as_raw().iter().map(|&v| v as f32).collect();
    let got = Stylizer::new(ctx, &loaded)
        .unwrap()
        .stylize_raw(&input, 1, 40, 48)
        .unwrap();
    let x = Tensor::upload(ctx, "x", [1, 40, 48, 3], &input).unwrap();
    let mut rec = wgstyle::gpu::record::Recorder::new(ctx, "trained");
    let (y, _) = trainer.net().forward_tape(&mut rec, &x).unwrap();
    let rb = rec.readback(&y);
    rec.submit().unwrap();
    let want = rb.read(ctx).unwrap();
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        diff <= 1e-3,
        "saved model differs from the trained network by {diff}"
    );
    let fresh = wgstyle::nets::transformer::TransformNet::init(ctx, Default::default(), 7)
        .unwrap()
        .download_weights()
        .unwrap();
    let untrained = Stylizer::new(ctx, &fresh)
        .unwrap()
        .stylize_raw(&input, 1, 40, 48)
        .unwrap();
    let moved = got
        .iter()
        .zip(&untrained)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(moved > 1.0, "training did not change the output ({moved})");
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgstyle"));
    c.env("WGSTYLE_CACHE_DIR", common::autotune_cache_dir());
    c
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn train_command_writes_model_checkpoint_samples_log_and_resumes() {
    let shared = shared_or_skip!();
    let data = photos(&shared, 3);
    std::fs::write(data.path().join("broken.jpg"), b"not a jpeg").unwrap();
    let out = tempfile::tempdir().unwrap();
    let model = out.path().join("m.safetensors");
    let log = out.path().join("log.jsonl");
    let style_img = out.path().join("style.png");
    style(&shared, 48).save(&style_img).unwrap();
    let test_img = shared.join("golden/gatys/content_tubingen_64x64.png");
    let run = |extra: &[&str], model: &Path| {
        let o = bin()
            .arg("train")
            .arg("--style-image")
            .arg(&style_img)
            .arg("--dataset")
            .arg(data.path())
            .arg("-o")
            .arg(model)
            .args([
                "--image-size",
                "32",
                "--batch-size",
                "2",
                "--checkpoint-every",
                "1",
            ])
            .args(["--upsample", "nearest", "--width", "8", "--workers", "1"])
            .arg("--test-image")
            .arg(&test_img)
            .arg("--log-json")
            .arg(&log)
            .arg("--vgg")
            .arg(shared.join("weights/vgg19-tfjs"))
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "wgstyle train failed: {err}");
        err
    };
    let err = run(&["--iterations", "2"], &model);
    // Two iterations of 2 photos are one epoch over the 4 files: broken.jpg comes up once,
    // is replaced by the next readable photo, and is reported.
    assert_eq!(err.matches("skipping unreadable").count(), 1, "{err}");
    let w = wgstyle::weights::load_transform(&model).unwrap();
    assert_eq!(w.arch.width, 8);
    assert_eq!(
        w.arch.upsample,
        wgstyle::nets::transformer::Upsample::Nearest
    );
    for i in [1, 2] {
        let p = out.path().join(format!("m.sample-{i:06}.jpg"));
        let img = image::open(&p).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
    }
    let ckpt = out.path().join("m.ckpt.safetensors");
    assert_eq!(Checkpoint::load(&ckpt).unwrap().iteration, 2);
    // Resume to iteration 3: the log gains one line.
    let model2 = out.path().join("m2.safetensors");
    run(
        &["--iterations", "3", "--resume", ckpt.to_str().unwrap()],
        &model2,
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["iteration"].as_u64(), Some(i as u64 + 1));
        for k in [
            "content",
            "style",
            "tv",
            "total",
            "images_per_s",
            "gpu_busy",
        ] {
            let v = l[k].as_f64().unwrap_or(f64::NAN);
            assert!(v.is_finite() && v >= 0.0, "{k} = {v} in {l}");
        }
        let sum = ["content", "style", "tv"]
            .map(|k| l[k].as_f64().unwrap())
            .iter()
            .sum::<f64>();
        let total = l["total"].as_f64().unwrap();
        assert!((sum - total).abs() <= 1e-3 * total, "{l}");
    }
    // An existing output is kept; an empty dataset is a clear error.
    let empty = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["train", "--style-image"])
        .arg(&style_img)
        .arg("--dataset")
        .arg(empty.path())
        .arg("-o")
        .arg(out.path().join("x.safetensors"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no training images"), "{err}");
    let o = bin()
        .args(["train", "--style-image"])
        .arg(&style_img)
        .arg("--dataset")
        .arg(data.path())
        .arg("-o")
        .arg(&model)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists"));
}
