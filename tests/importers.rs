//! Hostile weight files: every importer refuses bad metadata, non-finite values, files that are
//! not regular files (a FIFO would hang a read, /dev/zero fill memory), truncated or foreign
//! tfjs shards and shard paths outside the model directory, each with an error naming the
//! field, tensor or file. No GPU is used.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::cli::{run, stderr, wgstyle};
use common::fuzz::tiny_transform;
use wgstyle::weights::safetensors::{transform_bytes, Precision};

/// `bytes` (safetensors) with metadata `key` set to `value` (`None`: removed) and tensor
/// `poison` (if any) holding a NaN.
fn rewrite(bytes: &[u8], key: &str, value: Option<&str>, poison: Option<&str>) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut meta: HashMap<String, String> = meta.metadata().clone().unwrap_or_default();
    match value {
        Some(v) => meta.insert(key.to_string(), v.to_string()),
        None => meta.remove(key),
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    for (n, _, data) in &mut tensors {
        if Some(n.as_str()) == poison {
            data[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        }
    }
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, s, d)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                .unwrap();
            (n.clone(), v)
        })
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn style_metadata_is_validated_field_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let good = transform_bytes(&tiny_transform(), Precision::F32, &[]).unwrap();
    let ok = write(tmp.path(), "ok.safetensors", &good);
    wgstyle::weights::load_transform(&ok).unwrap();
    for (key, value, want) in [
        ("wgstyle.width", "0", "wgstyle.width"),
        ("wgstyle.width", "-3", "wgstyle.width"),
        ("wgstyle.width", "99999999999", "wgstyle.width"),
        ("wgstyle.norm_eps", "NaN", "wgstyle.norm_eps"),
        ("wgstyle.norm_eps", "inf", "wgstyle.norm_eps"),
        ("wgstyle.norm_eps", "-0.001", "wgstyle.norm_eps"),
        ("wgstyle.norm_eps", "0", "wgstyle.norm_eps"),
        ("wgstyle.upsample", "bicubic", "wgstyle.upsample"),
        ("wgstyle.arch", "resnet", "wgstyle.arch"),
        ("wgstyle.output", "x", "wgstyle.output"),
        ("wgstyle.model", "vgg19", "wgstyle.model"),
    ] {
        let p = write(
            tmp.path(),
            "bad.safetensors",
            &rewrite(&good, key, Some(value), None),
        );
        let err = wgstyle::weights::load_transform(&p)
            .err()
            .unwrap_or_else(|| panic!("{key}={value} accepted"))
            .to_string();
        assert!(err.contains(want), "{key}={value}: {err}");
    }
    let p = write(
        tmp.path(),
        "nan.safetensors",
        &rewrite(&good, "x", None, Some("res2_a.kernel")),
    );
    let err = wgstyle::weights::load_transform(&p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("res2_a.kernel") && err.contains("NaN"),
        "{err}"
    );
}

#[test]
fn convert_refuses_width_zero_with_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let good = transform_bytes(&tiny_transform(), Precision::F32, &[]).unwrap();
    let src = write(
        tmp.path(),
        "w0.safetensors",
        &rewrite(&good, "wgstyle.width", Some("0"), None),
    );
    let dst = tmp.path().join("out.safetensors");
    let out = run(wgstyle(tmp.path()).arg("convert").arg(&src).arg(&dst));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("wgstyle.width"), "{}", stderr(&out));
    assert!(!dst.exists());
}

/// A FIFO nobody writes to: reading it would block forever.
fn fifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn fifos_and_devices_are_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("fifo.safetensors");
    fifo(&f);
    let zero = Path::new("/dev/zero");
    for p in [f.as_path(), zero] {
        let e = wgstyle::weights::load_transform(p).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = wgstyle::weights::load_vgg19(p).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
    // A deeplearnjs checkpoint whose manifest or variable is a FIFO.
    let ck = tmp.path().join("ck");
    std::fs::create_dir_all(&ck).unwrap();
    fifo(&ck.join("manifest.json"));
    let e = wgstyle::weights::load_transform(&ck)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

/// A copy of ../shared's VGG19 tfjs model (conv shards only) that a test may damage.
fn vgg_copy(shared: &Path, root: &Path) -> PathBuf {
    let dir = root.join("vgg");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(shared.join("weights/vgg19-tfjs")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir
}

fn edit_model_json(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("model.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn tfjs_truncated_shard_is_named_not_shifted() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = vgg_copy(&shared, tmp.path());
    wgstyle::weights::load_vgg19(&dir).unwrap();
    let shard = dir.join("group1-shard7of138.bin");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 1000]).unwrap();
    let e = wgstyle::weights::load_vgg19(&dir).unwrap_err().to_string();
    assert!(
        e.contains("group1-shard7of138.bin") && e.contains("shard 7 of 138"),
        "{e}"
    );

    // A missing conv shard is the one named (not a later one).
    std::fs::write(&shard, &bytes).unwrap();
    std::fs::remove_file(dir.join("group1-shard12of138.bin")).unwrap();
    let e = wgstyle::weights::load_vgg19(&dir).unwrap_err().to_string();
    assert!(e.contains("group1-shard12of138.bin"), "{e}");
}

#[test]
fn tfjs_shard_paths_outside_the_model_are_refused() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = vgg_copy(&shared, tmp.path());
    for evil in ["../../etc/passwd", "/dev/zero", "a/../../x", "C:\\x"] {
        edit_model_json(&dir, |v| {
            v["weightsManifest"][0]["paths"][0] = serde_json::json!(evil);
        });
        let e = wgstyle::weights::load_vgg19(&dir).unwrap_err().to_string();
        assert!(e.contains("leaves the model directory"), "{evil}: {e}");
    }
}

#[test]
fn tfjs_non_finite_quantization_is_refused() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = vgg_copy(&shared, tmp.path());
    edit_model_json(&dir, |v| {
        let w = &mut v["weightsManifest"][0]["weights"][2];
        assert_eq!(w["name"], "block1_conv2/kernel");
        w["quantization"]["scale"] = serde_json::json!(1e308);
        w["quantization"]["min"] = serde_json::json!(1e308);
    });
    let e = wgstyle::weights::load_vgg19(&dir).unwrap_err().to_string();
    assert!(
        e.contains("block1_conv2/kernel") && e.contains("non-finite"),
        "{e}"
    );
}

#[test]
fn deeplearnjs_variables_are_bounded_and_finite() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scream");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(shared.join("weights/styles/scream")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    wgstyle::weights::load_transform(&dir).unwrap();
    let var = dir.join("Variable_4");
    let mut bytes = std::fs::read(&var).unwrap();
    bytes[8..12].copy_from_slice(&f32::INFINITY.to_le_bytes());
    std::fs::write(&var, &bytes).unwrap();
    let e = wgstyle::weights::load_transform(&dir)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Variable_4") && e.contains("inf"), "{e}");
    std::fs::remove_file(&var).unwrap();
    fifo(&var);
    let e = wgstyle::weights::load_transform(&dir)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Variable_4") && e.contains("not a regular file"),
        "{e}"
    );
}
