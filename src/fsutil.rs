//! File helpers kept for existing callers: thin wrappers over [`crate::output`], the one
//! output policy (temporary file in the same directory, then rename; never an existing file
//! unless `overwrite`).

use std::path::Path;

use crate::error::Result;
use crate::output::{self, OutputPolicy};

/// Writes `path` atomically under an [`OutputPolicy`] that replaces an existing file only
/// when `overwrite` (and protects no inputs: callers with inputs use [`crate::output`]).
pub fn write_atomic(
    path: &Path,
    overwrite: bool,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    output::write_atomic(path, &OutputPolicy::new(overwrite), write)
}

/// [`write_atomic`] of a byte slice.
pub fn write_bytes_atomic(path: &Path, overwrite: bool, bytes: &[u8]) -> Result<()> {
    output::write_bytes_atomic(path, &OutputPolicy::new(overwrite), bytes)
}
