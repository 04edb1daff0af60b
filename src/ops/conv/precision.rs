//! Arithmetic precision of the convolutions: f32 everywhere, or f16 tiles and products (with
//! f32 accumulation) on adapters with `SHADER_F16`. See [`Context::set_precision`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::ops::conv::algo::ConvAlgo;
use crate::ops::conv::tune::{self, Autotuner};

/// Precision of the convolution kernels ([`crate::ops::conv::ConvAlgo::is_half`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ConvPrecision {
    /// float32 throughout (the library's default).
    #[default]
    F32,
    /// f16 tiles and products, f16 partial sums over 16 terms added into f32 accumulators;
    /// tensors in memory stay f32. Needs `SHADER_F16`. Error against f32 on the fast-style
    /// networks: at most 2/255 of the 8-bit output (tested on every shipped style).
    F16,
    /// f16 if the autotune measures it faster than f32 by 10 % on one representative
    /// convolution, else f32; decided once per context (and cached), so that every convolution
    /// runs in the same precision (f32 when the adapter lacks `SHADER_F16`, or with autotune
    /// off).
    Auto,
}

impl ConvPrecision {
    /// `f32`, `f16` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            ConvPrecision::F32 => "f32",
            ConvPrecision::F16 => "f16",
            ConvPrecision::Auto => "auto",
        }
    }
}

impl ConvPrecision {
    /// Whether a convolution in this precision may use `tile` (`Auto`: while deciding).
    pub(crate) fn allows(self, algo: ConvAlgo) -> bool {
        match self {
            ConvPrecision::F32 => !algo.is_half(),
            ConvPrecision::F16 => algo.is_half(),
            ConvPrecision::Auto => true,
        }
    }
}

impl fmt::Display for ConvPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConvPrecision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(ConvPrecision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(ConvPrecision::F16),
            "auto" => Ok(ConvPrecision::Auto),
            _ => Err(Error::InvalidInput(format!(
                "unknown precision '{s}' (expected f32, f16 or auto)"
            ))),
        }
    }
}

impl Context {
    /// Whether the device can run the half-precision kernels (`SHADER_F16`).
    pub fn supports_f16(&self) -> bool {
        self.device()
            .features()
            .contains(wgpu::Features::SHADER_F16)
    }

    /// Sets the precision of every convolution recorded from now on (default
    /// [`ConvPrecision::F32`]). [`ConvPrecision::F16`] fails with [`Error::Unsupported`] on a device
    /// without `SHADER_F16`; [`ConvPrecision::Auto`] then means f32.
    pub fn set_precision(&self, precision: ConvPrecision) -> Result<()> {
        if precision == ConvPrecision::F16 && !self.supports_f16() {
            return Err(Error::Unsupported {
                adapter: self.adapter_info().name.clone(),
                what: "f16 shaders (wgpu feature SHADER_F16)".into(),
            });
        }
        *self.state::<Autotuner>().precision.lock().unwrap() = precision;
        Ok(())
    }

    /// The precision asked for with [`Context::set_precision`].
    pub fn precision(&self) -> ConvPrecision {
        *self.state::<Autotuner>().precision.lock().unwrap()
    }

    /// The precision convolutions actually use (`F32` or `F16`): [`Context::precision`], with
    /// `Auto` read as `F32` where there is no f16 support or no autotune to choose, else as the
    /// winner of one timing on [`crate::ops::conv::AUTO_DECIDER`] (run by the first call,
    /// then remembered).
    pub fn effective_precision(&self) -> ConvPrecision {
        match self.precision() {
            ConvPrecision::Auto if !self.supports_f16() || !self.autotune() => ConvPrecision::F32,
            ConvPrecision::Auto => tune::resolve_auto(self),
            p => p,
        }
    }
}
