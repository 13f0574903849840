//! Rhythms as data: the on/off steps each [`LedLook`] plays, with their timings.
//!
//! A [`Pattern`] is a fixed-capacity list of steps (no allocation), repeated forever from the
//! moment the look was set. The player asks it for the level at an instant and for the next
//! instant the level changes, so it can sleep exactly until then.

use std::time::Duration;

use boxidr_model::{LedLook, led::Led};

/// Steps in the longest pattern: a 9-flash blink code (on/off nine times).
pub const MAX_STEPS: usize = 2 * LedLook::MAX_CODE as usize;

/// Slow blink: on and off this long each.
pub const SLOW_BLINK_MS: u32 = 1000;
/// Fast blink: on and off this long each.
pub const FAST_BLINK_MS: u32 = 150;
/// Heartbeat: flash, gap, flash, rest.
pub const HEARTBEAT_MS: [u32; 4] = [100, 150, 100, 850];
/// Blink code: each flash and each gap between flashes.
pub const CODE_FLASH_MS: u32 = 300;
/// Blink code: dark pause after the last flash, added to its gap, before the code repeats.
pub const CODE_PAUSE_MS: u32 = 1500;
/// Sweep: time each LED is lit in turn.
pub const SWEEP_STEP_MS: u32 = 150;
/// Wig-wag: half period.
pub const WIGWAG_MS: u32 = 125;

/// One step of a pattern: a level held for a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// LED lit (`true`) or dark.
    pub on: bool,
    /// How long, in milliseconds (never zero).
    pub ms: u32,
}

/// The repeating step sequence of one LED showing one look. A single step means a steady level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    steps: heapless::Vec<Step, MAX_STEPS>,
    period_ms: u32,
    /// Where in the cycle the pattern starts (board-wide looks start each position elsewhere).
    offset_ms: u32,
}

impl Pattern {
    /// The pattern of `look` on the LED at `led`'s position (board-wide looks depend on it).
    pub fn for_look(look: LedLook, led: Led) -> Self {
        let mut p = Self {
            steps: heapless::Vec::new(),
            period_ms: 0,
            offset_ms: 0,
        };
        match look {
            LedLook::Off => p.push(false, 1),
            LedLook::On => p.push(true, 1),
            LedLook::SlowBlink => {
                p.push(true, SLOW_BLINK_MS);
                p.push(false, SLOW_BLINK_MS);
            }
            LedLook::FastBlink => {
                p.push(true, FAST_BLINK_MS);
                p.push(false, FAST_BLINK_MS);
            }
            LedLook::Heartbeat => {
                for (i, ms) in HEARTBEAT_MS.into_iter().enumerate() {
                    p.push(i % 2 == 0, ms);
                }
            }
            LedLook::Code(n) => {
                let n = n.clamp(1, LedLook::MAX_CODE);
                for i in 0..n {
                    p.push(true, CODE_FLASH_MS);
                    let pause = if i + 1 == n { CODE_PAUSE_MS } else { 0 };
                    p.push(false, CODE_FLASH_MS + pause);
                }
            }
            LedLook::Sweep => {
                let slots = u32::try_from(Led::ALL.len()).unwrap_or(4);
                let before = u32::try_from(led.index()).unwrap_or(0);
                p.push(true, SWEEP_STEP_MS);
                p.push(false, (slots - 1) * SWEEP_STEP_MS);
                // Position i lights up i steps after position 0.
                p.offset_ms = (slots - before) % slots * SWEEP_STEP_MS;
            }
            LedLook::WigWag => {
                let even = led.index() % 2 == 0;
                p.push(even, WIGWAG_MS);
                p.push(!even, WIGWAG_MS);
            }
        }
        p
    }

    /// Appends a step, skipping empty ones. Capacity is sized for the longest look.
    fn push(&mut self, on: bool, ms: u32) {
        if ms == 0 {
            return;
        }
        let pushed = self.steps.push(Step { on, ms });
        debug_assert!(pushed.is_ok(), "MAX_STEPS is sized for the longest look");
        self.period_ms += ms;
    }

    /// The steps of one cycle.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether the level never changes.
    pub fn is_steady(&self) -> bool {
        self.steps.len() == 1
    }

    /// Length of one cycle.
    pub fn period(&self) -> Duration {
        Duration::from_millis(u64::from(self.period_ms))
    }

    /// The level `elapsed` after the pattern started.
    pub fn level_at(&self, elapsed: Duration) -> bool {
        self.locate(elapsed).0.on
    }

    /// How long after the start the level next changes, strictly after `elapsed`; `None` for a
    /// steady pattern.
    pub fn next_change(&self, elapsed: Duration) -> Option<Duration> {
        if self.is_steady() {
            return None;
        }
        let (_, remaining) = self.locate(elapsed);
        Some(elapsed + remaining)
    }

    /// The step playing at `elapsed` and the time left in it (never zero).
    fn locate(&self, elapsed: Duration) -> (Step, Duration) {
        let elapsed = elapsed + Duration::from_millis(u64::from(self.offset_ms));
        let fallback = Step { on: false, ms: 1 };
        let Some(first) = self.steps.first().copied() else {
            return (fallback, Duration::MAX);
        };
        if self.is_steady() {
            return (first, Duration::MAX);
        }
        let period = u128::from(self.period_ms);
        let nanos_per_ms = 1_000_000u128;
        let into_cycle = elapsed.as_nanos() % (period * nanos_per_ms);
        let mut end = 0u128;
        for step in &self.steps {
            end += u128::from(step.ms) * nanos_per_ms;
            if into_cycle < end {
                let left = u64::try_from(end - into_cycle).unwrap_or(u64::MAX);
                return (*step, Duration::from_nanos(left));
            }
        }
        (first, Duration::from_millis(u64::from(first.ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Steady looks never schedule a change.
    #[test]
    fn steady_looks() {
        let on = Pattern::for_look(LedLook::On, Led::Box);
        assert!(on.is_steady() && on.level_at(ms(123_456)));
        assert_eq!(on.next_change(ms(5)), None);
        assert!(!Pattern::for_look(LedLook::Off, Led::Box).level_at(ms(0)));
    }

    /// Every step boundary is a level change, including the wrap-around, so the player's
    /// "next change" deadlines are all real transitions.
    #[test]
    fn every_boundary_changes_level() {
        let mut looks = vec![LedLook::SlowBlink, LedLook::FastBlink, LedLook::Heartbeat];
        looks.extend((1..=LedLook::MAX_CODE).map(LedLook::Code));
        looks.extend([LedLook::Sweep, LedLook::WigWag]);
        for look in looks {
            for led in Led::ALL {
                let p = Pattern::for_look(look, led);
                let s = p.steps();
                for pair in s.windows(2) {
                    assert_ne!(pair[0].on, pair[1].on, "{look:?} on {led:?}");
                }
                assert_ne!(s[0].on, s[s.len() - 1].on, "{look:?} on {led:?} wraps");
            }
        }
    }

    /// Blink codes have n flashes and the long pause after the last one.
    #[test]
    fn code_shape() {
        let p = Pattern::for_look(LedLook::Code(3), Led::Attention);
        assert_eq!(p.steps().iter().filter(|s| s.on).count(), 3);
        assert_eq!(p.period(), ms(6 * 300 + 1500));
        assert_eq!(
            Pattern::for_look(LedLook::Code(0), Led::Attention)
                .steps()
                .len(),
            2
        );
        assert_eq!(
            Pattern::for_look(LedLook::Code(99), Led::Attention)
                .steps()
                .len(),
            MAX_STEPS
        );
    }

    /// Level and next change follow the timings, across cycles.
    #[test]
    fn level_and_next_change() {
        let p = Pattern::for_look(LedLook::Heartbeat, Led::System);
        assert!(p.level_at(ms(0)) && p.level_at(ms(99)));
        assert!(!p.level_at(ms(100)));
        assert!(p.level_at(ms(250)) && !p.level_at(ms(350)));
        assert!(p.level_at(ms(1200)));
        assert_eq!(p.next_change(ms(0)), Some(ms(100)));
        assert_eq!(p.next_change(ms(100)), Some(ms(250)));
        assert_eq!(p.next_change(ms(1199)), Some(ms(1200)));
        assert_eq!(p.next_change(ms(1200)), Some(ms(1300)));
    }

    /// Sweep lights one position at a time; wig-wag alternates odd and even positions.
    #[test]
    fn board_wide_phases() {
        for t in (0..600).step_by(50) {
            let lit = Led::ALL
                .iter()
                .filter(|l| Pattern::for_look(LedLook::Sweep, **l).level_at(ms(t)))
                .count();
            assert_eq!(lit, 1, "t={t}");
            let sys = Pattern::for_look(LedLook::WigWag, Led::System).level_at(ms(t));
            let bx = Pattern::for_look(LedLook::WigWag, Led::Box).level_at(ms(t));
            assert_ne!(sys, bx);
        }
        assert!(Pattern::for_look(LedLook::Sweep, Led::InsightIdr).level_at(ms(300)));
    }
}
