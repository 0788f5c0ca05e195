//! The demo's audit search language (`q`), written from the reference (coder-audit-api.md
//! §6 and its corrections) as Coder's Go code behaves, with Coder's error texts: nothing here
//! comes from the gateway's own tokenizer, so the two can disagree and a test can see it.
//!
//! The whole query is lowercased; elements are split on spaces (only the space character)
//! outside double quotes; elements without `:` join into one bare-word term that keeps its
//! quotes and searches `resource_type`; a `key:value` element has the quotes around its parts
//! trimmed. Values land in a multi-map, as Go's `url.Values`, and each key is read the way
//! Coder's query-parameter parser reads one: an empty first value means "not given" (and
//! skips the duplicate check), more than one value is an error.

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

use super::catalogue::{ACTIONS, BUILD_REASONS, RESOURCE_TYPES, TASK_BUILD_REASONS};

/// One of Coder's `validations[]` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub detail: String,
}

impl Invalid {
    pub(super) fn new(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }
}

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

/// The keys in the order Coder reads them, which is the order of its errors.
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
///
/// # Errors
/// Coder's validations, in its order: one `q` error when the query cannot be split, else
/// every bad value, then every unknown key.
pub fn parse(
    q: &str,
    resolve_organization: impl Fn(&str) -> Option<Uuid>,
) -> Result<AuditFilter, Vec<Invalid>> {
    let values = Values::split(&q.to_lowercase())?;
    let mut errors = Vec::new();
    let mut filter = AuditFilter::default();
    for key in KEYS {
        let Some(value) = values.one(key, &mut errors) else {
            continue;
        };
        let mut invalid = |detail: String| errors.push(Invalid::new(key, detail));
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
                let (known, slot) = match key {
                    "resource_type" => (
                        RESOURCE_TYPES
                            .iter()
                            .any(|t| t.searchable && t.value == value),
                        &mut filter.resource_type,
                    ),
                    "action" => (ACTIONS.iter().any(|a| a.value == value), &mut filter.action),
                    _ => (
                        BUILD_REASONS.contains(&value) || TASK_BUILD_REASONS.contains(&value),
                        &mut filter.build_reason,
                    ),
                };
                if known {
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
    errors.extend(
        values
            .unknown_keys()
            .into_iter()
            .map(|key| Invalid::new(key, format!("{} is not a valid query param", go_quote(key)))),
    );
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(errors)
    }
}

/// The query's terms as Go's `url.Values`: each key with its values in order.
struct Values(Vec<(String, Vec<String>)>);

impl Values {
    /// Coder's `searchTerms`: elements with a `:` first, in order, then the bare words as
    /// one `resource_type` term. The first element that cannot be split is the only error.
    fn split(query: &str) -> Result<Self, Vec<Invalid>> {
        let elements = fields_outside_quotes(query, ' ');
        let (pairs, words): (Vec<&str>, Vec<&str>) =
            elements.into_iter().partition(|e| e.contains(':'));
        let mut values = Self(Vec::new());
        for element in pairs {
            if element.starts_with(':') || element.ends_with(':') {
                return Err(vec![Invalid::new(
                    "q",
                    format!(
                        "Query element {} cannot start or end with ':'",
                        go_quote(element)
                    ),
                )]);
            }
            match fields_outside_quotes(element, ':').as_slice() {
                [key, value] => values.add(key.trim_matches('"'), value.trim_matches('"')),
                [_] => values.add("resource_type", element),
                _ => {
                    return Err(vec![Invalid::new(
                        "q",
                        format!("Query element {} can only contain 1 ':'", go_quote(element)),
                    )]);
                }
            }
        }
        if !words.is_empty() {
            values.add("resource_type", &words.join(" "));
        }
        Ok(values)
    }

    fn add(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, values)) => values.push(value.to_owned()),
            None => self.0.push((key.to_owned(), vec![value.to_owned()])),
        }
    }

    /// Coder's reading of one parameter: absent or an empty first value is "not given";
    /// more than one value is an error.
    fn one(&self, key: &str, errors: &mut Vec<Invalid>) -> Option<&str> {
        let (_, values) = self.0.iter().find(|(k, _)| k == key)?;
        let first = values.first().filter(|v| !v.is_empty())?;
        if values.len() > 1 {
            errors.push(Invalid::new(
                key,
                format!(
                    "Query param {} provided more than once, found {} times. Only provide 1 instance of this query param.",
                    go_quote(key),
                    values.len()
                ),
            ));
            return None;
        }
        Some(first)
    }

    /// Keys Coder does not read, sorted (Coder reports them in map order).
    fn unknown_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .0
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !KEYS.contains(k))
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// Go's `strings.FieldsFunc` with a separator that does not count inside double quotes:
/// runs of separators split, empty fields are dropped, quotes are kept.
fn fields_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut quoted = false;
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && c == separator {
            if let Some(s) = start.take() {
                fields.push(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        fields.push(&text[s..]);
    }
    fields
}

/// Go's `%q` (`strconv.Quote`): double quotes, backslash escapes, printable text kept.
pub(super) fn go_quote(text: &str) -> String {
    use std::fmt::Write as _;
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if u32::from(c) < 0x80 && c.is_control() => {
                let _ = write!(quoted, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
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
    fn the_whole_query_is_lowercased_and_quotes_group() {
        let f = ok(r#"Resource_Target:"My WS" ACTION:Create username:Bruno"#);
        assert_eq!(f.resource_target.as_deref(), Some("my ws"));
        assert_eq!(f.action.as_deref(), Some("create"));
        assert_eq!(f.username.as_deref(), Some("bruno"));
        assert_eq!(
            ok(r#"resource_target:"gpu:cuda""#)
                .resource_target
                .as_deref(),
            Some("gpu:cuda")
        );
        assert_eq!(ok("username:me").username.as_deref(), Some("me"));
    }

    #[test]
    fn only_the_space_character_separates() {
        assert_eq!(
            errs("action:create\tlogin")[0].1,
            r#"Query param "action" has invalid value: "create\tlogin" is not a valid value"#
        );
    }

    #[test]
    fn bare_words_are_one_resource_type_term_that_keeps_its_quotes() {
        assert_eq!(ok("workspace").resource_type.as_deref(), Some("workspace"));
        assert_eq!(ok("Workspace").resource_type.as_deref(), Some("workspace"));
        assert_eq!(
            errs("foo bar"),
            [(
                "resource_type".into(),
                r#"Query param "resource_type" has invalid value: "foo bar" is not a valid value"#
                    .into()
            )]
        );
        assert_eq!(
            errs(r#""workspace""#)[0].1,
            r#"Query param "resource_type" has invalid value: "\"workspace\"" is not a valid value"#
        );
        assert_eq!(
            errs("workspace resource_type:user")[0].1,
            r#"Query param "resource_type" provided more than once, found 2 times. Only provide 1 instance of this query param."#
        );
    }

    #[test]
    fn an_empty_value_is_no_filter_and_an_empty_first_copy_skips_the_duplicate_check() {
        assert_eq!(ok(r#"action:"""#), AuditFilter::default());
        assert_eq!(ok(r#"action:"" action:create"#), AuditFilter::default());
        assert_eq!(
            errs(r#"action:create action:"""#)[0].1,
            r#"Query param "action" provided more than once, found 2 times. Only provide 1 instance of this query param."#
        );
        assert_eq!(
            errs(r#"foo:"""#),
            [("foo".into(), r#""foo" is not a valid query param"#.into())]
        );
    }

    #[test]
    fn splitting_errors_stop_at_the_first() {
        assert_eq!(
            errs("action: a:b:c"),
            [(
                "q".into(),
                r#"Query element "action:" cannot start or end with ':'"#.into()
            )]
        );
        assert_eq!(
            errs("a:b:c action:fly"),
            [(
                "q".into(),
                r#"Query element "a:b:c" can only contain 1 ':'"#.into()
            )]
        );
        assert_eq!(
            errs(":x")[0].1,
            r#"Query element ":x" cannot start or end with ':'"#
        );
    }

    #[test]
    fn value_errors_come_in_coder_order_then_unknown_keys() {
        let got = errs(
            "zed:1 foo:1 action:fly date_to:2026-02-30 date_from:2006 resource_id:nope request_id:x organization:nowhere build_reason:later",
        );
        let fields: Vec<_> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "request_id",
                "resource_id",
                "date_from",
                "date_to",
                "organization",
                "action",
                "build_reason",
                "foo",
                "zed"
            ]
        );
        assert_eq!(
            got[1].1,
            r#"Query param "resource_id" must be a valid uuid"#
        );
        assert_eq!(
            got[2].1,
            r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "2006" as "2006-01-02": cannot parse "" as "-""#
        );
        assert_eq!(
            got[3].1,
            r#"Query param "date_to" must be a valid date format (2006-01-02): parsing time "2026-02-30": day out of range"#
        );
        assert_eq!(
            got[4].1,
            r#"Query param "organization" has invalid value: organization "nowhere" either does not exist, or you are unauthorized to view it"#
        );
        assert_eq!(
            got[5].1,
            r#"Query param "action" has invalid value: "fly" is not a valid value"#
        );
        assert_eq!(got[7].1, r#""foo" is not a valid query param"#);
    }

    #[test]
    fn a_key_given_twice_is_an_error_naming_the_count() {
        assert_eq!(
            errs("date_from:2026-01-01 date_from:2026-01-02 date_from:2026-01-03"),
            [(
                "date_from".into(),
                r#"Query param "date_from" provided more than once, found 3 times. Only provide 1 instance of this query param."#.into()
            )]
        );
    }

    #[test]
    fn enumerations_are_this_servers_own_lists() {
        assert_eq!(
            ok("resource_type:chat").resource_type.as_deref(),
            Some("chat")
        );
        assert_eq!(
            errs("resource_type:chat_project")[0].1,
            r#"Query param "resource_type" has invalid value: "chat_project" is not a valid value"#
        );
        assert_eq!(
            ok("build_reason:task_resume").build_reason.as_deref(),
            Some("task_resume")
        );
        assert_eq!(
            ok("action:request_password_reset").action.as_deref(),
            Some("request_password_reset")
        );
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
            (
                "2026-04-02t10:00:00z",
                r#"parsing time "2026-04-02t10:00:00z": extra text: "t10:00:00z""#,
            ),
        ] {
            assert_eq!(parse_go_date(input), Err(reason.to_owned()), "{input}");
        }
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\td\u{1}é"), r#""a\"b\\c\td\x01é""#);
    }
}
