//! `boxidr config check`: every problem of a bootstrap file at once, each with its key path,
//! in the manner of `nginx -t` and `sshd -t`.
//!
//! [`Config::from_toml`] stops at the first problem, which is right for the service (it will
//! not start either way) but slow for an admin fixing a file by hand: fix, run, fix, run. The
//! check parses the file as a TOML table, then deserialises it repeatedly: each failure names
//! its key (through `serde_path_to_error`), is recorded, and that key is taken out before the
//! next attempt, so every type error and unknown key is found in one run. The configuration
//! that remains is then validated with [`Config::problems`], which reports every limit.

use std::fmt;
use std::path::Path;

use crate::Config;

/// Most deserialisation passes; a file has far fewer bad keys than this.
const MAX_PASSES: usize = 256;

/// One thing wrong with a configuration file: where (`events.page_limit`, empty for the file
/// as a whole) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            return f.write_str(&self.message);
        }
        // Most validation messages already start with their key; say it once.
        let message = self
            .message
            .strip_prefix(self.key.as_str())
            .map_or(self.message.as_str(), str::trim_start);
        write!(f, "{}: {message}", self.key)
    }
}

/// Checks a bootstrap file's text: the usable configuration, or every problem found.
pub fn check_toml(text: &str) -> Result<Config, Vec<Problem>> {
    let mut table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(e) => {
            return Err(vec![Problem {
                key: String::new(),
                message: format!("not valid TOML: {}", e.to_string().trim_end()),
            }]);
        }
    };
    let mut problems = Vec::new();
    let mut config = None;
    for _ in 0..MAX_PASSES {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(parsed) => {
                config = Some(parsed);
                break;
            }
            Err(e) => {
                let key = e.path().to_string();
                let key = if key == "." { String::new() } else { key };
                // toml repeats the key on a second line ("in `events`"); keep the first.
                let message = e.inner().to_string();
                let message = message.lines().next().unwrap_or_default().to_owned();
                let removed = remove_key(&mut table, &key);
                problems.push(Problem { key, message });
                if !removed {
                    break;
                }
            }
        }
    }
    if let Some(config) = &config {
        problems.extend(config.problems().into_iter().map(|(key, error)| Problem {
            key: key.to_owned(),
            message: error.to_string(),
        }));
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(problems),
    }
}

/// Takes `a.b.c` out of the table so the next pass gets past it; false when the path names
/// nothing that can be removed (the whole file, or a key that is not there).
fn remove_key(table: &mut toml::Table, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut current = table;
    for part in parts {
        match current.get_mut(part) {
            Some(toml::Value::Table(inner)) => current = inner,
            _ => return false,
        }
    }
    current.remove(last).is_some()
}

impl Config {
    /// The files this configuration names, with their keys, for a check that they can be read.
    pub fn referenced_files(&self) -> Vec<(&'static str, &Path)> {
        let insightidr = &self.insightidr;
        [
            (
                "insightidr.collector.ca_file",
                insightidr
                    .collector
                    .as_ref()
                    .and_then(|c| c.ca_file.as_deref()),
            ),
            (
                "insightidr.log_search.ca_file",
                insightidr
                    .log_search
                    .as_ref()
                    .and_then(|l| l.ca_file.as_deref()),
            ),
            (
                "insightidr.verifier.ca_file",
                insightidr.verifier.ca_file.as_deref(),
            ),
            ("box.ca_file", self.box_api.ca_file.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, path)| path.map(|p| (key, p)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    /// A good file (and an empty one) passes and gives the same configuration as `from_toml`.
    #[test]
    fn good_files_pass() {
        assert_eq!(check_toml("").unwrap(), Config::default());
        let text = "[events]\nstream_type = \"admin_logs\"\nbackfill_days = 30\n\
                    [insightidr.log_search]\nregion = \"eu\"\n";
        assert_eq!(check_toml(text).unwrap(), Config::from_toml(text).unwrap());
    }

    /// Type errors, unknown keys, missing keys and broken limits are all reported in one run,
    /// each with its key path.
    #[test]
    fn every_problem_with_its_key() {
        let text = "\
bogus = 1
[events]
poll_intervall_secs = 5
page_limit = \"x\"
backfill_days = 9999
[box]
api_base = 3
[insightidr.collector]
port = 5
[insightidr.log_search]
region = \"EU\"
[queue]
quota_bytes = 1
[board]
backend = \"gpio\"
";
        let problems = check_toml(text).unwrap_err();
        let found = keys(&problems);
        for expected in [
            "bogus",
            "events.poll_intervall_secs",
            "events.page_limit",
            "box.api_base",
            "insightidr.collector",
            "events.backfill_days",
            "insightidr.log_search.region",
            "queue.quota_bytes",
            "board.backend",
        ] {
            assert!(found.contains(&expected), "{expected} missing in {found:?}");
        }
        assert_eq!(found.len(), 9, "{problems:?}");
        let unknown = problems
            .iter()
            .find(|p| p.key == "events.poll_intervall_secs")
            .unwrap();
        assert!(unknown.message.contains("poll_interval_secs"), "{unknown}");
        let page = problems
            .iter()
            .find(|p| p.key == "events.page_limit")
            .unwrap();
        assert_eq!(
            page.to_string(),
            "events.page_limit: invalid type: string \"x\", expected u32"
        );
        let quota = problems
            .iter()
            .find(|p| p.key == "queue.quota_bytes")
            .unwrap();
        assert_eq!(
            quota.to_string(),
            "queue.quota_bytes: must be at least 16 MiB, got 1"
        );
    }

    /// A syntax error is one problem about the whole file, with its line.
    #[test]
    fn syntax_error_is_one_problem() {
        let problems = check_toml("[events\npage_limit = 5\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].key.is_empty());
        assert!(
            problems[0].to_string().contains("line 1"),
            "{}",
            problems[0]
        );
    }

    /// Referenced CA files are listed with their keys.
    #[test]
    fn referenced_files() {
        let config = check_toml(
            "[insightidr.collector]\nhost = \"c\"\nport = 1\nca_file = \"/x/ca.pem\"\n\
             [insightidr.verifier]\nca_file = \"/y.pem\"\n",
        )
        .unwrap();
        let files = config.referenced_files();
        assert_eq!(
            files,
            vec![
                ("insightidr.collector.ca_file", Path::new("/x/ca.pem")),
                ("insightidr.verifier.ca_file", Path::new("/y.pem")),
            ]
        );
    }
}
