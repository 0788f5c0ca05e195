//! The core's errors as GraphQL sees them: `extensions.code` from the error table, the
//! validations with GraphQL's field names, and the request metrics labelled with GraphQL's
//! codes.

use async_graphql::ErrorExtensions;

use crate::{
    call::Protocol,
    error::{Error, describe},
};

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
            ext.set("code", self.codes().graphql);
            match self {
                Self::InvalidArgument { validations, .. } => ext.set(
                    "validations",
                    (validations.iter())
                        .map(|v| async_graphql::value!({"field": graphql_field(&v.field), "detail": v.detail}))
                        .collect::<Vec<_>>(),
                ),
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

/// Counts one `auditLogs` field in `gateway_requests_total`, and hands its error on as GraphQL's.
pub(in crate::graphql) fn counted<T>(result: Result<T, Error>) -> async_graphql::Result<T> {
    let outcome = result.as_ref().map_or_else(|e| e.codes().graphql, |_| "OK");
    metrics::counter!(
        "gateway_requests_total",
        "protocol" => Protocol::Graphql.as_str(),
        "operation" => "auditLogs",
        "outcome" => outcome,
    )
    .increment(1);
    result.map_err(|e| e.extend())
}

/// Counts a subscription Coder or the gateway refused at its start, and hands its error on.
pub(super) fn refused(error: &Error) -> async_graphql::Error {
    metrics::counter!(
        "gateway_streams_refused_total",
        "protocol" => Protocol::Graphql.as_str(),
        "operation" => "watch",
        "code" => error.codes().graphql,
    )
    .increment(1);
    error.extend()
}

/// Filter fields as GraphQL names them (`filter.date_from` is `filter.dateFrom`); other
/// fields are `q` keys or argument names, the same in both protocols.
fn graphql_field(field: &str) -> String {
    let Some(key) = field.strip_prefix("filter.") else {
        return field.to_owned();
    };
    let mut name = String::from("filter.");
    for (i, part) in key.split('_').enumerate() {
        let mut chars = part.chars();
        if i > 0
            && let Some(first) = chars.next()
        {
            name.push(first.to_ascii_uppercase());
        }
        name.extend(chars);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_fields_are_camel_case_in_graphql() {
        assert_eq!(graphql_field("filter.date_from"), "filter.dateFrom");
        assert_eq!(graphql_field("filter.action"), "filter.action");
        assert_eq!(graphql_field("date_from"), "date_from");
    }
}
