//! The pattern player: shows a [`LedFrame`] on four output pins.
//!
//! Sans-IO in time: [`LedPlayer::update`] takes `now` and returns when it next needs to run, so
//! the caller decides how to wait (a thread, a test loop advancing a fake clock). Pins are
//! written only when their level changes. No allocation happens after construction.

use std::time::Duration;

use boxidr_model::{Led, LedFrame, LedLook};
use embedded_hal::digital::{OutputPin, PinState};

use crate::pattern::Pattern;

/// What one LED is playing.
#[derive(Debug, Clone)]
struct Slot {
    look: LedLook,
    pattern: Pattern,
    /// When the current look started: patterns play from their first step at this instant.
    since: Duration,
    /// Last level written to the pin, `None` before the first write (or after a failed one).
    written: Option<bool>,
}

/// Plays LED looks on four pins, in [`Led::ALL`] order.
#[derive(Debug)]
pub struct LedPlayer<P> {
    pins: [P; 4],
    slots: [Slot; 4],
    active_low: bool,
}

/// A pin write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinWriteError<E> {
    /// Which LED.
    pub led: Led,
    /// The backend's error.
    pub source: E,
}

impl<P: OutputPin> LedPlayer<P> {
    /// A player showing [`LedFrame::ALL_OFF`] from time zero; nothing is written before the first
    /// [`update`](Self::update). `active_low` inverts every level (LED wired to 3.3 V).
    pub fn new(pins: [P; 4], active_low: bool) -> Self {
        let slot = |led: Led| Slot {
            look: LedLook::Off,
            pattern: Pattern::for_look(LedLook::Off, led),
            since: Duration::ZERO,
            written: None,
        };
        Self {
            pins,
            slots: Led::ALL.map(slot),
            active_low,
        }
    }

    /// Shows `frame` from `now`. LEDs whose look does not change keep their rhythm undisturbed;
    /// LEDs that change start their new pattern at its first step, all at the same instant.
    pub fn show(&mut self, frame: LedFrame, now: Duration) {
        for led in Led::ALL {
            let look = frame.look(led);
            let slot = &mut self.slots[led.index()];
            if slot.look != look {
                *slot = Slot {
                    look,
                    pattern: Pattern::for_look(look, led),
                    since: now,
                    written: slot.written,
                };
            }
        }
    }

    /// The frame being shown.
    pub fn frame(&self) -> LedFrame {
        let mut frame = LedFrame::ALL_OFF;
        for led in Led::ALL {
            frame.set(led, self.slots[led.index()].look);
        }
        frame
    }

    /// Lit LEDs as last written (`false` for an LED never written), in [`Led::ALL`] order.
    pub fn levels(&self) -> [bool; 4] {
        self.slots.each_ref().map(|s| s.written.unwrap_or(false))
    }

    /// Brings every pin to its level at `now` and returns the next instant a level changes
    /// (`None` when every LED is steady). On a write error the other LEDs are still updated, the
    /// failed one is retried on the next call, and the first error is returned.
    pub fn update(&mut self, now: Duration) -> Result<Option<Duration>, PinWriteError<P::Error>> {
        let mut first_error = None;
        let mut next: Option<Duration> = None;
        for led in Led::ALL {
            let i = led.index();
            let slot = &mut self.slots[i];
            let elapsed = now.saturating_sub(slot.since);
            let level = slot.pattern.level_at(elapsed);
            if slot.written != Some(level) {
                let state = PinState::from(level != self.active_low);
                match self.pins[i].set_state(state) {
                    Ok(()) => slot.written = Some(level),
                    Err(source) => {
                        slot.written = None;
                        first_error.get_or_insert(PinWriteError { led, source });
                    }
                }
            }
            if let Some(change) = slot.pattern.next_change(elapsed) {
                let at = slot.since + change;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(next),
        }
    }

    /// Shows `frame` and writes it at once: for steady frames such as [`LedFrame::STOPPED`].
    pub fn show_now(
        &mut self,
        frame: LedFrame,
        now: Duration,
    ) -> Result<(), PinWriteError<P::Error>> {
        self.show(frame, now);
        self.update(now).map(|_| ())
    }

    /// The pins, in [`Led::ALL`] order.
    pub fn pins_mut(&mut self) -> &mut [P; 4] {
        &mut self.pins
    }

    /// Gives the pins back.
    pub fn into_pins(self) -> [P; 4] {
        self.pins
    }
}
