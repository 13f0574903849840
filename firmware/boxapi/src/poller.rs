//! The events poller: a pure state machine ([`Poller`]) deciding what to fetch and how long to
//! wait, and a thin task ([`run`]) that performs it against Box and the store.
//!
//! The loop only performs what the machine decides: [`Poller::step`] says what to fetch or how
//! long to wait, [`Poller::on_page`] what to do with a page (hand a gap to the sweep first,
//! commit, or nothing), [`Poller::on_stored`] whether the stored cursor is too old to use. The
//! clock is read by the loop and passed in. Fetching and committing are shared with the sweep
//! ([`crate::page`]).
//!
//! Invariants defended here:
//! - the cursor only moves through the store's page commit (ARCHITECTURE invariant 1): the
//!   poller's in-memory cursor is updated from a page only after that page is committed;
//! - a full queue pauses the poller without advancing (invariant 4);
//! - errors never spin: capped exponential backoff with jitter, Retry-After honoured,
//!   operator-level errors stop polling and are reported instead of retried.

use std::time::Duration;

use boxidr_model::{BackoffPolicy, StreamPosition, StreamType};
use boxidr_store::{CursorKey, CursorState, Store};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::{ApiError, Recovery};
use crate::events::{EventsClient, EventsPage, EventsRequest, From};
use crate::page::{self, Committed, Reader, ReaderStatus, Report};
use crate::sweep::{SweepOrder, SweepRequest};
use crate::tokens::TokenManager;
use crate::utc::{format_utc, from_unix_ms, parse_utc, unix_ms};

/// How failing Box calls are retried (1 s doubling to 5 min, jittered).
pub const BACKOFF: BackoffPolicy = BackoffPolicy::DEFAULT;
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

/// What the task should do with a page Box returned ([`Poller::on_page`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PageAction {
    /// Nothing new (no entries, no new position): no write; the poller already moved on.
    Nothing,
    /// Commit the page, then report the outcome ([`Poller::on_committed`],
    /// [`Poller::on_queue_full`], [`Poller::on_error`]).
    Commit,
    /// The page's position must not be committed before this gap is handed to the sweep and
    /// persisted there: hand it over, call [`Poller::on_handed_over`], and ask again.
    HandOver(SweepRequest),
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

    /// The next thing to do.
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

    /// What to do with `page`, read at wall-clock time `now`: a first page read from `now`
    /// with a catch-up pending hands the gap up to `now` to the sweep before anything else;
    /// a page with nothing new is not written.
    pub fn on_page(&mut self, page: &EventsPage, now: OffsetDateTime) -> PageAction {
        let from_now = self.cursor.is_none() && self.config.start == From::Now;
        if let (true, Some(from)) = (from_now, self.catch_up_from) {
            return PageAction::HandOver(SweepRequest { from, until: now });
        }
        let next = page.next_position.as_ref();
        if page.entry_count == 0 && (next.is_none() || next == self.cursor()) {
            self.on_committed(0, page.next_position.clone());
            return PageAction::Nothing;
        }
        PageAction::Commit
    }

    /// The sweep has persisted the catch-up [`PageAction::HandOver`] asked for.
    pub fn on_handed_over(&mut self) {
        self.catch_up_from = None;
    }

    /// Checks the cursor the store holds at start, at wall-clock time `now`: one older than
    /// [`STALE_CURSOR_AGE`] is beyond Box's window, so the stream recovers ([`Poller::recover`])
    /// and the note says so.
    pub fn on_stored(&mut self, state: &CursorState, now: OffsetDateTime) -> Option<String> {
        let age = Duration::from_millis(unix_ms(now).saturating_sub(state.updated_at_ms));
        if age <= STALE_CURSOR_AGE {
            return None;
        }
        let reason = format!(
            "the stored stream position is {} days old, beyond Box's 14-day window",
            age.as_secs() / 86_400
        );
        self.recover(Some(state), &reason, now)
    }

    /// Gives up the stream position (stale, rejected by Box, or unreadable there): restarts at
    /// `now` with a catch-up from the last event seen in `stored`, minus [`CATCH_UP_MARGIN`],
    /// and returns the note to report. Without a stored cursor the first connection's catch-up
    /// is still pending: only the restart.
    pub fn recover(
        &mut self,
        stored: Option<&CursorState>,
        reason: &str,
        now: OffsetDateTime,
    ) -> Option<String> {
        let Some(state) = stored else {
            self.restart_at_now(None);
            return None;
        };
        let last_seen = state
            .last_created_at
            .as_deref()
            .and_then(parse_utc)
            .or_else(|| from_unix_ms(state.updated_at_ms))
            .unwrap_or(now)
            // A `created_at` in the future (hostile or wrong) must not start the catch-up after
            // the gap it is meant to fill.
            .min(now);
        let margin = time::Duration::try_from(CATCH_UP_MARGIN).unwrap_or(time::Duration::HOUR);
        let from = last_seen.checked_sub(margin).unwrap_or(last_seen);
        self.restart_at_now(Some(from));
        Some(format!(
            "{reason}; restarted at the present and catching up through admin_logs from {}",
            format_utc(from)
        ))
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
        let delay = BACKOFF.delay(self.failures, jitter);
        self.failures = self.failures.saturating_add(1);
        // Box's Retry-After is what Box asked for: honoured as given, not jittered.
        self.wait = Some(retry_after.unwrap_or(delay));
    }
}

/// What the stream task reports after each step (health reads it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollStatus {
    /// What the stream and the sweep both report.
    pub reader: ReaderStatus,
    /// Lost or rejected stream positions recovered through a catch-up.
    pub recoveries: u64,
    pub last_recovery: Option<String>,
    /// Positions given up because Box sent an unreadable page there every time.
    pub unreadable_pages: u64,
    /// What the last give-up was about (shown until restart: a person should know).
    pub last_unreadable: Option<String>,
}

impl Report for PollStatus {
    fn reader(&mut self) -> &mut ReaderStatus {
        &mut self.reader
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
        if let Some(note) = poller.on_stored(&state, OffsetDateTime::now_utc()) {
            recovered(&task.status, note);
        }
    }
    let reader = Reader {
        name: "stream",
        events: &task.events,
        store: task.store,
        status: &task.status,
        key: &key,
    };
    loop {
        if *task.shutdown.borrow() {
            return;
        }
        task.pulse.beat();
        let wait = match poller.step() {
            Step::Wait(d) => Some(d),
            Step::Halt(reason) => {
                task.status.send_modify(|s| s.reader.halted = Some(reason));
                None
            }
            Step::Fetch(request) => {
                match page::fetch(&task.events, task.tokens, &request).await {
                    Ok(page) => loop {
                        match poller.on_page(&page, OffsetDateTime::now_utc()) {
                            PageAction::HandOver(gap) => {
                                if !hand_over(&mut poller, task.catch_up.as_ref(), gap).await {
                                    break;
                                }
                            }
                            PageAction::Nothing => {
                                reader.nothing_new();
                                break;
                            }
                            PageAction::Commit => {
                                match reader.commit(page, None).await {
                                    Committed::Written {
                                        entry_count, next, ..
                                    } => poller.on_committed(entry_count, next),
                                    Committed::QueueFull => poller.on_queue_full(),
                                    Committed::Failed(error) => {
                                        poller.on_error(&error, rand::random::<f64>());
                                    }
                                }
                                break;
                            }
                        }
                    },
                    Err(ApiError::InvalidStreamPosition { message }) => {
                        tracing::warn!(stream = %request.stream, %message, "Box rejected the stream position.");
                        let state = task.store.cursor(key.clone()).await.ok().flatten();
                        let reason = format!("Box rejected the stream position ({message})");
                        let now = OffsetDateTime::now_utc();
                        if let Some(note) = poller.recover(state.as_ref(), &reason, now) {
                            recovered(&task.status, note);
                        }
                    }
                    Err(error) => {
                        let give_up = poller.note_unreadable(&error);
                        poller.on_error(&error, rand::random::<f64>());
                        reader.call_failed(&error);
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
    // Nothing committed yet (no stored cursor): the first connection's catch-up is pending.
    let state = task.store.cursor(key.clone()).await.ok().flatten();
    if let Some(note) = poller.recover(state.as_ref(), &reason, OffsetDateTime::now_utc()) {
        recovered(&task.status, note);
    }
}

/// Reports a recovery ([`Poller::recover`]) on the log and the status.
fn recovered(status: &watch::Sender<PollStatus>, note: String) {
    tracing::warn!("{note}");
    status.send_modify(|s| {
        s.recoveries += 1;
        s.last_recovery = Some(note);
    });
}

/// Hands `gap` to the sweep and waits until it is persisted; `false` (and a halt) when no
/// sweep takes it, because committing the new position would skip the gap. Without a sweep
/// (tests of the stream alone) there is nothing to hand over to.
async fn hand_over(
    poller: &mut Poller,
    catch_up: Option<&tokio::sync::mpsc::Sender<SweepOrder>>,
    gap: SweepRequest,
) -> bool {
    if let Some(catch_up) = catch_up {
        let (done, acked) = tokio::sync::oneshot::channel();
        let order = SweepOrder { request: gap, done };
        if catch_up.send(order).await.is_err() || acked.await.is_err() {
            poller.halt("a catch-up is needed but the history sweep is not running".to_owned());
            return false;
        }
    }
    poller.on_handed_over();
    true
}

pub(crate) async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(*waits.last().unwrap(), BACKOFF.max);
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

    fn page(entries: usize, next: Option<&str>) -> EventsPage {
        EventsPage {
            events: Vec::new(),
            rejected: Vec::new(),
            next_position: next.map(pos),
            entry_count: entries,
        }
    }

    /// The first page read from `now` with a catch-up pending is held until the gap up to the
    /// moment it was read is handed to the sweep; only then is it committed.
    #[test]
    fn first_page_waits_for_the_hand_over() {
        let from = time::macros::datetime!(2024-05-01 0:00 UTC);
        let now = time::macros::datetime!(2024-05-02 12:00 UTC);
        let mut p = poller().with_catch_up(Some(from));
        assert!(matches!(p.step(), Step::Fetch(r) if r.from == From::Now));
        let first = page(0, Some("42"));
        assert_eq!(
            p.on_page(&first, now),
            PageAction::HandOver(SweepRequest { from, until: now })
        );
        p.on_handed_over();
        assert_eq!(p.on_page(&first, now), PageAction::Commit);
        p.on_committed(0, Some(pos("42")));
        // A later page never hands over again.
        assert_eq!(p.on_page(&page(3, Some("43")), now), PageAction::Commit);
    }

    /// A page with no entries and no new position is not written, and counts as caught up.
    #[test]
    fn empty_pages_are_not_written() {
        let now = time::macros::datetime!(2024-05-02 12:00 UTC);
        let mut p = poller();
        p.on_committed(100, Some(pos("7")));
        assert_eq!(p.on_page(&page(0, Some("7")), now), PageAction::Nothing);
        assert_eq!(p.step(), Step::Wait(Duration::from_secs(10)));
        assert_eq!(p.on_page(&page(0, None), now), PageAction::Nothing);
        assert_eq!(p.on_page(&page(0, Some("8")), now), PageAction::Commit);
        assert_eq!(p.cursor(), Some(&pos("7")));
    }

    /// A stored cursor older than Box's window restarts the stream at `now`, catching up from
    /// the last event seen minus the margin; a fresh one is used as it is.
    #[test]
    fn stale_stored_cursor_recovers() {
        let now = time::macros::datetime!(2024-05-30 12:00 UTC);
        let stored = |updated: time::OffsetDateTime| CursorState {
            position: Some(pos("7")),
            updated_at_ms: unix_ms(updated),
            last_created_at: Some("2024-05-10T06:00:00Z".into()),
            window: None,
        };
        let mut p = Poller::new(poller().config, Some(pos("7")));
        assert_eq!(
            p.on_stored(&stored(now - time::Duration::days(2)), now),
            None
        );
        assert_eq!(p.cursor(), Some(&pos("7")));
        let note = p
            .on_stored(&stored(now - time::Duration::days(15)), now)
            .expect("stale");
        assert!(note.contains("15 days old"), "{note}");
        assert!(note.contains("from 2024-05-10T00:00:00Z"), "{note}");
        assert_eq!(p.cursor(), None);
        assert!(matches!(p.step(), Step::Fetch(r) if r.from == From::Now));
        let from = time::macros::datetime!(2024-05-10 0:00 UTC);
        assert_eq!(
            p.on_page(&page(0, Some("99")), now),
            PageAction::HandOver(SweepRequest { from, until: now })
        );
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
