//! The gateway's one error type, each error's kind, and the one table of what each kind is
//! called in every protocol.
//!
//! Every failure, whether the gateway caught it before calling Coder or Coder reported it,
//! becomes one [`Error`] in the shared core, classified by [`Error::kind`]. [`Kind::codes`]
//! is the only place a code is chosen: a GraphQL `extensions.code`, a gRPC canonical code
//! (as its number) and an HTTP status, as plain data. Each protocol adapter converts that
//! row into its own types next to its own code, so a caller gets the same classification and
//! the same message whichever protocol it speaks, and no protocol crate reaches the core.

use std::{
    fmt::{self, Write as _},
    time::Duration,
};

use crate::{auth::TokenError, model::Invalid};

/// One rejected input, named the way Coder names it (`limit`, `q`, `action`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub field: String,
    pub detail: String,
}

/// Coder's error envelope: a summary and, when present, a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamMessage {
    pub message: String,
    pub detail: Option<String>,
}

impl fmt::Display for UpstreamMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.detail {
            Some(detail) => write!(f, " {detail}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad arguments, found by the gateway before any upstream call or by Coder (a 400).
    #[error("{}", describe(message, validations, str::to_owned))]
    InvalidArgument {
        message: String,
        validations: Vec<Validation>,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("Coder rejected the session token: {0}")]
    Unauthenticated(UpstreamMessage),
    #[error("Coder denied access to the audit log: {0}")]
    Forbidden(UpstreamMessage),
    #[error("Coder rate-limited this caller: {message}")]
    RateLimited {
        message: UpstreamMessage,
        retry_after: Option<Duration>,
    },
    /// Coder answered, but with a server error or a status this API never uses.
    #[error("Coder answered HTTP {status}: {message}")]
    UpstreamStatus {
        status: u16,
        message: UpstreamMessage,
    },
    /// Coder sent a value its field's kind cannot read (a time that does not parse, a string
    /// where a number belongs): something Coder's server never sends, named by row and field.
    #[error("Coder sent a value the gateway cannot read: row {row}, field {field}: {reason}")]
    BadValue {
        row: String,
        field: String,
        reason: String,
    },
    /// Coder answered 200 with something that is not an audit page.
    #[error("Coder's answer is not a valid audit page: {reason}")]
    UpstreamBody { reason: String },
    #[error("Coder is unavailable: {reason}")]
    Unavailable { reason: String },
    #[error("Coder did not answer within {}", humantime::format_duration(*after))]
    Timeout { after: Duration },
    /// The caller's own deadline passed before Coder answered.
    #[error("the caller's deadline passed before Coder answered")]
    DeadlineExceeded,
    /// More rows share one `time` than the largest page the gateway reads, so Coder's order
    /// (by time alone) cannot be walked past them without risking a gap.
    #[error(
        "more than {limit} rows share the time {time}; Coder orders by time alone, so the gateway cannot page past them without risking gaps"
    )]
    UnwalkableTies { time: String, limit: i32 },
    /// A watch resumed so far behind that its backlog would not fit in memory.
    #[error(
        "more than {max_rows} rows were added since this cursor; export them first (ExportAuditLogs), then watch from the export's watch cursor"
    )]
    BacklogTooLarge { max_rows: usize },
    /// The gateway is at a configured limit (`--max-watches`, subscriptions per connection).
    #[error("{0}")]
    Overloaded(String),
    /// Refused at the door: the gateway already serves `--max-concurrent-requests`.
    #[error(
        "the gateway is serving as many requests as it is configured to (--max-concurrent-requests); retry later"
    )]
    Shed,
    /// The gateway is stopping; the stream can be resumed elsewhere with its cursor.
    #[error("the gateway is shutting down; resume with the last cursor")]
    ShuttingDown,
    /// A failure of the gateway itself, such as an upstream request it could not build:
    /// never the caller's or Coder's fault, never worth retrying.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

/// The longest echo of a caller's input or of Coder's words kept in one message or log field:
/// enough to recognise it, too little to amplify a hostile input into every log and header.
pub(crate) const MAX_ECHO: usize = 512;

/// `text` cut to at most `max` bytes (on a character boundary), marked with an ellipsis and
/// its original length when cut.
#[must_use]
pub(crate) fn bounded(text: impl Into<String>, max: usize) -> String {
    let mut text = text.into();
    if text.len() <= max {
        return text;
    }
    let original = text.len();
    let mut end = max.saturating_sub(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    let _ = write!(text, "… ({original} bytes in all)");
    text
}

impl Error {
    /// A request the gateway refuses before calling Coder, naming each bad field.
    #[must_use]
    pub fn invalid(validations: Vec<Validation>) -> Self {
        Self::InvalidArgument {
            message: "Invalid arguments.".to_owned(),
            validations,
        }
    }
}

/// The summary followed by every `field: detail`, fields named by `name`.
pub(crate) fn describe(
    message: &str,
    validations: &[Validation],
    name: impl Fn(&str) -> String,
) -> String {
    validations.iter().fold(message.to_owned(), |mut text, v| {
        let _ = write!(text, " {}: {}", name(&v.field), v.detail);
        text
    })
}

impl Validation {
    /// A rejected input; the detail, which may quote the input, is [`bounded`].
    pub(crate) fn new(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: bounded(field, MAX_ECHO),
            detail: bounded(detail, MAX_ECHO),
        }
    }
}

/// What kind of failure an error is: all that decides its code in any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InvalidArgument,
    Unauthenticated,
    Forbidden,
    RateLimited,
    /// Coder answered with something other than a page the gateway can serve.
    Upstream,
    UpstreamUnavailable,
    UpstreamTimeout,
    DeadlineExceeded,
    BacklogTooLarge,
    /// A configured limit of streams is reached.
    Overloaded,
    /// A request refused at the door by load shedding.
    Shed,
    /// A value in Coder's page that its field cannot hold.
    DataLoss,
    ShuttingDown,
    Internal,
}

/// One kind's code in each protocol, as plain data for the adapters to convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codes {
    /// GraphQL's `extensions.code`; also the `code` of a plain-HTTP error body.
    pub graphql: &'static str,
    /// gRPC's canonical status code, by its number.
    pub grpc: i32,
    /// The status of a plain-HTTP answer.
    pub http: u16,
}

impl Kind {
    /// The table: the stable, documented code of each kind in every protocol.
    #[must_use]
    pub const fn codes(self) -> Codes {
        let (graphql, grpc, http) = match self {
            Self::InvalidArgument => ("BAD_USER_INPUT", 3, 400),
            Self::Unauthenticated => ("UNAUTHENTICATED", 16, 401),
            Self::Forbidden => ("FORBIDDEN", 7, 403),
            Self::RateLimited => ("RATE_LIMITED", 8, 429),
            Self::Upstream => ("UPSTREAM_ERROR", 13, 502),
            Self::UpstreamUnavailable => ("UPSTREAM_UNAVAILABLE", 14, 503),
            Self::UpstreamTimeout => ("UPSTREAM_TIMEOUT", 4, 504),
            Self::DeadlineExceeded => ("DEADLINE_EXCEEDED", 4, 504),
            Self::BacklogTooLarge => ("BACKLOG_TOO_LARGE", 9, 409),
            Self::Overloaded => ("SERVICE_OVERLOADED", 8, 503),
            Self::Shed => ("SERVICE_OVERLOADED", 14, 503),
            Self::DataLoss => ("UPSTREAM_DATA_LOSS", 15, 502),
            Self::ShuttingDown => ("SHUTTING_DOWN", 14, 503),
            Self::Internal => ("INTERNAL_SERVER_ERROR", 13, 500),
        };
        Codes {
            graphql,
            grpc,
            http,
        }
    }
}

impl Error {
    /// The error's classification, by which every protocol picks its code.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Self::InvalidArgument { .. } => Kind::InvalidArgument,
            Self::Token(_) | Self::Unauthenticated(_) => Kind::Unauthenticated,
            Self::Forbidden(_) => Kind::Forbidden,
            Self::RateLimited { .. } => Kind::RateLimited,
            Self::UpstreamStatus { .. }
            | Self::UpstreamBody { .. }
            | Self::UnwalkableTies { .. } => Kind::Upstream,
            Self::Unavailable { .. } => Kind::UpstreamUnavailable,
            Self::Timeout { .. } => Kind::UpstreamTimeout,
            Self::DeadlineExceeded => Kind::DeadlineExceeded,
            Self::BacklogTooLarge { .. } => Kind::BacklogTooLarge,
            Self::Overloaded(_) => Kind::Overloaded,
            Self::Shed => Kind::Shed,
            Self::BadValue { .. } => Kind::DataLoss,
            Self::ShuttingDown => Kind::ShuttingDown,
            Self::Internal { .. } => Kind::Internal,
        }
    }

    /// The error's codes, from the table.
    #[must_use]
    pub fn codes(&self) -> Codes {
        self.kind().codes()
    }

    /// Whether Coder (or the way to it, or the gateway itself) failed, as opposed to the
    /// caller's request being refused: operators want the former at warning level, the
    /// latter is routine.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::UpstreamStatus { .. }
                | Self::UpstreamBody { .. }
                | Self::BadValue { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Internal { .. }
        )
    }

    /// The value Coder sent that its field cannot hold, its row and field named; Coder's
    /// words are bounded like any echo.
    #[must_use]
    pub fn bad_value(invalid: Invalid) -> Self {
        Self::BadValue {
            row: bounded(invalid.row, MAX_ECHO),
            field: invalid.field,
            reason: bounded(invalid.reason, MAX_ECHO),
        }
    }

    /// A row of a page that parsed as JSON but is not an audit row.
    #[must_use]
    pub fn bad_row(reason: &str) -> Self {
        Self::UpstreamBody {
            reason: format!("a row is not an audit log entry: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_keeps_short_text_and_marks_cuts() {
        assert_eq!(bounded("short", 512), "short");
        let long = "é".repeat(10_000);
        let cut = bounded(long.clone(), MAX_ECHO);
        assert!(cut.len() <= MAX_ECHO, "{}", cut.len());
        assert!(cut.ends_with("… (20000 bytes in all)"), "{cut}");
        assert!(long.starts_with(cut.trim_end_matches("… (20000 bytes in all)")));
    }

    #[test]
    fn invalid_argument_lists_each_validation_in_the_message() {
        let err = Error::InvalidArgument {
            message: "Invalid audit search query.".into(),
            validations: vec![Validation {
                field: "action".into(),
                detail: "Query param \"action\" has invalid value: \"x\" is not a valid value"
                    .into(),
            }],
        };
        assert_eq!(
            err.to_string(),
            "Invalid audit search query. action: Query param \"action\" has invalid value: \"x\" is not a valid value"
        );
    }
}
