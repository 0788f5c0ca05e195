//! Differential property tests: generated operations (aliases, named and inline fragments,
//! `@skip`/`@include` with literal and variable arguments, repeated fields, `__typename`
//! everywhere, several root fields, one of them failing) run through async-graphql's
//! executor and through the compiled plan against the same demo Coder must give equal
//! responses, and the plan's keys must follow the selection order at every level.
//!
//! `PROPTEST_CASES` sets the number of operations (256 by default).

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use proptest::prelude::*;
use serde_json::Value;

use super::{Key, Plans, document_hash};
use crate::{
    audit::{AuditLogs, Limits, StreamOptions},
    auth::{SessionToken, TokenError},
    call::RequestInfo,
    demo::{self, DEMO_TOKEN, DemoConfig},
    graphql::{Caller, GatewaySchema, policy::DocumentPolicy, schema_builder},
    upstream::{ClientConfig, CoderClient},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Page,
    Edge,
    PageInfo,
    Log,
    Diff,
    Org,
    User,
    Role,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Self::Page => "AuditLogPage",
            Self::Edge => "AuditLogEdge",
            Self::PageInfo => "PageInfo",
            Self::Log => "AuditLog",
            Self::Diff => "AuditDiffEntry",
            Self::Org => "MinimalOrganization",
            Self::User => "User",
            Self::Role => "SlimRole",
        }
    }

    /// The type's fields, as the schema has them, and the type each selects into.
    fn fields(self) -> &'static [(&'static str, Option<Ty>)] {
        match self {
            Self::Page => &[
                ("auditLogs", Some(Self::Log)),
                ("count", None),
                ("countCap", None),
                ("edges", Some(Self::Edge)),
                ("nodes", Some(Self::Log)),
                ("pageInfo", Some(Self::PageInfo)),
                ("__typename", None),
            ],
            Self::Edge => &[
                ("cursor", None),
                ("node", Some(Self::Log)),
                ("__typename", None),
            ],
            Self::PageInfo => &[
                ("endCursor", None),
                ("startCursor", None),
                ("hasNextPage", None),
                ("hasPreviousPage", None),
                ("__typename", None),
            ],
            Self::Log => &[
                ("id", None),
                ("requestId", None),
                ("time", None),
                ("ip", None),
                ("userAgent", None),
                ("resourceType", None),
                ("resourceId", None),
                ("resourceTarget", None),
                ("resourceIcon", None),
                ("action", None),
                ("diff", Some(Self::Diff)),
                ("statusCode", None),
                ("additionalFields", None),
                ("description", None),
                ("resourceLink", None),
                ("isDeleted", None),
                ("organizationId", None),
                ("organization", Some(Self::Org)),
                ("user", Some(Self::User)),
                ("extraFields", None),
                ("__typename", None),
            ],
            Self::Diff => &[
                ("field", None),
                ("old", None),
                ("new", None),
                ("secret", None),
                ("__typename", None),
            ],
            Self::Org => &[
                ("id", None),
                ("name", None),
                ("displayName", None),
                ("icon", None),
                ("__typename", None),
            ],
            Self::User => &[
                ("id", None),
                ("username", None),
                ("name", None),
                ("email", None),
                ("avatarUrl", None),
                ("createdAt", None),
                ("updatedAt", None),
                ("lastSeenAt", None),
                ("status", None),
                ("loginType", None),
                ("themePreference", None),
                ("organizationIds", None),
                ("roles", Some(Self::Role)),
                ("hasAiSeat", None),
                ("isServiceAccount", None),
                ("extraFields", None),
                ("__typename", None),
            ],
            Self::Role => &[
                ("name", None),
                ("displayName", None),
                ("organizationId", None),
                ("__typename", None),
            ],
        }
    }
}

/// A `@skip`/`@include` argument: a literal or one of the boolean variables.
#[derive(Debug, Clone)]
enum Flag {
    Literal(bool),
    Variable(usize),
}

/// Directives on a selection, each at most once: `(true, _)` is `@skip`, `(false, _)` is
/// `@include`.
type Directives = Vec<(bool, Flag)>;

#[derive(Debug, Clone)]
enum Sel {
    Field {
        name: &'static str,
        aliased: bool,
        directives: Directives,
        children: Vec<Sel>,
    },
    Inline {
        typed: bool,
        directives: Directives,
        children: Vec<Sel>,
    },
    Spread {
        directives: Directives,
        children: Vec<Sel>,
    },
}

#[derive(Debug, Clone)]
enum Limit {
    Literal(i32),
    Variable,
}

/// The `q` argument: left out, the `$q` variable, or a literal.
#[derive(Debug, Clone)]
enum Q {
    Omitted,
    Variable,
    Literal(&'static str),
}

#[derive(Debug, Clone)]
enum Root {
    Typename {
        aliased: bool,
        directives: Directives,
    },
    Logs {
        limit: Limit,
        offset: Option<i32>,
        q: Q,
        filter: bool,
        after: After,
        directives: Directives,
        children: Vec<Sel>,
    },
}

/// The `after` argument: left out, not a cursor, or a cursor of the field's own query at a
/// row of the demo's trail (by its index, newest first).
#[derive(Debug, Clone)]
enum After {
    Omitted,
    Garbage,
    At(usize),
}

/// A boolean variable: declared `Boolean!` with a value, or `Boolean = default` with a value
/// or none.
#[derive(Debug, Clone, Copy)]
struct BoolVariable {
    non_null: bool,
    default: bool,
    given: Option<bool>,
}

impl BoolVariable {
    fn value(self) -> bool {
        self.given.unwrap_or(self.default)
    }
}

#[derive(Debug, Clone)]
struct Case {
    named: bool,
    roots: Vec<Root>,
    flags: [BoolVariable; 3],
    limit: i32,
    q: &'static str,
    token: bool,
}

fn directives() -> impl Strategy<Value = Directives> {
    let flag = prop_oneof![
        any::<bool>().prop_map(Flag::Literal),
        (0..3_usize).prop_map(Flag::Variable)
    ];
    prop_oneof![
        3 => Just(Vec::new()),
        2 => (prop::option::of(flag.clone()), prop::option::of(flag), any::<bool>()).prop_map(
            |(skip, include, skip_first)| {
                let mut directives: Directives = skip.map(|f| (true, f)).into_iter().collect();
                directives.extend(include.map(|f| (false, f)));
                if !skip_first {
                    directives.reverse();
                }
                directives
            }
        ),
    ]
}

/// async-graphql's validation does not see variables used on `__typename` and refuses the
/// document ("Variable is not used"): its directives take literals only.
fn literal_flags(directives: &mut Directives) {
    for (_, flag) in directives {
        if let Flag::Variable(i) = flag {
            *flag = Flag::Literal(*i == 0);
        }
    }
}

fn selections(ty: Ty, depth: u32) -> BoxedStrategy<Vec<Sel>> {
    prop::collection::vec(selection(ty, depth), 1..4).boxed()
}

fn selection(ty: Ty, depth: u32) -> BoxedStrategy<Sel> {
    let field = prop::sample::select(ty.fields()).prop_flat_map(move |(name, child)| {
        let children = match child {
            Some(child) if depth > 0 => selections(child, depth - 1),
            // Out of depth: an object field gets the one field every type has.
            Some(_) => Just(vec![Sel::Field {
                name: "__typename",
                aliased: false,
                directives: Vec::new(),
                children: Vec::new(),
            }])
            .boxed(),
            None => Just(Vec::new()).boxed(),
        };
        (any::<bool>(), directives(), children).prop_map(
            move |(aliased, mut directives, children)| {
                if name == "__typename" {
                    literal_flags(&mut directives);
                }
                Sel::Field {
                    name,
                    aliased,
                    directives,
                    children,
                }
            },
        )
    });
    if depth == 0 {
        return field.boxed();
    }
    let inline = (any::<bool>(), directives(), selections(ty, depth - 1)).prop_map(
        |(typed, directives, children)| Sel::Inline {
            typed,
            directives,
            children,
        },
    );
    let spread =
        (directives(), selections(ty, depth - 1)).prop_map(|(directives, children)| Sel::Spread {
            directives,
            children,
        });
    prop_oneof![6 => field, 1 => inline, 1 => spread].boxed()
}

fn root() -> impl Strategy<Value = Root> {
    let limit = prop_oneof![
        6 => (1..6_i32).prop_map(Limit::Literal),
        1 => Just(Limit::Literal(-1)),
        2 => Just(Limit::Variable),
    ];
    let q = prop_oneof![
        2 => Just(Q::Omitted),
        1 => Just(Q::Variable),
        2 => prop::sample::select(&["action:write", "resource_type:workspace", "username:nobody", "bogus:key"][..])
            .prop_map(Q::Literal),
    ];
    let after = prop_oneof![
        4 => Just(After::Omitted),
        1 => Just(After::Garbage),
        3 => (0..330_usize).prop_map(After::At),
    ];
    let logs = (
        limit,
        prop::option::of(0..330_i32),
        q,
        prop::bool::weighted(0.2),
        after,
        directives(),
        selections(Ty::Page, 3),
    )
        .prop_map(
            |(limit, offset, q, filter, after, directives, children)| Root::Logs {
                limit,
                offset,
                q,
                filter,
                after,
                directives,
                children,
            },
        );
    let typename = (any::<bool>(), directives()).prop_map(|(aliased, mut directives)| {
        literal_flags(&mut directives);
        Root::Typename {
            aliased,
            directives,
        }
    });
    prop_oneof![4 => logs, 1 => typename]
}

fn case() -> impl Strategy<Value = Case> {
    let flag = (any::<bool>(), any::<bool>(), any::<Option<bool>>()).prop_map(
        |(non_null, default, given)| BoolVariable {
            non_null,
            default,
            // A non-null variable always has a value.
            given: if non_null {
                Some(given.unwrap_or(default))
            } else {
                given
            },
        },
    );
    (
        any::<bool>(),
        prop::collection::vec(root(), 1..4),
        [flag.clone(), flag.clone(), flag],
        1..6_i32,
        prop::sample::select(&["", "action:create", "resource_type:template"][..]),
        prop::bool::weighted(0.95),
    )
        .prop_map(|(named, roots, flags, limit, q, token)| Case {
            named,
            roots,
            flags,
            limit,
            q,
            token,
        })
}

/// Prints a case as a GraphQL document, declaring exactly the variables it uses.
struct Printer {
    used: BTreeSet<String>,
    fragments: Vec<String>,
}

impl Printer {
    fn directives(&mut self, directives: &Directives, out: &mut String) {
        for (skip, flag) in directives {
            let name = if *skip { "skip" } else { "include" };
            match flag {
                Flag::Literal(b) => {
                    let _ = write!(out, " @{name}(if: {b})");
                }
                Flag::Variable(i) => {
                    self.used.insert(format!("b{i}"));
                    let _ = write!(out, " @{name}(if: $b{i})");
                }
            }
        }
    }

    fn selections(&mut self, ty: Ty, selections: &[Sel], out: &mut String) {
        out.push_str(" {");
        for selection in selections {
            out.push(' ');
            match selection {
                Sel::Field {
                    name,
                    aliased,
                    directives,
                    children,
                } => {
                    if *aliased {
                        let _ = write!(out, "x_{name}: ");
                    }
                    out.push_str(name);
                    self.directives(directives, out);
                    let child = ty
                        .fields()
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|f| f.1);
                    if let Some(child) = child {
                        self.selections(child, children, out);
                    }
                }
                Sel::Inline {
                    typed,
                    directives,
                    children,
                } => {
                    out.push_str("...");
                    if *typed {
                        let _ = write!(out, " on {}", ty.name());
                    }
                    self.directives(directives, out);
                    self.selections(ty, children, out);
                }
                Sel::Spread {
                    directives,
                    children,
                } => {
                    let index = self.fragments.len();
                    let name = format!("F{index}");
                    self.fragments.push(String::new());
                    let mut body = format!("fragment {name} on {}", ty.name());
                    self.selections(ty, children, &mut body);
                    self.fragments[index] = body;
                    let _ = write!(out, "...{name}");
                    self.directives(directives, out);
                }
            }
        }
        out.push_str(" }");
    }

    fn document(case: &Case) -> String {
        let mut printer = Self {
            used: BTreeSet::new(),
            fragments: Vec::new(),
        };
        let mut body = String::from(" {");
        for (i, root) in case.roots.iter().enumerate() {
            body.push(' ');
            match root {
                Root::Typename {
                    aliased,
                    directives,
                } => {
                    if *aliased {
                        body.push_str("kind: ");
                    }
                    body.push_str("__typename");
                    printer.directives(directives, &mut body);
                }
                Root::Logs {
                    limit,
                    offset,
                    q,
                    filter,
                    after,
                    directives,
                    children,
                } => {
                    let _ = write!(body, "p{i}: auditLogs(limit: ");
                    match limit {
                        Limit::Literal(n) => {
                            let _ = write!(body, "{n}");
                        }
                        Limit::Variable => {
                            printer.used.insert("limit".to_owned());
                            body.push_str("$limit");
                        }
                    }
                    if let Some(offset) = offset {
                        let _ = write!(body, ", offset: {offset}");
                    }
                    match q {
                        Q::Omitted => {}
                        Q::Variable => {
                            printer.used.insert("q".to_owned());
                            body.push_str(", q: $q");
                        }
                        Q::Literal(q) => {
                            let _ = write!(body, ", q: {q:?}");
                        }
                    }
                    if *filter {
                        body.push_str(", filter: {resourceType: WORKSPACE}");
                    }
                    body.push_str(&after_argument(case, q, *filter, after));
                    body.push(')');
                    printer.directives(directives, &mut body);
                    printer.selections(Ty::Page, children, &mut body);
                }
            }
        }
        body.push_str(" }");
        let mut declarations = Vec::new();
        for name in &printer.used {
            declarations.push(match name.as_str() {
                "limit" => "$limit: Int!".to_owned(),
                "q" => "$q: String".to_owned(),
                flag => {
                    let index: usize = flag[1..].parse().expect("bN");
                    let variable = case.flags[index];
                    if variable.non_null {
                        format!("${flag}: Boolean!")
                    } else {
                        format!("${flag}: Boolean = {}", variable.default)
                    }
                }
            });
        }
        let mut document = String::from("query");
        if case.named {
            document.push_str(" Differential");
        }
        if !declarations.is_empty() {
            let _ = write!(document, "({})", declarations.join(", "));
        }
        document.push_str(&body);
        for fragment in printer.fragments {
            document.push('\n');
            document.push_str(&fragment);
        }
        document
    }
}

/// The `after` argument as printed, with its leading comma; empty when left out.
fn after_argument(case: &Case, q: &Q, filter: bool, after: &After) -> String {
    let q = match q {
        Q::Omitted => "",
        Q::Variable => case.q,
        Q::Literal(q) => q,
    };
    match after {
        After::Omitted => String::new(),
        After::Garbage => ", after: \"garbage\"".to_owned(),
        After::At(index) => format!(", after: {:?}", page_token(q, filter, *index)),
    }
}

/// A page token of the query `q` (with the generated filter when `filter`) right after the
/// demo trail's row `index` (newest first), or past the trail's end: what a first page of
/// that query would have handed out, made here from the demo's own rows.
fn page_token(q: &str, filter: bool, index: usize) -> String {
    let filter = crate::query::AuditLogFilter {
        resource_type: filter.then(|| "workspace".to_owned()),
        ..Default::default()
    };
    let compiled = harness().audit.compile(q, &filter).unwrap_or_default();
    let rows = trail_rows();
    let mut next = crate::cursor::Position::default();
    let at = rows.get(index).or(rows.last()).expect("a trail");
    next.advance_to(at.0, &at.1, false);
    crate::cursor::encode_page(
        &compiled,
        &crate::cursor::PageToken {
            next,
            above: None,
            count: 320,
            count_cap: Some(2000),
            density: 70.0,
        },
    )
}

/// The demo trail's rows as (instant, id), newest first.
fn trail_rows() -> &'static [(crate::cursor::Instant, String)] {
    static ROWS: OnceLock<Vec<(crate::cursor::Instant, String)>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let harness = harness();
        harness.runtime.block_on(async {
            let body = demo::audit_page_body(DemoConfig::default(), 1000).await;
            let page = crate::model::AuditPage::from_json(&body).expect("the demo's page");
            (page.audit_logs.iter())
                .map(|log| (crate::cursor::instant(&log.time), log.id.to_string()))
                .collect()
        })
    })
}

fn variables(case: &Case) -> Value {
    let mut variables = serde_json::Map::new();
    for (i, flag) in case.flags.iter().enumerate() {
        if let Some(given) = flag.given {
            variables.insert(format!("b{i}"), Value::Bool(given));
        }
    }
    variables.insert("limit".to_owned(), case.limit.into());
    variables.insert("q".to_owned(), case.q.into());
    Value::Object(variables)
}

/// Whether a selection with `directives` is in, for the case's variable values.
fn included(case: &Case, directives: &Directives) -> bool {
    directives.iter().all(|(skip, flag)| {
        let value = match flag {
            Flag::Literal(b) => *b,
            Flag::Variable(i) => case.flags[*i].value(),
        };
        value != *skip
    })
}

/// `CollectFields` over the generated selections, written independently of the planner's:
/// the response keys in order, each with the selections merged under it.
fn collect<'s>(case: &Case, selections: &[&'s Sel], keys: &mut Vec<(String, Vec<&'s Sel>)>) {
    for selection in selections {
        match selection {
            Sel::Field {
                name,
                aliased,
                directives,
                children,
            } => {
                if !included(case, directives) {
                    continue;
                }
                let key = if *aliased {
                    format!("x_{name}")
                } else {
                    (*name).to_owned()
                };
                let children = children.iter().collect::<Vec<_>>();
                match keys.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, merged)) => merged.extend(children),
                    None => keys.push((key, children)),
                }
            }
            Sel::Inline {
                directives,
                children,
                ..
            }
            | Sel::Spread {
                directives,
                children,
            } => {
                if included(case, directives) {
                    collect(case, &children.iter().collect::<Vec<_>>(), keys);
                }
            }
        }
    }
}

/// Checks that every object in `value` has exactly the keys `selections` collect, in order.
fn check_order(case: &Case, value: &Value, selections: &[&Sel], path: &str) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_order(case, item, selections, &format!("{path}[{i}]"));
            }
        }
        Value::Object(object) => {
            let mut keys = Vec::new();
            collect(case, selections, &mut keys);
            let expected: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            let actual: Vec<&str> = object.keys().map(String::as_str).collect();
            assert_eq!(actual, expected, "key order at {path}");
            // Leaves hold JSON values (`additionalFields`, `old`, `new`) of their own order.
            for (key, children) in keys.iter().filter(|(_, children)| !children.is_empty()) {
                check_order(
                    case,
                    &object[key.as_str()],
                    children,
                    &format!("{path}.{key}"),
                );
            }
        }
        _ => {}
    }
}

/// The root's expected keys, in order, without the fields that failed.
fn root_keys(case: &Case, data: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    for (i, root) in case.roots.iter().enumerate() {
        let (key, directives) = match root {
            Root::Typename {
                aliased,
                directives,
            } => (
                if *aliased { "kind" } else { "__typename" }.to_owned(),
                directives,
            ),
            Root::Logs { directives, .. } => (format!("p{i}"), directives),
        };
        if included(case, directives) && data.get(&key).is_some() && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The demo as a Coder newer than the gateway answers: rows and users carry keys the row
/// schema does not name, of every JSON kind, and some users say they are service accounts.
async fn newer_coder(demo: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
    use axum::{extract::Request, http::header, response::IntoResponse};

    fn newer(row: &mut Value, i: usize) {
        let Some(row) = row.as_object_mut() else {
            return;
        };
        if !i.is_multiple_of(3) {
            row.insert(
                "on_behalf_of".into(),
                serde_json::json!({"id": "x", "n": [1, 2.5, null]}),
            );
            row.insert("newer_null".into(), Value::Null);
            row.insert("newer_text".into(), Value::from("caf\u{e9} \"q\""));
        }
        if let Some(user) = row.get_mut("user").and_then(Value::as_object_mut) {
            if i.is_multiple_of(2) {
                user.insert(
                    "is_service_account".into(),
                    Value::Bool(i.is_multiple_of(4)),
                );
                user.insert("newer_flag".into(), Value::Bool(true));
                user.insert("newer_number".into(), Value::from(-7));
                user.insert("newer_list".into(), serde_json::json!(["a", {"b": false}]));
            } else {
                user.remove("has_ai_seat");
            }
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: Request| {
        let http = http.clone();
        async move {
            let url = format!("http://{demo}{}", request.uri());
            let mut upstream = http.get(url);
            for (name, value) in request.headers() {
                if name != header::HOST {
                    upstream = upstream.header(name, value);
                }
            }
            let Ok(answer) = upstream.send().await else {
                return axum::http::StatusCode::BAD_GATEWAY.into_response();
            };
            let status = answer.status();
            let body = answer.bytes().await.unwrap_or_default();
            let mut page: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(rows) = page.get_mut("audit_logs").and_then(Value::as_array_mut) {
                for (i, row) in rows.iter_mut().enumerate() {
                    newer(row, i);
                }
            }
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                page.to_string(),
            )
                .into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    audit: AuditLogs,
    schema: GatewaySchema,
    plans: Plans,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let addr = runtime
            .block_on(async { newer_coder(demo::spawn(DemoConfig::default()).await?).await })
            .expect("the demo Coder starts");
        let url = url::Url::parse(&format!("http://{addr}")).expect("URL");
        let client = CoderClient::new(
            &url,
            ClientConfig {
                timeout: Duration::from_secs(10),
                retries: 0,
                max_body: 1 << 24,
                ca_pem: None,
            },
        )
        .expect("client");
        let audit = AuditLogs::new(client, Limits::default(), StreamOptions::default());
        let schema = schema_builder()
            .data(audit.clone())
            .extension(DocumentPolicy {
                max_depth: 12,
                introspection: true,
            })
            .limit_complexity(500)
            .finish();
        Harness {
            runtime,
            audit,
            schema,
            plans: Plans::new(64),
        }
    })
}

fn caller(token: bool) -> Caller {
    Caller {
        token: if token {
            SessionToken::from_credentials(Some(DEMO_TOKEN.as_bytes()), None)
        } else {
            Err(TokenError::Missing)
        },
        info: RequestInfo::generate(),
        coder_request_id: Arc::new(Mutex::new(None)),
    }
}

/// Errors in a fixed order: async-graphql reports them in the order its fields finish.
fn sorted_errors(response: &Value) -> Vec<Value> {
    let mut errors = response
        .get("errors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    errors.sort_by_key(|e| e["path"].to_string());
    errors
}

fn run(case: &Case) {
    let harness = harness();
    let document = Printer::document(case);
    let variables = async_graphql::Variables::from_json(variables(case));
    let operation_name = case.named.then(|| "Differential".to_owned());
    let (reference, planned) = harness.runtime.block_on(async {
        let mut request =
            async_graphql::Request::new(document.clone()).variables(variables.clone());
        if let Some(name) = &operation_name {
            request = request.operation_name(name.clone());
        }
        let mut reference = harness
            .schema
            .execute(request.data(caller(case.token)))
            .await;
        crate::graphql::http::null_failed_root(&mut reference);
        assert!(
            reference.errors.iter().all(|e| !e.path.is_empty()),
            "the generated document is valid: {document}\n{:?}",
            reference.errors
        );
        let key = Key {
            hash: document_hash(&document),
            operation_name: operation_name.as_deref().map(Box::from),
        };
        harness
            .plans
            .insert(key.clone(), Arc::from(document.as_str()));
        let operation = harness.plans.get(&key).expect("cached");
        let plan = operation
            .plan
            .as_ref()
            .unwrap_or_else(|| panic!("the planner covers {document}"));
        let planned = plan
            .execute(&harness.audit, &caller(case.token), &variables)
            .await;
        (reference, planned)
    });
    let Some(planned) = planned else {
        // The one request the plan hands back: a condition variable left to its default,
        // which async-graphql reads as false where the specification applies the default.
        assert!(
            case.flags
                .iter()
                .enumerate()
                .any(|(i, f)| f.given.is_none() && document.contains(&format!("(if: $b{i})"))),
            "the plan answers {document}"
        );
        return;
    };
    let reference = serde_json::to_value(&reference).expect("JSON");
    let planned: Value = serde_json::from_slice(&planned).expect("the plan writes JSON");
    assert_eq!(planned["data"], reference["data"], "data of {document}");
    assert_eq!(
        sorted_errors(&planned),
        sorted_errors(&reference),
        "errors of {document}"
    );
    if planned["data"].is_object() {
        let expected = root_keys(case, &planned["data"]);
        let actual: Vec<&String> = planned["data"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            actual,
            expected.iter().collect::<Vec<_>>(),
            "root order of {document}"
        );
        for (i, root) in case.roots.iter().enumerate() {
            if let Root::Logs { children, .. } = root {
                let key = format!("p{i}");
                if let Some(page) = planned["data"].get(&key) {
                    // Merged root fields are never generated: every one has its own alias.
                    check_order(case, page, &children.iter().collect::<Vec<_>>(), &key);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn plans_answer_as_async_graphql_does(case in case()) {
        run(&case);
    }
}

#[test]
fn keys_newer_than_the_gateway_reach_plans_and_async_graphql_alike() {
    let harness = harness();
    let document = "{ auditLogs(limit: 6) { auditLogs { id extraFields user { hasAiSeat isServiceAccount extraFields } } } }";
    let (reference, planned) = harness.runtime.block_on(async {
        let request = async_graphql::Request::new(document).data(caller(true));
        let reference = harness.schema.execute(request).await;
        let key = Key {
            hash: document_hash(document),
            operation_name: None,
        };
        harness.plans.insert(key.clone(), Arc::from(document));
        let operation = harness.plans.get(&key).expect("cached");
        let plan = operation.plan.as_ref().expect("the planner covers it");
        let planned = plan
            .execute(
                &harness.audit,
                &caller(true),
                &async_graphql::Variables::default(),
            )
            .await
            .expect("answered");
        (reference, planned)
    });
    let reference = serde_json::to_value(&reference).expect("JSON");
    let planned: Value = serde_json::from_slice(&planned).expect("JSON");
    assert_eq!(planned, reference);
    let rows = planned["data"]["auditLogs"]["auditLogs"]
        .as_array()
        .expect("rows");
    assert_eq!(rows[0]["extraFields"], Value::Null);
    assert_eq!(
        rows[1]["extraFields"],
        serde_json::json!({"on_behalf_of": {"id": "x", "n": [1, 2.5, null]}, "newer_null": null, "newer_text": "caf\u{e9} \"q\""})
    );
    let user = rows
        .iter()
        .find_map(|row| row["user"].as_object())
        .expect("a user");
    assert!(user.contains_key("hasAiSeat") && user.contains_key("isServiceAccount"));
    assert!(
        rows.iter()
            .any(|row| row["user"]["extraFields"]["newer_list"]
                == serde_json::json!(["a", {"b": false}])),
        "{rows:?}"
    );
}

#[test]
fn the_planner_declines_what_it_does_not_cover() {
    let compile = |document: &str| {
        let parsed = async_graphql::parser::parse_query(document).expect("parses");
        super::compile::compile(&parsed, None).is_some()
    };
    assert!(compile("{ auditLogs(limit: 1) { count } }"));
    assert!(!compile("{ __schema { queryType { name } } }"));
    assert!(!compile("{ __type(name: \"AuditLog\") { name } }"));
    assert!(!compile("subscription { auditLogAdded { cursor } }"));
    assert!(!compile("{ auditLogs(limit: 1) { count @deprecated } }"));
    assert!(!compile("{ auditLogs(limit: 1) { futureField } }"));
}

#[test]
fn the_cache_is_bounded_by_memory_as_well_as_by_count() {
    let budget = 32 << 10;
    let plans = Plans::with_budget(1024, budget);
    // Not GraphQL, so each weighs its text: 1 KiB and five bytes.
    let large = |i: usize| Arc::<str>::from(format!("}} {i:03}{}", " ".repeat(1 << 10)));
    let key = |document: &str| Key {
        hash: document_hash(document),
        operation_name: None,
    };
    for i in 0..48 {
        let document = large(i);
        plans.insert(key(&document), document);
    }
    let cache = plans.cache.as_ref().expect("a cache").lock().expect("lock");
    assert!(cache.weight <= budget, "{} bytes held", cache.weight);
    assert_eq!(cache.operations.len(), budget / ((1 << 10) + 5));
    // The most recent stay, the oldest went.
    assert!(cache.operations.contains(&key(&large(47))));
    assert!(!cache.operations.contains(&key(&large(0))));
}
