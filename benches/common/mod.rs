//! Shared set-up of the benchmark binaries: `../shared` lookup, environment knobs, adapter line.
#![allow(dead_code)]

use std::path::PathBuf;

use wgstyle::Context;

/// `$WGSTYLE_SHARED`, else `../shared` beside the project.
pub fn shared() -> PathBuf {
    std::env::var_os("WGSTYLE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// A comma-separated list of sizes from `var`, or `default`.
pub fn sizes(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// Comma-separated `size:batch` pairs from `var` (e.g. `64:2,256:4`), or `default`.
pub fn size_batches(var: &str, default: &str) -> Vec<(usize, usize)> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|p| {
            let (s, n) = p.split_once(':')?;
            Some((s.trim().parse().ok()?, n.trim().parse().ok()?))
        })
        .collect()
}

/// A number from `var`, or `default`.
pub fn number(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The adapter wgstyle picks, after printing what it is (name, backend, type, driver).
pub fn context() -> Context {
    let ctx = Context::new().expect("GPU adapter");
    let i = ctx.adapter_info();
    println!(
        "adapter: {} | backend {:?} | {:?} | driver {} {}",
        i.name, i.backend, i.device_type, i.driver, i.driver_info
    );
    ctx
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median wall-clock milliseconds of `reps` calls of `run` (at least one).
pub fn median_ms(reps: usize, mut run: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t0 = std::time::Instant::now();
            run();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut t)
}
