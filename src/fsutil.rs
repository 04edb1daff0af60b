//! File helpers: atomic writes (temporary file in the same directory, then rename).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `path` atomically: the bytes go to a temporary file beside it, which is renamed
/// over `path` only once complete. With `overwrite == false` an existing `path` is an error
/// and is never replaced. On Unix the file gets mode 0644.
pub fn write_atomic(
    path: &Path,
    overwrite: bool,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".wgstyle-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    write(tmp.as_file_mut())
        .and_then(|_| tmp.as_file_mut().flush())
        .map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        // Temporary files are created private (0600); outputs get the usual 0644.
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(perms)
            .map_err(|e| Error::io(path, e))?;
    }
    if overwrite {
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    } else {
        tmp.persist_noclobber(path)
            .map_err(|e| Error::io(path, e.error))?;
    }
    Ok(())
}

/// [`write_atomic`] of a byte slice.
pub fn write_bytes_atomic(path: &Path, overwrite: bool, bytes: &[u8]) -> Result<()> {
    write_atomic(path, overwrite, |f| f.write_all(bytes))
}
