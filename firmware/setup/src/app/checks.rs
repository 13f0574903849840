//! Buttons that try the settings as typed without saving them: "Test connection" on the
//! InsightIDR page (the Platform API key against `/validate`) and "Preview" on the Accounts
//! page (three stored Box users rendered with the collector's own account mapping).

use boxidr_forward::VerifyError;
use boxidr_model::Secret;
use boxidr_normalize::{DirectoryUser, MAX_ACCOUNT_CHARS, Settings};
use boxidr_store::UserEntry;
use boxidr_store::settings;
use serde_json::Value;

use super::{App, Ctx, SettingsExtras, internal};
use crate::error::SetupError;
use crate::forms;
use crate::http::{Req, Resp};
use crate::pages::{self, PreviewRow};
use crate::route::SettingsPage;
use crate::status::bounded;

/// Users shown by the preview.
pub(crate) const PREVIEW_USERS: usize = 3;
/// Stored users looked at to choose them (the store hands them out in id order).
const PREVIEW_SCAN: usize = 500;

/// Picks up to `n` users to preview: users with a login, active ones first, most recently
/// modified first (Box's `modified_at`, when the sync stored it).
pub(crate) fn pick_users(entries: &[UserEntry], n: usize) -> Vec<(DirectoryUser, Option<String>)> {
    let mut users: Vec<(DirectoryUser, Option<String>)> = entries
        .iter()
        .filter_map(|entry| {
            let value: Value = serde_json::from_str(&entry.json).ok()?;
            let user = DirectoryUser::from_value(&value)?;
            user.login.as_ref().filter(|l| !l.trim().is_empty())?;
            let modified = value
                .get("modified_at")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some((user, modified))
        })
        .collect();
    // Active (or unknown status) first, then newest first; `sort_by` is stable.
    users.sort_by(|(a, am), (b, bm)| {
        let inactive = |u: &DirectoryUser| u.is_disabled() == Some(true);
        inactive(a).cmp(&inactive(b)).then_with(|| bm.cmp(am))
    });
    users.truncate(n);
    users
}

/// How one user's logins would be attributed, with the collector's mapping code.
pub(crate) fn preview_row(user: &DirectoryUser, settings: &Settings) -> PreviewRow {
    let login = user.login.clone().unwrap_or_default();
    let account = settings.account_for(&login);
    let account = if account.is_empty() {
        Err("none: the login maps to an empty account, no login event is sent")
    } else if account.chars().count() > MAX_ACCOUNT_CHARS || account.chars().any(char::is_control) {
        Err("refused: too long or holds control characters, no login event is sent")
    } else {
        Ok(account)
    };
    PreviewRow {
        name: user.name.clone().unwrap_or_default(),
        status: user
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "unknown".into()),
        domain: settings.domain_for(&login).map(str::to_owned),
        login,
        account,
    }
}

/// The result of "Test connection" in plain words (the key never appears in it).
pub(crate) fn test_outcome(result: &Result<(), VerifyError>, base: &str) -> (&'static str, String) {
    match result {
        Ok(()) => (
            "ok",
            format!("Connection OK: the Platform API at {base} accepted the key."),
        ),
        Err(VerifyError::KeyRejected(status)) => (
            "error",
            format!(
                "Key refused: the Platform API at {base} answered HTTP {status}. Check that the \
                 key was copied whole, that it was not revoked (InsightIDR: Settings → API Keys) \
                 and that the region matches your InsightIDR account."
            ),
        ),
        Err(VerifyError::Unavailable(reason)) => (
            "error",
            format!(
                "Unreachable: {}. Check the region, and that this appliance can resolve and \
                 reach {base} (DNS, firewall, proxy).",
                bounded(reason)
            ),
        ),
    }
}

impl App {
    /// `POST /insightidr/test`: checks the key as typed (or the stored one) against the
    /// region as selected. Nothing is saved; the form comes back as typed, without secrets.
    pub(super) fn insightidr_test(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let typed = Some(forms::typed(&form));
        let region = self.form_region(&form);
        let typed_key = form
            .get("platform_api_key")
            .map(|k| Secret::new(k.trim()))
            .filter(|k| !k.is_empty());
        let key = match typed_key {
            Some(key) => Some(key),
            None => match self.actions.secret_text(settings::PLATFORM_API_KEY) {
                Ok(stored) => stored,
                Err(e) => return internal(&e),
            },
        };
        let notice = match key {
            None => (
                "error",
                "No Platform API key is set: type one in the field and press Test connection."
                    .to_owned(),
            ),
            Some(key)
                if !key.expose().bytes().all(|b| b.is_ascii_graphic())
                    || key.expose().len() > 512 =>
            {
                (
                    "error",
                    "The key is letters, digits and dashes; nothing was sent.".to_owned(),
                )
            }
            Some(key) => match self.probes.validate_key(&region, key) {
                Ok((result, base)) => {
                    tracing::info!(client = %req.client, ok = result.is_ok(), "Platform API key tested.");
                    test_outcome(&result, &base)
                }
                Err(text) => ("error", format!("The test could not start: {text}")),
            },
        };
        self.render_settings(
            req,
            ctx,
            SettingsExtras {
                path: Some(SettingsPage::InsightIdr),
                typed,
                notice: Some(notice),
                ..SettingsExtras::default()
            },
        )
    }

    /// `POST /mapping/preview`: validates the Accounts form like a save, then shows three
    /// stored users through the collector's mapping. Nothing is saved.
    pub(super) fn mapping_preview(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let typed = Some(forms::typed(&form));
        let base = self.current_config();
        let changes = match forms::apply(SettingsPage::Mapping, &base, &form) {
            Ok(changes) => changes,
            Err(errors) => {
                return self.render_settings(
                    req,
                    ctx,
                    SettingsExtras {
                        path: Some(SettingsPage::Mapping),
                        typed,
                        errors,
                        ..SettingsExtras::default()
                    },
                );
            }
        };
        let rows = match self.preview_rows(&changes.config.mapping) {
            Ok(rows) => rows,
            Err(e) => return internal(&e),
        };
        self.render_settings(
            req,
            ctx,
            SettingsExtras {
                path: Some(SettingsPage::Mapping),
                typed,
                preview: Some(pages::preview(&rows, false)),
                ..SettingsExtras::default()
            },
        )
    }

    /// Up to three stored Box users as InsightIDR accounts under `mapping`.
    pub(super) fn preview_rows(
        &self,
        mapping: &boxidr_config::Mapping,
    ) -> Result<Vec<PreviewRow>, SetupError> {
        let settings = Settings::from_mapping(mapping, env!("CARGO_PKG_VERSION"));
        let entries = self.actions.first_users(PREVIEW_SCAN)?;
        Ok(pick_users(&entries, PREVIEW_USERS)
            .iter()
            .map(|(user, _)| preview_row(user, &settings))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, json: Value) -> UserEntry {
        UserEntry {
            id: id.into(),
            json: json.to_string(),
        }
    }

    /// Active users come first, newest first; users without a login are skipped.
    #[test]
    fn picks_active_recent_users() {
        let entries = vec![
            entry(
                "1",
                serde_json::json!({"login": "old@example.com", "status": "active", "modified_at": "2024-01-01T00:00:00-08:00"}),
            ),
            entry(
                "2",
                serde_json::json!({"login": "gone@example.com", "status": "inactive", "modified_at": "2025-06-01T00:00:00-08:00"}),
            ),
            entry("3", serde_json::json!({"status": "active"})),
            entry(
                "4",
                serde_json::json!({"login": "new@example.com", "status": "active", "modified_at": "2025-01-01T00:00:00-08:00"}),
            ),
            entry("5", serde_json::json!("not an object")),
        ];
        let picked: Vec<_> = pick_users(&entries, 3)
            .into_iter()
            .map(|(u, _)| u.login.unwrap())
            .collect();
        assert_eq!(
            picked,
            ["new@example.com", "old@example.com", "gone@example.com"]
        );
    }

    /// The preview follows the account format and the domain table, as the renderer does.
    #[test]
    fn rows_follow_the_mapping() {
        let mut mapping = boxidr_config::Mapping {
            default_domain: Some("CORP".into()),
            ..Default::default()
        };
        mapping
            .domain_map
            .insert("emea.example.com".into(), "EMEA".into());
        let settings = Settings::from_mapping(&mapping, "test");
        let user = |login: &str| DirectoryUser {
            login: Some(login.into()),
            ..Default::default()
        };
        let row = preview_row(&user("jdoe@emea.example.com"), &settings);
        assert_eq!(row.account, Ok("jdoe".into()));
        assert_eq!(row.domain.as_deref(), Some("EMEA"));
        let row = preview_row(&user("ann@example.com"), &settings);
        assert_eq!(row.domain.as_deref(), Some("CORP"));
        mapping.account_format = boxidr_config::AccountFormat::Upn;
        let settings = Settings::from_mapping(&mapping, "test");
        let row = preview_row(&user("ann@example.com"), &settings);
        assert_eq!(row.account, Ok("ann@example.com".into()));
        let row = preview_row(&user("@example.com"), &Settings::default());
        assert!(row.account.is_err());
    }

    /// Each verifier outcome reads as plain words and never carries more than the reason.
    #[test]
    fn outcomes_in_plain_words() {
        let (kind, text) = test_outcome(&Ok(()), "https://us.api.insight.rapid7.com");
        assert_eq!(kind, "ok");
        assert!(text.starts_with("Connection OK"));
        let (kind, text) = test_outcome(&Err(VerifyError::KeyRejected(401)), "b");
        assert_eq!(kind, "error");
        assert!(text.starts_with("Key refused") && text.contains("401"));
        let (_, text) = test_outcome(&Err(VerifyError::Unavailable("dns error".into())), "b");
        assert!(text.starts_with("Unreachable: dns error"));
    }
}
