//! Importer for the TensorFlow.js layers model of Keras' VGG19 (`model.json` + shards).
//!
//! The shards hold the weights concatenated in manifest order, each tensor uint8-quantized
//! with `w = q · scale + min` (computed in f64 and rounded once to f32, as tfjs does). Only
//! the byte ranges of the conv tensors are read, so the fully-connected shards may be absent.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::nets::vgg::{VggConv, VggWeights, VGG19_CONVS};

#[derive(Deserialize)]
struct Model {
    #[serde(rename = "weightsManifest")]
    manifest: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    quantization: Option<Quant>,
}

#[derive(Deserialize)]
struct Quant {
    dtype: String,
    scale: Option<f64>,
    min: Option<f64>,
}

/// Bytes per element of an entry as stored in the shards.
fn stored_bytes(e: &Entry) -> Result<usize> {
    match (&e.quantization, e.dtype.as_str()) {
        (Some(q), _) if q.dtype == "uint8" => Ok(1),
        (Some(q), _) if q.dtype == "uint16" || q.dtype == "float16" => Ok(2),
        (None, "float32") | (None, "int32") => Ok(4),
        (q, d) => Err(Error::InvalidInput(format!(
            "tensor '{}': unsupported dtype {d} / quantization {:?}",
            e.name,
            q.as_ref().map(|q| q.dtype.clone())
        ))),
    }
}

/// Reads `len` bytes at `offset` of the concatenation of `paths` (in `dir`), opening only
/// the shards that overlap the range.
fn read_range(dir: &Path, paths: &[String], offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut start = 0u64;
    for name in paths {
        if out.len() == len {
            break;
        }
        let path = dir.join(name);
        let size = std::fs::metadata(&path)
            .map_err(|e| {
                Error::weights(
                    &path,
                    format!(
                        "shard needed for bytes {offset}..{} is unreadable: {e}",
                        offset + len as u64
                    ),
                )
            })?
            .len();
        let want = offset + out.len() as u64;
        if want < start + size {
            let mut f = File::open(&path).map_err(|e| Error::io(&path, e))?;
            f.seek(SeekFrom::Start(want - start))
                .map_err(|e| Error::io(&path, e))?;
            let take = ((start + size - want) as usize).min(len - out.len());
            let mut buf = vec![0u8; take];
            f.read_exact(&mut buf).map_err(|e| Error::io(&path, e))?;
            out.extend_from_slice(&buf);
        }
        start += size;
    }
    if out.len() != len {
        return Err(Error::weights(
            dir,
            format!("shards end before byte {}", offset + len as u64),
        ));
    }
    Ok(out)
}

fn decode(e: &Entry, bytes: &[u8]) -> Vec<f32> {
    match &e.quantization {
        Some(q) if q.dtype == "uint8" => {
            let (s, m) = (q.scale.unwrap_or(1.0), q.min.unwrap_or(0.0));
            bytes.iter().map(|&b| (b as f64 * s + m) as f32).collect()
        }
        Some(q) if q.dtype == "uint16" => {
            let (s, m) = (q.scale.unwrap_or(1.0), q.min.unwrap_or(0.0));
            bytes
                .chunks_exact(2)
                .map(|c| (u16::from_le_bytes([c[0], c[1]]) as f64 * s + m) as f32)
                .collect()
        }
        Some(_) => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        None => bytemuck::pod_collect_to_vec::<u8, f32>(bytes),
    }
}

/// Loads the 16 conv layers of VGG19 from a tfjs layers-model directory.
pub fn load_vgg19(dir: &Path) -> Result<VggWeights> {
    let json_path = dir.join("model.json");
    let text = std::fs::read_to_string(&json_path).map_err(|e| Error::io(&json_path, e))?;
    let model: Model = serde_json::from_str(&text)
        .map_err(|e| Error::weights(&json_path, format!("not a tfjs model.json: {e}")))?;
    // (group, byte offset, entry) of every tensor.
    let mut index = Vec::new();
    for g in &model.manifest {
        let mut off = 0u64;
        for e in &g.weights {
            let n: usize = e.shape.iter().product();
            index.push((g, off, e));
            off += (n * stored_bytes(e)?) as u64;
        }
    }
    let fetch = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let (g, off, e) = index
            .iter()
            .find(|(_, _, e)| e.name == name)
            .ok_or_else(|| {
                Error::weights(&json_path, format!("tensor '{name}' not in manifest"))
            })?;
        if e.shape != shape {
            return Err(Error::weights(
                &json_path,
                format!(
                    "tensor '{name}' has shape {:?}, expected {shape:?}",
                    e.shape
                ),
            ));
        }
        let n: usize = shape.iter().product();
        let bytes = read_range(dir, &g.paths, *off, n * stored_bytes(e)?)?;
        Ok(decode(e, &bytes))
    };
    let mut convs = Vec::new();
    for &(name, cin, cout) in VGG19_CONVS.iter() {
        let kernel = fetch(&format!("{name}/kernel"), &[3, 3, cin, cout])?;
        let bias = fetch(&format!("{name}/bias"), &[cout])?;
        convs.push(VggConv {
            name: name.to_string(),
            cin,
            cout,
            kernel,
            bias,
        });
    }
    Ok(VggWeights { convs })
}
