//! The enumerated values Coder documents today (coder-audit-api.md §14), in one place.
//!
//! The model never restricts a field to these lists: Coder's enums are open and rows carry
//! whatever string a newer server wrote. The lists serve the typed filters (the GraphQL and
//! protobuf enums are checked against them), and the demo upstream, which, like a real
//! server, accepts exactly its own values in search queries and describes rows with Coder's
//! friendly wording.

/// One value of a Coder enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownValue {
    /// Coder's wire value, e.g. `request_password_reset`.
    pub value: &'static str,
    /// Coder's friendly wording, as its UI and audit descriptions use it.
    pub description: &'static str,
    /// Why the value is deprecated, for values Coder no longer records.
    pub deprecation: Option<&'static str>,
}

impl KnownValue {
    const fn new(value: &'static str, description: &'static str) -> Self {
        Self {
            value,
            description,
            deprecation: None,
        }
    }

    const fn deprecated(
        value: &'static str,
        description: &'static str,
        reason: &'static str,
    ) -> Self {
        Self {
            value,
            description,
            deprecation: Some(reason),
        }
    }
}

const CONNECTION_LOG: &str =
    "Coder records connections in its connection log now; only older rows carry this value.";
const UNUSED: &str = "Never recorded by Coder.";
const TASKS_REMOVED: &str =
    "Coder removed the Tasks feature; only rows recorded before carry this value.";

/// Audit actions with Coder's friendly verb.
pub const ACTIONS: &[KnownValue] = &[
    KnownValue::new("create", "created"),
    KnownValue::new("write", "updated"),
    KnownValue::new("delete", "deleted"),
    KnownValue::new("start", "started"),
    KnownValue::new("stop", "stopped"),
    KnownValue::new("login", "logged in"),
    KnownValue::new("logout", "logged out"),
    KnownValue::new("register", "registered"),
    KnownValue::new("request_password_reset", "password reset requested"),
    KnownValue::deprecated("connect", "connected", CONNECTION_LOG),
    KnownValue::deprecated("disconnect", "disconnected", CONNECTION_LOG),
    KnownValue::deprecated("open", "opened", CONNECTION_LOG),
    KnownValue::deprecated("close", "closed", UNUSED),
];

/// Resource types with Coder's friendly name.
pub const RESOURCE_TYPES: &[KnownValue] = &[
    KnownValue::new("template", "template"),
    KnownValue::new("template_version", "template version"),
    KnownValue::new("user", "user"),
    KnownValue::new("workspace", "workspace"),
    KnownValue::new("workspace_build", "workspace"),
    KnownValue::new("git_ssh_key", "git ssh key"),
    KnownValue::new("api_key", "token"),
    KnownValue::new("group", "group"),
    KnownValue::new("license", "license"),
    KnownValue::new("convert_login", "login type conversion"),
    KnownValue::new("health_settings", "health_settings"),
    KnownValue::new("notifications_settings", "notifications_settings"),
    KnownValue::new("prebuilds_settings", "prebuilds_settings"),
    KnownValue::new("oauth2_provider_settings", "oauth2 provider settings"),
    KnownValue::new("workspace_proxy", "workspace proxy"),
    KnownValue::new("organization", "organization"),
    KnownValue::new("oauth2_provider_app", "oauth2 app"),
    KnownValue::new("oauth2_provider_app_secret", "oauth2 app secret"),
    KnownValue::new("custom_role", "custom role"),
    KnownValue::new("organization_member", "organization member"),
    KnownValue::new("notification_template", "notification template"),
    KnownValue::new("idp_sync_settings_organization", "settings"),
    KnownValue::new("idp_sync_settings_group", "settings"),
    KnownValue::new("idp_sync_settings_role", "settings"),
    KnownValue::deprecated("workspace_agent", "workspace agent", CONNECTION_LOG),
    KnownValue::deprecated("workspace_app", "workspace app", CONNECTION_LOG),
    KnownValue::deprecated("task", "task", TASKS_REMOVED),
    KnownValue::new("ai_seat", "ai seat"),
    KnownValue::new("ai_provider", "ai provider"),
    KnownValue::new("ai_provider_key", "ai provider key"),
    KnownValue::new("ai_gateway_key", "ai gateway key"),
    KnownValue::new("group_ai_budget", "group ai budget"),
    KnownValue::new("user_ai_budget_override", "user ai budget override"),
    KnownValue::new("chat", "chat"),
    KnownValue::new("chat_project", "chat project"),
    KnownValue::new("mcp_server_config", "mcp server config"),
    KnownValue::new("chat_model_config", "chat model config"),
    KnownValue::new("user_secret", "user secret"),
    KnownValue::new("user_skill", "user skill"),
    KnownValue::new("chat_instruction_settings", "chat instruction settings"),
    KnownValue::new("chat_operational_settings", "chat operational settings"),
    KnownValue::new("experiment_rule", "experiment rule"),
];

/// Reasons a workspace build was started, as the `build_reason:` search key accepts them.
pub const BUILD_REASONS: &[KnownValue] = &[
    KnownValue::new("initiator", "started by a user"),
    KnownValue::new("autostart", "started by the autostart schedule"),
    KnownValue::new("autostop", "stopped by the autostop schedule"),
    KnownValue::new("dormancy", "stopped because the workspace became dormant"),
    KnownValue::new("failedstop", "stopped after a failed build"),
    KnownValue::new("autodelete", "deleted automatically"),
    KnownValue::new("dashboard", "started from the dashboard"),
    KnownValue::new("cli", "started from the CLI"),
    KnownValue::new("ssh_connection", "started by an SSH connection"),
    KnownValue::new("vscode_connection", "started by a VS Code connection"),
    KnownValue::new("jetbrains_connection", "started by a JetBrains connection"),
];

/// Whether `value` is one of `list`.
#[must_use]
pub fn contains(list: &[KnownValue], value: &str) -> bool {
    list.iter().any(|known| known.value == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_the_reference_counts() {
        assert_eq!(ACTIONS.len(), 13);
        assert_eq!(RESOURCE_TYPES.len(), 42);
        assert_eq!(BUILD_REASONS.len(), 11);
    }
}
