//! `coder-audit-gateway export`: the binary as a client. It writes the NDJSON export straight
//! from Coder with the same engine the gateway serves, so an administrator takes the audit
//! trail to an auditor with one command.
//!
//! `--resume` needs nothing but the file: its rows are newest first, so the last complete
//! line's time and the ids of the rows at that time are the position to continue from, and
//! the first rows' time and ids are where the export began. A line cut off by the
//! interruption (or an error line a download ended with) is removed first.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader, IsTerminal, Seek, SeekFrom, Write},
    path::Path,
    time::{Duration, Instant},
};

use serde::Deserialize;

use crate::{
    audit::{AuditLogs, Limits, StreamOptions},
    auth::SessionToken,
    call::{CallContext, Protocol, RequestInfo},
    config::ExportArgs,
    cursor::{self, ExportCursor, ExportCursorVersion, Position, instant},
    error::Error,
    export::ExportRequest,
    model::Timestamp,
    ndjson,
    query::AuditLogFilter,
    upstream::{ClientConfig, CoderClient},
    walker::{self, MAX_TIE_PAGE},
};

/// The environment variable Coder's own CLI reads the token from.
pub(crate) const TOKEN_ENV: &str = "CODER_SESSION_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("set {TOKEN_ENV} to a Coder session token (`coder tokens create`)")]
    NoToken,
    #[error("{TOKEN_ENV}: {0}")]
    Token(#[from] crate::auth::TokenError),
    #[error("cannot use --coder-url: {0}")]
    Client(#[from] crate::upstream::ClientBuildError),
    #[error("{path}: {source}")]
    File { path: String, source: io::Error },
    #[error("cannot resume {path}: line {line} is not an audit row ({reason})")]
    NotAnExport {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Export(#[from] Error),
    /// A row whose `id` or `time` is unreadable: the output ends with its error line.
    #[error(
        "{0}; the output ends with this error and the cursor past the row, which --resume continues from"
    )]
    Unplaced(Error),
}

/// What an export did, for its last line on stderr.
#[derive(Debug)]
pub struct Summary {
    pub rows: u64,
    pub elapsed: Duration,
    pub watch_cursor: String,
}

/// The fields of a written row that positions are made of.
#[derive(Deserialize)]
struct Key {
    id: String,
    time: Timestamp,
}

/// Runs the export; progress goes to stderr.
pub async fn export(args: &ExportArgs) -> Result<Summary, CliError> {
    let token = std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or(CliError::NoToken)?;
    let token = SessionToken::from_credentials(Some(token.as_bytes()), None)?;
    let ca_pem = match &args.coder_ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|source| file_error(path, source))?),
        None => None,
    };
    let client = CoderClient::new(
        &args.coder_url,
        ClientConfig {
            timeout: args.upstream_timeout,
            retries: 2,
            max_body: 256 << 20,
            ca_pem,
        },
    )?;
    let audit = AuditLogs::new(
        client,
        Limits {
            max_limit: MAX_TIE_PAGE,
            ..Limits::default()
        },
        StreamOptions::default(),
    );
    let call = CallContext {
        token,
        protocol: Protocol::Http,
        info: RequestInfo::generate(),
        deadline: None,
    };
    let q = audit
        .compile(&args.q, &AuditLogFilter::default())
        .map_err(Error::invalid)?;

    let (mut out, after): (Box<dyn Write>, Option<String>) = match &args.output {
        Some(path) if args.resume && path.exists() => {
            let (file, resume) = reopen(path)?;
            let after = resume.map(|resume| match resume {
                Resume::At(cursor) => {
                    cursor::encode_export(&q, &cursor, ExportCursorVersion::default())
                }
                Resume::Past(cursor) => cursor,
            });
            (Box::new(io::BufWriter::new(file)), after)
        }
        Some(path) => {
            let file = File::create(path).map_err(|source| file_error(path, source))?;
            (Box::new(io::BufWriter::new(file)), None)
        }
        None => (Box::new(io::BufWriter::new(io::stdout().lock())), None),
    };
    let mut export = audit
        .export(
            call,
            ExportRequest {
                q: args.q.clone(),
                filter: AuditLogFilter::default(),
                page_size: args.page_size,
                after,
            },
        )
        .await?;
    let watch_cursor = export.watch_cursor().to_string();
    let started = Instant::now();
    let progress = io::stderr().is_terminal();
    let mut rows = 0_u64;
    let mut line = Vec::with_capacity(1 << 20);
    let write_error = |source| match &args.output {
        Some(path) => file_error(path, source),
        None => file_error(Path::new("standard output"), source),
    };
    while let Some(batch) = export.next().await? {
        line.clear();
        let unplaced = ndjson::write_batch(&batch, &mut line);
        // Whole batches, flushed: an interruption leaves at most one cut line.
        out.write_all(&line).map_err(write_error)?;
        out.flush().map_err(write_error)?;
        rows += unplaced.as_ref().map_or(batch.rows.len(), |u| u.index) as u64;
        if let Some(unplaced) = unplaced {
            return Err(CliError::Unplaced(unplaced.error));
        }
        if progress {
            eprint!("\r{}", status(rows, started.elapsed()));
        }
    }
    if progress {
        eprintln!();
    }
    Ok(Summary {
        rows,
        elapsed: started.elapsed(),
        watch_cursor,
    })
}

/// `12345 rows  2345 rows/s  5.3s`.
#[must_use]
pub fn status(rows: u64, elapsed: Duration) -> String {
    #[allow(clippy::cast_precision_loss, reason = "a rate for people to read")]
    let rate = rows as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "{rows} rows  {rate:.0} rows/s  {:.1}s",
        elapsed.as_secs_f64()
    )
}

fn file_error(path: &Path, source: io::Error) -> CliError {
    CliError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Where an interrupted export continues.
enum Resume {
    /// Right after the file's last row.
    At(ExportCursor),
    /// Past a row the file's error line names: the cursor it carries.
    Past(String),
}

/// The error line an export ended with, as far as resuming reads it.
#[derive(Deserialize)]
struct ErrorLine {
    error: ErrorLineBody,
}

#[derive(Deserialize)]
struct ErrorLineBody {
    #[serde(default)]
    cursor: Option<String>,
}

/// Opens an interrupted export for appending, cut back to its last complete row, and where
/// to continue (`None` when it holds no row yet).
fn reopen(path: &Path) -> Result<(File, Option<Resume>), CliError> {
    let fail = |source| file_error(path, source);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(fail)?;
    let mut keys: Vec<Key> = Vec::new();
    let mut keep = 0_u64;
    let mut reader = BufReader::new(&mut file);
    let mut text = String::new();
    let mut number = 0;
    let mut past = None;
    loop {
        text.clear();
        let read = reader.read_line(&mut text).map_err(fail)?;
        if read == 0 || !text.ends_with('\n') {
            break;
        }
        number += 1;
        match serde_json::from_str::<Key>(&text) {
            Ok(key) => {
                keys.push(key);
                keep += read as u64;
            }
            // A download that failed midway ends with one error line; one that met a row
            // it could not place carries the cursor past that row.
            Err(_) if text.starts_with("{\"error\":") => {
                past = serde_json::from_str::<ErrorLine>(&text)
                    .ok()
                    .and_then(|line| line.error.cursor);
                break;
            }
            Err(error) => {
                return Err(CliError::NotAnExport {
                    path: path.display().to_string(),
                    line: number,
                    reason: error.to_string(),
                });
            }
        }
    }
    drop(reader);
    file.set_len(keep).map_err(fail)?;
    file.seek(SeekFrom::End(0)).map_err(fail)?;
    if let Some(cursor) = past {
        return Ok((file, Some(Resume::Past(cursor))));
    }
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return Ok((file, None));
    };
    let position = |at: &Key, rows: &mut dyn Iterator<Item = &Key>| {
        let mut position = Position::default();
        for key in rows.take_while(|k| instant(&k.time) == instant(&at.time)) {
            position.at = Some(instant(&key.time));
            position.seen.insert(cursor::fnv64(key.id.as_bytes()));
        }
        position
    };
    let start = position(first, &mut keys.iter());
    let next = position(last, &mut keys.iter().rev());
    // The rows of the file above its last row, inside the window that row's day ends: where
    // the walk stood in that window.
    let above = walker::rows_above(&next, keys.iter().map(|k| instant(&k.time)));
    Ok((
        file,
        Some(Resume::At(ExportCursor {
            next,
            above: Some(above),
            start,
        })),
    ))
}
