//! `wgstyle video`: ffmpeg in, ffmpeg out. Clips are tiny (lavapipe runs the network at about
//! 1 GFLOP/s and it costs ~250 kFLOP per pixel): 32×24 at 10 fps for one second.
//!
//! Skipped (with a message) when ffmpeg is missing, except under `CI=true`, where `.ci/run`
//! installs it and its absence fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use wgstyle::video;
use wgstyle::Stylizer;

fn have_ffmpeg() -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|t| {
        Command::new(t)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("ffmpeg/ffprobe missing (CI=true: .ci/run installs ffmpeg)");
        }
        eprintln!("SKIPPED: ffmpeg/ffprobe not on the PATH (apt-get install ffmpeg)");
    }
    ok
}

macro_rules! ffmpeg_or_skip {
    () => {
        if !have_ffmpeg() {
            return;
        }
    };
}

fn style() -> Option<PathBuf> {
    common::shared().map(|s| s.join("weights/styles/scream"))
}

/// A `testsrc` clip with a 440 Hz sine audio track (H.264 + AAC; yuv444p for odd sizes,
/// which yuv420p cannot hold).
fn make_clip(dir: &Path, name: &str, size: &str, secs: u32) -> PathBuf {
    let p = dir.join(name);
    let odd = size.split('x').any(|v| v.parse::<u32>().unwrap() % 2 == 1);
    let pix_fmt = if odd { "yuv444p" } else { "yuv420p" };
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc=size={size}:rate=10"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-pix_fmt", pix_fmt, "-c:a", "aac"])
        .arg(&p)
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

fn wgstyle(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgstyle"))
        .env("WGSTYLE_CACHE_DIR", common::autotune_cache_dir())
        .arg("video")
        .args(args)
        .output()
        .expect("run wgstyle")
}

fn check_ok(out: &Output) {
    assert!(
        out.status.success(),
        "wgstyle failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mean and max absolute difference, and PSNR in dB.
fn diff(a: &image::RgbImage, b: &image::RgbImage) -> (f64, u8, f64) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut sum, mut sq, mut max) = (0f64, 0f64, 0u8);
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        sum += d as f64;
        sq += (d as f64).powi(2);
        max = max.max(d);
    }
    let n = a.as_raw().len() as f64;
    let mse = sq / n;
    let psnr = if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255f64.powi(2) / mse).log10()
    };
    (sum / n, max, psnr)
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".wgstyle-"))
        .collect()
}

#[test]
fn probe_parses_ffprobe_json() {
    let json = br#"{"streams":[
        {"codec_type":"video","codec_name":"h264","width":33,"height":25,
         "r_frame_rate":"30000/1001","avg_frame_rate":"0/0","duration":"2.002000"},
        {"codec_type":"audio","codec_name":"aac"}],
        "format":{"duration":"2.010000"}}"#;
    let i = video::parse_probe(json).unwrap();
    assert_eq!((i.width, i.height), (33, 25));
    assert_eq!(i.rate, "30000/1001");
    assert!((i.fps - 29.97).abs() < 0.01);
    assert_eq!(i.frames, Some(60));
    assert_eq!(i.audio_codec.as_deref(), Some("aac"));
    let no_audio = br#"{"streams":[{"codec_type":"video","width":4,"height":4,
        "r_frame_rate":"0/0","avg_frame_rate":"25/1","nb_frames":"7"}],"format":{}}"#;
    let i = video::parse_probe(no_audio).unwrap();
    assert_eq!(
        (i.rate.as_str(), i.frames, i.has_audio()),
        ("25/1", Some(7), false)
    );
    assert!(video::parse_probe(br#"{"streams":[{"codec_type":"audio"}]}"#).is_err());
}

#[test]
fn output_size_rules() {
    assert_eq!(video::output_size(32, 24, None, "yuv420p"), (32, 24));
    assert_eq!(video::output_size(33, 25, None, "yuv420p"), (32, 24));
    assert_eq!(video::output_size(33, 25, None, "yuv444p"), (33, 25));
    assert_eq!(video::output_size(33, 25, None, "rgb24"), (33, 25));
    assert_eq!(
        video::output_size(1280, 720, Some(640), "yuv420p"),
        (640, 360)
    );
    assert_eq!(
        video::output_size(720, 1280, Some(100), "yuv420p"),
        (56, 100)
    );
    assert_eq!(
        video::output_size(640, 480, Some(1000), "yuv420p"),
        (640, 480)
    );
}

/// The default path (H.264, yuv420p, crf 18): frame count, size, rate and audio survive, and
/// a frame matches stylizing the decoded input frame as an image within H.264's loss.
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn stylizes_clip_keeping_rate_size_audio() {
    ffmpeg_or_skip!();
    let Some(style) = style() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path(), "clip.mp4", "32x24", 1);
    let out_path = dir.path().join("out.mp4");
    let t = Instant::now();
    let out = wgstyle(&[
        clip.as_os_str(),
        "--style".as_ref(),
        style.as_os_str(),
        "-o".as_ref(),
        out_path.as_os_str(),
    ]);
    check_ok(&out);
    eprintln!(
        "stylized 10 frames of 32x24 in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("10 frames"), "{stderr}");

    let info = video::probe(&out_path).unwrap();
    assert_eq!((info.width, info.height), (32, 24));
    assert_eq!(info.codec, "h264");
    assert_eq!(info.rate, "10/1");
    assert_eq!(info.audio_codec.as_deref(), Some("aac"), "audio copied");
    let frames = video::decode_all(&out_path).unwrap();
    assert_eq!(frames.len(), 10);
    assert_eq!(info.frames, Some(10));
    assert!(temp_files(dir.path()).is_empty());

    // yuv420p keeps one chroma sample per 2×2 pixels, and a stylized 32×24 frame is nearly
    // all edges, so the subsampling alone costs ~20 dB against the RGB image; compare with the
    // expected frame sent through the same RGB -> yuv420p -> RGB conversion, which leaves
    // H.264's crf-18 loss. Measured on lavapipe + ffmpeg 5.1: mean 2.0-3.5 levels, PSNR 35-40
    // dB; the bounds leave margin for other x264 builds and thread counts. Another frame of the
    // clip (testsrc changes little between frames) is at mean 7-14, PSNR 23-29 dB.
    let input = video::decode_all(&clip).unwrap();
    let st = Stylizer::new(
        common::ctx(),
        &wgstyle::weights::load_transform(&style).unwrap(),
    )
    .unwrap();
    for k in [0usize, 7] {
        let want = st.stylize(&input[k]).unwrap();
        let (m0, _, p0) = diff(&frames[k], &want);
        let want420 = yuv420_roundtrip(&want);
        let (mean, max, psnr) = diff(&frames[k], &want420);
        let other = yuv420_roundtrip(&st.stylize(&input[(k + 3) % 10]).unwrap());
        let (wrong, _, wrong_psnr) = diff(&frames[k], &other);
        eprintln!(
            "lossy frame {k}: vs RGB image mean {m0:.2} PSNR {p0:.1} dB; vs its yuv420p \
             round trip mean {mean:.2} max {max} PSNR {psnr:.1} dB; vs frame {}: mean {wrong:.2} \
             PSNR {wrong_psnr:.1} dB",
            (k + 3) % 10
        );
        assert!(
            mean <= 6.0 && psnr >= 28.0,
            "frame {k}: mean {mean}, PSNR {psnr}"
        );
        assert!(wrong > 1.5 * mean, "frames indistinguishable");
    }
}

/// `img` through ffmpeg's RGB -> yuv420p -> RGB conversion (what the default encoder does to
/// it, minus the compression).
fn yuv420_roundtrip(img: &image::RgbImage) -> image::RgbImage {
    use std::io::Write;
    let (w, h) = img.dimensions();
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "rawvideo"])
        .args(["-pix_fmt", "rgb24", "-s", &format!("{w}x{h}"), "-i", "-"])
        .args([
            "-vf",
            "format=yuv420p",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(img.as_raw()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    image::RgbImage::from_raw(w, h, out.stdout).unwrap()
}

/// Lossless RGB H.264 (`libx264rgb`, crf 0, rgb24): a decoded output frame equals stylizing
/// the decoded input frame as an image, up to the last bit of float rounding between a batch
/// of 4 and a single image (at most 1 level where a value sits on a truncation boundary).
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn lossless_output_matches_image_stylization() {
    ffmpeg_or_skip!();
    let Some(style) = style() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Odd size too: with rgb24 no cropping is needed, so the output is 33x25.
    let clip = make_clip(dir.path(), "odd.mp4", "33x25", 1);
    let out_path = dir.path().join("lossless.mkv");
    let out = wgstyle(&[
        clip.as_os_str(),
        "--style".as_ref(),
        style.as_os_str(),
        "-o".as_ref(),
        out_path.as_os_str(),
        "--codec".as_ref(),
        "libx264rgb".as_ref(),
        "--pix-fmt".as_ref(),
        "rgb24".as_ref(),
        "--crf".as_ref(),
        "0".as_ref(),
        "--batch-size".as_ref(),
        "3".as_ref(),
    ]);
    check_ok(&out);
    let info = video::probe(&out_path).unwrap();
    assert_eq!(
        (info.width, info.height, info.rate.as_str()),
        (33, 25, "10/1")
    );
    assert!(info.has_audio());
    let frames = video::decode_all(&out_path).unwrap();
    assert_eq!(frames.len(), 10);
    let input = video::decode_all(&clip).unwrap();
    let st = Stylizer::new(
        common::ctx(),
        &wgstyle::weights::load_transform(&style).unwrap(),
    )
    .unwrap();
    for k in [0usize, 4, 9] {
        let want = st.stylize(&input[k]).unwrap();
        let (mean, max, psnr) = diff(&frames[k], &want);
        eprintln!("lossless frame {k}: mean {mean:.4}, max {max}, PSNR {psnr:.1} dB");
        assert!(
            max <= 1 && mean <= 0.01,
            "frame {k}: mean {mean}, max {max}"
        );
    }
}

/// An odd-sized input with the default yuv420p: cropped by one column and row to 32×24.
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn odd_size_is_cropped_to_even_for_yuv420p() {
    ffmpeg_or_skip!();
    let Some(style) = style() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path(), "odd.mp4", "33x25", 1);
    let out_path = dir.path().join("odd.out.mp4");
    let out = wgstyle(&[
        clip.as_os_str(),
        "--style".as_ref(),
        style.as_os_str(),
        "-o".as_ref(),
        out_path.as_os_str(),
        "--batch-size".as_ref(),
        "10".as_ref(),
    ]);
    check_ok(&out);
    let info = video::probe(&out_path).unwrap();
    assert_eq!((info.width, info.height), (32, 24));
    assert_eq!(info.frames, Some(10));
}

#[test]
fn missing_ffmpeg_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    std::fs::write(&clip, b"not really a video").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wgstyle"))
        .env("WGSTYLE_CACHE_DIR", common::autotune_cache_dir())
        .args(["video", "--style", "whatever.safetensors", "-o"])
        .arg(dir.path().join("out.mp4"))
        .arg(&clip)
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ffprobe not found on the PATH") && err.contains("apt-get install ffmpeg"),
        "{err}"
    );
    assert!(!dir.path().join("out.mp4").exists());
}

#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn existing_output_is_not_overwritten() {
    ffmpeg_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path(), "clip.mp4", "32x24", 1);
    let out_path = dir.path().join("taken.mp4");
    std::fs::write(&out_path, b"precious").unwrap();
    let out = wgstyle(&[
        clip.as_os_str(),
        "--style".as_ref(),
        "unused.safetensors".as_ref(),
        "-o".as_ref(),
        out_path.as_os_str(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out_path).unwrap(), b"precious");
    // The input is never the output, even with --force.
    let out = wgstyle(&[
        clip.as_os_str(),
        "--style".as_ref(),
        "unused.safetensors".as_ref(),
        "-o".as_ref(),
        clip.as_os_str(),
        "--force".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("input"));
    // Library call too.
    let Some(style) = style() else { return };
    let st = Stylizer::new(
        common::ctx(),
        &wgstyle::weights::load_transform(&style).unwrap(),
    )
    .unwrap();
    let never = std::sync::atomic::AtomicBool::new(false);
    let e = video::stylize_video(
        &st,
        &clip,
        &out_path,
        &video::VideoOptions::default(),
        &never,
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, wgstyle::Error::OutputExists(_)), "{e}");
    assert_eq!(std::fs::read(&out_path).unwrap(), b"precious");
}

/// SIGINT while frames are being stylized: exit status 130, nothing under the final name, no
/// temporary file left, no ffmpeg left running on the output.
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn sigint_leaves_no_output() {
    ffmpeg_or_skip!();
    let Some(style) = style() else { return };
    let dir = tempfile::tempdir().unwrap();
    // 60 s at 10 fps, 48x32, one frame per batch: long enough to interrupt in the middle even
    // on a fast GPU (only the first second or so is ever stylized on lavapipe).
    let clip = make_clip(dir.path(), "long.mp4", "48x32", 60);
    let out_path = dir.path().join("out.mp4");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgstyle"))
        .env("WGSTYLE_CACHE_DIR", common::autotune_cache_dir())
        .args(["video", "--batch-size", "1", "--style"])
        .arg(&style)
        .arg("-o")
        .arg(&out_path)
        .arg(&clip)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Started: the temporary output exists once ffmpeg's encoder is up.
    let t = Instant::now();
    while temp_files(dir.path()).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(120), "never started");
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "finished before SIGINT"
    );
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!out_path.exists(), "output written despite SIGINT");
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
}

/// Library: progress is reported per batch with the expected total, and setting the cancel
/// flag mid-run returns `Cancelled` with nothing under the output name and no temporary file.
#[test]
#[cfg_attr(shared_absent, ignore = "needs ../shared (or $WGSTYLE_SHARED)")]
fn library_progress_and_cancel() {
    ffmpeg_or_skip!();
    let Some(style) = style() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path(), "clip.mp4", "32x24", 1);
    let out_path = dir.path().join("cancelled.mkv");
    let st = Stylizer::new(
        common::ctx(),
        &wgstyle::weights::load_transform(&style).unwrap(),
    )
    .unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut seen = Vec::new();
    let opts = video::VideoOptions {
        batch_size: 3,
        ..Default::default()
    };
    let e = video::stylize_video(&st, &clip, &out_path, &opts, &cancel, |p| {
        seen.push((p.frames, p.total));
        if p.frames >= 6 {
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap_err();
    assert!(matches!(e, wgstyle::Error::Cancelled), "{e}");
    assert_eq!(seen, vec![(3, Some(10)), (6, Some(10))]);
    assert!(!out_path.exists());
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    // Without cancelling, the same call completes: 10 frames in batches of 3.
    cancel.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut last = 0;
    let s =
        video::stylize_video(&st, &clip, &out_path, &opts, &cancel, |p| last = p.frames).unwrap();
    assert_eq!(
        (s.frames, last, s.width, s.height, s.audio),
        (10, 10, 32, 24, true)
    );
    assert!(out_path.exists());
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
}
