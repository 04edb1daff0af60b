//! wgstyle's native weight format: safetensors with metadata.
//!
//! A transform network is stored as tensors `<layer>.kernel` (`[k, k, cin, cout]`, HWIO, also
//! for transposed convolutions), `<layer>.shift` and `<layer>.scale` (`[cout]`; not for a layer
//! without instance norm), `<layer>.bias` (`[cout]`, `pytorch-examples` only), float32 or
//! float16, with metadata:
//!
//! | key | value |
//! |---|---|
//! | `wgstyle.model` | `transform` |
//! | `wgstyle.arch` | `johnson` (the default when absent) or `pytorch-examples` |
//! | `wgstyle.width` | channels of the first layer (`32`) |
//! | `wgstyle.upsample` | `transpose` or `nearest` |
//! | `wgstyle.norm_eps` | instance-norm epsilon (`0.001`; `1e-5` for `pytorch-examples`) |
//! | `wgstyle.input` | `rgb 0..255, no mean subtraction` |
//! | `wgstyle.output` | `tanh(x)*150+127.5` or `raw, clamp to 0..255` |
//! | `wgstyle.source_format` | what it was converted from (`pth-zip`, `onnx`, ...), if anything |

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::nets::transformer::{Arch, Family, LayerWeights, TransformWeights, Upsample};

/// The largest safetensors file wgstyle reads (a bound on the memory a file can claim).
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// The widest transform network accepted (`wgstyle.width`; lengstrom's is 32).
pub const MAX_WIDTH: usize = 1024;

/// Converts a safetensors tensor of dtype F32 or F16 to f32 values; a NaN or infinite value
/// is an error naming the tensor.
pub fn to_f32(
    path: &Path,
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> Result<Vec<f32>> {
    let v = to_f32_unchecked(path, name, view)?;
    crate::weights::check_finite(path, name, &v)?;
    Ok(v)
}

fn to_f32_unchecked(
    path: &Path,
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> Result<Vec<f32>> {
    let data = view.data();
    match view.dtype() {
        Dtype::F32 => Ok(data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        Dtype::F16 => Ok(data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        d => Err(Error::weights(
            path,
            format!("tensor '{name}' has dtype {d:?}; expected F32 or F16"),
        )),
    }
}

/// Reads a weights file (a regular file of at most [`MAX_FILE_BYTES`]), with errors that
/// name the file.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    crate::weights::read_limited(path, MAX_FILE_BYTES, "weights file")
}

/// Parses safetensors bytes and returns the tensors and the metadata.
pub fn parse<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::weights(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::weights(path, e.to_string()))?;
    Ok((st, meta.metadata().clone().unwrap_or_default()))
}

/// Loads a transform network saved by [`save_transform`].
pub fn load_transform(path: &Path) -> Result<TransformWeights> {
    let bytes = read_file(path)?;
    let (st, meta) = parse(path, &bytes)?;
    transform_from(path, &st, &meta)
}

/// The transform network in parsed safetensors (`path` only names the file in errors).
pub fn transform_from(
    path: &Path,
    st: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
) -> Result<TransformWeights> {
    let get = |k: &str| meta.get(k).map(String::as_str);
    if get("wgstyle.model") != Some("transform") {
        return Err(Error::weights(
            path,
            "metadata 'wgstyle.model' is not 'transform': not a wgstyle style network",
        ));
    }
    let arch = arch_from_metadata(path, meta)?;
    let mut layers = BTreeMap::new();
    for (i, spec) in arch.layers().into_iter().enumerate() {
        let read = |suffix: &str, shape: Vec<usize>| -> Result<Vec<f32>> {
            let name = format!("{}.{suffix}", spec.name);
            let view = st
                .tensor(&name)
                .map_err(|_| Error::weights(path, format!("tensor '{name}' is missing")))?;
            if view.shape() != shape.as_slice() {
                return Err(Error::weights(
                    path,
                    format!(
                        "tensor '{name}' has shape {:?}, expected {shape:?}",
                        view.shape()
                    ),
                ));
            }
            to_f32(path, &name, &view)
        };
        let kernel = read("kernel", vec![spec.k, spec.k, spec.cin, spec.cout])?;
        let (shift, scale) = if arch.has_norm(i) {
            (
                read("shift", vec![spec.cout])?,
                read("scale", vec![spec.cout])?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let bias = if arch.has_bias() {
            read("bias", vec![spec.cout])?
        } else {
            Vec::new()
        };
        layers.insert(
            spec.name.clone(),
            LayerWeights {
                kernel,
                shift,
                scale,
                bias,
            },
        );
    }
    let w = TransformWeights { arch, layers };
    w.validate().map_err(|m| Error::weights(path, m))?;
    Ok(w)
}

/// The architecture a transform network's metadata describes, every field checked: `arch`
/// (`johnson`), `width` (1..=[`MAX_WIDTH`]), `upsample` (`transpose`/`nearest`), `norm_eps`
/// (finite, in (0, 1]), and `input`/`output` (the conventions wgstyle implements), each
/// defaulting to lengstrom's network when absent.
pub fn arch_from_metadata(path: &Path, meta: &HashMap<String, String>) -> Result<Arch> {
    let get = |k: &str| meta.get(k).map(String::as_str);
    let bad = |key: &str, why: String| Error::weights(path, format!("metadata '{key}' {why}"));
    let arch_name = get("wgstyle.arch").unwrap_or("johnson");
    let family = Family::from_name(arch_name).ok_or_else(|| {
        bad(
            "wgstyle.arch",
            format!("is '{arch_name}'; expected 'johnson' or 'pytorch-examples'"),
        )
    })?;
    let base = match family {
        Family::Johnson => Arch::LENGSTROM,
        Family::PytorchExamples => Arch::PYTORCH_EXAMPLES,
    };
    let width_text = get("wgstyle.width").unwrap_or("32");
    let width = width_text.trim().parse::<usize>().map_err(|_| {
        bad(
            "wgstyle.width",
            format!("is '{width_text}', not a whole number"),
        )
    })?;
    if !(1..=MAX_WIDTH).contains(&width) {
        return Err(bad(
            "wgstyle.width",
            format!("is {width}; expected 1 to {MAX_WIDTH}"),
        ));
    }
    let upsample = match get("wgstyle.upsample") {
        None => base.upsample,
        Some("transpose") => Upsample::Transpose,
        Some("nearest") => Upsample::Nearest,
        Some(u) => {
            return Err(bad(
                "wgstyle.upsample",
                format!("is '{u}'; expected 'transpose' or 'nearest'"),
            ))
        }
    };
    let default_eps = base.eps.to_string();
    let eps_text = get("wgstyle.norm_eps").unwrap_or(&default_eps);
    let eps = eps_text
        .trim()
        .parse::<f32>()
        .map_err(|_| bad("wgstyle.norm_eps", format!("is '{eps_text}', not a number")))?;
    if !(eps.is_finite() && eps > 0.0 && eps <= 1.0) {
        return Err(bad(
            "wgstyle.norm_eps",
            format!("is {eps}; expected a finite value in (0, 1]"),
        ));
    }
    for (key, want) in [
        ("wgstyle.input", INPUT_CONVENTION),
        ("wgstyle.output", output_convention(family)),
    ] {
        if let Some(v) = get(key) {
            if v != want {
                return Err(bad(key, format!("is '{v}'; wgstyle implements '{want}'")));
            }
        }
    }
    let arch = Arch {
        width,
        upsample,
        eps,
        family,
    };
    arch.check().map_err(|m| Error::weights(path, m))?;
    Ok(arch)
}

const INPUT_CONVENTION: &str = "rgb 0..255, no mean subtraction";

/// What the network's output means, as recorded in `wgstyle.output`.
fn output_convention(family: Family) -> &'static str {
    match family {
        Family::Johnson => "tanh(x)*150+127.5",
        Family::PytorchExamples => "raw, clamp to 0..255",
    }
}

/// Storage precision of a saved model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// float32 (exact).
    #[default]
    F32,
    /// float16 (half the size; the fast path converts on load).
    F16,
}

/// Serialises a transform network (with `extra` metadata such as its source).
pub fn transform_bytes(
    w: &TransformWeights,
    precision: Precision,
    extra: &[(&str, &str)],
) -> Result<Vec<u8>> {
    transform_bytes_with(w, precision, extra, &[])
}

/// An additional float32 tensor stored beside a network: name, shape, values.
pub type ExtraTensor<'a> = (String, Vec<usize>, &'a [f32]);

/// [`transform_bytes`] with additional float32 tensors (a training checkpoint's optimizer
/// state); [`load_transform`] ignores them, so the file still loads as a network.
pub fn transform_bytes_with(
    w: &TransformWeights,
    precision: Precision,
    extra: &[(&str, &str)],
    tensors: &[ExtraTensor],
) -> Result<Vec<u8>> {
    w.validate()
        .map_err(|m| Error::InvalidInput(format!("refusing to save inconsistent weights: {m}")))?;
    let mut meta: HashMap<String, String> = [
        ("wgstyle.model", "transform".to_string()),
        ("wgstyle.arch", w.arch.family.name().to_string()),
        ("wgstyle.width", w.arch.width.to_string()),
        (
            "wgstyle.upsample",
            match w.arch.upsample {
                Upsample::Transpose => "transpose".to_string(),
                Upsample::Nearest => "nearest".to_string(),
            },
        ),
        ("wgstyle.norm_eps", w.arch.eps.to_string()),
        ("wgstyle.input", INPUT_CONVENTION.to_string()),
        (
            "wgstyle.output",
            output_convention(w.arch.family).to_string(),
        ),
        ("wgstyle.version", env!("CARGO_PKG_VERSION").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        meta.insert(k.to_string(), v.to_string());
    }
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for spec in w.arch.layers() {
        let l = &w.layers[&spec.name];
        for (suffix, v, shape) in [
            (
                "kernel",
                &l.kernel,
                vec![spec.k, spec.k, spec.cin, spec.cout],
            ),
            ("shift", &l.shift, vec![spec.cout]),
            ("scale", &l.scale, vec![spec.cout]),
            ("bias", &l.bias, vec![spec.cout]),
        ] {
            if v.is_empty() {
                continue; // no norm on this layer, or no bias in this family
            }
            let bytes = match precision {
                Precision::F32 => bytemuck::cast_slice::<f32, u8>(v).to_vec(),
                Precision::F16 => v
                    .iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            };
            blobs.push((format!("{}.{suffix}", spec.name), shape, bytes));
        }
    }
    let dtype = match precision {
        Precision::F32 => Dtype::F32,
        Precision::F16 => Dtype::F16,
    };
    let n_model = blobs.len();
    for (name, shape, v) in tensors {
        blobs.push((
            name.clone(),
            shape.clone(),
            bytemuck::cast_slice::<f32, u8>(v).to_vec(),
        ));
    }
    let views = blobs
        .iter()
        .enumerate()
        .map(|(i, (n, s, b))| {
            let dtype = if i < n_model { dtype } else { Dtype::F32 };
            Ok((
                n.clone(),
                safetensors::tensor::TensorView::new(dtype, s.clone(), b)
                    .map_err(|e| Error::InvalidInput(e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// Saves a transform network atomically to `path` (refuses to replace it unless `overwrite`).
pub fn save_transform(
    w: &TransformWeights,
    path: &Path,
    precision: Precision,
    overwrite: bool,
    extra: &[(&str, &str)],
) -> Result<()> {
    let bytes = transform_bytes(w, precision, extra)?;
    crate::fsutil::write_bytes_atomic(path, overwrite, &bytes)
}
