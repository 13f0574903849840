//! Box groups for user scoping (`shared/box/CONTRACT.md` §3.4): `GET /2.0/groups` to find a
//! group's id from its name, `GET /2.0/groups/{id}/memberships` to list its members. Both are
//! offset paged (`limit` ≤ 1000; an offset above 10,000 is refused by Box), admin only, and
//! need the app scope `manage_groups`.
//!
//! [`resolve`] turns the group names of a [`boxidr_config::Scope`] into "user id → scoped
//! groups it belongs to". A name is matched exactly, ignoring case (`filter_term` is only a
//! prefix match); several Box groups may share a name and all of them count. A name Box does
//! not know is reported, not an error: the other groups still apply.

use std::collections::{BTreeMap, BTreeSet};

use boxidr_model::Secret;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::error::ApiError;
use crate::http;
use crate::tokens::TokenManager;

/// Box's maximum page size for groups and memberships.
pub const GROUPS_PAGE_LIMIT: u32 = 1000;
/// Box refuses offsets above this (CONTRACT §3.4).
pub const MAX_OFFSET: u64 = 10_000;

/// A group as listed by `GET /groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// One offset page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetPage<T> {
    pub entries: Vec<T>,
    /// Entries without a usable id, counted and skipped.
    pub skipped: usize,
    /// Where the next page starts (`offset` + the `limit` Box echoed, CONTRACT §3.1), or
    /// `None` when this was the last page.
    pub next_offset: Option<u64>,
}

#[derive(Deserialize)]
struct PageBody {
    #[serde(default)]
    entries: Vec<Value>,
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
}

/// A Box id, as a string or a JSON integer.
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Parses an offset page, keeping what `pick` extracts from each entry. Pure, for the samples.
fn parse_offset_page<T>(
    body: &[u8],
    what: &str,
    requested_offset: u64,
    requested_limit: u32,
    pick: impl Fn(&Value) -> Option<T>,
) -> Result<OffsetPage<T>, ApiError> {
    let page: PageBody = serde_json::from_slice(body).map_err(|e| ApiError::BadBody {
        detail: format!("{what} page: {}", http::bounded(&e.to_string())),
    })?;
    let offset = page.offset.unwrap_or(requested_offset);
    // Step by the limit Box applied, not by the entries received (a short page is not the end).
    let limit = page
        .limit
        .filter(|l| *l > 0)
        .unwrap_or(u64::from(requested_limit));
    let next = offset.saturating_add(limit);
    let next_offset = match page.total_count {
        Some(total) => (next < total && !page.entries.is_empty()).then_some(next),
        // Without a total, a page shorter than the limit is the last one.
        None => (page.entries.len() as u64 >= limit).then_some(next),
    };
    let mut entries = Vec::with_capacity(page.entries.len());
    let mut skipped = 0;
    for entry in &page.entries {
        match pick(entry) {
            Some(t) => entries.push(t),
            None => skipped += 1,
        }
    }
    Ok(OffsetPage {
        entries,
        skipped,
        next_offset,
    })
}

/// Parses a `GET /groups` page (sample `groups-page.json`).
pub fn parse_groups_page(
    body: &[u8],
    offset: u64,
    limit: u32,
) -> Result<OffsetPage<Group>, ApiError> {
    parse_offset_page(body, "groups", offset, limit, |g| {
        Some(Group {
            id: id_of(g.get("id"))?,
            name: g.get("name")?.as_str()?.to_owned(),
        })
    })
}

/// Parses a `GET /groups/{id}/memberships` page into member user ids (sample
/// `group-memberships-page.json`).
pub fn parse_memberships_page(
    body: &[u8],
    offset: u64,
    limit: u32,
) -> Result<OffsetPage<String>, ApiError> {
    parse_offset_page(body, "group memberships", offset, limit, |m| {
        id_of(m.get("user")?.get("id"))
    })
}

/// Reads groups and memberships over the shared HTTP plumbing.
#[derive(Debug, Clone)]
pub struct GroupsClient {
    http: reqwest::Client,
    groups_url: Url,
    max_body: u64,
}

impl GroupsClient {
    pub fn new(http: reqwest::Client, api_base: &Url, max_body: u64) -> Self {
        Self {
            groups_url: http::endpoint(api_base, "groups"),
            http,
            max_body,
        }
    }

    /// One page of `GET /groups?filter_term=…` (name prefix match).
    pub async fn fetch_groups(
        &self,
        token: &Secret,
        filter_term: &str,
        offset: u64,
        limit: u32,
    ) -> Result<OffsetPage<Group>, ApiError> {
        let limit = limit.clamp(1, GROUPS_PAGE_LIMIT);
        let mut url = self.groups_url.clone();
        url.query_pairs_mut()
            .append_pair("filter_term", filter_term)
            .append_pair("fields", "name,group_type")
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        let body = http::get_bounded(&self.http, url, token, self.max_body).await?;
        parse_groups_page(&body, offset, limit)
    }

    /// One page of `GET /groups/{group_id}/memberships`.
    pub async fn fetch_members(
        &self,
        token: &Secret,
        group_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<OffsetPage<String>, ApiError> {
        let limit = limit.clamp(1, GROUPS_PAGE_LIMIT);
        let mut url = self.groups_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(group_id).push("memberships");
        }
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        let body = http::get_bounded(&self.http, url, token, self.max_body).await?;
        parse_memberships_page(&body, offset, limit)
    }
}

/// Runs `call` with the current access token; on a 401 rejects that token and retries once
/// with a fresh one (CONTRACT §4.2), like every other Box read.
pub async fn with_token<T, F, Fut>(tokens: &TokenManager, call: F) -> Result<T, ApiError>
where
    F: Fn(Secret) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let token = tokens.access_token().await?;
    match call(token.clone()).await {
        Err(ApiError::Unauthorized) => {
            tokens.reject(&token).await;
            call(tokens.access_token().await?).await
        }
        other => other,
    }
}

/// Walks every page from offset 0. A list longer than Box's offset limit cannot be read whole
/// and is an error (never a silently partial membership).
async fn all_pages<T, F, Fut>(what: &str, fetch: F) -> Result<(Vec<T>, usize), ApiError>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<OffsetPage<T>, ApiError>>,
{
    let mut items = Vec::new();
    let mut skipped = 0;
    let mut offset = 0;
    loop {
        let page = fetch(offset).await?;
        items.extend(page.entries);
        skipped += page.skipped;
        match page.next_offset {
            None => return Ok((items, skipped)),
            Some(next) if next > MAX_OFFSET => {
                return Err(ApiError::Client {
                    status: 400,
                    code: "offset_limit".into(),
                    message: format!(
                        "{what}: more than {} entries, beyond what Box's offset paging can list",
                        MAX_OFFSET + u64::from(GROUPS_PAGE_LIMIT)
                    ),
                });
            }
            Some(next) if next <= offset => {
                return Err(ApiError::BadBody {
                    detail: format!("{what}: Box's paging did not advance"),
                });
            }
            Some(next) => offset = next,
        }
    }
}

/// What [`resolve`] found for the scoped group names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeGroups {
    /// User id → names (as Box spells them) of the scoped groups the user is a member of.
    pub by_user: BTreeMap<String, BTreeSet<String>>,
    /// Box groups matched (a name can match several groups).
    pub groups: usize,
    /// Scoped names no Box group has, as the scope spells them.
    pub unknown: Vec<String>,
    /// Membership entries without a usable user id.
    pub skipped: usize,
}

/// Resolves scoped group names to ids (exact name, case-insensitive) and lists their members.
/// Any failed request fails the whole resolution: a partial membership would take users out
/// of scope by accident.
pub async fn resolve(
    tokens: &TokenManager,
    client: &GroupsClient,
    names: &[String],
) -> Result<ScopeGroups, ApiError> {
    let mut out = ScopeGroups::default();
    let mut done = BTreeSet::new();
    for name in names {
        let wanted = name.trim();
        if wanted.is_empty() || !done.insert(wanted.to_lowercase()) {
            continue;
        }
        let (candidates, _) = all_pages(&format!("groups named {wanted:?}"), |offset| {
            with_token(tokens, move |t| async move {
                client
                    .fetch_groups(&t, wanted, offset, GROUPS_PAGE_LIMIT)
                    .await
            })
        })
        .await?;
        let matching: Vec<Group> = candidates
            .into_iter()
            .filter(|g| g.name.trim().to_lowercase() == wanted.to_lowercase())
            .collect();
        if matching.is_empty() {
            tracing::warn!(group = %http::bounded(wanted), "Scoped Box group not found; it adds nobody to the scope.");
            out.unknown.push(wanted.to_owned());
            continue;
        }
        for group in matching {
            out.groups += 1;
            let (members, skipped) =
                all_pages(&format!("members of group {}", group.id), |offset| {
                    let id = group.id.as_str();
                    with_token(tokens, move |t| async move {
                        client
                            .fetch_members(&t, id, offset, GROUPS_PAGE_LIMIT)
                            .await
                    })
                })
                .await?;
            out.skipped += skipped;
            for user in members {
                out.by_user
                    .entry(user)
                    .or_default()
                    .insert(group.name.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::sample;

    /// The samples parse: groups with id and name, memberships to their user ids.
    #[test]
    fn samples() {
        let page = parse_groups_page(&sample("groups-page.json"), 0, 100).unwrap();
        assert_eq!(
            page.entries,
            [
                Group {
                    id: "12345".into(),
                    name: "Test Group 1".into()
                },
                Group {
                    id: "53453".into(),
                    name: "Test Group 2".into()
                }
            ]
        );
        assert_eq!(page.next_offset, None);
        let page = parse_memberships_page(&sample("group-memberships-page.json"), 0, 100).unwrap();
        assert_eq!(page.entries, ["2222"]);
        assert_eq!(page.next_offset, None);
    }

    /// Paging steps by the returned limit, stops at total_count (or, without one, at a short
    /// page), and entries without an id are skipped and counted.
    #[test]
    fn offset_paging() {
        let body = br#"{"total_count":5,"limit":2,"offset":2,
            "entries":[{"id":"1","name":"a"},{"id":7,"name":"b"}]}"#;
        let page = parse_groups_page(body, 2, 1000).unwrap();
        assert_eq!(page.next_offset, Some(4));
        assert_eq!(page.entries[1].id, "7");
        let last = br#"{"total_count":5,"limit":2,"offset":4,"entries":[{"id":"1","name":"a"}]}"#;
        assert_eq!(parse_groups_page(last, 4, 2).unwrap().next_offset, None);
        let no_total = br#"{"entries":[{"user":{"id":"1"}},{"user":{}},{"id":"x"}]}"#;
        let page = parse_memberships_page(no_total, 0, 3).unwrap();
        assert_eq!(page.entries, ["1"]);
        assert_eq!(page.skipped, 2);
        assert_eq!(page.next_offset, Some(3), "a full page without total_count");
        assert_eq!(
            parse_memberships_page(br#"{"entries":[]}"#, 0, 3)
                .unwrap()
                .next_offset,
            None
        );
        assert!(matches!(
            parse_groups_page(b"<html>", 0, 2),
            Err(ApiError::BadBody { .. })
        ));
    }
}
