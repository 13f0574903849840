//! The reset button: debouncing, short press, and the 10-second hold that requests a factory reset.
//!
//! [`ButtonTracker`] is pure: feed it raw samples with their time and it reports
//! [`ButtonEvent`]s and the feedback frame to show while the button is held. The button only
//! counts after it has been seen released once, so a stuck or shorted button at power-up can never
//! request a factory reset.

use std::time::Duration;

use boxidr_model::LedFrame;

/// Timings of the reset button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonConfig {
    /// A new raw level must hold this long to count (contact bounce is shorter).
    pub debounce: Duration,
    /// Presses released before this are short presses; longer holds show the progress feedback.
    pub short_press_max: Duration,
    /// Holding this long requests the factory reset.
    pub long_press: Duration,
    /// How long the status summary shows after a short press.
    pub summary_duration: Duration,
    /// How long the factory-reset confirmation shows after the request.
    pub confirm_duration: Duration,
    /// How often the runner samples the button.
    pub poll_interval: Duration,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(40),
            short_press_max: Duration::from_secs(2),
            long_press: Duration::from_secs(10),
            summary_duration: Duration::from_secs(15),
            confirm_duration: Duration::from_secs(5),
            poll_interval: Duration::from_millis(10),
        }
    }
}

/// What a press of the reset button means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// Pressed and released within [`ButtonConfig::short_press_max`]: show the status summary.
    ShortPress,
    /// Held past the short-press time, then released before the factory reset: nothing happens.
    HoldCancelled,
    /// Held for [`ButtonConfig::long_press`]: the firmware should perform the factory reset. Sent
    /// once per hold, while the button is still held.
    FactoryResetRequested,
}

/// Debounce and press-length state machine.
#[derive(Debug, Clone)]
pub struct ButtonTracker {
    cfg: ButtonConfig,
    /// Last raw sample and since when it has had that value.
    raw: Option<(bool, Duration)>,
    /// Debounced level (`true` = pressed), `None` until the first level settles.
    stable: Option<bool>,
    /// The button has been seen released, so presses count.
    armed: bool,
    /// Debounced press start of the current press.
    pressed_at: Option<Duration>,
    /// The factory reset was requested during the current press.
    fired: bool,
    /// When the last factory-reset request was sent.
    confirmed_at: Option<Duration>,
}

impl ButtonTracker {
    /// A tracker that has seen nothing yet.
    pub fn new(cfg: ButtonConfig) -> Self {
        Self {
            cfg,
            raw: None,
            stable: None,
            armed: false,
            pressed_at: None,
            fired: false,
            confirmed_at: None,
        }
    }

    /// The timings.
    pub fn config(&self) -> &ButtonConfig {
        &self.cfg
    }

    /// Whether presses count yet (the button has been seen released).
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Whether the debounced button is pressed.
    pub fn is_pressed(&self) -> bool {
        self.stable == Some(true)
    }

    /// Feeds one raw sample (`pressed` after polarity) taken at `now`.
    pub fn sample(&mut self, pressed: bool, now: Duration) -> Option<ButtonEvent> {
        match self.raw {
            Some((level, _)) if level == pressed => {}
            _ => self.raw = Some((pressed, now)),
        }
        let (level, since) = self.raw?;
        if self.stable != Some(level) && now.saturating_sub(since) >= self.cfg.debounce {
            self.stable = Some(level);
            return self.settled(level, since);
        }
        self.held_event(now)
    }

    /// The debounced level changed to `pressed`; the change happened at `at`.
    fn settled(&mut self, pressed: bool, at: Duration) -> Option<ButtonEvent> {
        if !pressed {
            let was = self.pressed_at.take();
            let fired = std::mem::take(&mut self.fired);
            if !self.armed {
                self.armed = true;
                return None;
            }
            if fired {
                // The confirmation stays up for its full time after the button is let go.
                self.confirmed_at = Some(at);
            }
            let held = at.saturating_sub(was?);
            return if fired {
                None
            } else if held < self.cfg.short_press_max {
                Some(ButtonEvent::ShortPress)
            } else {
                Some(ButtonEvent::HoldCancelled)
            };
        }
        if self.armed {
            self.pressed_at = Some(at);
        }
        None
    }

    fn held_event(&mut self, now: Duration) -> Option<ButtonEvent> {
        let start = self.pressed_at?;
        if !self.fired && self.is_pressed() && now.saturating_sub(start) >= self.cfg.long_press {
            self.fired = true;
            self.confirmed_at = Some(now);
            return Some(ButtonEvent::FactoryResetRequested);
        }
        None
    }

    /// The frame to show instead of the normal one because of the button, at `now`: the
    /// progress bar while held past the short-press time, then the confirmation.
    pub fn overlay(&self, now: Duration) -> Option<LedFrame> {
        if let Some(at) = self.confirmed_at {
            if self.fired || now.saturating_sub(at) < self.cfg.confirm_duration {
                return Some(LedFrame::FACTORY_RESET_CONFIRMED);
            }
        }
        let start = self.pressed_at?;
        let held = now.saturating_sub(start);
        if !self.is_pressed() || held < self.cfg.short_press_max {
            return None;
        }
        let span = self
            .cfg
            .long_press
            .saturating_sub(self.cfg.short_press_max)
            .as_millis()
            .max(1);
        let into = held.saturating_sub(self.cfg.short_press_max).as_millis();
        let lit = 1 + usize::try_from(into * 4 / span).unwrap_or(3).min(3);
        Some(LedFrame::reset_hold(lit))
    }

    /// When the overlay next changes on its own (hold progress steps, end of confirmation).
    pub fn next_overlay_change(&self, now: Duration) -> Option<Duration> {
        if let Some(at) = self.confirmed_at {
            let end = at + self.cfg.confirm_duration;
            if !self.fired && now < end {
                return Some(end);
            }
        }
        let start = self.pressed_at?;
        if !self.is_pressed() || self.fired {
            return None;
        }
        let quarter = self.cfg.long_press.saturating_sub(self.cfg.short_press_max) / 4;
        let mut t = start + self.cfg.short_press_max;
        while t <= now {
            t += quarter.max(Duration::from_millis(1));
        }
        Some(t.min(start + self.cfg.long_press))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxidr_model::{Led, LedLook};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Samples every 10 ms from `from` to `to` (exclusive) at a fixed level; returns the events.
    fn hold(t: &mut ButtonTracker, pressed: bool, from: u64, to: u64) -> Vec<(u64, ButtonEvent)> {
        (from..to)
            .step_by(10)
            .filter_map(|now| t.sample(pressed, ms(now)).map(|e| (now, e)))
            .collect()
    }

    fn armed() -> ButtonTracker {
        let mut t = ButtonTracker::new(ButtonConfig::default());
        assert!(hold(&mut t, false, 0, 100).is_empty());
        assert!(t.is_armed());
        t
    }

    /// Bounces shorter than the debounce time are ignored entirely.
    #[test]
    fn bounce_is_ignored() {
        let mut t = armed();
        for i in 0..20 {
            let now = 100 + i * 10;
            assert_eq!(t.sample(i % 3 == 0, ms(now)), None);
        }
        assert!(!t.is_pressed());
        assert!(hold(&mut t, false, 300, 400).is_empty());
    }

    /// A short press is reported once, on release, after both edges are debounced.
    #[test]
    fn short_press() {
        let mut t = armed();
        assert!(hold(&mut t, true, 100, 600).is_empty());
        assert!(t.is_pressed());
        assert_eq!(t.overlay(ms(590)), None);
        // Released at 600: stable after 40 ms of debounce.
        assert_eq!(
            hold(&mut t, false, 600, 800),
            vec![(640, ButtonEvent::ShortPress)]
        );
    }

    /// A press with contact bounce on both edges still counts as one short press.
    #[test]
    fn bouncy_press_is_one_press() {
        let mut t = armed();
        let mut events = Vec::new();
        for (now, level) in [
            (100, true),
            (105, false),
            (110, true),
            (115, false),
            (120, true),
        ] {
            events.extend(t.sample(level, ms(now)));
        }
        events.extend(hold(&mut t, true, 130, 500).into_iter().map(|(_, e)| e));
        for (now, level) in [(500, false), (503, true), (507, false)] {
            events.extend(t.sample(level, ms(now)));
        }
        events.extend(hold(&mut t, false, 510, 700).into_iter().map(|(_, e)| e));
        assert_eq!(events, vec![ButtonEvent::ShortPress]);
    }

    /// Holding shows a filling progress bar, requests the reset at exactly 10 s (once), shows
    /// the confirmation until released and for the confirmation time after it.
    #[test]
    fn long_press_requests_factory_reset() {
        let mut t = armed();
        // Pressed at 1000 ms (raw), stable at 1040 ms; the press counts from the raw edge.
        let events = hold(&mut t, true, 1000, 1000 + 12_000);
        assert_eq!(events, vec![(11_000, ButtonEvent::FactoryResetRequested)]);
        let mut t = armed();
        hold(&mut t, true, 1000, 2990);
        assert_eq!(t.overlay(ms(2990)), None);
        hold(&mut t, true, 2990, 3010);
        assert_eq!(t.overlay(ms(3000)), Some(LedFrame::reset_hold(1)));
        assert_eq!(t.next_overlay_change(ms(3000)), Some(ms(5000)));
        hold(&mut t, true, 3010, 5010);
        assert_eq!(t.overlay(ms(5000)), Some(LedFrame::reset_hold(2)));
        hold(&mut t, true, 5010, 10_990);
        let frame = t.overlay(ms(10_980)).unwrap_or_default();
        assert_eq!(frame, LedFrame::reset_hold(4));
        assert_eq!(frame.look(Led::Attention), LedLook::On);
        assert_eq!(
            hold(&mut t, true, 10_990, 11_010),
            vec![(11_000, ButtonEvent::FactoryResetRequested)]
        );
        assert_eq!(
            t.overlay(ms(30_000)),
            Some(LedFrame::FACTORY_RESET_CONFIRMED)
        );
        assert!(
            hold(&mut t, true, 11_010, 30_000).is_empty(),
            "requested once per hold"
        );
        // Released at 30 s (stable at 30.04 s): no further event, confirmation for 5 s more.
        assert!(hold(&mut t, false, 30_000, 31_000).is_empty());
        assert_eq!(
            t.overlay(ms(34_000)),
            Some(LedFrame::FACTORY_RESET_CONFIRMED)
        );
        assert_eq!(t.overlay(ms(35_050)), None);
    }

    /// Letting go between the short-press time and 10 s cancels without a reset.
    #[test]
    fn released_hold_cancels() {
        let mut t = armed();
        hold(&mut t, true, 100, 6100);
        assert_eq!(
            hold(&mut t, false, 6100, 6300),
            vec![(6140, ButtonEvent::HoldCancelled)]
        );
        assert_eq!(t.overlay(ms(6300)), None);
    }

    /// A button held (or shorted) from power-up never counts, until it is seen released.
    #[test]
    fn stuck_button_at_start_never_resets() {
        let mut t = ButtonTracker::new(ButtonConfig::default());
        assert!(hold(&mut t, true, 0, 60_000).is_empty());
        assert!(!t.is_armed());
        assert_eq!(t.overlay(ms(60_000)), None);
        assert!(hold(&mut t, false, 60_000, 60_100).is_empty());
        assert!(t.is_armed());
        assert_eq!(hold(&mut t, true, 60_100, 60_300), vec![]);
        assert_eq!(
            hold(&mut t, false, 60_300, 60_400),
            vec![(60_340, ButtonEvent::ShortPress)]
        );
    }
}
