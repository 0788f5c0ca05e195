//! Coder's timestamps: RFC 3339 with 0–9 fraction digits, trailing zeros trimmed, `Z` for UTC.
//!
//! Both protocols must give back the same instant at the upstream's own precision. A general
//! date-time type would pad the fraction (`.5` becomes `.500`) or print `+00:00`, so the
//! instant is kept together with the number of fraction digits the upstream wrote.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Datelike, Timelike};
use serde::{Deserialize, Deserializer, de};

/// An instant plus the fraction precision it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    seconds: i64,
    nanos: u32,
    fraction_digits: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an RFC 3339 timestamp: {reason}")]
pub struct TimestampError {
    value: String,
    reason: String,
}

impl Timestamp {
    /// Seconds since the Unix epoch, negative before 1970 (Coder's "never" is year 1).
    #[must_use]
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// Nanoseconds within the second.
    #[must_use]
    pub fn nanos(&self) -> u32 {
        self.nanos
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let parsed = DateTime::parse_from_rfc3339(value).map_err(|e| TimestampError {
            value: value.to_owned(),
            reason: e.to_string(),
        })?;
        // "YYYY-MM-DDTHH:MM:SS" is 19 bytes; a fraction, if any, follows as ".ddd".
        let fraction_digits = match value.as_bytes().get(19) {
            Some(b'.') => value.as_bytes()[20..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
                .min(9),
            _ => 0,
        };
        Ok(Self {
            seconds: parsed.timestamp(),
            nanos: parsed.timestamp_subsec_nanos(),
            fraction_digits: u8::try_from(fraction_digits).unwrap_or(9),
        })
    }
}

impl fmt::Display for Timestamp {
    /// UTC with `Z`, and exactly as many fraction digits as the upstream sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(utc) = DateTime::from_timestamp(self.seconds, self.nanos) else {
            return Err(fmt::Error);
        };
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            utc.year(),
            utc.month(),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        )?;
        if self.fraction_digits > 0 {
            let digits = u32::from(self.fraction_digits);
            let fraction = self.nanos % 1_000_000_000 / 10u32.pow(9 - digits);
            write!(f, ".{fraction:0width$}", width = digits as usize)?;
        }
        f.write_str("Z")
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Timestamp, E> {
                value.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &str) -> String {
        input.parse::<Timestamp>().expect("parses").to_string()
    }

    #[test]
    fn keeps_the_upstream_precision_from_zero_to_nine_digits() {
        for input in [
            "2026-04-02T09:02:11Z",
            "2026-04-02T09:02:11.5Z",
            "2026-04-02T09:02:11.01Z",
            "2026-04-02T09:02:11.123Z",
            "2026-04-02T09:02:11.000331Z",
            "2026-04-02T09:02:11.123456Z",
            "2026-04-02T09:02:11.123456789Z",
            "2026-04-02T09:02:11.500Z",
        ] {
            assert_eq!(round_trip(input), input);
        }
    }

    #[test]
    fn non_utc_offsets_become_the_same_instant_in_utc() {
        assert_eq!(
            round_trip("2026-04-02T11:02:11.25+02:00"),
            "2026-04-02T09:02:11.25Z"
        );
        assert_eq!(
            round_trip("2026-04-01T23:30:00-01:00"),
            "2026-04-02T00:30:00Z"
        );
        let a: Timestamp = "2026-04-02T11:02:11.25+02:00".parse().expect("parses");
        let b: Timestamp = "2026-04-02T09:02:11.25Z".parse().expect("parses");
        assert_eq!((a.seconds(), a.nanos()), (b.seconds(), b.nanos()));
    }

    #[test]
    fn coder_never_set_value_is_year_one() {
        let never: Timestamp = "0001-01-01T00:00:00Z".parse().expect("parses");
        assert_eq!(never.seconds(), -62_135_596_800);
        assert_eq!(never.to_string(), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn rejects_what_is_not_rfc_3339() {
        for bad in [
            "",
            "2026-04-02",
            "2026-04-02 09:02:11",
            "yesterday",
            "2026-13-02T09:02:11Z",
        ] {
            let err = bad.parse::<Timestamp>().expect_err(bad);
            assert!(
                err.to_string().contains("is not an RFC 3339 timestamp"),
                "{err}"
            );
        }
    }
}
