//! The library's errors as Python exceptions: `wgstyle.Error` and one subclass per kind.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use wgstyle::Error;

create_exception!(
    wgstyle,
    WgstyleError,
    PyException,
    "Everything wgstyle raises."
);
create_exception!(
    wgstyle,
    InputError,
    WgstyleError,
    "An image or option was rejected before any GPU work."
);
create_exception!(
    wgstyle,
    WeightsError,
    WgstyleError,
    "A style or its weights are missing, unreadable or malformed."
);
create_exception!(
    wgstyle,
    NoAdapterError,
    WgstyleError,
    "No GPU adapter matched, or it could not give a device with what was asked for."
);
create_exception!(
    wgstyle,
    OutOfMemoryError,
    WgstyleError,
    "An image does not fit in the adapter's buffers, the memory budget or host memory."
);

/// The Python exception for a library error, with the library's message.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidInput(_)
        | Error::InvalidSetting { .. }
        | Error::Image { .. }
        | Error::OutputExists(_) => InputError::new_err(msg),
        Error::Weights { .. }
        | Error::StyleNotFound { .. }
        | Error::Catalog(_)
        | Error::Download { .. }
        | Error::Checksum { .. } => WeightsError::new_err(msg),
        Error::NoAdapter { .. } | Error::RequestDevice { .. } | Error::Unsupported { .. } => {
            NoAdapterError::new_err(msg)
        }
        Error::TooLarge { .. } | Error::HostMemory { .. } => OutOfMemoryError::new_err(msg),
        Error::Gpu(ref m) if m.to_ascii_lowercase().contains("out of memory") => {
            OutOfMemoryError::new_err(msg)
        }
        _ => WgstyleError::new_err(msg),
    }
}

/// A weights error: an error met while finding or loading a style (a missing file included).
pub fn weights_err(e: Error) -> PyErr {
    match e {
        Error::Io { .. } => WeightsError::new_err(e.to_string()),
        e => to_py(e),
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<WgstyleError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("WeightsError", py.get_type::<WeightsError>())?;
    m.add("NoAdapterError", py.get_type::<NoAdapterError>())?;
    m.add("OutOfMemoryError", py.get_type::<OutOfMemoryError>())?;
    Ok(())
}
