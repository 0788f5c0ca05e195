//! The demo's event generator: deterministic rows that look like a real deployment's and
//! exercise every shape the wire format allows, drawn from the catalogue.
//!
//! Every action and resource type appears; workspace builds carry `additional_fields`;
//! secrets appear in diffs both blanked and omitted; Go structs leak into diffs; some users
//! are gone (`user: null`), some are soft-deleted, some omit optional keys; site-wide rows
//! have no `organization`; times vary in precision and some are equal.
//!
//! An event is a pure function of its index, its time and the generator's state before it,
//! so a deep trail keeps only those and the columns its search reads, and makes a row's JSON
//! again when a page returns it ([`Generator::replay`]).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::catalogue::{
    self, ACTIONS, ACTIONS_FOR, BUILD_REASONS, COMMON_TYPES, IPS, ORGANIZATIONS, RESOURCE_TYPES,
    TEMPLATES, TYPE_FOR, USER_AGENTS, USERS, WORKSPACES,
};

/// Rows in the default demo trail.
pub(super) const DEFAULT_ROWS: usize = 320;

/// Where the default trail's newest row sits (the trail is generated backwards from it).
const START: &str = "2026-04-02T09:15:42.123456Z";

/// splitmix64: a tiny deterministic generator whose whole state is one number, so an event
/// can be made again from the state it started with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rng(pub u64);

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

/// A user as rows show it.
pub(super) struct User {
    pub id: Uuid,
    pub json: Value,
}

fn users(rng: &mut Rng) -> Vec<User> {
    let base = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    USERS
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let id = rng.uuid();
            let created = base
                + Duration::days(i64::try_from(i * 37).unwrap_or(0))
                + Duration::microseconds(500_000);
            let updated = created + Duration::days(90) + Duration::microseconds(880_014);
            let last_seen = if spec.status == "dormant" {
                "0001-01-01T00:00:00Z".to_owned()
            } else {
                coder_time(updated + Duration::days(30) + Duration::microseconds(331))
            };
            let mut user = Map::new();
            user.insert("id".into(), json!(id));
            user.insert("username".into(), json!(spec.username));
            let avatar = if i % 3 == 1 {
                format!("https://avatars.example.com/{}.png", spec.username)
            } else {
                String::new()
            };
            for (key, value) in [("name", spec.name.to_owned()), ("avatar_url", avatar)] {
                if !(spec.omits_empty && value.is_empty()) {
                    user.insert(key.into(), json!(value));
                }
            }
            user.insert("email".into(), json!(spec.email));
            user.insert("created_at".into(), json!(coder_time(created)));
            user.insert("updated_at".into(), json!(coder_time(updated)));
            user.insert("last_seen_at".into(), json!(last_seen));
            user.insert("status".into(), json!(spec.status));
            user.insert("login_type".into(), json!(spec.login_type));
            user.insert("has_ai_seat".into(), json!(false));
            user.insert("organization_ids".into(), json!([]));
            user.insert(
                "roles".into(),
                Value::Array(
                    spec.roles
                        .iter()
                        .map(|(name, display)| json!({"name": name, "display_name": display}))
                        .collect(),
                ),
            );
            User {
                id,
                json: Value::Object(user),
            }
        })
        .collect()
}

/// How far apart generated rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pace {
    /// The default trail's: 30 s to about 67 min apart, about 42 rows a day.
    Default,
    /// About this many rows a UTC day (whole seconds apart at random, plus a fraction), up
    /// to about 200,000, where rows come a fraction of a second apart.
    PerDay(u32),
}

/// How an event's time is set.
#[derive(Debug, Clone, Copy)]
pub(super) enum Clock {
    /// One step older than the given time (the opening trail is generated newest first).
    Back(Pace),
    /// Made again for a row of the opening trail: the same draws as [`Clock::Back`], at the
    /// time the row got then.
    Replay(Pace),
    /// At exactly the given time (a row recorded while the demo runs).
    At,
}

/// One generated event: the columns the demo's search reads, and its JSON when asked for.
pub(super) struct Event {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    pub request_id: Uuid,
    pub resource_id: Uuid,
    pub resource_target: String,
    pub resource_type: &'static str,
    pub action: &'static str,
    /// Index into [`USERS`].
    pub user: Option<usize>,
    /// Index into [`ORGANIZATIONS`].
    pub organization: Option<usize>,
    pub build_reason: Option<&'static str>,
    pub json: Option<Value>,
}

/// Actions that make sense for a resource type.
fn actions_for(resource_type: &str) -> &'static [&'static str] {
    ACTIONS_FOR
        .iter()
        .find(|(t, _)| *t == resource_type || t.is_empty())
        .map_or(&[], |(_, actions)| *actions)
}

/// The resource type a row showing `action` should have.
fn type_for(action: &str) -> &'static str {
    TYPE_FOR
        .iter()
        .find(|(actions, _)| actions.contains(&action) || actions.is_empty())
        .map_or("template", |(_, t)| *t)
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
        text.push_str(catalogue::verb(action));
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
        text.push_str(catalogue::resource_type(resource_type).map_or("unknown", |t| t.friendly));
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
            let reason = rng.pick(BUILD_REASONS);
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

/// Makes events: the same deterministic mix for the opening trail and, continuing the same
/// sequence (so no id repeats), for the rows a live demo records later.
pub(super) struct Generator {
    rng: Rng,
    users: Vec<User>,
}

impl Generator {
    pub(super) fn new() -> Self {
        let mut rng = Rng(0x00C0_DE00_A0D1_7000);
        let users = users(&mut rng);
        Self { rng, users }
    }

    /// The newest row's time of a freshly generated trail, before the first step back.
    pub(super) fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(START)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    pub(super) fn users(&self) -> &[User] {
        &self.users
    }

    /// The state the next event starts from; with its index and time it makes that event
    /// again.
    pub(super) fn state(&self) -> u64 {
        self.rng.0
    }

    /// The row JSON of the event made from `state` as the `i`-th, at `time`.
    pub(super) fn replay(&self, i: usize, state: u64, time: DateTime<Utc>, clock: Clock) -> Value {
        let mut again = Self {
            rng: Rng(state),
            users: Vec::new(),
        };
        let mut time = time;
        let event = again.draw(&self.users, i, &mut time, clock, true);
        event.json.unwrap_or_default()
    }

    /// The `i`-th event of the mix (the first ones cover every resource type and action);
    /// see [`Clock`] for its time. `json` asks for the row's JSON as well as its columns.
    pub(super) fn event(
        &mut self,
        i: usize,
        time: &mut DateTime<Utc>,
        clock: Clock,
        json: bool,
    ) -> Event {
        let users = std::mem::take(&mut self.users);
        let event = self.draw(&users, i, time, clock, json);
        self.users = users;
        event
    }

    #[allow(
        clippy::too_many_lines,
        reason = "the event mix is one readable recipe"
    )]
    fn draw(
        &mut self,
        users: &[User],
        i: usize,
        time: &mut DateTime<Utc>,
        clock: Clock,
        full: bool,
    ) -> Event {
        let rng = &mut self.rng;
        let (resource_type, action): (&'static str, &'static str) = if i < RESOURCE_TYPES.len() {
            let rt = RESOURCE_TYPES[i].value;
            (rt, rng.pick(actions_for(rt)))
        } else if let Some(action) = ACTIONS.get(i - RESOURCE_TYPES.len()) {
            (type_for(action.value), action.value)
        } else {
            let rt = rng.pick(COMMON_TYPES);
            (rt, rng.pick(actions_for(rt)))
        };
        let kind = catalogue::resource_type(resource_type);
        let automatic = resource_type == "workspace_build" && rng.chance(30);
        let actor = if rng.chance(6) {
            None
        } else {
            Some(rng.below(USERS.len()))
        };
        let owner = USERS[actor.unwrap_or(1)].username;
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
            let subsystem = rng.pick(&["dormancy", "autostart", "autostop"]);
            draft.additional_fields =
                json!({"automatic_actor": "coder", "automatic_subsystem": subsystem});
            draft.build_reason = Some(rng.pick(&["autostart", "autostop", "dormancy"]));
        }
        if i % 97 == 13 {
            draft.additional_fields = Value::Null;
        }
        let is_deleted = kind.is_some_and(|k| k.deletable) && rng.chance(8);
        if is_deleted {
            draft.link = String::new();
        }
        let organization = kind
            .is_some_and(|k| k.org_scoped)
            .then(|| rng.below(ORGANIZATIONS.len()));
        let request_id = if rng.chance(4) {
            Uuid::nil()
        } else {
            rng.uuid()
        };

        // Every 25th row of the opening trail shares its neighbour's time exactly.
        if let Clock::Back(pace) | Clock::Replay(pace) = clock
            && i % 25 != 24
        {
            let micros = match rng.below(4) {
                0 => 0,
                1 => 500_000,
                2 => rng.below(1000) * 1000,
                _ => rng.below(1_000_000),
            };
            let seconds = match pace {
                Pace::Default => 30 + rng.below(4000),
                Pace::PerDay(rows) => rng.below((172_800 / rows.max(1) as usize).max(1)),
            };
            if matches!(clock, Clock::Back(_)) {
                *time -= Duration::seconds(i64::try_from(seconds).unwrap_or(30))
                    + Duration::microseconds(i64::try_from(micros).unwrap_or(0));
            }
        }
        let time = *time;
        let (ip, user_agent) = if resource_type == "workspace_build" {
            ("", "")
        } else {
            (rng.pick(IPS), rng.pick(USER_AGENTS))
        };
        let id = rng.uuid();
        let json = full.then(|| {
            let mut row = Map::new();
            row.insert("id".into(), json!(id));
            row.insert("request_id".into(), json!(request_id));
            row.insert("time".into(), json!(coder_time(time)));
            row.insert("ip".into(), json!(ip));
            row.insert("user_agent".into(), json!(user_agent));
            row.insert("resource_type".into(), json!(resource_type));
            row.insert("resource_id".into(), json!(resource_id));
            row.insert("resource_target".into(), json!(draft.resource_target));
            let icon = if resource_type == "template" {
                "/icon/docker.png"
            } else {
                ""
            };
            row.insert("resource_icon".into(), json!(icon));
            row.insert("action".into(), json!(action));
            row.insert("diff".into(), std::mem::take(&mut draft.diff));
            row.insert("status_code".into(), json!(status));
            row.insert(
                "additional_fields".into(),
                std::mem::take(&mut draft.additional_fields),
            );
            row.insert(
                "description".into(),
                json!(describe(action, resource_type, status)),
            );
            row.insert("resource_link".into(), json!(draft.link));
            row.insert("is_deleted".into(), json!(is_deleted));
            let org = organization.map(|o| &ORGANIZATIONS[o]);
            row.insert(
                "organization_id".into(),
                json!(org.map_or(Uuid::nil(), |o| Uuid::from_u128(o.id))),
            );
            if let Some(org) = org {
                row.insert(
                    "organization".into(),
                    json!({"id": Uuid::from_u128(org.id), "name": org.name, "display_name": org.display_name, "icon": org.icon}),
                );
            }
            row.insert(
                "user".into(),
                actor.map_or(Value::Null, |u| users[u].json.clone()),
            );
            Value::Object(row)
        });

        Event {
            id,
            time,
            request_id,
            resource_id,
            resource_target: draft.resource_target,
            resource_type,
            action,
            user: actor,
            organization,
            build_reason: draft.build_reason.filter(|_| {
                resource_type == "workspace_build"
                    || (resource_type == "workspace" && action == "create")
            }),
            json,
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

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
