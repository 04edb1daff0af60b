//! The catalog of known public weights (`weights/catalog.toml`, built into the binary): fast
//! style networks (`[styles.NAME]`) and the perceptual network (`[models.vgg19]`). Each entry
//! has its own base URL pinned to a full commit hash, every file's sha256 and size, a licence,
//! the format its files are in and the architecture they hold.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The architecture of lengstrom's fast style networks.
pub const ARCH_JOHNSON_LENGSTROM: &str = "johnson-lengstrom";
/// The architecture of pytorch/examples' `fast_neural_style` TransformerNet (the ONNX model
/// zoo's style networks).
pub const ARCH_PYTORCH_EXAMPLES: &str = "pytorch-examples";
/// The architecture of the perceptual network used by `optimize` and `train`.
pub const ARCH_VGG19: &str = "vgg19";
/// Format: a deeplearnjs checkpoint (`manifest.json` + raw float32 variables).
pub const FORMAT_DEEPLEARNJS: &str = "deeplearnjs";
/// Format: a TensorFlow.js layers model (`model.json` + weight shards).
pub const FORMAT_TFJS: &str = "tfjs";
/// Format: one ONNX file of pytorch/examples' TransformerNet (read by the ONNX reader).
pub const FORMAT_ONNX: &str = "onnx";

/// The largest file size a catalog entry may declare (a bound on every download).
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// The text of `weights/catalog.toml` at build time.
pub const BUILTIN_TOML: &str = include_str!("../../weights/catalog.toml");

/// The parsed catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Fast style networks by name.
    #[serde(default)]
    pub styles: BTreeMap<String, CatalogEntry>,
    /// Other networks by name (`vgg19`).
    #[serde(default)]
    pub models: BTreeMap<String, CatalogEntry>,
}

/// One file of an entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One entry of the catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// Licence of the weights.
    pub license: String,
    /// The attribution the licence asks for, if any.
    #[serde(default)]
    pub attribution: Option<String>,
    /// Network architecture (`johnson-lengstrom`, `vgg19`, ...).
    pub architecture: String,
    /// Format of the upstream files (`deeplearnjs`, `tfjs`, ...): picks the converter.
    pub format: String,
    /// The upstream commit the files are pinned to (40 hex digits).
    pub commit: String,
    /// URL of the directory holding the files; `{commit}` is replaced by `commit`.
    pub base_url: String,
    /// Where the weights come from, in words.
    pub upstream: String,
    /// File name (relative to the base URL) -> checksum and size.
    pub files: BTreeMap<String, CatalogFile>,
}

impl CatalogEntry {
    /// Sum of the sizes of the entry's files.
    pub fn total_size(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }

    /// The file the format's converter starts from (`manifest.json`, `model.json`, the
    /// `.onnx` file), if the entry has it.
    pub fn main_file(&self) -> Option<&str> {
        match self.format.as_str() {
            FORMAT_DEEPLEARNJS => Some("manifest.json").filter(|f| self.files.contains_key(*f)),
            FORMAT_TFJS => Some("model.json").filter(|f| self.files.contains_key(*f)),
            // Exactly one file, and it is an ONNX file.
            FORMAT_ONNX if self.files.len() == 1 => self
                .files
                .keys()
                .map(String::as_str)
                .find(|f| f.to_ascii_lowercase().ends_with(".onnx")),
            _ => None,
        }
    }

    /// Whether the licence matches `query`: a case-insensitive substring match that ignores
    /// spaces, '-' and '_' (so `cc-by` matches "CC BY 4.0", `bsd` "BSD-3-Clause").
    pub fn license_matches(&self, query: &str) -> bool {
        license_matches(&self.license, query)
    }
}

/// See [`CatalogEntry::license_matches`]; also used for installed files' recorded licences.
pub fn license_matches(license: &str, query: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    norm(license).contains(&norm(query))
}

fn check_entry(name: &str, e: &CatalogEntry) -> std::result::Result<(), String> {
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name_ok {
        return Err("the name may only hold letters, digits, '_' and '-'".into());
    }
    if e.commit.len() != 40 || !e.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "commit '{}' is not a full 40-hex-digit hash",
            e.commit
        ));
    }
    if !(e.base_url.starts_with("https://") || e.base_url.starts_with("http://")) {
        return Err(format!("base_url '{}' is not an http(s) URL", e.base_url));
    }
    if ![FORMAT_DEEPLEARNJS, FORMAT_TFJS, FORMAT_ONNX].contains(&e.format.as_str()) {
        return Err(format!("unknown format '{}'", e.format));
    }
    if e.main_file().is_none() {
        let need = match e.format.as_str() {
            FORMAT_DEEPLEARNJS => "a file 'manifest.json'",
            FORMAT_TFJS => "a file 'model.json'",
            _ => "exactly one file, ending in '.onnx'",
        };
        return Err(format!("format '{}' needs {need}", e.format));
    }
    for (path, f) in &e.files {
        let sha_ok = f.sha256.len() == 64 && f.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !sha_ok || !crate::weights::is_safe_relative(path) || f.size > MAX_FILE_SIZE {
            return Err(format!(
                "bad file entry '{path}' (sha256 '{}', size {})",
                f.sha256, f.size
            ));
        }
    }
    Ok(())
}

impl Catalog {
    /// Parses catalog TOML, checking every entry: a known format with its main file, safe
    /// relative file names, well-formed checksums, bounded sizes, a full commit hash, and no
    /// name used twice.
    pub fn parse(text: &str) -> Result<Self> {
        let cat: Catalog = toml::from_str(text).map_err(|e| Error::Catalog(e.to_string()))?;
        for (name, e) in cat.styles.iter().chain(&cat.models) {
            check_entry(name, e).map_err(|m| Error::Catalog(format!("entry '{name}': {m}")))?;
        }
        if let Some(dup) = cat.styles.keys().find(|n| cat.models.contains_key(*n)) {
            return Err(Error::Catalog(format!(
                "'{dup}' is both a style and a model"
            )));
        }
        Ok(cat)
    }

    /// The catalog built into wgstyle (`weights/catalog.toml`).
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_TOML).expect("weights/catalog.toml is valid (checked by tests)")
    }

    /// A style by name.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.styles.get(name)
    }

    /// A style or model by name.
    pub fn entry(&self, name: &str) -> Option<&CatalogEntry> {
        self.styles.get(name).or_else(|| self.models.get(name))
    }

    /// Every entry name, styles then models.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.styles
            .keys()
            .chain(self.models.keys())
            .map(String::as_str)
    }

    /// Like [`Catalog::entry`], with an error naming the known entries (and the nearest one
    /// to a misspelt name).
    pub fn require(&self, name: &str) -> Result<&CatalogEntry> {
        self.entry(name).ok_or_else(|| {
            let known: Vec<&str> = self.names().collect();
            let hint = crate::weights::search::did_you_mean(name, known.iter().copied())
                .map(|s| format!("did you mean '{s}'? "))
                .unwrap_or_default();
            Error::Catalog(format!(
                "no entry '{name}' in the catalog; {hint}known: {}",
                known.join(", ")
            ))
        })
    }

    /// The base URL of entry `name`'s files, ending in `/`: `MIRROR/NAME/` if `mirror` is
    /// given (the value of `WGSTYLE_MIRROR`), else the entry's `base_url` with its commit.
    pub fn base_url_for(&self, name: &str, entry: &CatalogEntry, mirror: Option<&str>) -> String {
        let mut url = match mirror {
            Some(m) => format!("{}/{name}", m.trim_end_matches('/')),
            None => entry.base_url.replace("{commit}", &entry.commit),
        };
        if !url.ends_with('/') {
            url.push('/');
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses() {
        let c = Catalog::builtin();
        assert!(c.styles.len() >= 9);
        let s = c.require("scream").unwrap();
        assert_eq!(s.files.len(), 49);
        assert_eq!(s.architecture, ARCH_JOHNSON_LENGSTROM);
        assert!(s.files.values().all(|f| f.size > 0));
        assert!(c
            .base_url_for("scream", s, None)
            .ends_with("/0612a3e7c51cbffdc5db701dff49d16d1ac26fa8/models/style-transfer/scream/"));
        assert_eq!(
            c.base_url_for("scream", s, Some("http://127.0.0.1:1/")),
            "http://127.0.0.1:1/scream/"
        );
        let v = c.require("vgg19").unwrap();
        assert_eq!(
            (v.architecture.as_str(), v.format.as_str()),
            ("vgg19", "tfjs")
        );
        assert_eq!(v.files.len(), 21);
        assert!(v.license.contains("CC BY 4.0"));
        assert!(v.attribution.as_deref().unwrap().contains("Simonyan"));
        assert!(c
            .base_url_for("vgg19", v, None)
            .contains("azertat/tfjs_models/3c14b35a1b5037c331fe01da1b00d2d3bb09bba9/"));
        assert!(c.get("vgg19").is_none(), "vgg19 is not a style");
        let err = c.require("scraem").unwrap_err().to_string();
        assert!(err.contains("did you mean 'scream'"), "{err}");
    }

    #[test]
    fn zoo_entries_parse_and_do_not_collide() {
        let c = Catalog::builtin();
        let zoo = ["mosaic", "candy", "rain-princess", "udnie", "pointilism"];
        for style in zoo {
            let name = format!("zoo-{style}");
            let e = c.require(&name).unwrap();
            assert_eq!(e.architecture, ARCH_PYTORCH_EXAMPLES);
            assert_eq!(e.format, FORMAT_ONNX);
            assert_eq!(e.commit, "b1eeaa1ac722dcc1cd1a8284bde34393dab61c3d");
            let file = format!("{style}-9.onnx");
            assert_eq!(e.main_file(), Some(file.as_str()));
            assert_eq!(e.files[&file].size, 6728029);
            assert!(e.license_matches("bsd") && !e.license_matches("research"));
            assert_eq!(
                c.base_url_for(&name, e, None) + &file,
                format!(
                    "https://media.githubusercontent.com/media/onnx/models/\
                     b1eeaa1ac722dcc1cd1a8284bde34393dab61c3d/validated/vision/style_transfer/\
                     fast_neural_style/model/{file}"
                )
            );
        }
        // No zoo name equals, or differs only by '-'/'_' and case from, another entry's.
        let norm = |n: &str| n.to_lowercase().replace('-', "_");
        let mut all: Vec<String> = c.names().map(norm).collect();
        let len = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            len,
            "two catalog names differ only by '-'/'_' or case"
        );
        assert!(c.get("udnie").unwrap().architecture == ARCH_JOHNSON_LENGSTROM);
        assert!(c.get("rain_princess").unwrap().architecture == ARCH_JOHNSON_LENGSTROM);
        // Distinct sha256 per zoo file.
        let mut shas: Vec<&str> = zoo
            .iter()
            .map(|s| c.get(&format!("zoo-{s}")).unwrap())
            .map(|e| e.files.values().next().unwrap().sha256.as_str())
            .collect();
        shas.sort_unstable();
        shas.dedup();
        assert_eq!(shas.len(), 5);
    }

    #[test]
    fn license_filter_keywords() {
        let c = Catalog::builtin();
        let names = |q: &str| -> Vec<&str> {
            c.styles
                .iter()
                .filter(|(_, e)| e.license_matches(q))
                .map(|(n, _)| n.as_str())
                .collect()
        };
        let bsd = names("BSD");
        assert_eq!(bsd.len(), 5, "{bsd:?}");
        assert!(bsd.iter().all(|n| n.starts_with("zoo-")));
        assert_eq!(names("mit"), ["mathura", "matilde_perez", "matta"]);
        assert_eq!(names("research").len(), 6);
        assert!(names("gpl").is_empty());
        assert!(license_matches("CC BY 4.0", "cc-by"));
        assert!(license_matches("BSD-3-Clause", "bsd3"));
        assert!(!license_matches("MIT (ml5)", "bsd"));
    }

    #[test]
    fn malformed_entries_are_refused() {
        let good = r#"[styles.a]
license = "MIT"
architecture = "johnson-lengstrom"
format = "deeplearnjs"
commit = "0612a3e7c51cbffdc5db701dff49d16d1ac26fa8"
base_url = "https://example.org/{commit}/a/"
upstream = "x"
[styles.a.files]
"manifest.json" = { sha256 = "e03432142aa5e7f85776094d69bf5b90b11ba4498026d5ba2c73fefefbe35bf9", size = 10 }
"#;
        Catalog::parse(good).unwrap();
        for (from, to) in [
            ("0612a3e7c51cbffdc5db701dff49d16d1ac26fa8", "0612a3e7"),
            ("\"manifest.json\" =", "\"../manifest.json\" ="),
            ("size = 10", "size = 99999999999999"),
            ("format = \"deeplearnjs\"", "format = \"tfjs\""),
            ("format = \"deeplearnjs\"", "format = \"pickle\""),
            ("https://example.org", "file:///etc"),
            ("size = 10", "size = 10, extra = 1"),
            ("[styles.a]", "[styles.\"a/b\"]"),
            ("format = \"deeplearnjs\"", "format = \"onnx\""),
        ] {
            let bad = good.replace(from, to).replace("styles.a.files", {
                if to.starts_with("[styles.\"a/b") {
                    "styles.\"a/b\".files"
                } else {
                    "styles.a.files"
                }
            });
            assert!(Catalog::parse(&bad).is_err(), "accepted {to}");
        }
    }
}
