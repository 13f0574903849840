//! The one mapping from [`Health`] to what the four LEDs show, and the LED table generated from
//! it (`firmware/health/LEDS.md`, checked by a golden test so the sticker cannot drift).
//!
//! # Rules
//!
//! - SYSTEM: always [`LedLook::Heartbeat`] (this mapping only runs while the firmware does; the
//!   board shows [`LedFrame::BOOT`] before the first verdict and [`LedFrame::STOPPED`] after).
//! - BOX: the Box component's [`Level`] through [`link_look`]: not configured → off, ok → on,
//!   degraded → slow blink, failing → fast blink.
//! - INSIGHTIDR: the worse of the Collector and Log Search levels (a sink that is not set up does
//!   not count unless neither is), through [`link_look`].
//! - ATTENTION: the first problem in priority order that carries an [`AttentionCode`] decides it,
//!   through [`attention_look`]: critical → fast blink, error → on, warning → slow blink. No such
//!   problem → off. Link failures (Box unreachable, InsightIDR refusing) show on their link LED
//!   only: ATTENTION lights only when a short press has a code to show.
//! - After a short button press the board shows [`summary_frame`]: the same frame with ATTENTION
//!   flashing the code ([`LedLook::Code`]).
//!
//! Only `Off`, `On`, `SlowBlink`, `FastBlink`, `Heartbeat` and `Code` are used, and since SYSTEM
//! is always a heartbeat, no frame ever fast-blinks all four LEDs.

use std::fmt::Write as _;

use boxidr_model::{AttentionCode, Led, LedFrame, LedLook};

use crate::assess::{Components, Health, assess};
use crate::problem::{Level, ProblemCode, Scope, Severity};
use crate::scenarios;

/// The look of a link LED (BOX, INSIGHTIDR) for a component level.
pub const fn link_look(level: Level) -> LedLook {
    match level {
        Level::NotConfigured => LedLook::Off,
        Level::Ok => LedLook::On,
        Level::Degraded => LedLook::SlowBlink,
        Level::Failing => LedLook::FastBlink,
    }
}

/// The look of the ATTENTION LED for the severity of the problem that decides it (`Info`
/// problems never carry an attention code: off).
pub const fn attention_look(severity: Severity) -> LedLook {
    match severity {
        Severity::Info => LedLook::Off,
        Severity::Warning => LedLook::SlowBlink,
        Severity::Error => LedLook::On,
        Severity::Critical => LedLook::FastBlink,
    }
}

/// The level the INSIGHTIDR LED shows: the worse of the two sinks.
pub fn insightidr_level(components: &Components) -> Level {
    components.collector.level.max(components.log_search.level)
}

/// The code a short button press flashes, if any problem lights ATTENTION.
pub fn attention_code(health: &Health) -> Option<AttentionCode> {
    health.top_attention().and_then(|p| p.attention)
}

/// What the LEDs show for `health` (the live frame).
pub fn led_frame(health: &Health) -> LedFrame {
    LedFrame {
        system: LedLook::Heartbeat,
        box_link: link_look(health.components.box_.level),
        insightidr: link_look(insightidr_level(&health.components)),
        attention: health
            .top_attention()
            .map_or(LedLook::Off, |p| attention_look(p.severity)),
    }
}

/// What the LEDs show for a while after a short button press: the live frame with ATTENTION
/// flashing the code of the most important problem. `None` when ATTENTION is off (the board
/// then keeps showing the live frame).
pub fn summary_frame(health: &Health) -> Option<LedFrame> {
    attention_code(health).map(|code| led_frame(health).with(Led::Attention, code.look()))
}

/// The LEDs a problem changes from the all-well frame, and how, when it is the most important
/// problem on each of them. Problems that change no LED are shown on the status page only.
pub fn problem_looks(code: ProblemCode) -> Vec<(Led, LedLook)> {
    let mut looks = Vec::new();
    let link = match code.scope() {
        Scope::Box => Some(Led::Box),
        Scope::Sink => Some(Led::InsightIdr),
        Scope::System | Scope::Store | Scope::Clock | Scope::Board => None,
    };
    if let Some(led) = link {
        let look = link_look(code.level());
        if look != LedLook::On {
            looks.push((led, look));
        }
    }
    if code.attention().is_some() {
        looks.push((Led::Attention, attention_look(code.severity())));
    }
    looks
}

/// The name of a look as the sticker spells it.
pub fn look_name(look: LedLook) -> String {
    match look {
        LedLook::Off => "off".to_owned(),
        LedLook::On => "on".to_owned(),
        LedLook::SlowBlink => "slow blink".to_owned(),
        LedLook::FastBlink => "fast blink".to_owned(),
        LedLook::Heartbeat => "heartbeat".to_owned(),
        LedLook::Code(n) => format!("code {n}"),
        LedLook::Sweep => "running light".to_owned(),
        LedLook::WigWag => "alternating".to_owned(),
    }
}

/// The LED table in Markdown, generated from this mapping: link levels, every problem code in
/// priority order with its look and button code, and whole-row examples computed by [`assess`]
/// and [`led_frame`] from [`scenarios::examples`].
pub fn led_table_markdown() -> String {
    let mut out = String::new();
    out.push_str("### Link LEDs\n\n");
    out.push_str("BOX shows the Box side; INSIGHTIDR the worse of the Collector and Log Search sinks (a sink that is not set up does not count).\n\n");
    out.push_str("| Level | BOX / INSIGHTIDR |\n|---|---|\n");
    for level in Level::ALL {
        let _ = writeln!(
            out,
            "| {} | {} |",
            level.as_str(),
            look_name(link_look(level))
        );
    }

    out.push_str("\n### Problems, most important first\n\n");
    out.push_str("ATTENTION follows the first problem in this list that has a button code; a short press flashes that code.\n\n");
    out.push_str("| Code | Severity | LEDs | Button code | Meaning | What to do |\n|---|---|---|---|---|---|\n");
    for code in ProblemCode::ALL {
        let looks = problem_looks(code);
        let leds = if looks.is_empty() {
            "— (status page)".to_owned()
        } else {
            looks
                .iter()
                .map(|(led, look)| format!("{} {}", led.label(), look_name(*look)))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        let flashes = code
            .attention()
            .map_or("—".to_owned(), |a| a.flashes().to_string());
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            code.as_str(),
            code.severity().as_str(),
            leds,
            flashes,
            code.meaning(),
            code.fix().unwrap_or("—"),
        );
    }

    out.push_str("\n### Whole-row examples\n\n");
    out.push_str("| Situation | SYSTEM | BOX | INSIGHTIDR | ATTENTION | After a short press |\n|---|---|---|---|---|---|\n");
    for (situation, facts) in scenarios::examples() {
        let health = assess(&facts);
        let frame = led_frame(&health);
        let summary = summary_frame(&health).map_or("—".to_owned(), |f| {
            format!("ATTENTION {}", look_name(f.attention))
        });
        let _ = write!(out, "| {situation} |");
        for (_, look) in frame.iter() {
            let _ = write!(out, " {} |", look_name(look));
        }
        let _ = writeln!(out, " {summary} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Link looks are distinct per level, so each level reads differently.
    #[test]
    fn link_looks_are_distinct() {
        let looks: std::collections::HashSet<_> = Level::ALL.map(link_look).into();
        assert_eq!(looks.len(), Level::ALL.len());
    }

    /// Every problem with an attention code shows a lit ATTENTION look.
    #[test]
    fn attention_problems_light_attention() {
        for code in ProblemCode::ALL {
            let lit = problem_looks(code)
                .iter()
                .any(|(led, look)| *led == Led::Attention && *look != LedLook::Off);
            assert_eq!(lit, code.attention().is_some(), "{code}");
        }
    }
}
