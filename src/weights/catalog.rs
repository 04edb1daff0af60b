//! The catalog of known public weights (`weights/catalog.toml`, built into the binary): fast
//! style networks (`[styles.NAME]`) and the perceptual network (`[models.vgg19]`). Each entry
//! has its own base URL pinned to a full commit hash, every file's sha256 and size, a licence,
//! the format its files are in and the architecture they hold.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The architecture of lengstrom's fast style networks (the only style architecture wgstyle
/// converts today).
pub const ARCH_JOHNSON_LENGSTROM: &str = "johnson-lengstrom";
/// The architecture of the perceptual network used by `optimize` and `train`.
pub const ARCH_VGG19: &str = "vgg19";
/// Format: a deeplearnjs checkpoint (`manifest.json` + raw float32 variables).
pub const FORMAT_DEEPLEARNJS: &str = "deeplearnjs";
/// Format: a TensorFlow.js layers model (`model.json` + weight shards).
pub const FORMAT_TFJS: &str = "tfjs";

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
}

/// The file a format's converter starts from.
fn main_file(format: &str) -> Option<&'static str> {
    match format {
        FORMAT_DEEPLEARNJS => Some("manifest.json"),
        FORMAT_TFJS => Some("model.json"),
        _ => None,
    }
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
    let Some(main) = main_file(&e.format) else {
        return Err(format!("unknown format '{}'", e.format));
    };
    if !e.files.contains_key(main) {
        return Err(format!("format '{}' needs a file '{main}'", e.format));
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
