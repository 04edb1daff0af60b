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

/// The largest `model.json` read (VGG19's is 26 KB).
const MAX_MODEL_JSON_BYTES: u64 = 16 << 20;

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

/// Stored bytes of an entry, `None` on overflow.
fn entry_bytes(e: &Entry) -> Result<Option<u64>> {
    let per = stored_bytes(e)? as u64;
    Ok(e.shape
        .iter()
        .try_fold(per, |acc, &d| acc.checked_mul(d as u64)))
}

/// A weight group's shards: their paths (checked to stay inside the model directory), the
/// total bytes the manifest puts in them, and the shard size (that of the first shard: tfjs
/// cuts a group into shards of one size, the last one shorter).
struct Shards<'a> {
    dir: &'a Path,
    json: &'a Path,
    paths: &'a [String],
    total: u64,
    shard_size: std::cell::OnceCell<u64>,
}

impl Shards<'_> {
    /// The path of shard `i`, refused unless it is a plain relative path inside the directory
    /// and names a regular file.
    fn path(&self, i: usize) -> Result<std::path::PathBuf> {
        let name = &self.paths[i];
        if !crate::weights::is_safe_relative(name) {
            return Err(Error::weights(
                self.json,
                format!("shard path '{name}' leaves the model directory"),
            ));
        }
        Ok(self.dir.join(name))
    }

    /// The size of shard `i`, checked against the manifest: every shard but the last has the
    /// first shard's size, the last one the rest of the group's bytes.
    fn size(&self, i: usize) -> Result<u64> {
        let path = self.path(i)?;
        let meta = std::fs::metadata(&path).map_err(|e| {
            Error::weights(
                &path,
                format!("shard {} of {} is unreadable: {e}", i + 1, self.paths.len()),
            )
        })?;
        if !meta.is_file() {
            return Err(Error::weights(&path, "shard is not a regular file"));
        }
        let n = self.paths.len() as u64;
        let first = match self.shard_size.get() {
            Some(&s) => s,
            None => {
                let s = if i == 0 { meta.len() } else { self.size(0)? };
                // `n` shards of size `s` must hold the group: (n-1)·s < total <= n·s.
                let fits = s > 0
                    && s.checked_mul(n).is_some_and(|all| all >= self.total)
                    && (n - 1).saturating_mul(s) < self.total;
                if !fits {
                    return Err(Error::weights(
                        self.dir.join(&self.paths[0]),
                        format!(
                            "first shard has {s} bytes, which does not cut the manifest's {} bytes into {n} shards (truncated?)",
                            self.total
                        ),
                    ));
                }
                let _ = self.shard_size.set(s);
                s
            }
        };
        let want = if i as u64 + 1 == n {
            self.total - (n - 1) * first
        } else {
            first
        };
        if meta.len() != want {
            return Err(Error::weights(
                &path,
                format!(
                    "shard {} of {} has {} bytes, the manifest needs {want} (truncated or replaced?)",
                    i + 1,
                    n,
                    meta.len()
                ),
            ));
        }
        Ok(want)
    }

    /// Reads `len` bytes at `offset` of the group, opening only the shards that hold them.
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        if self.paths.is_empty() || offset.checked_add(len).is_none_or(|end| end > self.total) {
            return Err(Error::weights(
                self.json,
                format!("bytes {offset}..+{len} lie outside the weight group"),
            ));
        }
        let s = self.size(0)?;
        let mut out = Vec::new();
        let mut pos = offset;
        while (out.len() as u64) < len {
            let i = (pos / s) as usize;
            let size = self.size(i)?;
            let path = self.path(i)?;
            let within = pos - i as u64 * s;
            let take = (size - within).min(len - out.len() as u64);
            let mut f = File::open(&path).map_err(|e| Error::io(&path, e))?;
            f.seek(SeekFrom::Start(within))
                .map_err(|e| Error::io(&path, e))?;
            let start = out.len();
            out.resize(start + take as usize, 0);
            f.read_exact(&mut out[start..])
                .map_err(|e| Error::io(&path, e))?;
            pos += take;
        }
        Ok(out)
    }
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
    let text = crate::weights::read_limited(&json_path, MAX_MODEL_JSON_BYTES, "model.json")?;
    let model: Model = serde_json::from_slice(&text)
        .map_err(|e| Error::weights(&json_path, format!("not a tfjs model.json: {e}")))?;
    // Each group's shards, and (group, byte offset, bytes, entry) of every tensor.
    let mut groups = Vec::new();
    let mut index = Vec::new();
    for (gi, g) in model.manifest.iter().enumerate() {
        let mut off = 0u64;
        for e in &g.weights {
            let n = entry_bytes(e)?
                .and_then(|n| off.checked_add(n).map(|end| (n, end)))
                .ok_or_else(|| {
                    Error::weights(
                        &json_path,
                        format!("tensor '{}' is impossibly large", e.name),
                    )
                })?;
            index.push((gi, off, n.0, e));
            off = n.1;
        }
        groups.push(Shards {
            dir,
            json: &json_path,
            paths: &g.paths,
            total: off,
            shard_size: Default::default(),
        });
    }
    let fetch = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let &(gi, off, len, e) = index
            .iter()
            .find(|(_, _, _, e)| e.name == name)
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
        if let Some(q) = &e.quantization {
            let bad = |v: Option<f64>| v.is_some_and(|x| !x.is_finite());
            if bad(q.scale) || bad(q.min) {
                return Err(Error::weights(
                    &json_path,
                    format!("tensor '{name}': quantization scale or min is not finite"),
                ));
            }
        }
        let bytes = groups[gi].read(off, len)?;
        let values = decode(e, &bytes);
        crate::weights::check_finite(&json_path, name, &values)?;
        Ok(values)
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
