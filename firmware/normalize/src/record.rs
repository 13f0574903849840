//! The one call a sink makes per queued record.

use boxidr_model::BoxEvent;
use serde_json::Value;

use crate::actor::Actor;
use crate::directory::UserDirectory;
use crate::kind::{Kind, kind, kind_of_type};
use crate::raw::{self, Malformed};
use crate::settings::Settings;
use crate::uef::{self, Reason};

/// Everything the sinks need from one queued Box event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The event's kind (for a malformed record: its `event_type`'s kind if it has one).
    pub kind: Kind,
    /// The UEF line for the Collector, if the event is a valid ingress authentication.
    pub uef: Option<String>,
    /// The raw record for Log Search, if one is to be sent: always for ingress, admin
    /// activity, malformed records and ingress refused as UEF; for other kinds only with
    /// "send unparsed logs".
    pub raw: Option<String>,
    /// Why an ingress event is not sent as UEF (count it); `None` when it is, or when the
    /// event is not an ingress authentication at all.
    pub uef_rejected: Option<Reason>,
    /// Set when the queued text is not a usable Box event (count it).
    pub malformed: Option<Malformed>,
    /// Whether the raw record had to be cut to fit the cap.
    pub raw_truncated: bool,
    /// The event concerns no monitored user (`[scope]`): nothing is sent to either sink
    /// (count it). Never set for canary or malformed records.
    pub out_of_scope: bool,
}

/// Which outputs of [`render_record_for`] a caller needs. Each sink needs one: the Collector
/// only the UEF line, Log Search only the raw record (whose `uef_rejected` still comes from the
/// full UEF check). Leaving one out only saves its work; every other field of [`Rendered`] is
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The UEF line and the raw record.
    Both,
    /// The UEF line only: `raw` is `None` and `raw_truncated` false.
    Uef,
    /// The raw record only: `uef` is `None` (it is still checked, for `uef_rejected`).
    Raw,
}

/// Renders one queued record for both sinks. Pure and total: it never panics and never
/// drops an event silently: an event outside `settings.scope` renders to nothing and says so
/// ([`Rendered::out_of_scope`]); a malformed record is never filtered (it names nobody the
/// scope could be checked against, and invariant 6 wants it seen).
///
/// - `event_json`: the event as queued (`QueuedRecord::event_json`, Box's JSON).
/// - `collected_at_ms`: when the appliance fetched it (ms since the epoch); written as
///   `collected_at`, never used as the event's time.
/// - `directory`: the user directory (any [`UserDirectory`]; lookups that fail are `None`).
/// - `settings`: [`Settings::from_mapping`] of the current configuration.
///
/// Lines carry no trailing newline and contain no LF or CR byte: the Collector sink appends
/// `\n` to each UEF line, the Log Search sink posts the raw record as the body.
pub fn render_record<D: UserDirectory + ?Sized>(
    event_json: &str,
    collected_at_ms: u64,
    directory: &D,
    settings: &Settings,
) -> Rendered {
    render_record_for(event_json, collected_at_ms, directory, settings, Want::Both)
}

/// [`render_record`] computing only what `want` asks for (a sink renders its own output, and
/// the Collector does not pay for serialising the whole event again as a raw record).
pub fn render_record_for<D: UserDirectory + ?Sized>(
    event_json: &str,
    collected_at_ms: u64,
    directory: &D,
    settings: &Settings,
    want: Want,
) -> Rendered {
    let parsed: Value = match serde_json::from_str(event_json) {
        Ok(value) => value,
        Err(_) => {
            return malformed(
                event_json,
                None,
                Malformed::NotJson,
                settings,
                collected_at_ms,
                want,
            );
        }
    };
    let event = match BoxEvent::from_value(parsed) {
        Ok(event) => event,
        Err(err) => {
            // `from_value` consumed the value; parse again for the flagged record (rare path).
            let again: Option<Value> = serde_json::from_str(event_json).ok();
            return malformed(
                event_json,
                again.as_ref(),
                Malformed::from(&err),
                settings,
                collected_at_ms,
                want,
            );
        }
    };
    render_event_for(&event, collected_at_ms, directory, settings, want)
}

/// [`render_record`] for an event already parsed.
pub fn render_event<D: UserDirectory + ?Sized>(
    event: &BoxEvent,
    collected_at_ms: u64,
    directory: &D,
    settings: &Settings,
) -> Rendered {
    render_event_for(event, collected_at_ms, directory, settings, Want::Both)
}

fn render_event_for<D: UserDirectory + ?Sized>(
    event: &BoxEvent,
    collected_at_ms: u64,
    directory: &D,
    settings: &Settings,
    want: Want,
) -> Rendered {
    let kind = kind(event);
    let actor = Actor::of(event, directory);
    if !crate::canary::is_canary(event)
        && !settings
            .scope
            .admits(event, kind, actor.as_ref(), directory)
    {
        return Rendered {
            kind,
            uef: None,
            raw: None,
            uef_rejected: None,
            malformed: None,
            raw_truncated: false,
            out_of_scope: true,
        };
    }
    let (uef, uef_rejected) =
        match uef::render_with_actor(event, actor.as_ref(), settings, collected_at_ms) {
            Ok(line) => (Some(line), None),
            Err(not) if not.reason == Reason::NotIngress => (None, None),
            Err(not) => (None, Some(not.reason)),
        };
    let send_raw = want != Want::Uef
        && (kind.is_sent(settings.send_unparsed)
            || uef_rejected.is_some()
            || crate::canary::is_canary(event));
    let raw = send_raw.then(|| {
        raw::render_with_actor(
            event,
            actor.as_ref(),
            settings,
            collected_at_ms,
            uef_rejected,
        )
    });
    Rendered {
        kind,
        uef: uef.filter(|_| want != Want::Raw),
        raw_truncated: raw.as_ref().is_some_and(|r| r.truncated),
        raw: raw.map(|r| r.text),
        uef_rejected,
        malformed: None,
        out_of_scope: false,
    }
}

fn malformed(
    text: &str,
    parsed: Option<&Value>,
    why: Malformed,
    settings: &Settings,
    collected_at_ms: u64,
    want: Want,
) -> Rendered {
    let line = (want != Want::Uef)
        .then(|| raw::render_malformed(text, parsed, why, settings, collected_at_ms));
    let event_type = parsed
        .and_then(Value::as_object)
        .and_then(|o| o.get("event_type"))
        .and_then(Value::as_str);
    Rendered {
        kind: kind_of_type(event_type),
        uef: None,
        raw_truncated: line.as_ref().is_some_and(|l| l.truncated),
        raw: line.map(|l| l.text),
        uef_rejected: None,
        malformed: Some(why),
        out_of_scope: false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::directory::NoDirectory;

    use crate::settings::test_settings as settings;

    /// A valid login gives a UEF line and a raw copy.
    #[test]
    fn login_gives_both() {
        let r = render_record(
            r#"{"event_id":"1","event_type":"LOGIN","created_at":"2024-03-05T08:14:22-08:00",
                "ip_address":"81.2.69.144","created_by":{"id":"5","login":"a@example.com"}}"#,
            0,
            &NoDirectory,
            &settings(false),
        );
        assert_eq!(r.kind, Kind::Ingress);
        assert!(r.uef.is_some());
        assert!(r.raw.is_some());
        assert_eq!(r.uef_rejected, None);
        assert_eq!(r.malformed, None);
    }

    /// Each `Want` leaves out only its other output: every other field is what `Both` gives.
    #[test]
    fn want_leaves_out_only_the_other_output() {
        let login = r#"{"event_id":"1","event_type":"LOGIN","created_at":"2024-03-05T08:14:22-08:00",
            "ip_address":"81.2.69.144","created_by":{"id":"5","login":"a@example.com"}}"#;
        let anon = r#"{"event_id":"2","event_type":"FAILED_LOGIN","created_by":{"id":"2"}}"#;
        for text in [
            login,
            anon,
            r#"{"event_id":"3","event_type":"UPLOAD"}"#,
            "{not json",
        ] {
            let s = settings(true);
            let both = render_record(text, 7, &NoDirectory, &s);
            let uef = render_record_for(text, 7, &NoDirectory, &s, Want::Uef);
            let raw = render_record_for(text, 7, &NoDirectory, &s, Want::Raw);
            assert_eq!(
                uef,
                Rendered {
                    raw: None,
                    raw_truncated: false,
                    ..both.clone()
                },
                "{text}"
            );
            assert_eq!(
                raw,
                Rendered {
                    uef: None,
                    ..both.clone()
                },
                "{text}"
            );
        }
        assert!(
            render_record(login, 0, &NoDirectory, &settings(true))
                .uef
                .is_some()
        );
    }

    /// `send_unparsed = false` keeps file activity off Log Search, but never a rejected
    /// login or a malformed record.
    #[test]
    fn send_unparsed_gate() {
        let upload = r#"{"event_id":"1","event_type":"UPLOAD"}"#;
        assert!(
            render_record(upload, 0, &NoDirectory, &settings(false))
                .raw
                .is_none()
        );
        assert!(
            render_record(upload, 0, &NoDirectory, &settings(true))
                .raw
                .is_some()
        );

        let anon = r#"{"event_id":"1","event_type":"FAILED_LOGIN","created_by":{"id":"2"}}"#;
        let r = render_record(anon, 0, &NoDirectory, &settings(false));
        assert_eq!(r.uef_rejected, Some(Reason::AnonymousUser));
        assert!(r.uef.is_none());
        let raw: Value = serde_json::from_str(r.raw.as_deref().unwrap()).unwrap();
        assert_eq!(raw["uef_rejected"], "anonymous_user");

        let r = render_record("{not json", 0, &NoDirectory, &settings(false));
        assert_eq!(r.malformed, Some(Malformed::NotJson));
        let raw: Value = serde_json::from_str(r.raw.as_deref().unwrap()).unwrap();
        assert_eq!(raw["event_text"], "{not json");
    }

    /// Newlines, NUL, bidi overrides and line separators in every string Box controls stay
    /// inside one line of each output and decode back unchanged.
    #[test]
    fn hostile_strings_keep_framing() {
        let evil = "x\n{\"forged\":1}\r\n\0\u{202e}gnp.exe\u{2028}\u{85}";
        let event = json!({"event_id": "1", "event_type": "LOGIN", "session_id": evil,
            "created_at": "2024-03-05T08:14:22-08:00", "ip_address": "81.2.69.144",
            "created_by": {"id": "5", "name": evil, "login": format!("{evil}@example.com")},
            "source": {"item_name": evil}});
        let r = render_record(&event.to_string(), 0, &NoDirectory, &settings(true));
        // The login holds control characters: refused as UEF, kept raw with the reason.
        assert_eq!(r.uef_rejected, Some(Reason::InvalidAccount));
        let raw = r.raw.unwrap();
        assert!(!raw.contains(['\n', '\r', '\0', '\u{202e}', '\u{2028}', '\u{85}']));
        let back: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(back["event"], event);

        let clean = json!({"event_id": "1", "event_type": "LOGIN", "session_id": evil,
            "created_at": "2024-03-05T08:14:22-08:00", "ip_address": "81.2.69.144",
            "created_by": {"id": "5", "name": evil, "login": "a@example.com"}});
        let r = render_record(&clean.to_string(), 0, &NoDirectory, &settings(true));
        let uef = r.uef.unwrap();
        assert!(!uef.contains(['\n', '\r', '\0', '\u{202e}', '\u{2028}', '\u{85}']));
        let back: Value = serde_json::from_str(&uef).unwrap();
        assert_eq!(back["custom_data"]["box_session_id"], evil);
    }

    /// JSON nested to the parser's limit, with strings to shorten at every level, renders on
    /// a small stack (tokio's worker threads have 2 MiB; this uses 512 KiB).
    #[test]
    fn deep_nesting_on_a_small_stack() {
        let depth = 120;
        let leaf = format!("\"{}\"", "x".repeat(100_000));
        let nested = format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!(r#"{{"event_id":"1","event_type":"UPLOAD","deep":{nested}}}"#);
        let r = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || render_record(&text, 0, &NoDirectory, &settings(true)))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(r.malformed, None);
        assert!(r.raw_truncated);
        let raw: Value = serde_json::from_str(r.raw.as_deref().unwrap()).unwrap();
        assert_eq!(raw["truncation"], "strings");
    }

    /// Each malformed shape is flagged with its reason and keeps the text or value.
    #[test]
    fn malformed_shapes() {
        for (text, want) in [
            ("", Malformed::NotJson),
            ("\u{0}", Malformed::NotJson),
            (&"[".repeat(1000), Malformed::NotJson),
            ("[]", Malformed::NotAnObject),
            ("null", Malformed::NotAnObject),
            (r#"{"event_type":"LOGIN"}"#, Malformed::MissingEventId),
            (r#"{"event_id":"a\nb"}"#, Malformed::BadEventId),
        ] {
            let r = render_record(text, 0, &NoDirectory, &settings(false));
            assert_eq!(r.malformed, Some(want), "{text:?}");
            assert!(r.uef.is_none());
            let raw: Value = serde_json::from_str(r.raw.as_deref().unwrap()).unwrap();
            assert_eq!(raw["malformed"], want.as_str());
        }
        let r = render_record(
            r#"{"event_type":"LOGIN"}"#,
            0,
            &NoDirectory,
            &settings(false),
        );
        assert_eq!(r.kind, Kind::Ingress);
        assert_eq!(
            serde_json::from_str::<Value>(r.raw.as_deref().unwrap()).unwrap()["event"],
            json!({"event_type": "LOGIN"})
        );
    }
}
