//! The completeness sweep: a sans-IO reader of `admin_logs` in closed time windows.
//!
//! `admin_logs` is chronological and free of duplicates, but "consuming events in near real time
//! may lead to missed events as events can arrive later than your filtering window" (CONTRACT
//! §2.4). So the sweep reads windows `[after, before]` that close only once `before` is `lag`
//! behind real time, pages each one with `stream_position` and the SAME bounds, and calls a window
//! finished only on an EMPTY page (Box may return short pages mid-stream). The next window starts
//! at the previous `before`: the one-second overlap (both bounds are inclusive) is harmless, the
//! store drops event ids it has seen.
//!
//! One machine serves three purposes:
//! - **completeness** (continuous): trails the streaming feed by `lag`, catching what the
//!   streaming feed delivered late or never (its gaps);
//! - **history mode** (continuous, primary): the only reader when the admin chose `admin_logs`;
//! - **backfill and catch-up** (bounded): reads up to a target time and then idles — the first
//!   connection's backfill, and the catch-up after a long stop or a rejected stream position when
//!   the continuous sweep is off.
//!
//! Progress is persisted through the store's sweep cursor ([`SweepWindow`] + position) in the
//! same transaction as the window's events; a finished window is recorded as an empty marker
//! window `[before, before]`, so a restart neither re-reads finished windows nor skips one.

use std::time::Duration;

use boxidr_model::{StreamPosition, StreamType, clock};
use boxidr_store::{CursorKey, CursorState, PageCommit, Store, SweepWindow, settings};
use time::OffsetDateTime;

use crate::error::{ApiError, Recovery};
use crate::events::{EventsRequest, From};
use crate::page::{self, Committed, Reader, ReaderStatus, Report};
use crate::utc::{format_utc, parse_utc, unix_ms};

/// Unreadable pages (malformed or oversized) in a row at the same place before the sweep halves
/// its window: a smaller window means smaller pages, and isolates the entry that breaks them.
pub const UNREADABLE_WINDOW_TRIES: u32 = 3;

/// The store key of the one sweep cursor (`sweep:history`).
pub const SWEEP_NAME: &str = "history";

/// How the sweep runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepConfig {
    /// Page size (`limit`).
    pub limit: u32,
    /// `true`: follow real time forever, `lag` behind. `false`: run only up to a target.
    pub continuous: bool,
    /// How far behind real time a window must end before it is read.
    pub lag: Duration,
    /// Smallest window worth a call: the sweep waits until this much new time is closable.
    pub min_step: Duration,
    /// Longest window (a long backlog is read in several checkpointed windows).
    pub max_window: Duration,
}

/// What the sweep task should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepStep {
    /// Read one page of `window`.
    Fetch {
        request: EventsRequest,
        window: SweepWindow,
    },
    /// A window was finished: persist the marker, then step again.
    Finished(SweepWindow),
    Wait(Duration),
    /// Bounded mode with nothing to do until a new target arrives.
    Idle,
    Halt(String),
}

/// The sans-IO sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    config: SweepConfig,
    /// Window being read, with the position inside it.
    window: Option<(OffsetDateTime, OffsetDateTime)>,
    position: Option<StreamPosition>,
    /// Everything created before this has been read (start of the next window).
    next_after: Option<OffsetDateTime>,
    /// Bounded mode: read up to here.
    until: Option<OffsetDateTime>,
    finished: Option<SweepWindow>,
    failures: u32,
    wait: Option<Duration>,
    halted: Option<String>,
    full_page_without_position: u64,
    /// Unreadable pages in a row at the current place.
    unreadable: u32,
    /// Windows halved because their pages could not be read.
    shrunk: u64,
    /// A one-second window that still cannot be read: retried with backoff (never skipped,
    /// which would lose its events) and reported until it reads.
    stuck: Option<String>,
}

impl Sweep {
    /// Resumes from the stored sweep cursor, or starts at `start` (None: nothing to sweep yet).
    pub fn new(
        config: SweepConfig,
        stored: Option<&CursorState>,
        start: Option<OffsetDateTime>,
    ) -> Self {
        let mut sweep = Self {
            config,
            window: None,
            position: None,
            next_after: start,
            until: None,
            finished: None,
            failures: 0,
            wait: None,
            halted: None,
            full_page_without_position: 0,
            unreadable: 0,
            shrunk: 0,
            stuck: None,
        };
        let stored_window = stored
            .and_then(|s| s.window.as_ref())
            .and_then(|w| Some((parse_utc(&w.after)?, parse_utc(&w.before)?)));
        if let Some((after, before)) = stored_window {
            if after >= before {
                sweep.next_after = Some(before);
            } else {
                sweep.window = Some((after, before));
                sweep.position = stored.and_then(|s| s.position.clone());
            }
        }
        sweep
    }

    /// Start of the next window (everything created before it has been read), if known.
    pub fn covered_until(&self) -> Option<OffsetDateTime> {
        self.window.map(|(after, _)| after).or(self.next_after)
    }

    /// Bounded mode target.
    pub fn until(&self) -> Option<OffsetDateTime> {
        self.until
    }

    /// Asks the sweep to read from `from` (a backfill, or the gap a restarted stream left) and,
    /// in bounded mode, up to `until`: the start only moves back, the target only forward.
    /// A continuous sweep moves back too: when the stream restarted at `now`, events it never
    /// saw may carry `created_at` times the sweep has already passed. Returns whether the start
    /// moved back.
    pub fn request(&mut self, from: OffsetDateTime, until: OffsetDateTime) -> bool {
        let moved = self.covered_until().is_none_or(|s| from < s);
        if moved {
            // Read the earlier part first; a window in progress is re-read from `from`.
            self.window = None;
            self.position = None;
            self.next_after = Some(from);
        }
        if !self.config.continuous {
            self.until = Some(self.until.map_or(until, |u| u.max(until)));
        }
        moved
    }

    /// The next thing to do at wall-clock time `now`.
    pub fn step(&mut self, now: OffsetDateTime) -> SweepStep {
        if let Some(reason) = &self.halted {
            return SweepStep::Halt(reason.clone());
        }
        if let Some(marker) = self.finished.take() {
            return SweepStep::Finished(marker);
        }
        if let Some(wait) = self.wait.take() {
            return SweepStep::Wait(wait);
        }
        if self.window.is_none() {
            if let Some(step) = self.open_window(now) {
                return step;
            }
        }
        let Some((after, before)) = self.window else {
            return SweepStep::Idle;
        };
        let window = SweepWindow {
            after: format_utc(after),
            before: format_utc(before),
        };
        SweepStep::Fetch {
            request: EventsRequest {
                stream: StreamType::AdminLogs,
                from: self.position.clone().map_or(From::Start, From::At),
                limit: self.config.limit,
                created_after: Some(window.after.clone()),
                created_before: Some(window.before.clone()),
                event_types: Vec::new(),
            },
            window,
        }
    }

    /// Opens the next window, or says what to do instead (`Some`).
    fn open_window(&mut self, now: OffsetDateTime) -> Option<SweepStep> {
        let Some(after) = self.next_after else {
            return Some(SweepStep::Idle);
        };
        let closable = now - self.config.lag;
        let end = match (self.config.continuous, self.until) {
            (true, _) => closable,
            (false, Some(until)) => until.min(now),
            (false, None) => return Some(SweepStep::Idle),
        };
        if !self.config.continuous && after >= end {
            self.until = None;
            return Some(SweepStep::Idle);
        }
        let gap = end - after;
        let min_step =
            time::Duration::try_from(self.config.min_step).unwrap_or(time::Duration::MINUTE);
        if self.config.continuous && gap < min_step {
            let missing = (min_step - gap).max(time::Duration::SECOND);
            return Some(SweepStep::Wait(
                Duration::try_from(missing).unwrap_or(self.config.min_step),
            ));
        }
        let max = time::Duration::try_from(self.config.max_window).unwrap_or(time::Duration::DAY);
        let before = after.checked_add(max).map_or(end, |b| end.min(b));
        self.window = Some((after, before));
        self.position = None;
        None
    }

    /// A page of the current window was committed. `entry_count` counts every entry Box sent;
    /// `newest` is the latest `created_at` among them.
    pub fn on_committed(
        &mut self,
        entry_count: usize,
        next: Option<StreamPosition>,
        newest: Option<OffsetDateTime>,
    ) {
        self.failures = 0;
        self.unreadable = 0;
        self.stuck = None;
        let Some((after, before)) = self.window else {
            return;
        };
        if entry_count == 0 {
            // Only an empty page closes a window.
            self.window = None;
            self.position = None;
            self.next_after = Some(before);
            self.finished = Some(SweepWindow {
                after: format_utc(before),
                before: format_utc(before),
            });
            return;
        }
        match next {
            Some(next) => self.position = Some(next),
            None => {
                // Entries but no usable position: re-reading from the same place would loop, so
                // the window restarts at the newest event read (inclusive; duplicates are
                // dropped by the store). Without even that, the window is given up as read.
                self.full_page_without_position += 1;
                // Bounded by the window: a hostile `created_at` beyond it must not move the
                // window past what was asked for.
                match newest.filter(|n| *n > after).map(|n| n.min(before)) {
                    Some(newest) => {
                        self.window = Some((newest, before));
                        self.position = None;
                    }
                    None => {
                        self.window = None;
                        self.position = None;
                        self.next_after = Some(before);
                    }
                }
            }
        }
    }

    /// The queue is full: wait and read the same page again later.
    pub fn on_queue_full(&mut self, interval: Duration) {
        self.wait = Some(interval.max(Duration::from_secs(5)));
    }

    /// A call failed; `jitter` in `[0, 1)`.
    pub fn on_error(&mut self, error: &ApiError, jitter: f64) {
        if matches!(error, ApiError::BadBody { .. } | ApiError::TooLarge { .. }) {
            self.on_unreadable(error);
        }
        if matches!(error, ApiError::InvalidStreamPosition { .. }) {
            // The window's bounds are what matter: read it again from its start.
            self.position = None;
            self.back_off(None, jitter);
            return;
        }
        match error.recovery() {
            Recovery::Operator => self.halted = Some(error.to_string()),
            Recovery::Refresh if self.failures == 0 => self.failures = 1,
            Recovery::Refresh => self.back_off(None, jitter),
            Recovery::Retry { after } => self.back_off(after, jitter),
        }
    }

    /// An operator fixed the problem: resume.
    pub fn resume(&mut self) {
        self.halted = None;
        self.failures = 0;
    }

    /// Box sent a page that cannot be read. After [`UNREADABLE_WINDOW_TRIES`] in a row the
    /// window is halved (re-read from its start, smaller pages); a one-second window that still
    /// fails is reported as stuck and retried with backoff, never skipped.
    fn on_unreadable(&mut self, error: &ApiError) {
        self.unreadable = self.unreadable.saturating_add(1);
        if self.unreadable < UNREADABLE_WINDOW_TRIES {
            return;
        }
        self.unreadable = 0;
        let Some((after, before)) = self.window else {
            return;
        };
        let span = before - after;
        if span > time::Duration::SECOND {
            let half = (span / 2_i32).max(time::Duration::SECOND);
            self.window = Some((after, after + half));
            self.position = None;
            self.shrunk += 1;
        } else {
            self.stuck = Some(format!(
                "the admin_logs window {} to {} cannot be read ({error}); retrying",
                format_utc(after),
                format_utc(before)
            ));
        }
    }

    /// Windows halved because their pages could not be read.
    pub fn windows_shrunk(&self) -> u64 {
        self.shrunk
    }

    /// A one-second window that still cannot be read, if any.
    pub fn stuck(&self) -> Option<&str> {
        self.stuck.as_deref()
    }

    /// Pages that had entries but no usable position (counted for health).
    pub fn pages_without_position(&self) -> u64 {
        self.full_page_without_position
    }

    fn back_off(&mut self, retry_after: Option<Duration>, jitter: f64) {
        let delay = crate::poller::BACKOFF.delay(self.failures, jitter);
        self.failures = self.failures.saturating_add(1);
        self.wait = Some(retry_after.unwrap_or(delay));
    }
}

/// What the sweep task reports (health reads it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepStatus {
    /// What the stream and the sweep both report.
    pub reader: ReaderStatus,
    pub windows_finished: u64,
    /// Everything created before this has been read (UTC text).
    pub covered_until: Option<String>,
    /// Bounded mode: the target, while a backfill or catch-up is running.
    pub target_until: Option<String>,
    /// Windows halved because Box's pages for them could not be read.
    pub windows_shrunk: u64,
    /// A one-second window that still cannot be read (retried, never skipped), if any.
    pub stuck: Option<String>,
    /// A backfill or catch-up under way (for the progress bar), else `None`.
    pub progress: Option<SweepProgress>,
}

impl Report for SweepStatus {
    fn reader(&mut self) -> &mut ReaderStatus {
        &mut self.reader
    }
}

/// A continuous sweep this far behind its closable edge shows progress as a catch-up...
pub const CATCH_UP_SHOWN: Duration = Duration::from_secs(30 * 60);
/// ...until it is back within this (hysteresis: no flicker around one threshold).
pub const CATCH_UP_DONE: Duration = Duration::from_secs(10 * 60);

/// One backfill or catch-up as the status page and `boxidr status` show it: how much Box
/// history it spans, how far it got, and how fast, since this run of the service began it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepProgress {
    /// Start of the history read (ms since the epoch).
    pub from_ms: u64,
    /// Where it ends: the target, or for a continuous sweep the edge it can close now.
    pub until_ms: u64,
    /// Everything before this has been read.
    pub covered_ms: u64,
    /// Wall-clock time the run was first seen (ms since the epoch).
    pub started_ms: u64,
    /// `SweepStatus::appended` when it was first seen.
    pub appended_at_start: u64,
    /// The end moves with real time (a continuous sweep catching up).
    pub moving: bool,
}

impl SweepProgress {
    /// Share of the span read, 0-100.
    pub fn percent(&self) -> f64 {
        let span = self.until_ms.saturating_sub(self.from_ms);
        if span == 0 {
            return 100.0;
        }
        let done = self.covered_ms.saturating_sub(self.from_ms).min(span);
        // Spans are at most a year of milliseconds: exact in f64.
        #[allow(clippy::cast_precision_loss)]
        let percent = done as f64 * 100.0 / span as f64;
        percent
    }

    /// Events queued by this run so far.
    pub fn events(&self, appended_now: u64) -> u64 {
        appended_now.saturating_sub(self.appended_at_start)
    }

    /// Seconds left at the speed so far (history read per second of wall time, less the speed
    /// at which a moving end runs away); `None` until there is a speed to go by.
    pub fn eta_secs(&self, now_ms: u64) -> Option<u64> {
        let elapsed = now_ms.saturating_sub(self.started_ms);
        let read = self.covered_ms.saturating_sub(self.from_ms);
        if elapsed < 2_000 || read == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let speed = read as f64 / elapsed as f64 - if self.moving { 1.0 } else { 0.0 };
        if speed <= 0.0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let left = self.until_ms.saturating_sub(self.covered_ms) as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let secs = (left / speed / 1000.0).ceil() as u64;
        Some(secs)
    }
}

/// The progress after one step: a run starts when a bounded sweep has a target ahead of what
/// it covered, or a continuous one falls [`CATCH_UP_SHOWN`] behind; it keeps its start, speed
/// base and event count until it is done.
pub fn next_progress(
    previous: Option<&SweepProgress>,
    covered: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    moving: bool,
    now_ms: u64,
    appended: u64,
) -> Option<SweepProgress> {
    let (covered, until) = (unix_ms(covered?), unix_ms(until?));
    let behind = Duration::from_millis(until.saturating_sub(covered));
    let active = if moving {
        let threshold = if previous.is_some() {
            CATCH_UP_DONE
        } else {
            CATCH_UP_SHOWN
        };
        behind > threshold
    } else {
        until > covered
    };
    if !active {
        return None;
    }
    let base = previous.copied().unwrap_or(SweepProgress {
        from_ms: covered,
        started_ms: now_ms,
        appended_at_start: appended,
        ..SweepProgress::default()
    });
    Some(SweepProgress {
        until_ms: until,
        covered_ms: covered,
        moving,
        from_ms: base.from_ms.min(covered),
        ..base
    })
}

/// A backfill or catch-up request for a bounded sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepRequest {
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// A request with its acknowledgement: answered once the target is persisted (or ignored by a
/// continuous sweep), so the sender may then move its own cursor past the gap.
#[derive(Debug)]
pub struct SweepOrder {
    pub request: SweepRequest,
    pub done: tokio::sync::oneshot::Sender<()>,
}

/// The wiring of one sweep task.
#[derive(Debug)]
pub struct SweepTask<'a> {
    pub events: crate::events::EventsClient,
    pub tokens: &'a crate::tokens::TokenManager,
    pub store: &'a boxidr_store::Store,
    pub status: tokio::sync::watch::Sender<SweepStatus>,
    pub requests: tokio::sync::mpsc::Receiver<SweepOrder>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Wait after a full queue.
    pub interval: Duration,
    /// Liveness for the watchdog: one report per iteration and before each wait.
    pub pulse: boxidr_model::Pulse,
}

/// Runs the sweep until shutdown. A bounded sweep picks up a persisted target at start.
pub async fn run(mut sweep: Sweep, mut task: SweepTask<'_>) {
    let key = CursorKey::Sweep(SWEEP_NAME.to_owned());
    if let Ok(Some(target)) = task.store.setting(settings::SWEEP_TARGET).await {
        if let Some(request) = parse_target(&target) {
            sweep.request(request.from, request.until);
        }
    }
    loop {
        if *task.shutdown.borrow() {
            return;
        }
        task.pulse.beat();
        let now = OffsetDateTime::now_utc();
        report(&sweep, &task.status, now);
        let wait = match sweep.step(now) {
            SweepStep::Fetch { request, window } => {
                let reader = Reader {
                    name: "sweep",
                    events: &task.events,
                    store: task.store,
                    status: &task.status,
                    key: &key,
                };
                match page::fetch(&task.events, task.tokens, &request).await {
                    Ok(page) => match reader.commit(page, Some(window)).await {
                        Committed::Written {
                            entry_count,
                            next,
                            newest,
                        } => sweep.on_committed(entry_count, next, newest),
                        Committed::QueueFull => sweep.on_queue_full(task.interval),
                        Committed::Failed(error) => sweep.on_error(&error, rand::random::<f64>()),
                    },
                    Err(error) => {
                        sweep.on_error(&error, rand::random::<f64>());
                        reader.call_failed(&error);
                    }
                }
                continue;
            }
            SweepStep::Finished(marker) => {
                finish_window(&sweep, &task, &key, marker).await;
                continue;
            }
            SweepStep::Wait(d) => Some(d),
            SweepStep::Idle => {
                if sweep.until().is_none() {
                    // A bounded target reached: forget it (a failure only means a re-check later).
                    let _ = task.store.clear_setting(settings::SWEEP_TARGET).await;
                }
                None
            }
            SweepStep::Halt(reason) => {
                task.status.send_modify(|s| s.reader.halted = Some(reason));
                None
            }
        };
        report(&sweep, &task.status, OffsetDateTime::now_utc());
        match wait {
            Some(d) => task.pulse.waiting(d),
            None => task.pulse.idle(),
        }
        tokio::select! {
            () = crate::poller::sleep_or_forever(wait) => {}
            request = task.requests.recv() => {
                if let Some(order) = request {
                    accept(&mut sweep, &task, &key, order.request).await;
                    let _ = order.done.send(());
                }
            }
            _ = task.shutdown.changed() => {}
        }
    }
}

/// A commit of no events that records `window` as the sweep's place: a finished window
/// `[before, before]`, or the new start after a request moved the sweep back.
fn marker(key: &CursorKey, window: SweepWindow) -> PageCommit {
    PageCommit {
        cursor: key.clone(),
        events: Vec::new(),
        next_position: None,
        last_created_at: None,
        window: Some(window),
        collected_at_ms: clock::now_ms(),
    }
}

/// Persists a bounded sweep's target from what is covered now, so a restart resumes it.
async fn persist_target(sweep: &Sweep, store: &Store) -> Result<(), boxidr_store::StoreError> {
    if let (Some(until), Some(from)) = (sweep.until(), sweep.covered_until()) {
        let target = target_json(SweepRequest { from, until });
        store.put_setting(settings::SWEEP_TARGET, &target).await?;
    }
    Ok(())
}

async fn finish_window(sweep: &Sweep, task: &SweepTask<'_>, key: &CursorKey, done: SweepWindow) {
    // If the marker cannot be written, a restart re-reads the finished window (duplicates are
    // dropped by the store): nothing is lost, so the sweep carries on.
    if let Err(e) = task.store.commit_page(marker(key, done)).await {
        tracing::warn!(error = %e, "Cannot record a finished sweep window.");
    }
    let _ = persist_target(sweep, task.store).await;
    task.status.send_modify(|s| s.windows_finished += 1);
}

async fn accept(sweep: &mut Sweep, task: &SweepTask<'_>, key: &CursorKey, request: SweepRequest) {
    if sweep.request(request.from, request.until) {
        // Persist the move back before the stream commits past the gap: a finished-window
        // marker at `from`, so a restart resumes the sweep there.
        let at = format_utc(request.from);
        let start = SweepWindow {
            after: at.clone(),
            before: at,
        };
        if let Err(e) = task.store.commit_page(marker(key, start)).await {
            tracing::warn!(error = %e, "Cannot persist the sweep's new start; it runs from memory.");
        }
    }
    if let Err(e) = persist_target(sweep, task.store).await {
        tracing::warn!(error = %e, "Cannot persist the catch-up target; it runs from memory.");
    }
}

/// Publishes where the sweep is at wall-clock time `now` (notifies only on a change).
fn report(sweep: &Sweep, status: &tokio::sync::watch::Sender<SweepStatus>, now: OffsetDateTime) {
    let covered_at = sweep.covered_until();
    let moving = sweep.config.continuous;
    let end = if moving {
        time::Duration::try_from(sweep.config.lag)
            .ok()
            .map(|lag| now - lag)
    } else {
        sweep.until()
    };
    let covered = covered_at.map(format_utc);
    let target = sweep.until().map(format_utc);
    let stuck = sweep.stuck().map(str::to_owned);
    let shrunk = sweep.windows_shrunk();
    status.send_if_modified(|s| {
        let changed = s.covered_until != covered
            || s.target_until != target
            || s.stuck != stuck
            || s.windows_shrunk != shrunk;
        s.covered_until.clone_from(&covered);
        s.target_until.clone_from(&target);
        s.stuck.clone_from(&stuck);
        s.windows_shrunk = shrunk;
        let progress = next_progress(
            s.progress.as_ref(),
            covered_at,
            end,
            moving,
            unix_ms(now),
            s.reader.appended,
        );
        // A moving end changes every call; only a start, an end or progress notifies.
        let key = |p: &Option<SweepProgress>| p.map(|p| (p.from_ms, p.covered_ms));
        let changed = changed || key(&s.progress) != key(&progress);
        s.progress = progress;
        changed
    });
}

fn target_json(request: SweepRequest) -> serde_json::Value {
    serde_json::json!({ "from": format_utc(request.from), "until": format_utc(request.until) })
}

fn parse_target(value: &serde_json::Value) -> Option<SweepRequest> {
    Some(SweepRequest {
        from: parse_utc(value.get("from")?.as_str()?)?,
        until: parse_utc(value.get("until")?.as_str()?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn config(continuous: bool) -> SweepConfig {
        SweepConfig {
            limit: 100,
            continuous,
            lag: Duration::from_secs(600),
            min_step: Duration::from_secs(300),
            max_window: Duration::from_secs(86_400),
        }
    }

    fn pos(s: &str) -> StreamPosition {
        StreamPosition::new(s).unwrap()
    }

    fn fetch(step: SweepStep) -> (EventsRequest, SweepWindow) {
        match step {
            SweepStep::Fetch { request, window } => (request, window),
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    /// A bounded backfill: progress from its start to the target, events counted from when it
    /// was first seen, an ETA from the speed so far, and nothing once it is done.
    #[test]
    fn progress_of_a_backfill() {
        let day = |d: i64| datetime!(2024-05-01 0:00 UTC) + time::Duration::days(d);
        let target = Some(day(20));
        let first = next_progress(None, Some(day(0)), target, false, 1_000_000, 50).unwrap();
        assert_eq!(first.percent(), 0.0);
        assert_eq!(first.eta_secs(1_000_000), None);
        // 5 of 20 days read in 10 s: 25 %, 30 s left.
        let later =
            next_progress(Some(&first), Some(day(5)), target, false, 1_010_000, 350).unwrap();
        assert_eq!(later.percent(), 25.0);
        assert_eq!(later.events(350), 300);
        assert_eq!(later.eta_secs(1_010_000), Some(30));
        assert_eq!(later.started_ms, 1_000_000);
        assert_eq!(
            next_progress(Some(&later), Some(day(20)), target, false, 1_040_000, 900),
            None
        );
        assert_eq!(next_progress(None, Some(day(3)), None, false, 0, 0), None);
    }

    /// A continuous sweep shows a catch-up only when far behind, keeps showing it until it is
    /// nearly caught up, and its ETA accounts for the end moving with real time.
    #[test]
    fn progress_of_a_continuous_catch_up() {
        let t = datetime!(2024-05-01 12:00 UTC);
        let minutes = |m: i64| time::Duration::minutes(m);
        assert_eq!(
            next_progress(None, Some(t - minutes(20)), Some(t), true, 0, 0),
            None,
            "20 minutes behind is normal"
        );
        let run = next_progress(None, Some(t - minutes(120)), Some(t), true, 0, 0).unwrap();
        // 60 minutes read in 60 s while the end moved 1 minute: 59 minutes per minute net.
        let later = next_progress(
            Some(&run),
            Some(t - minutes(60)),
            Some(t + minutes(1)),
            true,
            60_000,
            10,
        )
        .unwrap();
        assert_eq!(later.eta_secs(60_000), Some(63));
        assert!(
            next_progress(Some(&later), Some(t - minutes(15)), Some(t), true, 0, 0).is_some(),
            "hysteresis"
        );
        assert_eq!(
            next_progress(Some(&later), Some(t - minutes(5)), Some(t), true, 0, 0),
            None
        );
    }

    /// A continuous sweep reads lag-closed windows, pages with the same bounds, finishes a window
    /// only on an empty page, and waits for `min_step` of new closable time.
    #[test]
    fn continuous_windows() {
        let now = datetime!(2024-05-02 12:00 UTC);
        let mut s = Sweep::new(config(true), None, Some(datetime!(2024-05-02 11:00 UTC)));
        let (r, w) = fetch(s.step(now));
        assert_eq!(r.stream, StreamType::AdminLogs);
        assert_eq!(r.from, From::Start);
        assert_eq!(w.after, "2024-05-02T11:00:00Z");
        assert_eq!(w.before, "2024-05-02T11:50:00Z");
        assert_eq!(r.created_after.as_deref(), Some("2024-05-02T11:00:00Z"));
        // A short page is not the end of the window.
        s.on_committed(3, Some(pos("77")), None);
        let (r, w2) = fetch(s.step(now));
        assert_eq!((r.from, &w2), (From::At(pos("77")), &w));
        s.on_committed(0, Some(pos("78")), None);
        assert_eq!(
            s.step(now),
            SweepStep::Finished(SweepWindow {
                after: "2024-05-02T11:50:00Z".into(),
                before: "2024-05-02T11:50:00Z".into()
            })
        );
        // Nothing closable yet: wait until min_step of new time is behind the lag.
        assert_eq!(s.step(now), SweepStep::Wait(Duration::from_secs(300)));
        let later = now + time::Duration::minutes(7);
        let (r, w) = fetch(s.step(later));
        assert_eq!(r.from, From::Start);
        assert_eq!(w.after, "2024-05-02T11:50:00Z");
        assert_eq!(w.before, "2024-05-02T11:57:00Z");
    }

    /// A long backlog is cut into `max_window` windows.
    #[test]
    fn long_backlog_is_windowed() {
        let now = datetime!(2024-05-10 0:00 UTC);
        let mut s = Sweep::new(config(true), None, Some(datetime!(2024-05-01 0:00 UTC)));
        let (_, w) = fetch(s.step(now));
        assert_eq!(w.before, "2024-05-02T00:00:00Z");
    }

    /// Bounded mode reads to its target and idles; a new request extends it.
    #[test]
    fn bounded_catch_up() {
        let now = datetime!(2024-05-02 12:00 UTC);
        let mut s = Sweep::new(config(false), None, None);
        assert_eq!(s.step(now), SweepStep::Idle);
        s.request(datetime!(2024-05-02 10:00 UTC), now);
        let (_, w) = fetch(s.step(now));
        assert_eq!(
            (w.after.as_str(), w.before.as_str()),
            ("2024-05-02T10:00:00Z", "2024-05-02T12:00:00Z")
        );
        s.on_committed(0, None, None);
        assert!(matches!(s.step(now), SweepStep::Finished(_)));
        assert_eq!(s.step(now), SweepStep::Idle);
        assert_eq!(s.until(), None);
    }

    /// A request only moves a sweep back, and a bounded sweep's target forward.
    #[test]
    fn requests_only_move_back() {
        let now = datetime!(2024-05-02 12:00 UTC);
        let mut s = Sweep::new(config(false), None, Some(datetime!(2024-05-02 11:00 UTC)));
        assert!(!s.request(datetime!(2024-05-02 11:30 UTC), now));
        assert_eq!(s.covered_until(), Some(datetime!(2024-05-02 11:00 UTC)));
        assert!(s.request(datetime!(2024-05-02 09:00 UTC), now - time::Duration::HOUR));
        assert_eq!(s.until(), Some(now));
        let (_, w) = fetch(s.step(now));
        assert_eq!(w.after, "2024-05-02T09:00:00Z");
        // A continuous sweep moves back as well (a restarted stream left a gap), never forward.
        let mut c = Sweep::new(config(true), None, Some(datetime!(2024-05-02 11:00 UTC)));
        assert!(!c.request(datetime!(2024-05-02 11:30 UTC), now));
        assert_eq!(c.covered_until(), Some(datetime!(2024-05-02 11:00 UTC)));
        assert!(c.request(datetime!(2024-05-02 09:00 UTC), now));
        assert_eq!(c.covered_until(), Some(datetime!(2024-05-02 09:00 UTC)));
        assert_eq!(c.until(), None);
    }

    /// A restart resumes the stored window at its position; a finished marker starts after it.
    #[test]
    fn resumes_from_store() {
        let now = datetime!(2024-05-02 12:00 UTC);
        let stored = CursorState {
            position: Some(pos("55")),
            updated_at_ms: 0,
            last_created_at: None,
            window: Some(SweepWindow {
                after: "2024-05-02T10:00:00Z".into(),
                before: "2024-05-02T11:00:00Z".into(),
            }),
        };
        let mut s = Sweep::new(config(true), Some(&stored), None);
        let (r, w) = fetch(s.step(now));
        assert_eq!(
            (r.from, w.after.as_str()),
            (From::At(pos("55")), "2024-05-02T10:00:00Z")
        );
        let marker = CursorState {
            position: None,
            window: Some(SweepWindow {
                after: "2024-05-02T11:00:00Z".into(),
                before: "2024-05-02T11:00:00Z".into(),
            }),
            ..stored
        };
        let mut s = Sweep::new(config(true), Some(&marker), None);
        assert_eq!(s.covered_until(), Some(datetime!(2024-05-02 11:00 UTC)));
        let (r, _) = fetch(s.step(now));
        assert_eq!(r.from, From::Start);
    }

    /// A page with entries but no usable position cannot loop: the window restarts at its newest
    /// event, or is given up when there is none.
    #[test]
    fn page_without_position_never_loops() {
        let now = datetime!(2024-05-02 12:00 UTC);
        let mut s = Sweep::new(config(true), None, Some(datetime!(2024-05-02 11:00 UTC)));
        fetch(s.step(now));
        s.on_committed(100, None, Some(datetime!(2024-05-02 11:20 UTC)));
        let (r, w) = fetch(s.step(now));
        assert_eq!(
            (r.from, w.after.as_str()),
            (From::Start, "2024-05-02T11:20:00Z")
        );
        s.on_committed(100, None, None);
        assert_eq!(s.covered_until(), Some(datetime!(2024-05-02 11:50 UTC)));
        assert_eq!(s.pages_without_position(), 2);
    }

    /// Pages that cannot be read halve the window after a bounded number of tries, down to one
    /// second; a one-second window that still fails is reported stuck, retried and never
    /// skipped; a page that reads clears it.
    #[test]
    fn unreadable_pages_shrink_the_window_never_skip_it() {
        let now = datetime!(2024-05-02 12:00 UTC);
        let bad = ApiError::BadBody {
            detail: "events page: EOF".into(),
        };
        let mut s = Sweep::new(config(true), None, Some(datetime!(2024-05-02 11:00 UTC)));
        let (_, w) = fetch(s.step(now));
        assert_eq!(w.before, "2024-05-02T11:50:00Z");
        s.on_committed(3, Some(pos("9")), None);
        for _ in 0..UNREADABLE_WINDOW_TRIES {
            fetch(s.step(now));
            s.on_error(&bad, 0.5);
            let _ = s.step(now); // the backoff
        }
        let (r, w) = fetch(s.step(now));
        assert_eq!(r.from, From::Start, "re-read from the window's start");
        assert_eq!(
            (w.after.as_str(), w.before.as_str()),
            ("2024-05-02T11:00:00Z", "2024-05-02T11:25:00Z")
        );
        assert_eq!(s.windows_shrunk(), 1);
        for _ in 0..40 {
            s.on_error(&bad, 0.5);
            let _ = s.step(now);
        }
        let (_, w) = fetch(s.step(now));
        assert_eq!(
            (w.after.as_str(), w.before.as_str()),
            ("2024-05-02T11:00:00Z", "2024-05-02T11:00:01Z")
        );
        assert!(
            s.stuck().is_some_and(|m| m.contains("11:00:00Z")),
            "{:?}",
            s.stuck()
        );
        assert_eq!(
            s.covered_until(),
            Some(datetime!(2024-05-02 11:00 UTC)),
            "not skipped"
        );
        s.on_committed(0, None, None);
        assert_eq!(s.stuck(), None);
        assert!(matches!(s.step(now), SweepStep::Finished(_)));
    }

    /// Failures back off; an operator error halts until resumed.
    #[test]
    fn errors() {
        let now = datetime!(2024-05-02 12:00 UTC);
        let mut s = Sweep::new(config(true), None, Some(datetime!(2024-05-02 11:00 UTC)));
        s.on_error(
            &ApiError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            },
            0.5,
        );
        assert_eq!(s.step(now), SweepStep::Wait(Duration::from_secs(30)));
        s.on_error(
            &ApiError::Forbidden {
                code: "access_denied_insufficient_permissions".into(),
                message: "no".into(),
            },
            0.5,
        );
        assert!(matches!(s.step(now), SweepStep::Halt(_)));
        s.resume();
        assert!(matches!(s.step(now), SweepStep::Fetch { .. }));
    }
}
