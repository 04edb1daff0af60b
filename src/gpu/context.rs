//! GPU context: instance, adapter choice, device and queue, shared by everything else.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::kernels::KernelCache;
use crate::gpu::pool::BufferPool;

/// How to pick an adapter. The defaults read `WGPU_BACKEND` and `WGSTYLE_ADAPTER`.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Backends to consider (`None`: `WGPU_BACKEND`, else all native backends).
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter name (`None`: `WGSTYLE_ADAPTER`, else any).
    pub name: Option<String>,
}

impl AdapterChoice {
    /// The choice described by `WGPU_BACKEND` (vulkan, metal, dx12, gl) and `WGSTYLE_ADAPTER`.
    pub fn from_env() -> Self {
        AdapterChoice {
            backends: wgpu::Backends::from_env(),
            name: std::env::var("WGSTYLE_ADAPTER")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// Parses a backend name as `WGPU_BACKEND` would (`vulkan`, `metal`, `dx12`, `gl`).
    pub fn parse_backend(name: &str) -> Result<wgpu::Backends> {
        let b = wgpu::Backends::from_comma_list(name);
        if b.is_empty() {
            return Err(Error::InvalidInput(format!(
                "unknown backend '{name}' (expected vulkan, metal, dx12 or gl)"
            )));
        }
        Ok(b)
    }

    /// The backends asked for, or `None` for "the primary ones, then GL".
    fn explicit_backends(&self) -> Option<wgpu::Backends> {
        self.backends.or_else(wgpu::Backends::from_env)
    }

    fn name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| std::env::var("WGSTYLE_ADAPTER").ok())
            .filter(|s| !s.is_empty())
    }
}

/// An adapter and what wgstyle's kernels can use of it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// Name, backend, device type and driver.
    pub info: wgpu::AdapterInfo,
    /// [`kernel_features`] of the adapter.
    pub features: Vec<String>,
}

/// Names of what the kernels use of a device with `features` and cooperative-matrix fragment
/// sizes `coop`: `timestamps`, `f16` (the half-precision variants), `subgroups` (the direct
/// kernel's shared weight loads) and `coop8x8` / `coop16x16` (as in `wgstyle adapters` and
/// benchmark reports).
pub fn kernel_features(features: wgpu::Features, coop: &[u32]) -> Vec<String> {
    let mut v: Vec<String> = [
        (wgpu::Features::TIMESTAMP_QUERY, "timestamps"),
        (wgpu::Features::SHADER_F16, "f16"),
        (wgpu::Features::SUBGROUP, "subgroups"),
    ]
    .into_iter()
    .filter(|(flag, _)| features.contains(*flag))
    .map(|(_, name)| name.to_string())
    .collect();
    v.extend(coop.iter().map(|s| format!("coop{s}x{s}")));
    v
}

/// Fails when `WGPU_BACKEND` is set to a value that names no backend (instead of finding no
/// adapter on it).
pub fn check_backend_env() -> Result<()> {
    match std::env::var("WGPU_BACKEND") {
        Ok(v) if !v.trim().is_empty() && wgpu::Backends::from_comma_list(&v).is_empty() => {
            Err(Error::InvalidInput(format!(
                "unknown WGPU_BACKEND '{v}' (expected vulkan, metal, dx12 or gl)"
            )))
        }
        _ => Ok(()),
    }
}

/// Lists every adapter on the given backends (all native backends by default).
pub fn enumerate_adapters(backends: Option<wgpu::Backends>) -> Vec<AdapterSummary> {
    let backends = backends
        .or_else(wgpu::Backends::from_env)
        .unwrap_or(ALL_NATIVE);
    adapters_on(backends)
        .iter()
        .map(|a| AdapterSummary {
            info: a.get_info(),
            features: kernel_features(a.features(), &coop_sizes(a)),
        })
        .collect()
}

const ALL_NATIVE: wgpu::Backends = wgpu::Backends::PRIMARY.union(wgpu::Backends::GL);

fn adapters_on(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance = new_instance(backends);
    pollster::block_on(instance.enumerate_adapters(backends))
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// What the cooperative-matrix kernels need of a device.
const COOP_FEATURES: wgpu::Features = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::SUBGROUP);

/// Whether to use cooperative matrices (not with `WGSTYLE_NO_COOP=1`).
fn coop_wanted() -> bool {
    std::env::var("WGSTYLE_NO_COOP").map_or(true, |v| v.is_empty() || v == "0")
}

/// The fragment sizes `S` at which the `coop` kernels run on `adapter`: its `S×S×S`
/// f16×f16→f32 cooperative-matrix configurations (wgpu offers 8 and 16), where it has the
/// features the kernels need, one subgroup size (their workgroup is 4 subgroups) and room for
/// such a workgroup; none with `WGSTYLE_NO_COOP=1`.
fn coop_sizes(adapter: &wgpu::Adapter) -> Vec<u32> {
    let (info, limits) = (adapter.get_info(), adapter.limits());
    let workgroup = 4 * info.subgroup_max_size;
    if !coop_wanted()
        || !adapter.features().contains(COOP_FEATURES)
        || info.subgroup_min_size != info.subgroup_max_size
        || workgroup > limits.max_compute_invocations_per_workgroup
        || workgroup > limits.max_compute_workgroup_size_x
    {
        return Vec::new();
    }
    let mut sizes: Vec<u32> = adapter
        .cooperative_matrix_properties()
        .iter()
        .filter(|p| {
            p.m_size == p.n_size
                && p.n_size == p.k_size
                && p.ab_type == wgpu::CooperativeScalarType::F16
                && p.cr_type == wgpu::CooperativeScalarType::F32
        })
        .map(|p| p.m_size)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// [`coop_sizes`] where `device` was created with the features the kernels need, else none.
fn device_coop_sizes(adapter: &wgpu::Adapter, device: &wgpu::Device) -> Vec<u32> {
    if device.features().contains(COOP_FEATURES) {
        coop_sizes(adapter)
    } else {
        Vec::new()
    }
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

pub(crate) struct Inner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub pool: Arc<BufferPool>,
    pub kernels: KernelCache,
    pub errors: Arc<Mutex<Vec<String>>>,
    /// Per-type state of the op families (see [`Context::state`]).
    pub states: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// Fragment sizes of the cooperative-matrix kernels the device runs (see
    /// [`Context::coop_fragment_sizes`]).
    pub coop: Vec<u32>,
}

/// A GPU device and queue with wgstyle's buffer pool and kernel cache.
///
/// Cheap to clone; clones share the device, pool and caches. Create one with
/// [`Context::new`] (adapter chosen for you) or [`Context::from_device`] (your own device).
///
/// Threads: a context may be shared by several threads on Vulkan, Metal and DX12. On wgpu's
/// GL backend every use of a device goes through one lock that gives up with a panic after
/// 6 s ("Could not lock adapter context"), and CPU GL drivers (llvmpipe) run a submission's
/// dispatches inside `queue.submit`: there, use one context per thread (or one thread) when
/// a submission can take seconds.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .finish()
    }
}

impl Context {
    /// Picks an adapter as [`AdapterChoice::from_env`] describes (high performance first)
    /// and creates a device with the adapter's own buffer-size limits.
    pub fn new() -> Result<Self> {
        Self::with_choice(&AdapterChoice::from_env())
    }

    /// Picks an adapter according to `choice` and creates a device on it.
    pub fn with_choice(choice: &AdapterChoice) -> Result<Self> {
        // An unknown WGPU_BACKEND would otherwise select no backend and read as "no GPU".
        if choice.backends.is_some_and(|b| b.is_empty()) {
            check_backend_env()?;
            return Err(Error::InvalidInput("no backend selected".into()));
        }
        // Without an explicit request, look at Vulkan/Metal/DX12 first and at GL only when
        // they have nothing (GL is the slowest path, and probing it is noisy on headless Linux).
        let explicit = choice.explicit_backends();
        let mut backends = explicit.unwrap_or(wgpu::Backends::PRIMARY);
        let mut adapters = adapters_on(backends);
        if adapters.is_empty() && explicit.is_none() {
            adapters = adapters_on(wgpu::Backends::GL);
            backends = ALL_NATIVE;
        }
        let wanted = choice.name().map(|s| s.to_lowercase());
        let found: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
            })
            .collect();
        let adapter = adapters
            .into_iter()
            .filter(|a| {
                let info = a.get_info();
                wanted
                    .as_ref()
                    .is_none_or(|w| info.name.to_lowercase().contains(w.as_str()))
            })
            .min_by_key(|a| {
                let info = a.get_info();
                (
                    type_rank(info.device_type),
                    info.backend != wgpu::Backend::Vulkan,
                )
            });
        let Some(adapter) = adapter else {
            let mut filter = String::new();
            if let Some(w) = &wanted {
                filter += &format!(" whose name contains '{w}'");
            }
            filter += &format!(" on backends {backends:?}");
            return Err(Error::NoAdapter {
                filter,
                found: if found.is_empty() {
                    "none".into()
                } else {
                    found.join("; ")
                },
            });
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        // Timestamps for `--timing` and the benchmark; f16 for `--precision f16|auto`;
        // subgroups for the direct convolution's shared weight loads.
        let features = adapter.features()
            & (wgpu::Features::TIMESTAMP_QUERY
                | wgpu::Features::SHADER_F16
                | wgpu::Features::SUBGROUP);
        let request = |features: wgpu::Features, experimental: bool| {
            let desc = wgpu::DeviceDescriptor {
                label: Some("wgstyle"),
                required_features: features,
                required_limits: limits.clone(),
                memory_hints: wgpu::MemoryHints::Performance,
                experimental_features: if experimental {
                    // SAFETY: wgpu's experimental features may have bugs with undefined
                    // behaviour; wgstyle uses only EXPERIMENTAL_COOPERATIVE_MATRIX, in one
                    // kernel that is tested against a CPU reference where a driver has it, and
                    // that the autotune uses only after its output agreed with the default
                    // variant's and it was measured faster (`WGSTYLE_NO_COOP=1`: not at all).
                    unsafe { wgpu::ExperimentalFeatures::enabled() }
                } else {
                    wgpu::ExperimentalFeatures::disabled()
                },
                ..Default::default()
            };
            pollster::block_on(adapter.request_device(&desc))
        };
        // Cooperative matrices (matrix units) where the adapter has a configuration the
        // `coop` kernel can use; should the device refuse them, without.
        let with_coop = (!coop_sizes(&adapter).is_empty())
            .then(|| request(features | COOP_FEATURES, true).ok())
            .flatten();
        let (device, queue) = match with_coop {
            Some(dq) => dq,
            None => request(features, false).map_err(|source| Error::RequestDevice {
                adapter: info.name.clone(),
                source,
            })?,
        };
        let coop = device_coop_sizes(&adapter, &device);
        Ok(Self::build(device, queue, coop))
    }

    /// Wraps a device and queue that the embedding program created itself.
    ///
    /// wgstyle uses the device's limits as they are; request the adapter's
    /// `max_storage_buffer_binding_size` and `max_buffer_size` for large images. The
    /// cooperative-matrix kernels need the adapter: see [`Context::from_adapter_device`].
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        Self::build(device, queue, Vec::new())
    }

    /// As [`Context::from_device`], for a device created on `adapter`: where the device has
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX` (and `SHADER_F16`), the cooperative-matrix
    /// convolution kernels run on the adapter's f16→f32 configurations.
    pub fn from_adapter_device(
        adapter: &wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Self {
        let coop = device_coop_sizes(adapter, &device);
        Self::build(device, queue, coop)
    }

    /// Whether the subgroup builds of the kernels (weights or matrix blocks handed round by
    /// `subgroupShuffle` among 8 invocations) run here: the device has `SUBGROUP` and its
    /// subgroups have at least 8 invocations.
    pub fn has_subgroups_of_8(&self) -> bool {
        self.device().features().contains(wgpu::Features::SUBGROUP)
            && self.adapter_info().subgroup_min_size >= 8
    }

    /// Whether the adapter is a CPU driver (lavapipe, llvmpipe, SwiftShader, WARP): see
    /// [`is_cpu_adapter`]. There the built-in kernel choice is what the autotune picks anyway
    /// (BENCHMARKS.md), so tuning only costs time.
    pub fn is_cpu_driver(&self) -> bool {
        is_cpu_adapter(self.adapter_info())
    }

    /// Fragment sizes (8, 16) of the cooperative-matrix convolution kernels this context can
    /// run: the adapter's square f16×f16→f32 configurations that wgpu supports, where the
    /// device was created with `EXPERIMENTAL_COOPERATIVE_MATRIX`, `SHADER_F16` and `SUBGROUP`
    /// and the adapter has one subgroup size and room for a workgroup of 4 subgroups. Empty
    /// otherwise, and when `WGSTYLE_NO_COOP=1` was set as the context was created.
    pub fn coop_fragment_sizes(&self) -> &[u32] {
        &self.inner.coop
    }

    fn build(device: wgpu::Device, queue: wgpu::Queue, coop: Vec<u32>) -> Self {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let info = device.adapter_info();
        let limits = device.limits();
        let pool = Arc::new(BufferPool::new(device.clone()));
        Context {
            inner: Arc::new(Inner {
                kernels: KernelCache::new(device.clone()),
                device,
                queue,
                info,
                limits,
                pool,
                errors,
                states: Mutex::new(HashMap::new()),
                coop,
            }),
        }
    }

    /// The context's one value of type `T`, created with `T::default()` on first use and
    /// shared by every clone of the context: where an op family keeps its own state (e.g.
    /// the convolution's autotune choices and precision), so that the engine knows no op.
    pub fn state<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut states = self.inner.states.lock().unwrap();
        let any = states
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        // The map is keyed by the value's own type id, so the downcast cannot fail.
        any.downcast::<T>()
            .unwrap_or_else(|_| unreachable!("state keyed by its type id"))
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Name, backend, device type and driver of the adapter.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The device limits in force.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Number of compute pipelines compiled so far (each kernel variant once).
    pub fn pipeline_count(&self) -> usize {
        self.inner.kernels.pipeline_count()
    }

    /// Drops the pool's free buffers, returning their memory to the driver.
    pub fn trim_pool(&self) {
        self.inner.pool.trim()
    }

    /// Limits what the buffer pool holds: before a new buffer would take it beyond `bytes`,
    /// its free buffers are dropped (the memory in use is bounded by the work itself, e.g. a
    /// [`Stylizer`](crate::Stylizer)'s memory budget). `None`: keep every free buffer.
    pub fn set_pool_limit(&self, bytes: Option<u64>) {
        self.inner.pool.set_limit(bytes)
    }

    /// The limit set with [`Context::set_pool_limit`], if any.
    pub fn pool_limit(&self) -> Option<u64> {
        self.inner.pool.limit()
    }

    /// Resets the pool's peak-memory counter to the memory in use now.
    pub fn reset_peak_memory(&self) {
        self.inner.pool.reset_peak()
    }

    /// Counters of the buffer pool (buffers created, bytes held, peak).
    pub fn pool_stats(&self) -> crate::gpu::pool::PoolStats {
        self.inner.pool.stats()
    }

    /// The largest single buffer (in bytes) a kernel may bind on this device.
    pub fn max_binding_bytes(&self) -> u64 {
        let l = &self.inner.limits;
        l.max_storage_buffer_binding_size.min(l.max_buffer_size)
    }

    /// Returns the first GPU error reported since the last call, if any.
    pub(crate) fn take_error(&self) -> Result<()> {
        let mut errs = self.inner.errors.lock().unwrap();
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.join("; ");
        errs.clear();
        Err(Error::Gpu(msg))
    }

    /// Blocks until all submitted GPU work has finished.
    pub fn wait(&self) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(e.to_string()))?;
        self.take_error()
    }
}

/// Whether `info` describes a CPU driver (lavapipe, llvmpipe, SwiftShader, WARP): wgpu reports
/// it as [`wgpu::DeviceType::Cpu`], or its name says so.
pub fn is_cpu_adapter(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || [
            "llvmpipe",
            "lavapipe",
            "swiftshader",
            "softpipe",
            "microsoft basic render",
        ]
        .iter()
        .any(|n| name.contains(n))
}
