//! Downloading a catalog style: every file fetched over HTTP(S), checked against the
//! catalog's sha256, then converted to `NAME.safetensors` in a styles directory. Nothing is
//! kept unless every file verifies and the conversion succeeds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::weights::catalog::{Catalog, ARCH_JOHNSON_LENGSTROM};
use crate::weights::safetensors::{save_transform, Precision};

/// Environment variable: a base URL that replaces the catalog's (same relative paths).
pub const MIRROR_ENV: &str = "WGSTYLE_MIRROR";

/// `$WGSTYLE_MIRROR`, if set and not empty.
pub fn mirror_from_env() -> Option<String> {
    std::env::var(MIRROR_ENV).ok().filter(|s| !s.is_empty())
}

/// What a fetch reports while it runs.
#[derive(Clone, Debug)]
pub enum FetchEvent<'a> {
    /// A file download starts: its index (0-based), the number of files, its URL and its
    /// size when the server says.
    File {
        /// 0-based index of the file.
        index: usize,
        /// Number of files of the style.
        count: usize,
        /// The URL being downloaded.
        url: &'a str,
        /// `Content-Length`, if sent.
        len: Option<u64>,
    },
    /// More bytes of the current file arrived.
    Bytes(u64),
    /// All files verified; converting.
    Converting,
}

/// Downloads style `name` of `catalog` from `base_url` (see [`Catalog::base_url_for`]),
/// verifies each file's sha256, converts the checkpoint and writes
/// `dest_dir/NAME.safetensors` atomically (replacing an existing one only if `overwrite`).
/// Returns the written path.
pub fn fetch_style(
    catalog: &Catalog,
    name: &str,
    base_url: &str,
    dest_dir: &Path,
    overwrite: bool,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<PathBuf> {
    let style = catalog.require(name)?;
    if style.architecture != ARCH_JOHNSON_LENGSTROM {
        return Err(Error::Catalog(format!(
            "style '{name}' has architecture '{}', which wgstyle cannot load",
            style.architecture
        )));
    }
    let dest = dest_dir.join(format!("{name}.safetensors"));
    if dest.exists() && !overwrite {
        return Err(Error::io(
            &dest,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already fetched (use --force to download it again)",
            ),
        ));
    }
    let tmp = tempfile::Builder::new()
        .prefix("wgstyle-fetch-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let count = style.files.len();
    for (index, (rel, sha)) in style.files.iter().enumerate() {
        let url = format!("{base_url}{rel}");
        let bytes = download(&agent, &url, index, count, progress)?;
        let actual = hex(&Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(sha) {
            return Err(Error::Checksum {
                url,
                expected: sha.clone(),
                actual,
            });
        }
        let path = tmp.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
    }
    progress(FetchEvent::Converting);
    let weights = crate::weights::deeplearnjs::load(&tmp.path().join(name))?;
    std::fs::create_dir_all(dest_dir).map_err(|e| Error::io(dest_dir, e))?;
    let source = format!("{base_url}{name}/");
    save_transform(
        &weights,
        &dest,
        Precision::F32,
        overwrite,
        &[
            ("wgstyle.source", &source),
            ("wgstyle.license", &style.license),
            ("wgstyle.upstream", &style.upstream),
            ("wgstyle.commit", &style.commit),
        ],
    )?;
    Ok(dest)
}

fn download(
    agent: &ureq::Agent,
    url: &str,
    index: usize,
    count: usize,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<Vec<u8>> {
    let err = |msg: String| Error::Download {
        url: url.to_string(),
        msg,
    };
    let resp = agent.get(url).call().map_err(|e| err(e.to_string()))?;
    let len = resp.body().content_length();
    progress(FetchEvent::File {
        index,
        count,
        url,
        len,
    });
    let mut reader = resp.into_body().into_reader();
    let mut bytes = Vec::with_capacity(len.unwrap_or(0).min(1 << 28) as usize);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| err(e.to_string()))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        progress(FetchEvent::Bytes(n as u64));
    }
    if let Some(l) = len {
        if bytes.len() as u64 != l {
            return Err(err(format!(
                "connection closed after {} of {l} bytes",
                bytes.len()
            )));
        }
    }
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
