//! VGG19 in wgstyle's safetensors format: tensors `<name>.kernel` (`[3, 3, cin, cout]`,
//! HWIO) and `<name>.bias` (`[cout]`) for the Keras names `block1_conv1` … `block5_conv4`,
//! float32, with metadata:
//!
//! | key | value |
//! |---|---|
//! | `wgstyle.model` | `vgg19` |
//! | `wgstyle.input` | `bgr 0..255 minus caffe mean` |
//! | `wgstyle.mean_bgr` | `103.939,116.779,123.68` |
//! | `wgstyle.pooling` | `2x2 stride 2, floor` |

use std::collections::HashMap;
use std::path::Path;

use safetensors::Dtype;

use crate::error::{Error, Result};
use crate::nets::vgg::{VggConv, VggWeights, VGG19_CONVS};
use crate::weights::safetensors::{parse, read_file, to_f32};

/// Loads VGG19 from a tfjs model directory (`model.json` + shards) or a safetensors file.
pub fn load_vgg19(path: &Path) -> Result<VggWeights> {
    if path.is_dir() {
        if path.join("model.json").exists() {
            return crate::weights::tfjs::load_vgg19(path);
        }
        return Err(Error::weights(
            path,
            "directory has no model.json (expected a tfjs layers model of VGG19)",
        ));
    }
    let bytes = read_file(path)?;
    let (st, meta) = parse(path, &bytes)?;
    if meta.get("wgstyle.model").map(String::as_str) != Some("vgg19") {
        return Err(Error::weights(
            path,
            "metadata 'wgstyle.model' is not 'vgg19'",
        ));
    }
    let mut convs = Vec::new();
    for &(name, cin, cout) in VGG19_CONVS.iter() {
        let read = |suffix: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let key = format!("{name}.{suffix}");
            let view = st
                .tensor(&key)
                .map_err(|_| Error::weights(path, format!("tensor '{key}' is missing")))?;
            if view.shape() != shape {
                return Err(Error::weights(
                    path,
                    format!(
                        "tensor '{key}' has shape {:?}, expected {shape:?}",
                        view.shape()
                    ),
                ));
            }
            to_f32(path, &key, &view)
        };
        convs.push(VggConv {
            name: name.to_string(),
            cin,
            cout,
            kernel: read("kernel", &[3, 3, cin, cout])?,
            bias: read("bias", &[cout])?,
        });
    }
    Ok(VggWeights { convs })
}

/// Serialises VGG19 weights with the metadata above (plus `extra`).
pub fn vgg19_bytes(w: &VggWeights, extra: &[(&str, &str)]) -> Result<Vec<u8>> {
    let mut meta: HashMap<String, String> = [
        ("wgstyle.model", "vgg19"),
        ("wgstyle.input", "bgr 0..255 minus caffe mean"),
        ("wgstyle.mean_bgr", "103.939,116.779,123.68"),
        ("wgstyle.pooling", "2x2 stride 2, floor"),
        ("wgstyle.version", env!("CARGO_PKG_VERSION")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        meta.insert(k.to_string(), v.to_string());
    }
    let mut blobs = Vec::new();
    for c in &w.convs {
        blobs.push((
            format!("{}.kernel", c.name),
            vec![3, 3, c.cin, c.cout],
            &c.kernel,
        ));
        blobs.push((format!("{}.bias", c.name), vec![c.cout], &c.bias));
    }
    let views = blobs
        .iter()
        .map(|(n, s, v)| {
            Ok((
                n.clone(),
                safetensors::tensor::TensorView::new(
                    Dtype::F32,
                    s.clone(),
                    bytemuck::cast_slice::<f32, u8>(v),
                )
                .map_err(|e| Error::InvalidInput(e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// Saves VGG19 weights atomically (refuses to replace `path` unless `overwrite`).
pub fn save_vgg19(
    w: &VggWeights,
    path: &Path,
    overwrite: bool,
    extra: &[(&str, &str)],
) -> Result<()> {
    crate::fsutil::write_bytes_atomic(path, overwrite, &vgg19_bytes(w, extra)?)
}

/// The directories searched for `vgg19.safetensors` / `vgg19-tfjs/`: the styles' search
/// path (`weights_dir`, each directory of `WGSTYLE_WEIGHTS`, `./weights`, the user styles
/// directory), then the user data directory itself.
pub fn search_dirs(weights_dir: Option<&Path>) -> Vec<std::path::PathBuf> {
    let mut dirs = crate::weights::search::SearchPath::from_env(weights_dir).dirs;
    dirs.extend(crate::weights::search::data_dir());
    dirs
}

/// Finds VGG19: `explicit` if given, else `vgg19.safetensors` or `vgg19-tfjs/` in
/// [`search_dirs`]. The error ([`Error::VggNotFound`]) names every place looked at.
pub fn find_vgg19(
    explicit: Option<&Path>,
    weights_dir: Option<&Path>,
) -> Result<std::path::PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let dirs = search_dirs(weights_dir);
    for d in &dirs {
        for name in ["vgg19.safetensors", "vgg19-tfjs"] {
            let p = d.join(name);
            if p.exists() {
                return Ok(p);
            }
        }
    }
    Err(Error::VggNotFound { searched: dirs })
}
