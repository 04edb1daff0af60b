//! The convolution's shader builds: `shaders/conv2d/*.wgsl` and `shaders/gemm.wgsl`, assembled
//! by the WGSL preprocessor ([`crate::gpu::wgsl`]). Each build is made once and kept, so a
//! build function is cheap and returns the same text every time.

use std::sync::OnceLock;

use crate::gpu::kernels::Shader;
use crate::gpu::wgsl::{preprocess, Defines};

/// A part of a build: its path under `shaders/` and its text.
type Part = (&'static str, &'static str);

macro_rules! part {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $path)),
        )
    };
}

/// The parts of every conv2d build, concatenated in this order.
const CONV2D_PARTS: [Part; 4] = [
    part!("conv2d/common.wgsl"),
    part!("conv2d/tiled.wgsl"),
    part!("conv2d/direct.wgsl"),
    part!("conv2d/wide.wgsl"),
];
/// Appended in the cooperative-matrix builds.
const CONV2D_COOP_PART: Part = part!("conv2d/coop.wgsl");
const GEMM_PART: Part = part!("gemm.wgsl");

/// The files under `shaders/` that the builds here read.
pub const FILES: [&str; 6] = [
    CONV2D_PARTS[0].0,
    CONV2D_PARTS[1].0,
    CONV2D_PARTS[2].0,
    CONV2D_PARTS[3].0,
    CONV2D_COOP_PART.0,
    GEMM_PART.0,
];

/// The conv2d shader as built for a kernel variant (entry points `main`, `direct`, `wide`, and
/// `coop` in the cooperative-matrix builds). Names of the preprocessor:
/// - `half`: flag `ENABLE_F16` (`enable f16;`) and `HF = f16`, the type of tiles and products
///   (else `f32`). Needs `SHADER_F16`.
/// - `subgroup`: flag `SUBGROUP`: the direct kernels load weights once per subgroup and hand
///   them round with `subgroupShuffle`. Needs `SUBGROUP`.
/// - `coop` (8 or 16; the other arguments are then ignored): flags `ENABLE_F16` and `COOP`,
///   `S = coop`: `conv2d/coop.wgsl` appended, its fragments `coop`×`coop`. Needs
///   `EXPERIMENTAL_COOPERATIVE_MATRIX`, `SHADER_F16` and `SUBGROUP`.
///
/// `DTM` is always [`DIRECT_PIXELS`](crate::ops::conv::DIRECT_PIXELS), the direct kernel's
/// pixels per invocation (its unrolls are generated for it).
pub fn conv2d_build(half: bool, subgroup: bool, coop: u32) -> Shader {
    static BUILDS: [OnceLock<Shader>; 6] = [const { OnceLock::new() }; 6];
    let coop = match coop {
        0 => 0,
        16 => 16,
        _ => 8,
    };
    let (half, subgroup) = if coop != 0 {
        (false, false)
    } else {
        (half, subgroup)
    };
    // The plain build keeps the old file's name: names start the kernel labels.
    let (i, name) = match (coop, half, subgroup) {
        (8, ..) => (4, "conv2d_coop8_f16"),
        (16, ..) => (5, "conv2d_coop16_f16"),
        (_, false, false) => (0, "conv2d.wgsl"),
        (_, true, false) => (1, "conv2d_f16"),
        (_, false, true) => (2, "conv2d_subgroup"),
        (_, true, true) => (3, "conv2d_subgroup_f16"),
    };
    *BUILDS[i].get_or_init(|| {
        let defines = Defines::new()
            .flag("ENABLE_F16", half || coop != 0)
            .flag("COOP", coop != 0)
            .flag("SUBGROUP", subgroup)
            .value("HF", if half { "f16" } else { "f32" })
            .value("DTM", crate::ops::conv::DIRECT_PIXELS)
            .value("S", coop);
        let mut parts = CONV2D_PARTS.to_vec();
        if coop != 0 {
            parts.push(CONV2D_COOP_PART);
        }
        build(name, &parts, &defines)
    })
}

/// The gemm shader (entry points `rows` and `tiled`); with `subgroup` (flag `SUBGROUP`),
/// `rows` loads B once per subgroup and hands it round with `subgroupShuffle`. Needs
/// `SUBGROUP`.
pub fn gemm_build(subgroup: bool) -> Shader {
    static BUILDS: [OnceLock<Shader>; 2] = [const { OnceLock::new() }; 2];
    let name = if subgroup {
        "gemm_subgroup"
    } else {
        "gemm.wgsl"
    };
    *BUILDS[subgroup as usize].get_or_init(|| {
        build(
            name,
            &[GEMM_PART],
            &Defines::new().flag("SUBGROUP", subgroup),
        )
    })
}

/// Every build of this module: the naga test validates each.
pub fn builds() -> Vec<Shader> {
    let mut all = Vec::new();
    for half in [false, true] {
        for subgroup in [false, true] {
            all.push(conv2d_build(half, subgroup, 0));
        }
    }
    all.extend([8, 16].map(|size| conv2d_build(false, false, size)));
    all.extend([false, true].map(gemm_build));
    all
}

/// `parts` preprocessed and concatenated, kept for the life of the program. The parts are
/// compiled in and the unit tests build every combination, so an error here is a bug.
fn build(name: &'static str, parts: &[Part], defines: &Defines) -> Shader {
    let mut text = String::new();
    for (path, source) in parts {
        match preprocess(path, source, defines) {
            Ok(t) => text.push_str(&t),
            Err(e) => panic!("shader build {name}: {e}"),
        }
    }
    Shader {
        name,
        source: Box::leak(text.into_boxed_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::kernels::naga_check::{validate, with_constants};
    use crate::ops::conv::{ConvAlgo, DirectBody};
    use crate::ops::gemm::GemmKernel;

    #[test]
    fn conv_tile_variants_validate_with_their_constants() {
        let dtm = format!("const DTM: u32 = {}u;", crate::ops::conv::DIRECT_PIXELS);
        let mut modules = std::collections::HashMap::new();
        for half in [false, true] {
            for subgroup in [false, true] {
                let b = conv2d_build(half, subgroup, 0);
                assert!(b.source.contains(&dtm), "{}: {dtm}", b.name);
                // The direct kernel's generated unrolls: one slot per pixel of an invocation.
                let slots = b.source.matches(" = slot(m0, ").count();
                assert_eq!(slots as u32, crate::ops::conv::DIRECT_PIXELS, "{}", b.name);
                assert_eq!(b.source.starts_with("enable f16;"), half, "{}", b.name);
                assert_eq!(b.source.contains("alias hf = f16;"), half, "{}", b.name);
                assert_eq!(b.source.contains("alias hf = f32;"), !half, "{}", b.name);
                assert!(!b.source.contains("enable wgpu_cooperative_matrix"));
                assert!(!b.source.contains("fn coop("), "{}", b.name);
                // The plain build's 32 weight loads per block, or the subgroup build's shuffles.
                let shuffles = 2 * 4 + 8 * 4;
                assert_eq!(
                    b.source.matches("subgroupShuffle(").count(),
                    if subgroup { shuffles } else { 0 },
                    "{}",
                    b.name
                );
                let lanes = b
                    .source
                    .matches("@builtin(subgroup_invocation_id) lane")
                    .count();
                assert_eq!(lanes, if subgroup { 2 } else { 0 }, "{}", b.name);
                modules.insert(b.name, validate(&b));
            }
        }
        for size in [8, 16] {
            let b = conv2d_build(false, false, size);
            assert!(
                b.source
                    .starts_with("enable f16;\nenable wgpu_cooperative_matrix;\n"),
                "{}",
                b.name
            );
            assert!(b.source.contains("alias hf = f32;"), "{}", b.name);
            let fragment = format!("coop_mat{size}x{size}<");
            // 4 accumulators, 2 A and 2 B fragments.
            assert_eq!(b.source.matches(&fragment).count(), 8, "{}", b.name);
            assert!(b.source.contains(&format!("const S: u32 = {size}u;")));
            assert_eq!(conv2d_build(true, true, size), b, "coop ignores the others");
            modules.insert(b.name, validate(&b));
        }
        // (The Winograd variants' kernels are checked in `gemm_builds_validate`.)
        for algo in ConvAlgo::all().filter(|a| a.gemm().is_none()) {
            let coop = algo.coop_size().unwrap_or(0);
            let expected = conv2d_build(algo.is_half(), algo.uses_subgroups(), coop);
            let (module, info) = &modules[expected.name];
            for body in DirectBody::ALL {
                let kernel = algo.kernel(body, 32);
                assert_eq!(kernel.shader, expected);
                with_constants(module, info, &kernel)
                    .unwrap_or_else(|e| panic!("{algo} {body:?}: {e}"));
            }
        }
    }

    #[test]
    fn gemm_builds_validate() {
        for subgroup in [false, true] {
            let b = gemm_build(subgroup);
            let shuffles = if subgroup { 32 } else { 0 };
            assert_eq!(b.source.matches("subgroupShuffle(").count(), shuffles);
            assert_eq!(b.source.contains("fn col("), !subgroup, "{}", b.name);
            let lane = "@builtin(subgroup_invocation_id) lane";
            assert_eq!(b.source.contains(lane), subgroup, "{}", b.name);
            let (module, _) = validate(&b);
            for entry in ["rows", "tiled"] {
                assert!(
                    module.entry_points.iter().any(|e| e.name == entry),
                    "{entry}"
                );
            }
        }
        for algo in ConvAlgo::all() {
            let Some(gemm) = algo.gemm() else { continue };
            let kernel = algo.kernel(DirectBody::ALL[1], 8);
            assert_eq!(kernel.shader, gemm_build(algo.uses_subgroups()), "{algo}");
            let rows = matches!(gemm, GemmKernel::Rows { .. });
            assert_eq!(kernel.entry, if rows { "rows" } else { "tiled" });
        }
    }

    #[test]
    fn builds_are_made_once() {
        for (a, b) in builds().iter().zip(builds()) {
            assert_eq!(a.source.as_ptr(), b.source.as_ptr(), "{}", a.name);
        }
        let mut names: Vec<_> = builds().iter().map(|b| b.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), builds().len(), "one name per build");
    }
}
