//! Helpers for end-to-end tests of the `wgstyle` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::RgbImage;

/// `wgstyle` as a subprocess, with every environment variable that could reach outside the
/// test removed (proxies, mirror, weights path, data dir, autotune cache).
pub fn wgstyle(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgstyle"));
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "WGSTYLE_WEIGHTS",
        "WGSTYLE_MIRROR",
    ] {
        c.env_remove(v);
    }
    c.env("WGSTYLE_DATA_DIR", data_dir);
    c.env("WGSTYLE_CACHE_DIR", super::autotune_cache_dir());
    c
}

/// Runs the command and returns its output, printing stderr for failing tests to show.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("running wgstyle");
    eprintln!(
        "$ {:?}\n-> {}\n{}{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the command and asserts success.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "wgstyle failed");
    out
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A directory `NAME/` (symlink to the scream checkpoint) inside a fresh folder of `root`.
pub fn scream_dir(shared: &Path, root: &Path, folder: &str) -> PathBuf {
    let dir = root.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    link_dir(&shared.join("weights/styles/scream"), &dir.join("scream"));
    dir
}

/// A directory symlink (a copy where symlinks are unavailable).
pub fn link_dir(src: &Path, dst: &Path) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(src, dst).unwrap();
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// A smooth, colourful test pattern.
pub fn pattern(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = |k: u32| ((x * (37 + k) + y * (23 + 2 * k) + seed * 71 + k * 50) % 256) as u8;
        image::Rgb([v(0), v(1), v(2)])
    })
}

/// A `w × h` crop of a real photo from ../shared (resized down, so it has content).
pub fn photo(shared: &Path, w: u32, h: u32) -> RgbImage {
    let img = image::open(shared.join("images/content/chicago.jpg")).unwrap();
    img.resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8()
}

/// Files under `dir` (recursively) whose name marks a temporary file.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            found.extend(temp_files(&p));
        } else if name.ends_with(".tmp") || name.starts_with(".wgstyle") {
            found.push(p);
        }
    }
    found
}

/// Full-range BT.601 YCbCr of an RGB pixel.
pub fn ycbcr(p: [u8; 3]) -> [f32; 3] {
    wgstyle::color::rgb_to_ycbcr(p.map(f32::from))
}
