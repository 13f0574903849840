//! Users sync: `GET /2.0/users` with marker paging (enterprises can exceed the 10,000-user
//! offset limit, `shared/box/CONTRACT.md` §3.1), streamed page by page into the store so memory
//! stays bounded on a 512 MB board. The normaliser reads the directory for the "Box admin"
//! (role admin/coadmin) and "disabled" (status not active) flags. [`keep_synced`] is the thin
//! task that runs [`sync`] every period (retrying with [`users_backoff`]), and
//! [`wait_for_first_sync`] holds the forwarders while a scope naming groups cannot be judged.
//!
//! # Scope and pruning
//!
//! When the monitoring scope names groups, the sync first resolves them ([`crate::groups`])
//! and stores each user with one more key, [`SCOPE_GROUPS_KEY`]: the names of the scoped
//! groups the user belongs to (an empty array for the others). The key is only written while
//! groups are scoped, so the stored object is otherwise Box's own. The renderer intersects it
//! with the current scope, so a group taken out of the scope stops counting at once; a group
//! added counts from the next sync (a settings change restarts the pipeline, which syncs).
//!
//! After a sync that read EVERY page, users Box no longer lists (deleted accounts) are removed
//! from the store in one transaction ([`Store::prune_users`]: every user the sync wrote carries
//! its generation, so the listed ids are never held in memory; 500,000 users fit in 24 MiB). A sync that fails part-way
//! prunes nothing, and neither does a listing with no user at all (an enterprise always has its
//! admin: an empty listing is a Box fault, not a reason to forget everyone).

use std::sync::Arc;
use std::time::Duration;

use boxidr_config::Scope;
use boxidr_model::{BackoffPolicy, Secret};
use boxidr_store::{SinkId, Store, UserEntry};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::watch;
use url::Url;

use crate::error::ApiError;
use crate::groups::{self, GroupsClient, ScopeGroups, with_token};
use crate::http;
use crate::tokens::TokenManager;

/// Box's maximum page size for users.
pub const USERS_PAGE_LIMIT: u32 = 1000;
/// Fields the appliance needs; `fields` replaces the standard set, so name them all.
pub const USER_FIELDS: &str = "name,login,status,role,enterprise";
/// Key added to a stored user while the scope names groups: the scoped groups it is in.
pub const SCOPE_GROUPS_KEY: &str = "boxidr_scope_groups";

/// One page of users.
#[derive(Debug, Clone)]
pub struct UsersPage {
    pub users: Vec<UserEntry>,
    /// Entries without a usable id, counted and skipped.
    pub skipped: usize,
    /// `None` at the end (Box sends null, an empty string, or nothing).
    pub next_marker: Option<String>,
}

/// A users page with each entry left as its text: a page of 1,000 users parsed into `Value`s
/// took about 1 MB per page on top of the body, in whichever worker thread's malloc arena
/// parsed it (glibc keeps each arena at its peak); only the id is read from each entry.
#[derive(Deserialize)]
struct PageBody<'a> {
    #[serde(default, borrow)]
    entries: Vec<&'a RawValue>,
    #[serde(default)]
    next_marker: Option<Value>,
}

/// The one field of a user entry the sync reads itself (the rest is stored as Box sent it).
#[derive(Deserialize)]
struct EntryId {
    #[serde(default)]
    id: Option<Value>,
}

/// Reads user pages (and, for a scope naming groups, groups and their members).
#[derive(Debug, Clone)]
pub struct UsersClient {
    http: reqwest::Client,
    users_url: Url,
    max_body: u64,
    groups: GroupsClient,
}

impl UsersClient {
    pub fn new(http: reqwest::Client, api_base: &Url, max_body: u64) -> Self {
        let users_url = http::endpoint(api_base, "users");
        Self {
            groups: GroupsClient::new(http.clone(), api_base, max_body),
            http,
            users_url,
            max_body,
        }
    }

    /// The groups reader sharing this client's connection pool and limits.
    pub fn groups(&self) -> &GroupsClient {
        &self.groups
    }

    /// One marker-paged request (`marker` None = first page).
    pub async fn fetch(
        &self,
        token: &Secret,
        marker: Option<&str>,
        limit: u32,
    ) -> Result<UsersPage, ApiError> {
        parse_page(&self.fetch_body(token, marker, limit).await?)
    }

    /// The bounded body of one marker-paged request.
    async fn fetch_body(
        &self,
        token: &Secret,
        marker: Option<&str>,
        limit: u32,
    ) -> Result<Vec<u8>, ApiError> {
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
        http::get_bounded(&self.http, url, token, self.max_body).await
    }

    /// `GET /users/me` with `fields`: the account the token belongs to, as Box's JSON
    /// (untrusted; the setup page shows it escaped). At most `limit` bytes are read.
    pub async fn me(&self, token: &Secret, fields: &str, limit: u64) -> Result<Value, ApiError> {
        let mut url = self.users_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("me");
        }
        url.query_pairs_mut().append_pair("fields", fields);
        let body = http::get_bounded(&self.http, url, token, self.max_body.min(limit)).await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::BadBody {
            detail: format!("users/me: {e}"),
        })
    }
}

/// Parses a users page; pure so the sample pages can be tested directly.
pub fn parse_page(body: &[u8]) -> Result<UsersPage, ApiError> {
    parse_page_scoped(body, None)
}

/// [`parse_page`], adding [`SCOPE_GROUPS_KEY`] to every user when `groups` is given.
pub fn parse_page_scoped(body: &[u8], groups: Option<&ScopeGroups>) -> Result<UsersPage, ApiError> {
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
        // An entry that is not an object has no id (serde would read `[7]` as `{"id":7}`).
        let object = entry.get().starts_with('{');
        let id = match serde_json::from_str::<EntryId>(entry.get()).map(|e| e.id) {
            Ok(Some(Value::String(s))) if object && !s.is_empty() => s,
            Ok(Some(Value::Number(n))) if object && n.is_u64() => n.to_string(),
            _ => {
                skipped += 1;
                continue;
            }
        };
        let json = match groups {
            // One entry at a time as a `Value`, to add the key.
            Some(groups) => {
                let mut user: Value =
                    serde_json::from_str(entry.get()).map_err(|e| ApiError::BadBody {
                        detail: format!("users page: {}", http::bounded(&e.to_string())),
                    })?;
                if let Some(obj) = user.as_object_mut() {
                    let names: Vec<Value> = groups
                        .by_user
                        .get(&id)
                        .into_iter()
                        .flatten()
                        .map(|name| Value::String(name.clone()))
                        .collect();
                    obj.insert(SCOPE_GROUPS_KEY.to_owned(), Value::Array(names));
                }
                user.to_string()
            }
            None => entry.get().to_owned(),
        };
        users.push(UserEntry { id, json });
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
    /// Stored users removed because Box no longer lists them (0 unless every page was read).
    pub pruned: u64,
    /// Box groups the scope's group names matched.
    pub scope_groups: usize,
    /// Listed users that are members of a scoped group.
    pub scope_members: usize,
    /// Scoped group names Box does not know (as the scope spells them).
    pub unknown_groups: Vec<String>,
}

/// Walks every page, storing each in one transaction, then prunes users Box no longer lists.
///
/// With groups in `scope`, they are resolved first; if that fails nothing is written (stored
/// users keep their previous group facts). A failure mid-way leaves the pages already stored
/// (they are current data), prunes nothing and returns the error; the next sync starts over
/// (Box: "applications should not retain the next_marker value long-term").
pub async fn sync(
    tokens: &TokenManager,
    client: &UsersClient,
    store: &Store,
    scope: &Scope,
) -> Result<SyncReport, ApiError> {
    let mut report = SyncReport::default();
    let groups = if scope.groups.is_empty() {
        None
    } else {
        let resolved = groups::resolve(tokens, &client.groups, &scope.groups).await?;
        report.scope_groups = resolved.groups;
        report.unknown_groups = resolved.unknown.clone();
        Some(resolved)
    };
    let generation = store
        .begin_users_sync()
        .await
        .map_err(|e| ApiError::Store {
            detail: e.to_string(),
        })?;
    let mut marker: Option<String> = None;
    loop {
        let body = with_token(tokens, |t| {
            let marker = marker.clone();
            async move {
                client
                    .fetch_body(&t, marker.as_deref(), USERS_PAGE_LIMIT)
                    .await
            }
        })
        .await?;
        let page = parse_page_scoped(&body, groups.as_ref())?;
        report.pages += 1;
        report.users += page.users.len();
        report.skipped += page.skipped;
        if let Some(groups) = &groups {
            report.scope_members += page
                .users
                .iter()
                .filter(|u| groups.by_user.contains_key(&u.id))
                .count();
        }
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
            None => break,
        }
    }
    if report.users == 0 {
        tracing::warn!("Box listed no user at all; keeping the stored directory as it is.");
    } else {
        report.pruned = store
            .prune_users(generation)
            .await
            .map_err(|e| ApiError::Store {
                detail: e.to_string(),
            })?;
        if report.pruned > 0 {
            tracing::info!(
                pruned = report.pruned,
                "Removed users Box no longer lists from the directory."
            );
        }
    }
    Ok(report)
}

/// What the users sync task needs.
#[derive(Debug)]
pub struct SyncTask {
    pub store: Store,
    pub tokens: Arc<TokenManager>,
    pub client: UsersClient,
    /// How often a sync runs.
    pub every: Duration,
    pub scope: Scope,
    /// Turned true after the first successful sync.
    pub synced: watch::Sender<bool>,
}

/// First retry of a failed users sync; doubles up to the sync period.
pub const USERS_RETRY: Duration = Duration::from_secs(30);

/// The users sync's retry schedule: [`USERS_RETRY`] doubling up to `every`, without jitter
/// (one call a sync period at most; no fleet reconnects in step on it).
pub fn users_backoff(every: Duration) -> BackoffPolicy {
    BackoffPolicy {
        initial: USERS_RETRY,
        max: every,
    }
}

/// Syncs Box users now and then every `task.every`, calling `after_sync` after each sync that
/// succeeded (the renderer's directory forgets what it parsed) and turning `task.synced` true.
/// A failed sync is retried after 30 s, doubling up to the period (rendering meanwhile uses
/// what is stored). Returns when `shutdown` changes.
pub async fn keep_synced(
    task: SyncTask,
    after_sync: impl Fn(&SyncReport) + Send,
    mut shutdown: watch::Receiver<bool>,
) {
    let SyncTask {
        store,
        tokens,
        client,
        every,
        scope,
        synced,
    } = task;
    let backoff = users_backoff(every);
    let mut failures = 0u32;
    loop {
        let wait = match sync(&tokens, &client, &store, &scope).await {
            Ok(report) => {
                tracing::info!(
                    users = report.users,
                    pages = report.pages,
                    pruned = report.pruned,
                    scope_groups = report.scope_groups,
                    scope_members = report.scope_members,
                    unknown_groups = ?report.unknown_groups,
                    "Box users synced."
                );
                after_sync(&report);
                synced.send_replace(true);
                failures = 0;
                every
            }
            Err(e) => {
                // Jitter 0.5 is the middle of the range: the schedule itself, unscaled.
                let wait = backoff.delay(failures, 0.5);
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "Box users sync failed.");
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Waits until the first users sync succeeded (`synced` true), so `sink` can judge a scope
/// naming groups; `false` if shut down first.
pub async fn wait_for_first_sync(
    mut synced: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
    sink: SinkId,
) -> bool {
    if !*synced.borrow() {
        tracing::info!(%sink, "Forwarding waits for the first Box users sync: the scope names groups.");
    }
    tokio::select! {
        ready = synced.wait_for(|ready| *ready) => ready.is_ok(),
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::sample;

    /// A failed users sync retries after 30 s, doubling up to the sync period.
    #[test]
    fn users_sync_retries_double_up_to_the_period() {
        let backoff = users_backoff(Duration::from_secs(3600));
        let waits: Vec<u64> = (0..9).map(|n| backoff.delay(n, 0.5).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(
            users_backoff(Duration::from_secs(10)).delay(0, 0.5),
            Duration::from_secs(10)
        );
    }

    /// Forwarders held for the first users sync start once it succeeds, and a shutdown while
    /// waiting ends the wait without starting them.
    #[tokio::test]
    async fn forwarders_wait_for_the_first_users_sync() {
        let (synced_tx, synced_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let waiting = tokio::spawn(wait_for_first_sync(
            synced_rx.clone(),
            stop_rx.clone(),
            SinkId::Collector,
        ));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        synced_tx.send_replace(true);
        assert!(waiting.await.unwrap());

        let (_never_tx, never_rx) = watch::channel(false);
        let stopped = tokio::spawn(wait_for_first_sync(never_rx, stop_rx, SinkId::LogSearch));
        stop_tx.send_replace(true);
        assert!(!stopped.await.unwrap());
    }

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
        let page =
            parse_page(br#"{"entries":[{"id":7},{"name":"x"},{"id":""},[7],7,null]}"#).unwrap();
        assert_eq!(page.users.len(), 1);
        assert_eq!(page.users[0].id, "7");
        assert_eq!(page.skipped, 5);
    }
}
