//! Users sync: `GET /2.0/users` with marker paging (enterprises can exceed the 10,000-user
//! offset limit, `shared/box/CONTRACT.md` §3.1), streamed page by page into the store so memory
//! stays bounded on a 512 MB board. The normaliser reads the directory for the "Box admin"
//! (role admin/coadmin) and "disabled" (status not active) flags.

use boxidr_store::{Store, UserEntry};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::error::ApiError;
use crate::http;
use crate::secret::Secret;
use crate::tokens::TokenManager;

/// Box's maximum page size for users.
pub const USERS_PAGE_LIMIT: u32 = 1000;
/// Fields the appliance needs; `fields` replaces the standard set, so name them all.
pub const USER_FIELDS: &str = "name,login,status,role,enterprise";

/// One page of users.
#[derive(Debug, Clone)]
pub struct UsersPage {
    pub users: Vec<UserEntry>,
    /// Entries without a usable id, counted and skipped.
    pub skipped: usize,
    /// `None` at the end (Box sends null, an empty string, or nothing).
    pub next_marker: Option<String>,
}

#[derive(Deserialize)]
struct PageBody {
    #[serde(default)]
    entries: Vec<Value>,
    #[serde(default)]
    next_marker: Option<Value>,
}

/// Reads user pages.
#[derive(Debug, Clone)]
pub struct UsersClient {
    http: reqwest::Client,
    users_url: Url,
    max_body: u64,
}

impl UsersClient {
    pub fn new(http: reqwest::Client, api_base: &Url, max_body: u64) -> Self {
        let users_url = http::endpoint(api_base, "users");
        Self {
            http,
            users_url,
            max_body,
        }
    }

    /// One marker-paged request (`marker` None = first page).
    pub async fn fetch(
        &self,
        token: &Secret,
        marker: Option<&str>,
        limit: u32,
    ) -> Result<UsersPage, ApiError> {
        let mut url = self.users_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("usemarker", "true")
                .append_pair("user_type", "all")
                .append_pair("limit", &limit.min(USERS_PAGE_LIMIT).to_string())
                .append_pair("fields", USER_FIELDS);
            if let Some(marker) = marker {
                query.append_pair("marker", marker);
            }
        }
        let body = http::get_bounded(&self.http, url, token, self.max_body).await?;
        parse_page(&body)
    }
}

/// Parses a users page; pure so the sample pages can be tested directly.
pub fn parse_page(body: &[u8]) -> Result<UsersPage, ApiError> {
    let page: PageBody = serde_json::from_slice(body).map_err(|e| ApiError::BadBody {
        detail: format!("users page: {}", http::bounded(&e.to_string())),
    })?;
    let next_marker = match page.next_marker {
        Some(Value::String(m)) if !m.is_empty() => Some(m),
        _ => None,
    };
    let mut users = Vec::with_capacity(page.entries.len());
    let mut skipped = 0;
    for entry in page.entries {
        let id = match entry.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            _ => {
                skipped += 1;
                continue;
            }
        };
        users.push(UserEntry {
            id,
            json: entry.to_string(),
        });
    }
    Ok(UsersPage {
        users,
        skipped,
        next_marker,
    })
}

/// What one full sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub users: usize,
    pub pages: usize,
    pub skipped: usize,
}

/// Walks every page, storing each in one transaction. A failure mid-way leaves the pages
/// already stored (they are current data) and returns the error; the next sync starts over
/// (Box: "applications should not retain the next_marker value long-term").
pub async fn sync(
    tokens: &TokenManager,
    client: &UsersClient,
    store: &Store,
) -> Result<SyncReport, ApiError> {
    let mut report = SyncReport::default();
    let mut marker: Option<String> = None;
    loop {
        let token = tokens.access_token().await?;
        let page = match client
            .fetch(&token, marker.as_deref(), USERS_PAGE_LIMIT)
            .await
        {
            Err(ApiError::Unauthorized) => {
                tokens.reject(&token).await;
                let token = tokens.access_token().await?;
                client
                    .fetch(&token, marker.as_deref(), USERS_PAGE_LIMIT)
                    .await?
            }
            other => other?,
        };
        report.pages += 1;
        report.users += page.users.len();
        report.skipped += page.skipped;
        store
            .put_users(page.users)
            .await
            .map_err(|e| ApiError::Store {
                detail: e.to_string(),
            })?;
        match page.next_marker {
            Some(next) if Some(&next) != marker.as_ref() => marker = Some(next),
            Some(_) => {
                return Err(ApiError::BadBody {
                    detail: "users: Box repeated the same next_marker".into(),
                });
            }
            None => return Ok(report),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::sample;

    /// The marker sample parses with its users and its next marker.
    #[test]
    fn marker_sample() {
        let page = parse_page(&sample("users-page-marker.json")).unwrap();
        assert!(!page.users.is_empty());
        assert!(page.next_marker.is_some());
        assert_eq!(page.skipped, 0);
    }

    /// Every end-of-list signal ends the walk; entries without an id are skipped and counted.
    #[test]
    fn end_markers_and_bad_entries() {
        for body in [
            r#"{"entries":[{"id":"1"}],"next_marker":null}"#,
            r#"{"entries":[{"id":"1"}],"next_marker":""}"#,
            r#"{"entries":[{"id":"1"}]}"#,
        ] {
            assert!(
                parse_page(body.as_bytes()).unwrap().next_marker.is_none(),
                "{body}"
            );
        }
        let page = parse_page(br#"{"entries":[{"id":7},{"name":"x"},{"id":""}]}"#).unwrap();
        assert_eq!(page.users.len(), 1);
        assert_eq!(page.users[0].id, "7");
        assert_eq!(page.skipped, 2);
    }
}
