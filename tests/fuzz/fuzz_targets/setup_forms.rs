//! The setup page's own parsers: a settings form applied to the configuration
//! (`boxidr_setup::parse::settings_form`), a `multipart/form-data` body
//! (`boxidr_setup::parse::parse_multipart`) and the monitoring-scope CSV upload
//! (`boxidr_config::Scope::from_csv`).
//!
//! Invariants: no parser panics; a form the page accepts gives a configuration that validates
//! and survives the TOML file the page writes (`toml::to_string_pretty` → `Config::from_toml`,
//! the service's own reader) unchanged, so a save can never leave a file the service refuses at
//! its next start; a multipart body built from fields parses back to the same fields (last value
//! wins); a scope CSV the page accepts validates, and its download (`to_csv`) uploads back to
//! the same scope.
#![no_main]

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use boxidr_config::{Config, Scope};
use boxidr_setup::parse::{parse_multipart, settings_form};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 3] = ["/insightidr", "/mapping", "/collection"];

/// Every field name the settings forms read (firmware/setup/src/forms.rs).
const FIELDS: [&str; 27] = [
    "account_format",
    "authentication_target",
    "box_ca_file",
    "box_ca_pem",
    "collector_ca_file",
    "collector_ca_pem",
    "collector_enabled",
    "collector_host",
    "collector_port",
    "collector_unencrypted",
    "completeness_sweep",
    "default_domain",
    "exclude_types",
    "include_types",
    "log_search_base_url",
    "log_search_enabled",
    "no_proxy",
    "proxy",
    "proxy_password",
    "proxy_user",
    "region",
    "send_unparsed",
    "stream_type",
    "domain_map_email_0",
    "domain_map_domain_0",
    "domain_map_email_1",
    "domain_map_domain_1",
];

/// The structured modes; the text modes are chosen by the first byte (see the fuzz target).
#[derive(Debug, Arbitrary)]
enum Input {
    Form {
        path: u8,
        fields: Vec<(u8, String)>,
    },
    Multipart {
        boundary: String,
        fields: Vec<(String, String)>,
    },
}

fn check_form(path: u8, form: &HashMap<String, String>) {
    let path = PATHS[usize::from(path) % PATHS.len()];
    let base = Config::default();
    let Ok(config) = settings_form(path, &base, form) else {
        return;
    };
    config
        .validate()
        .unwrap_or_else(|e| panic!("{path}: accepted a form that does not validate: {e}"));
    let text = toml::to_string_pretty(&config).expect("an accepted configuration serialises");
    let read = Config::from_toml(&text).unwrap_or_else(|e| {
        panic!("{path}: the service would refuse the saved file ({e}):\n{text}")
    });
    assert_eq!(
        read, config,
        "{path}: the saved file reads back differently:\n{text}"
    );
}

fn check_multipart(boundary: &str, fields: &[(String, String)]) {
    // A boundary a browser could send: RFC 2046 bchars, 1–70 of them.
    let ok = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=?".contains(c);
    if boundary.is_empty() || boundary.len() > 70 || !boundary.chars().all(ok) {
        return;
    }
    // Field names as the page's forms have them (browsers escape anything else).
    let quotable = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let mut body = Vec::new();
    let mut expected = HashMap::new();
    for (name, value) in fields.iter().take(32) {
        if !quotable(name) || value.contains(&format!("--{boundary}")) {
            continue;
        }
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
        expected.insert(name.clone(), value.clone());
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let parsed = parse_multipart(&body, boundary.to_owned())
        .unwrap_or_else(|e| panic!("a well-formed body was refused ({e})"));
    assert_eq!(parsed.fields, expected);
    assert!(parsed.files.is_empty());
}

fn check_csv(text: &str) {
    let Ok(scope) = Scope::from_csv(text) else {
        return;
    };
    scope
        .validate()
        .unwrap_or_else(|e| panic!("accepted a scope that does not validate: {e}"));
    let download = scope.to_csv();
    let again = Scope::from_csv(&download)
        .unwrap_or_else(|e| panic!("the downloaded scope does not upload back ({e}):\n{download}"));
    assert_eq!(again, scope);
}

// First byte `c`: a scope CSV; `u`: a path index byte and an urlencoded settings form; `m`: a
// boundary, LF, and a multipart body; anything else: a structured [`Input`].
fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'c', csv)) => {
            if let Ok(text) = std::str::from_utf8(csv) {
                check_csv(text);
            }
        }
        Some((b'u', rest)) => {
            if let Some((&path, body)) = rest.split_first() {
                let form = form_urlencoded::parse(body).into_owned().collect();
                check_form(path, &form);
            }
        }
        Some((b'm', rest)) => {
            let Some(split) = rest.iter().position(|&b| b == b'\n') else {
                return;
            };
            let Ok(boundary) = std::str::from_utf8(&rest[..split]) else {
                return;
            };
            if let Ok(parsed) = parse_multipart(&rest[split + 1..], boundary.to_owned()) {
                assert!(parsed.fields.len() + parsed.files.len() <= 64);
            }
        }
        _ => match Input::arbitrary_take_rest(Unstructured::new(data)) {
            Ok(Input::Form { path, fields }) => {
                let form = fields
                    .into_iter()
                    .map(|(name, value)| {
                        (FIELDS[usize::from(name) % FIELDS.len()].to_owned(), value)
                    })
                    .collect();
                check_form(path, &form);
            }
            Ok(Input::Multipart { boundary, fields }) => check_multipart(&boundary, &fields),
            Err(_) => {}
        },
    }
});
