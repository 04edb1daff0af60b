//! The built-in choice of convolution variant (with autotune off, and the first variant the
//! autotune times): one table per driver class. Figures behind the choices are in
//! BENCHMARKS.md and docs/perf-log.md.

use crate::gpu::context::{is_cpu_adapter, Context};
use crate::ops::conv::algo::ConvAlgo;
use crate::ops::conv::shape::{ConvMode, ConvShape};

/// The kind of adapter the built-in kernel choices are made for: every op family that picks
/// kernels by driver (convolutions, their weight gradients, Gram matrices) asks here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverClass {
    /// A native CPU driver (lavapipe, llvmpipe, WARP; see [`is_cpu_adapter`]): loads cost per
    /// instruction and SIMD lane, barriers are expensive.
    Cpu,
    /// Anything else, a browser's CPU fallback adapter included.
    Gpu,
}

impl DriverClass {
    /// The class of `ctx`'s adapter ([`DriverClass::of_adapter`]).
    pub fn of(ctx: &Context) -> DriverClass {
        Self::of_adapter(ctx.adapter_info())
    }

    /// The class of an adapter: [`DriverClass::Cpu`] for a CPU driver ([`is_cpu_adapter`], the
    /// one test of "is this a CPU driver?"), except behind a browser's WebGPU. There (Chromium's
    /// SwiftShader) the CPU class's kernels (Winograd, `wide`, direct), chosen on lavapipe,
    /// take SwiftShader's GPU process minutes and gigabytes, and the browser then kills it;
    /// the GPUs' tiled kernels take seconds (docs/perf-log.md, twelfth session).
    pub fn of_adapter(info: &wgpu::AdapterInfo) -> DriverClass {
        if is_cpu_adapter(info) && info.backend != wgpu::Backend::BrowserWebGpu {
            DriverClass::Cpu
        } else {
            DriverClass::Gpu
        }
    }
}

impl ConvAlgo {
    /// The default variant for `cout` output channels on an adapter of this class, by shape
    /// alone:
    ///
    /// | driver | output channels | variant |
    /// |---|---|---|
    /// | CPU | any | [`ConvAlgo::DIRECT_64X1`] |
    /// | GPU | ≤ 32 | [`ConvAlgo::TILED_8X16`] |
    /// | GPU | > 32 | [`ConvAlgo::TILED_16X16`] |
    ///
    /// (See [`ConvAlgo::default_on`] for the choice that also knows the device's features.)
    pub fn default_for(class: DriverClass, cout: usize) -> ConvAlgo {
        match (class, cout) {
            (DriverClass::Cpu, _) => ConvAlgo::DIRECT_64X1,
            (DriverClass::Gpu, 0..=32) => ConvAlgo::TILED_8X16,
            (DriverClass::Gpu, _) => ConvAlgo::TILED_16X16,
        }
    }

    /// [`ConvAlgo::default_for`] on `ctx`'s device: a direct default shares its weight loads
    /// across subgroups where the device allows it ([`ConvAlgo::DIRECT_64X1_SG`]).
    pub fn default_on(ctx: &Context, cout: usize) -> ConvAlgo {
        let a = Self::default_for(DriverClass::of(ctx), cout);
        match a {
            ConvAlgo::Direct {
                wg_x, wg_y, half, ..
            } => {
                let shared = ConvAlgo::Direct {
                    wg_x,
                    wg_y,
                    subgroup: true,
                    half,
                };
                if shared.usable(ctx) {
                    shared
                } else {
                    a
                }
            }
            _ => a,
        }
    }

    /// The default variant for convolutions of `shape` on `ctx` (with autotune off, and the
    /// first the autotune times). GPUs: [`ConvAlgo::default_on`]. CPU drivers, in this order
    /// (the first usable variant of each row, subgroup build first):
    ///
    /// | when | variant |
    /// |---|---|
    /// | output channels a multiple of 32, and small: ≤ 16² output pixels per image with subgroups, ≤ 8² without (VGG19's conv4/conv5 at 64²–128²) | [`ConvAlgo::WIDE_SG`], [`ConvAlgo::WIDE`] |
    /// | Winograd applies (3×3 stride 1, also transposed) and ≥ 16 output tiles of 4×4 per image | [`ConvAlgo::WINOGRAD_ROWS_SG`], [`ConvAlgo::WINOGRAD_ROWS`] |
    /// | output channels a multiple of 32, strided or transposed | the `wide` block of row 1 |
    /// | anything else | [`ConvAlgo::default_on`] |
    ///
    /// The choice depends on one image of the shape only, never on the batch.
    pub fn default_for_shape(ctx: &Context, shape: &ConvShape) -> ConvAlgo {
        let fallback = Self::default_on(ctx, shape.cout as usize);
        if DriverClass::of(ctx) != DriverClass::Cpu {
            return fallback;
        }
        let pixels = (shape.ho as u64) * (shape.wo as u64);
        let tiles = (shape.ho as u64).div_ceil(4) * (shape.wo as u64).div_ceil(4);
        let wide = [ConvAlgo::WIDE_SG, ConvAlgo::WIDE]
            .into_iter()
            .find(|a| a.usable(ctx))
            .filter(|_| shape.cout.is_multiple_of(32));
        // Without subgroups the `wide` block loses to Winograd already at 16².
        let small = |w: &ConvAlgo| pixels <= if w.uses_subgroups() { 256 } else { 64 };
        if let Some(w) = wide.filter(small) {
            return w;
        }
        let winograd = [ConvAlgo::WINOGRAD_ROWS_SG, ConvAlgo::WINOGRAD_ROWS]
            .into_iter()
            .find(|a| a.usable(ctx));
        if let Some(w) = winograd.filter(|w| tiles >= 16 && w.applies(ctx, shape)) {
            return w;
        }
        let strided = shape.stride > 1 || shape.mode == ConvMode::Transposed;
        match wide {
            Some(w) if strided => w,
            _ => fallback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DriverClass;
    use wgpu::{AdapterInfo, Backend, DeviceType};

    fn adapter(name: &str, device_type: DeviceType, backend: Backend) -> AdapterInfo {
        AdapterInfo {
            name: name.into(),
            ..AdapterInfo::new(device_type, backend)
        }
    }

    #[test]
    fn native_cpu_drivers_are_the_cpu_class_and_browsers_fallback_is_not() {
        let cases = [
            (
                "llvmpipe (LLVM 15.0.6, 256 bits)",
                DeviceType::Cpu,
                Backend::Vulkan,
                DriverClass::Cpu,
            ),
            // Named only: the class does not rest on the device type alone.
            (
                "llvmpipe (LLVM 15.0.6, 256 bits)",
                DeviceType::Other,
                Backend::Gl,
                DriverClass::Cpu,
            ),
            (
                "Microsoft Basic Render Driver",
                DeviceType::Other,
                Backend::Dx12,
                DriverClass::Cpu,
            ),
            ("", DeviceType::Cpu, Backend::Vulkan, DriverClass::Cpu),
            (
                "NVIDIA H100 80GB HBM3",
                DeviceType::DiscreteGpu,
                Backend::Vulkan,
                DriverClass::Gpu,
            ),
            (
                "Apple M2",
                DeviceType::IntegratedGpu,
                Backend::Metal,
                DriverClass::Gpu,
            ),
            (
                "SwiftShader",
                DeviceType::Cpu,
                Backend::BrowserWebGpu,
                DriverClass::Gpu,
            ),
            (
                "",
                DeviceType::Cpu,
                Backend::BrowserWebGpu,
                DriverClass::Gpu,
            ),
        ];
        for (name, device_type, backend, class) in cases {
            let info = adapter(name, device_type, backend);
            assert_eq!(
                DriverClass::of_adapter(&info),
                class,
                "{name:?} {device_type:?} {backend:?}"
            );
        }
    }
}
