//! `wgstyle.Stylizer`: a transform network on one device, numpy arrays in and out.

use std::str::FromStr;
use std::sync::Mutex;

use image::{GrayImage, RgbImage};
use numpy::ndarray::Array3;
use numpy::{PyArray3, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use wgstyle::gpu::context::AdapterChoice;
use wgstyle::ops::conv::ConvPrecision;
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::search::{resolve, SearchPath};
use wgstyle::{Context, Error};

use crate::errors::{to_py, weights_err, InputError};

/// The process's default device (no adapter or backend asked for), with the precision it
/// was set up for: one device per process unless asked otherwise.
static DEFAULT_CONTEXT: Mutex<Option<(Context, ConvPrecision)>> = Mutex::new(None);

/// A context on the adapter asked for (or the process's default one), set up as the CLI
/// does: no autotune on CPU drivers, `precision` for the convolutions.
pub fn context(
    adapter: Option<String>,
    backend: Option<&str>,
    precision: ConvPrecision,
) -> Result<Context, Error> {
    let default = adapter.is_none() && backend.is_none();
    if default {
        let cached = DEFAULT_CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((ctx, p)) = cached.as_ref().filter(|(_, p)| *p == precision) {
            debug_assert_eq!(*p, precision);
            return Ok(ctx.clone());
        }
    }
    let choice = AdapterChoice {
        backends: backend.map(AdapterChoice::parse_backend).transpose()?,
        name: adapter,
    };
    let ctx = Context::with_choice(&choice)?;
    ctx.set_autotune(!ctx.is_cpu_driver());
    ctx.set_precision(precision)?;
    if default {
        let mut cached = DEFAULT_CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
        cached.get_or_insert_with(|| (ctx.clone(), precision));
    }
    Ok(ctx)
}

/// An adapter's description as a Python dict.
pub fn adapter_dict<'py>(
    py: Python<'py>,
    info: &wgpu::AdapterInfo,
    features: &[String],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &info.name)?;
    d.set_item("backend", format!("{:?}", info.backend).to_lowercase())?;
    d.set_item("device_type", format!("{:?}", info.device_type))?;
    d.set_item(
        "driver",
        format!("{} {}", info.driver, info.driver_info).trim(),
    )?;
    d.set_item("features", PyList::new(py, features)?)?;
    Ok(d)
}

/// An image as the library takes it: RGB, and the alpha channel kept aside.
pub struct Pixels {
    pub rgb: RgbImage,
    pub alpha: Option<GrayImage>,
}

/// Reads an `H×W×3` or `H×W×4` `uint8` array.
pub fn pixels(obj: &Bound<'_, PyAny>) -> PyResult<Pixels> {
    let arr: PyReadonlyArrayDyn<'_, u8> = obj.extract().map_err(|_| {
        let ty = obj
            .getattr("dtype")
            .map(|d| format!("an array of {d}"))
            .unwrap_or_else(|_| format!("a {}", obj.get_type()));
        InputError::new_err(format!(
            "expected an H×W×3 or H×W×4 uint8 array (or a PIL image), got {ty}"
        ))
    })?;
    let shape = arr.shape().to_vec();
    let [h, w, c] = shape[..] else {
        return Err(InputError::new_err(format!(
            "expected an H×W×3 or H×W×4 uint8 array, got shape {shape:?}"
        )));
    };
    if !(c == 3 || c == 4) || h == 0 || w == 0 {
        return Err(InputError::new_err(format!(
            "expected an H×W×3 or H×W×4 uint8 array with H, W > 0, got shape {shape:?}"
        )));
    }
    if h > u32::MAX as usize || w > u32::MAX as usize {
        return Err(InputError::new_err(format!("image too large: {w}x{h}")));
    }
    let view = arr.as_array();
    let (mut rgb, mut alpha) = (Vec::with_capacity(h * w * 3), Vec::new());
    match view.as_slice() {
        // Contiguous RGB: one copy.
        Some(s) if c == 3 => rgb.extend_from_slice(s),
        // Contiguous RGBA: one pass over the bytes.
        Some(s) => {
            for px in s.chunks_exact(c) {
                rgb.extend_from_slice(&px[..3]);
                if c == 4 {
                    alpha.push(px[3]);
                }
            }
        }
        None => {
            for y in 0..h {
                for x in 0..w {
                    for k in 0..3 {
                        rgb.push(view[[y, x, k]]);
                    }
                    if c == 4 {
                        alpha.push(view[[y, x, 3]]);
                    }
                }
            }
        }
    }
    let (w, h) = (w as u32, h as u32);
    Ok(Pixels {
        rgb: RgbImage::from_raw(w, h, rgb).expect("sizes match"),
        alpha: (c == 4).then(|| GrayImage::from_raw(w, h, alpha).expect("sizes match")),
    })
}

/// An `H×W×3` or (with alpha) `H×W×4` `uint8` array.
pub fn to_array<'py>(
    py: Python<'py>,
    rgb: &RgbImage,
    alpha: Option<&GrayImage>,
) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let data = match alpha {
        None => rgb.as_raw().clone(),
        Some(a) => {
            let mut v = Vec::with_capacity(h * w * 4);
            for (p, &al) in rgb.as_raw().chunks_exact(3).zip(a.as_raw()) {
                v.extend_from_slice(p);
                v.push(al);
            }
            v
        }
    };
    let c = if alpha.is_some() { 4 } else { 3 };
    let arr =
        Array3::from_shape_vec((h, w, c), data).map_err(|e| InputError::new_err(e.to_string()))?;
    Ok(PyArray3::from_owned_array(py, arr))
}

/// A style network on one GPU device. Thread-safe: one instance can be shared by threads;
/// the GPU work runs with the GIL released.
#[pyclass(module = "wgstyle._wgstyle", name = "Stylizer", frozen)]
pub struct PyStylizer {
    inner: wgstyle::Stylizer,
    style: String,
}

#[pymethods]
impl PyStylizer {
    #[new]
    #[pyo3(signature = (style, *, adapter=None, backend=None, precision="auto", max_memory=None, weights_dir=None))]
    fn new(
        py: Python<'_>,
        style: &str,
        adapter: Option<String>,
        backend: Option<String>,
        precision: &str,
        max_memory: Option<u64>,
        weights_dir: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let precision = ConvPrecision::from_str(precision).map_err(to_py)?;
        if max_memory == Some(0) {
            return Err(InputError::new_err("max_memory must be positive"));
        }
        let search = SearchPath::from_env(weights_dir.as_deref());
        let resolved = resolve(style, &search, &Catalog::builtin()).map_err(weights_err)?;
        py.detach(|| {
            let weights = wgstyle::weights::load_transform(&resolved.path).map_err(weights_err)?;
            let ctx = context(adapter, backend.as_deref(), precision).map_err(to_py)?;
            let mut inner = wgstyle::Stylizer::new(&ctx, &weights).map_err(to_py)?;
            inner.set_memory_budget(max_memory);
            Ok(PyStylizer {
                inner,
                style: resolved.name,
            })
        })
    }

    /// The style's name.
    #[getter]
    fn style(&self) -> &str {
        &self.style
    }

    /// The device in use: name, backend, device_type, driver, features.
    #[getter]
    fn adapter<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let ctx = self.inner.context();
        let info = ctx.adapter_info();
        let features = wgstyle::gpu::context::kernel_features(
            ctx.device().features(),
            ctx.coop_fragment_sizes(),
        );
        adapter_dict(py, info, &features)
    }

    /// Stylizes same-sized arrays (the Python wrapper handles PIL images).
    #[pyo3(signature = (images, *, preserve_colors=false, strength=1.0))]
    fn stylize_arrays<'py>(
        &self,
        py: Python<'py>,
        images: Vec<Bound<'py, PyAny>>,
        preserve_colors: bool,
        strength: f32,
    ) -> PyResult<Vec<Bound<'py, PyArray3<u8>>>> {
        if !(0.0..=1.0).contains(&strength) {
            return Err(InputError::new_err(format!(
                "strength must be between 0 and 1, got {strength}"
            )));
        }
        let (rgbs, alphas): (Vec<RgbImage>, Vec<Option<GrayImage>>) = images
            .iter()
            .map(|i| pixels(i).map(|p| (p.rgb, p.alpha)))
            .collect::<PyResult<Vec<_>>>()?
            .into_iter()
            .unzip();
        let out = py.detach(|| -> Result<Vec<RgbImage>, Error> {
            let styled = self.inner.stylize_batch(&rgbs)?;
            styled
                .into_iter()
                .zip(&rgbs)
                .map(|(mut s, original)| {
                    if preserve_colors {
                        s = wgstyle::color::preserve_colors(&s, original)?;
                    }
                    if strength < 1.0 {
                        s = wgstyle::color::blend(&s, original, strength)?;
                    }
                    Ok(s)
                })
                .collect()
        });
        let out = out.map_err(to_py)?;
        out.iter()
            .zip(&alphas)
            .map(|(rgb, alpha)| to_array(py, rgb, alpha.as_ref()))
            .collect()
    }
}
