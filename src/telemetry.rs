//! Logging: `tracing` to standard error, filtered by `RUST_LOG` (default `info`).
//! `LOG_FORMAT=json` writes one JSON object a line, for log collectors; it is read
//! from the environment only, since logging starts before the settings are read.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let logs = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("LOG_FORMAT").as_deref().map(str::trim) {
        Ok("json") => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        Ok("" | "text") | Err(_) => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        Ok(other) => {
            // Colours for a person at a terminal; plain text for files and collectors.
            logs.with_ansi(std::io::stderr().is_terminal()).init();
            tracing::warn!(
                log_format = other,
                "LOG_FORMAT must be text or json; writing text"
            );
        }
    }
}
