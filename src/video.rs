//! Video: decode with an `ffmpeg` subprocess, stylize frames in batches, encode with another
//! `ffmpeg` subprocess. Frames travel as raw RGB24 through pipes (no temporary image files).
//!
//! The encoder writes to a temporary file beside the output (same extension, so ffmpeg picks
//! the same container) which is renamed to the output name only once ffmpeg has finished
//! successfully; cancelling (see [`stylize_video`]'s `cancel` flag) kills both subprocesses and
//! removes the temporary file, so there is never a half-written file under the final name.
//!
//! Sizes: formats with chroma subsampling (`yuv420p`, the default, and `yuv422p`, `nv12`, ...)
//! need even dimensions, so an odd width or height is cropped by one pixel (the last column or
//! row) before stylizing; nothing is scaled or padded. `max_size` scales the frames down (before
//! stylizing) so that the longer side is at most that many pixels, to even dimensions.

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::error::{Error, Result};
use crate::output::{self, OutputPolicy, TempOutput};
use crate::stylize::Stylizer;

mod decoder;
mod probe;

use decoder::collect_stderr;
pub use decoder::{decode_all, Decoder};
use probe::verify_encoded;
pub use probe::{output_size, parse_probe, parse_rate, probe, VideoInfo};

/// Options for [`stylize_video`].
#[derive(Clone, Debug)]
pub struct VideoOptions {
    /// Frames stylized per GPU submission (at least 1).
    pub batch_size: usize,
    /// ffmpeg video encoder (`-c:v`), e.g. `libx264`, `libx265`, `libvpx-vp9`, `libx264rgb`.
    pub codec: String,
    /// Constant rate factor (`-crf`); `None` leaves the encoder's default.
    pub crf: Option<u32>,
    /// Output pixel format (`-pix_fmt`), e.g. `yuv420p` (plays everywhere), `yuv444p`, `rgb24`.
    pub pix_fmt: String,
    /// Audio encoder (`-c:a`); `None` copies the input's audio where the container accepts it
    /// (re-encoding to AAC for MP4/MOV, Opus for WebM otherwise).
    pub audio_codec: Option<String>,
    /// Scale frames down so that the longer side is at most this many pixels.
    pub max_size: Option<u32>,
    /// Replace an existing output file (never the input).
    pub overwrite: bool,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            batch_size: 4,
            codec: "libx264".into(),
            crf: Some(18),
            pix_fmt: "yuv420p".into(),
            audio_codec: None,
            max_size: None,
            overwrite: false,
        }
    }
}

/// Progress of [`stylize_video`], reported after each batch.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Frames stylized and handed to the encoder so far.
    pub frames: u64,
    /// Expected number of frames, when known.
    pub total: Option<u64>,
    /// Time since decoding started.
    pub elapsed: Duration,
}

/// What [`stylize_video`] produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Frames written.
    pub frames: u64,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Output frame rate, as passed to ffmpeg.
    pub rate: String,
    /// Whether an audio stream was carried over.
    pub audio: bool,
    /// Wall time from start to the renamed output.
    pub elapsed: Duration,
}

fn spawn(cmd: &mut Command, tool: &str) -> Result<Child> {
    #[cfg(unix)]
    {
        // Own process group: a terminal's Ctrl-C reaches only wgstyle, which then stops the
        // children itself (so ffmpeg does not finish a file behind its back).
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::FfmpegMissing { tool: tool.into() }
        } else {
            Error::Ffmpeg {
                tool: tool.into(),
                msg: format!("could not start: {e}"),
            }
        }
    })
}

fn ffmpeg_err(tool: &str, msg: impl Into<String>) -> Error {
    Error::Ffmpeg {
        tool: tool.into(),
        msg: msg.into(),
    }
}

/// The last few lines of a program's error output, for error messages.
fn tail(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join("\n")
}

/// The audio encoder for `output`: the caller's choice, else copy when the container takes the
/// input's codec, else the container's usual codec.
fn audio_codec(opts: &VideoOptions, input_audio: &str, output: &Path) -> String {
    if let Some(c) = &opts.audio_codec {
        return c.clone();
    }
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "webm" if !matches!(input_audio, "opus" | "vorbis") => "libopus".into(),
        "mp4" | "m4v" | "mov"
            if !matches!(
                input_audio,
                "aac" | "mp3" | "alac" | "ac3" | "eac3" | "opus" | "flac"
            ) =>
        {
            "aac".into()
        }
        _ => "copy".into(),
    }
}

/// The largest [`VideoOptions::batch_size`].
pub const MAX_BATCH: usize = 1024;

/// What the watchdog and the main loop share: the child processes and the temporary output.
struct Shared {
    decoder: Option<Child>,
    encoder: Option<Child>,
    temp: Option<TempOutput>,
    /// Set by the main loop once the output is in place (or the run failed): the watchdog
    /// must not touch anything any more.
    settled: bool,
}

impl Shared {
    /// Kills the children and removes the temporary file.
    fn abort(&mut self) {
        for c in [self.decoder.as_mut(), self.encoder.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            output::unregister_child(c.id());
            let _ = c.wait();
        }
        self.decoder = None;
        self.encoder = None;
        // Dropping the temporary output removes it.
        self.temp = None;
        self.settled = true;
    }
}

/// Kills everything still running when the run ends early (error, panic).
struct AbortOnDrop(Arc<Mutex<Shared>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !s.settled {
            s.abort();
        }
    }
}

/// Sets a flag when dropped: the watchdog stops however the frame loop ends (even by a
/// panic, which would otherwise leave `thread::scope` waiting for it forever).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Stylizes the video `input` into `output`: decodes with ffmpeg, stylizes `batch_size` frames
/// per GPU pass, encodes with ffmpeg keeping the input's frame rate, size (see the module
/// notes on odd sizes and `max_size`) and first audio stream.
///
/// `progress` is called after each batch. Setting `cancel` (e.g. from a Ctrl-C handler) stops
/// the run within a few milliseconds of the flag being set: the ffmpeg processes are killed and
/// the temporary file removed at once (a GPU batch in flight finishes in the background), and
/// the function returns [`Error::Cancelled`]. The output name is only ever written by a rename
/// of a complete file; an existing output is an error unless `opts.overwrite`, and the input is
/// never overwritten.
pub fn stylize_video(
    stylizer: &Stylizer,
    input: &Path,
    output: &Path,
    opts: &VideoOptions,
    cancel: &AtomicBool,
    mut progress: impl FnMut(&Progress),
) -> Result<Summary> {
    let start = Instant::now();
    if opts.batch_size == 0 {
        return Err(Error::InvalidInput("batch size must be at least 1".into()));
    }
    if opts.batch_size > MAX_BATCH {
        return Err(Error::InvalidInput(format!(
            "batch size {} is more than {MAX_BATCH} frames",
            opts.batch_size
        )));
    }
    let mut policy = OutputPolicy::new(opts.overwrite);
    policy.add_input(input);
    let reservation = policy.claim(output)?;
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "output {} needs an extension (e.g. .mp4, .mkv, .webm) to choose the container",
                output.display()
            ))
        })?;
    let info = probe(input)?;
    let (w, h) = output_size(info.width, info.height, opts.max_size, &opts.pix_fmt);

    let temp = reservation.temp(&format!(".{ext}"))?;

    let mut decoder = Decoder::open_with(input, info.width, info.height, w, h, Some(&info.rate))?;
    let mut dec_child = decoder.child.take().expect("just spawned");
    output::register_child(dec_child.id());

    let mut enc = Command::new("ffmpeg");
    // -xerror: stop with a failure status at the first error (e.g. a failed write).
    enc.args(["-hide_banner", "-loglevel", "error", "-xerror", "-y"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{w}x{h}"), "-framerate", &info.rate])
        .args(["-i", "-"])
        .arg("-i")
        .arg(input)
        .args(["-map", "0:v:0", "-map", "1:a:0?"])
        .args(["-c:v", &opts.codec, "-pix_fmt", &opts.pix_fmt]);
    if let Some(crf) = opts.crf {
        enc.args(["-crf", &crf.to_string()]);
    }
    let audio = info
        .audio_codec
        .as_deref()
        .map(|a| audio_codec(opts, a, output));
    if let Some(a) = &audio {
        enc.args(["-c:a", a]);
    }
    enc.arg(temp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut enc_child = match spawn(&mut enc, "ffmpeg") {
        Ok(c) => c,
        Err(e) => {
            let _ = dec_child.kill();
            output::unregister_child(dec_child.id());
            let _ = dec_child.wait();
            return Err(e);
        }
    };
    output::register_child(enc_child.id());
    let stdin = enc_child.stdin.take().expect("piped");
    let enc_stderr = collect_stderr(&mut enc_child);

    let shared = Arc::new(Mutex::new(Shared {
        decoder: Some(dec_child),
        encoder: Some(enc_child),
        temp: Some(temp),
        settled: false,
    }));
    let guard = AbortOnDrop(shared.clone());
    let done = AtomicBool::new(false);

    let result = std::thread::scope(|scope| {
        let _stop_watchdog = SetOnDrop(&done);
        // Watchdog: reacts to `cancel` even while the GPU is busy with a batch.
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                if cancel.load(Ordering::Acquire) {
                    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if !s.settled {
                        s.abort();
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let r = run_frames(
            stylizer,
            &mut decoder,
            stdin,
            opts.batch_size,
            cancel,
            info.frames,
            start,
            &mut progress,
        );
        let r = finish(&shared, r, decoder, enc_stderr, cancel);
        done.store(true, Ordering::Release);
        r
    });
    drop(guard);
    let frames = result?;
    Ok(Summary {
        frames,
        width: w,
        height: h,
        rate: info.rate,
        audio: audio.is_some(),
        elapsed: start.elapsed(),
    })
}

/// Waits for the decoder (`which == 0`) or the encoder (`which == 1`) without holding the lock
/// (so that the watchdog can still cancel); `Cancelled` when the watchdog got there first.
fn wait_child(shared: &Mutex<Shared>, which: usize) -> Result<std::process::ExitStatus> {
    loop {
        {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            if s.settled {
                return Err(Error::Cancelled);
            }
            let c = if which == 0 {
                s.decoder.as_mut()
            } else {
                s.encoder.as_mut()
            };
            let Some(c) = c else {
                return Err(Error::Cancelled);
            };
            if let Some(st) = c
                .try_wait()
                .map_err(|e| ffmpeg_err("ffmpeg", e.to_string()))?
            {
                output::unregister_child(c.id());
                return Ok(st);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After the frame loop: checks both ffmpeg processes and renames the finished file.
fn finish(
    shared: &Mutex<Shared>,
    frames: Result<u64>,
    decoder: Decoder,
    enc_stderr: std::thread::JoinHandle<Vec<u8>>,
    cancel: &AtomicBool,
) -> Result<u64> {
    if cancel.load(Ordering::Acquire) {
        return Err(Error::Cancelled);
    }
    let frames = match frames {
        // The encoder stopped reading: its own message is the useful one.
        Err(Error::Ffmpeg { tool, msg }) if tool == "ffmpeg (encoder)" => {
            let st = wait_child(shared, 1)?;
            let err = enc_stderr.join().unwrap_or_default();
            return Err(ffmpeg_err(
                "ffmpeg (encoder)",
                if st.success() {
                    msg
                } else {
                    format!("{st}: {}", tail(&err))
                },
            ));
        }
        r => r?,
    };
    let dec = wait_child(shared, 0)?;
    if !dec.success() {
        drop(decoder.stdout);
        let err = decoder.stderr.join().unwrap_or_default();
        return Err(ffmpeg_err(
            "ffmpeg (decoder)",
            format!("{dec}: {}", tail(&err)),
        ));
    }
    let enc = wait_child(shared, 1)?;
    let err = enc_stderr.join().unwrap_or_default();
    if !enc.success() {
        return Err(ffmpeg_err(
            "ffmpeg (encoder)",
            format!("{enc}: {}", tail(&err)),
        ));
    }
    if frames == 0 {
        return Err(ffmpeg_err("ffmpeg (decoder)", "the input has no frames"));
    }
    let temp_path = {
        let s = shared.lock().unwrap_or_else(|e| e.into_inner());
        match &s.temp {
            Some(t) if !s.settled => t.path().to_path_buf(),
            _ => return Err(Error::Cancelled),
        }
    };
    verify_encoded(&temp_path, frames)?;
    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
    if s.settled || cancel.load(Ordering::Acquire) {
        s.abort();
        return Err(Error::Cancelled);
    }
    s.decoder = None;
    s.encoder = None;
    let temp = s.temp.take().expect("present until settled");
    s.settled = true;
    temp.persist()?;
    Ok(frames)
}

/// The decode → stylize → encode loop; returns the number of frames written.
#[allow(clippy::too_many_arguments)]
fn run_frames(
    stylizer: &Stylizer,
    decoder: &mut Decoder,
    stdin: ChildStdin,
    batch_size: usize,
    cancel: &AtomicBool,
    total: Option<u64>,
    start: Instant,
    progress: &mut impl FnMut(&Progress),
) -> Result<u64> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RgbImage>>(1);
    std::thread::scope(|scope| {
        // Writer: hands stylized frames to the encoder while the GPU works on the next batch.
        let writer = scope.spawn(move || -> std::io::Result<()> {
            let mut stdin = std::io::BufWriter::with_capacity(1 << 20, stdin);
            for batch in rx {
                for f in batch {
                    stdin.write_all(f.as_raw())?;
                }
            }
            stdin.flush()
            // stdin dropped here: ffmpeg sees the end of the stream.
        });
        let mut frames = 0u64;
        let read = (|| -> Result<()> {
            loop {
                if cancel.load(Ordering::Acquire) {
                    return Err(Error::Cancelled);
                }
                let mut batch = Vec::with_capacity(batch_size);
                while batch.len() < batch_size {
                    match decoder.read_frame() {
                        Ok(Some(f)) => batch.push(f),
                        Ok(None) => break,
                        Err(_) if cancel.load(Ordering::Acquire) => return Err(Error::Cancelled),
                        Err(e) => return Err(e),
                    }
                }
                if batch.is_empty() {
                    return Ok(());
                }
                let out = stylizer.stylize_batch(&batch)?;
                if cancel.load(Ordering::Acquire) {
                    return Err(Error::Cancelled);
                }
                let n = out.len() as u64;
                if tx.send(out).is_err() {
                    // The writer stopped: its error says why.
                    return Ok(());
                }
                frames += n;
                progress(&Progress {
                    frames,
                    total,
                    elapsed: start.elapsed(),
                });
            }
        })();
        drop(tx);
        let written = writer.join().expect("writer thread");
        read?;
        if cancel.load(Ordering::Acquire) {
            return Err(Error::Cancelled);
        }
        written.map_err(|e| ffmpeg_err("ffmpeg (encoder)", format!("writing frames: {e}")))?;
        Ok(frames)
    })
}
