//! UEF `INGRESS_AUTHENTICATION` v1 lines for the Collector, validated before they leave.
//!
//! InsightIDR drops a UEF line that breaks the contract without a word, from analytics and
//! from Log Search (`shared/insightidr/CONTRACT.md` §1.1), so every line is checked here
//! against §1.2 and the simulator's stricter reading (`tools/idr-sim`, module `uef`): only the
//! nine known top-level fields, `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ`, a non-empty `account`,
//! `account_domain` null or non-empty, `source_ip` IPv4 (an IPv4-mapped IPv6 address is written
//! as its IPv4 form), `authentication_result` `SUCCESS`/`FAILURE`, a non-empty
//! `authentication_target`, and `custom_data` an object. An event that cannot meet it is a
//! [`NotUef`] with a [`Reason`]; the caller keeps it as a raw record that names the reason.

use std::net::{IpAddr, Ipv4Addr};

use boxidr_model::BoxEvent;
use serde::Serialize;
use serde_json::Value;

use crate::actor::Actor;
use crate::directory::UserDirectory;
use crate::kind::ingress_result;
use crate::line::{cap_chars, to_line};
use crate::settings::{Settings, UEF_MAX_LINE_BYTES};
use crate::time_utc::{TimeField, event_time, ms_to_utc};

/// Longest `account` sent, in characters (Box logins are emails, well under this).
pub const MAX_ACCOUNT_CHARS: usize = 256;

/// Longest free-text value in `custom_data`, in characters; longer ones are cut and the
/// record carries `"boxidr_truncated": true`.
pub const MAX_CUSTOM_CHARS: usize = 256;

/// Why an event is not sent as UEF. The string forms are stable: they appear in raw records
/// (`uef_rejected`), counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The event type is not an ingress authentication (or OAuth grants are switched off).
    /// Never reported as a rejection: most events are simply not logins.
    NotIngress,
    /// No `created_by` (nor a user `source` standing in for it).
    MissingActor,
    /// The actor is Box's anonymous user `2`: there is no account to attribute.
    AnonymousUser,
    /// Neither `created_at` nor `recorded_at`.
    MissingTime,
    /// The event's time is not RFC 3339 with an offset, or is outside years 0000–9999.
    UnparsableTime,
    /// No login in the event nor the directory, or it maps to an empty account.
    EmptyAccount,
    /// The account is longer than [`MAX_ACCOUNT_CHARS`] or holds control characters.
    InvalidAccount,
    /// No `ip_address`.
    MissingSourceIp,
    /// `ip_address` is IPv6, `Unknown IP`, or not an address at all.
    SourceIpNotIpv4,
    /// The line would exceed [`UEF_MAX_LINE_BYTES`] (cannot happen with capped fields; kept as
    /// a backstop).
    LineTooLong,
}

impl Reason {
    /// Every reason, in a stable order (for counters and tests).
    pub const ALL: [Reason; 10] = [
        Reason::NotIngress,
        Reason::MissingActor,
        Reason::AnonymousUser,
        Reason::MissingTime,
        Reason::UnparsableTime,
        Reason::EmptyAccount,
        Reason::InvalidAccount,
        Reason::MissingSourceIp,
        Reason::SourceIpNotIpv4,
        Reason::LineTooLong,
    ];

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotIngress => "not_ingress",
            Self::MissingActor => "missing_actor",
            Self::AnonymousUser => "anonymous_user",
            Self::MissingTime => "missing_time",
            Self::UnparsableTime => "unparsable_time",
            Self::EmptyAccount => "empty_account",
            Self::InvalidAccount => "invalid_account",
            Self::MissingSourceIp => "missing_source_ip",
            Self::SourceIpNotIpv4 => "source_ip_not_ipv4",
            Self::LineTooLong => "line_too_long",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that does not become a UEF line, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not sent as UEF: {reason}")]
pub struct NotUef {
    /// The first rule the event broke, in the order of [`Reason::ALL`].
    pub reason: Reason,
}

impl From<Reason> for NotUef {
    fn from(reason: Reason) -> Self {
        Self { reason }
    }
}

/// Renders `event` as one UEF `INGRESS_AUTHENTICATION` v1 line (no trailing newline), or says
/// why it cannot be one.
///
/// `collected_at_ms` (when the appliance fetched the event, ms since the epoch) goes into
/// `custom_data.collected_at` only; `time` is always the event's own time.
pub fn render_uef<D: UserDirectory + ?Sized>(
    event: &BoxEvent,
    directory: &D,
    settings: &Settings,
    collected_at_ms: u64,
) -> Result<String, NotUef> {
    let actor = Actor::of(event, directory);
    render_with_actor(event, actor.as_ref(), settings, collected_at_ms)
}

#[derive(Serialize)]
struct Uef<'a> {
    version: &'static str,
    event_type: &'static str,
    time: &'a str,
    account: &'a str,
    account_domain: Option<&'a str>,
    source_ip: &'a str,
    authentication_result: &'static str,
    authentication_target: &'a str,
    custom_data: CustomData<'a>,
}

#[derive(Serialize)]
struct CustomData<'a> {
    box_event_id: &'a str,
    box_event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    box_user_id: Option<String>,
    box_login: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    box_session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    box_admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    box_user_disabled: Option<bool>,
    /// `ADMIN_LOGIN`: the managed user whose account the admin entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    box_target_login: Option<String>,
    /// The address as Box wrote it, when `source_ip` is its IPv4 form.
    #[serde(skip_serializing_if = "Option::is_none")]
    box_ip_address: Option<String>,
    /// `recorded_at` when the time came from it rather than `created_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    time_field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    collected_at: Option<String>,
    forwarder: &'a str,
    /// The verifier's synthetic login (see [`crate::canary`]), never Box activity.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    boxidr_canary: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    boxidr_truncated: bool,
}

pub(crate) fn render_with_actor(
    event: &BoxEvent,
    actor: Option<&Actor>,
    settings: &Settings,
    collected_at_ms: u64,
) -> Result<String, NotUef> {
    let result =
        ingress_result(event.event_type(), settings.oauth_as_ingress).ok_or(Reason::NotIngress)?;
    let actor = actor.ok_or(Reason::MissingActor)?;
    if actor.anonymous {
        return Err(Reason::AnonymousUser.into());
    }
    let time = event_time(event).ok_or(Reason::MissingTime)?;
    let time_field = match time.field {
        TimeField::CreatedAt => None,
        TimeField::RecordedAt => Some(time.field.as_str()),
        // A Shield alert's time is not a login's time.
        TimeField::ShieldAlertCreatedAt => return Err(Reason::MissingTime.into()),
    };
    let time = time.utc.map_err(|_| Reason::UnparsableTime)?;

    let account = actor
        .account(settings.account_format)
        .filter(|a| !a.trim().is_empty())
        .ok_or(Reason::EmptyAccount)?;
    if account.chars().count() > MAX_ACCOUNT_CHARS || account.chars().any(char::is_control) {
        return Err(Reason::InvalidAccount.into());
    }
    let domain = actor.domain(settings).filter(|d| !d.trim().is_empty());

    let box_ip = event.ip_address().ok_or(Reason::MissingSourceIp)?;
    let source_ip = ipv4_of(box_ip).ok_or(Reason::SourceIpNotIpv4)?.to_string();

    let mut truncated = false;
    let mut cap = |text: &str| {
        let (text, cut) = cap_chars(text, MAX_CUSTOM_CHARS);
        truncated |= cut;
        text
    };
    let box_event_type = event.event_type().unwrap_or_default();
    let custom = CustomData {
        box_event_id: event.id().as_str(),
        box_event_type,
        box_user_id: actor.id.as_deref().map(&mut cap),
        box_login: cap(actor.login.as_deref().unwrap_or_default()),
        box_session_id: event
            .raw()
            .get("session_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(&mut cap),
        box_admin: actor.user.as_ref().and_then(|u| u.is_admin()),
        box_user_disabled: actor.user.as_ref().and_then(|u| u.is_disabled()),
        box_target_login: (box_event_type == "ADMIN_LOGIN")
            .then(|| {
                event
                    .raw()
                    .get("source")
                    .and_then(|s| s.get("login"))
                    .and_then(Value::as_str)
                    .filter(|l| !l.is_empty())
                    .map(&mut cap)
            })
            .flatten(),
        box_ip_address: (box_ip != source_ip).then(|| cap(box_ip)),
        time_field,
        collected_at: ms_to_utc(collected_at_ms),
        forwarder: &settings.forwarder,
        boxidr_canary: crate::canary::is_canary(event),
        boxidr_truncated: false,
    };
    let custom = CustomData {
        boxidr_truncated: truncated,
        ..custom
    };
    let target = match settings.authentication_target.trim() {
        "" => "Box",
        _ => settings.authentication_target.as_str(),
    };
    let uef = Uef {
        version: "v1",
        event_type: "INGRESS_AUTHENTICATION",
        time: &time,
        account: &account,
        account_domain: domain,
        source_ip: &source_ip,
        authentication_result: result.as_str(),
        authentication_target: target,
        custom_data: custom,
    };
    let line = to_line(&uef).map_err(|_| Reason::LineTooLong)?;
    if line.len() > UEF_MAX_LINE_BYTES {
        return Err(Reason::LineTooLong.into());
    }
    Ok(line)
}

/// The IPv4 address UEF accepts for Box's `ip_address`: a dotted quad (no leading zeros,
/// no port), or the IPv4 inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
pub fn ipv4_of(ip_address: &str) -> Option<Ipv4Addr> {
    match ip_address.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::directory::{DirectoryUser, NoDirectory, UserRole, UserStatus};

    fn event(value: Value) -> BoxEvent {
        BoxEvent::from_value(value).unwrap()
    }

    fn login(overrides: Value) -> BoxEvent {
        let mut base = json!({
            "type": "event", "event_id": "e1", "event_type": "LOGIN",
            "created_at": "2024-05-02T14:03:11-07:00", "ip_address": "198.51.100.23",
            "session_id": null,
            "created_by": {"type": "user", "id": "262196057", "name": "J Doe",
                           "login": "jdoe@example.com"}
        });
        for (k, v) in overrides.as_object().unwrap() {
            base[k] = v.clone();
        }
        event(base)
    }

    fn settings() -> Settings {
        Settings {
            default_domain: Some("CORP".into()),
            forwarder: "boxidr/0.1.0".into(),
            ..Settings::default()
        }
    }

    fn reason(e: &BoxEvent, s: &Settings) -> Reason {
        render_uef(e, &NoDirectory, s, 0).unwrap_err().reason
    }

    /// The contract's §6.3 example, field for field.
    #[test]
    fn contract_example() {
        let mut dir = HashMap::new();
        dir.insert(
            "262196057".to_owned(),
            DirectoryUser {
                status: Some(UserStatus::Active),
                role: Some(UserRole::User),
                ..DirectoryUser::default()
            },
        );
        let line = render_uef(&login(json!({})), &dir, &settings(), 1_714_683_800_000).unwrap();
        let got: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            got,
            json!({
                "version": "v1", "event_type": "INGRESS_AUTHENTICATION",
                "time": "2024-05-02T21:03:11.000Z", "account": "jdoe", "account_domain": "CORP",
                "source_ip": "198.51.100.23", "authentication_result": "SUCCESS",
                "authentication_target": "Box",
                "custom_data": {
                    "box_event_id": "e1", "box_event_type": "LOGIN",
                    "box_user_id": "262196057", "box_login": "jdoe@example.com",
                    "box_admin": false, "box_user_disabled": false,
                    "collected_at": "2024-05-02T21:03:20.000Z", "forwarder": "boxidr/0.1.0"
                }
            })
        );
    }

    /// Each rule, with the reason it yields.
    #[test]
    fn rejections() {
        let s = settings();
        let cases = [
            (json!({"event_type": "UPLOAD"}), Reason::NotIngress),
            (json!({"event_type": null}), Reason::NotIngress),
            (json!({"created_by": null}), Reason::MissingActor),
            (
                json!({"created_by": {"id": "2", "name": "Unknown User", "login": ""}}),
                Reason::AnonymousUser,
            ),
            (json!({"created_at": null}), Reason::MissingTime),
            (
                json!({"created_at": "2024-05-02 14:03:11"}),
                Reason::UnparsableTime,
            ),
            (
                json!({"created_at": "0000-01-01T00:00:00+01:00"}),
                Reason::UnparsableTime,
            ),
            (
                json!({"created_by": {"id": "5", "login": ""}}),
                Reason::EmptyAccount,
            ),
            (json!({"created_by": {"id": "5"}}), Reason::EmptyAccount),
            (
                json!({"created_by": {"id": "5", "login": "@x.com"}}),
                Reason::EmptyAccount,
            ),
            (
                json!({"created_by": {"id": "5", "login": format!("{}@x.com", "a".repeat(300))}}),
                Reason::InvalidAccount,
            ),
            (
                json!({"created_by": {"id": "5", "login": "a\nb@x.com"}}),
                Reason::InvalidAccount,
            ),
            (json!({"ip_address": null}), Reason::MissingSourceIp),
            (json!({"ip_address": "Unknown IP"}), Reason::SourceIpNotIpv4),
            (
                json!({"ip_address": "2001:db8::1"}),
                Reason::SourceIpNotIpv4,
            ),
            (
                json!({"ip_address": "198.051.100.23"}),
                Reason::SourceIpNotIpv4,
            ),
            (
                json!({"ip_address": "198.51.100.23:443"}),
                Reason::SourceIpNotIpv4,
            ),
            (json!({"ip_address": ""}), Reason::SourceIpNotIpv4),
        ];
        for (overrides, want) in cases {
            assert_eq!(reason(&login(overrides.clone()), &s), want, "{overrides}");
        }
    }

    /// Results per type; OAuth grants only behind the switch.
    #[test]
    fn results_and_oauth_switch() {
        let s = settings();
        for (t, result) in [
            ("LOGIN", "SUCCESS"),
            ("ADD_LOGIN_ACTIVITY_DEVICE", "SUCCESS"),
            ("ADMIN_LOGIN", "SUCCESS"),
            ("FAILED_LOGIN", "FAILURE"),
        ] {
            let line = render_uef(&login(json!({"event_type": t})), &NoDirectory, &s, 0).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["authentication_result"], result, "{t}");
            assert_eq!(v["custom_data"]["box_event_type"], t);
        }
        let oauth = login(json!({"event_type": crate::kind::OAUTH_TOKEN_CREATE}));
        assert_eq!(reason(&oauth, &s), Reason::NotIngress);
        let on = Settings {
            oauth_as_ingress: true,
            ..settings()
        };
        assert!(render_uef(&oauth, &NoDirectory, &on, 0).is_ok());
    }

    /// An IPv4-mapped address is sent as IPv4, with Box's text kept in `custom_data`.
    #[test]
    fn mapped_ipv6() {
        let line = render_uef(
            &login(json!({"ip_address": "::ffff:198.51.100.23"})),
            &NoDirectory,
            &settings(),
            0,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["source_ip"], "198.51.100.23");
        assert_eq!(v["custom_data"]["box_ip_address"], "::ffff:198.51.100.23");
    }

    /// `ADMIN_LOGIN` is the admin's login, naming the managed user it entered.
    #[test]
    fn admin_login_names_the_admin() {
        let e = login(json!({"event_type": "ADMIN_LOGIN",
            "created_by": {"id": "9", "login": "dana.admin@example.com"},
            "source": {"type": "user", "id": "5", "login": "alice@example.com"}}));
        let v: Value =
            serde_json::from_str(&render_uef(&e, &NoDirectory, &settings(), 0).unwrap()).unwrap();
        assert_eq!(v["account"], "dana.admin");
        assert_eq!(v["custom_data"]["box_target_login"], "alice@example.com");
    }

    /// UPN format, the domain table, no domain at all (null), an empty target setting.
    #[test]
    fn mapping_settings() {
        let mut s = Settings {
            account_format: boxidr_config::AccountFormat::Upn,
            authentication_target: " ".into(),
            ..settings()
        };
        s.domain_map.insert("example.com".into(), "EXAMPLE".into());
        let v: Value =
            serde_json::from_str(&render_uef(&login(json!({})), &NoDirectory, &s, 0).unwrap())
                .unwrap();
        assert_eq!(v["account"], "jdoe@example.com");
        assert_eq!(v["account_domain"], "EXAMPLE");
        assert_eq!(v["authentication_target"], "Box");
        let none = Settings::default();
        let v: Value =
            serde_json::from_str(&render_uef(&login(json!({})), &NoDirectory, &none, 0).unwrap())
                .unwrap();
        assert_eq!(v["account_domain"], Value::Null);
    }

    /// Only `recorded_at`: used, and said so; a Shield alert time is never a login time.
    #[test]
    fn recorded_at_only() {
        let e = login(json!({"created_at": null, "recorded_at": "2022-07-20T02:32:16-07:00"}));
        let v: Value =
            serde_json::from_str(&render_uef(&e, &NoDirectory, &settings(), 0).unwrap()).unwrap();
        assert_eq!(v["time"], "2022-07-20T09:32:16.000Z");
        assert_eq!(v["custom_data"]["time_field"], "recorded_at");
        let shield = login(json!({"created_at": null,
            "additional_details": {"shield_alert": {"created_at": "2019-12-20T11:38:16-08:00"}}}));
        assert_eq!(reason(&shield, &settings()), Reason::MissingTime);
    }

    /// Overlong free text in `custom_data` is cut and flagged; the line stays small.
    #[test]
    fn custom_data_is_capped() {
        let e = login(json!({"session_id": "s".repeat(100_000),
            "created_by": {"id": "7".repeat(100_000), "login": "jdoe@example.com"}}));
        let line = render_uef(&e, &NoDirectory, &settings(), 0).unwrap();
        assert!(line.len() < 4096, "{}", line.len());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["custom_data"]["boxidr_truncated"], true);
        assert_eq!(
            v["custom_data"]["box_session_id"].as_str().unwrap().len(),
            MAX_CUSTOM_CHARS
        );
    }

    /// Reason names are unique snake_case.
    #[test]
    fn reason_names() {
        let names: std::collections::BTreeSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
        for name in names {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
        assert_eq!(
            NotUef::from(Reason::AnonymousUser).to_string(),
            "not sent as UEF: anonymous_user"
        );
    }
}
