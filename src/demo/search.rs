//! Coder's audit search language (`q`), parsed the way Coder parses it, with Coder's error
//! texts (coder-audit-api.md §6).
//!
//! Tokenising is the gateway's own (`crate::query::terms`); this module checks the values
//! the way the server does and collects errors in Coder's fixed key order.

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

use crate::{
    error::Validation,
    model::known,
    query::{go_quote, terms},
};

/// What a query constrains. `organization` is already resolved to an ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub request_id: Option<Uuid>,
    pub resource_id: Option<Uuid>,
    pub resource_target: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    pub organization: Option<Uuid>,
    pub resource_type: Option<String>,
    pub action: Option<String>,
    pub build_reason: Option<String>,
}

/// The keys in the order Coder reports their errors.
const KEYS: [&str; 11] = [
    "request_id",
    "resource_id",
    "resource_target",
    "username",
    "email",
    "date_from",
    "date_to",
    "organization",
    "resource_type",
    "action",
    "build_reason",
];

/// Parses `q`. `resolve_organization` maps an organisation name to its ID as the caller may
/// see it.
pub fn parse(
    q: &str,
    resolve_organization: impl Fn(&str) -> Option<Uuid>,
) -> Result<AuditFilter, Vec<Validation>> {
    let terms = terms(&q.to_lowercase())?;
    let mut errors = Vec::new();
    let mut filter = AuditFilter::default();
    for key in KEYS {
        let Some(value) = single_value(&terms, key, &mut errors) else {
            continue;
        };
        let mut invalid = |detail: String| errors.push(Validation::new(key, detail));
        match key {
            "request_id" | "resource_id" => match Uuid::parse_str(value) {
                Ok(id) if key == "request_id" => filter.request_id = Some(id),
                Ok(id) => filter.resource_id = Some(id),
                Err(_) => invalid(format!(
                    "Query param {} must be a valid uuid",
                    go_quote(key)
                )),
            },
            "resource_target" => filter.resource_target = Some(value.to_owned()),
            "username" => filter.username = Some(value.to_owned()),
            "email" => filter.email = Some(value.to_owned()),
            "date_from" | "date_to" => match parse_go_date(value) {
                Ok(date) if key == "date_from" => filter.date_from = Some(date),
                Ok(date) => filter.date_to = Some(date),
                Err(reason) => invalid(format!(
                    "Query param {} must be a valid date format (2006-01-02): {reason}",
                    go_quote(key)
                )),
            },
            "organization" => match Uuid::parse_str(value)
                .ok()
                .or_else(|| resolve_organization(value))
            {
                Some(id) => filter.organization = Some(id),
                None => invalid(format!(
                    "Query param \"organization\" has invalid value: organization {} either does not exist, or you are unauthorized to view it",
                    go_quote(value)
                )),
            },
            _ => {
                let known = match key {
                    "resource_type" => known::contains(known::RESOURCE_TYPES, value),
                    "action" => known::contains(known::ACTIONS, value),
                    _ => known::contains(known::BUILD_REASONS, value),
                };
                if known {
                    let slot = match key {
                        "resource_type" => &mut filter.resource_type,
                        "action" => &mut filter.action,
                        _ => &mut filter.build_reason,
                    };
                    *slot = Some(value.to_owned());
                } else {
                    invalid(format!(
                        "Query param {} has invalid value: {} is not a valid value",
                        go_quote(key),
                        go_quote(value)
                    ));
                }
            }
        }
    }
    let mut unknown: Vec<&str> = terms
        .iter()
        .map(|(key, _)| key.as_str())
        .filter(|key| !KEYS.contains(key))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    for key in unknown {
        errors.push(Validation::new(
            key,
            format!("{} is not a valid query param", go_quote(key)),
        ));
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(errors)
    }
}

/// The one value of `key`, `None` when absent or empty; a repeated key is an error.
fn single_value<'a>(
    terms: &'a [(String, String)],
    key: &str,
    errors: &mut Vec<Validation>,
) -> Option<&'a str> {
    let mut values = terms.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
    let first = values.next()?;
    let count = 1 + values.count();
    if count > 1 {
        errors.push(Validation::new(
            key,
            format!(
                "Query param {} provided more than once, found {count} times. Only provide 1 instance of this query param.",
                go_quote(key)
            ),
        ));
        return None;
    }
    Some(first.as_str()).filter(|v| !v.is_empty())
}

/// Go's `time.Parse("2006-01-02", value)`, with Go's error texts.
fn parse_go_date(value: &str) -> Result<NaiveDate, String> {
    let prefix = format!("parsing time {} as \"2006-01-02\"", go_quote(value));
    let cannot = |rest: &str, element: &str| {
        format!(
            "{prefix}: cannot parse {} as {}",
            go_quote(rest),
            go_quote(element)
        )
    };
    let digits =
        |s: &str, n: usize| s.len() >= n && s.as_bytes()[..n].iter().all(u8::is_ascii_digit);

    let rest = value;
    if !digits(rest, 4) {
        return Err(cannot(rest, "2006"));
    }
    let year: i32 = rest[..4].parse().map_err(|_| cannot(rest, "2006"))?;
    let rest = rest[4..]
        .strip_prefix('-')
        .ok_or_else(|| cannot(&rest[4..], "-"))?;
    if !digits(rest, 2) {
        return Err(cannot(rest, "01"));
    }
    let month: u32 = rest[..2].parse().map_err(|_| cannot(rest, "01"))?;
    if !(1..=12).contains(&month) {
        return Err(format!(
            "parsing time {}: month out of range",
            go_quote(value)
        ));
    }
    let rest = rest[2..]
        .strip_prefix('-')
        .ok_or_else(|| cannot(&rest[2..], "-"))?;
    if !digits(rest, 2) {
        return Err(cannot(rest, "02"));
    }
    let day: u32 = rest[..2].parse().map_err(|_| cannot(rest, "02"))?;
    let rest = &rest[2..];
    if !rest.is_empty() {
        return Err(format!(
            "parsing time {}: extra text: {}",
            go_quote(value),
            go_quote(rest)
        ));
    }
    NaiveDate::from_ymd_opt(year, month, day)
        .filter(|d| d.day() == day)
        .ok_or_else(|| format!("parsing time {}: day out of range", go_quote(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(name: &str) -> Option<Uuid> {
        (name == "platform").then(|| Uuid::from_u128(7))
    }

    fn ok(q: &str) -> AuditFilter {
        parse(q, org).expect(q)
    }

    fn errs(q: &str) -> Vec<(String, String)> {
        parse(q, org)
            .expect_err(q)
            .into_iter()
            .map(|v| (v.field, v.detail))
            .collect()
    }

    #[test]
    fn empty_query_is_no_filter() {
        assert_eq!(ok(""), AuditFilter::default());
        assert_eq!(ok("   "), AuditFilter::default());
    }

    #[test]
    fn values_are_lowercased_and_quotes_group() {
        let f = ok(r#"Resource_Target:"My WS" ACTION:Create username:Bruno"#);
        assert_eq!(f.resource_target.as_deref(), Some("my ws"));
        assert_eq!(f.action.as_deref(), Some("create"));
        assert_eq!(f.username.as_deref(), Some("bruno"));
    }

    #[test]
    fn bare_words_are_one_resource_type_term() {
        assert_eq!(ok("workspace").resource_type.as_deref(), Some("workspace"));
        assert_eq!(
            errs("foo bar"),
            [(
                "resource_type".into(),
                r#"Query param "resource_type" has invalid value: "foo bar" is not a valid value"#
                    .into()
            )]
        );
        assert_eq!(
            errs("workspace resource_type:user")[0].1,
            r#"Query param "resource_type" provided more than once, found 2 times. Only provide 1 instance of this query param."#
        );
    }

    #[test]
    fn tokenising_errors_stop_at_the_first() {
        assert_eq!(
            errs("action: a:b:c"),
            [(
                "q".into(),
                r#"Query element "action:" cannot start or end with ':'"#.into()
            )]
        );
        assert_eq!(
            errs("a:b:c"),
            [(
                "q".into(),
                r#"Query element "a:b:c" can only contain 1 ':'"#.into()
            )]
        );
    }

    #[test]
    fn value_errors_come_in_coder_order_then_unknown_keys() {
        let got = errs("foo:1 action:fly date_from:2006 resource_id:nope organization:nowhere");
        let fields: Vec<_> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["resource_id", "date_from", "organization", "action", "foo"]
        );
        assert_eq!(
            got[0].1,
            r#"Query param "resource_id" must be a valid uuid"#
        );
        assert_eq!(
            got[1].1,
            r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "2006" as "2006-01-02": cannot parse "" as "-""#
        );
        assert_eq!(
            got[2].1,
            r#"Query param "organization" has invalid value: organization "nowhere" either does not exist, or you are unauthorized to view it"#
        );
        assert_eq!(
            got[3].1,
            r#"Query param "action" has invalid value: "fly" is not a valid value"#
        );
        assert_eq!(got[4].1, r#""foo" is not a valid query param"#);
    }

    #[test]
    fn organization_accepts_a_uuid_or_a_visible_name() {
        assert_eq!(
            ok("organization:platform").organization,
            Some(Uuid::from_u128(7))
        );
        let id = "5a6f0e2c-9d1b-4c6e-8f3a-7b2d1e0c9a88";
        assert_eq!(
            ok(&format!("organization:{id}")).organization,
            Uuid::parse_str(id).ok()
        );
    }

    #[test]
    fn dates_follow_go_time_parse() {
        assert_eq!(
            ok("date_from:2026-02-28 date_to:2026-03-01").date_to,
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        for (input, reason) in [
            (
                "2026-13-01",
                r#"parsing time "2026-13-01": month out of range"#,
            ),
            (
                "2026-02-30",
                r#"parsing time "2026-02-30": day out of range"#,
            ),
            (
                "2026-01-01x",
                r#"parsing time "2026-01-01x": extra text: "x""#,
            ),
            (
                "2026-1-01",
                r#"parsing time "2026-1-01" as "2006-01-02": cannot parse "1-01" as "01""#,
            ),
            (
                "26-01-01",
                r#"parsing time "26-01-01" as "2006-01-02": cannot parse "26-01-01" as "2006""#,
            ),
        ] {
            assert_eq!(parse_go_date(input), Err(reason.to_owned()), "{input}");
        }
    }

    #[test]
    fn empty_values_are_no_filter() {
        assert_eq!(ok(r#"action:"""#), AuditFilter::default());
    }
}
