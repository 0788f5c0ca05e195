//! The HTTP client for Coder's `GET /api/v2/audit`.
//!
//! One pooled reqwest client serves every caller; only the per-call token differs. Three
//! choices here are about safety rather than convenience:
//! - redirects are never followed, because reqwest strips only standard credential headers
//!   on a cross-host redirect and would carry `Coder-Session-Token` to wherever Coder (or
//!   something in front of it) pointed;
//! - nothing from the caller's request is forwarded but the token, so cookies or a
//!   `?coder_session_token=` can never override it upstream;
//! - every text that leaves this module is run through [`SessionToken::redact`].

use std::{error::Error as _, time::Duration};

use reqwest::{StatusCode, Url, header};
use serde::Deserialize;

use crate::{
    auth::{CODER_SESSION_TOKEN, SessionToken},
    error::{Error, UpstreamMessage, Validation},
    model::AuditPage,
};

/// Path of the audit endpoint below a deployment's base URL.
const AUDIT_PATH: &str = "api/v2/audit";

/// What to ask Coder for; `limit` is already the explicit page size to send.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub q: &'a str,
    pub limit: i32,
    pub offset: i32,
}

/// A client for one Coder deployment.
#[derive(Debug, Clone)]
pub struct CoderClient {
    http: reqwest::Client,
    audit_url: Url,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("the Coder URL must be http:// or https://, not {0}://")]
    Scheme(String),
    #[error("the Coder URL cannot be a base for {AUDIT_PATH}: {0}")]
    Url(#[from] url::ParseError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Coder's error envelope (`message`, optional `detail`, optional `validations`).
#[derive(Deserialize)]
struct ErrorBody {
    message: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    validations: Vec<ValidationBody>,
}

#[derive(Deserialize)]
struct ValidationBody {
    field: String,
    detail: String,
}

impl CoderClient {
    /// `base_url` is the deployment's address, e.g. `https://coder.example.com` (a path prefix
    /// is kept); `timeout` bounds each whole upstream call, body included.
    pub fn new(base_url: &Url, timeout: Duration) -> Result<Self, ClientBuildError> {
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(ClientBuildError::Scheme(base_url.scheme().to_owned()));
        }
        let mut base = base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let audit_url = base.join(AUDIT_PATH)?;

        // reqwest is built without a bundled crypto provider so that ring (pure Rust and
        // assembly, quick to build) is used; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("coder-audit-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            audit_url,
            timeout,
        })
    }

    /// The full URL of the audit endpoint, without a query.
    #[must_use]
    pub fn audit_url(&self) -> &Url {
        &self.audit_url
    }

    /// Fetches one page with the caller's token.
    pub async fn audit_page(
        &self,
        token: &SessionToken,
        request: PageRequest<'_>,
    ) -> Result<AuditPage, Error> {
        let mut url = self.audit_url.clone();
        // Form encoding sends `+` as `%2B`; a literal `+` would reach Coder as a space and
        // split an e-mail address into a bogus free-text term.
        url.query_pairs_mut()
            .append_pair("q", request.q)
            .append_pair("limit", &request.limit.to_string())
            .append_pair("offset", &request.offset.to_string());

        let response = self
            .http
            .get(url)
            .header(CODER_SESSION_TOKEN, token.header_value().clone())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport_error(&e, token))?;

        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                Error::Timeout {
                    after: self.timeout,
                }
            } else {
                Error::UpstreamBody {
                    reason: token.redact(format!("the body could not be read: {}", chain(&e))),
                }
            }
        })?;

        if status == StatusCode::OK {
            return serde_json::from_slice(&body).map_err(|e| Error::UpstreamBody {
                reason: token.redact(e.to_string()),
            });
        }
        Err(status_error(status, &body, retry_after, token))
    }

    fn transport_error(&self, error: &reqwest::Error, token: &SessionToken) -> Error {
        if error.is_timeout() {
            return Error::Timeout {
                after: self.timeout,
            };
        }
        let origin = self.audit_url.origin().ascii_serialization();
        Error::Unavailable {
            reason: token.redact(format!("request to {origin} failed: {}", chain(error))),
        }
    }
}

/// Classifies a non-200 answer, keeping Coder's own words.
fn status_error(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    token: &SessionToken,
) -> Error {
    let envelope = serde_json::from_slice::<ErrorBody>(body).ok();
    let message = match &envelope {
        Some(body) => UpstreamMessage {
            message: token.redact(body.message.clone()),
            detail: Some(&body.detail)
                .filter(|d| !d.is_empty())
                .map(|d| token.redact(d.clone())),
        },
        None => UpstreamMessage {
            message: status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned(),
            detail: None,
        },
    };
    match status {
        StatusCode::BAD_REQUEST => match envelope {
            Some(body) => Error::InvalidArgument {
                message: message.to_string(),
                validations: body
                    .validations
                    .into_iter()
                    .map(|v| Validation {
                        field: v.field,
                        detail: token.redact(v.detail),
                    })
                    .collect(),
            },
            None => Error::UpstreamStatus {
                status: status.as_u16(),
                message,
            },
        },
        StatusCode::UNAUTHORIZED => Error::Unauthenticated(message),
        StatusCode::FORBIDDEN => Error::Forbidden(message),
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
            message,
            retry_after,
        },
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            Error::Unavailable {
                reason: format!("Coder answered HTTP {}: {message}", status.as_u16()),
            }
        }
        _ => Error::UpstreamStatus {
            status: status.as_u16(),
            message,
        },
    }
}

/// reqwest's top-level message only says "error sending request"; the cause is below it.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SessionToken {
        SessionToken::from_credentials(Some(b"secretsecr-etsecretsecretsecretse"), None)
            .expect("token")
    }

    #[test]
    fn audit_url_keeps_a_path_prefix() {
        for (base, expected) in [
            (
                "https://coder.example.com",
                "https://coder.example.com/api/v2/audit",
            ),
            (
                "https://coder.example.com/",
                "https://coder.example.com/api/v2/audit",
            ),
            ("http://h:3000/coder", "http://h:3000/coder/api/v2/audit"),
        ] {
            let client = CoderClient::new(&base.parse().expect("url"), Duration::from_secs(1))
                .expect("client");
            assert_eq!(client.audit_url().as_str(), expected);
        }
        let err = CoderClient::new(&"ftp://x".parse().expect("url"), Duration::from_secs(1))
            .expect_err("ftp");
        assert!(err.to_string().contains("ftp://"));
    }

    #[test]
    fn statuses_are_classified_with_coder_words() {
        let body = br#"{"message":"Invalid audit search query.","validations":[{"field":"action","detail":"bad"}]}"#;
        match status_error(StatusCode::BAD_REQUEST, body, None, &token()) {
            Error::InvalidArgument {
                message,
                validations,
            } => {
                assert_eq!(message, "Invalid audit search query.");
                assert_eq!(validations[0].field, "action");
            }
            other => panic!("{other:?}"),
        }
        let err = status_error(
            StatusCode::UNAUTHORIZED,
            br#"{"message":"Signed out.","detail":"API key is invalid."}"#,
            None,
            &token(),
        );
        assert_eq!(
            err.to_string(),
            "Coder rejected the session token: Signed out. API key is invalid."
        );
        let err = status_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            b"<html>oops</html>",
            None,
            &token(),
        );
        assert_eq!(
            err.to_string(),
            "Coder answered HTTP 500: Internal Server Error"
        );
        assert!(matches!(
            status_error(StatusCode::SERVICE_UNAVAILABLE, b"", None, &token()),
            Error::Unavailable { .. }
        ));
        assert!(matches!(
            status_error(
                StatusCode::NOT_FOUND,
                br#"{"message":"Route not found."}"#,
                None,
                &token()
            ),
            Error::UpstreamStatus { status: 404, .. }
        ));
    }

    #[test]
    fn an_echoed_token_is_redacted_from_upstream_messages() {
        let err = status_error(
            StatusCode::UNAUTHORIZED,
            br#"{"message":"bad key secretsecr-etsecretsecretsecretse","detail":"secretsecr-etsecretsecretsecretse"}"#,
            None,
            &token(),
        );
        assert!(!err.to_string().contains("secretsecr"), "{err}");
    }
}
