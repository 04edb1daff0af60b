//! The autotune cache file: JSON, one section per adapter key ([`adapter_key`]: adapter name,
//! backend, driver, driver info, wgstyle version and a hash of every shader a tuned variant
//! runs and of the variants' names), each
//! with the chosen variant and the measured times per convolution shape.
//!
//! Written atomically (temporary file in the same directory, then rename), merged with what
//! the file holds at the time of writing, under an exclusive lock on `autotune.json.lock`
//! beside it (so processes tuning at the same time keep each other's entries). A missing,
//! unreadable or corrupt file reads as empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::conv::algo::ConvAlgo;
use crate::ops::conv::precision::ConvPrecision;
use crate::ops::conv::shape::ConvShape;
use crate::ops::conv::tune::measure::Measured;

/// Version of the file layout; a file of another version is ignored (and replaced on write).
pub const CACHE_FORMAT: u32 = 1;

/// The file name inside the cache directory.
pub const CACHE_FILE_NAME: &str = "autotune.json";

#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    adapters: BTreeMap<String, AdapterSection>,
}

#[derive(Serialize, Deserialize)]
struct AdapterSection {
    adapter: String,
    backend: String,
    driver: String,
    driver_info: String,
    wgstyle_version: String,
    convs: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    shape: ConvShape,
    /// The effective precision the choice was made for (files before 0.2: f32).
    #[serde(default)]
    precision: ConvPrecision,
    /// [`ConvAlgo::name`] of the choice.
    tile: String,
    /// Milliseconds (fastest run) per variant name on the shape's proxy, or on its top-left
    /// `ms_rows` rows (and as many columns) on slow devices; empty when the choice was copied
    /// from an earlier tuning of the same proxy.
    #[serde(default)]
    ms: BTreeMap<String, f64>,
    /// Output rows of the runs in `ms`.
    #[serde(default)]
    ms_rows: u32,
    /// Milliseconds per variant on the quarter-size probe (variants far behind there are not
    /// timed on the proxy).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    probe_ms: BTreeMap<String, f64>,
}

/// `$WGSTYLE_CACHE_DIR/autotune.json`, else `autotune.json` in wgstyle's directory of the
/// platform's cache directory (`~/.cache/wgstyle` on Linux, `~/Library/Caches/wgstyle` on
/// macOS, `%LOCALAPPDATA%\wgstyle` on Windows); `None` when there is no such directory.
pub fn default_cache_file() -> Option<PathBuf> {
    let dir = match std::env::var_os("WGSTYLE_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        #[cfg(not(target_arch = "wasm32"))]
        None => dirs::cache_dir()?.join("wgstyle"),
        // The web has no file system (and autotune stays off there).
        #[cfg(target_arch = "wasm32")]
        None => return None,
    };
    Some(dir.join(CACHE_FILE_NAME))
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every shader source that a variant of [`ConvAlgo::all`] can run (as built for it), by
/// name, without repeats: what the timings in the cache depend on besides the adapter.
pub fn tuned_sources() -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&'static str, &'static str)> = Vec::new();
    for shader in ConvAlgo::all().flat_map(ConvAlgo::shaders) {
        if !v.iter().any(|(name, _)| *name == shader.name) {
            v.push((shader.name, shader.source));
        }
    }
    v
}

/// The names of every variant of [`ConvAlgo::all`].
pub fn tuned_variants() -> Vec<String> {
    ConvAlgo::all().map(|a| a.to_string()).collect()
}

/// The key of an adapter's section: choices are only reused on the same adapter, backend,
/// driver and driver version, by the same wgstyle version with the same shaders
/// ([`tuned_sources`]) and variants ([`tuned_variants`]).
pub fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    key_with(info, &tuned_sources(), &tuned_variants())
}

/// [`adapter_key`] for the given shader sources (name, text) and variant names.
pub fn key_with(info: &wgpu::AdapterInfo, sources: &[(&str, &str)], variants: &[String]) -> String {
    let mut text = String::new();
    for (name, source) in sources {
        text += &format!("{name}\n{}\n{source}\n", source.len());
    }
    for name in variants {
        text += &format!("{name}\n");
    }
    format!(
        "{} | {:?} | {} | {} | wgstyle {} | kernels {:016x}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        env!("CARGO_PKG_VERSION"),
        fnv1a(&text)
    )
}

/// An exclusive lock on `path` + `.lock` (released when the file is dropped), or `None` where
/// it cannot be had.
fn lock(path: &Path) -> Option<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let locked = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .and_then(|file| file.lock().map(|()| file));
    match locked {
        Ok(file) => Some(file),
        Err(e) => {
            log::warn!(
                "autotune cache not locked ({}): {e}",
                name.to_string_lossy()
            );
            None
        }
    }
}

/// The largest autotune cache file read (a few KB per adapter in practice).
const MAX_CACHE_BYTES: u64 = 8 << 20;

fn read(path: &Path) -> CacheFile {
    if !path.exists() {
        return CacheFile::default();
    }
    // A regular file of bounded size only: a FIFO would hang the read, /dev/zero fill memory.
    let text = match crate::weights::read_limited(path, MAX_CACHE_BYTES, "autotune cache") {
        Ok(t) => t,
        Err(e) => {
            log::warn!("autotune cache ignored: {e}");
            return CacheFile::default();
        }
    };
    match serde_json::from_slice::<CacheFile>(&text) {
        Ok(f) if f.format == CACHE_FORMAT => f,
        Ok(f) => {
            log::warn!(
                "autotune cache {}: format {} ignored",
                path.display(),
                f.format
            );
            CacheFile::default()
        }
        Err(e) => {
            log::warn!("autotune cache {} ignored: {e}", path.display());
            CacheFile::default()
        }
    }
}

/// The choices the file at `path` holds for this adapter (empty when the file is missing or
/// corrupt, or names a variant this version does not know).
pub(crate) fn load(
    path: &Path,
    info: &wgpu::AdapterInfo,
) -> Vec<(ConvShape, ConvPrecision, ConvAlgo)> {
    load_key(path, &adapter_key(info))
}

/// [`load`] from the section with this key.
fn load_key(path: &Path, key: &str) -> Vec<(ConvShape, ConvPrecision, ConvAlgo)> {
    let mut file = read(path);
    let Some(section) = file.adapters.remove(key) else {
        return Vec::new();
    };
    section
        .convs
        .into_iter()
        .filter_map(|e| Some((e.shape, e.precision, e.tile.parse::<ConvAlgo>().ok()?)))
        .collect()
}

/// Adds (or replaces) `entries` in this adapter's section of the file at `path`, creating the
/// directory and the file if needed.
pub(crate) fn store(
    path: &Path,
    info: &wgpu::AdapterInfo,
    entries: &[(ConvShape, ConvPrecision, ConvAlgo, Measured)],
) -> Result<()> {
    store_key(path, info, &adapter_key(info), entries)
}

/// [`store`] into the section with this key.
fn store_key(
    path: &Path,
    info: &wgpu::AdapterInfo,
    key: &str,
    entries: &[(ConvShape, ConvPrecision, ConvAlgo, Measured)],
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    // Read, merge and replace under an exclusive lock on a sidecar file, so that processes
    // tuning at the same time (parallel runs, tests) keep each other's entries. Where the
    // file system cannot lock, the merge still happens, unguarded.
    let _lock = lock(path);
    let mut file = read(path);
    file.format = CACHE_FORMAT;
    let section = file
        .adapters
        .entry(key.to_string())
        .or_insert_with(|| AdapterSection {
            adapter: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            wgstyle_version: env!("CARGO_PKG_VERSION").to_string(),
            convs: Vec::new(),
        });
    for (shape, precision, tile, times) in entries {
        section
            .convs
            .retain(|e| (e.shape, e.precision) != (*shape, *precision));
        section.convs.push(Entry {
            shape: *shape,
            precision: *precision,
            tile: tile.to_string(),
            ms: times
                .ms
                .iter()
                .map(|(t, ms)| (t.to_string(), *ms))
                .collect(),
            ms_rows: times.rows,
            probe_ms: times
                .probe_ms
                .iter()
                .map(|(t, ms)| (t.to_string(), *ms))
                .collect(),
        });
    }
    section.convs.sort_by_key(|e| (e.shape, e.precision));
    let text = serde_json::to_string_pretty(&file)
        .map_err(|e| Error::InvalidInput(format!("autotune cache: {e}")))?;
    crate::fsutil::write_bytes_atomic(path, true, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::shape::ConvMode;

    fn shape(cin: u32) -> ConvShape {
        ConvShape {
            n: 1,
            h: 8,
            w: 8,
            cin,
            ho: 8,
            wo: 8,
            cout: 32,
            kh: 3,
            kw: 3,
            stride: 1,
            mode: ConvMode::Zero,
        }
    }

    /// Processes (here threads, each with its own lock file handle) storing at the same time
    /// keep each other's entries: without the lock, read-merge-replace loses some of them.
    #[test]
    fn concurrent_stores_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autotune.json");
        let info = wgpu::AdapterInfo {
            name: "test adapter".into(),
            driver: "test".into(),
            ..wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan)
        };
        let tile = ConvAlgo::TILED_8X16;
        std::thread::scope(|s| {
            for t in 0..8u32 {
                let (path, info) = (&path, &info);
                s.spawn(move || {
                    for k in 0..10u32 {
                        let entry = (
                            shape(t * 100 + k + 1),
                            ConvPrecision::F32,
                            tile,
                            Measured::default(),
                        );
                        store(path, info, &[entry]).unwrap();
                    }
                });
            }
        });
        let got = load(&path, &info);
        assert_eq!(got.len(), 80, "entries lost by concurrent stores");
        assert!(got
            .iter()
            .all(|(_, p, t)| *p == ConvPrecision::F32 && *t == tile));
    }

    /// A FIFO (a read would block forever) or a device (endless bytes) as the cache file reads
    /// as an empty cache.
    #[cfg(unix)]
    #[test]
    fn fifo_and_device_caches_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("autotune.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let info = wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan);
        assert!(load(&fifo, &info).is_empty());
        assert!(load(Path::new("/dev/zero"), &info).is_empty());
    }

    /// The key covers every shader a tuned variant runs, not only `conv2d.wgsl`: a changed
    /// GEMM or Winograd source, or a new variant, moves choices to a new section (the old
    /// entry is not found), and unchanged sources keep finding it.
    #[test]
    fn changed_gemm_or_winograd_source_invalidates_entries() {
        let sources = tuned_sources();
        use crate::ops::conv::shaders::{conv2d_build, gemm_build};
        use crate::ops::conv::winograd::WINOGRAD;
        let (gemm, gemm_sg) = (gemm_build(false), gemm_build(true));
        for shader in [
            conv2d_build(false, false, 0),
            conv2d_build(true, true, 0),
            conv2d_build(true, false, 16),
            gemm,
            gemm_sg,
            WINOGRAD,
        ] {
            assert!(
                sources.contains(&(shader.name, shader.source)),
                "{} not in the key",
                shader.name
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autotune.json");
        let info = wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan);
        let variants = tuned_variants();
        let key = key_with(&info, &sources, &variants);
        assert_eq!(key, adapter_key(&info));
        let entry = (
            shape(4),
            ConvPrecision::F32,
            ConvAlgo::WINOGRAD_ROWS,
            Measured::default(),
        );
        store_key(&path, &info, &key, &[entry]).unwrap();
        assert_eq!(
            load(&path, &info).len(),
            1,
            "unchanged sources keep the entry"
        );
        for edited in [gemm.name, gemm_sg.name, WINOGRAD.name] {
            let changed: Vec<(&str, String)> = sources
                .iter()
                .map(|(n, s)| {
                    let s = if *n == edited {
                        format!("{s}\n// edited\n")
                    } else {
                        s.to_string()
                    };
                    (*n, s)
                })
                .collect();
            let changed: Vec<(&str, &str)> =
                changed.iter().map(|(n, s)| (*n, s.as_str())).collect();
            let other = key_with(&info, &changed, &variants);
            assert!(
                load_key(&path, &other).is_empty(),
                "{edited} changed, entry kept"
            );
        }
        assert_eq!(load_key(&path, &key).len(), 1);
        let mut more = variants.clone();
        more.push("direct 128x1".into());
        let other = key_with(&info, &sources, &more);
        assert!(
            load_key(&path, &other).is_empty(),
            "new variant, entry kept"
        );
    }
}
