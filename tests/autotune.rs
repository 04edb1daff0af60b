//! Convolution autotune: the cache file round trip, corrupt and foreign caches, identical
//! results with autotune on and off (and with every shape forced to another variant), and the
//! `--no-autotune` flag. Tiny shapes only; no timing is asserted.

mod common;

use std::path::Path;
use std::process::Command;

use wgstyle::bench::cases::synthetic_weights;
use wgstyle::nets::transformer::Arch;
use wgstyle::ops::conv::tune::cache::adapter_key;
use wgstyle::ops::conv::ConvAlgo;
use wgstyle::ops::conv::{ConvMode, ConvShape};
use wgstyle::{Context, Stylizer};

const H: usize = 12;
const W: usize = 20;

/// A private context (autotune settings and choices are per context).
fn context(cache: Option<&Path>, autotune: bool) -> Context {
    let ctx = Context::new().expect("a GPU adapter");
    ctx.set_autotune(autotune);
    ctx.set_autotune_cache(cache.map(Path::to_path_buf));
    ctx
}

/// The fast network (random weights of the real shapes) on a small image: raw output.
fn network(ctx: &Context) -> Vec<f32> {
    let s = Stylizer::new(ctx, &synthetic_weights(Arch::LENGSTROM)).unwrap();
    let mut rng = common::Rng::new(7);
    s.stylize_raw(&rng.vec(H * W * 3, 0.0, 255.0), 1, H, W)
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn off_by_default_in_the_library() {
    let ctx = Context::new().unwrap();
    assert!(!ctx.autotune());
    network(&ctx);
    assert_eq!(ctx.autotune_stats().tuned, 0);
}

#[test]
fn cache_file_round_trip_tunes_each_shape_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/autotune.json");
    let first = context(Some(&file), true);
    let out = network(&first);
    let stats = first.autotune_stats();
    // conv1, conv2, conv3, res (x10, one shape), up1, up2, conv_out.
    assert_eq!(stats.tuned, 7, "{stats:?}");
    assert_eq!(stats.from_cache, 0);
    // A second pass tunes nothing more.
    network(&first);
    assert_eq!(first.autotune_stats().tuned, 7);

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let key = adapter_key(first.adapter_info());
    let convs = json["adapters"][&key]["convs"].as_array().unwrap();
    assert_eq!(convs.len(), 7, "{json}");
    for c in convs {
        assert!(
            c["tile"].as_str().unwrap().parse::<ConvAlgo>().is_ok(),
            "{c}"
        );
    }

    // A fresh context reads the file and tunes nothing.
    let second = context(Some(&file), true);
    let again = network(&second);
    let stats = second.autotune_stats();
    assert_eq!(stats.tuned, 0, "{stats:?}");
    assert_eq!(stats.from_cache, 7);
    assert_eq!(second.conv_choices(), first.conv_choices());
    assert!(max_diff(&out, &again) <= 1e-3);
}

#[test]
fn corrupt_or_foreign_cache_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("autotune.json");
    for junk in ["{not json", "", "[1, 2]", r#"{"format": 1, "adapters": 5}"#] {
        std::fs::write(&file, junk).unwrap();
        let ctx = context(Some(&file), true);
        network(&ctx);
        assert_eq!(ctx.autotune_stats().tuned, 7, "cache {junk:?}");
        let text = std::fs::read_to_string(&file).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).expect("rewritten as valid JSON");
    }
    // Entries of another wgstyle version or adapter are not used.
    let ctx = context(Some(&file), true);
    let key = adapter_key(ctx.adapter_info());
    assert!(key.contains(&ctx.adapter_info().name));
    assert!(key.contains(&format!("{:?}", ctx.adapter_info().backend)));
    assert!(key.contains(&ctx.adapter_info().driver));
    assert!(key.contains(&format!("wgstyle {}", env!("CARGO_PKG_VERSION"))));
    for other in [
        key.replace(env!("CARGO_PKG_VERSION"), "0.0.0-other"),
        key.replace(&ctx.adapter_info().name, "Another GPU"),
    ] {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let adapters = json["adapters"].as_object_mut().unwrap();
        let section = adapters.remove(&key).unwrap();
        adapters.clear();
        adapters.insert(other, section);
        std::fs::write(&file, serde_json::to_string(&json).unwrap()).unwrap();
        let fresh = context(Some(&file), true);
        network(&fresh);
        assert_eq!(fresh.autotune_stats().from_cache, 0);
        assert_eq!(fresh.autotune_stats().tuned, 7);
    }
}

#[test]
fn network_output_is_the_same_with_autotune_on_off_and_forced() {
    let off = network(&context(None, false));
    let on_ctx = context(None, true);
    let on = network(&on_ctx);
    assert!(max_diff(&on, &off) <= 1e-2, "{}", max_diff(&on, &off));
    // Pin every shape to each variant this adapter runs in turn: still the same output.
    for tile in ConvAlgo::F32 {
        let forced = context(None, true);
        if !tile.usable(&forced) {
            eprintln!("{}: not supported by this adapter, not pinned", tile);
            continue;
        }
        for (shape, _) in on_ctx.conv_choices() {
            forced.set_conv_choice(shape, tile);
        }
        let got = network(&forced);
        assert_eq!(forced.autotune_stats().tuned, 0, "pinned choices are used");
        assert!(
            max_diff(&got, &off) <= 1e-2,
            "{tile:?}: {}",
            max_diff(&got, &off)
        );
    }
}

#[test]
fn large_shapes_are_tuned_on_a_cropped_proxy() {
    let s = ConvShape {
        n: 1,
        h: 1024,
        w: 1024,
        cin: 3,
        ho: 1024,
        wo: 1024,
        cout: 32,
        kh: 9,
        kw: 9,
        stride: 1,
        mode: ConvMode::Zero,
    };
    let p = s.proxy();
    assert_eq!((p.n, p.ho, p.wo, p.h, p.w), (1, 128, 128, 136, 136));
    // Variants are first compared on a quarter of the rows and columns.
    let q = p.probe().unwrap();
    assert_eq!((q.n, q.ho, q.wo, q.h, q.w), (1, 32, 32, 40, 40));
    assert_eq!(q.probe(), None, "32x32 outputs are too few for a probe");
    let t = ConvShape {
        n: 4,
        h: 16,
        w: 16,
        ho: 32,
        wo: 32,
        stride: 2,
        kh: 3,
        kw: 3,
        mode: ConvMode::Transposed,
        ..s
    };
    assert_eq!(t.proxy(), t, "small shapes are their own proxy");
    let big_t = ConvShape {
        h: 300,
        w: 200,
        ho: 600,
        wo: 400,
        ..t
    };
    let p = big_t.proxy();
    assert_eq!((p.n, p.ho, p.wo, p.h, p.w), (1, 128, 128, 67, 67));
}

/// Runs wgstyle: its stdout, its stderr, and whether it wrote the autotune cache file.
fn wgstyle(cache: &Path, args: &[&std::ffi::OsStr]) -> (String, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgstyle"))
        .args(args)
        .env("WGSTYLE_CACHE_DIR", cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (text, err, cache.join("autotune.json").exists())
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

#[test]
fn no_autotune_flag_parses_and_is_honoured_by_bench() {
    let quick = ["--quick", "--reps", "1", "--filter", "conv/transform.res"];
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let args = os(args);
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        wgstyle(dir.path(), &refs)
    };
    let (table, _, written) = run(&[&["bench", "--no-autotune"][..], &quick[..]].concat());
    assert!(table.contains("autotune: off"), "{table}");
    assert!(!written, "--no-autotune wrote a cache file");
    // The variant column names the kernel the case ran.
    assert!(
        ConvAlgo::F32.iter().any(|t| table.contains(&t.to_string())),
        "{table}"
    );
    // One shape, tuned once per precision: f32, and f16 where the adapter has it (the
    // suite's ` f16` copy of the case).
    let tuned = 1 + common::ctx().supports_f16() as usize;
    // --autotune forces tuning on, CPU driver or not.
    let with = [&["bench", "--autotune"][..], &quick[..]].concat();
    let (table, err, written) = run(&with);
    assert!(
        table.contains(&format!("autotune: on ({tuned} shapes tuned")),
        "{table}"
    );
    assert!(written, "--autotune tunes and writes its cache");
    assert_eq!(
        err.matches("tuning kernels for this adapter").count(),
        1,
        "{err}"
    );
    // The second run reads the choices from the cache, and says nothing about tuning.
    let (table, err, _) = run(&with);
    assert!(!err.contains("tuning kernels"), "{err}");
    assert!(
        table.contains(&format!(
            "autotune: on (0 shapes tuned, {tuned} choices from cache"
        )),
        "{table}"
    );
}

#[test]
fn autotune_flags_and_cpu_default_are_honoured_by_the_default_command() {
    let dir = tempfile::tempdir().unwrap();
    let style = dir.path().join("random.safetensors");
    wgstyle::weights::safetensors::save_transform(
        &synthetic_weights(Arch::LENGSTROM),
        &style,
        wgstyle::weights::safetensors::Precision::F32,
        false,
        &[],
    )
    .unwrap();
    let img = dir.path().join("in.png");
    common::cli::pattern(W as u32, H as u32, 1)
        .save(&img)
        .unwrap();
    // By default the CLI tunes except on CPU drivers (where the built-in choice is what
    // tuning picks); the flags force it either way.
    let default = !common::ctx().is_cpu_driver();
    for (i, (flag, want_cache)) in [
        (Some("--no-autotune"), false),
        (None, default),
        (Some("--autotune"), true),
    ]
    .into_iter()
    .enumerate()
    {
        let cache = dir.path().join(format!("cache-{i}"));
        let out = dir.path().join(format!("out-{i}.png"));
        let mut args = vec![style.as_os_str()];
        args.splice(0..0, [std::ffi::OsStr::new("--style")]);
        args.extend(flag.map(std::ffi::OsStr::new));
        args.extend([std::ffi::OsStr::new("-o"), out.as_os_str(), img.as_os_str()]);
        let (_, err, written) = wgstyle(&cache, &args);
        assert_eq!(written, want_cache, "{flag:?}");
        let said = err.matches("tuning kernels for this adapter, once").count();
        assert_eq!(said, want_cache as usize, "{flag:?}: {err}");
        assert!(out.exists());
    }
}

#[test]
fn a_shape_large_enough_for_the_probe_is_tuned_and_computed_right() {
    use wgstyle::gpu::record::Recorder;
    use wgstyle::ops::conv::{conv2d, conv2d_with, Conv2d, Padding};
    let ctx = context(None, true);
    let mut rng = common::Rng::new(3);
    let (n, h, w, cin, cout) = (1, 66, 70, 4, 8);
    let x = wgstyle::Tensor::upload(
        &ctx,
        "x",
        [n, h, w, cin],
        &rng.vec(n * h * w * cin, -1.0, 1.0),
    )
    .unwrap();
    let k = wgstyle::Tensor::upload(
        &ctx,
        "k",
        [3, 3, cin, cout],
        &rng.vec(9 * cin * cout, -1.0, 1.0),
    )
    .unwrap();
    let p = Conv2d {
        stride: 1,
        padding: Padding::Same,
        relu: false,
    };
    let run = |tuned: bool| {
        let mut rec = Recorder::new(&ctx, "probe test");
        let y = if tuned {
            conv2d(&mut rec, &x, &k, None, p).unwrap()
        } else {
            conv2d_with(&mut rec, &x, &k, None, p, ConvAlgo::F32[0]).unwrap()
        };
        let rb = rec.readback(&y);
        rec.submit().unwrap();
        rb.read(&ctx).unwrap()
    };
    let (tuned, reference) = (run(true), run(false));
    assert_eq!(ctx.autotune_stats().tuned, 1);
    assert!(max_diff(&tuned, &reference) <= 1e-4);
}
