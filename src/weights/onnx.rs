//! ONNX files of pytorch/examples' TransformerNet (the ONNX model zoo's style networks).
//!
//! The protobuf is decoded by `prost` into hand-written structs for the part of `onnx.proto`
//! needed here (no code generation at build time). The graph must be TransformerNet exactly:
//! in the zoo's form (opset 8/9: `Pad` with `mode=reflect` and `pads` attribute, `Conv`,
//! `InstanceNormalization`, `Relu`, `Add`, `Upsample` with constant scales) or the current
//! exporter's (opset 11 and later: `Resize`, and `Pad` whose `pads` come from a small
//! constant subgraph, which is folded here). Anything else is refused, naming the first node
//! that does not fit. The fixed input size of the zoo's files is ignored: the network runs at
//! any size.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;

pub use super::onnx_proto::*;

use super::pth::{assemble, HostTensor, TorchLayer, MAX_TENSOR_ELEMENTS};
use crate::error::{Error, Result};
use crate::nets::transformer::{Arch, LayerKind, TransformWeights};

/// A constant: shape and values (integers kept exact in `f64`).
#[derive(Clone, Debug, PartialEq)]
struct Const {
    dims: Vec<usize>,
    v: Vec<f64>,
    int: bool,
}

fn checked_len(dims: &[usize]) -> std::result::Result<usize, String> {
    dims.iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
        .map(|n| n as usize)
        .ok_or_else(|| format!("tensor of shape {dims:?} is too large"))
}

fn tensor(t: &TensorProto) -> std::result::Result<Const, String> {
    let name = &t.name;
    if t.data_location == 1 {
        return Err(format!("tensor '{name}' has external data (not supported)"));
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor '{name}' has dims {:?}", t.dims)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let n = checked_len(&dims)?;
    let raw = |size: usize| -> std::result::Result<Vec<&[u8]>, String> {
        if t.raw_data.len() != n * size {
            return Err(format!(
                "tensor '{name}' has {} bytes of data, shape {dims:?} needs {}",
                t.raw_data.len(),
                n * size
            ));
        }
        Ok(t.raw_data.chunks_exact(size).collect())
    };
    let has_raw = !t.raw_data.is_empty() || n == 0;
    let (v, int): (Vec<f64>, bool) = match t.data_type {
        1 if has_raw => (
            raw(4)?
                .iter()
                .map(|c| f32::from_le_bytes((*c).try_into().unwrap()) as f64)
                .collect(),
            false,
        ),
        1 => (t.float_data.iter().map(|&x| x as f64).collect(), false),
        11 if has_raw => (
            raw(8)?
                .iter()
                .map(|c| f64::from_le_bytes((*c).try_into().unwrap()))
                .collect(),
            false,
        ),
        11 => (t.double_data.clone(), false),
        7 if has_raw => (
            raw(8)?
                .iter()
                .map(|c| i64::from_le_bytes((*c).try_into().unwrap()) as f64)
                .collect(),
            true,
        ),
        7 => (t.int64_data.iter().map(|&x| x as f64).collect(), true),
        6 if has_raw => (
            raw(4)?
                .iter()
                .map(|c| i32::from_le_bytes((*c).try_into().unwrap()) as f64)
                .collect(),
            true,
        ),
        6 => (t.int32_data.iter().map(|&x| x as f64).collect(), true),
        d => {
            return Err(format!(
                "tensor '{name}' has data type {d} (not float or integer)"
            ))
        }
    };
    if v.len() != n {
        return Err(format!(
            "tensor '{name}' has {} values, shape {dims:?} needs {n}",
            v.len()
        ));
    }
    Ok(Const { dims, v, int })
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn attr_ints(n: &NodeProto, name: &str) -> Vec<i64> {
    attr(n, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn attr_str(n: &NodeProto, name: &str) -> String {
    attr(n, name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
        .unwrap_or_default()
}

/// Folds a node of the constant subgraphs, or `None` when it is not one.
fn fold(n: &NodeProto, c: &HashMap<String, Const>) -> Option<std::result::Result<Const, String>> {
    let input = |i: usize| {
        n.input
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|s| c.get(s))
    };
    let ints = |k: &Const| k.v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    let r = match n.op_type.as_str() {
        "Constant" => {
            let t = attr(n, "value").and_then(|a| a.t.as_ref());
            Some(
                t.ok_or("Constant without a tensor value".into())
                    .and_then(tensor),
            )
        }
        "Identity" => input(0).cloned().map(Ok),
        "Cast" => input(0).map(|k| {
            let int = matches!(attr(n, "to").map(|a| a.i), Some(6 | 7));
            let v = if int {
                k.v.iter().map(|x| x.trunc()).collect()
            } else {
                k.v.clone()
            };
            Ok(Const {
                v,
                int,
                ..k.clone()
            })
        }),
        "ConstantOfShape" => input(0).map(|k| {
            let dims: Vec<usize> = ints(k).iter().map(|&d| d.max(0) as usize).collect();
            let val = attr(n, "value").and_then(|a| a.t.as_ref()).map(tensor);
            let (x, int) = match val {
                Some(Ok(t)) if t.v.len() == 1 => (t.v[0], t.int),
                Some(Err(e)) => return Err(e),
                Some(_) => return Err("ConstantOfShape value is not one element".into()),
                None => (0.0, false),
            };
            Ok(Const {
                v: vec![x; checked_len(&dims)?],
                dims,
                int,
            })
        }),
        "Concat" if n.input.iter().all(|s| c.contains_key(s)) => {
            let parts: Vec<&Const> = n.input.iter().map(|s| &c[s]).collect();
            if parts.iter().any(|p| p.dims.len() != 1) {
                return Some(Err("Concat of constants other than vectors".into()));
            }
            let v: Vec<f64> = parts.iter().flat_map(|p| p.v.iter().copied()).collect();
            Some(Ok(Const {
                dims: vec![v.len()],
                int: parts.iter().all(|p| p.int),
                v,
            }))
        }
        "Reshape" => match (input(0), input(1)) {
            (Some(k), Some(s)) => Some(reshape(k, &ints(s))),
            _ => None,
        },
        "Transpose" => input(0).map(|k| {
            let perm = attr_ints(n, "perm");
            match (k.dims.as_slice(), perm.as_slice()) {
                ([r, cols], [1, 0]) => {
                    let (r, cols) = (*r, *cols);
                    let v = (0..r * cols).map(|i| k.v[(i % r) * cols + i / r]).collect();
                    Ok(Const {
                        dims: vec![cols, r],
                        v,
                        int: k.int,
                    })
                }
                ([_, _], [0, 1]) | ([_], [] | [0]) => Ok(k.clone()),
                _ => Err(format!("Transpose {perm:?} of a {:?} constant", k.dims)),
            }
        }),
        "Slice" => match (input(0), input(1), input(2)) {
            (Some(k), Some(st), Some(en)) => Some(slice(
                k,
                &ints(st),
                &ints(en),
                input(3).map(ints),
                input(4).map(ints),
            )),
            _ => None,
        },
        _ => None,
    };
    r
}

fn reshape(k: &Const, shape: &[i64]) -> std::result::Result<Const, String> {
    let n = k.v.len();
    let known: usize = shape
        .iter()
        .filter(|&&d| d > 0)
        .map(|&d| d as usize)
        .product();
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| match d {
            -1 if known > 0 => n / known,
            d if d > 0 => d as usize,
            _ => usize::MAX,
        })
        .collect();
    if dims.iter().product::<usize>() != n || dims.contains(&usize::MAX) {
        return Err(format!("Reshape of {n} values to {shape:?}"));
    }
    Ok(Const { dims, ..k.clone() })
}

/// Slice of a 1-D or 2-D constant along its first axis (the exporter's pads reversal).
fn slice(
    k: &Const,
    starts: &[i64],
    ends: &[i64],
    axes: Option<Vec<i64>>,
    steps: Option<Vec<i64>>,
) -> std::result::Result<Const, String> {
    let axes = axes.unwrap_or(vec![0]);
    let steps = steps.unwrap_or(vec![1]);
    if k.dims.is_empty() || k.dims.len() > 2 || axes != [0] || starts.len() != 1 {
        return Err(format!("Slice of a {:?} constant on axes {axes:?}", k.dims));
    }
    let (n, row) = (k.dims[0] as i64, k.dims.get(1).copied().unwrap_or(1));
    let step = *steps.first().ok_or("Slice without a step")?;
    if step == 0 || ends.len() != 1 {
        return Err("Slice step 0".into());
    }
    let clampi = |x: i64, lo: i64, hi: i64| {
        let x = if x < 0 { x.saturating_add(n) } else { x };
        x.clamp(lo, hi)
    };
    let (mut i, mut rows) = (Vec::new(), 0);
    if step > 0 {
        let (s, e) = (clampi(starts[0], 0, n), clampi(ends[0], 0, n));
        let mut j = s;
        while j < e {
            i.push(j as usize);
            j += step;
        }
    } else {
        let (s, e) = (clampi(starts[0], -1, n - 1), clampi(ends[0], -1, n - 1));
        let mut j = s;
        while j > e {
            i.push(j as usize);
            j += step;
        }
    }
    let mut v = Vec::new();
    for &r in &i {
        v.extend_from_slice(&k.v[r * row..(r + 1) * row]);
        rows += 1;
    }
    let mut dims = k.dims.clone();
    dims[0] = rows;
    Ok(Const {
        dims,
        v,
        int: k.int,
    })
}

fn host(c: &Const) -> HostTensor {
    (c.dims.clone(), c.v.iter().map(|&x| x as f32).collect())
}

/// Loads an `.onnx` file.
pub fn load(path: &Path) -> Result<TransformWeights> {
    let bytes = super::safetensors::read_file(path)?;
    from_bytes(&bytes).map_err(|m| Error::weights(path, m))
}

/// Recognises TransformerNet in an ONNX model's bytes and takes its weights.
pub fn from_bytes(b: &[u8]) -> std::result::Result<TransformWeights, String> {
    let m = ModelProto::decode(b).map_err(|e| format!("not a valid ONNX file: {e}"))?;
    let g = m.graph.ok_or("the ONNX file has no graph")?;
    let mut consts = HashMap::new();
    for t in &g.initializer {
        consts.insert(t.name.clone(), tensor(t)?);
    }
    let mut inputs = g.input.iter().filter(|i| !consts.contains_key(&i.name));
    let mut cur = inputs.next().ok_or("the graph has no input")?.name.clone();
    if let Some(extra) = inputs.next() {
        return Err(format!("the graph has a second input '{}'", extra.name));
    }
    // The network's nodes, with constant subgraphs folded away.
    let mut main = Vec::new();
    for n in &g.node {
        match fold(n, &consts) {
            Some(r) => {
                let c = r.map_err(|e| node_err(n, &e))?;
                let out = n.output.first().ok_or_else(|| node_err(n, "no output"))?;
                consts.insert(out.clone(), c);
            }
            None => main.push(n),
        }
    }
    let arch = Arch::PYTORCH_EXAMPLES;
    let specs = arch.layers();
    let mut nodes = main.into_iter().peekable();
    let mut layers = Vec::new();
    let mut block_in = cur.clone();
    for (i, spec) in specs.iter().enumerate() {
        let get = |n: &NodeProto, j: usize| -> std::result::Result<&Const, String> {
            n.input
                .get(j)
                .and_then(|s| consts.get(s))
                .ok_or_else(|| node_err(n, &format!("input {j} is not a constant")))
        };
        if spec.kind == LayerKind::Up {
            let n = nodes
                .peek()
                .copied()
                .ok_or("the graph ends before upsampling")?;
            let n = expect(
                &mut nodes,
                &spec.name,
                if n.op_type == "Resize" {
                    "Resize"
                } else {
                    "Upsample"
                },
                &cur,
            )?;
            let scales = match attr(n, "scales") {
                Some(a) if n.op_type == "Upsample" && n.input.len() < 2 => a.floats.clone(),
                _ => {
                    let j = if n.op_type == "Resize" { 2 } else { 1 };
                    get(n, j)?.v.iter().map(|&x| x as f32).collect()
                }
            };
            let mode = attr_str(n, "mode");
            if scales != [1.0, 1.0, 2.0, 2.0] || !matches!(mode.as_str(), "nearest" | "") {
                return Err(node_err(
                    n,
                    &format!("expected nearest x2 upsampling, got mode '{mode}' scales {scales:?}"),
                ));
            }
            cur = out0(n)?;
        }
        let p = (spec.k / 2) as i64;
        let n = expect(&mut nodes, &spec.name, "Pad", &cur)?;
        let pads = if n.input.len() >= 2 {
            get(n, 1)?.v.iter().map(|&x| x as i64).collect()
        } else {
            attr_ints(n, "pads")
        };
        if attr_str(n, "mode") != "reflect" || pads != [0, 0, p, p, 0, 0, p, p] {
            return Err(node_err(
                n,
                &format!("expected reflect padding {p}, got {pads:?}"),
            ));
        }
        cur = out0(n)?;
        let n = expect(&mut nodes, &spec.name, "Conv", &cur)?;
        let stride = match spec.kind {
            LayerKind::Conv { stride } => stride as i64,
            LayerKind::Up => 1,
        };
        let strides = attr_ints(n, "strides");
        let zero_pads = attr_ints(n, "pads").iter().all(|&x| x == 0);
        let group = attr(n, "group").map_or(1, |a| a.i);
        if !(strides.is_empty() && stride == 1 || strides == [stride, stride])
            || !zero_pads
            || group != 1
            || attr_ints(n, "dilations").iter().any(|&d| d != 1)
        {
            return Err(node_err(
                n,
                &format!("expected a stride-{stride} convolution"),
            ));
        }
        let (weight, bias) = (host(get(n, 1)?), host(get(n, 2)?));
        cur = out0(n)?;
        let mut norm = None;
        if arch.has_norm(i) {
            let n = expect(&mut nodes, &spec.name, "InstanceNormalization", &cur)?;
            let eps = attr(n, "epsilon").map_or(1e-5, |a| a.f);
            if (eps - arch.eps).abs() > 1e-7 {
                return Err(node_err(n, &format!("epsilon {eps}, expected 1e-5")));
            }
            norm = Some((host(get(n, 1)?), host(get(n, 2)?)));
            cur = out0(n)?;
        }
        let res_b = (3..=12).contains(&i) && i % 2 == 0;
        if res_b {
            let n = nodes.next().ok_or("the graph ends before a residual Add")?;
            let mut ins = n.input.clone();
            ins.sort();
            let mut want = vec![cur.clone(), block_in.clone()];
            want.sort();
            if n.op_type != "Add" || ins != want {
                return Err(node_err(n, "expected the residual block's Add"));
            }
            cur = out0(n)?;
        } else if i != 15 {
            cur = out0(expect(&mut nodes, &spec.name, "Relu", &cur)?)?;
        }
        if i == 2 || res_b {
            block_in = cur.clone();
        }
        layers.push(TorchLayer { weight, bias, norm });
    }
    if let Some(n) = nodes.next() {
        return Err(node_err(
            n,
            "extra node after the network's last convolution",
        ));
    }
    if g.output.len() != 1 || g.output[0].name != cur {
        return Err("the graph's output is not the last convolution's".into());
    }
    assemble(layers)
}

/// The next node, which must be `op` reading `cur`.
fn expect<'a>(
    nodes: &mut impl Iterator<Item = &'a NodeProto>,
    layer: &str,
    op: &str,
    cur: &str,
) -> std::result::Result<&'a NodeProto, String> {
    let n = nodes
        .next()
        .ok_or_else(|| format!("the graph ends before {layer}'s {op}"))?;
    if n.op_type != op || n.input.first().map(String::as_str) != Some(cur) {
        return Err(node_err(
            n,
            &format!("expected {op} of '{cur}' for layer {layer}"),
        ));
    }
    Ok(n)
}

fn out0(n: &NodeProto) -> std::result::Result<String, String> {
    n.output
        .first()
        .cloned()
        .ok_or_else(|| node_err(n, "no output"))
}

fn node_err(n: &NodeProto, msg: &str) -> String {
    format!("node '{}' ({}): {msg}", n.name, n.op_type)
}
