//! The Collection page's "Monitored users": upload of a scoping CSV (file or paste), clearing
//! it, and downloading it. The list is `[scope]` of the TOML file, saved through the same
//! all-or-nothing path as every settings form. Applying it to events is the collector's job.

use boxidr_config::{Scope, ScopeError};

use super::{App, Ctx, SettingsExtras, internal};
use crate::forms::Changes;
use crate::http::{Req, Resp};
use crate::route::SettingsPage;

/// Row errors listed on the page at most (the count of the rest is given).
const MAX_LISTED: usize = 200;

/// Every problem of a refused file, one line each, rows numbered as a spreadsheet shows them.
pub(crate) fn problems(error: &ScopeError) -> Vec<String> {
    match error {
        ScopeError::Rows(rows) => {
            let mut lines: Vec<String> = rows
                .iter()
                .take(MAX_LISTED)
                .map(|r| format!("Row {}: {}", r.row, crate::status::bounded(&r.message)))
                .collect();
            if rows.len() > MAX_LISTED {
                lines.push(format!(
                    "… and {} more rows with errors.",
                    rows.len() - MAX_LISTED
                ));
            }
            lines
        }
        other => {
            let mut text = crate::status::bounded(&other.to_string());
            if let Some(first) = text.get(..1) {
                let upper = first.to_uppercase();
                text.replace_range(..1, &upper);
            }
            vec![format!("{text}.")]
        }
    }
}

impl App {
    fn scope_refused(&self, req: &Req, ctx: &Ctx, problems: Vec<String>, pasted: String) -> Resp {
        self.render_settings(
            req,
            ctx,
            SettingsExtras {
                path: Some(SettingsPage::Collection),
                scope_problems: problems,
                scope_pasted: pasted,
                ..SettingsExtras::default()
            },
        )
    }

    /// `POST /collection/scope`: a CSV file (or pasted text) replaces the scope when every row
    /// is good; otherwise every row error is listed and nothing is saved.
    pub(super) fn scope_upload(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let pasted = form
            .get("scope_csv")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let text = match req.upload_text("scope_file") {
            Ok(Some(file)) => file,
            Ok(None) if !pasted.is_empty() => pasted.clone(),
            Ok(None) => {
                let text = "Choose a CSV file (or paste its text) before uploading.".to_owned();
                return self.scope_refused(req, ctx, vec![text], pasted);
            }
            Err(e) => return self.scope_refused(req, ctx, vec![e], pasted),
        };
        let scope = match Scope::from_csv(&text) {
            Ok(scope) => scope,
            Err(e) => return self.scope_refused(req, ctx, problems(&e), pasted),
        };
        self.save_scope(req, ctx, scope, "scope")
    }

    /// `POST /collection/scope/clear`: "Monitor everyone".
    pub(super) fn scope_clear(&self, req: &Req, ctx: &Ctx) -> Resp {
        self.save_scope(req, ctx, Scope::default(), "everyone")
    }

    fn save_scope(&self, req: &Req, ctx: &Ctx, scope: Scope, saved: &str) -> Resp {
        let mut config = self.current_config();
        config.scope = scope;
        if let Err(e) = config.validate() {
            let text = crate::status::bounded(&e.to_string());
            return self.scope_refused(req, ctx, vec![text], String::new());
        }
        let (users, groups) = (config.scope.users.len(), config.scope.groups.len());
        match self.save(Changes {
            config,
            secrets: Vec::new(),
            ca_file: None,
        }) {
            Ok(()) => {
                tracing::info!(client = %req.client, users, groups, "Monitored users saved.");
                Resp::see_other(&format!("/collection?saved={saved}#scope"))
            }
            Err(e) => internal(&e),
        }
    }

    /// `GET /collection/scope.csv`: the current scope in the upload format.
    pub(super) fn scope_download(&self) -> Resp {
        let csv = self.current_config().scope.to_csv();
        Resp::text(200, "text/csv; charset=utf-8", csv).attachment("boxidr-scope.csv")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bad row is listed with its row number; whole-file problems read as a sentence.
    #[test]
    fn problems_are_numbered() {
        let e = Scope::from_csv("Email\nok@example.com\nnot-an-email\n<b>x</b>\n").unwrap_err();
        let lines = problems(&e);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("Row 3: "), "{lines:?}");
        assert!(lines[1].starts_with("Row 4: "), "{lines:?}");
        let e = Scope::from_csv("Name\nx\n").unwrap_err();
        let lines = problems(&e);
        assert!(lines[0].starts_with("The first row must name"), "{lines:?}");
    }
}
