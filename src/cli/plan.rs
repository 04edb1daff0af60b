//! Which files to stylize and where each output goes, decided before any GPU work.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use image::ImageFormat;
use wgstyle::image_io::{is_image_path, output_format};

/// One input file and its output.
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: ImageFormat,
}

/// The jobs, and the inputs refused up front (path, reason).
#[derive(Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub failures: Vec<(PathBuf, String)>,
}

/// Expands files and folders into jobs. `output` is a file when there is exactly one input
/// file and `output` has an extension, is not an existing directory and does not end with a
/// separator; otherwise it is a directory (created when written to). Without `output`, each output goes beside its input
/// as `STEM.STYLE.EXT`. Outputs that exist (without `force`), that would be the input itself,
/// or that two inputs share are refused.
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
            walk(input, Path::new(""), recursive, style, &mut files);
        } else if input.is_file() {
            files.push((input.clone(), PathBuf::new()));
        } else {
            let why = "no such file or directory".to_string();
            plan.failures.push((input.clone(), why));
        }
    }
    let single_file = inputs.len() == 1 && inputs[0].is_file();
    let out_dir = match output {
        Some(o) if !(single_file && is_file_name(o)) => {
            if o.exists() && !o.is_dir() {
                bail!("output {} exists and is not a directory", o.display());
            }
            Some(o)
        }
        _ => None,
    };
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
        let key = absolute(&out);
        let why = if key == absolute(&input) {
            Some(format!(
                "output {} would overwrite the input",
                out.display()
            ))
        } else if !seen.insert(key) {
            Some(format!("another input also writes {}", out.display()))
        } else if out.exists() && !force {
            Some(format!(
                "output {} exists (use --force to replace it)",
                out.display()
            ))
        } else {
            None
        };
        match why {
            Some(why) => plan.failures.push((input, why)),
            None => plan.jobs.push(Job {
                input,
                output: out,
                format,
            }),
        }
    }
    Ok(plan)
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
fn walk(dir: &Path, rel: &Path, recursive: bool, style: &str, out: &mut Vec<(PathBuf, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
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
                walk(&path, &rel.join(&name), recursive, style, out);
            }
        } else if path.is_file() && is_image_path(&path) {
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
