//! Logging. Logs go to stderr through tracing; no log line carries a token, because tokens
//! are held as sensitive header values and HTTP tracing marks the credential headers
//! sensitive (see [`crate::startup`]).

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `filter` uses `EnvFilter` syntax.
pub fn init(filter: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_new(filter)?;
    fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
}
