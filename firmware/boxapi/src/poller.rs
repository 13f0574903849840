//! The events poller: a pure state machine ([`Poller`]) deciding what to fetch and how long to
//! wait, and a thin task ([`run`]) that performs it against Box and the store.
//!
//! Invariants defended here:
//! - the cursor only moves through the store's page commit (ARCHITECTURE invariant 1): the
//!   poller's in-memory cursor is updated from a page only after that page is committed;
//! - a full queue pauses the poller without advancing (invariant 4);
//! - errors never spin: capped exponential backoff with jitter, Retry-After honoured,
//!   operator-level errors stop polling and are reported instead of retried.

use std::collections::BTreeMap;
use std::time::Duration;

use boxidr_model::{StreamPosition, StreamType};
use boxidr_store::{CursorKey, CursorState, PageCommit, Store};
use tokio::sync::watch;

use crate::error::{ApiError, Recovery};
use crate::events::{EventsClient, EventsPage, EventsRequest, From};
use crate::sweep::{SweepOrder, SweepRequest};
use crate::tokens::TokenManager;

/// Longest wait between retries of a failing call.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// First retry delay.
pub const BASE_BACKOFF: Duration = Duration::from_secs(1);
/// How many times in a row a page may come back unreadable (malformed or oversized) at the same
/// stream position before the stream gives up on that position: re-anchors at `now` and hands
/// the gap to the `admin_logs` sweep, which reads it in windows it can shrink. Retrying forever
/// would wedge the pipeline silently.
pub const UNREADABLE_PAGE_TRIES: u32 = 5;

/// How one stream is polled.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub stream: StreamType,
    pub limit: u32,
    pub interval: Duration,
    /// Where to start when no cursor is stored.
    pub start: From,
}

/// What the task should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Fetch(EventsRequest),
    Wait(Duration),
    /// Polling stops until an operator acts; the reason is shown on health and the page.
    Halt(String),
}

/// The sans-IO poller for one cursor.
#[derive(Debug, Clone)]
pub struct Poller {
    config: PollerConfig,
    cursor: Option<StreamPosition>,
    failures: u32,
    wait: Option<Duration>,
    halted: Option<String>,
    /// A catch-up to hand to the sweep, from this time up to the moment the `now` position is
    /// read, BEFORE that position is committed (so no event falls between the two).
    catch_up_from: Option<time::OffsetDateTime>,
    /// The position pages keep coming back unreadable at, and how many times in a row.
    unreadable: Option<(Option<StreamPosition>, u32)>,
}

impl Poller {
    /// `committed` is the cursor the store holds (None on first connection).
    pub fn new(config: PollerConfig, committed: Option<StreamPosition>) -> Self {
        Self {
            config,
            cursor: committed,
            failures: 0,
            wait: None,
            halted: None,
            catch_up_from: None,
            unreadable: None,
        }
    }

    pub fn cursor(&self) -> Option<&StreamPosition> {
        self.cursor.as_ref()
    }

    /// The next thing to do. `jitter` is a uniform sample in `[0, 1)` supplied by the caller
    /// (pure: tests pass fixed values).
    pub fn step(&mut self) -> Step {
        if let Some(reason) = &self.halted {
            return Step::Halt(reason.clone());
        }
        if let Some(wait) = self.wait.take() {
            return Step::Wait(wait);
        }
        let from = match &self.cursor {
            Some(position) => From::At(position.clone()),
            None => self.config.start.clone(),
        };
        Step::Fetch(EventsRequest {
            stream: self.config.stream,
            from,
            limit: self.config.limit,
            created_after: None,
            created_before: None,
            event_types: Vec::new(),
        })
    }

    /// A page was committed. A full page means more is waiting: fetch again at once; a short
    /// page means "caught up for now" (Box may return short pages mid-stream, so it is never
    /// taken as "complete"), so wait one interval.
    pub fn on_committed(&mut self, entry_count: usize, next: Option<StreamPosition>) {
        self.failures = 0;
        self.unreadable = None;
        if let Some(next) = next {
            self.cursor = Some(next);
        }
        let full = u32::try_from(entry_count).unwrap_or(u32::MAX) >= self.config.limit;
        self.wait = (!full).then_some(self.config.interval);
    }

    /// The queue is at its quota: wait an interval and retry the same page later (Box keeps it).
    pub fn on_queue_full(&mut self) {
        self.wait = Some(self.config.interval.max(Duration::from_secs(5)));
    }

    /// A call failed. `jitter` in `[0, 1)`.
    pub fn on_error(&mut self, error: &ApiError, jitter: f64) {
        match error.recovery() {
            Recovery::Operator => self.halted = Some(error.to_string()),
            Recovery::Refresh if self.failures == 0 => {
                // Retry at once with a renewed token; a second 401 in a row backs off.
                self.failures = 1;
            }
            Recovery::Refresh => self.back_off(None, jitter),
            Recovery::Retry { after } => self.back_off(after, jitter),
        }
    }

    /// Counts a page Box sent that cannot be read (malformed JSON, over the body limit) at the
    /// current position; `true` once that happened [`UNREADABLE_PAGE_TRIES`] times in a row at
    /// the same position (other errors in between, such as a network cut, neither count nor
    /// reset). The caller then gives up on the position ([`Poller::restart_at_now`]).
    pub fn note_unreadable(&mut self, error: &ApiError) -> bool {
        if !matches!(error, ApiError::BadBody { .. } | ApiError::TooLarge { .. }) {
            return false;
        }
        let at = self.cursor.clone();
        let tries = match &self.unreadable {
            Some((position, n)) if *position == at => n.saturating_add(1),
            _ => 1,
        };
        self.unreadable = Some((at, tries));
        tries >= UNREADABLE_PAGE_TRIES
    }

    /// Forgets the cursor and reads from `now` next; with `catch_up_from`, the sweep is asked to
    /// read from then to the moment the `now` position arrives, before it is committed.
    pub fn restart_at_now(&mut self, catch_up_from: Option<time::OffsetDateTime>) {
        self.cursor = None;
        self.config.start = From::Now;
        self.wait = None;
        self.failures = 0;
        self.unreadable = None;
        self.catch_up_from = catch_up_from.or(self.catch_up_from);
    }

    /// Sets the catch-up for a poller that starts without a cursor (see [`Poller::restart_at_now`]).
    pub fn with_catch_up(mut self, from: Option<time::OffsetDateTime>) -> Self {
        self.catch_up_from = from;
        self
    }

    /// Stops polling with `reason` until [`Poller::resume`].
    pub fn halt(&mut self, reason: String) {
        self.halted = Some(reason);
    }

    /// An operator fixed the problem (new grant, new settings): resume.
    pub fn resume(&mut self) {
        self.halted = None;
        self.failures = 0;
    }

    fn back_off(&mut self, retry_after: Option<Duration>, jitter: f64) {
        let delay = backoff(self.failures, jitter);
        self.failures = self.failures.saturating_add(1);
        // Box's Retry-After is what Box asked for: honoured as given, not jittered.
        self.wait = Some(retry_after.unwrap_or(delay));
    }
}

/// Capped exponential backoff with ±50 % jitter: `1 s × 2^attempt × (0.5 + jitter)`.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let exp = BASE_BACKOFF.saturating_mul(1u32 << attempt.min(16));
    let factor = 0.5 + jitter.clamp(0.0, 1.0);
    exp.mul_f64(factor).min(MAX_BACKOFF)
}

/// What the task reports after each step (health reads it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollStatus {
    pub pages: u64,
    pub appended: u64,
    pub duplicates: u64,
    pub rejected_entries: u64,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub queue_full: bool,
    pub halted: Option<String>,
    /// When a page was last read and committed (ms since the epoch).
    pub last_success_ms: Option<u64>,
    /// Box asked us to wait (`retry-after`) until then (ms since the epoch); cleared by the
    /// next successful call.
    pub throttled_until_ms: Option<u64>,
    /// Lost or rejected stream positions recovered through a catch-up.
    pub recoveries: u64,
    pub last_recovery: Option<String>,
    /// Events the type filter dropped (`[events] include_types` / `exclude_types`).
    pub filtered: u64,
    /// Events queued since start, per Box event type.
    pub by_type: BTreeMap<String, u64>,
    /// Positions given up because Box sent an unreadable page there every time.
    pub unreadable_pages: u64,
    /// What the last give-up was about (shown until restart: a person should know).
    pub last_unreadable: Option<String>,
}

/// Adds one page's per-type counts to a running total.
pub fn count_types(total: &mut BTreeMap<String, u64>, page: &BTreeMap<String, u64>) {
    for (event_type, n) in page {
        *total.entry(event_type.clone()).or_insert(0) += n;
    }
}

/// How far before the last event seen a catch-up starts: the streaming feed is only roughly
/// ordered, so events a little older than the newest one may still have been missing.
pub const CATCH_UP_MARGIN: Duration = Duration::from_secs(6 * 3600);

/// A streaming cursor older than this is treated as lost (Box keeps 14 days; one day of margin).
pub const STALE_CURSOR_AGE: Duration = Duration::from_secs(13 * 24 * 3600);

/// The wiring of one stream task.
#[derive(Debug)]
pub struct StreamTask<'a> {
    pub events: EventsClient,
    pub tokens: &'a TokenManager,
    pub store: &'a Store,
    pub status: watch::Sender<PollStatus>,
    /// Where catch-up requests go (the sweep task); `None` only in tests of the stream alone.
    pub catch_up: Option<tokio::sync::mpsc::Sender<SweepOrder>>,
    pub shutdown: watch::Receiver<bool>,
    /// Liveness for the watchdog: one report per iteration and before each wait.
    pub pulse: boxidr_model::Pulse,
}

/// Runs one poller until `shutdown` turns true, committing every page to `store`.
///
/// A stored streaming cursor older than [`STALE_CURSOR_AGE`], or one Box rejects with `400
/// Invalid stream position`, is never a dead end (PEERS §3: a peer needed a reinstall): the gap
/// is handed to the sweep as an `admin_logs` catch-up from the last event seen (minus
/// [`CATCH_UP_MARGIN`]), acknowledged once persisted, and only then does the stream restart at
/// `now`. The store drops the overlap's duplicates by event id.
pub async fn run(mut poller: Poller, mut task: StreamTask<'_>) {
    let key = CursorKey::Stream(poller.config.stream);
    if let Ok(Some(state)) = task.store.cursor(key.clone()).await {
        let age = Duration::from_millis(now_ms().saturating_sub(state.updated_at_ms));
        if age > STALE_CURSOR_AGE {
            let reason = format!(
                "the stored stream position is {} days old, beyond Box's 14-day window",
                age.as_secs() / 86_400
            );
            recover(&mut poller, &task, &state, reason);
        }
    }
    loop {
        if *task.shutdown.borrow() {
            return;
        }
        task.pulse.beat();
        let step = poller.step();
        let wait = match step {
            Step::Wait(d) => Some(d),
            Step::Halt(reason) => {
                task.status.send_modify(|s| s.halted = Some(reason));
                None
            }
            Step::Fetch(request) => {
                match fetch(&task.events, task.tokens, &request).await {
                    Ok(page) => {
                        if request.from == From::Now
                            && poller.catch_up_from.is_some()
                            && !hand_over(&mut poller, &task).await
                        {
                            continue;
                        }
                        commit(&mut poller, &task, &key, page).await;
                    }
                    Err(ApiError::InvalidStreamPosition { message }) => {
                        tracing::warn!(stream = %request.stream, %message, "Box rejected the stream position.");
                        let state = task.store.cursor(key.clone()).await.ok().flatten();
                        let reason = format!("Box rejected the stream position ({message})");
                        match state {
                            Some(state) => recover(&mut poller, &task, &state, reason),
                            None => poller.restart_at_now(None),
                        }
                    }
                    Err(error) => {
                        tracing::warn!(stream = %request.stream, error = %error, "Box events call failed.");
                        let give_up = poller.note_unreadable(&error);
                        poller.on_error(&error, rand::random::<f64>());
                        task.status.send_modify(|s| {
                            s.consecutive_failures += 1;
                            s.last_error = Some(error.to_string());
                            s.throttled_until_ms = throttled_until(&error);
                        });
                        if give_up {
                            give_up_position(&mut poller, &task, &key, &error).await;
                        }
                    }
                }
                continue;
            }
        };
        match wait {
            Some(d) => task.pulse.waiting(d),
            None => task.pulse.idle(),
        }
        tokio::select! {
            () = sleep_or_forever(wait) => {}
            _ = task.shutdown.changed() => {}
        }
    }
}

/// Box sent an unreadable page at the same position every time: re-anchor the stream at `now`
/// and hand the gap to the sweep, exactly as for a rejected position, and say so (health
/// raises a problem that lights ATTENTION).
async fn give_up_position(
    poller: &mut Poller,
    task: &StreamTask<'_>,
    key: &CursorKey,
    error: &ApiError,
) {
    let reason = format!(
        "Box sent an unreadable page {UNREADABLE_PAGE_TRIES} times in a row at the same stream position ({error})"
    );
    tracing::error!("{reason}; giving up on that position.");
    task.status.send_modify(|s| {
        s.unreadable_pages += 1;
        s.last_unreadable = Some(reason.clone());
    });
    match task.store.cursor(key.clone()).await.ok().flatten() {
        Some(state) => recover(poller, task, &state, reason),
        // Nothing committed yet: the first connection's catch-up is still pending.
        None => poller.restart_at_now(None),
    }
}

/// Restarts the stream at `now` with a catch-up from the last event seen (minus a margin).
fn recover(poller: &mut Poller, task: &StreamTask<'_>, state: &CursorState, reason: String) {
    let now = time::OffsetDateTime::now_utc();
    let last_seen = state
        .last_created_at
        .as_deref()
        .and_then(crate::sweep::parse_utc)
        .or_else(|| {
            let ms = i128::from(state.updated_at_ms) * 1_000_000;
            time::OffsetDateTime::from_unix_timestamp_nanos(ms).ok()
        })
        .unwrap_or(now)
        // A `created_at` in the future (hostile or wrong) must not start the catch-up after the
        // gap it is meant to fill.
        .min(now);
    let margin = time::Duration::try_from(CATCH_UP_MARGIN).unwrap_or(time::Duration::HOUR);
    let from = last_seen.checked_sub(margin).unwrap_or(last_seen);
    let note = format!(
        "{reason}; restarted at the present and catching up through admin_logs from {}",
        crate::sweep::format_utc(from)
    );
    tracing::warn!("{note}");
    poller.restart_at_now(Some(from));
    task.status.send_modify(|s| {
        s.recoveries += 1;
        s.last_recovery = Some(note);
    });
}

/// Hands `[catch_up_from, now]` to the sweep and waits until it is persisted; `false` (and a
/// halt) when no sweep takes it, because committing the new position would skip the gap.
async fn hand_over(poller: &mut Poller, task: &StreamTask<'_>) -> bool {
    let Some(from) = poller.catch_up_from else {
        return true;
    };
    let request = SweepRequest {
        from,
        until: time::OffsetDateTime::now_utc(),
    };
    if let Some(catch_up) = &task.catch_up {
        let (done, acked) = tokio::sync::oneshot::channel();
        if catch_up.send(SweepOrder { request, done }).await.is_err() || acked.await.is_err() {
            poller.halt("a catch-up is needed but the history sweep is not running".to_owned());
            return false;
        }
    }
    poller.catch_up_from = None;
    true
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The page's events followed by its unusable entries, kept as flagged events (counted in
/// `rejected_entries`, sent as raw records, never silently dropped).
pub(crate) fn with_flagged(
    mut events: Vec<boxidr_model::BoxEvent>,
    rejected: &[(serde_json::Value, boxidr_model::EventError)],
) -> Vec<boxidr_model::BoxEvent> {
    events.extend(crate::events::flag_rejected(rejected));
    events
}

/// One page with a current access token; a 401 marks the token as rejected.
pub(crate) async fn fetch(
    events: &EventsClient,
    tokens: &TokenManager,
    request: &EventsRequest,
) -> Result<EventsPage, ApiError> {
    let token = tokens.access_token().await?;
    let result = events.fetch(&token, request).await;
    if matches!(result, Err(ApiError::Unauthorized)) {
        tokens.reject(&token).await;
    }
    result
}

async fn commit(poller: &mut Poller, task: &StreamTask<'_>, key: &CursorKey, page: EventsPage) {
    let (store, status) = (task.store, &task.status);
    let entry_count = page.entry_count;
    let next = page.next_position.clone();
    if entry_count == 0 && (next.is_none() || next.as_ref() == poller.cursor()) {
        // Nothing new: no write (an idle appliance would otherwise commit every interval).
        poller.on_committed(0, next);
        status.send_modify(|s| {
            s.pages += 1;
            s.consecutive_failures = 0;
            s.last_error = None;
            s.throttled_until_ms = None;
            s.last_success_ms = Some(now_ms());
        });
        return;
    }
    if !page.rejected.is_empty() {
        tracing::warn!(
            count = page.rejected.len(),
            "Box page had entries without a usable event id."
        );
    }
    let rejected = u64::try_from(page.rejected.len()).unwrap_or(u64::MAX);
    let last_created_at = page
        .events
        .iter()
        .filter_map(|e| e.created_at().and_then(crate::sweep::parse_utc))
        .max()
        .map(crate::sweep::format_utc);
    let (admitted, filtered) = task.events.admitted(page.events);
    let commit = PageCommit {
        cursor: key.clone(),
        events: with_flagged(admitted, &page.rejected),
        next_position: next.clone(),
        last_created_at,
        window: None,
        collected_at_ms: now_ms(),
    };
    match store.commit_page(commit).await {
        Ok(outcome) => {
            poller.on_committed(entry_count, next);
            status.send_modify(|s| {
                s.pages += 1;
                s.appended += outcome.appended;
                s.duplicates += outcome.duplicates;
                s.rejected_entries += rejected;
                s.filtered += filtered;
                count_types(&mut s.by_type, &outcome.appended_by_type);
                s.consecutive_failures = 0;
                s.last_error = None;
                s.queue_full = false;
                s.throttled_until_ms = None;
                s.last_success_ms = Some(now_ms());
            });
        }
        Err(e) if e.is_queue_full() => {
            poller.on_queue_full();
            status.send_modify(|s| s.queue_full = true);
        }
        Err(e) => {
            tracing::error!(error = %e, "Cannot commit a Box page; it will be fetched again.");
            poller.on_error(
                &ApiError::Store {
                    detail: e.to_string(),
                },
                rand::random::<f64>(),
            );
            status.send_modify(|s| {
                s.consecutive_failures += 1;
                s.last_error = Some(e.to_string());
            });
        }
    }
}

/// When a `retry-after` Box sent ends (ms since the epoch), for the health model.
pub(crate) fn throttled_until(error: &ApiError) -> Option<u64> {
    match error.recovery() {
        Recovery::Retry { after: Some(after) } => {
            Some(now_ms().saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)))
        }
        _ => None,
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a wait Box asked for counts as throttling (health then does not call it failing).
    #[test]
    fn throttling_is_what_box_asked_for() {
        let before = now_ms();
        let limited = ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        let until = throttled_until(&limited).unwrap();
        assert!(until >= before + 30_000 && until <= now_ms() + 30_000);
        let busy = ApiError::Server {
            status: 503,
            retry_after: Some(Duration::from_secs(5)),
        };
        assert!(throttled_until(&busy).is_some());
        assert_eq!(
            throttled_until(&ApiError::RateLimited { retry_after: None }),
            None
        );
        assert_eq!(throttled_until(&ApiError::Unauthorized), None);
    }

    fn poller() -> Poller {
        Poller::new(
            PollerConfig {
                stream: StreamType::AdminLogsStreaming,
                limit: 100,
                interval: Duration::from_secs(10),
                start: From::Now,
            },
            None,
        )
    }

    fn pos(s: &str) -> StreamPosition {
        StreamPosition::new(s).unwrap()
    }

    /// First connection starts where configured; afterwards from the committed cursor.
    #[test]
    fn starts_then_follows_cursor() {
        let mut p = poller();
        assert!(matches!(p.step(), Step::Fetch(r) if r.from == From::Now));
        p.on_committed(0, Some(pos("1152921504606846977")));
        assert_eq!(p.step(), Step::Wait(Duration::from_secs(10)));
        assert!(
            matches!(p.step(), Step::Fetch(r) if r.from == From::At(pos("1152921504606846977")))
        );
    }

    /// A full page is followed at once; a page without a position keeps the old cursor.
    #[test]
    fn full_pages_are_followed_immediately() {
        let mut p = poller();
        p.on_committed(100, Some(pos("5")));
        assert!(matches!(p.step(), Step::Fetch(r) if r.from == From::At(pos("5"))));
        p.on_committed(3, None);
        assert_eq!(p.step(), Step::Wait(Duration::from_secs(10)));
        assert_eq!(p.cursor(), Some(&pos("5")));
    }

    /// Retry-After is honoured as a floor; failures back off exponentially up to the cap.
    #[test]
    fn backoff_and_retry_after() {
        let mut p = poller();
        p.on_error(
            &ApiError::RateLimited {
                retry_after: Some(Duration::from_secs(100)),
            },
            0.0,
        );
        assert_eq!(p.step(), Step::Wait(Duration::from_secs(100)));
        let mut waits = Vec::new();
        for _ in 0..12 {
            p.on_error(
                &ApiError::Server {
                    status: 503,
                    retry_after: None,
                },
                0.5,
            );
            let Step::Wait(d) = p.step() else {
                panic!("expected a wait")
            };
            waits.push(d);
        }
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), MAX_BACKOFF);
        // Success resets the backoff.
        p.on_committed(100, None);
        p.on_error(
            &ApiError::Server {
                status: 500,
                retry_after: None,
            },
            0.5,
        );
        assert_eq!(p.step(), Step::Wait(Duration::from_secs(1)));
    }

    /// The jitter range is ±50 % around the exponential delay.
    #[test]
    fn backoff_bounds() {
        assert_eq!(backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(0, 1.0), Duration::from_millis(1500));
        assert_eq!(backoff(3, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(40, 1.0), MAX_BACKOFF);
    }

    /// One 401 retries at once (after a token renewal); a second in a row backs off.
    #[test]
    fn unauthorized_retries_once_then_backs_off() {
        let mut p = poller();
        p.on_error(&ApiError::Unauthorized, 0.5);
        assert!(matches!(p.step(), Step::Fetch(_)));
        p.on_error(&ApiError::Unauthorized, 0.5);
        assert!(matches!(p.step(), Step::Wait(_)));
    }

    /// A spent grant or a permission error halts polling instead of looping; resume clears it.
    #[test]
    fn operator_errors_halt() {
        let mut p = poller();
        p.on_error(
            &ApiError::Auth(crate::AuthError::InvalidGrant {
                description: "Refresh token has expired".into(),
            }),
            0.5,
        );
        assert!(
            matches!(p.step(), Step::Halt(reason) if reason.contains("Refresh token has expired"))
        );
        assert!(matches!(p.step(), Step::Halt(_)));
        p.resume();
        assert!(matches!(p.step(), Step::Fetch(_)));
    }

    /// The same unreadable page at the same position gives up after a bounded number of tries;
    /// a success or a new position starts the count again, other errors do not count.
    #[test]
    fn unreadable_pages_give_up_after_bounded_tries() {
        let bad = ApiError::BadBody {
            detail: "events page: EOF".into(),
        };
        let big = ApiError::TooLarge { limit: 4 };
        let net = ApiError::Network {
            url: String::new(),
            detail: "reset".into(),
        };
        let mut p = poller();
        p.on_committed(100, Some(pos("7")));
        for _ in 1..UNREADABLE_PAGE_TRIES {
            assert!(!p.note_unreadable(&bad));
            assert!(!p.note_unreadable(&net));
        }
        assert!(p.note_unreadable(&big), "the last try gives up");
        p.restart_at_now(None);
        assert!(!p.note_unreadable(&bad), "counted afresh after a restart");
        p.on_committed(1, Some(pos("8")));
        for _ in 1..UNREADABLE_PAGE_TRIES {
            assert!(!p.note_unreadable(&bad));
        }
        p.on_committed(1, Some(pos("9")));
        assert!(!p.note_unreadable(&bad), "a success resets the count");
    }

    /// A full queue pauses without moving the cursor.
    #[test]
    fn queue_full_waits() {
        let mut p = poller();
        p.on_committed(100, Some(pos("7")));
        p.on_queue_full();
        assert!(matches!(p.step(), Step::Wait(_)));
        assert!(matches!(p.step(), Step::Fetch(r) if r.from == From::At(pos("7"))));
    }
}
