//! Compiled, cached operation plans: GraphQL at the cost of a hand-written encoder.
//!
//! async-graphql (the reference executor) builds a boxed future per field, a map per result
//! object and a value tree per response, then serialises the tree. An operation is the same
//! document every time a client sends it, so the work that depends only on the document is
//! done once: the first request runs through async-graphql, which parses, validates and
//! applies the depth, complexity and introspection limits; the operation is then compiled
//! (see `compile.rs`) and kept in a bounded LRU keyed by the document's SHA-256 and the
//! operation name (`--operation-cache-size`). Later requests check their variables, resolve
//! `@skip`/`@include`, call the core once per root field and write each page straight from
//! Coder's body into the response, in selection order (`encode.rs`).
//!
//! A request the plan cannot answer exactly as the reference would (a variable value it
//! does not vouch for, an argument it cannot read, a `@skip`/`@include` variable left to its
//! declared default, which async-graphql does not apply) goes to async-graphql instead,
//! which stays the one place that words request errors; so does a page holding a value Coder
//! should never send, whose field errors async-graphql places (Coder is asked again). The same cache holds the documents that
//! automatic persisted queries refer to by hash.

mod compile;
mod encode;
mod resolve;
#[cfg(test)]
mod tests;
mod tree;

use std::{
    collections::BTreeSet,
    num::NonZeroUsize,
    sync::{Arc, Mutex, OnceLock},
};

use async_graphql::{
    InputType, ServerError, Value as ConstValue, Variables,
    parser::types::{BaseType, Type},
};
use lru::LruCache;
use sha2::{Digest, Sha256};

use self::{
    resolve::{Resolved, Selection},
    tree::Field,
};
use super::{Caller, filter::AuditLogFilterInput};
use crate::{
    audit::AuditLogs,
    call::CallContext,
    model::{AuditLogView, PageView},
};

pub(crate) use compile::Plan;
pub(super) use compile::root_order;

/// A compiled `auditLogs` selection on its own, without the cache and the core around it:
/// what the hot-path benchmark measures against async-graphql on the same page.
#[doc(hidden)]
#[derive(Debug)]
pub struct PagePlan(Selection);

impl PagePlan {
    /// The selection of the first root `auditLogs` field of `document`'s one operation;
    /// `None` when the planner does not cover it or it has conditions.
    #[must_use]
    pub fn compile(document: &str) -> Option<Self> {
        let parsed = async_graphql::parser::parse_query(document).ok()?;
        let root = compile::compile(&parsed, None)?.resolved?;
        let field = root.into_iter().find(|f| f.field == Field::AuditLogs)?;
        Some(Self(field.children))
    }

    /// The page as the selection asks for it: what a plan writes as the field's value.
    #[must_use]
    pub fn write(&self, page: &crate::model::PageView<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode::page(&mut out, &self.0, page, None);
        out
    }
}

/// The SHA-256 of a document, as automatic persisted queries name it.
pub(super) fn document_hash(document: &str) -> [u8; 32] {
    Sha256::digest(document.as_bytes()).into()
}

/// What a cached operation is known by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) hash: [u8; 32],
    pub(super) operation_name: Option<Box<str>>,
}

/// A cached operation: its document (what a persisted-query hash stands for) and its plan,
/// `None` when the planner does not cover it and async-graphql always answers.
#[derive(Debug)]
pub(super) struct Operation {
    pub(super) document: Arc<str>,
    pub(super) plan: Option<Plan>,
}

/// The most memory the cache's operations may hold, whatever their number: a caller sending
/// large distinct documents evicts older ones instead of growing the gateway.
const CACHE_BUDGET: usize = 32 << 20;

/// What a compiled field costs in memory, roughly: its node as written and as resolved.
const FIELD_WEIGHT: usize = 512;

/// The bounded cache of operations, by count (`--operation-cache-size`) and by memory
/// ([`CACHE_BUDGET`]); with a capacity of 0 nothing is kept and every request goes to
/// async-graphql.
#[derive(Debug)]
pub(super) struct Plans {
    cache: Option<Mutex<Cache>>,
    /// [`CACHE_BUDGET`]; smaller in tests.
    budget: usize,
}

#[derive(Debug)]
struct Cache {
    operations: LruCache<Key, Arc<Operation>>,
    /// The weight of the operations held, against [`CACHE_BUDGET`].
    weight: usize,
}

impl Plans {
    pub(super) fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, CACHE_BUDGET)
    }

    fn with_budget(capacity: usize, budget: usize) -> Self {
        Self {
            cache: NonZeroUsize::new(capacity).map(|c| {
                Mutex::new(Cache {
                    operations: LruCache::new(c),
                    weight: 0,
                })
            }),
            budget,
        }
    }

    /// The operation under `key`, counted as a hit or a miss.
    pub(super) fn get(&self, key: &Key) -> Option<Arc<Operation>> {
        let cache = self.cache.as_ref()?;
        let found = cache.lock().ok()?.operations.get(key).cloned();
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("gateway_graphql_operation_cache_total", "result" => result).increment(1);
        found
    }

    /// Compiles `document` (which async-graphql has just executed without a request error)
    /// and keeps it under `key`, evicting the least recently used operations beyond the
    /// count or the memory budget.
    pub(super) fn insert(&self, key: Key, document: Arc<str>) {
        let Some(cache) = &self.cache else {
            return;
        };
        let plan = async_graphql::parser::parse_query(&*document)
            .ok()
            .and_then(|parsed| compile::compile(&parsed, key.operation_name.as_deref()));
        let operation = Arc::new(Operation { document, plan });
        let weight = operation.weight();
        if weight > self.budget {
            return;
        }
        let Ok(mut cache) = cache.lock() else {
            return;
        };
        cache.weight += weight;
        if let Some((_, evicted)) = cache.operations.push(key, operation) {
            cache.weight -= evicted.weight();
        }
        while cache.weight > self.budget {
            let Some((_, evicted)) = cache.operations.pop_lru() else {
                break;
            };
            cache.weight -= evicted.weight();
        }
        metrics::gauge!("gateway_graphql_operation_cache_entries")
            .set(u32::try_from(cache.operations.len()).map_or(f64::MAX, f64::from));
    }
}

impl Operation {
    /// Its share of [`CACHE_BUDGET`].
    fn weight(&self) -> usize {
        self.document.len() + self.plan.as_ref().map_or(0, |p| p.fields * FIELD_WEIGHT)
    }
}

impl Plan {
    /// Runs the plan for one request: the whole response body, or `None` when the reference
    /// executor must answer (see the module's documentation).
    pub(super) async fn execute(
        &self,
        audit: &AuditLogs,
        caller: &Caller,
        variables: &Variables,
    ) -> Option<Vec<u8>> {
        // A variable's value: given, or its declared default.
        let value = |name: &str| {
            variables.get(name).or_else(|| {
                self.variables
                    .iter()
                    .find(|d| d.name == name)
                    .and_then(|d| d.default.as_ref())
            })
        };
        let fits = self
            .variables
            .iter()
            .all(|definition| fits(&definition.ty, value(definition.name.as_str())));
        if !fits {
            return None;
        }
        let resolved;
        let selection = if let Some(selection) = &self.resolved {
            selection
        } else {
            // async-graphql reads conditions from the given variables only, declared
            // defaults aside; a condition left to its default goes to the reference.
            resolved =
                resolve::selection(&self.root, &|name| match variables.get(name.as_str()) {
                    Some(ConstValue::Boolean(b)) => Some(*b),
                    _ => None,
                })?;
            &resolved
        };
        let queries = selection
            .iter()
            .map(|field| match field.field {
                Field::AuditLogs => arguments(field, &value).map(Some),
                _ => Some(None),
            })
            .collect::<Option<Vec<_>>>()?;
        let call = caller.call();
        let pages = futures_util::future::join_all(selection.iter().zip(&queries).enumerate().map(
            |(i, (field, query))| {
                let call = &call;
                async move {
                    match query {
                        Some(query) => Some(page(audit, call, query, field, i == 0).await),
                        None => None,
                    }
                }
            },
        ))
        .await;
        // A page the plan hands back is answered by the reference executor, whole.
        let pages = (pages.into_iter())
            .map(|page| match page {
                None => Some(None),
                Some(Ok(None)) => None,
                Some(Ok(Some(page))) => Some(Some(Ok(page))),
                Some(Err(error)) => Some(Some(Err(error))),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(response(selection, pages))
    }
}

/// A root field's page, encoded, with the id Coder gave its request.
type Encoded = (Vec<u8>, Option<String>);

/// A root field's page; `Ok(None)` when the page holds a value Coder should never send,
/// which the reference executor answers (a field error at that value's path, with
/// GraphQL's null propagation).
type Page = Result<Option<Encoded>, ServerError>;

/// What the response starts with when its first key is a page: that page's buffer becomes
/// the response, so a page is never copied.
const DATA: &[u8] = b"{\"data\":";

/// Fetches and encodes one root field's page; a `lead` page (the first key of the response)
/// is written after `{"data":{"key":`, ready to be the response itself.
async fn page(
    audit: &AuditLogs,
    call: &async_graphql::Result<CallContext>,
    (query, after): &(crate::audit::AuditLogQuery, Option<String>),
    field: &Resolved,
    lead: bool,
) -> Page {
    let at = |error: async_graphql::Error| {
        error
            .into_server_error(field.pos)
            .with_path(vec![async_graphql::PathSegment::Field(
                field.key.to_string(),
            )])
    };
    let call = call.as_ref().map_err(|e| at(e.clone()))?;
    let encoded = |view: &PageView<'_>, connection: Option<&encode::Connection<'_>>| {
        if view.first_invalid().is_some() {
            return None;
        }
        // Reserving is free until written: only the pages touched count.
        let mut out = Vec::with_capacity(view.body_len + 256);
        if lead {
            out.extend_from_slice(DATA);
            out.push(b'{');
            out.extend_from_slice(&field.prefix);
        }
        encode::page(&mut out, &field.children, view, connection);
        Some(out)
    };
    if let Some(after) = after {
        let page = super::error::counted(audit.list_after(call, query, "after", after).await)
            .map_err(at)?;
        let Ok(audit_logs) = (page.rows.iter())
            .map(|row| AuditLogView::read(row.raw.get()))
            .collect::<Result<Vec<_>, _>>()
        else {
            return Ok(None);
        };
        let (count, count_cap) = page.cursors.count();
        let body_len = page.rows.iter().map(|row| row.raw.get().len()).sum();
        let view = PageView {
            audit_logs,
            count,
            count_cap,
            body_len,
        };
        let connection = encode::Connection {
            cursors: &page.cursors,
            has_previous: true,
        };
        return Ok(encoded(&view, Some(&connection)).map(|out| (out, None)));
    }
    let fetched = if encode::wants_cursors(&field.children) {
        let has_previous = query.offset > 0;
        super::error::counted(
            audit
                .list_with_cursors(call, query, true, |view, cursors| {
                    let connection = encode::Connection {
                        cursors: &cursors,
                        has_previous,
                    };
                    encoded(&view, Some(&connection))
                })
                .await,
        )
    } else {
        super::error::counted(
            audit
                .list_with(call, query, |view| encoded(&view, None))
                .await,
        )
    }
    .map_err(at)?;
    Ok(fetched.page.map(|page| (page, fetched.coder_request_id)))
}

/// The response body: `data` in selection order, the id of the last page's Coder request,
/// and the errors. Every root field the plans serve is non-null, so a failed one nulls
/// `data` whole (GraphQL's null propagation), as the reference path does (see
/// `http::reference`).
fn response(selection: &Selection, pages: Vec<Option<Result<Encoded, ServerError>>>) -> Vec<u8> {
    let mut errors = Vec::new();
    let mut coder_request_id = None;
    let mut bodies = Vec::with_capacity(pages.len());
    for page in pages {
        match page {
            None => bodies.push(None),
            Some(Ok((body, id))) => {
                coder_request_id = id;
                bodies.push(Some(body));
            }
            Some(Err(error)) => errors.push(error),
        }
    }
    // With every root field skipped, `data` is `null`, as async-graphql answers.
    let mut out = if errors.is_empty() && !selection.is_empty() {
        let mut out = None;
        for (i, (field, body)) in selection.iter().zip(bodies).enumerate() {
            if i == 0 && body.is_some() {
                // The lead page already holds `{"data":{"key":value`.
                out = body;
                continue;
            }
            let out = out.get_or_insert_with(|| DATA.to_vec());
            out.push(if i == 0 { b'{' } else { b',' });
            out.extend_from_slice(&field.prefix);
            match body {
                Some(body) => out.extend_from_slice(&body),
                None => encode::string(out, field.parent.type_name()),
            }
        }
        let mut out = out.unwrap_or_else(|| DATA.to_vec());
        out.push(b'}');
        out
    } else {
        let mut out = DATA.to_vec();
        out.extend_from_slice(b"null");
        out
    };
    if let Some(id) = coder_request_id {
        out.extend_from_slice(b",\"extensions\":{\"coderRequestId\":");
        encode::string(&mut out, &id);
        out.push(b'}');
    }
    if !errors.is_empty() {
        out.extend_from_slice(b",\"errors\":");
        // ServerError serialises through serde as the reference writes it; into a Vec it
        // cannot fail.
        let _ = serde_json::to_writer(&mut out, &errors);
    }
    out.push(b'}');
    out
}

/// The core's query from a root `auditLogs` field's arguments; `None` when one cannot be
/// read as the reference would read it.
fn arguments<'v>(
    field: &Resolved,
    value: &impl Fn(&str) -> Option<&'v ConstValue>,
) -> Option<(crate::audit::AuditLogQuery, Option<String>)> {
    let argument = |name: &str| -> Option<Option<ConstValue>> {
        match field.arguments.iter().find(|(n, _)| n == name) {
            None => Some(None),
            Some((_, given)) => given
                .node
                .clone()
                .into_const_with(|variable| value(&variable).cloned().ok_or(()))
                .ok()
                .map(Some),
        }
    };
    let after: Option<String> = InputType::parse(argument("after")?).ok()?;
    Some((
        super::audit_query(
            InputType::parse(argument("q")?).ok()?,
            InputType::parse(argument("filter")?).ok()?,
            InputType::parse(argument("limit")?).ok()?,
            InputType::parse(argument("offset")?).ok()?,
        ),
        after.filter(|after| !after.is_empty()),
    ))
}

/// Whether a variable's value is certainly valid for its declared type, so that the
/// reference executor would not refuse the request. Only the types the schema's arguments
/// and `@skip`/`@include` take are vouched for; anything else goes to the reference.
fn fits(ty: &Type, value: Option<&ConstValue>) -> bool {
    let Some(value) = value.filter(|v| !matches!(v, ConstValue::Null)) else {
        return ty.nullable;
    };
    let BaseType::Named(name) = &ty.base else {
        return false;
    };
    match name.as_str() {
        "Int" => {
            matches!(value, ConstValue::Number(n) if n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()))
        }
        "String" => matches!(value, ConstValue::String(_)),
        "Boolean" => matches!(value, ConstValue::Boolean(_)),
        "AuditLogFilter" => {
            matches!(value, ConstValue::Object(fields) if fields.keys().all(|k| filter_fields().contains(k.as_str())))
                && <AuditLogFilterInput as InputType>::parse(Some(value.clone())).is_ok()
        }
        _ => false,
    }
}

/// The field names of the `AuditLogFilter` input, from the type's own registration.
fn filter_fields() -> &'static BTreeSet<String> {
    static FIELDS: OnceLock<BTreeSet<String>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut registry = async_graphql::registry::Registry::default();
        let name = <AuditLogFilterInput as InputType>::create_type_info(&mut registry);
        match registry.types.get(&name) {
            Some(async_graphql::registry::MetaType::InputObject { input_fields, .. }) => {
                input_fields.keys().cloned().collect()
            }
            _ => BTreeSet::new(),
        }
    })
}
