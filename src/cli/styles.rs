//! `wgstyle styles`: every style wgstyle can see (and where) or fetch, and VGG19 (used by
//! `optimize` and `train`) with its attribution.

use std::path::PathBuf;

use anyhow::Result;
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::search::SearchPath;

#[derive(clap::Args)]
pub struct Args {
    /// Look style names up in DIR first (as `wgstyle --style` does).
    #[arg(long, value_name = "DIR")]
    weights_dir: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let search = SearchPath::from_env(a.weights_dir.as_deref());
    let catalog = Catalog::builtin();
    let found = search.list();
    let mut names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    names.extend(catalog.styles.keys().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    println!("{:<16} {:<48} licence", "name", "where");
    for name in names {
        let place = match found.iter().find(|(n, _)| n == name) {
            Some((_, p)) => p.display().to_string(),
            None => "fetchable: wgstyle fetch ".to_string() + name,
        };
        let licence = catalog
            .get(name)
            .map(|s| s.license.as_str())
            .unwrap_or("unknown (not in the catalog)");
        println!("{name:<16} {place:<48} {licence}");
    }
    // The perceptual network `optimize` and `train` use.
    for (name, entry) in &catalog.models {
        let place = match wgstyle::weights::vgg::find_vgg19(None, a.weights_dir.as_deref()) {
            Ok(p) if name == "vgg19" => p.display().to_string(),
            _ => "fetchable: wgstyle fetch ".to_string() + name,
        };
        println!("{name:<16} {place:<48} {}", entry.license);
        if let Some(attr) = &entry.attribution {
            println!("{:<16} {attr}", "");
        }
    }
    let dirs: Vec<String> = search
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    eprintln!("searched: {}", dirs.join(", "));
    Ok(())
}
