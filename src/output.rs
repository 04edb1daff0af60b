//! The one output policy of every file wgstyle writes.
//!
//! - An output is never an input of the run: inputs are compared by file identity (device and
//!   inode, after the output's parent directory exists), so `nope/../a.png`, hard links,
//!   symlinks and bind mounts of an input are all caught.
//! - An existing file is never replaced unless the policy says `force`.
//! - Bytes go to a temporary file in the output's directory, which is renamed into place only
//!   once complete (mode 0644); on an error the temporary file is removed.
//! - Temporary files are listed in a process-wide registry; after
//!   [`install_signal_cleanup`], SIGINT, SIGTERM and SIGHUP remove every listed file (and kill
//!   registered child processes) before the process exits.
//!
//! ```no_run
//! # fn main() -> wgstyle::Result<()> {
//! use wgstyle::output::{write_atomic, OutputPolicy};
//! let mut policy = OutputPolicy::new(false);
//! policy.add_input("photo.jpg".as_ref());
//! let mut out = policy.claim("photo.out.txt".as_ref())?; // validated before any work
//! out.write(|f| std::io::Write::write_all(f, b"done"))?;
//! write_atomic("other.txt".as_ref(), &policy, |f| std::io::Write::write_all(f, b"x"))?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

mod signals;

pub use signals::{
    install_signal_cleanup, interrupt_flag, interrupted, register_child, register_temp,
    unregister_child, unregister_temp, Cooperate,
};

/// The identity of a file: device and inode (elsewhere than Unix: the canonical path).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileId(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

impl FileId {
    /// The identity of the file `path` names (symlinks followed); `None` if it does not exist.
    pub fn of(path: &Path) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path).ok()?;
            Some(FileId((m.dev(), m.ino())))
        }
        #[cfg(not(unix))]
        {
            path.canonicalize().ok().map(FileId)
        }
    }
}

/// What may be written: whether existing files are replaced, and the inputs that never are.
#[derive(Debug, Default)]
pub struct OutputPolicy {
    force: bool,
    inputs: Vec<(FileId, PathBuf)>,
    /// Outputs claimed so far: (parent directory, file name).
    claimed: Mutex<HashSet<(FileId, OsString)>>,
}

/// An output that passed the policy's checks: its directory exists, it is no input, and it
/// may be (re)placed. Nothing has been written yet.
#[derive(Debug)]
pub struct Reservation {
    path: PathBuf,
    dir: PathBuf,
    replace: bool,
}

impl OutputPolicy {
    /// A policy that replaces existing files only when `force`.
    pub fn new(force: bool) -> Self {
        OutputPolicy {
            force,
            ..Default::default()
        }
    }

    /// Whether existing outputs are replaced.
    pub fn force(&self) -> bool {
        self.force
    }

    /// Protects `path` (an input of the run) from ever being written. Paths that do not
    /// exist are ignored (reading them fails on its own).
    pub fn add_input(&mut self, path: &Path) {
        if let Some(id) = FileId::of(path) {
            self.inputs.push((id, path.to_path_buf()));
        }
    }

    /// [`add_input`](Self::add_input) for each path.
    pub fn add_inputs<'a>(&mut self, paths: impl IntoIterator<Item = &'a Path>) {
        for p in paths {
            self.add_input(p);
        }
    }

    /// Checks that `path` may be written, before any work is done: not `-` or empty, not a
    /// directory, its parent a directory (created when missing), not an input of the run
    /// (by file identity), not claimed twice, and not existing unless the policy forces.
    /// An existing file without force is [`Error::OutputExists`].
    pub fn claim(&self, path: &Path) -> Result<Reservation> {
        let bad = |why: &str| Error::InvalidInput(format!("output {}: {why}", path.display()));
        let text = path.as_os_str().to_string_lossy();
        if text.is_empty() {
            return Err(Error::InvalidInput("empty output path".into()));
        }
        if text == "-" {
            return Err(bad(
                "writing to standard output is not supported; name a file",
            ));
        }
        if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
            return Err(bad("names a directory, not a file"));
        }
        let name = path
            .file_name()
            .ok_or_else(|| bad("has no file name"))?
            .to_os_string();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if dir.exists() && !dir.is_dir() {
            return Err(bad(&format!("{} is not a directory", dir.display())));
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let dir_id = FileId::of(&dir).ok_or_else(|| bad("its directory vanished"))?;
        let exists = std::fs::symlink_metadata(path).is_ok();
        if exists {
            if path.is_dir() {
                return Err(bad("is a directory"));
            }
            if let Some(id) = FileId::of(path) {
                if let Some((_, input)) = self.inputs.iter().find(|(i, _)| *i == id) {
                    return Err(Error::InvalidInput(format!(
                        "output {} would overwrite the input {} of this run (inputs are \
                         never overwritten)",
                        path.display(),
                        input.display()
                    )));
                }
            }
        }
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        if claimed.contains(&(dir_id.clone(), name.clone())) {
            return Err(bad("is written twice in this run"));
        }
        if exists && !self.force {
            return Err(Error::OutputExists(path.to_path_buf()));
        }
        claimed.insert((dir_id, name));
        Ok(Reservation {
            path: path.to_path_buf(),
            dir,
            replace: exists && self.force,
        })
    }
}

impl Reservation {
    /// The output path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an existing file will be replaced.
    pub fn replaces(&self) -> bool {
        self.replace
    }

    /// A registered temporary file beside the output, ending with `suffix` (e.g. `.mp4`, so
    /// that a program writing it picks the right format). Removed when dropped, on an error,
    /// and on SIGINT/SIGTERM/SIGHUP once [`install_signal_cleanup`] ran.
    pub fn temp(&self, suffix: &str) -> Result<TempOutput> {
        TempOutput::new(self, suffix)
    }

    /// Writes the output atomically: `write` fills a temporary file, which is flushed,
    /// synced, given mode 0644 and renamed into place. On any error nothing is renamed and
    /// the temporary file is removed. The output may be written again later in the run (e.g.
    /// a checkpoint): it is this run's own file.
    pub fn write(
        &mut self,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut tmp = self.temp(".tmp")?;
        write(tmp.file_mut())
            .and_then(|_| tmp.file_mut().flush())
            .map_err(|e| Error::io(&self.path, e))?;
        tmp.persist()?;
        self.replace = true;
        Ok(())
    }

    /// [`write`](Self::write) of a byte slice.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.write(|f| f.write_all(bytes))
    }
}

/// A temporary file beside an output, registered for removal on signals.
#[derive(Debug)]
pub struct TempOutput {
    file: Option<std::fs::File>,
    path: PathBuf,
    output: PathBuf,
    replace: bool,
    done: bool,
}

impl TempOutput {
    fn new(r: &Reservation, suffix: &str) -> Result<Self> {
        let (file, path) = signals::create_registered(&r.dir, suffix)?;
        Ok(TempOutput {
            file: Some(file),
            path,
            output: r.path.clone(),
            replace: r.replace,
            done: false,
        })
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open temporary file.
    pub fn file_mut(&mut self) -> &mut std::fs::File {
        self.file.as_mut().expect("open until persisted")
    }

    /// Syncs the file, gives it mode 0644 and renames it to the output. Fails with
    /// [`Error::Cancelled`] once a signal arrived, and with [`Error::OutputExists`] when the
    /// output appeared meanwhile and may not be replaced.
    pub fn persist(mut self) -> Result<()> {
        let out = self.output.clone();
        {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(|e| Error::io(&self.path, e))?;
            f.sync_all().map_err(|e| Error::io(&out, e))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| Error::io(&out, e))?;
            }
        }
        self.file = None;
        signals::rename_registered(&self.path, &out, self.replace)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.done {
            self.file = None;
            signals::remove_registered(&self.path);
        }
    }
}

/// Claims `path` under `policy` and writes it atomically (see [`Reservation::write`]).
pub fn write_atomic(
    path: &Path,
    policy: &OutputPolicy,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    policy.claim(path)?.write(write)
}

/// [`write_atomic`] of a byte slice.
pub fn write_bytes_atomic(path: &Path, policy: &OutputPolicy, bytes: &[u8]) -> Result<()> {
    write_atomic(path, policy, |f| f.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_inputs_by_identity_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.png");
        std::fs::write(&a, b"input").unwrap();
        let link = dir.path().join("hard.png");
        std::fs::hard_link(&a, &link).unwrap();
        let mut p = OutputPolicy::new(true);
        p.add_input(&a);
        let dotdot = dir.path().join("nope/../a.png");
        for out in [&a, &link, &dotdot] {
            let e = p.claim(out).unwrap_err();
            assert!(e.to_string().contains("overwrite the input"), "{e}");
        }
        assert_eq!(std::fs::read(&a).unwrap(), b"input");
        let other = dir.path().join("b.png");
        std::fs::write(&other, b"old").unwrap();
        let strict = OutputPolicy::new(false);
        assert!(matches!(strict.claim(&other), Err(Error::OutputExists(_))));
        write_bytes_atomic(&other, &p, b"new").unwrap();
        assert_eq!(std::fs::read(&other).unwrap(), b"new");
        assert!(p.claim(&other).unwrap_err().to_string().contains("twice"));
        assert!(p.claim(Path::new("-")).is_err());
        assert!(p.claim(dir.path()).is_err());
    }

    #[test]
    fn a_file_that_appears_after_the_claim_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("late.png");
        let mut r = OutputPolicy::new(false).claim(&out).unwrap();
        std::fs::write(&out, b"someone else's").unwrap();
        assert!(matches!(
            r.write_bytes(b"ours"),
            Err(Error::OutputExists(_))
        ));
        assert_eq!(std::fs::read(&out).unwrap(), b"someone else's");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // With force the claimed output is replaced, and may be rewritten (checkpoints).
        let mut r = OutputPolicy::new(true).claim(&out).unwrap();
        r.write_bytes(b"one").unwrap();
        r.write_bytes(b"two").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"two");
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/out.bin");
        let p = OutputPolicy::new(false);
        let e = write_atomic(&out, &p, |_| Err(std::io::Error::other("encoder failed")));
        assert!(e.is_err());
        assert!(!out.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        // Written files get mode 0644.
        let p = OutputPolicy::new(false);
        write_bytes_atomic(&dir.path().join("ok.bin"), &p, b"x").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(dir.path().join("ok.bin")).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o644);
        }
    }
}
