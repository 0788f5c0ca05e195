//! GraphQL views of the shared model.
//!
//! Each type borrows the row parsed by the upstream client instead of copying it into a
//! GraphQL-specific struct: a page is parsed once, and only the fields a query selects are
//! ever turned into GraphQL values.

use std::borrow::Cow;

use async_graphql::{
    ContextSelectionSet, InputValueError, InputValueResult, Json, Object, OutputType, Positioned,
    Scalar, ScalarType, ServerError, ServerResult, Value, parser::types::Field, registry::Registry,
};
use serde_json::value::RawValue;

use crate::model;

/// An RFC 3339 timestamp in UTC (`Z`), with exactly the sub-second digits Coder sent
/// (Coder trims trailing zeros: `2026-04-02T09:02:11Z`, `2026-04-02T09:02:11.5Z`).
/// `0001-01-01T00:00:00Z` is Coder's "never".
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for model::Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => Ok(text.parse()?),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}

/// Coder's JSON text as the standard `JSON` scalar, converted straight into a GraphQL value
/// when (and only if) a query selects it.
pub(crate) struct RawJson<'a>(&'a RawValue);

impl OutputType for RawJson<'_> {
    fn type_name() -> Cow<'static, str> {
        <Json<serde_json::Value> as OutputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Json<serde_json::Value> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        // The text was validated when the page was parsed, so this cannot fail in practice.
        serde_json::from_str(self.0.get()).map_err(|e| {
            ServerError::new(
                format!("invalid JSON from Coder: {e}"),
                Some(ctx.item.pos.max(field.pos)),
            )
        })
    }
}

/// Owns the parsed page; every other type here borrows from it.
pub struct AuditLogPage(model::AuditPage);

impl From<model::AuditPage> for AuditLogPage {
    fn from(page: model::AuditPage) -> Self {
        Self(page)
    }
}

/// One page of the audit trail, newest first.
#[Object]
impl AuditLogPage {
    /// The rows, newest first. Rows with equal times come in no fixed order and may move
    /// between pages; rows recorded meanwhile shift later pages.
    async fn audit_logs(&self) -> Vec<AuditLog<'_>> {
        self.0.audit_logs.iter().map(AuditLog).collect()
    }

    /// Rows matching `q`, independent of `limit` and `offset`. Current Coder servers stop
    /// counting at `countCap + 1`, so a count above `countCap` means "more than countCap".
    async fn count(&self) -> i64 {
        self.0.count
    }

    /// The cap Coder applied to `count` (2000 on current servers); null when Coder counted
    /// exactly (older servers).
    async fn count_cap(&self) -> Option<i64> {
        self.0.count_cap
    }
}

pub(crate) struct AuditLog<'a>(&'a model::AuditLog);

/// A row delivered by a subscription, with the cursor that resumes right after it.
pub struct AuditLogEvent {
    pub(crate) cursor: String,
    pub(crate) row: std::sync::Arc<model::Row>,
}

/// A row added to Coder's audit trail.
#[Object]
impl AuditLogEvent {
    /// Opaque; pass it as `after` to resume right after this row, with the same `q` and
    /// `filter`.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The row, exactly as Coder recorded it.
    #[allow(clippy::unused_async, reason = "async-graphql resolvers must be async")]
    async fn audit_log(&self) -> async_graphql::Result<AuditLog<'_>> {
        self.row.log().map(AuditLog).map_err(|reason| {
            async_graphql::ErrorExtensions::extend(&crate::error::Error::bad_row(reason))
        })
    }
}

/// One audited event: who did what to which resource, when, from where, and what changed.
#[Object]
impl AuditLog<'_> {
    /// The row's UUID.
    async fn id(&self) -> &str {
        &self.0.id
    }

    /// UUID of the audited HTTP request (its `X-Coder-Request-Id`); for workspace builds,
    /// the provisioner job. May be the zero UUID.
    async fn request_id(&self) -> &str {
        &self.0.request_id
    }

    /// When the event happened.
    async fn time(&self) -> model::Timestamp {
        self.0.time
    }

    /// The client's IP address; empty when Coder did not know it.
    async fn ip(&self) -> &str {
        &self.0.ip
    }

    /// The client's User-Agent; empty for builds and background actions.
    async fn user_agent(&self) -> &str {
        &self.0.user_agent
    }

    /// Kind of resource acted on, as Coder names it: `workspace`, `workspace_build`,
    /// `template`, `user`, `api_key`, `organization`, ... Newer Coder versions add values;
    /// they are passed through unchanged.
    async fn resource_type(&self) -> &str {
        &self.0.resource_type
    }

    /// UUID of the resource; for `api_key` logins and `git_ssh_key`, the user's UUID.
    async fn resource_id(&self) -> &str {
        &self.0.resource_id
    }

    /// The resource's name (workspace, template, username, ...). Empty for some types, e.g.
    /// `workspace_build` (see `additionalFields.workspace_name`).
    async fn resource_target(&self) -> &str {
        &self.0.resource_target
    }

    /// The resource's icon; usually empty.
    async fn resource_icon(&self) -> &str {
        &self.0.resource_icon
    }

    /// What was done: `create`, `write`, `delete`, `start`, `stop`, `login`, `logout`,
    /// `register`, `request_password_reset`, and the deprecated `connect`, `disconnect`,
    /// `open`, `close`. Newer Coder versions may add values; they are passed through unchanged.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// Changed fields, sorted by field name; empty when nothing tracked changed.
    async fn diff(&self) -> Vec<AuditDiffEntry<'_>> {
        self.0
            .diff
            .iter()
            .map(|(field, change)| AuditDiffEntry { field, change })
            .collect()
    }

    /// HTTP status of the audited request (200, 201, 401, ...).
    async fn status_code(&self) -> i32 {
        self.0.status_code
    }

    /// Event-specific JSON exactly as Coder stored it (an object in practice). Workspace
    /// builds carry `workspace_name`, `build_number`, `build_reason`, `workspace_owner` and
    /// `workspace_id`.
    async fn additional_fields(&self) -> Option<RawJson<'_>> {
        self.0.additional_fields.as_deref().map(RawJson)
    }

    /// Human-readable template with literal `{user}` and `{target}` placeholders, e.g.
    /// `{user} started workspace {target}`.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Relative path of the resource in Coder's web UI; empty when there is none or the
    /// resource is deleted.
    async fn resource_link(&self) -> &str {
        &self.0.resource_link
    }

    /// Whether the resource has been deleted since.
    async fn is_deleted(&self) -> bool {
        self.0.is_deleted
    }

    /// Organisation UUID; the zero UUID for site-wide events.
    async fn organization_id(&self) -> &str {
        &self.0.organization_id
    }

    /// The organisation; null for site-wide events.
    async fn organization(&self) -> Option<Organization<'_>> {
        self.0.organization.as_ref().map(Organization)
    }

    /// The acting user; null when the user no longer exists or the actor was the system.
    async fn user(&self) -> Option<User<'_>> {
        self.0.user.as_ref().map(User)
    }
}

pub(crate) struct AuditDiffEntry<'a> {
    field: &'a str,
    change: &'a model::DiffField,
}

/// The old and new value of one changed field.
#[Object]
impl AuditDiffEntry<'_> {
    /// The changed column, e.g. `ttl`, `name`, `hashed_password`.
    async fn field(&self) -> &str {
        self.field
    }

    /// Value before the change; null when it was null. Any JSON type.
    async fn old(&self) -> Option<RawJson<'_>> {
        self.change.old.as_deref().map(RawJson)
    }

    /// Value after the change; null when it is null. Any JSON type.
    async fn new(&self) -> Option<RawJson<'_>> {
        self.change.new.as_deref().map(RawJson)
    }

    /// True for secret fields, whose values Coder blanks or omits.
    async fn secret(&self) -> bool {
        self.change.secret
    }
}

pub(crate) struct Organization<'a>(&'a model::MinimalOrganization);

/// The organisation an event belongs to.
#[Object(name = "MinimalOrganization")]
impl Organization<'_> {
    /// Organisation UUID.
    async fn id(&self) -> &str {
        &self.0.id
    }

    /// Unique name, as used by the `organization:` search key; empty if the organisation is
    /// gone.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Display name; empty if the organisation is gone.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// Icon path, e.g. `/emojis/1f957.png`; may be empty.
    async fn icon(&self) -> &str {
        &self.0.icon
    }
}

pub(crate) struct User<'a>(&'a model::User);

/// The user who performed an action.
#[Object]
impl User<'_> {
    /// User UUID.
    async fn id(&self) -> &str {
        &self.0.id
    }

    /// Username.
    async fn username(&self) -> &str {
        &self.0.username
    }

    /// Full name; may be empty.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// E-mail address.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// Avatar URL; may be empty.
    async fn avatar_url(&self) -> &str {
        &self.0.avatar_url
    }

    /// When the account was created.
    async fn created_at(&self) -> model::Timestamp {
        self.0.created_at
    }

    /// When the account was last updated; null when Coder does not send it (older servers).
    async fn updated_at(&self) -> Option<model::Timestamp> {
        self.0.updated_at
    }

    /// When the user was last seen; `0001-01-01T00:00:00Z` if never, null when Coder does
    /// not send it.
    async fn last_seen_at(&self) -> Option<model::Timestamp> {
        self.0.last_seen_at
    }

    /// Account status: `active`, `dormant` or `suspended`.
    async fn status(&self) -> &str {
        &self.0.status
    }

    /// How the user signs in: `password`, `github`, `oidc`, `token`, `none`, or empty when
    /// unknown.
    async fn login_type(&self) -> &str {
        &self.0.login_type
    }

    /// Deprecated UI theme; usually empty.
    async fn theme_preference(&self) -> &str {
        &self.0.theme_preference
    }

    /// Organisation UUIDs; always empty in audit rows.
    async fn organization_ids(&self) -> Vec<&str> {
        self.0.organization_ids.iter().map(AsRef::as_ref).collect()
    }

    /// Site-wide roles.
    async fn roles(&self) -> Vec<Role<'_>> {
        self.0.roles.iter().map(Role).collect()
    }
}

pub(crate) struct Role<'a>(&'a model::SlimRole);

/// A role held by a user.
#[Object(name = "SlimRole")]
impl Role<'_> {
    /// Role name, e.g. `owner`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Built-in display name, e.g. `Owner`; empty for unknown roles.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// Organisation UUID for organisation roles; empty for site-wide roles.
    async fn organization_id(&self) -> &str {
        &self.0.organization_id
    }
}
