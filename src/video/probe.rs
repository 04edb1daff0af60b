//! `ffprobe`: what a video holds, the frame size wgstyle produces for it, and the check of
//! what the encoder wrote.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{ffmpeg_err, spawn, tail};
use crate::error::{Error, Result};

/// What `ffprobe` says about a video file.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate as ffmpeg writes it, e.g. `"30000/1001"` (the stream's `r_frame_rate`, or
    /// `avg_frame_rate` when that is unknown).
    pub rate: String,
    /// The frame rate as a number.
    pub fps: f64,
    /// Number of frames: the stream's `nb_frames`, else duration × frame rate (an estimate).
    pub frames: Option<u64>,
    /// Duration in seconds, when known.
    pub duration: Option<f64>,
    /// The video codec's name (e.g. `h264`).
    pub codec: String,
    /// The first audio stream's codec, when the file has audio.
    pub audio_codec: Option<String>,
}

impl VideoInfo {
    /// Whether the file has an audio stream.
    pub fn has_audio(&self) -> bool {
        self.audio_codec.is_some()
    }
}

/// Parses `"num/den"` (or a plain number) into frames per second; `None` for `0/0` and junk.
pub fn parse_rate(r: &str) -> Option<f64> {
    let v = match r.split_once('/') {
        Some((n, d)) => n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?,
        None => r.trim().parse().ok()?,
    };
    (v.is_finite() && v > 0.0).then_some(v)
}

/// Runs `ffprobe` on `path`.
pub fn probe(path: &Path) -> Result<VideoInfo> {
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    let out = spawn(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_streams",
                "-show_format",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "ffprobe",
    )?
    .wait_with_output()
    .map_err(|e| ffmpeg_err("ffprobe", e.to_string()))?;
    if !out.status.success() {
        return Err(ffmpeg_err(
            "ffprobe",
            format!("{}: {}", path.display(), tail(&out.stderr)),
        ));
    }
    parse_probe(&out.stdout)
        .map_err(|msg| ffmpeg_err("ffprobe", format!("{}: {msg}", path.display())))
}

/// Parses `ffprobe -print_format json -show_streams -show_format` output.
pub fn parse_probe(json: &[u8]) -> std::result::Result<VideoInfo, String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .ok_or("no video stream")?;
    let num = |x: &serde_json::Value| -> Option<f64> {
        x.as_f64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
    };
    let width = video["width"]
        .as_u64()
        .ok_or("video stream without width")? as u32;
    let height = video["height"]
        .as_u64()
        .ok_or("video stream without height")? as u32;
    let rate = [&video["r_frame_rate"], &video["avg_frame_rate"]]
        .into_iter()
        .filter_map(|r| r.as_str())
        .find(|r| parse_rate(r).is_some())
        .ok_or("unknown frame rate")?
        .to_string();
    let fps = parse_rate(&rate).expect("checked");
    let duration = num(&video["duration"]).or_else(|| num(&v["format"]["duration"]));
    let frames = num(&video["nb_frames"])
        .filter(|&n| n > 0.0)
        .map(|n| n as u64)
        .or_else(|| duration.map(|d| (d * fps).round() as u64));
    let audio_codec = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .map(|s| s["codec_name"].as_str().unwrap_or("unknown").to_string());
    Ok(VideoInfo {
        width,
        height,
        rate,
        fps,
        frames,
        duration,
        codec: video["codec_name"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        audio_codec,
    })
}

/// Whether `pix_fmt` subsamples chroma (and so needs even dimensions).
fn subsampled(pix_fmt: &str) -> bool {
    ["420", "422", "411", "410", "440", "nv1", "nv2", "nv4"]
        .iter()
        .any(|p| pix_fmt.contains(p))
}

/// The frame size [`stylize_video`](super::stylize_video) produces for a `width × height` input: scaled down to
/// `max_size` (longer side) if given, then made even when `pix_fmt` subsamples chroma.
pub fn output_size(width: u32, height: u32, max_size: Option<u32>, pix_fmt: &str) -> (u32, u32) {
    let even = subsampled(pix_fmt);
    let (mut w, mut h) = (width, height);
    if let Some(m) = max_size {
        let long = w.max(h);
        if long > m && m > 0 {
            let s = m as f64 / long as f64;
            w = ((w as f64 * s).round() as u32).max(1);
            h = ((h as f64 * s).round() as u32).max(1);
        }
    }
    if even {
        w = (w & !1).max(2);
        h = (h & !1).max(2);
    }
    (w, h)
}

/// Checks what the encoder wrote before it is renamed into place: ffprobe must read it and
/// count `frames` video frames (ffmpeg can exit 0 although writing the file failed, e.g. on
/// a full disk).
pub(super) fn verify_encoded(path: &Path, frames: u64) -> Result<()> {
    let out = spawn(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
            .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "ffprobe",
    )?
    .wait_with_output()
    .map_err(|e| ffmpeg_err("ffprobe", e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let counted: Option<u64> = text.trim().trim_end_matches(',').parse().ok();
    if out.status.success() && counted == Some(frames) {
        return Ok(());
    }
    let why = if out.status.success() {
        format!("it holds {} of the {frames} frames", text.trim())
    } else {
        format!("it cannot be read back ({})", tail(&out.stderr))
    };
    Err(ffmpeg_err(
        "ffmpeg (encoder)",
        format!("the encoded video is incomplete (disk full?): {why}; nothing was written"),
    ))
}
