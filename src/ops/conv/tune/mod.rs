//! Convolution autotune: the first time a convolution shape is met on a [`Context`] with
//! autotune on, every kernel variant of [`ConvAlgo::all`] that the precision allows and that fits the device is timed on
//! scratch tensors of that shape, each run in its own recording and submission (GPU
//! timestamps when the device has `TIMESTAMP_QUERY`, else the wall clock around submit and
//! wait), and the fastest is used for that shape from then on. Large outputs are timed on a
//! cropped proxy of at most [`MAX_PROXY_PIXELS`] output pixels, and variants that are far
//! behind on a quarter-size probe are not timed further, so that tuning stays short (see
//! `measure.rs` for the procedure).
//!
//! Choices live in the context and, unless [`Context::set_autotune_cache`] says otherwise, in
//! a JSON cache file ([`cache`]), so that a later process on the same adapter,
//! driver and wgstyle version tunes nothing. Autotune is **off** by default in the library
//! (results and timings stay deterministic and nothing is written to disk unless asked): turn
//! it on with [`Context::set_autotune`]. The `wgstyle` command line turns it on except on CPU
//! drivers ([`Context::is_cpu_driver`], where the built-in choice is what tuning picks anyway);
//! `--autotune` / `--no-autotune` force it on / off. With autotune off every convolution uses
//! [`ConvAlgo::default_for_shape`].
//!
//! The state lives in the context's slot for the convolution family
//! ([`Context::state`]`::<Autotuner>()`), shared by its clones; the `impl Context` blocks
//! here and in [`crate::ops::conv::precision`] are the convolution family's settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::gpu::context::Context;
use crate::ops::conv::algo::ConvAlgo;
use crate::ops::conv::params::Params;
use crate::ops::conv::precision::ConvPrecision;
use crate::ops::conv::shape::{ConvMode, ConvShape};

pub mod cache;
pub(crate) mod measure;

/// Counters of a context's autotune.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AutotuneStats {
    /// Shapes timed on this context (tuning runs).
    pub tuned: u64,
    /// Choices read from the cache file.
    pub from_cache: u64,
    /// Shapes with a known choice now.
    pub shapes: usize,
}

/// The convolution family's state in one context (shared by its clones; see
/// [`Context::state`]): autotune choices, precision and pinned variant.
pub(crate) struct Autotuner {
    enabled: AtomicBool,
    cache_file: Mutex<Option<PathBuf>>,
    /// Whether the cache file has been read (reset when the file changes).
    loaded: AtomicBool,
    /// Chosen variant per shape, for each precision separately (F32, F16, and Auto for
    /// [`AUTO_DECIDER`] only).
    choices: Mutex<HashMap<(ConvShape, ConvPrecision), ConvAlgo>>,
    /// See [`Context::set_precision`].
    pub(crate) precision: Mutex<ConvPrecision>,
    /// What `Auto` was resolved to ([`resolve_auto`]).
    auto: Mutex<Option<ConvPrecision>>,
    /// See [`Context::set_conv_variant`].
    forced: Mutex<Option<ConvAlgo>>,
    /// Held while loading or tuning, so that one thread tunes a shape once.
    tuning: Mutex<()>,
    tuned: AtomicU64,
    from_cache: AtomicU64,
    /// Called once, before the first tuning run (see [`Context::on_tuning_start`]).
    on_start: Mutex<Option<TuningCallback>>,
}

/// What [`Context::on_tuning_start`] calls.
pub type TuningCallback = Box<dyn FnOnce(&TuningStart) + Send>;

/// Told once per context, just before its first tuning run, so that a program can say why the
/// first run is slow (the library itself prints nothing).
#[derive(Clone, Debug)]
pub struct TuningStart {
    /// A rough estimate of the whole tuning of one network, in seconds: measured as about
    /// 20 s for the fast network on lavapipe (a CPU driver, where the CLI does not tune by
    /// default), a few seconds on GPUs.
    pub estimate_s: f64,
    /// Where the choices will be kept, so that later runs do not tune again.
    pub cache_file: Option<PathBuf>,
}

impl Default for Autotuner {
    fn default() -> Self {
        Autotuner {
            enabled: AtomicBool::new(false),
            cache_file: Mutex::new(cache::default_cache_file()),
            loaded: AtomicBool::new(false),
            choices: Mutex::new(HashMap::new()),
            precision: Mutex::new(ConvPrecision::F32),
            auto: Mutex::new(None),
            forced: Mutex::new(None),
            tuning: Mutex::new(()),
            tuned: AtomicU64::new(0),
            from_cache: AtomicU64::new(0),
            on_start: Mutex::new(None),
        }
    }
}

impl Autotuner {
    fn get(&self, s: ConvShape, p: ConvPrecision) -> Option<ConvAlgo> {
        self.choices.lock().unwrap().get(&(s, p)).copied()
    }

    fn insert(&self, s: ConvShape, p: ConvPrecision, t: ConvAlgo) {
        self.choices.lock().unwrap().insert((s, p), t);
    }

    fn load(&self, ctx: &Context) {
        if self.loaded.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(path) = self.cache_file.lock().unwrap().clone() else {
            return;
        };
        let found = cache::load(&path, ctx.adapter_info());
        let mut choices = self.choices.lock().unwrap();
        for (shape, precision, tile) in found {
            if tile.usable(ctx)
                && precision.allows(tile)
                && choices.insert((shape, precision), tile).is_none()
            {
                self.from_cache.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The kernel variant for the convolution `p` on `ctx`, chosen for one image of its shape
/// (whatever `p.n`, so that a batch computes each image exactly as a single run): the one set with
/// [`Context::set_conv_variant`], else [`ConvAlgo::default_for_shape`] (in f16:
/// [`ConvAlgo::default_on`] in half precision) with autotune off, else the remembered or cached choice,
/// else the winner of a tuning run among the variants that precision allows.
pub(crate) fn algo_for(ctx: &Context, p: &Params) -> ConvAlgo {
    let at = ctx.state::<Autotuner>();
    if let Some(t) = *at.forced.lock().unwrap() {
        return t;
    }
    let precision = ctx.effective_precision();
    // Chosen per image: a layer runs the same variant whatever the batch, so that batching
    // never changes a result (variants sum in different orders and may differ in the last bit).
    let shape = ConvShape {
        n: 1,
        ..ConvShape::of(p)
    };
    let default = if precision == ConvPrecision::F16 {
        ConvAlgo::default_on(ctx, p.cout as usize).half_of()
    } else {
        ConvAlgo::default_for_shape(ctx, &shape)
    };
    if !at.enabled.load(Ordering::Relaxed) {
        return default;
    }
    choice(ctx, shape, precision, default)
}

/// The convolution whose timing decides [`ConvPrecision::Auto`] for a whole context: a
/// residual-block convolution of the fast network (3×3, 128→128, reflection padding) at 32×32.
pub const AUTO_DECIDER: ConvShape = ConvShape {
    n: 1,
    h: 32,
    w: 32,
    cin: 128,
    ho: 32,
    wo: 32,
    cout: 128,
    kh: 3,
    kw: 3,
    stride: 1,
    mode: ConvMode::Reflect,
};

/// What [`ConvPrecision::Auto`] means on `ctx` (with autotune on and `SHADER_F16`): f16 when
/// the f16 variants win on [`AUTO_DECIDER`] by [`measure::F16_MARGIN`], else
/// f32. Decided once per context (and cached on disk like any choice), so that every
/// convolution, whatever its shape or batch, runs in the same precision.
pub(crate) fn resolve_auto(ctx: &Context) -> ConvPrecision {
    let at = ctx.state::<Autotuner>();
    if let Some(p) = *at.auto.lock().unwrap() {
        return p;
    }
    let default = ConvAlgo::default_for_shape(ctx, &AUTO_DECIDER);
    let tile = choice(ctx, AUTO_DECIDER, ConvPrecision::Auto, default);
    let p = if tile.is_half() {
        ConvPrecision::F16
    } else {
        ConvPrecision::F32
    };
    *at.auto.lock().unwrap() = Some(p);
    p
}

/// The remembered, cached or newly tuned variant for `shape` in `precision`.
fn choice(
    ctx: &Context,
    shape: ConvShape,
    precision: ConvPrecision,
    default: ConvAlgo,
) -> ConvAlgo {
    let at = ctx.state::<Autotuner>();
    if let Some(t) = at.get(shape, precision) {
        return t;
    }
    let _tuning = at.tuning.lock().unwrap();
    at.load(ctx);
    if let Some(t) = at.get(shape, precision) {
        return t;
    }
    let proxy = shape.proxy();
    let (tile, times) = match at.get(proxy, precision) {
        Some(t) => (t, Default::default()),
        None => {
            announce(ctx);
            match measure::measure(ctx, proxy, default, precision) {
                Some((t, times)) => {
                    at.tuned.fetch_add(1, Ordering::Relaxed);
                    at.insert(proxy, precision, t);
                    (t, times)
                }
                // Nothing could be timed (e.g. a GPU error): keep the default, in memory only.
                None => {
                    at.insert(shape, precision, default);
                    return default;
                }
            }
        }
    };
    at.insert(shape, precision, tile);
    if let Some(path) = at.cache_file.lock().unwrap().clone() {
        let mut entries = vec![(shape, precision, tile, times.clone())];
        if proxy != shape {
            entries.push((proxy, precision, tile, times));
        }
        if let Err(e) = cache::store(&path, ctx.adapter_info(), &entries) {
            log::warn!("autotune cache not written: {e}");
        }
    }
    tile
}

/// Calls the [`Context::on_tuning_start`] callback, if any (once: it is taken out).
fn announce(ctx: &Context) {
    let at = ctx.state::<Autotuner>();
    let Some(f) = at.on_start.lock().unwrap().take() else {
        return;
    };
    let estimate_s = if ctx.is_cpu_driver() { 20.0 } else { 3.0 };
    f(&TuningStart {
        estimate_s,
        cache_file: at.cache_file.lock().unwrap().clone(),
    });
}

impl Context {
    /// Registers `f` to be called once, just before this context's first tuning run (not when
    /// every choice comes from the cache file, nor with autotune off). Replaces an earlier one.
    pub fn on_tuning_start(&self, f: impl FnOnce(&TuningStart) + Send + 'static) {
        *self.state::<Autotuner>().on_start.lock().unwrap() = Some(Box::new(f));
    }

    /// Turns convolution autotuning on or off (default: off; see [`crate::ops::conv::tune`]).
    /// Off, every convolution uses [`ConvAlgo::default_for_shape`], whatever was tuned before.
    pub fn set_autotune(&self, on: bool) {
        self.state::<Autotuner>()
            .enabled
            .store(on, Ordering::Relaxed);
    }

    /// Whether convolution autotuning is on.
    pub fn autotune(&self) -> bool {
        self.state::<Autotuner>().enabled.load(Ordering::Relaxed)
    }

    /// The autotune cache file, or `None` to keep choices in memory only. Default:
    /// [`cache::default_cache_file`] (read when the context first uses its convolution state).
    pub fn set_autotune_cache(&self, file: Option<PathBuf>) {
        let at = self.state::<Autotuner>();
        let _tuning = at.tuning.lock().unwrap();
        *at.cache_file.lock().unwrap() = file;
        at.loaded.store(false, Ordering::SeqCst);
    }

    /// The autotune cache file in use, if any.
    pub fn autotune_cache(&self) -> Option<PathBuf> {
        self.state::<Autotuner>().cache_file.lock().unwrap().clone()
    }

    /// Counters of the autotune (tuning runs, choices read from the cache file).
    pub fn autotune_stats(&self) -> AutotuneStats {
        let at = self.state::<Autotuner>();
        let stats = AutotuneStats {
            tuned: at.tuned.load(Ordering::Relaxed),
            from_cache: at.from_cache.load(Ordering::Relaxed),
            shapes: at.choices.lock().unwrap().len(),
        };
        stats
    }

    /// Every convolution shape with a known variant (tuned, cached or pinned) in the current
    /// [`Context::effective_precision`], sorted.
    pub fn conv_choices(&self) -> Vec<(ConvShape, ConvAlgo)> {
        let precision = self.effective_precision();
        let mut v: Vec<_> = self
            .state::<Autotuner>()
            .choices
            .lock()
            .unwrap()
            .iter()
            .filter(|((_, p), _)| *p == precision)
            .map(|((s, _), t)| (*s, *t))
            .collect();
        v.sort_by_key(|(s, _)| *s);
        v
    }

    /// Makes every convolution recorded from now on use `tile`, whatever the precision and the
    /// autotune say (for benchmarks, tests and comparisons); `None` goes back to the normal
    /// choice. A variant the device cannot run is refused with [`Error::Unsupported`].
    pub fn set_conv_variant(&self, tile: Option<ConvAlgo>) -> crate::error::Result<()> {
        if let Some(t) = tile {
            t.check_usable(self)?;
        }
        *self.state::<Autotuner>().forced.lock().unwrap() = tile;
        Ok(())
    }

    /// The variant set with [`Context::set_conv_variant`], if any.
    pub fn conv_variant(&self) -> Option<ConvAlgo> {
        *self.state::<Autotuner>().forced.lock().unwrap()
    }

    /// Pins the variant used for convolutions of `shape` while autotune is on, in the current
    /// [`Context::effective_precision`] (in memory only; the cache file is not changed).
    pub fn set_conv_choice(&self, shape: ConvShape, tile: ConvAlgo) {
        let precision = self.effective_precision();
        self.state::<Autotuner>().insert(shape, precision, tile);
    }
}
