//! Training checkpoints: the network in wgstyle's model format (so a checkpoint stylizes
//! like any model) plus Adam's moments and the run's settings, so that `--resume`
//! continues exactly where the run stopped.
//!
//! Extra tensors: `adam.m.<layer>.<kernel|shift|scale>` and `adam.v.…` (float32). Extra
//! metadata: `wgstyle.train.iteration` (iterations done) and `wgstyle.train.options` (JSON
//! of [`TrainOptions`]).

use std::path::Path;

use crate::error::{Error, Result};
use crate::nets::transformer::{LayerWeights, TransformWeights};
use crate::train::TrainOptions;
use crate::weights::safetensors::{parse, read_file, to_f32, transform_from, Precision};

/// A training run's state between iterations.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The network.
    pub weights: TransformWeights,
    /// Adam's first moments, per layer (same shapes as the weights).
    pub m: Vec<LayerWeights>,
    /// Adam's second moments.
    pub v: Vec<LayerWeights>,
    /// Iterations done.
    pub iteration: u64,
    /// The settings of the run (data order, loss, architecture).
    pub options: TrainOptions,
}

const PARTS: [&str; 3] = ["kernel", "shift", "scale"];

fn part(l: &LayerWeights, i: usize) -> &[f32] {
    [&l.kernel, &l.shift, &l.scale][i]
}

impl Checkpoint {
    /// Writes the checkpoint atomically (replacing an earlier checkpoint at `path`).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_bytes_atomic(path, true, &self.to_bytes()?)
    }

    /// The checkpoint as a safetensors file's bytes (what [`Checkpoint::save`] writes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let layers = self.weights.arch.layers();
        let mut tensors = Vec::new();
        for (moment, states) in [("m", &self.m), ("v", &self.v)] {
            for (spec, st) in layers.iter().zip(states) {
                for (i, name) in PARTS.iter().enumerate() {
                    let v = part(st, i);
                    tensors.push((
                        format!("adam.{moment}.{}.{name}", spec.name),
                        vec![v.len()],
                        v,
                    ));
                }
            }
        }
        let options = serde_json::to_string(&self.options)
            .map_err(|e| Error::InvalidInput(format!("training options: {e}")))?;
        let iteration = self.iteration.to_string();
        let bytes = crate::weights::safetensors::transform_bytes_with(
            &self.weights,
            Precision::F32,
            &[
                ("wgstyle.train.iteration", &iteration),
                ("wgstyle.train.options", &options),
            ],
            &tensors,
        )?;
        Ok(bytes)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_file(path)?;
        let (st, meta) = parse(path, &bytes)?;
        let weights = transform_from(path, &st, &meta)?;
        let bad = |m: String| Error::weights(path, m);
        let iteration = meta
            .get("wgstyle.train.iteration")
            .ok_or_else(|| bad("not a training checkpoint (no 'wgstyle.train.iteration')".into()))?
            .parse()
            .map_err(|_| bad("'wgstyle.train.iteration' is not a number".into()))?;
        let options: TrainOptions = serde_json::from_str(
            meta.get("wgstyle.train.options")
                .ok_or_else(|| bad("no 'wgstyle.train.options' metadata".into()))?,
        )
        .map_err(|e| bad(format!("'wgstyle.train.options': {e}")))?;
        let mut moments = [Vec::new(), Vec::new()];
        for (k, moment) in ["m", "v"].iter().enumerate() {
            for spec in weights.arch.layers() {
                let mut l = LayerWeights::default();
                for (i, name) in PARTS.iter().enumerate() {
                    let n = format!("adam.{moment}.{}.{name}", spec.name);
                    let view = st
                        .tensor(&n)
                        .map_err(|_| bad(format!("tensor '{n}' is missing")))?;
                    let v = to_f32(path, &n, &view)?;
                    if v.len() != part(&weights.layers[&spec.name], i).len() {
                        return Err(bad(format!("tensor '{n}' has the wrong length")));
                    }
                    *[&mut l.kernel, &mut l.shift, &mut l.scale][i] = v;
                }
                moments[k].push(l);
            }
        }
        let [m, v] = moments;
        Ok(Checkpoint {
            weights,
            m,
            v,
            iteration,
            options,
        })
    }
}
