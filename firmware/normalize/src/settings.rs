//! The settings rendering depends on, taken from `boxidr_config::Mapping` plus the appliance
//! version. Built once per configuration change, passed by reference per record.

use std::collections::BTreeMap;

use boxidr_config::{AccountFormat, Mapping, Scope};

use crate::scope::ScopeFilter;

/// Largest UEF line, in bytes (without the trailing LF).
///
/// The contract names no limit for the Collector (`shared/insightidr/CONTRACT.md` §1.4 "Size
/// limits per UEF event: gap") and suggests a conservative 16 KiB. A UEF line built here is
/// far smaller by construction (every free-text field is capped), so this is a backstop.
pub const UEF_MAX_LINE_BYTES: usize = 16 * 1024;

/// Default largest raw record, in bytes (without any trailing LF).
///
/// Log Search's body limit is a gap in the contract (§2.4: "keep requests small … until
/// measured"); the idr-sim default accepts far more. Real Box events are 0.5–3 KiB, large
/// Shield alerts or full file objects up to a few tens of KiB, so 64 KiB keeps nearly every
/// event whole while bounding a hostile one.
pub const RAW_MAX_LINE_BYTES: usize = 64 * 1024;

/// The smallest raw cap [`Settings`] accepts: a record's fixed fields, each capped, fit well
/// inside it, so truncation always ends in a valid record.
pub const RAW_MIN_LINE_BYTES: usize = 16 * 1024;

/// How records are rendered. Fields are public so tests and the demo can build one directly;
/// the appliance uses [`Settings::from_mapping`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `account_domain` for logins whose email domain is not in [`Settings::domain_map`].
    pub default_domain: Option<String>,
    /// Lower-case email domain → `account_domain`.
    pub domain_map: BTreeMap<String, String>,
    /// Which part of the Box login becomes the UEF `account`.
    pub account_format: AccountFormat,
    /// UEF `authentication_target` (`Box` by default).
    pub authentication_target: String,
    /// "Send unparsed logs": raw records of file activity, alerts and other events too.
    pub send_unparsed: bool,
    /// Render OAuth 2 access-token grants as UEF ingress.
    pub oauth_as_ingress: bool,
    /// `boxidr/<version>`, written as `forwarder` into every record.
    pub forwarder: String,
    /// Largest raw record in bytes; longer records are truncated (and say so).
    pub raw_max_line_bytes: usize,
    /// Which users are monitored (everyone by default); see [`Settings::with_scope`].
    pub scope: ScopeFilter,
}

impl Settings {
    /// Settings for a validated `mapping` section and this firmware's version
    /// (e.g. `env!("CARGO_PKG_VERSION")`, at most 32 characters are kept).
    pub fn from_mapping(mapping: &Mapping, appliance_version: &str) -> Self {
        let version: String = appliance_version
            .chars()
            .filter(|c| !c.is_control())
            .take(32)
            .collect();
        Self {
            default_domain: mapping
                .default_domain
                .as_ref()
                .filter(|d| !d.trim().is_empty())
                .cloned(),
            domain_map: mapping
                .domain_map
                .iter()
                .map(|(email_domain, domain)| (email_domain.to_ascii_lowercase(), domain.clone()))
                .collect(),
            account_format: mapping.account_format,
            authentication_target: mapping.authentication_target.clone(),
            send_unparsed: mapping.send_unparsed,
            oauth_as_ingress: mapping.oauth_as_ingress,
            forwarder: format!("boxidr/{version}"),
            raw_max_line_bytes: RAW_MAX_LINE_BYTES,
            scope: ScopeFilter::default(),
        }
    }

    /// These settings monitoring only the users in `scope` (`[scope]`; empty = everyone).
    pub fn with_scope(mut self, scope: &Scope) -> Self {
        self.scope = ScopeFilter::new(scope);
        self
    }

    /// The `account_domain` for a Box login: the mapped domain of its email domain, else the
    /// default domain, else none.
    pub fn domain_for(&self, login: &str) -> Option<&str> {
        login
            .rsplit_once('@')
            .and_then(|(_, email_domain)| {
                self.domain_map
                    .get(&email_domain.to_ascii_lowercase())
                    .map(String::as_str)
            })
            .or(self.default_domain.as_deref())
    }

    /// The UEF `account` (before validation) for a Box login under [`Settings::account_format`]:
    /// the same mapping the renderer applies (the setup page's preview uses it).
    pub fn account_for(&self, login: &str) -> String {
        crate::actor::account_name(login, self.account_format)
    }

    /// The raw cap actually applied: [`Settings::raw_max_line_bytes`], but never below
    /// [`RAW_MIN_LINE_BYTES`].
    pub fn raw_cap(&self) -> usize {
        self.raw_max_line_bytes.max(RAW_MIN_LINE_BYTES)
    }
}

/// The settings the unit tests render with: domain `CORP`, "send unparsed logs" as given.
#[cfg(test)]
pub(crate) fn test_settings(send_unparsed: bool) -> Settings {
    Settings {
        send_unparsed,
        default_domain: Some("CORP".into()),
        ..Settings::default()
    }
}

impl Default for Settings {
    /// The settings of a default configuration, for firmware version `0.0.0`.
    fn default() -> Self {
        Self::from_mapping(&Mapping::default(), "0.0.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defaults follow the config defaults.
    #[test]
    fn defaults() {
        let s = Settings::from_mapping(&Mapping::default(), "1.2.3");
        assert_eq!(s.default_domain, None);
        assert_eq!(s.account_format, AccountFormat::LocalPart);
        assert_eq!(s.authentication_target, "Box");
        assert!(s.send_unparsed);
        assert!(!s.oauth_as_ingress);
        assert_eq!(s.forwarder, "boxidr/1.2.3");
        assert_eq!(s.raw_cap(), RAW_MAX_LINE_BYTES);
    }

    /// The per-email-domain table wins, case-insensitively; the default covers the rest.
    #[test]
    fn domain_lookup() {
        let mut mapping = Mapping {
            default_domain: Some("CORP".into()),
            ..Mapping::default()
        };
        mapping
            .domain_map
            .insert("EMEA.example.com".into(), "EMEA".into());
        let s = Settings::from_mapping(&mapping, "1");
        assert_eq!(s.domain_for("jdoe@emea.example.com"), Some("EMEA"));
        assert_eq!(s.domain_for("jdoe@EMEA.Example.COM"), Some("EMEA"));
        assert_eq!(s.domain_for("jdoe@example.com"), Some("CORP"));
        assert_eq!(s.domain_for("no-at-sign"), Some("CORP"));
        let none = Settings::from_mapping(&Mapping::default(), "1");
        assert_eq!(none.domain_for("jdoe@example.com"), None);
    }

    /// A hostile version string cannot inject anything.
    #[test]
    fn version_is_bounded() {
        let s = Settings::from_mapping(&Mapping::default(), &format!("1\n{}", "9".repeat(100)));
        assert_eq!(s.forwarder.len(), "boxidr/".len() + 32);
        assert!(!s.forwarder.contains('\n'));
    }

    /// A cap configured too small is raised to the minimum.
    #[test]
    fn raw_cap_floor() {
        let s = Settings {
            raw_max_line_bytes: 10,
            ..Settings::default()
        };
        assert_eq!(s.raw_cap(), RAW_MIN_LINE_BYTES);
    }
}
