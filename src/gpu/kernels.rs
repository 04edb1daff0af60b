//! Pipeline cache: every kernel variant is compiled once and reused for every shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A WGSL module: a file of `shaders/`, or a build that the op module owning it assembled
/// from several (see [`crate::gpu::wgsl`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shader {
    /// File or build name, e.g. `crop.wgsl` or `conv2d_f16`: it keys the module cache and
    /// starts the kernels' labels, so it is unique.
    pub name: &'static str,
    /// The WGSL text.
    pub source: &'static str,
}

/// A [`Shader`] that is one file of `shaders/` as it is (no preprocessor directives), e.g.
/// `shader_file!("crop.wgsl")`. Op modules declare their shaders with it.
macro_rules! shader_file {
    ($file:literal) => {
        $crate::gpu::kernels::Shader {
            name: $file,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),
        }
    };
}
pub(crate) use shader_file;

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

/// naga validation of shader builds, for the op modules' tests.
#[cfg(test)]
pub(crate) mod naga_check {
    use super::{Kernel, Shader};

    /// `shader` parsed and validated with every capability; panics with naga's report.
    pub(crate) fn validate(shader: &Shader) -> (naga::Module, naga::valid::ModuleInfo) {
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

    /// `kernel`'s entry point of `module` with its override constants applied (as a pipeline
    /// would be made), validated again.
    pub(crate) fn with_constants(
        module: &naga::Module,
        info: &naga::valid::ModuleInfo,
        kernel: &Kernel,
    ) -> Result<(), String> {
        if !module.entry_points.iter().any(|e| e.name == kernel.entry) {
            return Err(format!("no entry point {}", kernel.entry));
        }
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
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}
