//! The convolution's kernel variants as one enum, [`ConvAlgo`]: which algorithm, its
//! workgroup geometry and, where it has a choice, its precision. Names round-trip through
//! [`std::fmt::Display`] and [`std::str::FromStr`] (as in autotune caches and reports).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::kernels::{Kernel, Shader};
use crate::ops::conv::dispatch::DirectBody;
use crate::ops::conv::shaders::conv2d_build;
use crate::ops::conv::shape::ConvShape;
use crate::ops::conv::winograd;
use crate::ops::conv::winograd::WINOGRAD;
use crate::ops::crop::CROP;
use crate::ops::gemm::GemmKernel;

/// Fragment size of the cooperative-matrix kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoopSize {
    /// 8×8×8 fragments.
    S8,
    /// 16×16×16 fragments.
    S16,
}

impl CoopSize {
    /// The fragment side (8 or 16).
    pub const fn size(self) -> u32 {
        match self {
            CoopSize::S8 => 8,
            CoopSize::S16 => 16,
        }
    }
}

/// A variant of the convolution kernel.
///
/// The variants of `shaders/conv2d/` take the same problem; Winograd applies to 3×3
/// (and 9×9) stride-1 convolutions only ([`ConvAlgo::applies`]). `half`: f16 tiles and
/// products, f16 partial sums over 16 terms added into f32 accumulators (global memory stays
/// f32); needs `SHADER_F16`. `subgroup`: the invocations of a subgroup share each tap's
/// weight loads through `subgroupShuffle` (`#if SUBGROUP` in `shaders/conv2d/direct.wgsl`); needs `SUBGROUP`
/// with subgroups of at least 8 invocations, and one output channel block per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgo {
    /// `wg_x × wg_y` invocations (along output channels × pixels) with a 4×4 register block
    /// each, A/B tiles of depth 16 in workgroup memory (GPUs).
    Tiled {
        /// Invocations along output channels.
        wg_x: u32,
        /// Invocations along output pixels.
        wg_y: u32,
        /// Half precision.
        half: bool,
    },
    /// `wg_x × wg_y` invocations (along output pixels × channels) computing 16 pixels × 8
    /// channels each straight from global memory (no barriers; best on CPU drivers).
    Direct {
        /// Invocations along output pixels.
        wg_x: u32,
        /// Invocations along output channels (1 with `subgroup`).
        wg_y: u32,
        /// Subgroup-shared weight loads.
        subgroup: bool,
        /// Half precision.
        half: bool,
    },
    /// The direct kernel's `wide` register block: 64 invocations of 8 pixels × 32 output
    /// channels (fewer loads per multiply-add where no sliding window applies: strided and
    /// transposed convolutions, and small layers); float32 only.
    Wide {
        /// Subgroup-shared weight loads.
        subgroup: bool,
    },
    /// Cooperative matrices (`shaders/conv2d/coop.wgsl`): 4 subgroups, each a 2×2 block of
    /// fragments, f16×f16→f32. Needs `EXPERIMENTAL_COOPERATIVE_MATRIX` with this fragment
    /// configuration, `SHADER_F16`, `SUBGROUP` and a single subgroup size.
    Coop(CoopSize),
    /// Winograd F(4×4, 3×3) ([`crate::ops::conv::winograd`]) with this kernel for its
    /// batched matrix products; float32 only.
    Winograd(GemmKernel),
}

/// Output pixels per invocation of the direct kernel (`DTM` in `shaders/conv2d/`).
pub const DIRECT_PIXELS: u32 = 16;

impl ConvAlgo {
    /// A tiled f32 variant.
    pub const fn tiled(wg_x: u32, wg_y: u32) -> ConvAlgo {
        ConvAlgo::Tiled {
            wg_x,
            wg_y,
            half: false,
        }
    }

    /// A direct f32 variant without subgroups.
    pub const fn direct(wg_x: u32, wg_y: u32) -> ConvAlgo {
        ConvAlgo::Direct {
            wg_x,
            wg_y,
            subgroup: false,
            half: false,
        }
    }

    /// Tiled, 8×16 invocations (GPUs' default for at most 32 output channels).
    pub const TILED_8X16: ConvAlgo = ConvAlgo::tiled(8, 16);
    /// Tiled, 16×16 invocations (GPUs' default for more than 32 output channels).
    pub const TILED_16X16: ConvAlgo = ConvAlgo::tiled(16, 16);
    /// Direct, 64×1 invocations (CPU drivers' default).
    pub const DIRECT_64X1: ConvAlgo = ConvAlgo::direct(64, 1);
    /// Direct, 16×4 invocations.
    pub const DIRECT_16X4: ConvAlgo = ConvAlgo::direct(16, 4);
    /// Direct, 64×1 invocations with subgroup-shared weights (CPU drivers' default where
    /// they have subgroups).
    pub const DIRECT_64X1_SG: ConvAlgo = ConvAlgo::Direct {
        wg_x: 64,
        wg_y: 1,
        subgroup: true,
        half: false,
    };
    /// Winograd with the `rows` matrix products and subgroup-shared loads (the default for
    /// 3×3 stride-1 convolutions on CPU drivers with subgroups).
    pub const WINOGRAD_ROWS_SG: ConvAlgo = ConvAlgo::Winograd(GemmKernel::Rows { subgroup: true });
    /// Winograd with the `rows` matrix products without subgroups (CPU drivers without them,
    /// e.g. GL).
    pub const WINOGRAD_ROWS: ConvAlgo = ConvAlgo::Winograd(GemmKernel::Rows { subgroup: false });
    /// Winograd with the tiled matrix products (GPUs).
    pub const WINOGRAD_TILED: ConvAlgo = ConvAlgo::Winograd(GemmKernel::Tiled);
    /// The `wide` block with subgroup-shared weights (the default for strided and transposed
    /// convolutions of 32 or more output channels on CPU drivers with subgroups).
    pub const WIDE_SG: ConvAlgo = ConvAlgo::Wide { subgroup: true };
    /// The `wide` block without subgroups (CPU drivers without them, e.g. GL).
    pub const WIDE: ConvAlgo = ConvAlgo::Wide { subgroup: false };
    /// Cooperative matrices, 8×8 fragments.
    pub const COOP_8: ConvAlgo = ConvAlgo::Coop(CoopSize::S8);
    /// Cooperative matrices, 16×16 fragments.
    pub const COOP_16: ConvAlgo = ConvAlgo::Coop(CoopSize::S16);

    /// The float32 variants, in the order the autotune times them.
    pub const F32: [ConvAlgo; 10] = [
        Self::TILED_8X16,
        Self::TILED_16X16,
        Self::DIRECT_64X1,
        Self::DIRECT_16X4,
        Self::DIRECT_64X1_SG,
        Self::WINOGRAD_ROWS_SG,
        Self::WINOGRAD_ROWS,
        Self::WINOGRAD_TILED,
        Self::WIDE_SG,
        Self::WIDE,
    ];

    /// The half-precision variants: the tiled and direct ones of [`ConvAlgo::F32`] in f16,
    /// and the cooperative-matrix ones.
    pub const F16: [ConvAlgo; 7] = [
        Self::TILED_8X16.half_of(),
        Self::TILED_16X16.half_of(),
        Self::DIRECT_64X1.half_of(),
        Self::DIRECT_16X4.half_of(),
        Self::DIRECT_64X1_SG.half_of(),
        Self::COOP_8,
        Self::COOP_16,
    ];

    /// Every variant, f32 then f16.
    pub fn all() -> impl Iterator<Item = ConvAlgo> {
        Self::F32.into_iter().chain(Self::F16)
    }

    /// This variant in half precision: tiled and direct variants get f16 products; every
    /// other variant is returned as it is (cooperative matrices are f16 already; `wide` and
    /// Winograd have no f16 build).
    pub const fn half_of(self) -> ConvAlgo {
        match self {
            ConvAlgo::Tiled { wg_x, wg_y, .. } => ConvAlgo::Tiled {
                wg_x,
                wg_y,
                half: true,
            },
            ConvAlgo::Direct {
                wg_x,
                wg_y,
                subgroup,
                ..
            } => ConvAlgo::Direct {
                wg_x,
                wg_y,
                subgroup,
                half: true,
            },
            other => other,
        }
    }

    /// Whether the products are in half precision (f16 builds and cooperative matrices).
    pub fn is_half(self) -> bool {
        match self {
            ConvAlgo::Tiled { half, .. } | ConvAlgo::Direct { half, .. } => half,
            ConvAlgo::Coop(_) => true,
            ConvAlgo::Wide { .. } | ConvAlgo::Winograd(_) => false,
        }
    }

    /// Whether the variant uses subgroup operations to share loads.
    pub fn uses_subgroups(self) -> bool {
        match self {
            ConvAlgo::Direct { subgroup, .. } | ConvAlgo::Wide { subgroup } => subgroup,
            ConvAlgo::Winograd(GemmKernel::Rows { subgroup }) => subgroup,
            _ => false,
        }
    }

    /// Whether this is a variant of the direct kernel (`direct` or `wide` entry: no workgroup
    /// memory, pixels along the grid's x).
    pub fn is_direct(self) -> bool {
        matches!(self, ConvAlgo::Direct { .. } | ConvAlgo::Wide { .. })
    }

    /// The cooperative-matrix fragment size, if this is such a variant.
    pub fn coop_size(self) -> Option<u32> {
        match self {
            ConvAlgo::Coop(s) => Some(s.size()),
            _ => None,
        }
    }

    /// Invocations of a workgroup along x and y (tiled: channels × pixels; direct: pixels ×
    /// channels; Winograd: of its matrix-product kernel).
    fn workgroup(self) -> (u32, u32) {
        match self {
            ConvAlgo::Tiled { wg_x, wg_y, .. } | ConvAlgo::Direct { wg_x, wg_y, .. } => {
                (wg_x, wg_y)
            }
            ConvAlgo::Wide { .. } | ConvAlgo::Winograd(GemmKernel::Rows { .. }) => (64, 1),
            ConvAlgo::Winograd(GemmKernel::Tiled) => (16, 16),
            ConvAlgo::Coop(s) => (s.size(), s.size()),
        }
    }

    /// Output pixels per workgroup of the `shaders/conv2d/` variants (tiled: `4 * wg_y`; direct:
    /// `16 * wg_x`; `wide`: `8 * 64`; cooperative matrix: 4 fragments; Winograd: 0).
    pub fn pixels(self) -> u32 {
        match self {
            ConvAlgo::Coop(s) => 4 * s.size(),
            ConvAlgo::Wide { .. } => 8 * 64,
            ConvAlgo::Direct { wg_x, .. } => DIRECT_PIXELS * wg_x,
            ConvAlgo::Tiled { wg_y, .. } => 4 * wg_y,
            ConvAlgo::Winograd(_) => 0,
        }
    }

    /// Output channels per workgroup of the `shaders/conv2d/` variants (tiled: `4 * wg_x`;
    /// direct: `8 * wg_y`; `wide`: 32; cooperative matrix: 4 fragments; Winograd: 0).
    pub fn channels(self) -> u32 {
        match self {
            ConvAlgo::Coop(s) => 4 * s.size(),
            ConvAlgo::Wide { .. } => 32,
            ConvAlgo::Direct { wg_y, .. } => 8 * wg_y,
            ConvAlgo::Tiled { wg_x, .. } => 4 * wg_x,
            ConvAlgo::Winograd(_) => 0,
        }
    }

    /// The entry point of this variant (Winograd: of its matrix products).
    pub fn entry(self) -> &'static str {
        match self {
            ConvAlgo::Winograd(_) => winograd::kernel(self).entry,
            ConvAlgo::Coop(_) => "coop",
            ConvAlgo::Wide { .. } => "wide",
            ConvAlgo::Direct { .. } => "direct",
            ConvAlgo::Tiled { .. } => "main",
        }
    }

    /// The matrix-product kernel of a Winograd variant.
    pub fn gemm(self) -> Option<GemmKernel> {
        match self {
            ConvAlgo::Winograd(g) => Some(g),
            _ => None,
        }
    }

    /// The variant whose pipeline has this label (see
    /// [`Recorder::kernel_labels`](crate::gpu::record::Recorder::kernel_labels)), or `None`
    /// for any other kernel.
    pub fn from_kernel_label(label: &str) -> Option<ConvAlgo> {
        let stem = label.split('[').next();
        Self::all().find(|a| match a {
            // With or without the products' 64-column constant.
            ConvAlgo::Winograd(_) => stem == Some(&winograd::kernel(*a).label()),
            // Its constant (the subgroup size) depends on the adapter.
            ConvAlgo::Coop(_) => {
                let k = a.kernel(DirectBody::ALL[0], 0);
                let name = k.shader.name.trim_end_matches(".wgsl");
                stem == Some(&format!("{name}.{}", k.entry))
            }
            _ => DirectBody::ALL
                .iter()
                .any(|&b| a.kernel(b, 0).label() == label),
        })
    }

    /// Whether this variant runs on `ctx`'s device: [`ConvAlgo::fits`] its limits; for
    /// half-precision variants, it has `SHADER_F16`; for subgroup variants, `SUBGROUP` with
    /// subgroups of 8 invocations or more; for cooperative-matrix variants, the fragment size
    /// among [`Context::coop_fragment_sizes`]. (Checked before every convolution: it reads the
    /// context's cached limits and adapter info.)
    pub fn usable(self, ctx: &Context) -> bool {
        let features = ctx.device().features();
        self.fits(ctx.limits())
            && (!self.is_half() || features.contains(wgpu::Features::SHADER_F16))
            && (!self.uses_subgroups() || ctx.has_subgroups_of_8())
            && self
                .coop_size()
                .is_none_or(|s| ctx.coop_fragment_sizes().contains(&s))
    }

    /// [`ConvAlgo::usable`] as a result: [`Error::Unsupported`] naming the variant where not.
    pub fn check_usable(self, ctx: &Context) -> Result<()> {
        if self.usable(ctx) {
            return Ok(());
        }
        Err(Error::Unsupported {
            adapter: ctx.adapter_info().name.clone(),
            what: format!("the convolution kernel variant '{self}'"),
        })
    }

    /// Whether this variant computes convolutions of `shape` on `ctx` (Winograd: see
    /// [`winograd::applies`]; every other variant: all of them). A variant that does not
    /// apply runs as [`ConvAlgo::default_on`] instead.
    pub fn applies(self, ctx: &Context, shape: &ConvShape) -> bool {
        !matches!(self, ConvAlgo::Winograd(_)) || winograd::applies(ctx, shape)
    }

    /// Whether the device's compute limits allow this variant (workgroup size, invocations,
    /// workgroup memory).
    pub fn fits(self, limits: &wgpu::Limits) -> bool {
        if let ConvAlgo::Coop(s) = self {
            // A and B tiles (f16), the output tile (f32) and 4 fragments of pixel origins
            // (16 bytes each); the workgroup size (4 subgroups) is checked by the context.
            let (m, k) = (4 * s.size(), 2 * s.size());
            return 2 * (m * k + k * m) + 4 * m * m + 16 * m
                <= limits.max_compute_workgroup_storage_size;
        }
        let (wg_x, wg_y) = self.workgroup();
        let shared = match self {
            // A and B tiles (depth 16) plus the four per-pixel arrays of the tiled kernel.
            ConvAlgo::Tiled { .. } | ConvAlgo::Winograd(GemmKernel::Tiled) => {
                4 * (16 * 4 * (wg_x + wg_y) + 4 * 4 * wg_y)
            }
            _ => 0,
        };
        // The subgroup build shares weights between the invocations of one output channel
        // block: one such block per workgroup.
        let one_block = !matches!(
            self,
            ConvAlgo::Direct {
                subgroup: true,
                wg_y: 2..,
                ..
            }
        );
        one_block
            && wg_x <= limits.max_compute_workgroup_size_x
            && wg_y <= limits.max_compute_workgroup_size_y
            && wg_x * wg_y <= limits.max_compute_invocations_per_workgroup
            && shared <= limits.max_compute_workgroup_storage_size
    }

    /// This variant's pipeline for a shape whose direct kernel body is `body` (see
    /// [`DirectBody::of`]; the other variants have one body), on an adapter with subgroups of
    /// `subgroup_size` invocations (used by the cooperative-matrix variants only).
    pub(crate) fn kernel(self, body: DirectBody, subgroup_size: u32) -> Kernel {
        let (wg_x, wg_y) = self.workgroup();
        match self {
            ConvAlgo::Winograd(_) => winograd::kernel(self),
            ConvAlgo::Coop(s) => Kernel {
                shader: conv2d_build(true, false, s.size()),
                entry: self.entry(),
                constants: vec![("SG", subgroup_size as f64)],
            },
            _ => {
                let mut constants = vec![("WG_X", wg_x as f64), ("WG_Y", wg_y as f64)];
                constants.push(("BK", 16.0));
                if self.is_half() {
                    constants.push(("FLUSH", 1.0));
                }
                if matches!(self, ConvAlgo::Direct { .. }) {
                    if body.rows {
                        constants.push(("ROWS", 1.0));
                    }
                    if body.narrow {
                        constants.push(("NARROW", 1.0));
                    }
                }
                Kernel {
                    shader: conv2d_build(self.is_half(), self.uses_subgroups(), 0),
                    entry: self.entry(),
                    constants,
                }
            }
        }
    }

    /// Every shader this variant runs (its kernel's build, and the channel padding of the
    /// direct and Winograd variants): what a timing of it depends on.
    pub fn shaders(self) -> Vec<Shader> {
        match self {
            ConvAlgo::Winograd(_) => vec![WINOGRAD, winograd::kernel(self).shader, CROP],
            ConvAlgo::Direct { .. } | ConvAlgo::Wide { .. } => {
                vec![self.kernel(DirectBody::ALL[0], 0).shader, CROP]
            }
            _ => vec![self.kernel(DirectBody::ALL[0], 0).shader],
        }
    }
}

impl fmt::Display for ConvAlgo {
    /// A short name, e.g. `direct 64x1`, `tiled 16x16 f16`, `direct 64x1 w32 sg`,
    /// `winograd rows 8x8 sg` or `coop 16x16 f16`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sg = if self.uses_subgroups() { " sg" } else { "" };
        let half = if self.is_half() { " f16" } else { "" };
        match *self {
            ConvAlgo::Coop(s) => write!(f, "coop {0}x{0} f16", s.size()),
            ConvAlgo::Winograd(GemmKernel::Rows { .. }) => write!(f, "winograd rows 8x8{sg}"),
            ConvAlgo::Winograd(GemmKernel::Tiled) => write!(f, "winograd tiled 16x16"),
            ConvAlgo::Wide { .. } => write!(f, "direct 64x1 w32{sg}"),
            ConvAlgo::Direct { wg_x, wg_y, .. } => write!(f, "direct {wg_x}x{wg_y}{sg}{half}"),
            ConvAlgo::Tiled { wg_x, wg_y, .. } => write!(f, "tiled {wg_x}x{wg_y}{half}"),
        }
    }
}

impl FromStr for ConvAlgo {
    type Err = Error;

    /// The variant of [`ConvAlgo::all`] with this name.
    fn from_str(s: &str) -> Result<ConvAlgo> {
        ConvAlgo::all()
            .find(|a| a.to_string() == s)
            .ok_or_else(|| Error::InvalidInput(format!("unknown convolution variant '{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names as `Tile::name` spelled them before the enum (autotune caches and reports
    /// keep them), in [`ConvAlgo::all`]'s order, and each parses back.
    #[test]
    fn names_round_trip_and_keep_their_spelling() {
        let names: Vec<String> = ConvAlgo::all().map(|a| a.to_string()).collect();
        let expected = [
            "tiled 8x16",
            "tiled 16x16",
            "direct 64x1",
            "direct 16x4",
            "direct 64x1 sg",
            "winograd rows 8x8 sg",
            "winograd rows 8x8",
            "winograd tiled 16x16",
            "direct 64x1 w32 sg",
            "direct 64x1 w32",
            "tiled 8x16 f16",
            "tiled 16x16 f16",
            "direct 64x1 f16",
            "direct 16x4 f16",
            "direct 64x1 sg f16",
            "coop 8x8 f16",
            "coop 16x16 f16",
        ];
        assert_eq!(names, expected);
        for a in ConvAlgo::all() {
            assert_eq!(a.to_string().parse::<ConvAlgo>().unwrap(), a);
        }
        assert!("direct 64x2".parse::<ConvAlgo>().is_err());
    }

    /// Each kernel label names one variant (the benchmark's report counts variants by label).
    #[test]
    fn kernel_labels_name_their_variant() {
        for a in ConvAlgo::all() {
            let label = match a {
                ConvAlgo::Coop(_) => format!("{}[SG=32]", a.kernel(DirectBody::ALL[0], 32).label()),
                _ => a.kernel(DirectBody::ALL[1], 0).label(),
            };
            assert_eq!(ConvAlgo::from_kernel_label(&label), Some(a), "{label}");
        }
        assert_eq!(ConvAlgo::from_kernel_label("gram.main"), None);
    }
}
