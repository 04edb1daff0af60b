//! The shape of a convolution as the autotune keys it ([`crate::ops::conv::tune`]), and the
//! crops it times: the proxy (at most [`MAX_PROXY_PIXELS`] output pixels) and the probe.

use serde::{Deserialize, Serialize};

use crate::ops::conv::params::{Params, MODE_REFLECT, MODE_TRANSPOSED};

/// The largest number of output pixels (`n · ho · wo`) a tuning run computes.
pub const MAX_PROXY_PIXELS: u32 = 128 * 128;

/// Kind of convolution, as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvMode {
    /// Zero padding (TensorFlow SAME/VALID, explicit windows).
    Zero,
    /// Reflection padding.
    Reflect,
    /// Transposed convolution.
    Transposed,
}

/// The shape of one convolution, as the autotune keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConvShape {
    /// Batch.
    pub n: u32,
    /// Input rows.
    pub h: u32,
    /// Input columns.
    pub w: u32,
    /// Input channels.
    pub cin: u32,
    /// Output rows.
    pub ho: u32,
    /// Output columns.
    pub wo: u32,
    /// Output channels.
    pub cout: u32,
    /// Kernel rows.
    pub kh: u32,
    /// Kernel columns.
    pub kw: u32,
    /// Stride.
    pub stride: u32,
    /// Padding mode or transposed.
    pub mode: ConvMode,
}

impl ConvShape {
    pub(crate) fn of(p: &Params) -> Self {
        ConvShape {
            n: p.n,
            h: p.h,
            w: p.w,
            cin: p.cin,
            ho: p.ho,
            wo: p.wo,
            cout: p.cout,
            kh: p.kh,
            kw: p.kw,
            stride: p.stride,
            mode: match p.mode {
                MODE_TRANSPOSED => ConvMode::Transposed,
                MODE_REFLECT => ConvMode::Reflect,
                _ => ConvMode::Zero,
            },
        }
    }

    /// The shape a tuning run actually times: the top-left crop of at most 128×128 output
    /// pixels (and as many images as fit in [`MAX_PROXY_PIXELS`]), with the input it reads.
    /// Shapes that small are their own proxy.
    pub fn proxy(self) -> ConvShape {
        self.crop(128, 128, MAX_PROXY_PIXELS)
    }

    /// A quick first look for the autotune: a quarter of the rows and columns of this shape,
    /// or `None` when it has fewer than 64×64 output pixels.
    pub fn probe(self) -> Option<ConvShape> {
        self.part(4)
    }

    /// The top-left `1/div` of the rows and columns (`None` when that has fewer than 16×16
    /// output pixels).
    pub(crate) fn part(self, div: u32) -> Option<ConvShape> {
        let pixels = self.n as u64 * self.ho as u64 * self.wo as u64;
        let div = div.max(1) as u64;
        (pixels >= 256 * div * div).then(|| {
            self.crop(
                self.ho.div_ceil(div as u32),
                self.wo.div_ceil(div as u32),
                (pixels / (div * div)).min(u32::MAX as u64) as u32,
            )
        })
    }

    /// The top-left crop of at most `max_ho × max_wo` output pixels per image and
    /// `max_pixels` in all (at least one image), with the input rows and columns it reads.
    fn crop(self, max_ho: u32, max_wo: u32, max_pixels: u32) -> ConvShape {
        let ho = self.ho.min(max_ho).max(1);
        let wo = self.wo.min(max_wo).max(1);
        let n = self.n.min(max_pixels / (ho * wo)).max(1);
        if (n, ho, wo) == (self.n, self.ho, self.wo) {
            return self;
        }
        let span = |o: u32, k: u32| match self.mode {
            ConvMode::Transposed => o.div_ceil(self.stride.max(1)) + k,
            _ => (o - 1) * self.stride + k,
        };
        ConvShape {
            n,
            h: self.h.min(span(ho, self.kh)).max(1),
            w: self.w.min(span(wo, self.kw)).max(1),
            ho,
            wo,
            ..self
        }
    }

    /// Kernel parameters for a run of this shape (TensorFlow-style centred padding).
    pub(crate) fn params(self) -> Params {
        let pad = |n: u32, k: u32, o: u32| -> i32 {
            let total = match self.mode {
                ConvMode::Transposed => ((n.max(1) - 1) * self.stride + k).saturating_sub(o),
                _ => ((o.max(1) - 1) * self.stride + k).saturating_sub(n),
            };
            (total / 2) as i32
        };
        let shape = ConvShape {
            stride: self.stride.max(1),
            ..self
        };
        Params::new(
            shape,
            (pad(self.h, self.kh, self.ho), pad(self.w, self.kw, self.wo)),
            0,
        )
    }
}
