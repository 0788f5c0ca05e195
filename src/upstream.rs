//! The HTTP client for Coder's `GET /api/v2/audit`, one request at a time: retries, deadlines
//! and parsing are the page source's (`source.rs`).
//!
//! One pooled reqwest client serves every caller; only the per-call token differs. Three
//! choices here are about safety rather than convenience:
//! - redirects are never followed, because reqwest strips only standard credential headers
//!   on a cross-host redirect and would carry `Coder-Session-Token` to wherever Coder (or
//!   something in front of it) pointed;
//! - nothing from the caller's request is forwarded but the token, so cookies or a
//!   `?coder_session_token=` can never override it upstream;
//! - every text that leaves this module is run through [`SessionToken::redact`].

use std::{
    error::Error as _,
    time::{Duration, Instant},
};

use reqwest::{StatusCode, Url, header};
use serde::Deserialize;

use crate::{
    auth::{CODER_SESSION_TOKEN, SessionToken},
    call::{CODER_REQUEST_ID, CallContext, REQUEST_ID, TRACEPARENT},
    error::{Error, MAX_ECHO, UpstreamMessage, Validation, bounded},
    model::{AuditPage, PageError},
};

/// Path of the audit endpoint below a deployment's base URL.
const AUDIT_PATH: &str = "api/v2/audit";
/// Coder's unauthenticated build information: the cheapest way to ask "are you there?".
const BUILDINFO_PATH: &str = "api/v2/buildinfo";
/// A readiness probe must answer quickly even when the audit timeout is long.
const READINESS_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request URL the gateway sends: the `http` crate under reqwest cannot build one
/// of 64 KiB, proxies in front of Coder often refuse far less, and `--max-query-length` keeps
/// real ones far below either.
const MAX_URL: usize = 60 * 1024;

/// What to ask Coder for; `limit` is already the explicit page size to send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRequest<'a> {
    pub q: &'a str,
    pub limit: i32,
    pub offset: i32,
}

/// How the client talks to Coder.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Bounds each attempt, body included.
    pub timeout: Duration,
    /// Further attempts after a connection error or a 502/503/504.
    pub retries: u32,
    /// Largest response body read; a larger one is refused without reading the rest.
    pub max_body: usize,
    /// Extra trusted CA certificates (PEM), for a Coder with a private CA.
    pub ca_pem: Option<Vec<u8>>,
}

/// A page (as the caller chose to read it) and the id Coder gave the request that fetched it.
#[derive(Debug, Clone)]
pub struct Fetched<T = AuditPage> {
    pub page: T,
    pub coder_request_id: Option<String>,
}

/// A client for one Coder deployment.
#[derive(Debug, Clone)]
pub struct CoderClient {
    http: reqwest::Client,
    audit_url: Url,
    buildinfo_url: Url,
    config: ClientConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("the Coder URL must be http:// or https://, not {0}://")]
    Scheme(String),
    #[error("the Coder URL cannot be a base for {AUDIT_PATH}: {0}")]
    Url(#[from] url::ParseError),
    #[error("cannot use the CA certificate: {0}")]
    CaCertificate(reqwest::Error),
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

/// One attempt's outcome before classification.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    coder_request_id: Option<String>,
    body: Vec<u8>,
}

impl CoderClient {
    /// `base_url` is the deployment's address, e.g. `https://coder.example.com` (a path prefix
    /// is kept).
    pub fn new(base_url: &Url, config: ClientConfig) -> Result<Self, ClientBuildError> {
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(ClientBuildError::Scheme(base_url.scheme().to_owned()));
        }
        let mut base = base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let audit_url = base.join(AUDIT_PATH)?;
        let buildinfo_url = base.join(BUILDINFO_PATH)?;

        // reqwest is built without a bundled crypto provider so that ring (pure Rust and
        // assembly, quick to build) is used; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("coder-audit-gateway/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(ClientBuildError::CaCertificate)?;
            builder = builder.tls_certs_merge(certs);
        }
        Ok(Self {
            http: builder.build()?,
            audit_url,
            buildinfo_url,
            config,
        })
    }

    /// The full URL of the audit endpoint, without a query.
    #[must_use]
    pub fn audit_url(&self) -> &Url {
        &self.audit_url
    }

    /// Further attempts the page source makes after a connection error or a 502/503/504.
    #[must_use]
    pub fn retries(&self) -> u32 {
        self.config.retries
    }

    /// Asks Coder once for one page with the caller's token: the body and the id Coder gave
    /// the request, or the error Coder's answer means. Retries are the page source's.
    pub(crate) async fn get(
        &self,
        call: &CallContext,
        request: PageRequest<'_>,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let mut url = self.audit_url.clone();
        // Form encoding sends `+` as `%2B`; a literal `+` would reach Coder as a space and
        // split an e-mail address into a bogus free-text term.
        url.query_pairs_mut()
            .append_pair("q", request.q)
            .append_pair("limit", &request.limit.to_string())
            .append_pair("offset", &request.offset.to_string());
        if url.as_str().len() > MAX_URL {
            return Err(Error::Internal {
                reason: format!(
                    "the request to Coder would have a {}-byte URL, more than {MAX_URL}",
                    url.as_str().len()
                ),
            });
        }
        let answer = self.attempt(call, url).await?;
        if answer.status == StatusCode::OK {
            Ok((answer.body, answer.coder_request_id))
        } else {
            Err(status_error(&answer, &call.token))
        }
    }

    /// One request to Coder, its body read up to the configured size.
    async fn attempt(&self, call: &CallContext, url: Url) -> Result<Answer, Error> {
        let mut request = self
            .http
            .get(url)
            .header(CODER_SESSION_TOKEN, call.token.header_value().clone())
            .header(header::ACCEPT, "application/json")
            .header(REQUEST_ID, call.info.request_id.clone());
        if let Some(traceparent) = &call.info.traceparent {
            request = request.header(TRACEPARENT, traceparent.clone());
        }
        let started = Instant::now();
        let result = self.exchange(request, &call.token).await;
        metrics::histogram!("gateway_upstream_request_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        let status = match &result {
            Ok(answer) => answer.status.as_str().to_owned(),
            Err(Error::Timeout { .. }) => "timeout".to_owned(),
            Err(_) => "error".to_owned(),
        };
        metrics::counter!("gateway_upstream_responses_total", "status" => status).increment(1);
        result
    }

    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        token: &SessionToken,
    ) -> Result<Answer, Error> {
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&e, token))?;
        let status = response.status();
        let headers = response.headers();
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let coder_request_id = headers
            .get(CODER_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        let max = self.config.max_body;
        let too_large = |size: String| Error::UpstreamBody {
            reason: format!("the body is {size} bytes, more than --max-upstream-body ({max})"),
        };
        if let Some(length) = response.content_length()
            && length > max as u64
        {
            return Err(too_large(length.to_string()));
        }
        // Coder writes large pages chunked, without a length: the chunks are kept and joined
        // once at their total size, instead of a buffer that grows (and copies) as it goes.
        let mut chunks = Vec::new();
        let mut size = 0;
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            if e.is_timeout() {
                Error::Timeout {
                    after: self.config.timeout,
                }
            } else {
                Error::UpstreamBody {
                    reason: bounded(
                        token.redact(format!("the body could not be read: {}", chain(&e))),
                        MAX_ECHO,
                    ),
                }
            }
        })? {
            if size + chunk.len() > max {
                // Dropping the response closes the connection instead of reading on.
                return Err(too_large(format!("more than {size}")));
            }
            size += chunk.len();
            chunks.push(chunk);
        }
        let mut body = Vec::with_capacity(size);
        for chunk in chunks {
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            retry_after,
            coder_request_id,
            body,
        })
    }

    /// Whether Coder answers at all: its unauthenticated, cheap `GET /api/v2/buildinfo`.
    /// The reason names no address: `/readyz` shows it on the public port.
    pub async fn check_reachable(&self) -> Result<(), String> {
        let response = self
            .http
            .get(self.buildinfo_url.clone())
            .timeout(self.config.timeout.min(READINESS_TIMEOUT))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "Coder's GET /{BUILDINFO_PATH} failed: {}",
                    without_url(&e, "Coder")
                )
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "Coder's GET /{BUILDINFO_PATH} answered HTTP {}",
                response.status().as_u16()
            ))
        }
    }

    /// A request that never got an answer. reqwest's text names the whole URL, `q`
    /// included, and callers need not learn Coder's internal address: both are left out.
    /// A request that could not even be built is the gateway's failure: not UNAVAILABLE,
    /// and not retried.
    fn transport_error(&self, error: &reqwest::Error, token: &SessionToken) -> Error {
        if error.is_timeout() {
            return Error::Timeout {
                after: self.config.timeout,
            };
        }
        let text = bounded(token.redact(without_url(error, "Coder")), MAX_ECHO);
        if error.is_builder() {
            Error::Internal {
                reason: format!("the request to Coder could not be built: {text}"),
            }
        } else {
            Error::Unavailable {
                reason: format!("the request to Coder failed: {text}"),
            }
        }
    }
}

/// A 200 whose body is not an audit page, in Coder's words as far as they are safe to echo.
pub(crate) fn body_error(call: &CallContext, error: &PageError) -> Error {
    Error::UpstreamBody {
        reason: bounded(call.token.redact(error.to_string()), MAX_ECHO),
    }
}

fn status_error(answer: &Answer, token: &SessionToken) -> Error {
    let (status, body, retry_after) = (answer.status, answer.body.as_slice(), answer.retry_after);
    let envelope = serde_json::from_slice::<ErrorBody>(body).ok();
    let message = match &envelope {
        Some(body) => UpstreamMessage {
            message: bounded(token.redact(body.message.clone()), MAX_ECHO),
            detail: Some(&body.detail)
                .filter(|d| !d.is_empty())
                .map(|d| bounded(token.redact(d.clone()), MAX_ECHO)),
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
                    .map(|v| Validation::new(&v.field, token.redact(v.detail)))
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

/// The error's text, causes included, with the request's URL replaced by `name`.
fn without_url(error: &reqwest::Error, name: &str) -> String {
    let text = chain(error);
    match error.url() {
        Some(url) => text.replace(url.as_str(), name),
        None => text,
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

    fn config() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(1),
            retries: 0,
            max_body: 1024,
            ca_pem: None,
        }
    }

    fn answer(status: StatusCode, body: &[u8]) -> Answer {
        Answer {
            status,
            retry_after: None,
            coder_request_id: None,
            body: body.to_vec(),
        }
    }

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
            let client = CoderClient::new(&base.parse().expect("url"), config()).expect("client");
            assert_eq!(client.audit_url().as_str(), expected);
        }
        let err = CoderClient::new(&"ftp://x".parse().expect("url"), config()).expect_err("ftp");
        assert!(err.to_string().contains("ftp://"));
    }

    #[test]
    fn statuses_are_classified_with_coder_words() {
        let body = br#"{"message":"Invalid audit search query.","validations":[{"field":"action","detail":"bad"}]}"#;
        match status_error(&answer(StatusCode::BAD_REQUEST, body), &token()) {
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
            &answer(
                StatusCode::UNAUTHORIZED,
                br#"{"message":"Signed out.","detail":"API key is invalid."}"#,
            ),
            &token(),
        );
        assert_eq!(
            err.to_string(),
            "Coder rejected the session token: Signed out. API key is invalid."
        );
        let err = status_error(
            &answer(StatusCode::INTERNAL_SERVER_ERROR, b"<html>oops</html>"),
            &token(),
        );
        assert_eq!(
            err.to_string(),
            "Coder answered HTTP 500: Internal Server Error"
        );
        assert!(matches!(
            status_error(&answer(StatusCode::SERVICE_UNAVAILABLE, b""), &token()),
            Error::Unavailable { .. }
        ));
        assert!(matches!(
            status_error(
                &answer(StatusCode::NOT_FOUND, br#"{"message":"Route not found."}"#),
                &token()
            ),
            Error::UpstreamStatus { status: 404, .. }
        ));
    }

    #[test]
    fn an_echoed_token_is_redacted_from_upstream_messages() {
        let err = status_error(&answer(StatusCode::UNAUTHORIZED, br#"{"message":"bad key secretsecr-etsecretsecretsecretse","detail":"secretsecr-etsecretsecretsecretse"}"#), &token());
        assert!(!err.to_string().contains("secretsecr"), "{err}");
    }
}
