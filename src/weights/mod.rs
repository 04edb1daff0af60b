//! Weight formats: wgstyle's native safetensors and the upstream formats it imports.

pub mod catalog;
pub mod deeplearnjs;
#[cfg(not(target_arch = "wasm32"))]
pub mod fetch;
pub mod onnx;
pub mod onnx_proto;
pub mod pickle;
pub mod pth;
pub mod safetensors;
pub mod search;
pub mod tfjs;
pub mod vgg;

pub use vgg::load_vgg19;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::nets::transformer::TransformWeights;

/// Loads a fast-style network from a `.safetensors` file, a PyTorch `.pth` checkpoint or an
/// `.onnx` file of pytorch/examples' TransformerNet, or a deeplearnjs checkpoint directory
/// (`manifest.json` + raw float32 files).
pub fn load_transform(path: &Path) -> Result<TransformWeights> {
    if path.is_dir() {
        if path.join("manifest.json").exists() {
            return deeplearnjs::load(path);
        }
        return Err(Error::weights(
            path,
            "directory has no manifest.json (expected a deeplearnjs checkpoint)",
        ));
    }
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pth" | "pt") => pth::load(path),
        Some("onnx") => onnx::load(path),
        _ => safetensors::load_transform(path),
    }
}

/// What format a style network at `path` is in, as recorded in `wgstyle.source_format` by
/// `wgstyle convert`: `deeplearnjs`, `pth-zip`, `pth-legacy`, `onnx` or `safetensors`.
pub fn source_format(path: &Path) -> &'static str {
    if path.is_dir() {
        return "deeplearnjs";
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("onnx") => "onnx",
        Some("pth" | "pt") => {
            let mut head = [0u8; 4];
            let zip = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok()
                && head == *b"PK\x03\x04";
            if zip {
                pth::PthFormat::Zip.name()
            } else {
                pth::PthFormat::Legacy.name()
            }
        }
        _ => "safetensors",
    }
}

/// Reads the regular file `path`, at most `max` bytes. A directory, FIFO or device is refused
/// before it is opened (so a FIFO cannot hang the read), and a file longer than `max` is an
/// error, not an allocation: `what` names the file's role in the errors.
pub(crate) fn read_limited(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::weights(
            path,
            format!("{what} is not a regular file"),
        ));
    }
    if meta.len() > max {
        return Err(Error::weights(
            path,
            format!(
                "{what} has {} bytes, more than the {max} allowed",
                meta.len()
            ),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::weights(
            path,
            format!("{what} grew beyond the {max} bytes allowed while being read"),
        ));
    }
    Ok(bytes)
}

/// The first non-finite value of `values`, as an error naming tensor `name` of `path`.
pub(crate) fn check_finite(path: &Path, name: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::weights(
            path,
            format!(
                "tensor '{name}' holds a non-finite value ({}) at index {i}",
                values[i]
            ),
        )),
    }
}

/// A relative file name that stays inside its directory: plain components only.
pub(crate) fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains(':'))
}
