//! `wgstyle fetch NAME...`: download catalog entries (styles, vgg19) into the user data
//! directory. Downloads go to a `wgstyle-fetch-*` temporary directory that is removed on
//! success, on every error and on SIGINT/SIGTERM/SIGHUP (the output policy's signal cleanup).

use std::io::IsTerminal;

use anyhow::{anyhow, bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use wgstyle::weights::catalog::Catalog;
use wgstyle::weights::fetch::{
    check_present, destination, fetch_entry, mirror_from_env, timeout_from_env, FetchEvent,
    FetchOptions, Present,
};

#[derive(clap::Args)]
pub struct Args {
    /// Catalog names (see `wgstyle styles`): styles, or `vgg19` for `optimize` and `train`.
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
    /// Download again and replace what was already fetched.
    #[arg(short, long)]
    force: bool,
    /// No progress bar or messages.
    #[arg(short, long)]
    quiet: bool,
}

/// Adds the way to get VGG19 to a library error that says it was not found.
pub fn vgg_hint(e: wgstyle::Error) -> anyhow::Error {
    match e {
        wgstyle::Error::VggNotFound { .. } => anyhow!(
            "{e}. Download them with `wgstyle fetch vgg19` (or pass a file or tfjs directory \
             with --vgg)"
        ),
        e => e.into(),
    }
}

pub fn run(a: Args) -> Result<()> {
    let catalog = Catalog::builtin();
    for name in &a.names {
        catalog.require(name)?;
    }
    let timeout = timeout_from_env()?;
    let mirror = mirror_from_env();
    let (mut fetched, mut present, mut failed) = (0, 0, 0);
    for name in &a.names {
        let entry = catalog.require(name)?;
        let dest = destination(name, entry)
            .context("no user data directory on this platform: set WGSTYLE_DATA_DIR")?;
        match check_present(entry, &dest) {
            Present::Verified if !a.force => {
                if !a.quiet {
                    eprintln!(
                        "{name} is already fetched and verified: {} (--force downloads it again)",
                        dest.display()
                    );
                }
                present += 1;
                continue;
            }
            Present::Differs(why) if !a.force => {
                eprintln!(
                    "error: {} exists but is not the catalog's {name} ({why}); --force replaces it",
                    dest.display()
                );
                failed += 1;
                continue;
            }
            _ => {}
        }
        let base = catalog.base_url_for(name, entry, mirror.as_deref());
        let bar = if a.quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(entry.total_size());
            bar.set_style(
                ProgressStyle::with_template("{prefix} {bar:30} {bytes}/{total_bytes} {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(name.clone());
            bar
        };
        let mut on_event = |e: FetchEvent<'_>| match e {
            FetchEvent::File { index, count, .. } => {
                bar.set_message(format!("file {}/{count}", index + 1))
            }
            FetchEvent::Bytes(n) => bar.inc(n),
            FetchEvent::Converting => bar.set_message("converting"),
        };
        let work = tempfile::Builder::new()
            .prefix("wgstyle-fetch-")
            .tempdir()
            .context("creating a temporary directory")?;
        // A signal removes it (output's signal cleanup) and exits; the converted file goes
        // through the output policy's registered temporary file.
        wgstyle::output::register_temp(work.path());
        let opts = FetchOptions {
            timeout,
            overwrite: a.force,
            cancel: Some(wgstyle::output::interrupt_flag()),
            mirror: mirror.is_some(),
        };
        let result = fetch_entry(
            &catalog,
            name,
            &base,
            &dest,
            work.path(),
            &opts,
            &mut on_event,
        );
        wgstyle::output::unregister_temp(work.path());
        drop(work);
        match result {
            Ok(path) => {
                bar.finish_and_clear();
                if !a.quiet {
                    eprintln!("fetched {name} -> {} ({})", path.display(), entry.license);
                    if let Some(attr) = &entry.attribution {
                        eprintln!("  {attr}");
                    }
                }
                fetched += 1;
            }
            Err(wgstyle::Error::Cancelled) => {
                bar.abandon();
                eprintln!("fetch cancelled; nothing was kept");
                std::process::exit(128 + wgstyle::output::interrupted().unwrap_or(libc::SIGINT));
            }
            Err(e) => {
                bar.abandon();
                eprintln!("error: fetching {name}: {}", super::log::describe(&e));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{fetched} fetched, {present} already present, {failed} failed");
    }
    Ok(())
}
