//! GraphQL input types for typed filters: the `AuditLogFilter` input, the `AuditAction`,
//! `ResourceType` and `BuildReason` enums, and the `UUID` and `Date` scalars.
//!
//! The enums are generated from [`crate::model::known`], the single list of Coder's values,
//! so a value added there appears in the schema with Coder's wording and deprecation. The
//! scalars take any string: the shared core validates identifiers and dates for both
//! protocols alike and reports a bad one as `BAD_USER_INPUT` naming the field.

use std::{borrow::Cow, marker::PhantomData};

use async_graphql::{
    InputObject, InputType, InputValueError, InputValueResult, Name, Scalar, ScalarType, Value,
    registry::{Deprecation, MetaEnumValue, MetaType, MetaTypeId, Registry},
};

use crate::{
    model::known::{self, KnownValue},
    query::AuditLogFilter,
};

/// A Coder enum exposed to GraphQL.
pub(crate) trait KnownEnum: Send + Sync + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    const VALUES: &'static [KnownValue];
}

pub(crate) struct Actions;
pub(crate) struct ResourceTypes;
pub(crate) struct BuildReasons;

impl KnownEnum for Actions {
    const NAME: &'static str = "AuditAction";
    const DESCRIPTION: &'static str = "What was done, as Coder records it. Newer Coder versions may record actions not listed here: filter on those with the raw `q` (`action:<value>`).";
    const VALUES: &'static [KnownValue] = known::ACTIONS;
}

impl KnownEnum for ResourceTypes {
    const NAME: &'static str = "ResourceType";
    const DESCRIPTION: &'static str = "The kind of resource acted on. Newer Coder versions may add types not listed here: filter on those with the raw `q` (`resource_type:<value>`).";
    const VALUES: &'static [KnownValue] = known::RESOURCE_TYPES;
}

impl KnownEnum for BuildReasons {
    const NAME: &'static str = "BuildReason";
    const DESCRIPTION: &'static str = "Why a workspace build was started. Only `workspace_build` rows and the `create` rows of new workspaces have one. Newer values are reachable with the raw `q` (`build_reason:<value>`).";
    const VALUES: &'static [KnownValue] = known::BUILD_REASONS;
}

/// The GraphQL name of a Coder value: `request_password_reset` is `REQUEST_PASSWORD_RESET`.
fn graphql_name(value: &str) -> String {
    value.to_ascii_uppercase()
}

/// One value of the enum `E`, held as Coder's wire string.
pub(crate) struct EnumValue<E> {
    value: &'static str,
    kind: PhantomData<E>,
}

impl<E: KnownEnum> InputType for EnumValue<E> {
    type RawValueType = Self;

    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed(E::NAME)
    }

    fn create_type_info(registry: &mut Registry) -> String {
        registry.create_input_type::<Self, _>(MetaTypeId::Enum, |_| MetaType::Enum {
            name: E::NAME.to_owned(),
            description: Some(E::DESCRIPTION.to_owned()),
            enum_values: E::VALUES
                .iter()
                .map(|known| {
                    let name = graphql_name(known.value);
                    let value = MetaEnumValue {
                        name: name.clone(),
                        description: Some(format!("`{}`: {}", known.value, known.description)),
                        deprecation: known.deprecation.map_or(Deprecation::NoDeprecated, |r| {
                            Deprecation::Deprecated {
                                reason: Some(r.to_owned()),
                            }
                        }),
                        visible: None,
                        inaccessible: false,
                        tags: Vec::new(),
                        directive_invocations: Vec::new(),
                    };
                    (name, value)
                })
                .collect(),
            visible: None,
            inaccessible: false,
            tags: Vec::new(),
            rust_typename: Some(std::any::type_name::<Self>()),
            directive_invocations: Vec::new(),
            requires_scopes: Vec::new(),
        })
    }

    fn parse(value: Option<Value>) -> InputValueResult<Self> {
        let name = match &value {
            Some(Value::Enum(name)) => name.as_str(),
            Some(Value::String(name)) => name.as_str(),
            _ => return Err(InputValueError::expected_type(value.unwrap_or_default())),
        };
        E::VALUES
            .iter()
            .find(|known| graphql_name(known.value) == name)
            .map(|known| Self {
                value: known.value,
                kind: PhantomData,
            })
            .ok_or_else(|| InputValueError::custom(format!("{name} is not a {}", E::NAME)))
    }

    fn to_value(&self) -> Value {
        Value::Enum(Name::new(graphql_name(self.value)))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }
}

/// Declares a string scalar the core validates: the GraphQL layer only insists on a string,
/// so that a malformed value is reported like every other bad argument, as `BAD_USER_INPUT`
/// naming the field, in both protocols alike.
macro_rules! checked_string_scalar {
    ($(#[$doc:meta])* $type:ident, $name:literal, $spec:literal) => {
        $(#[$doc])*
        pub(crate) struct $type(String);

        $(#[$doc])*
        #[Scalar(name = $name, specified_by_url = $spec)]
        impl ScalarType for $type {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(text) => Ok(Self(text)),
                    other => Err(InputValueError::expected_type(other)),
                }
            }

            fn to_value(&self) -> Value {
                Value::String(self.0.clone())
            }
        }
    };
}

checked_string_scalar!(
    /// A UUID, e.g. `5a6f0e2c-9d1b-4c6e-8f3a-7b2d1e0c9a88`. A malformed one is reported by
    /// the gateway as `BAD_USER_INPUT` naming the field.
    Uuid,
    "UUID",
    "https://datatracker.ietf.org/doc/html/rfc9562"
);

checked_string_scalar!(
    /// A calendar date as `YYYY-MM-DD`, the only date form Coder's search accepts. A
    /// malformed one is reported by the gateway as `BAD_USER_INPUT` naming the field.
    Date,
    "Date",
    "https://datatracker.ietf.org/doc/html/rfc3339#section-5.6"
);

/// Typed constraints on the audit log, combined with AND (and with `q`, which must not set
/// the same keys). Coder lowercases the whole query before matching, so `resourceTarget`
/// and `email` only match values stored in lowercase.
#[derive(InputObject)]
#[graphql(name = "AuditLogFilter")]
pub(crate) struct AuditLogFilterInput {
    /// Only rows with this action.
    action: Option<EnumValue<Actions>>,
    /// Only rows about this kind of resource.
    resource_type: Option<EnumValue<ResourceTypes>>,
    /// Only rows about the resource with this UUID.
    resource_id: Option<Uuid>,
    /// Only rows whose resource name equals this (compared after lowercasing, so only
    /// lowercase stored names match).
    resource_target: Option<String>,
    /// Only rows by this user (case-insensitive; `me` is the caller). Deleted users match
    /// nothing.
    username: Option<String>,
    /// Only rows by the user with exactly this e-mail (compared after lowercasing, so only
    /// lowercase stored addresses match).
    email: Option<String>,
    /// Only rows from this day on, starting 00:00:00 UTC.
    date_from: Option<Date>,
    /// Only rows up to this day, inclusive to 23:59:59 UTC.
    date_to: Option<Date>,
    /// Only rows of this organisation, by name or UUID.
    organization: Option<String>,
    /// Only builds started for this reason (`workspace_build` rows and new workspaces).
    build_reason: Option<EnumValue<BuildReasons>>,
    /// Only the row of the audited request with this UUID.
    request_id: Option<Uuid>,
}

impl From<AuditLogFilterInput> for AuditLogFilter {
    fn from(input: AuditLogFilterInput) -> Self {
        Self {
            action: input.action.map(|v| v.value.to_owned()),
            resource_type: input.resource_type.map(|v| v.value.to_owned()),
            resource_id: input.resource_id.map(|v| v.0),
            resource_target: input.resource_target,
            username: input.username,
            email: input.email,
            date_from: input.date_from.map(|v| v.0),
            date_to: input.date_to.map(|v| v.0),
            organization: input.organization,
            build_reason: input.build_reason.map(|v| v.value.to_owned()),
            request_id: input.request_id.map(|v| v.0),
        }
    }
}
