//! Benchmark reports: the table, the JSON file, and comparisons between two reports.

use serde::{Deserialize, Serialize};

use super::cases::Case;
use super::{BenchOptions, SUITE_VERSION};
use crate::gpu::context::Context;

/// Timing of one case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case name (stable across versions of the same suite).
    pub name: String,
    /// `kernel` or `network`.
    pub kind: String,
    /// Compute passes per run.
    pub passes: usize,
    /// Median milliseconds (GPU timestamps when available, else wall clock).
    pub ms: f64,
    /// Fastest run.
    pub ms_min: f64,
    /// Slowest run.
    pub ms_max: f64,
    /// Median wall-clock milliseconds around submit-and-wait.
    pub wall_ms: f64,
    /// Floating-point operations per run.
    pub flops: f64,
    /// Bytes moved per run.
    pub bytes: f64,
    /// `flops / ms`.
    pub gflops: f64,
    /// `bytes / ms`.
    pub gbps: f64,
    /// `gflops / peak`, when the peak is known.
    pub peak_fraction: Option<f64>,
    /// Repetitions timed.
    pub reps: usize,
    /// Convolution kernel variants the case ran ([`ConvAlgo`](crate::ops::conv::ConvAlgo)'s name
    /// -> dispatches per run): the autotune's choice, or the default with autotune off.
    #[serde(default)]
    pub conv_variants: std::collections::BTreeMap<String, usize>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        f64::NAN
    } else {
        s[s.len() / 2]
    }
}

impl CaseResult {
    pub(crate) fn new(
        case: &Case,
        passes: usize,
        gpu: &[f64],
        wall: &[f64],
        peak: Option<f64>,
    ) -> Self {
        let times = if gpu.is_empty() { wall } else { gpu };
        let ms = median(times);
        let gflops = case.flops / ms / 1e6;
        CaseResult {
            name: case.name.clone(),
            kind: case.kind.to_string(),
            passes,
            ms,
            ms_min: times.iter().copied().fold(f64::INFINITY, f64::min),
            ms_max: times.iter().copied().fold(0.0, f64::max),
            wall_ms: median(wall),
            flops: case.flops,
            bytes: case.bytes,
            gflops,
            gbps: case.bytes / ms / 1e6,
            peak_fraction: peak.map(|p| gflops / p),
            reps: times.len(),
            conv_variants: Default::default(),
        }
    }

    /// [`CaseResult::conv_variants`] as text, e.g. `direct 64x1` or `direct 64x1×14, tiled 8x16×2`.
    pub fn variants_text(&self) -> String {
        if self.conv_variants.is_empty() {
            return "-".into();
        }
        let one = self.conv_variants.len() == 1;
        self.conv_variants
            .iter()
            .map(|(name, n)| {
                if one && *n == 1 {
                    name.clone()
                } else {
                    format!("{name}×{n}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The adapter a report was measured on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdapterReport {
    /// Adapter name.
    pub name: String,
    /// PCI vendor id.
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
    /// Discrete, integrated, CPU, ...
    pub device_type: String,
    /// Vulkan, Metal, DX12, GL.
    pub backend: String,
    /// Driver name.
    pub driver: String,
    /// Driver version details.
    pub driver_info: String,
    /// What the kernels used of the device: `timestamps`, `f16`, `subgroups`, and `coop8x8` /
    /// `coop16x16` for the cooperative-matrix kernels (reports from before this field have
    /// none).
    #[serde(default)]
    pub features: Vec<String>,
}

/// A whole benchmark report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`SUITE_VERSION`].
    pub suite_version: u32,
    /// wgstyle's version.
    pub wgstyle_version: String,
    /// Git commit wgstyle was built from (or `unknown`).
    pub git_commit: String,
    /// The adapter.
    pub adapter: AdapterReport,
    /// Limits in force (name -> value).
    pub limits: std::collections::BTreeMap<String, u64>,
    /// `gpu-timestamps` or `wall-clock`.
    pub timing: String,
    /// Quick subset?
    pub quick: bool,
    /// Convolution autotune: `off`, or `on` with its counters (reports older than the
    /// autotune have none).
    #[serde(default)]
    pub autotune: Option<String>,
    /// Per-case results.
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub(crate) fn new(
        ctx: &Context,
        opts: &BenchOptions,
        timestamps: bool,
        cases: Vec<CaseResult>,
    ) -> Self {
        let i = ctx.adapter_info();
        let l = ctx.limits();
        let limits = [
            (
                "max_storage_buffer_binding_size",
                l.max_storage_buffer_binding_size,
            ),
            ("max_buffer_size", l.max_buffer_size),
            (
                "max_compute_workgroup_storage_size",
                l.max_compute_workgroup_storage_size as u64,
            ),
            (
                "max_compute_invocations_per_workgroup",
                l.max_compute_invocations_per_workgroup as u64,
            ),
            (
                "min_uniform_buffer_offset_alignment",
                l.min_uniform_buffer_offset_alignment as u64,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Report {
            suite_version: SUITE_VERSION,
            wgstyle_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: option_env!("WGSTYLE_GIT_COMMIT")
                .unwrap_or("unknown")
                .to_string(),
            adapter: AdapterReport {
                name: i.name.clone(),
                vendor: i.vendor,
                device: i.device,
                device_type: format!("{:?}", i.device_type),
                backend: format!("{:?}", i.backend),
                driver: i.driver.clone(),
                driver_info: i.driver_info.clone(),
                features: crate::gpu::context::kernel_features(
                    ctx.device().features(),
                    ctx.coop_fragment_sizes(),
                ),
            },
            limits,
            timing: if timestamps {
                "gpu-timestamps"
            } else {
                "wall-clock"
            }
            .to_string(),
            quick: opts.quick,
            autotune: Some(autotune_text(ctx)),
            cases,
        }
    }

    /// The report as an aligned text table.
    ///
    /// The `variant` column names the convolution kernel variant(s) each case ran.
    pub fn table(&self) -> String {
        let a = &self.adapter;
        let mut s = format!(
            "wgstyle bench v{} (suite {}, {}) on {} | {} | {} | {} {} | {}\ntiming: {}; autotune: {}\n",
            self.wgstyle_version,
            self.suite_version,
            self.git_commit,
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            a.driver_info,
            if a.features.is_empty() {
                "-".to_string()
            } else {
                a.features.join(",")
            },
            self.timing,
            self.autotune.as_deref().unwrap_or("unknown")
        );
        s += &format!(
            "{:<58} {:>10} {:>17} {:>9} {:>8} {:>6}  {}\n",
            "case", "ms", "min..max", "GFLOP/s", "GB/s", "peak", "variant"
        );
        for c in &self.cases {
            let peak = c
                .peak_fraction
                .map(|f| format!("{:.0}%", 100.0 * f))
                .unwrap_or_else(|| "-".into());
            s += &format!(
                "{:<58} {:>10.3} {:>8.2}..{:<8.2} {:>9.2} {:>8.2} {:>6}  {}\n",
                c.name,
                c.ms,
                c.ms_min,
                c.ms_max,
                c.gflops,
                c.gbps,
                peak,
                c.variants_text()
            );
        }
        s
    }

    /// Per-case time ratios `other / self` for the cases both reports have, as a table.
    pub fn compare(&self, other: &Report) -> String {
        let mut s = format!(
            "A: {} ({})\nB: {} ({})\n",
            self.adapter.name, self.adapter.backend, other.adapter.name, other.adapter.backend
        );
        if self.suite_version != other.suite_version {
            s += &format!(
                "warning: suite versions differ ({} vs {})\n",
                self.suite_version, other.suite_version
            );
        }
        s += &format!(
            "{:<58} {:>10} {:>10} {:>9}\n",
            "case", "A ms", "B ms", "B/A"
        );
        for a in &self.cases {
            if let Some(b) = other.cases.iter().find(|b| b.name == a.name) {
                s += &format!(
                    "{:<58} {:>10.3} {:>10.3} {:>9.3}\n",
                    a.name,
                    a.ms,
                    b.ms,
                    b.ms / a.ms
                );
            }
        }
        s
    }
}

fn autotune_text(ctx: &Context) -> String {
    if !ctx.autotune() {
        return "off".into();
    }
    let s = ctx.autotune_stats();
    let cache = ctx
        .autotune_cache()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none".into());
    format!(
        "on ({} shapes tuned, {} choices from cache {cache})",
        s.tuned, s.from_cache
    )
}
