//! The gateway's one error type and its only two translations: GraphQL error extensions and
//! gRPC statuses.
//!
//! Every failure, whether the gateway caught it before calling Coder or Coder reported it,
//! becomes one [`Error`] in the shared core. The protocol layers never inspect upstream
//! statuses themselves; they call the mappings at the bottom of this file, so a caller gets
//! the same classification and the same message whichever protocol it speaks.

use std::{
    fmt::{self, Write as _},
    time::Duration,
};

use async_graphql::ErrorExtensions;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{auth::TokenError, context::Protocol};

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
pub const MAX_ECHO: usize = 512;

/// The longest message of a gRPC status: percent-encoded, it stays under 4 KiB of
/// `grpc-message`, which clients such as grpcio refuse beyond their metadata limits.
const MAX_STATUS_MESSAGE: usize = 1024;

/// `text` cut to at most `max` bytes (on a character boundary), marked with an ellipsis and
/// its original length when cut.
#[must_use]
pub fn bounded(text: impl Into<String>, max: usize) -> String {
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
fn describe(message: &str, validations: &[Validation], name: impl Fn(&str) -> String) -> String {
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

impl Error {
    /// The stable, documented GraphQL `extensions.code`.
    #[must_use]
    pub fn graphql_code(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "BAD_USER_INPUT",
            Self::Token(_) | Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::UpstreamStatus { .. }
            | Self::UpstreamBody { .. }
            | Self::UnwalkableTies { .. } => "UPSTREAM_ERROR",
            Self::Unavailable { .. } => "UPSTREAM_UNAVAILABLE",
            Self::Timeout { .. } => "UPSTREAM_TIMEOUT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::BacklogTooLarge { .. } => "BACKLOG_TOO_LARGE",
            Self::Overloaded(_) => "SERVICE_OVERLOADED",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::Internal { .. } => "INTERNAL_SERVER_ERROR",
        }
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
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Internal { .. }
        )
    }

    /// The code a caller of `protocol` sees, by name: the GraphQL `extensions.code`, or
    /// gRPC's canonical status name. Used as a metrics label.
    #[must_use]
    pub fn code_for(&self, protocol: Protocol) -> &'static str {
        match protocol {
            Protocol::Graphql | Protocol::Http => self.graphql_code(),
            Protocol::Grpc => match self.grpc_code() {
                tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
                tonic::Code::Unauthenticated => "UNAUTHENTICATED",
                tonic::Code::PermissionDenied => "PERMISSION_DENIED",
                tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
                tonic::Code::Internal => "INTERNAL",
                tonic::Code::Unavailable => "UNAVAILABLE",
                tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
                tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
                _ => "UNKNOWN",
            },
        }
    }

    /// A row of a page that parsed as JSON but is not an audit row.
    #[must_use]
    pub fn bad_row(reason: &str) -> Self {
        Self::UpstreamBody {
            reason: format!("a row is not an audit log entry: {reason}"),
        }
    }

    /// The HTTP status of a plain-HTTP answer (the NDJSON export).
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidArgument { .. } => 400,
            Self::Token(_) | Self::Unauthenticated(_) => 401,
            Self::Forbidden(_) => 403,
            Self::BacklogTooLarge { .. } => 409,
            Self::RateLimited { .. } => 429,
            Self::UpstreamStatus { .. }
            | Self::UpstreamBody { .. }
            | Self::UnwalkableTies { .. } => 502,
            Self::Unavailable { .. } | Self::Overloaded(_) | Self::ShuttingDown => 503,
            Self::Timeout { .. } | Self::DeadlineExceeded => 504,
            Self::Internal { .. } => 500,
        }
    }

    /// The error as one JSON object, `{"error":{"code":…,"message":…}}` (plus Coder's
    /// validations or a retry delay when there are any): the body of a plain-HTTP error, and
    /// the last line of an NDJSON export that fails midway.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut error =
            serde_json::json!({"code": self.graphql_code(), "message": self.to_string()});
        match self {
            Self::InvalidArgument { validations, .. } => {
                error["validations"] = validations
                    .iter()
                    .map(|v| serde_json::json!({"field": v.field, "detail": v.detail}))
                    .collect();
            }
            Self::RateLimited {
                retry_after: Some(after),
                ..
            } => error["retryAfter"] = after.as_secs().into(),
            _ => {}
        }
        serde_json::json!({ "error": error })
    }

    /// The gRPC status code.
    #[must_use]
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            Self::Token(_) | Self::Unauthenticated(_) => tonic::Code::Unauthenticated,
            Self::Forbidden(_) => tonic::Code::PermissionDenied,
            Self::RateLimited { .. } | Self::Overloaded(_) => tonic::Code::ResourceExhausted,
            Self::UpstreamStatus { .. }
            | Self::UpstreamBody { .. }
            | Self::UnwalkableTies { .. }
            | Self::Internal { .. } => tonic::Code::Internal,
            Self::Unavailable { .. } | Self::ShuttingDown => tonic::Code::Unavailable,
            Self::Timeout { .. } | Self::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Self::BacklogTooLarge { .. } => tonic::Code::FailedPrecondition,
        }
    }
}

/// Filter fields as GraphQL names them (`filter.date_from` is `filter.dateFrom`); other
/// fields are `q` keys or argument names, the same in both protocols.
fn graphql_field(field: &str) -> String {
    match field.strip_prefix("filter.") {
        Some(key) => {
            let mut name = String::from("filter.");
            let mut upper = false;
            for c in key.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    name.push(c.to_ascii_uppercase());
                    upper = false;
                } else {
                    name.push(c);
                }
            }
            name
        }
        None => field.to_owned(),
    }
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        let message = match self {
            Self::InvalidArgument {
                message,
                validations,
            } => describe(message, validations, graphql_field),
            _ => self.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.graphql_code());
            match self {
                Self::InvalidArgument { validations, .. } => {
                    let list: Vec<async_graphql::Value> = validations
                        .iter()
                        .map(|v| {
                            let mut entry = async_graphql::indexmap::IndexMap::new();
                            entry.insert(
                                async_graphql::Name::new("field"),
                                async_graphql::Value::from(graphql_field(&v.field)),
                            );
                            entry.insert(
                                async_graphql::Name::new("detail"),
                                async_graphql::Value::from(v.detail.as_str()),
                            );
                            async_graphql::Value::Object(entry)
                        })
                        .collect();
                    ext.set("validations", list);
                }
                Self::RateLimited {
                    retry_after: Some(after),
                    ..
                } => ext.set("retryAfter", after.as_secs()),
                Self::UpstreamStatus { status, .. } => ext.set("upstreamStatus", *status),
                _ => {}
            }
        })
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let code = error.grpc_code();
        let message = bounded(error.to_string(), MAX_STATUS_MESSAGE);
        match error {
            Error::InvalidArgument { validations, .. } => tonic::Status::with_error_details(
                code,
                message,
                ErrorDetails::with_bad_request(
                    validations
                        .into_iter()
                        .map(|v| FieldViolation::new(v.field, v.detail))
                        .collect::<Vec<_>>(),
                ),
            ),
            Error::RateLimited {
                retry_after: Some(after),
                ..
            } => tonic::Status::with_error_details(
                code,
                message,
                ErrorDetails::with_retry_info(Some(after)),
            ),
            _ => tonic::Status::new(code, message),
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
    fn a_huge_input_never_makes_a_huge_grpc_message() {
        let status: tonic::Status = Error::InvalidArgument {
            message: "x".repeat(3 << 20),
            validations: (0..5)
                .map(|_| Validation::new("q", "\u{1F600}".repeat(1 << 20)))
                .collect(),
        }
        .into();
        assert!(status.message().len() <= MAX_STATUS_MESSAGE);
        let violations = status.get_error_details();
        let violations = &violations
            .bad_request()
            .expect("bad request")
            .field_violations;
        assert!(violations.iter().all(|v| v.description.len() <= MAX_ECHO));
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

    #[test]
    fn filter_fields_are_camel_case_in_graphql() {
        assert_eq!(graphql_field("filter.date_from"), "filter.dateFrom");
        assert_eq!(graphql_field("filter.action"), "filter.action");
        assert_eq!(graphql_field("date_from"), "date_from");
    }

    #[test]
    fn grpc_status_carries_field_violations_and_retry_info() {
        let status: tonic::Status = Error::InvalidArgument {
            message: "Invalid arguments.".into(),
            validations: vec![Validation::new("limit", "must not be negative")],
        }
        .into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("bad request").field_violations;
        assert_eq!(violations[0].field, "limit");

        let status: tonic::Status = Error::RateLimited {
            message: UpstreamMessage {
                message: "slow down".into(),
                detail: None,
            },
            retry_after: Some(Duration::from_secs(7)),
        }
        .into();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status
                .get_error_details()
                .retry_info()
                .expect("retry")
                .retry_delay,
            Some(Duration::from_secs(7))
        );
    }
}
