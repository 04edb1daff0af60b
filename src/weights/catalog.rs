//! The catalog of known public styles (`weights/catalog.toml`, built into the binary): for
//! each style its upstream files pinned to a commit, each file's sha256, licence and
//! architecture.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The architecture every catalog style must have for wgstyle to load it.
pub const ARCH_JOHNSON_LENGSTROM: &str = "johnson-lengstrom";

/// The text of `weights/catalog.toml` at build time.
pub const BUILTIN_TOML: &str = include_str!("../../weights/catalog.toml");

/// The parsed catalog.
#[derive(Clone, Debug, Deserialize)]
pub struct Catalog {
    /// Base URL of the upstream files; `{commit}` is replaced by a style's commit.
    pub base_url: String,
    /// Styles by name.
    pub styles: BTreeMap<String, CatalogStyle>,
}

/// One style of the catalog.
#[derive(Clone, Debug, Deserialize)]
pub struct CatalogStyle {
    /// Licence of the weights.
    pub license: String,
    /// Network architecture (`johnson-lengstrom`).
    pub architecture: String,
    /// The upstream commit the files are pinned to.
    pub commit: String,
    /// Where the weights come from, in words.
    pub upstream: String,
    /// Relative path (under the base URL) -> lowercase hex sha256.
    pub files: BTreeMap<String, String>,
}

impl Catalog {
    /// Parses catalog TOML, checking that every style has a `NAME/manifest.json` and
    /// well-formed checksums.
    pub fn parse(text: &str) -> Result<Self> {
        let cat: Catalog = toml::from_str(text).map_err(|e| Error::Catalog(e.to_string()))?;
        for (name, s) in &cat.styles {
            if !s.files.contains_key(&format!("{name}/manifest.json")) {
                return Err(Error::Catalog(format!(
                    "style '{name}' has no file '{name}/manifest.json'"
                )));
            }
            for (path, sha) in &s.files {
                let ok = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
                if !ok || !path.starts_with(&format!("{name}/")) || path.contains("..") {
                    return Err(Error::Catalog(format!(
                        "style '{name}': bad entry '{path}' = '{sha}'"
                    )));
                }
            }
        }
        Ok(cat)
    }

    /// The catalog built into wgstyle (`weights/catalog.toml`).
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_TOML).expect("weights/catalog.toml is valid (checked by tests)")
    }

    /// A style by name.
    pub fn get(&self, name: &str) -> Option<&CatalogStyle> {
        self.styles.get(name)
    }

    /// Like [`Catalog::get`], with an error naming the known styles.
    pub fn require(&self, name: &str) -> Result<&CatalogStyle> {
        self.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.styles.keys().map(String::as_str).collect();
            Error::Catalog(format!(
                "no style '{name}' in the catalog (known: {})",
                known.join(", ")
            ))
        })
    }

    /// The base URL of a style's files, ending in `/`: `mirror` if given (the value of
    /// `WGSTYLE_MIRROR`), else the catalog's `base_url` with the style's commit.
    pub fn base_url_for(&self, style: &CatalogStyle, mirror: Option<&str>) -> String {
        let mut url = match mirror {
            Some(m) => m.to_string(),
            None => self.base_url.replace("{commit}", &style.commit),
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
        assert!(c.base_url_for(s, None).contains("/0612a3e7/"));
        assert_eq!(
            c.base_url_for(s, Some("http://127.0.0.1:1")),
            "http://127.0.0.1:1/"
        );
        assert!(c.require("nope").is_err());
    }
}
