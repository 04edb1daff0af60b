//! Pipeline cache: every kernel variant is compiled once and reused for every shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A WGSL source file from `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shader {
    /// File name, e.g. `conv2d.wgsl`.
    pub name: &'static str,
    /// The WGSL text.
    pub source: &'static str,
}

/// Every shader in `shaders/`, for the pipeline cache and the naga validation test.
pub const SHADERS: &[Shader] = &[
    CONV2D,
    CONV2D_SUBGROUP,
    CONV2D_COOP,
    INSTANCE_NORM,
    ELEMENTWISE,
    UPSAMPLE,
    CROP,
    POOL,
    GRAM,
    REDUCE,
    LOSS,
    OPTIM,
    VECOPS,
    CONV2D_GRAD,
    INSTANCE_NORM_GRAD,
    WINOGRAD,
    GEMM,
    GEMM_SUBGROUP,
];

/// `shaders/conv2d.wgsl`
pub const CONV2D: Shader = Shader {
    name: "conv2d.wgsl",
    source: include_str!("../../shaders/conv2d.wgsl"),
};
/// `shaders/conv2d_subgroup.wgsl`: the subgroup build's `wpair`, `retired` and `class_unit`
/// (not a module by itself; see [`conv2d_build`]).
pub const CONV2D_SUBGROUP: Shader = Shader {
    name: "conv2d_subgroup.wgsl",
    source: include_str!("../../shaders/conv2d_subgroup.wgsl"),
};

/// `shaders/conv2d_coop.wgsl`: the cooperative-matrix kernel `coop`, appended to
/// `conv2d.wgsl` (not a module by itself; see [`conv2d_build`]).
pub const CONV2D_COOP: Shader = Shader {
    name: "conv2d_coop.wgsl",
    source: include_str!("../../shaders/conv2d_coop.wgsl"),
};

/// `shaders/conv2d.wgsl` as built for a kernel variant:
/// - `half`: `enable f16;` and `alias hf = f16;` in place of `alias hf = f32;` (the file's only
///   precision-dependent line). Needs `SHADER_F16`.
/// - `subgroup`: the functions of `shaders/conv2d_subgroup.wgsl` in place of the file's own
///   (between its `// subgroup: begin` and `// subgroup: end` lines), and the direct entry's
///   `lane` is the `subgroup_invocation_id`. Needs `SUBGROUP`.
/// - `coop` (8 or 16; the other arguments are then ignored): `shaders/conv2d_coop.wgsl`
///   appended behind `enable f16; enable wgpu_cooperative_matrix;`, its fragments
///   `coop`×`coop` (the file is written for 8×8: for 16, every `8x8` and its `S = 8u` become
///   `16x16` and `16u`). Needs `EXPERIMENTAL_COOPERATIVE_MATRIX`, `SHADER_F16` and `SUBGROUP`.
///
/// The naga test checks that every substitution took place.
pub fn conv2d_build(half: bool, subgroup: bool, coop: u32) -> Shader {
    if coop != 0 {
        return conv2d_coop_build(coop);
    }
    if !half && !subgroup {
        return CONV2D;
    }
    static SOURCES: [std::sync::OnceLock<&'static str>; 3] =
        [const { std::sync::OnceLock::new() }; 3];
    let (i, name) = match (half, subgroup) {
        (true, false) => (0, "conv2d_f16"),
        (false, true) => (1, "conv2d_subgroup"),
        _ => (2, "conv2d_subgroup_f16"),
    };
    let source = SOURCES[i].get_or_init(|| {
        let mut text = CONV2D.source.to_string();
        if subgroup {
            text = subgroup_text(CONV2D.source, CONV2D_SUBGROUP.source);
        }
        if half {
            text = format!(
                "enable f16;\n{}",
                text.replacen(F32_ALIAS, "alias hf = f16;", 1)
            );
        }
        Box::leak(text.into_boxed_str())
    });
    Shader { name, source }
}

/// `base` with `part` in place of its lines from `// subgroup: begin` to `// subgroup: end`,
/// and its entry points' `lane` the `subgroup_invocation_id`: the subgroup builds of
/// `conv2d.wgsl` and `gemm.wgsl`.
fn subgroup_text(base: &str, part: &str) -> String {
    let mut text = base.to_string();
    let begin = text.find(SUBGROUP_BEGIN).unwrap_or(0);
    let end = text
        .find(SUBGROUP_END)
        .map_or(0, |e| e + SUBGROUP_END.len());
    if begin < end {
        text.replace_range(begin..end, part);
    }
    text.replace(LANE_PLAIN, LANE_SUBGROUP)
}

/// The cooperative-matrix build of [`conv2d_build`] for `size`×`size` fragments (8 or 16).
fn conv2d_coop_build(size: u32) -> Shader {
    static SOURCES: [std::sync::OnceLock<&'static str>; 2] =
        [const { std::sync::OnceLock::new() }; 2];
    let (i, name) = if size == 16 {
        (1, "conv2d_coop16_f16")
    } else {
        (0, "conv2d_coop8_f16")
    };
    let source = SOURCES[i].get_or_init(|| {
        let mut coop = CONV2D_COOP.source.to_string();
        if size == 16 {
            coop =
                coop.replace(COOP_8, "coop_mat16x16")
                    .replacen(COOP_S8, "const S: u32 = 16u;", 1);
        }
        let text = format!("{COOP_ENABLE}{}\n{coop}", CONV2D.source);
        Box::leak(text.into_boxed_str())
    });
    Shader { name, source }
}

const COOP_ENABLE: &str = "enable f16;\nenable wgpu_cooperative_matrix;\n";
const COOP_8: &str = "coop_mat8x8";
const COOP_S8: &str = "const S: u32 = 8u;";
const F32_ALIAS: &str = "alias hf = f32;";
const SUBGROUP_BEGIN: &str = "// subgroup: begin";
const SUBGROUP_END: &str = "// subgroup: end";
const LANE_PLAIN: &str = "@builtin(local_invocation_index) lane: u32";
const LANE_SUBGROUP: &str = "@builtin(subgroup_invocation_id) lane: u32";

/// `shaders/instance_norm.wgsl`
pub const INSTANCE_NORM: Shader = Shader {
    name: "instance_norm.wgsl",
    source: include_str!("../../shaders/instance_norm.wgsl"),
};
/// `shaders/elementwise.wgsl`
pub const ELEMENTWISE: Shader = Shader {
    name: "elementwise.wgsl",
    source: include_str!("../../shaders/elementwise.wgsl"),
};
/// `shaders/crop.wgsl`
pub const CROP: Shader = Shader {
    name: "crop.wgsl",
    source: include_str!("../../shaders/crop.wgsl"),
};
/// `shaders/upsample.wgsl`
pub const UPSAMPLE: Shader = Shader {
    name: "upsample.wgsl",
    source: include_str!("../../shaders/upsample.wgsl"),
};

/// `shaders/pool.wgsl`
pub const POOL: Shader = Shader {
    name: "pool.wgsl",
    source: include_str!("../../shaders/pool.wgsl"),
};
/// `shaders/gram.wgsl`
pub const GRAM: Shader = Shader {
    name: "gram.wgsl",
    source: include_str!("../../shaders/gram.wgsl"),
};
/// `shaders/reduce.wgsl`
pub const REDUCE: Shader = Shader {
    name: "reduce.wgsl",
    source: include_str!("../../shaders/reduce.wgsl"),
};
/// `shaders/loss.wgsl`
pub const LOSS: Shader = Shader {
    name: "loss.wgsl",
    source: include_str!("../../shaders/loss.wgsl"),
};
/// `shaders/optim.wgsl`
pub const OPTIM: Shader = Shader {
    name: "optim.wgsl",
    source: include_str!("../../shaders/optim.wgsl"),
};
/// `shaders/vecops.wgsl`
pub const VECOPS: Shader = Shader {
    name: "vecops.wgsl",
    source: include_str!("../../shaders/vecops.wgsl"),
};

/// `shaders/conv2d_grad.wgsl`
pub const CONV2D_GRAD: Shader = Shader {
    name: "conv2d_grad.wgsl",
    source: include_str!("../../shaders/conv2d_grad.wgsl"),
};
/// `shaders/instance_norm_grad.wgsl`
pub const INSTANCE_NORM_GRAD: Shader = Shader {
    name: "instance_norm_grad.wgsl",
    source: include_str!("../../shaders/instance_norm_grad.wgsl"),
};

/// `shaders/winograd.wgsl`
pub const WINOGRAD: Shader = Shader {
    name: "winograd.wgsl",
    source: include_str!("../../shaders/winograd.wgsl"),
};
/// `shaders/gemm.wgsl`
pub const GEMM: Shader = Shader {
    name: "gemm.wgsl",
    source: include_str!("../../shaders/gemm.wgsl"),
};
/// `shaders/gemm_subgroup.wgsl`: the subgroup build's `block` (not a module by itself; see
/// [`gemm_build`]).
pub const GEMM_SUBGROUP: Shader = Shader {
    name: "gemm_subgroup.wgsl",
    source: include_str!("../../shaders/gemm_subgroup.wgsl"),
};

/// `shaders/gemm.wgsl` as built for its `rows` kernel: with `subgroup`, the functions of
/// `shaders/gemm_subgroup.wgsl` in place of the file's own (as [`conv2d_build`] does) and
/// `lane` the `subgroup_invocation_id`. Needs `SUBGROUP`.
pub fn gemm_build(subgroup: bool) -> Shader {
    if !subgroup {
        return GEMM;
    }
    static SOURCE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    let source = SOURCE.get_or_init(|| {
        Box::leak(subgroup_text(GEMM.source, GEMM_SUBGROUP.source).into_boxed_str())
    });
    Shader {
        name: "gemm_subgroup",
        source,
    }
}

/// One kernel variant: a shader entry point plus values for its override constants.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// The shader file.
    pub shader: Shader,
    /// The entry point.
    pub entry: &'static str,
    /// Override constants (tile sizes and the like), by name.
    pub constants: Vec<(&'static str, f64)>,
}

impl Kernel {
    /// A kernel with no override constants.
    pub const fn new(shader: Shader, entry: &'static str) -> Self {
        Kernel {
            shader,
            entry,
            constants: Vec::new(),
        }
    }

    /// The label used for the pipeline, its passes and bind groups, e.g. `conv2d.main[WG_X=16]`.
    pub fn label(&self) -> String {
        let stem = self.shader.name.trim_end_matches(".wgsl");
        if self.constants.is_empty() {
            format!("{stem}.{}", self.entry)
        } else {
            let c: Vec<String> = self
                .constants
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{stem}.{}[{}]", self.entry, c.join(","))
        }
    }
}

/// A compiled kernel: the pipeline and its label.
pub struct Compiled {
    /// The compute pipeline (bind group 0 laid out from the shader).
    pub pipeline: wgpu::ComputePipeline,
    /// Label of the kernel variant.
    pub label: String,
}

/// Shader modules and compute pipelines, created once per device.
pub(crate) struct KernelCache {
    device: wgpu::Device,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<String, Arc<Compiled>>>,
    pub(crate) bind_groups: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
}

/// Identity of a bind group: pipeline label, then (binding, buffer, offset, size) per entry.
pub(crate) type BindKey = (String, Vec<(u32, wgpu::Buffer, u64, u64)>);

impl KernelCache {
    pub(crate) fn new(device: wgpu::Device) -> Self {
        KernelCache {
            device,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            bind_groups: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline for `kernel`, compiled on first use.
    pub(crate) fn get(&self, kernel: &Kernel) -> Arc<Compiled> {
        let label = kernel.label();
        // Held while compiling: two threads must never build two pipelines for one label
        // (auto-layout bind groups are only compatible with the pipeline they came from,
        // and bind groups are cached by label).
        let mut pipelines = self.pipelines.lock().unwrap();
        if let Some(c) = pipelines.get(&label) {
            return c.clone();
        }
        let module = {
            let mut modules = self.modules.lock().unwrap();
            modules
                .entry(kernel.shader.name)
                .or_insert_with(|| {
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(kernel.shader.name),
                            source: wgpu::ShaderSource::Wgsl(kernel.shader.source.into()),
                        })
                })
                .clone()
        };
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: None,
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &kernel.constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        let compiled = Arc::new(Compiled {
            pipeline,
            label: label.clone(),
        });
        pipelines.insert(label, compiled.clone());
        compiled
    }

    /// Number of pipelines compiled so far.
    pub(crate) fn pipeline_count(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(shader: &Shader) -> (naga::Module, naga::valid::ModuleInfo) {
        let module = naga::front::wgsl::parse_str(shader.source)
            .unwrap_or_else(|e| panic!("{}: {}", shader.name, e.emit_to_string(shader.source)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", shader.name, e.emit_to_string(shader.source)));
        (module, info)
    }

    #[test]
    fn every_shader_parses_and_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".wgsl"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = SHADERS.iter().map(|s| s.name.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "every file in shaders/ is listed in SHADERS"
        );
        for s in SHADERS {
            if *s == CONV2D_SUBGROUP || *s == CONV2D_COOP || *s == GEMM_SUBGROUP {
                // Parts of conv2d.wgsl's and gemm.wgsl's builds, validated in them below.
                continue;
            }
            validate(s);
        }
    }

    #[test]
    fn conv_tile_variants_validate_with_their_constants() {
        let dtm = format!("const DTM: u32 = {}u;", crate::ops::conv::DIRECT_PIXELS);
        assert!(CONV2D.source.contains(&dtm), "conv2d.wgsl declares {dtm}");
        let mut modules = HashMap::new();
        for half in [false, true] {
            for subgroup in [false, true] {
                let b = conv2d_build(half, subgroup, 0);
                assert_eq!(b.source.starts_with("enable f16;"), half, "{}", b.name);
                assert_eq!(b.source.contains("alias hf = f16;"), half, "{}", b.name);
                assert_eq!(b.source.contains(F32_ALIAS), !half, "{}", b.name);
                assert_eq!(
                    b.source.contains(CONV2D_SUBGROUP.source),
                    subgroup,
                    "{}",
                    b.name
                );
                assert_eq!(b.source.contains(SUBGROUP_BEGIN), !subgroup, "{}", b.name);
                assert_eq!(b.source.contains(LANE_SUBGROUP), subgroup, "{}", b.name);
                assert_eq!(b.source.contains(LANE_PLAIN), !subgroup, "{}", b.name);
                modules.insert(b.name, validate(&b));
            }
        }
        for size in [8, 16] {
            let b = conv2d_build(false, false, size);
            assert!(b.source.starts_with(COOP_ENABLE), "{}", b.name);
            assert!(b.source.contains(CONV2D.source), "{}", b.name);
            let fragment = format!("coop_mat{size}x{size}<");
            // 4 accumulators, 2 A and 2 B fragments.
            assert_eq!(b.source.matches(&fragment).count(), 8, "{}", b.name);
            assert_eq!(b.source.contains(COOP_8), size == 8, "{}", b.name);
            assert!(
                b.source.contains(&format!("const S: u32 = {size}u;")),
                "{}",
                b.name
            );
            modules.insert(b.name, validate(&b));
        }
        // (The Winograd variants' kernels are checked in `gemm_builds_validate`.)
        for tile in crate::ops::conv::ConvAlgo::all().filter(|t| t.gemm().is_none()) {
            let expected = conv2d_build(
                tile.is_half(),
                tile.uses_subgroups() && tile.coop_size().is_none(),
                tile.coop_size().unwrap_or(0),
            );
            let (module, info) = &modules[expected.name];
            for body in crate::ops::conv::DirectBody::ALL {
                let kernel = tile.kernel(body, 32);
                assert_eq!(kernel.shader, expected);
                let constants: naga::back::PipelineConstants = kernel
                    .constants
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect();
                naga::back::pipeline_constants::process_overrides(
                    module,
                    info,
                    Some((naga::ShaderStage::Compute, kernel.entry)),
                    &constants,
                )
                .unwrap_or_else(|e| panic!("{tile:?} {body:?}: {e}"));
            }
        }
    }

    #[test]
    fn gemm_builds_validate() {
        for subgroup in [false, true] {
            let b = gemm_build(subgroup);
            assert_eq!(
                b.source.contains(GEMM_SUBGROUP.source),
                subgroup,
                "{}",
                b.name
            );
            assert_eq!(b.source.contains(SUBGROUP_BEGIN), !subgroup, "{}", b.name);
            assert_eq!(b.source.contains(LANE_SUBGROUP), subgroup, "{}", b.name);
            assert_eq!(
                b.source.contains("subgroupShuffle("),
                subgroup,
                "{}",
                b.name
            );
            let (module, _) = validate(&b);
            for entry in ["rows", "tiled"] {
                assert!(
                    module.entry_points.iter().any(|e| e.name == entry),
                    "{entry}"
                );
            }
        }
        for tile in crate::ops::conv::ConvAlgo::all().filter(|t| t.gemm().is_some()) {
            let kernel = tile.kernel(crate::ops::conv::DirectBody::ALL[1], 8);
            assert_eq!(kernel.shader, gemm_build(tile.uses_subgroups()), "{tile}");
            let rows = matches!(tile.gemm(), Some(crate::ops::gemm::GemmKernel::Rows { .. }));
            assert_eq!(kernel.entry, if rows { "rows" } else { "tiled" });
        }
        let (module, _) = validate(&WINOGRAD);
        for entry in ["weights", "input", "output"] {
            assert!(
                module.entry_points.iter().any(|e| e.name == entry),
                "{entry}"
            );
        }
    }

    #[test]
    fn weight_grad_variants_validate() {
        let (module, info) = validate(&CONV2D_GRAD);
        for kernel in crate::ops::conv_grad::WeightGradKernel::VARIANTS {
            assert!(
                module.entry_points.iter().any(|e| e.name == kernel.entry()),
                "{kernel:?}: no entry point {}",
                kernel.entry()
            );
            naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((naga::ShaderStage::Compute, kernel.entry())),
                &naga::back::PipelineConstants::default(),
            )
            .unwrap_or_else(|e| panic!("{kernel:?}: {e}"));
        }
    }
}
