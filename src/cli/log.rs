//! The binary's logger (library warnings reach the user once each) and error formatting.

use std::collections::HashSet;
use std::sync::Mutex;

struct Logger {
    level: log::LevelFilter,
    seen: Mutex<HashSet<String>>,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level && m.target().starts_with("wgstyle")
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let text = r.args().to_string();
        // The same warning (e.g. an unwritable autotune cache) is printed once.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(text.clone()) {
            let level = match r.level() {
                log::Level::Warn => "warning".to_string(),
                l => l.as_str().to_ascii_lowercase(),
            };
            eprintln!("{level}: {text}");
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: warnings and errors, or the level in `WGSTYLE_LOG`
/// (error, warn, info, debug, trace).
pub fn install() {
    let level = std::env::var("WGSTYLE_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Warn);
    let logger = Box::leak(Box::new(Logger {
        level,
        seen: Mutex::new(HashSet::new()),
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// An error and its causes in one line, leaving out a cause whose text the line already
/// holds (a library error that prints its source would otherwise repeat it).
pub fn chain(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
