//! The demo's audit trail: a few hundred deterministic rows that look like a real
//! deployment's and exercise every shape the wire format allows.
//!
//! Every action and resource type appears; workspace builds carry `additional_fields`;
//! secrets appear in diffs both blanked and omitted; Go structs leak into diffs; some users
//! are gone (`user: null`), some are soft-deleted, some omit optional keys; site-wide rows
//! have no `organization`; times vary in precision and some are equal. Rows are built as JSON
//! in Coder's key order and serialised once, so serving a page only copies bytes.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::model::known;

/// Rows in the default demo trail.
pub(super) const DEFAULT_ROWS: usize = 320;

pub(super) struct Organization {
    pub id: Uuid,
    pub name: &'static str,
    display_name: &'static str,
    icon: &'static str,
}

pub(super) struct User {
    pub id: Uuid,
    pub username: &'static str,
    pub email: &'static str,
    /// Soft-deleted users still appear on their rows but never match `username:`.
    pub deleted: bool,
    pub json: Value,
}

/// One row plus the columns Coder filters on.
pub(super) struct Row {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    pub request_id: Uuid,
    pub resource_id: Uuid,
    pub resource_target: String,
    pub resource_type: &'static str,
    pub action: &'static str,
    pub user: Option<usize>,
    pub organization_id: Uuid,
    pub build_reason: Option<&'static str>,
    pub json: Value,
}

pub(super) struct Dataset {
    pub organizations: Vec<Organization>,
    pub users: Vec<User>,
    /// Newest first.
    pub rows: Vec<Row>,
}

/// splitmix64: a tiny deterministic generator, so the demo is the same on every start.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next()) << 64 | u128::from(self.next())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

const ZERO_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// Coder's time format: RFC 3339, UTC as `Z`, trailing fraction zeros trimmed.
pub(super) fn coder_time(time: DateTime<Utc>) -> String {
    let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = time.timestamp_subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

fn organizations() -> Vec<Organization> {
    vec![
        Organization {
            id: Uuid::from_u128(0x5a6f_0e2c_9d1b_4c6e_8f3a_7b2d_1e0c_9a88),
            name: "coder",
            display_name: "Coder",
            icon: "/emojis/1f957.png",
        },
        Organization {
            id: Uuid::from_u128(0x7c1d_2e3f_4a5b_4c6d_9e7f_8a9b_0c1d_2e3f),
            name: "platform",
            display_name: "Platform Engineering",
            icon: "",
        },
        Organization {
            id: Uuid::from_u128(0x9e8d_7c6b_5a49_4837_a625_1403_f2e1_d0c9),
            name: "data-science",
            display_name: "Data Science & ML",
            icon: "/emojis/1f52c.png",
        },
    ]
}

/// `(username, name, email, status, login_type, roles, deleted, omits empty keys)`
type UserSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    bool,
    bool,
);

const USERS: [UserSpec; 8] = [
    (
        "admin",
        "",
        "admin@example.com",
        "active",
        "password",
        &[("owner", "Owner")],
        false,
        false,
    ),
    (
        "bruno",
        "Bruno Díaz",
        "bruno@example.com",
        "active",
        "oidc",
        &[],
        false,
        false,
    ),
    (
        "carol",
        "Carol Ng",
        "Carol.Ng@Example.com",
        "active",
        "github",
        &[("auditor", "Auditor")],
        false,
        true,
    ),
    (
        "dave",
        "Dave <ops> & \"Co\"",
        "dave@example.com",
        "suspended",
        "password",
        &[],
        false,
        false,
    ),
    (
        "erin",
        "Erin",
        "erin@example.com",
        "dormant",
        "oidc",
        &[],
        false,
        true,
    ),
    (
        "ci-bot",
        "",
        "ci-bot@example.com",
        "active",
        "none",
        &[],
        false,
        true,
    ),
    (
        "frank",
        "Frank (left)",
        "frank@example.com",
        "active",
        "password",
        &[],
        true,
        false,
    ),
    (
        "pat",
        "Pat Platform",
        "pat@example.com",
        "active",
        "token",
        &[("user-admin", "User Admin")],
        false,
        false,
    ),
];

fn users(rng: &mut Rng) -> Vec<User> {
    let base = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    USERS
        .iter()
        .enumerate()
        .map(
            |(i, &(username, name, email, status, login_type, roles, deleted, omit_empty))| {
                let id = rng.uuid();
                let created = base
                    + Duration::days(i64::try_from(i * 37).unwrap_or(0))
                    + Duration::microseconds(500_000);
                let updated = created + Duration::days(90) + Duration::microseconds(880_014);
                let last_seen = if status == "dormant" {
                    "0001-01-01T00:00:00Z".to_owned()
                } else {
                    coder_time(updated + Duration::days(30) + Duration::microseconds(331))
                };
                let mut user = Map::new();
                user.insert("id".into(), json!(id));
                user.insert("username".into(), json!(username));
                let avatar = if i % 3 == 1 {
                    format!("https://avatars.example.com/{username}.png")
                } else {
                    String::new()
                };
                for (key, value) in [("name", name.to_owned()), ("avatar_url", avatar)] {
                    if !(omit_empty && value.is_empty()) {
                        user.insert(key.into(), json!(value));
                    }
                }
                user.insert("email".into(), json!(email));
                user.insert("created_at".into(), json!(coder_time(created)));
                user.insert("updated_at".into(), json!(coder_time(updated)));
                user.insert("last_seen_at".into(), json!(last_seen));
                user.insert("status".into(), json!(status));
                user.insert("login_type".into(), json!(login_type));
                user.insert("has_ai_seat".into(), json!(false));
                user.insert("organization_ids".into(), json!([]));
                user.insert(
                    "roles".into(),
                    Value::Array(
                        roles
                            .iter()
                            .map(|(name, display)| json!({"name": name, "display_name": display}))
                            .collect(),
                    ),
                );
                User {
                    id,
                    username,
                    email,
                    deleted,
                    json: Value::Object(user),
                }
            },
        )
        .collect()
}

/// Types Coder scopes to an organisation; everything else is site-wide.
const ORG_SCOPED: &[&str] = &[
    "template",
    "template_version",
    "workspace",
    "workspace_build",
    "group",
    "organization",
    "custom_role",
    "organization_member",
    "idp_sync_settings_organization",
    "idp_sync_settings_group",
    "idp_sync_settings_role",
    "workspace_agent",
    "workspace_app",
    "task",
    "group_ai_budget",
    "chat",
    "chat_project",
];

/// Types whose deletion Coder looks up per row.
const DELETABLE: &[&str] = &[
    "template",
    "user",
    "workspace",
    "workspace_build",
    "workspace_agent",
    "workspace_app",
    "oauth2_provider_app",
    "oauth2_provider_app_secret",
    "task",
    "chat",
    "user_secret",
];

const COMMON_TYPES: &[&str] = &[
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

const WORKSPACES: &[&str] = &[
    "bruno-dev",
    "gpu-trainer",
    "docs-site",
    "test2",
    "Mixed-Case-WS",
    "rust monorepo",
];
const TEMPLATES: &[&str] = &["docker", "kubernetes", "aws-linux", "gpu:cuda"];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Coder v2 CLI",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "terraform-provider-coderd/0.0.9 \"beta\" <internal> & co",
];
const IPS: &[&str] = &[
    "10.0.4.17",
    "203.0.113.9",
    "::1",
    "127.0.0.1",
    "2001:db8::42",
    "",
];

/// Actions that make sense for a resource type.
fn actions_for(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "workspace_build" => &["start", "stop", "start", "delete"],
        "api_key" => &["login", "logout", "login", "create", "delete", "register"],
        "user" => &[
            "create",
            "write",
            "delete",
            "request_password_reset",
            "write",
        ],
        "workspace_agent" => &["connect", "disconnect"],
        "workspace_app" => &["open", "close"],
        "license" | "git_ssh_key" => &["create", "delete"],
        "convert_login" => &["create"],
        _ => &["create", "write", "write", "delete"],
    }
}

/// The resource type a row showing `action` should have.
fn type_for(action: &str) -> &'static str {
    match action {
        "start" | "stop" => "workspace_build",
        "login" | "logout" | "register" => "api_key",
        "request_password_reset" => "user",
        "connect" | "disconnect" => "workspace_agent",
        "open" | "close" => "workspace_app",
        _ => "template",
    }
}

/// Coder's description template (coder-audit-api.md §10).
fn describe(action: &str, resource_type: &str, status: u16) -> String {
    let mut text = String::new();
    if action != "request_password_reset" {
        text.push_str("{user} ");
    }
    if status == 303 {
        text.push_str("was redirected attempting to ");
        text.push_str(action);
    } else if status >= 400 {
        text.push_str("unsuccessfully attempted to ");
        text.push_str(action);
    } else {
        text.push_str(known::friendly_action(action));
    }
    if resource_type == "api_key" && matches!(action, "login" | "logout" | "register") {
        return text;
    }
    if resource_type == "git_ssh_key" {
        text.push_str(" the git ssh key");
        return text;
    }
    if action == "request_password_reset" {
        text.push_str(" for");
    } else {
        text.push(' ');
        text.push_str(known::friendly_resource_type(resource_type));
    }
    if resource_type == "convert_login" {
        text.push_str(" to");
    }
    text.push_str(" {target}");
    text
}

struct Draft {
    resource_target: String,
    diff: Value,
    additional_fields: Value,
    link: String,
    build_reason: Option<&'static str>,
}

/// Target, diff, additional fields and link of one event.
#[allow(
    clippy::too_many_lines,
    reason = "one arm per kind of event reads best as a table"
)]
fn draft(
    rng: &mut Rng,
    resource_type: &'static str,
    action: &str,
    resource_id: Uuid,
    owner: &str,
    ok: bool,
) -> Draft {
    let mut draft = Draft {
        resource_target: String::new(),
        diff: json!({}),
        additional_fields: json!({}),
        link: String::new(),
        build_reason: None,
    };
    let with_diff = ok && !matches!(action, "login" | "logout" | "register");
    match resource_type {
        "workspace" => {
            let name = rng.pick(WORKSPACES);
            draft.resource_target = String::from(name);
            draft.link = format!("/@{owner}/{name}");
            if action == "create" {
                draft.build_reason = Some(rng.pick(&["initiator", "dashboard", "cli"]));
                if with_diff {
                    draft.diff = json!({"name": {"new": name, "secret": false}, "ttl": {"old": 0, "new": 3_600_000_000_000_i64, "secret": false}});
                }
            } else if with_diff && action == "write" {
                draft.diff = json!({
                    "autostart_schedule": {"old": "null", "new": "CRON_TZ=UTC 30 8 * * 1-5", "secret": false},
                    "ttl": {"old": 0, "new": 3_600_000_000_000_i64, "secret": false}
                });
            }
        }
        "workspace_build" => {
            let name = rng.pick(WORKSPACES);
            let number = 1 + rng.below(40);
            let reason = rng.pick(known::BUILD_REASONS).value;
            draft.build_reason = Some(reason);
            draft.additional_fields = match rng.below(10) {
                0 => json!({"workspace_name": name}),
                1 => {
                    json!({"build_number": "unknown", "build_reason": "unknown", "workspace_id": ZERO_UUID, "workspace_name": "unknown", "workspace_owner": "unknown"})
                }
                _ => {
                    json!({"build_number": number.to_string(), "build_reason": reason, "workspace_id": rng.uuid(), "workspace_name": name, "workspace_owner": owner})
                }
            };
            if draft
                .additional_fields
                .get("build_number")
                .is_some_and(|n| n != "unknown")
            {
                draft.link = format!("/@{owner}/{name}/builds/{number}");
            }
        }
        "template" | "template_version" => {
            let name = rng.pick(TEMPLATES);
            draft.resource_target = String::from(name);
            if resource_type == "template" {
                draft.link = format!("/templates/{name}");
            }
            if with_diff && action == "write" {
                draft.diff = json!({
                    "default_ttl": {"old": 0, "new": 28_800_000_000_000_i64, "secret": false},
                    "display_name": {"old": "", "new": format!("{name} <v2> & more"), "secret": false},
                    "user_acl": {"old": "map[]", "new": "map[3c1e7d2a:[read]]", "secret": false}
                });
            }
        }
        "user" => {
            let target = rng.pick(&["member", "bruno", "erin", "new-hire"]);
            draft.resource_target = String::from(target);
            draft.link = format!("/users?filter={target}");
            if with_diff {
                draft.diff = match action {
                    "request_password_reset" => json!({
                        "hashed_password": {"secret": true},
                        "one_time_passcode_expires_at": {"old": {"Time": "0001-01-01T00:00:00Z", "Valid": false}, "new": {"Time": "2026-04-01T17:59:00.961702Z", "Valid": true}, "secret": false}
                    }),
                    "write" => json!({
                        "hashed_password": {"old": "", "new": "", "secret": true},
                        "roles": {"old": ["member"], "new": ["member", "auditor"], "secret": false},
                        "updated_at": {"old": "2026-01-10T08:00:00.123Z", "new": "2026-04-01T17:45:00.009871Z", "secret": false}
                    }),
                    "create" => {
                        json!({"username": {"new": target, "secret": false}, "login_type": {"new": "password", "secret": false}})
                    }
                    _ => json!({}),
                };
            }
        }
        "git_ssh_key" => {
            draft.resource_target = String::from(owner);
            if with_diff {
                draft.diff = json!({"private_key": {"old": "", "new": "", "secret": true}, "public_key": {"old": "ssh-ed25519 AAAAold", "new": "ssh-ed25519 AAAAnew", "secret": false}});
            }
        }
        "api_key" => {
            if action == "create" || action == "delete" {
                draft.resource_target = String::from(rng.pick(&["ci-token", "grafana", "laptop"]));
            }
            if with_diff && action == "create" {
                draft.diff = json!({"hashed_secret": {"secret": true}, "token_name": {"new": draft.resource_target, "secret": false}, "expires_at": {"new": "2026-07-01T00:00:00Z", "secret": false}});
            }
        }
        "convert_login" => {
            draft.resource_target = String::from("oidc");
            if with_diff {
                draft.diff = json!({
                    "created_at": {"old": "0001-01-01T00:00:00Z", "new": "2023-06-20T20:44:54.243019Z", "secret": false},
                    "state_string": {"old": "", "new": "", "secret": true},
                    "to_type": {"new": "oidc", "secret": false}
                });
            }
        }
        "license" => {
            draft.resource_target = (1 + rng.below(9)).to_string();
            draft.additional_fields = json!({
                "license_uuid": rng.uuid(), "features": {"audit_log": 1, "user_limit": 250}, "raw_counter": 9_007_199_254_740_993_u64,
                "notes": ["from testgenerate", null, 1.5, true]
            });
        }
        "workspace_agent" | "workspace_app" => {
            let name = rng.pick(WORKSPACES);
            draft.resource_target = if resource_type == "workspace_agent" {
                "main".to_owned()
            } else {
                "code-server".to_owned()
            };
            draft.link = format!("/@{owner}/{name}");
        }
        "oauth2_provider_app" | "oauth2_provider_app_secret" => {
            draft.resource_target = String::from("grafana-sso");
            draft.link = format!("/deployment/oauth2-provider/apps/{resource_id}");
            if with_diff && resource_type == "oauth2_provider_app_secret" {
                draft.diff = json!({"hashed_secret": {"secret": true}, "display_secret": {"old": "", "new": "", "secret": true}});
            }
        }
        "chat" => {
            draft.resource_target = String::from("Refactor the billing module");
            draft.link = format!("/agents/{resource_id}");
        }
        "group" => {
            draft.resource_target = String::from(rng.pick(&["everyone", "gpu-users", "sre"]));
            if with_diff && action == "write" {
                draft.diff = json!({"members": {"old": [], "new": [rng.uuid()], "secret": false}, "quota_allowance": {"old": 0, "new": 5, "secret": false}});
            }
        }
        "organization_member" | "custom_role" => {
            draft.resource_target = String::from(rng.pick(&["bruno", "erin", "pat"]));
            if with_diff {
                draft.diff = json!({"roles": {"old": ["organization-member"], "new": ["organization-member", "organization-auditor"], "secret": false}});
            }
        }
        "health_settings" | "notifications_settings" | "prebuilds_settings" => {
            draft.resource_target = String::new();
            if with_diff {
                draft.diff = json!({"dismissed_healthchecks": {"old": null, "new": ["DERP", "Websocket"], "secret": false}});
            }
        }
        other => {
            draft.resource_target = format!("{}-{}", other.replace('_', "-"), 1 + rng.below(3));
        }
    }
    draft
}

/// Builds a demo trail of `count` rows, newest first.
pub(super) fn dataset(count: usize) -> (Dataset, Generator) {
    let mut rng = Rng(0x00C0_DE00_A0D1_7000);
    let organizations = organizations();
    let users = users(&mut rng);
    let mut generator = Generator { rng };
    let mut time = DateTime::parse_from_rfc3339("2026-04-02T09:15:42.123456Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(count);
    for i in 0..count {
        rows.push(generator.event(&organizations, &users, i, &mut time, true));
    }
    let dataset = Dataset {
        organizations,
        users,
        rows,
    };
    (dataset, generator)
}

/// Makes events: the same deterministic mix for the initial trail and, continuing the same
/// sequence (so no id repeats), for the rows a live demo records later.
pub(super) struct Generator {
    rng: Rng,
}

impl Generator {
    /// The `i`-th event of the mix (the first ones cover every resource type and action),
    /// recorded at `time`; with `step_back`, first moves `time` back to before the previous
    /// event (the initial trail is generated newest first).
    #[allow(
        clippy::too_many_lines,
        reason = "the event mix is one readable recipe"
    )]
    pub(super) fn event(
        &mut self,
        organizations: &[Organization],
        users: &[User],
        i: usize,
        time: &mut DateTime<Utc>,
        step_back: bool,
    ) -> Row {
        let rng = &mut self.rng;
        let (resource_type, action): (&'static str, &'static str) =
            if i < known::RESOURCE_TYPES.len() {
                let rt = known::RESOURCE_TYPES[i].value;
                (rt, rng.pick(actions_for(rt)))
            } else if let Some(known::KnownValue { value: action, .. }) =
                known::ACTIONS.get(i - known::RESOURCE_TYPES.len())
            {
                (type_for(action), action)
            } else {
                let rt = rng.pick(COMMON_TYPES);
                (rt, rng.pick(actions_for(rt)))
            };
        let automatic = resource_type == "workspace_build" && rng.chance(30);
        let actor = if rng.chance(6) {
            None
        } else {
            Some(rng.below(users.len()))
        };
        let owner = users[actor.unwrap_or(1)].username;
        let status: u16 = match (action, rng.below(20)) {
            ("login", 0..=3) => 401,
            (_, 0) => 403,
            (_, 1) if resource_type != "workspace_build" => 500,
            (_, 2) if resource_type == "workspace" => 303,
            ("create" | "register", _) => 201,
            _ => 200,
        };
        let ok = status < 400;
        let resource_id = if matches!(resource_type, "api_key" | "git_ssh_key")
            && matches!(action, "login" | "logout" | "register" | "create")
        {
            actor.map_or_else(|| rng.uuid(), |u| users[u].id)
        } else {
            rng.uuid()
        };
        let mut draft = draft(rng, resource_type, action, resource_id, owner, ok);
        if automatic {
            draft.additional_fields = json!({"automatic_actor": "coder", "automatic_subsystem": rng.pick(&["dormancy", "autostart", "autostop"])});
            draft.build_reason = Some(rng.pick(&["autostart", "autostop", "dormancy"]));
        }
        if i % 97 == 13 {
            draft.additional_fields = Value::Null;
        }
        let is_deleted = DELETABLE.contains(&resource_type) && rng.chance(8);
        if is_deleted {
            draft.link = String::new();
        }
        let organization = ORG_SCOPED
            .contains(&resource_type)
            .then(|| &organizations[rng.below(organizations.len())]);
        let request_id = if rng.chance(4) {
            Uuid::nil()
        } else {
            rng.uuid()
        };

        // Mostly seconds apart; every 25th row shares its neighbour's time exactly.
        if step_back && i % 25 != 24 {
            let micros = match rng.below(4) {
                0 => 0,
                1 => 500_000,
                2 => rng.below(1000) * 1000,
                _ => rng.below(1_000_000),
            };
            *time -= Duration::seconds(i64::try_from(30 + rng.below(4000)).unwrap_or(30))
                + Duration::microseconds(i64::try_from(micros).unwrap_or(0));
        }
        let time = *time;
        let (ip, user_agent) = if resource_type == "workspace_build" {
            ("", "")
        } else {
            (rng.pick(IPS), rng.pick(USER_AGENTS))
        };

        let mut row = Map::new();
        let id = rng.uuid();
        row.insert("id".into(), json!(id));
        row.insert("request_id".into(), json!(request_id));
        row.insert("time".into(), json!(coder_time(time)));
        row.insert("ip".into(), json!(ip));
        row.insert("user_agent".into(), json!(user_agent));
        row.insert("resource_type".into(), json!(resource_type));
        row.insert("resource_id".into(), json!(resource_id));
        row.insert("resource_target".into(), json!(draft.resource_target));
        row.insert(
            "resource_icon".into(),
            json!(if resource_type == "template" {
                "/icon/docker.png"
            } else {
                ""
            }),
        );
        row.insert("action".into(), json!(action));
        row.insert("diff".into(), draft.diff);
        row.insert("status_code".into(), json!(status));
        row.insert("additional_fields".into(), draft.additional_fields);
        row.insert(
            "description".into(),
            json!(describe(action, resource_type, status)),
        );
        row.insert("resource_link".into(), json!(draft.link));
        row.insert("is_deleted".into(), json!(is_deleted));
        row.insert(
            "organization_id".into(),
            json!(organization.map_or(Uuid::nil(), |o| o.id)),
        );
        if let Some(org) = organization {
            row.insert(
                "organization".into(),
                json!({"id": org.id, "name": org.name, "display_name": org.display_name, "icon": org.icon}),
            );
        }
        row.insert(
            "user".into(),
            actor.map_or(Value::Null, |u| users[u].json.clone()),
        );

        Row {
            id,
            time,
            request_id,
            resource_id,
            resource_target: draft.resource_target,
            resource_type,
            action,
            user: actor,
            organization_id: organization.map_or(Uuid::nil(), |o| o.id),
            build_reason: draft.build_reason.filter(|_| {
                resource_type == "workspace_build"
                    || (resource_type == "workspace" && action == "create")
            }),
            json: Value::Object(row),
        }
    }
}

/// The last instant a `date_to` filter matches: Coder adds 23:59:59 to the day, so later
/// fractions of that second are excluded.
pub(super) fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(23, 59, 59)
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_action_and_resource_type_and_the_tricky_shapes() {
        let (data, _) = dataset(DEFAULT_ROWS);
        assert_eq!(data.rows.len(), DEFAULT_ROWS);
        for known::KnownValue { value: action, .. } in known::ACTIONS {
            assert!(data.rows.iter().any(|r| r.action == *action), "{action}");
        }
        for known::KnownValue { value: rt, .. } in known::RESOURCE_TYPES {
            assert!(data.rows.iter().any(|r| r.resource_type == *rt), "{rt}");
        }
        assert!(data.rows.iter().any(|r| r.json["user"].is_null()));
        assert!(
            data.rows
                .iter()
                .any(|r| r.json.get("organization").is_none())
        );
        assert!(
            data.rows
                .iter()
                .any(|r| r.json["additional_fields"].is_null())
        );
        assert!(
            data.rows
                .iter()
                .any(|r| r.json["diff"].as_object().is_some_and(|d| d
                    .values()
                    .any(|v| v["secret"] == true && v.get("old").is_none())))
        );
        assert!(
            data.rows
                .iter()
                .any(|r| r.json["additional_fields"].get("build_number").is_some())
        );
        assert!(data.rows.windows(2).all(|w| w[0].time >= w[1].time));
        assert!(data.rows.windows(2).any(|w| w[0].time == w[1].time));
    }

    #[test]
    fn descriptions_follow_coder_rules() {
        assert_eq!(
            describe("start", "workspace_build", 200),
            "{user} started workspace {target}"
        );
        assert_eq!(describe("login", "api_key", 201), "{user} logged in");
        assert_eq!(
            describe("login", "api_key", 401),
            "{user} unsuccessfully attempted to login"
        );
        assert_eq!(
            describe("create", "git_ssh_key", 201),
            "{user} created the git ssh key"
        );
        assert_eq!(
            describe("request_password_reset", "user", 200),
            "password reset requested for {target}"
        );
        assert_eq!(
            describe("create", "convert_login", 201),
            "{user} created login type conversion to {target}"
        );
        assert_eq!(
            describe("write", "workspace", 303),
            "{user} was redirected attempting to write workspace {target}"
        );
    }

    #[test]
    fn coder_time_trims_the_fraction() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        assert_eq!(
            coder_time(t("2026-04-02T09:02:11.500Z")),
            "2026-04-02T09:02:11.5Z"
        );
        assert_eq!(
            coder_time(t("2026-04-02T09:02:11.000Z")),
            "2026-04-02T09:02:11Z"
        );
        assert_eq!(
            coder_time(t("2026-04-02T09:02:11.000331Z")),
            "2026-04-02T09:02:11.000331Z"
        );
    }
}
