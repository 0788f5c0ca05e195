//! The caller's own Coder session token, and the rules for finding it in a request.
//!
//! The gateway holds no credentials of its own: every call is made with the token its caller
//! presented, so Coder's own authorisation decides what each caller sees. A token lives only
//! for the request that carried it (nothing is cached across callers), its header value is
//! marked sensitive so `http`'s `Debug` prints it as `Sensitive` (the gateway never logs
//! headers anyway), and [`SessionToken::redact`] scrubs it from any text the gateway is about
//! to show or log.

use std::fmt;

use http::{HeaderMap, HeaderValue};

/// Header Coder reads the token from, and the one the gateway forwards it in.
pub(crate) const CODER_SESSION_TOKEN: &str = "coder-session-token";

/// A caller's token, ready to be sent upstream; equal tokens are equal byte for byte.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionToken(HeaderValue);

/// Why a request carried no usable token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no Coder session token: send it as `Coder-Session-Token: <token>` or `Authorization: Bearer <token>`"
    )]
    Missing,
    #[error("the Authorization header must have the form `Bearer <token>`")]
    NotBearer,
    #[error("the Coder session token contains characters no Coder token has")]
    Malformed,
}

impl SessionToken {
    /// Picks the token the way Coder does among the sources the gateway accepts: a non-empty
    /// `Coder-Session-Token` wins over `Authorization: Bearer` (scheme case-insensitive, token
    /// trimmed). Cookies and query parameters are never read, so they can never be forwarded.
    pub fn from_credentials(
        session_token: Option<&[u8]>,
        authorization: Option<&[u8]>,
    ) -> Result<Self, TokenError> {
        if let Some(token) = session_token
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
        {
            return Self::from_bytes(token);
        }
        let Some(authorization) = authorization
            .map(<[u8]>::trim_ascii)
            .filter(|a| !a.is_empty())
        else {
            return Err(TokenError::Missing);
        };
        let (scheme, token) = authorization.split_at(
            authorization
                .iter()
                .position(u8::is_ascii_whitespace)
                .unwrap_or(authorization.len()),
        );
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Err(TokenError::NotBearer);
        }
        match token.trim_ascii() {
            [] => Err(TokenError::Missing),
            token => Self::from_bytes(token),
        }
    }

    /// Reads the token from HTTP request headers (GraphQL over HTTP).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, TokenError> {
        Self::from_credentials(
            headers.get(CODER_SESSION_TOKEN).map(HeaderValue::as_bytes),
            headers
                .get(http::header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        )
    }

    fn from_bytes(token: &[u8]) -> Result<Self, TokenError> {
        if !token.iter().all(u8::is_ascii_graphic) {
            return Err(TokenError::Malformed);
        }
        let mut value = HeaderValue::from_bytes(token).map_err(|_| TokenError::Malformed)?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    pub(crate) fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Removes this token from text that came from elsewhere (an upstream error message, a
    /// transport error) before the text reaches a caller or a log line.
    #[must_use]
    pub fn redact(&self, text: String) -> String {
        match std::str::from_utf8(self.0.as_bytes()) {
            Ok(token) if text.contains(token) => text.replace(token, "[redacted]"),
            _ => text,
        }
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(session: Option<&str>, auth: Option<&str>) -> Result<String, TokenError> {
        SessionToken::from_credentials(session.map(str::as_bytes), auth.map(str::as_bytes))
            .map(|t| String::from_utf8(t.header_value().as_bytes().to_vec()).expect("ascii"))
    }

    #[test]
    fn session_header_wins_over_bearer() {
        assert_eq!(
            token(Some("aaaa-bbbb"), Some("Bearer cccc-dddd")),
            Ok("aaaa-bbbb".into())
        );
        assert_eq!(
            token(Some(""), Some("Bearer cccc-dddd")),
            Ok("cccc-dddd".into())
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_trimmed() {
        assert_eq!(token(None, Some("bearer  x-y ")), Ok("x-y".into()));
        assert_eq!(token(None, Some("BEARER x-y")), Ok("x-y".into()));
    }

    #[test]
    fn missing_non_bearer_and_malformed_tokens_are_rejected() {
        assert_eq!(token(None, None), Err(TokenError::Missing));
        assert_eq!(token(Some("  "), None), Err(TokenError::Missing));
        assert_eq!(token(None, Some("Bearer ")), Err(TokenError::Missing));
        assert_eq!(
            token(None, Some("Basic dXNlcjpwdw==")),
            Err(TokenError::NotBearer)
        );
        assert_eq!(token(Some("tok en"), None), Err(TokenError::Malformed));
        assert_eq!(token(Some("tök"), None), Err(TokenError::Malformed));
    }

    #[test]
    fn debug_and_redaction_never_show_the_token() {
        let t = SessionToken::from_credentials(Some(b"abcdefghij-0123456789012345678901"), None)
            .expect("token");
        assert!(!format!("{t:?}").contains("abcdefghij"));
        assert!(!format!("{:?}", t.header_value()).contains("abcdefghij"));
        assert_eq!(
            t.redact("echo abcdefghij-0123456789012345678901!".into()),
            "echo [redacted]!"
        );
    }
}
