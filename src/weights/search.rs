//! Finding a style by name: the weights search path and the user data directory.
//!
//! A style named `NAME` is a file `NAME.safetensors` or a deeplearnjs checkpoint directory
//! `NAME/` (with a `manifest.json`) in one of, in order: the directory given on the command
//! line (`--weights-dir`), the directories in `WGSTYLE_WEIGHTS` (separated by `:`, `;` on
//! Windows), `./weights`, and the user styles directory ([`user_styles_dir`]).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::weights::catalog::Catalog;

/// Environment variable: extra weights directories, searched after `--weights-dir`.
pub const WEIGHTS_ENV: &str = "WGSTYLE_WEIGHTS";
/// Environment variable: replaces the user data directory (fetched styles live in its
/// `styles/` folder).
pub const DATA_DIR_ENV: &str = "WGSTYLE_DATA_DIR";

/// wgstyle's user data directory: `$WGSTYLE_DATA_DIR`, else `wgstyle` in the platform's data
/// directory (`~/.local/share/wgstyle` on Linux, `~/Library/Application Support/wgstyle` on
/// macOS, `%APPDATA%\wgstyle` on Windows).
pub fn data_dir() -> Option<PathBuf> {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        #[cfg(not(target_arch = "wasm32"))]
        _ => dirs::data_dir().map(|d| d.join("wgstyle")),
        // The web has no file system.
        #[cfg(target_arch = "wasm32")]
        _ => None,
    }
}

/// Where `wgstyle fetch` puts styles and where lookups search last: `data_dir()/styles`.
pub fn user_styles_dir() -> Option<PathBuf> {
    data_dir().map(|d| d.join("styles"))
}

/// The name a style file or directory gives its outputs (`scream.safetensors` -> `scream`).
pub fn style_name_of(path: &Path) -> String {
    let stem = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    };
    stem.map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s != "." && s != "..")
        .unwrap_or_else(|| "styled".to_string())
}

/// The ordered list of directories a style name is looked up in.
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    /// The directories, first match wins.
    pub dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// `weights_dir` (the `--weights-dir` option), `$WGSTYLE_WEIGHTS`, `./weights`, then the
    /// user styles directory.
    pub fn from_env(weights_dir: Option<&Path>) -> Self {
        let mut dirs: Vec<PathBuf> = weights_dir.map(Path::to_path_buf).into_iter().collect();
        if let Some(v) = std::env::var_os(WEIGHTS_ENV) {
            dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
        }
        dirs.push(PathBuf::from("weights"));
        dirs.extend(user_styles_dir());
        SearchPath { dirs }
    }

    /// The first `NAME.safetensors` file or `NAME/` checkpoint directory in the path.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.dirs.iter().find_map(|d| find_in(d, name))
    }

    /// Every style visible in the path, by name (first occurrence wins), sorted by name.
    pub fn list(&self) -> Vec<(String, PathBuf)> {
        let mut found: std::collections::BTreeMap<String, PathBuf> = Default::default();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let name = name
                    .strip_suffix(".safetensors")
                    .unwrap_or(&name)
                    .to_string();
                if name.starts_with('.') || found.contains_key(&name) {
                    continue;
                }
                if let Some(p) = find_in(dir, &name) {
                    found.insert(name, p);
                }
            }
        }
        found.into_iter().collect()
    }
}

fn find_in(dir: &Path, name: &str) -> Option<PathBuf> {
    let file = dir.join(format!("{name}.safetensors"));
    if file.is_file() {
        return Some(file);
    }
    let ckpt = dir.join(name);
    ckpt.join("manifest.json").is_file().then_some(ckpt)
}

/// A `--style` argument resolved to weights on disk.
#[derive(Clone, Debug)]
pub struct ResolvedStyle {
    /// The style's name, used in output file names.
    pub name: String,
    /// The `.safetensors` file or checkpoint directory.
    pub path: PathBuf,
}

/// Resolves `--style`. Something that looks like a path (it contains a path separator or
/// ends in `.safetensors`, `.pth`, `.pt` or `.onnx`) is used as a path. A bare name is looked up in `search`; failing
/// that, an existing file or checkpoint directory of that name in the current directory is
/// used. A name found nowhere but in `catalog` gives [`Error::StyleNotFound`] with
/// `fetchable: true` (wgstyle never downloads without being asked).
pub fn resolve(arg: &str, search: &SearchPath, catalog: &Catalog) -> Result<ResolvedStyle> {
    let as_path = Path::new(arg);
    let looks_like_path = arg.contains('/')
        || arg.contains(std::path::MAIN_SEPARATOR)
        || [".safetensors", ".pth", ".pt", ".onnx"]
            .iter()
            .any(|e| arg.ends_with(e));
    let by_path = || ResolvedStyle {
        name: style_name_of(as_path),
        path: as_path.to_path_buf(),
    };
    if looks_like_path || arg.is_empty() {
        if as_path.exists() {
            return Ok(by_path());
        }
        return Err(Error::io(
            as_path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such style file or directory",
            ),
        ));
    }
    if let Some(path) = search.find(arg) {
        return Ok(ResolvedStyle {
            name: arg.to_string(),
            path,
        });
    }
    if as_path.is_file() || as_path.join("manifest.json").is_file() {
        return Ok(by_path());
    }
    let on_disk = search.list();
    let candidates = on_disk
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(catalog.styles.keys().map(String::as_str));
    Err(Error::StyleNotFound {
        name: arg.to_string(),
        searched: search.dirs.clone(),
        fetchable: catalog.get(arg).is_some(),
        suggestion: did_you_mean(arg, candidates),
    })
}

/// The candidate nearest to a misspelt `name`: one equal to it ignoring case, else the
/// closest within an edit distance of 2 (1 for names of up to 4 characters). `None` when
/// `name` itself is a candidate or nothing is close.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_lowercase();
    let max = if name.chars().count() <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == name {
            return None;
        }
        let d = if c.to_lowercase() == lower {
            0
        } else {
            edit_distance(&lower, &c.to_lowercase())
        };
        if d <= max && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_order_and_forms() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(a.join("wave")).unwrap();
        std::fs::write(a.join("wave/manifest.json"), "{}").unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("wave.safetensors"), "").unwrap();
        std::fs::write(b.join("mine.safetensors"), "").unwrap();
        std::fs::create_dir_all(a.join("not_a_style")).unwrap();
        let search = SearchPath {
            dirs: vec![tmp.path().join("missing"), a.clone(), b.clone()],
        };
        let cat = Catalog::builtin();
        assert_eq!(resolve("wave", &search, &cat).unwrap().path, a.join("wave"));
        let mine = resolve("mine", &search, &cat).unwrap();
        assert_eq!(
            (mine.name.as_str(), mine.path),
            ("mine", b.join("mine.safetensors"))
        );
        let listed: Vec<_> = search.list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(listed, ["mine", "wave"]);
        let by_path = b.join("wave.safetensors");
        let r = resolve(by_path.to_str().unwrap(), &search, &cat).unwrap();
        assert_eq!((r.name.as_str(), r.path), ("wave", by_path));
        match resolve("udnie", &search, &cat) {
            Err(Error::StyleNotFound { fetchable, .. }) => assert!(fetchable),
            other => panic!("{other:?}"),
        }
        match resolve("not_a_style", &search, &cat) {
            Err(Error::StyleNotFound { fetchable, .. }) => assert!(!fetchable),
            other => panic!("{other:?}"),
        }
        assert!(resolve("x/none.safetensors", &search, &cat).is_err());
        for (typo, want) in [("scraem", "scream"), ("Scream", "scream"), ("mnie", "mine")] {
            match resolve(typo, &search, &cat) {
                Err(e @ Error::StyleNotFound { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("did you mean '{want}'")), "{msg}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(did_you_mean("zzzzzz", ["scream", "wave"].into_iter()), None);
    }
}
