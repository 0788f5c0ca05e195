//! Coder's audit row, defined once: every object of the row (the row, its user, organisation,
//! diff entry and role) with, for each field, its Coder key, GraphQL name, protobuf field
//! number, kind (how it is read from the page) and presence (whether Coder may leave it out
//! or send `null`), and the doc that every surface shows.
//!
//! The table is a macro that hands itself to a generator (the X-macro pattern): the view
//! that reads the page (`view.rs`) and each protocol's types and encoders are written by
//! generators over this one table, so a key Coder adds is one line here. Names are spelled
//! out in every case they are used in, because `macro_rules!` cannot change an identifier's
//! case; a test holds the protobuf names and numbers to the descriptor `build.rs` compiles.
//!
//! Kinds are the field's shape (`Str`, `Time`, `Json`, ...); `Key` is the key of the object
//! in its parent's map (a diff entry's field name), which no protobuf field number holds (0).
//!
//! Presence: `required` (a row without it is refused), `sent` (always sent, never null; read
//! as empty if a server leaves it out anyway), `omittable` (some servers leave it out),
//! `nullable` (always sent, may be `null`), `optional` (may be left out or `null`).

/// Hands the table to `$generate`; see the module documentation.
macro_rules! audit_schema {
    ($generate:ident) => {
        $generate! {
            /// One audited event: who did what to which resource, when, from where, and
            /// what changed.
            AuditLogView AuditLog AuditLog extra 20 {
                /// The row's UUID.
                id "id" 1 Str required;
                /// UUID of the audited HTTP request (its `X-Coder-Request-Id`); for workspace
                /// builds, the provisioner job. May be the zero UUID.
                request_id "requestId" 2 Str sent;
                /// When the event happened.
                time "time" 3 Time required;
                /// The client's IP address; empty when Coder did not know it.
                ip "ip" 4 Str sent;
                /// The client's User-Agent; empty for builds and background actions.
                user_agent "userAgent" 5 Str sent;
                /// Kind of resource acted on, as Coder names it: `workspace`,
                /// `workspace_build`, `template`, `user`, `api_key`, `organization`, ...
                /// Newer Coder versions add values; they are passed through unchanged.
                resource_type "resourceType" 6 Str required;
                /// UUID of the resource; for `api_key` logins and `git_ssh_key`, the user's
                /// UUID.
                resource_id "resourceId" 7 Str sent;
                /// The resource's name (workspace, template, username, ...). Empty for some
                /// types, e.g. `workspace_build` (see `additionalFields.workspace_name`).
                resource_target "resourceTarget" 8 Str sent;
                /// The resource's icon; usually empty.
                resource_icon "resourceIcon" 9 Str sent;
                /// What was done: `create`, `write`, `delete`, `start`, `stop`, `login`,
                /// `logout`, `register`, `request_password_reset`, and the deprecated
                /// `connect`, `disconnect`, `open`, `close`. Newer Coder versions may add
                /// values; they are passed through unchanged.
                action "action" 10 Str required;
                /// Changed fields, sorted by field name; empty when nothing tracked changed.
                diff "diff" 11 Diff sent;
                /// HTTP status of the audited request (200, 201, 401, ...).
                status_code "statusCode" 12 Int sent;
                /// Event-specific JSON exactly as Coder stored it (an object in practice).
                /// Workspace builds carry `workspace_name`, `build_number`, `build_reason`,
                /// `workspace_owner` and `workspace_id`.
                additional_fields "additionalFields" 13 Json nullable;
                /// Human-readable template with literal `{user}` and `{target}`
                /// placeholders, e.g. `{user} started workspace {target}`.
                description "description" 14 Str sent;
                /// Relative path of the resource in Coder's web UI; empty when there is none
                /// or the resource is deleted.
                resource_link "resourceLink" 15 Str sent;
                /// Whether the resource has been deleted since.
                is_deleted "isDeleted" 16 Bool sent;
                /// Organisation UUID; the zero UUID for site-wide events.
                organization_id "organizationId" 17 Str sent;
                /// The organisation; null for site-wide events.
                organization "organization" 18 Organization omittable;
                /// The acting user; null when the user no longer exists or the actor was the
                /// system.
                user "user" 19 User nullable;
            }

            /// The old and new value of one changed field.
            DiffView AuditDiffEntry AuditDiffField {
                /// The changed column, e.g. `ttl`, `name`, `hashed_password`: the entry's key
                /// in Coder's `diff` object (and in the protobuf map).
                field "field" 0 Key sent;
                /// Value before the change, any JSON type; null when Coder sent `null` or left
                /// it out (gRPC tells the two apart).
                old "old" 1 Json optional;
                /// Value after the change, any JSON type; null as `old`.
                new "new" 2 Json optional;
                /// True for secret fields, whose values Coder blanks or omits.
                secret "secret" 3 Bool sent;
            }

            /// The organisation an event belongs to.
            OrganizationView MinimalOrganization MinimalOrganization {
                /// Organisation UUID.
                id "id" 1 Str sent;
                /// Unique name, as used by the `organization:` search key; empty if the
                /// organisation is gone.
                name "name" 2 Str sent;
                /// Display name; empty if the organisation is gone.
                display_name "displayName" 3 Str sent;
                /// Icon path, e.g. `/emojis/1f957.png`; may be empty.
                icon "icon" 4 Str sent;
            }

            /// The user who performed an action.
            UserView User User extra 16 {
                /// User UUID.
                id "id" 1 Str required;
                /// Username.
                username "username" 2 Str required;
                /// Full name; may be empty.
                name "name" 3 Str omittable;
                /// E-mail address.
                email "email" 4 Str sent;
                /// Avatar URL; may be empty.
                avatar_url "avatarUrl" 5 Str omittable;
                /// When the account was created.
                created_at "createdAt" 6 Time required;
                /// When the account was last updated; null when Coder does not send it
                /// (older servers).
                updated_at "updatedAt" 7 OptTime omittable;
                /// When the user was last seen; `0001-01-01T00:00:00Z` if never, null when
                /// Coder does not send it.
                last_seen_at "lastSeenAt" 8 OptTime sent;
                /// Account status: `active`, `dormant` or `suspended`.
                status "status" 9 Str sent;
                /// How the user signs in: `password`, `github`, `oidc`, `token`, `none`, or
                /// empty when unknown.
                login_type "loginType" 10 Str sent;
                /// Deprecated UI theme; usually empty.
                theme_preference "themePreference" 11 Str omittable;
                /// Organisation UUIDs; always empty in audit rows.
                organization_ids "organizationIds" 12 Strs sent;
                /// Site-wide roles.
                roles "roles" 13 Roles sent;
                /// Whether the user holds an AI seat; null when Coder does not send it
                /// (servers before AI seats).
                has_ai_seat "hasAiSeat" 14 OptBool omittable;
                /// Whether the user is a service account; null when Coder does not send it
                /// (older servers, and newer ones for users that are not).
                is_service_account "isServiceAccount" 15 OptBool omittable;
            }

            /// A role held by a user.
            RoleView SlimRole SlimRole {
                /// Role name, e.g. `owner`.
                name "name" 1 Str required;
                /// Built-in display name, e.g. `Owner`; empty for unknown roles.
                display_name "displayName" 2 Str sent;
                /// Organisation UUID for organisation roles; empty for site-wide roles.
                organization_id "organizationId" 3 Str omittable;
            }
        }
    };
}

pub(crate) use audit_schema;

/// What the table says of one field, for checks and for the surfaces that look fields up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldMeta {
    /// Coder's key, which is also the protobuf field's name.
    pub key: &'static str,
    pub graphql: &'static str,
    pub proto: u32,
    /// Coder may leave the key out.
    pub omittable: bool,
    /// Coder may send `null`.
    pub nullable: bool,
}

/// Whether a presence lets Coder leave the key out, and send `null`.
macro_rules! presence {
    (required) => {
        (false, false)
    };
    (sent) => {
        (false, false)
    };
    (omittable) => {
        (true, false)
    };
    (nullable) => {
        (false, true)
    };
    (optional) => {
        (true, true)
    };
}

pub(crate) use presence;
