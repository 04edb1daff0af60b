//! `wgstyle optimize CONTENT --style-image STYLE... -o OUT`: Gatys-style optimisation.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use image::RgbImage;
use wgstyle::nets::vgg::Vgg;
use wgstyle::ops::optim::AdamParams;
use wgstyle::ops::pool::Pooling;
use wgstyle::optimize::image::{
    deprocess_f32, original_colors, preprocess, resize_longest, to_rgb8, upload_preprocessed,
};
use wgstyle::optimize::lbfgs::{LbfgsParams, LbfgsStop};
use wgstyle::optimize::{adam::adam, lbfgs::lbfgs, LossSpec, Losses, Objective};
use wgstyle::output::{OutputPolicy, Reservation};
use wgstyle::{Context, Tensor};

use super::floats::{non_negative, positive};

#[derive(clap::Args)]
pub struct Args {
    /// Content image.
    content: PathBuf,
    /// Style image(s).
    #[arg(long = "style-image", required = true, num_args = 1..)]
    style_images: Vec<PathBuf>,
    /// Output image (an existing file is refused unless --force).
    #[arg(short, long)]
    output: PathBuf,
    /// Replace existing outputs (OUT, --save-every images, --log-json); never an input.
    #[arg(short, long)]
    force: bool,
    #[arg(long, default_value_t = 500)]
    iterations: usize,
    /// lbfgs or adam.
    #[arg(long, default_value = "lbfgs")]
    optimizer: String,
    /// Adam's step (pixel units of the 0..255 image).
    #[arg(long, default_value_t = 2.0, value_parser = positive)]
    learning_rate: f32,
    /// L-BFGS history size.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    lbfgs_history: u16,
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    content_weight: f32,
    #[arg(long, default_value_t = 1e-3, value_parser = non_negative)]
    style_weight: f32,
    #[arg(long, default_value_t = 1e-4, value_parser = non_negative)]
    tv_weight: f32,
    #[arg(long, default_value = "relu4_2", value_delimiter = ',')]
    content_layers: Vec<String>,
    #[arg(
        long,
        default_value = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
        value_delimiter = ','
    )]
    style_layers: Vec<String>,
    /// Weights of the style images (normalised to sum 1; default equal).
    #[arg(long, value_delimiter = ',', value_parser = non_negative)]
    style_blend_weights: Vec<f32>,
    /// Style images are resized to this fraction of --size.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    style_scale: f32,
    /// content, random or an image file.
    #[arg(long, default_value = "content")]
    init: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// max or avg.
    #[arg(long, default_value = "max")]
    pooling: String,
    /// Keep the colours of the content image (luminance transfer only).
    #[arg(long)]
    original_colors: bool,
    /// Longest side of the output.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    size: u32,
    /// Save an intermediate image every N iterations (OUT with `_N` before the extension).
    #[arg(long, default_value_t = 0)]
    save_every: usize,
    /// Print the losses every N iterations.
    #[arg(long, default_value_t = 0)]
    print_every: usize,
    /// Write one JSON object per iteration to this file.
    #[arg(long)]
    log_json: Option<PathBuf>,
    /// VGG19: a tfjs model directory or a wgstyle .safetensors file.
    #[arg(long)]
    vgg: Option<PathBuf>,
    /// Directory searched first for vgg19.safetensors / vgg19-tfjs.
    #[arg(long)]
    weights_dir: Option<PathBuf>,
}

fn open(p: &Path) -> Result<RgbImage> {
    Ok(image::open(p)
        .with_context(|| format!("reading {}", p.display()))?
        .to_rgb8())
}

fn save(ctx: &Context, x: &Tensor, content: &[f32], a: &Args, out: &mut Reservation) -> Result<()> {
    let [_, h, w, _] = x.shape();
    let mut rgb = deprocess_f32(&ctx.download(x)?);
    if a.original_colors {
        rgb = original_colors(&rgb, content);
    }
    let pic = wgstyle::image_io::Picture {
        rgb: to_rgb8(&rgb, w as u32, h as u32),
        alpha: None,
    };
    let format = image_format(out.path())?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    wgstyle::image_io::write(&pic, format, &mut bytes)?;
    out.write_bytes(bytes.get_ref())?;
    Ok(())
}

/// The format of an output image, checked to be writable before any work.
fn image_format(path: &Path) -> Result<image::ImageFormat> {
    let format = wgstyle::image_io::output_format(path).with_context(|| {
        format!(
            "output {}: cannot tell a writable image format from the extension",
            path.display()
        )
    })?;
    wgstyle::image_io::check_format_writes(format)
        .map_err(|why| anyhow::anyhow!("output {}: {why}", path.display()))?;
    Ok(format)
}

/// The `--save-every` image of iteration `i`: OUT with `_i` before the extension.
fn intermediate(out: &Path, i: usize) -> PathBuf {
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let ext = out.extension().unwrap_or_default().to_string_lossy();
    out.with_file_name(format!("{stem}_{i}.{ext}"))
}

/// The most `--save-every` images one run writes.
const MAX_SAVES: usize = 10_000;

/// Every file this run writes, claimed (and so validated) before any GPU work: the image,
/// the `--save-every` images and the JSON log.
struct Outputs {
    image: Reservation,
    saves: std::collections::HashMap<usize, Reservation>,
    log: Option<wgstyle::output::TempOutput>,
}

fn claim_outputs(a: &Args) -> Result<Outputs> {
    let mut policy = OutputPolicy::new(a.force);
    policy.add_input(&a.content);
    policy.add_inputs(a.style_images.iter().map(PathBuf::as_path));
    if !matches!(a.init.as_str(), "content" | "random") {
        policy.add_input(Path::new(&a.init));
    }
    for p in [&a.vgg, &a.weights_dir].into_iter().flatten() {
        policy.add_input(p);
    }
    let image = policy.claim(&a.output)?;
    image_format(&a.output)?;
    let mut saves = std::collections::HashMap::new();
    if a.save_every > 0 && a.iterations / a.save_every > MAX_SAVES {
        bail!(
            "--save-every {} writes {} images; at most {MAX_SAVES}",
            a.save_every,
            a.iterations / a.save_every
        );
    }
    if a.save_every > 0 {
        for i in (a.save_every..a.iterations).step_by(a.save_every) {
            saves.insert(i, policy.claim(&intermediate(&a.output, i))?);
        }
    }
    let log = match &a.log_json {
        Some(p) => Some(policy.claim(p)?.temp(".tmp")?),
        None => None,
    };
    Ok(Outputs { image, saves, log })
}

fn init_image(a: &Args, content: &RgbImage) -> Result<Vec<f32>> {
    let (w, h) = content.dimensions();
    Ok(match a.init.as_str() {
        "content" => preprocess(content),
        "random" => {
            // Gaussian noise σ = 1e-3 around the mean colour, as jcjohnson's -init random.
            let mut s = a.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut u = || {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            (0..(w * h * 3))
                .map(|_| {
                    ((-2.0 * u().ln()).sqrt() * (std::f64::consts::TAU * u()).cos() * 1e-3) as f32
                })
                .collect()
        }
        file => {
            let img = open(Path::new(file))?;
            preprocess(&image::imageops::resize(
                &img,
                w,
                h,
                image::imageops::FilterType::CatmullRom,
            ))
        }
    })
}

fn progress(i: usize, n: usize, l: &Losses) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let done = (i * 30).checked_div(n).unwrap_or(30);
    eprint!(
        "\r[{}{}] {i}/{n} loss {:.4e}",
        "#".repeat(done),
        "-".repeat(30 - done),
        l.total
    );
    let _ = std::io::stderr().flush();
}

pub fn run(a: Args, gpu: super::Gpu) -> Result<()> {
    let pooling = match a.pooling.as_str() {
        "max" => Pooling::Max,
        "avg" => Pooling::Avg,
        p => bail!("--pooling {p}: expected max or avg"),
    };
    if a.optimizer != "lbfgs" && a.optimizer != "adam" {
        bail!("--optimizer {}: expected lbfgs or adam", a.optimizer);
    }
    let blend = if a.style_blend_weights.is_empty() {
        vec![1.0; a.style_images.len()]
    } else if a.style_blend_weights.len() == a.style_images.len() {
        a.style_blend_weights.clone()
    } else {
        bail!("--style-blend-weights needs one weight per --style-image");
    };
    if blend.iter().sum::<f32>() <= 0.0 {
        bail!("--style-blend-weights: at least one weight must be greater than 0");
    }
    let style_size = (a.size as f64 * a.style_scale as f64).round();
    if style_size > 65_535.0 {
        bail!(
            "--style-scale {} makes the style images {style_size} pixels long; at most 65535",
            a.style_scale
        );
    }
    let mut outputs = claim_outputs(&a)?;
    let vgg_path = wgstyle::weights::vgg::find_vgg19(a.vgg.as_deref(), a.weights_dir.as_deref())
        .map_err(super::fetch::vgg_hint)?;
    let weights = wgstyle::weights::load_vgg19(&vgg_path)?;
    let content = open(&a.content)?;
    check_resize(&content, a.size)?;
    let content = resize_longest(&content, a.size);
    let (w, h) = content.dimensions();
    let spec = LossSpec {
        content_layers: a.content_layers.clone(),
        style_layers: a.style_layers.clone(),
        content_weight: a.content_weight,
        style_weight: a.style_weight,
        style_layer_weights: None,
        tv_weight: a.tv_weight,
    };
    let ctx = gpu.context(wgstyle::ops::conv::ConvPrecision::F32)?;
    let vgg = Vgg::new(&ctx, &weights, spec.deepest()? + 1, pooling)?;
    let shape = [1, h as usize, w as usize, 3];
    let ct = upload_preprocessed(&ctx, "content", &content)?;
    let mut styles = Vec::new();
    for (p, b) in a.style_images.iter().zip(&blend) {
        let s = open(p)?;
        let side = (style_size as u32).max(16);
        check_resize(&s, side)?;
        let s = resize_longest(&s, side);
        styles.push((upload_preprocessed(&ctx, "style", &s)?, *b));
    }
    let obj = Objective::new(&ctx, &vgg, &spec, &ct, &styles)?;
    let x = Tensor::upload(&ctx, "x", shape, &init_image(&a, &content)?)?;
    let content_rgb = deprocess_f32(&preprocess(&content));
    let mut log = outputs.log.take();
    let mut t0 = Instant::now();
    let n = a.iterations;
    let mut step = |i: usize, l: &Losses| -> wgstyle::Result<bool> {
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        t0 = Instant::now();
        if let Some(f) = log.as_mut() {
            let line = serde_json::json!({"iteration": i, "content": l.content, "style": l.style,
                "tv": l.tv, "total": l.total, "ms": ms});
            writeln!(f.file_mut(), "{line}").map_err(|source| wgstyle::Error::Io {
                path: a.log_json.clone().unwrap_or_default(),
                source,
            })?;
        }
        if a.print_every > 0 && i.is_multiple_of(a.print_every) {
            eprintln!(
                "\riteration {i}: total {:.4e} content {:.4e} style {:.4e} tv {:.4e} ({ms:.0} ms)",
                l.total, l.content, l.style, l.tv
            );
        }
        progress(i, n, l);
        if let Some(out) = outputs.saves.get_mut(&i) {
            save(&ctx, &x, &content_rgb, &a, out)
                .map_err(|e| wgstyle::Error::InvalidInput(super::log::chain(&e)))?;
        }
        Ok(true)
    };
    let report = if a.optimizer == "adam" {
        let p = AdamParams {
            lr: a.learning_rate,
            ..AdamParams::default()
        };
        adam(&ctx, &obj, &x, p, n, &mut step)?;
        None
    } else {
        let p = LbfgsParams {
            history: a.lbfgs_history as usize,
            ..LbfgsParams::default()
        };
        Some(lbfgs(&ctx, &obj, &x, p, n, &mut step)?)
    };
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    // Say why L-BFGS ended before the iterations asked for.
    if let Some(r) = report.filter(|r| r.stop != LbfgsStop::Iterations) {
        let resets = match r.resets {
            0 => String::new(),
            k => format!(", history reset {k}x"),
        };
        eprintln!(
            "L-BFGS {} after {} of {n} iterations ({} loss evaluations{resets})",
            r.stop, r.iterations, r.evaluations
        );
    }
    save(&ctx, &x, &content_rgb, &a, &mut outputs.image)?;
    if let Some(log) = log {
        log.persist()?;
    }
    eprintln!("wrote {}", a.output.display());
    Ok(())
}

/// Refuses, before allocating, a resize of `img` to `side` pixels that memory cannot hold.
fn check_resize(img: &RgbImage, side: u32) -> Result<()> {
    let (w, h) = img.dimensions();
    let k = side as f64 / w.max(h) as f64;
    let (tw, th) = ((w as f64 * k).round() as u32, (h as f64 * k).round() as u32);
    wgstyle::image_io::check_resize(w, h, tw.max(1), th.max(1)).map_err(anyhow::Error::msg)
}
