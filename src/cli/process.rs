//! The stylize loop: decode, resize, group same-sized images into GPU batches, post-process,
//! encode and write each output atomically; a failing file is reported and skipped.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use wgstyle::image_io::{self, Picture};
use wgstyle::Stylizer;

use super::plan::Job;

pub struct Options {
    pub max_size: Option<u32>,
    pub scale: Option<f32>,
    pub preserve_colors: bool,
    pub strength: f32,
    pub batch_size: usize,
    pub quiet: bool,
    pub timing: bool,
}

#[derive(Default)]
pub struct Outcome {
    pub written: usize,
    pub failed: usize,
}

struct Loaded {
    job: Job,
    pic: Picture,
    start: Instant,
}

struct State<'a> {
    stylizer: &'a Stylizer,
    opts: &'a Options,
    bar: ProgressBar,
    warmed: bool,
    outcome: Outcome,
}

/// Stylizes every job, in batches of up to `batch_size` images of one size.
pub fn run(stylizer: &Stylizer, jobs: Vec<Job>, opts: &Options) -> Outcome {
    let show = !opts.quiet && jobs.len() > 1 && std::io::stderr().is_terminal();
    let bar = if show {
        let bar = ProgressBar::new(jobs.len() as u64);
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}")
            .expect("valid template");
        bar.set_style(style);
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut st = State {
        stylizer,
        opts,
        bar,
        warmed: !opts.timing,
        outcome: Outcome::default(),
    };
    let mut pending: Vec<((u32, u32), Vec<Loaded>)> = Vec::new();
    for job in jobs {
        let start = Instant::now();
        st.bar.set_message(job.input.display().to_string());
        let pic = match image_io::read(&job.input) {
            Ok(p) => p,
            Err(e) => {
                st.fail(&job, &super::log::describe(&e));
                continue;
            }
        };
        let (w, h) = pic.dimensions();
        let (tw, th) = image_io::target_size(w, h, opts.max_size, opts.scale);
        // Refused before any GPU work (and before the resize allocates), not after hours of it.
        let fits = image_io::check_encodable(job.format, tw, th)
            .and_then(|_| image_io::check_resize(w, h, tw, th));
        if let Err(why) = fits {
            st.fail(
                &job,
                &format!("{}: {why} (-o NAME.png, --max-size)", job.output.display()),
            );
            continue;
        }
        let pic = pic.resized(tw, th);
        let idx = match pending.iter().position(|(s, _)| *s == (tw, th)) {
            Some(i) => i,
            None => {
                pending.push(((tw, th), Vec::new()));
                pending.len() - 1
            }
        };
        pending[idx].1.push(Loaded { job, pic, start });
        if pending[idx].1.len() >= opts.batch_size {
            let (_, batch) = pending.remove(idx);
            st.flush(batch);
        }
        // Many sizes, few images each: flush the oldest partial batches rather than holding
        // every decoded image until the end.
        while pending_bytes(&pending) > MAX_PENDING_BYTES {
            let (_, batch) = pending.remove(0);
            st.flush(batch);
        }
    }
    for (_, batch) in pending {
        st.flush(batch);
    }
    st.bar.finish_and_clear();
    st.outcome
}

/// Decoded images waiting for a batch to fill are flushed beyond this many bytes.
const MAX_PENDING_BYTES: usize = 256 << 20;

fn pending_bytes(pending: &[((u32, u32), Vec<Loaded>)]) -> usize {
    let per_image = |(w, h): (u32, u32)| w as usize * h as usize * 4;
    pending.iter().map(|(s, b)| per_image(*s) * b.len()).sum()
}

impl State<'_> {
    fn fail(&mut self, job: &Job, why: &str) {
        let path = job.input.display().to_string();
        let line = if why.starts_with(&path) {
            format!("error: {why}")
        } else {
            format!("error: {path}: {why}")
        };
        self.bar.suspend(|| eprintln!("{line}"));
        self.bar.inc(1);
        self.outcome.failed += 1;
    }

    fn flush(&mut self, mut batch: Vec<Loaded>) {
        // The inputs move out of `batch` (no copy of large images); `finish` gets them back.
        let rgbs: Vec<_> = batch
            .iter_mut()
            .map(|l| std::mem::take(&mut l.pic.rgb))
            .collect();
        if !self.warmed {
            // Compiles the pipelines and fills the buffer pool for this size; not timed. An
            // image stylized in patches (minutes of work, bounded memory) warms up on a small
            // crop instead: a second whole run, or a one-pass run of a patch-sized crop, would
            // cost far more time or memory than compilation does.
            let t = Instant::now();
            let (w, h) = rgbs[0].dimensions();
            match self.stylizer.patch_size(h as usize, w as usize) {
                Ok(Some(_)) => {
                    let crop = image::imageops::crop_imm(&rgbs[0], 0, 0, w.min(64), h.min(64));
                    let _ = self.stylizer.stylize(&crop.to_image());
                }
                _ => {
                    let _ = self.stylizer.stylize_batch(&rgbs);
                }
            }
            for l in &mut batch {
                l.start += t.elapsed();
            }
            self.warmed = true;
        }
        let t = Instant::now();
        let outs = match self.stylizer.stylize_batch(&rgbs) {
            Ok(o) => o,
            Err(e) => {
                for l in &batch {
                    self.fail(&l.job, &super::log::describe(&e));
                }
                return;
            }
        };
        let gpu_ms = t.elapsed().as_secs_f64() * 1e3 / batch.len() as f64;
        for ((mut l, out), original) in batch.into_iter().zip(outs).zip(rgbs) {
            match finish(&mut l, out, original, self.opts) {
                Ok(()) => {
                    self.outcome.written += 1;
                    let (input, output) = (l.job.input.display(), l.job.output.display());
                    let total_ms = l.start.elapsed().as_secs_f64() * 1e3;
                    if self.opts.timing {
                        let stats = self.stylizer.context().pool_stats();
                        let mib = |b: u64| b as f64 / (1 << 20) as f64;
                        let (used, held) =
                            (mib(stats.peak_bytes_in_use), mib(stats.peak_bytes_held));
                        self.bar.suspend(|| {
                            println!("{input}: stylize {gpu_ms:.1} ms, end-to-end {total_ms:.1} ms, peak GPU memory {used:.1} MiB in use, {held:.1} MiB held")
                        });
                    }
                    if !self.opts.quiet && self.bar.is_hidden() {
                        eprintln!("wrote {output}");
                    }
                    self.bar.inc(1);
                }
                Err(e) => self.fail(&l.job, &super::log::chain(&e)),
            }
        }
    }
}

/// Post-processes one stylized image and writes it atomically.
/// `original` is the input as stylized (after resizing). The output is encoded straight into
/// the temporary file, without an in-memory copy of the encoded bytes.
fn finish(
    l: &mut Loaded,
    stylized: image::RgbImage,
    original: image::RgbImage,
    opts: &Options,
) -> anyhow::Result<()> {
    let mut rgb = stylized;
    if opts.preserve_colors {
        rgb = wgstyle::color::preserve_colors(&rgb, &original)?;
    }
    if opts.strength < 1.0 {
        rgb = wgstyle::color::blend(&rgb, &original, opts.strength)?;
    }
    drop(original);
    let pic = Picture {
        rgb,
        alpha: l.pic.alpha.clone(),
    };
    let format = l.job.format;
    l.job.reservation.write(|f| {
        let mut w = std::io::BufWriter::new(f);
        image_io::write(&pic, format, &mut w).map_err(std::io::Error::other)?;
        std::io::Write::flush(&mut w)
    })?;
    Ok(())
}
