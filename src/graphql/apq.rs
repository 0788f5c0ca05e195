//! Automatic persisted queries, as Apollo Client and urql speak them: a client sends
//! `extensions.persistedQuery.sha256Hash` instead of the document; an unknown hash is
//! answered with `PERSISTED_QUERY_NOT_FOUND`, and the client sends the document once, with
//! its hash, to be checked and kept. The documents live in the operation cache (see
//! `plan`), so a persisted query is also a compiled one.

use serde_json::{Map, Value};

/// `extensions.persistedQuery` of a request.
#[derive(Debug, Clone)]
pub(super) struct PersistedQuery {
    pub(super) hash: [u8; 32],
}

/// Why a persisted query is not answered; the messages are the ones clients match on.
#[derive(Debug, thiserror::Error)]
pub(super) enum PersistedQueryError {
    #[error("PersistedQueryNotFound")]
    NotFound,
    #[error("PersistedQueryNotSupported")]
    NotSupported,
    #[error("provided sha does not match query")]
    HashMismatch,
}

impl PersistedQueryError {
    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            Self::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
        }
    }
}

impl PersistedQuery {
    /// Reads `persistedQuery` from a request's extensions: `None` without one, an error
    /// (the request's) when it is not version 1 with a SHA-256 in hex.
    pub(super) fn from_extensions(extensions: &Map<String, Value>) -> Result<Option<Self>, String> {
        let Some(persisted) = extensions.get("persistedQuery") else {
            return Ok(None);
        };
        let Value::Object(persisted) = persisted else {
            return Err("`extensions.persistedQuery` must be a map".to_owned());
        };
        match persisted.get("version") {
            Some(version) if version.as_u64() == Some(1) => {}
            Some(version) => {
                return Err(format!(
                    "persisted query version {version} is not supported; this gateway speaks version 1"
                ));
            }
            None => return Err("`extensions.persistedQuery.version` is missing".to_owned()),
        }
        let hash = persisted
            .get("sha256Hash")
            .and_then(Value::as_str)
            .and_then(decode_hex)
            .ok_or("`extensions.persistedQuery.sha256Hash` must be a SHA-256 in hex (64 digits)")?;
        Ok(Some(Self { hash }))
    }
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut hash = [0; 32];
    for (byte, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(extensions: &Value) -> Result<Option<PersistedQuery>, String> {
        PersistedQuery::from_extensions(extensions.as_object().expect("map"))
    }

    #[test]
    fn reads_version_one_with_a_hex_hash() {
        let hash = "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38";
        let read_hash = read(&json!({"persistedQuery": {"version": 1, "sha256Hash": hash}}))
            .expect("valid")
            .expect("present")
            .hash;
        assert_eq!(read_hash[0], 0xec);
        assert_eq!(read_hash[31], 0x38);
        let upper = hash.to_uppercase();
        assert!(read(&json!({"persistedQuery": {"version": 1, "sha256Hash": upper}})).is_ok());
        assert!(read(&json!({})).expect("valid").is_none());
        assert!(read(&json!({"persistedQuery": {"version": 2, "sha256Hash": hash}})).is_err());
        assert!(read(&json!({"persistedQuery": {"sha256Hash": hash}})).is_err());
        assert!(read(&json!({"persistedQuery": {"version": 1, "sha256Hash": "abc"}})).is_err());
        assert!(
            read(&json!({"persistedQuery": {"version": 1, "sha256Hash": "zz".repeat(32)}}))
                .is_err()
        );
        assert!(read(&json!({"persistedQuery": "x"})).is_err());
    }
}
