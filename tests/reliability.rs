//! Issue 18's classes, end to end on the `wgstyle` binary: nothing lost (an input is never
//! written, an existing file never replaced without --force, a broken encode never renamed
//! into place), no panic or hang, bad input refused with a clear error before GPU work, and
//! temporary files removed on signals. Images are tiny (<= 32 px); lavapipe is enough.
//!
//! Filesystem cases mount a tmpfs (or a bind mount): where mounting is not permitted they are
//! skipped with a message, except under `CI=true`, where that fails the test.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::{pattern, run, scream_dir, stderr, temp_files, wgstyle};

/// `wgstyle` with a fresh data directory under `root`.
fn bin(root: &Path) -> Command {
    wgstyle(&root.join("data"))
}

fn fails_with(out: &Output, text: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(text), "expected '{text}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A mount point with `args` (e.g. a 128 KiB tmpfs), unmounted on drop; `None` (after
/// saying so) where mounting is not permitted, except under `CI=true`.
struct Mount(PathBuf);

impl Mount {
    fn new(args: &[&str], target: &Path) -> Option<Mount> {
        std::fs::create_dir_all(target).unwrap();
        let out = Command::new("mount").args(args).arg(target).output();
        match out {
            Ok(o) if o.status.success() => Some(Mount(target.to_path_buf())),
            o => {
                let why = match o {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("mount {args:?} failed under CI=true: {why}");
                }
                eprintln!("SKIPPED: mount {args:?} not permitted: {why}");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A 2-second 32x24 H.264 clip (20 frames), or `None` without ffmpeg (outside CI).
fn clip(dir: &Path) -> Option<PathBuf> {
    let p = dir.join("clip.mp4");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=size=32x24:rate=10", "-t", "2"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&p)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(p),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("ffmpeg missing under CI"),
        _ => {
            eprintln!("SKIPPED: ffmpeg not available");
            None
        }
    }
}

/// Bytes free on the filesystem of `p`.
fn free_bytes(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
}

/// Item 1: on a full disk, `video --force` must fail and keep the good video it would have
/// replaced (ffmpeg 5.1 exits 0 although its trailer was not written).
#[test]
fn full_disk_video_fails_and_keeps_the_old_output() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let Some(clip) = clip(tmp.path()) else { return };
    let Some(m) = Mount::new(
        &["-t", "tmpfs", "-o", "size=128k", "tmpfs"],
        &tmp.path().join("full"),
    ) else {
        return;
    };
    let out = m.0.join("out.mp4");
    let style = shared.join("weights/styles/scream");
    let mut cmd = bin(tmp.path());
    // Lossless: a stylized video of some 40 KB, more than the 8 KiB left below.
    cmd.args(["video", "--no-autotune", "--crf", "0", "--style"])
        .arg(&style);
    cmd.arg("-o").arg(&out).arg(&clip);
    let first = run(&mut cmd);
    assert!(first.status.success(), "{}", stderr(&first));
    let good = std::fs::read(&out).unwrap();
    // Outputs get the usual permissions (video outputs were 0600).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    // Fill the disk to 8 KiB free.
    let fill = free_bytes(&m.0).saturating_sub(8 << 10);
    std::fs::write(m.0.join("filler"), vec![0u8; fill as usize]).unwrap();
    let second = run(cmd.arg("--force"));
    assert!(!second.status.success(), "a truncated video was accepted");
    assert!(!stderr(&second).contains("panicked"));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        good,
        "the good video was replaced"
    );
    assert!(temp_files(&m.0).is_empty(), "{:?}", temp_files(&m.0));
}

/// Item 2: the output is compared with every input by file identity: `nope/../a.png`, a hard
/// link, a bind mount, and another input of the same run are all refused, even with --force.
#[test]
fn an_input_is_never_overwritten_whatever_the_path() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let wd = scream_dir(&shared, root, "wd");
    pattern(16, 12, 1).save(root.join("a.png")).unwrap();
    pattern(16, 12, 2).save(root.join("a.scream.png")).unwrap();
    let a = std::fs::read(root.join("a.png")).unwrap();
    let second = std::fs::read(root.join("a.scream.png")).unwrap();
    std::fs::hard_link(root.join("a.png"), root.join("link.png")).unwrap();
    let stylize = |args: &[&std::ffi::OsStr]| {
        let mut c = bin(root);
        c.args([
            "--no-autotune",
            "--style",
            "scream",
            "--force",
            "--weights-dir",
        ])
        .arg(&wd)
        .args(args);
        run(&mut c)
    };
    let a_png = root.join("a.png");
    for o in [root.join("nope/../a.png"), root.join("link.png")] {
        let out = stylize(&["-o".as_ref(), o.as_os_str(), a_png.as_os_str()]);
        fails_with(&out, "overwrite the input");
    }
    // a.png's output is the second input.
    let out = stylize(&[a_png.as_os_str(), root.join("a.scream.png").as_os_str()]);
    fails_with(&out, "overwrite the input");
    assert_eq!(std::fs::read(root.join("a.png")).unwrap(), a);
    assert_eq!(std::fs::read(root.join("a.scream.png")).unwrap(), second);
    // The same folder through a bind mount.
    let view = root.join("view");
    if let Some(_m) = Mount::new(&["--bind", root.to_str().unwrap()], &view) {
        let out = stylize(&[
            "-o".as_ref(),
            view.join("a.png").as_os_str(),
            a_png.as_os_str(),
        ]);
        fails_with(&out, "overwrite the input");
        assert_eq!(std::fs::read(root.join("a.png")).unwrap(), a);
    }
}

/// Item 3 and issue 19: optimize and train claim every file they write before any work: an
/// input, an existing file (without --force), a --save-every image or a log are never
/// clobbered. (No VGG needed: the refusal comes first.)
#[test]
fn optimize_and_train_never_clobber() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    pattern(16, 16, 1).save(root.join("content.png")).unwrap();
    pattern(16, 16, 2).save(root.join("style.png")).unwrap();
    std::fs::write(root.join("taken.png"), b"precious").unwrap();
    std::fs::write(root.join("out_1.png"), b"precious").unwrap();
    std::fs::write(root.join("log.json"), b"precious").unwrap();
    let opt = |extra: &[&str]| {
        let mut c = bin(root);
        c.current_dir(root)
            .args(["optimize", "content.png", "--style-image", "style.png"])
            .args(["--vgg", "missing-vgg", "--iterations", "3"])
            .args(extra);
        run(&mut c)
    };
    fails_with(
        &opt(&["-o", "content.png", "--force"]),
        "overwrite the input",
    );
    fails_with(&opt(&["-o", "style.png", "--force"]), "overwrite the input");
    // The library says what is wrong, the command line adds the flag that fixes it.
    fails_with(
        &opt(&["-o", "taken.png"]),
        "already exists (use --force to overwrite it)",
    );
    fails_with(
        &opt(&["-o", "out.png", "--save-every", "1"]),
        "already exists",
    );
    fails_with(
        &opt(&["-o", "out.png", "--log-json", "log.json"]),
        "already exists",
    );
    // With --force the claims pass and the missing VGG is the (first) problem.
    fails_with(&opt(&["-o", "taken.png", "--force"]), "missing-vgg");
    std::fs::create_dir_all(root.join("photos")).unwrap();
    pattern(16, 16, 3).save(root.join("photos/p.png")).unwrap();
    let train = |extra: &[&str]| {
        let mut c = bin(root);
        c.current_dir(root)
            .args(["train", "--style-image", "style.png", "--dataset", "photos"])
            .args(["--vgg", "missing-vgg", "--iterations", "1"])
            .args(extra);
        run(&mut c)
    };
    fails_with(
        &train(&[
            "-o",
            "m.safetensors",
            "--checkpoint",
            "style.png",
            "--force",
        ]),
        "overwrite the input",
    );
    fails_with(
        &train(&[
            "-o",
            "m.safetensors",
            "--checkpoint",
            "photos/p.png",
            "--force",
        ]),
        "overwrite the input",
    );
    fails_with(
        &train(&["-o", "m.safetensors", "--log-json", "log.json"]),
        "already exists (use --force to overwrite it)",
    );
    for f in ["taken.png", "out_1.png", "log.json"] {
        assert_eq!(std::fs::read(root.join(f)).unwrap(), b"precious", "{f}");
    }
    assert!(!root.join("m.safetensors").exists());
    assert!(temp_files(root).is_empty(), "{:?}", temp_files(root));
}

/// Items 4 and 5: absurd sizes are refused by the parser or before allocating: no panic
/// (101), abort (134) or hang.
#[test]
fn absurd_sizes_are_refused_without_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    pattern(8, 8, 1).save(root.join("a.png")).unwrap();
    let mut c = bin(root);
    c.current_dir(root)
        .args(["video", "--batch-size", "18446744073709551615"]);
    let out = run(c.args(["--style", "x", "a.mp4"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--batch-size"));
    let mut c = bin(root);
    c.current_dir(root)
        .args(["train", "--style-image", "a.png", "--dataset", "."]);
    let out = run(c.args(["-o", "m.st", "--batch-size", "18446744073709551615"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let mut c = bin(root);
    c.current_dir(root)
        .args(["optimize", "a.png", "--style-image", "a.png"]);
    let out = run(c.args(["-o", "o.png", "--style-scale", "1e9"]));
    fails_with(&out, "--style-scale");
    let Some(shared) = common::shared() else {
        return;
    };
    let wd = scream_dir(&shared, root, "wd");
    let mut c = bin(root);
    c.current_dir(root)
        .args(["--style", "scream", "--scale", "100000", "--weights-dir"]);
    let out = run(c.arg(&wd).arg("a.png"));
    fails_with(&out, "memory");
    assert!(!root.join("a.scream.png").exists());
}

/// Item 8: float options that are NaN, infinite or out of range are refused with the option's
/// name, before any work.
#[test]
fn bad_numbers_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let opt = ["optimize", "c.png", "--style-image", "s.png", "-o", "o.png"];
    let train = [
        "train",
        "--style-image",
        "s.png",
        "--dataset",
        ".",
        "-o",
        "m.st",
    ];
    let cases: [(&[&str], &str); 7] = [
        (&opt, "--learning-rate=nan"),
        (&opt, "--content-weight=nan"),
        (&opt, "--tv-weight=-1"),
        (&train, "--style-weight=inf"),
        (&["--style", "x", "a.png"], "--strength=inf"),
        (&["--style", "x", "a.png"], "--scale=nan"),
        (&["--style", "x", "a.png"], "--max-memory=0.5"),
    ];
    for (args, bad) in cases {
        let out = run(bin(root).current_dir(root).args(args).arg(bad));
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        let flag = bad.split('=').next().unwrap();
        assert!(stderr(&out).contains(flag), "{bad}: {}", stderr(&out));
    }
    pattern(8, 8, 1).save(root.join("c.png")).unwrap();
    let mut c = bin(root);
    c.current_dir(root)
        .args(["optimize", "c.png", "--style-image", "c.png", "c.png"]);
    let out = run(c.args(["-o", "o.png", "--style-blend-weights", "0,0"]));
    fails_with(&out, "--style-blend-weights");
}

/// Item 10: outputs are validated before any GPU work (format, `-`, one file for several
/// inputs), and nothing is created for a refused output.
#[test]
fn outputs_are_validated_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    pattern(8, 8, 1).save(root.join("c.png")).unwrap();
    pattern(8, 8, 2).save(root.join("d.png")).unwrap();
    let mut c = bin(root);
    c.current_dir(root)
        .args(["optimize", "c.png", "--style-image", "d.png"]);
    // The VGG is missing too: the output's error must come first.
    let out = run(c.args(["--vgg", "missing-vgg", "-o", "out.xyz"]));
    fails_with(&out, "out.xyz");
    let mut c = bin(root);
    c.current_dir(root)
        .args(["optimize", "c.png", "--style-image", "d.png"]);
    fails_with(
        &run(c.args(["--vgg", "missing-vgg", "-o", "-"])),
        "standard output",
    );
    for o in ["out.png", "-"] {
        let mut c = bin(root);
        c.current_dir(root)
            .args(["--style", "x", "-o", o, "c.png", "d.png"]);
        let out = run(&mut c);
        assert!(!out.status.success());
        assert!(!root.join(o).exists(), "{o} was created");
    }
    assert!(temp_files(root).is_empty());
}

/// Item 11: misleading errors. An unknown WGPU_BACKEND is named; an I/O error is printed
/// once; a FIFO input is "not a regular file"; a misspelt subcommand gets "did you mean".
#[test]
fn errors_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = run(bin(root).env("WGPU_BACKEND", "nonsense").arg("adapters"));
    fails_with(&out, "unknown WGPU_BACKEND 'nonsense'");
    assert!(stderr(&out).contains("vulkan, metal, dx12 or gl"));
    pattern(8, 8, 1).save(root.join("c.png")).unwrap();
    std::fs::write(root.join("file"), b"").unwrap();
    let mut c = bin(root);
    c.current_dir(root)
        .args(["train", "--style-image", "c.png", "--dataset", "."])
        .args(["-o", "m.safetensors", "--log-json", "file/log.json"]);
    let out = run(&mut c);
    fails_with(&out, "not a directory");
    // procfs refuses new files: an I/O error, whose text must appear once, not twice.
    let mut c = bin(root);
    c.current_dir(root)
        .args(["train", "--style-image", "c.png", "--dataset", "."])
        .args([
            "-o",
            "m.safetensors",
            "--log-json",
            "/proc/wgstyle-log.json",
        ]);
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("(os error").count(), 1, "{err}");
    let out = run(bin(root).current_dir(root).args(["stylise", "c.png"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `wgstyle stylize`"),
        "{}",
        stderr(&out)
    );
}

/// Item 11 with a style: FIFO inputs and dangling symlinks in a folder are reported, not
/// skipped silently. Issue 19: a re-run skips existing outputs and exits 0.
#[test]
fn folder_reruns_skip_and_odd_entries_are_reported() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let wd = scream_dir(&shared, root, "wd");
    let dir = root.join("in");
    std::fs::create_dir_all(&dir).unwrap();
    pattern(16, 12, 1).save(dir.join("a.png")).unwrap();
    let stylize = |extra: &[&std::ffi::OsStr]| {
        let mut c = bin(root);
        c.args(["--no-autotune", "--style", "scream", "--weights-dir"])
            .arg(&wd)
            .args(extra);
        run(&mut c)
    };
    let first = stylize(&[dir.as_os_str()]);
    assert!(first.status.success(), "{}", stderr(&first));
    let made = std::fs::read(dir.join("a.scream.png")).unwrap();
    let again = stylize(&[dir.as_os_str()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 written, 1 skipped (exist; --force replaces them), 0 failed")
    );
    assert_eq!(std::fs::read(dir.join("a.scream.png")).unwrap(), made);
    let fifo = std::ffi::CString::new(dir.join("f.png").as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(root.join("nothing.png"), dir.join("g.png")).unwrap();
    let out = stylize(&[dir.as_os_str()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("f.png: not a regular file"), "{err}");
    assert!(err.contains("g.png: a symbolic link to nothing"), "{err}");
    assert!(
        err.contains("0 written, 1 skipped (exist; --force replaces them), 2 failed"),
        "{err}"
    );
    let out = stylize(&[dir.join("f.png").as_os_str()]);
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// Item 12: SIGTERM (stylize) and SIGHUP (video) are handled: the exit status says which
/// signal, and no temporary file or partial output is left.
#[test]
fn signals_leave_no_temporary_files() {
    let shared = shared_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let wd = scream_dir(&shared, root, "wd");
    let dir = root.join("in");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..40 {
        pattern(32, 32, i)
            .save(dir.join(format!("p{i:02}.png")))
            .unwrap();
    }
    let mut c = bin(root);
    c.args(["--no-autotune", "--style", "scream", "--weights-dir"])
        .arg(&wd);
    let child = c
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once outputs are being written.
    let t = Instant::now();
    while !dir.join("p00.scream.png").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "never wrote an output"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        stderr(&out)
    );
    assert!(temp_files(root).is_empty(), "{:?}", temp_files(root));
    assert!(
        !dir.join("p39.scream.png").exists(),
        "finished before SIGTERM"
    );

    let Some(clip) = clip(root) else { return };
    let out_path = root.join("out.mp4");
    let mut c = bin(root);
    c.args(["video", "--no-autotune", "--batch-size", "1", "--style"])
        .arg(shared.join("weights/styles/scream"))
        .arg("-o")
        .arg(&out_path)
        .arg(&clip);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while temp_files(root).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(120), "never started");
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGHUP),
        "{}",
        stderr(&out)
    );
    assert!(!out_path.exists());
    assert!(temp_files(root).is_empty(), "{:?}", temp_files(root));
}
