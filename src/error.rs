//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong in wgstyle's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter matched the request.
    #[error("no GPU adapter found{filter}. Adapters seen: {found}. On Linux without a GPU, install a CPU Vulkan driver: `apt-get install mesa-vulkan-drivers` (lavapipe)")]
    NoAdapter {
        /// A description of the active filters (backend, name).
        filter: String,
        /// The adapters that were enumerated, as "name (backend)".
        found: String,
    },
    /// The adapter refused to create a device.
    #[error("could not create a GPU device on {adapter}: {source}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        #[source]
        source: wgpu::RequestDeviceError,
    },
    /// A GPU operation failed (validation, out of memory, device lost).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// A tensor does not fit in one GPU buffer on this adapter.
    #[error("{what} needs {bytes} bytes in one GPU buffer, but this adapter allows at most {limit} bytes; the image is too large for it")]
    TooLarge {
        /// What was being allocated.
        what: String,
        /// Bytes needed.
        bytes: u64,
        /// The adapter's limit.
        limit: u64,
    },
    /// Host memory could not be allocated.
    #[error("out of host memory: {what} needs {bytes} bytes")]
    HostMemory {
        /// What was being allocated.
        what: String,
        /// Bytes needed.
        bytes: u64,
    },
    /// A weights file or directory is missing, unreadable or malformed.
    #[error("{}: {msg}", path.display())]
    Weights {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong, naming the variable where there is one.
        msg: String,
    },
    /// The adapter lacks a feature that was asked for.
    #[error("{adapter} does not support {what}")]
    Unsupported {
        /// Adapter name.
        adapter: String,
        /// The missing feature.
        what: String,
    },
    /// An input was rejected before it reached the GPU.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A setting of a library options struct is out of its range (`setting` is the field's
    /// name, e.g. `image_size` of `TrainOptions`).
    #[error("invalid {setting} {value}: {expected}")]
    InvalidSetting {
        /// The field's name.
        setting: &'static str,
        /// Its value, as given.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// An image could not be decoded or encoded.
    #[error("{}: {msg}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// A style name was found neither on disk nor in the catalog, or only in the catalog.
    #[error("{}", style_not_found(name, searched, *fetchable, suggestion.as_deref()))]
    StyleNotFound {
        /// The name asked for.
        name: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
        /// Whether the catalog knows the style (it can be fetched).
        fetchable: bool,
        /// A known name close to `name` (a misspelling or a case difference).
        suggestion: Option<String>,
    },
    /// VGG19 weights were found nowhere.
    #[error("VGG19 weights not found: looked for vgg19.safetensors and vgg19-tfjs/ in {}", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    VggNotFound {
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// The style catalog is malformed or does not know a style.
    #[error("catalog: {0}")]
    Catalog(String),
    /// A download failed (network error, HTTP status, dropped connection).
    #[error("downloading {url}: {msg}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        msg: String,
    },
    /// A downloaded file does not have the catalog's checksum.
    #[error(
        "checksum mismatch for {url}: expected sha256 {expected}, got {actual}; nothing was kept"
    )]
    Checksum {
        /// The URL.
        url: String,
        /// The catalog's sha256.
        expected: String,
        /// The sha256 of what arrived.
        actual: String,
    },
    /// An I/O error with the path it concerns.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `ffmpeg` or `ffprobe` is not on the PATH.
    #[error("{tool} not found on the PATH; install ffmpeg (Debian/Ubuntu: `apt-get install ffmpeg`, macOS: `brew install ffmpeg`, others: https://ffmpeg.org/download.html)")]
    FfmpegMissing {
        /// The program that could not be started.
        tool: String,
    },
    /// `ffmpeg` or `ffprobe` failed or produced something unexpected.
    #[error("{tool} failed: {msg}")]
    Ffmpeg {
        /// The program concerned.
        tool: String,
        /// What went wrong, with the end of the program's error output where there is one.
        msg: String,
    },
    /// The output exists and overwriting was not allowed.
    #[error("{} already exists", .0.display())]
    OutputExists(PathBuf),
    /// The operation was cancelled (e.g. by Ctrl-C); nothing was written under the output name.
    #[error("cancelled; no output was written")]
    Cancelled,
}

/// Short for `Result<T, wgstyle::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn style_not_found(
    name: &str,
    searched: &[PathBuf],
    fetchable: bool,
    suggestion: Option<&str>,
) -> String {
    let dirs: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    let mut s = format!(
        "no style '{name}' in the weights search path ({})",
        if dirs.is_empty() {
            "empty".to_string()
        } else {
            dirs.join(", ")
        }
    );
    if let Some(near) = suggestion {
        s.push_str(&format!("; did you mean '{near}'?"));
    } else if fetchable {
        s.push_str(&format!(
            ". It is in the catalog but not downloaded: run `wgstyle fetch {name}`"
        ));
    } else {
        s.push_str(". `wgstyle styles` lists the styles it can see or fetch");
    }
    s
}

impl Error {
    pub(crate) fn weights(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Weights {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn image(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Image {
            path: path.into(),
            msg: msg.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Library messages say what is wrong; which command-line flag fixes it is the CLI's
    /// business (src/cli/log.rs adds it).
    #[test]
    fn messages_name_no_command_line_flag() {
        let mut messages = vec![
            Error::OutputExists("out.png".into()).to_string(),
            Error::TooLarge {
                what: "tensor".into(),
                bytes: 2,
                limit: 1,
            }
            .to_string(),
            crate::image_io::check_encodable(image::ImageFormat::Jpeg, 70_000, 8).unwrap_err(),
        ];
        let bad = [
            crate::train::TrainOptions {
                image_size: 15,
                ..Default::default()
            },
            crate::train::TrainOptions {
                batch_size: 0,
                ..Default::default()
            },
            crate::train::TrainOptions {
                learning_rate: -1.0,
                ..Default::default()
            },
        ];
        messages.extend(bad.iter().map(|o| o.validate().unwrap_err().to_string()));
        for m in messages {
            assert!(!m.contains("--"), "{m}");
        }
    }
}
