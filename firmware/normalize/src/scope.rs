//! The monitoring scope as the renderer applies it (`[scope]`, `boxidr_config::Scope`).
//!
//! With an empty scope everyone is monitored. Otherwise an event is in scope when its acting
//! user (the same actor the UEF line names: `created_by`, a login's user `source`, a Shield
//! alert's user) is in scope, or, for admin activity on a user (`source` is a user), when that
//! user is. A user is in scope when its login is one of [`Scope::users`] (case-insensitive), or
//! when the directory records it as a member of one of [`Scope::groups`] (the users sync writes
//! that fact, see [`DirectoryUser::scope_groups`]). Anonymous and unknown users are out of
//! scope. Canary records and malformed records are never filtered (see [`crate::render_record`]).

use std::collections::BTreeSet;

use boxidr_config::Scope;
use boxidr_model::{BoxEvent, UserMini};
use serde_json::Value;

use crate::actor::Actor;
use crate::directory::{DirectoryUser, UserDirectory};
use crate::kind::Kind;

/// [`Scope`] prepared for matching: logins and group names lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeFilter {
    scope: Scope,
    logins: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl ScopeFilter {
    /// The filter for `scope` (an empty scope admits everyone).
    pub fn new(scope: &Scope) -> Self {
        let norm = |s: &String| s.trim().to_lowercase();
        Self {
            scope: scope.clone(),
            logins: scope
                .users
                .iter()
                .map(norm)
                .filter(|s| !s.is_empty())
                .collect(),
            groups: scope
                .groups
                .iter()
                .map(norm)
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    /// The scope as configured (the users sync resolves its groups).
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// True when every user is monitored.
    pub fn is_everyone(&self) -> bool {
        self.logins.is_empty() && self.groups.is_empty()
    }

    /// Whether a user with this login and directory entry is monitored.
    pub fn admits_user(&self, login: Option<&str>, user: Option<&DirectoryUser>) -> bool {
        if self.is_everyone() {
            return true;
        }
        let by_login = login
            .or_else(|| user.and_then(|u| u.login.as_deref()))
            .is_some_and(|l| self.logins.contains(&l.trim().to_lowercase()));
        by_login
            || user.is_some_and(|u| {
                u.scope_groups
                    .iter()
                    .any(|g| self.groups.contains(&g.trim().to_lowercase()))
            })
    }

    /// Whether `event` (of kind `kind`, acted by `actor`) is in scope.
    pub(crate) fn admits<D: UserDirectory + ?Sized>(
        &self,
        event: &BoxEvent,
        kind: Kind,
        actor: Option<&Actor>,
        directory: &D,
    ) -> bool {
        if self.is_everyone() {
            return true;
        }
        let actor_in = actor
            .is_some_and(|a| !a.anonymous && self.admits_user(a.login.as_deref(), a.user.as_ref()));
        actor_in || (kind == Kind::AdminActivity && self.admits_source_user(event, directory))
    }

    /// The event's `source` when it is a (non-anonymous) user in scope.
    fn admits_source_user<D: UserDirectory + ?Sized>(
        &self,
        event: &BoxEvent,
        directory: &D,
    ) -> bool {
        let Some(source) = event.raw().get("source").and_then(Value::as_object) else {
            return false;
        };
        if source.get("type").and_then(Value::as_str) != Some("user") {
            return false;
        }
        let id = match source.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if id.as_deref() == Some(UserMini::ANONYMOUS_ID) {
            return false;
        }
        let user = id.as_deref().and_then(|id| directory.user(id));
        let login = source
            .get("login")
            .and_then(Value::as_str)
            .filter(|l| !l.trim().is_empty());
        self.admits_user(login, user.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::{NoDirectory, Settings, render_record};

    fn user(login: &str, groups: &[&str]) -> DirectoryUser {
        DirectoryUser {
            login: Some(login.into()),
            scope_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..DirectoryUser::default()
        }
    }

    fn directory() -> HashMap<String, DirectoryUser> {
        HashMap::from([
            ("10".to_owned(), user("alice@example.com", &["Finance"])),
            ("11".to_owned(), user("bob@example.com", &[])),
            ("12".to_owned(), user("carol@example.com", &["Engineering"])),
        ])
    }

    fn scoped(users: &[&str], groups: &[&str]) -> Settings {
        Settings {
            send_unparsed: true,
            ..Settings::default()
        }
        .with_scope(&Scope {
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        })
    }

    fn event(event_type: &str, created_by: Value, source: Value) -> String {
        json!({"event_id": "e1", "event_type": event_type,
            "created_at": "2024-03-05T08:14:22-08:00", "ip_address": "81.2.69.144",
            "created_by": created_by, "source": source})
        .to_string()
    }

    fn mini(id: &str, login: &str) -> Value {
        json!({"type": "user", "id": id, "name": "x", "login": login})
    }

    /// The scope rules, one row each: who acts (login or directory group membership, matched
    /// case-insensitively), whom an admin acts on, anonymous and unknown users, Shield alerts.
    /// In scope renders as without a scope; out of scope renders to nothing for both sinks.
    #[test]
    fn scope_rules_table() {
        let settings = scoped(&["dave@example.com"], &["FINANCE"]);
        let file = json!({"item_type": "file", "item_id": "5", "item_name": "a.pdf"});
        let shield = json!({"event_id": "e1", "event_type": "SHIELD_ALERT",
            "created_at": "2024-03-05T08:14:22-08:00",
            "created_by": {"type": "user", "id": "2", "name": "Unknown User", "login": ""},
            "additional_details": {"shield_alert": {"user":
                {"id": 10, "name": "Alice", "email": "alice@example.com"}}}})
        .to_string();
        let rows: Vec<(&str, String, bool)> = vec![
            (
                "group member by directory",
                event("LOGIN", mini("10", "alice@example.com"), Value::Null),
                true,
            ),
            (
                "member acting with an empty login",
                event("UPLOAD", mini("10", ""), file.clone()),
                true,
            ),
            (
                "not a member",
                event("LOGIN", mini("11", "bob@example.com"), Value::Null),
                false,
            ),
            (
                "listed login, not in the directory",
                event("LOGIN", mini("13", "Dave@Example.COM"), Value::Null),
                true,
            ),
            (
                "unknown user without login",
                event("DOWNLOAD", mini("99", ""), file.clone()),
                false,
            ),
            (
                "anonymous",
                event("FAILED_LOGIN", mini("2", ""), Value::Null),
                false,
            ),
            (
                "anonymous even with a listed login",
                event("PREVIEW", mini("2", "dave@example.com"), file.clone()),
                false,
            ),
            (
                "admin acts on an in-scope user",
                event(
                    "EDIT_USER",
                    mini("11", "bob@example.com"),
                    mini("10", "alice@example.com"),
                ),
                true,
            ),
            (
                "admin acts on a listed login",
                event(
                    "DELETE_USER",
                    mini("11", "bob@example.com"),
                    json!({"type": "user", "id": 77, "login": "dave@example.com"}),
                ),
                true,
            ),
            (
                "admin acts on an out-of-scope user",
                event(
                    "CHANGE_ADMIN_ROLE",
                    mini("11", "bob@example.com"),
                    mini("12", "carol@example.com"),
                ),
                false,
            ),
            (
                "file activity: the source is not a user",
                event("DOWNLOAD", mini("11", "bob@example.com"), file.clone()),
                false,
            ),
            (
                "user-shaped source on file activity does not count",
                event(
                    "UPLOAD",
                    mini("11", "bob@example.com"),
                    mini("10", "alice@example.com"),
                ),
                false,
            ),
            ("Shield alert about a member", shield, true),
        ];
        let dir = directory();
        for (what, text, want) in rows {
            let r = render_record(&text, 0, &dir, &settings);
            assert_eq!(r.out_of_scope, !want, "{what}");
            assert_eq!(r.raw.is_some(), want, "{what}: raw record");
            if !want {
                assert_eq!(r.uef, None, "{what}: UEF line");
            }
            let everyone = render_record(&text, 0, &dir, &scoped(&[], &[]));
            assert!(
                !everyone.out_of_scope && everyone.raw.is_some(),
                "{what}: no scope"
            );
            if want {
                assert_eq!(r, everyone, "{what}: in scope renders as without a scope");
            }
        }
    }

    /// A group the directory still records but the scope no longer names stops counting at
    /// once; a scope of logins only ignores group facts.
    #[test]
    fn group_facts_meet_the_current_scope() {
        let dir = directory();
        let carol = event("LOGIN", mini("12", "carol@example.com"), Value::Null);
        let in_eng = render_record(&carol, 0, &dir, &scoped(&[], &["engineering "]));
        assert!(!in_eng.out_of_scope && in_eng.uef.is_some());
        assert!(render_record(&carol, 0, &dir, &scoped(&[], &["Finance"])).out_of_scope);
        assert!(render_record(&carol, 0, &dir, &scoped(&["x@example.com"], &[])).out_of_scope);
        assert!(
            render_record(&carol, 0, &NoDirectory, &scoped(&[], &["Engineering"])).out_of_scope,
            "without the directory nobody is a group member"
        );
    }

    /// Canary records pass any scope, and malformed records are never filtered.
    #[test]
    fn canary_and_malformed_are_never_filtered() {
        let settings = scoped(&["nobody@example.com"], &["Nobody"]);
        let canaries = crate::canary::events("boxidr-canary-test", 1_700_000_000_000);
        assert!(!canaries.is_empty());
        for canary in canaries {
            let r = render_record(&canary.to_string(), 0, &NoDirectory, &settings);
            assert!(!r.out_of_scope && r.raw.is_some(), "{canary}");
        }
        for text in ["{not json", r#"{"event_type":"LOGIN"}"#] {
            let r = render_record(text, 0, &NoDirectory, &settings);
            assert!(
                r.malformed.is_some() && r.raw.is_some() && !r.out_of_scope,
                "{text}"
            );
        }
    }

    /// The configured scope is kept as given; blank entries do not make a scope.
    #[test]
    fn filter_keeps_the_scope() {
        let scope = Scope {
            users: vec!["a@example.com".into()],
            groups: vec!["Finance".into()],
        };
        let filter = ScopeFilter::new(&scope);
        assert_eq!(filter.scope(), &scope);
        assert!(!filter.is_everyone());
        assert!(ScopeFilter::new(&Scope::default()).is_everyone());
        let blank = ScopeFilter::new(&Scope {
            users: vec![" ".into()],
            groups: vec![String::new()],
        });
        assert!(blank.is_everyone());
    }
}
