//! Downloading a catalog entry: every file streamed over HTTP(S) into a work directory the
//! caller owns, bounded in time (connect, response headers, each read, the whole body) and in
//! size (the catalog's size per file), checked against the catalog's sha256, then converted
//! to `NAME.safetensors`. Nothing is kept unless every file verifies and the conversion
//! succeeds; the output is written atomically.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::weights::catalog::{
    Catalog, CatalogEntry, CatalogFile, ARCH_JOHNSON_LENGSTROM, ARCH_PYTORCH_EXAMPLES, ARCH_VGG19,
    FORMAT_DEEPLEARNJS, FORMAT_ONNX, FORMAT_TFJS,
};
use crate::weights::safetensors::{parse, read_file, save_transform, Precision};

/// Environment variable: a base URL serving every catalog entry under its name
/// (`URL/scream/manifest.json`, `URL/vgg19/model.json`, ...), used instead of the catalog's.
pub const MIRROR_ENV: &str = "WGSTYLE_MIRROR";
/// Environment variable: the network timeout in seconds (default [`DEFAULT_TIMEOUT`]).
pub const TIMEOUT_ENV: &str = "WGSTYLE_FETCH_TIMEOUT_SECS";
/// Default bound on connecting, on waiting for response headers and on each read.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Metadata key of a fetched file: the digest of the catalog entry it was made from.
pub const DIGEST_KEY: &str = "wgstyle.catalog_digest";

/// `$WGSTYLE_MIRROR`, if set and not empty.
pub fn mirror_from_env() -> Option<String> {
    std::env::var(MIRROR_ENV).ok().filter(|s| !s.is_empty())
}

/// `$WGSTYLE_FETCH_TIMEOUT_SECS` (a positive number of seconds), else [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var(TIMEOUT_ENV) {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
            _ => Err(Error::InvalidInput(format!(
                "{TIMEOUT_ENV}='{v}' is not a number of seconds in (0, 86400]"
            ))),
        },
    }
}

/// How a fetch runs.
#[derive(Clone, Copy, Debug)]
pub struct FetchOptions<'a> {
    /// Bound on resolving, connecting, sending the request, receiving the response headers
    /// and on each read of the body; a whole file may take 20 times this.
    pub timeout: Duration,
    /// Replace an existing destination file.
    pub overwrite: bool,
    /// Checked between reads: once set, the fetch stops with [`Error::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
    /// Whether `base_url` is a mirror (only changes the wording of network errors).
    pub mirror: bool,
}

impl Default for FetchOptions<'_> {
    fn default() -> Self {
        FetchOptions {
            timeout: DEFAULT_TIMEOUT,
            overwrite: false,
            cancel: None,
            mirror: false,
        }
    }
}

/// What a fetch reports while it runs.
#[derive(Clone, Debug)]
pub enum FetchEvent<'a> {
    /// A file download starts: its index (0-based), the number of files, its URL and its
    /// size (from the catalog).
    File {
        /// 0-based index of the file.
        index: usize,
        /// Number of files of the entry.
        count: usize,
        /// The URL being downloaded.
        url: &'a str,
        /// The file's size in bytes.
        len: u64,
    },
    /// More bytes of the current file arrived.
    Bytes(u64),
    /// All files verified; converting.
    Converting,
}

/// Where `wgstyle fetch` puts entry `name`: a style as `NAME.safetensors` in the user styles
/// directory, VGG19 as `vgg19.safetensors` in the user data directory (where `optimize` and
/// `train` look). `None` when the platform has no data directory.
pub fn destination(name: &str, entry: &CatalogEntry) -> Option<PathBuf> {
    use crate::weights::search::{data_dir, user_styles_dir};
    let dir = if entry.architecture == ARCH_VGG19 {
        data_dir()
    } else {
        user_styles_dir()
    }?;
    Some(dir.join(format!("{name}.safetensors")))
}

/// A digest of an entry's files (names, sizes, sha256), stored in the converted file so that
/// a later fetch can tell that it is present and current.
pub fn entry_digest(entry: &CatalogEntry) -> String {
    let mut h = Sha256::new();
    for (rel, f) in &entry.files {
        h.update(format!("{rel}\0{}\0{}\n", f.size, f.sha256.to_lowercase()));
    }
    hex(&h.finalize())
}

/// What is at an entry's destination.
#[derive(Debug)]
pub enum Present {
    /// Nothing.
    Absent,
    /// A file that loads and was made from this catalog entry.
    Verified,
    /// Something else: why it does not verify.
    Differs(String),
}

/// Checks the file at `dest`: it must load as the entry's architecture (every tensor shape
/// and value checked) and carry the entry's digest ([`DIGEST_KEY`]).
pub fn check_present(entry: &CatalogEntry, dest: &Path) -> Present {
    if std::fs::symlink_metadata(dest).is_err() {
        return Present::Absent;
    }
    let check = || -> Result<std::result::Result<(), String>> {
        let bytes = read_file(dest)?;
        let (st, meta) = parse(dest, &bytes)?;
        if meta.get(DIGEST_KEY) != Some(&entry_digest(entry)) {
            return Ok(Err("it was not made from this catalog entry".into()));
        }
        if entry.architecture == ARCH_VGG19 {
            crate::weights::vgg::load_vgg19(dest)?;
        } else {
            crate::weights::safetensors::transform_from(dest, &st, &meta)?;
        }
        Ok(Ok(()))
    };
    match check() {
        Ok(Ok(())) => Present::Verified,
        Ok(Err(why)) => Present::Differs(why),
        Err(e) => Present::Differs(e.to_string()),
    }
}

/// Downloads entry `name` of `catalog` from `base_url` (see [`Catalog::base_url_for`]) into
/// `work_dir` (an empty directory the caller owns and removes), verifies each file's size and
/// sha256, converts it and writes `dest` atomically. Returns `dest`.
pub fn fetch_entry(
    catalog: &Catalog,
    name: &str,
    base_url: &str,
    dest: &Path,
    work_dir: &Path,
    opts: &FetchOptions<'_>,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<PathBuf> {
    let entry = catalog.require(name)?;
    let convertible = match entry.format.as_str() {
        FORMAT_DEEPLEARNJS => entry.architecture == ARCH_JOHNSON_LENGSTROM,
        FORMAT_TFJS => entry.architecture == ARCH_VGG19,
        FORMAT_ONNX => entry.architecture == ARCH_PYTORCH_EXAMPLES,
        _ => false,
    };
    if !convertible {
        return Err(Error::Catalog(format!(
            "'{name}' is a {} model in {} format, which wgstyle cannot convert",
            entry.architecture, entry.format
        )));
    }
    if !opts.overwrite && std::fs::symlink_metadata(dest).is_ok() {
        return Err(Error::OutputExists(dest.to_path_buf()));
    }
    let t = opts.timeout;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(Some(t))
        .timeout_connect(Some(t))
        .timeout_send_request(Some(t))
        .timeout_recv_response(Some(t))
        .timeout_per_read(Some(t))
        .timeout_recv_body(Some(t * 20))
        .build()
        .into();
    let files_dir = work_dir.join(name);
    let count = entry.files.len();
    for (index, (rel, file)) in entry.files.iter().enumerate() {
        let url = format!("{base_url}{rel}");
        let path = files_dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        progress(FetchEvent::File {
            index,
            count,
            url: &url,
            len: file.size,
        });
        download(&agent, &url, file, &path, opts, progress)?;
    }
    progress(FetchEvent::Converting);
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let main = entry.main_file().unwrap_or_default();
    let source = format!("{base_url}{main}");
    let digest = entry_digest(entry);
    let mut meta = vec![
        ("wgstyle.source", source.as_str()),
        ("wgstyle.license", entry.license.as_str()),
        ("wgstyle.upstream", entry.upstream.as_str()),
        ("wgstyle.commit", entry.commit.as_str()),
        (DIGEST_KEY, digest.as_str()),
    ];
    if let Some(a) = &entry.attribution {
        meta.push(("wgstyle.attribution", a.as_str()));
    }
    meta.push(("wgstyle.source_format", entry.format.as_str()));
    check_cancel(opts)?;
    if entry.format == FORMAT_TFJS {
        let w = crate::weights::tfjs::load_vgg19(&files_dir)?;
        check_cancel(opts)?;
        crate::weights::vgg::save_vgg19(&w, dest, opts.overwrite, &meta)?;
    } else if entry.format == FORMAT_ONNX {
        let w = crate::weights::onnx::load(&files_dir.join(main))?;
        if w.arch.family.name() != entry.architecture {
            return Err(Error::Catalog(format!(
                "'{name}' should be a {} network, but its ONNX file holds a {} one",
                entry.architecture,
                w.arch.family.name()
            )));
        }
        check_cancel(opts)?;
        save_transform(&w, dest, Precision::F32, opts.overwrite, &meta)?;
    } else {
        let w = crate::weights::deeplearnjs::load(&files_dir)?;
        check_cancel(opts)?;
        save_transform(&w, dest, Precision::F32, opts.overwrite, &meta)?;
    }
    Ok(dest.to_path_buf())
}

fn check_cancel(opts: &FetchOptions<'_>) -> Result<()> {
    match opts.cancel {
        Some(c) if c.load(Ordering::Acquire) => Err(Error::Cancelled),
        _ => Ok(()),
    }
}

/// Streams `url` into `path`: refused as soon as it exceeds the catalog's size, kept only if
/// its size and sha256 match.
fn download(
    agent: &ureq::Agent,
    url: &str,
    file: &CatalogFile,
    path: &Path,
    opts: &FetchOptions<'_>,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<()> {
    let err = |msg: String| Error::Download {
        url: url.to_string(),
        msg,
    };
    let network = |e: &dyn std::fmt::Display, timeout: bool| {
        let what = if timeout {
            format!("no answer within {:.0?} ({e})", opts.timeout)
        } else {
            e.to_string()
        };
        let hint = if opts.mirror {
            "; is the mirror (WGSTYLE_MIRROR) running?"
        } else {
            "; without network access, a mirror can serve the files: set WGSTYLE_MIRROR=URL"
        };
        err(format!("{what}{hint}"))
    };
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => err(format!("HTTP {code}")),
        ureq::Error::Timeout(_) => network(&e, true),
        e => network(&e, false),
    })?;
    if let Some(len) = resp.body().content_length() {
        if len != file.size {
            return Err(err(format!(
                "the server announces {len} bytes; the catalog says {}",
                file.size
            )));
        }
    }
    let mut reader = resp.into_body().into_reader();
    let mut out = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        check_cancel(opts)?;
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let timeout =
                    e.kind() == std::io::ErrorKind::TimedOut || e.to_string().contains("timeout");
                return Err(if timeout {
                    network(&e, true)
                } else {
                    err(format!(
                        "connection failed after {got} of {} bytes: {e}",
                        file.size
                    ))
                });
            }
        };
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > file.size {
            return Err(err(format!(
                "the server sent more than the {} bytes the catalog lists; stopped",
                file.size
            )));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(path, e))?;
        progress(FetchEvent::Bytes(n as u64));
    }
    if got != file.size {
        return Err(err(format!(
            "connection closed after {got} of {} bytes",
            file.size
        )));
    }
    let actual = hex(&hasher.finalize());
    if !actual.eq_ignore_ascii_case(&file.sha256) {
        return Err(Error::Checksum {
            url: url.to_string(),
            expected: file.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
