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
    let mut line = chain_only(e);
    if let Some(h) = hint(e) {
        line.push_str(" (");
        line.push_str(h);
        line.push(')');
    }
    line
}

/// The causes of `e` joined by `: `, repeats left out.
fn chain_only(e: &anyhow::Error) -> String {
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

/// `e` with the command-line hint of [`hint_for`], if any.
pub fn describe(e: &wgstyle::Error) -> String {
    match hint_for(e) {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    }
}

/// [`hint_for`] of the first library error in `e`'s chain.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    e.chain()
        .find_map(|c| c.downcast_ref::<wgstyle::Error>())
        .and_then(hint_for)
}

/// The command-line flag that fixes a library error, where there is one: the library's
/// messages say what is wrong, the command line says what to type.
pub fn hint_for(e: &wgstyle::Error) -> Option<&'static str> {
    use wgstyle::Error;
    match e {
        Error::OutputExists(_) => Some("use --force to overwrite it"),
        Error::TooLarge { .. } => Some("use a smaller image, e.g. --max-size"),
        Error::Unsupported { what, .. } if what.contains("SHADER_F16") => {
            Some("use --precision f32")
        }
        // `TrainOptions` fields, as the library names them.
        Error::InvalidSetting { setting, .. } => match *setting {
            "image_size" => Some("see --image-size"),
            "batch_size" => Some("see --batch-size"),
            "learning_rate" => Some("see --learning-rate"),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::hint_for;

    /// Each training setting the library refuses is mapped to the flag that sets it.
    #[test]
    fn invalid_training_settings_get_their_flag() {
        let cases = [
            (
                wgstyle::train::TrainOptions {
                    image_size: 15,
                    ..Default::default()
                },
                "--image-size",
            ),
            (
                wgstyle::train::TrainOptions {
                    batch_size: 0,
                    ..Default::default()
                },
                "--batch-size",
            ),
            (
                wgstyle::train::TrainOptions {
                    learning_rate: f32::NAN,
                    ..Default::default()
                },
                "--learning-rate",
            ),
        ];
        for (options, flag) in cases {
            let e = options.validate().unwrap_err();
            assert!(
                hint_for(&e).is_some_and(|h| h.contains(flag)),
                "{e}: {flag}"
            );
        }
    }
}
