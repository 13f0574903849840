//! The Maintenance page: configuration export and import, the support bundle; and `/metrics`.

use boxidr_config::Config;
use boxidr_store::settings;

use super::{App, Ctx, internal, lock};
use crate::credentials::{ct_eq, hex, random_hex};
use crate::error::SetupError;
use crate::forms::Changes;
use crate::http::{Req, Resp};
use crate::pages;
use crate::status::bounded;
use crate::support;

/// Dead letters read from the store per request while building the download.
const DEAD_LETTER_PAGE: usize = 200;

/// Largest configuration file accepted by the import.
pub(crate) const MAX_IMPORT_BYTES: usize = 256 * 1024;

/// Scrape tokens start with this, so a leaked one is recognisable in a log or a repository.
pub(crate) const METRICS_TOKEN_PREFIX: &str = "boxidr_metrics_";

/// SHA-256 of a scrape token, as stored (hex).
pub(crate) fn token_hash(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// Content type of the Prometheus text exposition format.
pub(crate) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl App {
    /// Names of the secrets that are set (for the export note and the page).
    fn secrets_set(&self) -> Result<Vec<&'static str>, SetupError> {
        self.actions.exported_secret_names()
    }

    pub(super) fn maintenance_page(
        &self,
        req: &Req,
        ctx: &Ctx,
        notice: Option<(&str, String)>,
        import_error: Option<&str>,
    ) -> Resp {
        let Some(session) = ctx.admin() else {
            return Resp::see_other("/login");
        };
        let secrets = match self.secrets_set() {
            Ok(s) => s,
            Err(e) => return internal(&e),
        };
        let notice = notice.or_else(|| match req.query.get("imported").map(String::as_str) {
            Some("1") => Some((
                "ok",
                "The configuration is imported. The appliance uses it now.".to_owned(),
            )),
            Some("kept") => Some((
                "ok",
                "The configuration is imported. This appliance kept its own data directory and \
                 setup page address, which the file set differently."
                    .to_owned(),
            )),
            _ => None,
        });
        let dead = match self.actions.dead_letter_summary() {
            Ok(dead) => dead,
            Err(e) => return internal(&e),
        };
        let status = if import_error.is_some() { 400 } else { 200 };
        Resp::html(
            status,
            pages::maintenance(
                self.nav(session, "/maintenance"),
                notice,
                import_error,
                &secrets,
                self.metrics_token_set(),
                &dead,
            ),
        )
    }

    /// `GET /maintenance/dead-letters.jsonl`: every dead letter, one JSON object per line
    /// (record fields, sink, reason, time, and Box's event as it was queued). Bounded by the
    /// store's own bound on dead letters.
    pub(super) fn dead_letters_download(&self, req: &Req) -> Resp {
        let result = self.actions.dead_letters_jsonl(DEAD_LETTER_PAGE);
        match result {
            Ok(text) => {
                tracing::info!(client = %req.client, bytes = text.len(), "Dead letters downloaded.");
                Resp::text(200, "application/x-ndjson; charset=utf-8", text)
                    .attachment("boxidr-dead-letters.jsonl")
            }
            Err(e) => internal(&e),
        }
    }

    /// `POST /maintenance/dead-letters/remove` with `through` (the newest sequence the page
    /// showed): removes the dead letters up to it, so one set aside since stays.
    pub(super) fn dead_letters_remove(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let Some(through) = form
            .get("through")
            .and_then(|t| t.trim().parse::<u64>().ok())
        else {
            return self.maintenance_page(
                req,
                ctx,
                Some((
                    "error",
                    "Nothing was removed: the form was incomplete.".to_owned(),
                )),
                None,
            );
        };
        match self.actions.remove_dead_letters(through) {
            Ok(removed) => {
                tracing::warn!(client = %req.client, removed, through, "Dead letters removed by the administrator.");
                self.maintenance_page(
                    req,
                    ctx,
                    Some(("ok", format!("Removed {removed} dead letters."))),
                    None,
                )
            }
            Err(e) => internal(&e),
        }
    }

    fn export_text(&self) -> Result<String, SetupError> {
        support::export_text(&self.current_config(), &self.secrets_set()?)
    }

    /// `GET /maintenance/config.toml`.
    pub(super) fn export_config(&self) -> Resp {
        match self.export_text() {
            Ok(text) => {
                Resp::text(200, "application/toml; charset=utf-8", text).attachment("boxidr.toml")
            }
            Err(e) => internal(&e),
        }
    }

    /// `POST /maintenance/import`: the whole file is validated; `data_dir` and `setup.listen`
    /// stay those of this appliance (another value would move the database out from under the
    /// running service, or the page to an address the admin may not reach); then it is saved
    /// through the same atomic path as every form.
    pub(super) fn import_config(&self, req: &Req, ctx: &Ctx) -> Resp {
        let refuse = |text: String| self.maintenance_page(req, ctx, None, Some(&text));
        let text = match req.upload_text("config_file") {
            Ok(Some(text)) => text,
            Ok(None) => return refuse("Choose a configuration file (.toml) first.".into()),
            Err(e) => return refuse(e),
        };
        if text.len() > MAX_IMPORT_BYTES {
            return refuse(format!(
                "The file is too large ({} KiB at most). Nothing was changed.",
                MAX_IMPORT_BYTES / 1024
            ));
        }
        let current = self.current_config();
        let imported = match check_import(&text, &current) {
            Ok(imported) => imported,
            Err(problem) => {
                tracing::warn!(client = %req.client, "Refused a configuration import.");
                return refuse(format!("Nothing was changed: {problem}"));
            }
        };
        let kept = imported.kept;
        match self.save(Changes {
            config: imported.config,
            secrets: Vec::new(),
            ca_file: None,
        }) {
            Ok(()) => {
                tracing::info!(client = %req.client, "Configuration imported.");
                Resp::see_other(if kept {
                    "/maintenance?imported=kept"
                } else {
                    "/maintenance?imported=1"
                })
            }
            Err(e) => refuse(format!("Saving failed, nothing was changed: {e}")),
        }
    }

    /// `GET /metrics` with `Authorization: Bearer <token>`: the scrape token is compared by its
    /// SHA-256 in constant time; anything else is a 401 that names the scheme. A random 256-bit
    /// token needs no slow hash (nothing to guess), unlike the admin password.
    pub(super) fn metrics_with_token(&self, req: &Req) -> Resp {
        let refuse = |why: &str| {
            Resp::text(401, "text/plain; charset=utf-8", format!("{why}\n"))
                .with_header("WWW-Authenticate", "Bearer realm=\"boxidr metrics\"")
        };
        let Some(token) = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return refuse("use Authorization: Bearer <scrape token>");
        };
        let stored = match self.actions.secret_text(settings::METRICS_TOKEN_HASH) {
            Ok(stored) => stored,
            Err(e) => return internal(&e),
        };
        match stored {
            Some(hash) if ct_eq(&token_hash(token), hash.expose()) => self.metrics(),
            Some(_) => {
                tracing::warn!(client = %req.client, "Refused a metrics scrape with a wrong token.");
                refuse("wrong scrape token")
            }
            None => refuse("no scrape token is set; generate one on the Maintenance page"),
        }
    }

    /// `POST /maintenance/metrics-token`: `action=generate` makes a new token (the old one stops
    /// working) and shows it once; `action=revoke` removes it.
    pub(super) fn metrics_token(&self, req: &Req, ctx: &Ctx) -> Resp {
        let form = req.form();
        let revoke = form.get("action").is_some_and(|a| a == "revoke");
        let result = if revoke {
            self.actions.set_metrics_token_hash(None).map(|()| None)
        } else {
            let token = format!("{METRICS_TOKEN_PREFIX}{}", random_hex(32));
            self.actions
                .set_metrics_token_hash(Some(token_hash(&token)))
                .map(|()| Some(token))
        };
        match result {
            Ok(Some(token)) => {
                tracing::info!(client = %req.client, "New metrics scrape token generated.");
                self.maintenance_page_with_token(req, ctx, &token)
            }
            Ok(None) => {
                tracing::info!(client = %req.client, "Metrics scrape token revoked.");
                self.maintenance_page(
                    req,
                    ctx,
                    Some(("ok", "The scrape token is revoked.".to_owned())),
                    None,
                )
            }
            Err(e) => internal(&e),
        }
    }

    /// The Maintenance page right after a token was made: the only time it is shown.
    fn maintenance_page_with_token(&self, req: &Req, ctx: &Ctx, token: &str) -> Resp {
        let resp = self.maintenance_page(
            req,
            ctx,
            Some((
                "ok",
                format!(
                    "New scrape token (shown only now; copy it into Prometheus): {token} — \
                     any earlier token no longer works."
                ),
            )),
            None,
        );
        resp.with_header("Cache-Control", "no-store")
    }

    /// Whether a scrape token is set (for the page).
    pub(super) fn metrics_token_set(&self) -> bool {
        self.actions
            .secret_is_set(settings::METRICS_TOKEN_HASH)
            .unwrap_or(false)
    }

    /// `GET /metrics`: the Prometheus text, computed now from the collector's latest report.
    pub(super) fn metrics(&self) -> Resp {
        match self.status.snapshot() {
            Some(report) => Resp::text(200, METRICS_CONTENT_TYPE, report.metrics()),
            None => Resp::text(
                503,
                "text/plain; charset=utf-8",
                "metrics are not available: the collector is not running\n",
            ),
        }
    }

    /// `GET /maintenance/bundle.tar.gz`.
    pub(super) fn support_bundle(&self, req: &Req) -> Resp {
        match self.build_bundle() {
            Ok(bytes) => {
                tracing::info!(client = %req.client, bytes = bytes.len(), "Support bundle downloaded.");
                let mut resp = Resp::text(200, "application/gzip", bytes);
                resp = resp.attachment("boxidr-support.tar.gz");
                resp
            }
            Err(e) => internal(&e),
        }
    }

    fn build_bundle(&self) -> Result<Vec<u8>, SetupError> {
        // One bundle at a time: it runs a process and holds a few MiB.
        let _guard = lock(&self.bundle_lock);
        let scrubber = self.actions.scrubber()?;
        let snapshot = crate::status::report_json(self.status.snapshot().as_ref());
        let status = serde_json::to_string_pretty(&snapshot)
            .map_err(|e| SetupError::Corrupt(format!("status does not serialise: {e}")))?;
        let config = self.export_text()?;
        let journal = if self.journal_command.is_empty() {
            Err("the journal is not collected on this system".to_owned())
        } else {
            self.actions.block_on(support::journal(
                &self.journal_command,
                support::MAX_JOURNAL_BYTES,
                support::JOURNAL_TIMEOUT,
            ))
        };
        let journal = journal.unwrap_or_else(|reason| {
            format!(
                "The service journal is not included: {}.\n",
                bounded(&reason)
            )
        });
        let files: Vec<(&str, Vec<u8>)> = [
            ("status.json", status),
            ("config.toml", config),
            ("versions.txt", support::versions_text()),
            ("journal.txt", journal),
        ]
        .into_iter()
        .map(|(name, text)| (name, scrubber.scrub(&text).into_bytes()))
        .collect();
        support::tar_gz("boxidr-support", &files)
    }
}

/// An import that passed every check.
#[derive(Debug)]
pub(crate) struct Imported {
    pub(crate) config: Config,
    /// The file named another `data_dir` or `setup.listen`, which were kept.
    pub(crate) kept: bool,
}

/// Parses and validates an imported file against the running configuration.
pub(crate) fn check_import(text: &str, current: &Config) -> Result<Imported, String> {
    let mut config = Config::from_toml(text).map_err(|e| bounded(&e.to_string()))?;
    let kept = config.data_dir != current.data_dir || config.setup.listen != current.setup.listen;
    config.data_dir = current.data_dir.clone();
    config.setup.listen = current.setup.listen;
    let files = [
        (
            "insightidr.collector.ca_file",
            config
                .insightidr
                .collector
                .as_ref()
                .and_then(|c| c.ca_file.as_ref()),
        ),
        (
            "insightidr.log_search.ca_file",
            config
                .insightidr
                .log_search
                .as_ref()
                .and_then(|l| l.ca_file.as_ref()),
        ),
    ];
    for (name, path) in files {
        if let Some(path) = path {
            if !path.is_absolute() || !path.is_file() {
                return Err(format!(
                    "{name} names {}, which is not a file on this appliance. Upload the CA on the \
                     InsightIDR page after importing, or remove the line.",
                    bounded(&path.display().to_string())
                ));
            }
        }
    }
    config.validate().map_err(|e| bounded(&e.to_string()))?;
    Ok(Imported { config, kept })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Invalid files are refused with the reason; a valid one keeps this appliance's paths.
    #[test]
    fn import_checks() {
        let current = Config {
            data_dir: "/var/lib/boxidr-here".into(),
            ..Config::default()
        };
        assert!(check_import("not toml [", &current).is_err());
        let e = check_import("[events]\npage_limit = 9999\n", &current).unwrap_err();
        assert!(e.contains("page_limit"), "{e}");
        let e = check_import("[surprise]\nx = 1\n", &current).unwrap_err();
        assert!(e.contains("surprise"), "{e}");
        let e = check_import(
            "[insightidr.collector]\nhost = \"c\"\nport = 6514\nca_file = \"/nonexistent/ca.pem\"\n",
            &current,
        )
        .unwrap_err();
        assert!(e.contains("not a file on this appliance"), "{e}");
        let ok = check_import(
            "data_dir = \"/elsewhere\"\n[mapping]\ndefault_domain = \"CORP\"\n",
            &current,
        )
        .unwrap();
        assert!(ok.kept);
        assert_eq!(ok.config.data_dir, current.data_dir);
        assert_eq!(ok.config.mapping.default_domain.as_deref(), Some("CORP"));
    }
}
