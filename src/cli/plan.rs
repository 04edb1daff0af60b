//! Which files to stylize and where each output goes, decided before any GPU work.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use image::ImageFormat;
use wgstyle::image_io::{check_format_writes, is_image_path, output_format};
use wgstyle::output::{OutputPolicy, Reservation};

/// One input file and its output.
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: ImageFormat,
    /// The output, claimed under the run's [`OutputPolicy`].
    pub reservation: Reservation,
}

/// The jobs, the outputs that exist already (skipped without `force`), and the inputs
/// refused up front (path, reason).
#[derive(Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub skipped: Vec<(PathBuf, PathBuf)>,
    pub failures: Vec<(PathBuf, String)>,
}

/// Expands files and folders into jobs. `output` is a file when there is exactly one input
/// file and `output` has an extension, is not an existing directory and does not end with a
/// separator; otherwise it is a directory (created when written to). Without `output`, each output goes beside its input
/// as `STEM.STYLE.EXT`. Every output is claimed under one [`OutputPolicy`]: outputs that exist
/// (without `force`) are skipped; outputs that are any input of the run (by file identity),
/// or that two inputs share, are refused.
pub fn plan(
    inputs: &[PathBuf],
    output: Option<&Path>,
    recursive: bool,
    style: &str,
    force: bool,
) -> Result<Plan> {
    let mut plan = Plan::default();
    // (file, its folder relative to the input folder it came from)
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(
                input,
                Path::new(""),
                recursive,
                style,
                &mut files,
                &mut plan,
            );
        } else if input.is_file() {
            files.push((input.clone(), PathBuf::new()));
        } else {
            plan.failures.push((input.clone(), not_a_file(input)));
        }
    }
    let single_file = inputs.len() == 1 && inputs[0].is_file();
    if let Some(o) = output {
        if o.as_os_str() == "-" {
            bail!("-o -: writing images to standard output is not supported; name a file or directory");
        }
        if !single_file && is_file_name(o) && output_format(o).is_some() {
            bail!(
                "output {} names one image file, but the inputs are {} files or folders; \
                 name a directory (e.g. {}/)",
                o.display(),
                inputs.len(),
                o.with_extension("").display()
            );
        }
    }
    let out_dir = match output {
        Some(o) if !(single_file && is_file_name(o)) => {
            if o.exists() && !o.is_dir() {
                bail!("output {} exists and is not a directory", o.display());
            }
            Some(o)
        }
        _ => None,
    };
    let mut policy = OutputPolicy::new(force);
    policy.add_inputs(files.iter().map(|(f, _)| f.as_path()));
    let mut seen = HashSet::new();
    for (input, rel) in files {
        let (out, format) = match (output, out_dir) {
            (Some(o), None) => match output_format(o) {
                Some(f) => (o.to_path_buf(), f),
                None => {
                    let why = format!("cannot tell an image format from {}", o.display());
                    plan.failures.push((input, why));
                    continue;
                }
            },
            (_, dir) => {
                let (name, f) = output_name(&input, style);
                let parent = match dir {
                    Some(d) => d.join(&rel),
                    None => input.parent().unwrap_or(Path::new("")).to_path_buf(),
                };
                (parent.join(name), f)
            }
        };
        if let Err(why) = check_format_writes(format) {
            plan.failures
                .push((input, format!("{}: {why}", out.display())));
            continue;
        }
        if !seen.insert(absolute(&out)) {
            let why = format!("another input also writes {}", out.display());
            plan.failures.push((input, why));
            continue;
        }
        match policy.claim(&out) {
            Ok(reservation) => plan.jobs.push(Job {
                input,
                output: out,
                format,
                reservation,
            }),
            Err(wgstyle::Error::OutputExists(_)) => plan.skipped.push((input, out)),
            Err(e) => plan.failures.push((input, super::log::describe(&e))),
        }
    }
    Ok(plan)
}

/// Why an input that is not a regular file or directory cannot be read.
fn not_a_file(p: &Path) -> String {
    match std::fs::symlink_metadata(p) {
        Err(_) => "no such file or directory".into(),
        Ok(m) if m.file_type().is_symlink() => "a symbolic link to nothing (dangling)".into(),
        Ok(_) => "not a regular file (a FIFO, socket or device)".into(),
    }
}

/// `STEM.STYLE.EXT` in the input's format, or `.png` when that format cannot be written.
fn output_name(input: &Path, style: &str) -> (String, ImageFormat) {
    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
    match (output_format(input), input.extension()) {
        (Some(f), Some(ext)) => (format!("{stem}.{style}.{}", ext.to_string_lossy()), f),
        _ => (format!("{stem}.{style}.png"), ImageFormat::Png),
    }
}

/// Image files of `dir` (sorted; hidden files and earlier outputs of this style skipped),
/// descending into sub-folders when `recursive`.
/// Unreadable folders and image-named entries that are not regular files are failures.
fn walk(
    dir: &Path,
    rel: &Path,
    recursive: bool,
    style: &str,
    out: &mut Vec<(PathBuf, PathBuf)>,
    plan: &mut Plan,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            plan.failures.push((dir.to_path_buf(), e.to_string()));
            return;
        }
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let suffix = format!(".{style}");
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with('.') {
            continue;
        }
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            if recursive {
                walk(&path, &rel.join(&name), recursive, style, out, plan);
            }
        } else if is_image_path(&path) && !path.is_file() {
            plan.failures.push((path.clone(), not_a_file(&path)));
        } else if is_image_path(&path) {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            if !stem.ends_with(&suffix) {
                out.push((path, rel.to_path_buf()));
            }
        }
    }
}

/// Whether `-o PATH` names a file: it has an extension, is not a directory and does not end
/// with a separator.
fn is_file_name(p: &Path) -> bool {
    let s = p.as_os_str().to_string_lossy();
    let trailing = s.ends_with('/') || s.ends_with(std::path::MAIN_SEPARATOR);
    !trailing && !p.is_dir() && p.extension().is_some()
}

/// An absolute, symlink-free form of `p` for comparisons (the parent is canonicalized when
/// `p` itself does not exist yet).
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), p.file_name()) {
        (Ok(d), Some(n)) => d.join(n),
        _ => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
    }
}
