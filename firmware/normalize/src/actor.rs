//! Who did it: the Box user behind an event, and the InsightIDR account it maps to.

use boxidr_config::AccountFormat;
use boxidr_model::{BoxEvent, UserMini};
use serde_json::Value;

use crate::directory::{DirectoryUser, UserDirectory};
use crate::settings::Settings;

/// The acting Box user of an event, with what the directory knows about them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Actor {
    /// Box user id (`created_by.id`).
    pub id: Option<String>,
    /// The login from the event, or from the directory when the event has none.
    pub login: Option<String>,
    /// Box's anonymous user (`2`): shared-link visitors, unknown logins.
    pub anonymous: bool,
    /// The directory's entry for [`Actor::id`].
    pub user: Option<DirectoryUser>,
}

impl Actor {
    /// The actor of `event`: `created_by`; for ingress types other than `ADMIN_LOGIN`, a
    /// user-shaped `source` stands in when `created_by` is missing (both name the same person
    /// there, while `ADMIN_LOGIN`'s source is the managed user, not the admin). A
    /// `SHIELD_ALERT` is raised by the anonymous user: its alerted user
    /// (`additional_details.shield_alert.user`, login = `email`) is the actor instead.
    pub fn of<D: UserDirectory + ?Sized>(event: &BoxEvent, directory: &D) -> Option<Self> {
        let mini = event.created_by().or_else(|| {
            let fallback = matches!(
                event.event_type(),
                Some(
                    "LOGIN"
                        | "FAILED_LOGIN"
                        | "ADD_LOGIN_ACTIVITY_DEVICE"
                        | crate::kind::OAUTH_TOKEN_CREATE
                )
            );
            fallback.then(|| user_source(event)).flatten()
        });
        // A Shield alert is raised by Box's anonymous user about someone: name that someone.
        let mini = match mini {
            Some(m) if !m.is_anonymous() => Some(m),
            other => shield_alert_user(event).or(other),
        }?;
        let anonymous = mini.is_anonymous();
        let user = match (&mini.id, anonymous) {
            (Some(id), false) => directory.user(id),
            _ => None,
        };
        let login = mini
            .login
            .filter(|l| !l.trim().is_empty())
            .or_else(|| {
                user.as_ref()
                    .and_then(|u| u.login.clone())
                    .filter(|l| !l.trim().is_empty())
            })
            .filter(|_| !anonymous);
        Some(Self {
            id: mini.id,
            login,
            anonymous,
            user,
        })
    }

    /// The account InsightIDR sees for this actor, before validation.
    pub fn account(&self, format: AccountFormat) -> Option<String> {
        self.login
            .as_deref()
            .map(|login| account_name(login, format))
    }

    /// The `account_domain` for this actor's login.
    pub fn domain<'s>(&self, settings: &'s Settings) -> Option<&'s str> {
        match &self.login {
            Some(login) => settings.domain_for(login),
            None => settings.default_domain.as_deref(),
        }
    }
}

/// `source` when it is a user (`{"type":"user", ...}`).
fn user_source(event: &BoxEvent) -> Option<UserMini> {
    let source = event.raw().get("source")?.as_object()?;
    if source.get("type").and_then(Value::as_str) != Some("user") {
        return None;
    }
    let text = |key: &str| match source.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    };
    Some(UserMini {
        id: text("id"),
        name: text("name"),
        login: text("login"),
    })
}

/// `additional_details.shield_alert.user` (`{id, name, email}`) of a `SHIELD_ALERT`.
fn shield_alert_user(event: &BoxEvent) -> Option<UserMini> {
    if event.event_type() != Some("SHIELD_ALERT") {
        return None;
    }
    let user = event
        .raw()
        .get("additional_details")?
        .get("shield_alert")?
        .get("user")?
        .as_object()?;
    let id = match user.get("id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return None,
    };
    Some(UserMini {
        id: Some(id),
        name: user.get("name").and_then(Value::as_str).map(str::to_owned),
        login: user.get("email").and_then(Value::as_str).map(str::to_owned),
    })
}

/// The account name for a Box login: its local part (before the last `@`) or all of it.
pub(crate) fn account_name(login: &str, format: AccountFormat) -> String {
    let login = login.trim();
    match format {
        AccountFormat::Upn => login.to_owned(),
        AccountFormat::LocalPart => login
            .rsplit_once('@')
            .map_or(login, |(local, _)| local)
            .trim()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::directory::NoDirectory;

    fn event(value: Value) -> BoxEvent {
        BoxEvent::from_value(value).unwrap()
    }

    /// Local part by default, the whole login as UPN.
    #[test]
    fn account_names() {
        for (login, format, account) in [
            ("jdoe@example.com", AccountFormat::LocalPart, "jdoe"),
            (" jdoe@example.com ", AccountFormat::Upn, "jdoe@example.com"),
            ("\"a@b\"@example.com", AccountFormat::LocalPart, "\"a@b\""),
            ("nodomain", AccountFormat::LocalPart, "nodomain"),
            ("@example.com", AccountFormat::LocalPart, ""),
        ] {
            assert_eq!(
                account_name(login, format),
                account,
                "{login:?} as {format:?}"
            );
        }
    }

    /// `created_by` is the actor, even for `ADMIN_LOGIN` whose source is the managed user.
    #[test]
    fn created_by_is_the_actor() {
        let e = event(json!({"event_id": "1", "event_type": "ADMIN_LOGIN",
            "created_by": {"id": "9", "login": "admin@example.com"},
            "source": {"type": "user", "id": "5", "login": "user@example.com"}}));
        let actor = Actor::of(&e, &NoDirectory).unwrap();
        assert_eq!(actor.id.as_deref(), Some("9"));
        assert_eq!(actor.login.as_deref(), Some("admin@example.com"));
    }

    /// A user source stands in for a missing `created_by` on logins only.
    #[test]
    fn source_fallback() {
        let login = event(json!({"event_id": "1", "event_type": "LOGIN",
            "source": {"type": "user", "id": 5, "login": "user@example.com"}}));
        assert_eq!(
            Actor::of(&login, &NoDirectory).unwrap().id.as_deref(),
            Some("5")
        );
        let admin = event(json!({"event_id": "1", "event_type": "ADMIN_LOGIN",
            "source": {"type": "user", "id": "5", "login": "user@example.com"}}));
        assert_eq!(Actor::of(&admin, &NoDirectory), None);
        let item = event(json!({"event_id": "1", "event_type": "LOGIN",
            "source": {"item_type": "file", "item_id": "5"}}));
        assert_eq!(Actor::of(&item, &NoDirectory), None);
    }

    /// The directory fills a missing login; the anonymous user gets none and no lookup.
    #[test]
    fn directory_and_anonymous() {
        let mut dir = HashMap::new();
        dir.insert(
            "7".to_owned(),
            DirectoryUser {
                login: Some("dir@example.com".into()),
                ..DirectoryUser::default()
            },
        );
        dir.insert(
            "2".to_owned(),
            DirectoryUser {
                login: Some("should-not-be-used@example.com".into()),
                ..DirectoryUser::default()
            },
        );
        let e = event(json!({"event_id": "1", "created_by": {"id": "7", "login": ""}}));
        let actor = Actor::of(&e, &dir).unwrap();
        assert_eq!(actor.login.as_deref(), Some("dir@example.com"));
        assert!(actor.user.is_some());

        let anon = event(json!({"event_id": "1",
            "created_by": {"id": "2", "name": "Unknown User", "login": ""}}));
        let actor = Actor::of(&anon, &dir).unwrap();
        assert!(actor.anonymous);
        assert_eq!(actor.login, None);
        assert_eq!(actor.user, None);
        assert_eq!(actor.account(AccountFormat::LocalPart), None);
    }

    /// A Shield alert names the alerted user instead of Box's anonymous actor.
    #[test]
    fn shield_alert_subject() {
        let alert = event(json!({"event_id": "1", "event_type": "SHIELD_ALERT",
            "created_by": {"id": "2", "login": ""},
            "additional_details": {"shield_alert": {"user":
                {"id": 50500, "name": "A b c", "email": "a@b.c"}}}}));
        let actor = Actor::of(&alert, &NoDirectory).unwrap();
        assert_eq!(actor.id.as_deref(), Some("50500"));
        assert_eq!(actor.login.as_deref(), Some("a@b.c"));
        assert!(!actor.anonymous);

        let bare = event(json!({"event_id": "1", "event_type": "SHIELD_ALERT",
            "created_by": {"id": "2", "login": ""}}));
        assert!(Actor::of(&bare, &NoDirectory).unwrap().anonymous);
    }
}
