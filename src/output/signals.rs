//! The process-wide registry of live temporary files and child processes, and the signal
//! handling that cleans them up.
//!
//! A signal handler may only do async-signal-safe things, so it just writes the signal
//! number into a pipe; a thread reading that pipe does the cleanup: it marks the process
//! interrupted, removes every registered temporary file (under the registry lock, so a rename
//! in progress either completed or never happens), kills registered children, and exits with
//! 128 + the signal number. Code that reacts to the interruption itself (see [`Cooperate`])
//! gets a few seconds to exit on its own first. A second signal exits at once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static COOPERATING: AtomicUsize = AtomicUsize::new(0);
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn temps() -> MutexGuard<'static, Vec<PathBuf>> {
    TEMPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The flag set when SIGINT, SIGTERM or SIGHUP arrived (after [`install_signal_cleanup`]);
/// long-running loops may poll it (e.g. as `stylize_video`'s cancel flag).
pub fn interrupt_flag() -> &'static AtomicBool {
    &INTERRUPTED
}

/// The signal that interrupted the process, if one did.
pub fn interrupted() -> Option<i32> {
    INTERRUPTED
        .load(Ordering::Acquire)
        .then(|| SIGNAL.load(Ordering::Acquire))
}

/// While alive, the signal thread leaves the exit to the code that polls [`interrupt_flag`]
/// (for up to 10 s) instead of exiting right after the cleanup.
pub struct Cooperate(());

impl Cooperate {
    /// Starts cooperating.
    pub fn begin() -> Self {
        COOPERATING.fetch_add(1, Ordering::SeqCst);
        Cooperate(())
    }
}

impl Drop for Cooperate {
    fn drop(&mut self) {
        COOPERATING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Registers a temporary file or directory made elsewhere (e.g. a download folder), to be
/// removed (directories recursively) if a signal interrupts the process.
pub fn register_temp(path: &Path) {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    temps().push(path);
}

/// Forgets a path registered with [`register_temp`] (once it is removed or kept on purpose).
pub fn unregister_temp(path: &Path) {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    temps().retain(|p| *p != path);
}

/// Kills child process `pid` (SIGKILL) if a signal interrupts the process.
pub fn register_child(pid: u32) {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// Forgets a child registered with [`register_child`] (call it before reaping the child).
pub fn unregister_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
}

/// Creates a new, empty, private file `.wgstyle-*SUFFIX` in `dir` and registers it.
pub(super) fn create_registered(dir: &Path, suffix: &str) -> Result<(File, PathBuf)> {
    let mut reg = temps();
    if INTERRUPTED.load(Ordering::Acquire) {
        return Err(Error::Cancelled);
    }
    let dir = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(".wgstyle-{}-{n}-{nanos:08x}{suffix}", std::process::id());
        let path = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&path) {
            Ok(f) => {
                reg.push(path.clone());
                return Ok((f, path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Err(Error::io(&dir, last.expect("tried")))
}

/// Renames a registered temporary file to `out` (replacing it only when `replace`) and
/// unregisters it; on failure the temporary file is removed.
pub(super) fn rename_registered(tmp: &Path, out: &Path, replace: bool) -> Result<()> {
    let mut reg = temps();
    let result = if INTERRUPTED.load(Ordering::Acquire) {
        Err(Error::Cancelled)
    } else if replace {
        std::fs::rename(tmp, out).map_err(|e| Error::io(out, e))
    } else {
        rename_noclobber(tmp, out)
    };
    let _ = std::fs::remove_file(tmp);
    reg.retain(|p| p != tmp);
    result
}

/// Renames without ever replacing an existing `out`: a hard link then an unlink (where hard
/// links are unsupported, a rename after checking that `out` is absent).
fn rename_noclobber(tmp: &Path, out: &Path) -> Result<()> {
    match std::fs::hard_link(tmp, out) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Error::OutputExists(out.to_path_buf()))
        }
        Err(_) if std::fs::symlink_metadata(out).is_err() => {
            std::fs::rename(tmp, out).map_err(|e| Error::io(out, e))
        }
        Err(e) => Err(Error::io(out, e)),
    }
}

/// Removes a registered temporary file and unregisters it.
pub(super) fn remove_registered(tmp: &Path) {
    let mut reg = temps();
    let _ = std::fs::remove_file(tmp);
    reg.retain(|p| p != tmp);
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove every registered temporary
/// file, kill registered children and exit with status 128 + signal (`notice`, if any, is
/// written to stderr first, unless a [`Cooperate`] guard is alive). Idempotent; a no-op
/// elsewhere than Unix, where temporary files are still removed on every error path.
pub fn install_signal_cleanup(notice: Option<&'static str>) {
    #[cfg(unix)]
    unix::install(notice);
    #[cfg(not(unix))]
    let _ = notice;
}

#[cfg(unix)]
mod unix {
    use super::*;

    static PIPE_WR: AtomicI32 = AtomicI32::new(-1);
    static ONCE: std::sync::Once = std::sync::Once::new();

    extern "C" fn on_signal(sig: libc::c_int) {
        let fd = PIPE_WR.load(Ordering::Relaxed);
        if fd >= 0 {
            let b = sig as u8;
            // SAFETY: write(2) is async-signal-safe; `b` outlives the call.
            unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
        }
    }

    pub(super) fn install(notice: Option<&'static str>) {
        ONCE.call_once(|| {
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: plain libc calls on a fresh array; the descriptors are never closed.
            unsafe {
                if libc::pipe(fds.as_mut_ptr()) != 0 {
                    log::warn!("no signal cleanup: pipe() failed");
                    return;
                }
                for fd in fds {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            let rd = fds[0];
            PIPE_WR.store(fds[1], Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name("wgstyle-signals".into())
                .spawn(move || watch(rd, notice));
            if spawned.is_err() {
                log::warn!("no signal cleanup: could not start its thread");
                return;
            }
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                // SAFETY: the handler only loads an atomic and calls write(2).
                unsafe {
                    let mut sa: libc::sigaction = std::mem::zeroed();
                    sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                    sa.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&mut sa.sa_mask);
                    libc::sigaction(sig, &sa, std::ptr::null_mut());
                }
            }
        });
    }

    fn watch(rd: libc::c_int, notice: Option<&'static str>) {
        loop {
            let mut b = 0u8;
            // SAFETY: reads one byte into `b`.
            let n = unsafe { libc::read(rd, (&mut b as *mut u8).cast(), 1) };
            if n != 1 {
                continue;
            }
            let sig = b as libc::c_int;
            if INTERRUPTED.load(Ordering::Acquire) {
                // SAFETY: exits without running destructors; the cleanup already ran.
                unsafe { libc::_exit(128 + sig) };
            }
            SIGNAL.store(sig, Ordering::Release);
            {
                let mut reg = temps();
                INTERRUPTED.store(true, Ordering::Release);
                for p in reg.drain(..) {
                    if p.is_dir() {
                        let _ = std::fs::remove_dir_all(p);
                    } else {
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
            for pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                // SAFETY: a registered child is unregistered before it is reaped.
                unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
            }
            std::thread::spawn(move || {
                if COOPERATING.load(Ordering::SeqCst) > 0 {
                    let t = std::time::Instant::now();
                    while COOPERATING.load(Ordering::SeqCst) > 0
                        && t.elapsed() < std::time::Duration::from_secs(10)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                } else if let Some(text) = notice {
                    // SAFETY: writes a static string to stderr.
                    unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
                }
                // SAFETY: as above.
                unsafe { libc::_exit(128 + sig) };
            });
        }
    }
}
