//! The core's errors as gRPC statuses: the code from the error table, the message bounded
//! for `grpc-message`, Google's rich details (`BadRequest`, `RetryInfo`), and the request
//! metrics labelled with gRPC's canonical code names.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    call::Protocol,
    error::{Error, bounded},
};

/// The longest message of a gRPC status: percent-encoded, it stays under 4 KiB of
/// `grpc-message`, which clients such as grpcio refuse beyond their metadata limits.
const MAX_STATUS_MESSAGE: usize = 1024;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = Code::from_i32(error.codes().grpc);
        let message = bounded(error.to_string(), MAX_STATUS_MESSAGE);
        match error {
            Error::InvalidArgument { validations, .. } => Status::with_error_details(
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
            } => Status::with_error_details(
                code,
                message,
                ErrorDetails::with_retry_info(Some(after)),
            ),
            _ => Status::new(code, message),
        }
    }
}

/// A stream's end on a row it cannot deliver: the error's status, its `google.rpc.ErrorInfo`
/// details carrying the cursor that resumes past that row (metadata `cursor`).
pub(super) fn past(error: &Error, cursor: String) -> Status {
    let code = Code::from_i32(error.codes().grpc);
    let message = bounded(error.to_string(), MAX_STATUS_MESSAGE);
    let metadata = std::collections::HashMap::from([("cursor".to_owned(), cursor)]);
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(error.codes().graphql, "coder-audit-gateway", metadata),
    )
}

/// gRPC's canonical name of an error's code, as metrics label it.
fn code_name(error: &Error) -> &'static str {
    match Code::from_i32(error.codes().grpc) {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counts one `ListAuditLogs` in `gateway_requests_total`, and hands its error on as a status.
pub(super) fn counted<T>(result: Result<T, Error>) -> Result<T, Status> {
    let outcome = result.as_ref().map_or_else(code_name, |_| "OK");
    metrics::counter!(
        "gateway_requests_total",
        "protocol" => Protocol::Grpc.as_str(),
        "operation" => "ListAuditLogs",
        "outcome" => outcome,
    )
    .increment(1);
    result.map_err(Status::from)
}

/// Counts an export or watch refused at its start, and hands its error on as a status.
pub(super) fn refused(operation: &'static str, error: Error) -> Status {
    metrics::counter!(
        "gateway_streams_refused_total",
        "protocol" => Protocol::Grpc.as_str(),
        "operation" => operation,
        "code" => code_name(&error),
    )
    .increment(1);
    Status::from(error)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::{MAX_ECHO, UpstreamMessage, Validation};

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
