//! `wgstyle styles`: every style wgstyle can see (and where) or fetch, with its licence and
//! architecture, optionally filtered by licence; and VGG19 (used by `optimize` and `train`)
//! with its attribution.

use std::path::{Path, PathBuf};

use anyhow::Result;
use wgstyle::weights::catalog::{license_matches, Catalog};
use wgstyle::weights::search::SearchPath;

#[derive(clap::Args)]
pub struct Args {
    /// Look style names up in DIR first (as `wgstyle --style` does).
    #[arg(long, value_name = "DIR")]
    weights_dir: Option<PathBuf>,
    /// List only entries whose licence contains TEXT (case-insensitive, ignoring spaces, '-'
    /// and '_'), e.g. `bsd`, `mit`, `cc-by`, `research`.
    #[arg(long, value_name = "TEXT")]
    license: Option<String>,
}

/// Licence and architecture recorded in an installed `.safetensors` file's metadata.
fn recorded(path: &Path) -> (Option<String>, Option<String>) {
    if !path.is_file() {
        return (None, None);
    }
    let Ok(bytes) = wgstyle::weights::safetensors::read_file(path) else {
        return (None, None);
    };
    match wgstyle::weights::safetensors::parse(path, &bytes) {
        Ok((_, meta)) => (
            meta.get("wgstyle.license").cloned(),
            meta.get("wgstyle.arch").cloned(),
        ),
        Err(_) => (None, None),
    }
}

pub fn run(a: Args) -> Result<()> {
    let search = SearchPath::from_env(a.weights_dir.as_deref());
    let catalog = Catalog::builtin();
    let found = search.list();
    let mut names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    names.extend(catalog.styles.keys().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    let keep = |licence: &str| {
        a.license
            .as_deref()
            .is_none_or(|q| license_matches(licence, q))
    };
    println!(
        "{:<18} {:<17} {:<48} licence",
        "name", "architecture", "where"
    );
    let mut shown = 0;
    for name in names {
        let entry = catalog.get(name);
        let installed = found.iter().find(|(n, _)| n == name).map(|(_, p)| p);
        let (rec_licence, rec_arch) = installed.map(|p| recorded(p)).unwrap_or_default();
        let place = match installed {
            Some(p) => p.display().to_string(),
            None => "fetchable: wgstyle fetch ".to_string() + name,
        };
        let licence = rec_licence
            .or_else(|| entry.map(|e| e.license.clone()))
            .unwrap_or_else(|| "unknown (not in the catalog)".to_string());
        let arch = rec_arch
            .or_else(|| entry.map(|e| e.architecture.clone()))
            .unwrap_or_else(|| "unknown".to_string());
        if keep(&licence) {
            println!("{name:<18} {arch:<17} {place:<48} {licence}");
            shown += 1;
        }
    }
    // The perceptual network `optimize` and `train` use.
    for (name, entry) in &catalog.models {
        if !keep(&entry.license) {
            continue;
        }
        let place = match wgstyle::weights::vgg::find_vgg19(None, a.weights_dir.as_deref()) {
            Ok(p) if name == "vgg19" => p.display().to_string(),
            _ => "fetchable: wgstyle fetch ".to_string() + name,
        };
        println!(
            "{name:<18} {:<17} {place:<48} {}",
            entry.architecture, entry.license
        );
        shown += 1;
        if let Some(attr) = &entry.attribution {
            println!("{:<18} {attr}", "");
        }
    }
    if let (Some(q), 0) = (&a.license, shown) {
        eprintln!("no entry has a licence matching '{q}' (try bsd, mit, cc-by, research)");
    }
    let dirs: Vec<String> = search
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    eprintln!("searched: {}", dirs.join(", "));
    Ok(())
}
