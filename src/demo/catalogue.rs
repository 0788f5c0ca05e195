//! What the demo Coder knows, as data: its enumerations with Coder's friendly words, the
//! organisations and users of its made-up deployment, and the names its events pick from.
//!
//! Written from the reference (coder-audit-api.md §10, §14 and its corrections), not from the
//! gateway's tables, so that a mistake in one shows up as a disagreement with the other. The
//! search checks values against these lists, as a real server checks its own database's.

/// An audit action and Coder's friendly verb for it (§14.1).
pub(super) struct Action {
    pub value: &'static str,
    pub verb: &'static str,
}

const fn action(value: &'static str, verb: &'static str) -> Action {
    Action { value, verb }
}

/// The 13 actions, in Coder's order.
pub(super) const ACTIONS: &[Action] = &[
    action("create", "created"),
    action("write", "updated"),
    action("delete", "deleted"),
    action("start", "started"),
    action("stop", "stopped"),
    action("login", "logged in"),
    action("logout", "logged out"),
    action("register", "registered"),
    action("request_password_reset", "password reset requested"),
    action("connect", "connected"),
    action("disconnect", "disconnected"),
    action("open", "opened"),
    action("close", "closed"),
];

/// A resource type: Coder's friendly name and how the demo's server treats it.
pub(super) struct ResourceType {
    pub value: &'static str,
    pub friendly: &'static str,
    /// In the database's enumeration at the reference's commit, so `resource_type:` accepts
    /// it; the four newer types are recorded by newer servers but refused by this one's search.
    pub searchable: bool,
    /// Rows of this type belong to an organisation; all others are site-wide.
    pub org_scoped: bool,
    /// Coder looks up per row whether the resource is gone.
    pub deletable: bool,
}

const fn rt(
    value: &'static str,
    friendly: &'static str,
    org_scoped: bool,
    deletable: bool,
) -> ResourceType {
    ResourceType {
        value,
        friendly,
        searchable: true,
        org_scoped,
        deletable,
    }
}

const fn newer(value: &'static str, friendly: &'static str, org_scoped: bool) -> ResourceType {
    ResourceType {
        searchable: false,
        ..rt(value, friendly, org_scoped, false)
    }
}

/// The 42 resource types current servers record (§14.2), in Coder's order.
pub(super) const RESOURCE_TYPES: &[ResourceType] = &[
    rt("template", "template", true, true),
    rt("template_version", "template version", true, false),
    rt("user", "user", false, true),
    rt("workspace", "workspace", true, true),
    rt("workspace_build", "workspace", true, true),
    rt("git_ssh_key", "git ssh key", false, false),
    rt("api_key", "token", false, false),
    rt("group", "group", true, false),
    rt("license", "license", false, false),
    rt("convert_login", "login type conversion", false, false),
    rt("health_settings", "health_settings", false, false),
    rt(
        "notifications_settings",
        "notifications_settings",
        false,
        false,
    ),
    rt("prebuilds_settings", "prebuilds_settings", false, false),
    rt(
        "oauth2_provider_settings",
        "oauth2 provider settings",
        false,
        false,
    ),
    rt("workspace_proxy", "workspace proxy", false, false),
    rt("organization", "organization", true, false),
    rt("oauth2_provider_app", "oauth2 app", false, true),
    rt(
        "oauth2_provider_app_secret",
        "oauth2 app secret",
        false,
        true,
    ),
    rt("custom_role", "custom role", true, false),
    rt("organization_member", "organization member", true, false),
    rt(
        "notification_template",
        "notification template",
        false,
        false,
    ),
    rt("idp_sync_settings_organization", "settings", true, false),
    rt("idp_sync_settings_group", "settings", true, false),
    rt("idp_sync_settings_role", "settings", true, false),
    rt("workspace_agent", "workspace agent", true, true),
    rt("workspace_app", "workspace app", true, true),
    rt("task", "task", true, true),
    rt("ai_seat", "ai seat", false, false),
    rt("ai_provider", "ai provider", false, false),
    rt("ai_provider_key", "ai provider key", false, false),
    rt("ai_gateway_key", "ai gateway key", false, false),
    rt("group_ai_budget", "group ai budget", true, false),
    rt(
        "user_ai_budget_override",
        "user ai budget override",
        false,
        false,
    ),
    rt("chat", "chat", true, true),
    newer("chat_project", "chat project", true),
    rt("mcp_server_config", "mcp server config", false, false),
    newer("chat_model_config", "chat model config", false),
    rt("user_secret", "user secret", false, true),
    rt("user_skill", "user skill", false, false),
    rt(
        "chat_instruction_settings",
        "chat instruction settings",
        false,
        false,
    ),
    newer(
        "chat_operational_settings",
        "chat operational settings",
        false,
    ),
    newer("experiment_rule", "experiment rule", false),
];

/// Build reasons the demo records (§14.5).
pub(super) const BUILD_REASONS: &[&str] = &[
    "initiator",
    "autostart",
    "autostop",
    "dormancy",
    "failedstop",
    "autodelete",
    "dashboard",
    "cli",
    "ssh_connection",
    "vscode_connection",
    "jetbrains_connection",
];

/// Build reasons the search also accepts: the reference's server still has the Tasks ones.
pub(super) const TASK_BUILD_REASONS: &[&str] =
    &["task_auto_pause", "task_manual_pause", "task_resume"];

/// Coder's friendly verb for `action`, `unknown` for a value it does not know.
pub(super) fn verb(action: &str) -> &'static str {
    ACTIONS
        .iter()
        .find(|a| a.value == action)
        .map_or("unknown", |a| a.verb)
}

/// The catalogue entry of `resource_type`.
pub(super) fn resource_type(value: &str) -> Option<&'static ResourceType> {
    RESOURCE_TYPES.iter().find(|t| t.value == value)
}

/// An organisation of the made-up deployment.
pub(super) struct Organization {
    pub id: u128,
    pub name: &'static str,
    pub display_name: &'static str,
    pub icon: &'static str,
}

pub(super) const ORGANIZATIONS: &[Organization] = &[
    Organization {
        id: 0x5a6f_0e2c_9d1b_4c6e_8f3a_7b2d_1e0c_9a88,
        name: "coder",
        display_name: "Coder",
        icon: "/emojis/1f957.png",
    },
    Organization {
        id: 0x7c1d_2e3f_4a5b_4c6d_9e7f_8a9b_0c1d_2e3f,
        name: "platform",
        display_name: "Platform Engineering",
        icon: "",
    },
    Organization {
        id: 0x9e8d_7c6b_5a49_4837_a625_1403_f2e1_d0c9,
        name: "data-science",
        display_name: "Data Science & ML",
        icon: "/emojis/1f52c.png",
    },
];

/// A user of the made-up deployment.
pub(super) struct User {
    pub username: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub status: &'static str,
    pub login_type: &'static str,
    /// `(name, display_name)`.
    pub roles: &'static [(&'static str, &'static str)],
    /// Soft-deleted: still shown on its rows, never matched by `username:`.
    pub deleted: bool,
    /// Leaves out `name` and `avatar_url` when empty, as current servers do.
    pub omits_empty: bool,
}

pub(super) const USERS: &[User] = &[
    User {
        username: "admin",
        name: "",
        email: "admin@example.com",
        status: "active",
        login_type: "password",
        roles: &[("owner", "Owner")],
        deleted: false,
        omits_empty: false,
    },
    User {
        username: "bruno",
        name: "Bruno Díaz",
        email: "bruno@example.com",
        status: "active",
        login_type: "oidc",
        roles: &[],
        deleted: false,
        omits_empty: false,
    },
    User {
        username: "carol",
        name: "Carol Ng",
        email: "Carol.Ng@Example.com",
        status: "active",
        login_type: "github",
        roles: &[("auditor", "Auditor")],
        deleted: false,
        omits_empty: true,
    },
    User {
        username: "dave",
        name: "Dave <ops> & \"Co\"",
        email: "dave@example.com",
        status: "suspended",
        login_type: "password",
        roles: &[],
        deleted: false,
        omits_empty: false,
    },
    User {
        username: "erin",
        name: "Erin",
        email: "erin@example.com",
        status: "dormant",
        login_type: "oidc",
        roles: &[],
        deleted: false,
        omits_empty: true,
    },
    User {
        username: "ci-bot",
        name: "",
        email: "ci-bot@example.com",
        status: "active",
        login_type: "none",
        roles: &[],
        deleted: false,
        omits_empty: true,
    },
    User {
        username: "frank",
        name: "Frank (left)",
        email: "frank@example.com",
        status: "active",
        login_type: "password",
        roles: &[],
        deleted: true,
        omits_empty: false,
    },
    User {
        username: "pat",
        name: "Pat Platform",
        email: "pat@example.com",
        status: "active",
        login_type: "token",
        roles: &[("user-admin", "User Admin")],
        deleted: false,
        omits_empty: false,
    },
];

/// Resource types of the everyday events after the opening mix, weighted by repetition.
pub(super) const COMMON_TYPES: &[&str] = &[
    "workspace",
    "workspace",
    "workspace_build",
    "workspace_build",
    "workspace_build",
    "template",
    "template_version",
    "user",
    "api_key",
    "api_key",
    "group",
    "organization_member",
    "git_ssh_key",
    "license",
    "custom_role",
    "chat",
];

/// Actions that make sense for a resource type, weighted by repetition; the last entry is
/// every other type's.
pub(super) const ACTIONS_FOR: &[(&str, &[&str])] = &[
    ("workspace_build", &["start", "stop", "start", "delete"]),
    (
        "api_key",
        &["login", "logout", "login", "create", "delete", "register"],
    ),
    (
        "user",
        &[
            "create",
            "write",
            "delete",
            "request_password_reset",
            "write",
        ],
    ),
    ("workspace_agent", &["connect", "disconnect"]),
    ("workspace_app", &["open", "close"]),
    ("license", &["create", "delete"]),
    ("git_ssh_key", &["create", "delete"]),
    ("convert_login", &["create"]),
    ("", &["create", "write", "write", "delete"]),
];

/// The resource type a row showing an action of the opening mix gets; the last entry is
/// every other action's.
pub(super) const TYPE_FOR: &[(&[&str], &str)] = &[
    (&["start", "stop"], "workspace_build"),
    (&["login", "logout", "register"], "api_key"),
    (&["request_password_reset"], "user"),
    (&["connect", "disconnect"], "workspace_agent"),
    (&["open", "close"], "workspace_app"),
    (&[], "template"),
];

pub(super) const WORKSPACES: &[&str] = &[
    "bruno-dev",
    "gpu-trainer",
    "docs-site",
    "test2",
    "Mixed-Case-WS",
    "rust monorepo",
];
pub(super) const TEMPLATES: &[&str] = &["docker", "kubernetes", "aws-linux", "gpu:cuda"];
pub(super) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Coder v2 CLI",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "terraform-provider-coderd/0.0.9 \"beta\" <internal> & co",
];
pub(super) const IPS: &[&str] = &[
    "10.0.4.17",
    "203.0.113.9",
    "::1",
    "127.0.0.1",
    "2001:db8::42",
    "",
];
