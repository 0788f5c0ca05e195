//! Logging. Logs go to stderr through tracing; no log line carries a token, because tokens
//! are held as sensitive header values and HTTP tracing marks the credential headers
//! sensitive (see [`crate::startup`]).

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `filter` uses `EnvFilter` syntax.
pub fn init(filter: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_new(filter)?;
    // Colour codes only help a person at a terminal; in files and collectors they are noise.
    fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init()
}
