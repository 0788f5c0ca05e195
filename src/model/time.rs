//! Coder's timestamps: RFC 3339 with 0–9 fraction digits, trailing zeros trimmed, `Z` for UTC.
//!
//! Both protocols must give back the same instant at the upstream's own precision. A general
//! date-time type would pad the fraction (`.5` becomes `.500`) or print `+00:00`, so the
//! instant is kept together with the number of fraction digits the upstream wrote.

use std::{
    cmp::Ordering,
    fmt,
    hash::{Hash, Hasher},
    str::FromStr,
};

use chrono::{DateTime, Datelike, Timelike};
use serde::{Deserialize, Deserializer, de};

/// An instant plus the fraction precision it was written with. Equal, hashed and ordered as
/// the instant alone (`…:05.5Z` and `…:05.500Z` are one time, as Coder's database sees them);
/// [`Timestamp::same_text`] also compares how they were written.
#[derive(Debug, Clone, Copy)]
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
    /// 1970-01-01T00:00:00Z: what a time Coder sent unreadable holds.
    pub const UNIX_EPOCH: Self = Self {
        seconds: 0,
        nanos: 0,
        fraction_digits: 0,
    };

    /// The instant `seconds` and `nanos` after the Unix epoch, written with nanoseconds.
    #[must_use]
    pub fn from_unix(seconds: i64, nanos: u32) -> Self {
        Self {
            seconds: seconds + i64::from(nanos / 1_000_000_000),
            nanos: nanos % 1_000_000_000,
            fraction_digits: 9,
        }
    }

    /// The wall clock's time.
    #[must_use]
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self::from_unix(
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            since.subsec_nanos(),
        )
    }

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

    /// The same instant, written with the same fraction digits: what the fidelity of a
    /// copy is judged by.
    #[must_use]
    pub fn same_text(&self, other: &Self) -> bool {
        self == other && self.fraction_digits == other.fraction_digits
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        (self.seconds, self.nanos) == (other.seconds, other.nanos)
    }
}

impl Eq for Timestamp {}

impl Hash for Timestamp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.seconds, self.nanos).hash(state);
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seconds, self.nanos).cmp(&(other.seconds, other.nanos))
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if let Some(timestamp) = parse_utc(value.as_bytes()) {
            return Ok(timestamp);
        }
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

/// The form Coder writes (`YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`), read without chrono: four of
/// these are in every row. Anything else (another offset, a leap second, lower-case
/// letters) returns `None` and is left to chrono, which also words the errors.
fn parse_utc(text: &[u8]) -> Option<Timestamp> {
    let number = |from: usize, to: usize| -> Option<u32> {
        text.get(from..to)?.iter().try_fold(0_u32, |n, &digit| {
            digit
                .is_ascii_digit()
                .then(|| n * 10 + u32::from(digit - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, byte)| text.get(at) != Some(&byte))
        || text.last() != Some(&b'Z')
    {
        return None;
    }
    let (nanos, fraction_digits) = match text.len() {
        20 => (0, 0),
        len @ 22..=30 if text[19] == b'.' => {
            let digits = u32::try_from(len - 21).ok()?;
            (number(20, len - 1)? * 10_u32.pow(9 - digits), digits)
        }
        _ => return None,
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(Timestamp {
        seconds: days * 86_400 + i64::from(hour * 3600 + minute * 60 + second),
        nanos,
        fraction_digits: u8::try_from(fraction_digits).ok()?,
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    /// UTC with `Z`, and exactly as many fraction digits as the upstream sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.seconds.div_euclid(86_400));
        if !(0..=9999).contains(&year) || self.nanos >= 1_000_000_000 {
            return self.fmt_with_chrono(f);
        }
        let time = self.seconds.rem_euclid(86_400);
        let mut text = *b"0000-00-00T00:00:00.000000000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for slot in text[at..at + width].iter_mut().rev() {
                // 0..=9 after `% 10` of a non-negative value.
                *slot = b'0' + u8::try_from(value % 10).unwrap_or(0);
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, time / 3600);
        put(14, 2, time / 60 % 60);
        put(17, 2, time % 60);
        let digits = usize::from(self.fraction_digits.min(9));
        let end = if digits == 0 {
            19
        } else {
            put(20, 9, i64::from(self.nanos));
            20 + digits
        };
        text[end] = b'Z';
        // ASCII digits and separators only.
        f.write_str(std::str::from_utf8(&text[..=end]).map_err(|_| fmt::Error)?)
    }
}

impl Timestamp {
    /// Years outside 0–9999 and leap seconds, which the fast form does not write.
    fn fmt_with_chrono(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    fn equality_hashing_and_order_are_the_instants_and_same_text_the_writings() {
        use std::collections::HashSet;
        let time = |text: &str| text.parse::<Timestamp>().expect("parses");
        let (short, padded) = (
            time("2026-04-02T09:02:11.5Z"),
            time("2026-04-02T09:02:11.500Z"),
        );
        assert_eq!(short, padded);
        assert_eq!(HashSet::from([short, padded]).len(), 1);
        assert!(!short.same_text(&padded));
        assert!(short.same_text(&time("2026-04-02T11:02:11.5+02:00")));
        assert!(time("2026-04-02T09:02:11.499999999Z") < short);
        assert!(time("0001-01-01T00:00:00Z") < time("1970-01-01T00:00:00Z"));
        assert_eq!(short.cmp(&padded), Ordering::Equal);
    }

    #[test]
    fn coder_never_set_value_is_year_one() {
        let never: Timestamp = "0001-01-01T00:00:00Z".parse().expect("parses");
        assert_eq!(never.seconds(), -62_135_596_800);
        assert_eq!(never.to_string(), "0001-01-01T00:00:00Z");
    }

    /// The chrono path, as every timestamp was read before the fast one.
    fn with_chrono(text: &str) -> Option<(i64, u32)> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| (t.timestamp(), t.timestamp_subsec_nanos()))
    }

    proptest::proptest! {
        /// The fast reader and writer agree with chrono on every instant of years 1 to 9999,
        /// at every precision.
        #[test]
        fn the_fast_form_agrees_with_chrono(
            seconds in -62_135_596_800_i64..253_402_300_800,
            nanos in 0_u32..1_000_000_000,
            digits in 0_u8..=9,
        ) {
            let nanos = nanos - nanos % 10_u32.pow(9 - u32::from(digits));
            let timestamp = Timestamp { seconds, nanos, fraction_digits: digits };
            let mut chrono_text = String::new();
            let mut formatter_text = String::new();
            {
                use std::fmt::Write as _;
                struct Chrono<'a>(&'a Timestamp);
                impl fmt::Display for Chrono<'_> {
                    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        self.0.fmt_with_chrono(f)
                    }
                }
                write!(chrono_text, "{}", Chrono(&timestamp)).expect("formats");
                write!(formatter_text, "{timestamp}").expect("formats");
            }
            proptest::prop_assert_eq!(&formatter_text, &chrono_text);
            let parsed = parse_utc(formatter_text.as_bytes()).expect("the fast reader reads it");
            proptest::prop_assert_eq!(parsed, timestamp);
            proptest::prop_assert_eq!(with_chrono(&formatter_text), Some((seconds, nanos)));
        }

        /// Text near the form is read as chrono reads it, or left to chrono.
        #[test]
        fn near_misses_are_left_to_chrono(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?[Zz]?") {
            if let Some(fast) = parse_utc(text.as_bytes()) {
                proptest::prop_assert_eq!(with_chrono(&text), Some((fast.seconds, fast.nanos)));
            }
        }
    }

    #[test]
    fn rejects_what_is_not_rfc_3339() {
        for bad in [
            "",
            "2026-04-02",
            "2026-04-02 09:02:11",
            "yesterday",
            "2026-13-02T09:02:11Z",
            "2026-02-30T09:02:11Z",
            "2025-02-29T09:02:11Z",
            "2026-04-02T24:00:00Z",
            "2026-04-02T09:02:11.Z",
        ] {
            let err = bad.parse::<Timestamp>().expect_err(bad);
            assert!(
                err.to_string().contains("is not an RFC 3339 timestamp"),
                "{err}"
            );
        }
    }
}
