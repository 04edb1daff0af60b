//! The engine around the kernels: weight import and its errors, the buffer pool, the
//! pipeline cache, embedding with a caller's device.

mod common;

use std::path::Path;

use wgstyle::weights::{self, safetensors::Precision};
use wgstyle::{Context, Error, Stylizer};

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn weights_err(path: &Path) -> String {
    match weights::load_transform(path) {
        Ok(_) => panic!("{} loaded but should not have", path.display()),
        Err(e) => {
            assert!(
                matches!(e, Error::Weights { .. } | Error::Io { .. }),
                "{e:?}"
            );
            e.to_string()
        }
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn all_nine_styles_load() {
    let shared = shared_or_skip!();
    for s in common::ALL_STYLES {
        let w = weights::load_transform(&shared.join("weights/styles").join(s))
            .unwrap_or_else(|e| panic!("{s}: {e}"));
        let params: usize = w
            .layers
            .values()
            .map(|l| l.kernel.len() + l.shift.len() + l.scale.len())
            .sum();
        assert_eq!(params, 1_677_638, "{s}");
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn truncated_missing_and_misshapen_variables_are_named() {
    let shared = shared_or_skip!();
    let src = shared.join("weights/styles/scream");
    let tmp = tempfile::tempdir().unwrap();

    let truncated = tmp.path().join("truncated");
    copy_dir(&src, &truncated);
    let f = truncated.join("Variable_12");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 7]).unwrap();
    let e = weights_err(&truncated);
    assert!(e.contains("Variable_12") && e.contains("bytes"), "{e}");

    let missing = tmp.path().join("missing");
    copy_dir(&src, &missing);
    std::fs::remove_file(missing.join("Variable_40")).unwrap();
    let e = weights_err(&missing);
    assert!(e.contains("Variable_40"), "{e}");

    let misshapen = tmp.path().join("misshapen");
    copy_dir(&src, &misshapen);
    let m = std::fs::read_to_string(misshapen.join("manifest.json")).unwrap();
    let mut j: serde_json::Value = serde_json::from_str(&m).unwrap();
    j["Variable_3"]["shape"] = serde_json::json!([3, 3, 32, 32]);
    std::fs::write(misshapen.join("manifest.json"), j.to_string()).unwrap();
    let e = weights_err(&misshapen);
    assert!(
        e.contains("Variable_3") && e.contains("[3, 3, 32, 32]"),
        "{e}"
    );

    let unlisted = tmp.path().join("unlisted");
    copy_dir(&src, &unlisted);
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(unlisted.join("manifest.json")).unwrap())
            .unwrap();
    j.as_object_mut().unwrap().remove("Variable_47");
    std::fs::write(unlisted.join("manifest.json"), j.to_string()).unwrap();
    let e = weights_err(&unlisted);
    assert!(e.contains("Variable_47") && e.contains("missing"), "{e}");

    // Our own format: truncated file, wrong shape.
    let st = tmp.path().join("scream.safetensors");
    let w = weights::load_transform(&src).unwrap();
    weights::safetensors::save_transform(&w, &st, Precision::F32, false, &[]).unwrap();
    let bytes = std::fs::read(&st).unwrap();
    let cut = tmp.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = weights_err(&cut);
    assert!(e.contains("cut.safetensors"), "{e}");
    // Saving refuses inconsistent weights, naming the tensor.
    let mut bad = w.clone();
    bad.layers.get_mut("res2_b").unwrap().scale.pop();
    let e = weights::safetensors::save_transform(
        &bad,
        &tmp.path().join("bad.safetensors"),
        Precision::F32,
        false,
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("res2_b.scale"), "{e}");
    // A file whose tensor has the wrong shape names it on load.
    let st_bytes = std::fs::read(&st).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&st_bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = parsed.tensors();
    for (name, view) in tensors.iter_mut() {
        if name == "res2_b.scale" {
            *view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![64],
                &view.data()[..256],
            )
            .unwrap();
        }
    }
    let misshapen = tmp.path().join("misshapen.safetensors");
    std::fs::write(
        &misshapen,
        safetensors::serialize(tensors, meta.metadata().clone()).unwrap(),
    )
    .unwrap();
    let e = weights_err(&misshapen);
    assert!(e.contains("res2_b.scale") && e.contains("[64]"), "{e}");
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn safetensors_round_trip_is_exact_and_f16_is_close() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/udnie")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p32 = tmp.path().join("udnie.safetensors");
    weights::safetensors::save_transform(
        &w,
        &p32,
        Precision::F32,
        false,
        &[("wgstyle.source", "test")],
    )
    .unwrap();
    // Never overwrites without being asked.
    assert!(weights::safetensors::save_transform(&w, &p32, Precision::F32, false, &[]).is_err());
    let back = weights::load_transform(&p32).unwrap();
    assert_eq!(back.arch, w.arch);
    for (name, l) in &w.layers {
        assert_eq!(l.kernel, back.layers[name].kernel, "{name}");
        assert_eq!(l.shift, back.layers[name].shift, "{name}");
        assert_eq!(l.scale, back.layers[name].scale, "{name}");
    }
    let p16 = tmp.path().join("udnie16.safetensors");
    weights::safetensors::save_transform(&w, &p16, Precision::F16, false, &[]).unwrap();
    assert!(
        std::fs::metadata(&p16).unwrap().len() < std::fs::metadata(&p32).unwrap().len() / 2 + 4096
    );
    let half = weights::load_transform(&p16).unwrap();
    for (name, l) in &w.layers {
        for (a, b) in l.kernel.iter().zip(&half.layers[name].kernel) {
            assert!(
                (a - b).abs() <= 1e-3 * a.abs().max(1e-2),
                "{name}: {a} vs {b}"
            );
        }
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn second_pass_at_same_size_creates_no_buffer_or_pipeline() {
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/scream")).unwrap();
    // A private context so that other tests' allocations don't interfere with the counts.
    let ctx = Context::new().unwrap();
    let s = Stylizer::new(&ctx, &w).unwrap();
    let img = image::RgbImage::from_fn(23, 17, |x, y| {
        image::Rgb([(x * 9) as u8, (y * 13) as u8, 77])
    });
    let first = s.stylize(&img).unwrap();
    let (buffers, pipelines) = (ctx.pool_stats().buffers_created, ctx.pipeline_count());
    assert!(buffers > 0 && pipelines > 0);
    let second = s.stylize(&img).unwrap();
    assert_eq!(
        ctx.pool_stats().buffers_created,
        buffers,
        "second pass allocated GPU buffers"
    );
    assert_eq!(
        ctx.pipeline_count(),
        pipelines,
        "second pass compiled pipelines"
    );
    assert_eq!(first, second, "same input, same output");
    // Another size reuses the pipelines (shapes live in uniforms, not in the shader text).
    s.stylize(&image::imageops::resize(
        &img,
        31,
        9,
        image::imageops::FilterType::Nearest,
    ))
    .unwrap();
    assert_eq!(
        ctx.pipeline_count(),
        pipelines,
        "a new size compiled new pipelines"
    );
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn embedding_program_can_hand_over_its_own_device() {
    let shared = shared_or_skip!();
    let ctx = common::embedded_context();
    let w = weights::load_transform(&shared.join("weights/styles/wave")).unwrap();
    let img = image::RgbImage::from_fn(16, 12, |x, y| {
        image::Rgb([(x * 15) as u8, (y * 20) as u8, 128])
    });
    let ours = Stylizer::new(&ctx, &w).unwrap().stylize(&img).unwrap();
    let reference = Stylizer::new(common::ctx(), &w)
        .unwrap()
        .stylize(&img)
        .unwrap();
    let worst = ours
        .as_raw()
        .iter()
        .zip(reference.as_raw())
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(worst <= 1);
}

/// A batch whose widest tensor exceeds the device's buffer-binding limit is split into
/// passes that fit (seen with 2 frames of 1280x720 video on lavapipe's 128 MiB), with the
/// same results as single passes. Here a device limited to 1 MiB bindings: a 64x48 image
/// needs 393,216 bytes (32 float channels), so 3 images take two passes (2 + 1).
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn batches_beyond_the_binding_limit_are_split_into_passes_that_fit() {
    let shared = shared_or_skip!();
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap();
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 1 << 20,
        ..adapter.limits()
    };
    let desc = wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
    let ctx = Context::from_device(device, queue);
    assert_eq!(ctx.max_binding_bytes(), 1 << 20);
    let w = weights::load_transform(&shared.join("weights/styles/wave")).unwrap();
    let s = Stylizer::new(&ctx, &w).unwrap();
    assert_eq!(s.images_per_pass(48, 64), 2);
    let imgs: Vec<_> = (0..3u32)
        .map(|k| {
            image::RgbImage::from_fn(64, 48, |x, y| {
                image::Rgb([(x * 4 + k * 40) as u8, (y * 5) as u8, (x * y + k * 7) as u8])
            })
        })
        .collect();
    let batch = s.stylize_batch(&imgs).unwrap();
    assert_eq!(batch.len(), 3);
    for (img, out) in imgs.iter().zip(&batch) {
        let single = s.stylize(img).unwrap();
        let worst = out
            .as_raw()
            .iter()
            .zip(single.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert_eq!(worst, 0, "batched and single outputs differ by {worst}: a batch must run each image exactly as alone");
    }
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn tensors_beyond_the_adapter_limit_are_a_clear_error() {
    let ctx = common::ctx();
    let limit = ctx.max_binding_bytes();
    let side = ((limit / 4 / 3) as f64).sqrt() as usize + 2;
    match wgstyle::Tensor::uninit(ctx, "huge", [1, side, side, 3]) {
        Err(Error::TooLarge {
            bytes, limit: l, ..
        }) => assert!(bytes > l),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Empty images are refused before reaching the GPU.
    let shared = shared_or_skip!();
    let w = weights::load_transform(&shared.join("weights/styles/wave")).unwrap();
    let s = Stylizer::new(ctx, &w).unwrap();
    assert!(matches!(
        s.stylize(&image::RgbImage::new(0, 5)),
        Err(Error::InvalidInput(_))
    ));
}

/// Recorders on several threads share one context (pool, pipeline and bind-group caches):
/// every thread must get exactly the single-threaded result.
#[test]
fn concurrent_recorders_on_one_context_agree() {
    use wgstyle::gpu::record::Recorder;
    use wgstyle::ops::conv::{conv2d_with, Conv2d, ConvAlgo, Padding};
    fn conv(tile: ConvAlgo, seed: u64) -> Vec<f32> {
        let ctx = common::ctx();
        let mut rng = common::Rng::new(seed);
        let (n, h, w, cin, cout) = (2, 14, 13, 15, 34);
        let x = rng.vec(n * h * w * cin, -1.0, 1.0);
        let k = rng.vec(9 * cin * cout, -0.5, 0.5);
        let mut rec = Recorder::new(ctx, "concurrent");
        let xt = wgstyle::Tensor::upload(ctx, "x", [n, h, w, cin], &x).unwrap();
        let kt = wgstyle::Tensor::upload(ctx, "k", [3, 3, cin, cout], &k).unwrap();
        let p = Conv2d {
            stride: 2,
            padding: Padding::Same,
            relu: false,
        };
        let y = conv2d_with(&mut rec, &xt, &kt, None, p, tile).unwrap();
        let rb = rec.readback(&y);
        rec.submit().unwrap();
        rb.read(ctx).unwrap()
    }
    let want: Vec<Vec<f32>> = (0..8)
        .map(|i| conv(ConvAlgo::F32[i % 4], i as u64))
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                (0..8)
                    .map(|i| (i, conv(ConvAlgo::F32[(i + t) % 4], i as u64)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (i, got) in t.join().unwrap() {
            // Different tiles sum in different orders: equal to float rounding.
            let worst = got
                .iter()
                .zip(&want[i])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1e-4, "case {i}: differs by {worst}");
        }
    }
}

/// A tensor dropped while a recording that reads it is still open must not be handed to a
/// later upload: `queue.write_buffer` runs before the whole submission, so the recorded
/// read would see the upload's data. (This was a real bug: Gatys tests failed at random
/// when run concurrently.) Checked single-threaded and on four threads at once.
#[test]
fn upload_after_drop_inside_a_recording_does_not_clobber_it() {
    use wgstyle::gpu::record::Recorder;
    use wgstyle::ops::vecops::scale;
    fn run(seed: u64) {
        let ctx = common::ctx();
        let mut rng = common::Rng::new(seed);
        let a = rng.vec(5000, -1.0, 1.0);
        let b = rng.vec(5000, -1.0, 1.0);
        let mut rec = Recorder::new(ctx, "drop-then-upload");
        let at = wgstyle::Tensor::upload(ctx, "a", [1, 1, 1, 5000], &a).unwrap();
        let ya = scale(&mut rec, &at, 2.0).unwrap();
        drop(at);
        let bt = wgstyle::Tensor::upload(ctx, "b", [1, 1, 1, 5000], &b).unwrap();
        let yb = scale(&mut rec, &bt, 3.0).unwrap();
        let (ra, rb) = (rec.readback(&ya), rec.readback(&yb));
        rec.submit().unwrap();
        let (ga, gb) = (ra.read(ctx).unwrap(), rb.read(ctx).unwrap());
        for i in 0..5000 {
            assert_eq!(ga[i], 2.0 * a[i], "a[{i}] (seed {seed})");
            assert_eq!(gb[i], 3.0 * b[i], "b[{i}] (seed {seed})");
        }
    }
    run(1);
    let threads: Vec<_> = (0..4u64)
        .map(|t| std::thread::spawn(move || (0..6).for_each(|i| run(10 * t + i))))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// An op family's state lives in the context's typed slot: one value per type, created on
/// first use, shared by every clone of the context and separate between contexts; the
/// convolution family's settings (autotune, precision) use it.
#[test]
fn per_context_state_is_shared_by_clones_and_separate_between_contexts() {
    use std::sync::atomic::{AtomicU32, Ordering};
    #[derive(Default)]
    struct Counter(AtomicU32);
    #[derive(Default)]
    struct Other(AtomicU32);
    let a = common::new_context();
    let clone = a.clone();
    a.state::<Counter>().0.fetch_add(3, Ordering::SeqCst);
    clone.state::<Counter>().0.fetch_add(4, Ordering::SeqCst);
    assert_eq!(a.state::<Counter>().0.load(Ordering::SeqCst), 7);
    assert_eq!(a.state::<Other>().0.load(Ordering::SeqCst), 0);
    let b = common::new_context();
    assert_eq!(b.state::<Counter>().0.load(Ordering::SeqCst), 0);
    // The convolution settings go through the same slot.
    clone.set_autotune(true);
    assert!(a.autotune() && !b.autotune());
}
