//! The `wgstyle` command line: parses arguments, calls the library, prints.

mod cli;

use clap::Parser;

fn main() {
    cli::log::install();
    // A signal removes the temporary file being written (outputs appear only complete).
    wgstyle::output::install_signal_cleanup(Some(
        "interrupted: temporary files removed, no partial output left\n",
    ));
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(msg) = cli::misspelt_command(&args) {
        eprintln!("error: {msg}");
        std::process::exit(2);
    }
    let args = cli::Cli::parse_from(args);
    if let Err(e) = cli::run(args) {
        eprintln!("error: {}", cli::log::chain(&e));
        std::process::exit(1);
    }
}
