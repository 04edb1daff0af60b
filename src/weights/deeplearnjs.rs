//! Importer for the "deeplearnjs checkpoint" format of lengstrom's networks:
//! `manifest.json` maps `Variable`, `Variable_1`, … to `{"filename", "shape"}`; each file is
//! raw little-endian float32. Layer `j` of the network owns variables `3j` (kernel),
//! `3j+1` (instance-norm shift) and `3j+2` (scale). Transposed-conv kernels are stored as
//! `[kh, kw, out, in]` and are permuted to our `[kh, kw, in, out]`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::nets::transformer::{Arch, LayerKind, LayerWeights, TransformWeights};

#[derive(Deserialize)]
struct Entry {
    filename: String,
    shape: Vec<usize>,
}

/// The largest `manifest.json` read (lengstrom's are about 5 KB).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

fn var_name(i: usize) -> String {
    if i == 0 {
        "Variable".to_string()
    } else {
        format!("Variable_{i}")
    }
}

/// Loads a lengstrom network from a deeplearnjs checkpoint directory, checking every
/// variable's presence, shape and byte length.
pub fn load(dir: &Path) -> Result<TransformWeights> {
    let manifest_path = dir.join("manifest.json");
    let text = crate::weights::read_limited(&manifest_path, MAX_MANIFEST_BYTES, "manifest")?;
    let manifest: HashMap<String, Entry> = serde_json::from_slice(&text)
        .map_err(|e| Error::weights(&manifest_path, format!("invalid manifest: {e}")))?;
    let arch = Arch::LENGSTROM;
    let mut layers = BTreeMap::new();
    for (j, spec) in arch.layers().into_iter().enumerate() {
        let kernel_shape = match spec.kind {
            LayerKind::Conv { .. } => vec![spec.k, spec.k, spec.cin, spec.cout],
            LayerKind::Up => vec![spec.k, spec.k, spec.cout, spec.cin],
        };
        let read = |i: usize, shape: &[usize], role: &str| -> Result<Vec<f32>> {
            let name = var_name(i);
            let what = format!("variable '{name}' ({} {role})", spec.name);
            let e = manifest.get(&name).ok_or_else(|| {
                Error::weights(
                    &manifest_path,
                    format!("{what} is missing from the manifest"),
                )
            })?;
            if e.shape != shape {
                return Err(Error::weights(
                    &manifest_path,
                    format!("{what} has shape {:?}, expected {shape:?}", e.shape),
                ));
            }
            if !crate::weights::is_safe_relative(&e.filename)
                || e.filename.contains('/')
                || e.filename.starts_with('.')
            {
                return Err(Error::weights(
                    &manifest_path,
                    format!("{what} has an unsafe file name '{}'", e.filename),
                ));
            }
            let path = dir.join(&e.filename);
            let n: usize = shape.iter().product();
            // Read at most the expected bytes: a longer file is reported, not loaded.
            let bytes =
                crate::weights::read_limited(&path, 4 * n as u64 + 1, &what).map_err(|err| {
                    match err {
                        Error::Io { source, .. } => {
                            Error::weights(&path, format!("{what}: {source}"))
                        }
                        other => other,
                    }
                })?;
            if bytes.len() != 4 * n {
                return Err(Error::weights(
                    &path,
                    format!(
                        "{what} has {} bytes, expected {} ({n} float32 values of shape {shape:?})",
                        bytes.len(),
                        4 * n
                    ),
                ));
            }
            let values: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            crate::weights::check_finite(&path, &name, &values)?;
            Ok(values)
        };
        let raw = read(3 * j, &kernel_shape, "kernel")?;
        let kernel = if spec.kind == LayerKind::Up {
            swap_io(&raw, spec.k * spec.k, spec.cout, spec.cin)
        } else {
            raw
        };
        let shift = read(3 * j + 1, &[spec.cout], "instance-norm shift")?;
        let scale = read(3 * j + 2, &[spec.cout], "instance-norm scale")?;
        layers.insert(
            spec.name.clone(),
            LayerWeights {
                kernel,
                shift,
                scale,
                bias: Vec::new(),
            },
        );
    }
    let w = TransformWeights { arch, layers };
    w.validate().map_err(|m| Error::weights(dir, m))?;
    Ok(w)
}

/// `[taps, a, b]` -> `[taps, b, a]`.
fn swap_io(v: &[f32], taps: usize, a: usize, b: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for t in 0..taps {
        for i in 0..a {
            for j in 0..b {
                out[(t * b + j) * a + i] = v[(t * a + i) * b + j];
            }
        }
    }
    out
}
