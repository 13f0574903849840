//! What the status page shows comes from the collector through [`StatusSource`]: the typed
//! [`StatusReport`] `boxidr` builds. This crate renders it as a dashboard (escaped, bounded)
//! and serves it as JSON (`/status.json`) and Prometheus text (`/metrics`, computed from the
//! report on request).
//!
//! There is no report while the collector starts, and the sections that only exist while Box
//! is read (`box`, `sinks`, `verifier`) or a board is driven (`leds`) may be missing: the
//! dashboard shows "not known" for what is not there. Every string is untrusted (errors quote
//! Box and InsightIDR) and is bounded and escaped.
//!
//! Values the browser test reads carry `data-key` (the JSON path, dot-separated) and
//! `data-value` (the raw value) attributes, so tools need not parse the words.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boxidr_health::{
    CollectingState, Component, Level, ProgressKind, ProgressReport, Severity, SinkReport,
    SinkStateName, StatusReport, StoreReport, VerifierState,
};
use boxidr_model::{Led, LedFrame, LedLook};
use maud::{Markup, html};

/// The appliance's status for the status page, `/status.json` and `/metrics`.
///
/// Implementations must be cheap (called on every refresh) and must never put secrets in the
/// report. Every string is treated as untrusted and escaped.
pub trait StatusSource: Send + Sync {
    /// The latest report; `None` before the collector's first one.
    fn snapshot(&self) -> Option<StatusReport>;
}

/// A source with nothing to say (before the collector is wired, and in tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoStatus;

impl StatusSource for NoStatus {
    fn snapshot(&self) -> Option<StatusReport> {
        None
    }
}

/// The report as `/status.json` serves it: `{}` before the first one.
pub(crate) fn report_json(report: Option<&StatusReport>) -> serde_json::Value {
    report
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()))
}

/// Characters shown of one string.
const MAX_CHARS: usize = 500;
/// Problems listed on the page (the JSON has them all).
const MAX_PROBLEMS: usize = 20;

/// Caps length and replaces control and bidi-override characters so untrusted text cannot
/// reorder or hide what is around it.
pub(crate) fn bounded(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| {
            if c.is_control()
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
            {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    if text.chars().count() > MAX_CHARS {
        out.push('…');
    }
    out
}

/// A non-empty string, bounded.
fn text(value: Option<&String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty()).map(|s| bounded(s))
}

/// A duration in words, coarser as it grows ("45s", "12m 5s", "3h 20m", "2days 4h").
pub(crate) fn duration_words(secs: u64) -> String {
    let coarse = match secs {
        0..3_600 => secs,
        3_600..86_400 => secs - secs % 60,
        _ => secs - secs % 3_600,
    };
    humantime::format_duration(Duration::from_secs(coarse)).to_string()
}

/// "12s ago"; "just now" under a second.
fn ago(secs: u64) -> String {
    if secs == 0 {
        "just now".to_owned()
    } else {
        format!("{} ago", duration_words(secs))
    }
}

/// A moment (milliseconds since the epoch) as relative words with the UTC time beside it.
fn moment(at_ms: u64, now: SystemTime) -> Markup {
    let at = UNIX_EPOCH + Duration::from_millis(at_ms);
    let iso = humantime::format_rfc3339_seconds(at).to_string();
    let words = match now.duration_since(at) {
        Ok(d) => ago(d.as_secs()),
        Err(e) => format!("in {}", duration_words(e.duration().as_secs())),
    };
    html! { time datetime=(iso) title=(iso) { (words) } " " span.muted { "(" (iso) ")" } }
}

/// Bytes in binary units ("1.5 MiB").
fn bytes_words(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A component level or overall verdict as (CSS class, words).
fn level_words(level: &str) -> (&'static str, &'static str) {
    match level {
        "ok" => ("ok", "OK"),
        "degraded" => ("warn", "Working through trouble"),
        "failing" => ("bad", "Failing"),
        "setup_needed" => ("warn", "Setup needed"),
        "not_configured" => ("muted", "Not configured"),
        _ => ("muted", "Not known"),
    }
}

/// The collecting state as words.
fn state_words(state: Option<CollectingState>) -> &'static str {
    match state {
        Some(CollectingState::Running) => "Collecting",
        Some(CollectingState::WaitingForTime) => "Waiting for the clock",
        Some(CollectingState::NotCollecting) => "Not collecting",
        None => "Starting",
    }
}

/// Looks as words: the rhythm, never a colour.
fn look_words(look: LedLook) -> String {
    match look {
        LedLook::Off => "off".into(),
        LedLook::On => "steady on".into(),
        LedLook::SlowBlink => "slow blink".into(),
        LedLook::FastBlink => "fast blink".into(),
        LedLook::Heartbeat => "heartbeat (double flash)".into(),
        LedLook::Code(n) => format!("{n} flashes, then a pause"),
        LedLook::Sweep => "running light".into(),
        LedLook::WigWag => "alternating".into(),
    }
}

/// What a look means on one LED (the case's sticker, in words).
fn look_meaning(led: Led, look: LedLook) -> &'static str {
    match (led, look) {
        (_, LedLook::Sweep) => "starting up",
        (_, LedLook::WigWag) => "factory reset confirmed",
        (Led::System, LedLook::Heartbeat) => "firmware alive",
        (Led::System, LedLook::On) => "firmware stopped",
        (Led::System, LedLook::Off) => "firmware not running",
        (Led::Box, LedLook::On) => "Box events flowing",
        (Led::Box, LedLook::Off) => "Box not configured",
        (Led::InsightIdr, LedLook::On) => "delivering to InsightIDR",
        (Led::InsightIdr, LedLook::Off) => "InsightIDR not configured",
        (Led::Box | Led::InsightIdr, LedLook::SlowBlink) => "working through trouble",
        (Led::Box | Led::InsightIdr, LedLook::FastBlink) => "failing",
        (Led::Attention, LedLook::Off) => "nothing needs you",
        (Led::Attention, LedLook::On) => "action needed",
        (Led::Attention, LedLook::SlowBlink) => "needs attention soon",
        (Led::Attention, LedLook::FastBlink) => "urgent",
        (Led::Attention, LedLook::Code(_)) => "problem number (see the list below)",
        _ => "unusual for this light",
    }
}

/// CSS class of a look's rhythm.
fn look_class(look: LedLook) -> String {
    match look {
        LedLook::Off => "off".into(),
        LedLook::On => "on".into(),
        LedLook::SlowBlink => "slow".into(),
        LedLook::FastBlink => "fast".into(),
        LedLook::Heartbeat => "heartbeat".into(),
        LedLook::Code(n) => format!("code code-{}", n.clamp(1, LedLook::MAX_CODE)),
        LedLook::Sweep => "sweep".into(),
        LedLook::WigWag => "wigwag".into(),
    }
}

/// Suggested colour of an LED (a hint only: position and rhythm carry the meaning).
fn hint(led: Led) -> (&'static str, &'static str) {
    match led {
        Led::System => ("green", "green"),
        Led::Box | Led::InsightIdr => ("blue", "blue"),
        Led::Attention => ("red", "red"),
    }
}

fn look_of(frame: &LedFrame, led: Led) -> LedLook {
    match led {
        Led::System => frame.system,
        Led::Box => frame.box_link,
        Led::InsightIdr => frame.insightidr,
        Led::Attention => frame.attention,
    }
}

/// The report, when there is one.
type Report<'a> = Option<&'a StatusReport>;

fn leds(report: Report<'_>) -> Markup {
    let frame = report.and_then(|r| r.leds.as_ref()).map(|l| l.frame);
    html! {
        section #leds {
            h2 { "Status lights" }
            @match frame {
                Some(frame) => {
                    ol.leds aria-label="The four lights on the case, left to right" {
                        @for led in Led::ALL {
                            @let look = look_of(&frame, led);
                            @let (hint_class, hint_word) = hint(led);
                            li.led data-key=(format!("leds.frame.{}", led.label().to_lowercase())) data-value=(look_class(look)) {
                                span class=(format!("lamp {hint_class} pos-{} {}", led.index() + 1, look_class(look))) aria-hidden="true" {}
                                span.led-name { (led.index() + 1) ". " (led.label()) }
                                span.led-look { (look_words(look)) }
                                span.led-meaning.muted { (look_meaning(led, look)) " · " (hint_word) " light" }
                            }
                        }
                    }
                    p.help { "Read them by position and rhythm; the colour is only a hint." }
                }
                None => { p.muted { "The lights' state is not reported yet." } }
            }
        }
    }
}

fn headline(report: Report<'_>) -> Markup {
    let state = report.map(|r| r.state);
    let running = state == Some(CollectingState::Running);
    let reason = text(report.and_then(|r| r.reason.as_ref())).unwrap_or_else(|| {
        if report.is_none() {
            "the collector has not reported yet (it may be starting)".to_owned()
        } else {
            "no reason given".to_owned()
        }
    });
    let overall = report.map(|r| r.health.overall.as_str());
    let (class, words) = level_words(overall.unwrap_or(""));
    html! {
        section #summary class=(format!("summary {class}")) {
            p.headline {
                span data-key="state" data-value=(state.map_or("", CollectingState::as_str)) { (state_words(state)) }
                " · "
                span data-key="health.overall" data-value=(overall.unwrap_or_default()) {
                    @if overall.is_some() { (words) } @else { "health not assessed yet" }
                }
            }
            @if !running {
                div.banner.warn #not-collecting {
                    strong { "Not collecting: " }
                    span data-key="reason" data-value=(reason) { (reason) }
                }
            }
        }
    }
}

fn problems(report: Report<'_>) -> Markup {
    let list = report.map(|r| &r.health.problems);
    html! {
        section #problems {
            h2 { "Problems" }
            @match list {
                None => { p.muted { "Health is not assessed yet." } }
                Some(list) if list.is_empty() => { p.ok { "No problems. Nothing needs you." } }
                Some(list) => {
                    ul.problems {
                        @for p in list.iter().take(MAX_PROBLEMS) {
                            li class=(format!("sev {}", p.severity.as_str())) {
                                strong.sev { (severity_word(p.severity)) }
                                " · " span.muted { (component_word(p.component)) }
                                p.message { (text(Some(&p.message)).unwrap_or_else(|| "(no description)".into())) }
                                @if let Some(fix) = text(p.fix.as_ref()) { p.fix { strong { "What to do: " } (fix) } }
                            }
                        }
                    }
                    @if list.len() > MAX_PROBLEMS {
                        p.muted { "… and " (list.len() - MAX_PROBLEMS) " more in " a href="/status.json" { "/status.json" } "." }
                    }
                }
            }
        }
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "Note",
        Severity::Warning => "Warning",
        Severity::Error => "Error",
        Severity::Critical => "Critical",
    }
}

fn component_word(component: Component) -> &'static str {
    match component {
        Component::System => "Appliance",
        Component::Box => "Box",
        Component::Collector => "Collector",
        Component::LogSearch => "Log Search",
        Component::Store => "Queue",
        Component::Clock => "Clock",
        Component::Board => "Lights",
    }
}

/// "OK — summary" for one component of the health verdict.
fn component(report: Report<'_>, which: Component) -> Markup {
    let c = report.and_then(|r| r.health.components.get(which));
    let (class, words) = level_words(c.map_or("", |c| Level::as_str(c.level)));
    html! {
        span class=(class) { (words) }
        @if let Some(summary) = c.and_then(|c| text(Some(&c.summary))) { " — " (summary) }
    }
}

/// A number cell, machine-readable through `data-key` (the JSON path).
fn count(key: &str, value: Option<u64>) -> Markup {
    match value {
        Some(n) => html! { span data-key=(key) data-value=(n) { (n) } },
        None => html! { span.muted data-key=(key) data-value="" { "not known" } },
    }
}

fn secs_or<F: Fn(u64) -> String>(value: Option<u64>, words: F, missing: &str) -> Markup {
    match value {
        Some(s) => html! { (words(s)) },
        None => html! { span.muted { (missing) } },
    }
}

fn store_of(report: Report<'_>) -> Option<&StoreReport> {
    report.and_then(|r| r.store.figures())
}

fn box_section(report: Report<'_>, proxy: Option<&str>) -> Markup {
    let derived = report.map(|r| r.health.derived);
    let b = report.and_then(|r| r.box_.as_ref());
    let flagged = b.map(|b| b.stream.reader.rejected_entries + b.sweep.reader.rejected_entries);
    let last_error = b.and_then(|b| {
        text(b.stream.reader.last_error.as_ref())
            .or_else(|| text(b.sweep.reader.last_error.as_ref()))
    });
    let filtered = b.map(|b| b.stream.reader.filtered + b.sweep.reader.filtered);
    let counters = store_of(report).map(|s| s.counters);
    // Most frequent first; at most 50 rows (Box has about 200 types).
    let mut by_type: Vec<(&String, u64)> = b
        .map(|b| b.by_type.iter().map(|(k, v)| (k, *v)).collect())
        .unwrap_or_default();
    by_type.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    by_type.truncate(50);
    html! {
        section #box-status {
            h2 { "Box" }
            table.kv {
                tr { th { "Connection" } td { (component(report, Component::Box)) } }
                tr { th { "Last successful poll" } td { (secs_or(derived.and_then(|d| d.since_last_poll_secs), ago, "none yet")) } }
                tr { th { "Behind Box by" } td { (secs_or(derived.and_then(|d| d.lag_secs), duration_words, "not known")) }
                     }
                @if let Some(rest) = derived.and_then(|d| d.catch_up_remaining_secs) {
                    tr { th { "Catching up" } td { (duration_words(rest)) " of Box history still to read" } }
                }
                @if let Some(p) = b.and_then(|b| b.sweep.progress.as_ref()) {
                    (progress_row(p))
                }
                tr { th { "Events collected" } td { (count("store.counters.events_appended", counters.and_then(|c| c.events_appended))) } }
                tr { th { "Duplicates dropped" } td { (count("store.counters.events_duplicate", counters.and_then(|c| c.events_duplicate))) } }
                tr { th { "Flagged (kept raw, not parsed)" } td {
                    @match flagged { Some(n) => { (n) }, None => { span.muted { "not known" } } } } }
                @if let Some(e) = last_error { tr { th { "Last error" } td.bad { (e) } } }
                @if let Some(n) = filtered.filter(|n| *n > 0) {
                    tr { th { "Dropped by the event-type filter" } td { (n) } }
                }
            }
            @if let Some(problem) = proxy_problem(report, proxy) { (problem) }
            @if !by_type.is_empty() {
                table.kv #by-type {
                    caption { "Events collected since start, by type" }
                    @for (event_type, n) in &by_type {
                        tr data-key=(bounded(event_type)) data-value=(n) { th { (bounded(event_type)) } td { (n) } }
                    }
                }
            }
        }
    }
}

/// With an outbound proxy configured and a path through it failing (Box, Log Search, the
/// verifier), a problem that names the proxy and what to check: the error alone ("cannot reach
/// Box: connection refused") would send the admin looking at Box.
fn proxy_problem(report: Report<'_>, proxy: Option<&str>) -> Option<Markup> {
    let proxy = proxy.filter(|p| !p.trim().is_empty())?;
    let report = report?;
    let b = report.box_.as_ref();
    let errors: Vec<String> = [
        b.and_then(|b| b.stream.reader.last_error.as_ref()),
        b.and_then(|b| b.sweep.reader.last_error.as_ref()),
        report
            .sinks
            .as_ref()
            .and_then(|s| s.log_search.last_error.as_ref()),
        report.verifier.as_ref().and_then(|v| v.last_error.as_ref()),
    ]
    .into_iter()
    .filter_map(text)
    .collect();
    let first = errors.first()?;
    let lower = first.to_ascii_lowercase();
    let what = if lower.contains("407") || lower.contains("proxy user or password") {
        "asks for a user and password, or refused them: set them in Collection → Outbound proxy"
    } else if lower.contains("connect")
        || lower.contains("cannot reach")
        || lower.contains("refused")
    {
        "does not accept connections (down, wrong address or port, or this appliance is not \
         allowed): check the proxy URL in Collection → Outbound proxy and that the proxy runs"
    } else {
        "may be refusing the request: check the proxy's access rules for Box and InsightIDR"
    };
    Some(html! {
        p.problem.bad #proxy-problem {
            strong { "Outbound proxy " (bounded(proxy)) } " " (what) ". Last error: " (bounded(first))
        }
    })
}

/// A backfill or catch-up as a bar with percent, events and ETA.
fn progress_row(p: &ProgressReport) -> Markup {
    let percent = if p.percent.is_finite() {
        p.percent.clamp(0.0, 100.0)
    } else {
        0.0
    };
    let label = match p.kind {
        ProgressKind::CatchUp => "Catching up",
        ProgressKind::BackfillOrCatchUp => "Reading Box history",
    };
    html! {
        tr #history-progress data-key="box.sweep.progress.percent" data-value=(percent) {
            th { (label) }
            td {
                progress max="100" value=(format!("{percent:.1}")) { (format!("{percent:.1} %")) }
                " " (format!("{percent:.1} %")) " · " (p.events) " events · "
                @match p.eta_secs {
                    Some(secs) => { "about " (duration_words(secs)) " left" },
                    None => { span.muted { "time left not known yet" } },
                }
            }
        }
    }
}

fn sink_state_words(state: Option<SinkStateName>) -> (&'static str, &'static str) {
    match state {
        Some(SinkStateName::Idle) => ("ok", "Up to date"),
        Some(SinkStateName::Delivering) => ("ok", "Delivering"),
        Some(SinkStateName::Retrying) => ("warn", "Retrying"),
        Some(SinkStateName::ConfigError) => ("bad", "Stopped: check the settings"),
        Some(SinkStateName::Disabled) => ("muted", "Not configured"),
        Some(SinkStateName::Stopped) => ("muted", "Stopped"),
        None => ("muted", "Not known"),
    }
}

/// The canary verification of one sink, in words.
fn verification(state: Option<VerifierState>, sink: &str, now: SystemTime) -> Markup {
    let key = format!("verifier.{sink}");
    let Some(state) = state else {
        return html! { span.muted data-key=(key) data-value="" { "not known" } };
    };
    let name = match state {
        VerifierState::Confirmed { .. } => "confirmed",
        VerifierState::Pending { .. } => "pending",
        VerifierState::NotSeen { .. } => "not_seen",
        VerifierState::NotConfigured => "not_configured",
    };
    html! {
        span data-key=(key) data-value=(name) {
            @match state {
                VerifierState::Confirmed { at_ms } => { span.ok { "Confirmed" } " " (moment(at_ms, now)) }
                VerifierState::Pending { since_ms } => { span.warn { "Pending" } ": canary sent " (moment(since_ms, now)) }
                VerifierState::NotSeen { at_ms } => { span.bad { "Not seen" } ": gave up " (moment(at_ms, now)) }
                VerifierState::NotConfigured => { span.muted { "Not configured (no Platform API key)" } }
            }
        }
    }
}

fn sinks_section(report: Report<'_>, now: SystemTime) -> Markup {
    let sinks = report.and_then(|r| r.sinks.as_ref());
    let verifier = report.and_then(|r| r.verifier.as_ref());
    let rows: [(&str, &str, Option<&SinkReport>, Option<VerifierState>); 2] = [
        (
            "collector",
            "Collector (logins, UEF)",
            sinks.map(|s| &s.collector),
            verifier.map(|v| v.collector),
        ),
        (
            "log_search",
            "Log Search (raw events)",
            sinks.map(|s| &s.log_search),
            verifier.map(|v| v.log_search),
        ),
    ];
    html! {
        section #sinks {
            h2 { "InsightIDR" }
            table.sinks {
                thead { tr { th { "Destination" } th { "State" } th { "Delivered" } th { "Last delivery" } th { "Canary check" } } }
                tbody {
                    @for (key, label, s, v) in rows {
                        @let (class, words) = sink_state_words(s.map(|s| s.state));
                        tr {
                            th { (label) }
                            td {
                                span class=(class) { (words) }
                                @if let Some(d) = s.and_then(|s| text(s.detail.as_ref())) { br; span.muted { (d) } }
                                @if let Some(e) = s.and_then(|s| text(s.last_error.as_ref())) { br; span.bad { "Last error: " (e) } }
                            }
                            td { (count(&format!("sinks.{key}.delivered"), s.map(|s| s.delivered))) }
                            td { @match s.and_then(|s| s.last_delivered_at) {
                                Some(t) => { (moment(t.saturating_mul(1000), now)) }
                                None => { span.muted { "none yet" } }
                            } }
                            td { (verification(v, key, now)) }
                        }
                    }
                }
            }
            @if let Some(e) = text(verifier.and_then(|v| v.last_error.as_ref())) { p.bad { "Canary check: " (e) } }
            @if let Some(m) = text(verifier.and_then(|v| v.marker.as_ref())) { p.help { "Latest canary marker (search for it in Log Search): " code { (m) } } }
        }
    }
}

fn queue_section(report: Report<'_>) -> Markup {
    let store = store_of(report);
    let derived = report.map(|r| r.health.derived);
    let percent = store
        .map(|s| s.quota_used_percent)
        .filter(|p| p.is_finite() && *p >= 0.0)
        .or_else(|| derived.and_then(|d| d.queue_use_percent).map(|p| p as f64));
    let oldest = derived
        .and_then(|d| d.oldest_undelivered_secs)
        .or_else(|| store.and_then(|s| s.oldest_pending_age_secs));
    let error = match report.map(|r| &r.store) {
        Some(boxidr_health::StoreSection::Unreadable { error }) => text(Some(error)),
        _ => None,
    };
    html! {
        section #queue {
            h2 { "Queue" }
            @if let Some(e) = error { p.bad { "The queue cannot be read: " (e) } }
            table.kv {
                tr { th { "Events waiting" } td { (count("store.queue_records", store.map(|s| s.queue_records))) } }
                tr { th { "Disk use" } td {
                    @match percent {
                        Some(p) => {
                            meter #quota min="0" max="100" low="70" high="90" optimum="0" value=(format!("{:.1}", p.min(100.0))) {
                                (format!("{p:.1} %"))
                            }
                            " " (format!("{p:.1} %"))
                            @if let Some(s) = store {
                                " — " (bytes_words(s.file_bytes)) " of " (bytes_words(s.quota_bytes))
                            }
                        }
                        None => { span.muted { "not known" } }
                    }
                } }
                tr { th { "Oldest undelivered event" } td { (secs_or(oldest, |s| format!("{} old", duration_words(s)), "none waiting")) } }
                tr { th { "Dead letters" } td {
                    @match store.map(|s| s.dead_letters) {
                        Some(0) | None => "none",
                        Some(n) => {
                            strong.bad { (n) " refused by InsightIDR, kept" }
                            @if let Some(s) = store { " (" (bytes_words(s.dead_letter_bytes)) ")" }
                            @if store.is_some_and(|s| s.dead_letters_full) {
                                " — full: forwarding holds until they are removed"
                            }
                            " — " a href="/maintenance#dead-letters" { "download or remove them" }
                        }
                    }
                } }
            }
        }
    }
}

fn appliance_section(report: Report<'_>, now: SystemTime, fingerprint: &str) -> Markup {
    let now_iso = humantime::format_rfc3339_seconds(now).to_string();
    html! {
        section #appliance {
            h2 { "Appliance" }
            table.kv {
                tr { th { "Clock" } td { (component(report, Component::Clock)) } }
                tr { th { "Version" } td { (text(report.map(|r| &r.version)).unwrap_or_else(|| "not known".into())) } }
                tr { th { "Running for" } td { (secs_or(report.map(|r| r.uptime_secs), duration_words, "not known")) } }
                tr { th { "Page shown at" } td { time datetime=(now_iso) { (now_iso) } } }
                tr { th { "Certificate (SHA-256)" } td { code.fp { (fingerprint) } } }
            }
        }
    }
}

/// The status dashboard (the page body) for `report`, with times relative to `now`; `proxy`
/// (without its credentials) is named when a path through it fails.
pub(crate) fn dashboard(
    report: Report<'_>,
    proxy: Option<&str>,
    now: SystemTime,
    fingerprint: &str,
) -> Markup {
    html! {
        (headline(report))
        div.dash {
            (leds(report))
            (problems(report))
            (box_section(report, proxy))
            (queue_section(report))
            (sinks_section(report, now))
            (appliance_section(report, now, fingerprint))
        }
        p.help {
            "Refreshes every 10 seconds (automatic refreshes do not keep the session open: after \
             15 minutes without a click the page asks for the password). For tools: "
            a href="/status.json" { "status as JSON" } " · " a href="/metrics" { "Prometheus metrics" } "."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const NOW_MS: u64 = 1_800_000_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW_MS)
    }

    /// A running appliance, as the JSON of the report `boxidr` publishes (laid over a healthy
    /// appliance's report by `boxidr_health::scenarios::report`).
    fn running() -> Value {
        json!({
            "service": "running", "version": "0.4.2", "uptime_secs": 93_784,
            "state": "running", "reason": null,
            "box": {
                "stream": {"pages": 12, "appended": 340, "duplicates": 7, "rejected_entries": 2,
                           "consecutive_failures": 0, "last_error": null, "queue_full": false,
                           "halted": null, "recoveries": 0, "last_recovery": null},
                "sweep": {"pages": 3, "appended": 5, "duplicates": 1, "windows_finished": 2,
                          "covered_until": null, "target_until": null, "consecutive_failures": 0,
                          "last_error": null, "queue_full": false, "halted": null},
            },
            "sinks": {
                "collector": {"state": "retrying", "detail": "attempt 3: connection refused",
                              "delivered": 41, "skipped": 0, "rejected": 0, "cursor": 40,
                              "last_error": "connection refused",
                              "last_delivered_at": NOW_MS / 1000 - 300},
                "log_search": {"state": "idle", "detail": null, "delivered": 345, "skipped": 0,
                               "rejected": 0, "cursor": 345, "last_error": null,
                               "last_delivered_at": NOW_MS / 1000 - 12},
            },
            "verifier": {"configured": true,
                         "collector": {"state": "pending", "since_ms": NOW_MS - 120_000},
                         "log_search": {"state": "confirmed", "at_ms": NOW_MS - 600_000},
                         "marker": "boxidr-canary-7f3a", "rounds": 2, "last_error": null},
            "store": {"queue_records": 9, "file_bytes": 3_145_728, "quota_bytes": 1_073_741_824,
                      "quota_used_percent": 0.3, "oldest_pending_age_secs": 300,
                      "sinks": {}, "cursors": {},
                      "counters": {"events_appended": 345, "events_duplicate": 8, "canary_records": 2},
                      "reopens": 0, "repaired": false},
            "leds": {"frame": {"system": "heartbeat", "box": "on", "insightidr": "slow_blink",
                               "attention": {"code": 3}}, "render": ""},
            "health": {
                "overall": "degraded",
                "components": {
                    "box": {"level": "ok", "summary": "Box events are flowing.", "fix": null},
                    "collector": {"level": "degraded", "summary": "Retrying.", "fix": null},
                    "log_search": {"level": "ok", "summary": "Delivering.", "fix": null},
                    "store": {"level": "ok", "summary": "Queue healthy.", "fix": null},
                    "clock": {"level": "ok", "summary": "The clock is synchronised.", "fix": null},
                    "board": {"level": "ok", "summary": "LEDs working.", "fix": null},
                },
                "problems": [{"code": "sink_unreachable", "component": "collector",
                              "severity": "warning",
                              "message": "The Collector does not accept connections.",
                              "fix": "Check that the event source listens on port 20000.",
                              "attention": null}],
                "derived": {"lag_secs": 45, "since_last_poll_secs": 12,
                            "catch_up_remaining_secs": null, "queue_use_percent": 0,
                            "oldest_undelivered_secs": 300},
            },
        })
    }

    /// The typed report `doc` describes.
    fn report(doc: &Value) -> StatusReport {
        boxidr_health::scenarios::report(doc.clone()).unwrap()
    }

    fn page(doc: &Value) -> String {
        dashboard(Some(&report(doc)), None, now(), "AB:CD").into_string()
    }

    fn page_with_proxy(doc: &Value, proxy: &str) -> String {
        dashboard(Some(&report(doc)), Some(proxy), now(), "AB:CD").into_string()
    }

    /// Every figure of a running snapshot is on the dashboard, in words and relative times,
    /// never as a Unix number; the Prometheus text is linked, not dumped.
    #[test]
    fn running_snapshot_reads_at_a_glance() {
        let html = page(&running());
        for expected in [
            "Collecting",
            "Working through trouble",
            "The Collector does not accept connections.",
            "What to do: </strong>Check that the event source listens on port 20000.",
            "Box events are flowing.",
            "12s ago",
            "45s",
            "data-key=\"store.counters.events_appended\" data-value=\"345\"",
            "data-key=\"store.counters.events_duplicate\" data-value=\"8\"",
            "data-key=\"sinks.log_search.delivered\" data-value=\"345\"",
            "data-key=\"sinks.collector.delivered\" data-value=\"41\"",
            "Retrying",
            "attempt 3: connection refused",
            "Up to date",
            "5m ago",
            "Confirmed",
            "10m ago",
            "Pending",
            "2m ago",
            "boxidr-canary-7f3a",
            "3.0 MiB of 1.0 GiB",
            "<meter id=\"quota\"",
            "5m old",
            "The clock is synchronised.",
            "0.4.2",
            "1day 2h",
            "href=\"/status.json\"",
            "href=\"/metrics\"",
        ] {
            assert!(html.contains(expected), "missing {expected:?} in {html}");
        }
        // Flagged: 2 from the stream (the sweep does not report any).
        assert!(
            html.contains("Flagged (kept raw, not parsed)</th><td>2<"),
            "{html}"
        );
        assert!(!html.contains("boxidr_up"), "metrics text is not inlined");
        assert!(
            !html.contains(&(NOW_MS / 1000 - 12).to_string()),
            "no raw Unix time"
        );
        assert!(!html.contains("not-collecting"), "{html}");
        assert!(!html.contains('\u{FFFD}'), "{html}");
    }

    /// With a proxy configured, a failing path names the proxy and what to check; without a
    /// proxy, or without errors, nothing is said about one.
    #[test]
    fn proxy_problem_on_the_dashboard() {
        let mut doc = running();
        let proxy = "http://proxy.corp:3128/";
        assert!(
            !page_with_proxy(&doc, proxy).contains("proxy-problem"),
            "no error, no problem"
        );
        doc["box"]["stream"]["last_error"] =
            json!("cannot reach Box at https://api.box.com/2.0/events: tcp connect error");
        let html = page_with_proxy(&doc, proxy);
        assert!(
            html.contains("Outbound proxy http://proxy.corp:3128/"),
            "{html}"
        );
        assert!(html.contains("does not accept connections"), "{html}");
        doc["box"]["stream"]["last_error"] = json!(
            "the outbound proxy asks for authentication (407): set the proxy user and password"
        );
        assert!(page_with_proxy(&doc, proxy).contains("asks for a user and password"));
        assert!(!page(&doc).contains("proxy-problem"));
    }

    /// A backfill under way is a progress bar with percent, events and ETA.
    #[test]
    fn backfill_progress_bar() {
        let mut doc = running();
        doc["box"]["sweep"]["progress"] = json!({"kind": "backfill_or_catch_up",
            "percent": 42.5, "events": 1234, "eta_secs": 300,
            "from_ms": 0, "until_ms": 1000, "covered_ms": 425});
        let html = page(&doc);
        assert!(
            html.contains("<progress max=\"100\" value=\"42.5\">"),
            "{html}"
        );
        assert!(html.contains("Reading Box history"));
        assert!(html.contains("1234 events"));
        assert!(html.contains("about 5m left"), "{html}");
        assert!(!page(&running()).contains("<progress"));
    }

    /// Counts per event type are listed most frequent first, with what the type filter
    /// dropped; a hostile type name is escaped.
    #[test]
    fn counts_per_event_type() {
        let mut doc = running();
        doc["box"]["by_type"] = json!({"LOGIN": 3, "UPLOAD": 40, "<b>X</b>": 1});
        doc["box"]["stream"]["filtered"] = json!(7);
        doc["box"]["sweep"]["filtered"] = json!(2);
        let html = page(&doc);
        let upload = html.find("data-key=\"UPLOAD\" data-value=\"40\"").unwrap();
        let login = html.find("data-key=\"LOGIN\" data-value=\"3\"").unwrap();
        assert!(upload < login, "most frequent first");
        assert!(
            html.contains("Dropped by the event-type filter</th><td>9<"),
            "{html}"
        );
        assert!(!html.contains("<b>X</b>"), "{html}");
        // Nothing collected yet, nothing filtered: neither row nor table.
        let html = page(&running());
        assert!(!html.contains("by-type") && !html.contains("event-type filter"));
    }

    /// The four LEDs are drawn in case order with their rhythm as a class and in words.
    #[test]
    fn leds_in_order_with_rhythm_in_words() {
        let html = page(&running());
        let positions: Vec<usize> = ["1. SYSTEM", "2. BOX", "3. INSIGHTIDR", "4. ATTENTION"]
            .iter()
            .map(|l| {
                html.find(l)
                    .unwrap_or_else(|| panic!("{l} missing: {html}"))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        for expected in [
            "lamp green pos-1 heartbeat",
            "heartbeat (double flash)",
            "firmware alive",
            "lamp blue pos-2 on",
            "steady on",
            "lamp blue pos-3 slow",
            "slow blink",
            "lamp red pos-4 code code-3",
            "3 flashes, then a pause",
        ] {
            assert!(html.contains(expected), "missing {expected:?} in {html}");
        }
    }

    /// Without a report, or while not collecting, the page says so plainly; sections the
    /// report does not have are "not known".
    #[test]
    fn missing_sections_say_not_collecting() {
        let html = dashboard(None, None, now(), "AB:CD").into_string();
        assert!(html.contains("id=\"not-collecting\""), "{html}");
        assert!(html.contains("Not collecting: "), "{html}");
        assert!(html.contains("has not reported yet"), "{html}");
        assert!(html.contains("Health is not assessed yet."), "{html}");
        assert!(html.contains("not reported yet"), "{html}");

        let html = page(
            &json!({"state": "not_collecting", "reason": "Box is not connected",
                                "uptime_secs": 5, "store": {"queue_records": 0}}),
        );
        assert!(html.contains("Box is not connected"), "{html}");
        assert!(html.contains("data-value=\"not_collecting\""), "{html}");
        assert!(html.contains("5s"), "{html}");
        // No readers, sinks or verifier while not collecting.
        assert!(
            html.contains("data-key=\"sinks.collector.delivered\" data-value=\"\">not known"),
            "{html}"
        );
        assert!(
            html.contains("data-key=\"verifier.collector\" data-value=\"\""),
            "{html}"
        );

        let html = page(&json!({"store": {"error": "the database is locked"}}));
        assert!(
            html.contains("The queue cannot be read: the database is locked"),
            "{html}"
        );
        assert!(
            html.contains("data-key=\"store.queue_records\" data-value=\"\""),
            "{html}"
        );
    }

    /// Markup, controls and bidi overrides from the snapshot are inert; long strings are cut.
    #[test]
    fn hostile_strings_are_inert() {
        let hostile = "<script>alert(1)</script>\"><svg onload=alert(1)>\u{202E}\r\n";
        let mut doc = running();
        doc["state"] = json!("not_collecting");
        doc["reason"] = json!(hostile);
        doc["version"] = json!(hostile);
        doc["health"]["problems"][0]["message"] = json!(hostile);
        doc["health"]["problems"][0]["fix"] = json!(hostile);
        doc["health"]["components"]["box"]["summary"] = json!(hostile);
        doc["sinks"]["collector"]["last_error"] = json!(hostile);
        doc["verifier"]["marker"] = json!("x".repeat(5_000));
        let html = page(&doc);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<svg"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
        assert!(!html.contains('\u{202E}'));
        assert!(!html.contains('\r'));
        assert!(!html.contains(&"x".repeat(MAX_CHARS + 1)));
    }

    /// Durations grow coarser; bytes use binary units.
    #[test]
    fn words_for_numbers() {
        assert_eq!(duration_words(0), "0s");
        assert_eq!(duration_words(725), "12m 5s");
        assert_eq!(duration_words(3 * 3_600 + 20 * 60 + 7), "3h 20m");
        assert_eq!(duration_words(2 * 86_400 + 4 * 3_600 + 59), "2days 4h");
        assert_eq!(ago(0), "just now");
        assert_eq!(bytes_words(512), "512 bytes");
        assert_eq!(bytes_words(1_572_864), "1.5 MiB");
    }
}
