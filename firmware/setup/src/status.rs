//! What the status page shows comes from the collector through [`StatusSource`]; this crate
//! only renders it (escaped, bounded) and serves it as JSON.

use maud::{Markup, html};
use serde_json::Value;

/// A snapshot of the appliance's health for the status page and `/status.json`.
///
/// Implementations must be cheap (called on every refresh) and must never put secrets in the
/// snapshot. Every string is treated as untrusted and escaped.
pub trait StatusSource: Send + Sync {
    /// The current state as JSON: typically an object of sections (`box`, `queue`, `sinks`,
    /// `leds`, `errors`…); any shape renders.
    fn snapshot(&self) -> Value;
}

/// A source with nothing to say (before the collector is wired, and in tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoStatus;

impl StatusSource for NoStatus {
    fn snapshot(&self) -> Value {
        Value::Object(Default::default())
    }
}

/// Deepest nesting rendered; deeper values are shown as compact JSON text.
const MAX_DEPTH: usize = 4;
/// Items rendered per array or object.
const MAX_ITEMS: usize = 200;
/// Characters shown of one string.
const MAX_CHARS: usize = 500;

/// Renders any JSON value as nested tables (all text escaped by maud).
pub(crate) fn render(value: &Value) -> Markup {
    render_at(value, 0)
}

fn render_at(value: &Value, depth: usize) -> Markup {
    match value {
        Value::Object(map) if depth < MAX_DEPTH => html! {
            table.kv {
                @for (key, item) in map.iter().take(MAX_ITEMS) {
                    tr { th { (bounded(key)) } td { (render_at(item, depth + 1)) } }
                }
            }
        },
        Value::Array(items) if depth < MAX_DEPTH => html! {
            ul {
                @for item in items.iter().take(MAX_ITEMS) {
                    li { (render_at(item, depth + 1)) }
                }
            }
        },
        Value::String(s) => html! { (bounded(s)) },
        Value::Null => html! { span.muted { "—" } },
        other => html! { (bounded(&other.to_string())) },
    }
}

/// Caps length and replaces control and bidi-override characters so untrusted text cannot
/// reorder or hide what is around it.
pub(crate) fn bounded(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| {
            if c.is_control()
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
            {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    if text.chars().count() > MAX_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markup in values and keys is escaped, controls and bidi overrides are neutralised.
    #[test]
    fn hostile_strings_are_inert() {
        let v = serde_json::json!({
            "<b>key</b>": "<script>alert(1)</script>",
            "list": ["\"><svg onload=alert(1)>", "a\r\nb\u{0}c\u{202E}d"],
        });
        let html = render(&v).into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<svg"), "{html}");
        assert!(!html.contains("<b>key"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains('\u{202E}'));
        assert!(!html.contains('\r'));
    }
}
