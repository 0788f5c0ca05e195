//! The enumerated values Coder documents today (coder-audit-api.md §14), in one place.
//!
//! The model never restricts a field to these lists: Coder's enums are open and rows carry
//! whatever string a newer server wrote. The lists serve the demo upstream, which, like a
//! real server, accepts exactly its own values in search queries and describes rows with
//! Coder's friendly wording.

/// Audit actions with Coder's friendly verb, and whether the value is deprecated.
pub const ACTIONS: &[(&str, &str, bool)] = &[
    ("create", "created", false),
    ("write", "updated", false),
    ("delete", "deleted", false),
    ("start", "started", false),
    ("stop", "stopped", false),
    ("login", "logged in", false),
    ("logout", "logged out", false),
    ("register", "registered", false),
    ("request_password_reset", "password reset requested", false),
    ("connect", "connected", true),
    ("disconnect", "disconnected", true),
    ("open", "opened", true),
    ("close", "closed", true),
];

/// Resource types with Coder's friendly name, and whether the value is deprecated.
pub const RESOURCE_TYPES: &[(&str, &str, bool)] = &[
    ("template", "template", false),
    ("template_version", "template version", false),
    ("user", "user", false),
    ("workspace", "workspace", false),
    ("workspace_build", "workspace", false),
    ("git_ssh_key", "git ssh key", false),
    ("api_key", "token", false),
    ("group", "group", false),
    ("license", "license", false),
    ("convert_login", "login type conversion", false),
    ("health_settings", "health_settings", false),
    ("notifications_settings", "notifications_settings", false),
    ("prebuilds_settings", "prebuilds_settings", false),
    (
        "oauth2_provider_settings",
        "oauth2 provider settings",
        false,
    ),
    ("workspace_proxy", "workspace proxy", false),
    ("organization", "organization", false),
    ("oauth2_provider_app", "oauth2 app", false),
    ("oauth2_provider_app_secret", "oauth2 app secret", false),
    ("custom_role", "custom role", false),
    ("organization_member", "organization member", false),
    ("notification_template", "notification template", false),
    ("idp_sync_settings_organization", "settings", false),
    ("idp_sync_settings_group", "settings", false),
    ("idp_sync_settings_role", "settings", false),
    ("workspace_agent", "workspace agent", true),
    ("workspace_app", "workspace app", true),
    ("task", "task", true),
    ("ai_seat", "ai seat", false),
    ("ai_provider", "ai provider", false),
    ("ai_provider_key", "ai provider key", false),
    ("ai_gateway_key", "ai gateway key", false),
    ("group_ai_budget", "group ai budget", false),
    ("user_ai_budget_override", "user ai budget override", false),
    ("chat", "chat", false),
    ("chat_project", "chat project", false),
    ("mcp_server_config", "mcp server config", false),
    ("chat_model_config", "chat model config", false),
    ("user_secret", "user secret", false),
    ("user_skill", "user skill", false),
    (
        "chat_instruction_settings",
        "chat instruction settings",
        false,
    ),
    (
        "chat_operational_settings",
        "chat operational settings",
        false,
    ),
    ("experiment_rule", "experiment rule", false),
];

/// Reasons a workspace build was started, as the `build_reason:` search key accepts them.
pub const BUILD_REASONS: &[&str] = &[
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

/// Coder's friendly verb for an action; `unknown` for values newer than this list.
#[must_use]
pub fn friendly_action(action: &str) -> &'static str {
    ACTIONS
        .iter()
        .find(|(value, ..)| *value == action)
        .map_or("unknown", |(_, friendly, _)| friendly)
}

/// Coder's friendly name for a resource type; `unknown` for values newer than this list.
#[must_use]
pub fn friendly_resource_type(resource_type: &str) -> &'static str {
    RESOURCE_TYPES
        .iter()
        .find(|(value, ..)| *value == resource_type)
        .map_or("unknown", |(_, friendly, _)| friendly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_the_reference_counts() {
        assert_eq!(ACTIONS.len(), 13);
        assert_eq!(RESOURCE_TYPES.len(), 42);
        assert_eq!(BUILD_REASONS.len(), 11);
        assert_eq!(
            friendly_action("request_password_reset"),
            "password reset requested"
        );
        assert_eq!(friendly_resource_type("api_key"), "token");
        assert_eq!(friendly_resource_type("brand_new"), "unknown");
    }
}
