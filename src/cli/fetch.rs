//! `wgstyle fetch NAME...`: download catalog styles into the user data directory.

use std::io::IsTerminal;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::fetch::{fetch_style, mirror_from_env, FetchEvent};
use wgstyle::weights::search::user_styles_dir;

#[derive(clap::Args)]
pub struct Args {
    /// Catalog style names (see `wgstyle styles`).
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
    /// Download again and replace a style that was already fetched.
    #[arg(short, long)]
    force: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(a: Args) -> Result<()> {
    let catalog = Catalog::builtin();
    for name in &a.names {
        catalog.require(name)?;
    }
    let dest = user_styles_dir()
        .context("no user data directory on this platform: set WGSTYLE_DATA_DIR")?;
    let mirror = mirror_from_env();
    let mut failed = 0;
    for name in &a.names {
        let style = catalog.require(name)?;
        let base = catalog.base_url_for(style, mirror.as_deref());
        let bar = if a.quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(style.files.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} files {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(name.clone());
            bar
        };
        let mut bytes = 0u64;
        let mut on_event = |e: FetchEvent<'_>| match e {
            FetchEvent::File { index, .. } => bar.set_position(index as u64),
            FetchEvent::Bytes(n) => {
                bytes += n;
                bar.set_message(format!("{:.1} MB", bytes as f64 / 1e6));
            }
            FetchEvent::Converting => bar.set_message("converting"),
        };
        match fetch_style(&catalog, name, &base, &dest, a.force, &mut on_event) {
            Ok(path) => {
                bar.finish_and_clear();
                if !a.quiet {
                    eprintln!("fetched {name} -> {} ({})", path.display(), style.license);
                }
            }
            Err(e) => {
                bar.abandon();
                eprintln!("error: fetching {name}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{} fetched, {failed} failed", a.names.len() - failed);
    }
    Ok(())
}
