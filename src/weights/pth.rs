//! PyTorch `.pth` checkpoints of pytorch/examples' `fast_neural_style` TransformerNet.
//!
//! Two container formats: the zip archive of `torch.save` since PyTorch 1.6
//! (`NAME/data.pkl` + one file per storage under `NAME/data/`, entries stored uncompressed),
//! and the legacy stream before it (five pickles: magic number, protocol, system info, the
//! state_dict, the list of storage keys; then each storage as an 8-byte element count and its
//! raw little-endian elements). The pickles go through the restricted
//! [`pickle`](super::pickle) reader, which never runs anything.
//!
//! Weights are mapped by key: `conv1.conv2d.weight` `[cout, cin, k, k]` (OIHW) and `.bias`,
//! `in1.weight` (scale) and `.bias` (shift), `res1.conv1`/`res1.in1` ... `deconv3`. The
//! `inN.running_mean`/`running_var` keys of 2017-era checkpoints are ignored.

use std::collections::BTreeMap;
use std::path::Path;

use super::pickle::{self, StorageType, TensorRef, Value};
use crate::error::{Error, Result};
use crate::nets::transformer::{Arch, LayerWeights, TransformWeights};

/// Most elements one tensor may have (the largest layer has 147,456).
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 26;

/// The legacy format's magic number (`0x1950a86a20f9469cfc6c`).
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A float tensor read from a file: shape and values.
pub type HostTensor = (Vec<usize>, Vec<f32>);

/// One layer in PyTorch's layout: conv weight OIHW, conv bias, instance-norm
/// `(scale, shift)` (none for the last layer).
#[derive(Clone, Debug)]
pub struct TorchLayer {
    /// `[cout, cin, k, k]`.
    pub weight: HostTensor,
    /// `[cout]`.
    pub bias: HostTensor,
    /// Instance-norm `(weight, bias)` = `(scale, shift)`, `[cout]` each.
    pub norm: Option<(HostTensor, HostTensor)>,
}

/// Builds the network from its 16 layers in order (conv1..conv3, res1 a/b..res5 a/b,
/// deconv1, deconv2, deconv3), checking every shape.
pub fn assemble(layers: Vec<TorchLayer>) -> std::result::Result<TransformWeights, String> {
    if layers.len() != 16 {
        return Err(format!("{} convolution layers, expected 16", layers.len()));
    }
    let width = layers[0].weight.0.first().copied().unwrap_or(0);
    let arch = Arch {
        width,
        ..Arch::PYTORCH_EXAMPLES
    };
    let mut out = BTreeMap::new();
    for (i, (spec, l)) in arch.layers().into_iter().zip(layers).enumerate() {
        let want = [spec.cout, spec.cin, spec.k, spec.k];
        if l.weight.0 != want {
            return Err(format!(
                "layer {} ({}): weight shape {:?}, expected {want:?}",
                i + 1,
                spec.name,
                l.weight.0
            ));
        }
        let vec_of = |what: &str, t: HostTensor| {
            if t.0 != [spec.cout] {
                return Err(format!(
                    "layer {} ({}): {what} shape {:?}, expected [{}]",
                    i + 1,
                    spec.name,
                    t.0,
                    spec.cout
                ));
            }
            Ok(t.1)
        };
        // OIHW -> HWIO.
        let (k, ci, co) = (spec.k, spec.cin, spec.cout);
        let mut kernel = vec![0.0; l.weight.1.len()];
        for o in 0..co {
            for c in 0..ci {
                for y in 0..k {
                    for x in 0..k {
                        kernel[((y * k + x) * ci + c) * co + o] =
                            l.weight.1[((o * ci + c) * k + y) * k + x];
                    }
                }
            }
        }
        let (scale, shift) = match (l.norm, arch.has_norm(i)) {
            (Some((s, b)), true) => (vec_of("norm scale", s)?, vec_of("norm shift", b)?),
            (None, false) => (Vec::new(), Vec::new()),
            (None, true) => return Err(format!("layer {} has no instance norm", spec.name)),
            (Some(_), false) => return Err("the last layer has an instance norm".into()),
        };
        out.insert(
            spec.name.clone(),
            LayerWeights {
                kernel,
                shift,
                scale,
                bias: vec_of("bias", l.bias)?,
            },
        );
    }
    let w = TransformWeights { arch, layers: out };
    w.validate()?;
    Ok(w)
}

/// The state_dict key prefixes of layer `i`: (conv, norm).
fn keys(i: usize) -> (String, Option<String>) {
    match i {
        0..=2 => (format!("conv{}", i + 1), Some(format!("in{}", i + 1))),
        3..=12 => {
            let (r, p) = ((i - 3) / 2 + 1, (i - 3) % 2 + 1);
            (format!("res{r}.conv{p}"), Some(format!("res{r}.in{p}")))
        }
        13 | 14 => (format!("deconv{}", i - 12), Some(format!("in{}", i - 9))),
        _ => ("deconv3".into(), None),
    }
}

/// Builds the network from a state_dict's float tensors (unknown keys are an error,
/// batch-norm style running statistics are ignored).
pub fn from_state_dict(
    mut t: BTreeMap<String, HostTensor>,
) -> std::result::Result<TransformWeights, String> {
    t.retain(|k, _| {
        !(k.ends_with(".running_mean")
            || k.ends_with(".running_var")
            || k.ends_with(".num_batches_tracked"))
    });
    let mut layers = Vec::new();
    for i in 0..16 {
        let (conv, norm) = keys(i);
        let mut take = |k: String| t.remove(&k).ok_or(format!("tensor '{k}' is missing"));
        let weight = take(format!("{conv}.conv2d.weight"))?;
        let bias = take(format!("{conv}.conv2d.bias"))?;
        let norm = match norm {
            Some(n) => Some((take(format!("{n}.weight"))?, take(format!("{n}.bias"))?)),
            None => None,
        };
        layers.push(TorchLayer { weight, bias, norm });
    }
    if let Some(k) = t.keys().next() {
        return Err(format!(
            "unexpected tensor '{k}': not pytorch/examples' TransformerNet"
        ));
    }
    assemble(layers)
}

/// Loads a `.pth` file (zip or legacy).
pub fn load(path: &Path) -> Result<TransformWeights> {
    let bytes = super::safetensors::read_file(path)?;
    let (w, _) = from_bytes(&bytes).map_err(|m| Error::weights(path, m))?;
    Ok(w)
}

/// Which container a `.pth` file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PthFormat {
    /// The zip archive (PyTorch 1.6 and later).
    Zip,
    /// The legacy pickle stream.
    Legacy,
}

impl PthFormat {
    /// The name recorded as `wgstyle.source_format`.
    pub fn name(self) -> &'static str {
        match self {
            PthFormat::Zip => "pth-zip",
            PthFormat::Legacy => "pth-legacy",
        }
    }
}

/// Parses a `.pth` file's bytes.
pub fn from_bytes(b: &[u8]) -> std::result::Result<(TransformWeights, PthFormat), String> {
    if b.starts_with(b"PK\x03\x04") {
        Ok((from_state_dict(read_zip(b)?)?, PthFormat::Zip))
    } else if b.first() == Some(&0x80) {
        Ok((from_state_dict(read_legacy(b)?)?, PthFormat::Legacy))
    } else {
        Err("not a PyTorch checkpoint (neither a zip archive nor a pickle)".into())
    }
}

/// The state_dict pickle's tensors, by key.
fn state_dict(v: &Value) -> std::result::Result<Vec<(String, TensorRef)>, String> {
    let Value::Dict(d) = v else {
        return Err("the checkpoint is not a state_dict (a dict of tensors)".into());
    };
    let mut out = Vec::new();
    for (k, v) in d {
        let Value::Str(k) = &**k else {
            return Err("a state_dict key is not a string".into());
        };
        let Value::Tensor(t) = &**v else {
            return Err(format!("'{k}' is not a tensor"));
        };
        out.push((k.clone(), t.clone()));
    }
    Ok(out)
}

/// The values of tensor `t` from its storage's bytes (`numel` little-endian elements).
fn materialize(t: &TensorRef, data: &[u8]) -> std::result::Result<HostTensor, String> {
    let s = &t.storage;
    let esize = s.dtype.size() as u64;
    if s.numel.checked_mul(esize) != Some(data.len() as u64) {
        return Err(format!(
            "storage '{}' has {} bytes, expected {} elements of {esize}",
            s.key,
            data.len(),
            s.numel
        ));
    }
    let mut n: u64 = 1;
    let mut last = t.offset;
    for (&d, &st) in t.size.iter().zip(&t.stride) {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
            .ok_or_else(|| format!("tensor of shape {:?} is too large", t.size))?;
        if d > 0 {
            last = (d - 1)
                .checked_mul(st)
                .and_then(|x| x.checked_add(last))
                .ok_or("tensor strides overflow")?;
        }
    }
    if n > 0 && last >= s.numel {
        return Err(format!(
            "tensor of shape {:?} reads past its storage '{}'",
            t.size, s.key
        ));
    }
    let get = |i: u64| -> f32 {
        let o = (i * esize) as usize;
        let e = &data[o..o + esize as usize];
        match s.dtype {
            StorageType::Float => f32::from_le_bytes(e.try_into().unwrap()),
            StorageType::Double => f64::from_le_bytes(e.try_into().unwrap()) as f32,
            StorageType::Half => half::f16::from_le_bytes(e.try_into().unwrap()).to_f32(),
            StorageType::BFloat16 => half::bf16::from_le_bytes(e.try_into().unwrap()).to_f32(),
        }
    };
    let mut v = Vec::with_capacity(n as usize);
    let mut idx = vec![0u64; t.size.len()];
    for _ in 0..n {
        let off: u64 = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>();
        v.push(get(off));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok((t.size.iter().map(|&d| d as usize).collect(), v))
}

fn le(b: &[u8], at: usize, n: usize) -> std::result::Result<u64, String> {
    let s = at
        .checked_add(n)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| format!("file truncated at byte {at}"))?;
    let mut w = [0u8; 8];
    w[..n].copy_from_slice(s);
    Ok(u64::from_le_bytes(w))
}

/// Whether `b` has the 4-byte signature `s` at `at`.
fn sig(b: &[u8], at: usize, s: &[u8; 4]) -> bool {
    at.checked_add(4).and_then(|e| b.get(at..e)) == Some(&s[..])
}

/// The stored (uncompressed) entries of a zip archive, by name, CRC-checked.
pub fn zip_entries(b: &[u8]) -> std::result::Result<BTreeMap<String, &[u8]>, String> {
    // End of central directory: the last signature within 64 KiB of comment.
    let lo = b.len().saturating_sub(22 + 65535);
    let eocd = (lo..b.len().saturating_sub(21))
        .rev()
        .find(|&i| b[i..i + 4] == *b"PK\x05\x06")
        .ok_or("zip archive truncated (no end of central directory)")?;
    let (mut count, mut cd) = (le(b, eocd + 10, 2)?, le(b, eocd + 16, 4)?);
    if count == 0xffff || cd == 0xffff_ffff {
        // Zip64: the locator just before points at the zip64 end record.
        let loc = eocd.checked_sub(20).ok_or("zip64 locator missing")?;
        if !sig(b, loc, b"PK\x06\x07") {
            return Err("zip64 locator missing".into());
        }
        let z = le(b, loc + 8, 8)? as usize;
        if !sig(b, z, b"PK\x06\x06") {
            return Err("zip64 end record missing".into());
        }
        (count, cd) = (le(b, z + 32, 8)?, le(b, z + 48, 8)?);
    }
    let mut out = BTreeMap::new();
    let mut p = cd as usize;
    for _ in 0..count {
        if !sig(b, p, b"PK\x01\x02") {
            return Err(format!("zip central directory damaged at byte {p}"));
        }
        let method = le(b, p + 10, 2)?;
        let crc = le(b, p + 16, 4)? as u32;
        let mut csize = le(b, p + 20, 4)?;
        let mut usize_ = le(b, p + 24, 4)?;
        let (nlen, xlen, clen) = (
            le(b, p + 28, 2)? as usize,
            le(b, p + 30, 2)? as usize,
            le(b, p + 32, 2)? as usize,
        );
        let mut off = le(b, p + 42, 4)?;
        let name = b
            .get(p + 46..p + 46 + nlen)
            .ok_or("zip truncated in a name")?;
        // (p + 46 + nlen fits: `le` above read p + 42.)
        let name = String::from_utf8_lossy(name).into_owned();
        // Zip64 extra field: the 0xffffffff values in order.
        let mut x = p + 46 + nlen;
        let xend = x + xlen;
        while x + 4 <= xend {
            let (id, n) = (le(b, x, 2)?, le(b, x + 2, 2)? as usize);
            if id == 1 {
                let mut q = x + 4;
                for v in [&mut usize_, &mut csize, &mut off] {
                    if *v == 0xffff_ffff && q + 8 <= x + 4 + n {
                        *v = le(b, q, 8)?;
                        q += 8;
                    }
                }
            }
            x += 4 + n;
        }
        p = xend + clen;
        if method != 0 || csize != usize_ {
            return Err(format!(
                "zip entry '{name}' is compressed (method {method}); torch.save stores entries"
            ));
        }
        let off = off as usize;
        if !sig(b, off, b"PK\x03\x04") {
            return Err(format!("zip entry '{name}' has no local header"));
        }
        let start = off + 30 + le(b, off + 26, 2)? as usize + le(b, off + 28, 2)? as usize;
        let data = start
            .checked_add(csize as usize)
            .and_then(|end| b.get(start..end))
            .ok_or_else(|| format!("zip entry '{name}' is truncated"))?;
        if crc32fast::hash(data) != crc {
            return Err(format!("zip entry '{name}' is damaged (CRC mismatch)"));
        }
        out.insert(name, data);
    }
    Ok(out)
}

/// Tensors of a zip checkpoint.
fn read_zip(b: &[u8]) -> std::result::Result<BTreeMap<String, HostTensor>, String> {
    let entries = zip_entries(b)?;
    let pkl = entries
        .keys()
        .find(|k| k.ends_with("/data.pkl") && k.matches('/').count() == 1)
        .ok_or("zip archive has no data.pkl: not a torch.save checkpoint")?
        .clone();
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    let (v, _) = pickle::load(entries[&pkl]).map_err(|e| format!("data.pkl: {e}"))?;
    let mut out = BTreeMap::new();
    for (k, t) in state_dict(&v)? {
        let name = format!("{prefix}data/{}", t.storage.key);
        let data = entries
            .get(&name)
            .ok_or_else(|| format!("storage '{name}' of '{k}' is missing"))?;
        // The file may hold more than the tensor uses (a shared storage): the storage's
        // declared elements must fit.
        let need = (t.storage.numel)
            .checked_mul(t.storage.dtype.size() as u64)
            .filter(|&n| n <= data.len() as u64)
            .ok_or_else(|| format!("storage '{name}' is shorter than declared"))?;
        let v = materialize(&t, &data[..need as usize]).map_err(|e| format!("'{k}': {e}"))?;
        out.insert(k, v);
    }
    Ok(out)
}

/// Tensors of a legacy (pre-1.6) checkpoint.
fn read_legacy(b: &[u8]) -> std::result::Result<BTreeMap<String, HostTensor>, String> {
    let mut pos = 0;
    let mut next = |what: &str| -> std::result::Result<_, String> {
        let (v, n) = pickle::load(&b[pos..]).map_err(|e| format!("{what}: {e}"))?;
        pos += n;
        Ok(v)
    };
    let magic = next("magic number")?;
    if *magic != Value::Long(LEGACY_MAGIC.to_vec()) {
        return Err("not a PyTorch checkpoint (wrong magic number)".into());
    }
    next("protocol version")?;
    next("system info")?;
    let sd = next("state_dict")?;
    let keys = next("storage keys")?;
    let Value::List(keys) = &*keys else {
        return Err("storage keys are not a list".into());
    };
    let tensors = state_dict(&sd)?;
    let mut storages: BTreeMap<String, &[u8]> = BTreeMap::new();
    for k in keys {
        let Value::Str(k) = &**k else {
            return Err("a storage key is not a string".into());
        };
        let t = tensors
            .iter()
            .find(|(_, t)| t.storage.key == *k)
            .ok_or_else(|| format!("storage '{k}' belongs to no tensor"))?;
        let n = le(b, pos, 8).map_err(|_| format!("storage '{k}' is truncated"))?;
        let bytes = n
            .checked_mul(t.1.storage.dtype.size() as u64)
            .ok_or("storage size overflows")? as usize;
        let data = (pos + 8)
            .checked_add(bytes)
            .and_then(|end| b.get(pos + 8..end))
            .ok_or_else(|| format!("storage '{k}' is truncated"))?;
        storages.insert(k.clone(), data);
        pos += 8 + bytes;
    }
    let mut out = BTreeMap::new();
    for (k, t) in tensors {
        let data = storages
            .get(&t.storage.key)
            .ok_or_else(|| format!("storage of '{k}' is missing"))?;
        out.insert(
            k.clone(),
            materialize(&t, data).map_err(|e| format!("'{k}': {e}"))?,
        );
    }
    Ok(out)
}
