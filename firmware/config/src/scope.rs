//! Monitoring scope: which Box users the appliance reports on.
//!
//! By default every user of the enterprise is monitored. An admin can narrow it by uploading a
//! CSV file, as Code42's connector allows, listing users by email (`Email` / `Email Address`
//! column) and/or Box groups by name (`Group Name` / `Groups` column). The parsed list lives in
//! the bootstrap file under `[scope]`.

use serde::{Deserialize, Serialize};

/// Most data rows accepted in a scoping CSV (and entries in `[scope]`).
pub const MAX_SCOPE_ROWS: usize = 1000;
/// Longest email address accepted (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;
/// Longest Box group name accepted.
const MAX_GROUP: usize = 255;

/// Which users are monitored. Both lists empty means everyone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    /// Box logins (email addresses), lower-case.
    pub users: Vec<String>,
    /// Box group names, as Box spells them; every member is monitored.
    pub groups: Vec<String>,
}

/// One rejected CSV row, numbered as a spreadsheet shows it (the header is row 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: {message}")]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

/// Why an uploaded scoping file was refused: the file as a whole, or its rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("the file is not a CSV file this page can read: {0}")]
    Unreadable(String),
    #[error(
        "the first row must name a column Email (or Email Address) and/or Group Name (or Groups)"
    )]
    NoColumn,
    #[error("the file lists no user and no group")]
    Empty,
    #[error("the file has more than {MAX_SCOPE_ROWS} rows")]
    TooManyRows,
    #[error("{} row(s) refused, first: {}", .0.len(), .0[0])]
    Rows(Vec<RowError>),
}

impl Scope {
    /// True when every user is monitored.
    pub fn is_everyone(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// Parses an uploaded CSV file. Every row is checked; all bad rows are reported, and
    /// nothing is accepted unless every row is good.
    pub fn from_csv(text: &str) -> Result<Self, ScopeError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| ScopeError::Unreadable(e.to_string()))?
            .clone();
        let column = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let email_col = column(&["Email", "Email Address"]);
        let group_col = column(&["Group Name", "Groups"]);
        if email_col.is_none() && group_col.is_none() {
            return Err(ScopeError::NoColumn);
        }

        let mut scope = Self::default();
        let mut errors = Vec::new();
        let mut rows = 0usize;
        for (index, record) in reader.records().enumerate() {
            // The header is row 1 for the admin; the reader counts data records from 0.
            let row = index + 2;
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    errors.push(RowError {
                        row,
                        message: format!("cannot be read ({e})"),
                    });
                    continue;
                }
            };
            let cell = |col: Option<usize>| col.and_then(|c| record.get(c)).unwrap_or("");
            let (email, group) = (cell(email_col), cell(group_col));
            if email.is_empty() && group.is_empty() {
                continue;
            }
            rows += 1;
            if rows > MAX_SCOPE_ROWS {
                return Err(ScopeError::TooManyRows);
            }
            if !email.is_empty() {
                match normalise_email(email) {
                    Ok(email) => push_unique(&mut scope.users, email),
                    Err(message) => errors.push(RowError { row, message }),
                }
            }
            if !group.is_empty() {
                match check_group(group) {
                    Ok(()) => push_unique(&mut scope.groups, group.to_owned()),
                    Err(message) => errors.push(RowError { row, message }),
                }
            }
        }
        if !errors.is_empty() {
            return Err(ScopeError::Rows(errors));
        }
        if scope.is_everyone() {
            return Err(ScopeError::Empty);
        }
        Ok(scope)
    }

    /// Checks a scope read from the bootstrap file (which an admin may edit by hand).
    pub fn validate(&self) -> Result<(), String> {
        if self.users.len() + self.groups.len() > MAX_SCOPE_ROWS {
            return Err(format!("scope lists more than {MAX_SCOPE_ROWS} entries"));
        }
        for user in &self.users {
            match normalise_email(user) {
                Ok(normal) if normal == *user => {}
                Ok(_) => return Err(format!("scope.users entry {user:?} must be lower-case")),
                Err(message) => return Err(format!("scope.users entry {user:?}: {message}")),
            }
        }
        for group in &self.groups {
            check_group(group).map_err(|m| format!("scope.groups entry {group:?}: {m}"))?;
        }
        Ok(())
    }

    /// The scope as a CSV file the upload form accepts back.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let rows = self.users.len().max(self.groups.len());
        // A Vec<u8> writer cannot fail.
        let _ = writer.write_record(["Email", "Group Name"]);
        for i in 0..rows {
            let user = self.users.get(i).map_or("", String::as_str);
            let group = self.groups.get(i).map_or("", String::as_str);
            let _ = writer.write_record([user, group]);
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// An email address as Box logins are: `local@domain.tld`, lower-cased.
fn normalise_email(value: &str) -> Result<String, String> {
    let refuse = || format!("{:?} is not an email address", shorten(value));
    if value.len() > MAX_EMAIL || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse());
    }
    let (local, domain) = value.split_once('@').ok_or_else(refuse)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if local.is_empty() || local.contains(['<', '>', '"', ',', ';']) || !domain_ok {
        return Err(refuse());
    }
    Ok(value.to_lowercase())
}

fn check_group(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_GROUP || value.chars().any(char::is_control) {
        return Err(format!(
            "group name {:?} must be at most {MAX_GROUP} printable characters",
            shorten(value)
        ));
    }
    Ok(())
}

/// At most 60 characters of a refused value, for the error message.
fn shorten(value: &str) -> String {
    let mut short: String = value.chars().take(60).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(err: ScopeError) -> Vec<usize> {
        match err {
            ScopeError::Rows(rows) => rows.iter().map(|r| r.row).collect(),
            other => panic!("expected row errors, got {other}"),
        }
    }

    #[test]
    fn emails_and_groups_in_either_column_spelling() {
        let scope = Scope::from_csv(
            "\u{feff}Name,Email Address,Groups\n\
             Ann,Ann.Lee@Example.com,Finance\n\
             ,,\n\
             Bob,bob@example.com,\n\
             ,,\"Sales, EMEA\"\n\
             Ann again,ann.lee@example.com,Finance\n",
        )
        .expect("valid file");
        assert_eq!(scope.users, ["ann.lee@example.com", "bob@example.com"]);
        assert_eq!(scope.groups, ["Finance", "Sales, EMEA"]);
        assert_eq!(Scope::from_csv(&scope.to_csv()), Ok(scope.clone()));
        assert_eq!(scope.validate(), Ok(()));
    }

    #[test]
    fn every_bad_row_is_reported_by_its_spreadsheet_number() {
        let err = Scope::from_csv(
            "Email\nok@example.com\nnot-an-email\nfine@example.org\nx@y\n@example.com\n",
        )
        .expect_err("bad rows");
        assert_eq!(rows(err.clone()), [3, 5, 6]);
        assert!(err.to_string().contains("row 3"), "{err}");
        assert!(err.to_string().contains("not-an-email"), "{err}");
    }

    #[test]
    fn file_level_refusals() {
        assert_eq!(
            Scope::from_csv("Name,Department\nAnn,IT\n"),
            Err(ScopeError::NoColumn)
        );
        assert_eq!(Scope::from_csv("Email\n\n,\n"), Err(ScopeError::Empty));
        assert_eq!(Scope::from_csv(""), Err(ScopeError::NoColumn));
        let mut big = String::from("Email\n");
        for i in 0..=MAX_SCOPE_ROWS {
            big.push_str(&format!("user{i}@example.com\n"));
        }
        assert_eq!(Scope::from_csv(&big), Err(ScopeError::TooManyRows));
        big.truncate(big.len() - "user1000@example.com\n".len());
        assert_eq!(
            Scope::from_csv(&big).map(|s| s.users.len()),
            Ok(MAX_SCOPE_ROWS)
        );
    }

    #[test]
    fn hostile_cells_are_refused_not_stored() {
        let err = Scope::from_csv(
            "Email,Group Name\n\"ann@example.com\nx\",\nbob@example.com,\"bad\u{0}group\"\n",
        )
        .expect_err("hostile");
        assert_eq!(rows(err), [2, 3]);
    }

    #[test]
    fn hand_edited_scope_is_checked() {
        let mut scope = Scope {
            users: vec!["Ann@example.com".into()],
            groups: vec![],
        };
        assert!(scope.validate().is_err());
        scope.users[0] = "ann@example.com".into();
        assert_eq!(scope.validate(), Ok(()));
        scope.groups.push("a\nb".into());
        assert!(scope.validate().is_err());
        assert!(Scope::default().is_everyone());
    }
}
