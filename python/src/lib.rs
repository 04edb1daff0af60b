//! wgstyle's Python module `wgstyle._wgstyle` (re-exported by the pure-Python `wgstyle`).
//!
//! Every call that does GPU work, reads weights or downloads releases the GIL.

mod errors;
mod optimize;
mod stylizer;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::fetch::{
    check_present, destination, fetch_entry, mirror_from_env, timeout_from_env, FetchEvent,
    FetchOptions, Present,
};
use wgstyle::weights::search::SearchPath;

use errors::{to_py, WeightsError};

/// Every adapter wgpu sees: name, backend, device_type, driver, features.
#[pyfunction]
fn adapters(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let list = py.detach(|| wgstyle::gpu::context::enumerate_adapters(None));
    list.iter()
        .map(|a| stylizer::adapter_dict(py, &a.info, &a.features))
        .collect()
}

/// Every style found in the search path or known to the catalog, as dicts with
/// name, path (None when only fetchable) and license.
#[pyfunction]
#[pyo3(signature = (weights_dir=None))]
fn styles(
    py: Python<'_>,
    weights_dir: Option<std::path::PathBuf>,
) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let search = SearchPath::from_env(weights_dir.as_deref());
    let catalog = Catalog::builtin();
    let found = py.detach(|| search.list());
    let mut names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    names.extend(catalog.styles.keys().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let d = PyDict::new(py);
            d.set_item("name", name)?;
            let path = found.iter().find(|(n, _)| n == name).map(|(_, p)| p);
            d.set_item("path", path)?;
            d.set_item("license", catalog.get(name).map(|s| s.license.as_str()))?;
            Ok(d)
        })
        .collect()
}

/// Downloads a catalog entry (a style, or `vgg19`) into the user data directory (every
/// file's sha256 checked, then converted) and returns its path. A copy already there and
/// verified is kept unless `force`.
#[pyfunction]
#[pyo3(signature = (name, *, force=false))]
fn fetch(py: Python<'_>, name: &str, force: bool) -> PyResult<std::path::PathBuf> {
    let catalog = Catalog::builtin();
    let entry = catalog.require(name).map_err(to_py)?;
    let dest = destination(name, entry).ok_or_else(|| {
        WeightsError::new_err("no user data directory to download into: set WGSTYLE_DATA_DIR")
    })?;
    if !force && matches!(check_present(entry, &dest), Present::Verified) {
        return Ok(dest);
    }
    let mirror = mirror_from_env();
    let base = catalog.base_url_for(name, entry, mirror.as_deref());
    let opts = FetchOptions {
        timeout: timeout_from_env().map_err(to_py)?,
        overwrite: force,
        cancel: None,
        mirror: mirror.is_some(),
    };
    let work = tempfile::Builder::new()
        .prefix("wgstyle-fetch-")
        .tempdir()
        .map_err(|e| WeightsError::new_err(format!("creating a temporary directory: {e}")))?;
    py.detach(|| {
        let mut quiet = |_: FetchEvent<'_>| {};
        fetch_entry(&catalog, name, &base, &dest, work.path(), &opts, &mut quiet)
    })
    .map_err(to_py)
}

/// Reads an image file as an `H×W×3` (or, with alpha, `H×W×4`) `uint8` array, as the CLI
/// reads its inputs.
#[pyfunction]
fn load_image<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
) -> PyResult<Bound<'py, numpy::PyArray3<u8>>> {
    let pic = py
        .detach(|| wgstyle::image_io::read(&path))
        .map_err(to_py)?;
    stylizer::to_array(py, &pic.rgb, pic.alpha.as_ref())
}

#[pymodule]
fn _wgstyle(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<stylizer::PyStylizer>()?;
    m.add_function(wrap_pyfunction!(adapters, m)?)?;
    m.add_function(wrap_pyfunction!(styles, m)?)?;
    m.add_function(wrap_pyfunction!(fetch, m)?)?;
    m.add_function(wrap_pyfunction!(load_image, m)?)?;
    m.add_function(wrap_pyfunction!(optimize::optimize, m)?)?;
    Ok(())
}
