//! Coder's search language (`q`): how the gateway tokenises it and compiles typed filters
//! into it.
//!
//! Coder lowercases the whole query, splits it on spaces outside double quotes, splits each
//! element once more on `:`, strips the quotes, and joins elements without a key into one
//! `resource_type` term. There is no escape character. A typed filter therefore compiles to
//! `key:value` terms, quoting values that hold a space or a colon, and refuses what the
//! language cannot say: a value with a double quote, or an empty value (Coder reads that as
//! "no filter"). Filter terms go before the caller's raw `q`, so an unbalanced quote in `q`
//! cannot swallow them.

use std::fmt::Write as _;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::error::Validation;

/// Typed constraints on the audit log, all optional, combined with AND.
///
/// Enumerated values are Coder's wire strings (`request_password_reset`), already checked by
/// the protocol layer's enum; identifiers and dates are checked by [`compile`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditLogFilter {
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_target: Option<String>,
    /// `me` means the caller.
    pub username: Option<String>,
    pub email: Option<String>,
    /// `YYYY-MM-DD`, from 00:00:00 UTC.
    pub date_from: Option<String>,
    /// `YYYY-MM-DD`, inclusive to 23:59:59 UTC.
    pub date_to: Option<String>,
    /// An organisation name or UUID.
    pub organization: Option<String>,
    pub build_reason: Option<String>,
    pub request_id: Option<String>,
}

impl AuditLogFilter {
    /// The set constraints as `(q key, value)`, in Coder's key order.
    fn constraints(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("request_id", &self.request_id),
            ("resource_id", &self.resource_id),
            ("resource_target", &self.resource_target),
            ("username", &self.username),
            ("email", &self.email),
            ("date_from", &self.date_from),
            ("date_to", &self.date_to),
            ("organization", &self.organization),
            ("resource_type", &self.resource_type),
            ("action", &self.action),
            ("build_reason", &self.build_reason),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_deref().map(|v| (key, v)))
    }
}

/// [`compile`], refusing first any `q` or filter string longer than `max_len` bytes, so a
/// hostile input is measured, not parsed; and the compiled `q` may be at most four times
/// that, which keeps every request to Coder a URL HTTP stacks accept.
pub fn compile_bounded(
    q: &str,
    filter: &AuditLogFilter,
    max_len: usize,
) -> Result<String, Vec<Validation>> {
    let too_long = |field: &str, len: usize| {
        Validation::new(
            field,
            format!("is {len} bytes long; at most {max_len} are accepted (--max-query-length)"),
        )
    };
    let mut errors: Vec<Validation> = filter
        .constraints()
        .filter(|(_, value)| value.len() > max_len)
        .map(|(key, value)| too_long(&format!("filter.{key}"), value.len()))
        .collect();
    if q.len() > max_len {
        errors.insert(0, too_long("q", q.len()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let compiled = compile(q, filter)?;
    if compiled.len() > max_len.saturating_mul(4) {
        return Err(vec![Validation::new(
            "filter",
            format!(
                "q and filter together make a {}-byte search query; at most {} are accepted (four times --max-query-length)",
                compiled.len(),
                max_len.saturating_mul(4)
            ),
        )]);
    }
    Ok(compiled)
}

/// Combines a caller's raw `q` with a typed filter into the `q` Coder will parse, or says
/// which constraints cannot be expressed. Validation names fields `filter.<q key>`.
pub fn compile(q: &str, filter: &AuditLogFilter) -> Result<String, Vec<Validation>> {
    let mut errors = Vec::new();
    let raw_keys: Vec<String> = terms(&q.to_lowercase())
        .map(|terms| terms.into_iter().map(|(key, _)| key).collect())
        .unwrap_or_default();
    let mut compiled = String::new();
    for (key, value) in filter.constraints() {
        let field = format!("filter.{key}");
        let problem = if value.is_empty() {
            Some("must not be empty (Coder reads an empty value as no filter)".to_owned())
        } else if value.contains('"') {
            Some(
                "cannot contain a double quote: Coder's search language cannot express it"
                    .to_owned(),
            )
        } else if matches!(key, "request_id" | "resource_id") && Uuid::try_parse(value).is_err() {
            Some(format!("must be a UUID, got {value:?}"))
        } else if matches!(key, "date_from" | "date_to") {
            parse_date(value).err()
        } else if raw_keys.iter().any(|k| k == key) {
            Some(format!(
                "is also set in q (as `{key}:`); set it in one place"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            errors.push(Validation::new(&field, problem));
            continue;
        }
        if !compiled.is_empty() {
            compiled.push(' ');
        }
        if value.contains([' ', ':']) {
            let _ = write!(compiled, "{key}:\"{value}\"");
        } else {
            let _ = write!(compiled, "{key}:{value}");
        }
    }
    if let (Some(Ok(from)), Some(Ok(to))) = (
        filter.date_from.as_deref().map(parse_date),
        filter.date_to.as_deref().map(parse_date),
    ) && from > to
    {
        errors.push(Validation::new(
            "filter.date_from",
            format!("{from} is after date_to {to}"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let q = q.trim();
    if !q.is_empty() {
        if !compiled.is_empty() {
            compiled.push(' ');
        }
        compiled.push_str(q);
    }
    Ok(compiled)
}

/// A `YYYY-MM-DD` calendar date, the only date form Coder accepts.
fn parse_date(value: &str) -> Result<NaiveDate, String> {
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(format!("must be a date as YYYY-MM-DD, got {value:?}"));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("{value} is not a calendar date"))
}

/// Splits a lowercased query into `(key, value)` terms.
pub(crate) fn terms(query: &str) -> Result<Vec<(String, String)>, Vec<Validation>> {
    let tokens = split_outside_quotes(query, ' ');
    let (fields, free): (Vec<&str>, Vec<&str>) = tokens.into_iter().partition(|t| t.contains(':'));
    let free_text = free.join(" ");
    let mut terms = Vec::new();
    for element in fields
        .into_iter()
        .chain(Some(free_text.as_str()).filter(|t| !t.is_empty()))
    {
        if element.starts_with(':') || element.ends_with(':') {
            return Err(vec![Validation::new(
                "q",
                format!(
                    "Query element {} cannot start or end with ':'",
                    go_quote(element)
                ),
            )]);
        }
        let parts: Vec<&str> = split_outside_quotes(element, ':')
            .into_iter()
            .map(|p| p.trim_matches('"'))
            .collect();
        match parts.as_slice() {
            [value] => terms.push(("resource_type".to_owned(), (*value).to_owned())),
            [key, value] => terms.push(((*key).to_owned(), (*value).to_owned())),
            _ => {
                return Err(vec![Validation::new(
                    "q",
                    format!("Query element {} can only contain 1 ':'", go_quote(element)),
                )]);
            }
        }
    }
    Ok(terms)
}

/// A compiled `q` with its `date_from:`/`date_to:` terms taken out, so a walk can put its own
/// window in front: the caller's bounds, as Coder reads them, and the rest of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateSplit {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The query's other elements, verbatim and in order.
    pub rest: String,
}

/// Splits the date terms out of `q`, reading them as Coder does: keys lowercased, a
/// `key:""` is no bound (and Coder skips its duplicate check when the first copy is
/// empty). `None` when Coder would refuse the query (a date key given twice, a bad date, an
/// element it cannot split): then nothing is rewritten and Coder says why.
#[must_use]
pub(crate) fn split_dates(q: &str) -> Option<DateSplit> {
    let mut from: Vec<String> = Vec::new();
    let mut to: Vec<String> = Vec::new();
    let mut rest: Vec<&str> = Vec::new();
    for element in split_outside_quotes(q, ' ') {
        if !element.contains(':') {
            rest.push(element);
            continue;
        }
        if element.starts_with(':') || element.ends_with(':') {
            return None;
        }
        let parts = split_outside_quotes(element, ':');
        let [key, value] = parts.as_slice() else {
            if parts.len() > 2 {
                return None;
            }
            rest.push(element);
            continue;
        };
        let value = value.trim_matches('"').to_lowercase();
        match key.trim_matches('"').to_lowercase().as_str() {
            "date_from" => from.push(value),
            "date_to" => to.push(value),
            _ => rest.push(element),
        }
    }
    let bound = |values: &[String]| -> Option<Option<NaiveDate>> {
        match values {
            [] => Some(None),
            [first, ..] if first.is_empty() => Some(None),
            [one] => parse_date(one).ok().map(Some),
            _ => None,
        }
    };
    Some(DateSplit {
        from: bound(&from)?,
        to: bound(&to)?,
        rest: rest.join(" "),
    })
}

/// Go's `strings.FieldsFunc` splitting on `delimiter` outside double quotes: runs of the
/// delimiter separate fields and empty fields are dropped.
fn split_outside_quotes(text: &str, delimiter: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && c == delimiter {
            if let Some(s) = start.take() {
                parts.push(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        parts.push(&text[s..]);
    }
    parts
}

/// Go's `%q`: a double-quoted string with Go's escapes.
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(quoted, "\\x{:02x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> AuditLogFilter {
        AuditLogFilter::default()
    }

    fn fields(errors: &[Validation]) -> Vec<&str> {
        errors.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn go_quote_escapes_like_go() {
        assert_eq!(go_quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(go_quote("tab\there\u{1}"), r#""tab\there\x01""#);
    }

    #[test]
    fn date_terms_split_out_as_coder_reads_them() {
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        assert_eq!(
            split_dates(
                r#"Date_From:2026-01-02 action:login resource_target:"a b:c" DATE_TO:"2026-03-04" workspace"#
            ),
            Some(DateSplit {
                from: day("2026-01-02"),
                to: day("2026-03-04"),
                rest: r#"action:login resource_target:"a b:c" workspace"#.to_owned(),
            })
        );
        assert_eq!(
            split_dates(r#"date_from:"" date_from:2026-01-02 username:me"#),
            Some(DateSplit {
                from: None,
                to: None,
                rest: "username:me".to_owned()
            })
        );
        assert_eq!(split_dates("date_to:2026-01-02 date_to:2026-01-03"), None);
        assert_eq!(split_dates("date_to:2026-1-2"), None);
        assert_eq!(split_dates("a:b:c"), None);
        assert_eq!(
            split_dates(r#"resource_target:"unbalanced date_from:2026-01-02"#).map(|s| s.from),
            Some(None),
            "a quote left open swallows the rest, as in Coder"
        );
    }

    #[test]
    fn an_empty_filter_leaves_q_alone() {
        assert_eq!(
            compile("  action:create  ", &filter()),
            Ok("action:create".to_owned())
        );
        assert_eq!(compile("", &filter()), Ok(String::new()));
    }

    #[test]
    fn values_with_spaces_or_colons_are_quoted_and_filter_terms_come_first() {
        let f = AuditLogFilter {
            action: Some("create".into()),
            resource_target: Some("my ws".into()),
            email: Some("a+b@x.io".into()),
            organization: Some("team:ops".into()),
            ..filter()
        };
        assert_eq!(
            compile("username:me", &f),
            Ok(r#"resource_target:"my ws" email:a+b@x.io organization:"team:ops" action:create username:me"#.to_owned())
        );
    }

    #[test]
    fn what_the_language_cannot_express_is_refused() {
        let f = AuditLogFilter {
            resource_target: Some(r#"say "hi""#.into()),
            username: Some(String::new()),
            resource_id: Some("not-a-uuid".into()),
            date_from: Some("2026-02-30".into()),
            date_to: Some("2026-3-1".into()),
            ..filter()
        };
        let errors = compile("", &f).expect_err("refused");
        assert_eq!(
            fields(&errors),
            [
                "filter.resource_id",
                "filter.resource_target",
                "filter.username",
                "filter.date_from",
                "filter.date_to"
            ]
        );
        assert!(errors[3].detail.contains("not a calendar date"));
        assert!(errors[4].detail.contains("YYYY-MM-DD"));
    }

    #[test]
    fn date_from_after_date_to_is_refused() {
        let f = AuditLogFilter {
            date_from: Some("2026-04-02".into()),
            date_to: Some("2026-04-01".into()),
            ..filter()
        };
        let errors = compile("", &f).expect_err("refused");
        assert_eq!(fields(&errors), ["filter.date_from"]);
        let same_day = AuditLogFilter {
            date_to: Some("2026-04-02".into()),
            ..f
        };
        assert!(compile("", &same_day).is_ok());
    }

    #[test]
    fn a_key_set_in_q_and_in_the_filter_is_refused() {
        let f = AuditLogFilter {
            action: Some("create".into()),
            resource_type: Some("workspace".into()),
            ..filter()
        };
        let errors = compile("ACTION:delete template", &f).expect_err("refused");
        assert_eq!(fields(&errors), ["filter.resource_type", "filter.action"]);
        // A q Coder will reject anyway is passed on for Coder to explain.
        assert!(compile("a:b:c", &f).is_ok());
    }
}
