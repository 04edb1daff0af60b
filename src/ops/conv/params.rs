//! The convolution kernels' uniform block ([`Params`]) and its one constructor.

use crate::ops::conv::shape::{ConvMode, ConvShape};

/// The kernel's uniform block: the problem shape of one dispatch (`Params` in
/// `shaders/conv2d/common.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) n: u32,
    pub(crate) h: u32,
    pub(crate) w: u32,
    pub(crate) cin: u32,
    pub(crate) ho: u32,
    pub(crate) wo: u32,
    pub(crate) cout: u32,
    pub(crate) kh: u32,
    pub(crate) kw: u32,
    pub(crate) stride: u32,
    pub(crate) pad_t: i32,
    pub(crate) pad_l: i32,
    pub(crate) mode: u32,
    pub(crate) flags: u32,
    /// Row length of the kernel: `cout`, or `cout` padded to a multiple of 4 (see
    /// [`crate::ops::conv::dispatch::run_into`]).
    pub(crate) wcout: u32,
    pub(crate) _p: u32,
}

pub(crate) const MODE_ZERO: u32 = 0;
pub(crate) const MODE_REFLECT: u32 = 1;
pub(crate) const MODE_TRANSPOSED: u32 = 2;

/// `flags` bit: add the bias.
pub(crate) const FLAG_BIAS: u32 = 1;
/// `flags` bit: apply ReLU to the output.
pub(crate) const FLAG_RELU: u32 = 2;

impl Params {
    /// The problem `shape` with padding `(top, left)` (before the first input row and
    /// column; for transposed convolutions, cropped from the full output) and `flags`
    /// ([`FLAG_BIAS`], [`FLAG_RELU`]); the kernel's rows are `cout` long.
    pub(crate) fn new(shape: ConvShape, pad: (i32, i32), flags: u32) -> Params {
        Params {
            n: shape.n,
            h: shape.h,
            w: shape.w,
            cin: shape.cin,
            ho: shape.ho,
            wo: shape.wo,
            cout: shape.cout,
            kh: shape.kh,
            kw: shape.kw,
            stride: shape.stride,
            pad_t: pad.0,
            pad_l: pad.1,
            mode: match shape.mode {
                ConvMode::Zero => MODE_ZERO,
                ConvMode::Reflect => MODE_REFLECT,
                ConvMode::Transposed => MODE_TRANSPOSED,
            },
            flags,
            wcout: shape.cout,
            _p: 0,
        }
    }

    /// The `flags` word for a convolution with or without bias and ReLU.
    pub(crate) fn flags(bias: bool, relu: bool) -> u32 {
        (if bias { FLAG_BIAS } else { 0 }) | (if relu { FLAG_RELU } else { 0 })
    }
}
