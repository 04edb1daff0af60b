//! Shared test helpers: one GPU context per test binary, ../shared lookup, CPU references.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use wgstyle::gpu::record::Recorder;
use wgstyle::{Context, Tensor};

pub mod cli;
pub mod fuzz;
pub mod npy;
pub mod reference;

/// The GPU context shared by every test of this binary (on the GL backend: by every test
/// running on this thread).
///
/// wgpu's GL backend serialises all use of a device behind one lock that panics after 6 s
/// ("Could not lock adapter context"), and llvmpipe's GL runs a submission's dispatches
/// inside `queue.submit`: tests running in parallel on one GL context fail as soon as one of
/// them submits more than a few seconds of work. On GL each test thread gets its own context.
pub fn ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    thread_local! {
        static PER_THREAD: std::cell::OnceCell<&'static Context> = const { std::cell::OnceCell::new() };
    }
    let shared = CTX.get_or_init(|| {
        let c = new_context();
        eprintln!("adapter: {:?}", c.adapter_info());
        c
    });
    if shared.adapter_info().backend != wgpu::Backend::Gl {
        return shared;
    }
    PER_THREAD.with(|c| *c.get_or_init(|| Box::leak(Box::new(new_context()))))
}

/// A context of its own, for a test that measures or limits the buffer pool.
pub fn new_context() -> Context {
    Context::new().expect("a GPU adapter (lavapipe on CI: apt-get install mesa-vulkan-drivers)")
}

/// A context on a device the test created itself, as an embedding program would: the default
/// adapter, `DeviceDescriptor::default()` (no optional features, default limits).
#[allow(dead_code)]
pub fn embedded_context() -> Context {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap();
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    Context::from_device(device, queue)
}

/// The autotune cache directory for the `wgstyle` processes that tests start (as
/// `WGSTYLE_CACHE_DIR`), so that they never write to the user's cache directory.
pub fn autotune_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("autotune-cache")
}

/// `data` uploaded as a tensor of `shape` on [`ctx`].
pub fn up(shape: [usize; 4], data: &[f32]) -> Tensor {
    Tensor::upload(ctx(), "test", shape, data).unwrap()
}

/// Records `f` on [`ctx`], submits, and reads back the tensors it returns.
pub fn run_all(f: impl FnOnce(&mut Recorder) -> Vec<Tensor>) -> Vec<Vec<f32>> {
    let mut rec = Recorder::new(ctx(), "test");
    let out = f(&mut rec);
    let rbs: Vec<_> = out.iter().map(|t| rec.readback(t)).collect();
    rec.submit().unwrap();
    rbs.into_iter().map(|r| r.read(ctx()).unwrap()).collect()
}

/// Records `f` on [`ctx`], submits, and reads back the tensor it returns, with its shape.
#[allow(dead_code)]
pub fn run(f: impl FnOnce(&mut Recorder) -> Tensor) -> (Vec<f32>, [usize; 4]) {
    let mut rec = Recorder::new(ctx(), "test");
    let y = f(&mut rec);
    let rb = rec.readback(&y);
    rec.submit().unwrap();
    let shape = rb.shape();
    (rb.read(ctx()).unwrap(), shape)
}

/// `../shared` (or `$WGSTYLE_SHARED`). `None` (after saying so) when absent, except under
/// `CI=true`, where a missing `../shared` fails the test.
pub fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("WGSTYLE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if p.join("golden").is_dir() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{} is missing (CI=true requires ../shared or WGSTYLE_SHARED)",
            p.display()
        );
    }
    eprintln!("SKIPPED: {} not found (set WGSTYLE_SHARED)", p.display());
    None
}

/// Returns early from a test when ../shared is absent (outside CI).
#[macro_export]
macro_rules! shared_or_skip {
    () => {
        match common::shared() {
            Some(p) => p,
            None => return,
        }
    };
}

/// All float32 tensors of a safetensors file: name -> (shape, values).
pub fn read_safetensors(path: &std::path::Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            assert_eq!(v.dtype(), safetensors::Dtype::F32, "{name}");
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, (v.shape().to_vec(), vals))
        })
        .collect()
}

/// Deterministic pseudo-random numbers (xorshift64*), uniform in [lo, hi).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// max |a - b| / max |b| (b is the reference).
pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    // `f64::max` would skip a NaN: any non-finite value is an infinite error.
    if a.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((*x as f64 - y).abs()));
    diff / scale
}

/// The nine fast-style networks in ../shared/weights/styles.
#[allow(dead_code)]
pub const ALL_STYLES: [&str; 9] = [
    "la_muse",
    "mathura",
    "matilde_perez",
    "matta",
    "rain_princess",
    "scream",
    "udnie",
    "wave",
    "wreck",
];

/// The largest per-channel difference between two 8-bit images of the same size.
pub fn max_diff_u8(a: &image::RgbImage, b: &image::RgbImage) -> i32 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(p, q)| (*p as i32 - *q as i32).abs())
        .max()
        .unwrap()
}
