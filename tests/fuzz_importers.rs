//! Fuzzing every weight importer with seeded mutations of a valid input (see
//! tests/common/fuzz.rs): safetensors files (header bytes and header JSON), deeplearnjs
//! manifests and tfjs `model.json` manifests. Each case must end in `Ok` or a clean `Err`: no
//! panic, no hang (no FIFO or device is ever read) and no single allocation beyond
//! [`MAX_ALLOC`] (sizes declared beyond the file are refused before allocating). Seeds are
//! built here, so ../shared is not needed.

mod common;

use std::path::Path;

use common::fuzz::{random_transform, run_cases, tiny_transform, TrackingAlloc};
use serde_json::{json, Value};
use wgstyle::nets::transformer::{Arch, LayerKind};
use wgstyle::nets::vgg::VGG19_CONVS;
use wgstyle::weights::safetensors::{transform_bytes, Precision};

#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc::new();

/// The largest single allocation a case may make: above the biggest legitimate tensor of
/// these seeds (VGG's 2.4M-value kernels as f32, 9.4 MB), far below what a declared size
/// could claim.
const MAX_ALLOC: usize = 64 << 20;

fn check_memory(name: &str, i: usize) {
    let peak = ALLOC.take_peak();
    assert!(
        peak <= MAX_ALLOC,
        "{name} case {i}: one allocation of {peak} bytes"
    );
}

#[test]
fn fuzz_safetensors_header() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.safetensors");
    let seeds = [
        transform_bytes(&tiny_transform(), Precision::F32, &[]).unwrap(),
        transform_bytes(&tiny_transform(), Precision::F16, &[("k", "v")]).unwrap(),
    ];
    let mut errors = 0;
    run_cases("safetensors", 18, 2000, |m, i| {
        let seed = &seeds[i % 2];
        let n = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
        let bytes = if i % 3 == 0 {
            // Structure-aware: mutate the header JSON and re-encode its length.
            let header: Value = serde_json::from_slice(&seed[8..8 + n]).unwrap();
            let text = serde_json::to_vec(&m.json(&header)).unwrap();
            let mut b = (text.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(&text);
            b.extend_from_slice(&seed[8 + n..]);
            b
        } else {
            m.bytes(seed, 8 + n)
        };
        std::fs::write(&path, &bytes).unwrap();
        ALLOC.take_peak();
        errors += usize::from(wgstyle::weights::load_transform(&path).is_err());
        let _ = wgstyle::weights::load_vgg19(&path);
        check_memory("safetensors", i);
    });
    // The mutations must reach the checks, not only re-serialise valid files.
    assert!(
        errors > 1000,
        "only {errors} of 2000 mutated files were refused"
    );
}

/// A synthetic lengstrom checkpoint (random weights) in `dir`; returns its manifest.
fn write_deeplearnjs(dir: &Path) -> Value {
    let w = random_transform(Arch::LENGSTROM);
    let mut manifest = serde_json::Map::new();
    for (j, spec) in Arch::LENGSTROM.layers().into_iter().enumerate() {
        let l = &w.layers[&spec.name];
        let kshape = match spec.kind {
            LayerKind::Conv { .. } => vec![spec.k, spec.k, spec.cin, spec.cout],
            LayerKind::Up => vec![spec.k, spec.k, spec.cout, spec.cin],
        };
        for (i, (v, shape)) in [
            (&l.kernel, kshape),
            (&l.shift, vec![spec.cout]),
            (&l.scale, vec![spec.cout]),
        ]
        .into_iter()
        .enumerate()
        {
            let name = match 3 * j + i {
                0 => "Variable".to_string(),
                k => format!("Variable_{k}"),
            };
            std::fs::write(dir.join(&name), bytemuck::cast_slice::<f32, u8>(v)).unwrap();
            manifest.insert(name.clone(), json!({"filename": name, "shape": shape}));
        }
    }
    Value::Object(manifest)
}

#[test]
fn fuzz_deeplearnjs_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = write_deeplearnjs(&dir);
    let text = serde_json::to_vec(&manifest).unwrap();
    std::fs::write(dir.join("manifest.json"), &text).unwrap();
    wgstyle::weights::load_transform(&dir).expect("the seed loads");
    run_cases("deeplearnjs", 18, 2000, |m, i| {
        let bytes = if i % 4 == 0 {
            m.bytes(&text, text.len())
        } else {
            serde_json::to_vec(&m.json(&manifest)).unwrap()
        };
        std::fs::write(dir.join("manifest.json"), &bytes).unwrap();
        ALLOC.take_peak();
        let _ = wgstyle::weights::load_transform(&dir);
        check_memory("deeplearnjs", i);
    });
}

/// A synthetic VGG19 tfjs model (uint8-quantized random conv weights, 1 MiB shards, the
/// fully-connected shards absent as in ../shared) in `dir`; returns its model.json.
fn write_tfjs(dir: &Path) -> Value {
    let mut weights = Vec::new();
    let mut total = 0usize;
    for &(name, cin, cout) in VGG19_CONVS.iter() {
        for (suffix, shape) in [("kernel", vec![3, 3, cin, cout]), ("bias", vec![cout])] {
            total += shape.iter().product::<usize>();
            weights.push(json!({
                "name": format!("{name}/{suffix}"), "shape": shape, "dtype": "float32",
                "quantization": {"dtype": "uint8", "scale": 0.004, "min": -0.5}
            }));
        }
    }
    const SHARD: usize = 1 << 20;
    let n = total.div_ceil(SHARD);
    let paths: Vec<String> = (1..=n)
        .map(|i| format!("group1-shard{i}of{n}.bin"))
        .collect();
    let mut rng = common::Rng::new(3);
    for (i, p) in paths.iter().enumerate() {
        let len = SHARD.min(total - i * SHARD);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        std::fs::write(dir.join(p), bytes).unwrap();
    }
    json!({"format": "layers-model", "weightsManifest": [{"paths": paths, "weights": weights}]})
}

#[test]
fn fuzz_tfjs_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vgg");
    std::fs::create_dir_all(&dir).unwrap();
    let model = write_tfjs(&dir);
    let text = serde_json::to_vec(&model).unwrap();
    std::fs::write(dir.join("model.json"), &text).unwrap();
    wgstyle::weights::load_vgg19(&dir).expect("the seed loads");
    // Fewer cases: a mutation late in the manifest reads up to 20 MB of shards first.
    run_cases("tfjs", 18, 500, |m, i| {
        let bytes = if i % 4 == 0 {
            m.bytes(&text, text.len())
        } else {
            serde_json::to_vec(&m.json(&model)).unwrap()
        };
        std::fs::write(dir.join("model.json"), &bytes).unwrap();
        ALLOC.take_peak();
        let _ = wgstyle::weights::load_vgg19(&dir);
        check_memory("tfjs", i);
    });
}
