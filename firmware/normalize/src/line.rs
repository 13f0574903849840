//! One record, one line: JSON text that no line splitter or display can misread.
//!
//! `serde_json` escapes `"`, `\` and U+0000–U+001F, so LF and CR never appear raw. Some
//! characters it leaves raw are line breaks to other readers (U+0085 NEL, U+2028, U+2029) or
//! reorder what an analyst sees (bidi embeddings, overrides and isolates, U+200E/F, U+061C,
//! U+FEFF). [`to_line`] writes those as `\uXXXX` escapes too. They can only occur inside JSON
//! strings (all structural characters are ASCII), so the escaped text decodes to the same
//! value.

use std::fmt::Write as _;

use serde::Serialize;

/// Characters written as `\uXXXX` on top of what `serde_json` escapes.
pub(crate) fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{061c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

/// Serialises `value` as one line of JSON, without a trailing newline.
pub(crate) fn to_line<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    Ok(escape_specials(serde_json::to_string(value)?))
}

fn escape_specials(text: String) -> String {
    if !text.chars().any(needs_escape) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 32);
    for c in text.chars() {
        if needs_escape(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` characters of `text`; the flag says whether anything was cut.
pub(crate) fn cap_chars(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((at, _)) => (text[..at].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix_bytes(text: &str, max: usize) -> &str {
    if max >= text.len() {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Every hostile character stays inside one line and decodes to the original string.
    #[test]
    fn hostile_strings_round_trip() {
        let hostile =
            "a\nb\rc\0d\u{7f}e\u{85}f\u{2028}g\u{2029}h\u{202e}i\u{2066}j\u{feff}k\u{1b}[31m\"\\";
        let value = json!({ hostile: hostile });
        let line = to_line(&value).unwrap();
        assert!(!line.contains(['\n', '\r', '\0']), "{line}");
        assert!(!line.chars().any(needs_escape), "{line}");
        assert!(line.is_ascii(), "{line}");
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, value);
    }

    /// Plain text is left alone, including non-ASCII letters.
    #[test]
    fn plain_text_unchanged() {
        let value = json!({"name": "Zoë 東京"});
        assert_eq!(to_line(&value).unwrap(), r#"{"name":"Zoë 東京"}"#);
    }

    /// Caps count characters and prefixes respect UTF-8 boundaries.
    #[test]
    fn caps() {
        assert_eq!(cap_chars("héllo", 2), ("hé".to_owned(), true));
        assert_eq!(cap_chars("hé", 2), ("hé".to_owned(), false));
        assert_eq!(prefix_bytes("hé", 2), "h");
        assert_eq!(prefix_bytes("hé", 3), "hé");
        assert_eq!(prefix_bytes("hé", 99), "hé");
        assert_eq!(prefix_bytes("東", 2), "");
    }
}
